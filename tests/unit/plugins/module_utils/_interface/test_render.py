# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rendering: the wg-quick file (no key material, Table = off, hooks) and the systemd drop-in."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.base import KERNEL_ONLY_SENTINEL
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.desired import build_desired
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.render import (
    previous_tables,
    render_desired,
    render_dropin,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import parse_config

from .fakes import PEER_A, params, peer


def full_tunnel_params(**extra):
    return params(addresses=["10.66.3.2/32", "fd66:3::2/128"], listen_port=None, mtu=1380, dns=["10.66.3.1"],
                  routing={"sources": ["172.18.0.0/16"], "exclude": ["192.168.0.0/16"], "priority": 10000},
                  peers=[peer(PEER_A, ["0.0.0.0/0", "::/0"], endpoint="vpn.example.org:51820", persistent_keepalive=25,
                              preshared_key_path="/etc/wireguard/keys/a.psk", description="exit")], **extra)


def test_render_has_no_key_material_and_table_off():
    desired = build_desired(full_tunnel_params())
    text = render_desired(desired)
    conf = parse_config(text)
    assert conf.interface_value("Table") == "off"
    assert conf.interface_value("PrivateKey") is None
    assert all(k.lower() != "presharedkey" for p in conf.peers for k, dummy_value in p["items"])
    post_up = conf.interface_values("PostUp")
    assert post_up[0] == "wg set %i private-key /etc/wireguard/keys/wg0.key"
    assert "wg set %%i peer %s preshared-key /etc/wireguard/keys/a.psk" % PEER_A in post_up
    # the sysctl is only written when it differs (read-only /proc/sys in containers)
    assert ("grep -qx 1 /proc/sys/net/ipv4/conf/all/src_valid_mark || "
            "sysctl -q -w net.ipv4.conf.all.src_valid_mark=1") in post_up
    assert "ip -4 route replace 0.0.0.0/0 dev %i table 51820" in post_up
    assert "ip -4 route replace throw 192.168.0.0/16 table 51820" in post_up
    assert "ip -4 rule add not fwmark 51820 table 51820 priority 10001" in post_up
    assert "ip -4 rule add from 172.18.0.0/16 table 51820 priority 10002" in post_up
    post_down = conf.interface_values("PostDown")
    assert "ip -4 rule del from 172.18.0.0/16 table 51820 priority 10002 || true" in post_down
    assert "ip -4 route del throw 192.168.0.0/16 table 51820 || true" in post_down
    assert conf.meta["table"] == "51820"
    assert all("#" not in value for dummy_key, value in conf.interface)  # wg-quick would cut it as a comment


def test_render_round_trips_through_the_parser():
    desired = build_desired(full_tunnel_params())
    conf = parse_config(render_desired(desired))
    assert conf.interface_value("Address") == "10.66.3.2/32, fd66:3::2/128"
    assert conf.interface_value("MTU") == "1380"
    assert conf.interface_value("FwMark") == "51820"
    assert conf.interface_value("DNS") is None  # DNS comes from _dns's hooks, not from wg-quick's resolvconf call
    assert conf.peers == [{"description": "exit", "items": [
        ("PublicKey", PEER_A), ("AllowedIPs", "0.0.0.0/0, ::/0"), ("Endpoint", "vpn.example.org:51820"),
        ("PersistentKeepalive", "25")]}]
    assert previous_tables(render_desired(desired)) == {"51820"}
    assert previous_tables(render_desired(build_desired(params()))) == set()


@pytest.mark.skipif(not shutil.which("wg-quick") or not shutil.which("wg"), reason="wireguard-tools not installed")
def test_wg_quick_strip_accepts_the_rendered_file(tmp_path):
    path = tmp_path / "wg7.conf"
    path.write_text(render_desired(build_desired(full_tunnel_params(name="wg7"))))
    stripped = subprocess.run(["wg-quick", "strip", str(path)], capture_output=True, text=True, check=True).stdout
    lines = [line for line in stripped.splitlines() if line and not line.startswith("#")]
    assert not [line for line in lines if line.split(" ")[0] in ("PostUp", "PreUp", "PostDown", "Table", "Address")]
    assert "PublicKey = %s" % PEER_A in stripped
    assert "FwMark = 51820" in stripped


def test_dropin_keeps_the_private_key_on_reload_without_putting_it_in_argv():
    desired = build_desired(params())
    text = render_dropin(desired, "userspace")
    assert "Environment=WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go" in text
    assert "ExecReload=\n" in text  # resets the stock syncconf reload that wipes the key
    assert '"$$(< "/etc/wireguard/keys/wg0.key")"' in text  # bash builtin read of a quoted path, systemd-escaped
    assert "KERNEL" not in text.upper().replace("WG-QUICK", "")
    assert KERNEL_ONLY_SENTINEL in render_dropin(desired, "kernel")
    assert "Environment" not in render_dropin(desired, "auto")


@pytest.mark.parametrize("path", ["/k;id", "/k$(id)", "/k\nExecStart=/bin/id", "/k%n", "/k\"x", "relative"])
def test_dropin_refuses_a_path_it_cannot_quote_even_if_validation_was_skipped(path):
    desired = build_desired(params())
    desired.private_key_path = path
    with pytest.raises(TunnelgateError, match="^private_key_path: "):
        render_dropin(desired, "userspace")


def test_paths_with_every_allowed_character_render_unquoted_and_safe():
    desired = build_desired(params(private_key_path="/etc/wire-guard/k_1.2@host+x:y,z=w.key"))
    assert "PostUp = wg set %i private-key /etc/wire-guard/k_1.2@host+x:y,z=w.key" in render_desired(desired)
    assert '"$$(< "/etc/wire-guard/k_1.2@host+x:y,z=w.key")"' in render_dropin(desired, "auto")
