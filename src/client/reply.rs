//! Reading a server's answer the way Twilio does, so `send` and `chat` can show what the phone
//! would receive.
//!
//! TwiML (`text/xml`, `application/xml`, `text/html`) is parsed with quick-xml: each
//! `<Message>` becomes one [`Reply::Message`] whose text is its bare text followed by its
//! `<Body>`, with its `<Media>` URLs; entities, character references and CDATA are decoded.
//! A `text/plain` answer is one message, as Twilio treats it. The server side writes TwiML in
//! [`crate::twilio::twiml`]; this is its reading counterpart.

use std::fmt::{self, Write as _};

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// One instruction of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Message(Message),
    /// Twilio would fetch this URL for more TwiML.
    Redirect(String),
}

/// A text the phone (or `to`) receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub media: Vec<String>,
    /// The `to` attribute: the message goes to another number.
    pub to: Option<String>,
    /// The `from` attribute: sent from another of the account's numbers (a relay's proxy).
    pub from: Option<String>,
}

/// The answer could not be read as TwiML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwimlError {
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("the root element is <{0}>, not <Response>")]
    NotResponse(String),
    #[error("unknown entity &{0};")]
    Entity(String),
}

/// Where text content currently goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Ignored,
    MessageText,
    Body,
    Media,
    Redirect,
}

/// Reads a whole TwiML document.
pub fn parse_twiml(xml: &str) -> Result<Vec<Reply>, TwimlError> {
    let mut reader = Reader::from_str(xml);
    let mut parser = Parser::default();
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(event) => parser.event(event)?,
            Err(error) => return Err(TwimlError::Xml(error.to_string())),
        }
    }
    if !parser.seen_root {
        return Err(TwimlError::NotResponse(String::new()));
    }
    if !parser.root_closed {
        return Err(TwimlError::Xml(
            "the document ends inside <Response>".into(),
        ));
    }
    Ok(parser.replies)
}

/// A `text/plain` answer: one message, or nothing when the body is blank.
pub fn parse_plain(text: &str) -> Vec<Reply> {
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    vec![Reply::Message(Message {
        text: text.to_owned(),
        ..Message::default()
    })]
}

#[derive(Default)]
struct Parser {
    replies: Vec<Reply>,
    /// Open elements below `<Response>`, with where their text goes.
    stack: Vec<Slot>,
    seen_root: bool,
    root_closed: bool,
    message: Option<Message>,
    /// Text of the open `<Body>`, `<Media>` or `<Redirect>`.
    buffer: String,
    bare: String,
}

impl Parser {
    fn event(&mut self, event: Event<'_>) -> Result<(), TwimlError> {
        match event {
            Event::Start(start) => self.open(&start)?,
            Event::Empty(start) => {
                self.open(&start)?;
                self.close();
            }
            Event::End(_) => self.close(),
            Event::Text(text) => self.text(&text.xml10_content()),
            Event::CData(data) => self.text(&data.xml10_content()),
            Event::GeneralRef(reference) => self.text(&resolve(&reference)?),
            _ => {}
        }
        Ok(())
    }

    fn open(&mut self, start: &BytesStart<'_>) -> Result<(), TwimlError> {
        let name = start.local_name().as_ref().to_owned();
        if !self.seen_root {
            if name != "Response" {
                return Err(TwimlError::NotResponse(name));
            }
            self.seen_root = true;
            return Ok(());
        }
        let slot = match (self.stack.last(), name.as_str()) {
            (None, "Message") => {
                self.message = Some(Message {
                    to: attribute(start, "to"),
                    from: attribute(start, "from"),
                    ..Message::default()
                });
                Slot::MessageText
            }
            (None, "Redirect") => Slot::Redirect,
            (Some(Slot::MessageText), "Body") => Slot::Body,
            (Some(Slot::MessageText), "Media") => Slot::Media,
            _ => Slot::Ignored,
        };
        self.stack.push(slot);
        Ok(())
    }

    fn close(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        match self.stack.pop() {
            Some(Slot::MessageText) => self.finish_message(),
            Some(Slot::Body) => self.bare.push_str(&buffer),
            Some(Slot::Media) => {
                if let Some(message) = &mut self.message {
                    message.media.push(buffer.trim().to_owned());
                }
            }
            Some(Slot::Redirect) => self.replies.push(Reply::Redirect(buffer.trim().to_owned())),
            Some(Slot::Ignored) => {}
            None => self.root_closed = true,
        }
    }

    fn finish_message(&mut self) {
        if let Some(mut message) = self.message.take() {
            message.text = std::mem::take(&mut self.bare).trim().to_owned();
            self.replies.push(Reply::Message(message));
        }
    }

    fn text(&mut self, text: &str) {
        match self.stack.last() {
            Some(Slot::MessageText) => self.bare.push_str(text),
            Some(Slot::Body | Slot::Media | Slot::Redirect) => self.buffer.push_str(text),
            Some(Slot::Ignored) | None => {}
        }
    }
}

