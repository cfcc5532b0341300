//! Reading `--config FILE`: an error names the file, the key, the line and the column, and
//! never quotes the source or a value (the line may hold the auth token).

use std::path::Path;

use toml::de::DeTable;

use crate::toml_spans::{Items, line_column, path_at};

use super::{ConfigError, Raw};

/// Reads `path` and checks it against the file-level shape before it is merged.
pub(super) fn read(path: &Path) -> Result<toml::Table, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| super::error(&name, e))?;
    toml::from_str::<Raw>(&text).map_err(|e| located(&name, &text, &e))?;
    text.parse().map_err(|e| located(&name, &text, &e))
}

/// The error as `FILE:LINE:COLUMN: KEY: reason`, keeping only what cannot be a value.
fn located(file: &str, text: &str, error: &toml::de::Error) -> ConfigError {
    let end = text.len().saturating_sub(1);
    let Some(at) = error.span().map(|span| span.start.min(end)) else {
        return ConfigError {
            key: String::new(),
            message: reason(error.message()),
            location: Some(file.to_owned()),
        };
    };
    let (line, column) = line_column(text, at);
    ConfigError {
        key: key_at(text, at).unwrap_or_default(),
        message: reason(error.message()),
        location: Some(format!("{file}:{line}:{column}")),
    }
}

/// The dotted key whose key or value holds byte `at`, the innermost one; for a syntax error,
/// the key of the line being read.
fn key_at(text: &str, at: usize) -> Option<String> {
    let (table, _) = DeTable::parse_recoverable(text);
    let found = path_at(table.get_ref(), at, Items::Unnamed).map(|path| path.join("."));
    found.or_else(|| key_of_line(text, at))
}

/// For a line that failed to parse: `[table]` above it, plus what precedes its `=` when that
/// is a bare key (letters, digits, `_`, `-`, `.`), so nothing else of the line is repeated.
fn key_of_line(text: &str, at: usize) -> Option<String> {
    let (line, _) = line_column(text, at);
    let lines: Vec<&str> = text.lines().collect();
    let current = lines.get(line - 1)?;
    let key = current.split_once('=')?.0.trim();
    let bare = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    };
    if !bare(key) {
        return None;
    }
    let header = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        let name = l.strip_prefix('[')?.strip_suffix(']')?;
        Some(name.trim_matches(['[', ']']).trim())
    });
    Some(match header {
        Some(table) if bare(table) => format!("{table}.{key}"),
        _ => key.to_owned(),
    })
}

/// The parser's or serde's message with every quoted part (`…`, "…") removed: serde quotes
/// the value it could not use, e.g. "invalid type: integer `123`, expected a string". A quoted
/// bit of TOML syntax the parser expected (`"`, `=`, `]`) stays.
pub(super) fn reason(message: &str) -> String {
    if message.starts_with("unknown field") {
        return "unknown key".into();
    }
    let mut kept = String::new();
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                let quoted: String = chars.by_ref().take_while(|&c| c != '`').collect();
                if (1..=3).contains(&quoted.len())
                    && quoted.chars().all(|c| c.is_ascii_punctuation())
                {
                    kept.push_str(&format!("`{quoted}`"));
                }
            }
            '"' => skip_quoted(&mut chars),
            c => kept.push(c),
        }
    }
    let words: Vec<&str> = kept.split_whitespace().collect();
    words
        .join(" ")
        .replace(" ,", ",")
        .trim_end_matches([',', ' '])
        .to_owned()
}

/// Skips to the end of a `"`-quoted string, honouring `\"`.
fn skip_quoted(chars: &mut std::str::Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return,
            _ => {}
        }
    }
}
