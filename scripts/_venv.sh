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
        .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    fi
}

# `pip install -e "$1"` (e.g. `.` or `.[test,bench]`) only when it could change
# something: pyproject.toml differs from the last install of the same target
# (its hash is kept in a stamp file in .venv), or the venv's waypost is missing
# or not this checkout's src/. Editable, so code changes need no install.
install_waypost() {
    local target="$1"
    local extras="${target//[^a-z,]/}"
    local stamp=".venv/.waypost-installed${extras:+-$extras}"
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && .venv/bin/python -c '
import sys, waypost
sys.exit(not waypost.__file__.startswith(sys.argv[1]))' "$PWD/src/" 2>/dev/null; then
        return 0
    fi
    echo "installing waypost into .venv (pip install -e '$target')" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -e "$target"
    echo "$want" >"$stamp"
}
