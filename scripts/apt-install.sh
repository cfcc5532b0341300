# Sourced by the install-*.sh scripts: `apt_install NAME PACKAGE...` installs Debian packages
# with their system services kept from starting (each test runs its own server on its own
# loopback ports): a temporary policy-rc.d refuses service starts during the install, and is
# removed afterwards. Sets `sudo` for the caller's own follow-up commands.

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi

apt_install() {
    local name="$1"
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$name: $* missing and apt-get is not available; install it yourself" >&2
        exit 1
    fi
    local policy=/usr/sbin/policy-rc.d created_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        created_policy=yes
    fi
    local status=0
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq || status=$?
    if [ "$status" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "$@" >/dev/null || status=$?
    fi
    if [ -n "$created_policy" ]; then
        $sudo rm -f "$policy"
    fi
    return "$status"
}
