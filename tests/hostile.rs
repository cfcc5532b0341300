//! Hostile input over HTTP (issue 6): a table of requests nobody well-behaved sends — odd
//! bodies, cookies, headers, methods and paths, some written byte by byte on a raw TCP
//! connection — each with the answer it must get. Nothing may earn a 5xx; the webhook either
//! refuses (4xx) or answers with a fresh session. After the table, the same server still holds
//! a normal conversation.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Method, Request};
use sms_sessions::client::http::{self, Reply};
use sms_sessions::routes::sms::unix_now;
use sms_sessions::session::{Pair, SessionCodec};
use sms_sessions::twilio::signature::AuthToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{Phone, SECRET, TOKEN, TestServer, codec, counted, message_text};

const ME: &str = "+14155550199";
const TWILIO: &str = "+14155550100";
const FIRST: &str = "Hello, thanks for the new message.";
const LIMIT: usize = 65_536;

/// What a case must get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exactly this status.
    Status(u16),
    /// 200 TwiML opening a new conversation, with a new cookie.
    Fresh,
    /// 200 TwiML continuing the conversation: "message number n".
    Resumed(u32),
    /// For requests HTTP itself cannot make sense of: a 4xx, or the connection closed
    /// without an answer.
    RefusedByHttp,
}

/// Which server a case talks to.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The default: URL rebuilt from `Host`.
    Plain,
    /// `trust_forwarded = true`: URL rebuilt from `Forwarded` / `X-Forwarded-*`.
    Proxied,
}

/// A request built for the hyper client (any method, any header bytes).
#[derive(Debug, Clone)]
struct Http {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    target: Target,
}

#[derive(Debug, Clone)]
enum Send {
    Http(Http),
    /// Bytes written to a fresh connection to the plain server, then the write side is closed.
    Raw(Vec<u8>),
}

struct Case {
    name: &'static str,
    send: Send,
    expect: Expect,
}

/// The servers and the material the cases are built from.
struct Ctx {
    plain: SocketAddr,
    proxied: SocketAddr,
    /// A valid cookie of (TWILIO, ME) after one message.
    cookie: String,
}

impl Ctx {
    fn host(&self) -> String {
        self.plain.to_string()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.plain)
    }
}

fn request(method: &'static str, path: &str) -> Http {
    Http {
        method,
        path: path.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
        target: Target::Plain,
    }
}

fn post(path: &str) -> Http {
    request("POST", path)
}

fn pair_form(extra: &[(&str, &str)]) -> Vec<u8> {
    let mut pairs = common::inbound_pairs(common::SID, ME, TWILIO, "");
    pairs.retain(|(key, _)| {
        extra
            .iter()
            .all(|(extra, _)| extra != key || *key == "From")
    });
    pairs.extend_from_slice(extra);
    common::form(&pairs).into_bytes()
}

