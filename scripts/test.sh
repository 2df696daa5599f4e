#!/usr/bin/env bash
# Run berth's checks and tests: formatting, clippy, unit and integration tests (as root: they run
# real containers), then the cgroup tests again inside a pure cgroup v2 VM when
# ../shared/tools/cgroupv2-vm.sh is there (skip it with BERTH_SKIP_V2_VM=1).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: the tests run real containers and must run as root" >&2
    exit 1
fi
# What the tests use, installed on a fresh Debian machine: a static busybox for the test images,
# libseccomp (linked statically), a registry, skopeo/podman/docker/runc as peers, nftables and
# iptables for the network tests, wrk, jq, buildah (the builder's tests compare with its images), debootstrap (a Debian
# image for them), docker-compose 1.29 and python3-docker (clients of `berth serve`).
export DEBIAN_FRONTEND=noninteractive
need=()
for p in busybox-static jq libseccomp-dev pkg-config docker-registry apache2-utils skopeo \
    nftables iproute2 iptables wrk podman runc docker.io buildah debootstrap docker-compose \
    python3-docker; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 -q update
    apt-get -o DPkg::Lock::Timeout=600 -y -q install "${need[@]}"
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# CRIU >= 4.2 for checkpoint/restore (bookworm's 3.17 fails on this kernel): built from Debian's
# source tarball, once.
scripts/install-criu.sh

[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || {
    echo "scripts/test.sh: /bin/busybox must be the static busybox (apt-get install busybox-static)" >&2
    exit 1
}

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

vm=../shared/tools/cgroupv2-vm.sh
if [ "${BERTH_SKIP_V2_VM:-0}" != 1 ] && [ -x "$vm" ]; then
    # The guest sees the host's / read-only, so the test binaries (and the berth-runtime binary
    # the runtime tests call by its absolute path) run in place; the shared directory is only
    # the working directory. Guest code runs ~20x slower (tcg): one test at a time, and the
    # whole VM is bounded (about 2 minutes are needed).
    echo "== cgroup tests on a pure cgroup v2 kernel (QEMU)"
    share=$(mktemp -d /var/tmp/berth-v2.XXXXXX)
    trap 'rm -rf "$share"' EXIT
    test_bins() {
        cargo test "$@" --no-run --message-format=json 2>/dev/null |
            python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])'
    }
    # one line, for the guest's command
    bins=$(echo $(test_bins -p berth-cgroups) $(test_bins -p berth-runtime --test cgroups))
    [ -n "$bins" ] || { echo "scripts/test.sh: no test binaries to run in the VM" >&2; exit 1; }
    cmd='set -e; for t in '"$bins"'; do echo "== ${t##*/}"; "$t" --test-threads=1; done'
    VM_TIMEOUT=${VM_TIMEOUT:-900} "$vm" "$share" "$cmd"
fi
