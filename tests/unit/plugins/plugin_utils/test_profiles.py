# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Profiles, address allocation and the server/client plans (pure logic, no Ansible)."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils import _profiles as p


def key(n):
    """A distinct, well-formed WireGuard key."""
    return base64.b64encode(bytes([n]) * 32).decode()


K_SERVER, K1, K2, K3 = key(1), key(2), key(3), key(4)

PROFILES = {
    "eu-exit": {"server": "exit1", "network": ["10.66.5.0/24", "fd66:5::/64"], "port": 51820,
                "dns": ["10.66.5.1"], "allow_lan": ["192.168.1.0/24"]},
    "eu-split": {"server": "exit1", "network": ["10.66.5.0/24", "fd66:5::/64"], "port": 51820,
                 "allowed_ips": ["10.0.0.0/8"], "killswitch": False},
    "provider": {"endpoint": "vpn.example.net:51820", "public_key": K3, "dns": ["10.64.0.1"]},
}
GROUPS = {"vpn_servers": ["exit1"], "vpn_hosts": ["client1", "client2"], "docker_gateways": [], "k8s_nodes": []}


# --------------------------------------------------------------------------- keys, CIDRs, endpoints

@pytest.mark.parametrize("value, ok", [
    (key(7), True),
    ("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", True),
    ("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg", False),   # missing padding
    ("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D==", False),  # 31 bytes
    (base64.b64encode(bytes(33)).decode(), False),
    ("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh=", False),  # not canonical (low bits set)
    ("-TIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", False),  # URL-safe alphabet
    (" " + key(7)[1:], False),
    ("", False),
    (None, False),
    (12, False),
])
def test_is_wireguard_key(value, ok):
    assert p.is_wireguard_key(value) is ok


@pytest.mark.parametrize("left, right, expected", [
    (["10.66.0.0/24"], ["192.168.1.0/24"], []),
    (["10.66.0.0/24"], ["10.66.0.128/25"], [["10.66.0.0/24", "10.66.0.128/25"]]),
    (["10.0.0.0/8"], ["10.66.0.0/24", "172.16.0.0/12"], [["10.0.0.0/8", "10.66.0.0/24"]]),
    (["fd66::/64"], ["fd66::/48"], [["fd66::/64", "fd66::/48"]]),
    (["fd66::/64", "10.66.0.0/24"], ["10.66.0.0/16"], [["10.66.0.0/24", "10.66.0.0/16"]]),
    ("10.66.0.0/24", "10.66.0.255", [["10.66.0.0/24", "10.66.0.255"]]),
    (["10.66.0.0/24"], ["10.66.1.0/24"], []),
    (["::/0"], ["0.0.0.0/0"], []),  # different families never overlap
])
def test_cidr_overlaps(left, right, expected):
    assert p.cidr_overlaps(left, right) == expected


def test_cidr_overlaps_bad_cidr_names_value():
    with pytest.raises(p.InventoryError, match="'10.66.0.0/33' is not a valid"):
        p.cidr_overlaps(["10.66.0.0/33"], [])


@pytest.mark.parametrize("value, expected", [
    ("vpn.example.net:51820", ("vpn.example.net", 51820)),
    ("198.51.100.7:443", ("198.51.100.7", 443)),
    ("[2001:db8::1]:51820", ("2001:db8::1", 51820)),
])
def test_parse_endpoint(value, expected):
    assert p.parse_endpoint(value, "endpoint") == expected


@pytest.mark.parametrize("value, message", [
    ("vpn.example.net", "use host:port"),
    ("2001:db8::1:51820", "use host:port"),
    ("vpn.example.net:0", "outside 1-65535"),
    ("vpn.example.net:70000", "outside 1-65535"),
    ("bad host:1", "not a valid host name"),
    ("[2001:db8::1::2]:1", "not an IPv4/IPv6 address"),
    ("vpn.example.net:51820\n", "use host:port"),
    ("vpn.example.net\n:51820", "not a valid host name"),
    ("vpn.example.net:\u0665\u0661\u0668\u0662\u0660", "use host:port"),
    ("[fe80::1%eth0\nPostUp=x]:51820", "use host:port"),
    ("vpn;reboot:51820", "not a valid host name"),
])
def test_parse_endpoint_errors(value, message):
    with pytest.raises(p.InventoryError, match=message) as err:
        p.parse_endpoint(value, "tunnelgate_profiles.x.endpoint", "h1")
    assert str(err.value).startswith("tunnelgate_profiles.x.endpoint (host h1): ")


