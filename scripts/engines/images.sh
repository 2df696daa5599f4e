# shellcheck shell=bash
# build_ci_images DIR: two docker archives (the format both `docker load`/`podman load` and
# `ctr images import` read), built from local files only:
#   DIR/busybox.tar  berth.local/busybox:ci  busybox-static, /www/index.html = berth-ci-httpd
#   DIR/pause.tar    berth.local/pause:ci    catatonit -P (a static pause process)
# Sourced by scripts/engines.sh and bench/engines.sh; needs jq, /bin/busybox (static) and
# /usr/bin/catatonit (static).

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

build_ci_images() {
    local dir=$1 rootfs a
    rootfs=$(mktemp -d)
    mkdir -p "$rootfs"/{bin,etc,tmp,www,root,proc,sys,dev}
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    echo berth-ci-httpd >"$rootfs/www/index.html"
    docker_archive "$dir/busybox.tar" berth.local/busybox:ci "$rootfs" \
        '{"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]}'
    rm -rf "$rootfs"
    rootfs=$(mktemp -d)
    cp /usr/bin/catatonit "$rootfs/catatonit"
    docker_archive "$dir/pause.tar" berth.local/pause:ci "$rootfs" '{"Entrypoint": ["/catatonit", "-P"]}'
    rm -rf "$rootfs"
}
