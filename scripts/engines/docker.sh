#!/usr/bin/env bash
# dockerd with `--add-runtime berth=berth-runtime`: a daemon of our own (socket, data root, exec
# root, pid file, bridge, cgroup parent, no iptables changes: port publishing goes through
# docker-proxy), so a system dockerd is never touched. Checks: run (output, exit code), -d with
# -p (HTTP answers) and -m (cgroup limit and inspect), exec, pause/unpause, stats, logs, stop,
# -it on a pty, and docker-compose up/down of two services where one reaches the other by name.
# Run by scripts/engines.sh, which sets BERTH_RT and CI_IMAGES.
set -euo pipefail
ENGINE=docker
# shellcheck source=scripts/engines/lib.sh
. "$(dirname "$0")/lib.sh"

CBRIDGE=berthci-cmp0                  # the compose project's network
CG=berth-ci-docker
PORT=18480
at_exit "del_link $CBRIDGE"
start_dockerd docker berthci-dk0 10.213.46.1/24 10.213.48.0/20 "$CG" "berth=$BERTH_RT"
RUN=$DOCKERD_RUN

out=$(docker load -i "$CI_IMAGES/busybox.tar")
contains "docker load" "$out" "Loaded image: $IMG"

# foreground run: output and exit code
rc=0
out=$(timeout 60 docker run --rm --runtime berth "$IMG" sh -c 'echo hello from berth; exit 3') || rc=$?
expect_eq "docker run output" "$out" "hello from berth"
expect_eq "docker run exit code" "$rc" 3

# detached web server with a published port and a memory limit
docker run -d --runtime berth --name web -p "127.0.0.1:$PORT:80" -m 64m "$IMG" \
    httpd -f -p 80 -h /www >/dev/null
expect_eq "web runtime (inspect)" "$(docker inspect -f '{{.HostConfig.Runtime}}' web)" berth
expect_eq "web memory (inspect)" "$(docker inspect -f '{{.HostConfig.Memory}}' web)" 67108864
id=$(docker inspect -f '{{.Id}}' web)
expect_eq "web memory.limit_in_bytes" "$(cat "/sys/fs/cgroup/memory/$CG/$id/memory.limit_in_bytes")" 67108864
pid=$(docker inspect -f '{{.State.Pid}}' web)
grep -qx "$pid" "/sys/fs/cgroup/memory/$CG/$id/cgroup.procs" || die "web's pid $pid is not in its cgroup"
"$BERTH_RT" --root "$RUN/exec/runtime-runc/moby" list -q | grep -qx "$id" ||
    { find "$RUN/exec" -maxdepth 4 -path "*$id*" >&2; die "berth-runtime does not list web (root $RUN/exec/runtime-runc/moby)"; }
pass "web is berth-runtime's container"
wait_until 10 curl -sf "http://127.0.0.1:$PORT/" || die "nothing answers on 127.0.0.1:$PORT"
expect_eq "HTTP GET 127.0.0.1:$PORT (docker-proxy -> container)" "$(curl -sS -m 5 "http://127.0.0.1:$PORT/")" berth-ci-httpd

# exec
rc=0
out=$(timeout 30 docker exec web sh -c 'echo exec-ok; cat /proc/1/comm; exit 4') || rc=$?
expect_eq "docker exec output" "$out" "exec-ok"$'\n'"httpd"
expect_eq "docker exec exit code" "$rc" 4

# pause / unpause
docker pause web >/dev/null
expect_eq "web status after pause" "$(docker inspect -f '{{.State.Status}}' web)" paused
expect_eq "web freezer.state" "$(cat "/sys/fs/cgroup/freezer/$CG/$id/freezer.state")" FROZEN
if curl -s -m 1 "http://127.0.0.1:$PORT/" >/dev/null; then die "a paused web server answered"; fi
pass "the paused web server does not answer"
docker unpause web >/dev/null
expect_eq "web status after unpause" "$(docker inspect -f '{{.State.Status}}' web)" running
expect_eq "HTTP GET after unpause" "$(curl -sS -m 5 "http://127.0.0.1:$PORT/")" berth-ci-httpd

