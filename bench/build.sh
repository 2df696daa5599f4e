#!/usr/bin/env bash
# bench/build.sh: `berth build` side by side with `buildah bud --layers` and with BuildKit
# (dockerd 20.10's, DOCKER_BUILDKIT=1), hyperfine, each Dockerfile in one run. Every engine
# gets the same base image under the same name (a busybox-static rootfs imported into berth,
# `berth save`d, then `buildah pull docker-archive:` and `docker load`). Each Dockerfile is
# built cold (--no-cache, the base image present) and fully cached (built again, nothing
# changed). RUN steps use --network none in all three (they need no network; the private
# dockerd has no bridge). Writes docs/build-benchmark.md and prints it. Run as root.
#
# The Dockerfiles (written into the temp dir):
#   multi: `FROM benchbase AS builder`, two RUN steps making files, `FROM benchbase`, two
#          `COPY --from=builder`, CMD.
#   steps: ten `COPY fileN /dst/` from the context (4 KB each) interleaved with ten small RUN.
#   runs:  twenty small RUN steps and nothing else (not in the default set).
# buildah 1.28 runs with its own --root/--runroot in the temp dir, the overlay driver, runc
# (crun refuses this host's hybrid cgroups) and its default --isolation oci. docker is
# Debian's docker.io CLI (/usr/bin/docker, 20.10: another `docker` first on PATH may be a
# newer CLI) against a dockerd of this script's own (socket, data root, exec root, pidfile
# under the temp dir, its own cgroup parent, no bridge, no iptables), never the system daemon.
# buildah or docker is skipped, with the reason, when missing. A command that fails when run
# once before timing is left out of the timing, with its error in the doc.
# Knobs: RUNS (5), FILES ("multi steps"; any of multi, steps, runs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/dockerd.sh
. bench/lib/dockerd.sh
# shellcheck source=bench/lib/rootfs.sh
. bench/lib/rootfs.sh
RUNS=${RUNS:-5}
FILES=${FILES:-multi steps}
[ "$(id -u)" = 0 ] || { echo "bench/build.sh: run as root" >&2; exit 1; }
for t in hyperfine jq busybox; do
    command -v "$t" >/dev/null || { echo "bench/build.sh: $t is missing (apt-get install hyperfine jq busybox-static)" >&2; exit 1; }
done
for f in $FILES; do
    case $f in multi | steps | runs) ;; *) echo "bench/build.sh: unknown Dockerfile $f in FILES (use multi, steps, runs)" >&2; exit 1 ;; esac
done
cargo build -q --release -p berth-cli
cargo build-runtime   # the static berth-runtime, as shipped (.cargo/config.toml)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d /tmp/berth-buildbench.XXXXXX)
BERTH="$PWD/target/release/berth --root $TMP/berth --runtime $PWD/target/release/berth-runtime"
BUILDAH="buildah --root $TMP/buildah/root --runroot $TMP/buildah/run --storage-driver overlay"
RUNC=$(command -v runc || true)
have_buildah=; have_docker=
why_buildah="buildah not installed (apt-get install buildah)"; why_docker="docker.io not installed (apt-get install docker.io)"
if command -v buildah >/dev/null; then
    if [ -z "$RUNC" ]; then why_buildah="runc not installed"
    elif $BUILDAH info >/dev/null 2>&1; then have_buildah=1
    else why_buildah="buildah info failed: $($BUILDAH info 2>&1 | tail -1)"; fi
fi
# The 20.10 CLI from docker.io, whose DOCKER_BUILDKIT=1 build talks to dockerd's BuildKit.
DOCKER_BIN=$(dpkg -L docker.io 2>/dev/null | grep -x '/usr/s\?bin/docker' | head -1 || true)
if [ -n "$DOCKER_BIN" ]; then
    dockerd_start "$TMP/dockerd" "berth-buildbench-$$" "$DOCKER_BIN"
