//! Static checks over parsed flows: what `flow check` and the server's start refuse.
//!
//! Every problem is collected (never only the first), each naming file, node and reason:
//! - `start`, `on_expire` and every route (`next`, `cases[].next`, `default`, `on_fail`) name
//!   a node; `say`/`set` have a `next`, an `ask` without cases has a `next`, a `branch` has a
//!   `default`, `max_attempts` is at least 1;
//! - every node is reachable from `start` or `on_expire` (the issue refuses unreachable nodes:
//!   a dead node is almost always a typo in a route);
//! - every cycle contains an `ask` (a loop that never waits for a reply is refused; the step
//!   cap is only the runtime guard);
//! - templates compile and read only variables the flow can have ([`known_variables`]);
//! - `save` and `set` names are plain identifiers that do not shadow the built-in names;
//! - `expire_after` fits the session's lifetime, and `on_expire` has an `expire_after`;
//! - `timezone` is a known IANA zone;
//! - no opt-out word ([`OPT_OUT_WORDS`](crate::flows::compliance::OPT_OUT_WORDS)) as a trigger keyword or in a word test's answers;
//! - across a directory ([`check_set`]): flow names are unique, keywords start one flow.
//!
//! Routing tests and typed expects are checked through the [`Routing`] seam, so
//! `engine::tests`/`engine::input` plug in without this module knowing them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::call::Method;
use super::definition::{Ask, Case, FlowDef, Node, PathPart, path_parts};
use super::problem::{Problem, Source};
use super::template::{BUILTINS, Templates};
use crate::flows::compliance::is_opt_out_word;

/// Routing tests whose arguments are words a texter sends, so opt-out words are refused there.
pub const WORD_TESTS: [&str; 6] = [
    "has_any_word",
    "has_all_words",
    "has_phrase",
    "has_only_phrase",
    "has_only_text",
    "has_beginning",
];

/// The seam to the router tests (`engine::tests`) and typed expects (`engine::input`): the
/// loader hands every case and every ask to it and keeps what it compiles, so the step runner
/// never parses a test or a regex per message.
pub trait Routing {
    /// A compiled routing test.
    type Test: Send + Sync + 'static;
    /// A compiled typed expect.
    type Expect: Send + Sync + 'static;
    /// Compiles a case's `test` and `args`; the error is the reason shown to the author.
    fn test(&self, case: &Case) -> Result<Self::Test, String>;
    /// Compiles an ask's `expect` and its constraints (`min`, `max`, `within` …).
    fn expect(&self, ask: &Ask) -> Result<Self::Expect, String>;
}

/// Accepts every test and expect and keeps nothing: the routing seam before `engine::tests`
/// and `engine::input` are wired in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unchecked;

impl Routing for Unchecked {
    type Test = ();
    type Expect = ();

    fn test(&self, _: &Case) -> Result<(), String> {
        Ok(())
    }

    fn expect(&self, _: &Ask) -> Result<(), String> {
        Ok(())
    }
}

/// What the checks need from the server configuration.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// `session.ttl`: a flow cannot wait longer than its state lives.
    pub session_ttl: Option<Duration>,
    /// The configured `[flows.endpoints]`: a `call` must name one. `None` leaves endpoints
    /// unchecked (`flow check` with no endpoints configured; transcripts mock the calls).
    pub endpoints: Option<BTreeSet<String>>,
    /// The configured `relay.agents`: a `connect` must name one. `None` leaves them unchecked,
    /// as `endpoints`.
    pub agents: Option<BTreeSet<String>>,
}

/// Checks one flow and compiles its templates into `templates`.
pub fn check_flow(
    source: Source<'_>,
    flow: &FlowDef,
    options: &CheckOptions,
    templates: &mut Templates,
) -> Vec<Problem> {
    let mut out = Problems {
        source,
        list: Vec::new(),
    };
    routes(&mut out, flow);
    reachable(&mut out, flow);
    loops(&mut out, flow);
    variables(&mut out, flow, templates);
    header(&mut out, flow, options);
    opt_outs(&mut out, flow);
    calls(&mut out, flow, options);
    mocks(&mut out, flow);
    out.list
}

struct Problems<'a> {
    source: Source<'a>,
    list: Vec<Problem>,
}

