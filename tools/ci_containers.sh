#!/usr/bin/env bash
# Container CI (issue 5), run by .ci/run after `make test` on a fresh Debian machine with no registry access:
# installs Docker and debootstrap, starts a private dockerd, builds a local Python base image, builds the images
# offline from host-built wheels, runs the image/manifest tests, the e2e suite in containers and the compose
# suite, and prints the image sizes. Everything it creates is removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
WORK="$(mktemp -d /tmp/tm-ci.XXXXXX)"
BASE_IMAGE="local/teleport-mattermost-base:bookworm"
IMAGE="teleport-mattermost:ci"
TEST_RUNNER_IMAGE="teleport-mattermost-test-runner:ci"
WHEELHOUSE="build/wheelhouse"
LABEL="teleport-mattermost.e2e"
export DOCKER_HOST="unix://$WORK/docker.sock" DOCKER_BUILDKIT=0
DOCKERD_PID=""
# dockerd creates the docker0 bridge and leaves it behind; remove it afterwards only if we created it.
BRIDGE_EXISTED=0
ip link show docker0 >/dev/null 2>&1 && BRIDGE_EXISTED=1

log() { echo "== $*"; }

cleanup() {
    local rc=$?
    set +e
    log "cleanup (exit code $rc)"
    if [ -n "$DOCKERD_PID" ] && docker info >/dev/null 2>&1; then
        for edition in oss enterprise; do
            TM_IMAGE="$IMAGE" TM_TEST_RUNNER_IMAGE="$TEST_RUNNER_IMAGE" docker-compose -p "tm-compose-$edition" \
                -f docker-compose.test.yml down --volumes --timeout 5 >/dev/null 2>&1
        done
        docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f >/dev/null
        docker network ls -q --filter "label=$LABEL" | xargs -r docker network rm >/dev/null
        docker volume ls -q --filter "label=$LABEL" | xargs -r docker volume rm -f >/dev/null
        docker ps -aq | xargs -r docker rm -f >/dev/null  # build leftovers: this daemon is ours alone
    fi
    if [ -n "$DOCKERD_PID" ]; then
        $SUDO kill "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 1 60); do $SUDO kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        $SUDO kill -9 "$DOCKERD_PID" 2>/dev/null
    fi
    if [ "$BRIDGE_EXISTED" -eq 0 ] && ip link show docker0 >/dev/null 2>&1; then
        $SUDO ip link delete docker0 2>/dev/null
    fi
    $SUDO rm -rf "$WORK" "$WHEELHOUSE" 2>/dev/null
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "install docker.io, docker-compose, debootstrap"
packages=(docker.io docker-compose debootstrap)
command -v systemd-analyze >/dev/null || packages+=(systemd)  # tests/containers verify the unit with it
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

log "start dockerd (private socket and data root; --iptables=false leaves host networking alone)"
$SUDO dockerd -H "$DOCKER_HOST" --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
    --iptables=false >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; echo "dockerd did not start" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || $SUDO chmod 0666 "$WORK/docker.sock"

log "base image $BASE_IMAGE (debootstrap bookworm minbase + python3, python3-venv)"
mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
[ -n "$mirror" ] || mirror="$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
$SUDO debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv bookworm "$WORK/rootfs" "$mirror" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
$SUDO rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/* \
    "$WORK"/rootfs/usr/share/doc/* "$WORK"/rootfs/usr/share/man/*
$SUDO tar -C "$WORK/rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null

log "wheels for an offline build ($WHEELHOUSE)"
make venv >/dev/null
rm -rf "$WHEELHOUSE"
.venv/bin/pip wheel --quiet --wheel-dir "$WHEELHOUSE" . "pytest>=8" "pytest-asyncio>=1.0" "pytest-timeout>=2.3" \
    "setuptools>=68" wheel

log "build $IMAGE and $TEST_RUNNER_IMAGE"
make images IMAGE="$IMAGE" TEST_RUNNER_IMAGE="$TEST_RUNNER_IMAGE" BASE_IMAGE="$BASE_IMAGE" \
    PIP_INSTALL_ARGS="--no-index --find-links=/src/$WHEELHOUSE" >"$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log"; exit 1; }

log "image sizes"
for image in "$BASE_IMAGE" "$IMAGE" "$TEST_RUNNER_IMAGE"; do
    size="$(docker image inspect --format '{{.Size}}' "$image")"
    printf '   %-45s %6d MB\n' "$image" "$((size / 1000 / 1000))"
done

log "docker run $IMAGE version / configure"
docker run --rm --read-only "$IMAGE" version
docker run --rm --read-only "$IMAGE" configure >"$WORK/example.toml"
head -3 "$WORK/example.toml"

log "make test-containers (image smoke tests, manifests, the e2e suite with every component in a container)"
make test-containers IMAGE="$IMAGE"

log "make test-compose (docker-compose.test.yml, oss and enterprise)"
make test-compose IMAGE="$IMAGE" TEST_RUNNER_IMAGE="$TEST_RUNNER_IMAGE"

log "container suite passed"
