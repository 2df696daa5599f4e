#!/usr/bin/env bash
# Pull a Debian image from a loopback registry with berth, podman and skopeo + umoci, side by
# side in one run (hyperfine, a warmup and RUNS runs each, the stores emptied before each run),
# and write the table to stdout and docs/pull-benchmark.md. What each command includes:
#
#   berth:        `berth --root T pull REG/debian:bookworm`: manifest, config and layer
#                 downloaded and verified (sha256, size), fsynced, then the layer unpacked into
#                 snapshots/layers/ (blob digest and diff ID checked, syncfs), ready for `run`.
#   podman:       `podman --root T --runroot T pull --tls-verify=false ...`: download, verify,
#                 unpack into containers/storage (overlay driver); no fsync.
#   skopeo+umoci: `skopeo copy docker://... oci:DIR` then `umoci unpack` into a bundle.
#
# Two ways of emptying the stores, each its own table: deleting them (rm -rf the berth root,
# `podman rmi -af`, rm -rf the OCI layout and bundle), and renaming them aside (nothing is
# deleted while measuring; see run_bench for why that matters on ext4 without a journal).
#
# The registry: 127.0.0.1:5000 when it serves debian:bookworm (../shared/tools/peers-setup.sh),
# else a docker-registry of our own on a free loopback port, into which berth pushes a Debian
# image built with debootstrap (bookworm, minbase; the rootfs tarball is cached in
# /var/tmp/berth-bench, gzipped, and reused) and imported with `berth import`.
# Knobs: RUNS (default 5), REGISTRY=host:port to force one, OWN_REGISTRY=1 to start one even
# when 127.0.0.1:5000 is up, BERTH=path to a berth binary
# (default: cargo build --release). Run as root on an idle machine; about 5 minutes (plus about
# 2 for the first debootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/pull.sh: must run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
need=()
for p in podman skopeo umoci hyperfine jq curl docker-registry debootstrap; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 -q update >&2
    apt-get -o DPkg::Lock::Timeout=600 -y -q install "${need[@]}" >&2
fi
if [ -z "${BERTH:-}" ]; then
    cargo build --release -q -p berth-cli >&2
    BERTH=$PWD/target/release/berth
fi
RUNS=${RUNS:-5}
CACHE=/var/tmp/berth-bench

T=$(mktemp -d /var/tmp/berth-pull-bench.XXXXXX)
reg_pid=
cleanup() {
    if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
    podman --root "$T/podman/root" --runroot "$T/podman/run" rmi -af >/dev/null 2>&1 || true
    # podman may leave its overlay home mounted.
    { grep -o " $T/[^ ]*" /proc/self/mounts || true; } | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf "$T"
}
trap cleanup EXIT

serves_debian() {
    curl -sf "http://$1/v2/debian/tags/list" 2>/dev/null | grep -q '"bookworm"'
}

if [ -n "${REGISTRY:-}" ]; then
    REG=$REGISTRY
elif [ -z "${OWN_REGISTRY:-}" ] && serves_debian 127.0.0.1:5000; then
    REG=127.0.0.1:5000
else
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    REG=127.0.0.1:$port
    mkdir -p "$T/registry"
    cat >"$T/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $T/registry/data
http:
  addr: $REG
