//! One step of a conversation: an inbound text and the session state in; the texts to send,
//! the new state and what happened out. Pure: the clock arrives as `now`.
//!
//! In order (DESIGN.md, "Flows from files"; research/flows.md §7.4):
//! 1. compliance: an opt-out clears everything and answers nothing; HELP answers
//!    `compliance.help_reply` (or nothing) and leaves the flow where it was;
//! 2. a waiting flow whose file changed so that its node is gone restarts, with a notice;
//! 3. a waiting flow past its `expire_after` goes to `on_expire` (or ends, and the text is idle
//!    input);
//! 4. an interrupt keyword as the whole text starts its flow;
//! 5. the waiting `ask` reads the reply: usable → saved and routed; unusable → the retry text
//!    and the question again, or `on_fail` at the `max_attempts`-th;
//! 6. idle: the first word's trigger, else `flows.default`, else no reply.
//!
//! Nodes then run until an `ask` or an `end`, at most `flows.max_steps` of them. The state
//! lives in [`SessionData`] under reserved keys (`_f` flow, `_n` node, `_a` attempts, `_w`
//! waiting since, `_v` the flow's version) beside the flow's variables, whose names start with
//! a letter (`check` makes sure).

use std::borrow::Cow;

use jiff::Timestamp;

use super::call::{Body, CallRequest, Calls, ConnectRequest, NoCalls};
use super::definition::{Ask, Bound, Call, Connect, Node, PathPart, path_parts};
use super::input::Parsed;
use super::load::{Flow, FlowSet, NodeRef};
use super::routing::{AskExpect, Compiled, ExpectKind, with_bounds};
use super::template::{Context, is_template, typed};
use super::{DateOrder, Env};
use crate::flows::compliance::{self, Verdict};
use crate::session::SessionData;

/// The reserved state keys.
pub const FLOW: &str = "_f";
pub const NODE: &str = "_n";
pub const ATTEMPTS: &str = "_a";
pub const SINCE: &str = "_w";
pub const VERSION: &str = "_v";
/// The names of the variables saved as JSON (lists and objects from a call), space-separated.
pub const JSON_VARS: &str = "_j";

/// Sent with the question again when an ask has no `retry` of its own.
pub const DEFAULT_RETRY: &str = "Sorry, I didn't get that.";
/// The last text of a flow whose ask ran out of attempts and has no `on_fail`.
pub const DEFAULT_FAIL: &str = "Sorry, I couldn't follow. Let's stop here for now.";
/// Before a conversation restarts because its flow changed under it.
pub const RESTART_NOTICE: &str = "We updated this service, so let's start over.";
/// When a flow cannot go on (a template failed, a loop ran away).
pub const ERROR_TEXT: &str = "Sorry, something went wrong on our side. Please try again later.";
/// When the conversation's state would no longer fit where it is kept.
pub const TOO_LONG_TEXT: &str =
    "Sorry, this conversation has grown too long for us to keep. Please start again.";
/// Longest saved answer, in characters (goflow's `MaxResultChars`).
pub const MAX_SAVED_CHARS: usize = 640;

/// The server's settings a step needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `flows.default`.
    pub default_flow: Option<String>,
    /// `flows.max_steps`.
    pub max_steps: u32,
    /// `compliance.help_reply`.
    pub help_reply: Option<String>,
    /// The session cookie's name, to know when the state would outgrow the cookie; `None`
    /// when the state lives elsewhere.
    pub cookie_name: Option<String>,
    /// In a server-side store, `store.max_state_bytes`.
    pub max_state_bytes: Option<usize>,
    /// `flows.max_calls`: call-outs one step may make.
    pub max_calls: u32,
    /// Keep the variables of a flow that ends in [`Turn::ended`] (for the results hook).
    pub keep_results: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_flow: None,
            max_steps: 50,
            help_reply: None,
            cookie_name: Some("sms_session".into()),
            max_state_bytes: None,
            max_calls: 5,
            keep_results: false,
        }
    }
}