@pytest.mark.parametrize("endpoint, port, expected", [
    ("172.30.5.10", 51820, "172.30.5.10:51820"),
    ("exit.example.net", 4500, "exit.example.net:4500"),
    ("exit.example.net:443", 51820, "exit.example.net:443"),
    ("fd42:7467:5::10", 51820, "[fd42:7467:5::10]:51820"),
    ("[fd42:7467:5::10]:1000", 51820, "[fd42:7467:5::10]:1000"),
])
def test_client_endpoint(endpoint, port, expected):
    assert p.client_endpoint(endpoint, port) == expected


def test_client_endpoint_missing_names_variable_and_server():
    with pytest.raises(p.InventoryError, match=r"^tunnelgate_endpoint \(host c1\): the server exit1 has no"):
        p.client_endpoint("", 51820, "c1", "exit1")


def test_host_networks_from_facts():
    facts = {
        "interfaces": ["lo", "eth0", "wg0", "br-1"],
        "lo": {"ipv4": {"address": "127.0.0.1", "netmask": "255.0.0.0"}},
        "eth0": {"ipv4": {"address": "172.30.5.11", "netmask": "255.255.255.0"},
                 "ipv4_secondaries": [{"address": "192.168.7.3", "netmask": "255.255.255.128"}],
                 "ipv6": [{"address": "fd42:7467:5::11", "prefix": "64", "scope": "global"},
                          {"address": "fe80::1", "prefix": "64", "scope": "link"}]},
        "wg0": {"ipv4": {"address": "10.66.5.2", "netmask": "255.255.255.255"}},
        "br_1": {"ipv4": {"address": "172.18.0.1", "netmask": "255.255.0.0"}},
    }
    assert p.host_networks(facts, ["wg0"]) == ["172.18.0.0/16", "172.30.5.0/24", "192.168.7.0/25",
                                               "fd42:7467:5::/64"]
    assert "10.66.5.2/32" in p.host_networks(facts)
    assert p.host_networks({}) == []


# --------------------------------------------------------------------------- profiles

def test_validate_profiles_fills_defaults():
    out = p.validate_profiles(PROFILES, "client1", ["exit1"])
    eu = out["eu-exit"]
    assert eu["kind"] == "server"
    assert eu["server_address"] == ["10.66.5.1/24", "fd66:5::1/64"]
    assert eu["allowed_ips"] == ["0.0.0.0/0", "::/0"] and eu["full_tunnel"] is True
    assert eu["killswitch"] is True and eu["persistent_keepalive"] == 25 and eu["mtu"] is None
    split = out["eu-split"]
    assert split["dns"] == ["10.66.5.1", "fd66:5::1"]  # default: the server's tunnel addresses
    assert split["full_tunnel"] is False and split["killswitch"] is False
    prov = out["provider"]
    assert prov["kind"] == "provider" and prov["port"] is None and prov["dns"] == ["10.64.0.1"]
    assert prov["public_key"] == K3


def test_server_address_override_and_missing_family_completed():
    out = p.normalize_profile("x", {"server": "s", "network": ["10.66.0.0/24", "fd66::/64"],
                                    "server_address": "10.66.0.254"})
    assert out["server_address"] == ["10.66.0.254/24", "fd66::1/64"]


