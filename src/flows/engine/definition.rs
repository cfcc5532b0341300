//! The flow file, spec 1: serde types and [`parse`], which turns a file's text into a
//! [`FlowDef`] or every [`Problem`] it can find in one pass.
//!
//! Unknown keys are errors everywhere (a typo must not silently change a conversation), and
//! each names file, line:column, node and key. Templated strings (`text`, `retry`, `on`, set
//! `values`, string `min`/`max`, `media`) and routing tests (`cases[].test`/`args`) stay plain
//! strings here: `template` compiles the first and `check` hands the second to the router
//! tests, both at load.
//!
//! Nodes are deserialized one at a time from the span-carrying TOML tree, so a problem in one
//! node does not hide the problems in the others, and an unknown `type` (such as `call`, which
//! comes with call-outs) is reported before the keys that belong to it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, de::DeserializeOwned};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::call::Method;
use super::problem::{Problem, Source};

/// The spec this build reads.
pub const SPEC: i64 = 1;

/// A parsed flow file.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowDef {
    pub spec: u32,
    /// Unique across the directory; what the session state names.
    pub name: String,
    pub description: Option<String>,
    /// The first node.
    pub start: String,
    /// A reply after this much silence goes to `on_expire` (or just ends the flow).
    pub expire_after: Option<Duration>,
    pub on_expire: Option<String>,
    /// IANA zone name; `None` takes the loader's default (UTC unless the server says).
    pub timezone: Option<String>,
    /// How `3/4` is read by date answers; `None` takes the engine's default (MDY).
    pub date_order: Option<DateOrder>,
    pub triggers: Vec<Trigger>,
    /// By name; sorted, so every report and graph lists them in one order.
    pub nodes: BTreeMap<String, Node>,
    pub tests: Vec<Transcript>,
}

/// The flow-level keys: everything but `nodes`, which are read one by one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    spec: u32,
    name: String,
    description: Option<String>,
    start: String,
    #[serde(default, deserialize_with = "duration")]
    expire_after: Option<Duration>,
    on_expire: Option<String>,
    timezone: Option<String>,
    date_order: Option<DateOrder>,
    #[serde(default)]
    triggers: Vec<Trigger>,
    #[serde(default)]
    tests: Vec<Transcript>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DateOrder {
    #[serde(rename = "MDY")]
    Mdy,
    #[serde(rename = "DMY")]
    Dmy,
}

/// `[[triggers]]`: a first word that starts the flow when none is waiting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    pub keywords: Vec<String>,
    /// The keyword as the whole text also interrupts a waiting flow.
    #[serde(default)]
    pub interrupt: bool,
}

/// One `[nodes.NAME]` table, by its `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Say(Say),
    Ask(Ask),
    Branch(Branch),
    Set(Set),
    End(End),
    Call(Call),
    Connect(Connect),
}

/// The node types of spec 1, for messages.
pub const NODE_TYPES: &str = "say, ask, branch, set, call, connect or end";

/// Send a text (and media), then go on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Say {
    pub text: String,
    #[serde(default)]
    pub media: Vec<String>,
    pub next: Option<String>,
}

/// Send a text, wait for the reply, check it, save it and route it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub text: String,
    /// The typed answer (`number`, `date` …); read by `engine::input`.
    pub expect: Option<String>,
    pub min: Option<Bound>,
    pub max: Option<Bound>,
    #[serde(default, deserialize_with = "duration")]
    pub within: Option<Duration>,
    pub max_length: Option<u32>,
    pub weekdays: Option<Vec<String>>,
    #[serde(default)]
    pub cases: Vec<Case>,
    /// The variable the answer (or the matched case's category) is saved as.
    pub save: Option<String>,
    /// Sent with the question again after an unusable reply; `None`: the engine's short one.
    pub retry: Option<String>,
    #[serde(default = "three")]
    pub max_attempts: u32,
    /// Where the `max_attempts`-th unusable reply goes; `None`: the engine's generic end.
    pub on_fail: Option<String>,
    /// Where a usable reply goes when no case routes it.
    pub next: Option<String>,
}

fn three() -> u32 {
    3
}

/// Route on a template without waiting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    pub on: String,
    #[serde(default)]
    pub cases: Vec<Case>,
    pub default: Option<String>,
}

