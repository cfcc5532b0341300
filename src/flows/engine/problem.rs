//! What is wrong with a flow file, and where: `FILE:LINE:COLUMN: node NAME: reason`.
//!
//! Every stage of loading (TOML syntax, the shape of the file, the static checks) reports
//! [`Problem`]s, so `flow check` can list them all at once. Locations come from toml's byte
//! spans; flow files hold no secrets, so a reason may quote the value it could not use.

use std::fmt;

use toml::de::{DeTable, DeValue};

use crate::toml_spans::{Items, line_column, path_at};

/// One thing wrong with a flow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file as the loader was given it (e.g. `config/flows/booking.toml`).
    pub file: String,
    /// 1-based line and column (in characters), when the parser could say.
    pub at: Option<(usize, usize)>,
    /// The node the problem is in, if it is in one.
    pub node: Option<String>,
    /// Why, in words a flow author can act on.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, column)) = self.at {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(node) = &self.node {
            write!(f, ": node {node}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A flow file's name and text, for placing problems in it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    /// A problem at byte `at` (if known), in `node` (if any).
    pub fn problem(&self, at: Option<usize>, node: Option<&str>, message: String) -> Problem {
        Problem {
            file: self.file.to_owned(),
            at: at.map(|at| line_column(self.text, at)),
            node: node.map(str::to_owned),
            message,
        }
    }

    /// A problem placed at the key `path` (`["nodes", "ask", "cases", "1", "next"]`), or at the
    /// deepest part of it the file has; numbers index arrays.
    pub fn problem_at(&self, path: &[&str], node: Option<&str>, message: String) -> Problem {
        self.problem(self.find(path), node, message)
    }

    /// Byte offset of the key `path`, or of its deepest existing prefix.
    pub fn find(&self, path: &[&str]) -> Option<usize> {
        let (root, _) = DeTable::parse_recoverable(self.text);
        let mut found = None;
        let mut table = Some(root.get_ref());
        let mut value: Option<&DeValue<'_>> = None;
        for part in path {
            let entry = match (table, value) {
                (Some(t), _) => t.get_key_value(*part).map(|(k, v)| (k.span().start, v)),
                (None, Some(DeValue::Array(items))) => part
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(|v| (v.span().start, v)),
                _ => None,
            };
            let Some((start, next)) = entry else { break };
            found = Some(start);
            value = Some(next.get_ref());
            table = match next.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        found
    }

    /// The dotted key path whose key or value holds byte `at`, innermost; array items are
    /// numbered.
    pub fn path_at(&self, at: usize) -> Vec<String> {
        let (root, _) = DeTable::parse_recoverable(self.text);
        path_at(root.get_ref(), at, Items::Numbered).unwrap_or_default()
    }

    /// The node whose `[nodes.NAME]` header is the last one above byte `at`: for a syntax
    /// error, where no key path can be had.
    pub fn node_above(&self, at: usize) -> Option<String> {
        let before = self.text.get(..at.min(self.text.len()))?;
        before.lines().rev().find_map(|line| {
            let inner = line.trim().strip_prefix('[')?.split(']').next()?;
            let name = inner.trim().strip_prefix("nodes.")?;
            Some(name.trim().trim_matches('"').to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "spec = 1\n[nodes.a]\ntype = \"ask\"\ncases = [ { test = \"x\" }, { test = \"y\", next = \"b\" } ]\n";

    fn source() -> Source<'static> {
        Source {
            file: "f.toml",
            text: TEXT,
        }
    }

    #[test]
    fn display_names_file_line_node_and_reason() {
        let p = source().problem_at(&["nodes", "a", "type"], Some("a"), "bad".into());
        assert_eq!(p.to_string(), "f.toml:3:1: node a: bad");
        let p = source().problem(None, None, "bad".into());
        assert_eq!(p.to_string(), "f.toml: bad");
    }

    #[test]
    fn find_walks_tables_and_arrays_and_stops_at_the_deepest_known_key() {
        let line = |path: &[&str]| source().find(path).map(|at| line_column(TEXT, at));
        assert_eq!(line(&["nodes", "a", "cases", "1", "next"]), Some((4, 41)));
        assert_eq!(line(&["nodes", "a", "nope"]), Some((2, 8)));
        assert_eq!(line(&["zzz"]), None);
    }

    #[test]
    fn path_at_names_the_innermost_key() {
        let at = TEXT.find("\"y\"").unwrap();
        assert_eq!(source().path_at(at), ["nodes", "a", "cases", "1", "test"]);
    }

    #[test]
    fn node_above_reads_the_last_node_header() {
        assert_eq!(source().node_above(TEXT.len()), Some("a".into()));
        assert_eq!(source().node_above(3), None);
    }
}
