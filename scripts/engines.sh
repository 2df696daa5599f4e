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
        if cargo build-runtime; then return 0; fi   # static (.cargo/config.toml)
        log "cargo build of berth-runtime failed (try $try/3; the source may be mid-edit), retrying in 60 s"
        sleep 60
    done
    die "cannot build berth-runtime"
}
build_runtime
export BERTH_RT=$repo/target/release/berth-runtime
log "berth-runtime: $BERTH_RT ($("$BERTH_RT" --version 2>&1 | head -n1))"

if [[ " ${scenarios[*]} " == *" podman "* ]]; then
    # berth itself restores podman's checkpoint archives (debug build: scripts/test.sh has
    # built it already, so this is quick)
    cargo build -q -p berth-cli || die "cannot build berth"
    export BERTH=$repo/target/debug/berth
fi
if [[ " ${scenarios[*]} " == *" cri "* ]]; then
    log "building tools/cri-client (own workspace, own target dir)"
    (cd tools/cri-client && CARGO_TARGET_DIR=target cargo build --release --locked -q) ||
        die "cannot build tools/cri-client"
    export CI_TOOLS=$repo/tools/cri-client/target/release
fi

# ---------------------------------------------------------------- images
# shellcheck source=scripts/engines/images.sh
. scripts/engines/images.sh
CI_IMAGES=$(mktemp -d /var/tmp/berth-ci-images.XXXXXX)
export CI_IMAGES
# KEEP_IMAGES=1 keeps them, to rerun one scenario by hand:
#   ENGINE=x BERTH_RT=... CI_IMAGES=... CI_TOOLS=... bash scripts/engines/NAME.sh
finish() {
    [ "${KEEP_IMAGES:-0}" = 1 ] || rm -rf "$CI_IMAGES"
    rmdir /run/berth-ci /var/lib/berth-ci 2>/dev/null || true   # the scenarios empty them
}
trap finish EXIT

build_ci_images "$CI_IMAGES"
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