/// Set variables from templates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Set {
    pub values: BTreeMap<String, String>,
    pub next: Option<String>,
}

/// The last text, if any; clears the flow's state.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    pub text: Option<String>,
}

/// Call the operator's service (`[flows.endpoints.NAME]` in the server config), save from its
/// JSON answer, and go on: to `next`, or to `on_error` when the call fails in any way.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub endpoint: String,
    #[serde(default = "get")]
    pub method: Method,
    /// Appended to the endpoint's base path; `{{ }}` values are percent-encoded into it.
    pub path: String,
    /// Templated values, form-encoded after a `?`.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// A JSON body: any TOML value, its strings templated.
    pub json: Option<toml::Value>,
    /// A form body: templated values.
    pub form: Option<BTreeMap<String, String>>,
    /// Variable name → JSON pointer into the answer (`""` is the whole answer).
    #[serde(default)]
    pub save: BTreeMap<String, String>,
    pub next: Option<String>,
    /// Required (`check` says so): where a failed call goes.
    pub on_error: Option<String>,
}

/// Hand the texter to a person: a relay session between the texter (who keeps texting the
/// number they texted) and an agent of `relay.agents` (texting from a pool number). The flow
/// ends; when the session closes, the texter's next text comes back to the flows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connect {
    /// A name in `relay.agents` of the server config.
    pub agent: String,
    /// To the texter.
    pub text: String,
    /// To the agent, first in their conversation (who this is, what they asked).
    pub agent_text: String,
    /// Sliding lifetime of the session without a text (`"2h"`); default `relay.ttl`.
    #[serde(default, deserialize_with = "duration")]
    pub ttl: Option<Duration>,
    /// Required (`check` says so): where the flow goes when no session can be opened.
    pub on_error: Option<String>,
}

fn get() -> Method {
    Method::Get
}

/// A path template in pieces: literal text, and `{{ … }}` values (braces included), each
/// rendered alone and percent-encoded. `Err` when the path holds other template syntax or an
/// unclosed `{{`.
pub fn path_parts(path: &str) -> Result<Vec<PathPart<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        match rest.as_bytes().get(open + 1) {
            Some(b'{') => {}
            Some(b'%' | b'#') => {
                return Err("only {{ value }} templates may be used in a path".into());
            }
            _ => {
                return Err("`{` in a path must start a {{ value }}".into());
            }
        }
        if open > 0 {
            parts.push(PathPart::Literal(&rest[..open]));
        }
        let Some(close) = rest[open..].find("}}") else {
            return Err("a {{ in the path is not closed".into());
        };
        let end = open + close + 2;
        parts.push(PathPart::Value(&rest[open..end]));
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        parts.push(PathPart::Literal(rest));
    }
    Ok(parts)
}

/// A piece of a `call` node's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPart<'a> {
    Literal(&'a str),
    Value(&'a str),
}

/// Every string leaf of a `json` body with its key (`json.slot`, `json.items.0`).
pub fn json_strings<'v>(key: String, value: &'v toml::Value, out: &mut Vec<(String, &'v str)>) {
    match value {
        toml::Value::String(text) => out.push((key, text)),
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                json_strings(format!("{key}.{i}"), item, out);
            }
        }
        toml::Value::Table(table) => {
            for (name, item) in table {
                json_strings(format!("{key}.{name}"), item, out);
            }
        }
        _ => {}
    }
}

/// A routing case: goflow's test name and arguments, checked by `engine::tests` at load.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub test: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Saved (by the ask's `save`) when this case matches; defaults to the test's match.
    pub category: Option<String>,
    pub next: String,
}

/// `min`/`max` of an ask: a number, or a template that renders one at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Number(f64),
    Template(String),
}

/// `[[tests]]`: a transcript run offline by `flow test`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    pub name: String,
    /// The clock for the run (RFC 3339 with offset, e.g. `2026-03-09T10:00:00-04:00`).
    #[serde(default, deserialize_with = "timestamp")]
    pub now: Option<jiff::Timestamp>,
    /// The answers of `call` nodes, by node name (the run stays offline).
    #[serde(default)]
    pub mock: BTreeMap<String, Mocks>,
    pub chat: Vec<Exchange>,
}

