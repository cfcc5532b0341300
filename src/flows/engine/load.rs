//! Loading flows: every `*.toml` of a directory (sorted) parsed, checked and compiled into a
//! [`FlowSet`], or every problem of every file.
//!
//! The set is what the step runner holds (behind an `Arc`, swapped whole on reload): flows by
//! name, a keyword index, the one template environment, and per node the routing tests and
//! typed expect compiled by the [`Routing`] seam. A flow's [`Version`] (4 bytes of SHA-256 of
//! the file, as 8 hex digits) goes into the session state, so a conversation can tell when
//! its flow changed under it.
//!
//! Loading and checking 100 flow files the size of the shipped booking flow takes about 29 ms
//! in release (`cargo bench --bench webhook -- flow/load_and_check_100_files`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use sha2::{Digest, Sha256};

use super::check::{CheckOptions, Routing, Unchecked, check_flow, check_set};
use super::definition::{FlowDef, Node, parse};
use super::problem::{Problem, Source};
use super::template::Templates;

/// What loading needs from the server configuration.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub check: CheckOptions,
    /// The zone of a flow without `timezone` (UTC unless the server config says otherwise).
    pub timezone: TimeZone,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            check: CheckOptions::default(),
            timezone: TimeZone::UTC,
        }
    }
}

/// A flow file's name and text, as read.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub file: String,
    pub text: String,
}

/// A short fingerprint of a flow file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version([u8; 4]);

impl Version {
    pub fn of(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        Version([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Checked, compiled flows.
pub struct FlowSet<R: Routing = Unchecked> {
    flows: BTreeMap<String, Flow<R>>,
    keywords: HashMap<String, Keyword>,
    templates: Templates,
}

/// A keyword that starts a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword {
    pub flow: String,
    /// The keyword as the whole text also interrupts a waiting flow.
    pub interrupt: bool,
}

/// One checked flow.
pub struct Flow<R: Routing = Unchecked> {
    pub file: String,
    pub version: Version,
    pub def: FlowDef,
    /// `timezone`, or the loader's default.
    pub timezone: TimeZone,
    routing: HashMap<String, Routed<R>>,
}

/// What the routing seam compiled for one node.
struct Routed<R: Routing> {
    tests: Vec<R::Test>,
    expect: Option<R::Expect>,
}

/// A node with what was compiled for it.
pub struct NodeRef<'a, R: Routing> {
    pub name: &'a str,
    pub node: &'a Node,
    /// One per `cases` entry, in order.
    pub tests: &'a [R::Test],
    /// For an `ask`.
    pub expect: Option<&'a R::Expect>,
}

impl<R: Routing> FlowSet<R> {
    pub fn flow(&self, name: &str) -> Option<&Flow<R>> {
        self.flows.get(name)
    }

    /// The node `node` of flow `flow`: two map look-ups.
    pub fn node(&self, flow: &str, node: &str) -> Option<NodeRef<'_, R>> {
        self.flow(flow)?.node(node)
    }

    /// The flow a first word starts, any case.
    pub fn keyword(&self, word: &str) -> Option<&Keyword> {
        self.keywords.get(&word.to_uppercase())
    }

    /// Every flow, by name.
    pub fn flows(&self) -> impl Iterator<Item = &Flow<R>> {
        self.flows.values()
    }

    /// The compiled templates of every flow of the set.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }
}

impl<R: Routing> Flow<R> {
    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn node(&self, name: &str) -> Option<NodeRef<'_, R>> {
        let (name, node) = self.def.nodes.get_key_value(name)?;
        let routed = self.routing.get(name)?;
        let (tests, expect) = (routed.tests.as_slice(), routed.expect.as_ref());
        Some(NodeRef {
            name,
            node,
            tests,
            expect,
        })
    }
}

impl<R: Routing> fmt::Debug for FlowSet<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&String> = self.flows.keys().collect();
        f.debug_struct("FlowSet").field("flows", &names).finish()
    }
}

/// Every `*.toml` file directly in `dir`, sorted, as one set.
pub fn load_dir(dir: &Path, options: &LoadOptions) -> Result<FlowSet, Vec<Problem>> {
    load_dir_with(dir, options, &Unchecked)
}

/// One file as a set of one flow (for `flow test FILE`, `flow graph FILE`).
pub fn load_file(file: &Path, options: &LoadOptions) -> Result<FlowSet, Vec<Problem>> {
    load_paths_with(&[file.to_path_buf()], options, &Unchecked)
}

pub fn load_dir_with<R: Routing>(
    dir: &Path,
    options: &LoadOptions,
    routing: &R,
) -> Result<FlowSet<R>, Vec<Problem>> {
    load_paths_with(&[dir.to_path_buf()], options, routing)
}

