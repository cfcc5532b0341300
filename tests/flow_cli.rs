//! `sms-sessions flow check | test | graph` as a flow author runs them (issue 10, "Must
//! include" 6 and 7): the shipped flows pass both, and `flow test config/flows` runs here, in
//! `cargo test`; a directory of broken files gets every problem named with file, line, node
//! and why; a failing transcript shows expected against got; `flow graph` prints Mermaid.

mod common_spawn;

use std::process::{Command, Output};
use std::time::Duration;

use common_spawn::{TempDir, assert_flow_tests_passed, run_within};

const LIMIT: Duration = Duration::from_secs(30);

fn shipped_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/config/flows").to_owned()
}

/// `sms-sessions flow ARGS`, bounded, with an empty environment.
fn flow(args: &[&str]) -> Output {
    let mut all = vec!["flow"];
    all.extend_from_slice(args);
    run_within(&all, &[], LIMIT)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every `[[tests]]` of the shipped flows, as `FLOW / NAME`, read from the files themselves.
fn shipped_transcripts() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(shipped_dir()).expect("config/flows") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read flow");
        let file: toml::Table = toml::from_str(&text).expect("valid TOML");
        let flow = file["name"].as_str().expect("name").to_owned();
        let tests = file.get("tests").and_then(|t| t.as_array());
        for test in tests.into_iter().flatten() {
            let name = test["name"].as_str().expect("test name");
            names.push(format!("{flow} / {name}"));
        }
    }
    names
}

// ----------------------------------------------------------------------------- shipped flows

#[test]
fn flow_check_passes_the_shipped_flows() {
    let run = flow(&["check", &shipped_dir()]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let out = stdout(&run);
    assert!(out.contains("3 flows OK (booking, menu, survey)"), "{out}");
}

#[test]
fn flow_test_runs_every_transcript_of_the_shipped_flows() {
    let run = flow(&["test", &shipped_dir()]);
    let out = stdout(&run);
    assert_eq!(run.status.code(), Some(0), "{out}\n{}", stderr(&run));
    let transcripts = shipped_transcripts();
    assert!(transcripts.len() >= 12, "{transcripts:?}");
    assert_flow_tests_passed(&out, &transcripts);
}

/// The hand-off example: its transcripts pass offline (the `connect` is mocked), and with the
/// server config that names its agent, `flow check` checks the agent too.
#[test]
fn the_handoff_example_passes_test_and_check_against_its_config() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config/flows/handoff");
    let run = flow(&["test", dir]);
    let out = stdout(&run);
    assert_eq!(run.status.code(), Some(0), "{out}\n{}", stderr(&run));
    assert!(out.contains("flow tests passed: 2, failed: 0"), "{out}");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/handoff.toml");
    let check = Command::new(env!("CARGO_BIN_EXE_sms-sessions"))
        .args(["--config", config, "flow", "check", dir])
        .env_clear()
        .output()
        .expect("run sms-sessions");
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stdout(&check).contains("1 flow OK (intake)"));
}

#[test]
fn flow_test_of_one_file_runs_only_its_transcripts() {
    let survey = format!("{}/survey.toml", shipped_dir());
    let run = flow(&["test", &survey]);
    let out = stdout(&run);
    assert_eq!(run.status.code(), Some(0), "{out}\n{}", stderr(&run));
    assert!(out.contains("flow tests passed: 3, failed: 0"), "{out}");
    assert!(!out.contains("booking /"), "{out}");
}

// ---------------------------------------------------------------------------- broken files

