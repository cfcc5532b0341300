//! Typed configuration: the embedded `config/default.toml`, then `--config FILE`, then the
//! environment, validated once at start-up with errors that name the key.
//!
//! Secrets are held in [`Secret`], whose `Debug` and `Display` never show the value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::session::{SessionSecret, ShortSecret};
use crate::twilio::signature::AuthToken;

/// The embedded default configuration.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The token used when none is configured; only ever accepted on a loopback address.
pub const DEV_AUTH_TOKEN: &str = "sms-sessions-dev-token";

/// The default listen address once an auth token is set and webhooks must be signed with it.
const PUBLIC_LISTEN: &str = "0.0.0.0:8080";
/// The default listen address otherwise: local development mode (no auth token), or
/// signature validation off; anything else must be asked for with `server.listen`.
const DEV_LISTEN: &str = "127.0.0.1:8080";

/// Keys whose table value replaces the default instead of merging into it.
const REPLACED_TABLES: &[&str] = &["flow.callers"];

mod callouts;
mod env_names;
mod file;
mod relay;
mod store;

pub use callouts::{EndpointConfig, EndpointUrl, HookTarget, secret_env_name};
pub use relay::{AdminConfig, RelayConfig, is_address};

/// A configuration error, naming the key (and the environment variable when it came from one).
/// Neither part ever holds a value from the file or a secret's text.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// Empty when a file's syntax error is outside any key.
    pub key: String,
    pub message: String,
    /// `FILE:LINE:COLUMN` (or `FILE`) when the error is in `--config FILE`.
    pub location: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

fn error(key: impl Into<String>, message: impl fmt::Display) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.to_string(),
        location: None,
    }
}

/// A secret string: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The external base URL that maps to the server's `/`: `http(s)://host[:port][/prefix]`,
/// without a trailing slash, query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
            .ok_or("must start with http:// or https://")?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err("has no host".into());
        }
        if text.contains(['?', '#']) || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain a query, fragment or whitespace".into());
        }
        Ok(Self(text.trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

/// Which conversation flow answers texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    Counter,
    NamedCounter,
    /// The flow engine: conversations from the files in `flows.dir`.
    Flows,
}

impl FlowKind {
    /// The name `flow.kind` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::NamedCounter => "named-counter",
            Self::Flows => "flows",
        }
    }
}

/// Where `GET /metrics` is served (`server.metrics`, `server.metrics_listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsExposure {
    /// `server.metrics = false`: not recorded, not served.
    Off,
    /// On the main listener, next to the webhooks: the default when that is a loopback
    /// address, else only with `server.public_metrics = true`.
    Main,
    /// On a listener of its own, e.g. a private interface Prometheus can reach.
    Separate(SocketAddr),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub twilio: TwilioConfig,
    pub session: SessionConfig,
    pub flow: FlowConfig,
    /// `session.store` and `[store]`.
    pub store: crate::store::StoreConfig,
    /// `[relay]`: masked-number relays (off without `relay.numbers`).
    pub relay: RelayConfig,
    /// `server.admin_listen` and `[admin]`.
    pub admin: AdminConfig,
    pub log_format: LogFormat,
    /// Things the operator should know but that do not stop the server: unknown
    /// `SMS_SESSIONS_*` variables, unsigned webhooks from the network, `/metrics` withheld.
    /// `serve` logs them at start; `check-config` prints them on stderr.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: Option<PublicUrl>,
    pub trust_forwarded: bool,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub metrics: MetricsExposure,
    /// A connection must deliver a whole request head within this time (also the next one on
    /// a kept-alive connection), else it is closed.
    pub header_timeout: Duration,
    /// A kept-alive connection with no request in flight is closed after this long.
    pub idle_timeout: Duration,
    /// Connections held open at once; the next one waits in the kernel's backlog.
    pub max_connections: usize,
    /// Keep an incoming `X-Request-Id` (a proxy in front sets it) instead of making one.
    pub trust_request_id: bool,
    /// Serve `/metrics` on a non-loopback main listener (`server.public_metrics`).
    pub public_metrics: bool,
    /// `/metrics` was wanted on the main listener but withheld, as that is not loopback.
    metrics_withheld: bool,
}

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// Primary first. In development mode, the development token alone.
    pub auth_tokens: Vec<AuthToken>,
    pub validate_signatures: bool,
    /// No auth token was configured: [`DEV_AUTH_TOKEN`] on loopback only.
    pub dev_mode: bool,
    /// When set, an inbound webhook for another account is refused (400).
    pub account_sid: Option<String>,
    has_secondary: bool,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `None`: a random per-process secret.
    pub secret: Option<SessionSecret>,
    pub previous_secrets: Vec<SessionSecret>,
    pub ttl: Duration,
    pub cookie_name: String,
}

#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub kind: FlowKind,
    pub callers: BTreeMap<String, String>,
    /// `flows.dir`: every `*.toml` in it is one flow (`flow.kind = "flows"`).
    pub dir: std::path::PathBuf,
    /// `flows.default`: the flow an idle text that starts no other flow starts.
    pub default: Option<String>,
    /// `flows.max_steps`: nodes run for one inbound text at most (the loop guard).
    pub max_steps: u32,
    /// `flows.timezone`: for flows that name none.
    pub timezone: jiff::tz::TimeZone,
    /// `compliance.help_reply`: the answer to HELP / INFO; unset, Twilio's own answers.
    pub help_reply: Option<String>,
    /// `flows.max_calls`: call-outs one webhook may make (1 to 20).
    pub max_calls: u32,
    /// `[flows.endpoints.NAME]`: the services flows and hooks may reach, by name.
    pub endpoints: BTreeMap<String, EndpointConfig>,
    /// `[flows.results]`: where a signed JSON POST goes when a flow ends.
    pub results: Option<HookTarget>,
    /// `compliance.on_opt_out`: where a signed JSON POST goes when a texter opts out.
    pub on_opt_out: Option<HookTarget>,
}

