# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the server role's peer planning (filter ``server_plan``) at fleet scale.

The server role computes every peer of an exit server in one pure call over the WHOLE inventory
(that is what makes ``--limit`` safe). This measures that call for 10, 100, 1000 and 10000 clients:

* ``first run``: no state yet, every client gets a new address;
* ``rerun``: the state from the first run is read back (the steady state of a fleet);
* ``one new host``: the rerun plus one client added (what adding a host costs).

Median of 5 runs each, and the ratio to the size ten times smaller (10 means linear, 100 quadratic).
Runs on the controller only; no host or network is touched.

    python benchmarks/server_plan.py [--sizes 10,100,1000,10000] [--runs 5]
"""

import argparse
import base64
import json
import os
import statistics
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))
import conftest  # noqa: E402  (the unit tests' import set-up)

sys.path.insert(0, conftest.collection_root())

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import server_plan  # noqa: E402

PROFILES = {"bench": {"server": "exit-1", "network": ["10.64.0.0/14", "fd66::/64"], "port": 51820}}


def inventory(size):
    hosts = ["client-%05d" % i for i in range(size)]
    hostvars = {
        host: {"tunnelgate_profile": "bench",
               "tunnelgate_public_key": base64.b64encode(i.to_bytes(32, "big")).decode()}
        for i, host in enumerate(hosts, start=1)
    }
    hostvars["exit-1"] = {}
    return hostvars, {"vpn_servers": ["exit-1"], "vpn_hosts": hosts}


def median_seconds(call, runs):
    times = []
    for dummy in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    server_key = base64.b64encode(b"\xff" * 32).decode()
    rows = []
    for size in sizes:
        hostvars, groups = inventory(size)
        first = server_plan(hostvars, "exit-1", groups, PROFILES, None, server_key)
        state = first["state"]
        bigger_vars, bigger_groups = inventory(size + 1)
        rows.append({
            "clients": size,
            "first_run_s": median_seconds(lambda: server_plan(hostvars, "exit-1", groups, PROFILES, None, server_key), args.runs),
            "rerun_s": median_seconds(lambda: server_plan(hostvars, "exit-1", groups, PROFILES, state, server_key), args.runs),
            "one_new_host_s": median_seconds(
                lambda: server_plan(bigger_vars, "exit-1", bigger_groups, PROFILES, state, server_key), args.runs),
        })
    print("%8s %12s %8s %12s %8s %14s" % ("clients", "first run s", "ratio", "rerun s", "ratio", "one new host s"))
    by_size = {r["clients"]: r for r in rows}
    for row in rows:
        smaller = by_size.get(row["clients"] // 10)
        ratio_first = "%.1f" % (row["first_run_s"] / smaller["first_run_s"]) if smaller else "-"
        ratio_rerun = "%.1f" % (row["rerun_s"] / smaller["rerun_s"]) if smaller else "-"
        print("%8d %12.4f %8s %12.4f %8s %14.4f" % (
            row["clients"], row["first_run_s"], ratio_first, row["rerun_s"], ratio_rerun, row["one_new_host_s"]))
    out_dir = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "server_plan-%d.json" % time.time()), "w", encoding="utf-8") as handle:
        json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
