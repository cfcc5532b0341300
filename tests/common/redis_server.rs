//! A `redis-server` of a test's own: a free loopback port (never 6379), a scratch directory,
//! no persistence; killed when dropped.
//!
//! `common::redis_server::RedisServer`. The binary is
//! `$SMS_SESSIONS_REDIS_SERVER` if set (point it at `valkey-server` to test Valkey), else
//! `redis-server` on the `PATH` (`scripts/install-redis.sh` installs Debian's). Missing, it
//! fails the test under CI and skips it elsewhere.
#![allow(dead_code)]

use super::ci;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a started server has to answer PING.
const READY_WITHIN: Duration = Duration::from_secs(5);

/// A running (or stopped, see [`RedisServer::stop`]) redis-server.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port; `None` (after a notice) when there is no binary and this
    /// is not CI.
    pub fn start() -> Option<Self> {
        let Some(binary) = binary() else {
            ci::tool_missing(
                "redis-server not found (install it with scripts/install-redis.sh, \
                 or set SMS_SESSIONS_REDIS_SERVER to a redis-server or valkey-server binary)",
            );
            return None;
        };
        let dir = scratch_dir();
        // Another process may take the free port between our look and redis-server's bind:
        // then try another.
        for _ in 0..5 {
            let mut server = Self {
                binary: binary.clone(),
                port: free_port(),
                dir: dir.clone(),
                child: None,
            };
            if server.spawn() {
                return Some(server);
            }
        }
        panic!(
            "redis-server did not start; see the logs in {}",
            dir.display()
        );
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server the way an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let terminated = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + READY_WITHIN;
        while terminated && Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops the server if it runs, and starts it again on the same port (its data gone: no
    /// persistence). Panics if it does not come back.
    pub fn restart(&mut self) {
        self.stop();
        // Redis binds with SO_REUSEADDR: the port is free again at once.
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}; see {}",
            self.port,
            self.log().display()
        );
    }

    fn log(&self) -> PathBuf {
        self.dir.join(format!("redis-{}.log", self.port))
    }

    /// Spawns the server on `self.port` and waits for PING; false if it exited or never
    /// answered (it is killed then).
    fn spawn(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("open the redis-server log");
        let stderr = log.try_clone().expect("clone the log handle");
        let child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if pong(self.port) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .is_some_and(|child| matches!(child.try_wait(), Ok(Some(_))));
            if exited {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `$SMS_SESSIONS_REDIS_SERVER`, else `redis-server` on the `PATH`.
fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SMS_SESSIONS_REDIS_SERVER").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return is_file(&path).then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| is_file(candidate))
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file())
}

/// A loopback port nothing listens on now (the kernel picks it; it is never 6379, which a
/// system Redis may hold).
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("bound").port();
        if port != 6379 {
            return port;
        }
    }
}

/// Whether a server on `port` answers PING with PONG.
fn pong(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// A fresh directory for the server's files and log, removed on drop.
fn scratch_dir() -> PathBuf {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "sms-sessions-redis-{}-{}-{nanos}",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create the redis-server scratch directory");
    dir
}

/// A client connection to the server at `url` (the tests' own look at the keyspace).
pub async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// Every key name in the database (SCAN).
pub async fn key_names(connection: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(connection)
            .await
            .expect("SCAN");
        names.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    names
}
