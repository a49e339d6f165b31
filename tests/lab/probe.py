"""Leak probe, run ON a lab client: TCP, UDP, ICMP and DNS (UDP and TCP) to both sentinel addresses.

    python3 probe.py [BIND_DEVICE] [TIMEOUT]

With BIND_DEVICE, every socket is bound to that device (SO_BINDTODEVICE), which a kill switch
built only from routes lets through. Prints JSON {"<kind>/<v4|v6>": "SRC <addr>" | "ok" | "fail: ..."}.
Bounded: one attempt per probe. Only the lab's sentinel addresses are contacted.
"""
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
