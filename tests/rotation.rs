//! Session-secret rotation (issue 6): `session.previous_secrets` /
//! `SMS_SESSIONS_SECRET_PREVIOUS` (comma-separated) still verify old cookies, replies re-sign
//! with the current secret, and a live conversation survives a restart with a rotated secret.
//! Secrets under 32 bytes are refused at start naming the key; running without one warns.

mod common;
mod common_spawn;

use std::time::Duration;

use common::{Phone, TOKEN, TestServer, message_text};
use sms_sessions::app::AppState;
use sms_sessions::config::Config;
use sms_sessions::routes::sms::unix_now;
use sms_sessions::session::{Outcome, Pair, SessionCodec, SessionSecret};

const ME: &str = "+14155550199";
const TWILIO: &str = "+14155550100";
const OLD: &str = "old-session-secret-0123456789abcdef";
const OLDER: &str = "older-session-secret-0123456789abcd";
const NEW: &str = "new-session-secret-0123456789abcdef";

fn reply_number(n: u32) -> String {
    format!("Hello, thanks for message number {n}")
}

/// How `secret` alone judges the phone's current cookie.
fn judged_by(secret: &str, phone: &Phone) -> Outcome {
    let secret = SessionSecret::new(secret).expect("32+ bytes");
    let codec = SessionCodec::new("sms_session", Duration::from_secs(4 * 3600), &secret, &[]);
    let cookie = phone.cookie.as_deref().expect("a cookie");
    let pair = Pair {
        to: TWILIO,
        from: ME,
    };
    codec.load([cookie], pair, unix_now()).1
}

/// A server configured from the environment as in production, with these secrets.
/// (Built here rather than with `TestServer::start`, whose own test secret would win.)
async fn server_with(secret: &str, previous: &str) -> TestServer {
    let mut env = vec![
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", secret),
    ];
    if !previous.is_empty() {
        env.push(("SMS_SESSIONS_SECRET_PREVIOUS", previous));
    }
    let config = Config::load(None, env.as_slice()).expect("valid config");
    TestServer::with_state(AppState::new(config).expect("the test flows load")).await
}

#[tokio::test]
async fn a_live_conversation_survives_restarts_through_a_secret_rotation() {
    let mut phone = Phone::new(ME, TWILIO);

    // Before: OLD is the secret.
    let before = server_with(OLD, "").await;
    phone.text(&before, "one").await;
    assert_eq!(
        message_text(&phone.text(&before, "two").await),
        reply_number(2)
    );
    assert_eq!(judged_by(OLD, &phone), Outcome::Resumed);
    before.stop().await.expect("clean shutdown");
    let old_cookie = phone.cookie.clone();

    // Restart with NEW, OLD kept as previous: the conversation goes on, re-signed with NEW.
    let rotating = server_with(NEW, OLD).await;
    assert_eq!(
        message_text(&phone.text(&rotating, "three").await),
        reply_number(3)
    );
    assert_eq!(judged_by(NEW, &phone), Outcome::Resumed);
    assert!(matches!(judged_by(OLD, &phone), Outcome::Rejected(_)));
    rotating.stop().await.expect("clean shutdown");

    // Restart with NEW alone: still going, because the last reply was signed with NEW.
    let after = server_with(NEW, "").await;
    assert_eq!(
        message_text(&phone.text(&after, "four").await),
        reply_number(4)
    );

    // A phone that stayed silent through the rotation window starts over.
    let mut silent = Phone::new(ME, TWILIO);
    silent.cookie = old_cookie;
    assert_eq!(
        message_text(&silent.text(&after, "back").await),
        "Hello, thanks for the new message."
    );
}

#[tokio::test]
async fn every_secret_of_a_comma_separated_previous_list_verifies() {
    let mut by_older = Phone::new(ME, TWILIO);
    let mut by_old = Phone::new(ME, TWILIO);
    let first = server_with(OLDER, "").await;
    by_older.text(&first, "1").await;
    let second = server_with(OLD, "").await;
    by_old.text(&second, "1").await;

    let rotated = server_with(NEW, &format!(" {OLD} ,{OLDER},, ")).await;
    assert_eq!(
        message_text(&by_older.text(&rotated, "2").await),
        reply_number(2)
    );
    assert_eq!(
        message_text(&by_old.text(&rotated, "2").await),
        reply_number(2)
    );
    assert_eq!(judged_by(NEW, &by_older), Outcome::Resumed);
}

#[test]
fn previous_secrets_load_from_a_config_file_and_env_replaces_them() {
    let path =
        std::env::temp_dir().join(format!("sms-sessions-rotation-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        format!("[session]\nsecret = \"{NEW}\"\nprevious_secrets = [\"{OLD}\", \"{OLDER}\"]\n"),
    )
    .expect("write config");
    let from_file = Config::load(Some(&path), &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    let env = [
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET_PREVIOUS", OLD),
    ];
    let overridden = Config::load(Some(&path), &env);
    let _ = std::fs::remove_file(&path);
    assert_eq!(from_file.expect("valid").session.previous_secrets.len(), 2);
    assert_eq!(overridden.expect("valid").session.previous_secrets.len(), 1);
}

#[test]
fn secrets_under_32_bytes_are_refused_naming_the_key() {
    let with = |name: &'static str, value: &'static str| {
        Config::load(None, &[("TWILIO_AUTH_TOKEN", TOKEN), (name, value)])
    };
    let thirty_one = "0123456789abcdef0123456789abcde";
    let thirty_two = "0123456789abcdef0123456789abcdef";
    let short = with("SMS_SESSIONS_SECRET", thirty_one).expect_err("31 bytes");
    assert_eq!(short.key, "session.secret");
    assert_eq!(
        short.message,
        "is 31 bytes; at least 32 are required (try: openssl rand -hex 32)"
    );
    assert!(with("SMS_SESSIONS_SECRET", thirty_two).is_ok());
    let previous = with("SMS_SESSIONS_SECRET_PREVIOUS", "short").expect_err("5 bytes");
    assert_eq!(previous.key, "session.previous_secrets");
    let mixed = format!("{thirty_two},{thirty_one}");
    let mixed = Config::load(
        None,
        &[
            ("TWILIO_AUTH_TOKEN", TOKEN),
            ("SMS_SESSIONS_SECRET_PREVIOUS", mixed.as_str()),
        ],
    );
    assert_eq!(
        mixed.expect_err("one short").key,
        "session.previous_secrets"
    );
}

#[test]
fn the_binary_refuses_to_start_with_a_short_secret() {
    let output = common_spawn::run(
        &["serve"],
        &[
            ("TWILIO_AUTH_TOKEN", TOKEN),
            ("SMS_SESSIONS_LISTEN", "127.0.0.1:0"),
            ("SMS_SESSIONS_SECRET", "too-short"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "sms-sessions: invalid configuration: session.secret: is 9 bytes; at least 32 are \
         required (try: openssl rand -hex 32)\n"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("too-short"),
        "the refused secret is not echoed"
    );
}

#[test]
fn without_a_secret_the_binary_warns_that_conversations_die_with_the_process() {
    let server = common_spawn::Server::start(&[("TWILIO_AUTH_TOKEN", TOKEN)]);
    let warning = server
        .seen()
        .iter()
        .find(|line| line.contains("SMS_SESSIONS_SECRET"))
        .cloned()
        .unwrap_or_else(|| panic!("no warning before listening: {:?}", server.seen()));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("random per-process cookie key"),
        "{warning}"
    );
    let finished = server.stop();
    assert!(finished.status.success(), "{:?}", finished.status);
}
