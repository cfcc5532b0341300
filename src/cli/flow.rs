//! `flow check`, `flow test` and `flow graph`: flows from files, offline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::ConfigArg;
use crate::config::Config;
use crate::flows::engine::definition::Node;
use crate::flows::engine::graph;
use crate::flows::engine::load::{FlowSet, load_dir_with, load_paths_with};
use crate::flows::engine::problem::Problem;
use crate::flows::engine::routing::Compiled;
use crate::flows::engine::transcript;
use crate::flows::files::{load_options, settings};

#[derive(Debug, Args)]
pub struct FlowArgs {
    #[command(subcommand)]
    pub command: FlowCommand,
}

#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Load and check flows: every problem, with file, line, node and why (exit 1 if any).
    Check {
        /// Flow files or directories of them [default: flows.dir]
        paths: Vec<PathBuf>,
    },
    /// Run the [[tests]] transcripts of flows, offline (exit 1 if one fails).
    Test {
        /// Flow files or directories of them [default: flows.dir]
        paths: Vec<PathBuf>,
    },
    /// Print a flow as a Mermaid flowchart (paste it into a ```mermaid block).
    Graph {
        /// One flow file.
        file: PathBuf,
    },
}

pub fn run(config: &ConfigArg, args: &FlowArgs) -> ExitCode {
    let config = match config.load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sms-sessions: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    match &args.command {
        FlowCommand::Check { paths } => check(&config, paths),
        FlowCommand::Test { paths } => test(&config, paths),
        FlowCommand::Graph { file } => graph(&config, file),
    }
}

/// A set of flows as loaded, named for the report.
type Loaded = (String, Result<FlowSet<Compiled>, Vec<Problem>>);

/// The sets named by `paths` (each directory one set, the files given together another), or
/// `flows.dir` when none is given.
fn load(config: &Config, paths: &[PathBuf]) -> Vec<Loaded> {
    let options = load_options(&config.flow, &config.session, &config.relay, false);
    let default = [config.flow.dir.clone()];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let (dirs, files): (Vec<&PathBuf>, Vec<&PathBuf>) = paths.iter().partition(|p| p.is_dir());
    let mut sets: Vec<_> = dirs
        .into_iter()
        .map(|dir| {
            (
                dir.display().to_string(),
                load_dir_with(dir, &options, &Compiled),
            )
        })
        .collect();
    if !files.is_empty() {
        let files: Vec<PathBuf> = files.into_iter().cloned().collect();
        let name = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        sets.push((name, load_paths_with(&files, &options, &Compiled)));
    }
    sets
}

fn check(config: &Config, paths: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for (name, set) in load(config, paths) {
        match set {
            Ok(set) => {
                let flows: Vec<&str> = set.flows().map(|flow| flow.name()).collect();
                println!(
                    "{name}: {} flow{} OK ({})",
                    flows.len(),
                    plural(flows.len()),
                    flows.join(", ")
                );
                let calls = set.flows().flat_map(|flow| flow.def.nodes.values());
                let calls = calls.filter(|node| matches!(node, Node::Call(_))).count();
                if calls > 0 && config.flow.endpoints.is_empty() {
                    eprintln!(
                        "{name}: note: the endpoints of {calls} call node{} were not checked, as \
                         the configuration has no [flows.endpoints] (give the server's with \
                         --config; the server refuses to start on an unknown one)",
                        plural(calls)
                    );
                }
            }
            Err(problems) => {
                failed = true;
                for problem in &problems {
                    eprintln!("{problem}");
                }
                eprintln!(
                    "{name}: {} problem{}",
                    problems.len(),
                    plural(problems.len())
                );
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn test(config: &Config, paths: &[PathBuf]) -> ExitCode {
    let settings = settings(config);
    let (mut passed, mut failed) = (0, 0);
    for (name, set) in load(config, paths) {
        let set = match set {
            Ok(set) => set,
            Err(problems) => {
                for problem in &problems {
                    eprintln!("{problem}");
                }
                eprintln!(
                    "{name}: not tested: {} problem{}",
                    problems.len(),
                    plural(problems.len())
                );
                failed += 1;
                continue;
            }
        };
        let mut settings = settings.clone();
        settings.default_flow = settings
            .default_flow
            .filter(|flow| set.flow(flow).is_some());
        for flow in set.flows() {
            for test in &flow.def.tests {
                match transcript::run(&set, &settings, test) {
                    Ok(()) => {
                        passed += 1;
                        println!("ok      {} / {}", flow.name(), test.name);
                    }
                    Err(failure) => {
                        failed += 1;
                        println!("FAILED  {} / {} ({})", flow.name(), test.name, flow.file);
                        for line in failure.explain().lines() {
                            println!("        {line}");
                        }
                    }
                }
            }
        }
    }
    println!("flow tests passed: {passed}, failed: {failed}");
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn graph(config: &Config, file: &Path) -> ExitCode {
    let options = load_options(&config.flow, &config.session, &config.relay, false);
    match load_paths_with(&[file.to_path_buf()], &options, &Compiled) {
        Ok(set) => {
            for flow in set.flows() {
                print!("{}", graph::mermaid(&flow.def));
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            ExitCode::from(1)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
