#!/usr/bin/env bash
# Build berth, make a local image from busybox-static (there is no internet to pull from), and
# run a container from it with `berth run`.
# Usage: scripts/demo.sh [COMMAND...]   (default: a few lines about the container)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (containers need it)" >&2; exit 1; }
# busybox-static for the image; libseccomp-dev (libseccomp.a) to link berth-runtime; nftables
# and iproute2 for the default bridge network the container joins.
need=()
for p in busybox-static libseccomp-dev pkg-config nftables iproute2; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -q update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -y -q install "${need[@]}" >/dev/null
fi
cargo build --release -q -p berth-cli
cargo build-runtime   # the static berth-runtime (.cargo/config.toml)
berth=$PWD/target/release/berth
# The image: a root filesystem tarball with busybox and its applets, imported as busybox:local.
if ! "$berth" image inspect busybox:local >/dev/null 2>&1; then
    rootfs=$(mktemp -d /tmp/berth-demo.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
    cp /bin/busybox "$rootfs/bin/"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
    echo "root:x:0:0:root:/root:/bin/sh" >"$rootfs/etc/passwd"
    echo "root:x:0:" >"$rootfs/etc/group"
    tar -C "$rootfs" -c . | "$berth" import - busybox:local >/dev/null
fi
if [ $# -eq 0 ]; then
    set -- sh -c 'echo "hello from $(hostname), pid $$, $(id)"; echo "mounts: $(wc -l </proc/mounts)"; ls /'
fi
tty=()
[ -t 0 ] && [ -t 1 ] && tty=(-it)
exec "$berth" run --rm "${tty[@]}" busybox:local "$@"
