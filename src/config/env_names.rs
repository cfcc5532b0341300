//! The `SMS_SESSIONS_*` environment variables sms-sessions reads, and a warning for any other:
//! a typo must not silently do nothing.

/// Every `SMS_SESSIONS_*` variable read by `config` or by `main` (`SMS_SESSIONS_WORKERS`),
/// but for the endpoints' secrets (`SMS_SESSIONS_ENDPOINT_<NAME>_SECRET`, see `callouts`).
pub const KNOWN: &[&str] = &[
    "SMS_SESSIONS_LISTEN",
    "SMS_SESSIONS_PUBLIC_URL",
    "SMS_SESSIONS_TRUST_FORWARDED",
    "SMS_SESSIONS_BODY_LIMIT",
    "SMS_SESSIONS_REQUEST_TIMEOUT",
    "SMS_SESSIONS_METRICS",
    "SMS_SESSIONS_METRICS_LISTEN",
    "SMS_SESSIONS_PUBLIC_METRICS",
    "SMS_SESSIONS_HEADER_TIMEOUT",
    "SMS_SESSIONS_IDLE_TIMEOUT",
    "SMS_SESSIONS_MAX_CONNECTIONS",
    "SMS_SESSIONS_TRUST_REQUEST_ID",
    "SMS_SESSIONS_VALIDATE_SIGNATURES",
    "SMS_SESSIONS_SECRET",
    "SMS_SESSIONS_SECRET_FILE",
    "SMS_SESSIONS_SECRET_PREVIOUS",
    "SMS_SESSIONS_SECRET_PREVIOUS_FILE",
    "SMS_SESSIONS_SESSION_TTL",
    "SMS_SESSIONS_COOKIE_NAME",
    "SMS_SESSIONS_FLOW",
    "SMS_SESSIONS_FLOWS_DIR",
    "SMS_SESSIONS_FLOWS_DEFAULT",
    "SMS_SESSIONS_HELP_REPLY",
    "SMS_SESSIONS_LOG_FORMAT",
    "SMS_SESSIONS_STORE",
    "SMS_SESSIONS_STORE_TIMEOUT",
    "SMS_SESSIONS_STORE_PREFIX",
    "SMS_SESSIONS_WORKERS",
    "SMS_SESSIONS_RELAY_NUMBERS",
    "SMS_SESSIONS_ADMIN_LISTEN",
    "SMS_SESSIONS_ADMIN_TOKEN",
    "SMS_SESSIONS_ADMIN_TOKEN_FILE",
    "SMS_SESSIONS_ADMIN_URL",
];

const PREFIX: &str = "SMS_SESSIONS_";

/// One warning per unknown `SMS_SESSIONS_*` name in `names`, with the closest known name when
/// one is close. Only names: a value could be a secret.
pub fn unknown(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut unknown: Vec<String> = names
        .into_iter()
        .filter(|name| name.starts_with(PREFIX) && !KNOWN.contains(&name.as_str()))
        // An endpoint's secret: `callouts::stray_env` warns when it names no endpoint.
        .filter(|name| !super::callouts::is_secret_env_name(name))
        .collect();
    unknown.sort();
    unknown
        .iter()
        .map(|name| {
            let hint =
                closest(name).map_or_else(String::new, |known| format!(" (did you mean {known}?)"));
            format!("{name} is not a variable sms-sessions reads; it has no effect{hint}")
        })
        .collect()
}

/// The known name nearest to `name`: at most 3 edits away, or containing what follows the
/// prefix (`SMS_SESSIONS_TTL` → `SMS_SESSIONS_SESSION_TTL`).
fn closest(name: &str) -> Option<&'static str> {
    let rest = &name[PREFIX.len()..];
    KNOWN
        .iter()
        .map(|known| (edit_distance(name, known), *known))
        .filter(|(distance, known)| {
            *distance <= 3 || (rest.len() >= 3 && known[PREFIX.len()..].contains(rest))
        })
        .min()
        .map(|(_, known)| known)
}

/// Levenshtein distance, with a swap of two neighbours counting as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![(0..=b.len()).collect::<Vec<_>>()];
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (rows[i - 1][j] + 1)
                .min(row[j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(rows[i - 2][j - 2] + 1);
            }
        }
        rows.push(row);
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(names: &[&str]) -> Vec<String> {
        unknown(names.iter().map(|name| (*name).to_owned()))
    }

    #[test]
    fn a_typo_is_named_with_the_closest_known_name() {
        assert_eq!(
            warnings(&["SMS_SESSIONS_SECERT", "HOME", "TWILIO_AUTH_TOKEN"]),
            [
                "SMS_SESSIONS_SECERT is not a variable sms-sessions reads; it has no effect \
              (did you mean SMS_SESSIONS_SECRET?)"
            ]
        );
        let ttl = warnings(&["SMS_SESSIONS_TTL"]);
        assert!(
            ttl[0].ends_with("(did you mean SMS_SESSIONS_SESSION_TTL?)"),
            "{ttl:?}"
        );
        let far = warnings(&["SMS_SESSIONS_COLOUR_SCHEME"]);
        assert!(far[0].ends_with("it has no effect"), "{far:?}");
    }

    #[test]
    fn every_name_the_code_reads_is_known() {
        let sources = [include_str!("../config.rs"), include_str!("../main.rs")];
        let mut read = Vec::new();
        for source in sources {
            // Not the tests, which use unknown names on purpose.
            let source = source.split("#[cfg(test)]").next().unwrap_or(source);
            for (at, _) in source.match_indices(PREFIX) {
                let name: String = source[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                read.push(name);
            }
        }
        assert!(read.len() > 20, "{read:?}");
        read.retain(|name| name != PREFIX);
        assert_eq!(
            warnings(&read.iter().map(String::as_str).collect::<Vec<_>>()),
            Vec::<String>::new()
        );
    }
}
