//! `serve` and `healthcheck`.

use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpListener;

use super::ConfigArg;
use crate::app::{AppState, serve as serve_app, shutdown_signal};
use crate::config::{Config, DEV_AUTH_TOKEN, MetricsExposure};
use crate::{connections, logging, metrics};

pub async fn serve(arg: &ConfigArg) -> ExitCode {
    let mut config = match arg.load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sms-sessions: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    // Batched: `main` flushes the log whenever a runtime worker goes idle.
    logging::init_batched(config.log_format);
    logging::log_panics_without_their_message();
    warn_about_insecure_settings(&config);
    config.server.max_connections = connections::fit_open_file_limit(config.server.max_connections);
    let listen = config.server.listen;
    let kind = config.flow.kind.as_str();
    let store = config.store.url.kind();
    let state = match AppState::new(config) {
        Ok(state) => state,
        Err(error) => {
            eprint!("sms-sessions: cannot start: {error}");
            return ExitCode::from(2);
        }
    };
    let state = match state.open_store().await {
        Ok(state) => state,
        Err(error) => {
            eprintln!("sms-sessions: cannot start: {error}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%listen, %error, "cannot bind");
            return ExitCode::from(1);
        }
    };
    let shutdown = shutdown_signal(); // before saying "listening": a prompt SIGTERM must drain
    let files = state.files.clone();
    if let Some(files) = files.clone() {
        reload_on_hangup(files);
    }
    let address = listener
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string());
    tracing::info!(%address, flow = kind, store, "sms-sessions listening; POST /sms, POST /sms/status, GET /healthz, GET /readyz");
    let metrics_task = match spawn_metrics_listener(&state).await {
        Ok(task) => task,
        Err(code) => return code,
    };
    let admin_task = match spawn_admin_listener(&state).await {
        Ok(task) => task,
        Err(code) => return code,
    };
    logging::flush(); // the start-up lines, logged outside a worker
    let served = serve_app(listener, state, shutdown).await;
    for task in [metrics_task, admin_task].into_iter().flatten() {
        task.abort();
    }
    if let Some(files) = files
        && !files.drain_hooks(HOOK_DRAIN).await
    {
        tracing::warn!("hooks still queued at shutdown were not delivered");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server stopped");
            ExitCode::from(1)
        }
    }
}

/// How long a stopping server waits for the results and opt-out hooks still queued.
const HOOK_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// On SIGHUP, loads `flows.dir` again: a set that passes every check replaces the old one for
/// the next webhook (those in flight finish on the old); one that does not is logged, problem by
/// problem, and the old set stays.
fn reload_on_hangup(files: std::sync::Arc<crate::flows::FileFlows>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; flows are not reloadable");
            return;
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let files = files.clone();
                let reloaded = tokio::task::spawn_blocking(move || files.reload()).await;
                match reloaded {
                    Ok(Ok(count)) => tracing::info!(flows = count, "SIGHUP: flows reloaded"),
                    Ok(Err(error)) => {
                        for problem in &error.0 {
                            tracing::error!(%problem, "SIGHUP: flows not reloaded; the old ones stay");
                        }
                    }
                    Err(error) => tracing::error!(%error, "SIGHUP: the reload failed"),
                }
                logging::flush();
            }
        });
    }
    #[cfg(not(unix))]
    let _ = files;
}

/// With `server.admin_listen`, binds it and serves the admin API there until aborted; the
/// admin routes exist on no other listener.
async fn spawn_admin_listener(
    state: &AppState,
) -> Result<Option<tokio::task::JoinHandle<std::io::Result<()>>>, ExitCode> {
    let Some(address) = state.config.admin.listen else {
        return Ok(None);
    };
    let Some(relay) = state.relay.clone() else {
        tracing::warn!(%address, "server.admin_listen is set but no relay (relay.numbers): the admin API is off");
        return Ok(None);
    };
    let listener = match TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%address, %error, "cannot bind server.admin_listen");
            return Err(ExitCode::from(1));
        }
    };
    let bound = listener
        .local_addr()
        .map_or_else(|_| address.to_string(), |a| a.to_string());
    tracing::info!(address = %bound, "admin API listening; /v1/relay/sessions, /v1/relay/pool");
    let router = crate::admin::router(relay, &state.config.admin.tokens);
    Ok(Some(tokio::spawn(crate::admin::serve(listener, router))))
}

/// With `server.metrics_listen`, binds it and serves `GET /metrics` there until aborted.
async fn spawn_metrics_listener(
    state: &AppState,
) -> Result<Option<tokio::task::JoinHandle<std::io::Result<()>>>, ExitCode> {
    let (MetricsExposure::Separate(address), Some(registry)) =
        (state.config.server.metrics, state.metrics.clone())
    else {
        return Ok(None);
    };
    match TcpListener::bind(address).await {
        Ok(listener) => {
            let bound = listener.local_addr().map_or(address, |a| a);
            tracing::info!(address = %bound, "metrics listening; GET /metrics");
            Ok(Some(tokio::spawn(metrics::serve(listener, registry))))
        }
        Err(error) => {
            tracing::error!(metrics_listen = %address, %error, "cannot bind");
            Err(ExitCode::from(1))
        }
    }
}

/// The configuration's own warnings (unknown variables, unsigned webhooks from the network,
/// `/metrics` withheld), then what the operator left insecure on purpose.
fn warn_about_insecure_settings(config: &Config) {
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if !config.twilio.validate_signatures {
        tracing::warn!(
            listen = %config.server.listen,
            "SIGNATURE VALIDATION IS OFF: anyone who can reach this listener can post webhooks. \
             Only do this for local experiments."
        );
    } else if config.twilio.dev_mode {
        tracing::warn!(
            token = DEV_AUTH_TOKEN,
            "no TWILIO_AUTH_TOKEN set: local development mode, loopback only, webhooks must be \
             signed with the development token (sms-sessions sign/send use it by default)"
        );
    }
    if config.store.url == crate::store::StoreUrl::Memory {
        tracing::warn!(
            "session.store = memory: conversations live in this process and end with it; \
             use sqlite:PATH or redis:// to keep them"
        );
    }
    if config.session.secret.is_none() {
        tracing::warn!(
            "no SMS_SESSIONS_SECRET set: using a random per-process cookie key; every conversation \
             restarts when the process does. Set a secret of 32+ bytes in production."
        );
    }
}

/// Exits 0 when `GET /healthz` answers 200 within 3 s.
pub async fn healthcheck(arg: &ConfigArg, url: Option<String>) -> ExitCode {
    let url = match url {
        Some(url) => url,
        None => match arg.load() {
            Ok(config) => format!("http://{}/healthz", loopback_for(config.server.listen)),
            Err(error) => {
                eprintln!("sms-sessions: invalid configuration: {error}");
                return ExitCode::from(2);
            }
        },
    };
    match tokio::time::timeout(
        Duration::from_secs(3),
        crate::client::http::get_status(&url),
    )
    .await
    {
        Ok(Ok(200)) => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("healthcheck: {url} answered {status}");
            ExitCode::from(1)
        }
        Ok(Err(error)) => {
            eprintln!("healthcheck: {url}: {error}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("healthcheck: {url}: no answer within 3 s");
            ExitCode::from(1)
        }
    }
}

/// A wildcard bind address is reached through loopback.
fn loopback_for(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    let mut address = listen;
    if address.ip().is_unspecified() {
        address.set_ip(if listen.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    address
}
