# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The metrics program (_metrics) and its installation (_metrics_setup).

The exposition text is checked with prometheus_client's own parser (requirements-dev.txt), so a format
mistake fails here, not in a scrape.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys

import pytest
from prometheus_client import parser as prometheus_parser

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _metrics, _metrics_setup
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from fake_module import FakeModule  # noqa: E402  (tests/unit is on sys.path)

PRIVATE = base64.b64encode(bytes(range(32))).decode()
PEER_A = base64.b64encode(bytes([7] * 32)).decode()
PEER_B = base64.b64encode(bytes([9] * 32)).decode()
PSK = base64.b64encode(bytes([5] * 32)).decode()
PUBLIC = base64.b64encode(bytes([3] * 32)).decode()
NOW = 1_800_000_000
DUMP = "\n".join([
    "\t".join(["wg0", PRIVATE, PUBLIC, "51820", "0xca6c"]),
    "\t".join(["wg0", PEER_A, PSK, "172.30.5.10:51820", "0.0.0.0/0,::/0", str(NOW - 30), "1234", "5678", "25"]),
    "\t".join(["wg0", PEER_B, "(none)", "(none)", "10.66.5.3/32", "0", "0", "0", "off"]),
    "\t".join(["wg1", PRIVATE, PUBLIC, "51821", "off"]),
    "some future line the program does not know",
]) + "\n"


def parse(text):
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in prometheus_parser.text_string_to_metric_families(text) for sample in family.samples}


def test_fingerprint_is_the_keypair_modules():
    assert _metrics.key_fingerprint(PEER_A) == hashlib.sha256(bytes([7] * 32)).hexdigest()[:16]
    assert _metrics.key_fingerprint("not-a-key") == ""
    assert _metrics.key_fingerprint(base64.b64encode(b"short").decode()) == ""


def test_dump_parsed_without_any_secret():
    interfaces = _metrics.parse_dump(DUMP)
    assert sorted(interfaces) == ["wg0", "wg1"]
    assert interfaces["wg1"] == []
    first = interfaces["wg0"][0]
    assert first == {"fingerprint": _metrics.key_fingerprint(PEER_A), "endpoint": "172.30.5.10:51820",
                     "latest_handshake": NOW - 30, "received": 1234, "sent": 5678}
    assert interfaces["wg0"][1]["endpoint"] == ""
    text = repr(interfaces)
    for secret in (PRIVATE, PSK, PEER_A, PEER_B):
        assert secret not in text


def test_rendered_exposition_is_valid_and_holds_no_key():
    fragments = {"host_vpn": {"egress_mode": "host", "interfaces": ["wg0", "wg9"], "killswitch": ["host"]}}
    killswitch = {"host": {"present": True, "intact": False}, "forward": {"present": False, "intact": None}}
    text = _metrics.render(_metrics.parse_dump(DUMP), fragments, killswitch, NOW)
    for secret in (PRIVATE, PSK, PEER_A, PEER_B, PUBLIC):
        assert secret not in text
    values = parse(text)
    peer = _metrics.key_fingerprint(PEER_A)
    labels = (("endpoint", "172.30.5.10:51820"), ("interface", "wg0"), ("peer", peer))
    assert values[("tunnelgate_peer_latest_handshake_seconds", labels)] == NOW - 30
    assert values[("tunnelgate_peer_receive_bytes_total", labels)] == 1234
    assert values[("tunnelgate_peer_transmit_bytes_total", labels)] == 5678
    assert values[("tunnelgate_interface_peers", (("interface", "wg0"),))] == 2
    assert values[("tunnelgate_interface_peers_recent_handshake", (("interface", "wg0"),))] == 1
    assert values[("tunnelgate_interface_up", (("interface", "wg0"),))] == 1
    assert values[("tunnelgate_interface_up", (("interface", "wg9"),))] == 0  # expected by a role, missing
    assert values[("tunnelgate_killswitch_present", (("mode", "host"),))] == 1
    assert values[("tunnelgate_killswitch_intact", (("mode", "host"),))] == 0
    assert ("tunnelgate_killswitch_intact", (("mode", "forward"),)) not in values  # unknown: not reported
    assert values[("tunnelgate_egress_mode", (("mode", "host"), ("role", "host_vpn")))] == 1
    assert values[("tunnelgate_metrics_timestamp_seconds", ())] == NOW


