//! The step runner pinned over small in-memory flows: what each kind of text does to the
//! reply and to the state keys, then properties over the shipped flows (no text panics, every
//! reply is XML-clean, the state always names a flow waiting at an ask, or is empty).

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::flows::engine::load::{LoadOptions, SourceFile, build};

/// Monday 5 January 2026, as in the transcripts.
const NOW: &str = "2026-01-05T15:00:00Z";
const FROM: &str = "+14155550199";
const TO: &str = "+14155550100";

const GREET: &str = r#"
spec = 1
name = "greet"
start = "hi"
[[triggers]]
keywords = ["Hello"]
[nodes.hi]
type = "say"
text = "Hi {{ trigger.rest }}!"
next = "name"
[nodes.name]
type = "ask"
text = "Your name?"
save = "name"
next = "bye"
[nodes.bye]
type = "end"
text = "Bye {{ name }}."
"#;

const MENU: &str = r#"
spec = 1
name = "menu"
start = "choose"
[[triggers]]
keywords = ["MENU"]
interrupt = true
[nodes.choose]
type = "ask"
text = "Menu?"
save = "choice"
next = "chosen"
[nodes.chosen]
type = "end"
text = "Chose {{ choice }}."
"#;

const TYPED: &str = r#"
spec = 1
name = "typed"
start = "n"
[[triggers]]
keywords = ["TYPED"]
[nodes.n]
type = "ask"
text = "Number?"
expect = "number"
save = "n"
next = "d"
[nodes.d]
type = "ask"
text = "Date?"
expect = "date"
save = "d"
next = "y"
[nodes.y]
type = "ask"
text = "Sure?"
expect = "yes_no"
save = "y"
next = "done"
[nodes.done]
type = "end"
text = "{{ n }} {{ d }} {{ y }}"
"#;

const PICK: &str = r#"
spec = 1
name = "pick"
start = "color"
[[triggers]]
keywords = ["PICK"]
[nodes.color]
type = "ask"
text = "Color?"
save = "color"
cases = [
  { test = "has_any_word", args = ["red rouge"], category = "red", next = "size" },
  { test = "has_number_between", args = ["1", "5"], next = "size" },
]
retry = "Red, or 1 to 5 (try {{ attempts }})."
on_fail = "failed"
[nodes.size]
type = "ask"
text = "Size?"
expect = "integer"
save = "size"
max_attempts = 2
next = "done"
[nodes.done]
type = "end"
text = "{{ color }} {{ size }}"
[nodes.failed]
type = "end"
text = "Gave up on {{ input }}."
"#;

const TIMED: &str = r#"
spec = 1
name = "timed"
start = "q"
expire_after = "30m"
on_expire = "late"
[[triggers]]
keywords = ["TIMED"]
[nodes.q]
type = "ask"
text = "Quick?"
save = "a"
next = "done"
[nodes.done]
type = "end"
text = "Got {{ a }}."
[nodes.late]
type = "say"
text = "Too late."
next = "q"
"#;

const LAPSE: &str = r#"
spec = 1
name = "lapse"
start = "q"
expire_after = "30m"
[[triggers]]
keywords = ["LAPSE"]
[nodes.q]
type = "ask"
text = "Still there?"
save = "a"
next = "done"
[nodes.done]
type = "end"
text = "Got {{ a }}."
"#;

const CALC: &str = r#"
spec = 1
name = "calc"
start = "n"
[[triggers]]
keywords = ["CALC"]
[nodes.n]
type = "ask"
text = "n?"
expect = "integer"
save = "n"
next = "mark"
[nodes.mark]
type = "set"
values = { double = "{{ n * 2 }}", big = "{{ n > 10 }}" }
next = "route"
[nodes.route]
type = "branch"
on = "{{ double }}"
cases = [ { test = "has_number_gt", args = ["20"], next = "large" } ]
default = "small"
[nodes.large]
type = "ask"
text = "Large {{ double }} ({{ 'big' if big else 'not big' }}). Again?"
save = "again"
next = "fin"
[nodes.small]
type = "say"
text = "Small {{ double }} ({{ 'big' if big else 'not big' }}); 100 // n = {{ 100 // n }}"
next = "fin"
[nodes.fin]
type = "end"
"#;

const PATHS: &str = r#"
spec = 1
name = "paths"
start = "q"
[[triggers]]
keywords = ["PATHS"]
[nodes.q]
type = "ask"
text = "a or b?"
save = "ab"
cases = [
  { test = "has_only_text", args = ["a"], next = "seta" },
  { test = "has_only_text", args = ["b"], next = "show" },
]
[nodes.seta]
type = "set"
values = { extra = "A!" }
next = "show"
[nodes.show]
type = "end"
text = "You said {{ ab }}{{ extra }}"
"#;

