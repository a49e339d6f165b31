#!/usr/bin/env bash
# All the tests of tunnelgate.wireguard, from a fresh Debian 12 machine (as root).
#
#   scripts/test.sh                  everything: unit, sanity, lint, every Molecule scenario
#   scripts/test.sh unit|sanity|lint|build
#                                    unit tests / ansible-test sanity / ansible-lint / the built tarball
#   scripts/test.sh molecule [NAME]  all Molecule scenarios, or one
#
# Installs what it needs (Debian packages, .venv, Docker engine, lab images) and reuses it on reruns.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TG_ROOT"

stage_unit() {
    tg_log "unit tests"
    python -m pytest tests/unit -q -p no:cacheprovider
}

# ansible-test bootstraps pip in each sanity venv by downloading get-pip.py from a host the lab
# machines cannot reach. A cached "get-pip" shim that installs pip from a wheel taken from PyPI
# (reachable) makes it work offline. The collection must sit at ansible_collections/NS/NAME.
sanity_pip_shim() {
    local pip_version wheel_dir shim
    pip_version=$(python - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
print(get_venv_packages(NativePythonConfig(version="3.11"))["pip"])
PY
)
    wheel_dir="$TG_CACHE/pip-wheel"
    if ! ls "$wheel_dir"/pip-"$pip_version"-*.whl >/dev/null 2>&1; then
        pip download -q --no-deps -d "$wheel_dir" "pip==$pip_version"
    fi
    shim="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
    mkdir -p "$(dirname "$shim")"
    cat >"$shim" <<PY
# tunnelgate: offline stand-in for get-pip.py, installs pip $pip_version from a local wheel.
import glob, subprocess, sys
wheel = glob.glob("$wheel_dir/pip-$pip_version-*.whl")[0]
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, wheel + "/pip", "install", "--no-index", "--find-links", "$wheel_dir"] + args))
PY
}

stage_sanity() {
    tg_log "ansible-test sanity"
    sanity_pip_shim
    local work="$TG_CACHE/sanity/ansible_collections/tunnelgate/wireguard"
    rm -rf "$TG_CACHE/sanity"
    mkdir -p "$work"
    # A copy of the tracked and new files (not .venv/.cache): ansible-test wants a clean tree.
    git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$work/" 2>/dev/null || true
    (cd "$work" && git init -q && git add -A && ansible-test sanity --venv --python 3.11 --color no)
}

# The release artefact: build the tarball, install it into an empty collections path and use it.
stage_build() {
    tg_log "ansible-galaxy collection build + install + use"
    local out="$TG_CACHE/build" tarball
    rm -rf "$out"
    mkdir -p "$out/collections"
    ansible-galaxy collection build --output-path "$out" . >/dev/null
    tarball=$(ls "$out"/tunnelgate-wireguard-*.tar.gz)
    ANSIBLE_COLLECTIONS_PATH="$out/collections" ansible-galaxy collection install --force --no-deps -p "$out/collections" "$tarball" >/dev/null
    if tar -tzf "$tarball" | grep -E '(^|/)(\.venv|\.cache|scripts)/' >/dev/null; then
        echo "build: development files leaked into $tarball" >&2
        return 1
    fi
    ANSIBLE_COLLECTIONS_PATH="$out/collections" python tests/build/check_installed.py "$out/collections"
    stage_build_ee "$out" "$tarball"
}

# AWX / Automation Platform: ansible-builder must find the controller dependencies in the built
# collection (meta/execution-environment.yml), and the example EE definition must give a build context
# that holds the collection. (Building the image itself needs a base image from a registry.)
stage_build_ee() {
    local out=$1 tarball=$2 deps
    deps=$(ansible-builder introspect --sanitize "$out/collections")
    for want in "netaddr.*from collection tunnelgate.wireguard" "openssh-client .*from collection tunnelgate.wireguard"; do
        grep -q "$want" <<<"$deps" || { printf 'build: ansible-builder does not see %s in:\n%s\n' "$want" "$deps" >&2; return 1; }
    done
    mkdir -p "$out/ee"
    cp examples/ee/execution-environment.yml examples/ee/requirements.yml "$out/ee/"
    cp "$tarball" "$out/ee/tunnelgate-wireguard.tar.gz"
    ansible-builder create -f "$out/ee/execution-environment.yml" -c "$out/ee/context" >/dev/null
    python tests/build/check_ee_context.py "$out/ee/context"
}

stage_lint() {
    tg_log "ansible-lint (production profile)"
    ansible-lint --profile production --offline
    tg_log "antsibull-changelog lint (changelog fragments)"
    antsibull-changelog lint
}

count_alive() {
    local alive=0 pid
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    echo "$alive"
}

# say_verdict WHAT true|false START LOG: one line for the run's output, the verdict next to the log.
say_verdict() {
    local what=$1 ok=$2 start=$3 log=$4
    if $ok; then
        printf '%s: passed in %ss\n' "$what" $((SECONDS - start))
        echo passed >"$log.verdict"
    else
        printf '%s: FAILED after %ss (log: %s)\n' "$what" $((SECONDS - start)) "$log"
        echo failed >"$log.verdict"
    fi
}

# Docker networks and their subnets (for a log).
docker_networks() {
    docker network ls -q | xargs -r docker network inspect -f '{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}'
}

