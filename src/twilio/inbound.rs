//! Typed views of Twilio's messaging webhooks: the inbound message and the status callback.
//!
//! Both are built from the decoded form pairs in arrival order (never a map, so repeated keys
//! are seen as Twilio sent them). Unknown parameters are kept in `other`, so Twilio can add
//! parameters without breaking anything. An [`InboundMessage`] borrows its text from the
//! decoded pairs: reading a webhook copies nothing.

/// One media attachment of an MMS or WhatsApp message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media<'a> {
    pub url: &'a str,
    pub content_type: Option<&'a str>,
}

/// An inbound SMS, MMS or WhatsApp message (Twilio's "A message comes in" webhook).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InboundMessage<'a> {
    pub message_sid: &'a str,
    pub account_sid: &'a str,
    pub messaging_service_sid: Option<&'a str>,
    pub from: &'a str,
    pub to: &'a str,
    pub body: &'a str,
    pub num_segments: Option<u32>,
    pub num_media: u32,
    /// Media in index order, from `MediaUrlN` / `MediaContentTypeN`.
    pub media: Vec<Media<'a>>,
    pub sms_status: Option<&'a str>,
    pub api_version: Option<&'a str>,
    /// `STOP`, `START` or `HELP` when Twilio's Advanced Opt-Out recognised a keyword.
    pub opt_out_type: Option<&'a str>,
    pub from_geo: Geography<'a>,
    pub to_geo: Geography<'a>,
    pub whatsapp: WhatsApp<'a>,
    /// Every parameter not named above, in arrival order.
    pub other: Vec<(&'a str, &'a str)>,
}

/// Twilio's best guess at where a number is registered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Geography<'a> {
    pub city: Option<&'a str>,
    pub state: Option<&'a str>,
    pub zip: Option<&'a str>,
    pub country: Option<&'a str>,
}

/// Parameters that only WhatsApp messages carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WhatsApp<'a> {
    pub profile_name: Option<&'a str>,
    pub wa_id: Option<&'a str>,
    pub message_type: Option<&'a str>,
    pub forwarded: Option<bool>,
    pub frequently_forwarded: Option<bool>,
    pub button_text: Option<&'a str>,
    pub button_payload: Option<&'a str>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub address: Option<&'a str>,
    pub label: Option<&'a str>,
    pub original_replied_message_sender: Option<&'a str>,
    pub original_replied_message_sid: Option<&'a str>,
}

/// A message status callback (`StatusCallback` URL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCallback {
    pub message_sid: String,
    pub message_status: String,
    pub account_sid: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub api_version: Option<String>,
    pub other: Vec<(String, String)>,
}

