//! Flows from files over signed HTTP (issue 10, "Must include" 4–6 and 9): the shipped survey,
//! booking and menu flows as Twilio would drive them — one cookie jar per (To, From) pair —
//! with retries to `on_fail`, expiry, interrupts, compliance (STOP, `OptOutType`, HELP), two
//! pairs at once, a flow edited and reloaded (SIGHUP) under a live conversation, a bad flow set
//! refused at start, the log line and metrics of a step, and hostile texts to a waiting ask.

mod common;
mod common_spawn;

use std::time::Duration;

use axum::body::Bytes;
use common::{Phone, SECRET, TOKEN, TestServer, text};
use common_spawn::{Server, TempDir, log_line, run_within};
use http_body_util::Full;
use hyper::Request;
use sms_sessions::client::http::{self, Reply};
use sms_sessions::twilio::twiml::MessagingResponse;

const ME: &str = "+14155550199";
const YOU: &str = "+14155550188";
const TWILIO: &str = "+14155550100";

/// The bytes of a reply with no message: what STOP gets.
const EMPTY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response />";

const INTRO: &str =
    "Thanks for visiting Smile Dental! Three quick questions (reply STOP to opt out).";
const RATING: &str = "How would you rate your visit, from 1 (poor) to 10 (great)?";
const RATING_RETRY: &str = "Please reply with a number from 1 to 10.";
const RECOMMEND: &str = "Would you recommend us to a friend? (yes/no)";
const COMMENT: &str = "Anything we could do better? Reply SKIP to finish.";
const CHOOSE: &str = "Smile Dental. Reply HOURS, WHERE, BOOK, or ask for a PERSON.";
const WELCOME: &str =
    "Smile Dental: let's book your visit. Reply BOOK to start over, STOP to opt out.";
const SERVICE: &str = "What is the visit for? Reply 1 Cleaning, 2 Check-up, 3 Tooth pain";
const DAY: &str = "Which day suits you? e.g. tomorrow, Tue or 3/14";
const HELP_REPLY: &str = "Smile Dental: help at (555) 010-0100. Reply STOP to opt out.";

/// The shipped flows' directory.
fn shipped_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/config/flows").to_owned()
}

/// The TwiML of one `<Message>` holding `parts`, separated by a blank line (text that needs no
/// escaping).
fn message(parts: &[&str]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
        parts.join("\n\n")
    )
}

#[track_caller]
fn assert_says(reply: &Reply, parts: &[&str]) {
    assert_eq!(reply.status, 200, "{}", text(reply));
    assert_eq!(text(reply), message(parts));
}

#[track_caller]
fn assert_silent(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", text(reply));
    assert_eq!(text(reply), EMPTY);
}

/// The in-process server running the shipped flows, plus `env`.
async fn shipped(env: &[(&str, &str)]) -> TestServer {
    let dir = shipped_dir();
    let mut all = env.to_vec();
    all.extend([
        ("SMS_SESSIONS_FLOW", "flows"),
        ("SMS_SESSIONS_FLOWS_DIR", dir.as_str()),
    ]);
    TestServer::start(&all).await
}

async fn get(url: &str) -> Reply {
    let request = Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    http::send(request).await.expect("server answers")
}

// ------------------------------------------------------------------------------ happy paths

#[tokio::test]
async fn the_survey_runs_to_its_end_over_signed_http_with_a_cookie_jar() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "survey").await, &[INTRO, RATING]);
    assert!(phone.cookie.is_some(), "the state rides in the cookie");
    assert_says(&phone.text(&server, "10").await, &[RECOMMEND]);
    assert_says(&phone.text(&server, "yes").await, &[COMMENT]);
    assert_says(
        &phone.text(&server, "Shorter wait please").await,
        &["Thank you! You rated us 10/10 and would recommend us."],
    );
    // The flow is over: the same text is now idle input, with no default flow configured.
    assert_silent(&phone.text(&server, "10").await);
}

