//! The admin API's one error type, and the JSON every answer is written as.
//!
//! Every error body is `{"error": code}`, with `field` (which part of the request) and
//! `detail` (what is wrong with it) where they help. A store failure is logged here and
//! answered `{"error":"unavailable"}`, never with its cause.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::relay::RelayError;

/// Why an admin request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A part of the request breaks a rule: 400.
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
    /// The pool cannot give a participant a free proxy: 409.
    #[error("{field}: {detail}")]
    PoolExhausted { field: String, detail: String },
    #[error("no such session")]
    NotFound,
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("the body is over {} KiB", super::BODY_LIMIT / 1024)]
    TooLarge,
    /// The relay store failed (the cause names no number and no secret).
    #[error("relay store unavailable: {0}")]
    Unavailable(String),
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::PoolExhausted { .. } => StatusCode::CONFLICT,
            ApiError::NotFound | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn body(&self) -> Body<'_> {
        let (error, field, detail) = match self {
            ApiError::Invalid { field, detail } => ("invalid", Some(field), Some(detail.clone())),
            ApiError::PoolExhausted { field, detail } => {
                ("pool_exhausted", Some(field), Some(detail.clone()))
            }
            ApiError::NotFound | ApiError::NoRoute => ("not_found", None, None),
            ApiError::MethodNotAllowed => ("method_not_allowed", None, None),
            ApiError::Unauthorized => ("unauthorized", None, None),
            ApiError::TooLarge => ("too_large", None, Some(self.to_string())),
            ApiError::Unavailable(_) => ("unavailable", None, None),
        };
        Body {
            error,
            field: field.map(String::as_str),
            detail,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// A relay store error as the API answers it: which participant the pool failed, or 503.
impl From<RelayError> for ApiError {
    fn from(error: RelayError) -> Self {
        match error {
            RelayError::PoolExhausted(i) => ApiError::PoolExhausted {
                field: format!("participants[{i}]"),
                detail: "the pool has no number free for this participant's address".into(),
            },
            RelayError::ProxyInUse(i) => ApiError::PoolExhausted {
                field: format!("participants[{i}].proxy"),
                detail: "is in use for this address by another open session".into(),
            },
            RelayError::Unavailable(cause) => ApiError::Unavailable(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Unavailable(cause) = &self {
            tracing::error!(%cause, "admin API: relay store unavailable");
        }
        let mut response = json(self.status(), &self.body());
        if self == ApiError::Unauthorized {
            let bearer = HeaderValue::from_static("Bearer");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, bearer);
        }
        response
    }
}

/// `value` as an `application/json` answer with `status`.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let content_type = [(header::CONTENT_TYPE, "application/json")];
            (status, content_type, body).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "admin API: cannot serialise an answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(error: &ApiError) -> String {
        serde_json::to_string(&error.body()).expect("serialises")
    }

    #[test]
    fn bodies_name_the_code_field_and_detail() {
        let invalid = ApiError::invalid("participants[1].address", "is not E.164");
        assert_eq!(
            body_of(&invalid),
            r#"{"error":"invalid","field":"participants[1].address","detail":"is not E.164"}"#
        );
        assert_eq!(body_of(&ApiError::NotFound), r#"{"error":"not_found"}"#);
        let store = ApiError::Unavailable("redis: connection refused".into());
        assert_eq!(
            body_of(&store),
            r#"{"error":"unavailable"}"#,
            "no cause leaks"
        );
        let exhausted = ApiError::from(RelayError::PoolExhausted(1));
        assert_eq!(exhausted.status(), StatusCode::CONFLICT);
        assert!(body_of(&exhausted).contains(r#""field":"participants[1]""#));
    }
}
