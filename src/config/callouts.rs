//! `[flows.endpoints.NAME]`, `flows.max_calls`, `[flows.results]` and `compliance.on_opt_out`:
//! the services a flow's `call` node and the hooks may reach, and nothing else.
//!
//! Every error names its key (`flows.endpoints.clinic.url`) and never quotes a secret, a
//! header's value or a URL (an operator could have put a password in one).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{HeaderName, HeaderValue, Uri};
use serde::Deserialize;

use super::{ConfigError, Env, Secret, duration, env_or_file, error};

/// `timeout` when an endpoint sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// The shortest secret accepted: an HMAC key shorter than this is guessable.
const MIN_SECRET_BYTES: usize = 16;
/// `flows.max_calls` when unset, and its bounds.
const DEFAULT_MAX_CALLS: u32 = 5;
const MAX_CALLS: std::ops::RangeInclusive<u32> = 1..=20;
/// Headers the client sets itself (or that would change how the request is framed).
const RESERVED_HEADERS: [&str; 8] = [
    "host",
    "content-type",
    "content-length",
    "user-agent",
    "idempotency-key",
    "x-sms-sessions-signature",
    "connection",
    "transfer-encoding",
];
/// The environment variables of endpoint secrets: `SMS_SESSIONS_ENDPOINT_<NAME>_SECRET` (and
/// `_SECRET_FILE`).
pub(super) const ENV_PREFIX: &str = "SMS_SESSIONS_ENDPOINT_";

/// One endpoint as the file gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoint {
    url: Option<String>,
    secret: Option<Secret>,
    secret_file: Option<String>,
    timeout: Option<String>,
    /// Values may be API keys: held as secrets.
    headers: Option<BTreeMap<String, Secret>>,
}

/// `[flows.results]` or `compliance.on_opt_out` as the file gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHookTarget {
    endpoint: Option<String>,
    path: Option<String>,
}

/// A configured service (`[flows.endpoints.NAME]`). `Debug` shows no secret or header value.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub url: EndpointUrl,
    /// Signs every request (HMAC-SHA256); at least 16 bytes.
    pub secret: Secret,
    /// The most one request may take, connect to last body byte; less than
    /// `server.request_timeout`.
    pub timeout: Duration,
    /// Sent with every request; values are marked sensitive (their `Debug` hides them).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// An endpoint's base: `http(s)://host[:port][/base/path]`, without a trailing slash, query,
/// fragment or credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    text: String,
    scheme: Scheme,
    authority: Authority,
    base_path: String,
}

/// Where a hook is posted: an endpoint's name and a path under its base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookTarget {
    pub endpoint: String,
    /// Starts with `/`; no query or fragment.
    pub path: String,
}

/// The validated call-out settings, for `FlowConfig`.
pub(super) struct Callouts {
    pub(super) max_calls: u32,
    pub(super) endpoints: BTreeMap<String, EndpointConfig>,
    pub(super) results: Option<HookTarget>,
    pub(super) on_opt_out: Option<HookTarget>,
}

