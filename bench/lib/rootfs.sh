# bench/lib/rootfs.sh: the benchmarks' image, a busybox-static root file system with every
# applet linked, root in /etc/passwd and /etc/group, and /tmp. Sourced by the bench scripts.
#
#   busybox_rootfs_tar DIR   makes DIR/rootfs and the tarball DIR/rootfs.tar of it

busybox_rootfs_tar() {
    local dir=$1
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp"
    cp /bin/busybox "$dir/rootfs/bin/"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/rootfs/etc/passwd"
    echo 'root:x:0:' >"$dir/rootfs/etc/group"
    tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
}
