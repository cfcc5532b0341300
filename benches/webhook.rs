//! `cargo bench`: the pure core and the whole router on the realistic payloads of
//! `tests/data/payloads/` (signed for `https://example.com/twilio/sms` with token `12345`).
//!
//! The `router` benchmarks run without a tracing subscriber; the last group, `router_logged`,
//! installs the server's batched info-level text log (run with stdout to /dev/null) and so
//! adds what the request span and log line cost in user space. `examples/load` measures the
//! whole server, kernel included. Like the binary, the benchmarks use mimalloc.

use std::hint::black_box;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, header};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http_body_util::BodyExt;
use sms_sessions::app::{AppState, service};
use sms_sessions::config::Config;
use sms_sessions::flows::{Counter, Flow};
use sms_sessions::front::Front;
use sms_sessions::session::{Pair, SessionCodec, SessionData, SessionSecret};
use sms_sessions::twilio::form::FormPairs;
use sms_sessions::twilio::inbound::InboundMessage;
use sms_sessions::twilio::signature::{self, AuthToken, Payload};
use sms_sessions::twilio::twiml::MessagingResponse;
use tower::ServiceExt;

/// The allocator the binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const URL: &str = "https://example.com/twilio/sms";
const TOKEN: &str = "12345";
const SECRET: &str = "bench-session-secret-0123456789abcdef";
const NOW: u64 = 1_760_000_000;
/// Name, body, and the X-Twilio-Signature from `tests/data/payloads/README.md`.
const PAYLOADS: [(&str, &str, &str); 3] = [
    (
        "sms",
        include_str!("../tests/data/payloads/sms.form"),
        "a74ahYrMXICqsrVj4faR9MzNCNQ=",
    ),
    (
        "mms",
        include_str!("../tests/data/payloads/mms.form"),
        "UMSZ64U69pzWJjpvxW/Noqxpdlo=",
    ),
    (
        "whatsapp",
        include_str!("../tests/data/payloads/whatsapp.form"),
        "8oY+CIPAR6tdVdcNPHd3xx/givI=",
    ),
];

fn form(payload: &str) -> &str {
    payload.trim_end()
}

fn pairs(payload: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(form(payload).as_bytes())
        .into_owned()
        .collect()
}

fn signature_verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("signature");
    let tokens = [AuthToken::new(TOKEN).expect("non-empty")];
    for (name, payload, header) in PAYLOADS {
        let pairs = pairs(payload);
        group.bench_function(format!("verify/{name}"), |b| {
            b.iter(|| {
                signature::verify(&tokens, black_box(URL), Payload::Form(&pairs), header)
                    .expect("valid")
            })
        });
        group.bench_function(format!("decode_form+verify/{name}"), |b| {
            b.iter(|| {
                let form = FormPairs::parse(black_box(form(payload)).as_bytes());
                let pairs = form.to_vec();
                signature::verify(&tokens, URL, Payload::Form(&pairs), header).expect("valid")
            })
        });
    }
    group.finish();
}

fn form_decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("form");
    for (name, payload, _) in PAYLOADS {
        group.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| FormPairs::parse(black_box(form(payload)).as_bytes()))
        });
    }
    group.finish();
}

fn cookie_round_trip(c: &mut Criterion) {
    let secret = SessionSecret::new(SECRET).expect("long enough");
    let codec = SessionCodec::new("sms_session", Duration::from_secs(4 * 3600), &secret, &[]);
    let pairs = pairs(PAYLOADS[0].1);
    let message = InboundMessage::from_pairs(&pairs).expect("valid");
    let pair = Pair {
        to: message.to,
        from: message.from,
    };
    let mut data = SessionData::default();
    data.set("count", 41);
    let value = codec.encode(&data, pair, NOW).expect("fits");
    c.bench_function("session/decode+encode", |b| {
        b.iter(|| {
            let mut data = codec.decode(black_box(&value), pair, NOW).expect("valid");
            data.set("count", 42);
            codec.encode(&data, pair, NOW).expect("fits")
        })
    });
}

fn twiml_rendering(c: &mut Criterion) {
    let pairs = pairs(PAYLOADS[0].1);
    let message = InboundMessage::from_pairs(&pairs).expect("valid");
    let mut state = SessionData::default();
    state.set("count", 41);
    c.bench_function("twiml/counter_reply", |b| {
        b.iter(|| {
            let mut state = state.clone();
            let reply = Counter
                .reply(black_box(&message), &mut state)
                .now_or_never();
            reply.expect("the counter never waits").to_xml()
        })
    });
    let mut rich = MessagingResponse::new();
    rich.message("Two pics & a <caption>, thanks!")
        .to("+14155550199")
        .status_callback("https://example.com/twilio/sms/status?a=1&b=2");
    for i in 0..2 {
        let url =
            format!("https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME{i}");
        rich.message("").media(url).expect("within the limit");
    }
    c.bench_function("twiml/message_with_media", |b| {
        b.iter(|| black_box(&rich).to_xml())
    });
}

fn app() -> Front {
    let env = [
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
        ("SMS_SESSIONS_PUBLIC_URL", "https://example.com/twilio"),
    ];
    let config = Config::load(None, &env).expect("valid configuration");
    service(AppState::new(config).expect("the test flows load"))
}

fn webhook(payload: &'static str, signature: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/sms")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::USER_AGENT, "TwilioProxy/1.1")
        .header("x-twilio-signature", signature);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let body = Body::from(Bytes::from_static(form(payload).as_bytes()));
    request.body(body).expect("valid request")
}