/// One inbound text, as a step sees it.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub text: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    /// Twilio's `OptOutType`, when Advanced Opt-Out recognised a keyword.
    pub opt_out_type: Option<&'a str>,
    /// Twilio's MessageSid: the call-outs' `Idempotency-Key`.
    pub message_sid: &'a str,
    pub now: Timestamp,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An opt-out: every flow ended, nothing sent.
    OptedOut,
    /// HELP / INFO: `help_reply` (or nothing); the flow is untouched.
    Help,
    /// No flow waiting, no trigger, no default: nothing sent.
    Idle,
    /// A trigger, the default flow or an interrupt keyword started a flow.
    Started,
    /// The waiting ask took the reply.
    Answered,
    /// The reply was not usable: the retry text and the question again.
    Retried,
    /// The last allowed unusable reply: on to `on_fail`.
    Failed,
    /// The flow had waited past `expire_after`.
    Expired,
    /// The flow changed under the conversation: a notice, and its start again.
    Restarted,
    /// The flow could not go on (template error, runaway loop, state too large): an apology.
    Error,
}

impl Outcome {
    /// A short label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::OptedOut => "opted_out",
            Outcome::Help => "help",
            Outcome::Idle => "idle",
            Outcome::Started => "started",
            Outcome::Answered => "answered",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
            Outcome::Expired => "expired",
            Outcome::Restarted => "restarted",
            Outcome::Error => "error",
        }
    }
}

/// The result of a step: the texts of the turn (sent as one message, parts separated by a blank
/// line), the media attached, and what happened, where.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub texts: Vec<String>,
    pub media: Vec<String>,
    pub outcome: Outcome,
    /// The flow the step ran in, if any.
    pub flow: Option<String>,
    /// The node the flow waits at (an ask) or ended at.
    pub node: Option<String>,
    /// Why an [`Outcome::Error`] happened, for the log (never the text or the variables).
    pub error: Option<String>,
    /// Each call-out of the step that went to its `on_error`: node, endpoint and reason.
    pub call_errors: Vec<CallError>,
    /// A flow that ended in this step, with its variables when [`Settings::keep_results`].
    pub ended: Option<Ended>,
    /// Texts to other people than the texter (a `connect` node's greeting to the agent).
    pub outbound: Vec<Outbound>,
    /// The relay session a `connect` node opened in this step, if any.
    pub handoff: Option<String>,
}

/// A text to someone else than the texter, from a given number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub to: String,
    pub from: String,
    pub text: String,
}

/// A call-out that failed, for the log and metrics (never the request or the answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub node: String,
    pub endpoint: String,
    /// `status`, `not_json`, `missing`, `too_many`, or the client's reason (`timeout`, …).
    pub reason: &'static str,
    pub detail: String,
}

/// How a flow ended, for the results hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub flow: String,
    /// `completed`, `failed`, `expired`, `opted_out` or `error`.
    pub outcome: &'static str,
    /// The flow's variables as they were (JSON-typed ones as JSON); empty unless
    /// [`Settings::keep_results`].
    pub variables: Vec<(String, serde_json::Value)>,
}

impl Turn {
    fn new(outcome: Outcome) -> Self {
        Turn {
            texts: Vec::new(),
            media: Vec::new(),
            outcome,
            flow: None,
            node: None,
            error: None,
            call_errors: Vec::new(),
            ended: None,
            outbound: Vec::new(),
            handoff: None,
        }
    }

    /// The one message body: the texts joined by a blank line.
    pub fn body(&self) -> String {
        self.texts.join("\n\n")
    }
}

/// Runs one step of the conversation in `state`, making its call-outs through `calls`.
///
/// A step that reaches no `call` node never waits: its future is ready at the first poll.
pub async fn step(
    set: &FlowSet<Compiled>,
    settings: &Settings,
    inbound: &Inbound<'_>,
    state: &mut SessionData,
    calls: &dyn Calls,
) -> Turn {
    match compliance::classify(inbound.text, inbound.opt_out_type) {
        Verdict::OptOut => {
            let mut turn = Turn::new(Outcome::OptedOut);
            turn.flow = state.get(FLOW).map(str::to_owned);
            turn.ended = ended(state, "opted_out", settings.keep_results);
            state.clear();
            return turn;
        }
        Verdict::Help => {
            let mut turn = Turn::new(Outcome::Help);
            turn.texts.extend(settings.help_reply.clone());
            turn.flow = state.get(FLOW).map(str::to_owned);
            turn.node = state.get(NODE).map(str::to_owned);
            return turn;
        }
        Verdict::Input => {}
    }
    let mut run = Run {
        set,
        settings,
        inbound,
        state,
        turn: Turn::new(Outcome::Idle),
        context: None,
        trigger_rest: "",
        env: None,
        calls,
        made: Vec::new(),
    };
    run.step().await;
    run.finish()
}

