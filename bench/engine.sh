#!/usr/bin/env bash
# bench/engine.sh: `berth run --rm IMAGE true` side by side with `podman run --rm` and
# `docker run --rm` of the same image (a busybox-static rootfs imported into each), with
# --network none and on each engine's default network, and with `berth-runtime run` of the
# bundle berth itself writes for that container (what the engine adds on top of the runtime).
# hyperfine, ratios to podman and to berth-runtime. Writes docs/engine-benchmark.md and prints
# it. Run as root. podman gets its own temp root (runc: crun refuses this host's hybrid
# cgroups); docker is a dockerd of this script's own (socket, data root, exec root under the
# temp dir; no bridge, no iptables: --network none only), never the system daemon. Either is
# skipped, with the reason, when missing. Knobs: RUNS (20).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/dockerd.sh
. bench/lib/dockerd.sh
# shellcheck source=bench/lib/rootfs.sh
. bench/lib/rootfs.sh
RUNS=${RUNS:-20}
[ "$(id -u)" = 0 ] || { echo "bench/engine.sh: run as root" >&2; exit 1; }
for t in hyperfine jq busybox; do
    command -v "$t" >/dev/null || { echo "bench/engine.sh: $t is missing (apt-get install hyperfine jq busybox-static)" >&2; exit 1; }
done
cargo build -q --release -p berth-cli
cargo build-runtime   # the static berth-runtime, as shipped (.cargo/config.toml)
TMP=$(mktemp -d /tmp/berth-enginebench.XXXXXX)
BERTH="$PWD/target/release/berth --root $TMP/berth --runtime $PWD/target/release/berth-runtime"
PODMAN="podman --root $TMP/podman/root --runroot $TMP/podman/run --tmpdir $TMP/podman/tmp --cgroup-manager cgroupfs --events-backend file"
command -v runc >/dev/null && PODMAN="$PODMAN --runtime $(command -v runc)"
# podman asks for RLIMIT_NOFILE/NPROC 1048576 as root; without CAP_SYS_RESOURCE (this host) a
# hard limit cannot be raised, so ask for what we hold.
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
[ "$nofile" = unlimited ] && nofile=1048576
PODMAN_ULIMITS="--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"
DIMG=berth-enginebench/busybox:$$
have_podman=; have_docker=
why_podman="podman not installed"; why_docker="docker not installed"
if command -v podman >/dev/null; then
    if $PODMAN info >/dev/null 2>&1; then have_podman=1; else why_podman="podman info failed"; fi
fi
if command -v docker >/dev/null; then
    dockerd_start "$TMP/dockerd" "berth-enginebench-$$" docker
