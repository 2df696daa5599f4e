#!/usr/bin/env bash
# bench/soak.sh: berth under sustained use.
#  1. N sequential `berth run --rm --network none IMAGE true` (default 1000), each under a
#     timeout: counts hangs (timeouts) and failures, reports the median and p99 time of a run.
#  2. M idle containers (`run -d ... sleep`, default 200): each monitor's Pss (from
#     /proc/PID/smaps_rollup; goal <= 1 MiB) and the time of `berth ps -a` with M containers
#     (median of 10; goal < 50 ms).
# Then it removes everything it made and checks nothing is left (containers, mounts).
# Run as root. Knobs: RUNS (1000), IDLE (200), TIMEOUT (30 s per run).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1000}; IDLE=${IDLE:-200}; TIMEOUT=${TIMEOUT:-30}
[ "$(id -u)" = 0 ] || { echo "bench/soak.sh: run as root" >&2; exit 1; }
cargo build -q --release -p berth-cli
cargo build-runtime
TMP=$(mktemp -d /tmp/berth-soak.XXXXXX)
BERTH=("$PWD/target/release/berth" --root "$TMP/root" --runtime "$PWD/target/release/berth-runtime")
cleanup() {
    set +e
    # shellcheck disable=SC2046
    "${BERTH[@]}" rm -f $("${BERTH[@]}" ps -aq) >/dev/null 2>&1
    grep -o "${TMP}[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/rootfs/bin" "$TMP/rootfs/etc"
cp /bin/busybox "$TMP/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$TMP/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$TMP/rootfs/etc/passwd"
tar -C "$TMP/rootfs" -c . | "${BERTH[@]}" import - soak/bb >/dev/null

echo "== $RUNS sequential run --rm (timeout ${TIMEOUT}s each)"
hangs=0; fails=0; : >"$TMP/times"
for i in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    rc=0; timeout -s KILL "$TIMEOUT" "${BERTH[@]}" run --rm --network none soak/bb true || rc=$?
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000)) >>"$TMP/times"
    if [ "$rc" = 137 ]; then hangs=$((hangs + 1)); echo "run $i: hung (killed after ${TIMEOUT}s)";
    elif [ "$rc" != 0 ]; then fails=$((fails + 1)); echo "run $i: exit $rc"; fi
done
left=$("${BERTH[@]}" ps -aq | wc -l)
sort -n "$TMP/times" >"$TMP/sorted"
pct() { sed -n "$(( ($(wc -l <"$TMP/sorted") * $1 + 99) / 100 ))p" "$TMP/sorted"; }
med=$(pct 50); p99=$(pct 99); max=$(tail -1 "$TMP/sorted")
printf 'runs %d, hangs %d, failures %d, containers left %d\n' "$RUNS" "$hangs" "$fails" "$left"
ms() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }
printf 'median %s ms, p99 %s ms, max %s ms\n' "$(ms "$med")" "$(ms "$p99")" "$(ms "$max")"

echo "== $IDLE idle containers"
for i in $(seq "$IDLE"); do
    "${BERTH[@]}" run -d --network none --name "idle$i" soak/bb sleep 86400 >/dev/null
done
running=$("${BERTH[@]}" ps -q | wc -l)
: >"$TMP/pss"
for d in "$TMP"/root/containers/*/; do
    pid=$(jq -r .MonitorPid "$d/state.json")
    awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" >>"$TMP/pss"
done
sort -n "$TMP/pss" -o "$TMP/pss"
n=$(wc -l <"$TMP/pss")
pss_med=$(sed -n "$(((n + 1) / 2))p" "$TMP/pss"); pss_max=$(tail -1 "$TMP/pss")
: >"$TMP/ps"
for _ in $(seq 10); do
    t0=$(date +%s%N); "${BERTH[@]}" ps -a >/dev/null; t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000)) >>"$TMP/ps"
done
sort -n "$TMP/ps" -o "$TMP/ps"
ps_med=$(sed -n 5p "$TMP/ps")
printf 'running %d of %d\n' "$running" "$IDLE"
printf 'monitor Pss: median %d KiB, max %d KiB (goal <= 1024 KiB)\n' "$pss_med" "$pss_max"
printf 'ps -a with %d containers: median %s ms (goal < 50 ms)\n' "$IDLE" "$(ms "$ps_med")"
t0=$(date +%s)
# shellcheck disable=SC2046
"${BERTH[@]}" rm -f $("${BERTH[@]}" ps -aq) >/dev/null
t1=$(date +%s)
printf 'rm -f of %d containers: %d s\n' "$IDLE" "$((t1 - t0))"
mounts=$(grep -c "$TMP/root/containers" /proc/self/mountinfo || true)
printf 'left after rm: %d containers, %d mounts\n' "$("${BERTH[@]}" ps -aq | wc -l)" "$mounts"
[ "$hangs" = 0 ] && [ "$fails" = 0 ] && [ "$left" = 0 ] && [ "$running" = "$IDLE" ] && [ "$mounts" = 0 ]
