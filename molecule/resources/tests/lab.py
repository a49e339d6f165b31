"""Test helpers shared by the Molecule verifiers: the lab internet's sentinel and leak probes.

Import from a scenario's tests with:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources", "tests"))
    import lab
"""

import difflib
import json
import os
import re
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


# What "the host is unchanged" means for the collection: addresses, policy rules, routes, firewall
# (both families, both backends), our files and units, the resolver. Counters and lifetimes dropped.
SNAPSHOT_DIRS = ("/etc/wireguard", "/etc/tunnelgate", "/etc/systemd/system", "/usr/local/sbin", "/var/lib/tunnelgate")
_SNAPSHOT_COMMANDS = {
    "ip rule": "ip rule; ip -6 rule",
    "routes": "ip route show table all; ip -6 route show table all",
    "iptables": "iptables-save 2>/dev/null; ip6tables-save 2>/dev/null",
    "nft": "command -v nft >/dev/null && nft list ruleset || true",
    "files": "find %s -printf '%%p %%m %%s\\n' 2>/dev/null | sort" % " ".join(SNAPSHOT_DIRS),
    "units": "systemctl list-unit-files --no-legend --no-pager 'tunnelgate*' 'wg-quick@*' 2>/dev/null || true",
    "resolv.conf": "cat /etc/resolv.conf",
}


def snapshot(host):
    """The host's network and configuration state as comparable text, one entry per aspect (one exec)."""
    marker = "=====tunnelgate-snapshot "
    script = "ip -j addr; " + "".join("echo '%s%s'; %s; " % (marker, name, command)
                                      for name, command in _SNAPSHOT_COMMANDS.items())
    text = host.check_output("sh -c %s" % shlex.quote(script))
    parts = text.split(marker)
    data = json.loads(parts[0])
    for link in data:
        for addr in link.get("addr_info", []):
            addr.pop("valid_life_time", None)
            addr.pop("preferred_life_time", None)
    state = {"ip addr": json.dumps(data, indent=1, sort_keys=True)}
    for part in parts[1:]:
        name, _newline, body = part.partition("\n")
        if name == "iptables":
            body = _iptables_without_empty_tables(body)
        elif name == "nft":
            body = _nft_without_empty_chains(body)
        state[name] = body.strip("\n")
    return state


def snapshot_diff(before, after):
    """'' when equal, otherwise a unified diff of the aspects that changed."""
    out = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            out.extend(difflib.unified_diff((before.get(name) or "").splitlines(), (after.get(name) or "").splitlines(),
                                            "%s before" % name, "%s after" % name, lineterm=""))
    return "\n".join(out)


def _iptables_without_empty_tables(text):
    """iptables-save without comments, counters and tables that hold no rule and only ACCEPT policies
    (a table that merely exists because a tool once listed it is no state)."""
    kept, table = [], []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        line = re.sub(r" \[\d+:\d+\]$", "", line)
        table.append(line)
        if line == "COMMIT":
            body = table[1:-1]
            if any(not re.match(r"^:\S+ ACCEPT$", entry) for entry in body):
                kept.extend(table)
            table = []
    return "\n".join(kept + table)


def _nft_without_empty_chains(text):
    """nft list ruleset without base chains that have no rule and policy accept, and without tables
    left empty by that."""
    out, table, chain = [], None, None
    for line in text.splitlines():
        stripped = line.strip()
        if table is None:
            if stripped.startswith("table ") and stripped.endswith("{"):
                table = [line]
            elif stripped:
                out.append(line)
        elif chain is not None:
            chain.append(line)
            if stripped == "}":
                body = [entry.strip() for entry in chain[1:-1] if entry.strip()]
                if any(not re.match(r"^type \S+ hook \S+ .*policy accept;$", entry) for entry in body):
                    table.extend(chain)
                chain = None
        elif stripped.startswith("chain ") and stripped.endswith("{"):
            chain = [line]
        elif stripped == "}":
            if any(entry.strip() for entry in table[1:]):
                out.extend(table + [line])
            table = None
        else:
            table.append(line)
    return "\n".join(out)
