//! How many SMS segments a text takes, as Twilio reports in `NumSegments`.
//!
//! A text that fits the GSM-7 alphabet travels as septets: 160 in one segment, or 153 per
//! segment once it must be split (7 go to the concatenation header). Anything else travels as
//! UCS-2: 70 UTF-16 units in one segment, or 67 per segment. A character never straddles two
//! segments, so an extension character (two septets) or a surrogate pair (two units) that does
//! not fit moves whole to the next one — which is why this is a packing count, not a division.

/// Segments for `body` (an empty body still takes one).
pub fn count(body: &str) -> u32 {
    match gsm7_septets(body) {
        Some(sizes) => pack(sizes, 160, 153),
        None => pack(body.chars().map(char::len_utf16), 70, 67),
    }
}

/// The septets of each character, or `None` when one is outside GSM-7.
fn gsm7_septets(body: &str) -> Option<Vec<usize>> {
    body.chars().map(gsm7_width).collect()
}

fn gsm7_width(c: char) -> Option<usize> {
    /// GSM 03.38 basic character set.
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    /// The extension table: each costs an escape septet plus its own.
    const EXTENSION: &str = "\u{c}^{}\\[~]|€";
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Fits items of these sizes into one segment of `single`, or else segments of `multi`
/// without splitting an item.
fn pack(sizes: impl IntoIterator<Item = usize>, single: usize, multi: usize) -> u32 {
    let sizes: Vec<usize> = sizes.into_iter().collect();
    if sizes.iter().sum::<usize>() <= single {
        return 1;
    }
    let (mut segments, mut used) = (1, 0);
    for size in sizes {
        if used + size > multi {
            segments += 1;
            used = 0;
        }
        used += size;
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_fits_160_then_153_per_segment() {
        assert_eq!(count(""), 1);
        assert_eq!(count(&"a".repeat(160)), 1);
        assert_eq!(count(&"a".repeat(161)), 2);
        assert_eq!(count(&"a".repeat(306)), 2);
        assert_eq!(count(&"a".repeat(307)), 3);
    }

    #[test]
    fn extension_characters_cost_two_septets_and_never_straddle() {
        assert_eq!(count(&"€".repeat(80)), 1);
        assert_eq!(count(&"€".repeat(81)), 2);
        // 152 septets, then a two-septet character that cannot split: it opens segment 2.
        let text = format!("{}{}{}", "a".repeat(152), "€", "a".repeat(10));
        assert_eq!(count(&text), 2);
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(count(&text), 3);
    }

    #[test]
    fn anything_outside_gsm7_switches_to_ucs2_70_then_67() {
        assert_eq!(count(&"é".repeat(160)), 1, "é is in GSM-7");
        assert_eq!(count(&"ł".repeat(70)), 1);
        assert_eq!(count(&"ł".repeat(71)), 2);
        assert_eq!(count(&format!("{}✓", "a".repeat(133))), 2);
        assert_eq!(count(&format!("{}✓", "a".repeat(134))), 3);
    }

    #[test]
    fn a_surrogate_pair_counts_two_units_and_stays_whole() {
        assert_eq!(count(&"😀".repeat(35)), 1);
        assert_eq!(count(&"😀".repeat(36)), 2);
        // 66 units, then an emoji that needs 2: it moves to segment 2.
        assert_eq!(count(&format!("{}😀{}", "ł".repeat(66), "ł".repeat(60))), 2);
        assert_eq!(count(&format!("{}😀{}", "ł".repeat(66), "ł".repeat(66))), 3);
    }
}
