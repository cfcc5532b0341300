//! One simulated phone: its own keep-alive HTTP/1.1 connection and Twilio-like cookie jar,
//! texting one Twilio number, and checking every reply against its [`Script`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use sms_sessions::twilio::signature::AuthToken;
use tokio::net::TcpStream;

use crate::script::{self, Conversation, Script};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A text without a reply by then counts as an error (and its connection is dropped).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What every webhook of a run shares: where it goes and how it is signed.
pub struct Signer {
    pub token: AuthToken,
    /// The URL Twilio signs (the server's public URL + `/sms`).
    pub signed_url: String,
    /// The server's address, where the request really goes.
    pub addr: SocketAddr,
}

/// A realistic inbound payload whose sid and sender are replaced per text.
pub struct Template {
    pairs: Vec<(String, String)>,
    /// `whatsapp:` for WhatsApp payloads, else empty.
    channel: &'static str,
}

impl Template {
    pub fn parse(form: &str) -> Self {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(form.trim().as_bytes())
            .into_owned()
            .collect();
        let whatsapp = pairs
            .iter()
            .any(|(k, v)| k == "From" && v.starts_with("whatsapp:"));
        let channel = if whatsapp { "whatsapp:" } else { "" };
        Self { pairs, channel }
    }
}

/// How one text went.
pub enum Outcome {
    /// The reply was the one expected (or not checked).
    Checked,
    /// A reply, but not the one expected: `expected` says what was.
    Wrong {
        expected: String,
        got: String,
    },
    Failed(String),
}

pub struct Phone {
    id: u64,
    /// E.164, without the channel prefix.
    number: String,
    from: String,
    template: Arc<Template>,
    /// `name=value` of the session cookie, as Twilio's jar for this pair keeps it. In a store
    /// mode the server sends no `Set-Cookie`, so it stays empty: the count is the server's,
    /// kept under the (To, From) pair, and checked all the same.
    cookie: Option<String>,
    /// Texts this phone knows the server has counted (the counter), or has sent.
    sent: u64,
    /// False after a transport error: the server may or may not have counted that text, so
    /// the next reply's count is taken as the truth.
    in_sync: bool,
    /// Where this phone is in a conversation: the next exchange.
    step: usize,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl Phone {
    pub fn new(id: u64, template: Arc<Template>) -> Self {
        let number = format!("+1555{id:07}");
        let from = format!("{}{number}", template.channel);
        Self {
            id,
            number,
            from,
            template,
            cookie: None,
            sent: 0,
            in_sync: true,
            step: 0,
            connection: None,
        }
    }

    /// Sends the next text of `script` and checks the reply.
    pub async fn text(&mut self, signer: &Signer, script: Script) -> Outcome {
        let k = self.sent + 1;
        let request = self.webhook(signer, k, script.text(self.step));
        let reply = tokio::time::timeout(REPLY_TIMEOUT, self.send(signer.addr, request)).await;
        let (status, set_cookie, body) =
            match reply.unwrap_or_else(|_| Err("no reply in 10 s".into())) {
                Ok(reply) => reply,
                Err(error) => {
                    self.connection = None;
                    self.lose_track();
                    return Outcome::Failed(error.to_string());
                }
            };
        if status != 200 {
            self.lose_track();
            return Outcome::Failed(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
        }
        self.keep_cookie(set_cookie.as_ref());
        match script {
            Script::Unchecked => {
                self.sent = k;
                Outcome::Checked
            }
            Script::Counter => self.check_count(k, &body),
            Script::Conversation(conversation) => self.check_reply(k, conversation, &body),
        }
    }

    /// After a failed text the server may or may not have taken it: the counter takes the
    /// next reply's count as the truth, a conversation starts over.
    fn lose_track(&mut self) {
        self.in_sync = false;
        self.step = 0;
    }

    fn check_count(&mut self, k: u64, body: &[u8]) -> Outcome {
        let text = message_text(body);
        let got = text.and_then(script::count_in);
        if got == Some(k) || (!self.in_sync && got.is_some()) {
            self.sent = got.unwrap_or(k);
            self.in_sync = true;
            return Outcome::Checked;
        }
        self.sent = got.unwrap_or(0);
        Outcome::Wrong {
            expected: format!("count {k}"),
            got: text.unwrap_or("(no <Message>)").to_owned(),
        }
    }

    /// The reply to exchange `step` must match it; on a wrong one the next text starts over
    /// (its first text restarts the conversation wherever it stands). The conversation's
    /// failure reply is an error of the server's, not a wrong reply.
    fn check_reply(&mut self, k: u64, conversation: &Conversation, body: &[u8]) -> Outcome {
        self.sent = k;
        let exchange = &conversation.exchanges[self.step];
        let text = message_text(body);
        if text.is_some_and(|text| script::replied(exchange, text)) {
            self.step = conversation.next(self.step);
            return Outcome::Checked;
        }
        self.step = 0;
        if let (Some(text), Some(failure)) = (text, conversation.failure)
            && text == failure
        {
            return Outcome::Failed(format!("{:?} → the failure reply {text:?}", exchange.send));
        }
        Outcome::Wrong {
            expected: format!("{:?} → {:?}", exchange.send, exchange.expect),
            got: text.unwrap_or("(no <Message>)").to_owned(),
        }
    }

    /// The k-th text, signed as Twilio would sign it; `text` replaces the payload's `Body`.
    fn webhook(&self, signer: &Signer, k: u64, text: Option<&str>) -> Request<Full<Bytes>> {
        let sid = format!("SM{:016x}{k:016x}", self.id);
        let wa_id = &self.number[1..];
        let pairs: Vec<(&str, &str)> = self
            .template
            .pairs
            .iter()
            .map(|(key, value)| match key.as_str() {
                "MessageSid" | "SmsSid" | "SmsMessageSid" => (key.as_str(), sid.as_str()),
                "From" => (key.as_str(), self.from.as_str()),
                "WaId" => (key.as_str(), wa_id),
                "Body" => (key.as_str(), text.unwrap_or(value)),
                _ => (key.as_str(), value.as_str()),
            })
            .collect();
        let signature = signer.token.sign(&signer.signed_url, &pairs);
        let body = form_urlencoded::Serializer::new(String::with_capacity(1024))
            .extend_pairs(&pairs)
            .finish();
        let mut request = Request::post("/sms")
            .header(header::HOST, signer.addr.to_string())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .header("i-twilio-idempotency-token", sid.as_str())
            .header(header::USER_AGENT, "TwilioProxy/1.1")
            .header(header::ACCEPT, "*/*")
            .header(header::CACHE_CONTROL, "max-age=259200");
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie.as_str());
        }
        request
            .body(Full::new(Bytes::from(body)))
            .expect("static parts are valid")
    }

