"""The lab internet's leak sentinel.

* echo target: TCP :80 and UDP :7 on the sentinel addresses answer "SRC <address>" so a client
  learns which address the internet sees;
* sink resolver: DNS on :53 (UDP and TCP) answers every A/AAAA query with the sentinel address
  (or, for a name listed in /etc/lab/dns-records, with the addresses listed there);
* packet log: tcpdump on the uplink records EVERY packet addressed to the sentinel addresses,
  whatever its protocol, so a leak is seen even when no service answers it.

Everything is appended as JSON lines under /var/log/lab/: requests.jsonl, dns.jsonl, packets.jsonl.
`lab-sentinel report` summarises them.
"""
import asyncio
import json
import os
import struct
import subprocess
import threading
import time

LOG_DIR = "/var/log/lab"
SENTINEL_V4 = "198.51.100.10"
SENTINEL_V6 = "2001:db8:100::10"


def record(name, **fields):
    fields.setdefault("ts", time.time())
    with open(os.path.join(LOG_DIR, name), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(fields) + "\n")


def split_addr_port(token):
    """tcpdump prints 'a.b.c.d.port' / 'v6addr.port' / 'addr' (ICMP): return (addr, port|None)."""
    token = token.rstrip(":,")
    if ":" in token:  # IPv6: the port, if any, is after the last dot
        head, dummy_sep, tail = token.rpartition(".")
        return (head, tail) if head and tail.isdigit() else (token, None)
    parts = token.split(".")
    if len(parts) == 5:
        return ".".join(parts[:4]), parts[4]
    return token, None


def classify(rest):
    """Protocol of a tcpdump line from what follows the addresses."""
    if "ICMP" in rest:
        return "icmp"
    if "Flags [" in rest:
        return "tcp"
    if "UDP" in rest or "udp" in rest.split() or "A?" in rest or "AAAA?" in rest:
        return "udp"
    return "other"


def packet_logger():
    argv = ["tcpdump", "-l", "-n", "-tt", "-i", "any",
            "dst host %s or dst host %s" % (SENTINEL_V4, SENTINEL_V6)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        fields = line.split()
        # '<ts> [iface [In|Out]] IP|IP6 <src> > <dst>: <rest>' (with -i any: iface and direction)
        try:
            idx = next(i for i, f in enumerate(fields) if f in ("IP", "IP6"))
            src, sport = split_addr_port(fields[idx + 1])
            dst, dport = split_addr_port(fields[idx + 3])
        except (StopIteration, IndexError):
            continue
        rest = " ".join(fields[idx + 4:])
        proto = classify(rest)
        record("packets.jsonl", ts=float(fields[0]), src=src, dst=dst, sport=sport, dport=dport, proto=proto)


class EchoTCP(asyncio.Protocol):
    def connection_made(self, transport):
        peer = transport.get_extra_info("peername")[0]
        record("requests.jsonl", src=peer, proto="tcp")
        transport.write(("SRC %s\n" % peer).encode())
        transport.close()


class EchoUDP(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        record("requests.jsonl", src=addr[0], proto="udp")
        self.transport.sendto(("SRC %s\n" % addr[0]).encode(), addr)


RECORDS_FILE = "/etc/lab/dns-records"


def records(path=RECORDS_FILE):
    """Optional fixed answers: lines ``NAME ADDRESS [ADDRESS...]`` in ``path`` (read at every query,
    so a test can change them at any time). Names not listed get the sentinel address as before."""
    import ipaddress
    found = {}
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2:
                    found[fields[0].lower().rstrip(".") + "."] = [ipaddress.ip_address(a) for a in fields[1:]]
    except (OSError, ValueError):
        return {}
    return found


def dns_answer(query):
    """Parse one question; answer A/AAAA with the sentinel address (or the addresses the records
    file gives the name). Returns (qname, qtype, reply)."""
    qid, dummy_flags, qdcount = struct.unpack("!HHH", query[:6])
    pos, labels = 12, []
    while qdcount and pos < len(query) and query[pos]:
        length = query[pos]
        labels.append(query[pos + 1:pos + 1 + length].decode("ascii", "replace"))
        pos += 1 + length
    pos += 1
    qtype = struct.unpack("!H", query[pos:pos + 2])[0] if pos + 2 <= len(query) else 0
    question = query[12:pos + 4]
    qname = ".".join(labels) + "."
    answers, count = b"", 0
    fixed = records().get(qname.lower())
    if qtype in (1, 28) and fixed is not None:
        for address in fixed:
            if (address.version == 4) == (qtype == 1):
                answers += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 5, len(address.packed)) + address.packed
                count += 1
    elif qtype == 1:
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes(int(x) for x in SENTINEL_V4.split("."))
        count = 1
    elif qtype == 28:
        import ipaddress
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, 60, 16) + ipaddress.ip_address(SENTINEL_V6).packed
        count = 1
    header = struct.pack("!HHHHHH", qid, 0x8180, 1, count, 0, 0)
    return qname, qtype, header + question + answers


class DnsUDP(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        try:
            qname, qtype, reply = dns_answer(data)
        except (struct.error, IndexError):
            return
        record("dns.jsonl", src=addr[0], qname=qname, qtype=qtype, proto="udp")
        self.transport.sendto(reply, addr)


async def dns_tcp(reader, writer):
    peer = writer.get_extra_info("peername")[0]
    try:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
        qname, qtype, reply = dns_answer(await reader.readexactly(length))
        record("dns.jsonl", src=peer, qname=qname, qtype=qtype, proto="tcp")
        writer.write(struct.pack("!H", len(reply)) + reply)
        await writer.drain()
    except (asyncio.IncompleteReadError, struct.error, IndexError):
        pass
    finally:
        writer.close()


async def main():
    os.makedirs(LOG_DIR, exist_ok=True)
    threading.Thread(target=packet_logger, daemon=True).start()
    loop = asyncio.get_running_loop()
    for host in (SENTINEL_V4, SENTINEL_V6):
        await loop.create_server(EchoTCP, host, 80)
        await loop.create_datagram_endpoint(EchoUDP, local_addr=(host, 7))
        await loop.create_datagram_endpoint(DnsUDP, local_addr=(host, 53))
        await asyncio.start_server(dns_tcp, host, 53)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