# stats
out=$(timeout 30 docker stats --no-stream --format '{{.MemUsage}}' web)
[[ $out =~ ^([0-9.]+)([KMG]i?B)\ /\ 64MiB$ && ${BASH_REMATCH[1]} != 0 ]] ||
    die "docker stats: unexpected memory usage '$out' (want non-zero / 64MiB)"
pass "docker stats --no-stream: $out"

# logs, and stop (sleep as PID 1 ignores SIGTERM: stop ends with SIGKILL after -t)
docker run -d --runtime berth --name talk "$IMG" sh -c 'echo out-line; echo err-line >&2; exec sleep 1000' >/dev/null
wait_until 10 sh -c "docker logs talk 2>&1 | grep -q err-line" || die "docker logs: no output from talk"
expect_eq "docker logs (stdout)" "$(docker logs talk 2>/dev/null)" out-line
expect_eq "docker logs (stderr)" "$(docker logs talk 2>&1 >/dev/null)" err-line
timeout 30 docker stop -t 1 talk >/dev/null
expect_eq "talk after docker stop" "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' talk)" "exited 137"
timeout 30 docker stop -t 5 web >/dev/null
expect_eq "web after docker stop" "$(docker inspect -f '{{.State.Status}}' web)" exited
docker rm web talk >/dev/null
[ ! -d "/sys/fs/cgroup/memory/$CG/$id" ] || die "web's cgroup is left after docker rm"
if "$BERTH_RT" --root "$RUN/exec/runtime-runc/moby" list -q | grep -q .; then die "berth-runtime still lists containers"; fi
pass "docker rm: no cgroup and no berth-runtime state left"

# -it: a terminal inside the container (script(1) gives docker a pty)
out=$(timeout 60 script -qec "docker run --rm -it --runtime berth $IMG sh -c 'tty; echo tty-ok'" /dev/null | tr -d '\r')
contains "docker run -it: the container's stdin is a tty" "$out" "/dev/pts/0"
contains "docker run -it output" "$out" "tty-ok"

# docker-compose: two services on a compose network, the client reaches the server by name
proj=$RUN/compose
mkdir -p "$proj"
cat >"$proj/docker-compose.yml" <<YAML
version: "2.4"
services:
  web:
    image: $IMG
    runtime: berth
    command: httpd -f -p 80 -h /www
  client:
    image: $IMG
    runtime: berth
    command: sleep 1000
    depends_on: [web]
networks:
  default:
    driver_opts:
      com.docker.network.bridge.name: $CBRIDGE
YAML
# This dockerd leaves iptables alone (--iptables=false), but with br_netfilter loaded bridged
# packets traverse FORWARD, whose policy a system dockerd sets to DROP: accept traffic within
# the compose bridge for the test's duration.
iptables -I FORWARD 1 -i "$CBRIDGE" -o "$CBRIDGE" -j ACCEPT -m comment --comment berth-ci
at_exit "iptables -D FORWARD -i $CBRIDGE -o $CBRIDGE -j ACCEPT -m comment --comment berth-ci"
compose=(docker-compose -p berthci -f "$proj/docker-compose.yml")
at_exit "timeout 60 ${compose[*]} down -t 1"
timeout 120 "${compose[@]}" up -d >&2
for s in web client; do
    expect_eq "compose $s runtime" "$(docker inspect -f '{{.HostConfig.Runtime}}' "berthci_${s}_1")" berth
done
# (no wget -T: busybox 1.35's wget segfaults with it; `timeout` bounds it instead)
out=$(timeout 30 "${compose[@]}" exec -T client wget -q -O - http://web/) ||
    die "compose: client could not fetch http://web/"
expect_eq "compose: client -> http://web/ (by service name)" "$out" berth-ci-httpd
timeout 120 "${compose[@]}" down -t 1 >&2
expect_eq "containers after compose down" "$(docker ps -aq)" ""
if docker network ls --format '{{.Name}}' | grep -q berthci; then die "compose network left after down"; fi
pass "docker-compose down removed containers and network"
log "PASS"