/// The decoded pairs as the server will see them (lossy UTF-8, `+` as space).
fn decoded(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn signature_for(url: &str, pairs: &[(String, String)]) -> Vec<u8> {
    let token = AuthToken::new(TOKEN).expect("non-empty");
    token.sign(url, pairs).into_bytes()
}

impl Http {
    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A form body with the usual Content-Type.
    fn form(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    fn proxied(mut self) -> Self {
        self.target = Target::Proxied;
        self
    }

    /// Signed as Twilio would for `url`: POST signs the body's pairs, GET the URL alone.
    fn signed_for(self, url: &str) -> Self {
        let pairs = if self.method == "POST" {
            decoded(&self.body)
        } else {
            Vec::new()
        };
        let signature = signature_for(url, &pairs);
        self.header("x-twilio-signature", signature)
    }

    /// Signed for the URL the plain server rebuilds from the client's `Host`.
    fn signed(self, ctx: &Ctx) -> Self {
        let url = ctx.url(&self.path);
        self.signed_for(&url)
    }

    fn cookie(self, value: impl Into<String>) -> Self {
        self.header("cookie", value.into())
    }

    fn case(self, name: &'static str, expect: Expect) -> Case {
        Case {
            name,
            send: Send::Http(self),
            expect,
        }
    }
}

fn raw(name: &'static str, bytes: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        send: Send::Raw(bytes.into()),
        expect,
    }
}

/// A signed webhook of (TWILIO, ME) carrying `cookie`: the cookie alone decides the answer.
fn with_cookie(ctx: &Ctx, name: &'static str, cookie: impl Into<Vec<u8>>, expect: Expect) -> Case {
    post("/sms")
        .form(pair_form(&[("Body", "hi")]))
        .signed(ctx)
        .header("cookie", cookie)
        .case(name, expect)
}

fn body_cases(ctx: &Ctx) -> Vec<Case> {
    let junk: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut binary_with_pair = b"\xff\xfe\x00&From=%2B14155550199&\x01\x02=\x03&To=".to_vec();
    binary_with_pair.extend_from_slice(b"%2B14155550100&Body=\xc3\x28\xf0\x9f&\x80=\x81");
    let padding = |total: usize| {
        let head = pair_form(&[("Body", "")]);
        let mut body = head.clone();
        body.extend(std::iter::repeat_n(b'x', total - head.len()));
        body
    };
    let many_pairs: String = (0..5_000).map(|i| format!("k{i}=v&")).collect();
    vec![
        post("/sms")
            .form("")
            .case("empty body, unsigned", Expect::Status(403)),
        post("/sms")
            .form("")
            .signed(ctx)
            .case("empty body, signed: no From", Expect::Status(400)),
        post("/sms")
            .form(junk.clone())
            .signed(ctx)
            .case("binary body, signed", Expect::Status(400)),
        post("/sms")
            .form(junk)
            .case("binary body, unsigned", Expect::Status(403)),
        post("/sms").form(binary_with_pair).signed(ctx).case(
            "binary around a valid pair, invalid UTF-8 decoded lossily",
            Expect::Status(400),
        ),
        post("/sms")
            .form("From=%ZZ&To=%2&Body=%&%=%%")
            .signed(ctx)
            .case(
                "bad percent escapes, kept literally, are no address",
                Expect::Status(400),
            ),
        post("/sms")
            .form(pair_form(&[("Body", "\0\u{7}\r\n\u{FFFF}")]))
            .signed(ctx)
            .case("percent-encoded NUL and controls in Body", Expect::Fresh),
        post("/sms")
            .form("From=%FF%FE&To=%C3%28&Body=%F0%9F")
            .signed(ctx)
            .case("percent-encoded invalid UTF-8 numbers", Expect::Status(400)),
        post("/sms")
            .form([pair_form(&[]), b"&%F0%9F=%91%8D&Note=%C3&%A9".to_vec()].concat())
            .signed(ctx)
            .case(
                "a character split between a key and its value (found by the fuzzer)",
                Expect::Fresh,
            ),
        post("/sms").form("From=+&To=+").signed(ctx).case(
            "plus signs decode to a space: From is no address",
            Expect::Status(400),
        ),
        post("/sms")
            .form("From&To&Body")
            .signed(ctx)
            .case("keys without values: From is empty", Expect::Status(400)),
        post("/sms")
            .form("&&&===&&=")
            .signed(ctx)
            .case("only separators", Expect::Status(400)),
        post("/sms")
            .form(padding(LIMIT))
            .signed(ctx)
            .case("body exactly at the limit", Expect::Fresh),
        post("/sms")
            .form(padding(LIMIT + 1))
            .signed(ctx)
            .case("body one byte over the limit", Expect::Status(413)),
        post("/sms")
            .form(vec![b'a'; 4 * 1_048_576])
            .case("4 MiB body, unsigned", Expect::Status(413)),
        post("/sms")
            .form(pair_form(&[("From", "+14155550123"), ("Body", "x")]))
            .signed(ctx)
            .case("duplicated From with another value", Expect::Status(400)),
        post("/sms")
            .form("From=%2B14155550199&From=%2B14155550199&To=%2B14155550100&To=%2B14155550100")
            .signed(ctx)
            .case("duplicated identical pairs", Expect::Status(400)),
        post("/sms")
            .form([many_pairs.into_bytes(), pair_form(&[])].concat())
            .signed(ctx)
            .case("5,000 parameters", Expect::Fresh),
        post("/sms")
            .form(pair_form(&[
                ("MediaUrl99999999999999999999", "x"),
                ("MediaUrl0", "https://example.com/a"),
                ("NumMedia", "-1"),
                ("NumSegments", "99999999999999999999"),
                ("Latitude", "NaN"),
                ("Forwarded", "yes"),
            ]))
            .signed(ctx)
            .case(
                "absurd media indexes and a negative NumMedia",
                Expect::Status(400),
            ),
        post("/sms")
            .form(pair_form(&[
                ("😀\u{202E}", "🎉"),
                ("Body", &"ü".repeat(10_000)),
            ]))
            .signed(ctx)
            .case("unicode keys and a 20 KB body", Expect::Fresh),
        post("/sms/status")
            .form("MessageSid=SM1")
            .signed(ctx)
            .case("status callback without MessageStatus", Expect::Status(400)),
        post("/sms/status")
            .form(vec![0xffu8; 100])
            .case("status callback of binary, unsigned", Expect::Status(403)),
    ]
}

fn cookie_cases(ctx: &Ctx) -> Vec<Case> {
    let now = unix_now();
    let pair = Pair {
        to: TWILIO,
        from: ME,
    };
    let other_pair = Pair {
        to: TWILIO,
        from: "+14155550666",
    };
    let ours = codec(SECRET);
    let foreign = codec("another-secret-another-secret-0123456789");
    let value = |codec: &SessionCodec, pair, at| codec.encode(&counted(5), pair, at).expect("fits");
    let valid = ctx.cookie.clone();
    let (_, valid_value) = valid.split_once('=').expect("name=value");
    let many: String = (0..300).map(|i| format!("c{i}=v{i}; ")).collect();
    vec![
        with_cookie(
            ctx,
            "garbage cookie",
            "sms_session=!!garbage!!",
            Expect::Fresh,
        ),
        with_cookie(ctx, "empty cookie value", "sms_session=", Expect::Fresh),
        with_cookie(
            ctx,
            "cookie name without a value",
            "sms_session",
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "truncated cookie",
            &valid[..valid.len() / 2],
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "cookie missing its last character",
            &valid[..valid.len() - 1],
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "oversized cookie (16 KB)",
            format!("sms_session=1.{}.x", "A".repeat(16_000)),
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "300 other cookies",
            format!("{many}x=y"),
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "cookie of another pair",
            format!("sms_session={}", value(&ours, other_pair, now)),
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "cookie signed with an unknown secret",
            format!("sms_session={}", value(&foreign, pair, now)),
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "unknown cookie version",
            format!("sms_session=2{}", &valid_value[1..]),
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "expired cookie",
            format!("sms_session={}", value(&ours, pair, now - 4 * 3600 - 60)),
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "cookie with the session in plaintext",
            "sms_session=count=41",
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "cookie bytes outside ASCII",
            b"sms_session=\xff\xfe\x80".to_vec(),
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "cookie of a future timestamp, other secret",
            format!("sms_session={}", value(&foreign, pair, now + 86_400)),
            Expect::Fresh,
        ),
        with_cookie(
            ctx,
            "garbage first, valid second: the valid one wins",
            format!("sms_session=junk; {valid}"),
            Expect::Resumed(2),
        ),
        with_cookie(
            ctx,
            "valid cookie in double quotes",
            format!("sms_session=\"{valid_value}\""),
            Expect::Resumed(2),
        ),
        post("/sms")
            .form(pair_form(&[]))
            .signed(ctx)
            .cookie("sms_session=junk")
            .cookie("a=b")
            .cookie(valid.clone())
            .case(
                "three Cookie headers, the valid one last",
                Expect::Resumed(2),
            ),
        {
            let mut many_headers = post("/sms").form(pair_form(&[])).signed(ctx);
            for i in 0..80 {
                many_headers = many_headers.cookie(format!("sms_session=bad{i}"));
            }
            many_headers.case("80 Cookie headers of garbage", Expect::Fresh)
        },
    ]
}

fn header_cases(ctx: &Ctx) -> Vec<Case> {
    let host = ctx.host();
    let signed_body = pair_form(&[("Body", "hello")]);
    let signature =
        String::from_utf8(signature_for(&ctx.url("/sms"), &decoded(&signed_body))).expect("base64");
    let truncated = &signed_body[..signed_body.len() - 6];
    let truncated_signature =
        String::from_utf8(signature_for(&ctx.url("/sms"), &decoded(truncated))).expect("base64");
    let raw_post = |headers: &str, body: &[u8]| {
        let mut bytes = format!("POST /sms HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n").into_bytes();
        bytes.extend_from_slice(body);
        bytes
    };
    let form = "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n";
    let mut junk_headers = post("/sms").form(pair_form(&[])).signed(ctx);
    for i in 0..150 {
        junk_headers = junk_headers.header("x-junk", format!("{i}"));
    }
    vec![
        post("/sms")
            .header("content-type", "text/plain")
            .body(signed_body.clone())
            .signed(ctx)
            .case("Content-Type text/plain", Expect::Status(415)),
        post("/sms")
            .body(signed_body.clone())
            .signed(ctx)
            .case("no Content-Type", Expect::Status(415)),
        post("/sms")
            .header("content-type", "application/json")
            .body(r#"{"From":"+1","To":"+2"}"#)
            .case("JSON body", Expect::Status(415)),
        post("/sms")
            .header("content-type", "multipart/form-data; boundary=x")
            .body("--x\r\n\r\n--x--")
            .case("multipart body", Expect::Status(415)),
        post("/sms")
            .header(
                "content-type",
                b"application/x-www-form-urlencoded\xff".to_vec(),
            )
            .body(signed_body.clone())
            .signed(ctx)
            .case(
                "Content-Type with a byte outside ASCII",
                Expect::Status(415),
            ),
        post("/sms")
            .header(
                "content-type",
                "APPLICATION/X-WWW-FORM-URLENCODED ; charset=UTF-8",
            )
            .body(signed_body.clone())
            .signed(ctx)
            .case("Content-Type in capitals with a charset", Expect::Fresh),
        raw(
            "Content-Length larger than the body, then EOF",
            raw_post(
                &format!("{form}X-Twilio-Signature: {signature}\r\nContent-Length: 5000\r\n"),
                &signed_body,
            ),
            Expect::Status(400),
        ),
        raw(
            "Content-Length smaller than the body: the cut body fails the signature",
            raw_post(
                &format!(
                    "{form}X-Twilio-Signature: {signature}\r\nContent-Length: {}\r\n",
                    truncated.len()
                ),
                &signed_body,
            ),
            Expect::Status(403),
        ),
        raw(
            "Content-Length smaller than the body, signed for the cut: the cut is the body",
            raw_post(
                &format!(
                    "{form}X-Twilio-Signature: {truncated_signature}\r\nContent-Length: {}\r\n",
                    truncated.len()
                ),
                &signed_body,
            ),
            Expect::Fresh,
        ),
        raw(
            "Content-Length not a number",
            raw_post(&format!("{form}Content-Length: lots\r\n"), &signed_body),
            Expect::RefusedByHttp,
        ),
        raw(
            "two different Content-Lengths",
            raw_post(
                &format!("{form}Content-Length: 3\r\nContent-Length: 4\r\n"),
                b"abcd",
            ),
            Expect::RefusedByHttp,
        ),
        raw(
            "Content-Length and chunked together",
            raw_post(
                &format!("{form}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
                b"0\r\n\r\n",
            ),
            Expect::RefusedByHttp,
        ),
        raw(
            "bad chunk size",
            raw_post(
                &format!("{form}Transfer-Encoding: chunked\r\n"),
                b"zz\r\nabc\r\n0\r\n\r\n",
            ),
            Expect::RefusedByHttp,
        ),
        raw(
            "HTTP/1.1 without Host",
            format!(
                "POST /sms HTTP/1.1\r\n{form}X-Twilio-Signature: {signature}\r\nContent-Length: 0\r\n\r\n"
            ),
            Expect::Status(400),
        ),
        post("/sms")
            .form(signed_body.clone())
            .header("host", "evil.example/x?")
            .case("Host that would restructure the URL", Expect::Status(400)),
        post("/sms")
            .form(signed_body.clone())
            .header("host", "a".repeat(300))
            .case("300-character Host", Expect::Status(400)),
        post("/sms")
            .form(signed_body.clone())
            .signed_for("http://other.example:8080/sms")
            .header("host", "other.example:8080")
            .case(
                "another Host, signed for it: the Host is what was signed",
                Expect::Fresh,
            ),
        post("/sms")
            .form(signed_body.clone())
            .signed_for("https://sms.example.com/sms")
            .header("forwarded", "proto=https;host=sms.example.com")
            .case("Forwarded is ignored unless trusted", Expect::Status(403)),
        post("/sms")
            .form(signed_body.clone())
            .signed_for("https://sms.example.com/sms")
            .header(
                "forwarded",
                "for=1.2.3.4;proto=https;host=\"sms.example.com\"",
            )
            .proxied()
            .case(
                "Forwarded trusted: signed for the public URL",
                Expect::Fresh,
            ),
        post("/sms")
            .form(signed_body.clone())
            .header("forwarded", "proto=gopher;host=x")
            .proxied()
            .case("Forwarded with an unknown protocol", Expect::Status(400)),
        post("/sms")
            .form(signed_body.clone())
            .header("forwarded", "host=\"evil.example/x\"")
            .proxied()
            .case("Forwarded host with a path", Expect::Status(400)),
        post("/sms")
            .form(signed_body.clone())
            .header("x-forwarded-prefix", "no-leading-slash")
            .proxied()
            .case(
                "X-Forwarded-Prefix not starting with /",
                Expect::Status(400),
            ),
        post("/sms")
            .form(signed_body.clone())
            .header("x-forwarded-host", "evil.example, sms.example.com")
            .header("x-forwarded-proto", "https")
            .signed_for("https://sms.example.com/sms")
            .proxied()
            .case(
                "X-Forwarded-Host list: only the first hop counts",
                Expect::Status(403),
            ),
        post("/sms")
            .form(signed_body.clone())
            .header("x-twilio-signature", "!!!")
            .case("signature not base64", Expect::Status(403)),
        post("/sms")
            .form(signed_body.clone())
            .header("x-twilio-signature", "")
            .case("empty signature", Expect::Status(403)),
        post("/sms")
            .form(signed_body.clone())
            .header("x-twilio-signature", b"\xff\xfe".to_vec())
            .case("signature bytes outside ASCII", Expect::Status(403)),
        post("/sms")
            .form(signed_body.clone())
            .header(
                "x-twilio-signature",
                AuthToken::new("wrong")
                    .expect("t")
                    .sign(&ctx.url("/sms"), &decoded(&signed_body)),
            )
            .case("signed with another token", Expect::Status(403)),
        post("/sms")
            .form(signed_body.clone())
            .signed(ctx)
            .header("x-request-id", "a b\" injected=1")
            .case("hostile X-Request-Id is replaced", Expect::Fresh),
        junk_headers.case("150 headers", Expect::RefusedByHttp),
        post("/sms")
            .form(signed_body)
            .signed(ctx)
            .header("x-junk", "y".repeat(1_048_576))
            .case("a 1 MiB header", Expect::RefusedByHttp),
    ]
}

fn method_and_path_cases(ctx: &Ctx) -> Vec<Case> {
    let host = ctx.host();
    let get_query = format!("/sms?{}", String::from_utf8(pair_form(&[])).expect("ascii"));
    let long_path = format!("/{}", "a".repeat(10_000));
    vec![
        request("PUT", "/sms")
            .form(pair_form(&[]))
            .signed(ctx)
            .case("PUT /sms", Expect::Status(405)),
        request("DELETE", "/sms").case("DELETE /sms", Expect::Status(405)),
        request("PATCH", "/sms/status").case("PATCH /sms/status", Expect::Status(405)),
        request("GET", "/sms/status").case(
            "GET /sms/status, unsigned: the method is refused before the gate runs",
            Expect::Status(405),
        ),
        request("GET", "/sms/status")
            .signed(ctx)
            .case("GET /sms/status, signed", Expect::Status(405)),
        request("OPTIONS", "/sms").case("OPTIONS /sms", Expect::Status(405)),
        request("HEAD", "/sms").case("HEAD /sms, unsigned", Expect::Status(403)),
        request("HEAD", "/sms").signed(ctx).case(
            "HEAD /sms, signed, no From: answered like GET",
            Expect::Status(400),
        ),
        request("HEAD", &get_query).signed(ctx).case(
            "HEAD /sms with the form in the query, signed",
            Expect::Status(200),
        ),
        request("HEAD", "/sms/status").case("HEAD /sms/status, unsigned", Expect::Status(405)),
        request("FOO", "/sms").case("unknown method FOO", Expect::Status(405)),
        request("POST", "/healthz").case("POST /healthz", Expect::Status(405)),
        request("GET", "/healthz")
            .cookie("sms_session=garbage")
            .case("health check ignores cookies", Expect::Status(200)),
        request("GET", &get_query)
            .signed(ctx)
            .case("GET /sms with the form in the query, signed", Expect::Fresh),
        request("GET", &get_query).case("GET /sms, unsigned", Expect::Status(403)),
        post("/sms?a=%ZZ&b&&c==")
            .form(pair_form(&[]))
            .signed(ctx)
            .case("odd query string, signed verbatim", Expect::Fresh),
        post("/sms?x=1")
            .form(pair_form(&[]))
            .signed_for(&ctx.url("/sms?x=2"))
            .case("signed for another query", Expect::Status(403)),
        post("/sms/")
            .form(pair_form(&[]))
            .signed(ctx)
            .case("trailing slash", Expect::Status(404)),
        post("/SMS")
            .form(pair_form(&[]))
            .signed(ctx)
            .case("upper-case path", Expect::Status(404)),
        post("//sms").case("double slash", Expect::Status(404)),
        post("/sms%00").case("encoded NUL in the path", Expect::Status(404)),
        post("/sms/status/../../sms").case("dot segments", Expect::Status(404)),
        post(&long_path).case("10 KB path", Expect::Status(404)),
        raw(
            "absolute-form target, unsigned",
            format!(
                "POST http://evil.example/sms HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            Expect::Status(403),
        ),
        raw(
            "asterisk-form OPTIONS",
            format!("OPTIONS * HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            Expect::RefusedByHttp,
        ),
        raw(
            "CONNECT",
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
            Expect::RefusedByHttp,
        ),
        raw(
            "binary request line",
            b"\x00\x01\x02\xff /sms HTTP/1.1\r\n\r\n".to_vec(),
            Expect::RefusedByHttp,
        ),
        raw(
            "HTTP/9.9",
            format!("GET /healthz HTTP/9.9\r\nHost: {host}\r\n\r\n"),
            Expect::RefusedByHttp,
        ),
        raw(
            "HTTP/1.0 POST without Host",
            "POST /sms HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n",
            Expect::Status(400),
        ),
    ]
}

/// One parsed response of a raw connection.
#[derive(Debug)]
struct RawReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Splits what the server wrote into responses (bodies framed by Content-Length).
fn parse_raw(mut bytes: &[u8]) -> Vec<RawReply> {
    let mut replies = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(bytes.len() - end - 4);
        let body_end = (end + 4 + length).min(bytes.len());
        replies.push(RawReply {
            status,
            head,
            body: bytes[end + 4..body_end].to_vec(),
        });
        bytes = &bytes[body_end..];
    }
    replies
}

async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<RawReply> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before reading everything (e.g. a bad request line).
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut out = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        // A reset after the answer still leaves the answer in `out`.
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            out.extend_from_slice(&chunk[..n]);
        }
    };
    let finished = tokio::time::timeout(Duration::from_secs(20), read).await;
    assert!(finished.is_ok(), "the server neither answered nor closed");
    parse_raw(&out)
}

async fn send_http(ctx: &Ctx, http: &Http) -> Reply {
    let addr = match http.target {
        Target::Plain => ctx.plain,
        Target::Proxied => ctx.proxied,
    };
    let mut request = Request::builder()
        .method(Method::from_bytes(http.method.as_bytes()).expect("method"))
        .uri(format!("http://{addr}{}", http.path));
    for (name, value) in &http.headers {
        let value = HeaderValue::from_bytes(value).expect("header bytes the client can send");
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(http.body.clone())))
        .expect("valid request");
    http::send(request).await.expect("the server answers")
}