BAD_PROFILES = [
    ({"x": {"network": "10.66.0.0/24"}}, "tunnelgate_profiles.x", "set server"),
    ({"x": {"server": "s", "endpoint": "a:1", "public_key": K1}}, "tunnelgate_profiles.x", "not both"),
    ({"x": {"server": "s"}}, "tunnelgate_profiles.x.network", "needs its tunnel network"),
    ({"x": {"server": "s", "network": "10.66.0.0/33"}}, "tunnelgate_profiles.x.network", "not a valid"),
    ({"x": {"server": "s", "network": "10.66.0.5/24"}}, "tunnelgate_profiles.x.network", "did you mean 10.66.0.0/24"),
    ({"x": {"server": "s", "network": "10.66.0.0/31"}}, "tunnelgate_profiles.x.network", "too small"),
    ({"x": {"server": "s", "network": ["10.66.0.0/24", "10.67.0.0/24"]}}, "tunnelgate_profiles.x.network",
     "at most one IPv4"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "port": 0}}, "tunnelgate_profiles.x.port", "outside"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "port": "http"}}, "tunnelgate_profiles.x.port",
     "not a port"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "port": "\u0665\u0661\u0668\u0662\u0660"}},
     "tunnelgate_profiles.x.port", "not a port"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "mtu": "\u0661\u0664\u0662\u0660"}},
     "tunnelgate_profiles.x.mtu", "not a whole number"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "dns": ["10.66.0.1/32"]}}, "tunnelgate_profiles.x.dns",
     "not an IPv4/IPv6 address"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "allowed_ips": []}}, "tunnelgate_profiles.x.allowed_ips",
     "routes nothing"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "allow_lan": ["10.66.0.0/16"]}},
     "tunnelgate_profiles.x.allow_lan", "overlaps the tunnel network"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "allow_lan": ["0.0.0.0/0"]}},
     "tunnelgate_profiles.x.allow_lan", "bypass the kill switch"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "killswitch": "maybe"}}, "tunnelgate_profiles.x.killswitch",
     "not a boolean"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "mtu": 100}}, "tunnelgate_profiles.x.mtu", "outside"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "netwrok": "x"}}, "tunnelgate_profiles.x.netwrok",
     "unknown field"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "server_address": "10.66.1.1"}},
     "tunnelgate_profiles.x.server_address", "not a host address"),
    ({"x": {"endpoint": "vpn:51820"}}, "tunnelgate_profiles.x.public_key", "needs the provider's public key"),
    ({"x": {"endpoint": "vpn:51820", "public_key": "abc"}}, "tunnelgate_profiles.x.public_key",
     "not a WireGuard public key"),
    ({"x": {"endpoint": "vpn", "public_key": K1}}, "tunnelgate_profiles.x.endpoint", "host:port"),
    ({"x": {"endpoint": "vpn:1", "public_key": K1, "port": 5}}, "tunnelgate_profiles.x.port", "unknown field"),
    ({"x": "eu"}, "tunnelgate_profiles.x", "a profile is a dictionary"),
    # a split tunnel whose DNS (by default the exit's tunnel address) its routes do not reach
    ({"x": {"server": "s", "network": "10.66.0.0/24", "allowed_ips": ["10.20.0.0/16"]}},
     "tunnelgate_profiles.x.dns", "10.66.0.1 is not reachable through the tunnel"),
    ({"x": {"server": "s", "network": "10.66.0.0/24", "allowed_ips": ["0.0.0.0/1"], "dns": ["192.0.2.53"]}},
     "tunnelgate_profiles.x.dns", "add 192.0.2.53/32 to allowed_ips"),
    ({"x": {"endpoint": "vpn:1", "public_key": K1, "allowed_ips": ["10.0.0.0/8", "fd00::/8"], "dns": ["2001:db8::1"]}},
     "tunnelgate_profiles.x.dns", "2001:db8::1 is not reachable"),
    ({"x": {"endpoint": "vpn:1", "public_key": K1, "allowed_ips": ["::/0"], "dns": ["10.64.0.1"]}},
     "tunnelgate_profiles.x.dns", "none of the DNS servers"),
    ({"a": {"server": "s", "network": "10.66.0.0/24"}, "b": {"server": "s", "network": "10.67.0.0/24"}},
     "tunnelgate_profiles.b.network", "must agree on network"),
    ({}, "tunnelgate_profiles", "no profiles defined"),
    ({"bad name": {"server": "s", "network": "10.66.0.0/24"}}, "tunnelgate_profiles", "not a valid profile name"),
    ({"eu\n": {"server": "s", "network": "10.66.0.0/24"}}, "tunnelgate_profiles", "not a valid profile name"),
]


@pytest.mark.parametrize("profiles, variable, message", BAD_PROFILES)
def test_validate_profiles_errors_name_variable_and_host(profiles, variable, message):
    with pytest.raises(p.InventoryError) as err:
        p.validate_profiles(profiles, "client9")
    assert str(err.value).startswith("%s (host client9): " % variable)
    assert message in str(err.value)


@pytest.mark.parametrize("raw, dns", [
    ({"server": "s", "network": "10.66.0.0/24", "allowed_ips": ["10.20.0.0/16", "10.66.0.1/32"]}, ["10.66.0.1"]),
    ({"server": "s", "network": "10.66.0.0/24", "allowed_ips": ["10.20.0.0/16"], "dns": []}, []),
    # the IPv6 server is left out by the roles (IPv6 is blocked when allowed_ips route none)
    ({"server": "s", "network": ["10.66.0.0/24", "fd66::/64"], "allowed_ips": ["0.0.0.0/0"]}, ["10.66.0.1", "fd66::1"]),
    ({"endpoint": "vpn:1", "public_key": K1, "allowed_ips": ["10.64.0.0/16"], "dns": ["10.64.0.1"]}, ["10.64.0.1"]),
])
def test_dns_routed_through_the_tunnel_is_accepted(raw, dns):
    assert p.normalize_profile("x", raw)["dns"] == dns


def test_server_must_be_in_vpn_servers():
    with pytest.raises(p.InventoryError, match=r"^tunnelgate_profiles.eu-exit.server \(host c1\): 'exit1' is not a "
                                               r"host of group vpn_servers \(known: other\)"):
        p.validate_profiles({"eu-exit": PROFILES["eu-exit"]}, "c1", ["other"])