fi
cleanup() {
    set +e
    # shellcheck disable=SC2046
    $BERTH rm -f $($BERTH ps -aq) >/dev/null 2>&1
    if [ -n "$have_podman" ]; then $PODMAN rm -af >/dev/null 2>&1; $PODMAN rmi -af >/dev/null 2>&1; fi
    dockerd_stop "$TMP/dockerd" "berth-enginebench-$$"
    umount -R "$TMP/podman" 2>/dev/null
    grep -o "${TMP}[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

busybox_rootfs_tar "$TMP"
$BERTH import "$TMP/rootfs.tar" bench/bb:latest >/dev/null
[ -n "$have_podman" ] && $PODMAN import -q "$TMP/rootfs.tar" localhost/bench-bb:latest >/dev/null
[ -n "$have_docker" ] && $DOCKER import "$TMP/rootfs.tar" "$DIMG" >/dev/null
# The bundle berth writes for such a container, run by berth-runtime alone: a created (never
# started) container lends its config.json, rootfs and /etc files; cleanup removes it.
RT="$PWD/target/release/berth-runtime --root $TMP/rt"
cid=$($BERTH create --network none --name rt-bundle bench/bb true)
$BERTH start rt-bundle >/dev/null && $BERTH wait rt-bundle >/dev/null  # config.json is written at start
mkdir -p "$TMP/bundle"
jq '.process.terminal = false' "$TMP/berth/containers/$cid/bundle/config.json" >"$TMP/bundle/config.json"

names=(); cmds=()
add() { names+=("$1"); cmds+=("$2"); }
add "berth, none" "$BERTH run --rm --network none bench/bb true"
add "berth, bridge" "$BERTH run --rm bench/bb true"
add "berth-runtime run, none (berth's bundle)" "$RT run --bundle $TMP/bundle bench-rt"
if [ -n "$have_podman" ]; then
    add "podman, none" "$PODMAN run --rm $PODMAN_ULIMITS --network none localhost/bench-bb true"
    add "podman, bridge (CNI)" "$PODMAN run --rm $PODMAN_ULIMITS localhost/bench-bb true"
fi
if [ -n "$have_docker" ]; then
    add "docker, none" "$DOCKER run --rm --network none $DIMG true"
fi
# A container that stays on berth's default bridge, as docker0 and podman's CNI bridge stay up:
# otherwise each berth run would also make and remove the bridge.
$BERTH run -d --name keep-bridge bench/bb sleep 100000 >/dev/null
# Each command once first: one that fails is left out, with what it printed.
args=(); failed=()
for i in "${!names[@]}"; do
    if out=$(${cmds[$i]} 2>&1); then
        args+=(-n "${names[$i]}" "${cmds[$i]}")
    else
        failed+=("${names[$i]}: $(echo "$out" | tail -1)")
        echo "bench/engine.sh: left out ${names[$i]}: $out" >&2
    fi
done
hyperfine -N -w 3 -r "$RUNS" --style none --export-json "$TMP/r.json" "${args[@]}" >/dev/null

out=docs/engine-benchmark.md
{
    echo "# \`run --rm IMAGE true\`: berth, podman and docker"
    echo
    echo "Produced by \`bench/engine.sh\` on $(date -u +%Y-%m-%d) ($(uname -r), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg));"
    echo "hyperfine, $RUNS runs after 3 warm-ups; one run, side by side. The image is a busybox-static"
    echo "rootfs imported into each engine. podman $([ -n "$have_podman" ] && podman --version | awk '{print $3}') runs with runc (crun refuses"
    echo "this host's hybrid cgroups) and its own root; docker $([ -n "$have_docker" ] && $DOCKER version -f '{{.Server.Version}}') is a dockerd of the script's own"
    echo "(no bridge: --network none only). berth-runtime runs the config.json berth writes for the"
    echo "container (cgroup, namespaces, seccomp, masked paths, its rootfs), as the monitor runs it."
    echo "berth keeps one container on its default bridge meanwhile (the others keep their bridges up)."
    [ -z "$have_podman" ] && echo "podman skipped: $why_podman."
    [ -z "$have_docker" ] && echo "docker skipped: $why_docker."
    for f in "${failed[@]}"; do echo "left out (failed once before timing): $f."; done
    echo
    echo "| command | median ms | min | max | mean ± sd | ratio to podman (same network) | ratio to berth-runtime |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    jq -r '.results[] | [.command, (.median*1000), (.min*1000), (.max*1000), (.mean*1000), (.stddev*1000)] | @tsv' "$TMP/r.json" |
        while IFS=$'\t' read -r name med min max mean sd; do
            net=${name#*, }; net=${net%% *}
            ref=$(jq -r --arg n "podman, $net" '.results[] | select(.command | startswith($n)) | .median*1000' "$TMP/r.json")
            ratio=-; [ -n "$ref" ] && ratio=$(awk -v a="$med" -v b="$ref" 'BEGIN {printf "%.2fx", a/b}')
            rt=$(jq -r '.results[] | select(.command | startswith("berth-runtime")) | .median*1000' "$TMP/r.json")
            rratio=$(awk -v a="$med" -v b="$rt" 'BEGIN {printf "%.2fx", a/b}')
            printf '| %s | %.1f | %.1f | %.1f | %.1f ± %.1f | %s | %s |\n' "$name" "$med" "$min" "$max" "$mean" "$sd" "$ratio" "$rratio"
        done
    echo
    echo "Commands:"
    echo
    echo '```sh'
    for i in "${!names[@]}"; do echo "${cmds[$i]}" | sed "s#$TMP#\$TMP#g; s#$PWD/##g"; done
    echo '```'
} >"$out"
cat "$out"