/// [`step`] without call-outs (every `call` goes to its `on_error`), run to its end at once:
/// for benchmarks, fuzzing and tools that must not reach a network.
pub fn step_offline(
    set: &FlowSet<Compiled>,
    settings: &Settings,
    inbound: &Inbound<'_>,
    state: &mut SessionData,
) -> Turn {
    use futures_util::FutureExt;
    step(set, settings, inbound, state, &NoCalls)
        .now_or_never()
        .expect("a step whose calls all answer at once never waits")
}

/// The flow in `state` as it ends: its name and, when kept, its variables.
fn ended(state: &SessionData, outcome: &'static str, keep: bool) -> Option<Ended> {
    let flow = state.get(FLOW)?.to_owned();
    let variables = if keep {
        let json: Vec<&str> = state
            .get(JSON_VARS)
            .unwrap_or_default()
            .split(' ')
            .collect();
        let vars = state.iter().filter(|(name, _)| !name.starts_with('_'));
        vars.map(|(name, text)| {
            let value = if json.contains(&name) {
                serde_json::from_str(text).unwrap_or_else(|_| text.into())
            } else {
                serde_json::to_value(typed(text)).unwrap_or_else(|_| text.into())
            };
            (name.to_owned(), value)
        })
        .collect()
    } else {
        Vec::new()
    };
    Some(Ended {
        flow,
        outcome,
        variables,
    })
}

/// One step in progress.
struct Run<'a> {
    set: &'a FlowSet<Compiled>,
    settings: &'a Settings,
    inbound: &'a Inbound<'a>,
    state: &'a mut SessionData,
    turn: Turn,
    /// Built on the first render.
    context: Option<Context>,
    /// The words after the keyword that started the flow, for `trigger.rest`.
    trigger_rest: &'a str,
    /// The reading environment, worked out once per step (and again only if the step moves
    /// to another flow).
    env: Option<(String, Env)>,
    calls: &'a dyn Calls,
    /// The `call` nodes this step has called, in order (for the budget and the keys).
    made: Vec<&'a str>,
}

/// Why nodes stopped running early.
struct Stop(String);

impl<'a> Run<'a> {
    async fn step(&mut self) {
        let Some(name) = self.state.get(FLOW).map(str::to_owned) else {
            return self.idle().await;
        };
        let Some(flow) = self.set.flow(&name) else {
            // The flow is gone from the directory: its conversation cannot go on.
            self.state.clear();
            self.turn.texts.push(RESTART_NOTICE.into());
            return self.idle_after_restart().await;
        };
        // The step is in this flow whatever follows (a retry runs no node to say so).
        self.turn.flow = Some(flow.name().to_owned());
        let node = self.state.get(NODE).unwrap_or_default().to_owned();
        let waiting = flow.node(&node).filter(|n| matches!(n.node, Node::Ask(_)));
        let Some(waiting) = waiting else {
            self.turn.texts.push(RESTART_NOTICE.into());
            return self.start(flow, "", Outcome::Restarted).await;
        };
        if self.expired(flow) {
            return self.expire(flow).await;
        }
        let whole = self.inbound.text.trim();
        if !whole.contains(char::is_whitespace)
            && let Some(keyword) = self.set.keyword(whole)
            && keyword.interrupt
            && let Some(target) = self.set.flow(&keyword.flow)
        {
            return self.start(target, "", Outcome::Started).await;
        }
        self.answer(flow, waiting).await;
    }

    /// No flow waiting: a trigger's first word, else the default flow, else nothing.
    async fn idle(&mut self) {
        let text = self.inbound.text.trim();
        let (first, rest) = text
            .split_once(char::is_whitespace)
            .map_or((text, ""), |(first, rest)| (first, rest.trim()));
        let first = first.trim_end_matches(|c: char| c.is_ascii_punctuation());
        if let Some(keyword) = self.set.keyword(first)
            && let Some(flow) = self.set.flow(&keyword.flow)
        {
            return self.start(flow, rest, Outcome::Started).await;
        }
        if let Some(flow) = self
            .settings
            .default_flow
            .as_deref()
            .and_then(|name| self.set.flow(name))
        {
            self.start(flow, "", Outcome::Started).await;
        }
    }

    async fn idle_after_restart(&mut self) {
        self.idle().await;
        self.turn.outcome = Outcome::Restarted;
    }

    /// Starts `flow` afresh: no variables from before.
    async fn start(&mut self, flow: &'a Flow<Compiled>, trigger_rest: &'a str, outcome: Outcome) {
        self.state.clear();
        self.context = None;
        self.trigger_rest = trigger_rest;
        self.state.set(FLOW, flow.name());
        self.state.set(VERSION, flow.version);
        self.turn.outcome = outcome;
        self.run_from(flow, &flow.def.start).await;
    }