#[tokio::test]
async fn a_low_rating_branches_to_an_apology_and_skip_ends_the_survey() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "Feedback").await, &[INTRO, RATING]);
    assert_says(
        &phone.text(&server, "I'd say 4").await,
        &["We're sorry it wasn't better.", RECOMMEND],
    );
    assert_says(&phone.text(&server, "nope").await, &[COMMENT]);
    assert_says(
        &phone.text(&server, "skip").await,
        &["Thank you! You rated us 4/10."],
    );
}

#[tokio::test]
async fn the_menu_is_the_default_flow_and_routes_by_words() {
    let server = shipped(&[("SMS_SESSIONS_FLOWS_DEFAULT", "menu")]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "good morning").await, &[CHOOSE]);
    assert_says(
        &phone.text(&server, "Hours please").await,
        &["We're open Mon-Fri 9am-5pm, closed weekends. Text MENU for more."],
    );
    assert_says(&phone.text(&server, "hi").await, &[CHOOSE]);
    assert_says(
        &phone.text(&server, "where are you").await,
        &["12 Main St, Springfield (parking behind the building). Text MENU for more."],
    );
}

#[tokio::test]
async fn without_a_default_flow_an_idle_text_gets_no_reply() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_silent(&phone.text(&server, "good morning").await);
    assert_says(&phone.text(&server, "MENU").await, &[CHOOSE]);
}

// ---------------------------------------------------------------------------------- retries

#[tokio::test]
async fn unusable_ratings_are_retried_and_the_third_goes_to_on_fail() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "survey").await, &[INTRO, RATING]);
    assert_says(&phone.text(&server, "great").await, &[RATING_RETRY, RATING]);
    assert_says(&phone.text(&server, "11").await, &[RATING_RETRY, RATING]);
    assert_says(
        &phone.text(&server, "zero").await,
        &["No problem, thanks anyway. Text SURVEY to start again."],
    );
    assert_silent(&phone.text(&server, "7").await);
}

#[tokio::test]
async fn each_ask_counts_its_own_attempts() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    phone.text(&server, "survey").await;
    assert_says(&phone.text(&server, "great").await, &[RATING_RETRY, RATING]);
    assert_says(&phone.text(&server, "8").await, &[RECOMMEND]);
    // The recommend ask counts its own attempts from zero: two misses are still retries.
    let retry = "Please reply yes or no.";
    assert_says(&phone.text(&server, "maybe").await, &[retry, RECOMMEND]);
    assert_says(&phone.text(&server, "perhaps").await, &[retry, RECOMMEND]);
    assert_says(
        &phone.text(&server, "dunno").await,
        &["No problem, thanks anyway. Text SURVEY to start again."],
    );
}

// ----------------------------------------------------------------------------------- expiry

const EXPIRING: &str = r#"
spec = 1
name = "quiz"
start = "question"
expire_after = "1s"
on_expire = "late"

[[triggers]]
keywords = ["QUIZ"]

[nodes.question]
type = "ask"
text = "Capital of France?"
save = "answer"
next = "done"

[nodes.done]
type = "end"
text = "You said {{ answer }}."

[nodes.late]
type = "say"
text = "Too slow! Again:"
next = "question"
"#;

const EXPIRING_QUIETLY: &str = r#"
spec = 1
name = "slow"
start = "question"
expire_after = "1s"

[[triggers]]
keywords = ["SLOW"]

[nodes.question]
type = "ask"
text = "Your name?"
save = "name"
next = "done"

[nodes.done]
type = "end"
text = "Hello {{ name }}."
"#;

const PONG: &str = r#"
spec = 1
name = "pong"
start = "pong"

[[triggers]]
keywords = ["PING"]

[nodes.pong]
type = "end"
text = "pong"
"#;

/// A server on a temp dir holding the three flows above.
async fn expiring() -> (TempDir, TestServer) {
    let dir = TempDir::new("expiry");
    dir.write("quiz.toml", EXPIRING);
    dir.write("slow.toml", EXPIRING_QUIETLY);
    dir.write("pong.toml", PONG);
    let path = dir.display();
    let server = TestServer::start(&[
        ("SMS_SESSIONS_FLOW", "flows"),
        ("SMS_SESSIONS_FLOWS_DIR", path.as_str()),
    ])
    .await;
    (dir, server)
}

