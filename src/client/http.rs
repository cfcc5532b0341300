//! A minimal HTTP/1.1 client on hyper: enough for webhooks to a local or proxied server.

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A transport error (connection refused, bad URL…), as text for the user.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The status code of `GET url`.
pub async fn get_status(url: &str) -> Result<u16, Error> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.get(url.parse()?).await?;
    Ok(response.status().as_u16())
}

/// A response: status, headers and the whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// Sends `request` and reads the whole response.
pub async fn send(request: Request<Full<Bytes>>) -> Result<Reply, Error> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Whether the request failed because nothing listens at the address.
pub fn is_connection_refused(error: &Error) -> bool {
    causes(error).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

/// The error and its causes, joined by `: ` (hyper's own message alone says little).
pub fn describe(error: &Error) -> String {
    let mut text = String::new();
    for cause in causes(error) {
        let message = cause.to_string();
        if !text.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
    }
    text
}

fn causes(error: &Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    let first: &(dyn std::error::Error + 'static) = error.as_ref();
    std::iter::successors(Some(first), |cause| cause.source())
}