fi
cleanup() {
    set +e
    # shellcheck disable=SC2046
    $BERTH rm -f $($BERTH ps -aq) >/dev/null 2>&1
    if [ -n "$have_buildah" ]; then $BUILDAH rm -a >/dev/null 2>&1; $BUILDAH rmi -af >/dev/null 2>&1; fi
    dockerd_stop "$TMP/dockerd" "berth-buildbench-$$"
    grep -o "${TMP}[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# The base image: a busybox-static rootfs, the same image (same ID) in each engine.
busybox_rootfs_tar "$TMP"
$BERTH import "$TMP/rootfs.tar" benchbase:latest >/dev/null
$BERTH save -o "$TMP/base.tar" benchbase:latest
base_id=$($BERTH image inspect -f '{{.Id}}' benchbase:latest)
if [ -n "$have_buildah" ]; then
    if ! out=$($BUILDAH pull -q "docker-archive:$TMP/base.tar" 2>&1); then
        have_buildah=; why_buildah="buildah pull docker-archive: of the base image failed: $(echo "$out" | tail -1)"
    elif [ "sha256:$($BUILDAH images -q --no-trunc benchbase:latest | sed 's/^sha256://')" != "$base_id" ]; then
        have_buildah=; why_buildah="the base image got another ID in buildah"
    fi
fi
if [ -n "$have_docker" ]; then
    if ! out=$($DOCKER load -q -i "$TMP/base.tar" 2>&1); then
        have_docker=; why_docker="docker load of the base image failed: $(echo "$out" | tail -1)"
    elif [ "$($DOCKER image inspect -f '{{.Id}}' benchbase:latest)" != "$base_id" ]; then
        have_docker=; why_docker="the base image got another ID in docker"
    fi
fi

# The Dockerfiles and their contexts.
mkdir -p "$TMP/multi" "$TMP/steps" "$TMP/runs"
cat >"$TMP/multi/Dockerfile" <<'EOF'
FROM benchbase AS builder
RUN mkdir -p /out && echo hello >/out/a.txt && seq 1 1000 >/out/numbers
RUN cd /out && md5sum a.txt numbers >sums && tar -cf /out.tar -C /out .
FROM benchbase
COPY --from=builder /out.tar /app/out.tar
COPY --from=builder /out/sums /app/
CMD ["cat", "/app/sums"]
EOF
{
    echo 'FROM benchbase'
    for i in $(seq 10); do
        head -c 3072 /dev/urandom | base64 >"$TMP/steps/file$i"
        echo "COPY file$i /dst/"
        echo "RUN echo step$i >>/dst/log && test -s /dst/file$i"
    done
    echo 'CMD ["sh", "-c", "cat /dst/log && md5sum /dst/file*"]'
} >"$TMP/steps/Dockerfile"
{
    echo 'FROM benchbase'
    for i in $(seq 20); do echo "RUN echo step$i >>/log"; done
    echo 'CMD ["cat", "/log"]'
} >"$TMP/runs/Dockerfile"

# Only docker reads it; hyperfine passes its environment on (so -N works for all commands).
export DOCKER_BUILDKIT=1
declare -A failed=() checks=()
for f in $FILES; do
    ctx=$TMP/$f
    names=(); cmds=()
    add() { names+=("$1"); cmds+=("$2"); }
    add "berth, cold" "$BERTH build -q --network none --no-cache -t bench/$f -f $ctx/Dockerfile $ctx"
    [ -n "$have_buildah" ] && add "buildah, cold" "$BUILDAH bud -q --layers --runtime $RUNC --network none --pull=false --no-cache -t bench/$f -f $ctx/Dockerfile $ctx"
    [ -n "$have_docker" ] && add "BuildKit, cold" "$DOCKER build -q --network none --no-cache -t bench/$f -f $ctx/Dockerfile $ctx"
    add "berth, cached" "$BERTH build -q --network none -t bench/$f -f $ctx/Dockerfile $ctx"
    [ -n "$have_buildah" ] && add "buildah, cached" "$BUILDAH bud -q --layers --runtime $RUNC --network none --pull=false -t bench/$f -f $ctx/Dockerfile $ctx"
    [ -n "$have_docker" ] && add "BuildKit, cached" "$DOCKER build -q --network none -t bench/$f -f $ctx/Dockerfile $ctx"
    # Each command once first (which also fills the cache): one that fails is left out, with
    # what it printed.
    args=(); failed[$f]=
    for i in "${!names[@]}"; do
        # shellcheck disable=SC2086
        if out=$(${cmds[$i]} 2>&1); then
            args+=(-n "${names[$i]}" "${cmds[$i]}")
        else
            failed[$f]+="${names[$i]}: $(echo "$out" | grep -v '^$' | tail -1)"$'\n'
            echo "bench/build.sh: $f: left out ${names[$i]}: $out" >&2
        fi
    done
    printf '%s\n' "${cmds[@]}" >"$TMP/$f.cmds"
    if [ ${#args[@]} -gt 0 ]; then
        hyperfine -N -w 1 -r "$RUNS" --style none --export-json "$TMP/$f.json" "${args[@]}" >/dev/null
    else
        echo '{"results": []}' >"$TMP/$f.json"
    fi
    # What the built images print (their CMD): berth's against BuildKit's.
    checks[$f]=
    if [ -n "${failed[$f]}" ] && grep -q '^berth, cold:' <<<"${failed[$f]}"; then
        checks[$f]="No check: berth did not build it."
    elif ! b=$($BERTH run --rm --network none "bench/$f" 2>&1); then
        checks[$f]="\`berth run bench/$f\` failed: $(echo "$b" | tail -1)"
    elif [ -n "$have_docker" ] && d=$($DOCKER run --rm --network none "bench/$f" 2>&1); then
        if [ "$b" = "$d" ]; then checks[$f]="Check: berth's image prints (CMD) what BuildKit's prints."
        else checks[$f]="Check: berth's image prints something else than BuildKit's: berth \"$(echo "$b" | head -2 | tr '\n' ' ')...\", BuildKit \"$(echo "$d" | head -2 | tr '\n' ' ')...\"."; fi
    fi
done

# median of NAME in FILE's results (ms), empty when it was left out
median() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median*1000' "$TMP/$1.json"; }
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a/b}'; else echo -; fi; }
goal() { # FILE WHAT REF LIMIT
    local b r q m
    b=$(median "$1" "berth, $2"); r=$(median "$1" "$3, $2")
    if [ -z "$b" ] || [ -z "$r" ]; then echo "- $2: berth at most ${4}x $3: not measured"; return; fi
    q=$(ratio "$b" "$r")
    if awk -v a="$b" -v c="$r" -v l="$4" 'BEGIN {exit !(a <= l*c)}'; then m=met; else m="**not met**"; fi
    echo "- $2: berth at most ${4}x $3: $q, $m"
}
# shellcheck disable=SC2016
title() { case $1 in
    multi) echo 'multi-stage: builder stage with 2 RUN, final stage with 2 `COPY --from=builder`' ;;
    steps) echo 'many small steps: 10 `COPY fileN /dst/` from the context interleaved with 10 `RUN`' ;;
    runs) echo 'RUN only: 20 small `RUN` steps' ;;
    esac; }