/// Checks one answer: status, headers and body; returns a complaint, if any.
fn judge(
    expect: Expect,
    status: u16,
    content_type: Option<&str>,
    set_cookie: Option<&str>,
    body: &[u8],
) -> Option<String> {
    let body = String::from_utf8_lossy(body);
    let turn = |n: u32| match n {
        1 => FIRST.to_owned(),
        n => format!("Hello, thanks for message number {n}"),
    };
    let twiml = |n| {
        let message = format!("<Message>{}</Message>", turn(n));
        let ok = status == 200
            && content_type == Some("text/xml; charset=utf-8")
            && body.contains(&message)
            && set_cookie.is_some_and(|c| c.starts_with("sms_session=1."));
        (!ok)
            .then(|| format!("expected 200 TwiML `{message}` with a cookie, got {status} {body:?}"))
    };
    if status >= 500 {
        return Some(format!("5xx: {status} {body:?}"));
    }
    match expect {
        Expect::Status(want) if status != want => {
            Some(format!("expected {want}, got {status} {body:?}"))
        }
        Expect::Status(400..) if set_cookie.is_some() => {
            Some(format!("a refusal ({status}) must not set a cookie"))
        }
        Expect::Status(_) => None,
        Expect::Fresh => twiml(1),
        Expect::Resumed(n) => twiml(n),
        Expect::RefusedByHttp => {
            (!(400..500).contains(&status)).then(|| format!("expected a 4xx, got {status}"))
        }
    }
}