/// A call-out's answer in a transcript: a status with a JSON body, or a failure.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mock {
    #[serde(default = "ok")]
    pub status: u16,
    /// The answer's body, as JSON text.
    pub json: Option<String>,
    /// No answer at all: `timeout`, `connect`, …
    pub error: Option<String>,
}

fn ok() -> u16 {
    200
}

/// One mock for every call of a node, or one per call in order (the last one repeats).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Mocks {
    One(Mock),
    Each(Vec<Mock>),
}

impl Mocks {
    /// The answer to the node's `n`-th call of the transcript (from 0).
    pub fn nth(&self, n: usize) -> Option<&Mock> {
        match self {
            Mocks::One(mock) => Some(mock),
            Mocks::Each(each) => each.get(n).or(each.last()),
        }
    }
}

/// One text sent and the reply expected (`*` matches any run of characters).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub send: String,
    pub expect: String,
    /// Time passed since the previous text (`"31m"`): how a transcript tests `expire_after`.
    #[serde(default, deserialize_with = "duration")]
    pub after: Option<Duration>,
}

impl Node {
    /// The node's `type`, as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Say(_) => "say",
            Node::Ask(_) => "ask",
            Node::Branch(_) => "branch",
            Node::Set(_) => "set",
            Node::End(_) => "end",
            Node::Call(_) => "call",
            Node::Connect(_) => "connect",
        }
    }

    /// Every route out of the node with the key it is written under (`next`,
    /// `cases.1.next`, `default`, `on_fail`), in file order.
    pub fn routes(&self) -> Vec<(String, &str)> {
        match self {
            Node::Say(Say { next, .. }) | Node::Set(Set { next, .. }) => opt("next", next),
            Node::Ask(ask) => {
                let mut r = cases(&ask.cases);
                r.extend(opt("on_fail", &ask.on_fail));
                r.extend(opt("next", &ask.next));
                r
            }
            Node::Branch(b) => {
                let mut r = cases(&b.cases);
                r.extend(opt("default", &b.default));
                r
            }
            Node::End(_) => Vec::new(),
            Node::Call(call) => {
                let mut r = opt("next", &call.next);
                r.extend(opt("on_error", &call.on_error));
                r
            }
            Node::Connect(connect) => opt("on_error", &connect.on_error),
        }
    }
}

impl Node {
    /// Every string of the node that is a template, with the key it is written under
    /// (`text`, `media.0`, `retry`, `min`, `on`, `values.vip`): what the loader compiles.
    pub fn templated(&self) -> Vec<(String, &str)> {
        let mut out: Vec<(String, &str)> = Vec::new();
        match self {
            Node::Say(say) => {
                out.push(("text".into(), &say.text));
                for (i, media) in say.media.iter().enumerate() {
                    out.push((format!("media.{i}"), media));
                }
            }
            Node::Ask(ask) => {
                out.push(("text".into(), &ask.text));
                if let Some(retry) = &ask.retry {
                    out.push(("retry".into(), retry));
                }
                for (key, bound) in [("min", &ask.min), ("max", &ask.max)] {
                    if let Some(Bound::Template(t)) = bound {
                        out.push((key.into(), t));
                    }
                }
            }
            Node::Branch(branch) => out.push(("on".into(), &branch.on)),
            Node::Set(set) => {
                for (name, value) in &set.values {
                    out.push((format!("values.{name}"), value));
                }
            }
            Node::End(end) => {
                if let Some(text) = &end.text {
                    out.push(("text".into(), text));
                }
            }
            Node::Call(call) => {
                // Each `{{ }}` of the path alone (it is rendered alone and encoded); a path
                // that does not split is refused by `check`.
                for (i, part) in path_parts(&call.path)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    if let PathPart::Value(source) = part {
                        out.push((format!("path.{i}"), source));
                    }
                }
                for (name, value) in &call.query {
                    out.push((format!("query.{name}"), value));
                }
                if let Some(json) = &call.json {
                    json_strings("json".into(), json, &mut out);
                }
                for (name, value) in call.form.iter().flatten() {
                    out.push((format!("form.{name}"), value));
                }
            }
            Node::Connect(connect) => {
                out.push(("text".into(), &connect.text));
                out.push(("agent_text".into(), &connect.agent_text));
            }
        }
        out
    }
}