/// (file, contents, the problem's `line:col: node NAME` or `line:col`, a piece of the reason).
const BROKEN: [(&str, &str, &str, &str); 10] = [
    (
        "missing_node.toml",
        "spec = 1\nname = \"missing_node\"\nstart = \"nowhere\"\n\n[[triggers]]\nkeywords = [\"MISSING\"]\n\n[nodes.hello]\ntype = \"end\"\ntext = \"hi\"\n",
        "3:1",
        "start: no node named \"nowhere\"",
    ),
    (
        "dangling.toml",
        "spec = 1\nname = \"dangling\"\nstart = \"ask\"\n\n[[triggers]]\nkeywords = [\"DANGLE\"]\n\n[nodes.ask]\ntype = \"ask\"\ntext = \"Yes?\"\nnext = \"ghost\"\n",
        "11:1: node ask",
        "no node named \"ghost\"",
    ),
    (
        "unreachable.toml",
        "spec = 1\nname = \"unreachable\"\nstart = \"hello\"\n\n[[triggers]]\nkeywords = [\"ISLAND\"]\n\n[nodes.hello]\ntype = \"end\"\ntext = \"hi\"\n\n[nodes.island]\ntype = \"end\"\ntext = \"nobody comes here\"\n",
        "12:8: node island",
        "unreachable",
    ),
    (
        "loop.toml",
        "spec = 1\nname = \"loop\"\nstart = \"one\"\n\n[[triggers]]\nkeywords = [\"LOOP\"]\n\n[nodes.one]\ntype = \"say\"\ntext = \"round\"\nnext = \"two\"\n\n[nodes.two]\ntype = \"say\"\ntext = \"and round\"\nnext = \"one\"\n",
        "8:8: node one",
        "loop without an ask",
    ),
    (
        "template.toml",
        "spec = 1\nname = \"template\"\nstart = \"greet\"\n\n[[triggers]]\nkeywords = [\"TEMPLATE\"]\n\n[nodes.greet]\ntype = \"end\"\ntext = \"Hello {{ name \"\n",
        "10:1: node greet",
        "template does not compile",
    ),
    (
        "regex.toml",
        "spec = 1\nname = \"regex\"\nstart = \"ask\"\n\n[[triggers]]\nkeywords = [\"REGEX\"]\n\n[nodes.ask]\ntype = \"ask\"\ntext = \"Code?\"\ncases = [ { test = \"has_pattern\", args = [\"(unclosed\"], next = \"done\" } ]\n\n[nodes.done]\ntype = \"end\"\n",
        "11:13: node ask",
        "cases.0.test: has_pattern: bad regular expression: unclosed group",
    ),
    (
        "unknown_test.toml",
        "spec = 1\nname = \"unknown_test\"\nstart = \"ask\"\n\n[[triggers]]\nkeywords = [\"UNKNOWNTEST\"]\n\n[nodes.ask]\ntype = \"ask\"\ntext = \"Colour?\"\ncases = [ { test = \"has_colour\", args = [\"red\"], next = \"done\" } ]\n\n[nodes.done]\ntype = \"end\"\n",
        "11:13: node ask",
        "unknown test \"has_colour\"",
    ),
    (
        "unknown_key.toml",
        "spec = 1\nname = \"unknown_key\"\nstart = \"ask\"\n\n[[triggers]]\nkeywords = [\"UNKNOWNKEY\"]\n\n[nodes.ask]\ntype = \"ask\"\ntext = \"Name?\"\nnxet = \"done\"\n\n[nodes.done]\ntype = \"end\"\n",
        "11:1: node ask",
        "unknown key `nxet`",
    ),
    (
        "opt_out.toml",
        "spec = 1\nname = \"opt_out\"\nstart = \"hello\"\n\n[[triggers]]\nkeywords = [\"STOP\"]\n\n[nodes.hello]\ntype = \"end\"\ntext = \"hi\"\n",
        "6:13",
        "\"STOP\" is an opt-out word",
    ),
    (
        "spec2.toml",
        "spec = 2\nname = \"spec2\"\nstart = \"hello\"\n\n[nodes.hello]\ntype = \"end\"\ntext = \"hi\"\n",
        "1:1",
        "spec 2",
    ),
];

fn broken_dir() -> TempDir {
    let dir = TempDir::new("broken");
    for (file, contents, _, _) in BROKEN {
        dir.write(file, contents);
    }
    dir.write(
        "fine.toml",
        "spec = 1\nname = \"fine\"\nstart = \"hi\"\n\n[[triggers]]\nkeywords = [\"FINE\"]\n\n[nodes.hi]\ntype = \"end\"\ntext = \"hi\"\n",
    );
    dir
}

