"""Test helpers shared by the Molecule verifiers: the lab internet's sentinel and leak probes.

Import from a scenario's tests with:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources", "tests"))
    import lab
"""

import json
import shlex

SENTINEL_V4 = "198.51.100.10"
SENTINEL_V6 = "2001:db8:100::10"

# Sent from a client: TCP, UDP, ICMP and DNS to both sentinel addresses, optionally from a socket
# bound to one device (SO_BINDTODEVICE), which a naive kill switch based on routes lets through.
# Prints a JSON dict {"<kind>/<family>": "ok"|"fail"|"error: ..."}. Bounded: one try each.
_PROBE = r'''
import json, socket, subprocess, sys
bind = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
targets = {"v4": ("198.51.100.10", socket.AF_INET), "v6": ("2001:db8:100::10", socket.AF_INET6)}
dns_query = bytes.fromhex("abcd01000001000000000000") + b"\x05probe\x03lab\x00\x00\x01\x00\x01"
out = {}
def sock(family, kind):
    s = socket.socket(family, kind)
    s.settimeout(timeout)
    if bind:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, bind.encode())
    return s
for fam, (addr, family) in targets.items():
    for kind in ("tcp", "udp", "dns", "dnstcp"):
        key = "%s/%s" % (kind, fam)
        try:
            if kind == "tcp":
                with sock(family, socket.SOCK_STREAM) as s:
                    s.connect((addr, 80)); out[key] = s.recv(100).decode().strip()
            elif kind == "udp":
                with sock(family, socket.SOCK_DGRAM) as s:
                    s.sendto(b"probe", (addr, 7)); out[key] = s.recvfrom(100)[0].decode().strip()
            elif kind == "dns":
                with sock(family, socket.SOCK_DGRAM) as s:
                    s.sendto(dns_query, (addr, 53)); s.recvfrom(512); out[key] = "ok"
            else:
                with sock(family, socket.SOCK_STREAM) as s:
                    s.connect((addr, 53)); s.sendall(len(dns_query).to_bytes(2, "big") + dns_query); s.recv(512); out[key] = "ok"
        except OSError as exc:
            out[key] = "fail: %s" % (exc.strerror or exc.__class__.__name__)
    argv = ["ping", "-c", "1", "-W", str(max(1, int(timeout))), addr]
    if bind:
        argv[1:1] = ["-I", bind]
    out["icmp/%s" % fam] = "ok" if subprocess.run(argv, capture_output=True).returncode == 0 else "fail"
print(json.dumps(out))
'''


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
