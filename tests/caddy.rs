//! A real Caddy in front of the real server, running the committed `deploy/Caddyfile` (site
//! address, upstream and admin endpoint swapped for a plain-http loopback run): a signed GET
//! webhook goes through it, then another once the server is down, and neither Caddy's JSON
//! access log nor its own log (where the failed one is reported) may keep a number, the text,
//! the signature or any header; both keep the path.
//!
//! Caddy must be installed (`scripts/install-nginx.sh` installs Debian's): when it is missing
//! the test fails under CI (`CI` set) and prints a loud skip notice otherwise.

mod common;
mod common_spawn;

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::{TOKEN, TestServer, form, message_text};
use common_spawn::TempDir;
use http_body_util::Full;
use sms_sessions::client::http;
use sms_sessions::client::params::{self, PLACEHOLDER_ACCOUNT_SID, Text};
use sms_sessions::twilio::signature::AuthToken;

const CADDYFILE: &str = include_str!("../deploy/Caddyfile");
const ME: &str = "+14155550199";
const TWILIO: &str = "+14155550100";
const FIRST: &str = "Hello, thanks for the new message.";

/// Caddy's path, or `None` (after a loud notice) when the test may be skipped.
fn caddy() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = match std::env::var_os("CADDY") {
        Some(path) => Some(PathBuf::from(path)).filter(|path| path.is_file()),
        None => std::env::split_paths(&path)
            .map(|dir| dir.join("caddy"))
            .find(|candidate| candidate.is_file()),
    };
    if found.is_some() {
        return found;
    }
    let message = "tests/caddy.rs needs caddy (run: bash scripts/install-nginx.sh)";
    common::tool_missing(message);
    None
}

/// Replaces `from` (which must occur) with `to`.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "deploy/Caddyfile no longer contains {from:?}; update tests/caddy.rs"
    );
    text.replace(from, to)
}

/// The committed Caddyfile on `http://127.0.0.1:port`, proxying to `backend`, with no admin
/// endpoint and nothing bound beyond loopback.
fn caddyfile(port: u16, backend: u16) -> String {
    let local = "\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n\tlog default {";
    let text = swap(CADDYFILE, "\tlog default {", local);
    let site = format!("http://127.0.0.1:{port} {{");
    let text = swap(&text, "sms.example.com {", &site);
    swap(&text, "sms-sessions:8080", &format!("127.0.0.1:{backend}"))
}

/// `caddy run` in the foreground, its stdout (the access log) in a file; killed on drop.
struct Caddy {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Caddy {
    fn start(program: &PathBuf, dir: &TempDir, config: &str) -> Self {
        let config_path = dir.0.join("Caddyfile");
        std::fs::write(&config_path, config).expect("write the Caddyfile");
        let (stdout, stderr) = (dir.0.join("stdout.log"), dir.0.join("stderr.log"));
        let child = Command::new(program)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&config_path)
            .env("HOME", &dir.0)
            .env("XDG_CONFIG_HOME", dir.0.join("config"))
            .env("XDG_DATA_HOME", dir.0.join("data"))
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn caddy");
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// The access log (stdout) and Caddy's own log (stderr).
    fn logs(&self) -> (String, String) {
        let read = |path| std::fs::read_to_string(path).unwrap_or_default();
        (read(&self.stdout), read(&self.stderr))
    }

    async fn wait_until_listening(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "caddy did not listen on {port}:\n{}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The query Twilio sends for one text from `ME` (the whole set the server checks).
fn webhook_query(body: &str) -> String {
    let text = Text {
        from: ME,
        to: TWILIO,
        body,
        media: &[],
    };
    let pairs = params::for_text(
        &text,
        &params::new_message_sid(false),
        PLACEHOLDER_ACCOUNT_SID,
    );
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form(&borrowed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_webhook_leaves_no_number_text_signature_or_header_in_caddys_log() {
    let Some(program) = caddy() else {
        return;
    };
    let dir = TempDir::new("caddy"); // Caddy's HOME and its log files
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let server = TestServer::start(&[("SMS_SESSIONS_PUBLIC_URL", &public)]).await;
    let caddy = Caddy::start(&program, &dir, &caddyfile(port, server.addr.port()));
    caddy.wait_until_listening(port).await;

    let url = format!(
        "{public}/sms?{}",
        webhook_query("see you at the Zanzibar cafe")
    );
    let signature = AuthToken::new(TOKEN)
        .expect("token")
        .sign(&url, &[] as &[(&str, &str)]);
    let reply = get(&url, &signature).await;
    assert_eq!(
        (reply.status, message_text(&reply)),
        (200, FIRST.to_owned())
    );
    server.stop().await.expect("the server stops");
    assert_eq!(
        get(&url, &signature).await.status,
        502,
        "the upstream is down"
    );

    let (access, own) = wait_for_entries(&caddy, 2).await;
    for (name, log) in [("access", &access), ("own", &own)] {
        assert!(log.contains(r#""uri":"/sms""#), "the path is kept:\n{log}");
        // The digits catch every encoding of the numbers (+1…, %2B1…).
        let secrets = ["4155550199", "4155550100", "Zanzibar", "From", &signature];
        let headers = ["X-Twilio-Signature", "\"headers\"", "resp_headers"];
        for secret in secrets.into_iter().chain(headers) {
            assert!(
                !log.contains(secret),
                "{secret:?} in Caddy's {name} log:\n{log}"
            );
        }
    }
}

async fn get(url: &str, signature: &str) -> http::Reply {
    let request = hyper::Request::get(url)
        .header("X-Twilio-Signature", signature)
        .body(Full::new(Bytes::new()))
        .expect("request");
    http::send(request).await.expect("an answer through caddy")
}

/// Both logs once the access log holds `requests` entries and Caddy's own log the failure
/// (Caddy writes them after the response).
async fn wait_for_entries(caddy: &Caddy, requests: usize) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (access, own) = caddy.logs();
        let done =
            access.matches("handled request").count() >= requests && own.contains("http.log.error");
        if done || Instant::now() > deadline {
            assert!(done, "missing log entries:\n{access}\n{own}");
            return (access, own);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
