//! `relay create|list|close|pool`: the admin API from the command line.
//!
//! Each command is one request to `--admin-url` with `--token`; a 2xx answer is printed as
//! pretty JSON on stdout (exit 0), anything else as one line on stderr (exit 1).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use axum::body::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use http_body_util::Full;
use hyper::{Method, Request, header};
use serde_json::{Value, json};

use crate::client::http;

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The admin API's base URL (http only).
    #[arg(
        long,
        global = true,
        env = "SMS_SESSIONS_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub admin_url: String,
    /// The bearer token (of a comma-separated list, the first). Prefer the environment: a
    /// command line is visible to other users.
    #[arg(
        long,
        global = true,
        env = "SMS_SESSIONS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A file holding the token (used when no --token is given).
    #[arg(
        long,
        global = true,
        env = "SMS_SESSIONS_ADMIN_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub token_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: RelayCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RelayCommand {
    /// Open a session between two to eleven people; prints it with each one's proxy number.
    Create {
        /// A participant: an E.164 number (or whatsapp:+E.164), optionally with a label.
        #[arg(long = "participant", value_name = "ADDRESS[=LABEL]", required = true)]
        participants: Vec<String>,
        /// The sliding TTL (e.g. 4h) [default: relay.ttl]
        #[arg(long)]
        ttl: Option<String>,
        /// An absolute end, RFC 3339 (e.g. 2026-12-01T18:00:00Z).
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
    },
    /// List sessions, a page at a time (the answer's `next` is the next page's --after).
    List {
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Only sessions with a participant at this address.
        #[arg(long)]
        address: Option<String>,
        /// Sessions per page, 1 to 100 [default: 50]
        #[arg(long)]
        limit: Option<u8>,
        #[arg(long, value_name = "ID")]
        after: Option<String>,
    },
    /// Show one session.
    Get { id: String },
    /// Close a session: its numbers are free for new ones at once.
    Close { id: String },
    /// Each pool number and how many open sessions use it.
    Pool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateArg {
    Open,
    Closed,
}

/// One request to the admin API, before it has a base URL and a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    /// The path and query, from `/v1/…`.
    pub path: String,
    pub body: Option<Value>,
}

/// How long the CLI waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(args: &RelayArgs) -> ExitCode {
    match answer(args).await {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sms-sessions relay: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The pretty JSON of a 2xx answer, or what went wrong.
async fn answer(args: &RelayArgs) -> Result<String, String> {
    let call = call(&args.command)?;
    let token = token(args)?;
    let request = request(&args.admin_url, &token, &call)?;
    let url = args.admin_url.trim_end_matches('/');
    let reply = match tokio::time::timeout(TIMEOUT, http::send(request)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) if http::is_connection_refused(&error) => {
            return Err(format!(
                "cannot connect to {url}: connection refused (is server.admin_listen set?)"
            ));
        }
        Ok(Err(error)) => return Err(format!("no answer from {url}: {}", http::describe(&error))),
        Err(_) => {
            return Err(format!(
                "no answer from {url} within {} s",
                TIMEOUT.as_secs()
            ));
        }
    };
    if (200..300).contains(&reply.status) {
        Ok(pretty(&reply.body))
    } else {
        Err(refusal(reply.status, &reply.body))
    }
}

/// The request a command makes.
pub fn call(command: &RelayCommand) -> Result<Call, String> {
    let sessions = "/v1/relay/sessions".to_owned();
    let plain = |method, path| Call {
        method,
        path,
        body: None,
    };
    Ok(match command {
        RelayCommand::Create {
            participants,
            ttl,
            expires_at,
        } => Call {
            method: Method::POST,
            path: sessions,
            body: Some(create_body(
                participants,
                ttl.as_deref(),
                expires_at.as_deref(),
            )?),
        },
        RelayCommand::List {
            state,
            address,
            limit,
            after,
        } => plain(Method::GET, list_path(*state, address, *limit, after)),
        RelayCommand::Get { id } => plain(Method::GET, format!("{sessions}/{}", segment(id))),
        RelayCommand::Close { id } => plain(Method::DELETE, format!("{sessions}/{}", segment(id))),
        RelayCommand::Pool => plain(Method::GET, "/v1/relay/pool".into()),
    })
}

