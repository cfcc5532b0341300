//! The `call` node in a step: the request it builds, what it saves, where a failure goes.

use std::collections::VecDeque;
use std::sync::Mutex;

use futures_util::FutureExt;

use super::*;
use crate::flows::engine::call::{CallFailure, CallFuture, CallResponse, Method};
use crate::flows::engine::load::{LoadOptions, SourceFile, build};

const CLINIC: &str = r#"
spec = 1
name = "clinic"
start = "ask_day"

[[triggers]]
keywords = ["BOOK"]

[nodes.ask_day]
type = "ask"
text = "Day?"
save = "day"
next = "fetch"

[nodes.fetch]
type = "call"
endpoint = "clinic"
path = "/slots/{{ day }}/open"
query = { day = "{{ day }}", n = "2" }
save = { slots = "/slots", count = "/count", open = "/open", note = "/note" }
next = "pick"
on_error = "sorry"

[nodes.pick]
type = "ask"
text = "{% for s in slots %}{{ loop.index }}) {{ s.label }} {% endfor %}({{ count }}, {{ open }}, {{ note }})"
expect = "integer"
min = 1
max = "{{ slots | length }}"
save = "pick"
next = "book"

[nodes.book]
type = "call"
endpoint = "clinic"
method = "POST"
path = "/bookings"
json = { slot = "{{ slots[pick - 1].id }}", seats = 2, vip = true, tags = ["{{ day }}"] }
save = { reference = "/reference" }
next = "again"
on_error = "sorry"

[nodes.again]
type = "call"
endpoint = "clinic"
method = "PUT"
path = "/bookings/{{ reference }}"
form = { name = "Ana & Bo", day = "{{ day }}" }
next = "fetch_again"
on_error = "sorry"

[nodes.fetch_again]
type = "call"
endpoint = "clinic"
path = "/slots/{{ day }}/open"
next = "done"
on_error = "sorry"

[nodes.done]
type = "end"
text = "Booked {{ slots[pick - 1].label }}, ref {{ reference }}."

[nodes.sorry]
type = "end"
text = "Sorry."
"#;

const SLOTS: &str = r#"{"slots":[{"id":"s9","label":"9:00"},{"id":"s14","label":"14:00"}],"count":2,"open":true,"note":null}"#;

/// A service that answers from a script and remembers every request.
#[derive(Default)]
struct Service {
    answers: Mutex<VecDeque<Result<CallResponse, CallFailure>>>,
    seen: Mutex<Vec<CallRequest>>,
}

impl Service {
    fn answering(answers: Vec<Result<CallResponse, CallFailure>>) -> Self {
        Service {
            answers: Mutex::new(answers.into()),
            seen: Mutex::default(),
        }
    }

    fn seen(&self) -> Vec<CallRequest> {
        self.seen.lock().unwrap().clone()
    }
}

fn ok(status: u16, body: &str) -> Result<CallResponse, CallFailure> {
    Ok(CallResponse {
        status,
        body: body.as_bytes().to_vec(),
    })
}

impl Calls for Service {
    fn call<'a>(&'a self, request: &'a CallRequest) -> CallFuture<'a> {
        self.seen.lock().unwrap().push(request.clone());
        let answer = self.answers.lock().unwrap().pop_front();
        Box::pin(std::future::ready(answer.unwrap_or_else(|| ok(200, "{}"))))
    }
}

/// The flow of `text`, loaded as `file`.
fn load(file: &str, text: String) -> FlowSet<Compiled> {
    let source = SourceFile {
        file: file.into(),
        text,
    };
    build(&[source], &LoadOptions::default(), &Compiled).expect("the flow loads")
}

fn clinic() -> FlowSet<Compiled> {
    load("clinic.toml", CLINIC.into())
}

/// `text` from the texter to the Twilio number as message `sid`, at a fixed time.
fn inbound<'a>(text: &'a str, sid: &'a str) -> Inbound<'a> {
    Inbound {
        text,
        from: "+14155550199",
        to: "+14155550100",
        opt_out_type: None,
        message_sid: sid,
        now: "2026-01-05T15:00:00Z".parse().unwrap(),
    }
}

/// One texter's conversation, its call-outs answered by `service`.
struct Chat<'s> {
    set: &'s FlowSet<Compiled>,
    settings: Settings,
    state: SessionData,
    service: &'s Service,
    sent: usize,
}

