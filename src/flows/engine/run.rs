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

use super::definition::{Ask, Bound, Node};
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_flow: None,
            max_steps: 50,
            help_reply: None,
            cookie_name: Some("sms_session".into()),
            max_state_bytes: None,
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
        }
    }

    /// The one message body: the texts joined by a blank line.
    pub fn body(&self) -> String {
        self.texts.join("\n\n")
    }
}

/// Runs one step of the conversation in `state`.
pub fn step(
    set: &FlowSet<Compiled>,
    settings: &Settings,
    inbound: &Inbound<'_>,
    state: &mut SessionData,
) -> Turn {
    match compliance::classify(inbound.text, inbound.opt_out_type) {
        Verdict::OptOut => {
            let mut turn = Turn::new(Outcome::OptedOut);
            turn.flow = state.get(FLOW).map(str::to_owned);
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
    };
    run.step();
    run.finish()
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
}

/// Why nodes stopped running early.
struct Stop(String);

impl<'a> Run<'a> {
    fn step(&mut self) {
        let Some(name) = self.state.get(FLOW).map(str::to_owned) else {
            return self.idle();
        };
        let Some(flow) = self.set.flow(&name) else {
            // The flow is gone from the directory: its conversation cannot go on.
            self.state.clear();
            self.turn.texts.push(RESTART_NOTICE.into());
            return self.idle_after_restart();
        };
        // The step is in this flow whatever follows (a retry runs no node to say so).
        self.turn.flow = Some(flow.name().to_owned());
        let node = self.state.get(NODE).unwrap_or_default().to_owned();
        let waiting = flow.node(&node).filter(|n| matches!(n.node, Node::Ask(_)));
        let Some(waiting) = waiting else {
            self.turn.texts.push(RESTART_NOTICE.into());
            return self.start(flow, "", Outcome::Restarted);
        };
        if self.expired(flow) {
            return self.expire(flow);
        }
        let whole = self.inbound.text.trim();
        if !whole.contains(char::is_whitespace)
            && let Some(keyword) = self.set.keyword(whole)
            && keyword.interrupt
            && let Some(target) = self.set.flow(&keyword.flow)
        {
            return self.start(target, "", Outcome::Started);
        }
        self.answer(flow, waiting);
    }

    /// No flow waiting: a trigger's first word, else the default flow, else nothing.
    fn idle(&mut self) {
        let text = self.inbound.text.trim();
        let (first, rest) = text
            .split_once(char::is_whitespace)
            .map_or((text, ""), |(first, rest)| (first, rest.trim()));
        let first = first.trim_end_matches(|c: char| c.is_ascii_punctuation());
        if let Some(keyword) = self.set.keyword(first)
            && let Some(flow) = self.set.flow(&keyword.flow)
        {
            return self.start(flow, rest, Outcome::Started);
        }
        if let Some(flow) = self
            .settings
            .default_flow
            .as_deref()
            .and_then(|name| self.set.flow(name))
        {
            self.start(flow, "", Outcome::Started);
        }
    }

    fn idle_after_restart(&mut self) {
        self.idle();
        self.turn.outcome = Outcome::Restarted;
    }

    /// Starts `flow` afresh: no variables from before.
    fn start(&mut self, flow: &Flow<Compiled>, trigger_rest: &'a str, outcome: Outcome) {
        self.state.clear();
        self.context = None;
        self.trigger_rest = trigger_rest;
        self.state.set(FLOW, flow.name());
        self.state.set(VERSION, flow.version);
        self.turn.outcome = outcome;
        self.run_from(flow, &flow.def.start);
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
    fn expire(&mut self, flow: &Flow<Compiled>) {
        self.turn.outcome = Outcome::Expired;
        match &flow.def.on_expire {
            Some(node) => {
                self.run_from(flow, node);
            }
            None => {
                self.state.clear();
                self.context = None;
                self.idle();
                if self.turn.outcome == Outcome::Idle {
                    self.turn.outcome = Outcome::Expired;
                }
            }
        }
    }

    /// The waiting ask reads the reply.
    fn answer(&mut self, flow: &Flow<Compiled>, waiting: NodeRef<'_, Compiled>) {
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
                let next = next.to_owned();
                self.run_from(flow, &next);
            }
            None => self.unusable(flow, waiting.name, ask),
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
    fn unusable(&mut self, flow: &Flow<Compiled>, node: &str, ask: &Ask) {
        let attempts = self.state.get_parsed::<u32>(ATTEMPTS).unwrap_or(0) + 1;
        if attempts >= ask.max_attempts {
            self.turn.outcome = Outcome::Failed;
            match &ask.on_fail {
                Some(next) => {
                    let next = next.clone();
                    self.run_from(flow, &next);
                }
                None => {
                    self.turn.texts.push(DEFAULT_FAIL.into());
                    self.turn.node = Some(node.to_owned());
                    self.end_flow();
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
    fn run_from(&mut self, flow: &Flow<Compiled>, start: &str) {
        self.turn.flow = Some(flow.name().to_owned());
        let mut current = start.to_owned();
        for _ in 0..self.settings.max_steps {
            let Some(node) = flow.node(&current) else {
                let why = format!("node {current:?} does not exist");
                return self.fail(flow, Some(&current), why);
            };
            match self.run_node(flow, node) {
                Ok(Some(next)) => current = next,
                Ok(None) => return,
                Err(Stop(why)) => return self.fail(flow, Some(&current), why),
            }
        }
        let why = format!("more than {} nodes in one step", self.settings.max_steps);
        self.fail(flow, Some(&current), why);
    }

    /// Runs one node; the next node's name, or `None` when the step is over.
    fn run_node(
        &mut self,
        flow: &Flow<Compiled>,
        node: NodeRef<'_, Compiled>,
    ) -> Result<Option<String>, Stop> {
        match node.node {
            Node::Say(say) => {
                let text = self.render(&say.text)?.into_owned();
                self.turn.texts.push(text);
                for media in &say.media {
                    let url = self.render(media)?.into_owned();
                    self.turn.media.push(url);
                }
                Ok(say.next.clone())
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
                Ok(set.next.clone())
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
                    .map(|(case, _)| case.next.clone())
                    .or_else(|| branch.default.clone()))
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
                self.end_flow();
                Ok(None)
            }
        }
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

    /// The flow is over: its state goes.
    fn end_flow(&mut self) {
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
        self.end_flow();
    }

    /// Saves a variable (at most [`MAX_SAVED_CHARS`]) in the state and the template context.
    fn save(&mut self, name: &str, value: &str) {
        let value = match value.char_indices().nth(MAX_SAVED_CHARS) {
            Some((cut, _)) => &value[..cut],
            None => value,
        };
        self.state.set(name, value);
        // A context built already sees the new value; one built later reads it from the state.
        if let Some(context) = &mut self.context {
            context.set(name, typed(value));
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
            for (name, value) in state.iter().filter(|(name, _)| !name.starts_with('_')) {
                context.set(name, typed(value));
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
