#!/usr/bin/env bash
# Write docs/benchmarks.md: berth-runtime beside crun and runc, in one run on this machine.
#   1. the OCI lifecycle of /bin/true (run, create, start, delete, the whole lifecycle), 100
#      sequential runs and peak RSS: ../shared/tools/bench-runtime.sh crun berth-runtime runc
#      (crun first, so its ratios are to crun);
#   2. the same container through containerd, dockerd and podman: bench/engines.sh;
#   3. where berth-runtime's time goes: bench/profile.sh;
# plus the machine facts and the goal check (whole lifecycle <= 0.8x crun, RSS <= crun).
# Run as root on an idle machine; about 10 minutes. Knobs: bench-runtime.sh's (RUNS, LOOP_N,
# ...) and bench/engines.sh's (ENGINE_RUNS).
#
# crun refuses hybrid hosts whose cgroup2 mount owns a controller (hugetlb here): for the run,
# this script mounts such controllers as v1 hierarchies of its own and unmounts them afterwards
# (all three runtimes, and the engines, run in that same window).
set -euo pipefail
cd "$(dirname "$0")/.."
# Builds and tests of other work share this machine: run at nice -10 (the daemons started for
# the engine part inherit it), so that the runtimes compete less with them.
if [ "$(nice)" -ge 0 ] && [ "${BENCH_NICE:-1}" = 1 ] && nice -n -10 true 2>/dev/null; then
    exec nice -n -10 "$0" "$@"
