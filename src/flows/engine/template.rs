//! Templates of a flow set: MiniJinja, compiled once at load, rendered per step.
//!
//! One [`Templates`] (one MiniJinja `Environment`) holds every templated string of every flow
//! of a set, keyed by its own source text, so the step runner renders `node.text` directly.
//! The environment is strict and bounded:
//! - `UndefinedBehavior::Strict`: an unknown variable is an error, never an empty string;
//! - fuel [`FUEL`] per render: about ten thousand instructions / 640 KB, plenty for an SMS
//!   (1,600 characters at most) and a loop over a few dozen items, and a hard stop for a
//!   `{% for %}` over `range(100000)`;
//! - auto-escape off for every name (TwiML is escaped by the XML writer; escaping here would
//!   send `&amp;` to phones);
//! - a `date` filter (jiff strftime) over ISO dates, date-times, timestamps and times.
//!
//! The context ([`Context`]) is the flow's saved variables by name, `input` (this text),
//! `contact.from`/`contact.to`, `trigger.rest` (the words after the keyword, empty when the
//! flow was not started by one) and `attempts` (unusable replies so far at this ask).
//! A render error is a [`RenderError`] value for the step runner to route; nothing panics.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

/// Fuel per render (see the module doc).
pub const FUEL: u64 = 10_000;

/// The names a template may use besides the flow's variables.
pub const BUILTINS: [&str; 4] = ["input", "contact", "trigger", "attempts"];

/// The compiled templates of one flow set.
pub struct Templates {
    env: Environment<'static>,
}

/// A template that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template does not compile: {0}")]
pub struct CompileError(String);

/// A template that failed at run time: an unknown variable, a bad filter argument, no fuel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template failed: {0}")]
pub struct RenderError(String);

/// Whether `text` holds template syntax; plain text is sent as it is.
pub fn is_template(text: &str) -> bool {
    // One pass over the text: every `{`, and what follows it.
    let bytes = text.as_bytes();
    memchr::memchr_iter(b'{', bytes).any(|at| matches!(bytes.get(at + 1), Some(b'{' | b'%' | b'#')))
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.env.templates().count();
        f.debug_struct("Templates")
            .field("compiled", &count)
            .finish()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_debug(false);
        env.add_filter("date", date);
        Templates { env }
    }

    /// Compiles `source` (once; plain text needs nothing).
    pub fn add(&mut self, source: &str) -> Result<(), CompileError> {
        if !is_template(source) || self.env.get_template(source).is_ok() {
            return Ok(());
        }
        let owned = source.to_owned();
        self.env
            .add_template_owned(owned.clone(), owned)
            .map_err(|e| CompileError(describe(&e)))
    }

    /// The variables `source` reads that it does not set itself, with one level of attribute
    /// (`contact.from`, `slots`); globals such as `range` are left out. Empty for plain text
    /// or a template that was not added.
    pub fn variables(&self, source: &str) -> BTreeSet<String> {
        let Ok(template) = self.env.get_template(source) else {
            return BTreeSet::new();
        };
        let globals: BTreeSet<&str> = self.env.globals().map(|(name, _)| name).collect();
        let root = |name: &String| name.split('.').next().unwrap_or_default().to_owned();
        let used = template.undeclared_variables(true);
        used.into_iter()
            .filter(|name| !globals.contains(root(name).as_str()))
            .collect()
    }

    /// Renders `source` in `context`; plain text comes back borrowed.
    pub fn render<'s>(
        &self,
        source: &'s str,
        context: &Context,
    ) -> Result<Cow<'s, str>, RenderError> {
        if !is_template(source) {
            return Ok(Cow::Borrowed(source));
        }
        let template = self
            .env
            .get_template(source)
            .map_err(|_| RenderError("not compiled at load".into()))?;
        let context = Value::from_dyn_object(context.inner.clone());
        template
            .render(context)
            .map(Cow::Owned)
            .map_err(|e| RenderError(describe(&e)))
    }
}

