# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wg-quick file rendering/parsing, `wg show dump` parsing, key and endpoint validation."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _wgconf as wc

PUB_A = "H5J/955Ub5W0d99c0MPfUYxBUNQvoQSewt+1H8FsXz8="
PUB_B = "nx4M8KhN0EtWvkig62upeCat0XoOBfFRIZph9XkGtgM="
PRIV = "KGZ1s8qjLzSBgcBQJ5X6vvlWf6q1T3nAmDGsEHtJ+0E="
PSK = "B+fIaIjzPD5TANmLN9ZgL5jGb67HtjS2fbtjdgpPEbo="


@pytest.mark.parametrize("value, problem", [
    (PUB_A, None),
    ("abc", "44 characters"),
    ("!" * 44, "not valid base64"),
    # 44 characters of valid base64 whose last character carries non-zero padding bits
    (PUB_A[:42] + "9=", "canonical"),
    (None, "string"),
])
def test_key_problem(value, problem):
    result = wc.key_problem(value)
    if problem is None:
        assert result is None
        assert wc.is_key(value)
    else:
        assert problem in result


@pytest.mark.parametrize("text, host, port", [
    ("198.51.100.1:51820", ipaddress.ip_address("198.51.100.1"), 51820),
    ("[2001:db8::1]:51820", ipaddress.ip_address("2001:db8::1"), 51820),
    ("[fe80::1%eth0]:1", ipaddress.ip_address("fe80::1"), 1),
    ("VPN.Example.org:65535", "vpn.example.org", 65535),
    ("exit-1:443", "exit-1", 443),
])
def test_parse_endpoint(text, host, port):
    assert wc.parse_endpoint(text) == (host, port)


