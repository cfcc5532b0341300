//! Words, digits and emails in a text, the way goflow sees them.
//!
//! goflow `utils/text.go`: a word is a run of letters, marks, digits, `_` and `'`; every symbol
//! (emoji included) is a word of its own; everything else (spaces, punctuation) splits words.
//! Words compare in lower case (goflow's default collation, `envs/collate.go`).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\pM\pL\pN_']+|\pS").expect("word pattern compiles"));

/// goflow `flows/routers/cases/tests.go` `emailAddressRE`, unchanged.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([\pL\pN][-_+$~.\pL\pN]*)@([\pL\pN][-_\pL\pN]*)(\.[\pL\pN][-_\pL\pN]*)+")
        .expect("email pattern compiles")
});

/// The words of `text`, in order, as written.
pub(crate) fn words(text: &str) -> Vec<&str> {
    if text.is_ascii() {
        return ascii_words(text);
    }
    WORD.find_iter(text).map(|m| m.as_str()).collect()
}

/// [`WORD`] by hand for ASCII text, the common case: in ASCII, `[\pM\pL\pN_']` is a letter, a
/// digit, `_` or `'`, and `\pS` is one of `$+<=>^`|~`.
fn ascii_words(text: &str) -> Vec<&str> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'\'';
    let is_symbol = |b: u8| b"$+<=>^`|~".contains(&b);
    let bytes = text.as_bytes();
    let mut words = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if is_word(bytes[at]) {
            let start = at;
            while at < bytes.len() && is_word(bytes[at]) {
                at += 1;
            }
            words.push(&text[start..at]);
        } else {
            if is_symbol(bytes[at]) {
                words.push(&text[at..at + 1]);
            }
            at += 1;
        }
    }
    words
}

/// A word in the form words are compared in; borrowed when it is that already.
pub(crate) fn fold(word: &str) -> Cow<'_, str> {
    if word
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(word.to_lowercase())
    }
}

/// The folded words of `text`.
pub(crate) fn folded_words(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .map(|w| fold(w).into_owned())
        .collect()
}

/// The zero of each block of decimal digits that is read as 0–9 (goflow maps Arabic-Indic,
/// Persian and Bengali in `cases/utils.go`; Devanagari and full-width digits are added here).
const DIGIT_ZEROS: [char; 5] = ['\u{0660}', '\u{06F0}', '\u{09E6}', '\u{0966}', '\u{FF10}'];

fn ascii_digit(c: char) -> char {
    for zero in DIGIT_ZEROS {
        let offset = (c as u32).wrapping_sub(zero as u32);
        if offset < 10 {
            return char::from(b'0' + offset as u8);
        }
    }
    c
}

/// `text` with every other-script decimal digit replaced by its ASCII digit; borrowed when there
/// is none, which is the common case.
pub(crate) fn ascii_digits(text: &str) -> Cow<'_, str> {
    if text.chars().all(|c| ascii_digit(c) == c) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().map(ascii_digit).collect())
    }
}

/// The first email address in `text`.
pub(crate) fn find_email(text: &str) -> Option<&str> {
    EMAIL.find(text).map(|m| m.as_str())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn punctuation_splits_words_and_apostrophes_stay() {
        assert_eq!(words("this.is.my.word"), ["this", "is", "my", "word"]);
        assert_eq!(words("I don't, like-it!"), ["I", "don't", "like", "it"]);
    }

    #[test]
    fn each_symbol_and_emoji_is_a_word() {
        assert_eq!(words("I say to you📴"), ["I", "say", "to", "you", "📴"]);
        assert_eq!(words("ok👍👍"), ["ok", "👍", "👍"]);
        assert_eq!(words("$5"), ["$", "5"]);
    }

    #[test]
    fn unicode_letters_and_marks_make_words() {
        assert_eq!(words("Ünïcödé βήτα"), ["Ünïcödé", "βήτα"]);
        // A combining accent (U+0301) stays inside its word.
        assert_eq!(words("cafe\u{301} ok"), ["cafe\u{301}", "ok"]);
        assert_eq!(words("مرحبا بالعالم"), ["مرحبا", "بالعالم"]);
    }

    #[test]
    fn ascii_text_splits_exactly_as_the_pattern_does() {
        let samples = [
            "I don't, like-it! $5 a+b=c <x> ^_^ `q` |p| ~ 100% #1 @me",
            "  leading and trailing  ",
            "",
            "snake_case can't-stop 3.14 1,000",
        ];
        for text in samples {
            let by_pattern: Vec<&str> = WORD.find_iter(text).map(|m| m.as_str()).collect();
            assert_eq!(ascii_words(text), by_pattern, "{text:?}");
        }
        let every_byte: String = (0u8..128).map(char::from).collect();
        let by_pattern: Vec<&str> = WORD.find_iter(&every_byte).map(|m| m.as_str()).collect();
        assert_eq!(ascii_words(&every_byte), by_pattern);
    }

    #[test]
    fn words_fold_to_lower_case() {
        assert_eq!(folded_words("ÜNÏCÖDÉ Word"), ["ünïcödé", "word"]);
    }

    #[test]
    fn other_script_digits_become_ascii() {
        assert_eq!(ascii_digits("٣ ۴ ৫ ६ ７"), "3 4 5 6 7");
        assert!(matches!(ascii_digits("plain 12"), Cow::Borrowed(_)));
        // The character just past each block is left alone.
        assert_eq!(ascii_digits("\u{066A}"), "\u{066A}");
    }

    #[test]
    fn emails_are_found_inside_text_without_trailing_dot() {
        assert_eq!(find_email("my email is foo@bar.com."), Some("foo@bar.com"));
        assert_eq!(
            find_email("<foo~$1+spam@bar-2.com>"),
            Some("foo~$1+spam@bar-2.com")
        );
        assert_eq!(find_email("FOO@βήτα.whatzit"), Some("FOO@βήτα.whatzit"));
        assert_eq!(find_email("foo @ bar . com"), None);
        assert_eq!(find_email("foo@bar"), None);
    }
}
