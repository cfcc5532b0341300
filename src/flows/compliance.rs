//! Carrier compliance, decided before any flow sees a text.
//!
//! Twilio handles the opt-out words itself on long codes (it confirms the opt-out and refuses
//! later sends), and still forwards the text to the webhook. So, whatever flow is running:
//! - an opt-out (the whole text one of [`OPT_OUT_WORDS`], any case, or `OptOutType=STOP`)
//!   ends the flow, clears its state and gets no reply (Twilio sends the one confirmation
//!   the rules allow);
//! - a help request (`HELP`/`INFO`, or `OptOutType=HELP`) leaves the flow where it was and
//!   gets `compliance.help_reply` when set, else nothing (Twilio answers it by default);
//! - an opt-in (`START`/`UNSTOP`, or `OptOutType=START`) is ordinary input: a reply to a
//!   waiting question, or an idle text that starts the default flow. `YES` is always input.
//!
//! Only a single word as the whole text counts, as at Twilio ("stop please" is input).
//! Source and reasoning: `research/flows.md` §6 (Twilio's opt-out docs, CTIA, the FCC's 2025
//! rule).

/// Words that opt a texter out at Twilio when sent as the whole text.
pub const OPT_OUT_WORDS: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];

/// Words that ask for help when sent as the whole text.
pub const HELP_WORDS: [&str; 2] = ["HELP", "INFO"];

/// What compliance makes of one inbound text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// End any flow, clear its state, reply nothing.
    OptOut,
    /// Keep the flow as it is; reply `compliance.help_reply` if set.
    Help,
    /// Ordinary input for the flow.
    Input,
}

/// Classifies a text from its body and Twilio's `OptOutType` (Advanced Opt-Out).
pub fn classify(body: &str, opt_out_type: Option<&str>) -> Verdict {
    match opt_out_type.map(str::trim) {
        Some(kind) if kind.eq_ignore_ascii_case("STOP") => return Verdict::OptOut,
        Some(kind) if kind.eq_ignore_ascii_case("HELP") => return Verdict::Help,
        _ => {}
    }
    let word = body.trim();
    if is_one_of(word, &OPT_OUT_WORDS) {
        Verdict::OptOut
    } else if is_one_of(word, &HELP_WORDS) {
        Verdict::Help
    } else {
        Verdict::Input
    }
}

/// Whether `word` (already one word) is an opt-out word, in any case: what `flow check`
/// refuses as a keyword or an answer.
pub fn is_opt_out_word(word: &str) -> bool {
    is_one_of(word.trim(), &OPT_OUT_WORDS)
}

fn is_one_of(word: &str, list: &[&str]) -> bool {
    list.iter().any(|known| known.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opt_out_words_alone_in_any_case_opt_out() {
        for word in OPT_OUT_WORDS {
            assert_eq!(classify(word, None), Verdict::OptOut, "{word}");
            let lower = word.to_lowercase();
            assert_eq!(classify(&format!("  {lower}\n"), None), Verdict::OptOut);
        }
    }

    #[test]
    fn only_the_whole_text_counts_as_at_twilio() {
        for text in [
            "stop please",
            "please stop",
            "STOP!",
            "Stopp",
            "cancel my booking",
        ] {
            assert_eq!(classify(text, None), Verdict::Input, "{text}");
        }
    }

    #[test]
    fn twilios_opt_out_type_wins_over_the_words() {
        assert_eq!(classify("anything", Some("STOP")), Verdict::OptOut);
        assert_eq!(classify("stop", Some("HELP")), Verdict::Help);
        assert_eq!(classify("stop", Some("START")), Verdict::OptOut);
        assert_eq!(classify("yes", Some("START")), Verdict::Input);
    }

    #[test]
    fn help_and_info_ask_for_help_and_opt_ins_are_input() {
        assert_eq!(classify("help", None), Verdict::Help);
        assert_eq!(classify("Info", None), Verdict::Help);
        for text in ["START", "unstop", "YES", ""] {
            assert_eq!(classify(text, None), Verdict::Input, "{text}");
        }
    }

    #[test]
    fn unicode_lookalikes_are_not_opt_out_words() {
        // Turkish dotless i, fullwidth letters: not what Twilio matches either.
        assert_eq!(classify("QUİT", None), Verdict::Input);
        assert_eq!(classify("ＳＴＯＰ", None), Verdict::Input);
        assert!(is_opt_out_word("optout") && !is_opt_out_word("opt out"));
    }
}
