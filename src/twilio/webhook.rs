//! The webhook gate: buffers and decodes the parameters once, then checks
//! `X-Twilio-Signature` against the rebuilt public URL before any handler runs.
//!
//! The gate is the [`Webhook`] extractor: a handler that takes it gets the decoded pairs
//! (parsed exactly once, in arrival order, with repeated keys kept) of a verified request,
//! and a refused request never reaches the handler.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;

use super::fields::{self, FieldError, Kind};
use super::form::FormPairs;
use super::public_url::{UrlError, UrlSource};
use super::signature::{self, AuthToken, Invalid, Payload};
use crate::deadline::within;

/// The header Twilio signs requests with.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// What the gate needs, built once at start-up.
#[derive(Debug, Clone)]
pub struct WebhookGate {
    pub tokens: Arc<[AuthToken]>,
    /// `false` only when the operator turned validation off.
    pub validate: bool,
    pub url_source: UrlSource,
    pub body_limit: usize,
    /// The client must deliver the whole body within this time (408 otherwise).
    pub body_timeout: Duration,
    /// `twilio.account_sid`: webhooks for any other account are refused.
    pub account_sid: Option<Box<str>>,
}

/// A webhook that passed the gate: its parameters (the body of a POST, the query of a GET),
/// decoded once, in arrival order with repeated keys kept, and its headers.
///
/// Taking it as a handler's last argument is what puts the gate in front of the handler: the
/// request is refused, with [`Rejection`]'s status and reason, before the handler runs.
#[derive(Debug)]
pub struct Webhook {
    pub params: FormPairs,
    pub headers: HeaderMap,
    /// The public URL is https: cookies get the `Secure` flag.
    pub secure: bool,
}

/// Why the gate refused a request; each maps to one status and a one-line reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing X-Twilio-Signature header")]
    MissingSignature,
    #[error("invalid signature: {0}")]
    BadSignature(Invalid),
    #[error("cannot rebuild the request URL: {0}")]
    Url(UrlError),
    #[error("expected Content-Type application/x-www-form-urlencoded")]
    NotForm,
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("could not read the request body")]
    BodyRead,
    #[error("request body not received within {} s", .0.as_secs_f32())]
    BodyTimeout(Duration),
    #[error("{0}")]
    Field(FieldError),
}

impl Rejection {
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingSignature | Self::BadSignature(_) => StatusCode::FORBIDDEN,
            Self::Url(_) | Self::BodyRead | Self::Field(_) => StatusCode::BAD_REQUEST,
            Self::NotForm => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// A short, stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::BadSignature(Invalid::Malformed) => "malformed_signature",
            Self::BadSignature(Invalid::Mismatch) => "signature_mismatch",
            Self::BadSignature(_) => "body_hash",
            Self::Url(_) => "bad_url",
            Self::NotForm => "not_form",
            Self::TooLarge(_) => "too_large",
            Self::BodyRead => "body_read",
            Self::BodyTimeout(_) => "body_timeout",
            Self::Field(_) => "bad_field",
        }
    }
}

/// A rejection as the client sees it: the status and a one-line `text/plain` reason.
/// The reason also travels in the response extensions for the request log.
impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = (self.status(), plain(format!("{self}\n"))).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// A `text/plain` body.
pub fn plain(text: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text)
}

/// A router state that holds the gate, for the [`Webhook`] extractor.
pub trait HasGate {
    fn gate(&self) -> &WebhookGate;
}

impl<S: HasGate + Send + Sync> FromRequest<S> for Webhook {
    type Rejection = Rejection;

    /// The gate: nothing of a webhook reaches its handler before it passes.
    async fn from_request(request: Request, state: &S) -> Result<Self, Rejection> {
        state.gate().check(request).await
    }
}

impl WebhookGate {
    /// Holds a verified webhook's parameters to the shapes Twilio gives them (see
    /// [`fields`](super::fields)): what makes a re-split of a signed webhook a 400.
    pub fn check_fields(&self, webhook: &Webhook, kind: Kind) -> Result<(), Rejection> {
        fields::check(webhook.params.iter(), kind, self.account_sid.as_deref())
            .map_err(Rejection::Field)
    }

