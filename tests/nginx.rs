//! A real nginx terminating TLS in front of the real server, running the committed
//! `deploy/nginx/conf.d/sms-sessions.conf` (ports, hostname, certificate paths and upstream
//! swapped), for the three set-ups a deployment can pick:
//!
//! - A, `public_url`: the server is told `https://sms.test:PORT`;
//! - B, `trust_forwarded`: the server rebuilds the URL from nginx's X-Forwarded-* headers
//!   (and, under `/twilio/`, X-Forwarded-Prefix);
//! - C, a prefix: nginx strips `/twilio`, the server is told `https://sms.test:PORT/twilio`.
//!
//! In each, a phone texts three times through nginx over HTTPS, signing for the https URL it
//! actually requests, and the conversation counts 1, 2, 3. A GET webhook then shows that nginx's
//! access log keeps neither number, the text nor the signature. nginx runs as the current user with
//! its own prefix and temp dirs on loopback ports; the certificate is made here with `openssl`.
//! nginx, curl and openssl must be installed (`scripts/install-nginx.sh`): when one is missing
//! the test fails under CI (`CI` set) and prints a loud skip notice otherwise.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TOKEN, TestServer, form};
use sms_sessions::client::params::{self, PLACEHOLDER_ACCOUNT_SID, Text};
use sms_sessions::twilio::signature::AuthToken;

const SITE: &str = include_str!("../deploy/nginx/conf.d/sms-sessions.conf");
const REDIRECT: &str = include_str!("../deploy/nginx/conf.d/http.conf");
const HOST: &str = "sms.test";
const ME: &str = "+14155550199";
const TWILIO: &str = "+14155550100";
const COUNTS: [&str; 3] = [
    "Hello, thanks for the new message.",
    "Hello, thanks for message number 2",
    "Hello, thanks for message number 3",
];

/// The tools this test drives; `None` (after a loud notice) when it may be skipped.
struct Tools {
    nginx: PathBuf,
}

fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .chain(extra.iter().map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

fn tools() -> Option<Tools> {
    let nginx = match std::env::var_os("NGINX") {
        Some(path) => Some(PathBuf::from(path)).filter(|path| path.is_file()),
        None => find_program("nginx", &["/usr/sbin/nginx"]),
    };
    let missing: Vec<&str> = [
        ("nginx", nginx.is_some()),
        ("curl", find_program("curl", &[]).is_some()),
        ("openssl", find_program("openssl", &[]).is_some()),
    ]
    .into_iter()
    .filter_map(|(name, found)| (!found).then_some(name))
    .collect();
    if missing.is_empty() {
        return nginx.map(|nginx| Tools { nginx });
    }
    let message = format!(
        "tests/nginx.rs needs {} (run: bash scripts/install-nginx.sh)",
        missing.join(", ")
    );
    common::tool_missing(&message);
    None
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("sms-sessions-nginx-{}-{nanos}", std::process::id()));
        for sub in ["tls", "logs", "temp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create scratch dirs");
        }
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A self-signed certificate for `sms.test`, made now.
fn make_certificate(dir: &Scratch) {
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={HOST}")])
        .args(["-addext", &format!("subjectAltName=DNS:{HOST}")])
        .args(["-keyout", &dir.path("tls/privkey.pem")])
        .args(["-out", &dir.path("tls/fullchain.pem")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl could not make a certificate");
}

/// Replaces `from` (which must occur) with `to`: if the deploy file changes shape, this test
/// says so instead of silently testing something else.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "deploy/nginx/conf.d/sms-sessions.conf no longer contains {from:?}; update tests/nginx.rs"
    );
    text.replace(from, to)
}

/// The committed site, listening on `port` and proxying to `backend`, named `name`.
fn site(dir: &Scratch, name: &str, port: u16, backend: u16) -> String {
    let text = swap(SITE, "sms_sessions", &format!("sms_sessions_{name}"));
    let text = swap(
        &text,
        "server sms-sessions:8080;",
        &format!("server 127.0.0.1:{backend};"),
    );
    let text = swap(
        &text,
        "listen 443 ssl;",
        &format!("listen 127.0.0.1:{port} ssl;"),
    );
    let text = swap(&text, "listen [::]:443 ssl;", "");
    let text = swap(&text, "sms.example.com", HOST);
    let text = swap(&text, "/etc/nginx/tls/", &dir.path("tls/"));
    swap(&text, "/var/log/nginx/", &dir.path("logs/"))
}

