//! Masked-number relays end to end (issue 13), against the real binary over signed HTTP: the
//! admin API on its own listener opens and closes sessions, and phones text the webhook the
//! way Twilio does. Three phones (a buyer, a seller, a stranger) on the memory store; a third
//! participant; STOP and START; a 21610 status callback; a closed session; the admin API's
//! refusals; the `connect` hand-off of config/handoff.toml; two replicas on one Redis racing
//! for the last number; and the configurations that are refused at start.
//!
//! Replies are read with the offline client's TwiML reader (`client::reply::parse_twiml`), and
//! the 2- and 3-party forwards are also compared byte for byte with golden TwiML.

mod common;
mod common_spawn;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};
use sms_sessions::client::http;
use sms_sessions::client::reply::{Message, Reply, parse_twiml};

use common::redis_server::RedisServer;
use common::{ACCOUNT_SID, SECRET, TOKEN, post_signed};
use common_spawn::{Server, TempDir, address_in};

const ADMIN_TOKEN: &str = "relay-admin-token-0123456789";
const POOL: [&str; 3] = ["+14155550100", "+14155550101", "+14155550102"];
const BUYER: &str = "+14155550001";
const SELLER: &str = "+14155550002";
const STRANGER: &str = "+14155550003";
const COURIER: &str = "+14155550004";
/// What the server answers when nothing is to be sent.
const EMPTY: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response />"#;
const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
/// `relay.unavailable_reply` and `relay.closed_reply` by default.
const UNAVAILABLE: &str = "They can't receive messages right now.";
const CLOSED: &str = "This conversation has ended.";

// ---------------------------------------------------------------------------------------------
// A relay server and the phones around it

/// A spawned `sms-sessions serve` with a relay and its admin listener.
struct Relay {
    server: Server,
    admin: SocketAddr,
    _dir: Option<TempDir>,
}

/// The environment of every relay server here: the test token and secret, `store`, `pool` as
/// `relay.numbers`, and the admin API on `admin` (see [`admin_listen`]).
fn relay_env<'a>(store: &'a str, pool: &'a str, admin: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
        ("SMS_SESSIONS_STORE", store),
        ("SMS_SESSIONS_RELAY_NUMBERS", pool),
        ("SMS_SESSIONS_ADMIN_LISTEN", admin),
        ("SMS_SESSIONS_ADMIN_TOKEN", ADMIN_TOKEN),
    ]
}

/// `server.admin_listen` for a spawned server: any free loopback port, bound by the server
/// itself (no port picked here and released, which another test could take first); its
/// start-up line says where it listens.
fn admin_listen() -> String {
    "127.0.0.1:0".into()
}

impl Relay {
    /// On the memory store with `pool` as `relay.numbers`.
    fn start(pool: &[&str]) -> Self {
        Self::on_store("memory", pool)
    }

    fn on_store(store: &str, pool: &[&str]) -> Self {
        let (pool, admin) = (pool.join(","), admin_listen());
        Self::admin_of(Server::start(&relay_env(store, &pool, &admin)), None)
    }

    /// On the memory store, with `toml` as the config file (for the keys only a file sets).
    fn start_with_toml(pool: &[&str], toml: &str) -> Self {
        let dir = TempDir::new("relay-config");
        let file = dir.write("relay.toml", toml);
        let (pool, admin) = (pool.join(","), admin_listen());
        let server = Server::start_with_config(&file, &relay_env("memory", &pool, &admin));
        Self::admin_of(server, Some(dir))
    }

    /// Reads the admin listener's address from its start-up line.
    fn admin_of(mut server: Server, dir: Option<TempDir>) -> Self {
        let line = server.wait_for_line(|line| line.contains("admin API listening"));
        let admin = address_in(&line).unwrap_or_else(|| panic!("no address in {line}"));
        assert_ne!(
            admin, server.addr,
            "the admin API has a listener of its own"
        );
        Relay {
            server,
            admin,
            _dir: dir,
        }
    }

    fn sms(&self) -> String {
        self.server.url("/sms")
    }

    /// An admin call with the right token.
    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Api {
        admin_call(self.admin, method, path, Some(ADMIN_TOKEN), body).await
    }

