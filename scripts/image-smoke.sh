#!/usr/bin/env bash
# Runs the release binary the way the Docker image does, without Docker:
#   - the runtime stage's ENV, USER, EXPOSE, HEALTHCHECK and ENTRYPOINT are read from the
#     Dockerfile (so this script follows the Dockerfile, not a copy of it);
#   - as uid/gid 65532 (via setpriv when run as root; otherwise as the current user);
#   - in an empty, read-only working directory, with an empty environment plus the image's ENV
#     and secrets given as files (TWILIO_AUTH_TOKEN_FILE, SMS_SESSIONS_SECRET_FILE);
#   - until the image's HEALTHCHECK command passes; then one signed webhook, JSON logs, and
#     SIGTERM → exit 0.
# The one deviation: the listener is moved to a free loopback port (SMS_SESSIONS_LISTEN), as CI
# must not bind 0.0.0.0; that the image's ENV alone means 0.0.0.0:8080 is checked with
# `check-config`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "image-smoke: $*"; }
fail() {
    echo "image-smoke: FAILED: $*" >&2
    exit 1
}

# ---- what the Dockerfile's runtime stage declares ----
runtime=$(awk '/^FROM /{stage=""} {stage=stage $0 "\n"} END{printf "%s", stage}' Dockerfile)
grep -qx 'USER 65532:65532' <<<"$runtime" || fail "runtime stage must run as USER 65532:65532"
grep -qx 'EXPOSE 8080' <<<"$runtime" || fail "runtime stage must EXPOSE 8080"
grep -q 'CMD \["/usr/local/bin/sms-sessions", "healthcheck"\]' <<<"$runtime" ||
    fail "HEALTHCHECK must be the exec-form healthcheck subcommand"
grep -qx 'ENTRYPOINT \["/usr/local/bin/sms-sessions"\]' <<<"$runtime" ||
    fail "ENTRYPOINT must be the exec-form binary"
mapfile -t image_env < <(sed -n 's/^ENV \([A-Za-z_][A-Za-z0-9_]*=[^ ]*\)$/\1/p' <<<"$runtime")
[ "${#image_env[@]}" -gt 0 ] || fail "no ENV KEY=VALUE lines found in the runtime stage"
say "image ENV: ${image_env[*]}"

# ---- the binary, built as the builder stage builds it ----
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --locked
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
release_binary="$target_dir/release/sms-sessions"
[ -x "$release_binary" ] || fail "$release_binary is missing"

root=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$root"
}
trap cleanup EXIT
chmod 755 "$root"
install -D -m 0755 "$release_binary" "$root/usr/local/bin/sms-sessions"
binary="$root/usr/local/bin/sms-sessions"
mkdir -m 0755 "$root/workdir" "$root/run" "$root/run/secrets"
token="smoke-test-auth-token-0123456789"
printf '%s\n' "$token" >"$root/run/secrets/twilio_auth_token"
printf '%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$root/run/secrets/session_secret"
chmod 0444 "$root/run/secrets/"*

as_image_user=()
if [ "$(id -u)" -eq 0 ]; then
    as_image_user=("$(command -v setpriv)" --reuid=65532 --regid=65532 --clear-groups --inh-caps=-all --)
    expected_uid=65532
else
    say "not root: running as uid $(id -u) instead of 65532"
    expected_uid=$(id -u)
fi
secrets_env=(
    "TWILIO_AUTH_TOKEN_FILE=$root/run/secrets/twilio_auth_token"
    "SMS_SESSIONS_SECRET_FILE=$root/run/secrets/session_secret"
)
# Like `docker run IMAGE ARGS`: empty environment + the image's ENV + what `docker run -e` adds.
in_image() {
    (cd "$root/workdir" && env -i "${image_env[@]}" "${secrets_env[@]}" "$@")
}

# ---- the image's ENV alone: 0.0.0.0:8080 with a token, a clear refusal without one ----
config=$(in_image "${as_image_user[@]}" "$binary" check-config 2>"$root/check-stderr") ||
    fail "check-config failed with the image ENV and a token file: $(cat "$root/check-stderr")"
