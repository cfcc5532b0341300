#!/usr/bin/env bash
# Installs Debian's nginx and caddy when they are missing, for tests/nginx.rs and
# tests/caddy.rs. Each test runs its own proxy (own config, files and loopback ports), so the
# packages' system services are never started: a temporary policy-rc.d refuses service starts
# during the install.
set -euo pipefail

packages=()
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    echo "install-nginx: $( (command -v nginx || echo /usr/sbin/nginx) | head -n1) already present"
else
    packages+=(nginx)
fi
if command -v caddy >/dev/null 2>&1; then
    echo "install-nginx: $(command -v caddy) already present"
else
    packages+=(caddy)
fi
if [ "${#packages[@]}" -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-nginx: ${packages[*]} missing and apt-get is not available; install them yourself" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi

policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    created_policy=yes
fi
cleanup() {
    if [ -n "$created_policy" ]; then
        $sudo rm -f "$policy"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-nginx: installed $(/usr/sbin/nginx -v 2>&1), caddy $(caddy version)"
