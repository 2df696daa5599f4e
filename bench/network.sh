#!/usr/bin/env bash
# bench/network.sh: what berth's networking costs, side by side with podman (CNI) and docker.
#  1. Setup + teardown per container: `run -d IMAGE sleep` + `rm -f`, on the default bridge and
#     with --network none; the difference is the network's share (namespace, veth, address,
#     rules, and for berth the DNS server of a first container).
#  2. Throughput of a published port (wrk against busybox httpd, a 1 KiB and a 1 MiB file):
#     through berth's publishing (nft DNAT) vs the same server in the host's network, vs
#     podman's (CNI portmap) and docker's publishing.
# Prints markdown tables. Run as root. podman runs with its own temp root; docker is the
# system daemon (its own bridge and rules), with an image tag and containers of this script
# only, all removed at the end. Either is skipped, with the reason, when missing.
# Knobs: N (iterations, 20), DUR (wrk duration, 5s), CONN (connections, 32).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
DUR=${DUR:-5s}
CONN=${CONN:-32}
for t in wrk nft ip busybox; do
    command -v "$t" >/dev/null || { echo "bench/network.sh: $t is missing (apt-get install wrk nftables iproute2 busybox-static)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench/network.sh: run as root" >&2; exit 1; }
cargo build -q --release -p berth-cli -p berth-runtime
BERTH_BIN=$PWD/target/release/berth
RT=$PWD/target/release/berth-runtime
TMP=$(mktemp -d /tmp/berth-netbench.XXXXXX)
B() { "$BERTH_BIN" --root "$TMP/berth" --runtime "$RT" "$@"; }
P() { podman --root "$TMP/podman/root" --runroot "$TMP/podman/run" --cgroup-manager cgroupfs --events-backend file $PODMAN_RT "$@"; }
# crun refuses hybrid cgroups; podman's runc works there.
PODMAN_RT=; command -v runc >/dev/null && PODMAN_RT="--runtime $(command -v runc)"
# rm -f: podman waits 10 s for SIGTERM unless told otherwise; docker and berth kill at once.
RMF_P="-f -t 0"
DIMG=berth-netbench/busybox:$$

have_podman=; have_docker=
why_podman="podman not installed"; why_docker="docker not installed"
if command -v podman >/dev/null; then
    if P info >/dev/null 2>&1; then have_podman=1; else why_podman="podman info failed"; fi
fi
if command -v docker >/dev/null; then
    if timeout 10 docker info >/dev/null 2>&1; then have_docker=1; else why_docker="no docker daemon answers"; fi
fi