    /// `POST /v1/relay/sessions` that must answer 201; the session.
    async fn create(&self, participants: Value) -> Value {
        let answer = self
            .api(
                "POST",
                "/v1/relay/sessions",
                Some(json!({ "participants": participants })),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer.json
    }

    /// A session of the buyer and the seller, the pool choosing their numbers.
    async fn buyer_and_seller(&self) -> Value {
        self.create(json!([{"address": BUYER}, {"address": SELLER}]))
            .await
    }

    /// `GET /v1/relay/sessions/{id}`.
    async fn session(&self, id: &str) -> Api {
        self.api("GET", &format!("/v1/relay/sessions/{id}"), None)
            .await
    }

    /// `DELETE /v1/relay/sessions/{id}`.
    async fn close(&self, id: &str) -> Api {
        self.api("DELETE", &format!("/v1/relay/sessions/{id}"), None)
            .await
    }

    /// A text to this server's `/sms`.
    async fn text(&self, from: &str, to: &str, body: &str) -> Texted {
        send_text(&self.sms(), &Text::new(from, to, body)).await
    }
}

/// An admin API answer.
struct Api {
    status: u16,
    headers: hyper::HeaderMap,
    /// The body as JSON (`Null` when empty or not JSON).
    json: Value,
}

async fn admin_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Api {
    let reply = http_call(&format!("http://{addr}{path}"), method, token, body).await;
    Api {
        status: reply.status,
        headers: reply.headers,
        json: serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
    }
}

async fn http_call(
    url: &str,
    method: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> http::Reply {
    let mut request = Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let bytes = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    let request = request.body(Full::new(bytes)).expect("a request");
    http::send(request).await.expect("the server answers")
}

/// A fresh MessageSid, unique in this test binary.
fn new_sid() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("SM{:032x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One inbound text as Twilio posts it.
#[derive(Clone)]
struct Text<'a> {
    sid: String,
    from: &'a str,
    to: &'a str,
    body: &'a str,
    media: Vec<&'a str>,
    extra: Vec<(&'a str, &'a str)>,
}

impl<'a> Text<'a> {
    fn new(from: &'a str, to: &'a str, body: &'a str) -> Self {
        Text {
            sid: new_sid(),
            from,
            to,
            body,
            media: Vec::new(),
            extra: Vec::new(),
        }
    }

    fn media(mut self, urls: &[&'a str]) -> Self {
        self.media = urls.to_vec();
        self
    }

    /// The form's fields in Twilio's order, then `extra`.
    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = [
            ("MessageSid", self.sid.as_str()),
            ("AccountSid", ACCOUNT_SID),
            ("From", self.from),
            ("To", self.to),
            ("Body", self.body),
            ("ApiVersion", "2010-04-01"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        pairs.push(("NumMedia".into(), self.media.len().to_string()));
        for (i, url) in self.media.iter().enumerate() {
            pairs.push((format!("MediaUrl{i}"), (*url).to_owned()));
            pairs.push((format!("MediaContentType{i}"), "image/jpeg".to_owned()));
        }
        let extra = self.extra.iter();
        pairs.extend(extra.map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        pairs
    }
}

/// The answer to a text: its bytes and its messages as the offline client reads them.
struct Texted {
    body: String,
    messages: Vec<Message>,
}

impl Texted {
    /// The messages addressed to `to` (a `to` attribute).
    fn to(&self, to: &str) -> Vec<&Message> {
        self.messages
            .iter()
            .filter(|m| m.to.as_deref() == Some(to))
            .collect()
    }

    /// The messages back to the sender (no `to` attribute).
    fn to_sender(&self) -> Vec<&Message> {
        self.messages.iter().filter(|m| m.to.is_none()).collect()
    }

    /// One message, `text`, back to the sender: nothing forwarded to anyone.
    fn assert_notice(&self, text: &str) {
        assert_eq!(self.messages.len(), 1, "{}", self.body);
        assert_eq!(self.to_sender().len(), 1, "to the sender: {}", self.body);
        assert_eq!(self.messages[0].text, text);
    }
}

async fn send_text(url: &str, text: &Text<'_>) -> Texted {
    let owned = text.pairs();
    let pairs: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reply = post_signed(url, url, &pairs, TOKEN, &[]).await;
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    assert_eq!(reply.status, 200, "{body}");
    let messages = parse_twiml(&body)
        .unwrap_or_else(|e| panic!("not TwiML ({e}): {body}"))
        .into_iter()
        .map(|reply| match reply {
            Reply::Message(message) => message,
            Reply::Redirect(url) => panic!("a redirect to {url} in {body}"),
        })
        .collect();
    Texted { body, messages }
}

/// The proxy of `address` in `session` (its JSON).
fn proxy_of(session: &Value, address: &str) -> String {
    session["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .find(|p| p["address"] == address)
        .and_then(|p| p["proxy"].as_str())
        .unwrap_or_else(|| panic!("{address} is not in {session}"))
        .to_owned()
}

fn id_of(session: &Value) -> String {
    session["id"].as_str().expect("an id").to_owned()
}

/// `<Message to from statusCallback>` with the body and media, as the server writes it; the
/// callback is absolute, at the base the webhook was sent to (`status` = `…/sms/status`).
fn golden_message(
    status: &str,
    to: &str,
    from: &str,
    session: &str,
    body: &str,
    media: &[&str],
) -> String {
    let media: String = media
        .iter()
        .map(|m| format!("<Media>{m}</Media>"))
        .collect();
    format!(
        r#"<Message from="{from}" statusCallback="{status}?relay={session}" to="{to}"><Body>{body}</Body>{media}</Message>"#
    )
}

/// Asserts one message to `to`, from `from`, with `text` and `media`.
#[track_caller]
fn assert_forward(texted: &Texted, to: &str, from: &str, text: &str, media: &[&str]) {
    let to_them = texted.to(to);
    assert_eq!(to_them.len(), 1, "one message to {to}: {}", texted.body);
    let message = to_them[0];
    assert_eq!(message.from.as_deref(), Some(from), "{}", texted.body);
    assert_eq!(message.text, text, "{}", texted.body);
    assert_eq!(message.media, media, "{}", texted.body);
}

// ---------------------------------------------------------------------------------------------
// 1. Two people and a stranger

#[tokio::test]
async fn a_buyer_and_a_seller_text_through_their_proxies_and_a_stranger_gets_nothing() {
    let relay = Relay::start(&POOL);
    let session = relay
        .create(json!([
            {"address": BUYER, "label": "Buyer"},
            {"address": SELLER, "label": "Seller"},
        ]))
        .await;
    let id = id_of(&session);
    assert!(
        id.len() == 34 && id.starts_with("RS"),
        "RS + 32 hex digits: {id}"
    );
    assert_eq!(session["state"], "open");
    let (buyer_proxy, seller_proxy) = (proxy_of(&session, BUYER), proxy_of(&session, SELLER));
    assert!(POOL.contains(&buyer_proxy.as_str()) && POOL.contains(&seller_proxy.as_str()));

    // The buyer's text, with a photo, reaches the seller from the seller's proxy, and only them.
    let photo = "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1";
    let body = "Is the bike still for sale? <5 & \"blue\">";
    let first = Text::new(BUYER, &buyer_proxy, body).media(&[photo]);
    let forwarded = send_text(&relay.sms(), &first).await;
    assert_eq!(forwarded.messages.len(), 1, "{}", forwarded.body);
    assert_forward(&forwarded, SELLER, &seller_proxy, body, &[photo]);
    let escaped = "Is the bike still for sale? &lt;5 &amp; \"blue\"&gt;";
    let golden = format!(
        "{DECL}<Response>{}</Response>",
        golden_message(
            &relay.server.url("/sms/status"),
            SELLER,
            &seller_proxy,
            &id,
            escaped,
            &[photo]
        )
    );
    assert_eq!(forwarded.body, golden, "golden TwiML of a 2-party forward");

    // Twilio retries the webhook (our reply was lost): the same bytes, nothing sent twice.
    let retried = send_text(&relay.sms(), &first).await;
    assert_eq!(
        retried.body, forwarded.body,
        "a retried MessageSid gets the same bytes"
    );

    // The seller's reply goes back to the buyer from the buyer's proxy.
    let reply = relay
        .text(SELLER, &seller_proxy, "Yes, 200 and it's yours")
        .await;
    assert_eq!(reply.messages.len(), 1, "{}", reply.body);
    assert_forward(&reply, BUYER, &buyer_proxy, "Yes, 200 and it's yours", &[]);
    assert!(reply.to(SELLER).is_empty() && reply.to_sender().is_empty());

    // A stranger texting any pool number (one a session uses, one none does) gets nothing,
    // and nothing of theirs is forwarded.
    for number in [buyer_proxy.as_str(), seller_proxy.as_str(), POOL[2]] {
        let stranger = relay.text(STRANGER, number, "who is this?").await;
        assert_eq!(stranger.body, EMPTY, "a stranger texting {number}");
    }

    // The session is still the one it was, touched by the texts.
    let got = relay.session(&id).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json["state"], "open");
    assert_eq!(got.json["participants"], session["participants"]);
}

#[tokio::test]
async fn a_stranger_gets_relay_unknown_reply_when_it_is_set() {
    let relay = Relay::start_with_toml(
        &POOL[..1],
        "[relay]\nunknown_reply = \"This number only relays texts.\"\n",
    );
    relay.buyer_and_seller().await;
    let stranger = relay.text(STRANGER, POOL[0], "hello?").await;
    assert_eq!(stranger.messages.len(), 1, "{}", stranger.body);
    assert_eq!(stranger.to_sender().len(), 1, "to the stranger only");
    assert_eq!(stranger.messages[0].text, "This number only relays texts.");
    assert!(stranger.to(BUYER).is_empty() && stranger.to(SELLER).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 2. Three people

#[tokio::test]
async fn three_people_see_who_spoke_and_the_sender_gets_nothing() {
    let relay = Relay::start(&POOL);
    let session = relay
        .create(json!([
            {"address": BUYER, "label": "Buyer"},
            {"address": SELLER, "label": "Seller"},
            {"address": COURIER, "label": "Courier"},
        ]))
        .await;
    let id = id_of(&session);
    let proxy = |address| proxy_of(&session, address);

    let photo = "https://example.com/where.jpg";
    let buyer_proxy = proxy(BUYER);
    let text = Text::new(BUYER, &buyer_proxy, "Where do we meet?").media(&[photo]);
    let asked = send_text(&relay.sms(), &text).await;
    assert_eq!(asked.messages.len(), 2, "{}", asked.body);
    for other in [SELLER, COURIER] {
        assert_forward(
            &asked,
            other,
            &proxy(other),
            "Buyer: Where do we meet?",
            &[photo],
        );
    }
    assert!(asked.to(BUYER).is_empty() && asked.to_sender().is_empty());
    let golden = format!(
        "{DECL}<Response>{}{}</Response>",
        golden_message(
            &relay.server.url("/sms/status"),
            SELLER,
            &proxy(SELLER),
            &id,
            "Buyer: Where do we meet?",
            &[photo]
        ),
        golden_message(
            &relay.server.url("/sms/status"),
            COURIER,
            &proxy(COURIER),
            &id,
            "Buyer: Where do we meet?",
            &[photo]
        ),
    );
    assert_eq!(asked.body, golden, "golden TwiML of a 3-party forward");

    let answered = relay
        .text(COURIER, &proxy(COURIER), "At the corner, 5 pm")
        .await;
    assert_eq!(answered.messages.len(), 2, "{}", answered.body);
    for other in [BUYER, SELLER] {
        assert_forward(
            &answered,
            other,
            &proxy(other),
            "Courier: At the corner, 5 pm",
            &[],
        );
    }
    assert!(answered.to(COURIER).is_empty() && answered.to_sender().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. STOP and START

#[tokio::test]
async fn stop_is_not_forwarded_and_the_other_is_told_until_start() {
    let relay = Relay::start(&POOL);
    let session = relay.buyer_and_seller().await;
    let id = id_of(&session);
    let (buyer_proxy, seller_proxy) = (proxy_of(&session, BUYER), proxy_of(&session, SELLER));

    let stop = relay.text(SELLER, &seller_proxy, "Stop").await;
    assert_eq!(
        stop.body, EMPTY,
        "STOP is answered by Twilio, never forwarded"
    );
    let got = relay.session(&id).await;
    let seller = &got.json["participants"][1];
    assert_eq!(seller["address"], SELLER);
    assert_eq!(seller["opted_out"], true, "{}", got.json);

    let told = relay.text(BUYER, &buyer_proxy, "Are you there?").await;
    // The notice goes to the buyer; nothing to an opted-out participant.
    told.assert_notice(UNAVAILABLE);

    // OptOutType=STOP (Advanced Opt-Out's own keywords) is an opt-out too, whatever the body.
    let text = Text {
        extra: vec![("OptOutType", "STOP")],
        ..Text::new(BUYER, &buyer_proxy, "leave me alone")
    };
    assert_eq!(send_text(&relay.sms(), &text).await.body, EMPTY);
    let both_out = relay.session(&id).await;
    assert_eq!(both_out.json["participants"][0]["opted_out"], true);

    // START clears each one's flag: texts flow both ways again.
    for (who, proxy) in [(SELLER, &seller_proxy), (BUYER, &buyer_proxy)] {
        let start = relay.text(who, proxy, "START").await;
        assert!(
            start.to(who).is_empty() && start.to_sender().len() <= 1,
            "{}",
            start.body
        );
    }
    let back = relay.text(BUYER, &buyer_proxy, "Welcome back").await;
    assert_eq!(back.messages.len(), 1, "{}", back.body);
    assert_forward(&back, SELLER, &seller_proxy, "Welcome back", &[]);
    let got = relay.session(&id).await;
    for participant in got.json["participants"].as_array().expect("participants") {
        assert_eq!(participant["opted_out"], false, "{}", got.json);
    }
}

#[tokio::test]
async fn yes_after_stop_clears_the_opt_out_as_twilio_does() {
    // Twilio re-subscribes a number on START, YES or UNSTOP (research/relay.md §7: "START/UNSTOP/
    // YES (or OptOutType=START) clear the flag"); route.rs `is_opt_in` knows only START and UNSTOP.
    let relay = Relay::start(&POOL);
    let session = relay.buyer_and_seller().await;
    let (buyer_proxy, seller_proxy) = (proxy_of(&session, BUYER), proxy_of(&session, SELLER));
    assert_eq!(relay.text(SELLER, &seller_proxy, "STOP").await.body, EMPTY);
    relay.text(SELLER, &seller_proxy, "YES").await;
    let back = relay.text(BUYER, &buyer_proxy, "Hello again").await;
    assert_forward(&back, SELLER, &seller_proxy, "Hello again", &[]);
}

// ---------------------------------------------------------------------------------------------
// 4. Error 21610 in a status callback

#[tokio::test]
async fn a_21610_status_callback_marks_the_recipient_opted_out() {
    let relay = Relay::start(&POOL);
    let session = relay.buyer_and_seller().await;
    let id = id_of(&session);
    let (buyer_proxy, seller_proxy) = (proxy_of(&session, BUYER), proxy_of(&session, SELLER));

    let forwarded = relay.text(BUYER, &buyer_proxy, "Still there?").await;
    assert_forward(&forwarded, SELLER, &seller_proxy, "Still there?", &[]);
    let callback = format!("/sms/status?relay={id}");
    let absolute = relay.server.url(&callback);
    assert!(
        forwarded
            .body
            .contains(&format!("statusCallback=\"{absolute}\"")),
        "{}",
        forwarded.body
    );

    // Twilio reports the forward undelivered: the seller had opted out of that number.
    let pairs = [
        ("MessageSid", "SM00000000000000000000000000021610"),
        ("AccountSid", ACCOUNT_SID),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "21610"),
        ("From", seller_proxy.as_str()),
        ("To", SELLER),
        ("ApiVersion", "2010-04-01"),
    ];
    let url = relay.server.url(&callback);
    // Signed over the URL without its query: refused, and nothing changes.
    let unsigned_query =
        post_signed(&url, &relay.server.url("/sms/status"), &pairs, TOKEN, &[]).await;
    assert_eq!(unsigned_query.status, 403, "the signature covers ?relay=");
    let still = relay.text(BUYER, &buyer_proxy, "Hello?").await;
    assert_forward(&still, SELLER, &seller_proxy, "Hello?", &[]);

    let reported = post_signed(&url, &url, &pairs, TOKEN, &[]).await;
    assert_eq!(
        reported.status,
        204,
        "{}",
        String::from_utf8_lossy(&reported.body)
    );
    let got = relay.session(&id).await;
    assert_eq!(got.json["participants"][1]["address"], SELLER);
    assert_eq!(
        got.json["participants"][1]["opted_out"], true,
        "{}",
        got.json
    );
    assert_eq!(
        got.json["participants"][0]["opted_out"], false,
        "{}",
        got.json
    );

    let told = relay.text(BUYER, &buyer_proxy, "Hello??").await;
    told.assert_notice(UNAVAILABLE);
}

// ---------------------------------------------------------------------------------------------
// 5. Closed through the API

#[tokio::test]
async fn a_session_closed_by_the_api_answers_its_participants_and_frees_its_numbers() {
    let relay = Relay::start(&POOL[..1]);
    let participants = json!([{"address": BUYER}, {"address": SELLER}]);
    let session = relay.create(participants.clone()).await;
    let id = id_of(&session);
    let proxy = POOL[0];
    assert_eq!(proxy_of(&session, BUYER), proxy);
    assert_eq!(proxy_of(&session, SELLER), proxy);

    // While it is open, its (proxy, address) pairs are taken.
    let taken = relay
        .api(
            "POST",
            "/v1/relay/sessions",
            Some(json!({ "participants": participants })),
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.json);

    let closed = relay.close(&id).await;
    assert_eq!(closed.status, 200, "{}", closed.json);
    assert_eq!(closed.json["state"], "closed");
    assert_eq!(closed.json["closed_reason"], "closed");

    // Told it has ended; not forwarded.
    for from in [BUYER, SELLER] {
        relay
            .text(from, proxy, "anyone?")
            .await
            .assert_notice(CLOSED);
    }
    let again = relay.close(&id).await;
    assert_eq!(again.status, 200, "closing is idempotent: {}", again.json);
    assert_eq!(again.json["closed_reason"], "closed");

    // The same (proxy, address) pairs can be bound again, and the new session relays.
    let with_proxies = json!([
        {"address": BUYER, "proxy": proxy},
        {"address": SELLER, "proxy": proxy},
    ]);
    let renewed = relay.create(with_proxies).await;
    let new_id = id_of(&renewed);
    assert_ne!(new_id, id);
    let forwarded = relay.text(BUYER, proxy, "Round two").await;
    assert_forward(&forwarded, SELLER, proxy, "Round two", &[]);
    assert!(
        forwarded.body.contains(&format!("relay={new_id}")),
        "{}",
        forwarded.body
    );
}

#[tokio::test]
async fn a_session_past_its_ttl_answers_as_closed_and_frees_its_numbers() {
    let relay = Relay::start(&POOL[..1]);
    let body = json!({"participants": [{"address": BUYER}, {"address": SELLER}], "ttl": "1s"});
    let created = relay.api("POST", "/v1/relay/sessions", Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let id = id_of(&created.json);
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let ended = relay.text(BUYER, POOL[0], "too late?").await;
    ended.assert_notice(CLOSED);
    let got = relay.session(&id).await;
    assert_eq!(got.json["state"], "closed", "{}", got.json);
    assert_eq!(got.json["closed_reason"], "ttl", "{}", got.json);
    relay.buyer_and_seller().await;
}

#[tokio::test]
async fn whatsapp_and_sms_participants_each_keep_their_channel() {
    const WA_POOL: &str = "whatsapp:+14155550100";
    const WA_BUYER: &str = "whatsapp:+14155550001";
    let relay = Relay::start(&[POOL[0], WA_POOL]);
    let session = relay
        .create(json!([{"address": WA_BUYER}, {"address": SELLER}]))
        .await;
    assert_eq!(proxy_of(&session, WA_BUYER), WA_POOL);
    assert_eq!(proxy_of(&session, SELLER), POOL[0]);

    let on_whatsapp = relay.text(WA_BUYER, WA_POOL, "Sent from WhatsApp").await;
    assert_eq!(on_whatsapp.messages.len(), 1, "{}", on_whatsapp.body);
    assert_forward(&on_whatsapp, SELLER, POOL[0], "Sent from WhatsApp", &[]);
    let by_sms = relay.text(SELLER, POOL[0], "Answered by SMS").await;
    assert_eq!(by_sms.messages.len(), 1, "{}", by_sms.body);
    assert_forward(&by_sms, WA_BUYER, WA_POOL, "Answered by SMS", &[]);
}

#[tokio::test]
async fn texts_past_the_per_session_limit_are_not_forwarded() {
    let relay = Relay::start_with_toml(&POOL[..1], "[relay]\nper_session_per_minute = 2\n");
    relay.buyer_and_seller().await;
    for body in ["one", "two"] {
        let sent = relay.text(BUYER, POOL[0], body).await;
        assert_forward(&sent, SELLER, POOL[0], body, &[]);
    }
    // The session's third text this minute, whoever sends it.
    let third = relay.text(SELLER, POOL[0], "three").await;
    assert_eq!(third.body, EMPTY, "past relay.per_session_per_minute");
}

// ---------------------------------------------------------------------------------------------
// 6. The admin API's listener, token and pool

#[tokio::test]
async fn the_admin_api_wants_its_token_lives_only_on_its_listener_and_answers_409_when_full() {
    let relay = Relay::start(&POOL[..1]);
    let body = json!({"participants": [{"address": BUYER}, {"address": SELLER}]});

    for token in [
        None,
        Some("wrong-token-0123456789abc"),
        Some("relay-admin-token-012345678"),
    ] {
        for (method, path) in [
            ("POST", "/v1/relay/sessions"),
            ("GET", "/v1/relay/sessions"),
            ("GET", "/v1/relay/pool"),
        ] {
            let answer = admin_call(relay.admin, method, path, token, Some(body.clone())).await;
            assert_eq!(answer.status, 401, "{method} {path} with {token:?}");
            assert_eq!(answer.json, json!({"error": "unauthorized"}));
            assert_eq!(answer.headers["www-authenticate"], "Bearer");
        }
    }

    // The webhook listener has no admin routes, token or not.
    for (method, path) in [
        ("POST", "/v1/relay/sessions"),
        ("GET", "/v1/relay/sessions"),
        ("GET", "/v1/relay/pool"),
    ] {
        let url = relay.server.url(path);
        let reply = http_call(&url, method, Some(ADMIN_TOKEN), Some(body.clone())).await;
        assert!(
            !(200..300).contains(&reply.status),
            "{method} {path} on the public listener answered {}",
            reply.status
        );
    }
    let pool = relay.api("GET", "/v1/relay/pool", None).await;
    assert_eq!(pool.status, 200);
    assert_eq!(
        pool.json,
        json!({"numbers": [{"number": POOL[0], "in_use": 0}]}),
        "nothing was created by those calls"
    );

    let invalid = relay
        .api(
            "POST",
            "/v1/relay/sessions",
            Some(json!({"participants": [{"address": BUYER}, {"address": "5550002"}]})),
        )
        .await;
    assert_eq!(invalid.status, 400, "{}", invalid.json);
    assert_eq!(invalid.json["error"], "invalid");
    assert_eq!(invalid.json["field"], "participants[1].address");

    // One number: the buyer's binding to it is taken, so no second session can include them.
    relay.buyer_and_seller().await;
    for participants in [
        json!([{"address": BUYER}, {"address": STRANGER}]),
        json!([{"address": STRANGER}, {"address": SELLER, "proxy": POOL[0]}]),
    ] {
        let full = relay
            .api(
                "POST",
                "/v1/relay/sessions",
                Some(json!({ "participants": participants })),
            )
            .await;
        assert_eq!(full.status, 409, "{participants}: {}", full.json);
        assert_eq!(full.json["error"], "pool_exhausted", "{}", full.json);
    }
    let pool = relay.api("GET", "/v1/relay/pool", None).await;
    assert_eq!(
        pool.json,
        json!({"numbers": [{"number": POOL[0], "in_use": 1}]}),
        "one session uses it"
    );
    // Others can still share that number.
    relay
        .create(json!([{"address": STRANGER}, {"address": COURIER}]))
        .await;

    let unknown = "/v1/relay/sessions/RS00000000000000000000000000000000";
    for method in ["GET", "DELETE"] {
        let answer = relay.api(method, unknown, None).await;
        assert_eq!(answer.status, 404, "{method}: {}", answer.json);
        assert_eq!(answer.json, json!({"error": "not_found"}));
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Hand-off from a flow: config/handoff.toml

/// The number the clinic's patients text: the flows' number, not a pool number.
const CLINIC: &str = "+14155550200";
const PATIENT: &str = "+14155550042";
const NURSE: &str = "+14155550999";
const DEMO_ADMIN_TOKEN: &str = "demo-admin-token-0123456789";

/// config/handoff.toml with the admin API on a free port and an absolute `flows.dir`.
fn handoff_config(dir: &TempDir) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let toml = std::fs::read_to_string(format!("{root}/config/handoff.toml"))
        .expect("read config/handoff.toml");
    let admin = format!(r#"admin_listen = "{}""#, admin_listen());
    let adapted = toml
        .replace(r#"admin_listen = "127.0.0.1:8081""#, &admin)
        .replace(
            r#"dir = "config/flows/handoff""#,
            &format!(r#"dir = "{root}/config/flows/handoff""#),
        );
    assert!(
        adapted.contains(&admin) && adapted.contains(&format!("{root}/config")),
        "config/handoff.toml changed shape:\n{toml}"
    );
    assert!(
        adapted.contains(DEMO_ADMIN_TOKEN) && adapted.contains(NURSE),
        "{toml}"
    );
    dir.write("handoff.toml", &adapted)
}

#[tokio::test]
async fn a_connect_node_hands_the_patient_to_the_nurse_until_the_nurse_closes() {
    let dir = TempDir::new("relay-handoff");
    let config = handoff_config(&dir);
    let env = [
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
    ];
    let relay = Relay::admin_of(Server::start_with_config(&config, &env), None);
    let pool = ["+14155550100", "+14155550101"];
    let sms = relay.sms();

    let asked = send_text(&sms, &Text::new(PATIENT, CLINIC, "nurse")).await;
    assert_eq!(asked.messages.len(), 1, "{}", asked.body);
    assert_eq!(
        asked.to_sender()[0].text,
        "Smile Dental after hours. What's your name?"
    );
    let named = send_text(&sms, &Text::new(PATIENT, CLINIC, "Ana")).await;
    assert_eq!(
        named.to_sender()[0].text,
        "Thanks, Ana. In a few words, what's wrong?"
    );

    let problem = Text::new(PATIENT, CLINIC, "my crown fell out");
    let connected = send_text(&sms, &problem).await;
    assert_eq!(connected.messages.len(), 2, "{}", connected.body);
    // Twilio retries that webhook: the same bytes, and no second session.
    assert_eq!(send_text(&sms, &problem).await.body, connected.body);
    let greeting = connected.to_sender();
    assert_eq!(greeting.len(), 1, "{}", connected.body);
    assert_eq!(
        greeting[0].text,
        "Connecting you to the nurse on call. Reply here to talk with them."
    );
    let to_nurse = connected.to(NURSE);
    assert_eq!(to_nurse.len(), 1, "{}", connected.body);
    let nurse_proxy = to_nurse[0].from.clone().expect("from a pool number");
    assert!(pool.contains(&nurse_proxy.as_str()), "{nurse_proxy}");
    assert_eq!(
        to_nurse[0].text,
        "After-hours patient Ana: \"my crown fell out\". Reply here to talk to them; text #close when done."
    );

    // The session the admin API shows: the patient keeps the clinic's number.
    let open = admin_call(
        relay.admin,
        "GET",
        "/v1/relay/sessions?state=open",
        Some(DEMO_ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(open.status, 200, "{}", open.json);
    let sessions = open.json["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{}", open.json);
    assert_eq!(proxy_of(&sessions[0], PATIENT), CLINIC);
    assert_eq!(proxy_of(&sessions[0], NURSE), nurse_proxy);
    assert_eq!(sessions[0]["handoff_from"], PATIENT);

    let nurse_says = send_text(
        &sms,
        &Text::new(NURSE, &nurse_proxy, "Hi Ana, is it painful?"),
    )
    .await;
    assert_eq!(nurse_says.messages.len(), 1, "{}", nurse_says.body);
    assert_forward(&nurse_says, PATIENT, CLINIC, "Hi Ana, is it painful?", &[]);

    let patient_says = send_text(&sms, &Text::new(PATIENT, CLINIC, "A little")).await;
    assert_eq!(patient_says.messages.len(), 1, "{}", patient_says.body);
    assert_forward(&patient_says, NURSE, &nurse_proxy, "A little", &[]);

    // While the hand-off is open, the flows' trigger word is a text for the nurse.
    let word = send_text(&sms, &Text::new(PATIENT, CLINIC, "nurse")).await;
    assert_forward(&word, NURSE, &nurse_proxy, "nurse", &[]);
    assert!(word.to_sender().is_empty(), "{}", word.body);

    let closing = send_text(&sms, &Text::new(NURSE, &nurse_proxy, "#close")).await;
    // The nurse is told, and so is the patient, from the number they have been texting; the
    // close word itself goes to no one.
    assert_eq!(closing.messages.len(), 2, "{}", closing.body);
    let told = closing.to_sender();
    assert_eq!(told.len(), 1, "{}", closing.body);
    assert_eq!(
        told[0].text,
        "Closed. Their next text goes back to the automated service."
    );
    assert_forward(&closing, PATIENT, CLINIC, CLOSED, &[]);
    assert!(!closing.body.contains("#close"), "{}", closing.body);
    let closed = admin_call(
        relay.admin,
        "GET",
        "/v1/relay/sessions?state=closed",
        Some(DEMO_ADMIN_TOKEN),
        None,
    )
    .await;
    let sessions = closed.json["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{}", closed.json);
    assert_eq!(sessions[0]["closed_reason"], "agent");

    // The patient is back with the flows: the trigger works again.
    let back = send_text(&sms, &Text::new(PATIENT, CLINIC, "nurse")).await;
    assert_eq!(back.messages.len(), 1, "{}", back.body);
    assert_eq!(
        back.to_sender()[0].text,
        "Smile Dental after hours. What's your name?"
    );
    assert!(back.to(NURSE).is_empty());
    // The nurse's late text is not forwarded.
    let late = send_text(&sms, &Text::new(NURSE, &nurse_proxy, "One more thing")).await;
    assert!(late.to(PATIENT).is_empty(), "{}", late.body);
    assert_eq!(late.to_sender()[0].text, CLOSED);
}

#[tokio::test]
async fn with_both_pool_numbers_taken_by_the_nurse_the_next_patient_gets_the_busy_line() {
    let dir = TempDir::new("relay-handoff-busy");
    let config = handoff_config(&dir);
    let env = [
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
    ];
    let relay = Relay::admin_of(Server::start_with_config(&config, &env), None);
    let sms = relay.sms();
    let mut proxies = Vec::new();
    for patient in ["+14155550041", "+14155550042", "+14155550043"] {
        for body in ["helpline", "Bo"] {
            send_text(&sms, &Text::new(patient, CLINIC, body)).await;
        }
        let handed = send_text(&sms, &Text::new(patient, CLINIC, "toothache")).await;
        let last = send_text(&sms, &Text::new(patient, CLINIC, "still waiting")).await;
        proxies.push((patient, handed, last));
    }
    // The nurse's binding to each pool number is one hand-off: two patients get one each.
    for ((_, handed, last), pool_number) in proxies.iter().zip(["+14155550100", "+14155550101"]) {
        assert_eq!(handed.to(NURSE)[0].from.as_deref(), Some(pool_number));
        assert_forward(last, NURSE, pool_number, "still waiting", &[]);
    }
    // The third is told the line is busy (the node's on_error), and is not handed off.
    let (third, busy, after) = &proxies[2];
    assert_eq!(busy.messages.len(), 1, "{}", busy.body);
    assert!(
        busy.to_sender()[0]
            .text
            .starts_with("Sorry, the nurse line is busy."),
        "{}",
        busy.body
    );
    assert!(after.to(NURSE).is_empty(), "{}", after.body);
    let open = admin_call(
        relay.admin,
        "GET",
        &format!(
            "/v1/relay/sessions?state=open&address={}",
            third.replace('+', "%2B")
        ),
        Some(DEMO_ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(open.status, 200, "{}", open.json);
    assert_eq!(open.json["sessions"], json!([]), "{}", open.json);
    let retry = send_text(&sms, &Text::new(third, CLINIC, "helpline")).await;
    assert_eq!(
        retry.to_sender()[0].text,
        "Smile Dental after hours. What's your name?"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Two replicas, one Redis, one number

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_race_for_the_last_number_and_exactly_one_wins_then_relay_for_each_other() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let pool = [POOL[0]];
    let (a, b) = (
        Relay::on_store(&redis.url(), &pool),
        Relay::on_store(&redis.url(), &pool),
    );

    // Five rounds, each a new pair of people racing for their binding of the one number.
    let mut won = Vec::new();
    for round in 0..5u16 {
        let (first, second) = (
            format!("+1415555{:04}", 2000 + 2 * round),
            format!("+1415555{:04}", 2001 + 2 * round),
        );
        let body = json!({"participants": [{"address": first}, {"address": second}]});
        let (on_a, on_b) = tokio::join!(
            a.api("POST", "/v1/relay/sessions", Some(body.clone())),
            b.api("POST", "/v1/relay/sessions", Some(body.clone())),
        );
        let mut statuses = [on_a.status, on_b.status];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [201, 409],
            "round {round}: A {} B {}",
            on_a.json,
            on_b.json
        );
        let created_on_a = on_a.status == 201;
        let (session, lost) = if created_on_a {
            (on_a.json, on_b.json)
        } else {
            (on_b.json, on_a.json)
        };
        assert_eq!(lost["error"], "pool_exhausted", "{lost}");
        won.push((first, second, session, created_on_a));
    }
    let open = a.api("GET", "/v1/relay/sessions?state=open", None).await;
    assert_eq!(
        open.json["sessions"].as_array().map(Vec::len),
        Some(5),
        "{}",
        open.json
    );
    let pool_use = b.api("GET", "/v1/relay/pool", None).await;
    assert_eq!(
        pool_use.json,
        json!({"numbers": [{"number": POOL[0], "in_use": 5}]}),
        "five sessions use it"
    );

    // A session created on one replica relays through the other, both ways.
    for (first, second, session, created_on_a) in &won {
        let (other, creator) = if *created_on_a { (&b, &a) } else { (&a, &b) };
        let there = other.text(first, POOL[0], "via the other replica").await;
        assert_forward(&there, second, POOL[0], "via the other replica", &[]);
        assert!(there.body.contains(&id_of(session)), "{}", there.body);
        let back = creator.text(second, POOL[0], "and back").await;
        assert_forward(&back, first, POOL[0], "and back", &[]);
    }

    // Closed on one replica: the other answers as closed, and the number is free for both.
    let (first, second, session, _) = &won[0];
    let closed = a.close(&id_of(session)).await;
    assert_eq!(closed.status, 200);
    let ended = b.text(first, POOL[0], "hello?").await;
    assert_eq!(ended.to_sender()[0].text, CLOSED);
    assert!(ended.to(second).is_empty());
    let rebound = b
        .api(
            "POST",
            "/v1/relay/sessions",
            Some(json!({"participants": [{"address": first}, {"address": second}]})),
        )
        .await;
    assert_eq!(rebound.status, 201, "{}", rebound.json);
}

// ---------------------------------------------------------------------------------------------
// 9. Configurations refused at start

#[test]
fn a_relay_without_a_server_side_store_is_refused_naming_session_store() {
    let dir = TempDir::new("relay-refusals");
    let cookie_file = dir.write(
        "cookie.toml",
        "[session]\nstore = \"cookie\"\n\n[relay]\nnumbers = [\"+14155550100\"]\n",
    );
    let base = [
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
        ("SMS_SESSIONS_LISTEN", "127.0.0.1:0"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut env = extra.to_vec();
        env.extend(base);
        env
    };
    // (arguments, environment, the key the refusal names)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        // session.store defaults to cookie.
        (
            vec!["check-config"],
            with(&[("SMS_SESSIONS_RELAY_NUMBERS", "+14155550100")]),
            "session.store",
        ),
        (
            vec!["serve"],
            with(&[
                ("SMS_SESSIONS_RELAY_NUMBERS", "+14155550100"),
                ("SMS_SESSIONS_STORE", "cookie"),
            ]),
            "session.store",
        ),
        (
            vec!["--config", &cookie_file, "serve"],
            with(&[]),
            "session.store",
        ),
        (
            vec!["--config", &cookie_file, "check-config"],
            with(&[]),
            "session.store",
        ),
        // The admin API manages relay sessions only, and never without a token.
        (
            vec!["serve"],
            with(&[
                ("SMS_SESSIONS_STORE", "memory"),
                ("SMS_SESSIONS_ADMIN_LISTEN", "127.0.0.1:0"),
                ("SMS_SESSIONS_ADMIN_TOKEN", ADMIN_TOKEN),
            ]),
            "server.admin_listen",
        ),
        (
            vec!["serve"],
            with(&[
                ("SMS_SESSIONS_STORE", "memory"),
                ("SMS_SESSIONS_RELAY_NUMBERS", "+14155550100"),
                ("SMS_SESSIONS_ADMIN_LISTEN", "127.0.0.1:0"),
            ]),
            "admin.tokens",
        ),
        (
            vec!["serve"],
            with(&[
                ("SMS_SESSIONS_STORE", "memory"),
                ("SMS_SESSIONS_RELAY_NUMBERS", "+14155550100"),
                ("SMS_SESSIONS_VALIDATE_SIGNATURES", "false"),
            ]),
            "twilio.validate_signatures",
        ),
    ];
    for (args, env, key) in cases {
        let output = common_spawn::run_within(&args, &env, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{args:?} {env:?} started: {stderr}"
        );
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(key), "{args:?} names {key}: {stderr}");
        assert!(
            !stderr.contains(ADMIN_TOKEN),
            "a token is never quoted: {stderr}"
        );
    }
}

#[test]
fn an_admin_listener_on_port_0_beside_the_webhooks_on_port_0_starts() {
    // Port 0 asks the kernel for a free port: two listeners on 127.0.0.1:0 never share one, so
    // "must differ from server.listen" should not apply to them.
    let env = relay_env("memory", POOL[0], "127.0.0.1:0");
    let relay = Relay::admin_of(Server::start(&env), None);
    assert_ne!(relay.admin.port(), relay.server.addr.port());
}
