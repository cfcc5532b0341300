//! Playing Twilio's part for one inbound text: build the parameters, sign them, attach the
//! pair's cookies, post, keep the cookies the server sets, and read its answer.
//!
//! The signature is made over `signed_url` (the public URL Twilio would call) while the
//! request goes to `url`, which is how a server behind a proxy or tunnel is exercised.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap};
use hyper::{Request, Uri};

use super::http::{self, Reply as HttpReply};
use super::jar::Jar;
use super::params::{self, Text};
use super::reply::{self, Reply, TwimlError};
use crate::session::Pair;
use crate::twilio::signature::AuthToken;

/// Twilio gives up on a webhook after 15 seconds.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Where and how to deliver texts.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Where the request is sent (`http://` only).
    pub url: String,
    /// The URL the signature is made over.
    pub signed_url: String,
    pub token: AuthToken,
    pub account_sid: String,
}

/// What came back for one text.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub message_sid: String,
    /// The answer's body, as sent (for `--raw`).
    pub body: String,
    pub replies: Vec<Reply>,
    /// `Set-Cookie` headers that could not be stored.
    pub warnings: Vec<String>,
}

/// Why a text got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("{url} is not a URL to post to: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot connect to {url}: connection refused (is the server running?)")]
    Refused { url: String },
    #[error("no answer from {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("no answer from {url} within {} s (Twilio gives up then)", TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("the server answered {status}{reason}")]
    Status { status: String, reason: String },
    #[error("the server answered 200 with a reply Twilio cannot use: {0}")]
    BadTwiml(#[from] TwimlError),
    #[error("the server answered 200 with Content-Type {0:?}, which Twilio does not read")]
    ContentType(String),
}

impl Webhook {
    /// Posts `text` with the pair's live cookies and stores the cookies the server sets.
    pub async fn deliver(
        &self,
        text: &Text<'_>,
        jar: &mut Jar,
        now: u64,
    ) -> Result<Delivered, DeliverError> {
        let pair = Pair {
            to: text.to,
            from: text.from,
        };
        let message_sid = params::new_message_sid(!text.media.is_empty());
        let form = params::for_text(text, &message_sid, &self.account_sid);
        let request = self.request(&form, jar.cookie_header(pair, now))?;
        let answer = self.post(request).await?;
        if answer.status != 200 {
            return Err(status_error(&answer));
        }
        let warnings = store_cookies(jar, pair, &answer.headers, now);
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        let replies = read_replies(&answer.headers, &body)?;
        Ok(Delivered {
            message_sid,
            body,
            replies,
            warnings,
        })
    }

    fn request(
        &self,
        form: &[(String, String)],
        cookie: Option<String>,
    ) -> Result<Request<Full<Bytes>>, DeliverError> {
        let uri = self.uri()?;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::USER_AGENT, "TwilioProxy/1.1")
            .header(
                "X-Twilio-Signature",
                self.token.sign(&self.signed_url, form),
            );
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| self.bad_url(error.to_string()))
    }

    fn uri(&self) -> Result<Uri, DeliverError> {
        let uri: Uri = self
            .url
            .parse()
            .map_err(|error: hyper::http::uri::InvalidUri| self.bad_url(error.to_string()))?;
        match uri.scheme_str() {
            Some("http") if uri.host().is_some() => Ok(uri),
            Some("https") => Err(self.bad_url(
                "this client speaks plain http; post to the server's http:// address and pass \
                 the https:// one as --public-url"
                    .into(),
            )),
            _ => Err(self.bad_url("expected http://HOST[:PORT]/PATH".into())),
        }
    }

    async fn post(&self, request: Request<Full<Bytes>>) -> Result<HttpReply, DeliverError> {
        let url = self.url.clone();
        match tokio::time::timeout(TIMEOUT, http::send(request)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) if http::is_connection_refused(&error) => {
                Err(DeliverError::Refused { url })
            }
            Ok(Err(error)) => Err(DeliverError::Transport {
                url,
                reason: http::describe(&error),
            }),
            Err(_) => Err(DeliverError::Timeout { url }),
        }
    }

    fn bad_url(&self, reason: String) -> DeliverError {
        DeliverError::BadUrl {
            url: self.url.clone(),
            reason,
        }
    }
}

/// The status with its canonical phrase, and the first line of the body as the reason.
fn status_error(answer: &HttpReply) -> DeliverError {
    let phrase = hyper::StatusCode::from_u16(answer.status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("");
    let body = String::from_utf8_lossy(&answer.body);
    let line = body.lines().map(str::trim).find(|line| !line.is_empty());
    let reason = match line {
        Some(line) => format!(": {}", truncate(line, 200)),
        None => String::new(),
    };
    DeliverError::Status {
        status: format!("{} {phrase}", answer.status).trim_end().to_owned(),
        reason,
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn store_cookies(jar: &mut Jar, pair: Pair<'_>, headers: &HeaderMap, now: u64) -> Vec<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| match value.to_str() {
            Ok(text) => jar.store(pair, text, now).err().map(|e| e.to_string()),
            Err(_) => Some("ignoring a Set-Cookie header that is not visible ASCII".into()),
        })
        .collect()
}

/// TwiML for XML and HTML types (as Twilio reads them), one message for `text/plain`.
fn read_replies(headers: &HeaderMap, body: &str) -> Result<Vec<Reply>, DeliverError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/xml" | "application/xml" | "text/html" => Ok(reply::parse_twiml(body)?),
        "text/plain" => Ok(reply::parse_plain(body)),
        "" if body.trim().is_empty() => Ok(Vec::new()),
        _ => Err(DeliverError::ContentType(content_type.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> HttpReply {
        HttpReply {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn a_refusal_names_the_status_and_the_servers_reason() {
        let error = status_error(&answer(
            403,
            "\ninvalid signature: signature does not match\n",
        ));
        assert_eq!(
            error.to_string(),
            "the server answered 403 Forbidden: invalid signature: signature does not match"
        );
        assert_eq!(
            status_error(&answer(599, "")).to_string(),
            "the server answered 599"
        );
    }

    #[test]
    fn https_urls_point_to_public_url() {
        let webhook = Webhook {
            url: "https://example.com/sms".into(),
            signed_url: "https://example.com/sms".into(),
            token: AuthToken::new("t").expect("non-empty"),
            account_sid: params::PLACEHOLDER_ACCOUNT_SID.into(),
        };
        let error = webhook.uri().expect_err("https refused");
        assert!(error.to_string().contains("--public-url"), "{error}");
    }

    #[test]
    fn content_types_are_read_as_twilio_reads_them() {
        let mut headers = HeaderMap::new();
        let twiml = "<Response><Message>hi</Message></Response>";
        headers.insert(
            header::CONTENT_TYPE,
            "Text/XML; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(read_replies(&headers, twiml).expect("xml").len(), 1);
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(read_replies(&headers, "hi").expect("plain").len(), 1);
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(read_replies(&headers, "{}").is_err());
        assert!(
            read_replies(&HeaderMap::new(), "")
                .expect("empty")
                .is_empty()
        );
    }
}
