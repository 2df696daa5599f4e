#!/usr/bin/env bash
# bench/api.sh: the docker CLI against `berth serve` and against dockerd 20.10, side by side in
# one run: `docker run --rm --network none IMAGE true`, and `docker ps -a` with 100 containers
# on each. The same docker CLI (28, first on PATH) drives both; each server is this script's
# own (berth serve on its own root and socket; a private dockerd: own socket, data root and
# exec root, no bridge). The image is a busybox-static rootfs imported into each. hyperfine;
# writes docs/api-benchmark.md and prints it. Run as root. Knobs: RUNS (20), PS (100).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/dockerd.sh
. bench/lib/dockerd.sh
# shellcheck source=bench/lib/rootfs.sh
. bench/lib/rootfs.sh
RUNS=${RUNS:-20}
PS=${PS:-100}
[ "$(id -u)" = 0 ] || { echo "bench/api.sh: run as root" >&2; exit 1; }
for t in hyperfine jq busybox docker; do
    command -v "$t" >/dev/null || { echo "bench/api.sh: $t is missing" >&2; exit 1; }
done
cargo build -q --release -p berth-cli
cargo build-runtime
TMP=$(mktemp -d /tmp/berth-apibench.XXXXXX)
BERTH="$PWD/target/release/berth --root $TMP/berth --runtime $PWD/target/release/berth-runtime"
BDOCKER="docker -H unix://$TMP/berth.sock"
why_docker="docker not installed"
cleanup() {
    set +e
    # shellcheck disable=SC2046
    $BERTH rm -f $($BERTH ps -aq) >/dev/null 2>&1
    [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    dockerd_stop "$TMP/dockerd" "berth-apibench-$$"
    grep -o "${TMP}[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

$BERTH serve --no-boot -H "unix://$TMP/berth.sock" >"$TMP/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 300); do $BDOCKER version >/dev/null 2>&1 && break; sleep 0.1; done
$BDOCKER version >/dev/null || { echo "bench/api.sh: berth serve did not answer:" >&2; cat "$TMP/serve.log" >&2; exit 1; }
dockerd_start "$TMP/dockerd" "berth-apibench-$$" docker
[ -n "$have_docker" ] || echo "bench/api.sh: dockerd left out: $why_docker" >&2

busybox_rootfs_tar "$TMP"
IMG=bench/bb:latest
$BERTH import "$TMP/rootfs.tar" $IMG >/dev/null
[ -n "$have_docker" ] && $DOCKER import "$TMP/rootfs.tar" $IMG >/dev/null

run_args=(-n "docker run --rm, berth serve" "$BDOCKER run --rm --network none $IMG true")
[ -n "$have_docker" ] && run_args+=(-n "docker run --rm, dockerd" "$DOCKER run --rm --network none $IMG true")
hyperfine -N -w 3 -r "$RUNS" --style none --export-json "$TMP/run.json" "${run_args[@]}" >/dev/null

# PS created (not started) containers on each, then `docker ps -a`.
for i in $(seq "$PS"); do
    $BDOCKER create --network none --label bench=1 --name "c$i" $IMG true >/dev/null
    [ -n "$have_docker" ] && $DOCKER create --network none --label bench=1 --name "c$i" $IMG true >/dev/null
done
ps_args=(-n "docker ps -a, berth serve" "$BDOCKER ps -a" -n "berth ps -a (no server)" "$BERTH ps -a")
[ -n "$have_docker" ] && ps_args+=(-n "docker ps -a, dockerd" "$DOCKER ps -a")
hyperfine -N -w 3 -r "$RUNS" --style none --export-json "$TMP/ps.json" "${ps_args[@]}" >/dev/null
rows=$($BDOCKER ps -aq | wc -l)

out=docs/api-benchmark.md
table() {
    local json=$1 ref=$2
    echo "| command | median ms | min | max | mean ± sd | ratio to dockerd |"
    echo "|---|---:|---:|---:|---:|---:|"
    local r
    r=$(jq -r --arg n "$ref" '.results[] | select(.command == $n) | .median*1000' "$json")
    jq -r '.results[] | [.command, (.median*1000), (.min*1000), (.max*1000), (.mean*1000), (.stddev*1000)] | @tsv' "$json" |
        while IFS=$'\t' read -r name med min max mean sd; do
            ratio=-; [ -n "$r" ] && ratio=$(awk -v a="$med" -v b="$r" 'BEGIN {printf "%.3fx", a/b}')
            printf '| %s | %.1f | %.1f | %.1f | %.1f ± %.1f | %s |\n' "$name" "$med" "$min" "$max" "$mean" "$sd" "$ratio"
        done
}
{
    echo "# The docker CLI against \`berth serve\` and against dockerd"
    echo
    echo "Produced by \`bench/api.sh\` on $(date -u +%Y-%m-%d) ($(uname -r), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg));"
    echo "hyperfine, $RUNS runs after 3 warm-ups, side by side in one run. Client: docker $(docker version -f '{{.Client.Version}}' 2>/dev/null)."
    echo "Servers: berth serve $($BERTH --version | awk '{print $2}') over its own root; $([ -n "$have_docker" ] && echo "dockerd $($DOCKER version -f '{{.Server.Version}}') of the script's own (no bridge)" || echo "dockerd left out: $why_docker")."
    echo "The image is a busybox-static rootfs imported into each; --network none."
    echo
    echo "## \`docker run --rm --network none IMAGE true\`"
    echo
    table "$TMP/run.json" "docker run --rm, dockerd"
    echo
    echo "## \`docker ps -a\` with $rows containers"
    echo
    table "$TMP/ps.json" "docker ps -a, dockerd"
    echo
    echo "Goals (issue #15): run at most 0.3x dockerd's time; \`docker ps\` at 100 containers under 50 ms."
} >"$out"
cat "$out"
