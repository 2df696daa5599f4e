#!/usr/bin/env bash
# Start-to-exit latency of a /bin/true container through real engines, for each OCI runtime
# (berth-runtime, crun, runc): containerd (`ctr run --rm --runc-binary R`), dockerd
# (`docker run --rm --runtime R`) and podman (`podman --runtime R run --rm`), all with
# --network none (the runtime still makes a network namespace), each engine an instance of its
# own started here (scripts/engines/lib.sh). Markdown on stdout, progress on stderr.
# Called by bench/runtime.sh, inside its window where crun can run on this hybrid host.
# Knobs: ENGINE_RUNS [20] ENGINE_WARMUP [3] hyperfine runs per engine and runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${ENGINE_RUNS:-20}
WARMUP=${ENGINE_WARMUP:-3}
BERTH_RT=$PWD/target/release/berth-runtime
CRUN=$(command -v crun)
RUNC=$(command -v runc)
[ -x "$BERTH_RT" ] || { echo "bench/engines.sh: build berth-runtime first" >&2; exit 1; }
CI_IMAGES=$(mktemp -d /var/tmp/berth-bench-images.XXXXXX)
export BERTH_RT CI_IMAGES
ENGINE=bench-engines
# shellcheck source=scripts/engines/images.sh
. scripts/engines/images.sh
# shellcheck source=scripts/engines/lib.sh
. scripts/engines/lib.sh
at_exit "rm -rf '$CI_IMAGES'"
at_exit "rmdir $CI_RUN $CI_LIB"
build_ci_images "$CI_IMAGES"
CG=berth-ci-bench
at_exit "rm_cgroups $CG"

declare -A RT=([berth-runtime]=$BERTH_RT [crun]=$CRUN [runc]=$RUNC)
ORDER=(crun berth-runtime runc)
RES=$(mktemp -d)
at_exit "rm -rf '$RES'"
hf() { # hf NAME CMD
    log "$1"
    timeout -k 5 $((RUNS * 10 + 60)) hyperfine --runs "$RUNS" --warmup "$WARMUP" --style basic \
        --export-json "$RES/$1.json" "$2" >&2
}

# ---- containerd
start_containerd bench-containerd
c_ctr -n bench images import "$CI_IMAGES/busybox.tar" >/dev/null
for r in "${ORDER[@]}"; do
    hf "containerd_$r" "ctr --address $CTRD_SOCK -n bench run --rm --runc-binary ${RT[$r]} \
--runc-root $CTRD_STATE/$r-root --cgroup /$CG/c\$\$ $IMG c\$\$ /bin/true"
done
CTRD_VER=$(containerd --version | awk '{print $3}')

# ---- dockerd ("runc" is dockerd's built-in runtime: Debian's runc)
start_dockerd bench-docker berthci-bd0 10.213.47.1/24 10.213.64.0/20 "$CG-docker" \
    "berth-runtime=$BERTH_RT" "crun=$CRUN"
docker load -i "$CI_IMAGES/busybox.tar" >/dev/null
for r in "${ORDER[@]}"; do
    hf "docker_$r" "docker run --rm --network none --runtime $r $IMG /bin/true"
done
DOCKER_VER=$(docker version --format '{{.Server.Version}}')

# ---- podman
setup_podman bench-podman
"${PODMAN[@]}" load -i "$CI_IMAGES/busybox.tar" >/dev/null 2>&1
for r in "${ORDER[@]}"; do
    hf "podman_$r" "${PODMAN[*]} --runtime ${RT[$r]} run --rm --network none --cgroup-parent /$CG/podman $IMG /bin/true"
done
PODMAN_VER=$(podman --version | awk '{print $3}')

# ---- report
ms() { jq -r ".results[0].$2 * 1000 | . * 100 | round / 100" "$RES/$1.json"; }
echo "### Through engines: start-to-exit of a /bin/true container, ms (hyperfine, $RUNS runs, $WARMUP warm-up; ratio = median / crun's median)"
echo
echo "| engine | runtime | median | min | max | mean ± sd | ratio to crun |"
echo "|---|---|---:|---:|---:|---:|---:|"
for e in containerd docker podman; do
    base=$(ms "${e}_crun" median)
    for r in "${ORDER[@]}"; do
        med=$(ms "${e}_$r" median)
        case $e in
            containerd) name="containerd $CTRD_VER (ctr run --rm)" ;;
            docker) name="dockerd $DOCKER_VER (docker run --rm)" ;;
            podman) name="podman $PODMAN_VER (podman run --rm)" ;;
        esac
        printf '| %s | %s | %s | %s | %s | %s ± %s | %s |\n' "$name" "$r" "$med" \
            "$(ms "${e}_$r" min)" "$(ms "${e}_$r" max)" "$(ms "${e}_$r" mean)" "$(ms "${e}_$r" stddev)" \
            "$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')"
    done
done
echo
echo "Commands (hyperfine runs each under \`sh -c\`; \`\$\$\` makes the container ID unique):"
echo
echo '```sh'
for e in containerd docker podman; do
    jq -r '.results[0].command' "$RES/${e}_berth-runtime.json" | sed "s|$PWD/||g; s|$CI_RUN|\$CI_RUN|g; s|$CI_LIB|\$CI_LIB|g"
done
echo '```'
echo
echo "(crun and runc runs use the same commands with their own binary, \`--runtime crun\` / \`--runtime runc\`.)"