impl Problems<'_> {
    /// A problem at `nodes.NODE.KEY` (`key` dotted, may be empty).
    fn node(&mut self, node: &str, key: &str, message: String) {
        let mut path = vec!["nodes", node];
        path.extend(key.split('.').filter(|k| !k.is_empty()));
        let problem = self.source.problem_at(&path, Some(node), message);
        self.list.push(problem);
    }

    /// A problem at a top-level key.
    fn top(&mut self, key: &str, message: String) {
        let path: Vec<&str> = key.split('.').collect();
        let problem = self.source.problem_at(&path, None, message);
        self.list.push(problem);
    }
}

fn routes(out: &mut Problems<'_>, flow: &FlowDef) {
    let missing = |name: &str| !flow.nodes.contains_key(name);
    if missing(&flow.start) {
        out.top("start", format!("start: no node named {:?}", flow.start));
    }
    if let Some(to) = flow.on_expire.as_deref().filter(|to| missing(to)) {
        out.top("on_expire", format!("on_expire: no node named {to:?}"));
    }
    for (name, node) in &flow.nodes {
        for (key, to) in node.routes() {
            if missing(to) {
                out.node(name, &key, format!("{key}: no node named {to:?}"));
            }
        }
        required_routes(out, name, node);
    }
}

fn required_routes(out: &mut Problems<'_>, name: &str, node: &Node) {
    let article = if node.kind() == "ask" { "an" } else { "a" };
    let need = |what: &str| format!("{article} {} node needs {what}", node.kind());
    match node {
        Node::Say(say) if say.next.is_none() => out.node(name, "", need("`next`")),
        Node::Set(set) if set.next.is_none() => out.node(name, "", need("`next`")),
        Node::Branch(b) if b.default.is_none() => out.node(name, "", need("`default`")),
        Node::Connect(connect) if connect.on_error.is_none() => {
            let reason = need("`on_error` (where the flow goes when no one can be reached)");
            out.node(name, "", reason);
        }
        Node::Call(call) => {
            if call.next.is_none() {
                out.node(name, "", need("`next`"));
            }
            if call.on_error.is_none() {
                let reason = need("`on_error` (where a failed call goes)");
                out.node(name, "", reason);
            }
        }
        Node::Ask(ask) => {
            if ask.cases.is_empty() && ask.next.is_none() {
                out.node(name, "", need("`next` (or `cases` that route)"));
            }
            if ask.max_attempts == 0 {
                let reason = "max_attempts: must be at least 1".into();
                out.node(name, "max_attempts", reason);
            }
        }
        _ => {}
    }
}

/// Nodes reachable from `start` and `on_expire` along every route.
fn reachable(out: &mut Problems<'_>, flow: &FlowDef) {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<&str> = [Some(flow.start.as_str()), flow.on_expire.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    while let Some(name) = queue.pop_front() {
        let Some(node) = flow.nodes.get(name) else {
            continue;
        };
        if seen.insert(name) {
            queue.extend(node.routes().into_iter().map(|(_, to)| to));
        }
    }
    for name in flow.nodes.keys().filter(|n| !seen.contains(n.as_str())) {
        let reason = "unreachable: no route from `start` or `on_expire` leads here";
        out.node(name, "", reason.into());
    }
}

/// Cycles through nodes that never wait: the strongly connected components of the graph of
/// routes out of non-`ask` nodes (an `ask` waits, so it ends every path here). Each component
/// that loops is named once, by its shortest cycle through its first node.
fn loops(out: &mut Problems<'_>, flow: &FlowDef) {
    let names: Vec<&str> = flow.nodes.keys().map(String::as_str).collect();
    let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let edges: Vec<Vec<usize>> = flow
        .nodes
        .values()
        .map(|node| match node {
            Node::Ask(_) => Vec::new(),
            node => node
                .routes()
                .iter()
                .filter_map(|(_, to)| index.get(to).copied())
                .collect(),
        })
        .collect();
    for component in components(&edges) {
        let first = component[0];
        let looping = component.len() > 1 || edges[first].contains(&first);
        if !looping {
            continue;
        }
        let cycle = shortest_cycle(&edges, &component, first);
        let path: Vec<&str> = cycle.iter().chain([&first]).map(|&i| names[i]).collect();
        let reason = format!(
            "loop without an ask: {} (a loop must wait for a reply somewhere)",
            path.join(" -> ")
        );
        out.node(names[first], "", reason);
    }
}

