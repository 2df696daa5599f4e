#!/usr/bin/env bash
# berth-runtime as the OCI runtime of real engines: containerd (ctr), containerd's CRI (driven
# by tools/cri-client as a kubelet would), dockerd (+ docker-compose) and podman. Each scenario
# is scripts/engines/NAME.sh, runs its own daemon instance (own sockets, state and data roots,
# bridges, cgroup parent) under `timeout`, asserts what a user would check, and cleans up after
# itself even on failure. Nothing of an already running system dockerd/containerd is touched.
#
# Usage: scripts/engines.sh [SCENARIO...]   (default: containerd cri docker podman)
# Needs root and a fresh-enough Debian: it installs its apt packages itself.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

log() { printf '[engines] %s\n' "$*" >&2; }
die() { printf '[engines] FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it starts daemons and containers)"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(containerd cri docker podman)
for s in "${scenarios[@]}"; do [ -f "scripts/engines/$s.sh" ] || die "unknown scenario '$s'"; done
t_start=$SECONDS

# ---------------------------------------------------------------- packages
packages=(containerd docker.io podman conmon containernetworking-plugins docker-compose
          catatonit busybox-static protobuf-compiler jq curl iproute2 iptables util-linux bsdutils procps)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 -q update >&2
    apt-get -o DPkg::Lock::Timeout=600 -y -q install "${missing[@]}" >&2
fi
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then die "/bin/busybox must be busybox-static"; fi

# ---------------------------------------------------------------- binaries
build_runtime() {
    local try
    for try in 1 2 3; do
        if cargo build --release -q -p berth-runtime; then return 0; fi
        log "cargo build of berth-runtime failed (try $try/3; the source may be mid-edit), retrying in 60 s"
        sleep 60
    done
    die "cannot build berth-runtime"
}
build_runtime
export BERTH_RT=$repo/target/release/berth-runtime
log "berth-runtime: $BERTH_RT ($("$BERTH_RT" --version 2>&1 | head -n1))"

if [[ " ${scenarios[*]} " == *" cri "* ]]; then
    log "building tools/cri-client (own workspace, own target dir)"
    (cd tools/cri-client && CARGO_TARGET_DIR=target cargo build --release --locked -q) ||
        die "cannot build tools/cri-client"
    export CI_TOOLS=$repo/tools/cri-client/target/release
fi

# ---------------------------------------------------------------- images
# Two docker archives (the format both `docker load` and `ctr images import` read), built
# from local files only: berth.local/busybox:ci (busybox-static, /www/index.html) and
# berth.local/pause:ci (catatonit -P, a static pause process).
CI_IMAGES=$(mktemp -d /var/tmp/berth-ci-images.XXXXXX)
export CI_IMAGES
# KEEP_IMAGES=1 keeps them, to rerun one scenario by hand:
#   ENGINE=x BERTH_RT=... CI_IMAGES=... CI_TOOLS=... bash scripts/engines/NAME.sh
[ "${KEEP_IMAGES:-0}" = 1 ] || trap 'rm -rf "$CI_IMAGES"' EXIT

# docker_archive OUT TAG ROOTFS CONFIG_JSON_FRAGMENT
docker_archive() {
    local out=$1 tag=$2 rootfs=$3 cfg=$4 d diff cdig
    d=$(mktemp -d)
    mkdir "$d/layer"
    tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$rootfs" -cf "$d/layer/layer.tar" .
    diff=$(sha256sum "$d/layer/layer.tar" | cut -d' ' -f1)
    jq -n --argjson c "$cfg" --arg diff "sha256:$diff" \
        '{architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z", config: $c,
          rootfs: {type: "layers", diff_ids: [$diff]}}' >"$d/config.json"
    cdig=$(sha256sum "$d/config.json" | cut -d' ' -f1)
    mv "$d/config.json" "$d/$cdig.json"
    mv "$d/layer" "$d/$diff"
    jq -n --arg c "$cdig.json" --arg t "$tag" --arg l "$diff/layer.tar" \
        '[{Config: $c, RepoTags: [$t], Layers: [$l]}]' >"$d/manifest.json"
    tar -C "$d" -cf "$out" manifest.json "$cdig.json" "$diff"
    rm -rf "$d"
}
rootfs=$(mktemp -d)
mkdir -p "$rootfs"/{bin,etc,tmp,www,root,proc,sys,dev}
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
echo berth-ci-httpd >"$rootfs/www/index.html"
docker_archive "$CI_IMAGES/busybox.tar" berth.local/busybox:ci "$rootfs" \
    '{"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]}'
rm -rf "$rootfs"
rootfs=$(mktemp -d)
cp /usr/bin/catatonit "$rootfs/catatonit"
docker_archive "$CI_IMAGES/pause.tar" berth.local/pause:ci "$rootfs" '{"Entrypoint": ["/catatonit", "-P"]}'
rm -rf "$rootfs"
log "images built in $CI_IMAGES ($((SECONDS - t_start)) s so far)"

# ---------------------------------------------------------------- scenarios
declare -A limit=([containerd]=180 [cri]=240 [docker]=420 [podman]=240)
failed=() results=()
for s in "${scenarios[@]}"; do
    t0=$SECONDS
    log "=== $s (timeout ${limit[$s]} s)"
    rc=0
    timeout -k 60 "${limit[$s]}" bash "scripts/engines/$s.sh" || rc=$?
    if [ "$rc" = 0 ]; then
        results+=("PASS  $s ($((SECONDS - t0)) s)")
    else
        [ "$rc" = 124 ] && rc="$rc: timed out"
        results+=("FAIL  $s (exit $rc, $((SECONDS - t0)) s)")
        failed+=("$s")
    fi
done
log "=== summary ($((SECONDS - t_start)) s in all)"
printf '[engines]   %s\n' "${results[@]}" >&2
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]}"
