#!/usr/bin/env bash
# Installs Debian's redis-server when it is missing, for tests/store_redis.rs. Each test binary
# runs its own redis-server (own loopback port, own scratch directory, no persistence), so the
# package's system service on 6379 is never wanted: a temporary policy-rc.d refuses service
# starts during the install, and a daemon that started anyway is stopped and disabled.
# SMS_SESSIONS_REDIS_SERVER, if set, names the binary the tests use instead (valkey-server).
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    echo "install-redis: $(command -v redis-server) already present ($(redis-server --version | head -n1))"
    exit 0
fi
# shellcheck source=scripts/apt-install.sh
source "$(dirname "$0")/apt-install.sh"
apt_install install-redis redis-server
# Should the package's daemon have started after all (no policy-rc.d honoured): stop it and
# keep it from starting at boot; the tests never use 6379.
$sudo service redis-server stop >/dev/null 2>&1 || true
if command -v systemctl >/dev/null 2>&1; then
    $sudo systemctl disable redis-server >/dev/null 2>&1 || true
fi
echo "install-redis: installed $(redis-server --version | head -n1)"
