# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""k8s_node_egress: pod CIDR discovery, the Cilium check and the validated egress plan (pure logic)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils import _k8s as k
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import InventoryError

FLANNEL = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
FLANNEL_DUAL = FLANNEL + "FLANNEL_IPV6_NETWORK=fd44::/56\nFLANNEL_IPV6_SUBNET=fd44:0:0:1::1/64\n"
BRIDGE_CONF = json.dumps({"cniVersion": "0.4.0", "name": "lab", "type": "bridge", "bridge": "cni0",
                          "ipam": {"type": "host-local", "subnet": "10.244.2.0/24"}})
RANGES = [[{"subnet": "10.244.3.0/24"}], [{"subnet": "fd44:0:0:3::/64"}]]
RANGES_CONFLIST = json.dumps({"cniVersion": "0.4.0", "name": "k8s", "plugins": [
    {"type": "bridge", "ipam": {"type": "host-local", "ranges": RANGES}},
    {"type": "portmap", "capabilities": {"portMappings": True}}]})
CALICO_CONFLIST = json.dumps({"name": "k8s-pod-network", "plugins": [{"type": "calico", "ipam": {"type": "calico-ipam"}}]})
TEMPLATE_CONF = json.dumps({"type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": "{{.PodCIDR}}"}]]}})


@pytest.mark.parametrize("files, cidrs, source", [
    ({"/run/flannel/subnet.env": FLANNEL}, ["10.244.1.0/24"], "/run/flannel/subnet.env"),
    ({"/run/flannel/subnet.env": FLANNEL_DUAL}, ["10.244.1.0/24", "fd44:0:0:1::/64"], "/run/flannel/subnet.env"),
    # flannel wins over a CNI configuration
    ({"/etc/cni/net.d/10-bridge.conf": BRIDGE_CONF, "/run/flannel/subnet.env": FLANNEL}, ["10.244.1.0/24"],
     "/run/flannel/subnet.env"),
    ({"/etc/cni/net.d/10-bridge.conf": BRIDGE_CONF}, ["10.244.2.0/24"], "/etc/cni/net.d/10-bridge.conf"),
    ({"/etc/cni/net.d/10-k8s.conflist": RANGES_CONFLIST}, ["10.244.3.0/24", "fd44:0:0:3::/64"],
     "/etc/cni/net.d/10-k8s.conflist"),
    # files without a subnet are skipped: the first file (sorted) that names one wins
    ({"/etc/cni/net.d/05-calico.conflist": CALICO_CONFLIST, "/etc/cni/net.d/10-bridge.conf": BRIDGE_CONF,
      "/etc/cni/net.d/20-k8s.conflist": RANGES_CONFLIST}, ["10.244.2.0/24"], "/etc/cni/net.d/10-bridge.conf"),
    ({"/etc/cni/net.d/00-template.conf": TEMPLATE_CONF, "/etc/cni/net.d/10-bridge.conf": BRIDGE_CONF},
     ["10.244.2.0/24"], "/etc/cni/net.d/10-bridge.conf"),
])
def test_discover_pod_cidrs(files, cidrs, source):
    assert k.discover_pod_cidrs(files, "node1") == {"cidrs": cidrs, "source": source}


@pytest.mark.parametrize("files", [
    {},
    {"/run/flannel/subnet.env": "FLANNEL_MTU=1450\n"},
    {"/etc/cni/net.d/10-calico.conflist": CALICO_CONFLIST},
    {"/etc/cni/net.d/broken.conf": "{not json"},
    {"/etc/cni/net.d/00-template.conf": TEMPLATE_CONF},
])
def test_discover_pod_cidrs_nothing_found_names_the_variable(files):
    with pytest.raises(InventoryError) as err:
        k.discover_pod_cidrs(files, "node1")
    assert str(err.value).startswith("k8s_node_egress_pod_cidr (host node1): not given and not found")
    assert "/run/flannel/subnet.env" in str(err.value) and "/etc/cni/net.d" in str(err.value)


def test_discover_pod_cidrs_malformed_subnet():
    with pytest.raises(InventoryError, match=r"k8s_node_egress_pod_cidr \(host node1\).*not a valid"):
        k.discover_pod_cidrs({"/run/flannel/subnet.env": "FLANNEL_SUBNET=10.244.300.1/24\n"}, "node1")


