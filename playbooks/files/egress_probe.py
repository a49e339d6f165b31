# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ask an "what is my address" service which address it sees; print that address (or nothing).

URL forms: http(s)://... (the first IP address in the body), tcp://HOST:PORT (the first IP address in
the first line the service sends). Run on a VPN host by playbooks/verify.yml; one request, 10 s timeout.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
import urllib.parse
import urllib.request

CANDIDATE = re.compile(r"[0-9A-Fa-f:.]{3,}")


def first_address(text):
    for token in CANDIDATE.findall(text):
        try:
            return str(ipaddress.ip_address(token.strip(".:")))
        except ValueError:
            continue
    return ""


def main():
    url = sys.argv[1]
    parsed = urllib.parse.urlsplit(url)
    try:
        if parsed.scheme == "tcp":
            with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
                text = sock.recv(512).decode("utf-8", "replace")
        else:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the user's URL
                text = response.read(4096).decode("utf-8", "replace")
    except OSError as exc:
        print("", end="")
        sys.stderr.write("%s: %s\n" % (url, exc))
        sys.exit(1)
    print(first_address(text))


if __name__ == "__main__":
    main()
