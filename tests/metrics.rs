//! `GET /metrics`: what a Prometheus scrape sees after real webhooks, the switch to turn it off,
//! and that a non-loopback main listener serves it only when asked to.

mod common;

use axum::body::Bytes;
use common::{Phone, TOKEN, TestServer, post_signed, text};
use http_body_util::Full;
use hyper::Request;
use sms_sessions::client::http::{self, Reply};

async fn get(url: &str) -> Reply {
    let request = Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    http::send(request).await.expect("server answers")
}

fn assert_has(metrics: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            metrics.lines().any(|l| l == *line),
            "missing {line:?} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_scrape_counts_webhooks_rejections_sessions_callbacks_and_latency() {
    // The test server binds 127.0.0.1:0; the configuration says so too.
    let server = TestServer::start(&[("SMS_SESSIONS_LISTEN", "127.0.0.1:0")]).await;
    let mut phone = Phone::new("+14155550199", "+14155550100");
    for body in ["one", "two", "three"] {
        assert_eq!(phone.text(&server, body).await.status, 200);
    }
    let sms = server.url("/sms");
    let pairs = common::inbound_pairs(common::SID, "+14155550199", "+14155550100", "");
    let forged = post_signed(&sms, &sms, &pairs, "not-the-token", &[]).await;
    assert_eq!(forged.status, 403);
    let tampered = [("cookie", "sms_session=v1.forged")];
    assert_eq!(
        post_signed(&sms, &sms, &pairs, TOKEN, &tampered)
            .await
            .status,
        200
    );
    let status_url = server.url("/sms/status");
    let callback = [
        ("MessageSid", common::SID),
        ("AccountSid", common::ACCOUNT_SID),
        ("MessageStatus", "delivered"),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
    ];
    let reply = post_signed(&status_url, &status_url, &callback, TOKEN, &[]).await;
    assert_eq!(reply.status, 204);
    assert_eq!(get(&server.url("/nowhere")).await.status, 404);
    assert_eq!(get(&server.url("/healthz")).await.status, 200);

    let scrape = get(&server.url("/metrics")).await;
    assert_eq!(scrape.status, 200, "no signature needed");
    assert_eq!(
        scrape.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let metrics = text(&scrape);
    assert_has(
        &metrics,
        &[
            "sms_sessions_webhooks_total{route=\"/sms\",status=\"200\"} 4",
            "sms_sessions_webhooks_total{route=\"/sms\",status=\"403\"} 1",
            "sms_sessions_webhooks_total{route=\"/sms/status\",status=\"204\"} 1",
            "sms_sessions_webhooks_total{route=\"other\",status=\"404\"} 1",
            "sms_sessions_webhook_rejections_total{reason=\"signature_mismatch\"} 1",
            "sms_sessions_webhook_rejections_total{reason=\"missing_signature\"} 0",
            "sms_sessions_sessions_total{outcome=\"new\"} 1",
            "sms_sessions_sessions_total{outcome=\"resumed\"} 2",
            "sms_sessions_sessions_total{outcome=\"rejected\"} 1",
            "sms_sessions_sessions_total{outcome=\"expired\"} 0",
            "sms_sessions_status_callbacks_total{message_status=\"delivered\"} 1",
            "sms_sessions_webhook_duration_seconds_count{route=\"/sms\"} 5",
            "sms_sessions_webhook_duration_seconds_bucket{route=\"/sms\",le=\"+Inf\"} 5",
            "sms_sessions_webhook_duration_seconds_count{route=\"/sms/status\"} 1",
            "# TYPE sms_sessions_webhook_duration_seconds histogram",
        ],
    );
    assert!(
        !metrics.contains("healthz") && !metrics.contains("/metrics"),
        "health checks and scrapes are not webhooks:\n{metrics}"
    );
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let server = TestServer::start(&[("SMS_SESSIONS_METRICS", "false")]).await;
    assert_eq!(get(&server.url("/metrics")).await.status, 404);
    let mut phone = Phone::new("+14155550199", "+14155550100");
    assert_eq!(phone.text(&server, "still works").await.status, 200);
}

#[tokio::test]
async fn a_separate_metrics_listener_takes_metrics_off_the_main_one() {
    let server = TestServer::start(&[("SMS_SESSIONS_METRICS_LISTEN", "127.0.0.1:0")]).await;
    assert_eq!(get(&server.url("/metrics")).await.status, 404);
}

#[tokio::test]
async fn a_public_main_listener_serves_metrics_only_when_asked_to() {
    let public = ("SMS_SESSIONS_LISTEN", "0.0.0.0:8080");
    let withheld = TestServer::start(&[public]).await;
    assert_eq!(get(&withheld.url("/metrics")).await.status, 404);
    let mut phone = Phone::new("+14155550199", "+14155550100");
    assert_eq!(phone.text(&withheld, "still works").await.status, 200);
    let asked = TestServer::start(&[public, ("SMS_SESSIONS_PUBLIC_METRICS", "true")]).await;
    assert_eq!(get(&asked.url("/metrics")).await.status, 200);
}
