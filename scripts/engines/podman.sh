#!/usr/bin/env bash
# podman --runtime berth-runtime, with storage, run root, tmp dir, containers.conf and events
# log of its own (so it never sees another podman's containers or images), cgroupfs manager,
# file events logger, no network (podman's default network would add a bridge and iptables
# rules): run (output, exit code), -d with -m (cgroup limit), exec, top, stats, pause/unpause,
# stop (SIGTERM reaches the process), kill, container checkpoint/restore (CRIU), also through an
# exported archive.
# Run by scripts/engines.sh, which sets BERTH_RT and CI_IMAGES.
set -euo pipefail
ENGINE=podman
# shellcheck source=scripts/engines/lib.sh
. "$(dirname "$0")/lib.sh"

CG=berth-ci-podman
setup_podman podman
RUN=$PODMAN_RUN
DATA=$PODMAN_DATA
# podman 4.3 passes no --root to a runtime it does not know, and drops --runtime-flag from the
# exit command that deletes a container once it exits: berth-runtime keeps this podman's
# containers in its default state directory, /run/berth-runtime, under podman's (unique) IDs.
BERTH_ROOT=/run/berth-runtime
pm=("${PODMAN[@]}" --runtime "$BERTH_RT")
pm() { timeout 60 "${pm[@]}" "$@"; }
at_exit "rm_cgroups $CG"
log "$(podman --version), storage $DATA/storage, run root $RUN"

out=$(pm load -i "$CI_IMAGES/busybox.tar" 2>&1)
contains "podman load" "$out" "$IMG"
opts=(--network none --cgroup-parent "/$CG")

# foreground run: output and exit code
rc=0
out=$(pm run --rm "${opts[@]}" "$IMG" sh -c 'echo hello from berth; exit 3') || rc=$?
expect_eq "podman run output" "$out" "hello from berth"
expect_eq "podman run exit code" "$rc" 3

# detached, memory limit, and the runtime that runs it
pm run -d --name p1 "${opts[@]}" -m 64m "$IMG" \
    sh -c 'trap "echo got TERM; exit 42" TERM; echo p1 up; while :; do sleep 0.2; done' >/dev/null
expect_eq "p1 OCI runtime (inspect)" "$(pm inspect -f '{{.OCIRuntime}}' p1)" "$BERTH_RT"
id=$(pm inspect -f '{{.Id}}' p1)
"$BERTH_RT" --root "$BERTH_ROOT" list -q | grep -qx "$id" || die "berth-runtime does not list p1 (root $BERTH_ROOT)"
pass "p1 is berth-runtime's container"
cg=$(find "/sys/fs/cgroup/memory/$CG" -maxdepth 1 -type d -name "*$id*" | head -n 1)
[ -n "$cg" ] || die "no memory cgroup for p1 under /sys/fs/cgroup/memory/$CG"
expect_eq "p1 memory.limit_in_bytes" "$(cat "$cg/memory.limit_in_bytes")" 67108864
p1_up() { pm logs p1 | grep -q 'p1 up'; }
wait_until 10 p1_up ||
    die "podman logs p1: no output"
pass "podman logs p1"

# exec
rc=0
out=$(pm exec p1 sh -c 'echo exec-ok; cat /proc/1/comm; exit 4') || rc=$?
expect_eq "podman exec output" "$out" "exec-ok"$'\n'"sh"
expect_eq "podman exec exit code" "$rc" 4

# top, stats
out=$(pm top p1 pid args)
contains "podman top" "$out" "sh -c trap"
out=$(pm stats --no-stream --format '{{.MemUsage}}' p1)
[[ $out =~ ^([0-9.]+)([kKMG]i?B)\ /\ 67.11MB$ && ${BASH_REMATCH[1]} != 0 ]] ||
    die "podman stats: unexpected memory usage '$out' (want non-zero / 67.11MB)"
pass "podman stats --no-stream: $out"

# pause / unpause
pm pause p1 >/dev/null
expect_eq "p1 status after pause" "$(pm inspect -f '{{.State.Status}}' p1)" paused
expect_eq "p1 freezer.state" "$(cat "${cg/memory/freezer}/freezer.state")" FROZEN
pm unpause p1 >/dev/null
expect_eq "p1 status after unpause" "$(pm inspect -f '{{.State.Status}}' p1)" running

# checkpoint / restore (CRIU through berth-runtime): a counter resumes its count, in place and
# through an exported archive restored under a new name
command -v criu >/dev/null || die "criu is not on PATH (scripts/install-criu.sh installs it)"
pm run -d --name p3 "${opts[@]}" "$IMG" \
    sh -c 'i=0; while :; do i=$((i+1)); echo "n=$i"; sleep 0.1; done' >/dev/null