/// The file-level shape, every key optional until validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    twilio: RawTwilio,
    #[serde(default)]
    session: RawSession,
    #[serde(default)]
    flow: RawFlow,
    #[serde(default)]
    flows: RawFlows,
    #[serde(default)]
    compliance: RawCompliance,
    #[serde(default)]
    store: store::RawStore,
    #[serde(default)]
    relay: relay::RawRelay,
    #[serde(default)]
    admin: relay::RawAdmin,
    #[serde(default)]
    log: RawLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    public_url: Option<String>,
    trust_forwarded: Option<bool>,
    body_limit: Option<u64>,
    request_timeout: Option<String>,
    metrics: Option<bool>,
    metrics_listen: Option<String>,
    admin_listen: Option<String>,
    header_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_connections: Option<u64>,
    trust_request_id: Option<bool>,
    public_metrics: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTwilio {
    auth_token: Option<Secret>,
    secondary_auth_token: Option<Secret>,
    validate_signatures: Option<bool>,
    account_sid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    secret: Option<Secret>,
    previous_secrets: Option<Vec<Secret>>,
    ttl: Option<String>,
    cookie_name: Option<String>,
    store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    kind: Option<String>,
    callers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlows {
    dir: Option<String>,
    default: Option<String>,
    max_steps: Option<u32>,
    timezone: Option<String>,
    max_calls: Option<u32>,
    endpoints: Option<BTreeMap<String, callouts::RawEndpoint>>,
    results: Option<callouts::RawHookTarget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompliance {
    help_reply: Option<String>,
    on_opt_out: Option<callouts::RawHookTarget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
}

/// Where environment variables come from (the process, or a map in tests).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable's name, to warn about unknown `SMS_SESSIONS_*` ones.
    fn names(&self) -> Vec<String>;
}

/// The process environment; empty variables count as unset.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }

    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect()
    }
}

impl Env for [(&str, &str)] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    }

    fn names(&self) -> Vec<String> {
        self.iter().map(|(key, _)| (*key).to_owned()).collect()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }

    fn names(&self) -> Vec<String> {
        self.as_slice().names()
    }
}

impl Config {
    /// Loads the embedded default, then `file`, then `env`, and validates the result.
    pub fn load(file: Option<&Path>, env: &(impl Env + ?Sized)) -> Result<Self, ConfigError> {
        let mut table: toml::Table = DEFAULT_TOML
            .parse()
            .map_err(|e| error("config/default.toml", e))?;
        if let Some(path) = file {
            merge(&mut table, file::read(path)?, "");
        }
        // The file alone was checked against `Raw`; only `message` of this error, never its
        // `Display`, which would quote the value.
        let mut raw: Raw = table
            .try_into()
            .map_err(|e: toml::de::Error| error("config", file::reason(e.message())))?;
        raw.apply_env(env)?;
        let names = env.names();
        let mut warnings = callouts::stray_env(raw.flows.endpoints.as_ref(), &names);
        warnings.extend(env_names::unknown(names));
        let mut config = raw.validate(&mut warnings)?;
        config.warnings = warnings;
        Ok(config)
    }

    /// The effective configuration as TOML, secrets redacted (for `check-config`).
    pub fn redacted_toml(&self) -> String {
        let secret = |set: bool| {
            if set {
                "\"<redacted>\""
            } else {
                "\"\" # unset"
            }
        };
        let tokens = if self.twilio.dev_mode {
            0
        } else {
            self.twilio.auth_tokens.len()
        };
        let callers: Vec<String> = self
            .flow
            .callers
            .iter()
            .map(|(k, v)| format!("{k:?} = {v:?}"))
            .collect();
        let public_url = self
            .server
            .public_url
            .as_ref()
            .map_or("", PublicUrl::as_str);
        let (metrics, metrics_listen) = match self.server.metrics {
            MetricsExposure::Off => (false, String::new()),
            MetricsExposure::Main => (true, String::new()),
            MetricsExposure::Separate(address) => (true, address.to_string()),
        };
        format!(
            "{}\n[server]\nlisten = \"{}\"\npublic_url = {public_url:?}\ntrust_forwarded = {}\nbody_limit = {}\n\
             request_timeout = \"{}\"\nmetrics = {metrics}\nmetrics_listen = {metrics_listen:?}\npublic_metrics = {}\n\
             header_timeout = \"{}\"\nidle_timeout = \"{}\"\nmax_connections = {}\ntrust_request_id = {}\n\n\
             [twilio]\nauth_token = {}\nsecondary_auth_token = {}\n\
             validate_signatures = {}\naccount_sid = {:?}\n# development mode (no auth token, loopback only): {}\n\n\
             [session]\nsecret = {}\nprevious_secrets = {} # count\nttl = \"{}\"\ncookie_name = {:?}\nstore = {:?}\n\n\
             [store]\ntimeout = \"{}\"\nretry_horizon = \"{}\"\nreplay_window = \"{}\"\nmax_state_bytes = {}\nprefix = {:?}\n\n\
             [flow]\nkind = \"{}\"\n\n[flow.callers]\n{}\n\n\
             [flows]\ndir = {:?}\ndefault = {:?}\nmax_steps = {}\ntimezone = {:?}\nmax_calls = {}\n{}\n\
             [compliance]\nhelp_reply = {:?}\n{}\n{}[log]\nformat = \"{}\"\n",
            self.exposure(),
            self.server.listen,
            self.server.trust_forwarded,
            self.server.body_limit,
            humantime::format_duration(self.server.request_timeout),
            self.server.public_metrics,
            humantime::format_duration(self.server.header_timeout),
            humantime::format_duration(self.server.idle_timeout),
            self.server.max_connections,
            self.server.trust_request_id,
            secret(tokens >= 1),
            secret(self.twilio.has_secondary),
            self.twilio.validate_signatures,
            self.twilio.account_sid.as_deref().unwrap_or(""),
            self.twilio.dev_mode,
            secret(self.session.secret.is_some()),
            self.session.previous_secrets.len(),
            humantime::format_duration(self.session.ttl),
            self.session.cookie_name,
            store::redacted_url(&self.store.url),
            humantime::format_duration(self.store.timeout),
            humantime::format_duration(self.store.retry_horizon),
            humantime::format_duration(self.store.replay_window),
            self.store.max_state_bytes,
            self.store.prefix,
            self.flow.kind.as_str(),
            callers.join("\n"),
            self.flow.dir.display().to_string(),
            self.flow.default.as_deref().unwrap_or(""),
            self.flow.max_steps,
            self.flow.timezone.iana_name().unwrap_or("UTC"),
            self.flow.max_calls,
            callouts::redacted_tables(&self.flow.endpoints, self.flow.results.as_ref()),
            self.flow.help_reply.as_deref().unwrap_or(""),
            callouts::redacted_on_opt_out(self.flow.on_opt_out.as_ref()),
            relay::redacted(&self.relay, &self.admin),
            match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            },
        )
    }
}

