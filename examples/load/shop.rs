//! The call-out runs' service (issue 12): a stand-in for the operator's own shop, which the
//! `calls` run's flow asks for every order, and the server config and flows directory both runs
//! hand the server.
//!
//! The stand-in is this same binary started again with `--stand-in`, in a process of its own
//! on the load's core (core 1, with `taskset`, as the runs' Redis: core 0 is the server's), so
//! its CPU is never the server's. It is a plain HTTP/1.1 keep-alive server (hyper, one
//! thread) on a free loopback port that answers `GET /orders/…` with 200 and
//! [`SHOP_ANSWER`], anything else with 404 (which the flow takes to `on_error`, so a phone sees
//! it as an error). It does not verify the requests' signatures — a real service must, and
//! tests/callouts.rs checks what the server signs — because its own CPU is not what is measured
//! and the server signs every request all the same. It counts the requests it answers and the
//! connections it accepts (so a run shows the server's connections kept alive): the load tool
//! asks over the stand-in's stdin (`count` → one line, `REQUESTS CONNECTIONS`), and the
//! stand-in exits when that stdin closes, so it never outlives the tool.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::backing::TempDir;
use crate::script::{SHOP_ANSWER, SHOP_ENDPOINT, order_flow};

/// The `shop` endpoint's secret (`SMS_SESSIONS_ENDPOINT_SHOP_SECRET`); the stand-in does not
/// check signatures, but the server makes them.
const SHOP_SECRET: &str = "load-test-shop-secret-0123456789";

/// What the stand-in has counted.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub requests: u64,
    pub connections: u64,
}

impl Counts {
    /// What was counted since `earlier`.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            requests: self.requests - earlier.requests,
            connections: self.connections - earlier.connections,
        }
    }
}

/// The stand-in and what the server needs to reach it; everything stopped and removed when
/// dropped.
pub struct Shop {
    child: Child,
    /// Its requests go in as lines: `count`.
    stdin: ChildStdin,
    /// Its answers: the address first, then one count per `count`.
    stdout: BufReader<ChildStdout>,
    /// The server config file that points the `shop` endpoint at the stand-in, and the flows
    /// directory (`--config FILE`).
    pub config: PathBuf,
    _dir: TempDir,
}

impl Shop {
    /// Starts the stand-in (on core `pin`) and writes the order flow with `lookup` (see
    /// [`order_flow`]) and the server config for it into a fresh temporary directory.
    pub fn start(lookup: &str, pin: Option<&str>) -> Result<Self, String> {
        let program = std::env::current_exe().map_err(|e| format!("the load tool: {e}"))?;
        let mut command = match pin {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpu]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        let mut child = command
            .arg("--stand-in")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the stand-in shop: {e}"))?;
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .map_err(|e| format!("the stand-in shop: {e}"))?;
        let addr: SocketAddr = line
            .trim()
            .parse()
            .map_err(|_| format!("the stand-in shop did not say its address: {line:?}"))?;
        let dir = TempDir::new().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
        let config = write_files(&dir.0, addr, lookup)
            .map_err(|e| format!("cannot write the order flow and config: {e}"))?;
        Ok(Self {
            child,
            stdin,
            stdout,
            config,
            _dir: dir,
        })
    }

    /// What the server's environment adds: the endpoint's secret.
    pub fn env(&self) -> [(String, String); 1] {
        let name = format!(
            "SMS_SESSIONS_ENDPOINT_{}_SECRET",
            SHOP_ENDPOINT.to_uppercase()
        );
        [(name, SHOP_SECRET.to_owned())]
    }

