//! [`StepCalls`]: the flow engine's [`Calls`] for one webhook, every call bounded by the
//! webhook's deadline, counted and logged (endpoint, node, method, status or reason, time —
//! never the path, the query, a body or a secret: they may hold a texter's number).

use std::time::Duration;

use tokio::time::Instant;

use super::Callouts;
use crate::flows::engine::call::{CallFailure, CallFuture, CallRequest, CallResponse, Calls};

/// The call-outs of one webhook's step, ending by its `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct StepCalls<'a> {
    callouts: &'a Callouts,
    deadline: Instant,
}

impl<'a> StepCalls<'a> {
    pub fn new(callouts: &'a Callouts, deadline: Instant) -> Self {
        StepCalls { callouts, deadline }
    }
}

impl Calls for StepCalls<'_> {
    fn call<'a>(&'a self, request: &'a CallRequest) -> CallFuture<'a> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let answer = self.callouts.call(request, self.deadline).await;
            observe(self.callouts, request, &answer, started.elapsed());
            answer
        })
    }
}

/// `ok` for a 2xx, `status` for any other answer, else the failure's reason.
pub(super) fn outcome(answer: &Result<CallResponse, CallFailure>) -> &'static str {
    match answer {
        Ok(response) if (200..300).contains(&response.status) => "ok",
        Ok(_) => "status",
        Err(failure) => failure.reason,
    }
}

fn observe(
    callouts: &Callouts,
    request: &CallRequest,
    answer: &Result<CallResponse, CallFailure>,
    took: Duration,
) {
    let outcome = outcome(answer);
    if let Some(metrics) = callouts.metrics() {
        metrics.callout(&request.endpoint, outcome, took);
    }
    let latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    let (endpoint, node, method) = (&request.endpoint, &request.node, request.method.as_str());
    match answer {
        Ok(response) if outcome == "ok" => {
            tracing::debug!(
                endpoint,
                node,
                method,
                status = response.status,
                latency_us,
                "call-out answered"
            );
        }
        Ok(response) => {
            tracing::info!(
                endpoint,
                node,
                method,
                status = response.status,
                latency_us,
                "call-out answered with a status that is not 2xx"
            );
        }
        Err(failure) => {
            tracing::info!(endpoint, node, method, reason = failure.reason, detail = %failure.detail, latency_us, "call-out failed");
        }
    }
}
