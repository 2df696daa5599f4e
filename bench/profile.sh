#!/usr/bin/env bash
# Where berth-runtime's time goes in `run` of /bin/true (the bundle bench-runtime.sh built):
# syscall counts and time (strace -f -c) beside crun and runc, the slowest syscalls of one run
# (strace -f -T), time to the container's execve, and software perf counters (hardware
# counters are not available in this VM: `perf stat -e instructions true` says "not
# supported"). Markdown on stdout. Called by bench/runtime.sh, inside its hybrid-hugetlb window.
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH_RT=$PWD/target/release/berth-runtime
BUNDLE=${BENCH_DIR:-/var/tmp/bench}/bundle
[ -s "$BUNDLE/config.json" ] || { echo "bench/profile.sh: no bundle at $BUNDLE (run bench/runtime.sh)" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
declare -A RT=([berth-runtime]=$BERTH_RT [crun]=$(command -v crun) [runc]=$(command -v runc))
ORDER=(berth-runtime crun runc)
N=20   # runs averaged for the counters

echo "### Syscalls of one \`run\` of /bin/true (strace -f -c, averaged over $N runs; netns bundle)"
echo
echo "| runtime | syscalls | errors | processes+threads (clone/fork) | execve | mount-family | top 6 by count |"
echo "|---|---:|---:|---:|---:|---:|---|"
for r in "${ORDER[@]}"; do
    : >"$OUT/$r.all"
    for k in $(seq "$N"); do
        strace -f -c -U name,calls,errors -o "$OUT/$r.c" "${RT[$r]}" run --bundle "$BUNDLE" "prof-$r-$k" </dev/null >/dev/null 2>&1 || true
        "${RT[$r]}" delete -f "prof-$r-$k" >/dev/null 2>&1 || true
        awk 'NF >= 2 && $2 ~ /^[0-9]+$/ && $1 != "total" { print $1, $2, ($3 ~ /^[0-9]+$/ ? $3 : 0) }' "$OUT/$r.c" >>"$OUT/$r.all"
    done
    top=$(awk -v n="$N" '{ c[$1] += $2 } END { for (s in c) printf "%d %s\n", c[s] / n + 0.5, s }' "$OUT/$r.all" |
        sort -rn | head -n 6 | awk '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $2, $1 }')
    awk -v n="$N" -v r="$r" -v top="$top" '
        { c[$1] += $2; tot += $2; err += $3 }
        END {
            for (s in c) if (s ~ /^(clone|clone3|fork|vfork)$/) cl += c[s]
            for (s in c) if (s ~ /^(mount|umount2|open_tree|move_mount|mount_setattr|fsopen|fsmount|fsconfig|pivot_root)$/) mt += c[s]
            printf "| %s | %.0f | %.0f | %.1f | %.1f | %.1f | %s |\n", r, tot / n, err / n, cl / n, (c["execve"] + c["execveat"]) / n, mt / n, top
        }' "$OUT/$r.all"
done
echo

slowest() { # slowest FILE: the 15 longest syscalls of an strace -f -T -ttt -y log; a call that
              # strace split (<unfinished ...> / <... resumed>) is shown by its first half
    awk '
        / <unfinished \.\.\.>$/ { head[$1] = $0; sub(/ <unfinished \.\.\.>$/, "", head[$1]); next }
        /<[0-9.]+>$/ {
            d = $NF; gsub(/[<>]/, "", d)
            line = $0
            if (line ~ /<\.\.\. [a-z0-9_]+ resumed>/ && ($1 in head)) {
                line = head[$1] " ..." substr(line, index(line, "resumed>") + 8)
            }
            sub(/^[0-9]+ +[0-9.]+ /, "", line); sub(/ <[0-9.]+>$/, "", line)
            printf "%s %s %s\n", d, $1, line
        }' "$1" |
        sort -rn | awk 'NR <= 15 { d = $1; $1 = ""; printf "%8.3f ms %s\n", d * 1000, substr($0, 1, 160) }'
}
for r in berth-runtime crun; do
    echo "### The slowest syscalls in one $r \`run\` (strace -f -T -ttt -y: fds shown with their paths; blocking waits included)"
    echo
    strace -f -T -ttt -y -o "$OUT/t-$r" "${RT[$r]}" run --bundle "$BUNDLE" prof-t </dev/null >/dev/null 2>&1 || true
    "${RT[$r]}" delete -f prof-t >/dev/null 2>&1 || true
    echo '```'
    slowest "$OUT/t-$r"
    echo '```'
    echo
done
cp "$OUT/t-berth-runtime" "$OUT/t"

# sum of the -T durations of the lines of FILE matching REGEX (resumed halves attributed by
# the same pairing as slowest)
sum_ms() {
    awk -v re="$2" '
        / <unfinished \.\.\.>$/ { head[$1] = $0; next }
        /<[0-9.]+>$/ {
            d = $NF; gsub(/[<>]/, "", d); line = $0
            if (line ~ /<\.\.\. [a-z0-9_]+ resumed>/ && ($1 in head)) line = head[$1]
            if (line ~ re) { t += d; n++ }
        }
        END { printf "%.2f ms in %d calls", t * 1000, n }' "$1"
}
echo "Computed from the two traces above (one run each, under strace):"
echo
for r in berth-runtime crun; do
    echo "- $r: moving the init into its cgroups (writes to cgroup.procs or tasks): $(sum_ms "$OUT/t-$r" 'write\([0-9]+</sys/fs/cgroup/[^>]*(cgroup\.procs|tasks)>'); \
mkdir of cgroups: $(sum_ms "$OUT/t-$r" 'mkdir(at)?\(.*/sys/fs/cgroup/'); fsync/fdatasync: $(sum_ms "$OUT/t-$r" ' f(data)?sync\('); \
mount-family syscalls: $(sum_ms "$OUT/t-$r" ' (mount|umount2|pivot_root|open_tree|move_mount|mount_setattr)\('); \
openat/openat2: $(sum_ms "$OUT/t-$r" ' openat2?\(')"
done
echo
# timeline: first line, the container's execve of /bin/true, last line
t0=$(head -n1 "$OUT/t" | awk '{ print $2 }')
tx=$(grep -m1 'execve("/bin/true"' "$OUT/t" | awk '{ print $2 }' || true)
t1=$(tail -n1 "$OUT/t" | awk '{ print $2 }')
procs=$(awk '{ print $1 }' "$OUT/t" | sort -u | wc -l)
if [ -n "$tx" ]; then
    awk -v a="$t0" -v x="$tx" -v b="$t1" -v p="$procs" 'BEGIN {
        printf "Under strace (which slows every syscall): %.1f ms from the runtime'"'"'s first syscall to the container'"'"'s execve of /bin/true, %.1f ms from there to the end; %d processes/threads took part.\n", (x - a) * 1000, (b - x) * 1000, p }'
