# shellcheck shell=bash
# Helpers shared by the engine scenarios in scripts/engines/*.sh (sourced, not run).
#
# Each scenario is one process with its own EXIT trap: `at_exit CMD` pushes a cleanup command,
# and the trap runs them in reverse order (also after a failure or a SIGTERM from `timeout`),
# each one on its own, so a failing cleanup step does not skip the others.
#
# Inputs from scripts/engines.sh: BERTH_RT (the berth-runtime binary), CI_IMAGES (directory with
# busybox.tar and pause.tar, docker archives), CI_TOOLS (directory with berth-cri-client).

ENGINE=${ENGINE:-engine}
CI_RUN=/run/berth-ci          # sockets, pid files, state: tmpfs
CI_LIB=/var/lib/berth-ci      # daemons' data roots: on disk (overlayfs cannot sit on tmpfs everywhere)
# shellcheck disable=SC2034 # used by the scenarios
IMG=berth.local/busybox:ci    # busybox-static, /www/index.html = berth-ci-httpd
# shellcheck disable=SC2034
PAUSE_IMG=berth.local/pause:ci # catatonit -P

log() { printf '[%s] %s\n' "$ENGINE" "$*" >&2; }
die() { printf '[%s] FAIL: %s\n' "$ENGINE" "$*" >&2; exit 1; }
pass() { printf '[%s] ok: %s\n' "$ENGINE" "$*" >&2; }

_cleanups=()
at_exit() { _cleanups+=("$1"); }
_run_cleanups() {
    local rc=$? i
    trap - EXIT TERM INT
    set +e
    for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_cleanups[$i]}" >/dev/null 2>&1
    done
    exit "$rc"
}
trap _run_cleanups EXIT
trap 'log "interrupted (timeout?)"; exit 124' TERM INT

: "${BERTH_RT:?set by scripts/engines.sh}" "${CI_IMAGES:?set by scripts/engines.sh}"

# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || die "$1: got '$2', expected '$3'"; pass "$1 = '$3'"; }
# expect_rc WANT CMD... : run CMD, check its exit code, print its stdout
expect_rc() {
    local want=$1 rc=0 out
    shift
    out=$("$@") || rc=$?
    [ "$rc" = "$want" ] || die "'$*' exited $rc, expected $want (output: $out)"
    printf '%s' "$out"
}
# contains WHAT HAYSTACK NEEDLE
contains() { [[ $2 == *"$3"* ]] || die "$1: '$3' not in: $2"; pass "$1 contains '$3'"; }

# wait_until SECONDS CMD... : poll CMD every 0.1 s
wait_until() {
    local end=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.1
    done
}

# stop_pid PID [SECONDS]: TERM, wait, then KILL a process this scenario started.
stop_pid() {
    local pid=$1 t=${2:-20}
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_until "$t" sh -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
}

# kill_matching STRING: SIGKILL, by pid, the processes whose command line contains STRING (a
# path unique to this scenario, e.g. its containerd socket: shims, conmon, docker-proxy).
kill_matching() {
    local pid
    for pid in $(pgrep -f -- "$1" || true); do
        [ "$pid" = $$ ] || kill -KILL "$pid" 2>/dev/null || true
    done
}

