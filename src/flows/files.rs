//! Flows from files, as the server runs them (`flow.kind = "flows"`): the checked flow set of
//! `flows.dir` behind a lock and swapped whole on reload, one [`step`](super::engine::run::step) per
//! webhook with the clock read here and call-outs made by [`crate::callout`] within the
//! webhook's deadline, the results and opt-out hooks handed to the background, and the turn as
//! one TwiML `<Message>`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use jiff::Timestamp;
use tokio::time::Instant;

use super::engine::check::CheckOptions;
use super::engine::load::{FlowSet, LoadOptions, load_dir_with};
use super::engine::problem::Problem;
use super::engine::routing::Compiled;
use super::engine::run::{self, Inbound, Settings, Turn};
use super::{Flow, Reply, Trace};
use crate::callout::{Callouts, FlowEnded, Handoff, Hooks, StepCalls};
use crate::config::{Config, FlowConfig, RelayConfig, SessionConfig};
use crate::relay::Relay;
use crate::session::SessionData;
use crate::store::StoreUrl;
use crate::twilio::inbound::InboundMessage;
use crate::twilio::twiml::{Message, MessagingResponse, within_body_limit};

/// The problems that stopped a flow set from loading, one per line.
#[derive(Debug, Clone)]
pub struct LoadError(pub Vec<Problem>);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "{count} problem{} in the flows:",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// The flows of `flows.dir`, ready to answer texts.
pub struct FileFlows {
    set: RwLock<Arc<FlowSet<Compiled>>>,
    settings: Settings,
    dir: PathBuf,
    options: LoadOptions,
    callouts: Arc<Callouts>,
    /// Started on first use, inside the server's runtime (`check-config` loads flows too);
    /// taken by [`drain_hooks`](Self::drain_hooks) at shutdown.
    hooks: Mutex<Option<Hooks>>,
    config: Arc<FlowConfig>,
    /// For `connect` nodes: set by the server once the store is open.
    relay: OnceLock<Arc<Relay>>,
}

impl fmt::Debug for FileFlows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileFlows").field("dir", &self.dir).finish()
    }
}

/// How flows are loaded under this configuration.
///
/// The server checks every `call` against the configured endpoints; `flow check` and `flow
/// test` do too when any are configured (transcripts mock the calls, so flows can be tested
/// before the service exists).
pub fn load_options(
    flows: &FlowConfig,
    session: &SessionConfig,
    relay: &RelayConfig,
    serving: bool,
) -> LoadOptions {
    let endpoints = flows.endpoints.keys().cloned().collect();
    LoadOptions {
        check: CheckOptions {
            session_ttl: Some(session.ttl),
            endpoints: (serving || !flows.endpoints.is_empty()).then_some(endpoints),
            agents: (serving || !relay.agents.is_empty())
                .then(|| relay.agents.keys().cloned().collect()),
        },
        timezone: flows.timezone.clone(),
    }
}

/// What a step needs from this configuration: the state's limit is the cookie's, or in a
/// store mode `store.max_state_bytes`.
pub fn settings(config: &Config) -> Settings {
    let flows = &config.flow;
    let in_cookie = config.store.url == StoreUrl::Cookie;
    Settings {
        default_flow: flows.default.clone(),
        max_steps: flows.max_steps,
        help_reply: flows.help_reply.clone(),
        cookie_name: in_cookie.then(|| config.session.cookie_name.clone()),
        max_state_bytes: (!in_cookie).then_some(config.store.max_state_bytes),
        max_calls: flows.max_calls,
        keep_results: flows.results.is_some(),
    }
}

/// Loads and checks every flow of `dir`, and that `default` (`flows.default`) is one of them;
/// every problem of every file on failure.
fn load_set(
    dir: &Path,
    options: &LoadOptions,
    default: Option<&str>,
) -> Result<FlowSet<Compiled>, LoadError> {
    let set = load_dir_with(dir, options, &Compiled).map_err(LoadError)?;
    match default {
        Some(default) if set.flow(default).is_none() => Err(LoadError(vec![Problem {
            file: dir.display().to_string(),
            at: None,
            node: None,
            message: format!(
                "flows.default names {default:?}, which no file in the directory defines"
            ),
        }])),
        _ => Ok(set),
    }
}

