//! The yardstick for `examples/load.rs`: a bare axum server that answers every `POST /sms` with
//! one constant TwiML reply (after reading the body, as any handler must). No signature, no session, no logging — what the HTTP stack alone
//! costs, so the load tool can report sms-sessions' CPU per webhook as a ratio of it.
//!
//! ```text
//! cargo build --release --example baseline
//! target/release/examples/baseline 127.0.0.1:8081
//! ```

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use tokio::net::TcpListener;

const REPLY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
    <Response><Message>Hello, thanks for the new message.</Message></Response>";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let app = Router::new().route(
        "/sms",
        post(|_form: Bytes| async { ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], REPLY) }),
    );
    let listener = TcpListener::bind(&listen).await?;
    axum::serve(listener, app).await
}