@pytest.mark.parametrize("links, config, result", [
    (["lo", "eth0", "cni0"], None, "none"),
    (["lo", "eth0", "cilium_host", "cilium_net"], "#define ENABLE_IPV4 1\n#define ENABLE_HOST_LEGACY_ROUTING 1\n",
     "legacy"),
])
def test_cilium_accepted(links, config, result):
    assert k.cilium_host_routing(links, config, "node1") == result


@pytest.mark.parametrize("config, why", [
    (None, "not readable"),
    ("#define ENABLE_IPV4 1\n#define ENABLE_HOST_ROUTING 1\n", "does not define ENABLE_HOST_LEGACY_ROUTING"),
    ("// #define ENABLE_HOST_LEGACY_ROUTING 1\n", "does not define"),
])
def test_cilium_ebpf_host_routing_refused(config, why):
    with pytest.raises(InventoryError) as err:
        k.cilium_host_routing(["eth0", "cilium_host"], config, "node1")
    assert str(err.value).startswith("k8s_node_egress_state (host node1): Cilium runs on this node")
    assert why in str(err.value) and "hostLegacyRouting" in str(err.value)


def inputs(**changes):
    base = {"pod_cidrs": ["10.244.1.0/24"], "cluster_cidrs": ["10.244.0.0/16"], "service_cidrs": ["10.96.0.0/12"],
            "exclude": ["192.0.2.10/32"], "local_networks": ["172.30.7.0/24", "fd42:7467:7::/64", "10.244.1.0/24",
                                                             "10.66.7.0/24"],
            "tunnel_networks": ["10.66.7.0/24", "fd66:7::/64"], "allow_lan": [], "pod_interfaces": ["cni0", "cali+"],
            "tunnel_interface": "wg-pods", "table": 51830, "mark": "0x2000", "mark_mask": 0x2000, "priority": 9900,
            "listen_port": None, "host_vpn": None}
    base.update(changes)
    return base


def test_plan():
    plan = k.egress_plan(inputs(), "node1")
    assert plan["pod_cidrs"] == ["10.244.1.0/24"]
    # cluster, services, exclude, then the node's own networks without its pod bridge and the tunnel
    assert plan["exclude"] == ["10.244.0.0/16", "10.96.0.0/12", "192.0.2.10/32", "172.30.7.0/24", "fd42:7467:7::/64"]
    assert plan["sources"] == ["10.244.1.0/24", "cni0", "cali+"]
    assert plan["forward"] == [
        {"in_interface": "cni0", "out_interface": "wg-pods", "sources": ["10.244.1.0/24"], "masquerade": True},
        {"in_interface": "cali+", "out_interface": "wg-pods", "sources": ["10.244.1.0/24"], "masquerade": False}]
    assert (plan["table"], plan["mark"], plan["mask"], plan["priority"]) == (51830, 0x2000, 0x2000, 9900)
    assert plan["ipv6_pods"] is False


def test_plan_dual_stack_pods():
    plan = k.egress_plan(inputs(pod_cidrs=["10.244.1.0/24", "fd44:0:0:1::/64"],
                                cluster_cidrs=["10.244.0.0/16", "fd44::/56"]), "n")
    assert plan["ipv6_pods"] is True and plan["nat_sources"] == ["10.244.1.0/24", "fd44:0:0:1::/64"]


def shared(fwmark=251, inbound_mark_mask=0x1000, interface="wg0", **changes):
    """Inputs of a node also in vpn_hosts (host_vpn present), valid unless changed."""
    base = {"host_vpn": {"interface": interface, "fwmark": fwmark, "inbound_mark_mask": inbound_mark_mask},
            "exclude": [], "profile": "lab", "killswitch": True, "node_networks": ["172.30.7.0/24"],
            "allow_lan": ["172.30.7.0/24", "10.244.0.0/16"], "key_regenerate": "never"}
    base.update(changes)
    return base


