//! The accept loop: a cap on open connections, deadlines for request heads and idle
//! keep-alives, and a graceful shutdown that ends by a hard deadline.
//!
//! A client that opens connections and sends half a request head must not be able to lock
//! Twilio out, so:
//! - at most `server.max_connections` are open at once; past that the loop stops accepting and
//!   new connections wait in the kernel's backlog (a flood costs queueing, not memory);
//! - a connection must deliver a whole request head within `server.header_timeout` of being
//!   accepted, and the next head on a kept-alive connection within the same time of its first
//!   byte; one that sends nothing after a reply is closed after `server.idle_timeout`;
//! - a request head is read into a buffer of at most [`HEAD_BUFFER`] bytes (431 past that);
//! - accept errors (EMFILE and the like) are logged, counted and backed off from, never a spin;
//! - on shutdown the loop stops accepting, connections waiting for a head are closed (at their
//!   watchdog's next look, within a second), requests in flight finish, and after `drain` the
//!   server returns whatever is left.
//!
//! The deadlines are kept by a watchdog per connection that looks at the connection's phase a
//! few times per timeout, not by a timer per request: a webhook only stores its phase, so
//! serving one costs no timer at all (see [`crate::deadline`] for why that matters).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::front::Front;
use crate::metrics::Metrics;

/// The largest request head (request line and headers) read: Twilio's are about 1 KiB plus
/// the session cookie (under 4 KiB); a GET webhook carries its parameters in the URL.
pub const HEAD_BUFFER: usize = 32 * 1024;

/// How long the accept loop pauses after a resource error such as EMFILE.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The connection limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight.
    pub drain: Duration,
}

/// Descriptors kept back from connections: the listener, the log, the metrics listener and
/// whatever the runtime and a scrape need.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the soft open-file limit to the hard one where the system allows, and returns the
/// number of connections that fits under the result (at most `wanted`), warning when that is
/// fewer: past the limit `accept` fails with EMFILE and a signed webhook would go unanswered.
pub fn fit_open_file_limit(wanted: usize) -> usize {
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the open-file limit");
            return wanted;
        }
    };
    let fits = usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS))
        .unwrap_or(usize::MAX)
        .max(1);
    if fits < wanted {
        tracing::warn!(
            open_file_limit = soft,
            max_connections = fits,
            "server.max_connections lowered to fit the open-file limit (raise it with ulimit -n \
             or LimitNOFILE=)"
        );
        return fits;
    }
    wanted
}

/// Serves `front` on `listener` until `shutdown` resolves, then drains within `limits.drain`.
pub async fn serve(
    listener: TcpListener,
    front: Front,
    limits: Limits,
    metrics: Option<Arc<Metrics>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let stopping = Arc::new(AtomicBool::new(false));
    let mut builder = http1::Builder::new();
    builder.max_buf_size(HEAD_BUFFER).keep_alive(true);
    let connection = Arc::new(Connection {
        builder,
        front,
        limits,
        metrics: metrics.clone(),
    });
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let connection = connection.clone();
                let stopping = stopping.clone();
                tokio::spawn(async move {
                    connection.run(stream, stopping).await;
                    drop(slot);
                });
            }
            Err(error) => {
                if let Some(metrics) = &metrics {
                    metrics.accept_error();
                }
                if accept_errors.note(&error) {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    drop(listener);
    stopping.store(true, Ordering::Relaxed);
    drain(&slots, limits).await;
    Ok(())
}

/// Waits until every connection has closed, or `limits.drain` has passed.
async fn drain(slots: &Semaphore, limits: Limits) {
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let closed = slots.acquire_many(all);
    if tokio::time::timeout(limits.drain, closed).await.is_err() {
        let open = limits.max_connections - slots.available_permits();
        tracing::warn!(
            open,
            after_ms = limits.drain.as_millis() as u64,
            "shutdown deadline reached; closing the connections still open"
        );
    }
}

/// Logs accept errors: the first of a burst at once, then at most one line a second with the
/// number seen since.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    /// Records `error`; true when the loop should back off before accepting again (the
    /// process or the system is out of a resource, and retrying at once would spin).
    fn note(&mut self, error: &io::Error) -> bool {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            tracing::error!(%error, count = self.unlogged, "cannot accept connections");
            self.last_logged = Some(now);
            self.unlogged = 0;
        }
        is_resource_error(error)
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: errors that last until something is closed or freed.
fn is_resource_error(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24 | 105 | 12))
        || error.kind() == io::ErrorKind::OutOfMemory
}