fi
tool=../shared/tools/bench-runtime.sh
[ -x "$tool" ] || { echo "bench/runtime.sh: $tool not found" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench/runtime.sh: must run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
need=()
for p in runc crun busybox-static hyperfine jq time strace linux-perf containerd docker.io podman \
         conmon catatonit curl iproute2; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 -q update >&2
    apt-get -o DPkg::Lock::Timeout=600 -y -q install "${need[@]}" >&2
fi
cargo build-runtime   # the static release build (.cargo/config.toml)
rt=$PWD/target/release/berth-runtime

# A controller leaves cgroup2 for a v1 mount only while no cgroup2 subtree_control enables it;
# berth-runtime enables hugetlb in the root's when it makes a cgroup there, so it is disabled
# for the run (when no child still enables it) and enabled again afterwards.
u=/sys/fs/cgroup/unified
v2_owns=$(cat "$u/cgroup.controllers" 2>/dev/null || true)   # for the report, before the move
mounted=() reenable=()
# give_back C: unmount the v1 hierarchy of controller C so that it returns to cgroup2. The kernel
# only releases a hierarchy that has no child cgroup at unmount time, and other work may have
# made cgroups in it meanwhile: remove the empty ones, unmount, and if C does not come back,
# mount again and retry (up to a minute, while those containers finish).
give_back() {
    local c=$1 m=/sys/fs/cgroup/$1 _try _w
    for _try in $(seq 30); do
        find "$m" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
        umount "$m" || return 1
        for _w in $(seq 10); do
            if grep -qw "$c" "$u/cgroup.controllers"; then rmdir "$m"; return 0; fi
            sleep 0.1
        done
        mount -t cgroup -o "$c" cgroup "$m" || { rmdir "$m"; return 1; }
        sleep 2
    done
    echo "bench/runtime.sh: WARNING: cgroups still in use under $m: $(find "$m" -mindepth 1 -type d | tr '\n' ' ')" >&2
    umount "$m" && rmdir "$m"
    return 1
}
cleanup() {
    local m c
    for m in "${mounted[@]}"; do
        give_back "${m##*/}" ||
            echo "bench/runtime.sh: WARNING: ${m##*/} stays in a detached v1 hierarchy; to give it back to cgroup2: mount it again at $m, remove its cgroups, unmount" >&2
    done
    for c in "${reenable[@]}"; do
        echo "+$c" >"$u/cgroup.subtree_control" ||
            echo "bench/runtime.sh: WARNING: could not enable $c again in $u/cgroup.subtree_control" >&2
    done
    mounted=() reenable=()
}
trap cleanup EXIT
if [ -e "$u/cgroup.controllers" ]; then
    read -ra ctrls <"$u/cgroup.controllers"
    for c in "${ctrls[@]}"; do
        [ -e "/sys/fs/cgroup/$c" ] && continue
        mkdir "/sys/fs/cgroup/$c"
        # Other work on the machine (berth-runtime re-enables the controller whenever it makes a
        # cgroup) and cgroups still being freed can make the move fail for a moment: retry.
        ok=0
        for _ in $(seq 120); do   # up to a minute
            if grep -qw "$c" "$u/cgroup.subtree_control"; then
                echo "-$c" >"$u/cgroup.subtree_control" 2>/dev/null && reenable+=("$c")
            fi
            if mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" 2>/dev/null; then ok=1; break; fi
            sleep 0.5
        done
        if [ "$ok" = 1 ]; then
            mounted+=("/sys/fs/cgroup/$c")
            echo "bench/runtime.sh: cgroup controller $c mounted as v1 at /sys/fs/cgroup/$c for the run" >&2
        else
            rmdir "/sys/fs/cgroup/$c"
            echo "bench/runtime.sh: cannot move the $c controller from cgroup2 to a v1 mount (cgroups in $u still use it:" \
                "$(for f in "$u"/*/cgroup.procs "$u"/*/*/cgroup.procs; do [ -n "$(cat "$f" 2>/dev/null)" ] && echo "${f%/*}"; done | tr '\n' ' '))," \
                "and crun refuses to run on this host without that: no benchmark" >&2
            exit 1
        fi
    done
fi

oci=$(mktemp) eng=$(mktemp) prof=$(mktemp)
trap 'rm -f "$oci" "$eng" "$prof"; cleanup' EXIT
t0=$SECONDS
FIX_HYBRID=0 "$tool" crun "$rt" runc >"$oci"
bench/engines.sh >"$eng"
bench/profile.sh >"$prof"
res=${BENCH_DIR:-/var/tmp/bench}/results

# goal check from the raw hyperfine results (runtime #0 crun, #1 berth-runtime) and the RSS table
med() { jq -r '.results[0].median' "$res/$1.json"; }
mn() { jq -r '.results[0].min' "$res/$1.json"; }
lc_b=$(med lifecycle_netns_1) lc_c=$(med lifecycle_netns_0)
lcn_b=$(med lifecycle_nonet_1) lcn_c=$(med lifecycle_nonet_0)
lcm_b=$(mn lifecycle_netns_1) lcm_c=$(mn lifecycle_netns_0)
lcnm_b=$(mn lifecycle_nonet_1) lcnm_c=$(mn lifecycle_nonet_0)
rss_c=$(awk -F'|' '$2 ~ /^ crun / && $3 ~ /[0-9]/ { print $3 + 0; exit }' "$oci")
rss_b=$(awk -F'|' '$2 ~ /^ berth-runtime / && $3 ~ /[0-9]/ { print $3 + 0; exit }' "$oci")
verdict() { awk -v a="$1" -v b="$2" -v g="$3" 'BEGIN { r = a / b; printf "%.2fx crun: %s", r, (r <= g ? "**met**" : "**missed**") }'; }

cgmode=hybrid
case "$(stat -f -c %T /sys/fs/cgroup)" in cgroup2fs) cgmode=v2 ;; tmpfs) [ -e /sys/fs/cgroup/unified ] || cgmode=v1 ;; esac
{
    echo "# berth-runtime benchmarks"
    echo
    echo "Produced by \`bench/runtime.sh\` on $(date -u +%Y-%m-%d) in $(( (SECONDS - t0) / 60 )) min; every number below comes from that one run on one machine."
    echo
    echo "## Goal"
    echo
    echo "berth-runtime's whole lifecycle (create, start, wait, delete) at most 0.8x crun's, and its peak RSS at most crun's."
    echo
    echo "| | berth-runtime | crun | result |"
    echo "|---|---:|---:|---|"
    echo "| lifecycle, netns (ms, median) | $(awk -v v="$lc_b" 'BEGIN{printf "%.2f", v*1000}') | $(awk -v v="$lc_c" 'BEGIN{printf "%.2f", v*1000}') | $(verdict "$lc_b" "$lc_c" 0.8) |"
    echo "| lifecycle, no netns (ms, median) | $(awk -v v="$lcn_b" 'BEGIN{printf "%.2f", v*1000}') | $(awk -v v="$lcn_c" 'BEGIN{printf "%.2f", v*1000}') | $(verdict "$lcn_b" "$lcn_c" 0.8) |"
    echo "| lifecycle, netns (ms, min: the least disturbed run) | $(awk -v v="$lcm_b" 'BEGIN{printf "%.2f", v*1000}') | $(awk -v v="$lcm_c" 'BEGIN{printf "%.2f", v*1000}') | $(verdict "$lcm_b" "$lcm_c" 0.8) |"
    echo "| lifecycle, no netns (ms, min) | $(awk -v v="$lcnm_b" 'BEGIN{printf "%.2f", v*1000}') | $(awk -v v="$lcnm_c" 'BEGIN{printf "%.2f", v*1000}') | $(verdict "$lcnm_b" "$lcnm_c" 0.8) |"
    echo "| peak RSS of \`run\` (KiB, median) | $rss_b | $rss_c | $(verdict "$rss_b" "$rss_c" 1.0) |"
    echo
    echo "Load average during the run: $(grep -o 'loadavg start: .*' "$oci" | head -n1) (2 cores). Above about 2, other work on the machine dominates the medians, and the minimums say more."
    echo
    echo "## Machine"
    echo
    echo "- kernel $(uname -r), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(sed -n "s/^PRETTY_NAME=//p" /etc/os-release | tr -d \")"
    echo "- cgroups: $cgmode; v1 hierarchies at /sys/fs/cgroup/*, cgroup2 at /sys/fs/cgroup/unified owning: ${v2_owns:-none}${mounted[*]:+ (for this run mounted as v1 at ${mounted[*]} by bench/runtime.sh: crun refuses a hybrid host whose cgroup2 mount owns controllers)}"
    echo "- run at nice $(nice); the load average at the start and end of the OCI part is in its header below: other work on this 2-core machine (builds) shows up as noise, so ratios within about ±10% are not significant"
    echo "- runtimes: $("$rt" --version | head -n1) (release, LTO, statically linked by \`cargo build-runtime\`, built from $(git rev-parse --short HEAD)); $(crun --version | head -n1); $(runc --version | head -n1)"
    echo "- hardware perf counters: $(perf stat -e instructions true 2>&1 | grep -q 'not supported' && echo 'not available (VM)' || echo available)"
    echo
    echo "## OCI runtime alone"
    echo
    echo "\`../shared/tools/bench-runtime.sh crun $rt runc\`: each operation is timed with hyperfine; \`lifecycle\` is \`R create --bundle B --pid-file F ID && R start ID && <wait for the pid> ; R delete ID\`, \`run\` is \`R run --bundle B ID\`; \`netns\` is the config of \`runc spec\` (with a network namespace), \`nonet\` the same without it. Ratios are to crun."
    echo
    sed -e 's/^## OCI runtime baseline/### OCI runtime baseline/' "$oci"
    echo
    echo "## Through engines"
    echo
    cat "$eng"
    echo
    echo "## Profile of berth-runtime"
    echo
    cat "$prof"
} >docs/benchmarks.md.new
mv docs/benchmarks.md.new docs/benchmarks.md
echo "wrote docs/benchmarks.md ($(( SECONDS - t0 )) s)" >&2