impl EndpointUrl {
    /// Parses an endpoint's `url`. The error never quotes the text.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace");
        }
        if text.contains(['?', '#']) {
            return Err("must not have a query or fragment");
        }
        let uri: Uri = text
            .parse()
            .map_err(|_| "is not a URL like https://host[:port][/base/path]")?;
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::HTTPS,
            Some("http") => Scheme::HTTP,
            _ => return Err("must start with http:// or https://"),
        };
        let authority = uri.authority().ok_or("has no host")?.clone();
        if authority.as_str().contains('@') {
            return Err("must not hold a user or password (use headers or the signature)");
        }
        if authority.host().is_empty() {
            return Err("has no host");
        }
        let port = authority.as_str()[authority.host().len()..].strip_prefix(':');
        if port.is_some_and(|port| port.parse::<u16>().is_err() || port == "0") {
            return Err("has a port that is not 1 to 65535");
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            text: format!("{scheme}://{authority}{base_path}"),
            scheme,
            authority,
            base_path,
        })
    }

    /// The normalised URL (no trailing slash).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Empty, or starts with `/` and does not end with one.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// `localhost`, or a loopback IP address.
    pub fn is_loopback(&self) -> bool {
        let host = self.authority.host();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

/// `SMS_SESSIONS_ENDPOINT_<NAME>_SECRET` for endpoint `name` (`clinic-east` → `CLINIC_EAST`).
pub fn secret_env_name(name: &str) -> String {
    format!(
        "{ENV_PREFIX}{}_SECRET",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// Applies `SMS_SESSIONS_ENDPOINT_<NAME>_SECRET` (or `_SECRET_FILE`) to each endpoint declared
/// in a file; either replaces the file's `secret` and `secret_file`.
pub(super) fn apply_env(
    endpoints: &mut Option<BTreeMap<String, RawEndpoint>>,
    env: &(impl Env + ?Sized),
) -> Result<(), ConfigError> {
    for (name, endpoint) in endpoints.iter_mut().flatten() {
        if let Some(secret) = env_or_file(env, &secret_env_name(name))? {
            endpoint.secret = Some(Secret(secret));
            endpoint.secret_file = None;
        }
    }
    Ok(())
}

/// A warning for each `SMS_SESSIONS_ENDPOINT_*_SECRET(_FILE)` variable that names no declared
/// endpoint (it has no effect: only endpoints from a file take a secret from the environment).
pub(super) fn stray_env(
    endpoints: Option<&BTreeMap<String, RawEndpoint>>,
    names: &[String],
) -> Vec<String> {
    let declared: Vec<String> = endpoints
        .into_iter()
        .flat_map(BTreeMap::keys)
        .map(|name| secret_env_name(name))
        .collect();
    let mut stray: Vec<&String> = names
        .iter()
        .filter(|name| is_secret_env_name(name))
        .filter(|name| {
            let name = name.strip_suffix("_FILE").unwrap_or(name);
            !declared.iter().any(|known| known == name)
        })
        .collect();
    stray.sort();
    stray
        .into_iter()
        .map(|name| {
            format!(
                "{name} names no endpoint in [flows.endpoints]; it has no effect (an endpoint \
                 takes its secret from the environment only when a config file declares it)"
            )
        })
        .collect()
}

/// `SMS_SESSIONS_ENDPOINT_<NAME>_SECRET` or `…_SECRET_FILE`, whatever the name.
pub(super) fn is_secret_env_name(name: &str) -> bool {
    name.strip_prefix(ENV_PREFIX).is_some_and(|rest| {
        let rest = rest.strip_suffix("_FILE").unwrap_or(rest);
        rest.strip_suffix("_SECRET")
            .is_some_and(|name| !name.is_empty())
    })
}

/// Validates every endpoint and hook target. `request_timeout`: `server.request_timeout`, which
/// an endpoint's timeout must stay under; a plain-http endpoint off this machine adds a warning.
pub(super) fn validate(
    max_calls: Option<u32>,
    endpoints: Option<BTreeMap<String, RawEndpoint>>,
    results: Option<RawHookTarget>,
    on_opt_out: Option<RawHookTarget>,
    request_timeout: Duration,
    warnings: &mut Vec<String>,
) -> Result<Callouts, ConfigError> {
    let max_calls = max_calls.unwrap_or(DEFAULT_MAX_CALLS);
    if !MAX_CALLS.contains(&max_calls) {
        return Err(error("flows.max_calls", "must be between 1 and 20"));
    }
    let mut valid = BTreeMap::new();
    for (name, raw) in endpoints.unwrap_or_default() {
        let endpoint = raw.validate(&name, request_timeout)?;
        if !endpoint.url.is_https() && !endpoint.url.is_loopback() {
            warnings.push(format!(
                "flows.endpoints.{name}.url is plain http:// to {}, not a loopback address: \
                 call-outs and hooks (phone numbers, answers) cross the network unencrypted; \
                 use https://",
                endpoint.url.authority().host()
            ));
        }
        valid.insert(name, endpoint);
    }
    let target = |raw: Option<RawHookTarget>, key: &str| {
        raw.map(|raw| raw.validate(key, &valid)).transpose()
    };
    Ok(Callouts {
        max_calls,
        results: target(results, "flows.results")?,
        on_opt_out: target(on_opt_out, "compliance.on_opt_out")?,
        endpoints: valid,
    })
}

fn is_endpoint_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl RawEndpoint {
    fn validate(
        self,
        name: &str,
        request_timeout: Duration,
    ) -> Result<EndpointConfig, ConfigError> {
        if !is_endpoint_name(name) {
            return Err(error(
                format!("flows.endpoints.{name:?}"),
                "is not an endpoint name: use a-z, 0-9, _ and -",
            ));
        }
        let key = |field: &str| format!("flows.endpoints.{name}.{field}");
        let url = self
            .url
            .filter(|url| !url.is_empty())
            .ok_or_else(|| error(key("url"), "is required"))?;
        let url = EndpointUrl::parse(&url).map_err(|why| error(key("url"), why))?;
        let timeout = match self.timeout.as_deref() {
            Some(text) => duration(&key("timeout"), text)?,
            None => DEFAULT_TIMEOUT,
        };
        if timeout >= request_timeout {
            return Err(error(
                key("timeout"),
                format!(
                    "is {}; it must be less than server.request_timeout ({})",
                    humantime::format_duration(timeout),
                    humantime::format_duration(request_timeout)
                ),
            ));
        }
        Ok(EndpointConfig {
            url,
            secret: endpoint_secret(name, self.secret, self.secret_file)?,
            timeout,
            headers: headers(name, self.headers.unwrap_or_default())?,
        })
    }
}

/// `secret` or `secret_file` (exactly one), at least [`MIN_SECRET_BYTES`] long.
fn endpoint_secret(
    name: &str,
    secret: Option<Secret>,
    file: Option<String>,
) -> Result<Secret, ConfigError> {
    let key = format!("flows.endpoints.{name}.secret");
    let secret = match (secret, file) {
        (Some(_), Some(_)) => {
            return Err(error(key, "set secret or secret_file, not both"));
        }
        (Some(secret), None) => secret,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| error(format!("{key}_file"), format!("{path}: {e}")))?;
            Secret(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, None) => {
            return Err(error(
                key,
                format!(
                    "is required (or secret_file, or {}): it signs every request",
                    secret_env_name(name)
                ),
            ));
        }
    };
    let length = secret.expose().len();
    if length < MIN_SECRET_BYTES {
        return Err(error(
            key,
            format!(
                "is {length} bytes; at least {MIN_SECRET_BYTES} are required \
                 (try: openssl rand -hex 32)"
            ),
        ));
    }
    Ok(secret)
}

/// An endpoint's extra headers: valid names, not one the client sets itself, valid values.
fn headers(
    name: &str,
    raw: BTreeMap<String, Secret>,
) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
    let mut headers = Vec::with_capacity(raw.len());
    for (header, value) in raw {
        let key = format!("flows.endpoints.{name}.headers.{header:?}");
        let parsed = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| error(&key, "is not a valid header name"))?;
        if RESERVED_HEADERS.contains(&parsed.as_str()) {
            return Err(error(
                &key,
                "is set by sms-sessions itself and cannot be configured",
            ));
        }
        let mut value = HeaderValue::from_str(value.expose())
            .map_err(|_| error(&key, "has a value that is not a valid header value"))?;
        value.set_sensitive(true);
        headers.push((parsed, value));
    }
    Ok(headers)
}

