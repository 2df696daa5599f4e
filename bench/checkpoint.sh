#!/usr/bin/env bash
# bench/checkpoint.sh: checkpoint and restore with CRIU, berth-runtime side by side with runc
# (the same CRIU, the same bundle, in one run): an idle shell and a process holding 200 MB of
# memory, `checkpoint` (stop and copy: dump, then the container is gone) and `restore -d`
# timed each RUNS times (median, min, max); then `berth migrate` of the 200 MB container between
# two berth roots, with the frozen time it reports. Writes docs/checkpoint-benchmark.md and
# prints it. Run as root; needs criu >= 4.2 (scripts/install-criu.sh) and runc. Knobs: RUNS (5).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/rootfs.sh
. bench/lib/rootfs.sh
RUNS=${RUNS:-5}
[ "$(id -u)" = 0 ] || { echo "bench/checkpoint.sh: run as root" >&2; exit 1; }
for t in criu runc gcc busybox; do
    command -v "$t" >/dev/null || { echo "bench/checkpoint.sh: $t is missing (scripts/install-criu.sh; apt-get install runc gcc busybox-static)" >&2; exit 1; }
done
cargo build -q --release -p berth-cli
cargo build-runtime
BRT=$PWD/target/release/berth-runtime
TMP=$(mktemp -d /tmp/berth-ckptbench.XXXXXX)
cleanup() {
    for rt in "$BRT" runc; do
        for id in $("$rt" --root "$TMP/state-$(basename "$rt")" list -q 2>/dev/null); do
            "$rt" --root "$TMP/state-$(basename "$rt")" delete -f "$id" >/dev/null 2>&1 || true
        done
    done
    for r in "$TMP/b1" "$TMP/b2"; do
        [ -d "$r" ] || continue
        for c in $("$PWD/target/release/berth" --root "$r" ps -aq 2>/dev/null); do
            "$PWD/target/release/berth" --root "$r" rm -f "$c" >/dev/null 2>&1 || true
        done
    done
    ip netns del "ckptbench-$$" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# The bundle: busybox plus a static program that touches 200 MB and sleeps.
busybox_rootfs_tar "$TMP"
cat >"$TMP/hog.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    size_t n = (size_t)atol(argv[1]) << 20;
    char *p = malloc(n);
    for (size_t i = 0; i < n; i += 4096) p[i] = (char)i;
    for (;;) pause();
}
EOF
gcc -O2 -static -o "$TMP/rootfs/bin/hog" "$TMP/hog.c"
tar -C "$TMP/rootfs" -cf "$TMP/rootfs.tar" .
mkdir -p "$TMP/bundle"
cp -a "$TMP/rootfs" "$TMP/bundle/rootfs"
(cd "$TMP/bundle" && runc spec)
# A network namespace made beforehand and joined by path, as every engine does (containerd,
# podman, berth): CRIU takes it as external, for both runtimes alike.
NETNS=ckptbench-$$
ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
spec() { # ARGS-JSON
    jq --argjson a "$1" --arg ns "/run/netns/$NETNS" '.process.args = $a | .process.terminal = false | .root.readonly = false
        | .linux.namespaces |= map(if .type == "network" then .path = $ns else . end)' \
        "$TMP/bundle/config.json" >"$TMP/bundle/c.json" && mv "$TMP/bundle/c.json" "$TMP/bundle/config.json"
}