out=docs/build-benchmark.md
{
    echo "# Building images: \`berth build\`, BuildKit and buildah"
    echo
    echo "Produced by \`bench/build.sh\` on $(date -u +%Y-%m-%d) ($(uname -r), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end, $load_start at the start);"
    echo "berth $(git rev-parse --short HEAD), hyperfine $(hyperfine --version | awk '{print $2}'), $RUNS runs after 1 warm-up, each Dockerfile in one run, side by side."
    echo "The base image \`benchbase\` is a busybox-static rootfs imported into berth and \`berth save\`d,"
    echo "then \`buildah pull docker-archive:\` and \`docker load\`ed: the same image ID (${base_id:7:12}) in each."
    echo "Cold: \`--no-cache\`, the base image present. Cached: the same build again, nothing changed"
    echo "(every step a cache hit). RUN steps use \`--network none\` in all three (they need no network,"
    echo "and the private dockerd has no bridge)."
    if [ -n "$have_buildah" ]; then
        echo "buildah $(buildah --version | awk '{print $3}'): \`bud --layers\`, its own root, overlay driver, runc $($RUNC --version | awk 'NR==1 {print $3}') (crun refuses"
        echo "this host's hybrid cgroups), default isolation (oci)."
    else echo "buildah skipped: $why_buildah."; fi
    if [ -n "$have_docker" ]; then
        echo "BuildKit: dockerd $($DOCKER version -f '{{.Server.Version}}') of the script's own, the docker.io CLI $($DOCKER version -f '{{.Client.Version}}') with DOCKER_BUILDKIT=1."
    else echo "BuildKit skipped: $why_docker."; fi
    echo "Ratios compare berth with the other engine in the same state (cold with cold, cached with cached)."
    for f in $FILES; do
        echo
        echo "## $(title "$f")"
        echo
        if [ -n "${failed[$f]}" ]; then
            echo "Left out (failed once before timing):"
            echo
            printf '%s' "${failed[$f]}" | while IFS= read -r l; do echo "- ${l//$TMP/\$TMP}"; done
            echo
        fi
        echo "| command | median ms | min | max | mean ± sd | berth / BuildKit | berth / buildah |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        jq -r '.results[] | [.command, (.median*1000), (.min*1000), (.max*1000), (.mean*1000), (.stddev*1000)] | @tsv' "$TMP/$f.json" |
            while IFS=$'\t' read -r name med min max mean sd; do
                state=${name#*, }
                rk=-; rb=-
                if [ "${name%%,*}" = berth ]; then
                    rk=$(ratio "$med" "$(median "$f" "BuildKit, $state")")
                    rb=$(ratio "$med" "$(median "$f" "buildah, $state")")
                fi
                printf '| %s | %.0f | %.0f | %.0f | %.0f ± %.0f | %s | %s |\n' "$name" "$med" "$min" "$max" "$mean" "$sd" "$rk" "$rb"
            done
        echo
        echo "Goals:"
        echo
        goal "$f" cold BuildKit 0.8
        goal "$f" cold buildah 0.5
        goal "$f" cached BuildKit 0.5
        [ -n "${checks[$f]}" ] && { echo; echo "${checks[$f]//$TMP/\$TMP}"; }
        echo
        echo "Commands:"
        echo
        echo '```sh'
        sed "s#$TMP#\$TMP#g; s#$PWD/##g" "$TMP/$f.cmds"
        echo '```'
        echo
        echo "\$TMP/$f/Dockerfile:"
        echo
        echo '```dockerfile'
        cat "$TMP/$f/Dockerfile"
        echo '```'
    done
} >"$out"
cat "$out"
