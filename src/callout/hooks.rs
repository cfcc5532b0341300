//! The results and opt-out hooks: a signed JSON POST to the configured endpoint when a flow
//! ends (`[flows.results]`) or a texter opts out (`compliance.on_opt_out`).
//!
//! A webhook only queues the hook (`try_send` on a bounded queue: never a wait); one
//! background task delivers, a few at a time, each up to three attempts (after a connection
//! error, a timeout, a 5xx or a 429) with the same `Idempotency-Key`. What is dropped (queue
//! full) or never delivered is logged, with masked numbers, and counted in
//! `sms_sessions_hooks_total{hook,outcome}`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Callouts;
use crate::config::HookTarget;
use crate::flows::engine::call::{Body, CallFailure, CallRequest, CallResponse, Method};
use crate::logging::mask_phone;

/// Attempts per hook event: the first and two retries.
const ATTEMPTS: usize = 3;

/// How hooks are queued and retried; [`Default`] is the production setting, tests shorten it.
#[derive(Debug, Clone)]
pub struct HookSettings {
    /// The waits before the second and the third attempt.
    pub backoff: [Duration; ATTEMPTS - 1],
    /// Hook events waiting at most; one more is dropped.
    pub queue: usize,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings {
            backoff: [Duration::from_secs(1), Duration::from_secs(4)],
            queue: 1024,
            concurrency: 16,
        }
    }
}

/// A flow that ended, for `[flows.results]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowEnded {
    pub flow: String,
    /// `completed`, `failed`, `expired`, `opted_out` or `error`.
    pub outcome: &'static str,
    pub from: String,
    pub to: String,
    pub message_sid: String,
    pub variables: Vec<(String, serde_json::Value)>,
}

/// Which hook an event is for: the `hook` label of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    Results,
    OptOut,
}

impl Hook {
    fn as_str(self) -> &'static str {
        match self {
            Hook::Results => "results",
            Hook::OptOut => "opt_out",
        }
    }
}

/// One hook event, ready to send (and to log: the numbers already masked).
#[derive(Debug)]
struct Job {
    hook: Hook,
    request: CallRequest,
    from: String,
    to: String,
}

/// The hooks' queue. Dropping it lets the background task finish what is queued.
#[derive(Debug)]
pub struct Hooks {
    callouts: Arc<Callouts>,
    results: Option<HookTarget>,
    on_opt_out: Option<HookTarget>,
    queue: Option<mpsc::Sender<Job>>,
    task: Option<JoinHandle<()>>,
}

impl Hooks {
    /// Starts the delivery task (inside a Tokio runtime) when either hook is configured.
    pub fn start(
        callouts: Arc<Callouts>,
        results: Option<HookTarget>,
        on_opt_out: Option<HookTarget>,
    ) -> Hooks {
        Self::start_with(callouts, results, on_opt_out, HookSettings::default())
    }

    /// As [`start`](Self::start), with its queue and retries set.
    pub fn start_with(
        callouts: Arc<Callouts>,
        results: Option<HookTarget>,
        on_opt_out: Option<HookTarget>,
        settings: HookSettings,
    ) -> Hooks {
        let (queue, task) = if results.is_some() || on_opt_out.is_some() {
            let (sender, receiver) = mpsc::channel(settings.queue.max(1));
            let task = tokio::spawn(deliver_all(callouts.clone(), receiver, settings));
            (Some(sender), Some(task))
        } else {
            (None, None)
        };
        Hooks {
            callouts,
            results,
            on_opt_out,
            queue,
            task,
        }
    }

    /// Queues the results hook for a flow that ended; nothing when `[flows.results]` is unset.
    pub fn flow_ended(&self, ended: FlowEnded) {
        let Some(target) = &self.results else {
            return;
        };
        let body = serde_json::json!({
            "event": "flow.ended",
            "flow": ended.flow,
            "outcome": ended.outcome,
            "from": ended.from,
            "to": ended.to,
            "variables": serde_json::Map::from_iter(ended.variables),
            "ended_at": now_rfc3339(),
            "message_sid": ended.message_sid,
        });
        let key = format!("{}.results", ended.message_sid);
        self.enqueue(Hook::Results, target, &body, key, (&ended.from, &ended.to));
    }

    /// Queues the opt-out hook; nothing when `compliance.on_opt_out` is unset.
    pub fn opted_out(&self, from: &str, to: &str, message_sid: &str) {
        let Some(target) = &self.on_opt_out else {
            return;
        };
        let body = serde_json::json!({
            "event": "opt_out",
            "from": from,
            "to": to,
            "message_sid": message_sid,
            "at": now_rfc3339(),
        });
        self.enqueue(
            Hook::OptOut,
            target,
            &body,
            format!("{message_sid}.opt_out"),
            (from, to),
        );
    }

