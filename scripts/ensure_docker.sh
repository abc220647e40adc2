#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`.
#
# Idempotent: does nothing that is already done.  As root it installs docker.io
# (and mmdebstrap, which `deskhand sandbox build` needs to make the Debian base
# image when no registry can be reached) when missing, and starts dockerd in the
# background (logging to $DESKHAND_DOCKERD_LOG); as any other user it only says
# what to do.  Used by developers and by CI (root, no TTY, fresh machine).
set -euo pipefail

log_file="${DESKHAND_DOCKERD_LOG:-/var/log/deskhand-dockerd.log}"
wait_s="${DESKHAND_DOCKERD_WAIT_S:-60}"

say() { printf 'ensure_docker: %s\n' "$*" >&2; }

engine_answers() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

missing_packages() {
    command -v dockerd >/dev/null 2>&1 || echo docker.io
    command -v mmdebstrap >/dev/null 2>&1 || echo mmdebstrap
}

if [ "$(id -u)" -eq 0 ] && [ -n "$(missing_packages)" ]; then
    say "installing $(missing_packages | tr '\n' ' ')"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2046  # one package name per line
    apt-get install -y -qq --no-install-recommends $(missing_packages) >/dev/null
fi

if engine_answers; then
    say "engine already answers"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    say "no Docker engine answers and this user is not root."
    say "ask an administrator to install docker.io and start the daemon"
    say "(e.g. 'sudo apt-get install docker.io && sudo systemctl start docker'),"
    say "then add this user to the 'docker' group, or run this script as root."
    exit 1
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    say "starting dockerd (log: $log_file)"
    mkdir -p "$(dirname "$log_file")"
    # setsid: the daemon must outlive this script and the shell that ran it.
    setsid dockerd >>"$log_file" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$wait_s"); do
    if engine_answers; then
        say "engine answers"
        exit 0
    fi
    sleep 1
done

say "dockerd did not answer within ${wait_s}s; last lines of $log_file:"
tail -n 20 "$log_file" >&2 || true
exit 1