    async fn send(
        &mut self,
        addr: SocketAddr,
        request: Request<Full<Bytes>>,
    ) -> Result<(u16, Option<HeaderValue>, Bytes), Error> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(connect(addr).await?),
        };
        connection.ready().await?;
        let response = connection.send_request(request).await?;
        let status = response.status().as_u16();
        let set_cookie = response.headers().get(header::SET_COOKIE).cloned();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, set_cookie, body))
    }

    /// Twilio's jar: keep `name=value`; `Max-Age=0` deletes.
    fn keep_cookie(&mut self, set_cookie: Option<&HeaderValue>) {
        let Some(text) = set_cookie.and_then(|v| v.to_str().ok()) else {
            return;
        };
        let mut parts = text.split(';');
        let pair = parts.next().unwrap_or_default().trim();
        let deleted = parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
        self.cookie = (!deleted && !pair.is_empty()).then(|| pair.to_owned());
    }
}

/// A keep-alive HTTP/1.1 connection; its driver runs as a task.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, Error> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// The text of the first `<Message>`.
fn message_text(body: &[u8]) -> Option<&str> {
    let body = std::str::from_utf8(body).ok()?;
    let start = body.find("<Message>")? + "<Message>".len();
    let end = start + body[start..].find("</Message>")?;
    Some(&body[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{ORDER, SHOP_DOWN};

    fn twiml(text: &str) -> Vec<u8> {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{text}</Message></Response>")
            .into_bytes()
    }

    /// The order walk: "order" once, then the numbers round and round; the failure reply (a
    /// call-out that went to `on_error`) is an error, another reply a wrong one, and after
    /// either the phone starts over with "order".
    #[test]
    fn a_conversation_loops_from_again_from_and_its_failure_reply_is_an_error() {
        let mut phone = Phone::new(1, Arc::new(Template::parse("Body=hi&From=%2B15550000001")));
        let mut walked = Vec::new();
        for k in 1..=8 {
            let exchange = &ORDER.exchanges[phone.step];
            walked.push(exchange.send);
            let reply = exchange.expect.to_owned();
            let outcome = phone.check_reply(k, &ORDER, &twiml(&reply));
            assert!(matches!(outcome, Outcome::Checked), "{:?}", exchange.send);
        }
        assert_eq!(
            walked,
            ["order", "1001", "20417", "3", "1001", "20417", "3", "1001"]
        );
        let outcome = phone.check_reply(9, &ORDER, &twiml(SHOP_DOWN));
        assert!(matches!(outcome, Outcome::Failed(_)));
        assert_eq!(phone.step, 0);
        phone.check_reply(10, &ORDER, &twiml("Order number?"));
        let outcome = phone.check_reply(11, &ORDER, &twiml("Order number?"));
        assert!(matches!(outcome, Outcome::Wrong { .. }));
        assert_eq!(phone.step, 0);
    }
}
