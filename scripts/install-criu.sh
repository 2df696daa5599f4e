#!/usr/bin/env bash
# Make CRIU 4.2 available as `criu` on a Debian bookworm machine.
#
# Bookworm's own CRIU (3.17) fails on kernels with the `[vvar_vclock]` mapping ("vdso: Unexpected
# rt vDSO area bounds"); 4.1 handles it, but 4.1 cannot checkpoint a TCP socket on Linux >= 6.16
# ("sockets: Can't get 1:34 opt": SO_PASSSEC is now only for unix and netlink sockets), which
# 4.2 knows. Debian's binary packages need a newer glibc, so this builds the upstream tarball of
# Debian's source package (4.2.1 in sid/forky; checked against the SHA-256 sum in their Sources
# index; the mirror serves it, not the Debian patch tarball, which changes only packaging and
# docs) against bookworm's libraries, and installs the binary as /usr/local/sbin/criu.
# Nothing is done when a criu >= 4.2 is already on PATH.
set -euo pipefail

want_major=4 want_minor=2
version="4.2.1"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
orig_sha="29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9"

have_version() {
    local v
    v=$(criu --version 2>/dev/null | sed -n 's/^Version: *//p') || return 1
    [ -n "$v" ] || return 1
    local major=${v%%.*} rest=${v#*.}
    local minor=${rest%%.*}
    [ "$major" -gt "$want_major" ] || { [ "$major" -eq "$want_major" ] && [ "$minor" -ge "$want_minor" ]; }
}

if have_version; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "scripts/install-criu.sh: run as root (it installs build dependencies and /usr/local/sbin/criu)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
deps=(build-essential pkg-config libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev
    libnl-3-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler protobuf-compiler uuid-dev
    python3-protobuf curl xz-utils)
need=()
for p in "${deps[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 -q update
    apt-get -o DPkg::Lock::Timeout=600 -y -q install --no-install-recommends "${need[@]}"
fi

work=$(mktemp -d /var/tmp/criu-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fetch() { # FILE SHA256
    curl -fsSL --retry 3 -o "$1" "$mirror/pool/main/c/criu/$1"
    echo "$2  $1" | sha256sum -c --quiet - || {
        echo "scripts/install-criu.sh: $1 does not match Debian's checksum" >&2
        exit 1
    }
}
fetch "criu_${version}.orig.tar.xz" "$orig_sha"
tar -xf "criu_${version}.orig.tar.xz"
cd "criu-${version}"
# Only the criu binary: no docs (asciidoc), no python bindings, no amdgpu/cuda plugins.
make -s -j"$(nproc)" criu >build.log 2>&1 || {
    tail -40 build.log >&2
    echo "scripts/install-criu.sh: building CRIU ${version} failed (log above)" >&2
    exit 1
}
install -D -m 0755 criu/criu /usr/local/sbin/criu
hash -r
have_version || {
    echo "scripts/install-criu.sh: /usr/local/sbin/criu is installed but \`criu --version\` does not say ${version}" >&2
    exit 1
}
echo "scripts/install-criu.sh: installed CRIU $(criu --version | sed -n 's/^Version: *//p') as /usr/local/sbin/criu"