/// `{"participants":[{"address","label"?},…],"ttl"?,"expires_at"?}`.
fn create_body(
    participants: &[String],
    ttl: Option<&str>,
    expires_at: Option<&str>,
) -> Result<Value, String> {
    let mut list = Vec::with_capacity(participants.len());
    for given in participants {
        let (address, label) = match given.split_once('=') {
            Some((address, label)) => (address, Some(label)),
            None => (given.as_str(), None),
        };
        if address.is_empty() {
            return Err(format!("--participant {given:?}: expected ADDRESS[=LABEL]"));
        }
        let mut participant = json!({ "address": address });
        if let Some(label) = label {
            participant["label"] = label.into();
        }
        list.push(participant);
    }
    let mut body = json!({ "participants": list });
    if let Some(ttl) = ttl {
        body["ttl"] = ttl.into();
    }
    if let Some(expires_at) = expires_at {
        body["expires_at"] = expires_at.into();
    }
    Ok(body)
}

fn list_path(
    state: Option<StateArg>,
    address: &Option<String>,
    limit: Option<u8>,
    after: &Option<String>,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(state) = state {
        query.append_pair("state", state_name(state));
    }
    if let Some(address) = address {
        query.append_pair("address", address);
    }
    if let Some(limit) = limit {
        query.append_pair("limit", &limit.to_string());
    }
    if let Some(after) = after {
        query.append_pair("after", after);
    }
    match query.finish() {
        query if query.is_empty() => "/v1/relay/sessions".into(),
        query => format!("/v1/relay/sessions?{query}"),
    }
}

fn state_name(state: StateArg) -> &'static str {
    match state {
        StateArg::Open => "open",
        StateArg::Closed => "closed",
    }
}

/// An id as one path segment (percent-encoded beyond letters and digits).
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `--token`, else the first line of `--token-file`; of a comma-separated list, the first.
fn token(args: &RelayArgs) -> Result<String, String> {
    let text = match (&args.token, &args.token_file) {
        (Some(token), _) => token.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --token-file {}: {e}", path.display()))?,
        (None, None) => {
            return Err("no token: set SMS_SESSIONS_ADMIN_TOKEN (or pass --token)".into());
        }
    };
    text.split([',', '\n'])
        .map(str::trim)
        .find(|token| !token.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "the token is empty".into())
}

fn request(base: &str, token: &str, call: &Call) -> Result<Request<Full<Bytes>>, String> {
    let base = base.trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(format!("--admin-url {base}: expected http://HOST:PORT"));
    }
    let uri: hyper::Uri = format!("{base}{}", call.path)
        .parse()
        .map_err(|e| format!("--admin-url {base}: {e}"))?;
    let body = match &call.body {
        Some(body) => Bytes::from(body.to_string()),
        None => Bytes::new(),
    };
    let mut request = Request::builder()
        .method(call.method.clone())
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, "application/json");
    if call.body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    request
        .body(Full::new(body))
        .map_err(|_| "the token is not a valid header value".to_owned())
}

/// The body as pretty JSON, or as sent when it is not JSON.
fn pretty(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim_end().to_owned())
}