    /// Stops taking events and waits up to `within` for the queued ones to be delivered (or
    /// given up); `false` if some were still in flight then.
    pub async fn drain(mut self, within: Duration) -> bool {
        drop(self.queue.take());
        match self.task.take() {
            Some(task) => tokio::time::timeout(within, task).await.is_ok(),
            None => true,
        }
    }

    /// `key` is the event's `Idempotency-Key`: the MessageSid and the hook's name, the same
    /// however often Twilio retries the text, so the service can drop a repeat.
    fn enqueue(
        &self,
        hook: Hook,
        target: &HookTarget,
        body: &serde_json::Value,
        key: String,
        (from, to): (&str, &str),
    ) {
        let Some(queue) = &self.queue else {
            return;
        };
        let job = Job {
            hook,
            request: CallRequest {
                node: hook.as_str().to_owned(),
                endpoint: target.endpoint.clone(),
                method: Method::Post,
                path: target.path.clone(),
                query: Vec::new(),
                body: Some(Body::Json(body.to_string().into_bytes())),
                idempotency_key: key,
            },
            from: mask_phone(from),
            to: mask_phone(to),
        };
        if let Err(refused) = queue.try_send(job) {
            let job = match refused {
                mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                    job
                }
            };
            self.count(hook, "dropped");
            tracing::warn!(
                hook = hook.as_str(),
                endpoint = job.request.endpoint.as_str(),
                from = job.from.as_str(),
                to = job.to.as_str(),
                "hook dropped: its queue is full"
            );
        }
    }

    fn count(&self, hook: Hook, outcome: &'static str) {
        if let Some(metrics) = self.callouts.metrics() {
            metrics.hook(hook.as_str(), outcome);
        }
    }
}

/// The background task: takes jobs until the queue closes, `settings.concurrency` in flight.
async fn deliver_all(
    callouts: Arc<Callouts>,
    mut queue: mpsc::Receiver<Job>,
    settings: HookSettings,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            job = queue.recv(), if open && in_flight.len() < settings.concurrency => match job {
                Some(job) => in_flight.push(deliver(&callouts, job, &settings.backoff)),
                None => open = false,
            },
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
}

/// Up to [`ATTEMPTS`] tries of one job, then counted and logged.
async fn deliver(callouts: &Callouts, job: Job, backoff: &[Duration; ATTEMPTS - 1]) {
    let mut attempts = 0;
    let answer = loop {
        attempts += 1;
        // The endpoint's timeout bounds each attempt; a hook has no webhook deadline.
        let deadline = Instant::now() + Duration::from_secs(3_600);
        let answer = callouts.call(&job.request, deadline).await;
        if attempts == ATTEMPTS || !worth_retrying(&answer) {
            break answer;
        }
        tokio::time::sleep(backoff[attempts - 1]).await;
    };
    let delivered = matches!(&answer, Ok(response) if (200..300).contains(&response.status));
    let outcome = if delivered { "delivered" } else { "failed" };
    if let Some(metrics) = callouts.metrics() {
        metrics.hook(job.hook.as_str(), outcome);
    }
    let (hook, endpoint) = (job.hook.as_str(), job.request.endpoint.as_str());
    let (from, to) = (job.from.as_str(), job.to.as_str());
    match &answer {
        Ok(response) if delivered => {
            tracing::debug!(
                hook,
                endpoint,
                from,
                to,
                attempts,
                status = response.status,
                "hook delivered"
            );
        }
        Ok(response) => {
            tracing::warn!(
                hook,
                endpoint,
                from,
                to,
                attempts,
                status = response.status,
                "hook not delivered: the service answered with a status that is not 2xx"
            );
        }
        Err(failure) => {
            tracing::warn!(hook, endpoint, from, to, attempts, reason = failure.reason, detail = %failure.detail, "hook not delivered");
        }
    }
}

/// A connection error, a timeout, a 5xx or a 429 may pass; anything else will not.
fn worth_retrying(answer: &Result<CallResponse, CallFailure>) -> bool {
    match answer {
        Ok(response) => response.status >= 500 || response.status == 429,
        Err(failure) => matches!(failure.reason, "connect" | "timeout" | "io"),
    }
}

/// Now as RFC 3339 in UTC, to the second.
fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retried() {
        let status = |status| {
            Ok(CallResponse {
                status,
                body: Vec::new(),
            })
        };
        let failed = |reason| {
            Err(CallFailure {
                reason,
                detail: String::new(),
            })
        };
        for retried in [
            status(500),
            status(503),
            status(429),
            failed("connect"),
            failed("timeout"),
        ] {
            assert!(worth_retrying(&retried), "{retried:?}");
        }
        for last in [
            status(200),
            status(204),
            status(302),
            status(400),
            status(404),
            failed("too_large"),
        ] {
            assert!(!worth_retrying(&last), "{last:?}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_to_the_second() {
        let now = now_rfc3339();
        assert!(
            now.ends_with('Z') && now.len() == "2026-03-10T12:00:00Z".len(),
            "{now}"
        );
    }
}