/// Sends one webhook through the router; returns the status and the `name=value` cookie.
async fn send(app: &Front, request: Request<Body>) -> (u16, Option<String>) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let _ = response.into_body().collect().await;
    (status, cookie)
}

fn full_router(c: &mut Criterion) {
    bench_router(c, "router", true);
}

/// `router/resumed_session` again with the server's info logging on (stdout batched, so run
/// with stdout redirected: `cargo bench -- router_logged > /dev/null`).
fn full_router_logged(c: &mut Criterion) {
    sms_sessions::logging::init_batched(sms_sessions::config::LogFormat::Text);
    bench_router(c, "router_logged", false);
}

/// Each payload's first webhook opens a session; then the payload is sent again with that
/// session's cookie (`resumed_session`) and, with `new_sessions`, without one (`new_session`).
fn bench_router(c: &mut Criterion, group: &str, new_sessions: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let app = app();
    let mut group = c.benchmark_group(group);
    for (name, payload, signature) in PAYLOADS {
        let first = runtime.block_on(send(&app, webhook(payload, signature, None)));
        assert_eq!(first.0, 200, "the {name} payload is accepted");
        let cookie = first.1.expect("a session cookie");
        if new_sessions {
            group.bench_function(format!("new_session/{name}"), |b| {
                b.iter(|| runtime.block_on(send(&app, webhook(payload, signature, None))))
            });
        }
        group.bench_function(format!("resumed_session/{name}"), |b| {
            b.iter(|| runtime.block_on(send(&app, webhook(payload, signature, Some(&cookie)))))
        });
    }
    group.finish();
}

/// The flow engine: one step at a realistic `ask` of the shipped flows (booking: cases, then a
/// plain question; a typed `date`, then a question templated with the `date` filter; survey: a
/// typed number, then a branch on a template), and loading and checking 100 flow files.
fn flow_engine(c: &mut Criterion) {
    use sms_sessions::flows::engine::load::{LoadOptions, SourceFile, build};
    use sms_sessions::flows::engine::routing::Compiled;
    use sms_sessions::flows::engine::run::{Inbound, Settings, step_offline};

    let booking = include_str!("../config/flows/booking.toml");
    let source = |name: &str, text: &str| SourceFile {
        file: format!("{name}.toml"),
        text: text.to_owned(),
    };
    let options = LoadOptions::default();
    let set = build(&[source("booking", booking)], &options, &Compiled).expect("the booking flow");
    let settings = Settings::default();
    let now: jiff::Timestamp = "2026-03-09T14:00:00Z".parse().expect("timestamp");
    let inbound = |text| Inbound {
        text,
        from: "+14155550199",
        to: "+14155550100",
        opt_out_type: None,
        message_sid: "SM00000000000000000000000000000001",
        now,
    };
    // The state waiting at each ask, reached by the texts a person would send.
    let mut waiting = Vec::new();
    let mut state = SessionData::default();
    for (text, node) in [
        ("book", "ask_service"),
        ("a cleaning please", "ask_day"),
        ("tue", "ask_time"),
    ] {
        step_offline(&set, &settings, &inbound(text), &mut state);
        assert_eq!(state.get("_n"), Some(node), "after {text:?}");
        waiting.push(state.clone());
    }
    let mut group = c.benchmark_group("flow");
    // The state is copied outside the timing: a webhook decodes it from the cookie (measured
    // by `session/decode+encode`), it does not clone it.
    let small = criterion::BatchSize::SmallInput;
    group.bench_function("step/ask_with_cases", |b| {
        b.iter_batched(
            || waiting[0].clone(),
            |mut state| step_offline(&set, &settings, &inbound("a cleaning please"), &mut state),
            small,
        )
    });
    group.bench_function("step/ask_date_then_templated_question", |b| {
        b.iter_batched(
            || waiting[1].clone(),
            |mut state| step_offline(&set, &settings, &inbound("tue"), &mut state),
            small,
        )
    });
    // The survey's rating: a typed ask, then a branch on a template with number cases, a set,
    // and the next question.
    let survey = include_str!("../config/flows/survey.toml");
    let survey = build(&[source("survey", survey)], &options, &Compiled).expect("the survey");
    let mut at_rating = SessionData::default();
    step_offline(&survey, &settings, &inbound("survey"), &mut at_rating);
    assert_eq!(at_rating.get("_n"), Some("rating"));
    group.bench_function("step/ask_then_templated_branch", |b| {
        b.iter_batched(
            || at_rating.clone(),
            |mut state| step_offline(&survey, &settings, &inbound("10"), &mut state),
            small,
        )
    });
    let hundred: Vec<SourceFile> = (0..100)
        .map(|i| {
            let text = booking
                .replace("name = \"booking\"", &format!("name = \"booking{i}\""))
                .replace("[\"BOOK\", \"APPT\"]", &format!("[\"BOOK{i}\"]"));
            source(&format!("booking{i}"), &text)
        })
        .collect();
    group.bench_function("load_and_check_100_files", |b| {
        b.iter(|| black_box(build(&hundred, &options, &Compiled).expect("valid")))
    });
    group.finish();
}

criterion_group!(
    benches,
    flow_engine,
    form_decoding,
    signature_verification,
    cookie_round_trip,
    twiml_rendering,
    full_router,
    full_router_logged
);
criterion_main!(benches);
