#!/usr/bin/env bash
# The project's two entry points, on a fresh Debian machine with Python 3.11+:
#   ./dev.sh demo   install hub and run the all-protocol demo
#   ./dev.sh test   install everything the tests need and run the whole suite
# Both create .venv beside this file; `test` also installs the Debian packages
# the suite drives for real (redis-server, mosquitto, chromium, valgrind), as root or
# with sudo.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv
DEBIAN_PACKAGES=(redis-server mosquitto mosquitto-clients chromium chromium-driver valgrind)

need_python() {
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "hub needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
        exit 1
    fi
    if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
        apt_install python3-venv
    fi
}

apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_python_packages() {
    local extra=$1
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[$extra]"
}

case "${1:-}" in
    demo)
        shift
        need_python
        install_python_packages demo
        exec "$VENV/bin/hub" demo "$@"
        ;;
    test)
        shift
        need_python
        missing=()
        for package in "${DEBIAN_PACKAGES[@]}"; do
            dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            apt_install "${missing[@]}"
        fi
        install_python_packages test
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        "$VENV/bin/mypy"
        site_dir=$(mktemp -d)
        NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict --quiet --site-dir "$site_dir"
        rm -rf "$site_dir"
        PYTHONASYNCIODEBUG=${PYTHONASYNCIODEBUG:-1} exec "$VENV/bin/pytest" "$@"
        ;;
    *)
        echo "usage: $0 demo [hub demo options] | test [pytest options]" >&2
        exit 2
        ;;
esac
