//! The application: shared state, the router, and the server loop with graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::config::{Config, MetricsExposure};
use crate::connections;
use crate::flows::{self, DynFlow};
use crate::front::Front;
use crate::logging::Observer;
use crate::metrics::{self, Metrics};
use crate::relay::{AnyRelay, Relay, RelayKeys};
use crate::routes::{health, sms, status};
use crate::session::{SessionCodec, SessionSecret};
use crate::store::{OpenError, Store};
use crate::twilio::public_url::UrlSource;
use crate::twilio::webhook::{HasGate, WebhookGate, plain};

/// Everything a request needs, cheap to clone (one `Arc` each).
#[derive(Clone)]
pub struct AppState {
    pub sessions: Arc<SessionCodec>,
    pub flow: Arc<dyn DynFlow>,
    pub gate: Arc<WebhookGate>,
    pub config: Arc<Config>,
    /// `None` when `server.metrics = false`.
    pub metrics: Option<Arc<Metrics>>,
    /// The flows from files, for reloading on SIGHUP (`flow.kind = "flows"`).
    pub files: Option<Arc<flows::FileFlows>>,
    /// The server-side store; `None` keeps conversations in cookies (`session.store =
    /// "cookie"`). Opened by [`open_store`](Self::open_store).
    pub store: Option<Arc<Store>>,
    /// Masked-number relays (`relay.numbers`), on the store's engine; opened with it.
    pub relay: Option<Arc<Relay>>,
}

impl AppState {
    /// Builds the state from a validated configuration, with the configured flow; flows from
    /// files are loaded and checked here, and refused with every problem found.
    pub fn new(config: Config) -> Result<Self, flows::LoadError> {
        let metrics = new_metrics(&config);
        let loaded = flows::from_config(&config, metrics.clone())?;
        let mut state = Self::build(config, loaded.flow(), metrics);
        state.files = loaded.files();
        Ok(state)
    }

    /// Builds the state with a flow of your own (see `examples/`).
    pub fn with_flow(config: Config, flow: Arc<dyn DynFlow>) -> Self {
        let metrics = new_metrics(&config);
        Self::build(config, flow, metrics)
    }

    fn build(config: Config, flow: Arc<dyn DynFlow>, metrics: Option<Arc<Metrics>>) -> Self {
        let session = &config.session;
        let secret = session.secret.clone().unwrap_or_else(SessionSecret::random);
        let sessions = SessionCodec::new(
            &session.cookie_name,
            session.ttl,
            &secret,
            &session.previous_secrets,
        );
        let gate = WebhookGate {
            tokens: config.twilio.auth_tokens.clone().into(),
            validate: config.twilio.validate_signatures,
            url_source: UrlSource::new(
                config.server.public_url.clone(),
                config.server.trust_forwarded,
            ),
            body_limit: config.server.body_limit,
            body_timeout: config.server.request_timeout,
            account_sid: config.twilio.account_sid.as_deref().map(Into::into),
        };
        Self {
            sessions: Arc::new(sessions),
            flow,
            gate: Arc::new(gate),
            config: Arc::new(config),
            metrics,
            files: None,
            store: None,
            relay: None,
        }
    }

    /// Opens the store `session.store` names and checks that it answers (nothing to open for
    /// `cookie`), and starts its sweeper where the backend does not expire entries itself.
    pub async fn open_store(mut self) -> Result<Self, OpenError> {
        let config = &self.config;
        let session = &config.session;
        let secrets = session.secret.iter().chain(&session.previous_secrets);
        let secrets: Vec<SessionSecret> = match session.secret {
            Some(_) => secrets.cloned().collect(),
            // Memory mode may run without a secret (validation refuses it for durable stores).
            None => vec![SessionSecret::random()],
        };
        let relay_keys = RelayKeys::new(secrets[0].expose());
        // Call-outs and relay hand-offs and forwards wait on other services under the lease.
        let calls = !config.flow.endpoints.is_empty() || config.relay.is_on();
        let lease = store_lease(
            config.store.timeout,
            calls.then_some(config.server.request_timeout),
        );
        self.store = Store::open(
            &config.store,
            secrets,
            session.ttl,
            lease,
            self.metrics.clone(),
        )
        .await?;
        if let Some(store) = &self.store {
            store.spawn_sweeper(SWEEP_EVERY);
        }
        if config.relay.is_on() {
            let backend = AnyRelay::open(&config.store.url, relay_keys, &config.store.prefix)
                .await
                .map_err(OpenError)?;
            let relay = Relay::new(backend, config.relay.clone(), self.metrics.clone());
            relay.spawn_gauges(std::time::Duration::from_secs(15));
            if let Some(files) = &self.files {
                files.set_relay(relay.clone());
            }
            self.relay = Some(relay);
        }
        Ok(self)
    }
}

