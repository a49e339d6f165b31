# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics of the tunnels and kill switches on a host (node exporter textfile collector).

Private to the collection (leading underscore): not a public API.

This file is ALSO the program the ``metrics`` module installs on the host
(``/usr/local/lib/tunnelgate/metrics.py``, run by ``tunnelgate-metrics.timer``), so it imports
nothing but the Python standard library and runs as ``python3 metrics.py --directory DIR``.

What it reads, every run:
- ``wg show all dump``: per interface and peer the endpoint, latest handshake and byte counters.
  The dump also holds the interface's PRIVATE key (second field of an interface line): that field
  is never kept nor written anywhere. Peers are named by a fingerprint of their PUBLIC key (the first
  16 hex characters of SHA-256 over the raw 32 bytes, as the keypair module prints it).
- ``/etc/tunnelgate/metrics.d/*.json``: one fragment per role on the host (what it runs: egress
  mode, kill switch modes, interfaces), written by the ``metrics`` module.
- the kill switch of each mode a fragment names: present (its saved rules are on disk) and intact
  (its watcher's ``--check`` passes: hooks, chains and routing lock as saved).

It writes ``DIR/tunnelgate.prom`` atomically (a temporary file in DIR, then rename), so the node
exporter never reads half a file.
"""

from __future__ import annotations

import argparse
import base64
import glob
import hashlib
import json
import os
import subprocess
import tempfile
import time

FRAGMENT_DIR = "/etc/tunnelgate/metrics.d"
KILLSWITCH_DIR = "/etc/tunnelgate/killswitch"
OUTPUT_NAME = "tunnelgate.prom"
# A handshake is "recent" while WireGuard would still use its session (REJECT_AFTER_TIME = 180 s).
RECENT_HANDSHAKE_SECONDS = 180

HELP = {
    "tunnelgate_peer_latest_handshake_seconds": ("gauge", "Unix time of the latest handshake with the peer (0: never)."),
    "tunnelgate_peer_receive_bytes_total": ("counter", "Bytes received from the peer since the interface came up."),
    "tunnelgate_peer_transmit_bytes_total": ("counter", "Bytes sent to the peer since the interface came up."),
    "tunnelgate_interface_peers": ("gauge", "Peers configured on the interface."),
    "tunnelgate_interface_peers_recent_handshake": (
        "gauge", "Peers of the interface with a handshake in the last %d seconds." % RECENT_HANDSHAKE_SECONDS),
    "tunnelgate_interface_up": ("gauge", "1 when the interface is present (expected by a role on this host), else 0."),
    "tunnelgate_killswitch_present": ("gauge", "1 when the kill switch of the mode is installed (saved rules on disk)."),
    "tunnelgate_killswitch_intact": (
        "gauge", "1 when the live rules and routing lock of the kill switch match what was saved, else 0."),
    "tunnelgate_egress_mode": ("gauge", "1 for each way this host sends traffic through WireGuard (role and mode)."),
    "tunnelgate_metrics_timestamp_seconds": ("gauge", "Unix time these metrics were collected."),
}


def key_fingerprint(public_key_b64):
    """The first 16 hex characters of SHA-256 over the raw public key ('' for a malformed key)."""
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
    except (ValueError, TypeError):
        return ""
    if len(raw) != 32:
        return ""
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_dump(text):
    """``wg show all dump`` -> {ifname: [peer, ...]} with only what metrics need (no key but the peers' public ones).

    An interface line has 5 fields (name, private key, public key, port, fwmark), a peer line 9
    (name, public key, preshared key, endpoint, allowed ips, handshake, rx, tx, keepalive). Lines of
    another shape are skipped: metrics must not fail on a newer wg's output.
    """
    interfaces = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 5:
            interfaces.setdefault(fields[0], [])
        elif len(fields) == 9:
            name, public, endpoint, handshake, received, sent = (fields[0], fields[1], fields[3], fields[5],
                                                                 fields[6], fields[7])
            try:
                peer = {"fingerprint": key_fingerprint(public),
                        "endpoint": "" if endpoint == "(none)" else endpoint,
                        "latest_handshake": int(handshake), "received": int(received), "sent": int(sent)}
            except ValueError:
                continue
            interfaces.setdefault(name, []).append(peer)
    return interfaces


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name, labels, value):
    label_text = ",".join('%s="%s"' % (key, _escape(labels[key])) for key in sorted(labels))
    return "%s{%s} %s" % (name, label_text, value) if label_text else "%s %s" % (name, value)


def render(interfaces, fragments, killswitch, now):
    """The exposition text.

    ``interfaces``: parse_dump's result. ``fragments``: {name: {"egress_mode", "interfaces", "killswitch"}}.
    ``killswitch``: {mode: {"present": bool, "intact": bool or None}} (None: not known, no watcher).
    """
    samples = {name: [] for name in HELP}
    expected = set()
    for role, fragment in sorted(fragments.items()):
        samples["tunnelgate_egress_mode"].append(_sample("tunnelgate_egress_mode", {
            "role": role, "mode": fragment.get("egress_mode", "")}, 1))
        expected.update(fragment.get("interfaces", []))
    for ifname in sorted(expected | set(interfaces)):
        peers = interfaces.get(ifname)
        samples["tunnelgate_interface_up"].append(_sample("tunnelgate_interface_up", {"interface": ifname},
                                                          0 if peers is None else 1))
        if peers is None:
            continue
        recent = sum(1 for peer in peers if peer["latest_handshake"] and now - peer["latest_handshake"] <= RECENT_HANDSHAKE_SECONDS)
        samples["tunnelgate_interface_peers"].append(_sample("tunnelgate_interface_peers", {"interface": ifname}, len(peers)))
        samples["tunnelgate_interface_peers_recent_handshake"].append(
            _sample("tunnelgate_interface_peers_recent_handshake", {"interface": ifname}, recent))
        for peer in sorted(peers, key=lambda item: item["fingerprint"]):
            labels = {"interface": ifname, "peer": peer["fingerprint"], "endpoint": peer["endpoint"]}
            samples["tunnelgate_peer_latest_handshake_seconds"].append(
                _sample("tunnelgate_peer_latest_handshake_seconds", labels, peer["latest_handshake"]))
            samples["tunnelgate_peer_receive_bytes_total"].append(
                _sample("tunnelgate_peer_receive_bytes_total", labels, peer["received"]))
            samples["tunnelgate_peer_transmit_bytes_total"].append(
                _sample("tunnelgate_peer_transmit_bytes_total", labels, peer["sent"]))
    for mode, status in sorted(killswitch.items()):
        samples["tunnelgate_killswitch_present"].append(
            _sample("tunnelgate_killswitch_present", {"mode": mode}, 1 if status["present"] else 0))
        if status.get("intact") is not None:
            samples["tunnelgate_killswitch_intact"].append(
                _sample("tunnelgate_killswitch_intact", {"mode": mode}, 1 if status["intact"] else 0))
    samples["tunnelgate_metrics_timestamp_seconds"].append(_sample("tunnelgate_metrics_timestamp_seconds", {}, int(now)))
    lines = []
    for name, (kind, text) in HELP.items():
        if samples[name]:
            lines += ["# HELP %s %s" % (name, text), "# TYPE %s %s" % (name, kind)] + samples[name]
    return "\n".join(lines) + "\n"


def read_fragments(directory=FRAGMENT_DIR):
    fragments = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            fragments[os.path.basename(path)[:-len(".json")]] = data
    return fragments


def killswitch_status(modes, directory=KILLSWITCH_DIR, run=subprocess.call):
    """{mode: {"present", "intact"}} for the kill switch modes the fragments name."""
    status = {}
    for mode in sorted(modes):
        saved = [path for path in glob.glob(os.path.join(directory, mode + ".*")) if not path.endswith(".watch")]
        watcher = os.path.join(directory, mode + ".watch")
        intact = None
        if os.path.exists(watcher):
            with open(os.devnull, "w", encoding="utf-8") as devnull:
                intact = run(["sh", watcher, "--check"], stdout=devnull, stderr=devnull) == 0
        status[mode] = {"present": bool(saved), "intact": intact}
    return status


def write_atomic(directory, text):
    """Write DIR/tunnelgate.prom through a temporary file in DIR and a rename."""
    os.makedirs(directory, 0o755, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tunnelgate.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.rename(temporary, os.path.join(directory, OUTPUT_NAME))
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def collect(fragment_dir=FRAGMENT_DIR, killswitch_dir=KILLSWITCH_DIR, now=None):
    fragments = read_fragments(fragment_dir)
    try:
        dump = subprocess.run(["wg", "show", "all", "dump"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              check=False, env=dict(os.environ, LANG="C", LC_ALL="C")).stdout.decode("utf-8", "replace")
    except OSError:
        dump = ""
    modes = set()
    for fragment in fragments.values():
        modes.update(fragment.get("killswitch", []))
    return render(parse_dump(dump), fragments, killswitch_status(modes, killswitch_dir),
                  time.time() if now is None else now)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write tunnelgate's Prometheus metrics for the node exporter.")
    parser.add_argument("--directory", required=True, help="the node exporter's textfile collector directory")
    args = parser.parse_args(argv)
    write_atomic(args.directory, collect())
    return 0


if __name__ == "__main__":  # run by tunnelgate-metrics.service
    raise SystemExit(main())
