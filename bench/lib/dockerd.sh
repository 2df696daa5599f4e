# bench/lib/dockerd.sh: a dockerd of a benchmark's own, never the system daemon: its own socket,
# data root, exec root and pidfile under DIR, no bridge and no iptables rules (so --network none
# only), its containers' cgroups under /CGROUP. Sourced by the bench scripts.
#
#   dockerd_start DIR CGROUP CLIENT   sets DOCKER ("CLIENT -H unix://DIR/docker.sock") and
#                                     have_docker=1, or why_docker when it did not come up
#   dockerd_stop DIR CGROUP           removes its containers, stops it, removes its cgroups

DOCKER=${DOCKER:-}

dockerd_start() {
    local dir=$1 cgroup=$2 client=$3
    DOCKER="$client -H unix://$dir/docker.sock"
    have_docker=
    if ! command -v dockerd >/dev/null; then why_docker="dockerd not installed"; return 0; fi
    mkdir -p "$dir"
    echo '{}' >"$dir/daemon.json"
    dockerd --config-file "$dir/daemon.json" -H "unix://$dir/docker.sock" \
        --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$dir/dockerd.pid" --bridge none --iptables=false --ip-forward=false \
        --ip-masq=false --storage-driver overlay2 --cgroup-parent "/$cgroup" \
        >"$dir/log" 2>&1 &
    for _ in $(seq 600); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.1; done
    if $DOCKER version >/dev/null 2>&1; then have_docker=1; else why_docker="the private dockerd did not answer in 60 s"; fi
}

dockerd_stop() {
    local dir=$1 cgroup=$2
    [ -f "$dir/dockerd.pid" ] || return 0
    # shellcheck disable=SC2046
    $DOCKER rm -f $($DOCKER ps -aq) >/dev/null 2>&1
    kill "$(cat "$dir/dockerd.pid")" 2>/dev/null
    for _ in $(seq 300); do [ -e "$dir/dockerd.pid" ] || break; sleep 0.1; done
    # BuildKit's RUN containers leave a buildkit/ cgroup under the parent.
    for d in "/sys/fs/cgroup/"*"/$cgroup"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}
