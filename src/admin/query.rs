//! `GET /v1/relay/sessions?state=&address=&limit=&after=`: the query string → a [`List`], or
//! the first parameter that breaks a rule, by name.

use super::error::ApiError;
use crate::config::is_address;
use crate::relay::{Filter, State};

/// The page size when none is asked for.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest page.
pub const MAX_LIMIT: usize = 100;

/// A checked list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub filter: Filter,
    pub limit: usize,
    /// The previous page's `next`.
    pub after: Option<String>,
}

/// Parses the query string (without `?`; `None` when there is none).
pub fn parse(query: Option<&str>) -> Result<List, ApiError> {
    let mut list = List {
        filter: Filter::default(),
        limit: DEFAULT_LIMIT,
        after: None,
    };
    let mut seen = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if seen.contains(&key) {
            return Err(ApiError::invalid(key, "is given more than once"));
        }
        match key.as_ref() {
            "state" => list.filter.state = Some(state(&value)?),
            "address" => list.filter.address = Some(address(&value)?),
            "limit" => list.limit = limit(&value)?,
            "after" => list.after = Some(after(&value)?),
            _ => {
                let key: String = key.chars().take(64).collect();
                let detail = "is not a known parameter (expected state, address, limit, after)";
                return Err(ApiError::invalid(key, detail));
            }
        }
        seen.push(key);
    }
    Ok(list)
}

fn state(value: &str) -> Result<State, ApiError> {
    match value {
        "open" => Ok(State::Open),
        "closed" => Ok(State::Closed),
        _ => Err(ApiError::invalid("state", "must be open or closed")),
    }
}

/// An address filter. A `+` left unencoded in a query string reads as a space, so a leading
/// space (after `whatsapp:` too) is taken for the `+` it was.
fn address(value: &str) -> Result<String, ApiError> {
    let (channel, number) = match value.strip_prefix("whatsapp:") {
        Some(number) => ("whatsapp:", number),
        None => ("", value),
    };
    let number = number
        .strip_prefix(' ')
        .map_or(number.to_owned(), |n| format!("+{n}"));
    let address = format!("{channel}{number}");
    if is_address(&address) {
        Ok(address)
    } else {
        let detail = "is not E.164 (+ and 8 to 15 digits, %2B in a URL) or whatsapp:+E.164";
        Err(ApiError::invalid("address", detail))
    }
}

fn limit(value: &str) -> Result<usize, ApiError> {
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(
            "limit",
            format!("must be a number from 1 to {MAX_LIMIT}"),
        )),
    }
}

fn after(value: &str) -> Result<String, ApiError> {
    if is_session_id(value) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(
            "after",
            "is not a session id (the previous page's next)",
        ))
    }
}

/// `RS` and 32 lowercase hex digits.
pub fn is_session_id(id: &str) -> bool {
    id.strip_prefix("RS").is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "RS0123456789abcdef0123456789abcdef";

    fn field_of(query: &str) -> String {
        match parse(Some(query)) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{query}: expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_every_parameter() {
        let none = parse(None).expect("valid");
        assert_eq!(
            (none.limit, none.after, none.filter),
            (50, None, Filter::default())
        );
        let all = parse(Some(&format!(
            "state=closed&address=%2B14155550001&limit=100&after={ID}"
        )));
        let all = all.expect("valid");
        assert_eq!(all.filter.state, Some(State::Closed));
        assert_eq!(all.filter.address.as_deref(), Some("+14155550001"));
        assert_eq!((all.limit, all.after.as_deref()), (100, Some(ID)));
    }

    #[test]
    fn an_unencoded_plus_is_taken_for_what_it_was() {
        let list = parse(Some("address=+14155550001")).expect("valid");
        assert_eq!(list.filter.address.as_deref(), Some("+14155550001"));
        let list = parse(Some("address=whatsapp:+14155550001")).expect("valid");
        assert_eq!(
            list.filter.address.as_deref(),
            Some("whatsapp:+14155550001")
        );
    }

    #[test]
    fn every_error_names_its_parameter() {
        for (query, field) in [
            ("state=gone", "state"),
            ("address=14155550001", "address"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=ten", "limit"),
            ("after=RS12", "after"),
            ("after=rs0123456789abcdef0123456789abcdef", "after"),
            ("state=open&state=closed", "state"),
            ("page=2", "page"),
        ] {
            assert_eq!(field_of(query), field, "{query}");
        }
        assert!(is_session_id(ID));
        assert!(!is_session_id(&ID.to_uppercase()));
    }
}