const CHAIN: &str = r#"
spec = 1
name = "chain"
start = "s1"
[[triggers]]
keywords = ["CHAIN"]
[nodes.s1]
type = "say"
text = "one"
next = "s2"
[nodes.s2]
type = "say"
text = "two"
next = "s3"
[nodes.s3]
type = "say"
text = "three"
next = "q"
[nodes.q]
type = "ask"
text = "four?"
save = "x"
next = "s1"
"#;

const BIG: &str = r#"
spec = 1
name = "big"
start = "q"
[[triggers]]
keywords = ["BIG"]
[nodes.q]
type = "ask"
text = "Say a lot."
save = "a"
next = "copy"
[nodes.copy]
type = "set"
values = { b = "{{ a }}", c = "{{ a }}", d = "{{ a }}", e = "{{ a }}", f = "{{ a }}" }
next = "more"
[nodes.more]
type = "ask"
text = "More?"
save = "g"
next = "done"
[nodes.done]
type = "end"
"#;

const SLOTS: &str = r#"
spec = 1
name = "slots"
start = "n"
[[triggers]]
keywords = ["SLOTS"]
[nodes.n]
type = "ask"
text = "How many?"
expect = "integer"
min = 1
max = 5
save = "n"
next = "pick"
[nodes.pick]
type = "ask"
text = "Pick 1 to {{ n }}."
expect = "integer"
min = 1
max = "{{ n }}"
save = "p"
retry = "1 to {{ n }} please."
next = "done"
[nodes.done]
type = "end"
text = "p={{ p }}"
"#;

const WORDY: &str = r#"
spec = 1
name = "wordy"
start = "w"
[[triggers]]
keywords = ["WORDY"]
[nodes.w]
type = "ask"
text = "A word?"
save = "word"
next = "pick"
[nodes.pick]
type = "ask"
text = "Pick."
expect = "number"
max = "{{ word }}"
save = "p"
next = "done"
[nodes.done]
type = "end"
"#;

const VISIT: &str = r#"
spec = 1
name = "visit"
start = "day"
[[triggers]]
keywords = ["VISIT"]
[nodes.day]
type = "ask"
text = "Which day?"
expect = "date"
weekdays = ["mon", "wed"]
save = "day"
next = "who"
[nodes.who]
type = "ask"
text = "Name?"
expect = "text"
max_length = 5
save = "who"
next = "done"
[nodes.done]
type = "end"
text = "{{ who }} on {{ day }}"
"#;

fn set_of(files: &[&str]) -> FlowSet<Compiled> {
    let sources: Vec<SourceFile> = files
        .iter()
        .enumerate()
        .map(|(i, text)| SourceFile {
            file: format!("flow{i}.toml"),
            text: (*text).to_owned(),
        })
        .collect();
    build(&sources, &LoadOptions::default(), &Compiled)
        .unwrap_or_else(|problems| panic!("the test flows load: {problems:?}"))
}

fn now() -> Timestamp {
    NOW.parse().expect("a valid timestamp")
}

/// One texter's conversation over a set.
struct Chat<'s> {
    set: &'s FlowSet<Compiled>,
    settings: Settings,
    state: SessionData,
    now: Timestamp,
    from: &'static str,
}

impl<'s> Chat<'s> {
    fn new(set: &'s FlowSet<Compiled>) -> Self {
        Chat {
            set,
            settings: Settings::default(),
            state: SessionData::default(),
            now: now(),
            from: FROM,
        }
    }

    fn send_as(&mut self, text: &str, opt_out_type: Option<&str>) -> Turn {
        let inbound = Inbound {
            text,
            from: self.from,
            to: TO,
            opt_out_type,
            message_sid: "SM00000000000000000000000000000001",
            now: self.now,
        };
        step_offline(self.set, &self.settings, &inbound, &mut self.state)
    }

    fn send(&mut self, text: &str) -> Turn {
        self.send_as(text, None)
    }

    /// The reply's one message body.
    fn say(&mut self, text: &str) -> String {
        self.send(text).body()
    }

