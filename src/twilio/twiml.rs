//! A `MessagingResponse` (TwiML) builder on quick-xml.
//!
//! The bytes match twilio-python's `MessagingResponse` (`tests/data/twiml_vectors.json`):
//! attributes sorted by name, empty elements as `<X />`, `<`, `>` and `&` escaped in text, and
//! additionally `"`, tab, CR and LF in attributes. One deliberate difference: characters that
//! XML 1.0 forbids (most C0 controls, U+FFFE, U+FFFF) are dropped, so the output is always
//! well-formed.
//!
//! ```
//! use sms_sessions::twilio::twiml::MessagingResponse;
//!
//! let mut response = MessagingResponse::new();
//! response.message("Hello & welcome").media("https://example.com/a.png")?;
//! assert_eq!(
//!     response.to_xml(),
//!     "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Hello &amp; welcome\
//!      <Media>https://example.com/a.png</Media></Message></Response>"
//! );
//! # Ok::<(), sms_sessions::twilio::twiml::TooManyMedia>(())
//! ```

use std::borrow::Cow;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;

/// Twilio accepts at most this many `<Media>` in one `<Message>`.
pub const MAX_MEDIA: usize = 10;

/// Twilio refuses a message body over this many characters (error 21617): nothing is sent.
pub const MAX_BODY_CHARS: usize = 1_600;

/// `body` cut to [`MAX_BODY_CHARS`], its last character an ellipsis, when it is longer (a cut
/// text is better than none); `Err` gives the cut body and how many characters the whole one
/// had, so a caller can say why.
pub fn within_body_limit(body: String) -> Result<String, (String, usize)> {
    match body.char_indices().nth(MAX_BODY_CHARS - 1) {
        Some((cut, _)) if body[cut..].chars().nth(1).is_some() => {
            let mut cut_body = body[..cut].to_owned();
            cut_body.push('…');
            Err((cut_body, body.chars().count()))
        }
        _ => Ok(body),
    }
}

/// The `Content-Type` TwiML is served with.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// The root `<Response>` of a reply to an inbound message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagingResponse {
    verbs: Vec<Verb>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verb {
    Message(Message),
    Redirect(Redirect),
}

/// HTTP method for `action` and `<Redirect>` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// A `<Message>` verb: text, `<Body>` and `<Media>` children, and its attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    text: String,
    children: Vec<Child>,
    action: Option<String>,
    from: Option<String>,
    method: Option<Method>,
    status_callback: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Child {
    Body(String),
    Media(String),
}

/// A `<Redirect>` verb: Twilio fetches the URL for more TwiML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    url: String,
    method: Option<Method>,
}

/// More than [`MAX_MEDIA`] media were added to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a message carries at most {MAX_MEDIA} media")]
pub struct TooManyMedia;

impl MessagingResponse {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `<Message>text</Message>` and returns it for attributes and media.
    pub fn message(&mut self, text: impl Into<String>) -> &mut Message {
        self.push(Message::new(text))
    }

    /// Appends a message built elsewhere.
    pub fn push(&mut self, message: Message) -> &mut Message {
        self.verbs.push(Verb::Message(message));
        match self.verbs.last_mut() {
            Some(Verb::Message(message)) => message,
            _ => unreachable!("a message was just pushed"),
        }
    }

    /// Appends `<Redirect>url</Redirect>`.
    pub fn redirect(&mut self, url: impl Into<String>, method: Option<Method>) -> &mut Self {
        let url = url.into();
        self.verbs.push(Verb::Redirect(Redirect { url, method }));
        self
    }

    /// True when the response holds no verb (Twilio sends nothing back).
    pub fn is_empty(&self) -> bool {
        self.verbs.is_empty()
    }

    /// How many verbs it holds (Twilio acts on at most ten `<Message>`s of one reply).
    pub fn len(&self) -> usize {
        self.verbs.len()
    }

    /// Renders the document, declaration included.
    pub fn to_xml(&self) -> String {
        let mut writer = Writer::new(Vec::with_capacity(256));
        writer.config_mut().add_space_before_slash_in_empty_elements = true;
        let mut out = XmlOut(&mut writer);
        out.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        out.element("Response", Vec::new(), |out| {
            for verb in &self.verbs {
                match verb {
                    Verb::Message(message) => message.write(out),
                    Verb::Redirect(redirect) => redirect.write(out),
                }
            }
        });
        String::from_utf8(writer.into_inner()).expect("the writer only emits UTF-8 from &str")
    }
}

impl Message {
    /// A message whose text is `text` (may be empty, as for media-only messages).
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// Adds a `<Body>` child.
    pub fn body(&mut self, text: impl Into<String>) -> &mut Self {
        self.children.push(Child::Body(text.into()));
        self
    }

    /// Adds a `<Media>` child; refuses the eleventh.
    pub fn media(&mut self, url: impl Into<String>) -> Result<&mut Self, TooManyMedia> {
        let count = self
            .children
            .iter()
            .filter(|child| matches!(child, Child::Media(_)))
            .count();
        if count >= MAX_MEDIA {
            return Err(TooManyMedia);
        }
        self.children.push(Child::Media(url.into()));
        Ok(self)
    }

    pub fn to(&mut self, number: impl Into<String>) -> &mut Self {
        self.to = Some(number.into());
        self
    }

