//! Rebuilding the URL Twilio requested (and signed) from what reached the server.
//!
//! Behind a reverse proxy the server sees `http://127.0.0.1:8080/sms` while Twilio signed
//! `https://sms.example.com/sms`. In order of preference the public URL is:
//!
//! 1. `server.public_url` + request path + `?query` exactly as received;
//! 2. with `server.trust_forwarded`, the scheme and host from `Forwarded` (RFC 7239) or
//!    `X-Forwarded-Proto` / `-Host` / `-Port` / `-Prefix`, first value of each (the hop
//!    nearest the client, which is what Twilio connected to);
//! 3. otherwise `http://` + `Host`.

use axum::http::{HeaderMap, Uri, header};

use crate::config::PublicUrl;

/// How to rebuild the URL; built once from the configuration.
#[derive(Debug, Clone)]
pub enum UrlSource {
    Configured(PublicUrl),
    Forwarded,
    Host,
}

/// The URL cannot be rebuilt from this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("missing Host header")]
    MissingHost,
    #[error("invalid Host or forwarded host")]
    BadHost,
    #[error("invalid forwarded protocol")]
    BadProto,
}

impl UrlSource {
    pub fn new(public_url: Option<PublicUrl>, trust_forwarded: bool) -> Self {
        match (public_url, trust_forwarded) {
            (Some(url), _) => Self::Configured(url),
            (None, true) => Self::Forwarded,
            (None, false) => Self::Host,
        }
    }

    /// The full URL of this request as the client addressed it.
    pub fn rebuild(&self, uri: &Uri, headers: &HeaderMap) -> Result<String, UrlError> {
        let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
        match self {
            Self::Configured(base) => Ok(format!("{}{path}", base.as_str())),
            Self::Host => Ok(format!("http://{}{path}", host_header(headers)?)),
            Self::Forwarded => forwarded(headers, path),
        }
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

/// The first comma-separated value of a header, trimmed.
fn first_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let value = header_str(headers, name)?.split(',').next()?.trim();
    (!value.is_empty()).then_some(value)
}

fn host_header(headers: &HeaderMap) -> Result<&str, UrlError> {
    let host = header_str(headers, header::HOST.as_str()).ok_or(UrlError::MissingHost)?;
    valid_host(host)
}

/// A host[:port] must not be able to change the URL's structure.
fn valid_host(host: &str) -> Result<&str, UrlError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:[]".contains(c);
    if host.is_empty() || host.len() > 255 || !host.chars().all(allowed) {
        return Err(UrlError::BadHost);
    }
    Ok(host)
}

fn forwarded(headers: &HeaderMap, path: &str) -> Result<String, UrlError> {
    let (mut proto, mut host) = (None, None);
    if let Some(element) = first_value(headers, "forwarded") {
        for pair in element.split(';') {
            if let Some((key, value)) = pair.trim().split_once('=') {
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "proto" => proto = Some(value),
                    "host" => host = Some(value),
                    _ => {}
                }
            }
        }
    }
    let proto = proto
        .or_else(|| first_value(headers, "x-forwarded-proto"))
        .unwrap_or("http");
    let scheme = match proto.to_ascii_lowercase().as_str() {
        "https" | "wss" => "https",
        "http" | "ws" => "http",
        _ => return Err(UrlError::BadProto),
    };
    let host = match host.or_else(|| first_value(headers, "x-forwarded-host")) {
        Some(host) => valid_host(host)?,
        None => host_header(headers)?,
    };
    let port = first_value(headers, "x-forwarded-port")
        // Digits only: `u16::from_str` also takes "+443", which must not reach the URL.
        .filter(|port| port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok())
        .filter(|_| !has_port(host))
        .filter(|port| !matches!((scheme, *port), ("https", "443") | ("http", "80")))
        .map_or(String::new(), |port| format!(":{port}"));
    let prefix = first_value(headers, "x-forwarded-prefix").map_or("", |p| p.trim_end_matches('/'));
    if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.contains(['?', '#', ' '])) {
        return Err(UrlError::BadHost);
    }
    Ok(format!("{scheme}://{host}{port}{prefix}{path}"))
}

fn has_port(host: &str) -> bool {
    let after_bracket = host.rfind(']').map_or(host, |i| &host[i..]);
    after_bracket.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("valid header"));
        }
        map
    }

    fn rebuild(
        source: &UrlSource,
        uri: &str,
        pairs: &[(&'static str, &'static str)],
    ) -> Result<String, UrlError> {
        source.rebuild(&uri.parse().expect("valid uri"), &headers(pairs))
    }

    #[test]
    fn configured_url_keeps_prefix_and_query_verbatim() {
        let base = PublicUrl::parse("https://example.com/twilio").expect("valid");
        let source = UrlSource::new(Some(base), true);
        let url = rebuild(&source, "/sms?b=2&a=%2B1", &[("host", "internal:8080")]);
        assert_eq!(
            url.as_deref(),
            Ok("https://example.com/twilio/sms?b=2&a=%2B1")
        );
    }

    #[test]
    fn host_header_without_trust() {
        let source = UrlSource::new(None, false);
        let pairs = [("host", "localhost:8080"), ("x-forwarded-proto", "https")];
        assert_eq!(
            rebuild(&source, "/sms", &pairs).as_deref(),
            Ok("http://localhost:8080/sms")
        );
        assert_eq!(rebuild(&source, "/sms", &[]), Err(UrlError::MissingHost));
        assert_eq!(
            rebuild(&source, "/sms", &[("host", "evil.com/x?")]),
            Err(UrlError::BadHost)
        );
    }

    #[test]
    fn forwarded_headers_when_trusted() {
        let source = UrlSource::new(None, true);
        let rfc = [
            ("host", "internal"),
            (
                "forwarded",
                "for=1.2.3.4;proto=https;host=\"sms.example.com\", for=5.6.7.8",
            ),
        ];
        assert_eq!(
            rebuild(&source, "/sms", &rfc).as_deref(),
            Ok("https://sms.example.com/sms")
        );
        let x = [
            ("host", "internal"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "example.com"),
            ("x-forwarded-port", "8443"),
            ("x-forwarded-prefix", "/twilio/"),
        ];
        assert_eq!(
            rebuild(&source, "/sms?x=1", &x).as_deref(),
            Ok("https://example.com:8443/twilio/sms?x=1")
        );
        let default_port = [
            ("host", "h"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "443"),
        ];
        assert_eq!(
            rebuild(&source, "/sms", &default_port).as_deref(),
            Ok("https://h/sms")
        );
        assert_eq!(
            rebuild(
                &source,
                "/sms",
                &[("host", "h"), ("x-forwarded-proto", "gopher")]
            ),
            Err(UrlError::BadProto)
        );
    }
}