@pytest.mark.parametrize("text, message", [
    ("198.51.100.1", "host:port"),
    ("2001:db8::1:51820", "brackets"),
    ("[2001:db8::1]51820", "[2001:db8::1]:51820"),
    ("[not-v6]:51820", "not an IPv6 address"),
    ("198.51.100.1:0", "not in 1-65535"),
    ("198.51.100.1:65536", "not in 1-65535"),
    ("bad_host!:51820", "valid host name"),
    ("-bad.example:51820", "valid host name"),
    ("10.0.0:51820", "valid host name"),
    ("", "host:port"),
])
def test_parse_endpoint_errors(text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        wc.parse_endpoint(text)


def test_format_endpoint_brackets_ipv6():
    assert wc.format_endpoint(ipaddress.ip_address("2001:db8::1"), 5) == "[2001:db8::1]:5"
    assert wc.format_endpoint(ipaddress.ip_address("192.0.2.1"), 5) == "192.0.2.1:5"
    assert wc.format_endpoint("vpn.example.org", 5) == "vpn.example.org:5"


def test_render_then_parse_round_trips():
    interface = [("Address", "10.66.3.1/24, fd66:3::1/64"), ("ListenPort", "51820"), ("Table", "off"),
                 ("PostUp", "wg set %i private-key /etc/wireguard/keys/wg0.key")]
    peers = [
        {"description": "client a", "items": [("PublicKey", PUB_A), ("AllowedIPs", "10.66.3.2/32, fd66:3::2/128")]},
        {"description": None, "items": [("PublicKey", PUB_B), ("Endpoint", "[2001:db8::1]:51820"),
                                        ("AllowedIPs", "0.0.0.0/0, ::/0"), ("PersistentKeepalive", "25")]},
    ]
    text = wc.render_config(["Ansible managed"], {"table": "51820", "implementation": "auto"}, interface, peers)
    assert text.startswith("# Ansible managed\n# tunnelgate: implementation=auto table=51820\n[Interface]\n")
    parsed = wc.parse_config(text)
    assert parsed.meta == {"table": "51820", "implementation": "auto"}
    assert parsed.interface == interface
    assert parsed.peers == peers
    assert parsed.interface_value("listenport") == "51820"
    assert parsed.interface_values("PostUp") == ["wg set %i private-key /etc/wireguard/keys/wg0.key"]


def test_parse_config_like_wg_quick():
    text = "[interface]\n  ListenPort=1 # comment\n\n[PEER]\nPublicKey = %s\n# another comment\n" % PUB_A
    parsed = wc.parse_config(text)
    assert parsed.interface == [("ListenPort", "1")]
    assert parsed.peers == [{"description": None, "items": [("PublicKey", PUB_A)]}]


@pytest.mark.parametrize("text", ["ListenPort = 1\n", "[Interface]\nnonsense\n"])
def test_parse_config_rejects_what_wg_quick_rejects(text):
    with pytest.raises(ValueError, match="line"):
        wc.parse_config(text)


DUMP_ALL = (
    "wg0\t%s\t%s\t51820\toff\n"
    "wg0\t%s\t%s\t172.30.3.11:41234\t10.66.3.2/32,fd66:3::2/128\t1764500000\t1200\t3400\t25\n"
    "wg1\t%s\t%s\t(none)\t0xca6c\n"
    "wg1\t%s\t(none)\t[fd42:7467:3::10]:51820\t0.0.0.0/0,::/0\t0\t0\t0\toff\n"
    "wg1\t%s\t(none)\t(none)\t(none)\t0\t0\t0\toff\n"
) % (PRIV, PUB_B, PUB_A, PSK, PRIV, PUB_A, PUB_B, "x" * 43 + "=")


def test_parse_dump_all_drops_secrets():
    parsed = wc.parse_dump(DUMP_ALL)
    assert set(parsed) == {"wg0", "wg1"}
    wg0, wg1 = parsed["wg0"], parsed["wg1"]
    assert wg0["public_key"] == PUB_B and wg0["listen_port"] == 51820 and wg0["fwmark"] is None
    assert wg1["listen_port"] is None and wg1["fwmark"] == 51820
    peer = wg0["peers"][PUB_A]
    assert peer["preshared_key"] is True
    assert peer["endpoint"] == "172.30.3.11:41234"
    assert peer["allowed_ips"] == ["10.66.3.2/32", "fd66:3::2/128"]
    assert (peer["latest_handshake"], peer["transfer_rx"], peer["transfer_tx"]) == (1764500000, 1200, 3400)
    assert peer["persistent_keepalive"] == 25
    v6peer = wg1["peers"][PUB_B]
    assert v6peer["endpoint"] == "[fd42:7467:3::10]:51820"
    assert v6peer["persistent_keepalive"] is None and v6peer["preshared_key"] is False
    assert wg1["peers"]["x" * 43 + "="]["allowed_ips"] == []
    assert PRIV not in repr(parsed) and PSK not in repr(parsed)


def test_parse_dump_single_keeps_secrets_only_when_asked():
    single = "\n".join(line.split("\t", 1)[1] for line in DUMP_ALL.splitlines() if line.startswith("wg0"))
    parsed = wc.parse_dump(single, name="wg0", keep_secrets=True)
    assert parsed["wg0"]["private_key"] == PRIV
    assert parsed["wg0"]["peers"][PUB_A]["preshared_key_value"] == PSK
    assert PRIV not in repr(wc.parse_dump(single, name="wg0"))


@pytest.mark.parametrize("text, expected", [
    ("10.66.3.2/32", (4, 0x0A420302, 32, "10.66.3.2/32")),
    ("10.66.3.2", (4, 0x0A420302, 32, "10.66.3.2/32")),
    ("10.66.3.2/24", (4, 0x0A420300, 24, "10.66.3.0/24")),
    ("0.0.0.0/0", (4, 0, 0, "0.0.0.0/0")),
    ("::/0", (6, 0, 0, "::/0")),
    ("FD66:3:0:0::2/128", (6, 0xFD660003000000000000000000000002, 128, "fd66:3::2/128")),
    ("fd66:3::2:1/112", (6, 0xFD660003000000000000000000020000, 112, "fd66:3::2:0/112")),
])
def test_parse_cidr(text, expected):
    assert wc.parse_cidr(text) == expected
    assert expected[3] == str(ipaddress.ip_network(text, strict=False))


@pytest.mark.parametrize("text, message", [
    ("10.66.3.300/32", "not a valid IPv4"),
    ("10.66.3/24", "not a valid IPv4"),
    ("010.66.3.1/32", "leading zeros|not a valid IPv4"),  # glibc's inet_pton already refuses it
    ("10.66.3.1/33", "0-32"),
    ("fd66::1/129", "0-128"),
    ("fd66:::1/64", "not a valid IPv6"),
    ("10.66.3.1/x", "0-32"),
    ("", "not a valid"),
])
def test_parse_cidr_errors(text, message):
    with pytest.raises(ValueError, match=message):
        wc.parse_cidr(text)


def test_canonical_networks_normalizes_text_and_objects():
    assert wc.canonical_networks(["fd66:3:0::2/128", "10.66.3.9/24", ipaddress.ip_network("10.0.0.0/8"),
                                  "10.66.3.0/24"]) == ["10.0.0.0/8", "10.66.3.0/24", "fd66:3::2/128"]


def test_parse_dump_rejects_garbage():
    with pytest.raises(ValueError):
        wc.parse_dump("wg0\tonly\ttwo\n")


@pytest.mark.parametrize("text, expected", [
    ("172.30.3.11:41234", (ipaddress.ip_address("172.30.3.11"), 41234)),
    ("[fd42:7467:3::10]:51820", (ipaddress.ip_address("fd42:7467:3::10"), 51820)),
    (None, None),
    ("garbage", None),
])
def test_split_live_endpoint(text, expected):
    assert wc.split_live_endpoint(text) == expected


@pytest.mark.parametrize("line, expected", [
    ("PrivateKey = %s" % PRIV, "PrivateKey = (redacted)"),
    ("privatekey=%s" % PRIV, "privatekey=(redacted)"),
    ("  PresharedKey   =   %s   # old" % PSK, "  PresharedKey   =   (redacted)"),
    ("PrivateKey = not-even-a-key", "PrivateKey = (redacted)"),
    ("PostUp = wg set %%i private-key <(echo %s)" % PRIV, "PostUp = wg set %i private-key <(echo (redacted))"),
    ("# PrivateKey: %s" % PSK, "# PrivateKey: (redacted)"),
    ("PublicKey = %s" % PUB_A, "PublicKey = %s" % PUB_A),
    ("PostUp = wg set %%i peer %s preshared-key /k" % PUB_A, "PostUp = wg set %%i peer %s preshared-key /k" % PUB_A),
    ("Address = 10.0.0.1/24", "Address = 10.0.0.1/24"),
])
def test_redact_config_removes_every_key_but_known_public_ones(line, expected):
    text = "[Interface]\n%s\n\n[Peer]\nPublicKey = %s\n" % (line, PUB_A)
    assert wc.redact_config(text) == "[Interface]\n%s\n\n[Peer]\nPublicKey = %s\n" % (expected, PUB_A)


def test_redact_config_keeps_empty_and_missing_files():
    assert wc.redact_config(None) is None and wc.redact_config("") == ""


def test_parse_dump_error_never_quotes_a_field():
    with pytest.raises(ValueError) as err:
        wc.parse_dump("%s\t%s\t51820\toff\n%s\t%s\t(none)\t(none)\t%s\t0\t0\toff\n" % (PRIV, PUB_A, PUB_B, PSK, PRIV),
                      name="wg0")
    assert "line 2" in str(err.value) and PRIV not in str(err.value) and PSK not in str(err.value)


@pytest.mark.parametrize("text, problem", [
    ("[fe80::1%eth0\nPostUp = id]:51820", "zone id"),
    ("[fe80::1%eth0=1]:51820", "zone id"),
    ("vpn.example.org\n:51820", "valid host name"),
    ("10.0.0.1:\u0665\u0661\u0668\u0662\u0660", "port"),
    ("10.0.0.1:51_820", "port"),
    ("10.0.0.1:+51820", "port"),
])
def test_parse_endpoint_refuses_what_could_smuggle_text_into_the_file(text, problem):
    with pytest.raises(ValueError, match=problem):
        wc.parse_endpoint(text)


def test_parse_endpoint_accepts_a_plain_zone_id():
    host, port = wc.parse_endpoint("[fe80::1%eth0]:51820")
    assert str(host) == "fe80::1" and port == 51820


@pytest.mark.parametrize("text", ["10.0.0.0/\u0662\u0664", "10.0.0.0/+8", "10.0.0.0/ 8"])
def test_parse_cidr_prefix_length_is_ascii_digits_only(text):
    with pytest.raises(ValueError, match="prefix length"):
        wc.parse_cidr(text)
