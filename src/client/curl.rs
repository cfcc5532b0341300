//! A copy-pasteable `curl` command for a signed webhook, for `sign --curl`.
//!
//! The command is one line, and every argument is single-quoted for POSIX shells (a `'`
//! becomes `'\''`), so any UTF-8 survives the paste. Each field is sent readably with
//! `--data-urlencode 'NAME=VALUE'`: curl encodes VALUE but expects NAME already encoded, so
//! the name is form-encoded here (which also removes any `=` or `@` curl would read
//! specially). Two kinds of field go pre-encoded with `--data` instead: an empty name
//! (`=VALUE` would mean "VALUE alone" to curl), and a value with control characters such as
//! a newline, which would break the line.

/// The command that POSTs `params` to `url` with `signature`.
pub fn command(url: &str, signature: &str, params: &[(String, String)]) -> String {
    let mut words = vec![
        "curl".to_owned(),
        "-sS".to_owned(),
        quote(url),
        "-H".to_owned(),
        quote(&format!("X-Twilio-Signature: {signature}")),
        "-H".to_owned(),
        quote("Content-Type: application/x-www-form-urlencoded"),
    ];
    for (name, value) in params {
        words.extend(field(name, value));
    }
    if params.is_empty() {
        // Still a form POST, with an empty body.
        words.extend(["--data".to_owned(), quote("")]);
    }
    words.join(" ")
}

fn field(name: &str, value: &str) -> [String; 2] {
    if name.is_empty() || value.chars().any(char::is_control) {
        let encoded = format!("{}={}", encode(name), encode(value));
        ["--data".to_owned(), quote(&encoded)]
    } else {
        let argument = format!("{}={value}", encode(name));
        ["--data-urlencode".to_owned(), quote(&argument)]
    }
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `text` as one POSIX shell word.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn quotes_survive_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn names_are_encoded_values_left_to_curl() {
        let params = pairs(&[
            ("Body", "a b'c"),
            ("K@y=", "x"),
            ("", "=&"),
            ("N", "1\r\n2"),
        ]);
        assert_eq!(
            command("http://h/sms?a=1", "sig=", &params),
            "curl -sS 'http://h/sms?a=1' -H 'X-Twilio-Signature: sig=' \
             -H 'Content-Type: application/x-www-form-urlencoded' \
             --data-urlencode 'Body=a b'\\''c' --data-urlencode 'K%40y%3D=x' --data '=%3D%26' \
             --data 'N=1%0D%0A2'"
        );
    }

    #[test]
    fn no_params_is_still_a_post() {
        assert!(command("http://h/sms", "s", &[]).ends_with("--data ''"));
    }
}