#[tokio::test]
async fn a_reply_in_time_is_an_answer() {
    let (_dir, server) = expiring().await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "quiz").await, &["Capital of France?"]);
    assert_says(&phone.text(&server, "Paris").await, &["You said Paris."]);
}

#[tokio::test]
async fn a_late_reply_goes_to_on_expire_and_is_not_taken_as_the_answer() {
    let (_dir, server) = expiring().await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "quiz").await, &["Capital of France?"]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_says(
        &phone.text(&server, "Paris").await,
        &["Too slow! Again:", "Capital of France?"],
    );
    assert_says(&phone.text(&server, "Lyon").await, &["You said Lyon."]);
}

#[tokio::test]
async fn without_on_expire_a_late_text_is_idle_input_and_can_start_a_trigger() {
    let (_dir, server) = expiring().await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "slow").await, &["Your name?"]);
    let mut other = Phone::new(YOU, TWILIO);
    assert_says(&other.text(&server, "slow").await, &["Your name?"]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // "PING" would have been a fine name; late, it starts the pong flow instead.
    assert_says(&phone.text(&server, "PING").await, &["pong"]);
    // A late text that starts nothing gets nothing, and the old question is gone too.
    assert_silent(&other.text(&server, "Ana").await);
    assert_silent(&other.text(&server, "Ana").await);
}

// -------------------------------------------------------------------------------- interrupts

#[tokio::test]
async fn book_alone_restarts_a_booking_under_way() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "book").await, &[WELCOME, SERVICE]);
    assert_says(&phone.text(&server, "1").await, &[DAY]);
    assert_says(&phone.text(&server, "BOOK").await, &[WELCOME, SERVICE]);
    // Restarted from scratch: the service is asked again and the answer counts.
    assert_says(
        &phone.text(&server, "3").await,
        &["For tooth pain please call (555) 010-0100 now: we keep same-day slots for emergencies."],
    );
}

#[tokio::test]
async fn menu_alone_leaves_a_booking_for_the_menu() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "appt").await, &[WELCOME, SERVICE]);
    assert_says(&phone.text(&server, "Menu").await, &[CHOOSE]);
}

#[tokio::test]
async fn a_non_interrupt_keyword_mid_ask_is_taken_as_the_answer() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "survey").await, &[INTRO, RATING]);
    // SURVEY / FEEDBACK do not interrupt: to the rating ask it is just an unusable answer.
    assert_says(
        &phone.text(&server, "FEEDBACK").await,
        &[RATING_RETRY, RATING],
    );
    assert_says(&phone.text(&server, "8").await, &[RECOMMEND]);
    assert_says(&phone.text(&server, "yes").await, &[COMMENT]);
    assert_says(
        &phone.text(&server, "SURVEY").await,
        &["Thank you! You rated us 8/10 and would recommend us."],
    );
}

#[tokio::test]
async fn an_interrupt_keyword_inside_a_longer_text_is_an_answer() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    phone.text(&server, "survey").await;
    phone.text(&server, "8").await;
    phone.text(&server, "yes").await;
    assert_says(
        &phone.text(&server, "book online please").await,
        &["Thank you! You rated us 8/10 and would recommend us."],
    );
}

// ------------------------------------------------------------------------------- compliance

#[test]
fn the_empty_reply_is_the_twiml_writers_empty_response() {
    assert_eq!(MessagingResponse::new().to_xml(), EMPTY);
}

#[tokio::test]
async fn stop_mid_flow_answers_nothing_and_the_next_text_starts_fresh() {
    let server = shipped(&[("SMS_SESSIONS_FLOWS_DEFAULT", "menu")]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "survey").await, &[INTRO, RATING]);
    let stopped = phone.text(&server, "Stop").await;
    assert_silent(&stopped);
    assert_eq!(
        stopped.headers["content-type"], "text/xml; charset=utf-8",
        "still TwiML"
    );
    // Not the rating any more: an idle text, which starts the default flow.
    assert_says(&phone.text(&server, "10").await, &[CHOOSE]);
}