@pytest.mark.parametrize("choice, profiles, expected", [
    ("eu-split", PROFILES, "eu-split"),
    (None, {"only": PROFILES["eu-exit"]}, "only"),
    ("", {"only": PROFILES["eu-exit"]}, "only"),
])
def test_profile_for_host(choice, profiles, expected):
    assert p.profile_for_host(profiles, "c1", choice, ["exit1"])["name"] == expected


@pytest.mark.parametrize("choice, message", [
    (None, "not set; choose one of the profiles: eu-exit, eu-split, provider"),
    ("eu", "'eu' is not a profile of tunnelgate_profiles (known: eu-exit, eu-split, provider)"),
])
def test_profile_for_host_errors(choice, message):
    with pytest.raises(p.InventoryError) as err:
        p.profile_for_host(PROFILES, "c1", choice)
    assert str(err.value) == "tunnelgate_profile (host c1): " + message


# --------------------------------------------------------------------------- allocation

NET = ["10.66.5.0/24", "fd66:5::/64"]
SRV = ["10.66.5.1/24", "fd66:5::1/64"]


def test_allocate_fresh_lowest_free_skipping_server():
    out = p.allocate_addresses(NET, ["a", "b"], SRV)
    assert out == {"a": ["10.66.5.2/32", "fd66:5::2/128"], "b": ["10.66.5.3/32", "fd66:5::3/128"]}


def test_allocate_explicit_wins_and_is_skipped_for_others():
    out = p.allocate_addresses(NET, ["a", "b", "c"], SRV, explicit={"b": "10.66.5.2/32"})
    assert out["b"] == ["10.66.5.2/32", "fd66:5::2/128"]
    assert out["a"] == ["10.66.5.3/32", "fd66:5::3/128"]
    assert out["c"] == ["10.66.5.4/32", "fd66:5::4/128"]


def test_allocate_explicit_ipv6_only_gets_ipv4_allocated():
    out = p.allocate_addresses(NET, ["a"], SRV, explicit={"a": ["fd66:5::99"]})
    assert out["a"] == ["10.66.5.2/32", "fd66:5::99/128"]


def test_adding_a_host_never_renumbers_another():
    first = p.allocate_addresses(NET, ["b", "d"], SRV)
    # 'a' and 'c' sort before/between the existing hosts; the old ones keep their addresses.
    second = p.allocate_addresses(NET, ["a", "b", "c", "d"], SRV, state=first)
    assert second["b"] == first["b"] and second["d"] == first["d"]
    assert second["a"] == ["10.66.5.4/32", "fd66:5::4/128"]
    assert second["c"] == ["10.66.5.5/32", "fd66:5::5/128"]


def test_new_hosts_fill_every_gap_in_order():
    # remembered hosts hold .3 and .6: the new ones take .2, .4, .5, .7 (the search resumes, never skips)
    state = {"x": ["10.66.5.3/32"], "y": ["10.66.5.6/32"]}
    out = p.allocate_addresses(["10.66.5.0/24"], ["a", "b", "c", "d", "x", "y"], ["10.66.5.1/24"], state=state)
    assert [out[h] for h in "abcd"] == [["10.66.5.2/32"], ["10.66.5.4/32"], ["10.66.5.5/32"], ["10.66.5.7/32"]]
    assert out["x"] == ["10.66.5.3/32"] and out["y"] == ["10.66.5.6/32"]


def test_full_network_is_reported_naming_the_host():
    hosts = ["h%d" % i for i in range(3)]
    with pytest.raises(p.InventoryError) as info:
        p.allocate_addresses(["10.66.5.0/30"], hosts, ["10.66.5.1/30"])
    assert "full" in str(info.value) and "h1" in str(info.value)


def test_removing_a_host_never_renumbers_another_and_frees_nothing_in_use():
    first = p.allocate_addresses(NET, ["a", "b", "c"], SRV)
    state = {h: v for h, v in first.items() if h != "a"}
    second = p.allocate_addresses(NET, ["b", "c"], SRV, state=state)
    assert second == {"b": first["b"], "c": first["c"]}
    third = p.allocate_addresses(NET, ["b", "c", "e"], SRV, state=second)
    assert third["e"] == first["a"]  # the freed address is reused by the next new host


def test_state_of_hosts_outside_the_list_is_reserved():
    out = p.allocate_addresses(NET, ["new"], SRV, state={"absent": ["10.66.5.2/32", "fd66:5::2/128"]})
    assert out == {"new": ["10.66.5.3/32", "fd66:5::3/128"]}