fn resolve(reference: &BytesRef<'_>) -> Result<String, TwimlError> {
    let name = reference.xml10_content();
    match reference.resolve_char_ref() {
        Ok(Some(c)) => return Ok(c.to_string()),
        Ok(None) => {}
        Err(_) => return Err(TwimlError::Entity(name.into_owned())),
    }
    resolve_xml_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| TwimlError::Entity(name.into_owned()))
}

fn attribute(start: &BytesStart<'_>, name: &str) -> Option<String> {
    start
        .attributes()
        .flatten()
        .find(|attribute| attribute.key.local_name().as_ref() == name)
        .and_then(|attribute| attribute.normalized_value(XmlVersion::Implicit1_0).ok())
        .map(|value| value.into_owned())
}

/// The replies as a person reads them: one block per message, blank line between blocks.
pub struct Readable<'a>(pub &'a [Reply]);

impl fmt::Display for Readable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(no reply)\n");
        }
        let mut out = String::new();
        for (index, reply) in self.0.iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            write_reply(&mut out, reply)?;
        }
        f.write_str(&out)
    }
}

fn write_reply(out: &mut String, reply: &Reply) -> fmt::Result {
    match reply {
        Reply::Redirect(url) => writeln!(out, "(redirect to {url})"),
        Reply::Message(message) => {
            match (&message.to, &message.from) {
                (Some(to), Some(from)) => writeln!(out, "(to {to}, from {from})")?,
                (Some(to), None) => writeln!(out, "(to {to})")?,
                (None, Some(from)) => writeln!(out, "(from {from})")?,
                (None, None) => {}
            }
            if !message.text.is_empty() || message.media.is_empty() {
                writeln!(out, "{}", message.text)?;
            }
            message
                .media
                .iter()
                .try_for_each(|url| writeln!(out, "[media] {url}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twilio::twiml::MessagingResponse;

    fn message(text: &str, media: &[&str]) -> Reply {
        Reply::Message(Message {
            text: text.into(),
            media: media.iter().map(|m| (*m).to_owned()).collect(),
            to: None,
            from: None,
        })
    }

    #[test]
    fn reads_back_what_the_server_side_builder_writes() {
        let mut response = MessagingResponse::new();
        response
            .message("Tom & <Jerry> \"quoted\"")
            .media("https://example.com/a.png?x=1&y=2")
            .expect("one media");
        response.message("").body("second").to("+15550100");
        response.redirect("/next?a=1&b=2", None);
        let replies = parse_twiml(&response.to_xml()).expect("valid TwiML");
        assert_eq!(
            replies,
            vec![
                message(
                    "Tom & <Jerry> \"quoted\"",
                    &["https://example.com/a.png?x=1&y=2"]
                ),
                Reply::Message(Message {
                    text: "second".into(),
                    media: vec![],
                    to: Some("+15550100".into()),
                    from: None,
                }),
                Reply::Redirect("/next?a=1&b=2".into()),
            ]
        );
    }

    #[test]
    fn hand_written_twiml_with_whitespace_cdata_and_char_refs() {
        let xml = "<?xml version=\"1.0\"?>\n<Response>\n  <Message>\n    <Body>caf&#233; &#x1F600; \
                   <![CDATA[<raw>]]></Body>\n    <Media>\n https://e.com/x.gif \n</Media>\n  \
                   </Message>\n  <Message/>\n</Response>\n";
        assert_eq!(
            parse_twiml(xml).expect("valid"),
            vec![
                message("café 😀 <raw>", &["https://e.com/x.gif"]),
                message("", &[])
            ]
        );
    }

    #[test]
    fn broken_documents_are_errors() {
        assert!(matches!(
            parse_twiml("<Response><Message>x</Response>"),
            Err(TwimlError::Xml(_))
        ));
        assert_eq!(
            parse_twiml("<Other/>"),
            Err(TwimlError::NotResponse("Other".into()))
        );
        assert_eq!(
            parse_twiml("<Response><Message>&nbsp;</Message></Response>"),
            Err(TwimlError::Entity("nbsp".into()))
        );
        assert!(parse_twiml("").is_err());
        assert!(parse_twiml("<Response><Message>cut").is_err());
    }

    #[test]
    fn readable_output_has_one_block_per_message() {
        let replies = [
            message("Hello", &[]),
            message("", &["https://e.com/a.png"]),
            message("both", &["https://e.com/b.png"]),
        ];
        assert_eq!(
            Readable(&replies).to_string(),
            "Hello\n\n[media] https://e.com/a.png\n\nboth\n[media] https://e.com/b.png\n"
        );
        assert_eq!(Readable(&[]).to_string(), "(no reply)\n");
    }

    #[test]
    fn plain_text_is_one_message() {
        assert_eq!(parse_plain("  hi there \n"), vec![message("hi there", &[])]);
        assert!(parse_plain(" \n").is_empty());
    }
}