@pytest.mark.parametrize("changes, variable, text", [
    ({"pod_cidrs": []}, "k8s_node_egress_pod_cidr", "no pod CIDR"),
    ({"pod_cidrs": ["10.244.1.0/33"]}, "k8s_node_egress_pod_cidr", "not a valid"),
    ({"pod_cidrs": ["10.244.1.1/24"]}, "k8s_node_egress_pod_cidr", "host bits set"),
    ({"pod_cidrs": ["10.245.1.0/24"]}, "k8s_node_egress_pod_cidr", "outside k8s_node_egress_cluster_cidrs"),
    ({"pod_cidrs": ["fd44:0:0:1::/64"]}, "k8s_node_egress_pod_cidr", "outside k8s_node_egress_cluster_cidrs"),
    ({"cluster_cidrs": []}, "k8s_node_egress_cluster_cidrs", "name the pod CIDRs of the whole cluster"),
    ({"cluster_cidrs": "0.0.0.0/0"}, "k8s_node_egress_cluster_cidrs", "covers every address"),
    ({"cluster_cidrs": ["10.0.0.0/8"], "pod_cidrs": ["10.66.7.0/24"]}, "k8s_node_egress_pod_cidr",
     "overlaps the tunnel network 10.66.7.0/24"),
    ({"service_cidrs": ["10.66.0.0/16"]}, "k8s_node_egress_service_cidrs", "overlaps the tunnel network"),
    ({"service_cidrs": ["10.244.128.0/20"]}, "k8s_node_egress_service_cidrs", "overlaps the cluster CIDR"),
    ({"exclude": ["fd66:7::/80"]}, "k8s_node_egress_exclude", "overlaps the tunnel network fd66:7::/64"),
    ({"exclude": ["example.com"]}, "k8s_node_egress_exclude", "not a valid"),
    ({"allow_lan": ["10.96.0.0/24"]}, "k8s_node_egress_service_cidrs", "overlaps the profile's allow_lan"),
    ({"pod_interfaces": []}, "k8s_node_egress_pod_interfaces", "name the interfaces"),
    ({"pod_interfaces": ["cni0", "a b"]}, "k8s_node_egress_pod_interfaces", "not an interface name"),
    ({"pod_interfaces": ["wg-pods"]}, "k8s_node_egress_pod_interfaces", "is the tunnel interface"),
    ({"table": 200}, "k8s_node_egress_table", "Calico"),
    ({"table": 2004}, "k8s_node_egress_table", "Cilium"),
    ({"table": 201}, "k8s_node_egress_table", "Cilium (tables 200-202: IPsec, WireGuard, VTEP)"),
    ({"table": 254}, "k8s_node_egress_table", "the kernel"),
    ({"table": 255}, "k8s_node_egress_table", "the kernel"),
    ({"table": "x"}, "k8s_node_egress_table", "not a whole number"),
    ({"mark": 0x4000, "mark_mask": 0x4000}, "k8s_node_egress_mark_mask", "kube-proxy's masquerade mark"),
    ({"mark": 0x8000, "mark_mask": 0x8000}, "k8s_node_egress_mark_mask", "drop mark 0x8000"),
    ({"mark": 0x100, "mark_mask": 0x100}, "k8s_node_egress_mark_mask", "Cilium"),
    ({"mark": 0x10000, "mark_mask": 0x10000}, "k8s_node_egress_mark_mask", "Calico"),
    ({"mark": 0xCA6C, "mark_mask": 0xFFFF}, "k8s_node_egress_mark_mask", "kube-proxy"),
    ({"mark": 0x3000, "mark_mask": 0x2000}, "k8s_node_egress_mark", "bits outside"),
    ({"mark": 0}, "k8s_node_egress_mark", "outside 1-"),
    ({"mark": "0xzz"}, "k8s_node_egress_mark", "not a number"),
    ({"priority": 32765}, "k8s_node_egress_priority", "outside 1-32000"),
    ({"listen_port": 51820}, "k8s_node_egress_listen_port", "Calico's WireGuard"),
    # a node also in vpn_hosts: its pods ride host_vpn's tunnel (see below)
    (shared(exclude=["192.0.2.10/32"]), "k8s_node_egress_exclude", "could not bypass it"),
    (shared(key_regenerate="always"), "k8s_node_egress_key_regenerate", "rotate_keys.yml"),
    (shared(fwmark=51820), "host_vpn_fwmark", "kube-proxy's masquerade mark 0x4000"),
    (shared(fwmark=0x8001), "host_vpn_fwmark", "drop mark 0x8000"),
    (shared(fwmark=0x0A00), "host_vpn_fwmark", "Cilium"),
    (shared(fwmark=0x10000), "host_vpn_fwmark", "Calico's default mark mask"),
    (shared(fwmark=100), "host_vpn_fwmark", "Calico (route tables 1-250)"),
    (shared(fwmark=254), "host_vpn_fwmark", "the kernel"),
    (shared(fwmark="0xzz"), "host_vpn_fwmark", "not a number"),
    (shared(fwmark=0x20FB), "k8s_node_egress_mark_mask", "host_vpn_fwmark"),
    (shared(inbound_mark_mask=0x3000), "k8s_node_egress_mark_mask", "host_vpn's inbound_mark_mask"),
    (shared(inbound_mark_mask=0x4000), "host_vpn_inbound_mark_mask", "kube-proxy"),
    (shared(allow_lan=["172.30.7.0/24"]), "tunnelgate_profiles.lab.allow_lan", "add 10.244.0.0/16"),
    (shared(allow_lan=["10.244.0.0/16"]), "tunnelgate_profiles.lab.allow_lan", "add 172.30.7.0/24"),
    (shared(interface="a" * 16), "host_vpn_interface", "not an interface name"),
    (shared(pod_interfaces=["wg0"]), "k8s_node_egress_pod_interfaces", "is the tunnel interface"),
])
def test_plan_refuses_with_the_variable_and_the_host(changes, variable, text):
    with pytest.raises(InventoryError) as err:
        k.egress_plan(inputs(**changes), "node1")
    message = str(err.value)
    assert message.startswith("%s (host node1): " % variable), message
    assert text in message, message