# One scenario, its output in a log file; prints one line with the verdict.
# Docker once refused a scenario's network at creation ("Pool overlaps with other one on this address
# space", no other network on that subnet, not reproduced since): then the networks are logged and the
# scenario runs once more. A failure of the scenario's own steps is never retried.
run_scenario() {
    local scenario=$1 log="$TG_CACHE/molecule-logs/$1.log" start=$SECONDS ok=false
    echo running >"$log.verdict"
    if molecule test -s "$scenario" >"$log" 2>&1; then
        ok=true
    elif grep -q "Pool overlaps with other one on this address space" "$log" \
            && ! sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -q "create: Executed: Successful"; then
        printf 'molecule %s: Docker refused its network at creation; the networks were:\n%s\nrunning it again\n' \
            "$scenario" "$(docker_networks)" | tee "$log.first-attempt" >&2
        cat "$log" >>"$log.first-attempt"
        molecule test -s "$scenario" >"$log" 2>&1 && ok=true
    fi
    say_verdict "molecule $scenario" "$ok" "$start" "$log"
}

# Scenarios are independent (own network, own container names): TG_MOLECULE_JOBS of them run at
# once (default 2; they mostly wait on boots, handshakes and timeouts). The log of a failed one is printed.
stage_molecule() {
    tg_images
    local scenarios=("$@") jobs=${TG_MOLECULE_JOBS:-2} i
    if [ ${#scenarios[@]} -eq 0 ]; then
        # longest first, so the slowest scenarios do not end up waiting in the queue
        scenarios=(killswitch host_vpn k8s_node_egress docker_gateway provider server dns interface remote_controller keypair bad_input)
        local known=(-e resources) name
        for name in "${scenarios[@]}"; do known+=(-e "$name"); done
        mapfile -t -O ${#scenarios[@]} scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' \
            | xargs -n1 basename | grep -v -x "${known[@]}" | sort)
        for i in "${!scenarios[@]}"; do [ -f "molecule/${scenarios[$i]}/molecule.yml" ] || unset "scenarios[$i]"; done
    fi
    mkdir -p "$TG_CACHE/molecule-logs"
    tg_log "molecule test: ${scenarios[*]} ($jobs at a time)"
    local failed=() pids=() scenario pid
    for scenario in "${scenarios[@]}"; do
        while [ "${#pids[@]}" -gt 0 ] && [ "$(count_alive "${pids[@]}")" -ge "$jobs" ]; do
            wait -n "${pids[@]}" 2>/dev/null || true
        done
        run_scenario "$scenario" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    for scenario in "${scenarios[@]}"; do
        [ "$(cat "$TG_CACHE/molecule-logs/$scenario.log.verdict")" = passed ] || failed+=("$scenario")
    done
    printf 'molecule scenarios: %s passed, %s failed\n' $((${#scenarios[@]} - ${#failed[@]})) ${#failed[@]}
    for scenario in "${failed[@]}"; do
        tg_log "log of the failed scenario $scenario"
        cat "$TG_CACHE/molecule-logs/$scenario.log"
    done
    [ ${#failed[@]} -eq 0 ] || { tg_log "failed scenarios: ${failed[*]}"; return 1; }
}

# A stage run in the background, its output in a log file; prints one line with the verdict.
run_stage_in_background() {
    local stage=$1 log="$TG_CACHE/stage-logs/$1.log" start=$SECONDS ok=false
    "stage_$stage" >"$log" 2>&1 && ok=true
    say_verdict "$stage" "$ok" "$start" "$log"
}

# Everything. The quick stages that catch most mistakes (unit, build) first; then the Molecule scenarios,
# which mostly wait on boots, handshakes and timeouts, with sanity and lint running beside them (they are
# CPU-bound and independent of the lab), so the whole run takes about as long as the scenarios alone.
stage_all() {
    local stage failed=()
    stage_unit
    stage_build
    mkdir -p "$TG_CACHE/stage-logs"
    rm -f "$TG_CACHE"/stage-logs/*.verdict
    sanity_pip_shim   # before the scenarios start: it may download pip's wheel
    local pids=()
    for stage in sanity lint; do
        run_stage_in_background "$stage" &
        pids+=($!)
    done
    stage_molecule || failed+=(molecule)
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    for stage in sanity lint; do
        if [ "$(cat "$TG_CACHE/stage-logs/$stage.log.verdict" 2>/dev/null)" != passed ]; then
            failed+=("$stage")
            tg_log "log of the failed stage $stage"
            cat "$TG_CACHE/stage-logs/$stage.log"
        fi
    done
    printf 'test stages (unit, build, sanity, lint, molecule): %s passed, %s failed\n' $((5 - ${#failed[@]})) ${#failed[@]}
    [ ${#failed[@]} -eq 0 ] || { tg_log "failed stages: ${failed[*]}"; return 1; }
}

main() {
    local what=${1:-all}
    [ $# -gt 0 ] && shift
    tg_setup
    local start=$SECONDS
    case "$what" in
        unit) stage_unit ;;
        sanity) stage_sanity ;;
        lint) stage_lint ;;
        build) stage_build ;;
        molecule) stage_molecule "$@" ;;
        all) stage_all ;;
        *) echo "usage: $0 [all|unit|sanity|lint|build|molecule [SCENARIO]]" >&2; exit 2 ;;
    esac
    tg_log "done in $((SECONDS - start))s"
}

main "$@"