# umount_under DIR: unmount everything mounted at or below DIR, deepest first.
umount_under() {
    local m
    awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# rm_cgroups NAME: remove /sys/fs/cgroup/*/NAME (and cgroup2's) trees, deepest first, after
# killing the container processes still in them. NAME is this scenario's own parent cgroup.
# A kernel thread found there (a runtime that wrote a wrong pid into cgroup.procs) is moved
# back to the root cgroup of its hierarchy, never signalled.
rm_cgroups() {
    local d c pid flags
    for d in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
        [ -d "$d" ] || continue
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            find "$d" -depth -type d | while read -r c; do
                while read -r pid; do
                    flags=$(awk '{ print $9 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
                    if (( flags & 0x200000 )); then         # PF_KTHREAD
                        log "WARNING: kernel thread $pid ($(cat "/proc/$pid/comm")) was in $c; moved back"
                        echo "$pid" >"${d%/"$1"}/cgroup.procs" || true
                    else
                        kill -KILL "$pid" 2>/dev/null || true
                    fi
                done < <(cat "$c/cgroup.procs" 2>/dev/null)
                rmdir "$c" 2>/dev/null || true
            done
            [ -d "$d" ] || break
            sleep 0.2
        done
    done
}

# del_link NAME: remove a network interface if present.
del_link() { if ip link show "$1" >/dev/null 2>&1; then ip link del "$1"; fi; }

# reclaim_leftovers RUN_DIR DATA_DIR LINK CGROUP: remove what an earlier run of this scenario
# left when it was killed before its cleanup could run (SIGKILL, a machine stopped mid-run):
# processes whose command line names RUN_DIR, mounts under both dirs, the cgroup parent, the
# bridge, the dirs. Every one of these names is this scenario's own; nothing else is touched.
reclaim_leftovers() {
    local run=$1 data=$2 link=$3 cg=$4
    if [ -e "$run" ] || [ -e "$data" ] || { [ -n "$link" ] && ip link show "$link" >/dev/null 2>&1; }; then
        log "removing what an earlier, killed run left: $run $data ${link:-}"
        kill_matching "$run/"
        umount_under "$run"
        umount_under "$data"
        [ -z "$cg" ] || rm_cgroups "$cg"
        [ -z "$link" ] || del_link "$link"
        rm -rf "$run" "$data"
    fi
}

# rootless_ok: berth-runtime's state for this scenario is empty (`list -q` under ROOT).
runtime_list_empty() { [ -z "$("$BERTH_RT" --root "$1" list -q 2>/dev/null)" ]; }

# start_containerd NAME [CRI_TOML]: start Debian's containerd with a config of its own: socket,
# root, state, opt dir, runc-shim root all under $CI_RUN/NAME and $CI_LIB/NAME, the CRI
# plugin's restrict_oom_score_adj on, and CRI_TOML appended (the CRI plugin's sections). Sets
# CTRD_SOCK, CTRD_STATE, CTRD_ROOT and CTRD_PID; registers its cleanup (tasks killed, daemon
# stopped, leftover shims killed, mounts under its dirs unmounted, dirs removed).
start_containerd() {
    local name=$1 cri_toml=${2:-}
    CTRD_STATE=$CI_RUN/$name
    CTRD_ROOT=$CI_LIB/$name
    CTRD_SOCK=$CTRD_STATE/containerd.sock
    reclaim_leftovers "$CTRD_STATE" "$CTRD_ROOT" "" ""
    mkdir -p "$CTRD_STATE" "$CTRD_ROOT"
    cat >"$CTRD_STATE/config.toml" <<TOML
version = 2
root = "$CTRD_ROOT/root"
state = "$CTRD_STATE/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD_ROOT/opt"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
$cri_toml
TOML
    at_exit "rm -rf '$CTRD_STATE' '$CTRD_ROOT'"
    at_exit "umount_under '$CTRD_STATE'; umount_under '$CTRD_ROOT'"
    at_exit "kill_matching '$CTRD_SOCK'"            # shims (their -address is this socket)
    containerd --config "$CTRD_STATE/config.toml" >"$CTRD_STATE/containerd.log" 2>&1 &
    CTRD_PID=$!
    at_exit "stop_pid $CTRD_PID 20"
    at_exit "ctrd_kill_all"
    wait_until 30 ctr --address "$CTRD_SOCK" version ||
        { tail -n 20 "$CTRD_STATE/containerd.log" >&2; die "containerd did not come up on $CTRD_SOCK"; }
    [ "$(c_ctr plugins ls | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" { print $NF }')" = ok ] ||
        { grep 'failed to load plugin' "$CTRD_STATE/containerd.log" >&2 || true; die "containerd's CRI plugin did not load"; }
    log "containerd $(containerd --version | awk '{print $3}') up: pid $CTRD_PID, socket $CTRD_SOCK, CRI plugin ok"
}
c_ctr() { ctr --address "$CTRD_SOCK" "$@"; }
# On failure or exit: SIGKILL and delete every task and container this containerd knows.
ctrd_kill_all() {
    local ns id
    for ns in $(c_ctr namespaces ls -q 2>/dev/null); do
        for id in $(c_ctr -n "$ns" tasks ls -q 2>/dev/null); do
            c_ctr -n "$ns" tasks kill -a -s KILL "$id" 2>/dev/null
            timeout 10 c_ctr -n "$ns" tasks delete -f "$id" 2>/dev/null
        done
        for id in $(c_ctr -n "$ns" containers ls -q 2>/dev/null); do
            c_ctr -n "$ns" containers delete "$id" 2>/dev/null
        done
    done
    true
}

# start_dockerd NAME BRIDGE BRIDGE_CIDR POOL CGROUP_PARENT NAME=RUNTIME...: start Debian's dockerd
# as a daemon of our own: socket $CI_RUN/NAME.sock (exported as DOCKER_HOST), data root
# $CI_LIB/NAME, exec root $CI_RUN/NAME/exec (its own containerd lives there), pid file, an empty
# config file (not /etc/docker/daemon.json), the default network on BRIDGE (created here), user
# networks from POOL, containers under CGROUP_PARENT, and each NAME=RUNTIME as --add-runtime.
# It changes no iptables rules and no sysctls (--iptables=false --ip-forward=false
# --ip-masq=false): published ports go through docker-proxy. Sets DOCKERD_RUN, DOCKERD_PID;
# registers its cleanup.
start_dockerd() {
    local name=$1 bridge=$2 cidr=$3 pool=$4 cg=$5 sock data rt net
    shift 5
    DOCKERD_RUN=$CI_RUN/$name
    data=$CI_LIB/$name
    sock=$CI_RUN/$name.sock
    export DOCKER_HOST=unix://$sock
    if [ -S "$sock" ] && curl -s --unix-socket "$sock" http://d/_ping >/dev/null; then
        die "a dockerd already answers on $sock (another run of this suite?)"
    fi
    reclaim_leftovers "$DOCKERD_RUN" "$data" "$bridge" "$cg"
    rm -f "$sock" "$CI_RUN/$name.pid"
    for net in "${cidr%.*}." "${pool%.*}."; do
        if ip -4 route show | awk -v n="$net" 'index($1, n) == 1 { f = 1 } END { exit !f }'; then
            die "${net}x is already routed on this host"
        fi
    done
    mkdir -p "$DOCKERD_RUN" "$data"
    at_exit "rm -rf '$DOCKERD_RUN' '$data' '$sock' '$CI_RUN/$name.pid'"
    at_exit "umount_under '$DOCKERD_RUN'; umount_under '$data'"
    at_exit "kill_matching '$DOCKERD_RUN/'"        # its containerd, shims, docker-proxy
    at_exit "rm_cgroups $cg"
    at_exit "del_link $bridge"
    ip link add "$bridge" type bridge
    ip addr add "$cidr" dev "$bridge"
    ip link set "$bridge" up
    echo '{}' >"$DOCKERD_RUN/daemon.json"
    local args=(--config-file "$DOCKERD_RUN/daemon.json" -H "unix://$sock"
        --data-root "$data" --exec-root "$DOCKERD_RUN/exec" --pidfile "$CI_RUN/$name.pid"
        --bridge "$bridge" --iptables=false --ip-forward=false --ip-masq=false
        --default-address-pool "base=$pool,size=24" --cgroup-parent "/$cg"
        --storage-driver overlay2 --log-level warn)
    for rt in "$@"; do args+=(--add-runtime "$rt"); done
    dockerd "${args[@]}" >"$DOCKERD_RUN/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    at_exit "stop_pid $DOCKERD_PID 30"
    at_exit "docker_rm_all"
    wait_until 60 docker version ||
        { tail -n 30 "$DOCKERD_RUN/dockerd.log" >&2; die "dockerd did not come up on $sock"; }
    for rt in "$@"; do
        docker info --format '{{json .Runtimes}}' | grep -q "\"${rt%%=*}\":{\"path\":\"${rt#*=}\"" ||
            die "dockerd does not list the runtime $rt: $(docker info --format '{{json .Runtimes}}')"
    done
    log "dockerd $(docker version --format '{{.Server.Version}}') up: pid $DOCKERD_PID, $DOCKER_HOST, runtimes $*"
}
docker_rm_all() {
    local ids
    ids=$(docker ps -aq 2>/dev/null) || return 0
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        timeout 60 docker rm -f $ids
    fi
    true
}

# setup_podman NAME: podman with storage, run root, tmp dir, containers.conf, storage.conf and
# events log of its own under $CI_RUN/NAME and $CI_LIB/NAME (it never sees another podman's
# containers or images), cgroupfs manager, file events logger. Sets PODMAN (the command with
# its global options, without --runtime), PODMAN_RUN and PODMAN_DATA, exports
# CONTAINERS_CONF and CONTAINERS_STORAGE_CONF; registers its cleanup.
setup_podman() {
    PODMAN_RUN=$CI_RUN/$1
    PODMAN_DATA=$CI_LIB/$1
    local nofile nproc
    rm -rf "$PODMAN_RUN" "$PODMAN_DATA"
    mkdir -p "$PODMAN_RUN/net" "$PODMAN_DATA"
    at_exit "rm -rf '$PODMAN_RUN' '$PODMAN_DATA'"
    at_exit "umount_under '$PODMAN_RUN'; umount_under '$PODMAN_DATA'"
    at_exit "kill_matching '$PODMAN_RUN/'"           # conmon (its args name the run root)
    cat >"$PODMAN_RUN/storage.conf" <<TOML
[storage]
driver = "overlay"
graphroot = "$PODMAN_DATA/storage"
runroot = "$PODMAN_RUN/storage"
TOML
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
    cat >"$PODMAN_RUN/containers.conf" <<TOML
[containers]
cgroupns = "private"
# podman asks for RLIMIT_NOFILE and RLIMIT_NPROC 1048576 as root; a host whose root lacks
# CAP_SYS_RESOURCE cannot raise hard limits (berth-runtime, like runc, then fails), so ask for
# no more than the current ones (podman itself runs with NPROC at most 32768 here).
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_RUN/events.log"
static_dir = "$PODMAN_DATA/libpod"
tmp_dir = "$PODMAN_RUN/tmp"
volume_path = "$PODMAN_DATA/volumes"
network_config_dir = "$PODMAN_RUN/net"
TOML
    export CONTAINERS_STORAGE_CONF=$PODMAN_RUN/storage.conf CONTAINERS_CONF=$PODMAN_RUN/containers.conf
    PODMAN=(podman --root "$PODMAN_DATA/storage" --runroot "$PODMAN_RUN/storage" --tmpdir "$PODMAN_RUN/tmp"
        --cgroup-manager cgroupfs --events-backend file)
    at_exit "timeout 60 ${PODMAN[*]} rm -af -t 0"
}