def test_state_address_outside_a_changed_network_is_replaced():
    out = p.allocate_addresses(["10.77.0.0/24"], ["a"], "10.77.0.1/24", state={"a": ["10.66.5.9/32"]})
    assert out == {"a": ["10.77.0.2/32"]}


def test_ipv4_only_network():
    out = p.allocate_addresses("10.66.5.0/30", ["a"], "10.66.5.1/30")
    assert out == {"a": ["10.66.5.2/32"]}


@pytest.mark.parametrize("explicit, state, message", [
    ({"a": "10.66.5.1/32"}, None, "tunnelgate_address (host a): 10.66.5.1 is the server's own tunnel address"),
    ({"a": "10.66.5.7", "b": "10.66.5.7"}, None,
     "tunnelgate_address (host b): 10.66.5.7 is already the tunnel address of host a"),
    ({"a": "10.66.6.7/32"}, None, "tunnelgate_address (host a): 10.66.6.7/32 is not a host address of the tunnel"),
    ({"a": "10.66.5.0"}, None, "is not a host address"),
    ({"a": ["10.66.5.7", "10.66.5.8"]}, None, "give at most one IPv4 address"),
    ({"a": "10.66.5.2"}, {"b": ["10.66.5.2/32"]},
     "tunnelgate_address (host a): 10.66.5.2 is remembered by the server as host b's address"),
])
def test_allocate_errors(explicit, state, message):
    with pytest.raises(p.InventoryError) as err:
        p.allocate_addresses(NET, ["a", "b"], SRV, state=state, explicit=explicit)
    assert message in str(err.value)


def test_allocate_full_network():
    with pytest.raises(p.InventoryError, match=r"host c\): tunnel network 10.66.5.0/30 is full"):
        p.allocate_addresses("10.66.5.0/30", ["b", "c"], "10.66.5.1/30")


# --------------------------------------------------------------------------- server plan

def hostvars(**extra):
    base = {
        "exit1": {},
        "client1": {"tunnelgate_profile": "eu-exit", "tunnelgate_public_key": K1},
        "client2": {"tunnelgate_profile": "eu-split", "tunnelgate_public_key": K2},
    }
    for host, values in extra.items():
        base.setdefault(host, {}).update(values)
    return base


def test_server_plan_fresh():
    plan = p.server_plan(hostvars(), "exit1", GROUPS, PROFILES, None, K_SERVER)
    assert plan["peers"] == [
        {"public_key": K1, "allowed_ips": ["10.66.5.2/32", "fd66:5::2/128"], "description": "client1"},
        {"public_key": K2, "allowed_ips": ["10.66.5.3/32", "fd66:5::3/128"], "description": "client2"},
    ]
    assert plan["state"]["public_key"] == K_SERVER
    assert plan["state"]["peers"]["client2"]["profile"] == "eu-split"
    assert plan["addresses_self"] == SRV and plan["pending"] == [] and plan["removed"] == []
    assert sorted(plan["profiles"]) == ["eu-exit", "eu-split"]


def test_server_plan_keeps_peers_of_hosts_outside_the_play():
    first = p.server_plan(hostvars(), "exit1", GROUPS, PROFILES, None, K_SERVER)
    # --limit exit1,client1: client2 did not run its key step, so no tunnelgate_public_key fact
    hv = hostvars()
    del hv["client2"]["tunnelgate_public_key"]
    second = p.server_plan(hv, "exit1", GROUPS, PROFILES, first["state"], K_SERVER)
    assert second["peers"] == first["peers"] and second["state"] == first["state"]


def test_server_plan_adding_third_client_keeps_addresses():
    first = p.server_plan(hostvars(), "exit1", GROUPS, PROFILES, None, K_SERVER)
    groups = dict(GROUPS, vpn_hosts=["client0", "client1", "client2"])
    hv = hostvars(client0={"tunnelgate_profile": "eu-exit", "tunnelgate_public_key": K3})
    second = p.server_plan(hv, "exit1", groups, PROFILES, first["state"], K_SERVER)
    assert second["addresses"]["client1"] == first["addresses"]["client1"]
    assert second["addresses"]["client2"] == first["addresses"]["client2"]
    assert second["addresses"]["client0"] == ["10.66.5.4/32", "fd66:5::4/128"]
    assert len(second["peers"]) == 3


def test_server_plan_key_rotation_updates_peer_keeps_address():
    first = p.server_plan(hostvars(), "exit1", GROUPS, PROFILES, None, K_SERVER)
    second = p.server_plan(hostvars(client1={"tunnelgate_public_key": K3}), "exit1", GROUPS, PROFILES,
                           first["state"], K_SERVER)
    peer = next(x for x in second["peers"] if x["description"] == "client1")
    assert peer["public_key"] == K3 and peer["allowed_ips"] == first["addresses"]["client1"]