    fn expired(&self, flow: &Flow<Compiled>) -> bool {
        let (Some(limit), Some(since)) =
            (flow.def.expire_after, self.state.get_parsed::<i64>(SINCE))
        else {
            return false;
        };
        let waited = self.inbound.now.as_second().saturating_sub(since);
        waited > i64::try_from(limit.as_secs()).unwrap_or(i64::MAX)
    }

    /// A late reply: `on_expire`, or the flow ends and the text is idle input.
    async fn expire(&mut self, flow: &'a Flow<Compiled>) {
        self.turn.outcome = Outcome::Expired;
        match &flow.def.on_expire {
            Some(node) => {
                self.run_from(flow, node).await;
            }
            None => {
                self.end_flow("expired");
                self.context = None;
                self.idle().await;
                if self.turn.outcome == Outcome::Idle {
                    self.turn.outcome = Outcome::Expired;
                }
            }
        }
    }

    /// The waiting ask reads the reply.
    async fn answer(&mut self, flow: &'a Flow<Compiled>, waiting: NodeRef<'a, Compiled>) {
        let Node::Ask(ask) = waiting.node else {
            unreachable!("only an ask waits");
        };
        let env = self.env(flow);
        let reading = self.read(ask, waiting.expect, &env);
        let reading = match reading {
            Ok(reading) => reading,
            Err(Stop(why)) => return self.fail(flow, Some(waiting.name), why),
        };
        let routed = match reading {
            Some(value) => route(ask, waiting.tests, &value, &env),
            None => None,
        };
        match routed {
            Some((next, saved)) => {
                self.turn.outcome = Outcome::Answered;
                if let Some(name) = &ask.save {
                    self.save(name, &saved);
                }
                self.run_from(flow, next).await;
            }
            None => self.unusable(flow, waiting.name, ask).await,
        }
    }

    /// The reply as the ask expects it: `Ok(None)` when unusable.
    fn read(
        &mut self,
        ask: &Ask,
        expect: Option<&AskExpect>,
        env: &Env,
    ) -> Result<Option<String>, Stop> {
        let text = self.inbound.text;
        let Some(expect) = expect else {
            return Ok(Some(text.trim().to_owned()));
        };
        if expect
            .max_length
            .is_some_and(|max| text.trim().chars().count() > max)
        {
            return Ok(None);
        }
        let parsed = match &expect.kind {
            ExpectKind::Any => {
                let trimmed = text.trim();
                return Ok(
                    (!trimmed.is_empty() || !ask.cases.is_empty()).then(|| trimmed.to_owned())
                );
            }
            ExpectKind::Fixed(expect) => expect.read(text, env),
            ExpectKind::Templated { kind, min, max } => {
                let min = self.bound(min)?;
                let max = self.bound(max)?;
                match with_bounds(kind, min, max) {
                    Some(expect) => expect.read(text, env),
                    None => {
                        return Err(Stop(format!(
                            "the bounds of expect = {kind:?} rendered as min {min:?}, max {max:?}"
                        )));
                    }
                }
            }
        };
        let parsed = parsed.filter(|parsed| match (parsed, &expect.weekdays) {
            (Parsed::Date(date), Some(days)) => days.contains(&date.weekday()),
            _ => true,
        });
        Ok(parsed.map(|parsed| parsed.to_string()))
    }

    /// A templated `min`/`max`, rendered and read as a number.
    fn bound(&mut self, bound: &Option<Bound>) -> Result<Option<f64>, Stop> {
        match bound {
            None => Ok(None),
            Some(Bound::Number(n)) => Ok(Some(*n)),
            Some(Bound::Template(source)) => {
                let text = self.render(source)?;
                text.trim().parse::<f64>().map(Some).map_err(|_| {
                    Stop(format!(
                        "a bound rendered as {:?}, not a number",
                        text.trim()
                    ))
                })
            }
        }
    }

