//! The form parameters Twilio posts for one inbound text, so `send` exercises the server with
//! what production will really see (order as in captured webhooks, `tests/data/payloads/`).
//!
//! Location parameters (`FromCity`…) are left out: Twilio sends them only when it knows them.

use super::segments;

/// The account SID used when `TWILIO_ACCOUNT_SID` is not set.
pub const PLACEHOLDER_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";

/// One text as a phone sends it.
#[derive(Debug, Clone, Copy)]
pub struct Text<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub body: &'a str,
    /// Public URLs of attached media (MMS).
    pub media: &'a [String],
}

/// A fresh message SID: `SM` + 32 hex digits, or `MM` for a message with media, as Twilio
/// issues them.
pub fn new_message_sid(has_media: bool) -> String {
    let prefix = if has_media { "MM" } else { "SM" };
    format!("{prefix}{:032x}", rand::random::<u128>())
}

/// `TWILIO_ACCOUNT_SID` when set, else [`PLACEHOLDER_ACCOUNT_SID`].
pub fn account_sid_from_env() -> String {
    std::env::var("TWILIO_ACCOUNT_SID")
        .ok()
        .filter(|sid| !sid.is_empty())
        .unwrap_or_else(|| PLACEHOLDER_ACCOUNT_SID.to_owned())
}

/// The webhook parameters for `text`, carrying `message_sid` and `account_sid`.
pub fn for_text(text: &Text<'_>, message_sid: &str, account_sid: &str) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = Vec::with_capacity(12 + 2 * text.media.len());
    let mut push = |key: &str, value: &str| params.push((key.to_owned(), value.to_owned()));
    for (index, url) in text.media.iter().enumerate() {
        push(&format!("MediaContentType{index}"), guess_content_type(url));
    }
    push("SmsMessageSid", message_sid);
    push("NumMedia", &text.media.len().to_string());
    push("SmsSid", message_sid);
    push("SmsStatus", "received");
    push("Body", text.body);
    push("To", text.to);
    push("NumSegments", &segments::count(text.body).to_string());
    push("MessageSid", message_sid);
    push("AccountSid", account_sid);
    push("From", text.from);
    for (index, url) in text.media.iter().enumerate() {
        push(&format!("MediaUrl{index}"), url);
    }
    push("ApiVersion", "2010-04-01");
    params
}

/// The MIME type Twilio would report for a media URL, from its file extension.
pub fn guess_content_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("bmp") => "image/bmp",
        Some("heic") => "image/heic",
        Some("mp4") => "video/mp4",
        Some("3gp") => "video/3gpp",
        Some("mov") => "video/quicktime",
        Some("mp3") => "audio/mpeg",
        Some("m4a") => "audio/mp4",
        Some("ogg" | "oga") => "audio/ogg",
        Some("amr") => "audio/amr",
        Some("wav") => "audio/wav",
        Some("pdf") => "application/pdf",
        Some("vcf") => "text/vcard",
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twilio::inbound::{InboundMessage, Media};

    #[test]
    fn sids_have_twilios_shape() {
        let sms = new_message_sid(false);
        assert!(sms.starts_with("SM") && sms.len() == 34, "{sms}");
        assert!(sms[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert!(new_message_sid(true).starts_with("MM"));
        assert_ne!(new_message_sid(false), new_message_sid(false));
    }

    #[test]
    fn the_servers_parser_reads_back_what_we_send() {
        let media = vec![
            "https://example.com/a.JPG?x=1".to_owned(),
            "https://example.com/clip.mp4".to_owned(),
        ];
        let text = Text {
            from: "+14155550199",
            to: "+14155550100",
            body: "Two pics",
            media: &media,
        };
        let params = for_text(&text, "MM0123", PLACEHOLDER_ACCOUNT_SID);
        let message = InboundMessage::from_pairs(&params).expect("From and To are present");
        assert_eq!(message.message_sid, "MM0123");
        assert_eq!(message.account_sid, PLACEHOLDER_ACCOUNT_SID);
        assert_eq!((message.from, message.to), (text.from, text.to));
        assert_eq!(message.body, "Two pics");
        assert_eq!(message.num_segments, Some(1));
        assert_eq!(message.num_media, 2);
        assert_eq!(message.sms_status, Some("received"));
        assert_eq!(message.api_version, Some("2010-04-01"));
        assert_eq!(
            message.media,
            vec![
                Media {
                    url: &media[0],
                    content_type: Some("image/jpeg")
                },
                Media {
                    url: &media[1],
                    content_type: Some("video/mp4")
                },
            ]
        );
    }

    #[test]
    fn unknown_extensions_are_octet_streams() {
        assert_eq!(
            guess_content_type("https://example.com/file"),
            "application/octet-stream"
        );
        assert_eq!(
            guess_content_type("https://example.com/v1.2/blob"),
            "application/octet-stream"
        );
    }
}
