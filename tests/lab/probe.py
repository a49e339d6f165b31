"""Leak probe, run ON a lab client: TCP, UDP, ICMP and DNS (UDP and TCP) to both sentinel addresses.

    python3 probe.py [BIND_DEVICE] [TIMEOUT]

With BIND_DEVICE, every socket is bound to that device (SO_BINDTODEVICE), which a kill switch
built only from routes lets through. Prints JSON {"<kind>/<v4|v6>": "SRC <addr>" | "ok" | "fail: ..."}.
Bounded: one attempt per probe. Only the lab's sentinel addresses are contacted.
"""

import json
import socket
import subprocess
import sys

TARGETS = {"v4": ("198.51.100.10", socket.AF_INET), "v6": ("2001:db8:100::10", socket.AF_INET6)}
DNS_QUERY = bytes.fromhex("abcd01000001000000000000") + b"\x05probe\x03lab\x00\x00\x01\x00\x01"


def make_socket(family, kind, bind, timeout):
    sock = socket.socket(family, kind)
    sock.settimeout(timeout)
    if bind:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, bind.encode())
    return sock


def probe_one(kind, addr, family, bind, timeout):
    """One probe; returns what the internet answered, 'ok', or 'fail: <why>'."""
    try:
        if kind == "tcp":
            with make_socket(family, socket.SOCK_STREAM, bind, timeout) as sock:
                sock.connect((addr, 80))
                return sock.recv(100).decode().strip()
        if kind == "udp":
            with make_socket(family, socket.SOCK_DGRAM, bind, timeout) as sock:
                sock.sendto(b"probe", (addr, 7))
                return sock.recvfrom(100)[0].decode().strip()
        if kind == "dns":
            with make_socket(family, socket.SOCK_DGRAM, bind, timeout) as sock:
                sock.sendto(DNS_QUERY, (addr, 53))
                sock.recvfrom(512)
                return "ok"
        with make_socket(family, socket.SOCK_STREAM, bind, timeout) as sock:  # DNS over TCP
            sock.connect((addr, 53))
            sock.sendall(len(DNS_QUERY).to_bytes(2, "big") + DNS_QUERY)
            sock.recv(512)
            return "ok"
    except OSError as exc:
        return "fail: %s" % (exc.strerror or exc.__class__.__name__)


def ping(addr, bind, timeout):
    argv = ["ping", "-c", "1", "-W", str(max(1, int(timeout))), addr]
    if bind:
        argv[1:1] = ["-I", bind]
    return "ok" if subprocess.run(argv, capture_output=True, check=False).returncode == 0 else "fail"


def main():
    bind = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    out = {}
    for fam, (addr, family) in TARGETS.items():
        for kind in ("tcp", "udp", "dns", "dnstcp"):
            out["%s/%s" % (kind, fam)] = probe_one(kind, addr, family, bind, timeout)
        out["icmp/%s" % fam] = ping(addr, bind, timeout)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
