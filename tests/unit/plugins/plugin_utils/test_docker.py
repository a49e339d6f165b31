# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docker_gateway's controller-side logic: the engine check, live networks and the validated plan."""

from __future__ import annotations

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils import _docker as dg
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import InventoryError

ENGINE = {"version": "20.10.24+dfsg1", "iptables": None, "firewall_backend": None, "daemon_dns": [], "running": True}


def inspected(name, subnets, bridge=None, internal=False, driver="bridge", net_id="0123456789abcdef"):
    options = {dg.BRIDGE_OPTION: bridge} if bridge else {}
    return {"Name": name, "Id": net_id, "Driver": driver, "Internal": internal, "Options": options,
            "IPAM": {"Config": [{"Subnet": s} for s in subnets]}}


DEFAULT_NETS = [inspected("bridge", ["172.17.0.0/16"], bridge="docker0"), inspected("host", [], driver="host")]


def inputs(**overrides):
    base = {
        "engine": dict(ENGINE),
        "networks": [{"name": "vpn_apps", "subnet": "172.31.50.0/24", "subnet_v6": "fd42:50::/64"}],
        "inspected": list(DEFAULT_NETS),
        "profile": "lab-exit",
        "tunnel_networks": ["10.66.6.0/24", "fd66:6::/64"],
        "allow_lan": [],
        "local_networks": ["172.30.6.0/24", "fd42:7467:6::/64", "172.17.0.0/16"],
        "exclude": [],
        "tunnel_interface": "wg-docker",
        "table": 51840,
        "priority": 9800,
        "dns": ["10.66.6.1", "10.66.6.2", "fd66:6::1"],
        "host_vpn": None,
    }
    base.update(overrides)
    return base


def test_plan_of_a_created_network():
    plan = dg.gateway_plan(inputs(), "gw1")
    assert plan["engine"] == {"version": "20.10.24+dfsg1", "major": 20, "dns": "container"}
    assert plan["networks"] == [{"name": "vpn_apps", "adopt": False, "exists": False, "bridge": "vpn_apps",
                                 "subnet": "172.31.50.0/24", "subnet_v6": "fd42:50::/64"}]
    assert plan["sources"] == ["172.31.50.0/24", "fd42:50::/64", "vpn_apps"]
    # own subnets, the host's networks, the other Docker networks stay local (deduplicated)
    assert plan["exclude"] == ["172.31.50.0/24", "fd42:50::/64", "172.30.6.0/24", "fd42:7467:6::/64", "172.17.0.0/16"]
    assert plan["forward"] == [{"in_interface": "vpn_apps", "out_interface": "wg-docker",
                                "sources": ["172.31.50.0/24", "fd42:50::/64"], "masquerade": True}]
    assert plan["dns_redirect"] == [{"sources": ["172.31.50.0/24", "fd42:50::/64"], "to": ["10.66.6.1", "fd66:6::1"]}]
    assert plan["ipv6_networks"] is True and plan["table"] == 51840 and plan["priority"] == 9800


def test_a_host_also_in_vpn_hosts_rides_the_host_vpn_tunnel():
    """One peer per host on the server: the networks use host_vpn's interface (and its routing), not their own."""
    plan = dg.gateway_plan(inputs(host_vpn={"interface": "wg0"}), "gw1")
    assert plan["shared"] is True and plan["tunnel_interface"] == "wg0"
    assert plan["forward"] == [{"in_interface": "vpn_apps", "out_interface": "wg0",
                                "sources": ["172.31.50.0/24", "fd42:50::/64"], "masquerade": True}]
    # the kill switch still confines the subnets and the bridge; the host's networks stay local
    assert plan["sources"] == ["172.31.50.0/24", "fd42:50::/64", "vpn_apps"]
    assert "172.30.6.0/24" in plan["exclude"]
    alone = dg.gateway_plan(inputs(), "gw1")
    assert alone["shared"] is False and alone["tunnel_interface"] == "wg-docker"


