//! `flow graph FILE`: a flow as a Mermaid flowchart, to paste into a GitHub README inside a
//! ```` ```mermaid ```` block.
//!
//! Shapes say what a node does: a rounded box for the entry, rectangles for `say`, hexagons for
//! `ask` (it waits), diamonds for `branch`, parallelograms for `set`, circles for `end`. Edges
//! carry the case (test and category) or the route key (`on_fail`, `default`, `on_expire`).

use std::fmt::Write as _;

use super::definition::{Case, FlowDef, Node};

/// The Mermaid source of `flow`.
pub fn mermaid(flow: &FlowDef) -> String {
    let mut out = String::from("flowchart TD\n");
    let start = id("start");
    let _ = writeln!(
        out,
        "    {start}([\"{}\"]) --> {}",
        label(&flow.name),
        id(&flow.start)
    );
    for trigger in &flow.triggers {
        let keywords = trigger.keywords.join(", ");
        let _ = writeln!(out, "    %% triggers: {}", label(&keywords));
    }
    for (name, node) in &flow.nodes {
        let text = label(&format!("{}: {name}", node.kind()));
        let shape = match node {
            Node::Say(_) => format!("[\"{text}\"]"),
            Node::Ask(_) => format!("{{{{\"{text}\"}}}}"),
            Node::Branch(_) => format!("{{\"{text}\"}}"),
            Node::Set(_) => format!("[/\"{text}\"/]"),
            Node::End(_) => format!("((\"{text}\"))"),
            Node::Call(call) => {
                let text = label(&format!(
                    "call: {name}\n{} {} {}",
                    call.method.as_str(),
                    call.endpoint,
                    call.path
                ));
                format!("[[\"{text}\"]]")
            }
            Node::Connect(connect) => {
                let text = label(&format!("connect: {name} → {}", connect.agent));
                format!("[(\"{text}\")]")
            }
        };
        let _ = writeln!(out, "    {}{shape}", id(name));
        for (edge, target) in edges(node) {
            match edge {
                Some(edge) => {
                    let _ = writeln!(
                        out,
                        "    {} -- \"{}\" --> {}",
                        id(name),
                        label(&edge),
                        id(target)
                    );
                }
                None => {
                    let _ = writeln!(out, "    {} --> {}", id(name), id(target));
                }
            }
        }
    }
    if let Some(on_expire) = &flow.on_expire {
        let _ = writeln!(out, "    {start} -. \"on_expire\" .-> {}", id(on_expire));
    }
    out
}

/// The routes out of `node`, each with its edge label (`None` for a plain `next`).
fn edges(node: &Node) -> Vec<(Option<String>, &str)> {
    fn case(case: &Case) -> (Option<String>, &str) {
        let mut text = case.test.clone();
        if !case.args.is_empty() {
            text.push(' ');
            text.push_str(&case.args.join(" "));
        }
        if let Some(category) = case.category.as_deref().filter(|c| !c.is_empty()) {
            text.push_str(" → ");
            text.push_str(category);
        }
        (Some(text), case.next.as_str())
    }
    let mut out: Vec<(Option<String>, &str)> = Vec::new();
    match node {
        Node::Say(say) => out.extend(say.next.as_deref().map(|next| (None, next))),
        Node::Set(set) => out.extend(set.next.as_deref().map(|next| (None, next))),
        Node::Ask(ask) => {
            out.extend(ask.cases.iter().map(case));
            out.extend(ask.next.as_deref().map(|next| (None, next)));
            out.extend(
                ask.on_fail
                    .as_deref()
                    .map(|fail| (Some("on_fail".into()), fail)),
            );
        }
        Node::Branch(branch) => {
            out.extend(branch.cases.iter().map(case));
            let default = branch.default.as_deref();
            out.extend(default.map(|default| (Some("default".into()), default)));
        }
        Node::End(_) => {}
        Node::Call(call) => {
            out.extend(call.next.as_deref().map(|next| (None, next)));
            let error = call.on_error.as_deref();
            out.extend(error.map(|error| (Some("on_error".into()), error)));
        }
        Node::Connect(connect) => {
            let error = connect.on_error.as_deref();
            out.extend(error.map(|error| (Some("on_error".into()), error)));
        }
    }
    out
}

/// A node name as a Mermaid id: letters, digits and `_` kept, anything else as `_XX` (hex), and
/// a prefix so that no name collides with Mermaid's keywords (`end`, `graph` …).
fn id(name: &str) -> String {
    let mut out = String::from("n_");
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            let _ = write!(out, "_{:X}", c as u32);
        }
    }
    out
}

/// Text inside a quoted Mermaid label: `"` and the characters Mermaid reads as markup escaped
/// as entity codes.
fn label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::definition::parse;
    use super::*;

    const FLOW: &str = r#"
spec = 1
name = "tiny"
start = "ask"
[nodes.ask]
type = "ask"
text = "Yes?"
cases = [ { test = "has_any_word", args = ["yes"], category = "yes", next = "end" } ]
on_fail = "end"
[nodes.end]
type = "end"
text = "Bye \"now\""
"#;

    #[test]
    fn every_node_and_route_is_drawn_with_safe_ids_and_labels() {
        let flow = parse("tiny.toml", FLOW).expect("valid");
        let graph = mermaid(&flow);
        assert_eq!(
            graph,
            "flowchart TD\n    n_start([\"tiny\"]) --> n_ask\n    \
             n_ask{{\"ask: ask\"}}\n    \
             n_ask -- \"has_any_word yes → yes\" --> n_end\n    \
             n_ask -- \"on_fail\" --> n_end\n    \
             n_end((\"end: end\"))\n"
        );
    }

    #[test]
    fn names_and_labels_cannot_break_out_of_their_syntax() {
        assert_eq!(id("a-b.c"), "n_a_2Db_2Ec");
        assert_eq!(
            label("say \"hi\" #1 <b>"),
            "say #quot;hi#quot; #35;1 #lt;b#gt;"
        );
    }
}