/// Strongly connected components (Kosaraju, iterative: no recursion for a file to overflow),
/// each sorted, in order of their first node.
fn components(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    for root in 0..n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut stack = vec![(root, 0)];
        while let Some((node, next)) = stack.pop() {
            if let Some(&to) = edges[node].get(next) {
                stack.push((node, next + 1));
                if !seen[to] {
                    seen[to] = true;
                    stack.push((to, 0));
                }
            } else {
                order.push(node);
            }
        }
    }
    let mut reverse = vec![Vec::new(); n];
    for (from, tos) in edges.iter().enumerate() {
        tos.iter().for_each(|&to| reverse[to].push(from));
    }
    let mut component_of = vec![usize::MAX; n];
    let mut found: Vec<Vec<usize>> = Vec::new();
    for &root in order.iter().rev() {
        if component_of[root] != usize::MAX {
            continue;
        }
        let id = found.len();
        component_of[root] = id;
        let (mut members, mut stack) = (vec![root], vec![root]);
        while let Some(node) = stack.pop() {
            for &from in &reverse[node] {
                if component_of[from] == usize::MAX {
                    component_of[from] = id;
                    members.push(from);
                    stack.push(from);
                }
            }
        }
        members.sort_unstable();
        found.push(members);
    }
    found.sort();
    found
}

/// The nodes of a shortest cycle from `first` back to it, inside `component`.
fn shortest_cycle(edges: &[Vec<usize>], component: &[usize], first: usize) -> Vec<usize> {
    let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = VecDeque::from([first]);
    while let Some(node) = queue.pop_front() {
        for &to in &edges[node] {
            if to == first {
                let mut cycle = vec![node];
                while let Some(&up) = parent.get(cycle.last().unwrap_or(&first)) {
                    cycle.push(up);
                }
                cycle.reverse();
                return cycle;
            }
            if component.binary_search(&to).is_ok() && !parent.contains_key(&to) && to != first {
                parent.insert(to, node);
                queue.push_back(to);
            }
        }
    }
    vec![first]
}

/// The names a template of `flow` may read: every `save`, every `set` key and [`BUILTINS`].
pub fn known_variables(flow: &FlowDef) -> BTreeSet<&str> {
    let mut known: BTreeSet<&str> = BUILTINS.into_iter().collect();
    for node in flow.nodes.values() {
        match node {
            Node::Ask(ask) => known.extend(ask.save.as_deref()),
            Node::Set(set) => known.extend(set.values.keys().map(String::as_str)),
            Node::Call(call) => known.extend(call.save.keys().map(String::as_str)),
            _ => {}
        }
    }
    known
}

fn variables(out: &mut Problems<'_>, flow: &FlowDef, templates: &mut Templates) {
    let known = known_variables(flow);
    for (name, node) in &flow.nodes {
        for (key, var) in defined_names(node) {
            if let Err(reason) = variable_name(var) {
                out.node(name, &key, format!("{key}: {var:?} {reason}"));
            }
        }
        for (key, source) in node.templated() {
            if let Err(e) = templates.add(source) {
                out.node(name, &key, format!("{key}: {e}"));
                continue;
            }
            for used in templates.variables(source) {
                if let Some(reason) = unknown(&known, &used) {
                    out.node(name, &key, format!("{key}: {reason}"));
                }
            }
        }
    }
}

fn defined_names(node: &Node) -> Vec<(String, &str)> {
    match node {
        Node::Ask(ask) => ask
            .save
            .iter()
            .map(|s| ("save".into(), s.as_str()))
            .collect(),
        Node::Set(set) => set
            .values
            .keys()
            .map(|k| (format!("values.{k}"), k.as_str()))
            .collect(),
        Node::Call(call) => call
            .save
            .keys()
            .map(|k| (format!("save.{k}"), k.as_str()))
            .collect(),
        _ => Vec::new(),
    }
}

