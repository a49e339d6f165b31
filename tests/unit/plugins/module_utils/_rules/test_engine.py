# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill switch orchestration: plan/apply/check mode, boot persistence, backend switches.

The host is faked at its one seam (the CommandRunner): iptables-save/nft listings come from the
real-tool fixtures, every command is recorded, files go to a temporary directory.
"""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _ks_switch as mgr
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._killswitch import KillswitchSpec
from fake_module import FakeModule  # noqa: E402  (tests/unit is on sys.path)

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "killswitch")
HOST = dict(
    mode="host", interfaces=["wg0"], fwmark="0xca6c", endpoints=["192.0.2.1:51820", "[2001:db8::1]:51820"],
    dns_servers=["10.66.4.1", "fd66:4::1"], allow_lan=["192.168.0.0/16", "fd00:1::/64"], allow_dhcp=True, ipv6="tunnel",
    routing_lock=False, watch=False,  # the firewall rule set alone (the lock and watcher: test__ks_switch.py)
)
EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
NFT_MISSING = (1, "", "Error: No such file or directory\n")
MUTATING = ("iptables-restore", "ip6tables-restore", "enable", "disable", "daemon-reload", "-f")


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


class FakeHost:
    """Canned command output per tool; records every call."""

    def __init__(self, v4=EMPTY, v6=EMPTY, nft=NFT_MISSING, enabled=False, missing=(), fail=()):
        self.answers = {
            "iptables-save": (0, v4, ""),
            "ip6tables-save": (0, v6, ""),
            "nft": nft,
            "systemctl": (0 if enabled else 1, "enabled\n" if enabled else "disabled\n", ""),
        }
        for tool in fail:
            self.answers[tool] = (1, "", "%s: can't initialize filter table: Table does not exist" % tool)
        self.missing = set(missing)
        self.calls = []

    def bin_path(self, name, required=True):
        if name in self.missing or name == "dockerd":
            if required:
                raise AssertionError("required binary %s missing" % name)
            return None
        return "/usr/sbin/" + name

    def run(self, argv, check=True, data=None):
        self.calls.append((argv, data))
        tool = os.path.basename(argv[0])
        if tool == "systemctl" and argv[1] != "is-enabled":
            return 0, "", ""
        if tool == "nft" and argv[1] == "-f":
            return 0, "", ""
        return self.answers.get(tool, (0, "", ""))

    def mutations(self):
        return [argv for argv, _data in self.calls if any(m in argv or os.path.basename(argv[0]) == m for m in MUTATING)]


@pytest.fixture
def dirs(tmp_path):
    rules, units = tmp_path / "rules", tmp_path / "units"
    units.mkdir()
    return str(rules), str(units)


def run(params, host, dirs, check_mode=False):
    return mgr.run_module(FakeModule(params, check_mode=check_mode), host, rules_dir=dirs[0], unit_dir=dirs[1])


def test_fresh_host_applies_and_persists(dirs):
    host = FakeHost()
    result = run(HOST, host, dirs)
    assert result["changed"] and result["unit"] == "tunnelgate-killswitch-host.service"
    restores = [(argv, data) for argv, data in host.calls if argv[0].endswith("-restore")]
    assert [argv for argv, _data in restores] == [
        ["/usr/sbin/iptables-restore", "-w", "--noflush"], ["/usr/sbin/ip6tables-restore", "-w", "--noflush"]]
    v4_file = os.path.join(dirs[0], "host.v4.rules")
    with open(v4_file, encoding="utf-8") as handle:
        saved = handle.read()
    # the file is what apply loads (apply adds the jump into OUTPUT in the same transaction)
    assert restores[0][1].replace("-I OUTPUT 1 -j TUNNELGATE-OUT\n", "") == saved
    assert stat.S_IMODE(os.stat(v4_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(dirs[0]).st_mode) == 0o700
    with open(os.path.join(dirs[1], "tunnelgate-killswitch-host.service"), encoding="utf-8") as handle:
        unit = handle.read()
    for line in ("DefaultDependencies=no", "Before=network-pre.target shutdown.target", "Wants=network-pre.target",
                 "WantedBy=sysinit.target", "ExecStart=/usr/sbin/iptables-restore -w --noflush %s" % v4_file,
                 "ExecStart=/bin/sh -c '/usr/sbin/iptables -w -C OUTPUT -j TUNNELGATE-OUT 2>/dev/null || "
                 "/usr/sbin/iptables -w -I OUTPUT 1 -j TUNNELGATE-OUT'"):
        assert line in unit.splitlines()
    assert ["/usr/sbin/systemctl", "enable", "tunnelgate-killswitch-host.service"] in [a for a, _data in host.calls]
    assert "TUNNELGATE" not in result["diff"]["before"]
    assert "-A TUNNELGATE-OUT -o lo -j RETURN" in result["diff"]["after"]


def test_check_mode_changes_nothing(dirs):
    host = FakeHost()
    result = run(HOST, host, dirs, check_mode=True)
    assert result["changed"]
    assert host.mutations() == []
    assert not os.path.exists(dirs[0])
    assert os.listdir(dirs[1]) == []


def test_second_run_is_unchanged(dirs):
    run(HOST, FakeHost(), dirs)
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"), enabled=True)
    result = run(HOST, host, dirs)
    assert result["changed"] is False
    assert host.mutations() == []
    assert result["diff"]["before"] == result["diff"]["after"]


def test_flushed_chains_are_restored_on_rerun(dirs):
    run(HOST, FakeHost(), dirs)
    flushed = fixture("iptables-nft-v4.save").replace("-A TUNNELGATE-OUT", "# gone")
    host = FakeHost(v4=flushed, v6=fixture("iptables-nft-v6.save"), enabled=True)
    result = run(HOST, host, dirs)
    assert result["changed"]
    assert [argv[0] for argv in host.mutations()] == ["/usr/sbin/iptables-restore"]


def test_persist_false_removes_unit_and_files(dirs):
    run(HOST, FakeHost(), dirs)
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"), enabled=True)
    result = run(dict(HOST, persist=False), host, dirs)
    assert result["changed"] and result["unit"] is None
    assert ["/usr/sbin/systemctl", "disable", "tunnelgate-killswitch-host.service"] in host.mutations()
    assert os.listdir(dirs[1]) == [] and os.listdir(dirs[0]) == []


def test_absent_removes_rules_unit_and_files(dirs):
    run(HOST, FakeHost(), dirs)
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"), enabled=True)
    result = run(dict(mode="host", state="absent"), host, dirs)
    assert result["changed"]
    restores = [data for argv, data in host.calls if argv[0].endswith("-restore")]
    assert len(restores) == 2 and all("-X TUNNELGATE-OUT\n" in d for d in restores)
    assert "TUNNELGATE-FWD" not in "".join(restores), "forward mode's chains belong to the other task"
    assert os.listdir(dirs[1]) == [] and os.listdir(dirs[0]) == []


def test_switch_to_nftables_removes_iptables_chains(dirs):
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"))
    result = run(dict(HOST, backend="nftables"), host, dirs)
    assert result["changed"]
    restores = [data for argv, data in host.calls if argv[0].endswith("-restore")]
    assert len(restores) == 2 and all(d.count("-X TUNNELGATE-OUT") == 2 for d in restores)
    loads = [data for argv, data in host.calls if argv[-2:] == ["-f", "-"]]
    assert len(loads) == 1 and "add table inet tunnelgate" in loads[0]
    assert os.path.exists(os.path.join(dirs[0], "host.nft"))
    with open(os.path.join(dirs[1], "tunnelgate-killswitch-host.service"), encoding="utf-8") as handle:
        assert "ExecStart=/usr/sbin/nft -f %s\n" % os.path.join(dirs[0], "host.nft") in handle.read()


def test_ipv6_not_enforceable_fails_before_any_change(dirs):
    host = FakeHost(fail=("ip6tables-save",))
    with pytest.raises(TunnelgateError) as err:
        run(HOST, host, dirs)
    assert err.value.option == "backend" and "IPv6" in str(err.value)
    assert host.mutations() == []


def test_missing_ip6tables_fails(dirs):
    with pytest.raises(TunnelgateError) as err:
        run(HOST, FakeHost(missing=("ip6tables-restore",)), dirs)
    assert err.value.option == "backend"


def test_bad_input_fails_before_any_command(dirs):
    host = FakeHost()
    with pytest.raises(TunnelgateError) as err:
        run(dict(HOST, allow_lan=["0.0.0.0/0"]), host, dirs)
    assert err.value.option == "allow_lan"
    assert host.calls == []


def test_forward_docker_user_boot_creates_chain(dirs):
    params = dict(mode="forward", interfaces=["wg0"], sources=["br-x"], forward_chain="DOCKER-USER")
    host = FakeHost()
    result = run(params, host, dirs)
    assert result["hooks"] == {"ipv4": "DOCKER-USER", "ipv6": "DOCKER-USER"}
    with open(os.path.join(dirs[1], "tunnelgate-killswitch-forward.service"), encoding="utf-8") as handle:
        unit = handle.read()
    assert ("ExecStart=/bin/sh -c '/usr/sbin/iptables -w -N DOCKER-USER 2>/dev/null; /usr/sbin/iptables -w -C DOCKER-USER "
            "-j TUNNELGATE-FWD 2>/dev/null || /usr/sbin/iptables -w -I DOCKER-USER 1 -j TUNNELGATE-FWD'") in unit


def test_docker_user_not_hooked_yet_warns(dirs):
    module = FakeModule(dict(mode="forward", interfaces=["wg0"], sources=["br-x"], forward_chain="DOCKER-USER", persist=False))
    mgr.run_module(module, FakeHost(), rules_dir=dirs[0], unit_dir=dirs[1])
    assert len(module.warnings) == 2 and all("DOCKER-USER" in w for w in module.warnings)
    hooked = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"))
    module = FakeModule(dict(mode="forward", interfaces=["wg0"], sources=["br-x"], forward_chain="DOCKER-USER", persist=False))
    mgr.run_module(module, hooked, rules_dir=dirs[0], unit_dir=dirs[1])
    assert module.warnings == []


def test_warning_reaches_the_module(dirs):
    module = FakeModule(dict(mode="forward", interfaces=["wg0"], sources=["10.244.0.0/16"], persist=False))
    mgr.run_module(module, FakeHost(), rules_dir=dirs[0], unit_dir=dirs[1])
    assert module.warnings and "IPv6" in module.warnings[0]


def test_spec_absent_result_shape(dirs):
    result = run(dict(mode="host", state="absent"), FakeHost(), dirs)
    assert result["changed"] is False
    assert result["chains"] == [] and result["rules"] == {} and result["unit"] is None
    assert KillswitchSpec(dict(mode="host", state="absent")).state == "absent"