fi
echo
echo "Syscalls by process of that run (the runtime, its re-exec, the init, ...):"
echo
echo '```'
awk '{ n[$1]++; if (!($1 in first)) { first[$1] = $0 } } END { for (p in n) { f = first[p]; sub(/^[0-9]+ +[0-9.]+ /, "", f); printf "%5d syscalls  pid %s  first: %s\n", n[p], p, substr(f, 1, 110) } }' "$OUT/t" | sort -k3,3n
echo '```'
echo

echo "### Software counters of \`run\` (perf stat, $N runs each)"
echo
echo "| runtime | task-clock ms (CPU time) | context switches | page faults | wall ms |"
echo "|---|---:|---:|---:|---:|"
for r in "${ORDER[@]}"; do
    perf stat -x, -r "$N" -e task-clock,context-switches,page-faults -o "$OUT/$r.perf" \
        sh -c "'${RT[$r]}' run --bundle '$BUNDLE' perf-$r-\$\$ </dev/null >/dev/null 2>&1" >/dev/null 2>&1 || true
    awk -F, -v r="$r" '
        $3 == "task-clock" || $3 ~ /^task-clock/ { tc = $1 }
        $3 ~ /^context-switches/ { cs = $1 }
        $3 ~ /^page-faults/ { pf = $1 }
        END { printf "| %s | %.2f | %.0f | %.0f |", r, tc, cs, pf }' "$OUT/$r.perf"
    # wall time of the same command, for the ratio CPU/wall
    s=$(date +%s%N)
    for k in $(seq "$N"); do "${RT[$r]}" run --bundle "$BUNDLE" "wall-$r-$k" </dev/null >/dev/null 2>&1 || true; done
    e=$(date +%s%N)
    awk -v s="$s" -v e="$e" -v n="$N" 'BEGIN { printf " %.2f |\n", (e - s) / n / 1e6 }'
done
echo
echo "Binary sizes: $(for r in "${ORDER[@]}"; do printf '%s %s KiB; ' "$r" $(( $(stat -L -c %s "${RT[$r]}") / 1024 )); done)"
echo "berth-runtime links: $(ldd "$BERTH_RT" | awk '{ print $1 }' | tr '\n' ' ')"