    /// The requests the stand-in has answered and the connections it has accepted so far.
    pub fn counts(&mut self) -> Result<Counts, String> {
        let lost = |e: std::io::Error| format!("the stand-in shop: {e}");
        self.stdin.write_all(b"count\n").map_err(lost)?;
        self.stdin.flush().map_err(lost)?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(lost)?;
        let mut numbers = line.split_whitespace().map(str::parse::<u64>);
        match (numbers.next(), numbers.next(), numbers.next()) {
            (Some(Ok(requests)), Some(Ok(connections)), None) => Ok(Counts {
                requests,
                connections,
            }),
            _ => Err(format!("the stand-in shop answered {line:?} to count")),
        }
    }

    /// The stand-in's user and system CPU ticks so far.
    pub fn cpu_ticks(&self) -> Result<(u64, u64), String> {
        crate::server::proc_ticks(self.child.id()).map_err(|e| format!("the stand-in shop: {e}"))
    }
}

impl Drop for Shop {
    /// SIGTERM (it has no handler: it ends at once), then SIGKILL if it is still there after 2 s.
    fn drop(&mut self) {
        crate::server::terminate(&mut self.child, Duration::from_secs(2));
    }
}

/// `DIR/flows/order.toml` and `DIR/server.toml`; returns the config's path.
fn write_files(dir: &std::path::Path, addr: SocketAddr, lookup: &str) -> std::io::Result<PathBuf> {
    let flows = dir.join("flows");
    std::fs::create_dir(&flows)?;
    std::fs::write(flows.join("order.toml"), order_flow(lookup))?;
    let flows = flows.display().to_string();
    let url = format!("http://{addr}");
    let config = format!(
        "# Written by the load tool for its calls and calls-local runs (examples/load/shop.rs).\n\
         # The endpoint's secret is in SMS_SESSIONS_ENDPOINT_SHOP_SECRET.\n\
         [flow]\n\
         kind = \"flows\"\n\
         \n\
         [flows]\n\
         dir = {flows:?}\n\
         \n\
         [flows.endpoints.{SHOP_ENDPOINT}]\n\
         url = {url:?}\n\
         timeout = \"3s\"\n"
    );
    let path = dir.join("server.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// `load --stand-in`: the stand-in shop itself. Prints its address, then serves until its stdin
/// closes, answering `count` lines on stdin with the requests answered and connections accepted.
pub fn serve() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(listen()) {
        Ok(never) => match never {},
        Err(error) => {
            eprintln!("load --stand-in: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Serves connections, each kept alive as long as its client keeps it.
async fn listen() -> std::io::Result<Infallible> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let count = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicU64::new(0));
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", listener.local_addr()?)?;
        stdout.flush()?;
    }
    answer_counts(count.clone(), connections.clone());
    loop {
        let (stream, _) = listener.accept().await?;
        connections.fetch_add(1, Ordering::Relaxed);
        stream.set_nodelay(true)?;
        let count = count.clone();
        let service = hyper::service::service_fn(move |request| {
            std::future::ready(Ok::<_, Infallible>(answer(&count, &request)))
        });
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let _ = connection.await;
        });
    }
}

/// `GET /orders/…`: 200 and [`SHOP_ANSWER`]; anything else 404. Counts every request.
fn answer(count: &AtomicU64, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    count.fetch_add(1, Ordering::Relaxed);
    let order = request.method() == Method::GET && request.uri().path().starts_with("/orders/");
    let (status, body) = if order {
        (StatusCode::OK, SHOP_ANSWER)
    } else {
        (StatusCode::NOT_FOUND, r#"{"error":"not found"}"#)
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A thread that answers each `count` line on stdin with the counts, and ends the process when
/// stdin closes (the load tool is done or gone).
fn answer_counts(count: Arc<AtomicU64>, connections: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "count" {
                let mut stdout = std::io::stdout().lock();
                let (requests, connections) = (
                    count.load(Ordering::Relaxed),
                    connections.load(Ordering::Relaxed),
                );
                let written = writeln!(stdout, "{requests} {connections}");
                if written.and_then(|()| stdout.flush()).is_err() {
                    break;
                }
            }
        }
        std::process::exit(0);
    });
}