    fn wait(&mut self, minutes: i64) {
        self.now += SignedDuration::from_mins(minutes);
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.state.get(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.state.iter().map(|(key, _)| key).collect()
    }
}

fn version(set: &FlowSet<Compiled>, flow: &str) -> String {
    set.flow(flow).expect("in the set").version.to_string()
}

#[test]
fn a_trigger_starts_its_flow_by_first_word_in_any_case_with_the_rest_in_a_template() {
    let set = set_of(&[GREET]);
    let mut chat = Chat::new(&set);
    let turn = chat.send("hELLo, there  friend ");
    assert_eq!(turn.body(), "Hi there  friend!\n\nYour name?");
    assert_eq!(turn.outcome, Outcome::Started);
    assert_eq!(
        (turn.flow.as_deref(), turn.node.as_deref()),
        (Some("greet"), Some("name"))
    );
    assert_eq!(chat.keys(), ["_a", "_f", "_n", "_v", "_w"]);
    assert_eq!(chat.get(FLOW), Some("greet"));
    assert_eq!(chat.get(NODE), Some("name"));
    assert_eq!(chat.get(ATTEMPTS), Some("0"));
    assert_eq!(
        chat.get(SINCE),
        Some(now().as_second().to_string().as_str())
    );
    assert_eq!(chat.get(VERSION), Some(version(&set, "greet").as_str()));

    let mut other = Chat::new(&set);
    assert_eq!(other.say("HELLO!"), "Hi !\n\nYour name?");
    let turn = chat.send("Ana");
    assert_eq!(turn.body(), "Bye Ana.");
    assert_eq!(turn.outcome, Outcome::Answered);
    assert_eq!(turn.node.as_deref(), Some("bye"));
    assert!(chat.state.is_empty(), "an end clears the state");
}

#[test]
fn a_keyword_inside_a_word_or_later_in_the_text_starts_nothing() {
    let set = set_of(&[GREET]);
    let mut chat = Chat::new(&set);
    for text in ["hellooo", "say hello", "", "   "] {
        let turn = chat.send(text);
        assert_eq!(
            (turn.texts.len(), turn.outcome),
            (0, Outcome::Idle),
            "{text:?}"
        );
        assert!(chat.state.is_empty());
    }
}

#[test]
fn an_idle_text_starts_the_default_flow_and_without_one_gets_no_reply() {
    let set = set_of(&[GREET, MENU]);
    let mut chat = Chat::new(&set);
    let turn = chat.send("what is this");
    assert_eq!((turn.body(), turn.outcome), (String::new(), Outcome::Idle));
    assert!(turn.texts.is_empty() && turn.flow.is_none() && chat.state.is_empty());
    assert!(crate::flows::files::twiml(&turn).is_empty());

    chat.settings.default_flow = Some("greet".into());
    let turn = chat.send("what is this");
    assert_eq!(turn.body(), "Hi !\n\nYour name?", "no trigger.rest");
    assert_eq!(turn.outcome, Outcome::Started);
    assert_eq!(chat.get(FLOW), Some("greet"));
    // A trigger still wins over the default.
    let mut chat = Chat::new(&set);
    chat.settings.default_flow = Some("greet".into());
    assert_eq!(chat.say("menu"), "Menu?");
}

#[test]
fn a_say_then_an_ask_go_out_as_one_message_parted_by_a_blank_line() {
    let set = set_of(&[GREET]);
    let turn = Chat::new(&set).send("hello");
    assert_eq!(turn.texts, ["Hi !", "Your name?"]);
    assert_eq!(
        crate::flows::files::twiml(&turn).to_xml(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Hi !\n\nYour name?</Message></Response>"
    );
}

#[test]
fn typed_expects_save_the_parsed_value() {
    let set = set_of(&[TYPED]);
    let mut chat = Chat::new(&set);
    assert_eq!(chat.say("typed"), "Number?");
    assert_eq!(chat.say("about 007.50 please"), "Date?");
    assert_eq!(chat.get("n"), Some("7.5"));
    assert_eq!(chat.say("on 3/14"), "Sure?");
    assert_eq!(chat.get("d"), Some("2026-03-14"));
    assert_eq!(chat.get(NODE), Some("y"));
    let turn = chat.send("Yes!");
    assert_eq!(turn.body(), "7.5 2026-03-14 yes");
    assert_eq!(turn.outcome, Outcome::Answered);
    assert!(chat.state.is_empty());
}

#[test]
fn cases_save_the_category_or_else_the_match() {
    let set = set_of(&[PICK]);
    let mut chat = Chat::new(&set);
    chat.say("pick");
    assert_eq!(chat.say("Rouge, please"), "Size?");
    assert_eq!(chat.get("color"), Some("red"));

    let mut chat = Chat::new(&set);
    chat.say("pick");
    assert_eq!(chat.say("I pick 9 or 4"), "Size?");
    assert_eq!(chat.get("color"), Some("4"), "the first passing number");
    assert_eq!(chat.say("12"), "4 12");
}

#[test]
fn an_unusable_reply_gets_the_retry_and_the_question_and_the_last_attempt_goes_to_on_fail() {
    let set = set_of(&[PICK]);
    let mut chat = Chat::new(&set);
    chat.say("pick");
    let turn = chat.send("blue");
    assert_eq!(turn.body(), "Red, or 1 to 5 (try 1).\n\nColor?");
    assert_eq!(turn.outcome, Outcome::Retried);
    assert_eq!(
        (turn.flow.as_deref(), turn.node.as_deref()),
        (Some("pick"), Some("color"))
    );
    assert_eq!(
        (chat.get(NODE), chat.get(ATTEMPTS)),
        (Some("color"), Some("1"))
    );
    assert_eq!(chat.say("green 9"), "Red, or 1 to 5 (try 2).\n\nColor?");
    assert_eq!(chat.get(ATTEMPTS), Some("2"));
    let turn = chat.send("teal");
    assert_eq!(turn.body(), "Gave up on teal.");
    assert_eq!(turn.outcome, Outcome::Failed);
    assert_eq!(turn.node.as_deref(), Some("failed"));
    assert!(chat.state.is_empty());
}

#[test]
fn a_usable_reply_after_retries_starts_the_next_ask_at_zero_attempts() {
    let set = set_of(&[PICK]);
    let mut chat = Chat::new(&set);
    chat.say("pick");
    chat.say("blue");
    chat.say("green");
    assert_eq!(chat.say("red"), "Size?");
    assert_eq!(
        (chat.get(NODE), chat.get(ATTEMPTS)),
        (Some("size"), Some("0"))
    );
}

#[test]
fn without_retry_the_default_text_and_without_on_fail_the_generic_end() {
    let set = set_of(&[PICK]);
    let mut chat = Chat::new(&set);
    chat.say("pick");
    chat.say("red");
    let turn = chat.send("big");
    assert_eq!(turn.body(), format!("{DEFAULT_RETRY}\n\nSize?"));
    assert_eq!(chat.get(ATTEMPTS), Some("1"));
    let turn = chat.send("huge");
    assert_eq!(turn.texts, [DEFAULT_FAIL]);
    assert_eq!(turn.outcome, Outcome::Failed);
    assert_eq!(
        (turn.flow.as_deref(), turn.node.as_deref()),
        (Some("pick"), Some("size"))
    );
    assert!(chat.state.is_empty());
}

#[test]
fn stop_in_any_form_mid_flow_clears_the_state_and_answers_nothing() {
    let set = set_of(&[GREET]);
    for (text, opt_out) in [
        ("STOP", None),
        ("stop", None),
        ("  Unsubscribe\n", None),
        ("Ana", Some("STOP")),
    ] {
        let mut chat = Chat::new(&set);
        chat.settings.help_reply = Some("Help text.".into());
        chat.say("hello");
        let turn = chat.send_as(text, opt_out);
        assert_eq!(turn.outcome, Outcome::OptedOut, "{text:?}");
        assert!(turn.texts.is_empty() && turn.media.is_empty(), "{text:?}");
        assert_eq!(turn.flow.as_deref(), Some("greet"));
        assert!(chat.state.is_empty(), "{text:?}");
        assert_eq!(
            crate::flows::files::twiml(&turn).to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response />"
        );
    }
}

#[test]
fn help_keeps_the_flow_where_it_was_and_answers_help_reply_or_nothing() {
    let set = set_of(&[GREET]);
    let mut chat = Chat::new(&set);
    chat.say("hello");
    let before = chat.state.clone();
    let turn = chat.send("HELP");
    assert_eq!((turn.texts.len(), turn.outcome), (0, Outcome::Help));
    assert_eq!(
        (turn.flow.as_deref(), turn.node.as_deref()),
        (Some("greet"), Some("name"))
    );
    chat.settings.help_reply = Some("Smile Dental. Call 555-0100.".into());
    assert_eq!(chat.say("info"), "Smile Dental. Call 555-0100.");
    let turn = chat.send_as("Ana", Some("HELP"));
    assert_eq!(turn.body(), "Smile Dental. Call 555-0100.");
    assert_eq!(chat.state, before, "the flow is untouched");
    assert_eq!(chat.say("Ana"), "Bye Ana.");
}

#[test]
fn start_and_yes_are_ordinary_input() {
    let set = set_of(&[GREET]);
    for text in ["START", "yes", "UNSTOP"] {
        let mut chat = Chat::new(&set);
        chat.say("hello");
        assert_eq!(chat.say(text), format!("Bye {text}."));
    }
    let mut chat = Chat::new(&set);
    chat.settings.default_flow = Some("greet".into());
    let turn = chat.send_as("START", Some("START"));
    assert_eq!(
        (turn.body().as_str(), turn.outcome),
        ("Hi !\n\nYour name?", Outcome::Started)
    );
}

#[test]
fn a_reply_after_expire_after_goes_to_on_expire() {
    let set = set_of(&[TIMED]);
    let mut chat = Chat::new(&set);
    chat.say("timed");
    chat.wait(30);
    assert_eq!(
        chat.say("in time"),
        "Got in time.",
        "exactly 30m is not late"
    );

    chat.say("timed");
    chat.wait(31);
    let turn = chat.send("late one");
    assert_eq!(turn.body(), "Too late.\n\nQuick?");
    assert_eq!(turn.outcome, Outcome::Expired);
    assert_eq!(chat.get(NODE), Some("q"));
    assert_eq!(
        chat.get(SINCE),
        Some(chat.now.as_second().to_string().as_str()),
        "the wait starts again"
    );
    assert_eq!(chat.say("now"), "Got now.");
}

#[test]
fn a_retry_restarts_the_expiry_clock() {
    let set = set_of(&[TIMED, PICK]);
    let mut chat = Chat::new(&set);
    chat.say("pick");
    chat.wait(20);
    chat.say("blue");
    assert_eq!(
        chat.get(SINCE),
        Some(chat.now.as_second().to_string().as_str())
    );
}

#[test]
fn without_on_expire_a_late_text_is_idle_input() {
    let set = set_of(&[LAPSE, GREET]);
    let mut chat = Chat::new(&set);
    chat.say("lapse");
    chat.wait(31);
    let turn = chat.send("hello Bo");
    assert_eq!(turn.body(), "Hi Bo!\n\nYour name?");
    assert_eq!(turn.outcome, Outcome::Started);
    assert_eq!(chat.get(FLOW), Some("greet"));

    let mut chat = Chat::new(&set);
    chat.say("lapse");
    chat.wait(31);
    let turn = chat.send("yes I am");
    assert!(turn.texts.is_empty());
    assert_eq!(turn.outcome, Outcome::Expired);
    assert_eq!((turn.flow.as_deref(), turn.node), (Some("lapse"), None));
    assert!(chat.state.is_empty());
}

#[test]
fn an_interrupt_keyword_as_the_whole_text_switches_or_restarts_the_flow() {
    let set = set_of(&[GREET, MENU]);
    let mut chat = Chat::new(&set);
    chat.say("hello");
    let turn = chat.send(" Menu ");
    assert_eq!(
        (turn.body().as_str(), turn.outcome),
        ("Menu?", Outcome::Started)
    );
    assert_eq!(
        (chat.get(FLOW), chat.get(NODE)),
        (Some("menu"), Some("choose"))
    );
    assert_eq!(chat.get(VERSION), Some(version(&set, "menu").as_str()));
    assert_eq!(chat.get("name"), None);

    // Again while the menu waits: the menu afresh.
    assert_eq!(chat.say("MENU"), "Menu?");
    assert_eq!(chat.get(ATTEMPTS), Some("0"));

    // Not the whole text: an answer.
    let mut chat = Chat::new(&set);
    chat.say("hello");
    assert_eq!(chat.say("menu please"), "Bye menu please.");
}

#[test]
fn a_keyword_that_does_not_interrupt_is_an_answer_while_a_flow_waits() {
    let set = set_of(&[GREET, MENU]);
    let mut chat = Chat::new(&set);
    chat.say("menu");
    let turn = chat.send("hello");
    assert_eq!(
        (turn.body().as_str(), turn.outcome),
        ("Chose hello.", Outcome::Answered)
    );
}

#[test]
fn a_flow_edited_under_a_conversation_restarts_it_when_its_node_is_gone() {
    let before = set_of(&[GREET]);
    let edited = GREET
        .replace("[nodes.name]", "[nodes.who]")
        .replace("next = \"name\"", "next = \"who\"")
        .replace("Your name?", "Who are you?");
    let after = set_of(&[&edited]);
    let mut chat = Chat::new(&before);
    chat.say("hello there");
    chat.set = &after;
    let turn = chat.send("Ana");
    assert_eq!(
        turn.body(),
        format!("{RESTART_NOTICE}\n\nHi !\n\nWho are you?")
    );
    assert_eq!(turn.outcome, Outcome::Restarted);
    assert_eq!(chat.get(NODE), Some("who"));
    assert_eq!(chat.get(VERSION), Some(version(&after, "greet").as_str()));
}

#[test]
fn a_flow_edited_so_its_waiting_node_is_no_longer_an_ask_restarts_too() {
    let before = set_of(&[GREET]);
    let edited = GREET
        .replace("type = \"ask\"", "type = \"say\"")
        .replace("save = \"name\"\n", "")
        .replace("Bye {{ name }}.", "Bye.");
    let after = set_of(&[&edited]);
    let mut chat = Chat::new(&before);
    chat.say("hello");
    chat.set = &after;
    let turn = chat.send("Ana");
    assert_eq!(
        turn.body(),
        format!("{RESTART_NOTICE}\n\nHi !\n\nYour name?\n\nBye.")
    );
    assert!(chat.state.is_empty());
}

#[test]
fn a_flow_edited_with_its_waiting_node_kept_goes_on() {
    let before = set_of(&[GREET]);
    let after = set_of(&[&GREET.replace("Bye {{ name }}.", "Ciao {{ name }}.")]);
    let mut chat = Chat::new(&before);
    chat.say("hello");
    chat.set = &after;
    let turn = chat.send("Ana");
    assert_eq!(
        (turn.body().as_str(), turn.outcome),
        ("Ciao Ana.", Outcome::Answered)
    );
}

#[test]
fn a_flow_removed_from_the_set_gives_a_notice_and_the_text_is_idle_input() {
    let before = set_of(&[GREET, MENU]);
    let after = set_of(&[MENU]);
    let mut chat = Chat::new(&before);
    chat.say("hello");
    chat.set = &after;
    let turn = chat.send("Ana");
    assert_eq!(turn.texts, [RESTART_NOTICE]);
    assert_eq!(turn.outcome, Outcome::Restarted);
    assert!(chat.state.is_empty());

    for (default, text) in [(Some("menu"), "Ana"), (None, "menu")] {
        let mut chat = Chat::new(&before);
        chat.settings.default_flow = default.map(str::to_owned);
        chat.say("hello");
        chat.set = &after;
        let turn = chat.send(text);
        assert_eq!(turn.body(), format!("{RESTART_NOTICE}\n\nMenu?"), "{text}");
        assert_eq!(turn.outcome, Outcome::Restarted);
        assert_eq!(chat.get(FLOW), Some("menu"));
    }
}

#[test]
fn a_branch_routes_on_a_template_and_set_saves_values() {
    let set = set_of(&[CALC]);
    let mut chat = Chat::new(&set);
    chat.say("calc");
    let turn = chat.send("11");
    assert_eq!(turn.body(), "Large 22 (big). Again?");
    assert_eq!(turn.node.as_deref(), Some("large"));
    assert_eq!(
        (chat.get("n"), chat.get("double"), chat.get("big")),
        (Some("11"), Some("22"), Some("true"))
    );

    let mut chat = Chat::new(&set);
    chat.say("calc");
    let turn = chat.send("4");
    assert_eq!(turn.body(), "Small 8 (not big); 100 // n = 25");
    assert_eq!(turn.node.as_deref(), Some("fin"));
    assert!(chat.state.is_empty());
}

#[test]
fn a_template_failing_at_run_time_ends_the_flow_with_an_apology() {
    let set = set_of(&[CALC]);
    let mut chat = Chat::new(&set);
    chat.say("calc");
    let turn = chat.send("0");
    assert_eq!(turn.texts, [ERROR_TEXT]);
    assert_eq!(turn.outcome, Outcome::Error);
    assert_eq!(
        (turn.flow.as_deref(), turn.node.as_deref()),
        (Some("calc"), Some("small"))
    );
    assert!(
        turn.error
            .as_deref()
            .unwrap_or_default()
            .starts_with("template:")
    );
    assert!(chat.state.is_empty());
}

#[test]
fn a_variable_not_set_on_this_path_is_an_error_not_an_empty_string() {
    let set = set_of(&[PATHS]);
    let mut chat = Chat::new(&set);
    chat.say("paths");
    assert_eq!(chat.say("a"), "You said aA!");
    chat.say("paths");
    let turn = chat.send("b");
    assert_eq!(
        (turn.texts.as_slice(), turn.outcome),
        (&[ERROR_TEXT.to_owned()][..], Outcome::Error)
    );
    assert!(chat.state.is_empty());
}

#[test]
fn more_nodes_than_max_steps_in_one_step_is_an_error() {
    let set = set_of(&[CHAIN]);
    let mut chat = Chat::new(&set);
    chat.settings.max_steps = 4;
    assert_eq!(chat.say("chain"), "one\n\ntwo\n\nthree\n\nfour?");
    chat.settings.max_steps = 3;
    let turn = chat.send("x");
    assert_eq!(turn.outcome, Outcome::Error);
    assert_eq!(turn.texts, ["one", "two", "three", ERROR_TEXT]);
    assert_eq!(turn.error.as_deref(), Some("more than 3 nodes in one step"));
    assert!(chat.state.is_empty());
}

#[test]
fn state_too_large_for_the_cookie_is_cleared_with_a_notice() {
    let set = set_of(&[BIG]);
    let mut chat = Chat::new(&set);
    chat.say("big");
    let turn = chat.send(&"y".repeat(600));
    assert_eq!(turn.texts, [TOO_LONG_TEXT]);
    assert!(turn.media.is_empty());
    assert_eq!(turn.outcome, Outcome::Error);
    assert_eq!(turn.error.as_deref(), Some("state too large to keep"));
    assert!(chat.state.is_empty());

    // A short answer fits; without a cookie nothing is checked.
    let mut chat = Chat::new(&set);
    chat.say("big");
    assert_eq!(chat.say("short"), "More?");
    let mut chat = Chat::new(&set);
    chat.settings.cookie_name = None;
    chat.say("big");
    assert_eq!(chat.say(&"y".repeat(600)), "More?");
    assert_eq!(chat.get("f").map(str::len), Some(600));
}

#[test]
fn saved_values_are_capped_at_max_saved_chars() {
    let set = set_of(&[BIG]);
    let mut chat = Chat::new(&set);
    chat.settings.cookie_name = None;
    chat.say("big");
    chat.say(&"é".repeat(MAX_SAVED_CHARS + 50));
    let saved = chat.get("a").expect("saved");
    assert_eq!(saved, "é".repeat(MAX_SAVED_CHARS), "characters, not bytes");
    assert_eq!(chat.get("f"), Some(saved));
}

#[test]
fn a_templated_max_is_rendered_when_the_reply_arrives() {
    let set = set_of(&[SLOTS]);
    let mut chat = Chat::new(&set);
    chat.say("slots");
    assert_eq!(chat.say("3"), "Pick 1 to 3.");
    let turn = chat.send("4");
    assert_eq!(turn.body(), "1 to 3 please.\n\nPick 1 to 3.");
    assert_eq!(turn.outcome, Outcome::Retried);
    assert_eq!(chat.say("3"), "p=3");
}

#[test]
fn a_templated_bound_that_is_not_a_number_is_an_error() {
    let set = set_of(&[WORDY]);
    let mut chat = Chat::new(&set);
    chat.say("wordy");
    chat.say("banana");
    let turn = chat.send("2");
    assert_eq!((turn.texts.len(), turn.outcome), (1, Outcome::Error));
    assert_eq!(
        turn.error.as_deref(),
        Some("a bound rendered as \"banana\", not a number")
    );
    assert!(chat.state.is_empty());
}

#[test]
fn weekdays_and_max_length_make_other_replies_unusable() {
    let set = set_of(&[VISIT]);
    let mut chat = Chat::new(&set);
    chat.say("visit");
    assert_eq!(
        chat.say("tuesday"),
        format!("{DEFAULT_RETRY}\n\nWhich day?")
    );
    assert_eq!(chat.say("wed"), "Name?");
    assert_eq!(chat.get("day"), Some("2026-01-07"));
    assert_eq!(chat.say("Alexandra"), format!("{DEFAULT_RETRY}\n\nName?"));
    assert_eq!(chat.say("  Alex  "), "Alex on 2026-01-07");
}

#[test]
fn two_pairs_over_one_set_never_see_each_others_state() {
    const WHO: &str = r#"
spec = 1
name = "who"
start = "q"
[[triggers]]
keywords = ["WHO"]
[nodes.q]
type = "ask"
text = "Hi {{ contact.from }}, your name?"
save = "name"
next = "done"
[nodes.done]
type = "end"
text = "{{ name }} at {{ contact.from }}."
"#;
    let set = set_of(&[WHO, PICK]);
    let mut ana = Chat::new(&set);
    let mut bo = Chat::new(&set);
    bo.from = "+14155550188";
    assert_eq!(ana.say("who"), "Hi +14155550199, your name?");
    assert_eq!(bo.say("pick"), "Color?");
    assert_eq!(bo.say("blue"), "Red, or 1 to 5 (try 1).\n\nColor?");
    assert_eq!(bo.say("who"), "Red, or 1 to 5 (try 2).\n\nColor?");
    assert_eq!(ana.get(ATTEMPTS), Some("0"));
    assert_eq!(ana.say("Ana"), "Ana at +14155550199.");
    assert_eq!(bo.say("red"), "Size?");
    assert_eq!(bo.say("who"), format!("{DEFAULT_RETRY}\n\nSize?"));
    assert_eq!(bo.get("color"), Some("red"));
    assert!(ana.state.is_empty());
}

// ---- properties over the shipped flows ----

const SHIPPED: [&str; 3] = [
    include_str!("../../../config/flows/booking.toml"),
    include_str!("../../../config/flows/menu.toml"),
    include_str!("../../../config/flows/survey.toml"),
];

/// One text a phone may send, weighted towards what moves the shipped flows along.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        "[0-9]{1,3}",
        "[-+.,:/ !?]",
        "[٠-٩۰-۹]{1,3}",
        "(book|appt|survey|feedback|menu|hi|hours|person|yes|no|skip|tue|tomorrow|3/14|2pm|10am|Ana)",
        "(STOP|stop|HELP|info|START|MENU|BOOK)",
        "[\u{0}-\u{1f}\u{7f}\u{200f}\u{202e}\u{fffe}\u{ffff}👍🏽😀مرحبا]",
    ];
    prop_oneof![
        3 => prop::collection::vec(piece, 0..6).prop_map(|parts| parts.concat()),
        1 => "(book|survey|menu|hi|1|2|3|yes|no|skip|tue|2pm|Ana)",
        1 => Just(String::new()),
        1 => prop::collection::vec(any::<char>(), 1600).prop_map(String::from_iter),
        1 => "[😀٣\u{202e}a\u{0}]{1600}",
    ]
}

