//! Form parameters (`application/x-www-form-urlencoded`), decoded once per request.
//!
//! Every key and value is decoded into one string and each pair is kept as two ranges into it:
//! two allocations per request instead of two per parameter (a Twilio webhook has 20 to 40).
//! The decoding is `form_urlencoded::parse`'s, byte for byte (a unit test holds it to that).

use std::ops::Range;

/// Decoded form parameters in arrival order, repeated keys kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormPairs {
    text: String,
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

impl FormPairs {
    /// Pieces separated by `&` (empty ones skipped), each split at its first `=` (no `=`: an
    /// empty value); `+` is a space, `%XX` the byte XX (a `%` without two hex digits stays as
    /// it is), and invalid UTF-8 becomes U+FFFD.
    pub fn parse(input: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(input.len());
        let mut pairs = Vec::with_capacity(memchr::memchr_iter(b'&', input).count() + 1);
        let mut rest = Some(input);
        while let Some(remaining) = rest {
            let (piece, after) = split_at_byte(remaining, b'&');
            rest = after;
            if piece.is_empty() {
                continue;
            }
            let (key, value) = split_at_byte(piece, b'=');
            let key = decode_into(key, &mut bytes);
            let value = decode_into(value.unwrap_or_default(), &mut bytes);
            pairs.push((key, value));
        }
        match String::from_utf8(bytes) {
            Ok(text) if cuts_no_character(&text, &pairs) => Self { text, pairs },
            Ok(text) => Self::lossy(text.as_bytes(), &pairs),
            Err(invalid) => Self::lossy(&invalid.into_bytes(), &pairs),
        }
    }

    /// The rare case: some key or value is not UTF-8 on its own. The whole text can be valid
    /// while a piece is not (`%F0%9F=%91%8D` puts half a character on each side of the `=`), so
    /// each piece is replaced on its own and a bad byte never swallows its neighbour's text.
    fn lossy(bytes: &[u8], pairs: &[(Range<usize>, Range<usize>)]) -> Self {
        let mut text = String::with_capacity(bytes.len());
        let mut push = |range: &Range<usize>| {
            let start = text.len();
            text.push_str(&String::from_utf8_lossy(&bytes[range.clone()]));
            start..text.len()
        };
        let pairs = pairs.iter().map(|(k, v)| (push(k), push(v))).collect();
        Self { text, pairs }
    }

    /// The pairs, as `(key, value)`.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .map(|(key, value)| (&self.text[key.clone()], &self.text[value.clone()]))
    }

    /// The pairs as a list, for the functions that take a slice.
    pub fn to_vec(&self) -> Vec<(&str, &str)> {
        self.iter().collect()
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Whether every key and value starts and ends on a character boundary of `text`, which
/// makes each of them valid UTF-8 on its own.
fn cuts_no_character(text: &str, pairs: &[(Range<usize>, Range<usize>)]) -> bool {
    pairs
        .iter()
        .flat_map(|(key, value)| [key.start, key.end, value.start, value.end])
        .all(|at| text.is_char_boundary(at))
}

/// `bytes` before the first `separator`, and what follows it (`None` when there is none).
fn split_at_byte(bytes: &[u8], separator: u8) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(separator, bytes) {
        Some(at) => (&bytes[..at], Some(&bytes[at + 1..])),
        None => (bytes, None),
    }
}

/// Appends `raw` decoded (`+` → space, `%XX` → the byte; anything else, a lone `%` included,
/// as it is) and returns where it went. Plain runs are found with `memchr` and copied whole.
fn decode_into(mut raw: &[u8], out: &mut Vec<u8>) -> Range<usize> {
    let start = out.len();
    while let Some(at) = memchr::memchr2(b'+', b'%', raw) {
        out.extend_from_slice(&raw[..at]);
        let escaped = raw
            .get(at + 1..at + 3)
            .and_then(|digits| Some(hex(digits[0])? << 4 | hex(digits[1])?));
        let (byte, used) = match (raw[at], escaped) {
            (b'+', _) => (b' ', 1),
            (_, Some(byte)) => (byte, 3),
            _ => (b'%', 1),
        };
        out.push(byte);
        raw = &raw[at + used..];
    }
    out.extend_from_slice(raw);
    start..out.len()
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(input: &[u8]) -> Vec<(String, String)> {
        form_urlencoded::parse(input).into_owned().collect()
    }

    fn parsed(input: &[u8]) -> Vec<(String, String)> {
        FormPairs::parse(input)
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn decodes_like_form_urlencoded_on_the_edge_cases() {
        let cases: &[&[u8]] = &[
            b"",
            b"&&&",
            b"a",
            b"a=",
            b"=b",
            b"a=b=c",
            b"a=1&a=2&&b",
            b"k=%2B1+555&%41=%4",
            b"%%41%zz%4g%",
            b"%+1=+%2b%2B",
            b"x=%F0%9F%91%8D&bad=%FF%FE&mixed=caf\xc3\xa9\xff",
            // Valid as a whole, not piece by piece (found by the fuzzer): half a character on
            // each side of an `=` or an `&`.
            b"%F0%9F=%91%8D",
            b"a=%C3&%A9=b",
            b"caf\xc3=\xa9",
        ];
        for &input in cases {
            assert_eq!(
                parsed(input),
                reference(input),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn twilio_payloads_decode_as_before() {
        for payload in [
            &include_bytes!("../../tests/data/payloads/sms.form")[..],
            include_bytes!("../../tests/data/payloads/mms.form"),
            include_bytes!("../../tests/data/payloads/whatsapp.form"),
        ] {
            assert_eq!(parsed(payload), reference(payload));
        }
    }

    proptest! {
        #[test]
        fn decodes_like_form_urlencoded(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(parsed(&input), reference(&input));
        }

        #[test]
        fn decodes_form_shaped_text_like_form_urlencoded(input in "[a=&+%0-9a-fA-GéÉ\u{1F44D}]{0,48}") {
            prop_assert_eq!(parsed(input.as_bytes()), reference(input.as_bytes()));
        }

        /// Valid text with every byte escaped and `=`/`&` put between bytes at random, so a
        /// character is often split between a key and its value or between two pairs.
        #[test]
        fn decodes_text_cut_mid_character_like_form_urlencoded(
            text in "[aé\u{1F44D}\u{10FFFF}]{0,8}",
            cuts in proptest::collection::vec(any::<bool>(), 0..32),
        ) {
            let mut input = String::new();
            for (i, byte) in text.bytes().enumerate() {
                if cuts.get(i).copied().unwrap_or_default() {
                    input.push(if i % 2 == 1 { '=' } else { '&' });
                }
                input.push_str(&format!("%{byte:02X}"));
            }
            prop_assert_eq!(parsed(input.as_bytes()), reference(input.as_bytes()));
        }
    }
}
