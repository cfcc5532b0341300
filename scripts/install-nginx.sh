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
# shellcheck source=scripts/apt-install.sh
source "$(dirname "$0")/apt-install.sh"
apt_install install-nginx "${packages[@]}"
echo "install-nginx: installed $(/usr/sbin/nginx -v 2>&1), caddy $(caddy version)"
