//! The server under test as a child process: spawned (pinned to core 0 when `taskset` exists),
//! its stdout drained and counted, its CPU time and memory read from `/proc`.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How to start one server.
#[derive(Clone)]
pub struct Target {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

pub struct Running {
    child: Child,
    pub addr: SocketAddr,
    pub spawned_at: Instant,
    log_lines: Arc<AtomicU64>,
    drain: Option<JoinHandle<()>>,
}

impl Running {
    /// Starts `target` on a free loopback port, passed as `{addr}` in its args and env.
    pub fn start(target: &Target, pin: Option<&str>) -> std::io::Result<Self> {
        let addr = free_port()?;
        let fill = |text: &str| text.replace("{addr}", &addr.to_string());
        let mut command = match pin {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpu]).arg(&target.program);
                command
            }
            None => Command::new(&target.program),
        };
        command
            .args(target.args.iter().map(|a| fill(a)))
            .env_remove("PORT")
            .envs(target.env.iter().map(|(k, v)| (k, fill(v))))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let spawned_at = Instant::now();
        let mut child = command.spawn()?;
        let log_lines = Arc::new(AtomicU64::new(0));
        let stdout = child.stdout.take().expect("piped");
        let drain = Some(drain_lines(stdout, log_lines.clone()));
        Ok(Self {
            child,
            addr,
            spawned_at,
            log_lines,
            drain,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User and system CPU ticks so far (all threads), from `/proc/PID/stat`.
    pub fn cpu_ticks(&self) -> std::io::Result<(u64, u64)> {
        proc_ticks(self.pid())
    }

    /// How it exited, if it has (a server that cannot start exits at once).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// A `/proc/PID/status` memory field (`VmRSS`, `VmHWM`) in KiB.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// SIGTERM (graceful shutdown, logs flushed), then waits; SIGKILL after 10 s. Returns the
    /// number of lines the server wrote to stdout.
    pub fn stop(mut self) -> u64 {
        terminate(&mut self.child, Duration::from_secs(10));
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        self.log_lines.load(Ordering::Relaxed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM to `child`, then SIGKILL if it is still there after `grace`; reaps it.
pub fn terminate(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A process's user and system CPU ticks so far (all threads), from `/proc/PID/stat`.
pub fn proc_ticks(pid: u32) -> std::io::Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name, which may hold spaces: state is field 3,
    // utime 14 and stime 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(utime), Some(stime)) => Ok((utime, stime)),
        _ => Err(std::io::Error::other("unexpected /proc/PID/stat")),
    }
}

/// Reads the server's stdout as a log collector would, counting lines.
fn drain_lines(mut stdout: impl Read + Send + 'static, lines: Arc<AtomicU64>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = stdout.read(&mut buffer) {
            let newlines = buffer[..n].iter().filter(|&&b| b == b'\n').count();
            lines.fetch_add(newlines as u64, Ordering::Relaxed);
        }
    })
}

/// A loopback port that was free a moment ago.
fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// `getconf CLK_TCK` (almost always 100).
pub fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100)
}

/// Whether `taskset` (util-linux) can pin processes here, on a machine with 2+ cores.
pub fn can_pin() -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores >= 2
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Moves this process (all its threads) to `cpu`.
pub fn pin_self(cpu: &str) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", cpu, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
