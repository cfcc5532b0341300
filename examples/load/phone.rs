//! One simulated phone: its own keep-alive HTTP/1.1 connection and Twilio-like cookie jar,
//! texting one Twilio number, and checking that every reply counts its texts.

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
    Counted,
    WrongCount { expected: u64, got: String },
    Failed(String),
}

pub struct Phone {
    id: u64,
    /// E.164, without the channel prefix.
    number: String,
    from: String,
    template: Arc<Template>,
    /// `name=value` of the session cookie, as Twilio's jar for this pair keeps it.
    cookie: Option<String>,
    /// Texts this phone knows the server has counted.
    sent: u64,
    /// False after a transport error: the server may or may not have counted that text, so
    /// the next reply's count is taken as the truth.
    in_sync: bool,
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
            connection: None,
        }
    }

    /// Sends the next text and checks the reply (`check_count` false for the baseline,
    /// whose reply is constant).
    pub async fn text(&mut self, signer: &Signer, check_count: bool) -> Outcome {
        let k = self.sent + 1;
        let request = self.webhook(signer, k);
        let reply = tokio::time::timeout(REPLY_TIMEOUT, self.send(signer.addr, request)).await;
        let (status, set_cookie, body) =
            match reply.unwrap_or_else(|_| Err("no reply in 10 s".into())) {
                Ok(reply) => reply,
                Err(error) => {
                    self.connection = None;
                    self.in_sync = false;
                    return Outcome::Failed(error.to_string());
                }
            };
        if status != 200 {
            self.in_sync = false;
            return Outcome::Failed(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
        }
        self.keep_cookie(set_cookie.as_ref());
        if !check_count {
            self.sent = k;
            return Outcome::Counted;
        }
        self.check(k, &body)
    }

    fn check(&mut self, k: u64, body: &[u8]) -> Outcome {
        let text = message_text(body);
        let got = text.and_then(count_in);
        if got == Some(k) || (!self.in_sync && got.is_some()) {
            self.sent = got.unwrap_or(k);
            self.in_sync = true;
            return Outcome::Counted;
        }
        self.sent = got.unwrap_or(0);
        Outcome::WrongCount {
            expected: k,
            got: text.unwrap_or("(no <Message>)").to_owned(),
        }
    }

    /// The k-th text, signed as Twilio would sign it.
    fn webhook(&self, signer: &Signer, k: u64) -> Request<Full<Bytes>> {
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

/// The counter flow's number: 1 for the new-message greeting, k for "message number k".
fn count_in(text: &str) -> Option<u64> {
    if text == "Hello, thanks for the new message." {
        return Some(1);
    }
    text.strip_prefix("Hello, thanks for message number ")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_counter_replies() {
        assert_eq!(count_in("Hello, thanks for the new message."), Some(1));
        assert_eq!(count_in("Hello, thanks for message number 12"), Some(12));
        assert_eq!(count_in("Hello"), None);
    }
}
