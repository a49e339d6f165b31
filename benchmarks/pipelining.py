# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: what Ansible's pipelining does to a run over ``docker exec`` (the lab's connection).

Without pipelining every remote task costs several round trips (make a temporary directory, copy the module,
run it, remove the directory); with it, one. On a fleet the controller's CPU is the bottleneck, so this is the
first thing to set. This starts N lab containers (no network), runs a play of T no-op tasks (``command: true``)
over them with pipelining off and on, R times each, and reports the median wall time and controller CPU
(user + system of ansible-playbook and its children: the docker CLI calls) and the ratio on/off.

    python benchmarks/pipelining.py [--hosts 5] [--tasks 20] [--runs 3]

Needs Docker and the lab image (tests/lab/build-images.sh). The containers are removed at the end.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
IMAGE = os.environ.get("TUNNELGATE_IMAGE_BOOKWORM", "tunnelgate-lab/node:bookworm")
PLAY = """- hosts: all
  gather_facts: false
  tasks:
    - name: A no-op task
      ansible.builtin.command: "true"
      loop: "{{ range(%d) | list }}"
      changed_when: false
"""


def run_play(inventory, play, pipelining):
    env = dict(os.environ, ANSIBLE_PIPELINING=str(pipelining), ANSIBLE_FORKS="10")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", inventory, "-c", "community.docker.docker",
                           "-e", "ansible_python_interpreter=/usr/bin/python3", play],
                          env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit("ansible-playbook failed:\n%s%s" % (proc.stdout, proc.stderr))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    names = ["tg-bench-pipe-%d" % i for i in range(args.hosts)]
    for name in names:
        subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "--network", "none", IMAGE, "sleep", "3600"],
                       check=True, capture_output=True)
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            inventory = os.path.join(tmp, "inventory")
            with open(inventory, "w", encoding="utf-8") as handle:
                handle.write("\n".join(names) + "\n")
            play = os.path.join(tmp, "play.yml")
            with open(play, "w", encoding="utf-8") as handle:
                handle.write(PLAY % args.tasks)
            for _repetition in range(args.runs):
                for pipelining in (False, True):  # interleaved: load changes hit both settings alike
                    results.setdefault(pipelining, []).append(run_play(inventory, play, pipelining))
    finally:
        subprocess.run(["docker", "rm", "-f"] + names, check=False, capture_output=True)
    summary = {}
    for pipelining, runs in results.items():
        summary["on" if pipelining else "off"] = {"wall_s": round(statistics.median(r[0] for r in runs), 2),
                                                  "cpu_s": round(statistics.median(r[1] for r in runs), 2)}
    summary["ratio_on_off"] = {k: round(summary["on"][k] / summary["off"][k], 2) for k in ("wall_s", "cpu_s")}
    summary["setup"] = {"hosts": args.hosts, "tasks": args.tasks, "runs": args.runs, "cores": os.cpu_count()}
    print("pipelining  median wall (s)  median controller CPU (s)   [%d hosts x %d tasks, %d runs]"
          % (args.hosts, args.tasks, args.runs))
    for key in ("off", "on"):
        print("%-10s  %15.2f  %25.2f" % (key, summary[key]["wall_s"], summary[key]["cpu_s"]))
    print("ratio on/off: wall %.2f, CPU %.2f" % (summary["ratio_on_off"]["wall_s"], summary["ratio_on_off"]["cpu_s"]))
    out_dir = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "pipelining.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
