//! The client subcommands, black box: the real binary (`sign`, `send`, `chat`, `healthcheck`,
//! `check-config`) against the real server started in this process on port 0.
//!
//! Each child gets a cleared environment (plus `PATH`), so a developer's own
//! `TWILIO_AUTH_TOKEN` or cache directory never leaks into a test.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::vectors::signature_cases;
use common::{SECRET, TOKEN, TestServer};
use sms_sessions::app::AppState;
use sms_sessions::config::{Config, DEV_AUTH_TOKEN};
use sms_sessions::twilio::signature::AuthToken;

const NEW: &str = "Hello, thanks for the new message.\n";
const TWIML_NEW: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Hello, \
                         thanks for the new message.</Message></Response>";
const RAY: &str = "+14155550199";
const FINN: &str = "+14155550123";
const TWILIO_NUMBER: &str = "+14155550100";

fn nth(k: u32) -> String {
    format!("Hello, thanks for message number {k}\n")
}

/// What a finished child left behind.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self:?}");
        &self.stdout
    }
}

/// Runs the binary with `args`, only `env` (and `PATH`) in its environment, `stdin` piped in.
fn run_blocking(args: &[String], env: &[(String, String)], stdin: Option<String>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sms-sessions"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the binary starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(text.as_bytes())
            .expect("stdin accepts the script");
    }
    let output = child.wait_with_output().expect("the binary finishes");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn owned_env(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Runs the binary off the async runtime, so the in-process server keeps answering.
async fn sms_sessions(args: &[impl AsRef<str>], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    let (env, stdin) = (owned_env(env), stdin.map(str::to_owned));
    tokio::task::spawn_blocking(move || run_blocking(&args, &env, stdin))
        .await
        .expect("the child runner does not panic")
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sms-sessions-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `COMMAND --url URL --from FROM --to TWILIO_NUMBER`, then `--jar JAR` if given, then `rest`.
fn client_args(
    command: &str,
    url: &str,
    from: &str,
    jar: Option<&Path>,
    rest: &[&str],
) -> Vec<String> {
    let mut args = owned(&[command, "--url", url, "--from", from, "--to", TWILIO_NUMBER]);
    if let Some(jar) = jar {
        args.extend(["--jar".to_owned(), jar.to_string_lossy().into_owned()]);
    }
    args.extend(owned(rest));
    args
}

/// `send` with the test token and the given jar.
async fn send(server: &TestServer, jar: &Path, from: &str, body: &str) -> Run {
    let args = client_args("send", &server.url("/sms"), from, Some(jar), &[body]);
    sms_sessions(&args, &[("TWILIO_AUTH_TOKEN", TOKEN)], None).await
}

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("bound").port()
}

// ---------------------------------------------------------------------------------- sign

#[test]
fn sign_reproduces_every_valid_form_vector() {
    let mut reproduced = 0;
    for case in signature_cases().iter().filter(|c| c.is_valid_form()) {
        let url = case.signed_url();
        let mut args = owned(&["sign", "--url", url, "--token", &case.auth_token, "--"]);
        let params = case.params.as_deref().unwrap_or_default();
        args.extend(params.iter().map(|(name, value)| format!("{name}={value}")));
        let run = run_blocking(&args, &[], None);
        assert_eq!(run.ok(), format!("{}\n", case.signature), "{}", case.name);
        reproduced += 1;
    }
    assert_eq!(reproduced, 58, "every valid form and GET case");
}

#[test]
fn sign_without_a_token_uses_the_development_token_and_says_so() {
    let run = run_blocking(&owned(&["sign", "--url", "http://h/sms", "A=1"]), &[], None);
    let token = AuthToken::new(DEV_AUTH_TOKEN).expect("non-empty");
    assert_eq!(
        run.ok(),
        format!("{}\n", token.sign("http://h/sms", &[("A", "1")]))
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("TWILIO_AUTH_TOKEN"), "{}", run.stderr);
}

#[test]
fn sign_refuses_a_param_without_equals() {
    let args = owned(&["sign", "--url", "http://h/sms", "--token", "t", "Body"]);
    let run = run_blocking(&args, &[], None);
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("expected NAME=VALUE"), "{}", run.stderr);
}