#[tokio::test]
async fn every_opt_out_word_ends_the_flow() {
    let server = shipped(&[]).await;
    for word in [
        "STOP",
        "stopall",
        "Unsubscribe",
        "cancel",
        "END",
        "quit",
        "revoke",
        " optout ",
    ] {
        let mut phone = Phone::new(ME, TWILIO);
        phone.text(&server, "survey").await;
        assert_silent(&phone.text(&server, word).await);
        assert_silent(&phone.text(&server, "10").await);
    }
}

#[tokio::test]
async fn opt_out_type_stop_ends_the_flow_whatever_the_body() {
    let server = shipped(&[("SMS_SESSIONS_FLOWS_DEFAULT", "menu")]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "survey").await, &[INTRO, RATING]);
    let stop = [("OptOutType", "STOP")];
    assert_silent(&phone.text_with(&server, "9 no more please", &stop).await);
    assert_says(&phone.text(&server, "9").await, &[CHOOSE]);
}

#[tokio::test]
async fn help_answers_the_help_reply_and_leaves_the_question_waiting() {
    let server = shipped(&[("SMS_SESSIONS_HELP_REPLY", HELP_REPLY)]).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_says(&phone.text(&server, "survey").await, &[INTRO, RATING]);
    assert_says(&phone.text(&server, "help").await, &[HELP_REPLY]);
    assert_says(&phone.text(&server, "INFO").await, &[HELP_REPLY]);
    let help = [("OptOutType", "HELP")];
    assert_says(
        &phone.text_with(&server, "what is this", &help).await,
        &[HELP_REPLY],
    );
    // Still the rating, and no attempt was used up by the help requests.
    assert_says(&phone.text(&server, "great").await, &[RATING_RETRY, RATING]);
    assert_says(&phone.text(&server, "11").await, &[RATING_RETRY, RATING]);
    assert_says(&phone.text(&server, "9").await, &[RECOMMEND]);
}

#[tokio::test]
async fn help_without_a_help_reply_is_silent_and_leaves_the_question_waiting() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    phone.text(&server, "survey").await;
    assert_silent(&phone.text(&server, "HELP").await);
    assert_says(&phone.text(&server, "9").await, &[RECOMMEND]);
}

#[tokio::test]
async fn yes_and_start_while_a_question_waits_are_answers() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    phone.text(&server, "survey").await;
    phone.text(&server, "9").await;
    assert_says(&phone.text(&server, "YES").await, &[COMMENT]);
    assert_says(
        &phone.text(&server, "START").await,
        &["Thank you! You rated us 9/10 and would recommend us."],
    );
}

// ------------------------------------------------------------------------------- two pairs

#[tokio::test]
async fn two_pairs_interleaved_stay_isolated() {
    let server = shipped(&[]).await;
    let mut ana = Phone::new(ME, TWILIO);
    let mut bo = Phone::new(YOU, TWILIO);
    assert_says(&ana.text(&server, "survey").await, &[INTRO, RATING]);
    assert_says(&bo.text(&server, "survey").await, &[INTRO, RATING]);
    assert_says(
        &ana.text(&server, "3").await,
        &["We're sorry it wasn't better.", RECOMMEND],
    );
    assert_says(&bo.text(&server, "10").await, &[RECOMMEND]);
    assert_says(&ana.text(&server, "no").await, &[COMMENT]);
    assert_says(&bo.text(&server, "yes").await, &[COMMENT]);
    // Ana opts out; Bo's survey goes on.
    assert_silent(&ana.text(&server, "STOP").await);
    assert_says(
        &bo.text(&server, "skip").await,
        &["Thank you! You rated us 10/10 and would recommend us."],
    );
    assert_says(&ana.text(&server, "book").await, &[WELCOME, SERVICE]);
    assert_silent(&bo.text(&server, "1").await);
}

#[tokio::test]
async fn one_pairs_cookie_does_not_carry_its_flow_to_another_pair() {
    let server = shipped(&[]).await;
    let mut ana = Phone::new(ME, TWILIO);
    ana.text(&server, "survey").await;
    let mut mallory = Phone::new(YOU, TWILIO);
    mallory.cookie = ana.cookie.clone();
    assert_silent(&mallory.text(&server, "10").await);
    assert_says(&ana.text(&server, "10").await, &[RECOMMEND]);
}

// ------------------------------------------------------------------------ hostile texts