/// MiniJinja's reason and the line in the template, without its name (the source itself).
fn describe(error: &Error) -> String {
    let mut text = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    if let Some(line) = error.line().filter(|&line| line > 1) {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// `{{ day | date('%a %b %-d') }}`: an ISO date (`2026-03-10`), date-time, timestamp (with
/// offset) or time (`14:30`) in strftime; the format defaults to `%Y-%m-%d`.
fn date(value: &Value, format: Option<&str>) -> Result<String, Error> {
    let text = value.to_string();
    let format = format.unwrap_or("%Y-%m-%d");
    // jiff reads a date out of a date-time too, so the most precise reading goes first.
    let formatted = if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        jiff::fmt::strtime::format(format, ts)
    } else if let Some(d) = text
        .parse::<jiff::civil::Date>()
        .ok()
        .filter(|_| text.len() == 10)
    {
        jiff::fmt::strtime::format(format, d)
    } else if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        jiff::fmt::strtime::format(format, dt)
    } else if let Ok(t) = text.parse::<jiff::civil::Time>() {
        jiff::fmt::strtime::format(format, t)
    } else {
        let reason = format!("date: {text:?} is not an ISO date, date-time or time");
        return Err(Error::new(ErrorKind::InvalidOperation, reason));
    };
    formatted.map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("date: {e}")))
}

/// What templates see during one step. Cheap to clone; `set` copies only while a render holds
/// it (never, between renders).
#[derive(Debug, Clone)]
pub struct Context {
    inner: Arc<Scope>,
}

#[derive(Debug, Clone)]
struct Scope {
    vars: BTreeMap<String, Value>,
    input: Value,
    /// `contact.from`, `contact.to`: made into an object only when a template asks.
    from: Value,
    to: Value,
    /// `trigger.rest`.
    trigger_rest: Value,
    attempts: Value,
}

/// `contact` as templates see it.
#[derive(Debug)]
struct Contact {
    from: Value,
    to: Value,
}

impl Object for Contact {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "from" => Some(self.from.clone()),
            "to" => Some(self.to.clone()),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["from", "to"])
    }
}

/// `trigger` as templates see it.
#[derive(Debug)]
struct Trigger {
    rest: Value,
}

impl Object for Trigger {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "rest").then(|| self.rest.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["rest"])
    }
}

impl Context {
    /// A context for the pair `from` → `to` (the texter and the Twilio number). Built only
    /// when a step renders a template; `contact` and `trigger` become objects only when a
    /// template reads them.
    pub fn new(from: &str, to: &str) -> Self {
        let scope = Scope {
            vars: BTreeMap::new(),
            input: Value::from(""),
            from: Value::from(from),
            to: Value::from(to),
            trigger_rest: Value::from(""),
            attempts: Value::from(0),
        };
        Context {
            inner: Arc::new(scope),
        }
    }

    fn scope(&mut self) -> &mut Scope {
        Arc::make_mut(&mut self.inner)
    }

    /// This text.
    pub fn set_input(&mut self, input: &str) {
        self.scope().input = Value::from(input);
    }

    /// The words after the trigger keyword.
    pub fn set_trigger_rest(&mut self, rest: &str) {
        self.scope().trigger_rest = Value::from(rest);
    }

    pub fn set_attempts(&mut self, attempts: u32) {
        self.scope().attempts = Value::from(attempts);
    }

    /// A flow variable as a template value.
    pub fn set(&mut self, name: &str, value: Value) {
        self.scope().vars.insert(name.to_owned(), value);
    }

    /// A flow variable kept as text in the session state, typed back with [`typed`].
    pub fn set_text(&mut self, name: &str, text: &str) {
        self.set(name, typed(text));
    }
}

