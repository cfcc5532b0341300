//! Positions in TOML text, for errors that name `FILE:LINE:COLUMN` and the key: shared by the
//! configuration file (`config::file`) and flow files (`flows::engine::problem`).

use toml::de::{DeTable, DeValue};

/// 1-based line and column (in characters) of byte `at`; past the end counts as the last
/// character (after the final newline there is nothing to point at).
pub fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len().saturating_sub(1));
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

/// How array items appear in a key path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Items {
    /// By their index: `cases.1.next`.
    Numbered,
    /// Not at all: the path ends at the array's key (`session.previous_secrets`).
    Unnamed,
}

/// The key path whose key or value holds byte `at`, innermost; `None` when no key does.
pub fn path_at(table: &DeTable<'_>, at: usize, items: Items) -> Option<Vec<String>> {
    table.iter().find_map(|(key, value)| {
        let inner = path_in_value(value.get_ref(), at, items);
        let here = key.span().contains(&at) || value.span().contains(&at);
        (inner.is_some() || here).then(|| {
            let mut path = vec![key.get_ref().to_string()];
            path.extend(inner.unwrap_or_default());
            path
        })
    })
}

fn path_in_value(value: &DeValue<'_>, at: usize, items: Items) -> Option<Vec<String>> {
    match value {
        DeValue::Table(table) => path_at(table, at, items),
        DeValue::Array(array) => array.iter().enumerate().find_map(|(i, item)| {
            let inner = path_in_value(item.get_ref(), at, items);
            let here = item.span().contains(&at);
            (inner.is_some() || here).then(|| {
                let mut path = match items {
                    Items::Numbered => vec![i.to_string()],
                    Items::Unnamed => Vec::new(),
                };
                path.extend(inner.unwrap_or_default());
                path
            })
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_and_clamps() {
        assert_eq!(line_column("é=1\nab", 5), (2, 1));
        assert_eq!(line_column("ab", 99), (1, 2));
        assert_eq!(line_column("", 0), (1, 1));
    }

    #[test]
    fn array_items_are_numbered_or_left_out() {
        let text = "[a]\nb = [1, { c = 2 }]\n";
        let (table, _) = DeTable::parse_recoverable(text);
        let at = text.find("2").expect("in the text");
        let path = |items| path_at(table.get_ref(), at, items).map(|p| p.join("."));
        assert_eq!(path(Items::Numbered).as_deref(), Some("a.b.1.c"));
        assert_eq!(path(Items::Unnamed).as_deref(), Some("a.b.c"));
    }
}