impl<'s> Chat<'s> {
    fn new(set: &'s FlowSet<Compiled>, service: &'s Service) -> Self {
        Chat {
            set,
            settings: Settings::default(),
            state: SessionData::default(),
            service,
            sent: 0,
        }
    }

    fn send(&mut self, text: &str) -> Turn {
        self.sent += 1;
        let sid = format!("SM{}", self.sent);
        step(
            self.set,
            &self.settings,
            &inbound(text, &sid),
            &mut self.state,
            self.service,
        )
        .now_or_never()
        .expect("the scripted service answers at once")
    }
}

#[test]
fn a_call_sends_encoded_values_and_saves_lists_objects_and_scalars_for_templates() {
    let set = clinic();
    let service = Service::answering(vec![ok(200, SLOTS)]);
    let mut chat = Chat::new(&set, &service);
    chat.send("book");
    let turn = chat.send("a/b?c#d@e");
    // A boolean prints as MiniJinja prints one.
    assert_eq!(turn.body(), "1) 9:00 2) 14:00 (2, True, )");
    assert_eq!(turn.node.as_deref(), Some("pick"));
    let seen = service.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(
        (
            request.endpoint.as_str(),
            request.method,
            request.node.as_str()
        ),
        ("clinic", Method::Get, "fetch")
    );
    assert_eq!(request.path, "/slots/a%2Fb%3Fc%23d%40e/open");
    assert_eq!(
        request.path_and_query(),
        "/slots/a%2Fb%3Fc%23d%40e/open?day=a%2Fb%3Fc%23d%40e&n=2"
    );
    assert_eq!(request.body, None);
    assert_eq!(request.idempotency_key, "SM2");
    // Lists and objects are kept as JSON and typed again by the next step.
    assert_eq!(chat.state.get(JSON_VARS), Some("slots"));
    assert_eq!(chat.state.get("count"), Some("2"));
    let turn = chat.send("3");
    assert_eq!(
        turn.outcome,
        Outcome::Retried,
        "3 is past {{{{ slots | length }}}}"
    );
}

#[test]
fn each_call_of_a_step_has_its_own_idempotency_key_and_bodies_are_encoded() {
    let set = clinic();
    let service = Service::answering(vec![
        ok(200, SLOTS),
        ok(201, r#"{"reference":"A7K2"}"#),
        ok(204, ""),
        ok(200, "not json, and nothing is saved from it"),
    ]);
    let mut chat = Chat::new(&set, &service);
    chat.send("book");
    chat.send("2026-03-10");
    let turn = chat.send("2");
    assert_eq!(turn.body(), "Booked 14:00, ref A7K2.");
    assert_eq!(turn.outcome, Outcome::Answered);
    assert!(chat.state.is_empty(), "the flow ended: {:?}", chat.state);
    let seen = service.seen();
    let keys: Vec<&str> = seen.iter().map(|r| r.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["SM2", "SM3", "SM3.again", "SM3.fetch_again"]);
    let book = &seen[1];
    assert_eq!(book.method, Method::Post);
    let json: serde_json::Value =
        serde_json::from_slice(book.body.as_ref().expect("a body").bytes()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"slot": "s14", "seats": 2, "vip": true, "tags": ["2026-03-10"]})
    );
    assert_eq!(
        book.body.as_ref().unwrap().content_type(),
        "application/json"
    );
    let put = &seen[2];
    assert_eq!(put.path, "/bookings/A7K2");
    assert_eq!(
        put.body,
        Some(Body::Form(b"day=2026-03-10&name=Ana+%26+Bo".to_vec()))
    );
}

#[test]
fn a_node_called_twice_in_one_step_numbers_its_key() {
    let set = set_with(
        r#"
[nodes.a]
type = "call"
endpoint = "e"
path = "/x"
next = "b"
on_error = "b"

[nodes.b]
type = "call"
endpoint = "e"
path = "/y"
next = "c"
on_error = "c"

[nodes.c]
type = "branch"
on = "{{ input }}"
cases = [ { test = "has_text", next = "d" } ]
default = "d"

[nodes.d]
type = "call"
endpoint = "e"
path = "/x"
next = "z"
on_error = "z"

[nodes.z]
type = "end"
"#,
    );
    let service = Service::default();
    let mut chat = Chat::new(&set, &service);
    chat.settings.max_calls = 3;
    chat.send("go");
    let keys: Vec<String> = service
        .seen()
        .into_iter()
        .map(|r| r.idempotency_key)
        .collect();
    assert_eq!(keys, ["SM1", "SM1.b", "SM1.d"]);
}