/// What every connection shares.
struct Connection {
    builder: http1::Builder,
    front: Front,
    limits: Limits,
    metrics: Option<Arc<Metrics>>,
}

impl Connection {
    async fn run(&self, stream: TcpStream, stopping: Arc<AtomicBool>) {
        let _open = self.metrics.as_deref().map(Metrics::connection_open);
        self.answer(stream, stopping).await;
    }

    /// Serves the connection, and at each of the watchdog's looks closes it if its deadline
    /// has passed, or starts draining it once the server stops.
    ///
    /// Shutdown is noticed at the next look, within a second, rather than by polling a
    /// channel: that would lock the channel's waiter list at every wake-up of every connection.
    async fn answer(&self, stream: TcpStream, stopping: Arc<AtomicBool>) {
        let phase = Arc::new(Phase::default());
        let io = TokioIo::new(Tracked {
            stream,
            phase: phase.clone(),
        });
        let service = PhasedService {
            front: self.front.clone(),
            phase: phase.clone(),
        };
        let connection = self.builder.serve_connection(io, service);
        tokio::pin!(connection);
        let mut watchdog = Watchdog::new(self.limits, Instant::now());
        let mut ticks = tokio::time::interval_at(watchdog.started + watchdog.tick, watchdog.tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut draining = false;
        loop {
            tokio::select! {
                biased;
                _ = connection.as_mut() => return,
                _ = ticks.tick() => {
                    if let Some(expired) = watchdog.check(phase.load(), Instant::now()) {
                        if let Some(metrics) = &self.metrics {
                            metrics.connection_timed_out(expired);
                        }
                        tracing::debug!(phase = expired, "connection closed: deadline passed");
                        return;
                    }
                    if !draining && stopping.load(Ordering::Relaxed) {
                        if phase.load() & BUSY == 0 {
                            return; // nothing in flight: close now
                        }
                        connection.as_mut().graceful_shutdown();
                        draining = true;
                    }
                }
            }
        }
    }
}

/// Phase bit: a request is being answered (no deadline of ours applies; the gate's and the
/// front's do).
const BUSY: u64 = 1;
/// Phase bit: a reply went out and no byte of the next request has come.
const IDLE: u64 = 2;
/// Each change of phase adds this, so the watchdog sees a change even back to the same phase.
const STEP: u64 = 4;

/// A connection's phase, shared by its reader and its service: a waiting-for-a-head phase
/// (neither bit), busy or idle, and a count of changes. Only the connection's own task touches
/// it, so `Relaxed` suffices; it is atomic only so the connection future stays `Send`.
#[derive(Debug, Default)]
struct Phase(AtomicU64);

impl Phase {
    fn load(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, bits: u64) {
        let next = (self.load() & !(BUSY | IDLE)) + STEP + bits;
        self.0.store(next, Ordering::Relaxed);
    }
}

/// Decides when a connection's deadline has passed, from samples of its [`Phase`].
#[derive(Debug)]
struct Watchdog {
    limits: Limits,
    /// The phase as last seen, and since when (at the latest) it has held.
    seen: u64,
    started: Instant,
    tick: Duration,
}

impl Watchdog {
    /// A watchdog for a connection accepted at `now`: its first head is due within the header
    /// timeout of that moment.
    fn new(limits: Limits, now: Instant) -> Self {
        let shortest = limits.header_timeout.min(limits.idle_timeout);
        let tick = (shortest / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        Self {
            limits,
            seen: 0,
            started: now,
            tick,
        }
    }

    /// `Some("head")` or `Some("idle")` when the connection has been waiting too long.
    ///
    /// A phase first seen at `now` is taken to have started at `now`, so a deadline is never
    /// early and at most one tick late.
    fn check(&mut self, phase: u64, now: Instant) -> Option<&'static str> {
        if phase != self.seen {
            self.seen = phase;
            self.started = now;
        }
        let waited = now.duration_since(self.started);
        if phase & BUSY != 0 {
            None
        } else if phase & IDLE != 0 {
            (waited >= self.limits.idle_timeout).then_some("idle")
        } else {
            (waited >= self.limits.header_timeout).then_some("head")
        }
    }
}

/// The socket, noting the first byte of a request that follows an idle spell.
struct Tracked {
    stream: TcpStream,
    phase: Arc<Phase>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before && self.phase.load() & IDLE != 0 {
            self.phase.set(0); // the next head has begun: its header timeout starts now
        }
        read
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The front as hyper's service, marking the connection busy while it answers.
struct PhasedService {
    front: Front,
    phase: Arc<Phase>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for PhasedService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        self.phase.set(BUSY);
        let phase = self.phase.clone();
        let answer = self.front.clone().answer(request.map(Body::new));
        Box::pin(async move {
            let response = answer.await;
            phase.set(IDLE);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_connections: 8,
            drain: Duration::from_secs(11),
        }
    }