grep -qx 'listen = "0.0.0.0:8080"' <<<"$config" || fail "image ENV does not listen on 0.0.0.0:8080"
grep -q "$token" <<<"$config" "$root/check-stderr" && fail "check-config printed the token"
# The exposure check-config reports: public listener, signed webhooks, no public /metrics.
grep -qx '#   listen:   0.0.0.0:8080, REACHABLE FROM OTHER MACHINES (not a loopback address)' <<<"$config" ||
    fail "check-config does not report the public listener: $config"
grep -qx '#   webhooks: must be signed, token: configured (auth_token)' <<<"$config" ||
    fail "check-config does not report signed webhooks: $config"
grep -q '^#   /metrics: not served' <<<"$config" || fail "image ENV serves /metrics on 0.0.0.0: $config"
grep -q 'server.metrics_listen' "$root/check-stderr" ||
    fail "no warning that /metrics is withheld: $(cat "$root/check-stderr")"
if refusal=$(cd "$root/workdir" && env -i "${image_env[@]}" "$binary" check-config 2>&1); then
    fail "the image ENV without a token should refuse to start"
fi
grep -q 'twilio.auth_token' <<<"$refusal" || fail "refusal does not name twilio.auth_token: $refusal"
say "image ENV: 0.0.0.0:8080 with a token; without one: $refusal"

# ---- serve, as the image's user, on a free loopback port ----
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
listen=("SMS_SESSIONS_LISTEN=127.0.0.1:$port")
# `exec`, so that $! is the server itself (setpriv and env exec in place).
(cd "$root/workdir" && exec env -i "${image_env[@]}" "${secrets_env[@]}" "${listen[@]}" \
    "${as_image_user[@]}" "$binary") >"$root/stdout" 2>"$root/stderr" &
server_pid=$!

deadline=$((SECONDS + 30))
until in_image "${listen[@]}" "${as_image_user[@]}" "$binary" healthcheck 2>/dev/null; do
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited: $(cat "$root/stderr" "$root/stdout")"
    [ "$SECONDS" -lt "$deadline" ] || fail "HEALTHCHECK did not pass within 30 s"
    sleep 0.2
done
say "HEALTHCHECK passed (/healthz answered 200 on 127.0.0.1:$port)"

uid=$(ps -o uid= -p "$server_pid" | tr -d ' ')
[ "$uid" = "$expected_uid" ] || fail "server runs as uid $uid, expected $expected_uid"

url="http://127.0.0.1:$port/sms"
# Every field an inbound text carries, in Twilio's shapes.
params=(MessageSid=SM0123456789abcdef0123456789abcdef AccountSid=AC0123456789abcdef0123456789abcdef
    From=+14155550199 To=+14155550100 Body=hi NumMedia=0)
signature=$("$binary" sign --url "$url" --token "$token" "${params[@]}")
form=()
for param in "${params[@]}"; do form+=(--data-urlencode "$param"); done
reply=$(curl -sS --max-time 5 -H "X-Twilio-Signature: $signature" "${form[@]}" "$url")
grep -q '<Message>Hello, thanks for the new message.</Message>' <<<"$reply" ||
    fail "a signed webhook was not answered: $reply"
say "a webhook signed with the token from TWILIO_AUTH_TOKEN_FILE was answered"

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
[ "$status" -eq 0 ] || fail "exit status $status after SIGTERM"
[ -s "$root/stderr" ] && fail "stderr is not empty: $(cat "$root/stderr")"
python3 - "$root/stdout" <<'PY' || fail "stdout is not one JSON object per line"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no log lines"
assert all(isinstance(json.loads(line), dict) for line in lines)
PY
grep -q '+14155550199' "$root/stdout" && fail "a phone number was logged unmasked"
grep -q "$token" "$root/stdout" && fail "the token was logged"
[ -z "$(ls -A "$root/workdir")" ] || fail "the server wrote to its working directory"
say "SIGTERM: exit 0; $(wc -l <"$root/stdout") JSON log lines, numbers masked; working directory untouched"
say "OK"