impl Config {
    /// Who can reach what, as TOML comment lines: the listen address, whether webhooks must be
    /// signed and with which token, and where `/metrics` is served.
    pub fn exposure(&self) -> String {
        let listen = self.server.listen;
        let reach = if listen.ip().is_loopback() {
            "this machine only (loopback)"
        } else {
            "REACHABLE FROM OTHER MACHINES (not a loopback address)"
        };
        let webhooks = match (self.twilio.validate_signatures, self.twilio.dev_mode) {
            (false, _) => "NOT checked, token: NONE (twilio.validate_signatures = false)",
            (true, true) => "must be signed, token: the development token (no auth token set)",
            (true, false) if self.twilio.has_secondary => {
                "must be signed, token: configured (auth_token or secondary_auth_token)"
            }
            (true, false) => "must be signed, token: configured (auth_token)",
        };
        let metrics = match self.server.metrics {
            MetricsExposure::Main if listen.ip().is_loopback() => {
                format!("on the main listener {listen} (loopback)")
            }
            MetricsExposure::Main => format!(
                "on the main listener {listen}, REACHABLE FROM OTHER MACHINES (public_metrics)"
            ),
            MetricsExposure::Separate(address) => format!("on its own listener {address}"),
            MetricsExposure::Off if self.server.metrics_withheld => {
                "not served (the main listener is not loopback: set metrics_listen or \
                 public_metrics)"
                    .to_owned()
            }
            MetricsExposure::Off => "not served (metrics = false)".to_owned(),
        };
        format!(
            "# Exposure\n#   listen:   {listen}, {reach}\n#   webhooks: {webhooks}\n\
             #   /metrics: {metrics}\n"
        )
    }
}

/// Deep-merges `overlay` into `base`; tables in [`REPLACED_TABLES`] are replaced whole.
fn merge(base: &mut toml::Table, overlay: toml::Table, prefix: &str) {
    for (key, value) in overlay {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value))
                if !REPLACED_TABLES.contains(&path.as_str()) =>
            {
                merge(inner, value, &path)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Reads `NAME`, or the file named by `NAME_FILE` (trailing newline trimmed).
fn env_or_file(env: &(impl Env + ?Sized), name: &str) -> Result<Option<String>, ConfigError> {
    if let Some(value) = env.var(name) {
        return Ok(Some(value));
    }
    let file_var = format!("{name}_FILE");
    let Some(path) = env.var(&file_var) else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| error(&file_var, format!("{path}: {e}")))?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(error(
            name,
            format!("expected true or false, got {value:?}"),
        )),
    }
}