def test_adopted_network_reads_subnet_and_bridge():
    nets = DEFAULT_NETS + [inspected("legacy_net", ["172.31.60.0/24"], net_id="feedfacecafe0000aaaa")]
    plan = dg.gateway_plan(inputs(networks=[{"name": "legacy_net", "adopt": True}], inspected=nets), "gw1")
    assert plan["networks"][0]["bridge"] == "br-feedfacecafe" and plan["networks"][0]["subnet"] == "172.31.60.0/24"
    assert plan["networks"][0]["exists"] is True and plan["ipv6_networks"] is False
    assert plan["sources"] == ["172.31.60.0/24", "br-feedfacecafe"]


def test_existing_network_with_same_subnet_is_kept():
    nets = DEFAULT_NETS + [inspected("vpn_apps", ["172.31.50.0/24", "fd42:50::/64"], bridge="vpn_apps")]
    plan = dg.gateway_plan(inputs(inspected=nets, local_networks=["172.30.6.0/24", "172.31.50.0/24"]), "gw1")
    assert plan["networks"][0]["exists"] is True
    # the host's facts list the tunneled bridge's own subnet: not an overlap with itself
    assert plan["exclude"].count("172.31.50.0/24") == 1


BAD = [
    ("no networks", dict(networks=[]), "docker_gateway_networks"),
    ("unknown key", dict(networks=[{"name": "a", "subnet": "172.31.50.0/24", "mtu": 1400}]), "docker_gateway_networks[0]"),
    ("bad name", dict(networks=[{"name": "-x", "subnet": "172.31.50.0/24"}]), "docker_gateway_networks[0].name"),
    ("predefined", dict(networks=[{"name": "bridge", "adopt": True}]), "docker_gateway_networks[bridge].name"),
    ("no subnet", dict(networks=[{"name": "a"}]), "docker_gateway_networks[a].subnet"),
    ("v6 as subnet only", dict(networks=[{"name": "a", "subnet": "fd42:50::/64"}]), "docker_gateway_networks[a].subnet"),
    ("host bits", dict(networks=[{"name": "a", "subnet": "172.31.50.1/24"}]), "docker_gateway_networks[a].subnet"),
    ("long bridge", dict(networks=[{"name": "a_very_long_network", "subnet": "172.31.50.0/24"}]),
     "docker_gateway_networks[a_very_long_network].name"),
    ("adopt missing", dict(networks=[{"name": "gone", "adopt": True}]), "docker_gateway_networks[gone].adopt"),
    ("other profile", dict(networks=[{"name": "a", "subnet": "172.31.50.0/24", "profile": "us-exit"}]),
     "docker_gateway_networks[a].profile"),
    ("twice", dict(networks=[{"name": "a", "subnet": "172.31.50.0/24"}, {"name": "a", "subnet": "172.31.51.0/24"}]),
     "docker_gateway_networks"),
    ("overlap each other", dict(networks=[{"name": "a", "subnet": "172.31.50.0/24"},
                                          {"name": "b", "subnet": "172.31.0.0/16"}]), "docker_gateway_networks[b].subnet"),
    ("overlap tunnel", dict(networks=[{"name": "a", "subnet": "10.66.6.0/25"}]), "docker_gateway_networks[a].subnet"),
    ("overlap tunnel v6", dict(networks=[{"name": "a", "subnet": "172.31.50.0/24", "subnet_v6": "fd66:6::/80"}]),
     "docker_gateway_networks[a].subnet_v6"),
    ("overlap allow_lan", dict(allow_lan=["172.31.0.0/16"]), "docker_gateway_networks[vpn_apps].subnet"),
    ("overlap host", dict(local_networks=["172.31.50.128/25"]), "docker_gateway_networks[vpn_apps].subnet"),
    ("overlap docker", dict(inspected=DEFAULT_NETS + [inspected("other", ["172.31.0.0/16"])]),
     "docker_gateway_networks[vpn_apps].subnet"),
    ("overlap exclude", dict(exclude=["172.31.50.0/26"]), "docker_gateway_exclude"),
    ("exists other subnet", dict(inspected=DEFAULT_NETS + [inspected("vpn_apps", ["172.31.99.0/24"])]),
     "docker_gateway_networks[vpn_apps].subnet"),
    ("internal", dict(networks=[{"name": "int", "adopt": True}],
                      inspected=DEFAULT_NETS + [inspected("int", ["172.31.70.0/24"], internal=True)]),
     "docker_gateway_networks[int]"),
    ("macvlan", dict(networks=[{"name": "mv", "adopt": True}],
                     inspected=DEFAULT_NETS + [inspected("mv", ["172.31.70.0/24"], driver="macvlan")]),
     "docker_gateway_networks[mv]"),
    ("table", dict(table=254), "docker_gateway_table"),
    ("also in vpn_hosts, with exclude", dict(host_vpn={"interface": "wg0"}, exclude=["10.20.0.0/16"]),
     "docker_gateway_exclude"),
    ("also in vpn_hosts, bad interface", dict(host_vpn={"interface": "a" * 16}), "host_vpn_interface"),
    ("priority", dict(priority=40000), "docker_gateway_priority"),
    ("iptables false", dict(engine=dict(ENGINE, iptables=False)), "docker_gateway_state"),
    ("nftables backend", dict(engine=dict(ENGINE, firewall_backend="nftables")), "docker_gateway_state"),
    ("docker 28 without daemon dns", dict(engine=dict(ENGINE, version="28.3.0")), "docker_gateway_state"),
    ("not running", dict(engine=dict(ENGINE, running=False)), "docker_gateway_state"),
    ("no version", dict(engine=dict(ENGINE, version="")), "docker_gateway_state"),
]


