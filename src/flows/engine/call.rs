//! What a `call` node asks of the world, and what it gets back: the engine builds a
//! [`CallRequest`] (the endpoint by name, the path with every templated value percent-encoded,
//! the query, the body) and awaits [`Calls::call`]. The server's implementation
//! (`crate::callout`) signs it and sends it to the configured endpoint; `flow test` answers from
//! the transcript's mocks. The engine never sees a URL, a secret or a socket.

use std::future::Future;
use std::pin::Pin;

/// An HTTP method a `call` node may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A request body, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `application/json`.
    Json(Vec<u8>),
    /// `application/x-www-form-urlencoded`.
    Form(Vec<u8>),
}

impl Body {
    pub fn content_type(&self) -> &'static str {
        match self {
            Body::Json(_) => "application/json",
            Body::Form(_) => "application/x-www-form-urlencoded",
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Body::Json(bytes) | Body::Form(bytes) => bytes,
        }
    }
}

/// One call-out, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// The `call` node that makes it (for logs, metrics and `flow test` mocks).
    pub node: String,
    /// The endpoint's name (`[flows.endpoints.NAME]`).
    pub endpoint: String,
    pub method: Method,
    /// Starts with `/`; every templated value in it is percent-encoded already, so it holds
    /// no `?`, `#` or dot segment a texter put there. Appended to the endpoint's base path.
    pub path: String,
    /// Names and values as rendered; the client form-encodes them after a `?`.
    pub query: Vec<(String, String)>,
    pub body: Option<Body>,
    /// `Idempotency-Key`: the MessageSid, and for a step's second and later calls the node too
    /// (`SM….node`, `SM….node.2` when a node is called again in the same step).
    pub idempotency_key: String,
}

impl CallRequest {
    /// The path and query as sent after the endpoint's base path (`/slots?date=2026-03-10`).
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.query {
            query.append_pair(name, value);
        }
        format!("{}?{}", self.path, query.finish())
    }
}

/// The service's answer: any status (the engine decides what a non-2xx means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why no answer arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// A short label for metrics: `timeout`, `connect`, `too_large`, `unknown_endpoint`,
    /// `budget`, `io`.
    pub reason: &'static str,
    /// For the log: never a secret, never the request's body.
    pub detail: String,
}

/// A boxed call in flight.
pub type CallFuture<'a> =
    Pin<Box<dyn Future<Output = Result<CallResponse, CallFailure>> + Send + 'a>>;

/// A `connect` node's hand-off: a relay session between the texter and an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub node: String,
    /// The agent's name in `relay.agents`.
    pub agent: String,
    /// How long the session lives without a text (`None`: `relay.ttl`).
    pub ttl_secs: Option<u64>,
    /// The texter's label, shown to nobody in a two-person session but kept for the API.
    pub label: Option<String>,
}

/// The session the hand-off opened: who the agent is and the number they text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub session: String,
    pub agent_address: String,
    pub agent_proxy: String,
}

/// A boxed hand-off in flight.
pub type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Connected, CallFailure>> + Send + 'a>>;

/// Makes call-outs (and relay hand-offs) for the steps of one webhook.
pub trait Calls: Sync {
    fn call<'a>(&'a self, request: &'a CallRequest) -> CallFuture<'a>;

    /// Opens a relay session for a `connect` node; without a relay, every hand-off fails
    /// (`no_relay`) and the flow goes on at the node's `on_error`.
    fn connect<'a>(&'a self, request: &'a ConnectRequest) -> ConnectFuture<'a> {
        let failure = CallFailure {
            reason: "no_relay",
            detail: format!(
                "no relay is configured to hand off to agent {:?}",
                request.agent
            ),
        };
        Box::pin(std::future::ready(Err(failure)))
    }
}

/// No call-outs configured: every call fails at once (a flow set that has `call` nodes is
/// refused at load when its endpoints are not configured, so this only answers tests and
/// tutorial flows).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCalls;

impl Calls for NoCalls {
    fn call<'a>(&'a self, request: &'a CallRequest) -> CallFuture<'a> {
        let failure = CallFailure {
            reason: "unknown_endpoint",
            detail: format!("no endpoint {:?} is configured", request.endpoint),
        };
        Box::pin(std::future::ready(Err(failure)))
    }
}

/// Percent-encodes one templated value for a path: everything but ASCII letters, digits, `-`,
/// `_` and `~` (a `.` too, so no value makes a dot segment).
pub fn encode_path_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_values_cannot_escape_their_segment() {
        for (value, encoded) in [
            ("s9", "s9"),
            ("a/b", "a%2Fb"),
            ("..", "%2E%2E"),
            ("x?y#z", "x%3Fy%23z"),
            ("@evil.com", "%40evil%2Ecom"),
            ("é", "%C3%A9"),
            ("a b", "a%20b"),
        ] {
            assert_eq!(encode_path_value(value), encoded, "{value:?}");
        }
    }

    #[test]
    fn the_query_is_form_encoded_after_the_path() {
        let request = CallRequest {
            node: "n".into(),
            endpoint: "e".into(),
            method: Method::Get,
            path: "/slots".into(),
            query: vec![
                ("date".into(), "2026-03-10".into()),
                ("q".into(), "a&b=c #".into()),
            ],
            body: None,
            idempotency_key: "SM1".into(),
        };
        assert_eq!(
            request.path_and_query(),
            "/slots?date=2026-03-10&q=a%26b%3Dc+%23"
        );
    }
}