last_n() { pm logs "$1" | sed -n 's/^n=//p' | tail -n 1; }
p3_counts() { [ "$(last_n p3)" -ge 5 ] 2>/dev/null; }
wait_until 10 p3_counts || die "p3 does not count"
pm container checkpoint p3 >/dev/null
expect_eq "p3 after podman container checkpoint" "$(pm inspect -f '{{.State.Status}}' p3)" exited
n0=$(last_n p3)
pm container restore p3 >/dev/null
expect_eq "p3 after podman container restore" "$(pm inspect -f '{{.State.Status}}' p3)" running
p3_resumed() { [ "$(last_n p3)" -gt $((n0 + 3)) ] 2>/dev/null; }
wait_until 10 p3_resumed || die "p3 did not count on after restore (last $(last_n p3), checkpointed at $n0)"
# the count goes on from n0, it does not start again at 1
first_after=$(pm logs p3 | sed -n 's/^n=//p' | awk -v n0="$n0" 'NR > n0 { print; exit }')
expect_eq "p3's first count after restore" "$first_after" "$((n0 + 1))"
pm container checkpoint --export "$DATA/p3.tar.gz" p3 >/dev/null
n1=$(last_n p3)
pm container restore --import "$DATA/p3.tar.gz" --name p3b >/dev/null
expect_eq "p3b (imported) status" "$(pm inspect -f '{{.State.Status}}' p3b)" running
p3b_counts() { [ "$(last_n p3b)" -gt "$n1" ] 2>/dev/null; }
wait_until 10 p3b_counts || die "p3b (restored from the export) does not count on from $n1"
pass "podman container checkpoint/restore (in place and --export/--import) with berth-runtime"

# podman's archive restored by berth (a root of its own, the same image loaded): the count
# goes on from where podman's export left it, the rootfs change came along.
: "${BERTH:?set by scripts/engines.sh}"
broot=$DATA/berth-root
at_exit "'$BERTH' --root '$broot' rm -f p3c >/dev/null 2>&1; umount_under '$broot'; rm -rf '$broot'"
"$BERTH" --root "$broot" load -i "$CI_IMAGES/busybox.tar" >/dev/null
n2=$(last_n p3b)
pm container checkpoint --export "$DATA/p3b.tar.gz" p3b >/dev/null
"$BERTH" --root "$broot" container restore --import "$DATA/p3b.tar.gz" --name p3c >/dev/null ||
    die "berth cannot restore podman's archive"
expect_eq "p3c (podman's archive restored by berth) status" \
    "$("$BERTH" --root "$broot" inspect -f '{{.State.Status}}' p3c)" running
b_last() { "$BERTH" --root "$broot" logs p3c | sed -n 's/^n=//p' | tail -n 1; }
p3c_counts() { [ "$(b_last)" -gt "$((n2 + 3))" ] 2>/dev/null; }
wait_until 10 p3c_counts || die "p3c (berth, from podman's archive) does not count on from $n2 (last $(b_last))"
first_c=$("$BERTH" --root "$broot" logs p3c | sed -n 's/^n=//p' | head -n 1)
[ "$first_c" -gt "$n2" ] || die "p3c started its count again ($first_c, podman's export was at $n2)"
"$BERTH" --root "$broot" rm -f p3c >/dev/null
pass "podman's checkpoint archive restored by berth"
pm rm -f -t 0 p3 p3b >/dev/null

# stop: SIGTERM reaches the process, which exits 42 through its trap
pm stop -t 10 p1 >/dev/null
expect_eq "p1 after podman stop" "$(pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' p1)" "exited 42"
contains "p1's log after stop" "$(pm logs p1)" "got TERM"

# kill
pm run -d --name p2 "${opts[@]}" "$IMG" sleep 1000 >/dev/null
id2=$(pm inspect -f '{{.Id}}' p2)
pm kill -s KILL p2 >/dev/null
p2_exited() { [ "$(pm inspect -f '{{.State.Status}}' p2)" = exited ]; }
wait_until 10 p2_exited ||
    die "p2 not exited after podman kill"
expect_eq "p2 exit code after podman kill -s KILL" "$(pm inspect -f '{{.State.ExitCode}}' p2)" 137

pm rm p1 p2 >/dev/null
expect_eq "containers after rm" "$(pm ps -aq)" ""
t0=$SECONDS
ours_gone() { ! "$BERTH_RT" --root "$BERTH_ROOT" list -q | grep -qx -e "$id" -e "$id2"; }
wait_until 10 ours_gone || die "berth-runtime still lists p1 or p2 10 s after podman rm"
wait_until 10 test ! -d "$cg" || die "p1's cgroup $cg is left 10 s after podman rm"
pass "no berth-runtime state and no cgroup left after podman rm (after $((SECONDS - t0)) s)"
grep -q '"Status":"died"\|died' "$RUN/events.log" || die "no events in $RUN/events.log (file events logger)"
pass "events written to $RUN/events.log"
log "PASS"