@pytest.mark.parametrize("case,overrides,variable", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_variable_and_host(case, overrides, variable):
    with pytest.raises(InventoryError) as err:
        dg.gateway_plan(inputs(**overrides), "gw1")
    assert err.value.variable == variable, (case, str(err.value))
    assert "(host gw1)" in str(err.value)


@pytest.mark.parametrize("version,daemon_dns,major,dns", [
    ("20.10.24+dfsg1", [], 20, "container"),
    ("26.1.5+dfsg1", [], 26, "container"),
    ("28.3.0", ["192.0.2.53"], 28, "daemon"),
    ("v29.0.1", ["192.0.2.53"], 29, "daemon"),
])
def test_engine_versions(version, daemon_dns, major, dns):
    result = dg.check_engine(dict(ENGINE, version=version, daemon_dns=daemon_dns), "gw1")
    assert result["major"] == major and result["dns"] == dns


def test_live_networks_default_bridge_names():
    live = dg.live_networks(DEFAULT_NETS + [inspected("x", ["172.31.1.0/24"], net_id="abcdefabcdef99")])
    assert live["bridge"]["bridge"] == "docker0"
    assert live["x"]["bridge"] == "br-abcdefabcdef"
    assert live["host"]["subnets"] == []


def with_containers(net, *names):
    net = dict(net)
    net["Containers"] = {"id-%s" % n: {"Name": n, "IPv4Address": "x"} for n in names}
    return net


def test_exposure_lists_containers_with_a_second_way_out():
    nets = [
        with_containers(inspected("vpn_apps", ["172.31.50.0/24"]), "app1", "app2", "both"),
        with_containers(inspected("plain", ["172.31.70.0/24"]), "plain1", "both"),
        with_containers(inspected("backend", ["172.31.80.0/24"], internal=True), "app2"),
        with_containers(inspected("vpn_two", ["172.31.51.0/24"]), "app1"),
    ]
    rows = dg.exposure(nets, ["vpn_apps", "vpn_two", "gone"])
    assert rows[0] == {"name": "vpn_apps", "containers": ["app1", "app2", "both"],
                       # app2's second network is internal (no gateway), app1's other one is tunneled too
                       "exposed": [{"container": "both", "via": ["plain"]}], "missing": False}
    assert rows[1] == {"name": "vpn_two", "containers": ["app1"], "exposed": [], "missing": False}
    assert rows[2] == {"name": "gone", "containers": [], "exposed": [], "missing": True}
    assert dg.exposure(None, []) == []
