# syntax=docker/dockerfile:1
#
# sms-sessions: a multi-stage build — compile with cargo, run the single binary on distroless.
#
#   docker build -t sms-sessions .
#   docker run --rm -p 8080:8080 \
#     -e TWILIO_AUTH_TOKEN=... -e SMS_SESSIONS_SECRET=... \
#     -e SMS_SESSIONS_PUBLIC_URL=https://sms.example.com sms-sessions
#
# CI cannot build this (no Docker engine): scripts/lint-dockerfile.sh lints it with hadolint and
# scripts/image-smoke.sh runs the release binary exactly as the runtime stage does (uid 65532,
# empty working directory, the ENV below and nothing else) until the HEALTHCHECK passes.

# ---- builder: glibc of bookworm, to match the distroless cc-debian12 runtime ----
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build
COPY . .
# Cache mounts keep the registry and target/ between builds; the binary is copied out of the
# cached target/ in the same step because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/sms-sessions /out/sms-sessions \
    && install -d -m 0750 /out/state

# ---- runtime: glibc + libgcc only, no shell, no package manager ----
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/sms-sessions /usr/local/bin/sms-sessions
# The default configuration is embedded in the binary; this copy is for reference
# (`docker run --rm sms-sessions check-config` prints the effective one, secrets redacted).
COPY config/default.toml /etc/sms-sessions/default.toml
# -e SMS_SESSIONS_STORE=sqlite:/var/lib/sms-sessions/state.db keeps conversations here, on a
# volume that outlives the container (owned by the nonroot user, so the server can write it).
COPY --from=builder --chown=65532:65532 /out/state /var/lib/sms-sessions
VOLUME /var/lib/sms-sessions

# PORT (not SMS_SESSIONS_LISTEN) so platforms that inject their own PORT still win; it binds
# 0.0.0.0:$PORT, which the server only accepts once TWILIO_AUTH_TOKEN (or _FILE) is set — without
# a token the container exits at once with an error naming twilio.auth_token. /metrics is not
# served on this non-loopback listener (a start-up warning says so): to scrape it, add
# -e SMS_SESSIONS_METRICS_LISTEN=0.0.0.0:9090 and let only Prometheus reach port 9090 (do not
# publish it), or -e SMS_SESSIONS_METRICS=false to silence the warning.
ENV PORT=8080
# One JSON object per line on stdout, for log pipelines; -e SMS_SESSIONS_LOG_FORMAT=text to read.
ENV SMS_SESSIONS_LOG_FORMAT=json

# distroless's "nonroot" user, numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
# Reads the same environment to find the port; exit 0 when GET /healthz answers 200.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/sms-sessions", "healthcheck"]
# SIGTERM (docker stop) drains in-flight webhooks and exits 0; requests are capped by
# server.request_timeout (10 s), so give `docker stop` at least that (compose: stop_grace_period).
ENTRYPOINT ["/usr/local/bin/sms-sessions"]
CMD ["serve"]