now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", (b - a) / 1e6 }'; }
stats() { sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %.1f %.1f\n", m, v[1], v[NR] }'; }

# One runtime, one workload: RUNS times run -d, checkpoint, restore -d, delete.
measure() { # RUNTIME LABEL
    local rt=$1 label=$2 root="$TMP/state-$(basename "$1")" i t0 t1 t2
    : >"$TMP/$label.ckpt"; : >"$TMP/$label.rst"
    for i in $(seq "$RUNS"); do
        local id="b$i-$$" img="$TMP/img-$label-$i"
        "$rt" --root "$root" run -d --bundle "$TMP/bundle" "$id" </dev/null >/dev/null 2>&1
        sleep 0.5
        t0=$(now)
        "$rt" --root "$root" checkpoint --image-path "$img" "$id" </dev/null >/dev/null 2>"$TMP/err" ||
            { cat "$TMP/err" >&2; exit 1; }
        t1=$(now)
        "$rt" --root "$root" restore -d --image-path "$img" --bundle "$TMP/bundle" "$id-r" </dev/null >/dev/null 2>"$TMP/err" ||
            { cat "$TMP/err" >&2; exit 1; }
        t2=$(now)
        ms "$t0" "$t1" >>"$TMP/$label.ckpt"
        ms "$t1" "$t2" >>"$TMP/$label.rst"
        "$rt" --root "$root" delete -f "$id-r" >/dev/null 2>&1 || true
        "$rt" --root "$root" delete -f "$id" >/dev/null 2>&1 || true
        rm -rf "$img"
    done
}

rows=()
for w in idle hog; do
    if [ $w = idle ]; then spec '["sh","-c","while :; do sleep 1; done"]'; else spec '["/bin/hog","200"]'; fi
    for rt in "$BRT" runc; do
        measure "$rt" "$w-$(basename "$rt")"
    done
    for phase in ckpt rst; do
        read -r bm bmin bmax < <(stats <"$TMP/$w-berth-runtime.$phase")
        read -r rm_ rmin rmax < <(stats <"$TMP/$w-runc.$phase")
        ratio=$(awk -v a="$bm" -v b="$rm_" 'BEGIN { printf "%.2f", a / b }')
        what=$([ $phase = ckpt ] && echo checkpoint || echo "restore -d")
        load=$([ $w = idle ] && echo "idle shell" || echo "200 MB process")
        rows+=("| $load | $what | $bm ($bmin-$bmax) | $rm_ ($rmin-$rmax) | ${ratio}x |")
    done
done

# berth migrate of the 200 MB container between two roots (the image is copied first, while
# it runs; the frozen time is from the pause to its processes running at the destination).
B="$PWD/target/release/berth --runtime $BRT"
$B --root "$TMP/b1" import "$TMP/rootfs.tar" ckptbench/hog:1 >/dev/null
: >"$TMP/frozen"; : >"$TMP/migrate"
for i in $(seq "$RUNS"); do
    $B --root "$TMP/b1" run -d --name "m$i" --network none ckptbench/hog:1 /bin/hog 200 >/dev/null
    sleep 0.5
    t0=$(now)
    out=$($B --root "$TMP/b1" migrate "m$i" "$TMP/b2" 2>&1 >/dev/null)
    t1=$(now)
    echo "$out" | sed -n 's/.*frozen for \([0-9.]*\) ms.*/\1/p' >>"$TMP/frozen"
    ms "$t0" "$t1" >>"$TMP/migrate"
    $B --root "$TMP/b2" rm -f "m$i" >/dev/null
done
read -r fm fmin fmax < <(stats <"$TMP/frozen")
read -r mm mmin mmax < <(stats <"$TMP/migrate")

kernel=$(uname -r)
criu_v=$(criu --version | sed -n 's/^Version: *//p')
runc_v=$(runc --version | head -n 1)
soft_dirty=$(criu check --feature mem_dirty_track >/dev/null 2>&1 && echo yes || echo "no (pre-copy impossible)")
uffd=$(criu check --feature uffd-noncoop >/dev/null 2>&1 && echo yes || echo no)
{
    echo "# Checkpoint and restore"
    echo
    echo "\`bench/checkpoint.sh\` (RUNS=$RUNS), $(date -u +%Y-%m-%d), kernel $kernel, CRIU $criu_v, $runc_v, $(nproc) cores."
    echo "Each runtime runs the same bundle; times in ms, median (min-max). Stop and copy: the"
    echo "checkpoint ends with the container gone, the restore (\`-d\`) with it running again."
    echo "Soft-dirty memory tracking: $soft_dirty; userfaultfd (lazy pages): $uffd."
    echo
    echo "| workload | step | berth-runtime | runc | berth/runc |"
    echo "|---|---|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "\`berth migrate\` of the 200 MB container between two berth roots: frozen $fm ms ($fmin-$fmax),"
    echo "the whole command $mm ms ($mmin-$mmax)."
} >docs/checkpoint-benchmark.md
cat docs/checkpoint-benchmark.md