impl RawHookTarget {
    fn validate(
        self,
        key: &str,
        endpoints: &BTreeMap<String, EndpointConfig>,
    ) -> Result<HookTarget, ConfigError> {
        let endpoint = self
            .endpoint
            .ok_or_else(|| error(format!("{key}.endpoint"), "is required"))?;
        if !endpoints.contains_key(&endpoint) {
            return Err(error(
                format!("{key}.endpoint"),
                format!("{endpoint:?} is not configured in [flows.endpoints]"),
            ));
        }
        let path = self
            .path
            .ok_or_else(|| error(format!("{key}.path"), "is required"))?;
        let is_path = path.starts_with('/')
            && !path.contains(['?', '#'])
            && path.parse::<PathAndQuery>().is_ok();
        if !is_path {
            return Err(error(
                format!("{key}.path"),
                "must be a path starting with / (no query or fragment)",
            ));
        }
        Ok(HookTarget { endpoint, path })
    }
}

/// The endpoints and hooks for `check-config`: `[flows.endpoints.NAME]` tables (secrets and
/// header values redacted), then `[flows.results]`; both belong after the `[flows]` keys.
pub(super) fn redacted_tables(
    endpoints: &BTreeMap<String, EndpointConfig>,
    results: Option<&HookTarget>,
) -> String {
    let mut text = String::new();
    for (name, endpoint) in endpoints {
        let headers: Vec<String> = endpoint
            .headers
            .iter()
            .map(|(header, _)| format!("{:?} = \"<redacted>\"", header.as_str()))
            .collect();
        text.push_str(&format!(
            "\n[flows.endpoints.{name}]\nurl = {:?}\nsecret = \"<redacted>\"\ntimeout = \"{}\"\n\
             headers = {{ {} }}\n",
            endpoint.url.as_str(),
            humantime::format_duration(endpoint.timeout),
            headers.join(", "),
        ));
    }
    if let Some(results) = results {
        text.push_str(&format!(
            "\n[flows.results]\nendpoint = {:?}\npath = {:?}\n",
            results.endpoint, results.path
        ));
    }
    text
}

