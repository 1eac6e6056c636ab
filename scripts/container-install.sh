#!/bin/sh
# Install parley into a virtual environment: the container image's build steps, and what
# tests/test_container.py runs in a fresh virtual environment (one script, so both agree).
#
#   container-install.sh deps SOURCE VENV   the dependencies in pyproject.toml only (their own
#                                           image layer: it changes only when they do)
#   container-install.sh app SOURCE VENV    parley itself from SOURCE, without dependencies
#   container-install.sh all SOURCE VENV    both
#
# VENV is created when missing. pip's settings (index, cache, PIP_NO_CACHE_DIR) come from the
# environment. Ends by printing `parley --version`.
set -eu

step="${1:?usage: container-install.sh deps|app|all SOURCE VENV}"
source_dir="${2:?missing SOURCE (the folder with pyproject.toml)}"
venv="${3:?missing VENV (where to install)}"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check "$@"; }

install_deps() {
    # The [project] dependencies, read with the standard library (tomllib).
    "$venv/bin/python" - "$source_dir/pyproject.toml" > "$venv/parley-requirements.txt" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
    pip install -q -r "$venv/parley-requirements.txt"
}

install_app() {
    pip install -q --no-deps "$source_dir"
    "$venv/bin/parley" --version
}

case "$step" in
    deps) install_deps ;;
    app) install_app ;;
    all) install_deps && install_app ;;
    *) echo "unknown step $step: use deps, app or all" >&2; exit 2 ;;
esac