#[test]
fn flow_check_names_every_problem_of_every_broken_file() {
    let dir = broken_dir();
    let run = flow(&["check", &dir.display()]);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    for (file, _, at, reason) in BROKEN {
        let wanted = format!("{}/{file}:{at}: ", dir.display());
        let found = err
            .lines()
            .any(|line| line.starts_with(&wanted) && line.contains(reason));
        assert!(found, "no {wanted}…{reason} in\n{err}");
    }
    // One problem, one line: each starts with the directory, and the count matches.
    let dir_prefix = format!("{}/", dir.display());
    let problems = err.lines().filter(|l| l.starts_with(&dir_prefix)).count();
    assert_eq!(err.lines().count(), problems + 1, "{err}");
    assert!(
        err.ends_with(&format!("{}: {problems} problems\n", dir.display())),
        "{err}"
    );
    assert!(
        !err.contains("fine.toml"),
        "a good file is no problem:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn flow_check_of_broken_files_named_one_by_one_names_them_too() {
    let dir = broken_dir();
    let loop_file = dir.write("loop.toml", BROKEN[3].1);
    let key_file = dir.write("unknown_key.toml", BROKEN[7].1);
    let run = flow(&["check", &loop_file, &key_file]);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{loop_file}:8:8: node one: loop without an ask")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{key_file}:11:1: node ask: unknown key `nxet`")),
        "{err}"
    );
}

#[test]
fn flow_test_refuses_to_test_a_broken_set() {
    let dir = broken_dir();
    let run = flow(&["test", &dir.display()]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(stderr(&run).contains("not tested"), "{}", stderr(&run));
}

// ----------------------------------------------------------------------- failing transcripts

const FAILING: &str = r#"spec = 1
name = "greeter"
start = "ask"

[[triggers]]
keywords = ["HI"]

[nodes.ask]
type = "ask"
text = "Your name?"
save = "name"
next = "done"

[nodes.done]
type = "end"
text = "Hello {{ name }}!"

[[tests]]
name = "greets by name"
chat = [ { send = "hi", expect = "Your name?" }, { send = "Ana", expect = "Hello Ana!" } ]

[[tests]]
name = "expects the wrong greeting"
chat = [ { send = "hi", expect = "Your*" }, { send = "Bo", expect = "Goodbye Bo!" } ]
"#;

#[test]
fn flow_test_shows_expected_against_got_and_exits_1() {
    let dir = TempDir::new("failing");
    let file = dir.write("greeter.toml", FAILING);
    let run = flow(&["test", &file]);
    let out = stdout(&run);
    assert_eq!(run.status.code(), Some(1), "{out}\n{}", stderr(&run));
    assert!(out.contains("ok      greeter / greets by name"), "{out}");
    assert!(
        out.contains("FAILED  greeter / expects the wrong greeting"),
        "{out}"
    );
    assert!(out.contains("exchange 2: sent \"Bo\""), "{out}");
    assert!(out.contains("- expected: Goodbye Bo!"), "{out}");
    assert!(out.contains("+      got: Hello Bo!"), "{out}");
    assert!(out.contains("flow tests passed: 1, failed: 1"), "{out}");
}

// ------------------------------------------------------------------------------------ graph

#[test]
fn flow_graph_prints_a_mermaid_flowchart_naming_every_node() {
    let file = format!("{}/booking.toml", shipped_dir());
    let run = flow(&["graph", &file]);
    let out = stdout(&run);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_eq!(out.lines().next(), Some("flowchart TD"), "{out}");
    let text = std::fs::read_to_string(&file).expect("booking.toml");
    let booking: toml::Table = toml::from_str(&text).expect("valid TOML");
    let nodes = booking["nodes"].as_table().expect("[nodes]");
    assert_eq!(nodes.len(), 13, "the booking flow as shipped");
    for name in nodes.keys() {
        assert!(
            out.contains(&format!("n_{name}")) && out.contains(&format!(": {name}\"")),
            "node {name} missing from\n{out}"
        );
    }
    for edge in [
        "n_start([\"booking\"]) --> n_welcome",
        "n_ask_service -- \"on_fail\" --> n_handoff",
        "n_decide -- \"default\" --> n_ask_day",
        "n_start -. \"on_expire\" .-> n_expired",
    ] {
        assert!(out.lines().any(|l| l.trim() == edge), "{edge:?} in\n{out}");
    }
}

#[test]
fn flow_graph_of_a_broken_file_names_the_problem_and_exits_1() {
    let dir = TempDir::new("graph");
    let file = dir.write("dangling.toml", BROKEN[1].1);
    let run = flow(&["graph", &file]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("no node named \"ghost\""),
        "{}",
        stderr(&run)
    );
    assert_eq!(stdout(&run), "");
}
