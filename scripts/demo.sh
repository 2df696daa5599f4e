#!/usr/bin/env bash
# Build berth-runtime, make an OCI bundle from busybox-static, and run a container in it.
# Usage: scripts/demo.sh [COMMAND...]   (default: a few lines about the container)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (containers need it)" >&2; exit 1; }
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get -q update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -y -q install busybox-static >/dev/null
fi
cargo build --release -q -p berth-runtime
rt=$PWD/target/release/berth-runtime
bundle=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/etc"
cp /bin/busybox "$bundle/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" >"$bundle/rootfs/etc/passwd"
"$rt" spec --bundle "$bundle"
if [ $# -eq 0 ]; then
    set -- sh -c 'echo "hello from $(hostname), pid $$, $(id)"; echo "mounts: $(wc -l </proc/mounts)"; ls /'
fi
args=$(printf '%s\n' "$@" | jq -R . | jq -s .)
tty=false; [ -t 0 ] && [ -t 1 ] && tty=true
jq --argjson a "$args" --argjson t "$tty" '.process.args=$a | .process.terminal=$t' \
    "$bundle/config.json" >"$bundle/c.json" && mv "$bundle/c.json" "$bundle/config.json"
"$rt" run --bundle "$bundle" "demo-$$"