    async fn check(&self, request: Request) -> Result<Webhook, Rejection> {
        let (parts, body) = request.into_parts();
        let post = parts.method == Method::POST;
        let params = if post {
            if !is_form(&parts.headers) {
                return Err(Rejection::NotForm);
            }
            FormPairs::parse(&self.read_body(&parts.headers, body).await?)
        } else {
            FormPairs::parse(parts.uri.query().unwrap_or("").as_bytes())
        };
        let url = self
            .url_source
            .rebuild(&parts.uri, &parts.headers)
            .map_err(Rejection::Url)?;
        if self.validate {
            let signature = parts
                .headers
                .get(SIGNATURE_HEADER)
                .ok_or(Rejection::MissingSignature)?;
            let signature = signature
                .to_str()
                .map_err(|_| Rejection::BadSignature(Invalid::Malformed))?;
            // A GET is signed over its URL alone: the query is part of it.
            let signed = if post { params.to_vec() } else { Vec::new() };
            signature::verify(&self.tokens, &url, Payload::Form(&signed), signature)
                .map_err(Rejection::BadSignature)?;
        }
        Ok(Webhook {
            params,
            headers: parts.headers,
            secure: url.starts_with("https://"),
        })
    }

    /// The body, within `body_limit` bytes and `body_timeout`.
    ///
    /// Reading stops as soon as the declared `Content-Length` is in: hyper reports the end of
    /// the body one round later, and waiting for it cost every webhook a second trip through
    /// the router and the scheduler. The deadline's timer is armed only for a body that is
    /// still on its way after the first read.
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Rejection> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        let declared = match declared {
            Some(length) if length > self.body_limit as u64 => {
                return Err(Rejection::TooLarge(self.body_limit));
            }
            Some(length) => Some(length as usize),
            None => None,
        };
        within(self.body_timeout, collect(body, self.body_limit, declared))
            .await
            .ok_or(Rejection::BodyTimeout(self.body_timeout))?
    }
}

/// Reads `body` until its end or until `declared` bytes are in, refusing more than `limit`.
async fn collect(
    mut body: Body,
    limit: usize,
    declared: Option<usize>,
) -> Result<Vec<u8>, Rejection> {
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0));
    while declared != Some(bytes.len()) {
        let Some(frame) = body.frame().await else {
            break;
        };
        // Hyper ends a body short of its Content-Length with an error, so a truncated
        // upload is a `BodyRead`, never a shorter form.
        let frame = frame.map_err(|_| Rejection::BodyRead)?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(Rejection::TooLarge(limit));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Bytes;
    use futures_util::stream::{self, StreamExt as _};

    use super::*;

    /// A body whose first chunk is `chunk` and whose end never comes.
    fn never_ending(chunk: &'static str) -> Body {
        let first =
            stream::once(async move { Ok::<_, Infallible>(Bytes::from_static(chunk.as_bytes())) });
        Body::from_stream(first.chain(stream::pending()))
    }

    #[tokio::test(start_paused = true)]
    async fn reading_stops_once_the_declared_length_is_in() {
        let body = collect(never_ending("a=1&b=2"), 100, Some(7)).await;
        assert_eq!(body, Ok(b"a=1&b=2".to_vec()));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_declared_length_reading_waits_for_the_end() {
        let reading = collect(never_ending("a=1"), 100, None);
        assert_eq!(within(Duration::from_secs(5), reading).await, None);
        let ended = Body::from("a=1&b=2");
        assert_eq!(collect(ended, 100, None).await, Ok(b"a=1&b=2".to_vec()));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_whatever_it_declared() {
        assert_eq!(
            collect(Body::from("a=12345"), 5, None).await,
            Err(Rejection::TooLarge(5))
        );
        assert_eq!(
            collect(Body::from("a=12345"), 5, Some(3)).await,
            Err(Rejection::TooLarge(5))
        );
    }
}