/// Files and directories (each directory's `*.toml`, sorted) as one set.
pub fn load_paths_with<R: Routing>(
    paths: &[PathBuf],
    options: &LoadOptions,
    routing: &R,
) -> Result<FlowSet<R>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    for path in paths {
        match flow_files(path) {
            Ok(files) => sources.extend(files.iter().filter_map(|f| read(f, &mut problems))),
            Err(problem) => problems.push(problem),
        }
    }
    match build(&sources, options, routing) {
        Ok(set) if problems.is_empty() => Ok(set),
        Ok(_) => Err(problems),
        Err(more) => Err(problems.into_iter().chain(more).collect()),
    }
}

fn flow_files(path: &Path) -> Result<Vec<PathBuf>, Problem> {
    let fail = |message: String| Problem {
        file: path.display().to_string(),
        at: None,
        node: None,
        message,
    };
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(fail("no *.toml flow files here".into()));
    }
    Ok(files)
}

fn read(path: &Path, problems: &mut Vec<Problem>) -> Option<SourceFile> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Some(SourceFile { file, text }),
        Err(e) => {
            let message = format!("cannot read: {e}");
            problems.push(Problem {
                file,
                at: None,
                node: None,
                message,
            });
            None
        }
    }
}

/// Parses, checks and compiles flow texts already in memory: the loader's core.
pub fn build<R: Routing>(
    sources: &[SourceFile],
    options: &LoadOptions,
    routing: &R,
) -> Result<FlowSet<R>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut templates = Templates::new();
    let mut parsed = Vec::new();
    for file in sources {
        let source = Source {
            file: &file.file,
            text: &file.text,
        };
        match parse(source.file, source.text) {
            Ok(def) => {
                problems.extend(check_flow(source, &def, &options.check, &mut templates));
                parsed.push((source, def));
            }
            Err(found) => problems.extend(found),
        }
    }
    let pairs: Vec<(Source<'_>, &FlowDef)> = parsed.iter().map(|(s, d)| (*s, d)).collect();
    problems.extend(check_set(&pairs));
    let mut flows = BTreeMap::new();
    for (source, def) in parsed {
        match compile(source, def, options, routing) {
            Ok(flow) => drop(flows.insert(flow.def.name.clone(), flow)),
            Err(found) => problems.extend(found),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let keywords = keyword_index(&flows);
    Ok(FlowSet {
        flows,
        keywords,
        templates,
    })
}

fn compile<R: Routing>(
    source: Source<'_>,
    def: FlowDef,
    options: &LoadOptions,
    routing: &R,
) -> Result<Flow<R>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut compiled = HashMap::new();
    for (name, node) in &def.nodes {
        let mut at = |key: String, reason: String| {
            let path: Vec<&str> = ["nodes", name].into_iter().chain(key.split('.')).collect();
            let message = format!("{key}: {reason}");
            problems.push(source.problem_at(&path, Some(name), message));
        };
        let (cases, ask) = match node {
            Node::Ask(ask) => (ask.cases.as_slice(), Some(ask)),
            Node::Branch(branch) => (branch.cases.as_slice(), None),
            _ => (&[][..], None),
        };
        let mut tests = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            match routing.test(case) {
                Ok(test) => tests.push(test),
                Err(reason) => at(format!("cases.{i}.test"), reason),
            }
        }
        let expect = ask.and_then(|ask| match routing.expect(ask) {
            Ok(expect) => Some(expect),
            Err(reason) => {
                at("expect".into(), reason);
                None
            }
        });
        compiled.insert(name.clone(), Routed { tests, expect });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let zone = def
        .timezone
        .as_deref()
        .and_then(|z| jiff::tz::db().get(z).ok());
    Ok(Flow {
        file: source.file.to_owned(),
        version: Version::of(source.text.as_bytes()),
        timezone: zone.unwrap_or_else(|| options.timezone.clone()),
        def,
        routing: compiled,
    })
}

fn keyword_index<R: Routing>(flows: &BTreeMap<String, Flow<R>>) -> HashMap<String, Keyword> {
    let mut index = HashMap::new();
    for flow in flows.values() {
        for trigger in &flow.def.triggers {
            for keyword in &trigger.keywords {
                let entry = Keyword {
                    flow: flow.def.name.clone(),
                    interrupt: trigger.interrupt,
                };
                index.entry(keyword.trim().to_uppercase()).or_insert(entry);
            }
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLINIC: &str = include_str!("testdata/clinic.toml");

    fn temp_dir(label: &str) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("flowdef-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn testdata() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/flows/engine/testdata")
    }

    #[test]
    fn a_directory_loads_into_a_set_with_nodes_keywords_and_versions() {
        let set = load_dir(&testdata(), &LoadOptions::default()).expect("the test data loads");
        let clinic = set.flow("clinic").expect("by name");
        assert_eq!(clinic.version, Version::of(CLINIC.as_bytes()));
        assert_eq!(clinic.version.to_string().len(), 8);
        assert_eq!(clinic.timezone.iana_name(), Some("America/New_York"));
        let node = set.node("clinic", "confirm").expect("by flow and node");
        assert_eq!(
            (node.name, node.node.kind(), node.tests.len()),
            ("confirm", "ask", 2)
        );
        assert!(node.expect.is_some());
        assert!(set.node("clinic", "nope").is_none() && set.node("nope", "confirm").is_none());
        let keyword = set.keyword("appt").expect("any case");
        assert_eq!(
            (keyword.flow.as_str(), keyword.interrupt),
            ("clinic", false)
        );
        assert!(set.keyword("dentist").unwrap().interrupt);
        assert!(set.keyword("stop").is_none());
    }

    #[test]
    fn the_loaded_templates_render_the_example() {
        let set = load_file(&testdata().join("clinic.toml"), &LoadOptions::default()).unwrap();
        let Node::End(done) = set.node("clinic", "done").unwrap().node else {
            panic!("an end")
        };
        let mut context = super::super::template::Context::new("+14155550199", "+14155550100");
        for (name, value) in [
            ("service", "cleaning"),
            ("day", "2026-03-10"),
            ("pick", "2"),
        ] {
            context.set_text(name, value);
        }
        context.set_text("morning", "9:00 AM");
        context.set_text("afternoon", "2:00 PM");
        context.set_text("name", "Ana");
        let text = set
            .templates()
            .render(done.text.as_deref().unwrap(), &context)
            .unwrap();
        assert_eq!(
            text,
            "Booked! Cleaning on Tue Mar 10 at 2:00 PM, for Ana (+14155550199). Text BOOK to book again."
        );
    }

    #[test]
    fn a_flow_without_timezone_takes_the_default_and_the_version_follows_the_bytes() {
        let text = "spec = 1\nname = \"t\"\nstart = \"a\"\n[nodes.a]\ntype = \"end\"\n";
        let sources = [SourceFile {
            file: "t.toml".into(),
            text: text.into(),
        }];
        let zone = jiff::tz::db().get("Europe/Lisbon").unwrap();
        let options = LoadOptions {
            timezone: zone,
            ..LoadOptions::default()
        };
        let set = build(&sources, &options, &Unchecked).unwrap();
        assert_eq!(
            set.flow("t").unwrap().timezone.iana_name(),
            Some("Europe/Lisbon")
        );
        assert_ne!(
            Version::of(text.as_bytes()),
            Version::of(format!("{text}\n").as_bytes())
        );
    }

    #[test]
    fn a_missing_or_empty_directory_and_unreadable_files_are_problems() {
        let missing = Path::new("/nonexistent/flows/booking.toml");
        let found = load_file(missing, &LoadOptions::default()).unwrap_err();
        assert!(
            found[0]
                .to_string()
                .starts_with("/nonexistent/flows/booking.toml: cannot read:")
        );
        let empty = temp_dir("empty");
        std::fs::write(empty.join("README.md"), "not a flow").unwrap();
        let found = load_dir(&empty, &LoadOptions::default()).unwrap_err();
        assert_eq!(found[0].message, "no *.toml flow files here");
        std::fs::write(empty.join("bad.toml"), [0xff, 0xfe]).unwrap();
        let found = load_dir(&empty, &LoadOptions::default()).unwrap_err();
        assert!(found[0].message.starts_with("cannot read:"), "{found:?}");
        let _ = std::fs::remove_dir_all(&empty);
    }

    /// Timing lives in `cargo bench -- flow/load_and_check_100_files`; this pins that a
    /// directory of 100 flows loads whole.
    #[test]
    fn a_hundred_files_load_as_one_set() {
        let dir = temp_dir("hundred");
        for i in 0..100 {
            let text = CLINIC
                .replace("name = \"clinic\"", &format!("name = \"clinic{i}\""))
                .replace(
                    "[\"BOOK\", \"APPT\"]",
                    &format!("[\"BOOK{i}\", \"APPT{i}\"]"),
                )
                .replace("[\"DENTIST\"]", &format!("[\"DENTIST{i}\"]"));
            std::fs::write(dir.join(format!("flow{i:03}.toml")), text).unwrap();
        }
        let set = load_dir(&dir, &LoadOptions::default()).expect("all load");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(set.flows().count(), 100);
    }
}