/// A text, minutes waited before it, and Twilio's `OptOutType`.
fn inbound() -> impl Strategy<Value = (String, i64, Option<&'static str>)> {
    let opt_out = prop_oneof![
        8 => Just(None),
        1 => Just(Some("STOP")),
        1 => Just(Some("HELP")),
        1 => Just(Some("START")),
    ];
    (text(), prop_oneof![4 => Just(0i64), 1 => 0..90i64], opt_out)
}

fn assert_state_is_sound(set: &FlowSet<Compiled>, state: &SessionData) {
    if state.is_empty() {
        return;
    }
    let flow = state.get(FLOW).expect("a state names its flow");
    let flow = set.flow(flow).expect("a flow of the set");
    let node = state
        .get(NODE)
        .expect("a flow in the state waits at a node");
    let node = flow.node(node).expect("a node of the flow");
    assert!(matches!(node.node, Node::Ask(_)), "waits at an ask");
    assert!(state.fits_a_cookie("sms_session"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_texts_panic_a_shipped_flow_and_every_reply_is_xml_clean(
        texts in prop::collection::vec(inbound(), 0..8),
        default_menu in any::<bool>(),
        help in any::<bool>(),
    ) {
        let set = set_of(&SHIPPED);
        let mut chat = Chat::new(&set);
        chat.settings.default_flow = default_menu.then(|| "menu".to_owned());
        chat.settings.help_reply = help.then(|| "Help: call us.".to_owned());
        for (text, waited, opt_out) in &texts {
            chat.wait(*waited);
            let turn = chat.send_as(text, *opt_out);
            let xml = crate::flows::files::twiml(&turn).to_xml();
            prop_assert!(xml.chars().all(crate::twilio::twiml::is_xml_char), "{xml:?}");
            assert_state_is_sound(&set, &chat.state);
            if turn.outcome == Outcome::OptedOut {
                prop_assert!(turn.texts.is_empty() && chat.state.is_empty());
            }
        }
    }

    #[test]
    fn a_happy_start_then_any_texts_keep_the_state_sound(
        flow in 0..3usize,
        texts in prop::collection::vec(text(), 0..8),
    ) {
        let set = set_of(&SHIPPED);
        let mut chat = Chat::new(&set);
        let first = ["book", "menu", "survey"][flow];
        prop_assert_eq!(chat.send(first).outcome, Outcome::Started);
        for text in &texts {
            let turn = chat.send(text);
            prop_assert!(turn.outcome != Outcome::Error, "{:?} → {:?}", text, turn);
            assert_state_is_sound(&set, &chat.state);
        }
    }
}
