#!/usr/bin/env bash
# Set up this checkout: Debian packages (when root), a virtualenv, Python packages.
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing_debian_packages() {
    grep -v '^\s*#' scripts/debian-packages.txt | grep -v '^\s*$' | while read -r pkg; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

install_debian_packages() {
    local missing
    missing=$(missing_debian_packages | tr '\n' ' ')
    [ -z "${missing// }" ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "==> installing Debian packages: $missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "==> deskhand needs these Debian packages; install them as root:" >&2
        echo "    sudo apt-get install $missing" >&2
    fi
}

create_venv() {
    local python=${PYTHON:-python3}
    if [ ! -x .venv/bin/python ]; then
        echo "==> creating .venv with $($python --version)"
        $python -m venv .venv
    fi
    if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
        echo "==> installing Python packages into .venv"
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -e '.[dev]'
        touch .venv/.installed
    fi
}

install_debian_packages
create_venv
