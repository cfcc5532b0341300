//! The real `sms-sessions` binary as a child process, for the tests that must see what an
//! operator sees: its exit status, and every line it writes (text or JSON logs).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long to wait for the binary to start or stop before failing the test.
const WAIT: Duration = Duration::from_secs(20);

/// Runs `sms-sessions ARGS` to completion with exactly `env` (nothing inherited).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sms-sessions"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run sms-sessions")
}

/// A running server; killed on drop if still running.
pub struct Server {
    child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<JoinHandle<String>>,
    pub addr: SocketAddr,
}

/// Everything the process wrote, once it has exited.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Server {
    /// `sms-sessions serve` on 127.0.0.1:0 with exactly `env` plus the listen address; waits
    /// for the "sms-sessions listening" line (text or JSON) and reads the port from it.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::launch(Self::command(), env, None)
    }

    /// [`Server::start`] with `--config FILE` (what only a file can set: `[flows.endpoints]`).
    pub fn start_with_config(config: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sms-sessions"));
        command.args(["--config", config, "serve"]);
        Self::launch(command, env, None)
    }

    /// [`Server::start`] with `dir` as the working directory.
    pub fn start_in(env: &[(&str, &str)], dir: &Path) -> Self {
        Self::launch(Self::command(), env, Some(dir))
    }

    /// [`Server::start`] under a soft open-file limit of `soft` (the hard one unchanged).
    pub fn start_with_soft_nofile(env: &[(&str, &str)], soft: u32) -> Self {
        let mut command = Command::new("/bin/sh");
        command.args([
            "-c",
            &format!("ulimit -S -n {soft} && exec \"$0\" serve"),
            env!("CARGO_BIN_EXE_sms-sessions"),
        ]);
        Self::launch(command, env, None)
    }

    fn command() -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sms-sessions"));
        command.arg("serve");
        command
    }

    fn launch(mut command: Command, env: &[(&str, &str)], dir: Option<&Path>) -> Self {
        command
            .env_clear()
            .envs(env.iter().copied())
            .env("SMS_SESSIONS_LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().expect("spawn sms-sessions");
        let (lines, stderr) = capture(&mut child);
        let mut server = Self {
            child,
            lines,
            stdout: Vec::new(),
            stderr: Some(stderr),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = server.wait_for_line(|line| line.contains("sms-sessions listening"));
        server.addr = address_in(&line).unwrap_or_else(|| panic!("no address in {line}"));
        server
    }

    /// Waits for a stdout line for which `wanted` holds; returns it.
    #[track_caller]
    pub fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        self.wait_for(|line| wanted(line).then(|| line.to_owned()))
    }

    /// Reads stdout lines until `pick` makes something of one; returns that.
    #[track_caller]
    pub fn wait_for<T>(&mut self, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            self.stdout.push(line.clone());
            if let Some(picked) = pick(&line) {
                return picked;
            }
        }
        // Its stderr is read to the end only once it has exited.
        let _ = self.child.kill();
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
        panic!(
            "no such line within {WAIT:?}; stdout so far:\n{}\nstderr:\n{}",
            self.stdout.join("\n"),
            stderr.unwrap_or_default()
        );
    }

    /// The stdout lines read so far.
    pub fn seen(&self) -> &[String] {
        &self.stdout
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id, for `/proc/PID/…`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (what `docker stop` sends: a graceful stop, so every log line is flushed).
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid} failed");
    }

    /// Whether the process has not exited yet (say, while it drains after SIGTERM).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// [`Server::terminate`], then [`Server::finish`].
    pub fn stop(self) -> Finished {
        self.terminate();
        self.finish()
    }

    /// Waits for the exit (after [`Server::terminate`]); returns everything the process wrote.
    pub fn finish(mut self) -> Finished {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit within {WAIT:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.stdout.extend(self.lines.iter()); // ends when the pipe closes
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
        Finished {
            status,
            stdout: std::mem::take(&mut self.stdout),
            stderr: stderr.unwrap_or_default(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Stdout line by line over a channel; stderr whole, once the process has closed it.
fn capture(child: &mut Child) -> (Receiver<String>, JoinHandle<String>) {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    (lines, stderr)
}

/// `address=127.0.0.1:PORT` (text logs) or `"address":"127.0.0.1:PORT"` (JSON logs).
pub fn address_in(line: &str) -> Option<SocketAddr> {
    let start = line.find("127.0.0.1:")?;
    let rest = &line[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Server {
    /// SIGKILL, as `kill -9` or a lost machine: no drain, no flush; waits for the exit.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGHUP (flows from files: load `flows.dir` again).
    pub fn hangup(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-HUP", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -HUP {pid} failed");
    }
}

/// [`run`], bounded: a process still running after `limit` is killed and the test fails
/// (a command that should exit at once must not hang the suite).
#[track_caller]
pub fn run_within(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sms-sessions"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sms-sessions");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sms-sessions {args:?} still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// A scratch directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "sms-sessions-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    /// The directory's path, as text.
    pub fn display(&self) -> String {
        self.0.display().to_string()
    }

    /// Writes `contents` to `name` in the directory; returns the file's path.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stdout line, which must be JSON (`SMS_SESSIONS_LOG_FORMAT=json`), parsed.
pub fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
}

/// Waits for a JSON log line whose `message` starts with `message`; returns it parsed.
#[track_caller]
pub fn log_line(server: &mut Server, message: &str) -> serde_json::Value {
    server.wait_for(|line| {
        let parsed = json(line);
        let wanted = parsed["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(message));
        wanted.then_some(parsed)
    })
}

/// `flow test` printed `ok      NAME` for each of `names` (`FLOW / TEST`) and that all of them
/// passed.
#[track_caller]
pub fn assert_flow_tests_passed(out: &str, names: &[String]) {
    for name in names {
        let ok = format!("ok      {name}");
        assert!(out.lines().any(|l| l == ok), "{ok:?} not run:\n{out}");
    }
    let summary = format!("flow tests passed: {}, failed: 0", names.len());
    assert!(out.lines().any(|l| l == summary), "{summary:?} in\n{out}");
}
