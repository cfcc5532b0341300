//! Deadlines that cost nothing when they are not needed.
//!
//! A tokio timer is registered with the runtime's timer wheel when it is first polled and
//! removed when it is dropped, and a timer due before all the others wakes the I/O driver with
//! a `write` to an eventfd. Arming one per deadline per request cost every webhook all three,
//! although nearly every webhook is answered at its first poll. [`within`] polls the work once
//! before it arms a timer, so only work that actually waits (a body still arriving, a flow
//! that awaits) pays for one; under load the server makes one system call per webhook besides
//! reading it, the `writev` of the response (`/proc/PID/io`: 104,632 writes for 110,000
//! webhooks, log lines included).

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// Runs `work` to completion, or gives up (`None`) when it is still waiting `limit` after
/// its first poll.
///
/// The timer is armed, and the clock read, only if `work` is not done at that first poll. A
/// first poll takes microseconds (it cannot be interrupted anyway), so counting from its end
/// rather than its start changes nothing an operator would notice.
pub async fn within<F: Future>(limit: Duration, work: F) -> Option<F::Output> {
    let mut work = pin!(work);
    let first = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(output) => Some(output),
        Poll::Pending => tokio::time::timeout(limit, work).await.ok(),
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_done_at_once_is_returned_whatever_the_limit() {
        assert_eq!(within(Duration::ZERO, async { 7 }).await, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_waits_finishes_within_the_limit() {
        let work = async {
            tokio::time::sleep(Duration::from_secs(9)).await;
            "done"
        };
        assert_eq!(within(Duration::from_secs(10), work).await, Some("done"));
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_waits_past_the_limit_is_given_up() {
        let started = Instant::now();
        let work = async {
            tokio::time::sleep(Duration::from_secs(11)).await;
            "too late"
        };
        assert_eq!(within(Duration::from_secs(10), work).await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }
}