impl FileFlows {
    /// Loads and checks every flow of `flows.dir`; every problem of every file on failure.
    pub fn load(
        config: &Config,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Result<Self, LoadError> {
        let flows = &config.flow;
        let options = load_options(flows, &config.session, &config.relay, true);
        let settings = settings(config);
        let set = load_set(&flows.dir, &options, settings.default_flow.as_deref())?;
        Ok(FileFlows {
            set: RwLock::new(Arc::new(set)),
            settings,
            dir: flows.dir.clone(),
            options,
            callouts: Arc::new(match metrics {
                Some(metrics) => Callouts::new(flows).with_metrics(metrics),
                None => Callouts::new(flows),
            }),
            hooks: Mutex::new(None),
            relay: OnceLock::new(),
            config: Arc::new(flows.clone()),
        })
    }

    /// Hands an event to the background sender of the results and opt-out hooks.
    fn hook(&self, send: impl FnOnce(&Hooks)) {
        let mut hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
        let hooks = hooks.get_or_insert_with(|| {
            Hooks::start(
                self.callouts.clone(),
                self.config.results.clone(),
                self.config.on_opt_out.clone(),
            )
        });
        send(hooks);
    }

    /// Queues the opt-out hook for a texter whose STOP the relay took (the flows never see it).
    pub fn relay_opted_out(&self, message: &InboundMessage<'_>) {
        if self.config.on_opt_out.is_some() {
            self.hook(|hooks| hooks.opted_out(message.from, message.to, message.message_sid));
        }
    }

    /// The relay `connect` nodes hand texters over with; set once, when the store opens (a
    /// second call changes nothing).
    pub fn set_relay(&self, relay: Arc<Relay>) {
        let _ = self.relay.set(relay);
    }

    /// At shutdown: waits up to `within` for the hooks still queued; `false` if some were not
    /// delivered by then.
    pub async fn drain_hooks(&self, within: std::time::Duration) -> bool {
        let hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner()).take();
        match hooks {
            Some(hooks) => hooks.drain(within).await,
            None => true,
        }
    }

    /// Loads the directory again and swaps the new set in; a set with problems is refused and
    /// the old one kept. Webhooks in flight finish on the set they started with.
    pub fn reload(&self) -> Result<usize, LoadError> {
        let default = self.settings.default_flow.as_deref();
        let set = load_set(&self.dir, &self.options, default)?;
        let count = set.flows().count();
        *self
            .set
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(set);
        Ok(count)
    }

