//! The store behind a run (issue 11's `SMS_SESSIONS_STORE`): none (`cookie`), the server's
//! own memory, a fresh SQLite file in a temporary directory, or a `redis-server` of the run's
//! own on a free loopback port (pinned to core 1 with the load: core 0 is the server's). What a
//! run starts here it stops and removes when it ends, whatever way it ends.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::ValueEnum;

/// Where the server keeps conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// In the signed cookie Twilio keeps (the server's default).
    Cookie,
    Memory,
    Sqlite,
    Redis,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Cookie => "cookie",
            Mode::Memory => "memory",
            Mode::Sqlite => "sqlite",
            Mode::Redis => "redis",
        }
    }
}

/// The store of one run, ready before the server starts.
pub struct Backing {
    pub mode: Mode,
    /// `SMS_SESSIONS_STORE` (`None`: left unset, the cookie default).
    pub url: Option<String>,
    _dir: Option<TempDir>,
    redis: Option<Redis>,
}

impl Backing {
    /// Prepares `mode`'s store; `pin`: the core a Redis of its own runs on.
    pub fn start(mode: Mode, pin: Option<&str>) -> Result<Self, String> {
        let (url, dir, redis) = match mode {
            Mode::Cookie => (None, None, None),
            Mode::Memory => (Some("memory".to_owned()), None, None),
            Mode::Sqlite => {
                let dir = TempDir::new()
                    .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
                let url = format!("sqlite:{}", dir.0.join("state.db").display());
                (Some(url), Some(dir), None)
            }
            Mode::Redis => {
                let redis = Redis::start(pin)?;
                let url = format!("redis://{}/0", redis.addr);
                (Some(url), None, Some(redis))
            }
        };
        Ok(Self {
            mode,
            url,
            _dir: dir,
            redis,
        })
    }

    /// The Redis's user and system CPU ticks so far, when the run has one.
    pub fn cpu_ticks(&self) -> Result<Option<(u64, u64)>, String> {
        let Some(redis) = &self.redis else {
            return Ok(None);
        };
        crate::server::proc_ticks(redis.child.id())
            .map(Some)
            .map_err(|e| format!("redis-server: {e}"))
    }
}

/// The `redis-server` to start: `SMS_SESSIONS_REDIS_SERVER`, else the one on `PATH`.
pub fn redis_program() -> Result<PathBuf, String> {
    if let Some(program) = std::env::var_os("SMS_SESSIONS_REDIS_SERVER") {
        let program = PathBuf::from(program);
        if !program.is_file() {
            let shown = program.display();
            return Err(format!("SMS_SESSIONS_REDIS_SERVER={shown} is not a file"));
        }
        return Ok(program);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "the redis run needs redis-server: none on PATH (install Redis, or set \
             SMS_SESSIONS_REDIS_SERVER to its path)"
                .into()
        })
}

/// A throwaway `redis-server`: no persistence, loopback only, never on 6379.
struct Redis {
    child: Child,
    addr: SocketAddr,
}

impl Redis {
    fn start(pin: Option<&str>) -> Result<Self, String> {
        let program = redis_program()?;
        let addr = free_port_but_6379().map_err(|e| format!("no free port for Redis: {e}"))?;
        let mut command = match pin {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpu]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        command
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(["--port", &addr.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let mut redis = Self { child, addr };
        redis.wait_ready()?;
        Ok(redis)
    }

    /// Until it answers PING (it exits, or 5 s pass: an error).
    fn wait_ready(&mut self) -> Result<(), String> {
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("redis-server exited at start ({status})"));
            }
            if ping(self.addr) {
                return Ok(());
            }
            if Instant::now() > give_up {
                return Err(format!(
                    "redis-server did not answer on {} in 5 s",
                    self.addr
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Redis {
    /// SIGTERM, then SIGKILL if it is still there after 5 s.
    fn drop(&mut self) {
        crate::server::terminate(&mut self.child, Duration::from_secs(5));
    }
}

/// Whether a Redis answers `PING` at `addr`.
fn ping(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// A loopback port that was free a moment ago, other than Redis's default one.
fn free_port_but_6379() -> std::io::Result<SocketAddr> {
    loop {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        if addr.port() != 6379 {
            return Ok(addr);
        }
    }
}

/// A fresh directory under the system's temporary directory, removed with everything in it
/// when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("sms-sessions-load-{}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