    /// An unusable reply: ask again, or give up at the last attempt.
    async fn unusable(&mut self, flow: &'a Flow<Compiled>, node: &str, ask: &'a Ask) {
        let attempts = self.state.get_parsed::<u32>(ATTEMPTS).unwrap_or(0) + 1;
        if attempts >= ask.max_attempts {
            self.turn.outcome = Outcome::Failed;
            match &ask.on_fail {
                Some(next) => {
                    self.run_from(flow, next).await;
                }
                None => {
                    self.turn.texts.push(DEFAULT_FAIL.into());
                    self.turn.node = Some(node.to_owned());
                    self.end_flow("failed");
                }
            }
            return;
        }
        self.turn.outcome = Outcome::Retried;
        self.context().set_attempts(attempts);
        let asked = (|| {
            let retry = match &ask.retry {
                Some(retry) => self.render(retry)?.into_owned(),
                None => DEFAULT_RETRY.to_owned(),
            };
            let question = self.render(&ask.text)?.into_owned();
            Ok::<_, Stop>((retry, question))
        })();
        match asked {
            Ok((retry, question)) => {
                self.turn.texts.push(retry);
                self.turn.texts.push(question);
                self.wait_at(node, attempts);
            }
            Err(Stop(why)) => self.fail(flow, Some(node), why),
        }
    }

    /// Runs nodes from `start` until an ask waits or the flow ends.
    async fn run_from(&mut self, flow: &'a Flow<Compiled>, start: &'a str) {
        self.turn.flow = Some(flow.name().to_owned());
        let mut current = start;
        for _ in 0..self.settings.max_steps {
            let Some(node) = flow.node(current) else {
                let why = format!("node {current:?} does not exist");
                return self.fail(flow, Some(current), why);
            };
            match self.run_node(flow, node).await {
                Ok(Some(next)) => current = next,
                Ok(None) => return,
                Err(Stop(why)) => return self.fail(flow, Some(current), why),
            }
        }
        let why = format!("more than {} nodes in one step", self.settings.max_steps);
        self.fail(flow, Some(current), why);
    }

