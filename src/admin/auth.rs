//! The bearer check: `Authorization: Bearer <token>` against every configured token.
//!
//! Tokens are kept as their SHA-256 digests and the presented token is hashed once, so each
//! comparison is of 32 bytes in constant time (`subtle`) and neither a token's bytes nor its
//! length shows in the time taken; every configured token is compared, whichever matches.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::error::ApiError;
use crate::config::Secret;

/// The accepted tokens (several during a rotation), as digests.
#[derive(Clone)]
pub struct Tokens(Arc<[[u8; 32]]>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

impl Tokens {
    pub fn new(tokens: &[Secret]) -> Self {
        Tokens(tokens.iter().map(|t| digest(t.expose())).collect())
    }

    /// Whether `presented` is one of the tokens; with none configured, nothing is.
    pub fn accepts(&self, presented: &str) -> bool {
        let presented = digest(presented);
        let matched = self
            .0
            .iter()
            .fold(Choice::from(0), |any, token| any | token.ct_eq(&presented));
        bool::from(matched)
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware: 401 unless the request carries an accepted token.
pub async fn require_token(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
    match bearer(request.headers()) {
        Some(token) if tokens.accepts(token) => next.run(request).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = authorization.parse().expect("header value");
        headers.insert(header::AUTHORIZATION, value);
        headers
    }

    #[test]
    fn bearer_tokens_are_read_in_any_case_of_the_scheme() {
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn any_configured_token_is_accepted_and_no_other() {
        let secret = |s: &str| serde_json::from_value::<Secret>(s.into()).expect("secret");
        let tokens = Tokens::new(&[secret("first-token-0123456"), secret("second-token-012345")]);
        assert!(tokens.accepts("first-token-0123456"));
        assert!(tokens.accepts("second-token-012345"));
        assert!(!tokens.accepts("second-token-01234"));
        assert!(!tokens.accepts(""));
        assert!(!Tokens::new(&[]).accepts("anything"));
    }
}
