# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only probe for playbooks/verify.yml, run on a VPN host with python3.

Prints JSON: which kill switch is hooked (iptables, nftables or absent, for IPv4 AND IPv6), the DNS
servers in use, and the host's own global addresses outside the tunnel (the egress check compares
against them). Changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ENV = dict(os.environ, LANG="C", LC_ALL="C")


def run(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 127, ""
    return proc.returncode, proc.stdout


def killswitch():
    if all(run([tool, "-w", "-C", "OUTPUT", "-j", "TUNNELGATE-OUT"])[0] == 0 for tool in ("iptables", "ip6tables")):
        return "iptables"
    if run(["nft", "list", "chain", "inet", "tunnelgate", "host_output"])[0] == 0:
        return "nftables"
    return "absent"


def dns(interface):
    servers = []
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    servers.append(parts[1])
    except OSError:
        pass
    if servers and all(s.startswith("127.0.0.5") for s in servers):
        # systemd-resolved's stub: ask which servers the tunnel link uses
        rc, out = run(["resolvectl", "dns", interface])
        if rc == 0 and ":" in out:
            servers = out.split(":", 1)[1].split()
    return servers


def own_addresses(interface):
    rc, out = run(["ip", "-j", "addr", "show"])
    if rc != 0:
        return []
    found = []
    for link in json.loads(out or "[]"):
        if link.get("ifname") in (interface, "lo"):
            continue
        for info in link.get("addr_info", []):
            if info.get("scope") == "global":
                found.append(info["local"])
    return found


def main():
    interface = sys.argv[1] if len(sys.argv) > 1 else "wg0"
    print(json.dumps({"killswitch": killswitch(), "dns": dns(interface), "own_addresses": own_addresses(interface)}))


if __name__ == "__main__":
    main()