EOF
    docker-registry serve "$T/registry/config.yml" >"$T/registry/log" 2>&1 &
    reg_pid=$!
    for _ in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done
    curl -sf "http://$REG/v2/" >/dev/null || { cat "$T/registry/log" >&2; exit 1; }
    # gzip-compressed, as registries usually serve layers (berth import keeps it so).
    rootfs=$CACHE/debian-bookworm-minbase.tar.gz
    if [ ! -s "$rootfs" ]; then
        echo "bench/pull.sh: debootstrap bookworm minbase into $CACHE (about 2 minutes)" >&2
        mkdir -p "$CACHE"
        rm -rf "$CACHE/rootfs"
        debootstrap --variant=minbase bookworm "$CACHE/rootfs" >"$CACHE/debootstrap.log" 2>&1 ||
            { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
        tar --numeric-owner -C "$CACHE/rootfs" -czf "$rootfs.tmp" .
        mv "$rootfs.tmp" "$rootfs"
        rm -rf "$CACHE/rootfs"
    fi
    "$BERTH" --root "$T/seed" import "$rootfs" "$REG/debian:bookworm" >/dev/null
    "$BERTH" --root "$T/seed" push "$REG/debian:bookworm" >/dev/null
fi
IMG=$REG/debian:bookworm
serves_debian "$REG" || { echo "bench/pull.sh: $REG does not serve debian:bookworm" >&2; exit 1; }

# The image, for the report.
manifest=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REG/v2/debian/manifests/bookworm")
layers=$(jq '.layers | length' <<<"$manifest")
compressed=$(jq '[.layers[].size] | add' <<<"$manifest")

# podman's storage: one root per measured state (see "aside" below), overlay driver.
P="podman --root $T/podman/root --runroot $T/podman/run --storage-driver overlay"
mkdir -p "$T/podman" "$T/trash"
# One pull of each up front so the registry's caches are warm for all.
$P pull -q --tls-verify=false "$IMG" >/dev/null
"$BERTH" --root "$T/warm" pull -q "$IMG" >/dev/null
rm -rf "$T/warm"

SKOPEO_UMOCI="skopeo copy -q --src-tls-verify=false docker://$IMG oci:$T/oci:bookworm && umoci unpack --image $T/oci:bookworm $T/bundle"

# Two ways to empty the stores between runs:
#   delete: rm -rf the berth root, `podman rmi -af`, rm -rf the OCI layout and bundle;
#   aside:  rename them into $T/trash (deleted after the run), so no inode is freed while
#           measuring. On an ext4 without a journal (as on this VM) inode allocation skips every
#           inode freed in the last 30 s of its block group, one by one (ext4's
#           recently_deleted()), so after deleting an image's thousands of files, creating them
#           again costs O(deleted x created) in the kernel, for every tool alike; this run shows
#           the tools without that artefact (podman then starts from an empty root each time).
run_bench() { # MODE
    local mode=$1 prep_berth prep_podman prep_skopeo
    if [ "$mode" = delete ]; then
        prep_berth="rm -rf $T/berth"
        prep_podman="$P rmi -af"
        prep_skopeo="rm -rf $T/oci $T/bundle"
    else
        local aside="d=\$(mktemp -d $T/trash/XXXXXX) &&"
        prep_berth="$aside mv $T/berth \$d/ 2>/dev/null; true"
        prep_podman="$aside mv $T/podman \$d/ 2>/dev/null; mkdir -p $T/podman"
        prep_skopeo="$aside mv $T/oci $T/bundle \$d/ 2>/dev/null; true"
    fi
    echo "bench/pull.sh: $mode" >&2
    hyperfine --runs "$RUNS" --warmup 1 --export-json "$T/$mode.json" --style basic \
        --shell bash \
        -n berth --prepare "$prep_berth" "$BERTH --root $T/berth pull -q $IMG" \
        -n podman --prepare "$prep_podman" "$P pull -q --tls-verify=false $IMG" \
        -n skopeo+umoci --prepare "$prep_skopeo" "$SKOPEO_UMOCI" \
        >&2
    # Each one produced its rootfs.
    "$BERTH" --root "$T/berth" images | grep -q debian || { echo "berth: no image" >&2; exit 1; }
    $P images | grep -q debian || { echo "podman: no image" >&2; exit 1; }
    [ -x "$T/bundle/rootfs/bin/bash" ] || { echo "umoci: no rootfs" >&2; exit 1; }
    rm -rf "$T/trash"/*
}

table() { # JSON
    jq -r '
      def ms: . * 1000 | round;
      def x: (. * 100 | round) / 100;
      (.results[] | select(.command == "berth") | .mean) as $b
      | "| tool | mean ± σ (ms) | min (ms) | max (ms) | user + sys CPU (ms) | time / berth |",
        "|---|---|---|---|---|---|",
        (.results[] |
          "| \(.command) | \(.mean | ms) ± \(.stddev // 0 | ms) | \(.min | ms) | \(.max | ms) | \(.user | ms) + \(.system | ms) | \(.mean / $b | x)x |")
    ' "$1"
}

ratio() { # JSON -> podman mean / berth mean
    jq -r '((.results[] | select(.command == "podman") | .mean) /
            (.results[] | select(.command == "berth") | .mean) * 100 | round) / 100' "$1"
}

run_bench delete
unpacked=$(du -sb --apparent-size "$T/berth/snapshots/layers" | cut -f1)
run_bench aside

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
fs=$(findmnt -n -o FSTYPE -T "$T")
journal=$([ "$fs" = ext4 ] && [ "$(cat /sys/fs/ext4/"$(basename "$(findmnt -n -o SOURCE -T "$T")")"/journal_task 2>/dev/null)" = "<none>" ] && echo ", no journal" || true)
{
    echo "# Pull benchmark"
    echo
    echo "\`bench/pull.sh\`, $(date -u +%Y-%m-%d), $(nproc) CPUs ($cpu), Linux $(uname -r),"
    echo "$fs$journal. Image: \`$IMG\` ($layers layer(s), $((compressed / 1000000)) MB compressed,"
    echo "$((unpacked / 1000000)) MB unpacked) from a registry on loopback; $RUNS runs of each after a"
    echo "warmup, the stores emptied before each run. Versions: $("$BERTH" --version 2>/dev/null || echo berth),"
    echo "$(podman --version), $(skopeo --version), $(umoci --version)."
    echo
    echo "What each includes:"
    echo
    echo "- **berth**: \`berth pull\`: manifest, config and layer downloaded, each verified (sha256 and"
    echo "  size) and fsynced, then the layer unpacked into \`snapshots/layers/\` (blob digest and diff ID"
    echo "  checked again, syncfs before the rename), as \`run\` would use it."
    echo "- **podman**: \`podman pull\`: download, verify, unpack into containers/storage (overlay"
    echo "  driver); no fsync."
    echo "- **skopeo+umoci**: \`skopeo copy docker://... oci:DIR\` then \`umoci unpack\` into a bundle."
    echo
    echo "## Stores emptied by deleting (rm -rf, \`podman rmi -af\`)"
    echo
    table "$T/delete.json"
    echo
    echo "podman / berth: **$(ratio "$T/delete.json")x** (goal: at least 3x)"
    echo
    echo "## Stores emptied by renaming them aside (nothing deleted while measuring)"
    echo
    echo "On an ext4 file system without a journal, creating a file skips, one by one, every inode"
    echo "of the block group freed in the last 30 s (ext4's \`recently_deleted()\`), so re-creating an"
    echo "image's thousands of files right after deleting them is quadratic in the kernel, for"
    echo "tools that create their files where the deleted ones were. berth mostly escapes it: its"
    echo "store's \`tmp/\`, where layers are unpacked, carries ext4's Orlov top-directory flag"
    echo "(\`chattr +T\`), so each layer lands in a block group of its own; podman and umoci pay it"
    echo "(most of their system time above). Here the previous run's output is renamed away"
    echo "instead, so no tool pays it (podman starts from an empty root each time):"
    echo
    table "$T/aside.json"
    echo
    echo "podman / berth: **$(ratio "$T/aside.json")x** (goal: at least 3x)"
} | tee docs/pull-benchmark.md
