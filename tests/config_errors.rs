//! What `check-config` and `serve` tell an operator about a configuration. A broken `--config
//! FILE`: exit 2 with an error naming the file, the key, the line and the column, and no piece
//! of a secret on stdout or stderr (a container's log is often readable by more people than its
//! secrets). A risky one: the real exposure, and a warning.

mod common_spawn;

use std::path::PathBuf;
use std::process::Output;

/// A Twilio-style token: 4-character pieces of it appear in no message, path or number.
const TOKEN: &str = "Qz7xKpWvBmRtYhNjLcFgDsXaEuTiOyPw";
/// A session secret of the same kind.
const SECRET: &str = "hGfDsAzXcVbNmLkJpOiUyTrEwQaSdFgH";

/// A scratch file under the temp dir, in a directory named with letters only (so no digit of
/// a numeric secret can match a piece of the path); removed on drop.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let letters: String = format!("{}{nanos}", std::process::id())
            .bytes()
            .map(|digit| char::from(b'a' + (digit - b'0')))
            .collect();
        let dir = std::env::temp_dir().join(format!("sms-sessions-config-errors-{letters}"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write config file");
        Self { dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `check-config` and `serve` with `--config FILE` and an empty environment.
fn both_commands(file: &TempFile) -> [(&'static str, Output); 2] {
    ["check-config", "serve"].map(|command| {
        let output = common_spawn::run(&[command, "--config", file.path()], &[]);
        (command, output)
    })
}

/// No 4-character piece of `secret` in `shown`.
#[track_caller]
fn assert_no_piece_of(secret: &str, shown: &str) {
    for piece in secret.as_bytes().windows(4) {
        let piece = std::str::from_utf8(piece).expect("ASCII secret");
        assert!(
            !shown.contains(piece),
            "{piece:?} of the secret in:\n{shown}"
        );
    }
}

/// Both commands refuse `text` with exit 2, naming `FILE:LINE:COLUMN` and `key`, and show no
/// piece of `secret`.
#[track_caller]
fn assert_refused_without_echo(text: &str, key: &str, line_column: &str, secret: &str) {
    let file = TempFile::new("sms-sessions.toml", text);
    for (command, output) in both_commands(&file) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_no_piece_of(secret, &stderr);
        assert_no_piece_of(secret, &stdout);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        let at = format!("{}:{line_column}: ", file.path());
        assert!(stderr.contains(&at), "{command}: no {at:?} in {stderr}");
        assert!(
            stderr.contains(&format!("{line_column}: {key}: ")),
            "{command}: no key {key} in {stderr}"
        );
    }
}

#[test]
fn an_unterminated_string_holding_the_token_is_not_quoted() {
    let text = format!("[twilio]\nauth_token = \"{TOKEN}\n\n[session]\nttl = \"4h\"\n");
    assert_refused_without_echo(&text, "twilio.auth_token", "2:47", TOKEN);
    let literal = format!("[twilio]\nauth_token = '{TOKEN}\n");
    assert_refused_without_echo(&literal, "twilio.auth_token", "2:47", TOKEN);
}

#[test]
fn garbage_after_the_token_is_not_quoted() {
    let text = format!("[twilio]\nauth_token = \"{TOKEN}\" and then some\n");
    assert_refused_without_echo(&text, "twilio.auth_token", "2:49", TOKEN);
    let next_line = format!("[twilio]\nauth_token = \"{TOKEN}\"\nvalidate_signatures = tru\n");
    assert_refused_without_echo(&next_line, "twilio.validate_signatures", "3:23", TOKEN);
}

#[test]
fn a_secret_of_the_wrong_type_is_not_quoted() {
    let number = "123456789012345678";
    let text = format!("[twilio]\nauth_token = {number}\n");
    assert_refused_without_echo(&text, "twilio.auth_token", "2:14", number);
    let array = format!("[session]\nsecret = [\"{SECRET}\"]\n");
    assert_refused_without_echo(&array, "session.secret", "2:10", SECRET);
    let table = format!("[session]\nsecret = {{ value = \"{SECRET}\" }}\n");
    assert_refused_without_echo(&table, "session.secret", "2:10", SECRET);
    let misplaced = format!("[twilio]\nvalidate_signatures = \"{TOKEN}\"\n");
    assert_refused_without_echo(&misplaced, "twilio.validate_signatures", "2:23", TOKEN);
}

#[test]
fn a_too_long_number_as_a_secret_is_not_quoted() {
    let i128_sized = "98765432109876543210987654321098";
    let text = format!("[twilio]\nsecondary_auth_token = {i128_sized}\n");
    assert_refused_without_echo(&text, "twilio.secondary_auth_token", "2:24", i128_sized);
    let overflowing = "9876543210987654321098765432109876543210987";
    let text = format!("[session]\nsecret = {overflowing}\n");
    assert_refused_without_echo(&text, "session.secret", "2:10", overflowing);
}

#[test]
fn a_secret_alone_on_a_line_is_placed_but_not_quoted() {
    let file = TempFile::new("bare.toml", &format!("[twilio]\n{TOKEN}\n"));
    for (command, output) in both_commands(&file) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("{}:2:", file.path())),
            "{command}: {stderr}"
        );
        assert_no_piece_of(TOKEN, &stderr);
    }
}

#[test]
fn short_secrets_from_the_environment_and_its_files_are_named_not_quoted() {
    let short = "WvBmRtYhNjLc";
    let file = TempFile::new("previous", &format!("{SECRET}\n{short}\n"));
    let cases = [
        ("SMS_SESSIONS_SECRET", short, "session.secret"),
        (
            "SMS_SESSIONS_SECRET_PREVIOUS",
            short,
            "session.previous_secrets",
        ),
        (
            "SMS_SESSIONS_SECRET_PREVIOUS_FILE",
            file.path(),
            "session.previous_secrets",
        ),
    ];
    for (name, value, key) in cases {
        let output = common_spawn::run(&["check-config"], &[(name, value)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_no_piece_of(short, &stderr);
        assert_no_piece_of(SECRET, &stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(&format!("{key}: is 12 bytes")), "{stderr}");
    }
}

#[test]
fn check_config_with_validation_off_stays_on_loopback_and_says_so() {
    let off = ("SMS_SESSIONS_VALIDATE_SIGNATURES", "false");
    let output = common_spawn::run(&["check-config"], &[off]);
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(shown.contains("\nlisten = \"127.0.0.1:8080\"\n"), "{shown}");
    assert!(
        shown.contains("#   listen:   127.0.0.1:8080, this machine only (loopback)\n"),
        "{shown}"
    );
    assert!(
        shown.contains("#   webhooks: NOT checked, token: NONE"),
        "{shown}"
    );
    assert!(output.stderr.is_empty(), "{output:?}");

    let public = [off, ("SMS_SESSIONS_LISTEN", "0.0.0.0:8080")];
    let output = common_spawn::run(&["check-config"], &public);
    let shown = String::from_utf8_lossy(&output.stdout);
    let warned = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{output:?}");
    assert!(
        shown.contains("0.0.0.0:8080, REACHABLE FROM OTHER MACHINES"),
        "{shown}"
    );
    assert!(
        warned.contains("warning: UNSIGNED WEBHOOKS ARE ACCEPTED FROM THE NETWORK"),
        "{warned}"
    );
}
