#!/usr/bin/env bash
# Build the lab's container images locally: no registry is reachable from the lab machines.
#
#   base:  debootstrap (minbase) of a Debian suite, then `docker import`
#   node:  FROM base, systemd as PID 1 + WireGuard (tools + wireguard-go) + nftables + probes
#   internet: FROM node:bookworm, the leak sentinel (echo target + sink resolver + packet log)
#   node:bookworm-dhclient, node:trixie-resolved: FROM node:SUITE, plus ISC dhclient / systemd-resolved
#   node-ssh: FROM node:bookworm, plus openssh-server (disabled; scenarios that need SSH enable it)
#   node-k8s: FROM node:bookworm, plus the CNI plugins and conntrack (simulated Kubernetes node, lab-pod)
#   node-docker: FROM node:SUITE, plus docker.io (Docker-in-Docker hosts of the docker_gateway scenario)
#
# Every image is tagged with a hash of its inputs, so a rerun with unchanged inputs only checks
# that the tags exist (seconds). A moving tag (node:bookworm, node:trixie, internet:latest, node-ssh:bookworm, node-k8s:bookworm) points
# at the current build; Molecule platforms default to those tags.
#
# Usage: tests/lab/build-images.sh [suite ...]     (default: bookworm trixie)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mirror=${TUNNELGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache_dir=${TUNNELGATE_LAB_CACHE:-/var/cache/tunnelgate-lab}
base_packages=python3,iproute2,iptables,procps
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie)

docker_bin=$(command -v /usr/bin/docker || command -v docker)
log() { printf '[images] %s\n' "$*" >&2; }
have_image() { "$docker_bin" image inspect "$1" >/dev/null 2>&1; }
hash_of() { sha256sum | cut -c1-12; }

build_base() {
    local suite=$1 hash tag rootfs
    # the inputs of the base image only (not the whole script: adding a derived image must not re-run debootstrap)
    hash=$(printf '%s\n%s\n%s\n' "$suite" "$base_packages" "$(declare -f build_base | sha256sum | cut -d' ' -f1)" | hash_of)
    tag="tunnelgate-lab/base:${suite}-${hash}"
    if ! have_image "$tag"; then
        rootfs="$cache_dir/rootfs-$suite-$hash"
        rm -rf "$rootfs"
        mkdir -p "$cache_dir"
        log "debootstrap $suite (takes about a minute)"
        debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" "$mirror" \
            >"$cache_dir/debootstrap-$suite.log" 2>&1 || { tail -20 "$cache_dir/debootstrap-$suite.log" >&2; exit 1; }
        # apt inside later builds uses the same mirror; no docs or caches in the image.
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -c . | "$docker_bin" import - "$tag" >/dev/null
        rm -rf "$rootfs"
    fi
    "$docker_bin" tag "$tag" "tunnelgate-lab/base:${suite}"
    echo "$tag"
}

build_derived() {
    # build_derived NAME SUITE FROM_TAG CONTEXT_DIR
    local name=$1 suite=$2 from=$3 context=$4 hash tag
    hash=$( (echo "$from"; cd "$context" && find . -type f | LC_ALL=C sort | xargs sha256sum) | hash_of)
    tag="tunnelgate-lab/${name}:${suite}-${hash}"
    if ! have_image "$tag"; then
        log "docker build $tag"
        "$docker_bin" build -q --build-arg "BASE=$from" --build-arg "SUITE=$suite" -t "$tag" "$context" \
            >"$cache_dir/build-$name-$suite.log" 2>&1 || { tail -30 "$cache_dir/build-$name-$suite.log" >&2; exit 1; }
    fi
    "$docker_bin" tag "$tag" "tunnelgate-lab/${name}:${suite}"
    echo "$tag"
}

mkdir -p "$cache_dir"
pids=()
for suite in "${suites[@]}"; do
    ( base_tag=$(build_base "$suite") && build_derived node "$suite" "$base_tag" "$here/node" >"$cache_dir/node-$suite.tag" ) &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || exit 1; done

# The sentinel ("internet") always runs on bookworm.
if [ ! -s "$cache_dir/node-bookworm.tag" ] || ! have_image "$(cat "$cache_dir/node-bookworm.tag")"; then
    build_derived node bookworm "$(build_base bookworm)" "$here/node" >"$cache_dir/node-bookworm.tag"
fi
build_derived internet latest "$(cat "$cache_dir/node-bookworm.tag")" "$here/internet" >/dev/null

# Extra tags for the DNS tests (the tags above are unchanged): Debian 12 with ISC dhclient (a real lease
# renewal rewrites resolv.conf) and Debian 13 with systemd-resolved (DNS through its stub).
build_derived node bookworm-dhclient "$(cat "$cache_dir/node-bookworm.tag")" "$here/node-dhclient" >/dev/null
if [ -s "$cache_dir/node-trixie.tag" ] && have_image "$(cat "$cache_dir/node-trixie.tag")"; then
    build_derived node trixie-resolved "$(cat "$cache_dir/node-trixie.tag")" "$here/node-resolved" >/dev/null
fi
# A simulated Kubernetes node (k8s_node_egress scenario): the real CNI plugins + conntrack; bookworm only.
build_derived node-k8s bookworm "$(cat "$cache_dir/node-bookworm.tag")" "$here/node-k8s" >/dev/null
# Docker hosts (docker_gateway scenario, Docker-in-Docker): bookworm (docker.io 20.10) and trixie (a newer docker.io).
for suite in bookworm trixie; do
    if [ -s "$cache_dir/node-$suite.tag" ] && have_image "$(cat "$cache_dir/node-$suite.tag")"; then
        build_derived node-docker "$suite" "$(cat "$cache_dir/node-$suite.tag")" "$here/node-docker" >/dev/null
    fi
done
# A node reached over SSH (remote controller scenarios): bookworm only.
build_derived node-ssh bookworm "$(cat "$cache_dir/node-bookworm.tag")" "$here/node-ssh" >/dev/null
"$docker_bin" images --format '{{.Repository}}:{{.Tag}}' | grep '^tunnelgate-lab/' | grep -v -- '-[0-9a-f]\{12\}$' | sort >&2
