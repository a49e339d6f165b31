#!/usr/bin/env bash
# The tunnelgate lab demo, from a fresh Debian 12 machine (as root):
#
#   scripts/demo.sh        build the lab (exit server, VPN hosts on Debian 12 and 13, a Docker host with a
#                          tunneled and a plain Docker network, a simulated Kubernetes node with pods, the
#                          leak-checking "internet"), run the collection over it and print what it proved;
#                          exits non-zero when anything leaked or egress was not via the exit
#   scripts/demo.sh down   remove the lab's containers (with their volumes) and network
#
# Everything stays inside the lab's own Docker network (internal: no route off this machine); the Docker host's
# and the Kubernetes node's own networks live inside those containers.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TG_ROOT"

lab_dir=tests/lab/demo
export ANSIBLE_CONFIG="$TG_ROOT/$lab_dir/ansible.cfg"

case "${1:-up}" in
    up)
        start=$SECONDS
        tg_setup
        tg_images
        tg_log "starting the lab containers"
        ansible-playbook "$lab_dir/lab.yml" -e lab_state=started >/dev/null
        tg_log "running the collection over the lab"
        ansible-playbook -i "$lab_dir/inventory.yml" "$lab_dir/demo.yml"
        tg_log "demo finished in $((SECONDS - start))s (scripts/demo.sh down removes the lab)"
        ;;
    down)
        tg_venv
        tg_docker
        tg_collection_path
        ansible-playbook "$lab_dir/lab.yml" -e lab_state=absent >/dev/null
        tg_log "lab removed"
        ;;
    *)
        echo "usage: $0 [up|down]" >&2
        exit 2
        ;;
esac