/// A required parameter was absent or empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing required parameter {0}")]
pub struct MissingParam(pub &'static str);

/// Media indexes past this are ignored: Twilio sends at most 10, and a hostile body must not
/// make us allocate for index 4 billion.
const MAX_MEDIA_INDEX: usize = 99;

impl<'a> InboundMessage<'a> {
    /// Builds the message from decoded form pairs; `From` and `To` are required.
    pub fn from_pairs<K, V>(pairs: &'a [(K, V)]) -> Result<Self, MissingParam>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::from_params(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
    }

    /// Builds the message from `(key, value)` pairs in arrival order, borrowing their text;
    /// `From` and `To` are required.
    pub fn from_params(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, MissingParam> {
        let mut message = Self::default();
        let mut media = MediaSlots::new();
        for (key, value) in pairs {
            if let Some((index, is_url)) = media_index(key) {
                record_media(&mut media, index, is_url, value);
            } else if !message.set(key, value) {
                message.other.push((key, value));
            }
        }
        message.media = collect_media(media);
        require(message.from, "From")?;
        require(message.to, "To")?;
        Ok(message)
    }

    /// Stores a known parameter; false for a parameter this type has no field for.
    fn set(&mut self, key: &str, value: &'a str) -> bool {
        match key {
            "MessageSid" => self.message_sid = value,
            "SmsSid" | "SmsMessageSid" => {
                if self.message_sid.is_empty() {
                    self.message_sid = value;
                }
            }
            "AccountSid" => self.account_sid = value,
            "MessagingServiceSid" => self.messaging_service_sid = Some(value),
            "From" => self.from = value,
            "To" => self.to = value,
            "Body" => self.body = value,
            "NumSegments" => self.num_segments = value.parse().ok(),
            "NumMedia" => self.num_media = value.parse().unwrap_or(0),
            "SmsStatus" => self.sms_status = Some(value),
            "ApiVersion" => self.api_version = Some(value),
            "OptOutType" => self.opt_out_type = Some(value),
            _ => return self.set_geography(key, value) || self.whatsapp.set(key, value),
        }
        true
    }

    fn set_geography(&mut self, key: &str, value: &'a str) -> bool {
        let (geo, field) = if let Some(field) = key.strip_prefix("From") {
            (&mut self.from_geo, field)
        } else if let Some(field) = key.strip_prefix("To") {
            (&mut self.to_geo, field)
        } else {
            return false;
        };
        let slot = match field {
            "City" => &mut geo.city,
            "State" => &mut geo.state,
            "Zip" => &mut geo.zip,
            "Country" => &mut geo.country,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

impl<'a> WhatsApp<'a> {
    fn set(&mut self, key: &str, value: &'a str) -> bool {
        let some = Some(value);
        match key {
            "ProfileName" => self.profile_name = some,
            "WaId" => self.wa_id = some,
            "MessageType" => self.message_type = some,
            "Forwarded" => self.forwarded = value.parse().ok(),
            "FrequentlyForwarded" => self.frequently_forwarded = value.parse().ok(),
            "ButtonText" => self.button_text = some,
            "ButtonPayload" => self.button_payload = some,
            "Latitude" => self.latitude = value.parse().ok(),
            "Longitude" => self.longitude = value.parse().ok(),
            "Address" => self.address = some,
            "Label" => self.label = some,
            "OriginalRepliedMessageSender" => self.original_replied_message_sender = some,
            "OriginalRepliedMessageSid" => self.original_replied_message_sid = some,
            _ => return false,
        }
        true
    }
}

/// `MediaUrl3` → `(3, true)`, `MediaContentType3` → `(3, false)`.
fn media_index(key: &str) -> Option<(usize, bool)> {
    let (digits, is_url) = if let Some(rest) = key.strip_prefix("MediaUrl") {
        (rest, true)
    } else {
        (key.strip_prefix("MediaContentType")?, false)
    };
    let all_digits =
        !digits.is_empty() && digits.len() <= 2 && digits.bytes().all(|b| b.is_ascii_digit());
    let index: usize = if all_digits {
        digits.parse().ok()?
    } else {
        return None;
    };
    (index <= MAX_MEDIA_INDEX).then_some((index, is_url))
}

type MediaSlots<'a> = Vec<(usize, Option<&'a str>, Option<&'a str>)>;

fn record_media<'a>(media: &mut MediaSlots<'a>, index: usize, is_url: bool, value: &'a str) {
    let position = match media.iter().position(|(i, _, _)| *i == index) {
        Some(position) => position,
        None => {
            media.push((index, None, None));
            media.len() - 1
        }
    };
    let entry = &mut media[position];
    let slot = if is_url { &mut entry.1 } else { &mut entry.2 };
    *slot = Some(value);
}

/// Keeps the indexes that have a URL, in index order.
fn collect_media(mut media: MediaSlots<'_>) -> Vec<Media<'_>> {
    media.sort_unstable_by_key(|(index, _, _)| *index);
    media
        .into_iter()
        .filter_map(|(_, url, content_type)| {
            Some(Media {
                url: url?,
                content_type,
            })
        })
        .collect()
}

fn require(value: &str, name: &'static str) -> Result<(), MissingParam> {
    if value.is_empty() {
        Err(MissingParam(name))
    } else {
        Ok(())
    }
}

impl StatusCallback {
    /// Builds the callback from decoded form pairs; `MessageSid` and `MessageStatus` are required.
    pub fn from_pairs<K, V>(pairs: &[(K, V)]) -> Result<Self, MissingParam>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut status = Self::default();
        for (key, value) in pairs {
            let (key, value) = (key.as_ref(), value.as_ref());
            let some = || Some(value.to_owned());
            match key {
                "MessageSid" => status.message_sid = value.to_owned(),
                "SmsSid" if status.message_sid.is_empty() => status.message_sid = value.to_owned(),
                "MessageStatus" => status.message_status = value.to_owned(),
                "SmsStatus" if status.message_status.is_empty() => {
                    status.message_status = value.to_owned()
                }
                "AccountSid" => status.account_sid = value.to_owned(),
                "From" => status.from = some(),
                "To" => status.to = some(),
                "ErrorCode" => status.error_code = some(),
                "ErrorMessage" => status.error_message = some(),
                "ApiVersion" => status.api_version = some(),
                _ => status.other.push((key.to_owned(), value.to_owned())),
            }
        }
        require(&status.message_sid, "MessageSid")?;
        require(&status.message_status, "MessageStatus")?;
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<InboundMessage<'static>, MissingParam> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        // Leaked so the message can borrow it for the rest of the test.
        InboundMessage::from_pairs(Vec::leak(pairs))
    }

    #[test]
    fn sms_payload_parses_every_field() {
        let message = parse(include_str!("../../tests/data/payloads/sms.form")).expect("valid");
        assert_eq!(message.message_sid, "SM1a2b3c4d5e6f708192a3b4c5d6e7f809");
        assert_eq!(message.from, "+14155550199");
        assert_eq!(message.to, "+14155550100");
        assert_eq!(message.body, "Hi there! Is 5 o'clock OK? 👍");
        assert_eq!(message.num_segments, Some(1));
        assert_eq!(message.from_geo.city, Some("SAN FRANCISCO"));
        assert_eq!(message.to_geo.zip, Some("94105"));
        assert_eq!(
            message.messaging_service_sid,
            Some("MG11111111111111111111111111111111")
        );
        assert!(message.media.is_empty());
        assert_eq!(message.other, [("ReferralNumMedia", "0")]);
    }

    #[test]
    fn mms_payload_lists_media_in_index_order() {
        let message = parse(include_str!("../../tests/data/payloads/mms.form")).expect("valid");
        assert_eq!(message.num_media, 2);
        let types: Vec<_> = message.media.iter().map(|m| m.content_type).collect();
        assert_eq!(types, [Some("image/jpeg"), Some("image/png")]);
        assert!(
            message.media[0]
                .url
                .ends_with("/Media/ME0123456789abcdef0123456789abcdef")
        );
        assert!(
            message.media[1]
                .url
                .ends_with("/Media/MEfedcba9876543210fedcba9876543210")
        );
    }

    #[test]
    fn whatsapp_payload_fills_the_whatsapp_fields() {
        let message =
            parse(include_str!("../../tests/data/payloads/whatsapp.form")).expect("valid");
        assert_eq!(message.from, "whatsapp:+14155550199");
        assert_eq!(message.body, "Hello from WhatsApp & friends");
        assert_eq!(message.whatsapp.profile_name, Some("Jane Doe"));
        assert_eq!(message.whatsapp.wa_id, Some("14155550199"));
        assert_eq!(message.whatsapp.message_type, Some("text"));
    }

    #[test]
    fn from_and_to_are_required() {
        assert_eq!(parse("To=%2B1&Body=x"), Err(MissingParam("From")));
        assert_eq!(parse("From=%2B1&Body=x"), Err(MissingParam("To")));
        assert_eq!(parse("From=&To=%2B1"), Err(MissingParam("From")));
    }

    #[test]
    fn odd_media_keys_are_kept_as_other_parameters() {
        let message =
            parse("From=a&To=b&MediaUrl=x&MediaUrl999=y&MediaUrl1=z&MediaUrl+1=w").expect("valid");
        assert_eq!(message.media.len(), 1);
        assert_eq!(message.media[0].url, "z");
        assert_eq!(message.other.len(), 3);
    }

    #[test]
    fn status_callback_needs_sid_and_status() {
        let pairs = [
            ("MessageSid", "SM1"),
            ("MessageStatus", "delivered"),
            ("ErrorCode", "30003"),
        ];
        let status = StatusCallback::from_pairs(&pairs).expect("valid");
        assert_eq!(status.error_code.as_deref(), Some("30003"));
        assert_eq!(
            StatusCallback::from_pairs(&[("MessageSid", "SM1")]),
            Err(MissingParam("MessageStatus"))
        );
    }
}