/// What a `call` node sends: a configured endpoint, a path that stays under it, a body only
/// where the method has one, and JSON pointers that can point.
fn calls(out: &mut Problems<'_>, flow: &FlowDef, options: &CheckOptions) {
    for (name, node) in &flow.nodes {
        if let Node::Connect(connect) = node
            && let Some(agents) = &options.agents
            && !agents.contains(&connect.agent)
        {
            let reason = format!(
                "agent: no {:?} in relay.agents of the server config",
                connect.agent
            );
            out.node(name, "agent", reason);
        }
        let Node::Call(call) = node else { continue };
        if let Some(endpoints) = &options.endpoints
            && !endpoints.contains(&call.endpoint)
        {
            let known = if endpoints.is_empty() {
                "none is configured".to_owned()
            } else {
                let list: Vec<&str> = endpoints.iter().map(String::as_str).collect();
                format!("configured: {}", list.join(", "))
            };
            let reason = format!(
                "endpoint: no [flows.endpoints.{}] in the server config ({known})",
                call.endpoint
            );
            out.node(name, "endpoint", reason);
        }
        match path_parts(&call.path) {
            Err(reason) => out.node(name, "path", format!("path: {reason}")),
            Ok(parts) => {
                if !call.path.starts_with('/') {
                    out.node(name, "path", "path: must start with /".into());
                }
                let literal = parts.iter().filter_map(|part| match part {
                    PathPart::Literal(text) => Some(*text),
                    PathPart::Value(_) => None,
                });
                for text in literal {
                    if let Some(bad) = text.chars().find(|c| {
                        matches!(c, '?' | '#' | '\\') || c.is_whitespace() || c.is_control()
                    }) {
                        let reason = format!(
                            "path: {bad:?} cannot be written in a path (use `query` for a query)"
                        );
                        out.node(name, "path", reason);
                    }
                    if text
                        .split('/')
                        .any(|segment| segment == "." || segment == "..")
                    {
                        out.node(name, "path", "path: no . or .. segments".into());
                    }
                }
            }
        }
        let has_body = call.json.is_some() || call.form.is_some();
        if call.json.is_some() && call.form.is_some() {
            out.node(
                name,
                "form",
                "form: a call sends `json` or `form`, not both".into(),
            );
        }
        if has_body && matches!(call.method, Method::Get | Method::Delete) {
            let reason = format!("method: a {} sends no body", call.method.as_str());
            out.node(name, "method", reason);
        }
        for (var, pointer) in &call.save {
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                let reason = format!(
                    "save.{var}: {pointer:?} is not a JSON pointer (\"/slots\", \"/data/0/id\", or \"\" for the whole answer)"
                );
                out.node(name, &format!("save.{var}"), reason);
            }
        }
    }
}

/// Every `mock.NODE` of a transcript names a `call` node.
fn mocks(out: &mut Problems<'_>, flow: &FlowDef) {
    for (i, test) in flow.tests.iter().enumerate() {
        for node in test.mock.keys() {
            if !matches!(flow.nodes.get(node), Some(Node::Call(_) | Node::Connect(_))) {
                let key = format!("tests.{i}.mock.{node}");
                out.top(
                    &key,
                    format!("{key}: no call or connect node named {node:?}"),
                );
            }
        }
    }
}

/// A variable is a template identifier that shadows nothing and is not a reserved state key.
fn variable_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("is not a variable name (a letter, then letters, digits or _)");
    }
    if BUILTINS.contains(&name) {
        return Err("is a built-in name (input, contact, trigger, attempts)");
    }
    Ok(())
}

/// Why `used` (`name` or `name.attr`) cannot be read, if it cannot.
fn unknown(known: &BTreeSet<&str>, used: &str) -> Option<String> {
    let mut parts = used.splitn(3, '.');
    let root = parts.next().unwrap_or_default();
    if !known.contains(root) {
        return Some(format!("unknown variable `{root}`"));
    }
    let fields: &[&str] = match root {
        "contact" => &["from", "to"],
        "trigger" => &["rest"],
        _ => return None,
    };
    let attr = parts.next()?;
    let list = fields.join(", ");
    (!fields.contains(&attr))
        .then(|| format!("unknown variable `{root}.{attr}` ({root} has {list})"))
}