    /// Runs one node; the next node's name, or `None` when the step is over.
    async fn run_node(
        &mut self,
        flow: &'a Flow<Compiled>,
        node: NodeRef<'a, Compiled>,
    ) -> Result<Option<&'a str>, Stop> {
        match node.node {
            Node::Say(say) => {
                let text = self.render(&say.text)?.into_owned();
                self.turn.texts.push(text);
                for media in &say.media {
                    let url = self.render(media)?.into_owned();
                    self.turn.media.push(url);
                }
                Ok(say.next.as_deref())
            }
            Node::Set(set) => {
                for (name, source) in &set.values {
                    let value = self.render(source)?;
                    // MiniJinja prints a boolean as `True`/`False`; saved as `true`/`false`
                    // it is typed back as a boolean, so `{% if vip %}` sees `False` as false.
                    let value = match value.as_ref() {
                        "True" => "true",
                        "False" => "false",
                        other => other,
                    }
                    .to_owned();
                    self.save(name, &value);
                }
                Ok(set.next.as_deref())
            }
            Node::Branch(branch) => {
                let on = self.render(&branch.on)?.into_owned();
                let env = self.env(flow);
                let case = branch
                    .cases
                    .iter()
                    .zip(node.tests)
                    .find(|(_, test)| test.eval(&on, &env).is_some());
                Ok(case
                    .map(|(case, _)| case.next.as_str())
                    .or(branch.default.as_deref()))
            }
            Node::Ask(ask) => {
                if let Some(context) = &mut self.context {
                    context.set_attempts(0);
                }
                let text = self.render(&ask.text)?.into_owned();
                self.turn.texts.push(text);
                self.wait_at(node.name, 0);
                Ok(None)
            }
            Node::End(end) => {
                if let Some(text) = &end.text {
                    let text = self.render(text)?.into_owned();
                    self.turn.texts.push(text);
                }
                self.turn.node = Some(node.name.to_owned());
                self.end_flow("completed");
                Ok(None)
            }
            // Boxed: the state of a call in flight lives on the heap only while one is made,
            // so the step's own future stays small for the steps that make none (every
            // webhook's future is moved a few times on its way into the server's box).
            Node::Call(call) => Box::pin(self.call(flow, node.name, call)).await,
            Node::Connect(connect) => Box::pin(self.connect(flow, node.name, connect)).await,
        }
    }

    /// A hand-off to a person: on success the greetings go out and the flow ends (the texter's
    /// texts now go to the agent); else `on_error`.
    async fn connect(
        &mut self,
        flow: &Flow<Compiled>,
        name: &'a str,
        connect: &'a Connect,
    ) -> Result<Option<&'a str>, Stop> {
        let text = self.render(&connect.text)?.into_owned();
        let agent_text = self.render(&connect.agent_text)?.into_owned();
        let request = ConnectRequest {
            node: name.to_owned(),
            agent: connect.agent.clone(),
            ttl_secs: connect.ttl.map(|ttl| ttl.as_secs()),
            label: None,
        };
        match self.calls.connect(&request).await {
            Ok(connected) => {
                tracing::info!(
                    flow = flow.name(),
                    node = name,
                    agent = connect.agent,
                    session = connected.session.as_str(),
                    "handed off to a person"
                );
                self.turn.texts.push(text);
                self.turn.outbound.push(Outbound {
                    to: connected.agent_address,
                    from: connected.agent_proxy,
                    text: agent_text,
                });
                self.turn.handoff = Some(connected.session);
                self.turn.node = Some(name.to_owned());
                self.end_flow("handed_off");
                Ok(None)
            }
            Err(failure) => {
                tracing::warn!(
                    flow = flow.name(),
                    node = name,
                    agent = connect.agent,
                    reason = failure.reason,
                    detail = failure.detail,
                    "a hand-off failed; the flow goes on at its on_error"
                );
                let endpoint = format!("relay:{}", connect.agent);
                self.call_failed(name, endpoint, failure.reason, failure.detail);
                Ok(connect.on_error.as_deref())
            }
        }
    }

    /// A call-out: `next` when it answered as the node needs, else `on_error` (logged, and
    /// recorded in the turn). A template that fails to render stops the flow like anywhere.
    async fn call(
        &mut self,
        flow: &Flow<Compiled>,
        name: &'a str,
        call: &'a Call,
    ) -> Result<Option<&'a str>, Stop> {
        let answered = match self.request(name, call)? {
            Err(detail) => Err(("path", detail)),
            Ok(_) if self.made.len() >= self.settings.max_calls as usize => Err((
                "too_many",
                format!(
                    "more than {} call-outs in one step (flows.max_calls)",
                    self.settings.max_calls
                ),
            )),
            Ok(request) => {
                self.made.push(name);
                let answer = self.calls.call(&request).await;
                self.take_answer(call, answer)
            }
        };
        match answered {
            Ok(()) => Ok(call.next.as_deref()),
            Err((reason, detail)) => {
                tracing::warn!(
                    flow = flow.name(),
                    node = name,
                    endpoint = call.endpoint,
                    reason,
                    detail,
                    "a call-out failed; the flow goes on at its on_error"
                );
                self.call_failed(name, call.endpoint.clone(), reason, detail);
                Ok(call.on_error.as_deref())
            }
        }
    }

    /// Records in the turn that node `name`'s call-out (or hand-off) to `endpoint` failed.
    fn call_failed(&mut self, name: &str, endpoint: String, reason: &'static str, detail: String) {
        self.turn.call_errors.push(CallError {
            node: name.to_owned(),
            endpoint,
            reason,
            detail,
        });
    }

    /// The request of `call`, rendered; `Ok(Err(why))` when a value cannot go into the path.
    fn request(&mut self, name: &str, call: &Call) -> Result<Result<CallRequest, String>, Stop> {
        let mut path = String::with_capacity(call.path.len());
        for part in path_parts(&call.path).map_err(Stop)? {
            match part {
                PathPart::Literal(text) => path.push_str(text),
                PathPart::Value(source) => {
                    let value = self.render(source)?;
                    if value.is_empty() || value.chars().all(|c| c == '.') {
                        return Ok(Err(format!(
                            "a value of the path rendered as {:?}, which cannot be a path segment",
                            value.as_ref()
                        )));
                    }
                    path.push_str(&super::call::encode_path_value(&value));
                }
            }
        }
        let mut query = Vec::with_capacity(call.query.len());
        for (key, source) in &call.query {
            query.push((key.clone(), self.render(source)?.into_owned()));
        }
        let body = match (&call.json, &call.form) {
            (Some(json), _) => {
                let value = self.json(json)?;
                Some(Body::Json(
                    serde_json::to_vec(&value).map_err(|e| Stop(e.to_string()))?,
                ))
            }
            (None, Some(form)) => {
                let mut encoded = form_urlencoded::Serializer::new(String::new());
                for (key, source) in form {
                    encoded.append_pair(key, &self.render(source)?);
                }
                Some(Body::Form(encoded.finish().into_bytes()))
            }
            (None, None) => None,
        };
        let sid = self.inbound.message_sid;
        let before = self.made.iter().filter(|made| **made == name).count();
        let idempotency_key = match (self.made.is_empty(), before) {
            (true, _) => sid.to_owned(),
            (false, 0) => format!("{sid}.{name}"),
            (false, n) => format!("{sid}.{name}.{}", n + 1),
        };
        Ok(Ok(CallRequest {
            node: name.to_owned(),
            endpoint: call.endpoint.clone(),
            method: call.method,
            path,
            query,
            body,
            idempotency_key,
        }))
    }

    /// A `json` body: the TOML value with every string rendered.
    fn json(&mut self, value: &toml::Value) -> Result<serde_json::Value, Stop> {
        use serde_json::Value as Json;
        Ok(match value {
            toml::Value::String(source) => Json::String(self.render(source)?.into_owned()),
            toml::Value::Integer(n) => Json::from(*n),
            toml::Value::Float(x) => Json::from(*x),
            toml::Value::Boolean(b) => Json::Bool(*b),
            toml::Value::Datetime(when) => Json::String(when.to_string()),
            toml::Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.json(item)?);
                }
                Json::Array(out)
            }
            toml::Value::Table(table) => {
                let mut out = serde_json::Map::new();
                for (key, item) in table {
                    out.insert(key.clone(), self.json(item)?);
                }
                Json::Object(out)
            }
        })
    }

    /// Saves what `call` needs from a 2xx answer, all or nothing.
    fn take_answer(
        &mut self,
        call: &Call,
        answer: Result<super::call::CallResponse, super::call::CallFailure>,
    ) -> Result<(), (&'static str, String)> {
        let response = answer.map_err(|failure| (failure.reason, failure.detail))?;
        if !(200..300).contains(&response.status) {
            return Err((
                "status",
                format!("the service answered {}", response.status),
            ));
        }
        if call.save.is_empty() {
            return Ok(());
        }
        let json: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| ("not_json", format!("the answer is not JSON: {e}")))?;
        let mut found = Vec::with_capacity(call.save.len());
        for (name, pointer) in &call.save {
            let value = json
                .pointer(pointer)
                .ok_or_else(|| ("missing", format!("the answer has no {pointer:?}")))?;
            found.push((name, value));
        }
        for (name, value) in found {
            self.save_json(name, value);
        }
        Ok(())
    }

    /// The flow waits at the ask `node`.
    ///
    /// Every run of nodes ends here or in [`end_flow`](Self::end_flow), so the keys of the
    /// ask the step started at are overwritten in place rather than removed first.
    fn wait_at(&mut self, node: &str, attempts: u32) {
        self.state.put(NODE, node);
        self.state.put(ATTEMPTS, attempts);
        self.state.put(SINCE, self.inbound.now.as_second());
        self.turn.node = Some(node.to_owned());
    }

    /// The flow is over (`completed`, `failed`, `expired`, `error`): its state goes, and what
    /// the results hook needs is kept in the turn.
    fn end_flow(&mut self, outcome: &'static str) {
        if let Some(ended) = ended(self.state, outcome, self.settings.keep_results) {
            self.turn.ended = Some(ended);
        }
        self.state.clear();
    }

    /// A flow that cannot go on: logged, an apology, and its state cleared.
    fn fail(&mut self, flow: &Flow<Compiled>, node: Option<&str>, why: String) {
        tracing::error!(flow = flow.name(), node, reason = %why, "the flow cannot go on; it ends with an apology");
        self.turn.texts.push(ERROR_TEXT.into());
        self.turn.outcome = Outcome::Error;
        self.turn.flow = Some(flow.name().to_owned());
        self.turn.node = node.map(str::to_owned);
        self.turn.error = Some(why);
        self.end_flow("error");
    }

    /// Saves a variable (at most [`MAX_SAVED_CHARS`]) in the state and the template context.
    fn save(&mut self, name: &str, value: &str) {
        let value = match value.char_indices().nth(MAX_SAVED_CHARS) {
            Some((cut, _)) => &value[..cut],
            None => value,
        };
        self.state.set(name, value);
        if self.state.get(JSON_VARS).is_some() {
            self.mark_json(name, false);
        }
        // A context built already sees the new value; one built later reads it from the state.
        if let Some(context) = &mut self.context {
            context.set(name, typed(value));
        }
    }

    /// Saves a value from a call's answer: text, numbers and booleans as [`save`](Self::save)
    /// does; lists and objects as JSON, which templates see as lists and objects again.
    fn save_json(&mut self, name: &str, value: &serde_json::Value) {
        use serde_json::Value as Json;
        match value {
            Json::String(text) => self.save(name, text),
            Json::Null => self.save(name, ""),
            Json::Bool(_) | Json::Number(_) => self.save(name, &value.to_string()),
            Json::Array(_) | Json::Object(_) => {
                self.state.set(name, value.to_string());
                self.mark_json(name, true);
                if let Some(context) = &mut self.context {
                    context.set(name, minijinja::Value::from(minijinja::value::Serde(value)));
                }
            }
        }
    }

    /// Adds `name` to, or removes it from, the names of JSON-typed variables.
    fn mark_json(&mut self, name: &str, json: bool) {
        let listed = self.state.get(JSON_VARS).unwrap_or_default();
        let mut names: Vec<&str> = listed
            .split(' ')
            .filter(|n| !n.is_empty() && *n != name)
            .collect();
        if json {
            names.push(name);
        }
        let joined = names.join(" ");
        if joined.is_empty() {
            self.state.remove(JSON_VARS);
        } else {
            self.state.set(JSON_VARS, joined);
        }
    }

    /// [`env`] for `flow`, from the step's cache.
    fn env(&mut self, flow: &Flow<Compiled>) -> Env {
        match &self.env {
            Some((name, env)) if name == flow.name() => env.clone(),
            _ => {
                let fresh = env(flow, self.inbound.now);
                self.env = Some((flow.name().to_owned(), fresh.clone()));
                fresh
            }
        }
    }

    fn context(&mut self) -> &mut Context {
        let inbound = self.inbound;
        let state = &*self.state;
        let trigger_rest = self.trigger_rest;
        self.context.get_or_insert_with(|| {
            let mut context = Context::new(inbound.from, inbound.to);
            context.set_input(inbound.text);
            if !trigger_rest.is_empty() {
                context.set_trigger_rest(trigger_rest);
            }
            let json = state.get(JSON_VARS).unwrap_or_default();
            for (name, value) in state.iter().filter(|(name, _)| !name.starts_with('_')) {
                let is_json = !json.is_empty() && json.split(' ').any(|n| n == name);
                let parsed = is_json
                    .then(|| serde_json::from_str::<serde_json::Value>(value).ok())
                    .flatten();
                match parsed {
                    Some(parsed) => context.set(
                        name,
                        minijinja::Value::from(minijinja::value::Serde(&parsed)),
                    ),
                    None => context.set(name, typed(value)),
                }
            }
            context
        })
    }

    fn render<'s>(&mut self, source: &'s str) -> Result<Cow<'s, str>, Stop> {
        if !is_template(source) {
            return Ok(Cow::Borrowed(source)); // plain text needs no context
        }
        let templates = self.set.templates();
        let context = self.context();
        templates
            .render(source, context)
            .map_err(|e| Stop(format!("template: {e}")))
    }

    /// The turn, after checking the state still fits where it is kept.
    fn finish(mut self) -> Turn {
        let fits = match (&self.settings.cookie_name, self.settings.max_state_bytes) {
            (Some(cookie), _) => self.state.fits_a_cookie(cookie),
            (None, Some(limit)) => self.state.encoded_len() <= limit,
            (None, None) => true,
        };
        if !fits {
            tracing::error!(
                flow = self.turn.flow.as_deref(),
                node = self.turn.node.as_deref(),
                "the conversation's state no longer fits where it is kept; it ends with a notice"
            );
            self.state.clear();
            self.turn.texts = vec![TOO_LONG_TEXT.into()];
            self.turn.media.clear();
            self.turn.outcome = Outcome::Error;
            self.turn.error = Some("state too large to keep".into());
        }
        self.turn
    }
}

/// The reading environment of `flow` at `now`: today in its zone, its date order.
fn env(flow: &Flow<Compiled>, now: Timestamp) -> Env {
    let mut env = Env::new(flow.timezone.to_datetime(now).date());
    env.date_order = match flow.def.date_order {
        Some(super::definition::DateOrder::Dmy) => DateOrder::DayMonthYear,
        _ => DateOrder::MonthDayYear,
    };
    env
}

/// Where a usable reply goes, and what is saved: the first passing case (its category, else
/// its match), else `next` (the reply). `None` when nothing routes it.
fn route<'n>(
    ask: &'n Ask,
    tests: &[super::tests::Test],
    value: &str,
    env: &Env,
) -> Option<(&'n str, String)> {
    for (case, test) in ask.cases.iter().zip(tests) {
        if let Some(found) = test.eval(value, env) {
            let saved = case.category.clone().unwrap_or(found.value);
            return Some((&case.next, saved));
        }
    }
    let next = ask.next.as_deref()?;
    (!value.is_empty()).then(|| (next, value.to_owned()))
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "run_call_tests.rs"]
mod call_tests;
