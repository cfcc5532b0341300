//! [`StepCalls`]: the flow engine's [`Calls`] for one webhook, every call bounded by the
//! webhook's deadline, counted and logged (endpoint, node, method, status or reason, time —
//! never the path, the query, a body or a secret: they may hold a texter's number).

use std::time::Duration;

use tokio::time::Instant;

use super::Callouts;
use crate::flows::engine::call::{
    CallFailure, CallFuture, CallRequest, CallResponse, Calls, ConnectFuture, ConnectRequest,
    Connected,
};
use crate::relay::{NewParticipant, NewSession, Relay, RelayError};

/// The call-outs of one webhook's step, ending by its `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct StepCalls<'a> {
    callouts: &'a Callouts,
    deadline: Instant,
    handoff: Option<Handoff<'a>>,
}

/// What a `connect` node needs: the relay, and the texter and the number they texted.
#[derive(Debug, Clone, Copy)]
pub struct Handoff<'a> {
    pub relay: &'a Relay,
    pub texter: &'a str,
    pub number: &'a str,
}

impl<'a> StepCalls<'a> {
    pub fn new(callouts: &'a Callouts, deadline: Instant) -> Self {
        StepCalls {
            callouts,
            deadline,
            handoff: None,
        }
    }

    /// With a relay, `connect` nodes open sessions.
    pub fn with_handoff(mut self, handoff: Option<Handoff<'a>>) -> Self {
        self.handoff = handoff;
        self
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

    fn connect<'a>(&'a self, request: &'a ConnectRequest) -> ConnectFuture<'a> {
        Box::pin(async move {
            let Some(handoff) = self.handoff else {
                return Err(CallFailure {
                    reason: "no_relay",
                    detail: "no relay is configured (relay.numbers)".into(),
                });
            };
            let relay = handoff.relay;
            let Some(agent) = relay.config().agents.get(&request.agent) else {
                return Err(CallFailure {
                    reason: "no_agent",
                    detail: format!("no agent {:?} in relay.agents", request.agent),
                });
            };
            let new = NewSession {
                participants: vec![
                    NewParticipant {
                        address: handoff.texter.to_owned(),
                        label: request.label.clone(),
                        proxy: Some(handoff.number.to_owned()),
                    },
                    NewParticipant {
                        address: agent.clone(),
                        label: Some(request.agent.clone()),
                        proxy: None,
                    },
                ],
                ttl_secs: request.ttl_secs.unwrap_or(relay.config().ttl.as_secs()),
                expires_at_ms: None,
                handoff_from: Some(handoff.texter.to_owned()),
            };
            // Not cut short by the deadline: a create dropped midway could still land, and
            // leave a session the flow believes failed. The store bounds its own calls.
            let session = match relay.create(new).await {
                Ok(session) => session,
                Err(error) => {
                    let reason = match error {
                        RelayError::PoolExhausted(_) | RelayError::ProxyInUse(_) => "pool",
                        RelayError::Unavailable(_) => "unavailable",
                    };
                    return Err(CallFailure {
                        reason,
                        detail: error.to_string(),
                    });
                }
            };
            let agent_proxy = session
                .participants
                .iter()
                .find(|p| &p.address == agent)
                .map(|p| p.proxy.clone())
                .unwrap_or_default();
            Ok(Connected {
                session: session.id,
                agent_address: agent.clone(),
                agent_proxy,
            })
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