fn cases(cases: &[Case]) -> Vec<(String, &str)> {
    let each = cases.iter().enumerate();
    each.map(|(i, c)| (format!("cases.{i}.next"), c.next.as_str()))
        .collect()
}

fn opt<'a>(key: &str, value: &'a Option<String>) -> Vec<(String, &'a str)> {
    value.iter().map(|v| (key.to_owned(), v.as_str())).collect()
}

/// Reads one flow file. `file` is only used to name it in problems.
pub fn parse(file: &str, text: &str) -> Result<FlowDef, Vec<Problem>> {
    let source = Source { file, text };
    let root = DeTable::parse(text).map_err(|e| vec![syntax(source, &e)])?;
    let span = root.span();
    let mut root = root.into_inner();
    spec(source, &root)?;
    let nodes = root.remove("nodes");
    let header = Header::deserialize(toml::de::Deserializer::from(Spanned::new(span, root)))
        .map_err(|e| located(source, &e, None));
    let nodes = read_nodes(source, nodes);
    match (header, nodes) {
        (Ok(header), Ok(nodes)) => Ok(header.with(nodes)),
        (header, nodes) => Err(header
            .err()
            .into_iter()
            .chain(nodes.err().into_iter().flatten())
            .collect()),
    }
}

impl Header {
    fn with(self, nodes: BTreeMap<String, Node>) -> FlowDef {
        FlowDef {
            spec: self.spec,
            name: self.name,
            description: self.description,
            start: self.start,
            expire_after: self.expire_after,
            on_expire: self.on_expire,
            timezone: self.timezone,
            date_order: self.date_order,
            triggers: self.triggers,
            nodes,
            tests: self.tests,
        }
    }
}

/// `spec` first: a newer file is refused before its (to us) unknown keys are reported.
fn spec(source: Source<'_>, root: &DeTable<'_>) -> Result<(), Vec<Problem>> {
    let refuse = |at, message: String| Err(vec![source.problem(at, None, message)]);
    let Some((key, value)) = root.get_key_value("spec") else {
        return refuse(
            None,
            format!("missing key `spec` (this sms-sessions reads spec {SPEC})"),
        );
    };
    let at = Some(key.span().start);
    match value.get_ref() {
        DeValue::Integer(i) => {
            match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok() {
                Some(SPEC) => Ok(()),
                Some(n) if n > SPEC => refuse(
                    at,
                    format!("written for spec {n}; this sms-sessions reads spec {SPEC}"),
                ),
                _ => refuse(
                    at,
                    format!(
                        "spec {} does not exist; this sms-sessions reads spec {SPEC}",
                        i.as_str()
                    ),
                ),
            }
        }
        _ => refuse(at, format!("spec must be a whole number ({SPEC})")),
    }
}

fn read_nodes(
    source: Source<'_>,
    nodes: Option<Spanned<DeValue<'_>>>,
) -> Result<BTreeMap<String, Node>, Vec<Problem>> {
    let no_nodes = || {
        vec![source.problem(
            None,
            None,
            "no nodes: a flow needs [nodes.NAME] tables".into(),
        )]
    };
    let nodes = nodes.ok_or_else(no_nodes)?;
    let at = Some(nodes.span().start);
    let DeValue::Table(table) = nodes.into_inner() else {
        return Err(vec![source.problem(
            at,
            None,
            "`nodes` must be a table of [nodes.NAME] tables".into(),
        )]);
    };
    let mut read = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, value) in table {
        let name = name.into_inner().into_owned();
        match node(source, &name, value) {
            Ok(node) => drop(read.insert(name, node)),
            Err(problem) => problems.push(problem),
        }
    }
    if read.is_empty() && problems.is_empty() {
        return Err(no_nodes());
    }
    if problems.is_empty() {
        Ok(read)
    } else {
        Err(problems)
    }
}

