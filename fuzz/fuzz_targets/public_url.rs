//! Rebuilding the public URL from the request line and any forwarding headers, in all three
//! modes (configured base URL, trusted forwarded headers, plain Host).
//!
//! Checks: no panic; a rebuilt URL is `http(s)://` + an authority of host characters only
//! (no header can smuggle in `/`, `?`, `@` or whitespace) and ends with the request's path
//! and query; with a configured base it is exactly base + path and query.
#![no_main]

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use sms_sessions::config::PublicUrl;
use sms_sessions::twilio::public_url::UrlSource;

#[derive(Debug, Arbitrary)]
struct Request<'a> {
    target: &'a [u8],
    base: &'a str,
    headers: Vec<(u8, &'a [u8])>,
}

const NAMES: [&str; 7] = [
    "host",
    "forwarded",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-for",
];

fn authority_is_clean(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:[]".contains(c))
}

fuzz_target!(|request: Request<'_>| {
    let Ok(uri) = Uri::try_from(request.target) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for (name, value) in request.headers {
        let name = HeaderName::from_static(NAMES[usize::from(name) % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    let path = uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    for source in [UrlSource::new(None, true), UrlSource::new(None, false)] {
        if let Ok(url) = source.rebuild(&uri, &headers) {
            if path.starts_with('/') {
                assert!(authority_is_clean(&url), "{url:?}");
            }
            assert!(url.ends_with(&path), "{url:?}");
        }
    }
    if let Ok(base) = PublicUrl::parse(request.base) {
        let url = UrlSource::new(Some(base.clone()), false).rebuild(&uri, &headers);
        assert_eq!(url, Ok(format!("{}{path}", base.as_str())));
    }
});
