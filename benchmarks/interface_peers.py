# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: an idempotent run of tunnelgate.wireguard.interface with 1, 100 and 1000 peers.

What is timed is the module process ON the managed host (AnsiballZ payload: unpacking, argument
validation of every peer, reading the live state with `wg show dump`/`ip -j`, the plan), not the
controller's start-up or the connection. How:

1. start a throw-away lab container (`--network none`: no traffic leaves it; wireguard-go over
   /dev/net/tun, as in the Molecule scenarios) and create a key there with `wg genkey`;
2. for each size: run a playbook that converges the interface with N peers, then the same playbook
   again with ANSIBLE_KEEP_REMOTE_FILES=1 (it must report changed=false), which leaves the module's
   AnsiballZ payload with its arguments on the host;
3. run that payload 5 times inside the container, check each run says changed=false, and take the
   median wall time.

Results: a table on stdout and benchmarks/results/interface_peers-<time>.json (gitignored).
Needs: scripts/env.sh sourced (ansible + community.docker), Docker, the lab image.

    python benchmarks/interface_peers.py [--sizes 1,100,1000] [--runs 5] [--image IMAGE]
"""

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CONTAINER = "tunnelgate-bench-interface"
TARGET_SECONDS = 1.0

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Interface with many peers
      tunnelgate.wireguard.interface:
        name: wgbench
        addresses: [10.66.0.1/16, fd66::1/64]
        listen_port: 51820
        private_key_path: /etc/wireguard/keys/wgbench.key
        enabled: false
        peers: "{{ bench_peers }}"
      register: bench_result
    - name: Report
      ansible.builtin.debug:
        msg: "changed={{ bench_result.changed }}"
"""

TIMER = r"""
import json, resource, subprocess, sys, time
payload, runs = sys.argv[1], int(sys.argv[2])
times, cpu = [], []
for _ in range(runs):
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, payload], capture_output=True, text=True)
    times.append(time.monotonic() - start)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append(after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime)
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    if result.get("failed") or result.get("changed"):
        print(json.dumps({"error": result}))
        sys.exit(1)
print(json.dumps({"times": times, "cpu": cpu}))
"""


def peers(count):
    out = []
    for i in range(count):
        key = base64.b64encode(hashlib.sha256(b"tunnelgate-bench-%d" % i).digest()).decode()
        host = i + 2
        out.append({
            "public_key": key,
            "description": "bench-%d" % i,
            "allowed_ips": ["10.66.%d.%d/32" % (host // 256, host % 256), "fd66::%x/128" % host],
        })
    return out


def sh(argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def start_container(image):
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    sh(["docker", "run", "-d", "--name", CONTAINER, "--network", "none", "--cap-add", "NET_ADMIN",
        "--device", "/dev/net/tun", "--sysctl", "net.ipv6.conf.all.disable_ipv6=0",
        "--sysctl", "net.ipv6.conf.default.disable_ipv6=0", "--entrypoint", "sleep", image, "infinity"])
    sh(["docker", "exec", CONTAINER, "bash", "-c",
        "umask 077 && mkdir -p /etc/wireguard/keys && wg genkey > /etc/wireguard/keys/wgbench.key"])


def converge(workdir, count, keep):
    vars_path = os.path.join(workdir, "vars-%d.json" % count)
    with open(vars_path, "w") as handle:
        json.dump({"bench_peers": peers(count)}, handle)
    env = dict(os.environ, ANSIBLE_KEEP_REMOTE_FILES="1" if keep else "0", ANSIBLE_STDOUT_CALLBACK="default")
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    proc = subprocess.run(["ansible-playbook", "-i", os.path.join(workdir, "inventory.yml"), "-e", "@" + vars_path,
                           os.path.join(workdir, "playbook.yml")], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit("converge with %d peers failed:\n%s" % (count, proc.stdout[-3000:] + proc.stderr[-3000:]))
    return "changed=False" in proc.stdout


def newest_payload():
    out = sh(["docker", "exec", CONTAINER, "bash", "-c",
              "ls -t /root/.ansible/tmp/*/AnsiballZ_interface.py | head -1"]).stdout.strip()
    if not out:
        sys.exit("no AnsiballZ_interface.py kept on the host")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="1,100,1000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default=os.environ.get("TUNNELGATE_IMAGE_BOOKWORM", "tunnelgate-lab/node:bookworm"))
    parser.add_argument("--keep", action="store_true", help="keep the container afterwards")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    workdir = tempfile.mkdtemp(prefix="tunnelgate-bench-")
    with open(os.path.join(workdir, "playbook.yml"), "w") as handle:
        handle.write(PLAYBOOK)
    with open(os.path.join(workdir, "inventory.yml"), "w") as handle:
        handle.write("all:\n  hosts:\n    %s:\n      ansible_connection: community.docker.docker\n"
                     "      ansible_python_interpreter: /usr/bin/python3\n" % CONTAINER)

    start_container(args.image)
    rows = []
    try:
        for count in sizes:
            converge(workdir, count, keep=False)
            if not converge(workdir, count, keep=True):
                sys.exit("the second run with %d peers was not idempotent" % count)
            live = int(sh(["docker", "exec", CONTAINER, "bash", "-c", "wg show wgbench peers | wc -l"]).stdout)
            if live != count:
                sys.exit("expected %d live peers, found %d" % (count, live))
            payload = newest_payload()
            proc = subprocess.run(["docker", "exec", CONTAINER, "python3", "-c", TIMER, payload, str(args.runs)],
                                  capture_output=True, text=True, check=False)
            data = json.loads(proc.stdout.strip().splitlines()[-1])
            if "error" in data:
                sys.exit("module run with %d peers failed or changed: %s" % (count, data["error"]))
            times = data["times"]
            rows.append({"peers": count, "runs": len(times), "median_s": statistics.median(times),
                         "min_s": min(times), "max_s": max(times), "times_s": times,
                         "cpu_median_s": statistics.median(data["cpu"]), "cpu_s": data["cpu"]})
            sh(["docker", "exec", CONTAINER, "bash", "-c", "rm -rf /root/.ansible/tmp/*"])
    finally:
        if not args.keep:
            subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)

    cpu = ""
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    report = {"benchmark": "interface idempotent run", "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "loadavg": os.getloadavg(),
              "image": args.image, "cpu": cpu, "nproc": os.cpu_count(), "target_s_at_1000": TARGET_SECONDS,
              "results": rows}
    results_dir = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, "interface_peers-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)

    print("tunnelgate.wireguard.interface, idempotent run on the host (median of %d; load %.1f %.1f %.1f on %d CPUs)"
          % ((args.runs,) + tuple(os.getloadavg()) + (os.cpu_count(),)))
    print("%8s  %10s  %8s  %8s  %12s" % ("peers", "median s", "min s", "max s", "CPU median s"))
    for row in rows:
        print("%8d  %10.3f  %8.3f  %8.3f  %12.3f" % (
            row["peers"], row["median_s"], row["min_s"], row["max_s"], row["cpu_median_s"]))
    big = [r for r in rows if r["peers"] == 1000]
    if big:
        verdict = "OK" if big[0]["median_s"] < TARGET_SECONDS else "OVER TARGET (wall time; see CPU time and load)"
        print("target < %.1f s at 1000 peers: %s" % (TARGET_SECONDS, verdict))
    print("results: %s" % os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
