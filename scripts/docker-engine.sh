# shellcheck shell=bash
# Sourced by scripts/test (and the bench script): makes sure a Docker Engine answers.
#
# If none does and this is a Debian/Ubuntu machine where we are root, installs Debian's engine
# (docker.io) when missing and starts dockerd in the background; `stop_started_engine` stops it
# again. Anywhere else it fails, saying what to install.

BOTMAKER_STARTED_DOCKERD_PID=""

engine_answers() {
    timeout 10 docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1
}

ensure_engine() {
    if ! command -v docker >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
        install_engine
    fi
    if engine_answers; then
        echo "Docker Engine: API $(docker version --format '{{.Server.APIVersion}}') at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
        return 0
    fi
    if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix:///var/run/docker.sock" ]; then
        fail_engine "DOCKER_HOST=${DOCKER_HOST} does not answer"
    fi
    command -v dockerd >/dev/null 2>&1 || install_engine
    [ "$(id -u)" = 0 ] || fail_engine "no engine answers and starting dockerd needs root"
    echo "Starting dockerd (log: target/dockerd.log)..."
    mkdir -p target
    setsid dockerd >target/dockerd.log 2>&1 < /dev/null &
    BOTMAKER_STARTED_DOCKERD_PID=$!
    for _ in $(seq 1 120); do
        if engine_answers; then
            echo "Docker Engine: API $(docker version --format '{{.Server.APIVersion}}') (started here)"
            return 0
        fi
        if ! kill -0 "$BOTMAKER_STARTED_DOCKERD_PID" 2>/dev/null; then
            tail -20 target/dockerd.log >&2 || true
            fail_engine "dockerd exited at start"
        fi
        sleep 0.5
    done
    tail -20 target/dockerd.log >&2 || true
    fail_engine "dockerd did not answer within 60 s"
}

install_engine() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "No Docker Engine installed: installing Debian's docker.io..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    else
        fail_engine "Docker is not installed"
    fi
}

fail_engine() {
    cat >&2 <<MSG
error: no Docker Engine available: $1.
The tests run against a real Docker Engine (API 1.41 or newer) and are never skipped.
Install one (Debian/Ubuntu: apt-get install docker.io; elsewhere: https://docs.docker.com/engine/install/),
start it (systemctl start docker, or: setsid dockerd &), or point DOCKER_HOST at a running engine.
MSG
    exit 1
}

stop_started_engine() {
    if [ -n "$BOTMAKER_STARTED_DOCKERD_PID" ]; then
        kill "$BOTMAKER_STARTED_DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$BOTMAKER_STARTED_DOCKERD_PID" 2>/dev/null || break
            sleep 0.5
        done
    fi
}