fn node(source: Source<'_>, name: &str, value: Spanned<DeValue<'_>>) -> Result<Node, Problem> {
    let span = value.span();
    let start = span.start;
    let refuse = |message: String| source.problem(Some(start), Some(name), message);
    let DeValue::Table(mut table) = value.into_inner() else {
        return Err(refuse("a node must be a table with a `type`".into()));
    };
    let kind = match table.remove("type").map(Spanned::into_inner) {
        Some(DeValue::String(kind)) => kind,
        Some(_) => return Err(refuse(format!("`type` must be a string: {NODE_TYPES}"))),
        None => return Err(refuse(format!("missing key `type` ({NODE_TYPES})"))),
    };
    let value = Spanned::new(span, DeValue::Table(table));
    let typed = match &*kind {
        "say" => body(value).map(Node::Say),
        "ask" => body(value).map(Node::Ask),
        "branch" => body(value).map(Node::Branch),
        "set" => body(value).map(Node::Set),
        "end" => body(value).map(Node::End),
        "call" => body(value).map(Node::Call),
        "connect" => body(value).map(Node::Connect),
        other => {
            return Err(refuse(format!(
                "unknown type {other:?}; expected {NODE_TYPES}"
            )));
        }
    };
    typed.map_err(|e| located(source, &e, Some(name)))
}

fn body<T: DeserializeOwned>(value: Spanned<DeValue<'_>>) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value))
}

/// A syntax error: the parser's position, and the node whose header is above it.
fn syntax(source: Source<'_>, error: &toml::de::Error) -> Problem {
    let at = error.span().map(|s| s.start);
    let node = at.and_then(|at| source.node_above(at));
    source.problem(
        at,
        node.as_deref(),
        format!("not valid TOML: {}", error.message()),
    )
}

/// A shape error: placed at the key serde complained about, named relative to its node.
fn located(source: Source<'_>, error: &toml::de::Error, node: Option<&str>) -> Problem {
    let message = error.message();
    let at = error.span().map(|s| s.start);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        // serde names the key and what it expected; toml's span is the key's own.
        return source.problem(at, node, format!("unknown key {rest}"));
    }
    let path = at.map(|at| source.path_at(at)).unwrap_or_default();
    let skip = if node.is_some() { 2 } else { 0 };
    let key = path.get(skip..).unwrap_or_default().join(".");
    let message = if key.is_empty() {
        message.to_owned()
    } else {
        format!("{key}: {message}")
    };
    source.problem(at, node, message)
}

/// `"30m"`, `"4h"`, `"60d"` (humantime).
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|e| de::Error::custom(format!("invalid duration {text:?}: {e}")))
}

fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<jiff::Timestamp>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(|e| {
        de::Error::custom(format!(
            "invalid timestamp {text:?} (e.g. 2026-03-09T10:00:00-04:00): {e}"
        ))
    })
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BoundVisitor)
    }
}

struct BoundVisitor;