impl Raw {
    fn apply_env(&mut self, env: &(impl Env + ?Sized)) -> Result<(), ConfigError> {
        if let Some(port) = env.var("PORT") {
            self.server.listen = Some(format!("0.0.0.0:{port}"));
        }
        if let Some(listen) = env.var("SMS_SESSIONS_LISTEN") {
            self.server.listen = Some(listen);
        }
        if let Some(url) = env.var("SMS_SESSIONS_PUBLIC_URL") {
            self.server.public_url = Some(url);
        }
        if let Some(value) = env.var("SMS_SESSIONS_TRUST_FORWARDED") {
            self.server.trust_forwarded = Some(parse_bool("SMS_SESSIONS_TRUST_FORWARDED", &value)?);
        }
        if let Some(value) = env.var("SMS_SESSIONS_BODY_LIMIT") {
            let limit = value
                .parse()
                .map_err(|e| error("SMS_SESSIONS_BODY_LIMIT", e))?;
            self.server.body_limit = Some(limit);
        }
        if let Some(value) = env.var("SMS_SESSIONS_REQUEST_TIMEOUT") {
            self.server.request_timeout = Some(value);
        }
        if let Some(value) = env.var("SMS_SESSIONS_METRICS") {
            self.server.metrics = Some(parse_bool("SMS_SESSIONS_METRICS", &value)?);
        }
        if let Some(listen) = env.var("SMS_SESSIONS_METRICS_LISTEN") {
            self.server.metrics_listen = Some(listen);
        }
        if let Some(listen) = env.var("SMS_SESSIONS_ADMIN_LISTEN") {
            self.server.admin_listen = Some(listen);
        }
        relay::apply_env(&mut self.relay, &mut self.admin, env)?;
        if let Some(value) = env.var("SMS_SESSIONS_MAX_CONNECTIONS") {
            let limit = value
                .parse()
                .map_err(|e| error("SMS_SESSIONS_MAX_CONNECTIONS", e))?;
            self.server.max_connections = Some(limit);
        }
        if let Some(value) = env.var("SMS_SESSIONS_TRUST_REQUEST_ID") {
            self.server.trust_request_id =
                Some(parse_bool("SMS_SESSIONS_TRUST_REQUEST_ID", &value)?);
        }
        if let Some(value) = env.var("SMS_SESSIONS_PUBLIC_METRICS") {
            self.server.public_metrics = Some(parse_bool("SMS_SESSIONS_PUBLIC_METRICS", &value)?);
        }
        if let Some(token) = env_or_file(env, "TWILIO_AUTH_TOKEN")? {
            self.twilio.auth_token = Some(Secret(token));
        }
        if let Some(token) = env_or_file(env, "TWILIO_AUTH_TOKEN_SECONDARY")? {
            self.twilio.secondary_auth_token = Some(Secret(token));
        }
        if let Some(value) = env.var("SMS_SESSIONS_VALIDATE_SIGNATURES") {
            self.twilio.validate_signatures =
                Some(parse_bool("SMS_SESSIONS_VALIDATE_SIGNATURES", &value)?);
        }
        if let Some(secret) = env_or_file(env, "SMS_SESSIONS_SECRET")? {
            self.session.secret = Some(Secret(secret));
        }
        if let Some(list) = env_or_file(env, "SMS_SESSIONS_SECRET_PREVIOUS")? {
            let secrets = list
                .split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty());
            self.session.previous_secrets = Some(secrets.map(|s| Secret(s.to_owned())).collect());
        }
        let plain = [
            (
                "SMS_SESSIONS_HEADER_TIMEOUT",
                &mut self.server.header_timeout,
            ),
            ("SMS_SESSIONS_IDLE_TIMEOUT", &mut self.server.idle_timeout),
            ("TWILIO_ACCOUNT_SID", &mut self.twilio.account_sid),
            ("SMS_SESSIONS_SESSION_TTL", &mut self.session.ttl),
            ("SMS_SESSIONS_COOKIE_NAME", &mut self.session.cookie_name),
            ("SMS_SESSIONS_FLOW", &mut self.flow.kind),
            ("SMS_SESSIONS_FLOWS_DIR", &mut self.flows.dir),
            ("SMS_SESSIONS_FLOWS_DEFAULT", &mut self.flows.default),
            ("SMS_SESSIONS_HELP_REPLY", &mut self.compliance.help_reply),
            ("SMS_SESSIONS_LOG_FORMAT", &mut self.log.format),
            ("SMS_SESSIONS_STORE", &mut self.session.store),
            ("SMS_SESSIONS_STORE_TIMEOUT", &mut self.store.timeout),
            ("SMS_SESSIONS_STORE_PREFIX", &mut self.store.prefix),
        ];
        for (name, slot) in plain {
            if let Some(value) = env.var(name) {
                *slot = Some(value);
            }
        }
        callouts::apply_env(&mut self.flows.endpoints, env)
    }

    fn validate(self, warnings: &mut Vec<String>) -> Result<Config, ConfigError> {
        let admin_listen = match self.server.admin_listen.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                error(
                    "server.admin_listen",
                    "expected an address such as 127.0.0.1:8081",
                )
            })?),
        };
        let admin = self.admin.validate(admin_listen)?;
        let relay = self.relay.validate()?;
        let twilio = self.twilio.validate()?;
        let server = self.server.validate(&twilio, warnings)?;
        let store = self
            .store
            .validate(self.session.store.as_deref(), server.request_timeout)?;
        let session = self.session.validate()?;
        let request_timeout = server.request_timeout;
        if store.url.is_durable() && session.secret.is_none() {
            return Err(error(
                "session.secret",
                format!(
                    "is required with session.store = {}: conversations are kept under keys \
                     made with it, and a random one would lose them at the next start",
                    store.url.kind()
                ),
            ));
        }
        if relay.is_on() && store.url == crate::store::StoreUrl::Cookie {
            return Err(error(
                "session.store",
                "a relay (relay.numbers) needs a server-side store (memory, sqlite:PATH or \
                 redis://…): its sessions bind numbers for every replica",
            ));
        }
        if relay.is_on() && !twilio.validate_signatures {
            return Err(error(
                "twilio.validate_signatures",
                "must stay on with a relay (relay.numbers): an unsigned request could make the \
                 server text anyone",
            ));
        }
        if admin.listen.is_some() && !relay.is_on() {
            return Err(error(
                "server.admin_listen",
                "the admin API manages relay sessions: set relay.numbers too, or unset it",
            ));
        }
        if let Some(listen) = admin.listen
            && listen == server.listen
            && listen.port() != 0
        {
            return Err(error(
                "server.admin_listen",
                "must differ from server.listen: the admin API never shares the webhooks' listener",
            ));
        }
        Ok(Config {
            server,
            twilio,
            session,
            store,
            relay,
            admin,
            flow: self
                .flow
                .validate(self.flows, self.compliance, request_timeout, warnings)?,
            log_format: match self.log.format.as_deref().unwrap_or("text") {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(error(
                        "log.format",
                        format!("expected \"text\" or \"json\", got {other:?}"),
                    ));
                }
            },
            warnings: Vec::new(),
        })
    }
}

impl RawTwilio {
    fn validate(self) -> Result<TwilioConfig, ConfigError> {
        let token =
            |key: &str, secret: &Secret| AuthToken::new(secret.expose()).map_err(|e| error(key, e));
        let mut auth_tokens = Vec::new();
        if let Some(secret) = &self.auth_token {
            auth_tokens.push(token("twilio.auth_token", secret)?);
        }
        if let Some(secret) = &self.secondary_auth_token {
            if self.auth_token.is_none() {
                return Err(error(
                    "twilio.secondary_auth_token",
                    "set twilio.auth_token first",
                ));
            }
            auth_tokens.push(token("twilio.secondary_auth_token", secret)?);
        }
        let dev_mode = auth_tokens.is_empty();
        if dev_mode {
            auth_tokens.push(AuthToken::new(DEV_AUTH_TOKEN).expect("non-empty constant"));
        }
        let account_sid = self.account_sid.filter(|sid| !sid.is_empty());
        if let Some(sid) = &account_sid
            && !crate::twilio::fields::is_sid(sid, *b"AC")
        {
            return Err(error(
                "twilio.account_sid",
                "expected AC followed by 32 hex digits",
            ));
        }
        Ok(TwilioConfig {
            auth_tokens,
            validate_signatures: self.validate_signatures.unwrap_or(true),
            dev_mode,
            account_sid,
            has_secondary: self.secondary_auth_token.is_some(),
        })
    }
}