/// A flow triggered by `go` whose nodes are `extra` (starting at `a`).
fn set_with(extra: &str) -> FlowSet<Compiled> {
    let text = format!(
        "spec = 1\nname = \"t\"\nstart = \"a\"\n[[triggers]]\nkeywords = [\"go\"]\n{extra}"
    );
    load("t.toml", text)
}

#[test]
fn every_kind_of_failure_goes_to_on_error_with_its_reason() {
    let failure = |reason| {
        Err(CallFailure {
            reason,
            detail: "d".into(),
        })
    };
    for (answer, reason) in [
        (ok(500, "{}"), "status"),
        (ok(302, ""), "status"),
        (ok(200, "<html>"), "not_json"),
        (ok(200, r#"{"slots":[]}"#), "missing"),
        (failure("timeout"), "timeout"),
        (failure("connect"), "connect"),
        (failure("too_large"), "too_large"),
    ] {
        let set = clinic();
        let service = Service::answering(vec![answer]);
        let mut chat = Chat::new(&set, &service);
        chat.send("book");
        let turn = chat.send("tue");
        assert_eq!(turn.body(), "Sorry.", "{reason}");
        assert_eq!(turn.node.as_deref(), Some("sorry"));
        let errors: Vec<(&str, &str, &str)> = turn
            .call_errors
            .iter()
            .map(|e| (e.node.as_str(), e.endpoint.as_str(), e.reason))
            .collect();
        assert_eq!(errors, [("fetch", "clinic", reason)]);
        assert!(
            chat.state.is_empty(),
            "{reason}: nothing saved of a failed call"
        );
    }
}

#[test]
fn a_path_value_that_is_only_dots_never_leaves() {
    let set = clinic();
    let service = Service::default();
    let mut chat = Chat::new(&set, &service);
    chat.send("book");
    let turn = chat.send("..");
    assert_eq!(turn.body(), "Sorry.");
    assert_eq!(turn.call_errors[0].reason, "path");
    assert!(service.seen().is_empty());
}

#[test]
fn past_max_calls_a_call_goes_to_on_error_without_a_request() {
    let set = clinic();
    let service = Service::answering(vec![ok(200, SLOTS), ok(201, r#"{"reference":"R"}"#)]);
    let mut chat = Chat::new(&set, &service);
    chat.settings.max_calls = 1;
    chat.send("book");
    chat.send("tue");
    let turn = chat.send("1");
    assert_eq!(turn.body(), "Sorry.");
    let reasons: Vec<&str> = turn.call_errors.iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        ["too_many"],
        "the second call of the step is refused"
    );
    assert_eq!(service.seen().len(), 2, "one call per step");
}

#[test]
fn an_ended_flow_keeps_its_variables_for_the_results_hook_when_asked() {
    let set = clinic();
    let service = Service::answering(vec![ok(200, SLOTS), ok(201, r#"{"reference":"A7K2"}"#)]);
    let mut chat = Chat::new(&set, &service);
    chat.settings.keep_results = true;
    chat.send("book");
    chat.send("tue");
    let turn = chat.send("1");
    let ended = turn.ended.expect("the flow ended");
    assert_eq!(
        (ended.flow.as_str(), ended.outcome),
        ("clinic", "completed")
    );
    let variables: std::collections::BTreeMap<String, serde_json::Value> =
        ended.variables.into_iter().collect();
    assert_eq!(variables["pick"], serde_json::json!(1));
    assert_eq!(variables["reference"], serde_json::json!("A7K2"));
    assert_eq!(variables["slots"][1]["id"], serde_json::json!("s14"));
    assert_eq!(variables["open"], serde_json::json!(true));

    let mut chat = Chat::new(&set, &service);
    chat.send("book");
    let turn = chat.send("STOP");
    let ended = turn.ended.expect("an opt-out ends the flow");
    assert_eq!(ended.outcome, "opted_out");
    assert!(ended.variables.is_empty(), "kept only when asked");
}

#[test]
fn a_saved_answer_replaces_a_json_variable_of_the_same_name() {
    let set = set_with(
        r#"
[nodes.a]
type = "call"
endpoint = "e"
path = "/x"
save = { v = "/list" }
next = "b"
on_error = "b"

[nodes.b]
type = "ask"
text = "{{ v | length }}"
save = "v"
next = "c"

[nodes.c]
type = "end"
text = "{{ v }}"
"#,
    );
    let service = Service::answering(vec![ok(200, r#"{"list":[1,2,3]}"#)]);
    let mut chat = Chat::new(&set, &service);
    assert_eq!(chat.send("go").body(), "3");
    assert_eq!(chat.state.get(JSON_VARS), Some("v"));
    assert_eq!(
        chat.send("[1, 2]").body(),
        "[1, 2]",
        "text again, not a list"
    );
}

/// Hands off to agent `nurse` (answers as a relay would), or fails.
struct Desk {
    open: bool,
    asked: Mutex<Vec<crate::flows::engine::call::ConnectRequest>>,
}

impl Calls for Desk {
    fn call<'a>(&'a self, _: &'a CallRequest) -> CallFuture<'a> {
        Box::pin(std::future::ready(ok(500, "")))
    }

    fn connect<'a>(
        &'a self,
        request: &'a crate::flows::engine::call::ConnectRequest,
    ) -> crate::flows::engine::call::ConnectFuture<'a> {
        self.asked.lock().unwrap().push(request.clone());
        let answer = if self.open {
            Ok(crate::flows::engine::call::Connected {
                session: "RS1".into(),
                agent_address: "+14155550999".into(),
                agent_proxy: "+14155550101".into(),
            })
        } else {
            Err(CallFailure {
                reason: "pool",
                detail: "the pool has no free proxy number".into(),
            })
        };
        Box::pin(std::future::ready(answer))
    }
}

const INTAKE: &str = r#"
[nodes.a]
type = "ask"
text = "What's wrong?"
save = "problem"
next = "hand"

[nodes.hand]
type = "connect"
agent = "nurse"
ttl = "2h"
text = "Connecting you to the nurse on call."
agent_text = "New patient: {{ problem }}. Reply here; text #close to end."
on_error = "busy"

[nodes.busy]
type = "end"
text = "Everyone is busy; call (555) 010-0100."
"#;

fn step_with(set: &FlowSet<Compiled>, state: &mut SessionData, text: &str, desk: &Desk) -> Turn {
    step(
        set,
        &Settings::default(),
        &inbound(text, "SM9"),
        state,
        desk,
    )
    .now_or_never()
    .expect("answers at once")
}

/// The INTAKE flow to its `connect`, against a desk that can (`open`) or cannot hand off:
/// `go`, then `a rash`. The second turn, the texter's state after it, and the desk.
fn to_the_hand_off(open: bool) -> (Turn, SessionData, Desk) {
    let set = set_with(INTAKE);
    let desk = Desk {
        open,
        asked: Mutex::default(),
    };
    let mut state = SessionData::default();
    step_with(&set, &mut state, "go", &desk);
    let turn = step_with(&set, &mut state, "a rash", &desk);
    (turn, state, desk)
}

#[test]
fn a_connect_greets_both_sides_and_ends_the_flow() {
    let (turn, state, desk) = to_the_hand_off(true);
    assert_eq!(turn.body(), "Connecting you to the nurse on call.");
    assert_eq!(
        turn.outbound,
        [Outbound {
            to: "+14155550999".into(),
            from: "+14155550101".into(),
            text: "New patient: a rash. Reply here; text #close to end.".into(),
        }]
    );
    assert_eq!(turn.ended.map(|e| e.outcome), Some("handed_off"));
    assert!(state.is_empty(), "the texter is the relay's now");
    let asked = desk.asked.lock().unwrap();
    assert_eq!(
        (asked[0].agent.as_str(), asked[0].ttl_secs),
        ("nurse", Some(7200))
    );
}

#[test]
fn a_connect_that_cannot_open_goes_to_on_error() {
    let (turn, _, _) = to_the_hand_off(false);
    assert_eq!(turn.body(), "Everyone is busy; call (555) 010-0100.");
    assert!(turn.outbound.is_empty());
    assert_eq!(turn.call_errors[0].reason, "pool");
    // Without a relay at all (the default of Calls), the same.
    let set = set_with(INTAKE);
    let mut state = SessionData::default();
    step_offline(
        &set,
        &Settings::default(),
        &inbound("go", "SM9"),
        &mut state,
    );
    let turn = step_offline(&set, &Settings::default(), &inbound("x", "SM9"), &mut state);
    assert_eq!(turn.call_errors[0].reason, "no_relay");
}