cleanup() {
    set +e
    B rm -f $(B ps -aq) >/dev/null 2>&1
    if [ -n "$have_podman" ]; then P rm -af >/dev/null 2>&1; P rmi -af >/dev/null 2>&1; fi
    if [ -n "$have_docker" ]; then
        docker rm -f $(docker ps -aq --filter label=berth-netbench) >/dev/null 2>&1
        docker rmi "$DIMG" >/dev/null 2>&1
    fi
    umount -R "$TMP/podman" 2>/dev/null
    for m in $(grep -o "$TMP[^ ]*" /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# The image: busybox, and files to serve.
mkdir -p "$TMP/rootfs/bin" "$TMP/rootfs/www" "$TMP/rootfs/etc" "$TMP/rootfs/tmp"
cp /bin/busybox "$TMP/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$TMP/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$TMP/rootfs/etc/passwd"
echo 'root:x:0:' >"$TMP/rootfs/etc/group"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 >"$TMP/rootfs/www/small"
head -c $((1024 * 1024)) /dev/urandom >"$TMP/rootfs/www/big"
tar -C "$TMP/rootfs" -cf "$TMP/rootfs.tar" .
B import "$TMP/rootfs.tar" bench/bb:latest >/dev/null
[ -n "$have_podman" ] && P import -q "$TMP/rootfs.tar" localhost/bench-bb:latest >/dev/null
[ -n "$have_docker" ] && docker import "$TMP/rootfs.tar" "$DIMG" >/dev/null

now() { date +%s%N; }
# per-container mean in ms of: run -d IMAGE sleep + rm -f, N times.
cycle() { # engine-function image network [run flags...]
    local f=$1 img=$2 net=$3 t0 t1 id
    shift 3
    local rmf="-f"; [ "$f" = P ] && rmf=$RMF_P
    id=$($f run -d --network "$net" $LABEL "$@" "$img" sleep 1000); $f rm $rmf "$id" >/dev/null   # warm up
    t0=$(now)
    for _ in $(seq "$N"); do
        id=$($f run -d --network "$net" $LABEL "$@" "$img" sleep 1000)
        $f rm $rmf "$id" >/dev/null
    done
    t1=$(now)
    echo $(((t1 - t0) / N / 1000000))
}
D() { docker "$@"; }

echo "## Network setup + teardown per container (run -d + rm -f, mean of $N, ms)"
echo
echo "Another container stays on the bridge meanwhile (docker0 and podman's CNI bridge stay up"
echo "anyway; berth's bridge goes with its last container: that case is the last row)."
echo
echo "| engine | none | bridge | bridge -p 127.0.0.1::80 | network's share | with a port |"
echo "|---|---:|---:|---:|---:|---:|"
row() { echo "| $1 | $2 | $3 | $4 | $(($3 - $2)) | $(($4 - $2)) |"; }
LABEL=
B run -d bench/bb sleep 100000 >/dev/null
bn=$(cycle B bench/bb none); bb=$(cycle B bench/bb bridge); bp=$(cycle B bench/bb bridge -p 127.0.0.1::80)
row "berth (ip + nft)" "$bn" "$bb" "$bp"
if [ -n "$have_podman" ]; then
    P run -d localhost/bench-bb sleep 100000 >/dev/null
    pn=$(cycle P localhost/bench-bb none); pb=$(cycle P localhost/bench-bb bridge); pp=$(cycle P localhost/bench-bb bridge -p 127.0.0.1::80)
    row "podman $(podman --version | awk '{print $3}') (CNI)" "$pn" "$pb" "$pp"
else echo "| podman | skipped: $why_podman | | | | |"; fi
if [ -n "$have_docker" ]; then
    LABEL="--label berth-netbench"
    docker run -d $LABEL "$DIMG" sleep 100000 >/dev/null
    dn=$(cycle D "$DIMG" none); db=$(cycle D "$DIMG" bridge); dp=$(cycle D "$DIMG" bridge -p 127.0.0.1::80)
    row "docker $(docker version -f '{{.Server.Version}}') (libnetwork)" "$dn" "$db" "$dp"
    LABEL=
else echo "| docker | skipped: $why_docker | | | | |"; fi
B rm -f $(B ps -aq) >/dev/null
bf=$(cycle B bench/bb bridge)
echo "| berth, first container (bridge, table, FORWARD rules, DNS server made and removed) | $bn | $bf | | $((bf - bn)) | |"

# Throughput.
HTTPD="httpd -f -p 8080 -h /www"
wait_http() { for _ in $(seq 100); do busybox wget -q -O /dev/null "http://127.0.0.1:$1/small" 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never answered" >&2; return 1; }
bench() { # port path -> "req/s MB/s"
    local out rps tr
    out=$(wrk -t2 -c"$CONN" -d"$DUR" "http://127.0.0.1:$1/$2")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    tr=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB/) m=1024; else if (v ~ /KB/) m=1/1024; else m=1; sub(/[KMG]B/, "", v); printf "%.1f", v*m}' <<<"$out")
    echo "$rps $tr"
}
declare -A R
B run -d --name host-httpd --network host bench/bb httpd -f -p 28081 -h /www >/dev/null; wait_http 28081
B run -d --name pub-httpd -p 127.0.0.1:28080:8080 bench/bb $HTTPD >/dev/null; wait_http 28080
R[host]="$(bench 28081 small) $(bench 28081 big)"
R[berth]="$(bench 28080 small) $(bench 28080 big)"
B rm -f host-httpd pub-httpd >/dev/null
if [ -n "$have_podman" ]; then
    P run -d -p 127.0.0.1:28082:8080 localhost/bench-bb $HTTPD >/dev/null; wait_http 28082
    R[podman]="$(bench 28082 small) $(bench 28082 big)"
fi
if [ -n "$have_docker" ]; then
    docker run -d --label berth-netbench -p 127.0.0.1:28083:8080 "$DIMG" $HTTPD >/dev/null; wait_http 28083
    R[docker]="$(bench 28083 small) $(bench 28083 big)"
fi

echo
echo "## Published port throughput (wrk -t2 -c$CONN -d$DUR to 127.0.0.1, busybox httpd)"
echo
echo "| server | 1 KiB req/s | vs host | 1 MiB MB/s | vs host |"
echo "|---|---:|---:|---:|---:|"
read -r hr _ _ hb <<<"${R[host]}"
for k in host berth podman docker; do
    if [ -z "${R[$k]:-}" ]; then
        w=why_$k; echo "| $k | skipped: ${!w} | | | |"; continue
    fi
    read -r r _ _ b <<<"${R[$k]}"
    printf '| %s | %s | %.2f | %s | %.2f |\n' "$k" "$r" "$(echo "$r / $hr" | bc -l)" "$b" "$(echo "$b / $hb" | bc -l)"
done