impl RawServer {
    fn validate(
        self,
        twilio: &TwilioConfig,
        warnings: &mut Vec<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let listen = listen_address(self.listen.as_deref(), twilio, warnings)?;
        let public_url = self
            .public_url
            .filter(|url| !url.is_empty())
            .map(|url| PublicUrl::parse(&url).map_err(|e| error("server.public_url", e)))
            .transpose()?;
        let body_limit = self.body_limit.unwrap_or(65_536);
        if !(1_024..=16 * 1_048_576).contains(&body_limit) {
            return Err(error(
                "server.body_limit",
                "must be between 1024 and 16777216 bytes",
            ));
        }
        let public_metrics = self.public_metrics.unwrap_or(false);
        let wanted = metrics_exposure(self.metrics, self.metrics_listen.as_deref(), listen)?;
        let metrics_withheld =
            wanted == MetricsExposure::Main && !listen.ip().is_loopback() && !public_metrics;
        let metrics = if metrics_withheld {
            warnings.push(format!(
                "/metrics is not served: server.listen is {listen}, not a loopback address; set \
                 server.metrics_listen (SMS_SESSIONS_METRICS_LISTEN) to a private address, or \
                 server.public_metrics = true (SMS_SESSIONS_PUBLIC_METRICS) to serve it there, \
                 or server.metrics = false (SMS_SESSIONS_METRICS) to silence this"
            ));
            MetricsExposure::Off
        } else {
            wanted
        };
        let header_timeout = duration(
            "server.header_timeout",
            self.header_timeout.as_deref().unwrap_or("5s"),
        )?;
        if header_timeout > Duration::from_secs(10) {
            return Err(error("server.header_timeout", "must be 10 s or less"));
        }
        let max_connections = self.max_connections.unwrap_or(1_024);
        if !(1..=1_000_000).contains(&max_connections) {
            return Err(error(
                "server.max_connections",
                "must be between 1 and 1000000",
            ));
        }
        Ok(ServerConfig {
            listen,
            public_url,
            trust_forwarded: self.trust_forwarded.unwrap_or(false),
            body_limit: body_limit as usize,
            request_timeout: duration(
                "server.request_timeout",
                self.request_timeout.as_deref().unwrap_or("10s"),
            )?,
            metrics,
            header_timeout,
            idle_timeout: duration(
                "server.idle_timeout",
                self.idle_timeout.as_deref().unwrap_or("30s"),
            )?,
            max_connections: max_connections as usize,
            trust_request_id: self.trust_request_id.unwrap_or(false),
            public_metrics,
            metrics_withheld,
        })
    }
}

/// `server.listen`, by default public only once webhooks must be signed with a configured token.
/// Without a token only loopback is allowed; unsigned on another address is allowed when asked
/// for, with a warning.
fn listen_address(
    text: Option<&str>,
    twilio: &TwilioConfig,
    warnings: &mut Vec<String>,
) -> Result<SocketAddr, ConfigError> {
    let signed_by_a_token = !twilio.dev_mode && twilio.validate_signatures;
    let text = text.unwrap_or(if signed_by_a_token {
        PUBLIC_LISTEN
    } else {
        DEV_LISTEN
    });
    let listen: SocketAddr = text.parse().map_err(|_| {
        error(
            "server.listen",
            format!("{text:?} is not an address like 0.0.0.0:8080"),
        )
    })?;
    if listen.ip().is_loopback() {
        return Ok(listen);
    }
    if twilio.dev_mode && twilio.validate_signatures {
        return Err(error(
            "twilio.auth_token",
            format!(
                "is required to listen on {listen} (set TWILIO_AUTH_TOKEN or TWILIO_AUTH_TOKEN_FILE); \
                 without a token the server only runs in local development mode on a loopback \
                 address such as 127.0.0.1:8080"
            ),
        ));
    }
    if !twilio.validate_signatures {
        warnings.push(format!(
            "UNSIGNED WEBHOOKS ARE ACCEPTED FROM THE NETWORK: twilio.validate_signatures is \
             false and server.listen is {listen}, not a loopback address; anyone who can reach \
             it can post webhooks"
        ));
    }
    Ok(listen)
}

/// `server.metrics` (default on) and `server.metrics_listen` (default: the main listener, which
/// the caller withholds when that is not loopback).
fn metrics_exposure(
    enabled: Option<bool>,
    listen: Option<&str>,
    main: SocketAddr,
) -> Result<MetricsExposure, ConfigError> {
    if !enabled.unwrap_or(true) {
        return Ok(MetricsExposure::Off);
    }
    let Some(text) = listen.filter(|text| !text.is_empty()) else {
        return Ok(MetricsExposure::Main);
    };
    let address: SocketAddr = text.parse().map_err(|_| {
        error(
            "server.metrics_listen",
            format!("{text:?} is not an address like 127.0.0.1:9090"),
        )
    })?;
    if address == main && address.port() != 0 {
        return Err(error(
            "server.metrics_listen",
            format!("{address} is server.listen; leave it unset to serve /metrics there"),
        ));
    }
    Ok(MetricsExposure::Separate(address))
}

fn duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    let value =
        humantime::parse_duration(text).map_err(|e| error(key, format!("{text:?}: {e}")))?;
    if value.is_zero() {
        return Err(error(key, "must be greater than zero"));
    }
    Ok(value)
}

impl RawSession {
    fn validate(self) -> Result<SessionConfig, ConfigError> {
        let secret = |key: &str, s: &Secret| {
            SessionSecret::new(s.expose().as_bytes()).map_err(|ShortSecret(n)| {
                error(
                    key,
                    format!("is {n} bytes; at least 32 are required (try: openssl rand -hex 32)"),
                )
            })
        };
        let current = self
            .secret
            .as_ref()
            .map(|s| secret("session.secret", s))
            .transpose()?;
        let previous = self
            .previous_secrets
            .unwrap_or_default()
            .iter()
            .map(|s| secret("session.previous_secrets", s))
            .collect::<Result<Vec<_>, _>>()?;
        let cookie_name = self.cookie_name.unwrap_or_else(|| "sms_session".into());
        let is_token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if cookie_name.is_empty() || !cookie_name.chars().all(is_token_char) {
            return Err(error(
                "session.cookie_name",
                format!("{cookie_name:?} is not a valid cookie name"),
            ));
        }
        Ok(SessionConfig {
            secret: current,
            previous_secrets: previous,
            ttl: duration("session.ttl", self.ttl.as_deref().unwrap_or("4h"))?,
            cookie_name,
        })
    }
}

