//! The webhook gate: buffers and decodes the parameters once, then checks
//! `X-Twilio-Signature` against the rebuilt public URL before any handler runs.
//!
//! Handlers receive the decoded pairs through the [`WebhookParams`] extractor, so the body is
//! parsed exactly once, in arrival order, with repeated keys kept.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::form::FormPairs;
use super::public_url::{UrlError, UrlSource};
use super::signature::{self, AuthToken, Invalid, Payload};

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
}

/// The decoded parameters of a webhook (body for POST, query for GET), in arrival order.
#[derive(Debug, Clone)]
pub struct WebhookParams {
    pub pairs: Arc<FormPairs>,
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
}

impl Rejection {
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingSignature | Self::BadSignature(_) => StatusCode::FORBIDDEN,
            Self::Url(_) | Self::BodyRead => StatusCode::BAD_REQUEST,
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

/// The middleware: decode, verify, hand [`WebhookParams`] to the handler.
pub async fn gate(State(gate): State<Arc<WebhookGate>>, request: Request, next: Next) -> Response {
    // HEAD too: axum serves it with the GET handler, which needs what the gate provides.
    if !matches!(*request.method(), Method::POST | Method::GET | Method::HEAD) {
        return next.run(request).await; // the router answers 405
    }
    match gate.check(request).await {
        Ok(request) => next.run(request).await,
        Err(rejection) => rejection.into_response(),
    }
}

impl WebhookGate {
    async fn check(&self, request: Request) -> Result<Request, Rejection> {
        let (mut parts, body) = request.into_parts();
        let bytes = if parts.method == Method::POST {
            if !is_form(&parts) {
                return Err(Rejection::NotForm);
            }
            self.read_body(&parts, body).await?
        } else {
            Default::default()
        };
        let source = if parts.method == Method::POST {
            &bytes[..]
        } else {
            parts.uri.query().unwrap_or("").as_bytes()
        };
        let pairs = Arc::new(FormPairs::parse(source));
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
            let signed = if parts.method == Method::POST {
                pairs.to_vec()
            } else {
                Vec::new()
            };
            signature::verify(&self.tokens, &url, Payload::Form(&signed), signature)
                .map_err(Rejection::BadSignature)?;
        }
        let secure = url.starts_with("https://");
        parts.extensions.insert(WebhookParams { pairs, secure });
        Ok(Request::from_parts(parts, Body::from(bytes)))
    }

    async fn read_body(&self, parts: &Parts, body: Body) -> Result<axum::body::Bytes, Rejection> {
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.body_limit as u64) {
            return Err(Rejection::TooLarge(self.body_limit));
        }
        let read = tokio::time::timeout(self.body_timeout, to_bytes(body, self.body_limit));
        let read = read
            .await
            .map_err(|_| Rejection::BodyTimeout(self.body_timeout))?;
        read.map_err(|error| {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                Rejection::TooLarge(self.body_limit)
            } else {
                Rejection::BodyRead
            }
        })
    }
}

fn is_form(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

impl<S: Send + Sync> FromRequestParts<S> for WebhookParams {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            tracing::error!("WebhookParams requested on a route without the webhook gate");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
    }
}