/// The committed port-80 redirect, listening on `port`.
fn redirect_site(dir: &Scratch, port: u16) -> String {
    let text = swap(REDIRECT, "listen 80;", &format!("listen 127.0.0.1:{port};"));
    let text = swap(&text, "listen [::]:80;", "");
    let text = swap(&text, "sms.example.com", HOST);
    let text = swap(&text, "/var/www/acme", &dir.path("acme"));
    swap(&text, "/var/log/nginx/", &dir.path("logs/"))
}

/// The parameters Twilio sends for one text from `ME` (the whole set the server checks).
fn text_params(body: &str) -> Vec<(String, String)> {
    let text = Text {
        from: ME,
        to: TWILIO,
        body,
        media: &[],
    };
    let sid = params::new_message_sid(false);
    params::for_text(&text, &sid, PLACEHOLDER_ACCOUNT_SID)
}

fn borrowed(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The server behind nginx, told that nginx sets X-Request-Id, plus `env`.
async fn backend(env: &[(&str, &str)]) -> TestServer {
    let mut all = vec![("SMS_SESSIONS_TRUST_REQUEST_ID", "true")];
    all.extend_from_slice(env);
    TestServer::start(&all).await
}

/// The top-level config around the sites: one foreground process as the current user, every
/// path inside the scratch directory.
fn nginx_conf(dir: &Scratch, sites: &[String]) -> String {
    let temp = dir.path("temp");
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\n\
         error_log {error} info;\nevents {{ worker_connections 64; }}\nhttp {{\n\
         client_body_temp_path {temp}/body;\nproxy_temp_path {temp}/proxy;\n\
         fastcgi_temp_path {temp}/fastcgi;\nuwsgi_temp_path {temp}/uwsgi;\n\
         scgi_temp_path {temp}/scgi;\n{sites}\n}}\n",
        pid = dir.path("nginx.pid"),
        error = dir.path("logs/error.log"),
        sites = sites.join("\n"),
    )
}

/// nginx in the foreground; killed on drop.
struct Nginx {
    child: Child,
    error_log: String,
}