def test_old_handshake_is_not_recent():
    dump = DUMP.replace(str(NOW - 30), str(NOW - 181))
    values = parse(_metrics.render(_metrics.parse_dump(dump), {}, {}, NOW))
    assert values[("tunnelgate_interface_peers_recent_handshake", (("interface", "wg0"),))] == 0


def test_label_values_are_escaped():
    text = _metrics.render({}, {'x"y': {"egress_mode": 'a\\b\nc"'}}, {}, NOW)
    values = parse(text)
    assert values[("tunnelgate_egress_mode", (("mode", 'a\\b\nc"'), ("role", 'x"y')))] == 1


def test_killswitch_status_asks_the_watcher(tmp_path):
    (tmp_path / "host.rules.v4").write_text("x")
    (tmp_path / "host.watch").write_text("x")
    (tmp_path / "forward.watch").write_text("x")
    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        return 1 if "forward" in argv[1] else 0
    status = _metrics.killswitch_status(["host", "forward", "nothing"], str(tmp_path), run=run)
    assert status == {"host": {"present": True, "intact": True}, "forward": {"present": False, "intact": False},
                      "nothing": {"present": False, "intact": None}}
    assert calls == [["sh", str(tmp_path / "forward.watch"), "--check"], ["sh", str(tmp_path / "host.watch"), "--check"]]


def test_fragments_read_and_broken_ones_skipped(tmp_path):
    (tmp_path / "host_vpn.json").write_text(json.dumps({"egress_mode": "host"}))
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "other.txt").write_text("{}")
    assert _metrics.read_fragments(str(tmp_path)) == {"host_vpn": {"egress_mode": "host"}}


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    _metrics.write_atomic(str(tmp_path / "out"), "a 1\n")
    _metrics.write_atomic(str(tmp_path / "out"), "a 2\n")
    assert os.listdir(tmp_path / "out") == ["tunnelgate.prom"]
    assert (tmp_path / "out" / "tunnelgate.prom").read_text() == "a 2\n"
    assert oct((tmp_path / "out" / "tunnelgate.prom").stat().st_mode & 0o777) == "0o644"


def test_installed_program_runs_standalone(tmp_path):
    """The program text is the module itself: it must run with the standard library only."""
    program = tmp_path / "metrics.py"
    program.write_text(_metrics_setup.program_text())
    env = dict(os.environ, PATH="/nonexistent")  # no wg: metrics of the fragments only
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-I", str(program), "--directory", str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    values = parse((tmp_path / "out" / "tunnelgate.prom").read_text())
    assert ("tunnelgate_metrics_timestamp_seconds", ()) in values


# --------------------------------------------------------------------------- installation


class FakeRunner:
    def __init__(self, timer_active=False):
        self.timer_active = timer_active
        self.calls = []

    def bin_path(self, name, required=True):
        return "/usr/bin/" + name

    def run(self, argv, check=True, data=None, environ=None):
        self.calls.append(argv[1:])
        if argv[1:3] == ["is-active", "--quiet"]:
            return (0 if self.timer_active else 3), "", ""
        return 0, "", ""


PARAMS = dict(name="host_vpn", state="present", egress_mode="host", interfaces=["wg0"], killswitch=["host"],
              directory="/var/lib/prometheus/node-exporter", interval=30)


@pytest.fixture
def paths(tmp_path):
    return dict(fragment_dir=str(tmp_path / "metrics.d"), unit_dir=str(tmp_path / "units"),
                program=str(tmp_path / "lib" / "metrics.py"))


def run(params, runner, paths, check_mode=False):
    return _metrics_setup.run_module(FakeModule(dict(PARAMS, **params), check_mode=check_mode), runner, **paths)