/// `compliance.on_opt_out` for `check-config`: a line, or nothing when unset.
pub(super) fn redacted_on_opt_out(target: Option<&HookTarget>) -> String {
    target.map_or_else(String::new, |target| {
        format!(
            "on_opt_out = {{ endpoint = {:?}, path = {:?} }}\n",
            target.endpoint, target.path
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const SECRET: &str = "clinic-secret-0123456789";

    /// Loads `text` as the config file, with `env`.
    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir =
            std::env::temp_dir().join(format!("sms-sessions-callouts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("{:x}.toml", rand::random::<u64>()));
        std::fs::write(&path, text).expect("write");
        let loaded = Config::load(Some(&path), env);
        let _ = std::fs::remove_file(&path);
        loaded
    }

    fn clinic(extra: &str) -> String {
        format!(
            "[flows.endpoints.clinic]\nurl = \"http://127.0.0.1:8090/sms-hooks/\"\n\
             secret = \"{SECRET}\"\n{extra}"
        )
    }

    #[test]
    fn an_endpoint_is_parsed_with_its_defaults() {
        let config =
            load(&clinic("headers = { \"X-Api-Key\" = \"k-123\" }\n"), &[]).expect("valid");
        let flow = &config.flow;
        assert_eq!(flow.max_calls, 5);
        let endpoint = &flow.endpoints["clinic"];
        assert_eq!(endpoint.url.as_str(), "http://127.0.0.1:8090/sms-hooks");
        assert_eq!(endpoint.url.base_path(), "/sms-hooks");
        assert_eq!(endpoint.url.authority().as_str(), "127.0.0.1:8090");
        assert!(!endpoint.url.is_https() && endpoint.url.is_loopback());
        assert_eq!(endpoint.timeout, Duration::from_secs(3));
        assert_eq!(endpoint.secret.expose(), SECRET);
        assert_eq!(endpoint.headers.len(), 1);
        assert_eq!(endpoint.headers[0].0.as_str(), "x-api-key");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let shown = format!("{config:?}");
        assert!(
            !shown.contains(SECRET) && !shown.contains("k-123"),
            "{shown}"
        );
    }

    #[test]
    fn urls_keep_scheme_host_port_and_base_only() {
        for (text, normalised, base) in [
            (
                "https://clinic.example.com",
                "https://clinic.example.com",
                "",
            ),
            (
                "https://clinic.example.com/",
                "https://clinic.example.com",
                "",
            ),
            ("http://[::1]:9000/a/b/", "http://[::1]:9000/a/b", "/a/b"),
        ] {
            let url = EndpointUrl::parse(text).expect(text);
            assert_eq!((url.as_str(), url.base_path()), (normalised, base));
        }
        assert!(
            EndpointUrl::parse("http://[::1]:9000")
                .expect("v6")
                .is_loopback()
        );
        assert!(
            EndpointUrl::parse("http://LocalHost")
                .expect("name")
                .is_loopback()
        );
        for bad in [
            "ftp://clinic.example.com",
            "clinic.example.com",
            "https://user:pass@clinic.example.com",
            "https://clinic.example.com/?x=1",
            "https://clinic.example.com/#top",
            "https:///path",
            "https://clinic.example.com:0",
            "https://clinic.example.com:99999",
            "https://clinic example.com",
        ] {
            assert!(EndpointUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_endpoints_name_the_exact_key_and_never_a_secret() {
        let endpoint = |lines: &str| format!("[flows.endpoints.clinic]\n{lines}");
        let url = "url = \"http://127.0.0.1\"\n";
        let cases: [(String, &str); 14] = [
            (
                endpoint("url = \"ftp://x\"\n"),
                "flows.endpoints.clinic.url",
            ),
            (
                endpoint(&format!("secret = \"{SECRET}\"\n")),
                "flows.endpoints.clinic.url",
            ),
            (
                endpoint(&format!(
                    "url = \"https://u:{SECRET}@x\"\nsecret = \"{SECRET}\"\n"
                )),
                "flows.endpoints.clinic.url",
            ),
            (endpoint(url), "flows.endpoints.clinic.secret"),
            (
                endpoint(&format!("{url}secret = \"short-secret\"\n")),
                "flows.endpoints.clinic.secret",
            ),
            (
                clinic("secret_file = \"/etc/hostname\"\n"),
                "flows.endpoints.clinic.secret",
            ),
            (
                endpoint(&format!("{url}secret_file = \"/nonexistent\"\n")),
                "flows.endpoints.clinic.secret_file",
            ),
            (
                clinic("timeout = \"10s\"\n"),
                "flows.endpoints.clinic.timeout",
            ),
            (
                clinic("timeout = \"soon\"\n"),
                "flows.endpoints.clinic.timeout",
            ),
            (
                clinic(&format!("headers = {{ Host = \"{SECRET}\" }}\n")),
                "flows.endpoints.clinic.headers.\"Host\"",
            ),
            (
                clinic(&format!("headers = {{ \"X-Key\" = \"a\\n{SECRET}\" }}\n")),
                "flows.endpoints.clinic.headers.\"X-Key\"",
            ),
            (
                clinic("").replace("endpoints.clinic", "endpoints.Clinic"),
                "flows.endpoints.\"Clinic\"",
            ),
            (clinic("[flows]\nmax_calls = 21\n"), "flows.max_calls"),
            (clinic("[flows]\nmax_calls = 0\n"), "flows.max_calls"),
        ];
        for (text, key) in cases {
            let err = load(&text, &[]).expect_err(&text);
            assert_eq!(err.key, key, "{text}");
            let shown = err.to_string();
            assert!(
                !shown.contains(SECRET) && !shown.contains("short-secret"),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_secret_comes_from_a_file_or_the_environment() {
        let dir = std::env::temp_dir().join(format!("sms-sessions-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("clinic");
        std::fs::write(&file, format!("{SECRET}\n")).expect("write");
        let text = format!(
            "[flows.endpoints.clinic-east]\nurl = \"https://clinic.example.com\"\n\
             secret_file = {:?}\n",
            file.display().to_string()
        );
        let config = load(&text, &[]).expect("valid");
        assert_eq!(config.flow.endpoints["clinic-east"].secret.expose(), SECRET);
        let env = [(
            "SMS_SESSIONS_ENDPOINT_CLINIC_EAST_SECRET",
            "from-the-environment",
        )];
        let config = load(&text, &env).expect("valid");
        let endpoint = &config.flow.endpoints["clinic-east"];
        assert_eq!(endpoint.secret.expose(), "from-the-environment");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let path = file.display().to_string();
        let env = [(
            "SMS_SESSIONS_ENDPOINT_CLINIC_EAST_SECRET_FILE",
            path.as_str(),
        )];
        let no_secret = "[flows.endpoints.clinic-east]\nurl = \"https://clinic.example.com\"\n";
        let config = load(no_secret, &env).expect("valid");
        assert_eq!(config.flow.endpoints["clinic-east"].secret.expose(), SECRET);
    }

    #[test]
    fn a_secret_variable_for_no_declared_endpoint_is_warned_about() {
        let env = [("SMS_SESSIONS_ENDPOINT_BILLING_SECRET", SECRET)];
        let config = load(&clinic(""), &env).expect("valid");
        let [warning] = config.warnings.as_slice() else {
            panic!("one warning expected: {:?}", config.warnings);
        };
        assert!(
            warning.starts_with("SMS_SESSIONS_ENDPOINT_BILLING_SECRET names no endpoint"),
            "{warning}"
        );
        assert!(!warning.contains(SECRET));
        let no_file = Config::load(None, &env).expect("no file: still valid");
        assert_eq!(no_file.warnings.len(), 1, "{:?}", no_file.warnings);
    }

    #[test]
    fn plain_http_off_this_machine_is_warned_about_by_key() {
        let text = clinic("").replace("127.0.0.1:8090", "10.0.0.7:8090");
        let config = load(&text, &[]).expect("valid");
        let [warning] = config.warnings.as_slice() else {
            panic!("one warning expected: {:?}", config.warnings);
        };
        assert!(
            warning.starts_with("flows.endpoints.clinic.url is plain http://"),
            "{warning}"
        );
        assert!(!warning.contains(SECRET));
    }

    #[test]
    fn hooks_must_name_a_configured_endpoint_and_a_path() {
        let hooks = "[flows.results]\nendpoint = \"clinic\"\npath = \"/results\"\n\
                     [compliance]\non_opt_out = { endpoint = \"clinic\", path = \"/opt-outs\" }\n";
        let config = load(&clinic(hooks), &[]).expect("valid");
        let target = |endpoint: &str, path: &str| HookTarget {
            endpoint: endpoint.into(),
            path: path.into(),
        };
        assert_eq!(config.flow.results, Some(target("clinic", "/results")));
        assert_eq!(config.flow.on_opt_out, Some(target("clinic", "/opt-outs")));
        for (hooks, key) in [
            (
                "[flows.results]\nendpoint = \"crm\"\npath = \"/r\"\n",
                "flows.results.endpoint",
            ),
            (
                "[flows.results]\nendpoint = \"clinic\"\npath = \"r\"\n",
                "flows.results.path",
            ),
            (
                "[flows.results]\nendpoint = \"clinic\"\n",
                "flows.results.path",
            ),
            (
                "[compliance]\non_opt_out = { endpoint = \"clinic\", path = \"/o?x=1\" }\n",
                "compliance.on_opt_out.path",
            ),
            (
                "[compliance]\non_opt_out = { path = \"/o\" }\n",
                "compliance.on_opt_out.endpoint",
            ),
        ] {
            let err = load(&clinic(hooks), &[]).expect_err(hooks);
            assert_eq!(err.key, key, "{hooks}");
        }
    }

    #[test]
    fn check_config_shows_endpoints_with_secrets_redacted() {
        let hooks = "headers = { \"X-Api-Key\" = \"k-123456\" }\n[flows]\nmax_calls = 7\n\
                     [flows.results]\nendpoint = \"clinic\"\npath = \"/results\"\n\
                     [compliance]\non_opt_out = { endpoint = \"clinic\", path = \"/opt-outs\" }\n";
        let config = load(&clinic(hooks), &[]).expect("valid");
        let shown = config.redacted_toml();
        assert!(
            !shown.contains(SECRET) && !shown.contains("k-123456"),
            "{shown}"
        );
        for part in [
            "max_calls = 7\n",
            "[flows.endpoints.clinic]\nurl = \"http://127.0.0.1:8090/sms-hooks\"\n\
             secret = \"<redacted>\"\ntimeout = \"3s\"\nheaders = { \"x-api-key\" = \"<redacted>\" }\n",
            "[flows.results]\nendpoint = \"clinic\"\npath = \"/results\"\n",
            "on_opt_out = { endpoint = \"clinic\", path = \"/opt-outs\" }\n",
        ] {
            assert!(shown.contains(part), "{part:?} in\n{shown}");
        }
        let reparsed: toml::Table = shown.parse().expect("check-config prints TOML");
        assert!(reparsed["flows"]["endpoints"]["clinic"].is_table());
    }

    #[test]
    fn secret_variable_names_are_recognised() {
        assert_eq!(
            secret_env_name("clinic-east"),
            "SMS_SESSIONS_ENDPOINT_CLINIC_EAST_SECRET"
        );
        for name in [
            "SMS_SESSIONS_ENDPOINT_CLINIC_SECRET",
            "SMS_SESSIONS_ENDPOINT_CLINIC_SECRET_FILE",
        ] {
            assert!(is_secret_env_name(name), "{name}");
        }
        for name in [
            "SMS_SESSIONS_ENDPOINT_SECRET",
            "SMS_SESSIONS_ENDPOINT_CLINIC_URL",
        ] {
            assert!(!is_secret_env_name(name), "{name}");
        }
    }
}