/// Texts a phone can send, none of which may cost a 5xx.
fn hostile_texts() -> Vec<String> {
    vec![
        String::new(),
        " ".into(),
        "ab ".repeat(533) + "a", // 1,600 characters
        "🦷".repeat(1600),
        "👍🏽 5 ⭐️".into(),
        "\u{202E}مرحبا بكم\u{202C}".into(),
        "שלום 7".into(),
        "٣".into(),
        "١٠".into(),
        "\u{0}\u{1}\u{7}\u{8}\u{b}\u{1b}\u{7f}".into(),
        "a\u{0}5\r\n\t".into(),
        "\u{FEFF}\u{FFFE}\u{FFFF}".into(),
        "<Message>&amp;</Response>".into(),
        "{{ input }} {% for x in y %}".into(),
        "9".repeat(400),
        "-0".into(),
        "1e309".into(),
        "NaN".into(),
    ]
}

/// Asserts a 200 whose body is well-formed TwiML with exactly one non-empty `<Message>`.
#[track_caller]
fn assert_answered(reply: &Reply, sent: &str) {
    let body = text(reply);
    assert_eq!(reply.status, 200, "{sent:?} got {body}");
    let mut reader = quick_xml::Reader::from_str(&body);
    let mut messages = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(start)) if start.name().0 == "Message" => {
                messages += 1
            }
            Ok(_) => {}
            Err(error) => panic!("{sent:?} got ill-formed TwiML ({error}): {body}"),
        }
    }
    assert_eq!(messages, 1, "{sent:?} got {body}");
}

#[tokio::test]
async fn any_text_to_a_waiting_ask_gets_a_reply_or_a_retry_never_a_5xx() {
    let server = shipped(&[]).await;
    // (how to reach the ask, which ask).
    let asks: [&[&str]; 4] = [
        &["survey"],               // rating: integer 1–10
        &["survey", "10", "yes"],  // comment: any text
        &["menu"],                 // choose: word and pattern cases
        &["book", "clean", "wed"], // ask_time: a time
    ];
    for (n, texts) in hostile_texts().iter().enumerate() {
        for (a, path) in asks.iter().enumerate() {
            let from = format!("+1415555{:02}{:02}", n, a);
            let mut phone = Phone::new(&from, TWILIO);
            for step in *path {
                assert_eq!(phone.text(&server, step).await.status, 200);
            }
            assert_answered(&phone.text(&server, texts).await, texts);
        }
    }
}