/// A saved text as a template value: `true`/`false` as booleans and numbers written the way
/// they print (`7`, `-2`, `1.5`) as numbers, so `{{ pick - 1 }}` and `{% if vip %}` work;
/// anything else (`007`, `+1415…`, `1e3`) stays text so nothing is lost.
pub fn typed(text: &str) -> Value {
    match text {
        "true" => return Value::from(true),
        "false" => return Value::from(false),
        _ => {}
    }
    if is_canonical_integer(text)
        && let Ok(n) = text.parse::<i64>()
    {
        return Value::from(n);
    }
    if let Ok(x) = text.parse::<f64>()
        && x.is_finite()
        && x.to_string() == text
    {
        return Value::from(x);
    }
    Value::from(text)
}

/// Whether `text` is an integer as it prints (`7`, `-2`, `0`; not `+7`, `007` or `-0`),
/// checked without printing it.
fn is_canonical_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0"
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "input" => Some(self.input.clone()),
            "contact" => Some(Value::from_object(Contact {
                from: self.from.clone(),
                to: self.to.clone(),
            })),
            "trigger" => Some(Value::from_object(Trigger {
                rest: self.trigger_rest.clone(),
            })),
            "attempts" => Some(self.attempts.clone()),
            name => self.vars.get(name).cloned(),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let names = BUILTINS.iter().map(|&n| n.to_owned());
        let all: Vec<Value> = names
            .chain(self.vars.keys().cloned())
            .map(Value::from)
            .collect();
        Enumerator::Values(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        let mut context = Context::new("+14155550199", "+14155550100");
        context.set_text("service", "cleaning");
        context.set_text("day", "2026-03-10");
        context.set_text("pick", "2");
        context.set_text("name", "Ana <&> \"Bo\"");
        context
    }

    fn render(source: &str, context: &Context) -> Result<String, RenderError> {
        let mut templates = Templates::new();
        templates.add(source).expect("compiles");
        templates.render(source, context).map(Cow::into_owned)
    }

    #[test]
    fn renders_saved_variables_filters_and_contact() {
        let source = "Booked! {{ service | title }} on {{ day | date('%a %b %-d') }} at {{ ['9:00 AM', '2:00 PM'][pick - 1] }} for {{ contact.from }}.";
        assert_eq!(
            render(source, &context()).unwrap(),
            "Booked! Cleaning on Tue Mar 10 at 2:00 PM for +14155550199."
        );
    }

    #[test]
    fn template_syntax_is_told_from_plain_braces() {
        for text in [
            "{{ x }}",
            "a {% if x %}b{% endif %}",
            "{# note #}",
            "{ {{x}}",
            "{{",
        ] {
            assert!(is_template(text), "{text:?}");
        }
        for text in ["", "{", "a { b } c", "{ {", "trailing {", "}}", "%}"] {
            assert!(!is_template(text), "{text:?}");
        }
    }

    #[test]
    fn saved_texts_are_typed_only_when_nothing_is_lost() {
        assert_eq!(typed("7"), Value::from(7));
        assert_eq!(typed("-2"), Value::from(-2));
        assert_eq!(typed("0"), Value::from(0));
        assert_eq!(typed("1.5"), Value::from(1.5));
        assert_eq!(typed("true"), Value::from(true));
        for text in ["007", "+7", "+14155550100", "1e3", "12abc", "", "-"] {
            assert_eq!(typed(text), Value::from(text), "{text:?}");
        }
    }

    #[test]
    fn nothing_is_html_escaped() {
        assert_eq!(render("{{ name }}", &context()).unwrap(), "Ana <&> \"Bo\"");
    }

    #[test]
    fn plain_text_is_returned_borrowed_without_compiling() {
        let templates = Templates::new();
        let rendered = templates.render("Reply 1 or 2.", &context()).unwrap();
        assert!(matches!(rendered, Cow::Borrowed("Reply 1 or 2.")));
    }

    #[test]
    fn input_trigger_and_attempts_are_in_the_context() {
        let mut context = context();
        context.set_input("book tue");
        context.set_trigger_rest("tue");
        context.set_attempts(2);
        let out = render(
            "{{ input }}|{{ trigger.rest }}|{{ attempts + 1 }}",
            &context,
        );
        assert_eq!(out.unwrap(), "book tue|tue|3");
        assert_eq!(
            render("[{{ trigger.rest }}]", &Context::new("a", "b")).unwrap(),
            "[]"
        );
    }

    #[test]
    fn an_unknown_variable_is_an_error_not_an_empty_string() {
        let error = render("Hi {{ nmae }}", &context()).unwrap_err();
        assert_eq!(error.to_string(), "template failed: undefined value");
        let error = render("{{ contact.fax }}", &context()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("template failed: undefined value"),
            "{error}"
        );
    }

    #[test]
    fn a_runaway_loop_runs_out_of_fuel() {
        let error = render("{% for i in range(100000) %}x{% endfor %}", &context()).unwrap_err();
        assert!(error.to_string().contains("fuel"), "{error}");
        let error = render("{{ 'x' * 100000000 }}", &context()).unwrap_err();
        assert!(error.to_string().contains("fuel"), "{error}");
    }

    #[test]
    fn a_template_that_does_not_compile_says_why() {
        let mut templates = Templates::new();
        let error = templates.add("Hi {{ name ").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("template does not compile: syntax error"),
            "{error}"
        );
        let error = templates.add("a\nb {% if x %}").unwrap_err();
        assert!(error.to_string().ends_with("(line 2)"), "{error}");
    }

    #[test]
    fn a_template_not_added_at_load_fails_cleanly() {
        let error = Templates::new().render("{{ x }}", &context()).unwrap_err();
        assert_eq!(error.to_string(), "template failed: not compiled at load");
    }

    #[test]
    fn variables_lists_what_a_template_reads_without_globals_or_its_own_names() {
        let mut templates = Templates::new();
        let source = "{% set n = 1 %}{% for s in slots %}{{ s.label }}{{ n }}{% endfor %}{{ contact.from }}{{ range(3) | length }}{{ day | date }}";
        templates.add(source).unwrap();
        let names: Vec<String> = templates.variables(source).into_iter().collect();
        assert_eq!(names, ["contact.from", "day", "slots"]);
        assert!(templates.variables("plain").is_empty());
    }

    #[test]
    fn the_date_filter_reads_dates_datetimes_timestamps_and_times() {
        let date = |value: &str, format: &str| {
            let mut context = Context::new("a", "b");
            context.set_text("v", value);
            render(&format!("{{{{ v | date({format:?}) }}}}"), &context)
        };
        assert_eq!(date("2026-03-10", "%A %-d %B").unwrap(), "Tuesday 10 March");
        assert_eq!(date("2026-03-10T14:05:00", "%-I:%M %p").unwrap(), "2:05 PM");
        assert_eq!(date("2026-03-10T14:05:00Z", "%Y").unwrap(), "2026");
        assert_eq!(date("14:05", "%H.%M").unwrap(), "14.05");
        let error = date("next tuesday", "%Y").unwrap_err();
        assert!(error.to_string().contains("is not an ISO date"), "{error}");
        let error = date("2026-03-10", "%H").unwrap_err();
        assert!(error.to_string().contains("date:"), "{error}");
        assert_eq!(
            render("{{ day | date }}", &context()).unwrap(),
            "2026-03-10"
        );
    }

    #[test]
    fn saved_texts_are_typed_back_only_when_nothing_is_lost() {
        assert_eq!(typed("7"), Value::from(7));
        assert_eq!(typed("-2"), Value::from(-2));
        assert_eq!(typed("1.5"), Value::from(1.5));
        assert_eq!(typed("true"), Value::from(true));
        for text in ["007", "+14155550100", "1e3", "True", "", " 7", "NaN", "inf"] {
            assert_eq!(typed(text), Value::from(text), "{text:?} stays text");
        }
    }
}