    #[test]
    fn a_first_head_is_due_within_the_header_timeout_of_the_accept() {
        let start = Instant::now();
        let mut watchdog = Watchdog::new(limits(), start);
        assert_eq!(
            watchdog.check(0, start + Duration::from_millis(4_999)),
            None
        );
        assert_eq!(
            watchdog.check(0, start + Duration::from_secs(5)),
            Some("head")
        );
    }

    #[test]
    fn a_kept_alive_connection_may_idle_then_has_the_header_timeout_from_its_first_byte() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut watchdog = Watchdog::new(limits(), start);
        let phase = Phase::default();
        phase.set(BUSY);
        assert_eq!(watchdog.check(phase.load(), at(4)), None);
        assert_eq!(
            watchdog.check(phase.load(), at(100)),
            None,
            "busy: no deadline"
        );
        phase.set(IDLE);
        assert_eq!(watchdog.check(phase.load(), at(101)), None);
        assert_eq!(watchdog.check(phase.load(), at(130)), None);
        phase.set(0); // the first byte of the next head
        assert_eq!(watchdog.check(phase.load(), at(131)), None);
        assert_eq!(watchdog.check(phase.load(), at(135)), None);
        assert_eq!(watchdog.check(phase.load(), at(136)), Some("head"));
    }

    #[test]
    fn an_idle_connection_closes_after_the_idle_timeout() {
        let start = Instant::now();
        let mut watchdog = Watchdog::new(limits(), start);
        let phase = Phase::default();
        phase.set(BUSY);
        phase.set(IDLE);
        assert_eq!(
            watchdog.check(phase.load(), start + Duration::from_secs(1)),
            None
        );
        let late = start + Duration::from_secs(31);
        assert_eq!(watchdog.check(phase.load(), late), Some("idle"));
    }

    #[test]
    fn a_phase_change_between_samples_restarts_the_clock() {
        let start = Instant::now();
        let mut watchdog = Watchdog::new(limits(), start);
        let phase = Phase::default();
        // Two whole requests between samples: back to idle, but not the same idle.
        for _ in 0..2 {
            phase.set(BUSY);
            phase.set(IDLE);
        }
        let seen = phase.load();
        assert_eq!(watchdog.check(seen, start + Duration::from_secs(29)), None);
        phase.set(BUSY);
        phase.set(IDLE);
        assert_eq!(
            watchdog.check(phase.load(), start + Duration::from_secs(59)),
            None
        );
        assert_eq!(
            watchdog.check(phase.load(), start + Duration::from_secs(89)),
            Some("idle")
        );
    }

    #[test]
    fn the_watchdog_looks_a_few_times_per_timeout() {
        let watchdog = Watchdog::new(limits(), Instant::now());
        assert_eq!(
            watchdog.tick,
            Duration::from_millis(1_250).min(Duration::from_secs(1))
        );
        let quick = Limits {
            header_timeout: Duration::from_millis(200),
            ..limits()
        };
        assert_eq!(
            Watchdog::new(quick, Instant::now()).tick,
            Duration::from_millis(50)
        );
    }

    #[test]
    fn running_out_of_descriptors_backs_off() {
        let mut errors = AcceptErrors::default();
        assert!(errors.note(&io::Error::from_raw_os_error(24)));
        assert!(!errors.note(&io::Error::from(io::ErrorKind::ConnectionAborted)));
        assert_eq!(
            errors.unlogged, 1,
            "the second error within a second waits to be logged"
        );
    }
}