fn header(out: &mut Problems<'_>, flow: &FlowDef, options: &CheckOptions) {
    if let (Some(expire), Some(ttl)) = (flow.expire_after, options.session_ttl)
        && expire > ttl
    {
        let (expire, ttl) = (
            humantime::format_duration(expire),
            humantime::format_duration(ttl),
        );
        out.top("expire_after", format!("expire_after: {expire} is longer than session.ttl ({ttl}); the state would be gone first"));
    }
    if flow.on_expire.is_some() && flow.expire_after.is_none() {
        out.top(
            "on_expire",
            "on_expire: never used without expire_after".into(),
        );
    }
    if let Some(zone) = &flow.timezone
        && jiff::tz::db().get(zone).is_err()
    {
        out.top(
            "timezone",
            format!("timezone: {zone:?} is not a known IANA time zone"),
        );
    }
}

fn opt_outs(out: &mut Problems<'_>, flow: &FlowDef) {
    for (t, trigger) in flow.triggers.iter().enumerate() {
        for (k, keyword) in trigger.keywords.iter().enumerate() {
            let key = format!("triggers.{t}.keywords.{k}");
            if is_opt_out_word(keyword) {
                out.top(&key, format!("{key}: {keyword:?} is an opt-out word; texting it opts the person out at Twilio"));
            } else if keyword.split_whitespace().count() != 1 {
                out.top(
                    &key,
                    format!(
                        "{key}: {keyword:?} must be one word (the first word of a text is matched)"
                    ),
                );
            }
        }
    }
    for (name, node) in &flow.nodes {
        let cases = match node {
            Node::Ask(ask) => &ask.cases,
            Node::Branch(branch) => &branch.cases,
            _ => continue,
        };
        for (i, case) in cases.iter().enumerate() {
            if !WORD_TESTS.contains(&case.test.as_str()) {
                continue;
            }
            let words = case
                .args
                .iter()
                .flat_map(|a| a.split(|c: char| !c.is_alphanumeric()));
            if let Some(word) = words.into_iter().find(|w| is_opt_out_word(w)) {
                let key = format!("cases.{i}.args");
                out.node(name, &key, format!("{key}: {word:?} is an opt-out word; a texter sending it is opted out, not answering"));
            }
        }
    }
}