#[tokio::test]
async fn sign_curl_command_run_by_a_shell_gets_a_twiml_reply() {
    let curl_found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join("curl").is_file());
    assert!(
        curl_found,
        "this test runs the printed command: it needs curl on PATH"
    );
    let server = TestServer::start(&[]).await;
    let url = server.url("/sms?tenant=a&b=it's");
    let body = "Body=it's \"5\" > 3 & 100% + @home\r\nline 2 — ünïcödé 😀 $HOME `x` \\";
    let args = [
        "sign",
        "--url",
        &url,
        "--token",
        TOKEN,
        "--curl",
        "--",
        "MessageSid=SM0123456789abcdef0123456789abcdef",
        "AccountSid=AC0123456789abcdef0123456789abcdef",
        "From=+14155550199",
        "To=+14155550100",
        "NumMedia=0",
        body,
        "Ké y=v=w",
        "Ké y=second",
        "@at=@file",
        "=empty name",
    ];
    let command = sms_sessions(&args, &[], None)
        .await
        .ok()
        .trim_end()
        .to_owned();
    assert_eq!(command.lines().count(), 1, "one line: {command}");
    let shell = tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .arg("-c")
            .arg(&command)
            .output()
            .expect("sh runs")
    })
    .await
    .expect("runner");
    assert_eq!(
        String::from_utf8_lossy(&shell.stdout),
        TWIML_NEW,
        "stderr: {}",
        String::from_utf8_lossy(&shell.stderr)
    );
}

// ---------------------------------------------------------------------------------- send

#[tokio::test]
async fn send_holds_a_conversation_across_invocations_through_its_jar() {
    let server = TestServer::start(&[]).await;
    let jar = scratch("conversation").join("jar.toml");
    assert_eq!(send(&server, &jar, RAY, "one").await.ok(), NEW);
    assert_eq!(send(&server, &jar, RAY, "two").await.ok(), nth(2));
    assert_eq!(send(&server, &jar, RAY, "three").await.ok(), nth(3));
}

#[tokio::test]
async fn send_keeps_pairs_apart() {
    let server = TestServer::start(&[]).await;
    let jar = scratch("pairs").join("jar.toml");
    assert_eq!(send(&server, &jar, RAY, "a").await.ok(), NEW);
    assert_eq!(send(&server, &jar, RAY, "b").await.ok(), nth(2));
    assert_eq!(send(&server, &jar, FINN, "c").await.ok(), NEW);
    assert_eq!(send(&server, &jar, RAY, "d").await.ok(), nth(3));
    assert_eq!(send(&server, &jar, FINN, "e").await.ok(), nth(2));
}

/// `send` from each of `phones` at once, all on one jar; their outputs, in the same order.
async fn send_all_at_once(
    server: &TestServer,
    jar: &Path,
    phones: &[String],
    body: &str,
) -> Vec<Run> {
    let env = owned_env(&[("TWILIO_AUTH_TOKEN", TOKEN)]);
    let children: Vec<_> = phones
        .iter()
        .map(|phone| {
            let args = client_args("send", &server.url("/sms"), phone, Some(jar), &[body]);
            let env = env.clone();
            tokio::task::spawn_blocking(move || run_blocking(&args, &env, None))
        })
        .collect();
    let mut runs = Vec::with_capacity(children.len());
    for child in children {
        runs.push(child.await.expect("the child runner does not panic"));
    }
    runs
}

/// The `from` of every pair in the jar file, sorted.
fn jar_phones(jar: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(jar).expect("the jar exists");
    let table: toml::Table = text.parse().expect("the jar is TOML");
    let pairs = table.get("pair").and_then(toml::Value::as_array);
    let mut phones: Vec<String> = pairs
        .into_iter()
        .flatten()
        .filter_map(|pair| pair.get("from").and_then(toml::Value::as_str))
        .map(str::to_owned)
        .collect();
    phones.sort();
    phones
}

/// 16 `send`s for 16 phones, and a `chat` for a 17th, all at once on one jar: every pair is
/// kept, and kept with its own cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_on_one_jar_never_lose_a_pair() {
    let server = TestServer::start(&[]).await;
    let jar = scratch("concurrent").join("jar.toml");
    let phones: Vec<String> = (0..16)
        .map(|n| format!("+1415555{:04}", 2000 + n))
        .collect();
    let chatter = "+14155552100";
    let chat_args = client_args("chat", &server.url("/sms"), chatter, Some(&jar), &[]);
    let env = owned_env(&[("TWILIO_AUTH_TOKEN", TOKEN)]);
    let script = "one\ntwo\nthree\n".to_owned();
    let chat = tokio::task::spawn_blocking(move || run_blocking(&chat_args, &env, Some(script)));
    for run in send_all_at_once(&server, &jar, &phones, "first").await {
        assert_eq!(run.ok(), NEW);
    }
    let chat = chat.await.expect("the child runner does not panic");
    assert_eq!(chat.ok(), format!("{NEW}{}{}", nth(2), nth(3)));
    let mut everyone = phones.clone();
    everyone.push(chatter.to_owned());
    everyone.sort();
    assert_eq!(jar_phones(&jar), everyone, "every pair is in the jar");
    // Each pair kept its own cookie: every conversation goes on.
    for run in send_all_at_once(&server, &jar, &phones, "second").await {
        assert_eq!(run.ok(), nth(2));
    }
    assert_eq!(send(&server, &jar, chatter, "four").await.ok(), nth(4));
    assert_eq!(jar_phones(&jar), everyone);
}

