//! Shared by the black-box tests: start the real server on 127.0.0.1:0 and talk to it the way
//! Twilio does (signed form posts, one cookie jar per (To, From) pair).
#![allow(dead_code)]

use std::net::SocketAddr;

pub mod ci;
pub mod redis_server;
pub mod stand_in;
pub mod vectors;

// Where they were before ci.rs held them (not every test binary calls them).
#[allow(unused_imports)]
pub use ci::{in_ci, tool_missing};

use axum::body::Bytes;
use http_body_util::Full;
use hyper::Request;
use sms_sessions::app::{AppState, serve};
use sms_sessions::client::http::{self, Reply};
use sms_sessions::config::Config;
use sms_sessions::session::{SessionCodec, SessionData, SessionSecret};
use sms_sessions::twilio::signature::AuthToken;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-auth-token-0123456789abcdef";
pub const SECRET: &str = "test-session-secret-0123456789abcdef";
/// A message SID of Twilio's shape.
pub const SID: &str = "SM0123456789abcdef0123456789abcdef";
/// The account every test webhook claims to be for.
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// The parameters an inbound text always carries, for a text from `from` to `to`: what the
/// server requires of every `/sms` webhook.
pub fn inbound_pairs<'a>(
    sid: &'a str,
    from: &'a str,
    to: &'a str,
    body: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("To", to),
        ("Body", body),
        ("NumMedia", "0"),
        ("ApiVersion", "2010-04-01"),
    ]
}

/// The configuration of [`TestServer::start`]: the test token and secret plus `env` (which wins).
pub fn test_config(env: &[(&str, &str)]) -> Config {
    // The first match wins in a slice environment, so `env` goes first.
    let mut all = env.to_vec();
    all.extend([
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
    ]);
    Config::load(None, all.as_slice()).expect("test config is valid")
}

/// A server running in this process; dropped → shut down.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts with the test token and secret plus `env` (which wins).
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::with_state(AppState::new(test_config(env)).expect("the test flows load")).await
    }

    /// Starts on `config` with the store `session.store` names opened (nothing to open for
    /// `cookie`).
    pub async fn with_config(config: Config) -> Self {
        let state = AppState::new(config).expect("the test flows load");
        let state = state.open_store().await.expect("the test store opens");
        Self::with_state(state).await
    }

    pub async fn with_state(state: AppState) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("bound");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, state, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Begins graceful shutdown and waits for the server to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle
            .take()
            .expect("running")
            .await
            .expect("server task")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Form-encodes pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// POSTs a form to `url` with the given extra headers (no signature added).
pub async fn post_raw(url: &str, body: impl Into<Bytes>, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).expect("valid request");
    http::send(request).await.expect("server answers")
}

/// POSTs a form signed with `token` for `signed_url`, with extra headers.
pub async fn post_signed(
    url: &str,
    signed_url: &str,
    pairs: &[(&str, &str)],
    token: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let signature = AuthToken::new(token)
        .expect("token")
        .sign(signed_url, pairs);
    let mut all = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-twilio-signature", signature.as_str()),
    ];
    all.extend_from_slice(headers);
    post_raw(url, form(pairs), &all).await
}

/// [`post_signed`] that reports a failed exchange (a server killed mid-request) instead of
/// panicking, as Twilio sees it.
pub async fn try_post_signed(
    url: &str,
    pairs: &[(&str, &str)],
    token: &str,
) -> Result<Reply, http::Error> {
    let signature = AuthToken::new(token).expect("token").sign(url, pairs);
    let request = Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature.as_str())
        .body(Full::new(Bytes::from(form(pairs))))
        .expect("valid request");
    http::send(request).await
}

/// The body as text.
pub fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// `name=value` of the reply's Set-Cookie, if any.
pub fn set_cookie(reply: &Reply) -> Option<String> {
    let header = reply.headers.get("set-cookie")?.to_str().ok()?;
    Some(header.split(';').next()?.to_owned())
}

/// One phone texting one Twilio number: keeps that pair's cookie like Twilio's jar does.
pub struct Phone {
    pub from: String,
    pub to: String,
    pub cookie: Option<String>,
    sent: u32,
}

impl Phone {
    pub fn new(from: &str, to: &str) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            cookie: None,
            sent: 0,
        }
    }

    /// Sends one text to `/sms` of `server`, signed for its URL; stores the returned cookie.
    pub async fn text(&mut self, server: &TestServer, body: &str) -> Reply {
        self.text_to(&server.url("/sms"), body, &[]).await
    }

    /// Sends one text to the `/sms` at `url` (a spawned server's, say), signed for it, with
    /// `extra` fields (such as `OptOutType`) after the ones Twilio always sends; stores the
    /// returned cookie.
    pub async fn text_to(&mut self, url: &str, body: &str, extra: &[(&str, &str)]) -> Reply {
        self.sent += 1;
        let sid = format!("SM{:032x}", self.sent);
        let mut pairs = inbound_pairs(&sid, &self.from, &self.to, body);
        pairs.extend_from_slice(extra);
        let cookie = self.cookie.clone();
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
        let reply = post_signed(url, url, &pairs, TOKEN, &headers).await;
        if let Some(cookie) = set_cookie(&reply) {
            self.cookie = Some(cookie);
        }
        reply
    }

    /// [`Phone::text`] with `extra` fields (such as `OptOutType=STOP`).
    pub async fn text_with(
        &mut self,
        server: &TestServer,
        body: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let url = server.url("/sms");
        self.text_to(&url, body, extra).await
    }
}

/// POSTs one text from `from` to `to` to `url` with every parameter Twilio sends for it (as
/// `sms-sessions send` does: `client::params::for_text`, a fresh MessageSid), signed with the
/// test token for `url`, with extra headers.
pub async fn post_text(
    url: &str,
    from: &str,
    to: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Reply {
    use sms_sessions::client::params::{PLACEHOLDER_ACCOUNT_SID, Text, for_text, new_message_sid};
    let text = Text {
        from,
        to,
        body,
        media: &[],
    };
    let params = for_text(&text, &new_message_sid(false), PLACEHOLDER_ACCOUNT_SID);
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_signed(url, url, &pairs, TOKEN, headers).await
}

/// The count the counter flow's reply states (`Hello, thanks for message number k`, or the
/// first text's greeting, 1).
pub fn count_of(message: &str) -> usize {
    match message.strip_prefix("Hello, thanks for message number ") {
        Some(n) => n.parse().expect("a count"),
        None if message == "Hello, thanks for the new message." => 1,
        None => panic!("not a counter reply: {message}"),
    }
}

/// The text of the first `<Message>` in a TwiML reply.
pub fn message_text(reply: &Reply) -> String {
    let body = text(reply);
    let start = body.find("<Message>").map(|i| i + "<Message>".len());
    let end = body.find("</Message>");
    match (start, end) {
        (Some(start), Some(end)) if start <= end => body[start..end].to_owned(),
        _ => panic!("no <Message> in {body}"),
    }
}

/// A cookie codec like the server's (default name and TTL), signing with `secret`.
pub fn codec(secret: &str) -> SessionCodec {
    let secret = SessionSecret::new(secret).expect("32+ bytes");
    SessionCodec::new(
        "sms_session",
        std::time::Duration::from_secs(4 * 3600),
        &secret,
        &[],
    )
}

/// Counter-flow state after `n` messages.
pub fn counted(n: u32) -> SessionData {
    let mut data = SessionData::default();
    data.set("count", n);
    data
}
