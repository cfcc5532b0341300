//! `GET /healthz`: liveness for load balancers and Docker's HEALTHCHECK.

/// Always 200 while the server accepts connections; no signature, no session.
pub async fn healthz() -> &'static str {
    "ok\n"
}