impl RawFlow {
    fn validate(
        self,
        flows: RawFlows,
        compliance: RawCompliance,
        request_timeout: Duration,
        warnings: &mut Vec<String>,
    ) -> Result<FlowConfig, ConfigError> {
        let kind = match self.kind.as_deref().unwrap_or("counter") {
            "counter" => FlowKind::Counter,
            "named-counter" => FlowKind::NamedCounter,
            "flows" => FlowKind::Flows,
            other => {
                return Err(error(
                    "flow.kind",
                    format!("expected \"counter\", \"named-counter\" or \"flows\", got {other:?}"),
                ));
            }
        };
        let max_steps = flows.max_steps.unwrap_or(50);
        if !(1..=1_000).contains(&max_steps) {
            return Err(error("flows.max_steps", "must be between 1 and 1000"));
        }
        let name = flows.timezone.unwrap_or_else(|| "UTC".into());
        let timezone = jiff::tz::TimeZone::get(&name).map_err(|_| {
            error(
                "flows.timezone",
                format!(
                    "{name:?} is not a time zone this system knows (IANA names, e.g. America/New_York)"
                ),
            )
        })?;
        let non_empty = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let callouts = callouts::validate(
            flows.max_calls,
            flows.endpoints,
            flows.results,
            compliance.on_opt_out,
            request_timeout,
            warnings,
        )?;
        Ok(FlowConfig {
            kind,
            callers: self.callers.unwrap_or_default(),
            dir: flows.dir.unwrap_or_else(|| "config/flows".into()).into(),
            default: non_empty(flows.default),
            max_steps,
            timezone,
            help_reply: non_empty(compliance.help_reply),
            max_calls: callouts.max_calls,
            endpoints: callouts.endpoints,
            results: callouts.results,
            on_opt_out: callouts.on_opt_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Pair, SessionCodec, SessionData};

    const NO_ENV: [(&str, &str); 0] = [];
    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn embedded_default_is_local_development_mode() {
        let config = Config::load(None, &NO_ENV).expect("default is valid");
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert!(config.twilio.dev_mode && config.twilio.validate_signatures);
        assert_eq!(config.session.ttl, Duration::from_secs(4 * 3600));
        assert_eq!(
            config.flow.callers.get("+14158675308").map(String::as_str),
            Some("Rey")
        );
    }

    #[test]
    fn a_token_opens_the_public_listen_address() {
        let config = Config::load(None, &[("TWILIO_AUTH_TOKEN", "t")]).expect("valid");
        assert_eq!(config.server.listen.to_string(), "0.0.0.0:8080");
        assert!(!config.twilio.dev_mode);
    }

    #[test]
    fn no_token_on_a_public_address_is_refused_naming_the_key() {
        let err =
            Config::load(None, &[("SMS_SESSIONS_LISTEN", "0.0.0.0:9000")]).expect_err("refused");
        assert_eq!(err.key, "twilio.auth_token");
        let err = Config::load(None, &[("PORT", "9000")]).expect_err("refused");
        assert_eq!(err.key, "twilio.auth_token");
    }

    #[test]
    fn env_wins_and_bad_values_name_their_key() {
        let env = [
            ("TWILIO_AUTH_TOKEN", "t"),
            ("SMS_SESSIONS_SESSION_TTL", "90s"),
            ("SMS_SESSIONS_SECRET", SECRET),
        ];
        let config = Config::load(None, &env).expect("valid");
        assert_eq!(config.session.ttl, Duration::from_secs(90));
        let cases: [(&str, &str, &str); 6] = [
            ("SMS_SESSIONS_SESSION_TTL", "soon", "session.ttl"),
            ("SMS_SESSIONS_SECRET", "short", "session.secret"),
            ("SMS_SESSIONS_FLOW", "echo", "flow.kind"),
            (
                "SMS_SESSIONS_PUBLIC_URL",
                "example.com",
                "server.public_url",
            ),
            (
                "SMS_SESSIONS_VALIDATE_SIGNATURES",
                "maybe",
                "SMS_SESSIONS_VALIDATE_SIGNATURES",
            ),
            ("SMS_SESSIONS_LOG_FORMAT", "xml", "log.format"),
        ];
        for (name, value, key) in cases {
            let err =
                Config::load(None, &[("TWILIO_AUTH_TOKEN", "t"), (name, value)]).expect_err(name);
            assert_eq!(err.key, key, "{name}");
        }
    }

    #[test]
    fn file_overrides_default_and_unknown_keys_are_errors() {
        let dir = std::env::temp_dir().join(format!("sms-sessions-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[flow]\nkind = \"named-counter\"\n[flow.callers]\n\"+1\" = \"Ann\"\n",
        )
        .expect("write");
        let config = Config::load(Some(&good), &NO_ENV).expect("valid");
        assert_eq!(config.flow.kind, FlowKind::NamedCounter);
        assert_eq!(
            config.flow.callers.len(),
            1,
            "a file's callers replace the defaults"
        );
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[server]\nlisten_on = \"x\"\n").expect("write");
        let err = Config::load(Some(&bad), &NO_ENV).expect_err("unknown key");
        assert!(err.to_string().contains("listen_on"), "{err}");
    }

    #[test]
    fn redacted_output_never_shows_secrets() {
        let env = [
            ("TWILIO_AUTH_TOKEN", "tok-123"),
            ("SMS_SESSIONS_SECRET", SECRET),
        ];
        let config = Config::load(None, &env).expect("valid");
        let shown = format!("{}{config:?}", config.redacted_toml());
        assert!(
            !shown.contains("tok-123") && !shown.contains(SECRET),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn metrics_are_on_a_loopback_main_listener_unless_moved_or_off() {
        let load = |extra: &[(&str, &str)]| {
            let mut env = extra.to_vec();
            env.push(("TWILIO_AUTH_TOKEN", "t"));
            Config::load(None, env.as_slice())
        };
        let metrics = |extra| load(extra).expect("valid").server.metrics;
        assert_eq!(
            metrics(&[("SMS_SESSIONS_LISTEN", "127.0.0.1:8080")]),
            MetricsExposure::Main
        );
        let moved = [("SMS_SESSIONS_METRICS_LISTEN", "127.0.0.1:9090")];
        let address = "127.0.0.1:9090".parse().expect("address");
        assert_eq!(metrics(&moved), MetricsExposure::Separate(address));
        let off = [("SMS_SESSIONS_METRICS", "false"), moved[0]];
        assert_eq!(metrics(&off), MetricsExposure::Off);
        let shown = load(&moved).expect("valid").redacted_toml();
        assert!(shown.contains("metrics = true\nmetrics_listen = \"127.0.0.1:9090\""));
        let bad = load(&[("SMS_SESSIONS_METRICS_LISTEN", "9090")]).expect_err("not an address");
        assert_eq!(bad.key, "server.metrics_listen");
        let same = [
            ("SMS_SESSIONS_LISTEN", "0.0.0.0:8080"),
            ("SMS_SESSIONS_METRICS_LISTEN", "0.0.0.0:8080"),
        ];
        assert_eq!(load(&same).expect_err("clash").key, "server.metrics_listen");
    }

    #[test]
    fn metrics_on_a_public_main_listener_only_when_asked_for() {
        let load = |extra: &[(&str, &str)]| {
            let mut env = extra.to_vec();
            env.push(("TWILIO_AUTH_TOKEN", "t"));
            Config::load(None, env.as_slice()).expect("valid")
        };
        let public = load(&[]);
        assert_eq!(public.server.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(public.server.metrics, MetricsExposure::Off);
        let [warning] = public.warnings.as_slice() else {
            panic!("one warning expected: {:?}", public.warnings);
        };
        assert!(warning.starts_with("/metrics is not served"), "{warning}");
        for key in ["server.metrics_listen", "server.public_metrics"] {
            assert!(warning.contains(key), "{warning}");
        }
        assert!(
            public
                .exposure()
                .contains("#   /metrics: not served (the main listener")
        );
        let asked = load(&[("SMS_SESSIONS_PUBLIC_METRICS", "true")]);
        assert_eq!(asked.server.metrics, MetricsExposure::Main);
        assert!(asked.warnings.is_empty(), "{:?}", asked.warnings);
        let v6 = load(&[("SMS_SESSIONS_LISTEN", "[::]:8080")]);
        assert_eq!(v6.server.metrics, MetricsExposure::Off);
        let off = load(&[("SMS_SESSIONS_METRICS", "false")]);
        assert!(off.warnings.is_empty(), "{:?}", off.warnings);
        assert!(
            off.exposure()
                .contains("#   /metrics: not served (metrics = false)")
        );
    }

    #[test]
    fn validation_off_keeps_the_default_listen_on_loopback() {
        let off = ("SMS_SESSIONS_VALIDATE_SIGNATURES", "false");
        for env in [vec![off], vec![off, ("TWILIO_AUTH_TOKEN", "t")]] {
            let config = Config::load(None, env.as_slice()).expect("valid");
            assert_eq!(
                config.server.listen.to_string(),
                "127.0.0.1:8080",
                "{env:?}"
            );
            assert!(config.warnings.is_empty(), "{:?}", config.warnings);
            let exposure = config.exposure();
            assert!(
                exposure.contains("#   listen:   127.0.0.1:8080, this machine only (loopback)"),
                "{exposure}"
            );
            assert!(
                exposure.contains("#   webhooks: NOT checked, token: NONE"),
                "{exposure}"
            );
        }
    }

    #[test]
    fn unsigned_on_the_network_needs_an_explicit_address_and_says_so() {
        for explicit in [("SMS_SESSIONS_LISTEN", "0.0.0.0:8080"), ("PORT", "8080")] {
            let env = [explicit, ("SMS_SESSIONS_VALIDATE_SIGNATURES", "false")];
            let config = Config::load(None, &env).expect("allowed when asked for");
            assert_eq!(config.server.listen.to_string(), "0.0.0.0:8080");
            assert!(
                config.warnings[0].starts_with("UNSIGNED WEBHOOKS ARE ACCEPTED FROM THE NETWORK"),
                "{:?}",
                config.warnings
            );
            let shown = config.redacted_toml();
            assert!(shown.starts_with(
                "# Exposure\n#   listen:   0.0.0.0:8080, REACHABLE FROM OTHER MACHINES"
            ));
            assert!(
                shown.contains("\n#   webhooks: NOT checked, token: NONE"),
                "{shown}"
            );
        }
    }

    #[test]
    fn exposure_names_the_token_kind_and_metrics_address() {
        let dev = Config::load(None, &NO_ENV).expect("valid").exposure();
        assert!(dev.contains("webhooks: must be signed, token: the development token"));
        assert!(dev.contains("/metrics: on the main listener 127.0.0.1:8080 (loopback)"));
        let env = [
            ("TWILIO_AUTH_TOKEN", "t"),
            ("SMS_SESSIONS_METRICS_LISTEN", "10.0.0.5:9090"),
        ];
        let configured = Config::load(None, &env).expect("valid").exposure();
        assert!(configured.contains("webhooks: must be signed, token: configured (auth_token)"));
        assert!(configured.contains("/metrics: on its own listener 10.0.0.5:9090"));
    }

    #[test]
    fn previous_secrets_file_holds_comma_or_newline_separated_secrets() {
        let dir = std::env::temp_dir().join(format!("sms-sessions-prev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("previous");
        let (a, b, c) = (
            SECRET.replace('0', "a"),
            SECRET.replace('1', "b"),
            SECRET.replace('2', "c"),
        );
        std::fs::write(&path, format!("{a}\n{b}, {c}\n")).expect("write");
        let path = path.display().to_string();
        let env = [("SMS_SESSIONS_SECRET_PREVIOUS_FILE", path.as_str())];
        let config = Config::load(None, &env).expect("valid");
        let previous = &config.session.previous_secrets;
        assert_eq!(previous.len(), 3);
        let ttl = Duration::from_secs(60);
        let reader = SessionCodec::new("s", ttl, &SessionSecret::random(), previous);
        let pair = Pair {
            to: "+1",
            from: "+2",
        };
        for old in [a, b, c] {
            let old = SessionSecret::new(old.as_bytes()).expect("long enough");
            let cookie = SessionCodec::new("s", ttl, &old, &[])
                .encode(&SessionData::default(), pair, 1)
                .expect("small");
            assert!(
                reader.decode(&cookie, pair, 2).is_ok(),
                "read with a previous secret"
            );
        }
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let short = dir.join("short");
        std::fs::write(&short, "short\n").expect("write");
        let short = short.display().to_string();
        let env = [("SMS_SESSIONS_SECRET_PREVIOUS_FILE", short.as_str())];
        let err = Config::load(None, &env).expect_err("too short");
        assert_eq!(err.key, "session.previous_secrets");
        assert!(!err.to_string().contains("short\n") && !err.to_string().contains("\"short"));
        let missing = dir.join("missing").display().to_string();
        let env = [("SMS_SESSIONS_SECRET_PREVIOUS_FILE", missing.as_str())];
        let err = Config::load(None, &env).expect_err("unreadable");
        assert_eq!(err.key, "SMS_SESSIONS_SECRET_PREVIOUS_FILE");
    }

    #[test]
    fn unknown_variables_are_warned_about_by_name_only() {
        let env = [
            ("TWILIO_AUTH_TOKEN", "t"),
            ("SMS_SESSIONS_LISTEN", "127.0.0.1:8080"),
            ("SMS_SESSIONS_SECRET_PREVIUOS", SECRET),
            ("SMS_SESSIONS_WORKERS", "2"),
        ];
        let config = Config::load(None, &env).expect("still valid");
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        let warning = &config.warnings[0];
        assert!(
            warning.starts_with("SMS_SESSIONS_SECRET_PREVIUOS "),
            "{warning}"
        );
        assert!(
            warning.contains("did you mean SMS_SESSIONS_SECRET_PREVIOUS?"),
            "{warning}"
        );
        assert_no_part_of(SECRET, warning);
    }

    /// No 4-character piece of `secret` appears in `shown`.
    #[track_caller]
    fn assert_no_part_of(secret: &str, shown: &str) {
        for piece in secret.as_bytes().windows(4) {
            let piece = std::str::from_utf8(piece).expect("ASCII secret");
            assert!(
                !shown.contains(piece),
                "{piece:?} of the secret in {shown:?}"
            );
        }
    }

    #[test]
    fn file_errors_name_file_key_line_and_column_but_never_a_value() {
        const TOKEN: &str = "f00dfacecafebabe8badf00d1337c0de";
        let cases: [(&str, &str, &str); 6] = [
            (
                "[twilio]\nauth_token = \"f00dfacecafebabe8badf00d1337c0de\n[session]\nttl = \"4h\"\n",
                "twilio.auth_token",
                ":2:",
            ),
            (
                "[twilio]\nauth_token = \"f00dfacecafebabe8badf00d1337c0de\" junk\n",
                "twilio.auth_token",
                ":2:",
            ),
            (
                "[twilio]\nvalidate_signatures = \"f00dfacecafebabe8badf00d1337c0de\"\n",
                "twilio.validate_signatures",
                ":2:23",
            ),
            (
                "[session]\nsecret = [\"f00dfacecafebabe8badf00d1337c0de\"]\n",
                "session.secret",
                ":2:10",
            ),
            (
                "[session]\nprevious_secrets = [\n  \"x\",\n  { s = \"f00dfacecafebabe8badf00d1337c0de\" },\n]\n",
                "session.previous_secrets",
                ":4:3",
            ),
            ("[twilio]\nf00dfacecafebabe8badf00d1337c0de\n", "", ":2:"),
        ];
        let dir = std::env::temp_dir().join(format!("sms-sessions-errors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (i, (text, key, at)) in cases.iter().enumerate() {
            let path = dir.join(format!("case{i}.toml"));
            std::fs::write(&path, text).expect("write");
            let err = Config::load(Some(&path), &NO_ENV).expect_err(text);
            assert_eq!(err.key, *key, "{text}");
            let location = err.location.clone().unwrap_or_default();
            assert!(location.starts_with(&path.display().to_string()), "{err}");
            assert!(location.contains(at), "{at} in {err}");
            assert_no_part_of(TOKEN, &err.to_string());
        }
        let path = dir.join("number.toml");
        std::fs::write(
            &path,
            "[twilio]\nauth_token = 31415926535897932384626433832795028841971\n",
        )
        .expect("write");
        let err = Config::load(Some(&path), &NO_ENV).expect_err("a number");
        assert_eq!(err.key, "twilio.auth_token");
        assert_no_part_of(
            "31415926535897932384626433832795028841971",
            &err.to_string(),
        );
    }

    #[test]
    fn reasons_keep_the_syntax_expected_and_drop_every_value() {
        assert_eq!(
            file::reason("invalid type: integer `123456`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            file::reason("invalid type: string \"se\\\"cret\", expected a boolean"),
            "invalid type: string, expected a boolean"
        );
        assert_eq!(
            file::reason("invalid basic string, expected `\"`"),
            "invalid basic string, expected `\"`"
        );
        assert_eq!(
            file::reason("unknown field `s3cr3t`, expected one of `a`"),
            "unknown key"
        );
        assert_eq!(file::reason("invalid value: `abc"), "invalid value:");
    }

    #[test]
    fn flows_from_files_have_their_keys_checked_and_shown() {
        let env = [
            ("SMS_SESSIONS_FLOW", "flows"),
            ("SMS_SESSIONS_FLOWS_DIR", "/srv/flows"),
            ("SMS_SESSIONS_FLOWS_DEFAULT", "menu"),
            ("SMS_SESSIONS_HELP_REPLY", "Call us"),
        ];
        let config = Config::load(None, &env).expect("valid");
        assert_eq!(config.flow.kind, FlowKind::Flows);
        assert_eq!(config.flow.dir, std::path::Path::new("/srv/flows"));
        assert_eq!(config.flow.default.as_deref(), Some("menu"));
        assert_eq!(config.flow.help_reply.as_deref(), Some("Call us"));
        assert_eq!(
            (config.flow.max_steps, config.flow.timezone.iana_name()),
            (50, Some("UTC"))
        );
        let shown = config.redacted_toml();
        assert!(
            shown.contains("[flows]\ndir = \"/srv/flows\"\ndefault = \"menu\""),
            "{shown}"
        );
        assert!(
            shown.contains("[compliance]\nhelp_reply = \"Call us\""),
            "{shown}"
        );
        let dir = std::env::temp_dir().join(format!("sms-sessions-flows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let bad = dir.join("bad.toml");
        for (text, key) in [
            ("[flows]\ntimezone = \"Mars/Olympus\"\n", "flows.timezone"),
            ("[flows]\nmax_steps = 0\n", "flows.max_steps"),
        ] {
            std::fs::write(&bad, text).expect("write");
            let err = Config::load(Some(&bad), &NO_ENV).expect_err(key);
            assert_eq!(err.key, key);
        }
    }

    #[test]
    fn public_url_is_normalised() {
        let url = PublicUrl::parse("https://example.com/twilio/").expect("valid");
        assert_eq!(url.as_str(), "https://example.com/twilio");
        assert!(url.is_https());
        assert!(PublicUrl::parse("https://example.com/?x=1").is_err());
    }
}
