# Shared by scripts/run and scripts/test: a .venv that works on fresh Debian,
# where `python3 -m venv` needs the python3-venv package first.
PYTHON=${PYTHON:-python3}
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

apt_install() {
    if command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq >/dev/null || true
        $SUDO apt-get install -y -qq "$@" >/dev/null
    fi
}

ensure_venv() {
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
        "$PYTHON" -m venv --clear .venv 2>/dev/null || {
            apt_install python3-venv
            "$PYTHON" -m venv --clear .venv
        }
    fi
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
}