def test_server_plan_removed_from_inventory_is_pruned_or_kept():
    first = p.server_plan(hostvars(), "exit1", GROUPS, PROFILES, None, K_SERVER)
    groups = dict(GROUPS, vpn_hosts=["client2"])
    pruned = p.server_plan(hostvars(), "exit1", groups, PROFILES, first["state"], K_SERVER)
    assert pruned["removed"] == ["client1"] and [x["description"] for x in pruned["peers"]] == ["client2"]
    kept = p.server_plan(hostvars(), "exit1", groups, PROFILES, first["state"], K_SERVER, prune=False)
    assert kept["removed"] == [] and len(kept["peers"]) == 2
    assert pruned["addresses"]["client2"] == first["addresses"]["client2"]


def test_server_plan_pending_without_key_and_other_profiles_ignored():
    groups = dict(GROUPS, vpn_hosts=["client1", "client2", "client3", "client4"])
    hv = hostvars(client3={"tunnelgate_profile": "eu-exit"},
                  client4={"tunnelgate_profile": "provider", "tunnelgate_address": "10.64.0.5/32"})
    plan = p.server_plan(hv, "exit1", groups, PROFILES, None, K_SERVER)
    assert plan["pending"] == ["client3"]
    assert "client4" not in plan["addresses"] and len(plan["peers"]) == 2


def test_server_plan_client_groups_beyond_vpn_hosts():
    groups = dict(GROUPS, docker_gateways=["gw1"], k8s_nodes=["node1", "client1"])
    hv = hostvars(gw1={"tunnelgate_profile": "eu-exit", "tunnelgate_public_key": key(9)},
                  node1={"tunnelgate_profile": "eu-exit", "tunnelgate_public_key": key(10)})
    plan = p.server_plan(hv, "exit1", groups, PROFILES, None, K_SERVER)
    assert sorted(plan["addresses"]) == ["client1", "client2", "gw1", "node1"]


def test_server_plan_host_vpn_state_absent_is_no_peer_and_releases_its_address():
    groups = dict(GROUPS, vpn_hosts=["client0", "client1", "client2"])
    hv = hostvars(client0={"tunnelgate_profile": "eu-exit", "tunnelgate_public_key": K3})
    first = p.server_plan(hv, "exit1", groups, PROFILES, None, K_SERVER)
    assert first["addresses"]["client1"] == ["10.66.5.3/32", "fd66:5::3/128"]
    # client1 leaves the VPN (still in the inventory, still with its key fact and profile)
    hv["client1"]["host_vpn_state"] = "absent"
    for prune in (True, False):
        second = p.server_plan(hv, "exit1", groups, PROFILES, first["state"], K_SERVER, prune=prune)
        assert [x["description"] for x in second["peers"]] == ["client0", "client2"], prune
        assert "client1" not in second["state"]["peers"] and "client1" not in second["addresses"]
        assert second["removed"] == ["client1"] and second["pending"] == []
        # nobody is renumbered
        assert second["addresses"]["client0"] == first["addresses"]["client0"]
        assert second["addresses"]["client2"] == first["addresses"]["client2"]
    # the released address goes to the next new host
    groups = dict(groups, vpn_hosts=["client0", "client1", "client2", "client9"])
    hv["client9"] = {"tunnelgate_profile": "eu-exit", "tunnelgate_public_key": key(9)}
    third = p.server_plan(hv, "exit1", groups, PROFILES, second["state"], K_SERVER)
    assert third["addresses"]["client9"] == first["addresses"]["client1"]
    assert third["removed"] == [] and "client1" not in third["addresses"]


def test_server_plan_leaving_host_needs_no_valid_profile_or_key():
    hv = hostvars(client2={"host_vpn_state": "absent", "tunnelgate_profile": "gone-profile",
                           "tunnelgate_public_key": "not a key"})
    plan = p.server_plan(hv, "exit1", GROUPS, PROFILES, None, K_SERVER)
    assert [x["description"] for x in plan["peers"]] == ["client1"]


def test_server_plan_host_in_two_client_groups_stays_while_one_role_is_present():
    groups = dict(GROUPS, docker_gateways=["client1"])
    plan = p.server_plan(hostvars(client1={"host_vpn_state": "absent"}), "exit1", groups, PROFILES, None, K_SERVER)
    assert "client1" in plan["addresses"]
    plan = p.server_plan(hostvars(client1={"host_vpn_state": "absent", "docker_gateway_state": "absent"}),
                         "exit1", groups, PROFILES, None, K_SERVER)
    assert "client1" not in plan["addresses"]