#[tokio::test]
async fn a_long_answer_saved_by_the_flow_still_fits_the_cookie_and_is_answered() {
    let server = shipped(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    phone.text(&server, "survey").await;
    phone.text(&server, "10").await;
    phone.text(&server, "yes").await;
    let long = "ü".repeat(1600);
    assert_says(
        &phone.text(&server, &long).await,
        &["Thank you! You rated us 10/10 and would recommend us."],
    );
}

// ------------------------------------------------------------------ the real binary: env

fn spawn_env(dir: &str) -> Vec<(&str, &str)> {
    vec![
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
        ("SMS_SESSIONS_FLOW", "flows"),
        ("SMS_SESSIONS_FLOWS_DIR", dir),
        ("SMS_SESSIONS_LOG_FORMAT", "json"),
    ]
}

// --------------------------------------------------------------- edited under a conversation

const INTAKE_V1: &str = r#"
spec = 1
name = "intake"
start = "hello"

[[triggers]]
keywords = ["INTAKE"]

[nodes.hello]
type = "say"
text = "Intake v1."
next = "ask_name"

[nodes.ask_name]
type = "ask"
text = "Your name?"
save = "name"
next = "done"

[nodes.done]
type = "end"
text = "Thanks {{ name }}."
"#;

/// v1 with the waiting node renamed.
const INTAKE_V2: &str = r#"
spec = 1
name = "intake"
start = "hello"

[[triggers]]
keywords = ["INTAKE"]

[nodes.hello]
type = "say"
text = "Intake v2."
next = "ask_full_name"

[nodes.ask_full_name]
type = "ask"
text = "Your full name?"
save = "name"
next = "done"

[nodes.done]
type = "end"
text = "Thanks {{ name }}."
"#;

const BROKEN: &str = r#"
spec = 1
name = "broken"
start = "ask"

[[triggers]]
keywords = ["BROKEN"]

[nodes.ask]
type = "ask"
text = "Yes?"
next = "ghost"
"#;

#[tokio::test]
async fn a_flow_edited_under_a_live_conversation_restarts_it_after_sighup() {
    let dir = TempDir::new("reload");
    dir.write("intake.toml", INTAKE_V1);
    let path = dir.display();
    let mut server = Server::start(&spawn_env(&path));
    let url = server.url("/sms");
    let mut phone = Phone::new(ME, TWILIO);
    let mut other = Phone::new(YOU, TWILIO);
    assert_says(
        &phone.text_to(&url, "intake", &[]).await,
        &["Intake v1.", "Your name?"],
    );
    assert_says(
        &other.text_to(&url, "intake", &[]).await,
        &["Intake v1.", "Your name?"],
    );

    dir.write("intake.toml", INTAKE_V2);
    server.hangup();
    let reloaded = log_line(&mut server, "SIGHUP: flows reloaded");
    assert_eq!(reloaded["flows"], 1, "{reloaded}");
    assert_says(
        &phone.text_to(&url, "Ana", &[]).await,
        &[
            "We updated this service, so let's start over.",
            "Intake v2.",
            "Your full name?",
        ],
    );
    assert_says(
        &phone.text_to(&url, "Ana Lima", &[]).await,
        &["Thanks Ana Lima."],
    );

    // A broken set is refused whole; the old one keeps answering.
    dir.write("broken.toml", BROKEN);
    server.hangup();
    let refused = log_line(&mut server, "SIGHUP: flows not reloaded");
    let problem = refused["problem"].as_str().unwrap_or_default();
    assert!(
        problem.contains("broken.toml")
            && problem.contains("node ask")
            && problem.contains("ghost"),
        "{refused}"
    );
    assert_says(
        &other.text_to(&url, "Bo", &[]).await,
        &[
            "We updated this service, so let's start over.",
            "Intake v2.",
            "Your full name?",
        ],
    );
    assert_silent(&phone.text_to(&url, "BROKEN", &[]).await);
    assert_says(
        &phone.text_to(&url, "intake", &[]).await,
        &["Intake v2.", "Your full name?"],
    );
    let finished = server.stop();
    assert!(finished.status.success(), "{:?}", finished.status);
}

// ---------------------------------------------------------------------- refused at start

/// Three broken files: a dangling route, an unknown test, a template that does not compile.
fn broken_dir() -> TempDir {
    let dir = TempDir::new("broken");
    dir.write("dangling.toml", BROKEN);
    dir.write(
        "colour.toml",
        r#"spec = 1
name = "colour"
start = "ask"

[nodes.ask]
type = "ask"
text = "Colour?"
cases = [ { test = "has_colour", args = ["red"], next = "done" } ]

[nodes.done]
type = "end"
"#,
    );
    dir.write(
        "greeting.toml",
        r#"spec = 1
name = "greeting"
start = "greet"

[nodes.greet]
type = "end"
text = "Hello {{ name "
"#,
    );
    dir.write("pong.toml", PONG);
    dir
}

#[track_caller]
fn assert_names_every_problem(stderr: &str, dir: &TempDir) {
    let at = |file: &str, rest: &str| format!("{}/{file}:{rest}", dir.display());
    for (file, line, node, reason) in [
        ("dangling.toml", "12:1", "ask", "no node named \"ghost\""),
        ("colour.toml", "8:13", "ask", "unknown test \"has_colour\""),
        ("greeting.toml", "7:1", "greet", "template does not compile"),
    ] {
        let wanted = at(file, &format!("{line}: node {node}: "));
        let found = stderr
            .lines()
            .any(|l| l.contains(&wanted) && l.contains(reason));
        assert!(found, "no {wanted}…{reason} in\n{stderr}");
    }
    assert!(!stderr.contains("pong.toml"), "a good file is no problem");
}

#[test]
fn a_bad_flow_dir_refuses_the_start_naming_every_problem() {
    let dir = broken_dir();
    let path = dir.display();
    let mut env = spawn_env(&path);
    env.push(("SMS_SESSIONS_LISTEN", "127.0.0.1:0"));
    let run = run_within(&["serve"], &env, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("3 problems"), "{stderr}");
    assert_names_every_problem(&stderr, &dir);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(!stdout.contains("listening"), "{stdout}");
}

#[test]
fn check_config_checks_the_flows_too() {
    let dir = broken_dir();
    let path = dir.display();
    let run = run_within(
        &["check-config"],
        &spawn_env(&path),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "stderr:\n{stderr}");
    assert_names_every_problem(&stderr, &dir);

    let good = shipped_dir();
    let run = run_within(
        &["check-config"],
        &spawn_env(&good),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "stderr:\n{stderr}");
}

#[test]
fn a_default_flow_no_file_defines_refuses_the_start() {
    let good = shipped_dir();
    let mut env = spawn_env(&good);
    env.extend([
        ("SMS_SESSIONS_FLOWS_DEFAULT", "menus"),
        ("SMS_SESSIONS_LISTEN", "127.0.0.1:0"),
    ]);
    let run = run_within(&["serve"], &env, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("\"menus\""), "{stderr}");
}

// ------------------------------------------------------------------ the log line, metrics

#[tokio::test]
async fn the_webhook_log_line_carries_flow_node_and_step_but_no_text_and_metrics_count_steps() {
    let good = shipped_dir();
    let mut server = Server::start(&spawn_env(&good));
    let url = server.url("/sms");
    let mut phone = Phone::new(ME, TWILIO);
    let secret_comment = "zebra crossing 7731 at my house";
    assert_says(&phone.text_to(&url, "survey", &[]).await, &[INTRO, RATING]);
    assert_says(
        &phone.text_to(&url, "great", &[]).await,
        &[RATING_RETRY, RATING],
    );
    assert_says(&phone.text_to(&url, "10", &[]).await, &[RECOMMEND]);
    assert_says(&phone.text_to(&url, "yes", &[]).await, &[COMMENT]);
    phone.text_to(&url, secret_comment, &[]).await;

    let expected = [
        ("rating", "started"),
        ("rating", "retried"),
        ("recommend", "answered"),
        ("comment", "answered"),
        ("done", "answered"),
    ];
    for (node, step) in expected {
        let line = log_line(&mut server, "webhook");
        assert_eq!(line["flow"], "survey", "{line}");
        assert_eq!(line["node"], node, "{line}");
        assert_eq!(line["step"], step, "{line}");
    }

    let scrape = get(&server.url("/metrics")).await;
    assert_eq!(scrape.status, 200);
    let metrics = text(&scrape);
    for (node, outcome) in expected {
        let line = format!(
            "sms_sessions_flow_steps_total{{flow=\"survey\",node=\"{node}\",outcome=\"{outcome}\"}} 1"
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }

    let finished = server.stop();
    let all = finished.stdout.join("\n") + &finished.stderr;
    for text in [
        secret_comment,
        "zebra",
        "great",
        "How would you rate",
        "Thank you! You rated",
    ] {
        assert!(!all.contains(text), "{text:?} reached the log:\n{all}");
    }
}

#[tokio::test]
async fn opt_out_and_help_steps_are_logged_with_the_flow_they_touched() {
    let good = shipped_dir();
    let mut server = Server::start(&spawn_env(&good));
    let url = server.url("/sms");
    let mut phone = Phone::new(ME, TWILIO);
    phone.text_to(&url, "survey", &[]).await;
    assert_silent(&phone.text_to(&url, "help", &[]).await);
    assert_silent(&phone.text_to(&url, "stop", &[]).await);
    log_line(&mut server, "webhook");
    let help = log_line(&mut server, "webhook");
    assert_eq!(help["flow"], "survey", "{help}");
    assert_eq!(help["node"], "rating", "{help}");
    assert_eq!(help["step"], "help", "{help}");
    let stop = log_line(&mut server, "webhook");
    assert_eq!(stop["flow"], "survey", "{stop}");
    assert_eq!(stop["step"], "opted_out", "{stop}");
    assert!(server.is_running());
}