async fn run(ctx: &Ctx, case: &Case) -> Option<String> {
    match &case.send {
        Send::Http(http) => {
            let reply = send_http(ctx, http).await;
            println!("{:<72} {}", case.name, reply.status);
            let header = |name| reply.headers.get(name).and_then(|v| v.to_str().ok());
            judge(
                case.expect,
                reply.status,
                header("content-type"),
                header("set-cookie"),
                &reply.body,
            )
        }
        Send::Raw(bytes) => {
            let replies = send_raw(ctx.plain, bytes).await;
            let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
            println!("{:<72} {statuses:?} (raw)", case.name);
            let Some(first) = replies.first() else {
                return (case.expect != Expect::RefusedByHttp).then(|| "no answer".to_owned());
            };
            let header = |name: &str| {
                first.head.lines().find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    key.eq_ignore_ascii_case(name).then(|| value.trim())
                })
            };
            let verdict = judge(
                case.expect,
                first.status,
                header("content-type"),
                header("set-cookie"),
                &first.body,
            );
            let later_5xx = replies.iter().skip(1).find(|r| r.status >= 500);
            verdict.or_else(|| later_5xx.map(|r| format!("a later response was {}", r.status)))
        }
    }
}

#[tokio::test]
async fn hostile_requests_get_a_4xx_or_a_fresh_session_and_the_server_carries_on() {
    let plain = TestServer::start(&[]).await;
    let proxied = TestServer::start(&[("SMS_SESSIONS_TRUST_FORWARDED", "true")]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_eq!(message_text(&phone.text(&plain, "first").await), FIRST);
    let ctx = Ctx {
        plain: plain.addr,
        proxied: proxied.addr,
        cookie: phone.cookie.clone().expect("a cookie was set"),
    };
    let cases: Vec<Case> = [
        body_cases(&ctx),
        cookie_cases(&ctx),
        header_cases(&ctx),
        method_and_path_cases(&ctx),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        if let Some(complaint) = run(&ctx, case).await {
            failures.push(format!("{}: {complaint}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // The same server still holds a conversation, and its cookie survived the table.
    assert_eq!(
        message_text(&phone.text(&plain, "second").await),
        "Hello, thanks for message number 2"
    );
    assert_eq!(
        message_text(&phone.text(&plain, "third").await),
        "Hello, thanks for message number 3"
    );
    plain.stop().await.expect("clean shutdown");
}

/// A captured webhook, re-split under its original signature (issue 14): Twilio signs the
/// sorted keys and values run together, so characters can move between adjacent parameters
/// without changing the signature. Each re-split below is proven to keep a valid signature,
/// and each is refused with a 400 naming the field, so it can neither start a fresh
/// conversation nor pass as a new MessageSid.
#[tokio::test]
async fn a_captured_webhook_re_split_under_its_signature_is_a_400_naming_the_field() {
    let server = TestServer::start(&[]).await;
    let url = server.url("/sms");
    let captured = include_str!("data/payloads/sms.form").trim();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(captured.as_bytes())
        .into_owned()
        .collect();
    let signature = AuthToken::new(TOKEN).expect("token").sign(&url, &pairs);
    let send = |pairs: Vec<(String, String)>| {
        let (url, signature) = (url.clone(), signature.clone());
        async move {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let headers = [
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", signature.as_str()),
            ];
            common::post_raw(&url, body, &headers).await
        }
    };
    let original = send(pairs.clone()).await;
    assert_eq!(original.status, 200, "{}", common::text(&original));

    // `absorber` takes `absorbed`'s key and value onto the end of its own value.
    let re_split = |absorber: &str, absorbed: &str| {
        let taken = pairs.iter().find(|(k, _)| k == absorbed).expect("present");
        let tail = format!("{}{}", taken.0, taken.1);
        pairs
            .iter()
            .filter(|(k, _)| k != absorbed)
            .map(|(k, v)| match k == absorber {
                true => (k.clone(), format!("{v}{tail}")),
                false => (k.clone(), v.clone()),
            })
            .collect::<Vec<_>>()
    };
    let cases = [
        (
            "MessageSid",
            "MessagingServiceSid",
            "parameter MessageSid is not two letters followed by 32 hex digits\n",
        ),
        (
            "ApiVersion",
            "Body",
            "parameter ApiVersion is not a date like 2010-04-01\n",
        ),
        (
            "From",
            "FromCity",
            "parameter From is not a phone number, short code, sender id or channel address\n",
        ),
        (
            "To",
            "ToCity",
            "parameter To is not a phone number, short code, sender id or channel address\n",
        ),
        (
            "AccountSid",
            "ApiVersion",
            "parameter AccountSid is not AC followed by 32 hex digits\n",
        ),
        (
            "NumMedia",
            "NumSegments",
            "parameter NumMedia is not a small whole number\n",
        ),
    ];
    let tokens = [AuthToken::new(TOKEN).expect("token")];
    for (absorber, absorbed, reason) in cases {
        let forged = re_split(absorber, absorbed);
        let still_valid = sms_sessions::twilio::signature::verify(
            &tokens,
            &url,
            sms_sessions::twilio::signature::Payload::Form(&forged),
            &signature,
        );
        assert_eq!(
            still_valid,
            Ok(()),
            "{absorber} absorbing {absorbed} keeps the signature"
        );
        let reply = send(forged).await;
        assert_eq!(
            (reply.status, common::text(&reply).as_str()),
            (400, reason),
            "{absorber} absorbing {absorbed}"
        );
    }
}