/// Rewrites every stored cookie's expiry in the jar file.
fn set_jar_expiry(jar: &Path, expires: i64) {
    let text = std::fs::read_to_string(jar).expect("the jar exists");
    let mut table: toml::Table = text.parse().expect("the jar is TOML");
    let pairs = table.get_mut("pair").and_then(toml::Value::as_array_mut);
    let pairs = pairs.expect("the jar has pairs");
    for pair in pairs {
        let cookies = pair.get_mut("cookie").and_then(toml::Value::as_array_mut);
        for cookie in cookies.expect("the pair has cookies") {
            cookie["expires"] = toml::Value::Integer(expires);
        }
    }
    std::fs::write(jar, toml::to_string(&table).expect("serialisable")).expect("written");
}

fn unix_now() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(elapsed.as_secs()).expect("fits")
}

#[tokio::test]
async fn an_expired_jar_entry_is_not_sent() {
    let server = TestServer::start(&[]).await;
    let jar = scratch("expired").join("jar.toml");
    assert_eq!(send(&server, &jar, RAY, "a").await.ok(), NEW);
    // Crafted: the same cookie, still valid for a minute, is sent.
    set_jar_expiry(&jar, unix_now() + 60);
    assert_eq!(send(&server, &jar, RAY, "b").await.ok(), nth(2));
    // Crafted: the same cookie, expired a second ago, is not.
    set_jar_expiry(&jar, unix_now() - 1);
    assert_eq!(send(&server, &jar, RAY, "c").await.ok(), NEW);
}

#[tokio::test]
async fn send_uses_the_cache_directory_by_default() {
    let server = TestServer::start(&[]).await;
    let cache = scratch("cache");
    let args = client_args("send", &server.url("/sms"), RAY, None, &["hi"]);
    let cache_str = cache.to_string_lossy();
    let env = [("TWILIO_AUTH_TOKEN", TOKEN), ("XDG_CACHE_HOME", &cache_str)];
    assert_eq!(sms_sessions(&args, &env, None).await.ok(), NEW);
    assert_eq!(sms_sessions(&args, &env, None).await.ok(), nth(2));
    assert!(cache.join("sms-sessions/jar.toml").is_file());
}

#[tokio::test]
async fn send_raw_prints_the_twiml() {
    let server = TestServer::start(&[]).await;
    let jar = scratch("raw").join("jar.toml");
    let rest = ["--raw", "--media", "https://example.com/cat.jpg", "look"];
    let args = client_args("send", &server.url("/sms"), RAY, Some(&jar), &rest);
    let run = sms_sessions(&args, &[("TWILIO_AUTH_TOKEN", TOKEN)], None).await;
    assert_eq!(run.ok(), format!("{TWIML_NEW}\n"));
}

#[tokio::test]
async fn send_without_a_token_talks_to_a_development_server() {
    let config = Config::load(None, &[("SMS_SESSIONS_SECRET", SECRET)]).expect("dev mode");
    assert!(config.twilio.dev_mode);
    let server = TestServer::with_state(AppState::new(config).expect("the test flows load")).await;
    let jar = scratch("dev").join("jar.toml");
    let args = client_args("send", &server.url("/sms"), RAY, Some(&jar), &["x"]);
    let run = sms_sessions(&args, &[], None).await;
    assert_eq!(run.ok(), NEW);
    assert!(run.stderr.contains("development token"), "{}", run.stderr);
}

#[tokio::test]
async fn send_signs_for_the_public_url_when_posting_through_a_proxy() {
    let server = TestServer::start(&[("SMS_SESSIONS_PUBLIC_URL", "https://sms.example.com")]).await;
    let jar = scratch("public").join("jar.toml");
    let url = server.url("/sms");
    let env = [("TWILIO_AUTH_TOKEN", TOKEN)];
    let args = |rest: &[&str]| client_args("send", &url, RAY, Some(&jar), rest);
    let direct = sms_sessions(&args(&["x"]), &env, None).await;
    assert_eq!(direct.code, Some(1), "signed for the wrong URL: {direct:?}");
    let public = ["--public-url", "https://sms.example.com", "x"];
    let through_proxy = sms_sessions(&args(&public), &env, None).await;
    assert_eq!(through_proxy.ok(), NEW);
}

