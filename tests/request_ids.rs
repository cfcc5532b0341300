//! Request ids (issue 14, item 8): the real binary, logging JSON. A client's `X-Request-Id` is
//! neither used nor echoed unless `SMS_SESSIONS_TRUST_REQUEST_ID` says a proxy sets it; it is
//! logged beside the server's own id as `client_request_id`, and a client cannot file its
//! request under an id the server already gave another.

mod common;
mod common_spawn;

use common::{TOKEN, post_text};
use common_spawn::Server;
use serde_json::Value;
use sms_sessions::client::http::Reply;

const SECRET: &str = "request-ids-session-secret-0123456789";

fn start(trust: &str) -> Server {
    Server::start(&[
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
        ("SMS_SESSIONS_LOG_FORMAT", "json"),
        ("SMS_SESSIONS_TRUST_REQUEST_ID", trust),
    ])
}

/// A signed text with every parameter Twilio sends, claiming `request_id` when given.
async fn text(server: &Server, request_id: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = request_id.iter().map(|id| ("x-request-id", *id)).collect();
    let url = server.url("/sms");
    let reply = post_text(&url, "+14155550199", "+14155550100", "hi", &headers).await;
    assert_eq!(reply.status, 200);
    reply
}

fn echoed(reply: &Reply) -> String {
    let id = reply.headers.get("x-request-id").expect("an id is echoed");
    id.to_str().expect("ascii").to_owned()
}

/// The JSON request log lines ("webhook") the server wrote before it stopped.
fn webhook_lines(server: Server) -> Vec<Value> {
    let finished = server.stop();
    assert!(finished.status.success(), "{:?}", finished.status);
    finished
        .stdout
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON log line"))
        .filter(|line| line["message"] == "webhook")
        .collect()
}

/// The one request log line filed under `id`.
fn line_of<'l>(lines: &'l [Value], id: &str) -> &'l Value {
    let mut found = lines.iter().filter(|line| line["request_id"] == id);
    let line = found
        .next()
        .unwrap_or_else(|| panic!("no line for {id}: {lines:?}"));
    assert!(found.next().is_none(), "two lines for {id}: {lines:?}");
    line
}

fn is_made_here(id: &str) -> bool {
    let made = id.split_once('-').is_some_and(|(prefix, n)| {
        prefix.len() == 8
            && prefix.bytes().all(|b| b.is_ascii_hexdigit())
            && n.bytes().all(|b| b.is_ascii_digit())
    });
    made && id.len() >= 15
}

#[tokio::test]
async fn without_trust_the_server_makes_every_id_and_logs_the_clients_apart() {
    let server = start("false");
    let chosen = echoed(&text(&server, Some("chosen-by-client.1")).await);
    let plain = echoed(&text(&server, None).await);
    // An id the server gave another request, claimed again.
    let reused = echoed(&text(&server, Some(&plain)).await);
    let unloggable = echoed(&text(&server, Some("a b\" injected=1")).await);
    for id in [&chosen, &plain, &reused, &unloggable] {
        assert!(is_made_here(id), "{id}");
    }
    assert_ne!(reused, plain);

    let lines = webhook_lines(server);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        line_of(&lines, &chosen)["client_request_id"],
        "chosen-by-client.1"
    );
    assert_eq!(
        line_of(&lines, &reused)["client_request_id"],
        plain.as_str()
    );
    for id in [&plain, &unloggable] {
        assert!(line_of(&lines, id).get("client_request_id").is_none());
    }
    let filed_under_plain = lines.iter().filter(|l| l["request_id"] == plain.as_str());
    assert_eq!(filed_under_plain.count(), 1, "{lines:?}");
}

#[tokio::test]
async fn only_with_trust_is_a_proxys_plain_id_used_echoed_and_logged() {
    let (trusting, wary) = (start("true"), start("false"));
    assert_eq!(
        echoed(&text(&trusting, Some("proxy-id-42")).await),
        "proxy-id-42"
    );
    let refused = echoed(&text(&wary, Some("proxy-id-42")).await);
    assert!(is_made_here(&refused), "{refused}");
    let unloggable = echoed(&text(&trusting, Some("a b\" injected=1")).await);
    assert!(is_made_here(&unloggable), "{unloggable}");
    let made = echoed(&text(&trusting, None).await);
    assert!(is_made_here(&made), "{made}");

    let lines = webhook_lines(trusting);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for id in ["proxy-id-42", &unloggable, &made] {
        assert!(line_of(&lines, id).get("client_request_id").is_none());
    }
    let lines = webhook_lines(wary);
    assert_eq!(
        line_of(&lines, &refused)["client_request_id"],
        "proxy-id-42"
    );
}