impl AppState {
    /// Where forwarded relay messages report their delivery: `/sms/status` at the base Twilio
    /// addressed this webhook to (`server.public_url`, or the request's host as the gate
    /// rebuilds it for the signature), so the callback's signature checks out the same way.
    /// `None` when no absolute URL can be made: the messages go without a callback.
    pub fn relay_status_url(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        let path = axum::http::Uri::from_static("/sms/status");
        self.gate.url_source.rebuild(&path, headers).ok()
    }
}

/// The metrics registry, unless `server.metrics = false`.
fn new_metrics(config: &Config) -> Option<Arc<Metrics>> {
    (config.server.metrics != MetricsExposure::Off).then(|| Arc::new(Metrics::new()))
}

/// How often expired conversations and markers are removed (memory and SQLite).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How long one step may hold its pair: a begin and a commit, each within `store.timeout`,
/// and the flow between them: microseconds, or with call-outs configured up to the request's
/// whole deadline, so a retry of the MessageSid can never take the pair and call again while
/// the first attempt still waits on a service. A step on a replica that died mid-step blocks
/// its pair no longer than this.
fn store_lease(
    store_timeout: std::time::Duration,
    calls: Option<std::time::Duration>,
) -> std::time::Duration {
    store_timeout * 2 + std::time::Duration::from_millis(500) + calls.unwrap_or_default()
}

/// How much longer than `server.request_timeout` a request may take before the 503 backstop.
const BACKSTOP_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The whole HTTP surface: the routes behind the [`Front`] (request id, log line, metrics,
/// panic → 500, the 503 backstop).
///
/// The webhook routes take the [`Webhook`](crate::twilio::webhook::Webhook) extractor, which is
/// the gate: body deadline (408), body limit (413), form check (415), signature (403), before
/// the handler sees a byte. Methods are routed first, so a wrong one is a 405.
pub fn service(state: AppState) -> Front {
    let backstop = state.config.server.request_timeout + BACKSTOP_GRACE;
    let observer = Observer {
        ids: crate::logging::RequestIds::new(state.config.server.trust_request_id),
        metrics: state.metrics.clone(),
    };
    // `GET /metrics` here unless it is off or has a listener of its own.
    let scrape = match (&state.metrics, state.config.server.metrics) {
        (Some(registry), MetricsExposure::Main) => metrics::router(registry.clone()),
        _ => Router::new(),
    };
    let router = Router::new()
        .route("/sms", post(sms::inbound).get(sms::inbound))
        .route("/sms/status", post(status::status))
        .merge(scrape)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { (StatusCode::NOT_FOUND, plain("not found\n".to_owned())) })
        // Handlers get the state behind one `Arc`: axum clones it for every request, and
        // one reference count is cheaper than one per field.
        .with_state(Arc::new(state));
    Front::new(router, observer, backstop)
}

impl HasGate for Arc<AppState> {
    fn gate(&self) -> &WebhookGate {
        &self.gate
    }
}

/// Serves [`service`]`(state)` on an already-bound listener until `shutdown` resolves, then lets
/// in-flight requests finish, for at most `server.request_timeout` and two seconds.
///
/// The connection limits (`server.header_timeout`, `idle_timeout`, `max_connections`) are
/// [`connections`]' to keep; `max_connections` is taken as given here (the `serve` command
/// first fits it under the open-file limit).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = &state.config.server;
    let limits = connections::Limits {
        header_timeout: server.header_timeout,
        idle_timeout: server.idle_timeout,
        max_connections: server.max_connections,
        drain: server.request_timeout + BACKSTOP_GRACE + DRAIN_GRACE,
    };
    let metrics = state.metrics.clone();
    connections::serve(listener, service(state), limits, metrics, shutdown).await
}

/// How long past the 503 backstop shutdown waits for the last replies to be written.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` sends).
///
/// The handlers are installed by this call, not when the future is first polled, so a signal
/// that arrives as soon as the server says it is listening already drains instead of killing
/// the process. Call it inside the runtime, before announcing readiness.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (terminate, interrupt) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let recv = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = recv(terminate) => {},
                _ = recv(interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight webhooks");
    }
}
