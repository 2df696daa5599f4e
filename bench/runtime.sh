#!/usr/bin/env bash
# Benchmark berth-runtime against crun and runc with ../shared/tools/bench-runtime.sh (OCI
# lifecycle of /bin/true: run, create, start, delete, the whole lifecycle, 100 sequential runs,
# peak RSS), and write the tables to docs/benchmarks.md. Run as root on an idle machine.
#
# crun refuses hybrid hosts whose cgroup2 mount owns a controller (hugetlb here): for the run,
# this script mounts such controllers as v1 hierarchies of its own and unmounts them afterwards.
# Knobs are bench-runtime.sh's (RUNS, LOOP_N, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
tool=../shared/tools/bench-runtime.sh
[ -x "$tool" ] || { echo "bench/runtime.sh: $tool not found" >&2; exit 1; }
cargo build --release -q -p berth-runtime
rt=$PWD/target/release/berth-runtime

mounted=()
cleanup() { for m in "${mounted[@]}"; do umount "$m" && rmdir "$m"; done; }
trap cleanup EXIT
if [ -e /sys/fs/cgroup/unified/cgroup.controllers ]; then
    for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
        [ -e "/sys/fs/cgroup/$c" ] && continue
        mkdir "/sys/fs/cgroup/$c"
        if mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"; then
            mounted+=("/sys/fs/cgroup/$c")
        else
            rmdir "/sys/fs/cgroup/$c"
        fi
    done
fi

out=$(mktemp)
FIX_HYBRID=0 "$tool" "$rt" crun runc >"$out"
{
    echo "# berth-runtime benchmarks"
    echo
    echo "Produced by \`bench/runtime.sh\` (which runs \`../shared/tools/bench-runtime.sh $rt crun runc\`)."
    echo "Ratios are to the first runtime, berth-runtime: above 1.00x means slower than berth-runtime."
    echo
    cat "$out"
} >docs/benchmarks.md
rm -f "$out"
echo "wrote docs/benchmarks.md" >&2