@pytest.mark.parametrize("value", ["gone", "", 1, True, ["absent"]])
def test_server_plan_bad_host_vpn_state_names_variable_and_host(value):
    with pytest.raises(p.InventoryError) as err:
        p.server_plan(hostvars(client2={"host_vpn_state": value}), "exit1", GROUPS, PROFILES, None, K_SERVER)
    assert str(err.value).startswith("host_vpn_state (host client2): ")
    assert "present or absent" in str(err.value)


@pytest.mark.parametrize("extra, message", [
    ({"client2": {"tunnelgate_public_key": K1}},
     "tunnelgate_public_key (host client2): host client1 has the same public key"),
    ({"client1": {"tunnelgate_public_key": K_SERVER}}, "tunnelgate_public_key (host client1): is the server's own"),
    ({"client1": {"tunnelgate_public_key": "nope"}}, "tunnelgate_public_key (host client1): 'nope' is not a"),
    ({"client2": {"tunnelgate_profile": "nope"}}, "tunnelgate_profile (host client2): 'nope' is not a profile"),
    ({"client2": {"tunnelgate_address": "10.66.5.1"}},
     "tunnelgate_address (host client2): 10.66.5.1 is the server's own tunnel address"),
])
def test_server_plan_errors_name_variable_and_host(extra, message):
    with pytest.raises(p.InventoryError) as err:
        p.server_plan(hostvars(**extra), "exit1", GROUPS, PROFILES, None, K_SERVER)
    assert message in str(err.value)


@pytest.mark.parametrize("endpoint, message", [
    ("172.30.13.10;reboot", "is not a valid host name or address"),
    ("exit.lab\nPostUp = touch /tmp/x", "is not a valid host name or address"),
    ("172.30.13.10:99999", "outside 1-65535"),
])
def test_server_plan_checks_the_servers_endpoint(endpoint, message):
    with pytest.raises(p.InventoryError) as err:
        p.server_plan(hostvars(exit1={"tunnelgate_endpoint": endpoint}), "exit1", GROUPS, PROFILES, None, K_SERVER)
    assert str(err.value).startswith("tunnelgate_endpoint (host exit1): ") and message in str(err.value)


@pytest.mark.parametrize("extra, message", [
    ({"client1": {"tunnelgate_address": "10.66.5.20"}, "client2": {"tunnelgate_address": "10.66.5.20"}},
     "tunnelgate_address (host client2): 10.66.5.20 is already the tunnel address of host client1"),
    ({"client1": {"tunnelgate_address": "10.66.5.1"}}, "tunnelgate_address (host client1): 10.66.5.1 is the server's"),
    ({"client2": {"tunnelgate_address": "10.99.0.5"}}, "tunnelgate_address (host client2): 10.99.0.5 is not a host"),
])
def test_server_plan_checks_explicit_addresses_of_hosts_without_a_key_yet(extra, message):
    hv = hostvars(**extra)
    for host in ("client1", "client2"):
        del hv[host]["tunnelgate_public_key"]  # site.yml's pre-flight: no key facts yet
    with pytest.raises(p.InventoryError) as err:
        p.server_plan(hv, "exit1", GROUPS, PROFILES, None, None)
    assert message in str(err.value)


def test_server_plan_for_a_server_without_profile():
    with pytest.raises(p.InventoryError, match=r"^tunnelgate_profiles \(host exit2\): no profile names this server"):
        p.server_plan(hostvars(), "exit2", dict(GROUPS, vpn_servers=["exit1", "exit2"]), PROFILES)


def test_server_plan_rejects_foreign_state():
    with pytest.raises(p.InventoryError, match="not a tunnelgate state"):
        p.server_plan(hostvars(), "exit1", GROUPS, PROFILES, {"peers": []}, K_SERVER)


# --------------------------------------------------------------------------- client plan

def test_client_plan_self_hosted_reads_server_state():
    plan = p.server_plan(hostvars(), "exit1", GROUPS, PROFILES, None, K_SERVER)
    profile = p.profile_for_host(PROFILES, "client1", "eu-exit")
    out = p.client_plan(profile, "client1", plan["state"], None, "172.30.5.10")
    assert out == {"addresses": ["10.66.5.2/32", "fd66:5::2/128"], "server_public_key": K_SERVER,
                   "endpoint": "172.30.5.10:51820", "known": True, "registered_key": K1}


def test_client_plan_unknown_to_server_uses_explicit_address():
    profile = p.profile_for_host(PROFILES, "client9", "eu-exit")
    out = p.client_plan(profile, "client9", None, "10.66.5.50", "exit.example.net")
    assert out["known"] is False and out["addresses"] == ["10.66.5.50/32"] and out["server_public_key"] is None