/// `409 Conflict: pool_exhausted: participants[1]: the pool has …`.
pub fn refusal(status: u16, body: &[u8]) -> String {
    let phrase = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("");
    let mut text = format!("the admin API answered {status} {phrase}");
    let value = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let parts = ["error", "field", "detail"].map(|key| value.get(key).and_then(Value::as_str));
    if parts.iter().all(Option::is_none) {
        let raw = String::from_utf8_lossy(body);
        let raw = raw.trim();
        if !raw.is_empty() {
            text.push_str(": ");
            text.push_str(raw);
        }
    }
    for part in parts.into_iter().flatten() {
        text.push_str(": ");
        text.push_str(part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_sends_participants_with_labels_and_the_ttl() {
        let command = RelayCommand::Create {
            participants: vec!["+14155550001=Buyer".into(), "whatsapp:+14155550002".into()],
            ttl: Some("2h".into()),
            expires_at: None,
        };
        let call = call(&command).expect("valid");
        assert_eq!(
            (call.method, call.path.as_str()),
            (Method::POST, "/v1/relay/sessions")
        );
        assert_eq!(
            call.body.expect("a body").to_string(),
            r#"{"participants":[{"address":"+14155550001","label":"Buyer"},{"address":"whatsapp:+14155550002"}],"ttl":"2h"}"#
        );
        let empty = RelayCommand::Create {
            participants: vec!["=Buyer".into()],
            ttl: None,
            expires_at: None,
        };
        assert!(super::call(&empty).is_err());
    }

    #[test]
    fn list_encodes_the_plus_of_an_address() {
        let command = RelayCommand::List {
            state: Some(StateArg::Open),
            address: Some("+14155550001".into()),
            limit: None,
            after: None,
        };
        let path = call(&command).expect("valid").path;
        assert_eq!(path, "/v1/relay/sessions?state=open&address=%2B14155550001");
        let bare = RelayCommand::List {
            state: None,
            address: None,
            limit: None,
            after: None,
        };
        assert_eq!(call(&bare).expect("valid").path, "/v1/relay/sessions");
    }

    #[test]
    fn close_and_pool_paths() {
        let close = call(&RelayCommand::Close { id: "RS0a".into() }).expect("valid");
        assert_eq!(
            (close.method, close.path.as_str()),
            (Method::DELETE, "/v1/relay/sessions/RS0a")
        );
        let odd = call(&RelayCommand::Get { id: "a/b".into() }).expect("valid");
        assert_eq!(odd.path, "/v1/relay/sessions/a%2Fb");
        assert_eq!(
            call(&RelayCommand::Pool).expect("valid").path,
            "/v1/relay/pool"
        );
    }

    #[test]
    fn refusals_read_the_error_body() {
        let body =
            br#"{"error":"invalid","field":"participants[1].address","detail":"is not E.164"}"#;
        assert_eq!(
            refusal(400, body),
            "the admin API answered 400 Bad Request: invalid: participants[1].address: is not E.164"
        );
        assert_eq!(
            refusal(502, b"bad gateway\n"),
            "the admin API answered 502 Bad Gateway: bad gateway"
        );
    }

    #[test]
    fn the_first_of_several_tokens_is_sent() {
        let args = RelayArgs {
            admin_url: "http://127.0.0.1:8081/".into(),
            token: Some(" new-token-0123456789, old-token-0123456789".into()),
            token_file: None,
            command: RelayCommand::Pool,
        };
        assert_eq!(token(&args).expect("a token"), "new-token-0123456789");
        let request = request(&args.admin_url, "t", &call(&args.command).expect("valid"));
        let request = request.expect("valid");
        assert_eq!(
            request.uri().to_string(),
            "http://127.0.0.1:8081/v1/relay/pool"
        );
        assert_eq!(request.headers()[header::AUTHORIZATION], "Bearer t");
    }

    #[derive(Debug, clap::Parser)]
    struct Top {
        #[command(subcommand)]
        command: TopCommand,
    }

    #[derive(Debug, clap::Subcommand)]
    enum TopCommand {
        Relay(RelayArgs),
    }

    fn parse(args: &[&str]) -> Result<RelayArgs, clap::Error> {
        use clap::Parser as _;
        let args = ["sms-sessions", "relay"].iter().chain(args);
        Top::try_parse_from(args).map(|top| match top.command {
            TopCommand::Relay(relay) => relay,
        })
    }

    #[test]
    fn the_command_line_reads_as_documented() {
        use clap::CommandFactory as _;
        Top::command().debug_assert();
        let args = [
            "create",
            "--participant",
            "+14155550001=Buyer",
            "--participant",
            "whatsapp:+14155550002",
            "--ttl",
            "4h",
            "--token",
            "t",
            "--admin-url",
            "http://h:1",
        ];
        let parsed = parse(&args).expect("valid");
        assert_eq!(
            (parsed.admin_url.as_str(), parsed.token.as_deref()),
            ("http://h:1", Some("t"))
        );
        let RelayCommand::Create {
            participants, ttl, ..
        } = parsed.command
        else {
            panic!("create expected");
        };
        assert_eq!(
            participants,
            ["+14155550001=Buyer", "whatsapp:+14155550002"]
        );
        assert_eq!(ttl.as_deref(), Some("4h"));
        let list = parse(&[
            "--token",
            "t",
            "list",
            "--state",
            "open",
            "--address",
            "+14155550001",
        ]);
        assert!(matches!(
            list.expect("valid").command,
            RelayCommand::List {
                state: Some(StateArg::Open),
                ..
            }
        ));
        assert!(parse(&["close", "RS00"]).is_ok());
        assert!(parse(&["pool"]).is_ok());
        assert!(parse(&["create"]).is_err(), "at least one --participant");
        assert!(parse(&["list", "--state", "gone"]).is_err());
    }

    /// The commands against a served admin API on the memory store, over a real socket.
    #[tokio::test]
    async fn commands_round_trip_through_a_served_admin_api() {
        use crate::relay::{AnyRelay, Relay, RelayKeys};
        let env = [
            ("SMS_SESSIONS_STORE", "memory"),
            ("SMS_SESSIONS_RELAY_NUMBERS", "+14155550100"),
        ];
        let config = crate::config::Config::load(None, &env).expect("valid");
        let keys = RelayKeys::new(b"0123456789abcdef0123456789abcdef");
        let backend = AnyRelay::open(&config.store.url, keys, "t")
            .await
            .expect("memory");
        let relay = Relay::new(backend, config.relay, None);
        let token = "cli-token-0123456789";
        let secret = serde_json::from_value(json!(token)).expect("secret");
        let router = crate::admin::router(relay, &[secret]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(crate::admin::serve(listener, router));
        let args = |command| RelayArgs {
            admin_url: url.clone(),
            token: Some(token.into()),
            token_file: None,
            command,
        };
        let create = RelayCommand::Create {
            participants: vec!["+14155550001=Buyer".into(), "+14155550002".into()],
            ttl: Some("1h".into()),
            expires_at: None,
        };
        let created = answer(&args(create.clone())).await.expect("201");
        let session: Value = serde_json::from_str(&created).expect("JSON");
        assert!(created.contains("\n  \"id\": \"RS"), "pretty: {created}");
        let refused = answer(&args(create)).await.expect_err("409");
        assert!(refused.starts_with("the admin API answered 409 Conflict: pool_exhausted"));
        let list = RelayCommand::List {
            state: Some(StateArg::Open),
            address: Some("+14155550002".into()),
            limit: Some(10),
            after: None,
        };
        let listed: Value =
            serde_json::from_str(&answer(&args(list)).await.expect("200")).expect("JSON");
        assert_eq!(listed["sessions"][0]["id"], session["id"]);
        let id = session["id"].as_str().expect("id").to_owned();
        let closed = answer(&args(RelayCommand::Close { id }))
            .await
            .expect("200");
        assert!(closed.contains("\"closed_reason\": \"closed\""), "{closed}");
        let mut wrong = args(RelayCommand::Pool);
        wrong.token = Some("not-the-token-0123456789".into());
        let refused = answer(&wrong).await.expect_err("401");
        assert_eq!(
            refused,
            "the admin API answered 401 Unauthorized: unauthorized"
        );
        server.abort();
    }
}