/// Checks across a directory: unique flow names, and each keyword starting one flow.
pub fn check_set(flows: &[(Source<'_>, &FlowDef)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    let mut keywords: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    for (source, flow) in flows {
        if let Some(first) = names.insert(&flow.name, source.file) {
            let reason = format!("name: flow {:?} is also the name of {first}", flow.name);
            problems.push(source.problem_at(&["name"], None, reason));
            names.insert(&flow.name, first);
        }
        for (t, trigger) in flow.triggers.iter().enumerate() {
            for (k, keyword) in trigger.keywords.iter().enumerate() {
                let upper = keyword.trim().to_uppercase();
                match keywords.get(&upper) {
                    Some((other, file)) if *other != flow.name => {
                        let key = format!("triggers.{t}.keywords.{k}");
                        let reason =
                            format!("{key}: keyword {upper:?} also starts flow {other:?} ({file})");
                        let path = [
                            "triggers".to_owned(),
                            t.to_string(),
                            "keywords".into(),
                            k.to_string(),
                        ];
                        let path: Vec<&str> = path.iter().map(String::as_str).collect();
                        problems.push(source.problem_at(&path, None, reason));
                    }
                    Some(_) => {}
                    None => drop(keywords.insert(upper, (&flow.name, source.file))),
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::engine::load::{LoadOptions, SourceFile, build};

    const HEAD: &str = "spec = 1\nname = \"t\"\nstart = \"a\"\n";

    fn problems_in(files: &[(&str, &str)], routing: &impl Routing) -> Vec<String> {
        let sources: Vec<SourceFile> = files
            .iter()
            .map(|(file, text)| SourceFile {
                file: (*file).into(),
                text: (*text).into(),
            })
            .collect();
        let check = CheckOptions {
            session_ttl: Some(Duration::from_secs(4 * 3600)),
            endpoints: Some(BTreeSet::from(["clinic".to_owned()])),
            agents: None,
        };
        let options = LoadOptions {
            check,
            ..LoadOptions::default()
        };
        match build(&sources, &options, routing) {
            Ok(_) => Vec::new(),
            Err(found) => found.iter().map(ToString::to_string).collect(),
        }
    }

    fn problems(text: &str) -> Vec<String> {
        problems_in(&[("f.toml", text)], &Unchecked)
    }

    #[test]
    fn the_example_flow_has_no_problems() {
        let clinic = include_str!("testdata/clinic.toml");
        assert_eq!(problems(clinic), Vec::<String>::new());
    }

    #[test]
    fn a_missing_start_node_is_named() {
        let text = "spec = 1\nname = \"t\"\nstart = \"nope\"\n[nodes.a]\ntype = \"end\"\n";
        let found = problems(text);
        assert_eq!(found[0], "f.toml:3:1: start: no node named \"nope\"");
    }

    #[test]
    fn a_dangling_route_names_node_key_and_target() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"ask\"\ntext = \"q\"\ncases = [ {{ test = \"has_text\", next = \"b\" }}, {{ test = \"has_text\", next = \"gone\" }} ]\non_fail = \"b\"\n[nodes.b]\ntype = \"end\"\n"
        );
        assert_eq!(
            problems(&text),
            ["f.toml:7:67: node a: cases.1.next: no node named \"gone\""]
        );
    }

    #[test]
    fn say_and_set_need_next_and_a_branch_needs_default() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"say\"\ntext = \"hi\"\n[nodes.b]\ntype = \"set\"\nvalues = {{}}\n[nodes.c]\ntype = \"branch\"\non = \"x\"\n[nodes.d]\ntype = \"ask\"\ntext = \"q\"\n"
        );
        let found = problems(&text);
        assert!(
            found.contains(&"f.toml:4:8: node a: a say node needs `next`".to_owned()),
            "{found:?}"
        );
        assert!(
            found.contains(&"f.toml:7:8: node b: a set node needs `next`".to_owned()),
            "{found:?}"
        );
        assert!(
            found.contains(&"f.toml:10:8: node c: a branch node needs `default`".to_owned()),
            "{found:?}"
        );
        assert!(
            found.contains(
                &"f.toml:13:8: node d: an ask node needs `next` (or `cases` that route)".to_owned()
            ),
            "{found:?}"
        );
    }

    #[test]
    fn an_unreachable_node_is_refused() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"end\"\n[nodes.orphan]\ntype = \"end\"\ntext = \"bye\"\n"
        );
        assert_eq!(
            problems(&text),
            [
                "f.toml:6:8: node orphan: unreachable: no route from `start` or `on_expire` leads here"
            ]
        );
    }

    #[test]
    fn on_expire_makes_its_node_reachable() {
        let text = format!(
            "{HEAD}expire_after = \"5m\"\non_expire = \"late\"\n[nodes.a]\ntype = \"end\"\n[nodes.late]\ntype = \"end\"\n"
        );
        assert_eq!(problems(&text), Vec::<String>::new());
    }

    #[test]
    fn a_loop_without_an_ask_is_refused_naming_the_loop() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"say\"\ntext = \"x\"\nnext = \"b\"\n[nodes.b]\ntype = \"branch\"\non = \"1\"\ncases = [ {{ test = \"has_text\", next = \"c\" }} ]\ndefault = \"a\"\n[nodes.c]\ntype = \"set\"\nvalues = {{ n = \"1\" }}\nnext = \"c\"\n"
        );
        assert_eq!(
            problems(&text),
            [
                "f.toml:4:8: node a: loop without an ask: a -> b -> a (a loop must wait for a reply somewhere)",
                "f.toml:13:8: node c: loop without an ask: c -> c (a loop must wait for a reply somewhere)",
            ]
        );
    }

    #[test]
    fn a_loop_through_an_ask_is_fine() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"say\"\ntext = \"x\"\nnext = \"b\"\n[nodes.b]\ntype = \"ask\"\ntext = \"again?\"\ncases = [ {{ test = \"has_any_word\", args = [\"yes\"], next = \"a\" }} ]\non_fail = \"c\"\n[nodes.c]\ntype = \"end\"\n"
        );
        assert_eq!(problems(&text), Vec::<String>::new());
    }

    #[test]
    fn a_template_that_does_not_compile_is_named() {
        let text = format!("{HEAD}[nodes.a]\ntype = \"end\"\ntext = \"Hi {{{{ name \"\n");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .starts_with("f.toml:6:1: node a: text: template does not compile: syntax error"),
            "{found:?}"
        );
    }

    #[test]
    fn a_template_reading_an_unknown_variable_is_named() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"ask\"\ntext = \"Name?\"\nsave = \"name\"\nnext = \"b\"\n[nodes.b]\ntype = \"end\"\ntext = \"Bye {{{{ nmae }}}} {{{{ name }}}} {{{{ contact.fax }}}} {{{{ trigger.rest }}}}\"\n"
        );
        assert_eq!(
            problems(&text),
            [
                "f.toml:11:1: node b: text: unknown variable `contact.fax` (contact has from, to)",
                "f.toml:11:1: node b: text: unknown variable `nmae`",
            ]
        );
    }

    #[test]
    fn bad_variable_names_are_refused() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"set\"\nvalues = {{ input = \"x\", _f = \"y\", ok_1 = \"z\" }}\nnext = \"b\"\n[nodes.b]\ntype = \"ask\"\ntext = \"q\"\nsave = \"my name\"\nnext = \"c\"\n[nodes.c]\ntype = \"end\"\n"
        );
        assert_eq!(
            problems(&text),
            [
                "f.toml:6:25: node a: values._f: \"_f\" is not a variable name (a letter, then letters, digits or _)",
                "f.toml:6:12: node a: values.input: \"input\" is a built-in name (input, contact, trigger, attempts)",
                "f.toml:11:1: node b: save: \"my name\" is not a variable name (a letter, then letters, digits or _)",
            ]
        );
    }

    #[test]
    fn a_call_is_checked_for_its_endpoint_routes_path_body_and_pointers() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"call\"\nendpoint = \"crm\"\npath = \"slots?x=1/../{{{{ day }}}}\"\njson = {{ a = 1 }}\nform = {{ b = \"2\" }}\nsave = {{ day = \"slots\" }}\n\n[[tests]]\nname = \"t\"\nmock.z = {{ status = 200 }}\nchat = []\n"
        );
        let found = problems(&text);
        assert_eq!(
            found,
            [
                "f.toml:4:8: node a: a call node needs `next`",
                "f.toml:4:8: node a: a call node needs `on_error` (where a failed call goes)",
                "f.toml:6:1: node a: endpoint: no [flows.endpoints.crm] in the server config (configured: clinic)",
                "f.toml:7:1: node a: path: must start with /",
                "f.toml:7:1: node a: path: '?' cannot be written in a path (use `query` for a query)",
                "f.toml:7:1: node a: path: no . or .. segments",
                "f.toml:9:1: node a: form: a call sends `json` or `form`, not both",
                "f.toml:4:8: node a: method: a GET sends no body",
                "f.toml:10:10: node a: save.day: \"slots\" is not a JSON pointer (\"/slots\", \"/data/0/id\", or \"\" for the whole answer)",
                "f.toml:14:6: tests.0.mock.z: no call or connect node named \"z\"",
            ]
        );
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"call\"\nendpoint = \"clinic\"\nmethod = \"POST\"\npath = \"/b/{{{{ input }}}}/{{% if x %}}\"\nnext = \"b\"\non_error = \"b\"\n[nodes.b]\ntype = \"end\"\n"
        );
        assert_eq!(
            problems(&text),
            ["f.toml:8:1: node a: path: only {{ value }} templates may be used in a path"]
        );
    }

    #[test]
    fn opt_out_words_are_refused_as_keywords_and_answers() {
        let text = format!(
            "{HEAD}[[triggers]]\nkeywords = [\"Stop\", \"two words\", \"JOIN\"]\n[nodes.a]\ntype = \"ask\"\ntext = \"Reply CANCEL to cancel\"\ncases = [ {{ test = \"has_any_word\", args = [\"no cancel\"], next = \"b\" }}, {{ test = \"has_pattern\", args = [\"quit\"], next = \"b\" }} ]\n[nodes.b]\ntype = \"end\"\n"
        );
        assert_eq!(
            problems(&text),
            [
                "f.toml:5:13: triggers.0.keywords.0: \"Stop\" is an opt-out word; texting it opts the person out at Twilio",
                "f.toml:5:21: triggers.0.keywords.1: \"two words\" must be one word (the first word of a text is matched)",
                "f.toml:9:36: node a: cases.0.args: \"cancel\" is an opt-out word; a texter sending it is opted out, not answering",
            ]
        );
    }

    #[test]
    fn expiry_must_fit_the_session_and_on_expire_needs_it() {
        let text = format!("{HEAD}expire_after = \"5h\"\n[nodes.a]\ntype = \"end\"\n");
        assert_eq!(
            problems(&text),
            [
                "f.toml:4:1: expire_after: 5h is longer than session.ttl (4h); the state would be gone first"
            ]
        );
        let text = format!("{HEAD}on_expire = \"a\"\n[nodes.a]\ntype = \"end\"\n");
        assert_eq!(
            problems(&text),
            ["f.toml:4:1: on_expire: never used without expire_after"]
        );
    }

    #[test]
    fn an_unknown_time_zone_is_refused() {
        let text = format!("{HEAD}timezone = \"America/Nowhere\"\n[nodes.a]\ntype = \"end\"\n");
        assert_eq!(
            problems(&text),
            ["f.toml:4:1: timezone: \"America/Nowhere\" is not a known IANA time zone"]
        );
    }

    #[test]
    fn names_and_keywords_are_unique_across_a_directory() {
        let one = "spec = 1\nname = \"t\"\nstart = \"a\"\n[[triggers]]\nkeywords = [\"BOOK\"]\n[nodes.a]\ntype = \"end\"\n";
        let two = "spec = 1\nname = \"u\"\nstart = \"a\"\n[[triggers]]\nkeywords = [\"book\"]\n[nodes.a]\ntype = \"end\"\n";
        assert_eq!(
            problems_in(
                &[("a.toml", one), ("b.toml", one), ("c.toml", two)],
                &Unchecked
            ),
            [
                "b.toml:2:1: name: flow \"t\" is also the name of a.toml",
                "c.toml:5:13: triggers.0.keywords.0: keyword \"BOOK\" also starts flow \"t\" (a.toml)",
            ]
        );
    }

    #[test]
    fn every_problem_of_every_file_is_reported_at_once() {
        let bad_parse = "spec = 1\nname = \"x\"\nstart = \"a\"\n[nodes.a]\ntype = \"menu\"\n";
        let bad_check = format!("{HEAD}[nodes.a]\ntype = \"say\"\ntext = \"{{{{ nope }}}}\"\n");
        let found = problems_in(&[("a.toml", bad_parse), ("b.toml", &bad_check)], &Unchecked);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("a.toml:4:1: node a: unknown type \"menu\""));
        assert!(found[1].starts_with("b.toml:4:8: node a: a say node needs `next`"));
        assert!(found[2].starts_with("b.toml:6:1: node a: text: unknown variable `nope`"));
    }

    /// Knows one test and one expect, as `engine::tests` and `engine::input` will know all.
    struct Strict;

    impl Routing for Strict {
        type Test = String;
        type Expect = String;

        fn test(&self, case: &Case) -> Result<String, String> {
            match case.test.as_str() {
                "has_text" => Ok(case.test.clone()),
                other => Err(format!("unknown test {other:?}")),
            }
        }

        fn expect(&self, ask: &Ask) -> Result<String, String> {
            match ask.expect.as_deref().unwrap_or("text") {
                "text" => Ok("text".into()),
                other => Err(format!("unknown expect {other:?}")),
            }
        }
    }

    #[test]
    fn the_routing_seam_refuses_unknown_tests_and_expects_with_node_and_key() {
        let text = format!(
            "{HEAD}[nodes.a]\ntype = \"ask\"\ntext = \"q\"\nexpect = \"colour\"\ncases = [ {{ test = \"has_text\", next = \"b\" }}, {{ test = \"has_vibe\", next = \"b\" }} ]\n[nodes.b]\ntype = \"end\"\n"
        );
        assert_eq!(
            problems_in(&[("f.toml", &text)], &Strict),
            [
                "f.toml:8:48: node a: cases.1.test: unknown test \"has_vibe\"",
                "f.toml:7:1: node a: expect: unknown expect \"colour\"",
            ]
        );
    }
}