#[tokio::test]
async fn send_names_the_status_and_reason_of_a_refusal() {
    let server = TestServer::start(&[]).await;
    let jar = scratch("refused").join("jar.toml");
    let rest = ["--token", "not-the-token", "x"];
    let args = client_args("send", &server.url("/sms"), RAY, Some(&jar), &rest);
    let run = sms_sessions(&args, &[], None).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "sms-sessions send: the server answered 403 Forbidden: invalid signature: signature does \
         not match\n"
    );
    assert!(!jar.exists(), "nothing to store from a refusal");
}

#[tokio::test]
async fn send_to_a_dead_port_says_connection_refused() {
    let url = format!("http://127.0.0.1:{}/sms", dead_port());
    let jar = scratch("dead").join("jar.toml");
    let args = client_args("send", &url, RAY, Some(&jar), &["x"]);
    let run = sms_sessions(&args, &[("TWILIO_AUTH_TOKEN", TOKEN)], None).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------- chat

#[tokio::test]
async fn chat_driven_by_piped_stdin() {
    let server = TestServer::start(&[]).await;
    let jar = scratch("chat").join("jar.toml");
    let args = client_args("chat", &server.url("/sms"), RAY, Some(&jar), &[]);
    let script = format!(
        "hello\nagain\n\n/reset\nfresh start\n/from {FINN}\nhi from Finn\n/quit\nnever sent\n"
    );
    let run = sms_sessions(&args, &[("TWILIO_AUTH_TOKEN", TOKEN)], Some(&script)).await;
    assert_eq!(run.ok(), format!("{NEW}{}{NEW}{NEW}", nth(2)));
    assert!(
        !run.stderr.contains('>'),
        "no prompts when piped: {}",
        run.stderr
    );
    // The jar outlives chat: both pairs go on where chat left them.
    assert_eq!(send(&server, &jar, RAY, "later").await.ok(), nth(2));
    assert_eq!(send(&server, &jar, FINN, "later").await.ok(), nth(2));
}

#[tokio::test]
async fn chat_keeps_going_after_a_failed_text_and_exits_1() {
    let url = format!("http://127.0.0.1:{}/sms", dead_port());
    let jar = scratch("chat-dead").join("jar.toml");
    let args = client_args("chat", &url, RAY, Some(&jar), &[]);
    let run = sms_sessions(&args, &[("TWILIO_AUTH_TOKEN", TOKEN)], Some("a\nb\n")).await;
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr.matches("connection refused").count(),
        2,
        "{}",
        run.stderr
    );
}

// ----------------------------------------------------------------- healthcheck, check-config

#[tokio::test]
async fn healthcheck_exits_0_on_a_live_server() {
    let server = TestServer::start(&[]).await;
    for url in [server.url("/healthz"), server.url("")] {
        let run = sms_sessions(&["healthcheck", "--url", &url], &[], None).await;
        assert_eq!(run.code, Some(0), "{url}: {run:?}");
    }
    let listen = server.addr.to_string();
    let env = [("SMS_SESSIONS_LISTEN", listen.as_str())];
    let run = sms_sessions(&["healthcheck"], &env, None).await;
    assert_eq!(run.code, Some(0), "from the configured address: {run:?}");
}

#[tokio::test]
async fn healthcheck_fails_on_a_dead_port_or_a_non_200() {
    let dead = format!("http://127.0.0.1:{}/healthz", dead_port());
    let run = sms_sessions(&["healthcheck", "--url", &dead], &[], None).await;
    assert_ne!(run.code, Some(0), "{run:?}");
    let server = TestServer::start(&[]).await;
    let missing = server.url("/no-such-page");
    let run = sms_sessions(&["healthcheck", "--url", &missing], &[], None).await;
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("404"), "{}", run.stderr);
}

#[test]
fn check_config_names_the_bad_key() {
    let cases = [
        ("SMS_SESSIONS_SESSION_TTL", "soon", "session.ttl"),
        ("SMS_SESSIONS_FLOW", "echo", "flow.kind"),
        ("SMS_SESSIONS_SECRET", "short", "session.secret"),
    ];
    for (name, value, key) in cases {
        let env = owned_env(&[("TWILIO_AUTH_TOKEN", "t"), (name, value)]);
        let run = run_blocking(&owned(&["check-config"]), &env, None);
        assert_ne!(run.code, Some(0), "{name}");
        assert!(run.stderr.contains(key), "{name}: {}", run.stderr);
    }
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let token = "tok-very-secret-123";
    let secret = "a-session-secret-of-at-least-32-bytes!";
    let env = owned_env(&[
        ("TWILIO_AUTH_TOKEN", token),
        ("SMS_SESSIONS_SECRET", secret),
        ("SMS_SESSIONS_FLOW", "named-counter"),
    ]);
    let run = run_blocking(&owned(&["check-config"]), &env, None);
    let shown = run.ok();
    assert!(shown.contains("kind = \"named-counter\""), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains(token) && !shown.contains(secret), "{shown}");
}
