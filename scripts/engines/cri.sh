#!/usr/bin/env bash
# containerd's CRI plugin with a runtime handler `berth` (io.containerd.runc.v2 shim,
# BinaryName = berth-runtime), pods on a CNI bridge of their own, driven by tools/cri-client as
# a kubelet would: RunPodSandbox ... RemovePodSandbox, all with runtime_handler "berth" (the
# client asserts each answer), plus reachability of the pod IP from the host.
# Run by scripts/engines.sh, which sets BERTH_RT, CI_IMAGES and CI_TOOLS.
set -euo pipefail
ENGINE=cri
# shellcheck source=scripts/engines/lib.sh
. "$(dirname "$0")/lib.sh"
: "${CI_TOOLS:?set by scripts/engines.sh}"

BRIDGE=berthci-cri0
SUBNET=10.213.45.0/24   # private, neither docker's 172.17/16 nor podman's 10.88/16
CNI_NET=berth-ci-cri
CG=berth-ci-cri
reclaim_leftovers "$CI_RUN/cri-cni" "$CI_LIB/cri-cni" "$BRIDGE" "$CG"
if ip -4 route show | grep -q '^10\.213\.45\.'; then die "$SUBNET is already routed on this host"; fi

cri_dir=$CI_RUN/cri         # start_containerd's state dir
cni_dir=$CI_RUN/cri-cni     # conflist and host-local IPAM data
cri_toml=$(cat <<TOML
  sandbox_image = "$PAUSE_IMG"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$cni_dir/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "berth"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
        BinaryName = "$BERTH_RT"
        Root = "$cri_dir/berth-root"
TOML
)
at_exit "del_link $BRIDGE"
at_exit "rm -rf '$cni_dir' /var/lib/cni/results/$CNI_NET-*"   # + libcni's result cache (fixed path)
at_exit "rm_cgroups $CG"
rm -rf "$cni_dir"
mkdir -p "$cni_dir/net.d"
cat >"$cni_dir/net.d/10-berth-ci.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$SUBNET"}]],
        "dataDir": "$cni_dir/ipam"
      }
    }
  ]
}
JSON
start_containerd cri "$cri_toml"

for a in busybox pause; do
    out=$(c_ctr -n k8s.io images import "$CI_IMAGES/$a.tar" 2>&1) || die "ctr -n k8s.io images import $a: $out"
done
pass "images imported into k8s.io: $IMG, $PAUSE_IMG (the sandbox image)"

logdir=$cri_dir/pod-logs
mkdir -p "$logdir"
probe="busybox ping -c 1 -W 2 \$POD_IP >/dev/null && curl -sS -m 5 http://\$POD_IP/ | grep -qx berth-ci-httpd"
timeout 120 "$CI_TOOLS/berth-cri-client" --socket "$CTRD_SOCK" --handler berth --image "$IMG" \
    --subnet "$SUBNET" --cgroup-parent "/$CG" --log-dir "$logdir" --probe "$probe" ||
    { tail -n 30 "$CTRD_STATE/containerd.log" >&2; die "CRI client failed"; }
pass "CRI lifecycle with runtime handler berth (ping + HTTP GET of the pod IP from the host)"

# A pod with shareProcessNamespace: the container joins the pause container's pid namespace by
# path, so PID 1 seen from its exec is catatonit (berth-runtime before 477240a recorded the pid
# inside that namespace and moved an unrelated host process into the container's cgroup).
timeout 120 "$CI_TOOLS/berth-cri-client" --socket "$CTRD_SOCK" --handler berth --image "$IMG" \
    --subnet "$SUBNET" --cgroup-parent "/$CG" --log-dir "$logdir" --probe "$probe" --share-pid true ||
    { tail -n 30 "$CTRD_STATE/containerd.log" >&2; die "CRI client failed (pod with a shared pid namespace)"; }
pass "CRI lifecycle of a pod with a shared pid namespace (shareProcessNamespace)"

runtime_list_empty "$cri_dir/berth-root/k8s.io" || die "berth-runtime still lists containers after RemovePodSandbox"
[ -z "$(find "$cni_dir/ipam/$CNI_NET" -name '10.*' 2>/dev/null)" ] ||
    die "IP still allocated after RemovePodSandbox"
pass "no berth-runtime state and no IP allocation left"
log "PASS"