    /// The set now in use.
    pub fn current(&self) -> Arc<FlowSet<Compiled>> {
        self.set
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// One step at `now`, its call-outs ending by `deadline`; the hooks it calls for are
    /// queued (never awaited).
    pub async fn turn(
        &self,
        message: &InboundMessage<'_>,
        state: &mut SessionData,
        now: Timestamp,
        deadline: Instant,
    ) -> Turn {
        let inbound = Inbound {
            text: message.body,
            from: message.from,
            to: message.to,
            opt_out_type: message.opt_out_type,
            message_sid: message.message_sid,
            now,
        };
        let handoff = self.relay.get().map(|relay| Handoff {
            relay,
            texter: message.from,
            number: message.to,
        });
        let calls = StepCalls::new(&self.callouts, deadline).with_handoff(handoff);
        let set = self.current();
        let turn = run::step(&set, &self.settings, &inbound, state, &calls).await;
        if turn.outcome == run::Outcome::OptedOut && self.config.on_opt_out.is_some() {
            self.hook(|hooks| hooks.opted_out(message.from, message.to, message.message_sid));
        }
        if let Some(ended) = &turn.ended
            && self.config.results.is_some()
        {
            let ended = FlowEnded {
                flow: ended.flow.clone(),
                outcome: ended.outcome,
                from: message.from.to_owned(),
                to: message.to.to_owned(),
                message_sid: message.message_sid.to_owned(),
                variables: ended.variables.clone(),
            };
            self.hook(|hooks| hooks.flow_ended(ended));
        }
        turn
    }
}

/// A turn as TwiML: one `<Message>` with every text and the media, or nothing.
pub fn twiml(turn: &Turn) -> MessagingResponse {
    let mut response = MessagingResponse::new();
    if turn.texts.is_empty() && turn.media.is_empty() && turn.outbound.is_empty() {
        return response;
    }
    let mut message = Message::new(within_twilios_limit(turn.body(), turn));
    for (index, url) in turn.media.iter().enumerate() {
        if message.media(url.as_str()).is_err() {
            tracing::warn!(
                flow = turn.flow.as_deref(),
                dropped = turn.media.len() - index,
                "a turn had more media than one message carries; the rest were dropped"
            );
            break;
        }
    }
    response.push(message);
    for outbound in &turn.outbound {
        let mut message = Message::new(within_twilios_limit(outbound.text.clone(), turn));
        message
            .to(outbound.to.as_str())
            .from(outbound.from.as_str());
        response.push(message);
    }
    response
}

/// The body within Twilio's limit ([`within_body_limit`]), with a warning if a turn ran long.
fn within_twilios_limit(body: String, turn: &Turn) -> String {
    within_body_limit(body).unwrap_or_else(|(cut, chars)| {
        tracing::warn!(
            flow = turn.flow.as_deref(),
            node = turn.node.as_deref(),
            chars,
            "a turn's texts ran past Twilio's 1,600 characters; the reply was cut"
        );
        cut
    })
}

impl Flow for FileFlows {
    /// Without the server's deadline, call-outs get `server.request_timeout`'s default (10 s).
    async fn reply(
        &self,
        message: &InboundMessage<'_>,
        state: &mut SessionData,
    ) -> MessagingResponse {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        self.respond(message, state, deadline).await.response
    }

    async fn respond(
        &self,
        message: &InboundMessage<'_>,
        state: &mut SessionData,
        deadline: Instant,
    ) -> Reply {
        let turn = self.turn(message, state, Timestamp::now(), deadline).await;
        Reply {
            response: twiml(&turn),
            trace: Some(Trace {
                flow: turn.flow,
                node: turn.node,
                outcome: turn.outcome.as_str(),
                call_errors: turn
                    .call_errors
                    .into_iter()
                    .map(|error| (error.node, error.reason))
                    .collect(),
                handoff: turn.handoff,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::engine::run::Outcome;
    use crate::twilio::twiml::MAX_BODY_CHARS;

    fn turn(texts: &[&str]) -> Turn {
        Turn {
            texts: texts.iter().map(|t| (*t).to_owned()).collect(),
            media: Vec::new(),
            outcome: Outcome::Answered,
            flow: Some("f".into()),
            node: None,
            error: None,
            call_errors: Vec::new(),
            ended: None,
            outbound: Vec::new(),
            handoff: None,
        }
    }

    #[test]
    fn a_turn_is_one_message_and_an_empty_turn_is_no_message() {
        let xml = twiml(&turn(&["One.", "Two?"])).to_xml();
        assert!(
            xml.ends_with("<Response><Message>One.\n\nTwo?</Message></Response>"),
            "{xml}"
        );
        assert!(twiml(&turn(&[])).is_empty());
    }

    #[test]
    fn a_reply_past_twilios_limit_is_cut_to_it() {
        let exactly = "é".repeat(MAX_BODY_CHARS);
        assert_eq!(within_twilios_limit(exactly.clone(), &turn(&[])), exactly);
        let over = "é".repeat(MAX_BODY_CHARS + 1);
        let cut = within_twilios_limit(over, &turn(&[]));
        assert_eq!(cut.chars().count(), MAX_BODY_CHARS);
        assert!(cut.ends_with("é…"));
    }
}
