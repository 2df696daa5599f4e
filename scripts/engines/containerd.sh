#!/usr/bin/env bash
# containerd + `ctr run --runc-binary berth-runtime` (io.containerd.runc.v2 shim): run in the
# foreground (output, exit code), detached with a memory limit (cgroup file), task exec, pause
# and resume (freezer), task metrics, kill (signal reaches the process), delete (no state left).
# Run by scripts/engines.sh, which sets BERTH_RT and CI_IMAGES.
set -euo pipefail
ENGINE=containerd
# shellcheck source=scripts/engines/lib.sh
. "$(dirname "$0")/lib.sh"

start_containerd containerd
NS=berth-ci
CG=berth-ci-ctr
RUNC_ROOT=$CTRD_STATE/berth-root
at_exit "rm_cgroups $CG"
ctrn() { c_ctr -n "$NS" "$@"; }
run_opts=(--runc-binary "$BERTH_RT" --runc-root "$RUNC_ROOT")

out=$(ctrn images import "$CI_IMAGES/busybox.tar" 2>&1) || die "ctr images import: $out"
ctrn images ls -q | grep -qx "$IMG" || die "$IMG not listed after import"
pass "ctr images import of the locally built busybox archive"

# foreground: output and exit code come back through the shim
rc=0
out=$(timeout 30 ctr --address "$CTRD_SOCK" -n "$NS" run --rm "${run_opts[@]}" --cgroup "/$CG/fg" \
    "$IMG" fg sh -c 'echo hello from berth; exit 7') || rc=$?
expect_eq "ctr run (foreground) output" "$(printf '%s' "$out" | tr -d '\r')" "hello from berth"
expect_eq "ctr run (foreground) exit code" "$rc" 7

# detached, with a memory limit
ctrn run -d "${run_opts[@]}" --cgroup "/$CG/d1" --memory-limit 67108864 \
    --log-uri "file://$CTRD_STATE/d1.log" \
    "$IMG" d1 sh -c 'trap "echo got TERM; exit 42" TERM; echo d1 up; while :; do sleep 0.2; done'
wait_until 10 grep -q 'd1 up' "$CTRD_STATE/d1.log" || die "d1 printed nothing"
expect_eq "task d1 status" "$(ctrn tasks ls | awk '$1 == "d1" { print $3 }')" RUNNING
expect_eq "d1 memory.limit_in_bytes" "$(cat /sys/fs/cgroup/memory/$CG/d1/memory.limit_in_bytes)" 67108864
pid=$(ctrn tasks ls | awk '$1 == "d1" { print $2 }')
grep -qx "$pid" /sys/fs/cgroup/memory/$CG/d1/cgroup.procs || die "task pid $pid is not in the d1 cgroup"
"$BERTH_RT" --root "$RUNC_ROOT/$NS" list -q | grep -qx d1 || die "berth-runtime does not list d1"
pass "d1 is berth-runtime's container (berth-runtime --root $RUNC_ROOT/$NS list)"

# exec
rc=0
out=$(timeout 20 ctr --address "$CTRD_SOCK" -n "$NS" tasks exec --exec-id e1 d1 \
    sh -c 'echo exec-ok; tr "\0" " " </proc/1/cmdline; exit 5') || rc=$?
contains "ctr task exec output" "$out" "exec-ok"
contains "ctr task exec sees the container's PID 1" "$out" "sh -c trap"
expect_eq "ctr task exec exit code" "$rc" 5

# pause / resume
ctrn tasks pause d1
expect_eq "task d1 status after pause" "$(ctrn tasks ls | awk '$1 == "d1" { print $3 }')" PAUSED
expect_eq "d1 freezer.state" "$(cat /sys/fs/cgroup/freezer/$CG/d1/freezer.state)" FROZEN
ctrn tasks resume d1
expect_eq "task d1 status after resume" "$(ctrn tasks ls | awk '$1 == "d1" { print $3 }')" RUNNING
expect_eq "d1 freezer.state" "$(cat /sys/fs/cgroup/freezer/$CG/d1/freezer.state)" THAWED

# metrics (cgroup v1 stats through the shim)
out=$(ctrn tasks metrics d1)
usage=$(printf '%s\n' "$out" | awk '$1 == "memory.usage_in_bytes" { print $2 }')
[ "${usage:-0}" -gt 0 ] || die "ctr task metrics: no memory usage in: $out"
pass "ctr task metrics: memory.usage_in_bytes = $usage"
limit=$(printf '%s\n' "$out" | awk '$1 == "memory.limit_in_bytes" { print $2 }')
expect_eq "ctr task metrics memory.limit_in_bytes" "$limit" 67108864

# kill: SIGTERM reaches the container's process, whose exit code comes back
ctrn tasks kill -s TERM d1
wait_until 10 sh -c "ctr --address '$CTRD_SOCK' -n '$NS' tasks ls | awk '\$1 == \"d1\" { print \$3 }' | grep -qx STOPPED" ||
    die "d1 not STOPPED after SIGTERM"
wait_until 5 grep -q 'got TERM' "$CTRD_STATE/d1.log" || die "d1's TERM trap did not run"
out=$(ctrn tasks delete d1 2>&1)
contains "ctr task delete" "$out" "42"
ctrn containers delete d1
runtime_list_empty "$RUNC_ROOT/$NS" || die "berth-runtime still lists containers after delete"
[ ! -d /sys/fs/cgroup/memory/$CG/d1 ] || die "d1's cgroup is left after delete"
pass "delete: no berth-runtime state and no cgroup left"

# kill -s KILL of a second task
ctrn run -d "${run_opts[@]}" --cgroup "/$CG/d2" --null-io "$IMG" d2 sleep 1000
ctrn tasks kill -s KILL d2
wait_until 10 sh -c "ctr --address '$CTRD_SOCK' -n '$NS' tasks ls | awk '\$1 == \"d2\" { print \$3 }' | grep -qx STOPPED" ||
    die "d2 not STOPPED after SIGKILL"
out=$(ctrn tasks delete d2 2>&1)
contains "ctr task delete after SIGKILL" "$out" "137"
ctrn containers delete d2
runtime_list_empty "$RUNC_ROOT/$NS" || die "berth-runtime still lists containers"
log "PASS"