def test_client_plan_provider():
    profile = p.profile_for_host(PROFILES, "c", "provider")
    out = p.client_plan(profile, "c", None, "10.64.3.7/32")
    assert out == {"addresses": ["10.64.3.7/32"], "server_public_key": K3, "endpoint": "vpn.example.net:51820",
                   "known": True, "pending": None}


@pytest.mark.parametrize("address, key_created, known, pending", [
    # the provider assigns the address when the key is registered: until then the host is pending
    (None, False, False, "address"),
    ("", True, False, "address"),
    ([], False, False, "address"),
    # a key made by this run cannot be registered yet, even with an address already set
    ("10.64.3.7/32", True, False, "key"),
    ("10.64.3.7/32", False, True, None),
])
def test_client_plan_provider_pending_until_registered(address, key_created, known, pending):
    profile = p.profile_for_host(PROFILES, "c", "provider")
    out = p.client_plan(profile, "c", None, address, None, key_created)
    assert (out["known"], out["pending"]) == (known, pending)
    assert out["server_public_key"] == K3 and out["endpoint"] == "vpn.example.net:51820"


def test_client_plan_provider_checks_a_given_address():
    profile = p.profile_for_host(dict(PROFILES, provider=dict(PROFILES["provider"], network=["10.64.0.0/16"])),
                                 "c", "provider")
    with pytest.raises(p.InventoryError, match=r"^tunnelgate_address \(host c\): 10.65.0.1/32 is not a host address"):
        p.client_plan(profile, "c", None, "10.65.0.1/32")


# --------------------------------------------------------------------------- a role's own inputs

@pytest.mark.parametrize("kind, value", [
    ("interface", "wg0"), ("interface", "tg-exit.1"), ("interface", "a" * 15),
    ("path", "/etc/wireguard/keys/wg0.key"), ("path", "/srv/keys/host@site,1.key"),
    ("fwmark", 51820), ("fwmark", 1), ("seconds", 30), ("state", "absent"),
])
def test_check_inputs_accepts(kind, value):
    assert p.check_inputs({"v": [kind, value]}, "h1") == {"v": value}


@pytest.mark.parametrize("kind, value, message", [
    ("interface", "wg0;reboot", "is not an interface name"),
    ("interface", "a" * 16, "is not an interface name"),
    ("interface", "wg 0", "is not an interface name"),
    ("interface", "", "is not an interface name"),
    ("interface", "..", "is not an interface name"),
    ("interface", 7, "is not an interface name"),
    ("path", "etc/wireguard/wg0.key", "is not an absolute path"),
    ("path", "/etc/wireguard/k;touch /tmp/pwned", "';'"),
    ("path", "/etc/wireguard/$(reboot)", "'$'"),
    ("path", "/etc/wireguard/`id`", "'`'"),
    ("path", "/etc/wireguard/a\nPostUp=reboot", "'\\n'"),
    ("path", "/etc/wire guard/k", "' '"),
    ("path", "/etc/wireguard/../shadow", "is not a plain path"),
    ("path", "/etc/wireguard/keys/", "is not a plain path"),
    ("path", "/etc/wireguard/k\u0660", "contains characters"),
    ("fwmark", 0, "outside 1-4294967295"),
    ("fwmark", 2 ** 32, "outside 1-4294967295"),
    ("fwmark", "\u0661\u0662", "not a whole number"),
    ("seconds", 0, "outside 1-86400"),
    ("state", "gone", "is not one of present, absent"),
])
def test_check_inputs_rejects_naming_variable_and_host(kind, value, message):
    with pytest.raises(p.InventoryError) as err:
        p.check_inputs({"host_vpn_x": [kind, value]}, "client1")
    assert str(err.value).startswith("host_vpn_x (host client1): ")
    assert message in str(err.value)


def test_check_inputs_rejects_an_unknown_kind():
    with pytest.raises(p.InventoryError, match="kind one of"):
        p.check_inputs({"v": ["colour", "red"]}, "h1")


def test_the_shipped_example_profiles_validate():
    """examples/: every profile passes validation (eu-split used to default its DNS to an unrouted address)."""
    import os
    import yaml
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "examples", "inventory")
    with open(os.path.join(root, "group_vars", "all.yml"), encoding="utf-8") as handle:
        profiles = yaml.safe_load(handle)["tunnelgate_profiles"]
    with open(os.path.join(root, "hosts.yml"), encoding="utf-8") as handle:
        servers = list(yaml.safe_load(handle)["all"]["children"]["vpn_servers"]["hosts"])
    checked = p.validate_profiles(profiles, "kiosk", servers)
    assert checked["eu-split"]["dns"][0] == "10.66.0.1" and "10.66.0.1/32" in checked["eu-split"]["allowed_ips"]