impl Visitor<'_> for BoundVisitor {
    type Value = Bound;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a template string")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bound, E> {
        Ok(Bound::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bound, E> {
        Ok(Bound::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bound, E> {
        Ok(Bound::Number(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bound, E> {
        Ok(Bound::Template(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLINIC: &str = include_str!("testdata/clinic.toml");

    fn problems(text: &str) -> Vec<String> {
        let found = parse("f.toml", text).expect_err("the text is refused");
        found.iter().map(ToString::to_string).collect()
    }

    const HEAD: &str = "spec = 1\nname = \"t\"\nstart = \"a\"\n";

    #[test]
    fn the_example_parses_with_every_node_type_and_defaults() {
        let flow = parse("clinic.toml", CLINIC).expect("the example parses");
        assert_eq!(flow.name, "clinic");
        assert_eq!(flow.expire_after, Some(Duration::from_secs(30 * 60)));
        assert_eq!(flow.date_order, Some(DateOrder::Mdy));
        assert_eq!(
            flow.triggers[1],
            Trigger {
                keywords: vec!["DENTIST".into()],
                interrupt: true
            }
        );
        let kinds: BTreeSet<&str> = flow.nodes.values().map(Node::kind).collect();
        assert_eq!(
            kinds,
            BTreeSet::from(["ask", "branch", "end", "say", "set"])
        );
        let Node::Ask(pick) = &flow.nodes["pick_slot"] else {
            panic!("pick_slot is an ask")
        };
        assert_eq!(pick.min, Some(Bound::Number(1.0)));
        assert_eq!(pick.max, Some(Bound::Template("{{ count }}".into())));
        assert_eq!(pick.max_attempts, 3, "the default");
        let Node::Ask(day) = &flow.nodes["ask_day"] else {
            panic!("ask_day is an ask")
        };
        assert_eq!(day.within, Some(Duration::from_secs(60 * 86_400)));
        let now: jiff::Timestamp = "2026-03-09T14:00:00Z".parse().unwrap();
        assert_eq!(flow.tests[0].now, Some(now));
        assert_eq!(flow.tests[0].chat.len(), 7);
    }

    use std::collections::BTreeSet;

    #[test]
    fn routes_and_templated_strings_are_listed_with_their_keys() {
        let flow = parse("clinic.toml", CLINIC).unwrap();
        let routes = flow.nodes["confirm"].routes();
        let expect = [
            ("cases.0.next", "done"),
            ("cases.1.next", "ask_day"),
            ("on_fail", "handoff"),
        ];
        let got: Vec<(&str, &str)> = routes.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, expect);
        let keys: Vec<String> = flow.nodes["pick_slot"]
            .templated()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["text", "retry", "max"]);
        let keys: Vec<String> = flow.nodes["friday"]
            .templated()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["text", "media.0"]);
    }

    #[test]
    fn an_unknown_key_is_named_with_file_line_column_and_node() {
        let text = format!("{HEAD}[nodes.a]\ntype = \"say\"\ntext = \"hi\"\nnxt = \"b\"\n");
        let found = problems(&text);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("f.toml:7:1: node a: unknown key `nxt`, expected"),
            "{found:?}"
        );
    }

    #[test]
    fn an_unknown_key_inside_a_case_is_placed_on_it() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"ask\"\ntext = \"q\"\ncases = [ {{ test = \"has_text\", nxt = \"a\", next = \"a\" }} ]\n"
        );
        let found = problems(&text);
        assert!(
            found[0].starts_with("f.toml:7:32: node a: unknown key `nxt`"),
            "{found:?}"
        );
    }

    #[test]
    fn an_unknown_top_level_key_is_an_error() {
        let text = format!("{HEAD}expire = \"5m\"\n[nodes.a]\ntype = \"end\"\n");
        assert!(problems(&text)[0].starts_with("f.toml:4:1: unknown key `expire`"));
    }

    #[test]
    fn a_call_node_reads_its_request_and_routes() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"call\"\nendpoint = \"clinic\"\nmethod = \"POST\"\npath = \"/slots/{{{{ id }}}}/book\"\nquery = {{ day = \"{{{{ day }}}}\" }}\njson = {{ slot = \"{{{{ slot }}}}\", n = 2, tags = [\"{{{{ a }}}}\"] }}\nsave = {{ slots = \"/slots\" }}\nnext = \"b\"\non_error = \"c\"\n"
        );
        let flow = parse("f.toml", &text).expect("a call parses");
        let Node::Call(call) = &flow.nodes["a"] else {
            panic!("a call")
        };
        assert_eq!(call.method, Method::Post);
        assert_eq!(call.save["slots"], "/slots");
        let routes: Vec<(String, &str)> = flow.nodes["a"].routes();
        assert_eq!(routes, [("next".into(), "b"), ("on_error".into(), "c")]);
        let keys: Vec<String> = flow.nodes["a"]
            .templated()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["path.1", "query.day", "json.slot", "json.tags.0"]);
        let bad = format!(
            "{HEAD}[nodes.a]\ntype = \"call\"\nendpoint = \"e\"\nmethod = \"HEAD\"\npath = \"/\"\n"
        );
        assert!(
            problems(&bad)[0].starts_with("f.toml:7:10: node a: method: unknown variant `HEAD`"),
            "{:?}",
            problems(&bad)
        );
    }

    #[test]
    fn a_path_splits_into_literals_and_values() {
        use PathPart::{Literal, Value};
        assert_eq!(
            path_parts("/a/{{ id }}/b{{x}}"),
            Ok(vec![
                Literal("/a/"),
                Value("{{ id }}"),
                Literal("/b"),
                Value("{{x}}")
            ])
        );
        assert!(path_parts("/{% if x %}a{% endif %}").is_err());
        assert!(path_parts("/{{ x").is_err());
        assert!(path_parts("/{x}").is_err());
    }

    #[test]
    fn an_unknown_or_missing_type_names_the_types() {
        let text = format!("{HEAD}[nodes.a]\ntype = \"menu\"\n[nodes.b]\ntext = \"x\"\n");
        assert_eq!(
            problems(&text),
            [
                "f.toml:4:1: node a: unknown type \"menu\"; expected say, ask, branch, set, call, connect or end",
                "f.toml:6:1: node b: missing key `type` (say, ask, branch, set, call, connect or end)",
            ]
        );
    }

    #[test]
    fn every_bad_node_and_the_header_are_reported_together() {
        let text = "spec = 1\nname = 3\nstart = \"a\"\n[nodes.a]\ntype = \"end\"\nx = 1\n[nodes.b]\ntype = \"say\"\ntext = 2\n";
        let found = problems(text);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("f.toml:2:8: name: invalid type: integer `3`"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("f.toml:6:1: node a: unknown key `x`"),
            "{found:?}"
        );
        assert!(
            found[2].starts_with("f.toml:9:8: node b: text: invalid type"),
            "{found:?}"
        );
    }

    #[test]
    fn a_newer_spec_is_refused_naming_the_file() {
        let text =
            "spec = 2\nname = \"t\"\nstart = \"a\"\nnew_thing = 1\n[nodes.a]\ntype = \"call\"\n";
        assert_eq!(
            problems(text),
            ["f.toml:1:1: written for spec 2; this sms-sessions reads spec 1"]
        );
    }

    #[test]
    fn a_missing_or_impossible_spec_is_refused() {
        assert_eq!(
            problems("name = \"t\"\n"),
            ["f.toml: missing key `spec` (this sms-sessions reads spec 1)"]
        );
        assert_eq!(
            problems("spec = 0\n"),
            ["f.toml:1:1: spec 0 does not exist; this sms-sessions reads spec 1"]
        );
        assert_eq!(
            problems("spec = \"1\"\n"),
            ["f.toml:1:1: spec must be a whole number (1)"]
        );
    }

    #[test]
    fn a_syntax_error_names_the_line_and_the_node_above_it() {
        let text = format!("{HEAD}[nodes.a]\ntype = \"say\"\ntext = \"unclosed\n");
        let found = problems(&text);
        assert!(
            found[0].starts_with("f.toml:6:17: node a: not valid TOML: invalid basic string"),
            "{found:?}"
        );
    }

    #[test]
    fn bad_durations_bounds_and_date_orders_name_their_key() {
        let text = format!(
            "{HEAD}expire_after = \"soon\"\ndate_order = \"YMD\"\n[nodes.a]\ntype = \"ask\"\ntext = \"q\"\nmin = true\nnext = \"a\"\n"
        );
        let found = problems(&text);
        // serde stops a struct at its first bad key (keys in sorted order); nodes go on.
        assert_eq!(
            found.len(),
            2,
            "one header problem, one node problem: {found:?}"
        );
        assert_eq!(
            found[0],
            "f.toml:5:14: date_order: unknown variant `YMD`, expected `MDY` or `DMY`"
        );
        assert_eq!(
            found[1],
            "f.toml:9:7: node a: min: invalid type: boolean `true`, expected a number or a template string"
        );
        let text = format!("{HEAD}expire_after = \"soon\"\n[nodes.a]\ntype = \"end\"\n");
        let found = problems(&text);
        assert!(
            found[0].starts_with("f.toml:4:16: expire_after: invalid duration \"soon\""),
            "{found:?}"
        );
    }

    #[test]
    fn a_flow_without_nodes_is_refused() {
        assert_eq!(
            problems(HEAD),
            ["f.toml: no nodes: a flow needs [nodes.NAME] tables"]
        );
    }

    proptest::proptest! {
        #[test]
        fn no_text_makes_the_parser_panic(text in "(spec = 1\n)?(\\[nodes\\.[a-c]\\]\n|type = \"(say|ask|end|call)\"\n|[a-z_]{1,8} = (\"[^\"\n]{0,8}\"|[0-9]{1,3}|\\[\\]|\\{ \\})\n|[\\PC\n]{0,12}){0,12}") {
            let _ = parse("f.toml", &text);
        }

        #[test]
        fn no_mutation_of_the_example_makes_the_parser_panic(at in 0usize..4000, insert in "[\\PC\n\\[\\]=\"]{0,4}") {
            let mut text = CLINIC.to_owned();
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) { at -= 1; }
            text.insert_str(at, &insert);
            let _ = parse("f.toml", &text);
        }
    }
}
