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