    pub fn from(&mut self, number: impl Into<String>) -> &mut Self {
        self.from = Some(number.into());
        self
    }

    pub fn action(&mut self, url: impl Into<String>) -> &mut Self {
        self.action = Some(url.into());
        self
    }

    pub fn method(&mut self, method: Method) -> &mut Self {
        self.method = Some(method);
        self
    }

    pub fn status_callback(&mut self, url: impl Into<String>) -> &mut Self {
        self.status_callback = Some(url.into());
        self
    }

    /// Attributes in name order, as twilio-python writes them.
    fn attributes(&self) -> Vec<(&'static str, &str)> {
        let pairs = [
            ("action", self.action.as_deref()),
            ("from", self.from.as_deref()),
            ("method", self.method.map(Method::as_str)),
            ("statusCallback", self.status_callback.as_deref()),
            ("to", self.to.as_deref()),
        ];
        pairs
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .collect()
    }

    fn write(&self, out: &mut XmlOut<'_>) {
        out.element("Message", self.attributes(), |out| {
            out.text(&self.text);
            for child in &self.children {
                match child {
                    Child::Body(text) => out.text_element("Body", text),
                    Child::Media(url) => out.text_element("Media", url),
                }
            }
        });
    }
}

impl Redirect {
    fn write(&self, out: &mut XmlOut<'_>) {
        let attributes = self
            .method
            .map(|method| vec![("method", method.as_str())])
            .unwrap_or_default();
        out.element("Redirect", attributes, |out| out.text(&self.url));
    }
}

impl IntoResponse for MessagingResponse {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], self.to_xml()).into_response()
    }
}

/// Writes elements the way ElementTree does: `<X />` when there is no content at all.
struct XmlOut<'w>(&'w mut Writer<Vec<u8>>);

impl XmlOut<'_> {
    fn event(&mut self, event: Event<'_>) {
        self.0
            .write_event(event)
            .expect("writing to a Vec<u8> cannot fail");
    }

    fn element(
        &mut self,
        name: &str,
        attributes: Vec<(&str, &str)>,
        content: impl FnOnce(&mut Self),
    ) {
        let mut start = BytesStart::new(name);
        for (key, value) in attributes {
            start.push_attribute(Attribute {
                key: QName(key),
                value: escape_attribute(value),
            });
        }
        let mark = self.0.get_ref().len();
        self.event(Event::Start(start.borrow()));
        let after_start = self.0.get_ref().len();
        content(self);
        if self.0.get_ref().len() == after_start {
            self.0.get_mut().truncate(mark);
            self.event(Event::Empty(start));
        } else {
            self.event(Event::End(BytesEnd::new(name)));
        }
    }

    fn text_element(&mut self, name: &str, text: &str) {
        self.element(name, Vec::new(), |out| out.text(text));
    }

    fn text(&mut self, text: &str) {
        let escaped = escape_text(text);
        if !escaped.is_empty() {
            self.event(Event::Text(BytesText::from_escaped(escaped)));
        }
    }
}

/// Whether XML 1.0 allows `c` at all (the `Char` production).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape_text(text: &str) -> Cow<'_, str> {
    escape(text, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    })
}

fn escape_attribute(value: &str) -> Cow<'_, str> {
    escape(value, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\n' => Some("&#10;"),
        '\r' => Some("&#13;"),
        '\t' => Some("&#09;"),
        _ => None,
    })
}

/// Replaces characters by their entity and drops characters XML cannot hold; borrows when
/// nothing changes (the common case).
fn escape(text: &str, entity: impl Fn(char) -> Option<&'static str>) -> Cow<'_, str> {
    let needs_work = |c: char| entity(c).is_some() || !is_xml_char(c);
    let Some(first) = text.find(needs_work) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        match entity(c) {
            Some(replacement) => out.push_str(replacement),
            None if is_xml_char(c) => out.push(c),
            None => {}
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

    #[test]
    fn no_reply_is_an_empty_response() {
        assert_eq!(
            MessagingResponse::new().to_xml(),
            format!("{DECL}<Response />")
        );
    }

    #[test]
    fn eleventh_media_is_refused() {
        let mut message = Message::new("");
        for i in 0..MAX_MEDIA {
            message
                .media(format!("https://example.com/{i}.png"))
                .expect("within the limit");
        }
        assert_eq!(
            message.media("https://example.com/x.png").err(),
            Some(TooManyMedia)
        );
    }

    #[test]
    fn illegal_characters_are_dropped_from_text_and_attributes() {
        let mut response = MessagingResponse::new();
        response.message("a\u{0}b\u{7}c\u{FFFE}").to("+1\u{1B}5");
        assert_eq!(
            response.to_xml(),
            format!("{DECL}<Response><Message to=\"+15\">abc</Message></Response>")
        );
    }

    #[test]
    fn redirect_with_method_and_escaped_url() {
        let mut response = MessagingResponse::new();
        response.redirect("/next?a=1&b=2", Some(Method::Get));
        assert_eq!(
            response.to_xml(),
            format!(
                "{DECL}<Response><Redirect method=\"GET\">/next?a=1&amp;b=2</Redirect></Response>"
            )
        );
    }

    #[test]
    fn served_as_text_xml() {
        let response = MessagingResponse::new().into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    }
}
