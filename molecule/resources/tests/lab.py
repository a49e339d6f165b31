"""Test helpers shared by the Molecule verifiers: the lab internet's sentinel and leak probes.

Import from a scenario's tests with:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources", "tests"))
    import lab
"""

import json
import os
import shlex

SENTINEL_V4 = "198.51.100.10"
SENTINEL_V6 = "2001:db8:100::10"

# The probe lives in tests/lab/probe.py (also used by the demo): TCP, UDP, ICMP and DNS to both
# sentinel addresses, optionally from a socket bound to one device (SO_BINDTODEVICE).
_PROBE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "lab", "probe.py")
with open(_PROBE_PATH, encoding="utf-8") as _handle:
    _PROBE = _handle.read()


class Sentinel:
    """The lab internet as seen by a verifier (a testinfra host of the internet container)."""

    def __init__(self, host):
        self.host = host

    def now(self):
        return float(self.host.check_output("lab-sentinel now"))

    def report(self, since=0.0, until=None):
        cmd = "lab-sentinel report --since %f" % since
        if until is not None:
            cmd += " --until %f" % until
        return json.loads(self.host.check_output(cmd))

    def seen_from(self, addresses, since=0.0, until=None):
        """Counts of packets/requests/dns queries whose source is one of ``addresses``."""
        rep = self.report(since, until)
        wanted = set(addresses)
        return {
            kind: sum(n for src, n in rep[kind].items() if src in wanted)
            for kind in ("packets", "requests", "dns")
        }


def probe(host, bind_device=None, timeout=1.0):
    """Run the leak probe on ``host``; returns {"tcp/v4": "SRC 1.2.3.4" | "fail: ...", ...}."""
    cmd = "python3 -c %s %s %s" % (shlex.quote(_PROBE), shlex.quote(bind_device or ""), timeout)
    return json.loads(host.check_output(cmd))


def global_addresses(host, dev="eth0"):
    """The host's global IPv4/IPv6 addresses on ``dev`` (its identity on the uplink)."""
    data = json.loads(host.check_output("ip -j addr show dev %s" % dev))
    return [a["local"] for link in data for a in link.get("addr_info", []) if a.get("scope") == "global"]