def test_plan_alone_uses_its_own_tunnel():
    plan = k.egress_plan(inputs(), "node1")
    assert plan["shared"] is False and plan["tunnel_interface"] == "wg-pods"


def test_a_node_also_in_vpn_hosts_rides_the_host_vpn_tunnel():
    """One peer per host on the server: the pods use host_vpn's interface and routing, not a tunnel of their own."""
    plan = k.egress_plan(inputs(**shared()), "node1")
    assert plan["shared"] is True and plan["tunnel_interface"] == "wg0"
    assert plan["forward"] == [
        {"in_interface": "cni0", "out_interface": "wg0", "sources": ["10.244.1.0/24"], "masquerade": True},
        {"in_interface": "cali+", "out_interface": "wg0", "sources": ["10.244.1.0/24"], "masquerade": False}]
    # the forward kill switch still confines the pod CIDRs and interfaces; the cluster and the node stay local
    assert plan["sources"] == ["10.244.1.0/24", "cni0", "cali+"]
    assert plan["exclude"] == ["10.244.0.0/16", "10.96.0.0/12", "172.30.7.0/24", "fd42:7467:7::/64"]


def test_a_node_also_in_vpn_hosts_whose_default_route_is_the_tunnel():
    """With host_vpn up the facts' default route is the tunnel's: its network is no node network to require."""
    plan = k.egress_plan(inputs(**shared(node_networks=["10.66.7.0/24"], allow_lan=["10.244.0.0/16"])), "node1")
    assert plan["shared"] is True


def test_a_node_also_in_vpn_hosts_without_kill_switch_needs_no_allow_lan():
    plan = k.egress_plan(inputs(**shared(killswitch=False, allow_lan=[])), "node1")
    assert plan["shared"] is True


def test_a_node_also_in_vpn_hosts_with_an_ipv6_cluster_needs_it_in_allow_lan():
    changes = shared(pod_cidrs=["10.244.1.0/24", "fd44:0:0:1::/64"], cluster_cidrs=["10.244.0.0/16", "fd44::/56"])
    with pytest.raises(InventoryError, match="add fd44::/56"):
        k.egress_plan(inputs(**changes), "node1")
    changes["allow_lan"] = changes["allow_lan"] + ["fd44::/56"]
    assert k.egress_plan(inputs(**changes), "node1")["ipv6_pods"] is True