def test_install_then_rerun_changes_nothing(paths):
    runner = FakeRunner()
    first = run({}, runner, paths)
    assert first["changed"]
    assert ["enable", "--now", "tunnelgate-metrics.timer"] in runner.calls
    assert ["start", "tunnelgate-metrics.service"] in runner.calls
    with open(os.path.join(paths["unit_dir"], "tunnelgate-metrics.service"), encoding="utf-8") as handle:
        assert "ExecStart=/usr/bin/python3 %s --directory /var/lib/prometheus/node-exporter\n" % paths["program"] in handle.read()
    with open(os.path.join(paths["fragment_dir"], "host_vpn.json"), encoding="utf-8") as handle:
        assert json.load(handle) == {"egress_mode": "host", "interfaces": ["wg0"], "killswitch": ["host"]}
    assert os.stat(paths["program"]).st_mode & 0o777 == 0o755
    second_runner = FakeRunner(timer_active=True)
    assert not run({}, second_runner, paths)["changed"]
    assert second_runner.calls == [["is-active", "--quiet", "tunnelgate-metrics.timer"]]


def test_check_mode_on_a_fresh_host_reports_the_change_and_writes_nothing(paths):
    runner = FakeRunner()
    result = run({}, runner, paths, check_mode=True)
    assert result["changed"]
    assert not os.path.exists(paths["fragment_dir"])
    assert runner.calls == [["is-active", "--quiet", "tunnelgate-metrics.timer"]]
    assert "host_vpn.json: absent" in result["diff"]["before"]
    assert '"egress_mode": "host"' in result["diff"]["after"]
    assert "metrics.py: present" in result["diff"]["after"]  # the program's text is not in the diff


def test_a_stopped_timer_is_started_again(paths):
    run({}, FakeRunner(), paths)
    runner = FakeRunner(timer_active=False)
    assert run({}, runner, paths)["changed"]
    assert ["enable", "--now", "tunnelgate-metrics.timer"] in runner.calls


def test_two_roles_share_the_program_and_the_last_one_removes_it(paths):
    run({}, FakeRunner(), paths)
    run(dict(name="server", egress_mode="exit", interfaces=["wg-exit"], killswitch=[]), FakeRunner(True), paths)
    runner = FakeRunner(True)
    assert run(dict(state="absent"), runner, paths)["changed"]
    assert not os.path.exists(os.path.join(paths["fragment_dir"], "host_vpn.json"))
    assert os.path.exists(paths["program"])  # the server's fragment still needs it
    assert ["disable", "--now", "tunnelgate-metrics.timer"] not in runner.calls
    runner = FakeRunner(True)
    result = run(dict(name="server", state="absent"), runner, paths)
    assert result["changed"] and result["timer"] is None
    assert ["disable", "--now", "tunnelgate-metrics.timer"] in runner.calls
    # a run the timer had just started is stopped and forgotten: no unit of ours stays listed
    calls = runner.calls
    assert calls.index(["stop", "tunnelgate-metrics.service"]) < calls.index(["daemon-reload"])
    assert calls[-1] == ["reset-failed", "tunnelgate-metrics.service", "tunnelgate-metrics.timer"]
    assert not os.path.exists(paths["program"])
    assert not os.path.exists(os.path.dirname(paths["program"])) and not os.path.exists(paths["fragment_dir"])
    assert not os.path.exists(os.path.join(paths["unit_dir"], "tunnelgate-metrics.timer"))
    assert not run(dict(name="server", state="absent"), FakeRunner(False), paths)["changed"]


@pytest.mark.parametrize("params, option", [
    (dict(name="Host VPN"), "name"),
    (dict(directory="relative/dir"), "directory"),
    (dict(directory="/var/lib/../../etc"), "directory"),
    (dict(directory="/etc"), "directory"),
    (dict(directory="/tmp/x;rm"), "directory"),
    (dict(interval=1), "interval"),
    (dict(interfaces=["wg0; reboot"]), "interfaces"),
])
def test_bad_input_names_the_option_before_anything_is_read(params, option, paths):
    runner = FakeRunner()
    with pytest.raises(TunnelgateError) as err:
        run(params, runner, paths)
    assert str(err.value).startswith(option)
    assert runner.calls == []