impl Nginx {
    fn start(tools: &Tools, dir: &Scratch, conf: &str) -> Self {
        let conf_path = dir.path("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let args = |test: bool| {
            let mut args = vec!["-p".to_owned(), dir.path(""), "-e".to_owned()];
            args.extend([
                dir.path("logs/error.log"),
                "-c".to_owned(),
                conf_path.clone(),
            ]);
            if test {
                args.push("-t".to_owned());
            }
            args
        };
        let check = Command::new(&tools.nginx)
            .args(args(true))
            .output()
            .expect("run nginx -t");
        assert!(
            check.status.success(),
            "nginx -t rejected the config:\n{}\n{conf}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(&tools.nginx)
            .args(args(false))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        Self {
            child,
            error_log: dir.path("logs/error.log"),
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(&self.error_log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTPS exchange through nginx, with curl trusting only the test certificate.
#[derive(Debug)]
struct Exchange {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Exchange {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn message(&self) -> &str {
        let start = self.body.find("<Message>").map(|i| i + "<Message>".len());
        let end = self.body.find("</Message>");
        match (start, end) {
            (Some(start), Some(end)) if start <= end => &self.body[start..end],
            _ => panic!("no <Message> in {self:?}"),
        }
    }
}

struct Curl {
    ca: String,
    port: u16,
}

impl Curl {
    /// `https://sms.test:PORT` + `path`: the URL the client requests and signs.
    fn url(&self, path: &str) -> String {
        format!("https://{HOST}:{}{path}", self.port)
    }

    async fn request(&self, path: &str, body: Option<String>, headers: Vec<String>) -> Exchange {
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--include", "--max-time", "10"])
            .args(["--cacert", &self.ca])
            .args(["--resolve", &format!("{HOST}:{}:127.0.0.1", self.port)]);
        for header in &headers {
            command.args(["--header", header]);
        }
        if let Some(body) = &body {
            command.args(["--data-binary", body]);
        }
        command.arg(self.url(path));
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("curl task")
            .expect("run curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        parse_response(&text)
    }

    /// A form POST signed with `token` for `signed_url`.
    async fn post(
        &self,
        path: &str,
        signed_url: &str,
        pairs: &[(&str, &str)],
        token: &str,
        mut headers: Vec<String>,
    ) -> Exchange {
        let signature = AuthToken::new(token)
            .expect("token")
            .sign(signed_url, pairs);
        headers.push(format!("X-Twilio-Signature: {signature}"));
        headers.push("Content-Type: application/x-www-form-urlencoded".to_owned());
        self.request(path, Some(form(pairs)), headers).await
    }
}

fn parse_response(text: &str) -> Exchange {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Exchange {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Three texts through nginx to `path` (with a query, which must pass verbatim), signed for the
/// https URL requested, keeping the pair's cookie like Twilio: the replies count 1, 2, 3.
async fn conversation(curl: &Curl, path: &str, extra: &[&str]) {
    let mut cookie: Option<String> = None;
    for (n, expected) in COUNTS.iter().enumerate() {
        let pairs = text_params("hello+world & more");
        let pairs = borrowed(&pairs);
        let mut headers: Vec<String> = extra.iter().map(|h| (*h).to_owned()).collect();
        if let Some(cookie) = &cookie {
            headers.push(format!("Cookie: {cookie}"));
        }
        let reply = curl
            .post(path, &curl.url(path), &pairs, TOKEN, headers)
            .await;
        assert_eq!(
            reply.status,
            200,
            "{} text {}: {reply:?}",
            curl.url(path),
            n + 1
        );
        assert_eq!(reply.message(), *expected, "{}", curl.url(path));
        let set_cookie = reply.header("set-cookie").expect("the cookie is re-issued");
        assert!(
            set_cookie.ends_with("; Secure"),
            "https => Secure: {set_cookie}"
        );
        let id = reply.header("x-request-id").unwrap_or_default();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "nginx's $request_id reaches the server and comes back: {id:?}"
        );
        cookie = set_cookie.split(';').next().map(str::to_owned);
    }
}

/// A signature for any other URL (here: the server's own http address) is refused through nginx.
async fn wrong_url_is_refused(curl: &Curl, path: &str, backend: &TestServer) {
    let pairs = text_params("forged");
    let pairs = borrowed(&pairs);
    let internal = backend.url("/sms");
    let reply = curl.post(path, &internal, &pairs, TOKEN, Vec::new()).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let reply = curl
        .post(path, &curl.url(path), &pairs, "not-the-token", Vec::new())
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_validate_through_nginx_in_all_three_set_ups() {
    let Some(tools) = tools() else {
        return;
    };
    let dir = Scratch::new();
    make_certificate(&dir);
    let ports = [free_port(), free_port(), free_port()];
    let (a, b, c) = (ports[0], ports[1], ports[2]);
    let public_a = format!("https://{HOST}:{a}");
    let public_c = format!("https://{HOST}:{c}/twilio");
    let server_a = backend(&[("SMS_SESSIONS_PUBLIC_URL", &public_a)]).await;
    let server_b = backend(&[("SMS_SESSIONS_TRUST_FORWARDED", "true")]).await;
    let server_c = backend(&[("SMS_SESSIONS_PUBLIC_URL", &public_c)]).await;
    let sites = [
        site(&dir, "a", a, server_a.addr.port()),
        site(&dir, "b", b, server_b.addr.port()),
        site(&dir, "c", c, server_c.addr.port()),
    ];
    let nginx = Nginx::start(&tools, &dir, &nginx_conf(&dir, &sites));
    let ca = dir.path("tls/fullchain.pem");
    let curl = |port| Curl {
        ca: ca.clone(),
        port,
    };
    let (via_a, via_b, via_c) = (curl(a), curl(b), curl(c));
    wait_until_ready(&[&via_a, &via_b, &via_c], &nginx).await;

    // A: public_url.
    conversation(&via_a, "/sms?tenant=a+b&x=%2B1", &[]).await;
    wrong_url_is_refused(&via_a, "/sms", &server_a).await;

    // B: trust_forwarded, at the root and under the prefix (X-Forwarded-Prefix). A client's
    // own forwarding headers are overwritten or dropped by nginx, so they change nothing.
    let spoofed = [
        "Forwarded: proto=http;host=evil.example",
        "X-Forwarded-Host: evil.example",
        "X-Forwarded-Proto: http",
        "X-Forwarded-Prefix: /evil",
    ];
    conversation(&via_b, "/sms?tenant=a+b", &spoofed).await;
    conversation(&via_b, "/twilio/sms?tenant=a+b", &[]).await;
    wrong_url_is_refused(&via_b, "/sms", &server_b).await;

    // C: the prefix is stripped by nginx and restored by public_url.
    conversation(&via_c, "/twilio/sms?tenant=a+b&x=%2B1", &[]).await;
    wrong_url_is_refused(&via_c, "/twilio/sms", &server_c).await;
    let pairs = text_params("unprefixed");
    let unprefixed = via_c
        .post(
            "/sms",
            &via_c.url("/sms"),
            &borrowed(&pairs),
            TOKEN,
            Vec::new(),
        )
        .await;
    assert_eq!(unprefixed.status, 403, "C's public URL includes /twilio");

    // The proxy keeps /metrics private and lets health checks through.
    for via in [&via_a, &via_c] {
        assert_eq!(via.request("/metrics", None, Vec::new()).await.status, 404);
        assert_eq!(
            via.request("/twilio/metrics", None, Vec::new())
                .await
                .status,
            404
        );
        assert_eq!(via.request("/healthz", None, Vec::new()).await.status, 200);
    }
    let access = std::fs::read_to_string(dir.path("logs/access.log")).unwrap_or_default();
    assert!(
        access.contains("\"POST /twilio/sms HTTP/1.1\" 200"),
        "{access}"
    );
    assert!(
        !access.contains("tenant"),
        "no query in the access log:\n{access}"
    );
}

async fn wait_until_ready(vias: &[&Curl], nginx: &Nginx) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for via in vias {
        loop {
            let port = via.port;
            let up = tokio::task::spawn_blocking(move || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            })
            .await
            .expect("probe task");
            if up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {port}:\n{}",
                nginx.error_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A GET webhook's query holds both numbers and the text, and its signature header is enough
/// to replay it: none of them may reach nginx's access log, at the https site or at the
/// port-80 redirect a misconfigured webhook would hit. The log still joins on the request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_webhook_leaves_no_number_text_or_signature_in_the_access_log() {
    let Some(tools) = tools() else {
        return;
    };
    let dir = Scratch::new();
    make_certificate(&dir);
    let (port, redirect_port) = (free_port(), free_port());
    let server = backend(&[("SMS_SESSIONS_PUBLIC_URL", &format!("https://{HOST}:{port}"))]).await;
    let sites = [
        site(&dir, "log", port, server.addr.port()),
        redirect_site(&dir, redirect_port),
    ];
    let nginx = Nginx::start(&tools, &dir, &nginx_conf(&dir, &sites));
    let via = Curl {
        ca: dir.path("tls/fullchain.pem"),
        port,
    };
    wait_until_ready(&[&via], &nginx).await;

    let body = "meet me at the Zanzibar cafe & bring 5% more";
    let pairs = text_params(body);
    let path = format!("/sms?{}", form(&borrowed(&pairs)));
    let signature = AuthToken::new(TOKEN)
        .expect("token")
        .sign(&via.url(&path), &[] as &[(&str, &str)]);
    let header = format!("X-Twilio-Signature: {signature}");
    let reply = via.request(&path, None, vec![header.clone()]).await;
    assert_eq!(
        (reply.status, reply.message()),
        (200, COUNTS[0]),
        "{reply:?}"
    );
    let id = reply.header("x-request-id").unwrap_or_default().to_owned();
    let redirected = plain_get(redirect_port, &path, &header).await;
    assert!(redirected.starts_with("HTTP/1.1 301"), "{redirected}");

    let access = std::fs::read_to_string(dir.path("logs/access.log")).unwrap_or_default();
    assert!(
        access.contains("\"GET /sms HTTP/1.1\" 200") && access.contains(&format!("id={id}")),
        "the webhook is logged, by path and request id:\n{access}"
    );
    assert!(access.contains("\"GET /sms HTTP/1.1\" 301"), "{access}");
    // The digits catch every encoding of the numbers (+1…, %2B1…, %2b1…).
    for secret in [
        "4155550199",
        "4155550100",
        "Zanzibar",
        "From",
        "Body",
        &signature,
    ] {
        assert!(
            !access.contains(secret),
            "{secret:?} in the access log:\n{access}"
        );
    }
}

/// `GET path` over plain http to the port-80 site, with one extra header; the raw answer.
async fn plain_get(port: u16, path: &str, header: &str) -> String {
    use std::io::{Read as _, Write as _};
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{header}\r\nConnection: close\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .expect("plain GET task")
}
