//! `session.store = "sqlite:PATH"`: conversations in an embedded SQLite file (WAL), kept
//! across restarts and `kill -9`.
//!
//! # Durability
//! The file is in WAL mode with `synchronous=NORMAL`: a transaction is appended to the
//! write-ahead log with one `write()` and no fsync, so it survives the process being killed
//! (`kill -9`, a panic, the OOM killer) as soon as it has committed: the operating system
//! has the bytes. A power loss or kernel crash may lose the last transactions (those not yet
//! checkpointed or synced), never corrupt the file. Twilio retries a webhook that got no
//! answer, so a lost transaction costs a step being run again, not a wrong reply.
//!
//! # One process, one thread
//! A lock file next to the database (`PATH.lock`, an exclusive advisory lock held while the
//! store is open) keeps a second server off the same file. Leases therefore only mean
//! something to this process: the store's thread keeps them in memory ([`ops::Leases`]),
//! which spares every `begin` a write, and a process that dies takes its leases with it.
//!
//! rusqlite is synchronous, so one dedicated OS thread owns the connection and runs every
//! operation, fed by a channel; an async call sends its [`Op`] and awaits the answer. The
//! thread takes whatever is queued (up to [`MAX_BATCH`]) and runs it in one `BEGIN
//! IMMEDIATE` transaction (group commit): the operations run one after the other, so each
//! answers as if it had run alone, and their answers are sent only once the transaction has
//! committed. One WAL append per batch instead of one per call is what lets one core keep up
//! with a flood of webhooks.

mod ops;
mod schema;

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use self::ops::{Answer, BeginOp, CommitOp, Fail, Leases, Op};
use super::ConvKey;
use super::backend::{Backend, Begin, Commit, Limits, StoreError, Stored, Write};

/// The most operations one transaction runs.
const MAX_BATCH: usize = 256;

/// How many calls may wait for the thread before callers wait to send (each still bounded
/// by `store.timeout`).
const QUEUE: usize = 4096;

/// A conversation store in one SQLite file; see the [module docs](self).
pub struct SqliteStore {
    /// `None` once dropped: closing the channel ends the thread.
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// An operation and where its answer goes.
struct Job {
    op: Op,
    answer: oneshot::Sender<Result<Answer, StoreError>>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, whose directory must exist, and starts the
    /// thread that owns it. Refused: a missing directory, a file another sms-sessions process
    /// has open, a file written by a newer release, a file that is not a database of ours.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let unavailable = StoreError::Unavailable;
        require_directory(path).map_err(unavailable)?;
        let lock = lock(path).map_err(unavailable)?;
        let mut conn = Connection::open(path)
            .map_err(|e| unavailable(format!("cannot open the database: {e}")))?;
        schema::prepare(&mut conn).map_err(unavailable)?;
        let (jobs, queue) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("sqlite-store".into())
            .spawn(move || serve(conn, lock, queue))
            .map_err(|e| unavailable(format!("cannot start the SQLite thread: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Sends `op` to the thread and waits for its answer.
    async fn call(&self, op: Op) -> Result<Answer, StoreError> {
        let gone = || StoreError::Unavailable("the SQLite thread has stopped".into());
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        let (answer, answered) = oneshot::channel();
        jobs.send(Job { op, answer }).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

impl Drop for SqliteStore {
    /// Closes the channel and waits for the thread to finish what was queued and close the
    /// connection (SQLite checkpoints the WAL then), so the file is free to open again as soon
    /// as this returns.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// SQLite creates the file but not its directory; a missing one is most likely a typo or an
/// unmounted volume, which creating it would hide.
fn require_directory(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        return Ok(());
    }
    Err(format!(
        "the directory {} does not exist (sms-sessions does not create it: create it, or \
         mount the volume)",
        dir.display()
    ))
}

/// `PATH.lock`, locked exclusively for as long as the returned file is open.
fn lock(path: &Path) -> Result<File, String> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(format!(
            "another sms-sessions process has {} open (lock file {})",
            path.display(),
            lock_path.display()
        )),
        Err(TryLockError::Error(e)) => Err(format!(
            "cannot lock the lock file {}: {e}",
            lock_path.display()
        )),
    }
}

/// The store's thread: runs batches until the channel closes, then closes the connection
/// before giving up the lock file.
fn serve(mut conn: Connection, lock: File, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut leases = Leases::new();
    while let Some(job) = queue.blocking_recv() {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, &mut leases, &mut batch);
    }
    if let Err((_, error)) = conn.close() {
        tracing::warn!(%error, "store: closing the SQLite database failed");
    }
    drop(lock);
}

/// Runs `batch` in one transaction and answers each job; empties `batch`.
///
/// When SQLite fails part-way (or at the commit) nothing of the batch was written, so each job
/// runs again in a transaction of its own: one bad operation costs only its own answer.
fn run_batch(conn: &mut Connection, leases: &mut Leases, batch: &mut Vec<Job>) {
    batch.retain(|job| !(job.op.only_for_caller() && job.answer.is_closed()));
    if batch.is_empty() {
        return;
    }
    let answers = match transaction(conn, leases, batch.iter()) {
        Ok(answers) => answers,
        Err(error) if batch.len() == 1 => vec![Err(error.into())],
        Err(_) => batch
            .iter()
            .map(
                |job| match transaction(conn, leases, std::iter::once(job)) {
                    Ok(mut answer) => answer.pop().unwrap_or(Err(lost())),
                    Err(error) => Err(error.into()),
                },
            )
            .collect(),
    };
    for (job, answer) in batch.drain(..).zip(answers) {
        let _ = job.answer.send(answer); // a caller that gave up does not need it
    }
}

fn lost() -> StoreError {
    StoreError::Unavailable("the SQLite thread lost an answer".into())
}

/// Runs `jobs` in order in one `BEGIN IMMEDIATE` transaction: their answers if it committed.
/// The leases change with the transaction: on a rollback they are as they were.
fn transaction<'a>(
    conn: &mut Connection,
    leases: &mut Leases,
    jobs: impl Iterator<Item = &'a Job>,
) -> Result<Vec<Result<Answer, StoreError>>, Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Only the steps in flight hold one: a copy is a few dozen entries at most.
    let mut changed = leases.clone();
    let mut answers = Vec::new();
    for job in jobs {
        answers.push(match job.op.run(&tx, &mut changed) {
            Ok(answer) => Ok(answer),
            Err(Fail::Corrupt(what)) => Err(StoreError::Corrupt(what)),
            Err(fail @ Fail::Sql(_)) => return Err(fail), // dropping `tx` rolls back
        });
    }
    tx.commit()?;
    *leases = changed;
    Ok(answers)
}

/// The answer of the wrong kind: a bug in this file, reported as an error, not a panic.
fn mismatched() -> StoreError {
    StoreError::Unavailable("the SQLite thread answered another operation".into())
}

impl Backend for SqliteStore {
    async fn begin(
        &self,
        key: &ConvKey,
        sid: &str,
        token: u64,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<Begin, StoreError> {
        let op = Op::Begin(BeginOp {
            key: *key.as_bytes(),
            sid: sid.to_owned(),
            token,
            now_ms,
            lease_ms: Limits::ms(limits.lease),
            window_ms: Limits::ms(limits.replay_window),
            horizon_ms: Limits::ms(limits.retry_horizon),
        });
        match self.call(op).await? {
            Answer::Begin(begin) => Ok(begin),
            _ => Err(mismatched()),
        }
    }

    async fn commit(
        &self,
        key: &ConvKey,
        sid: &str,
        token: u64,
        write: Write<'_>,
        now_ms: u64,
        _limits: &Limits,
    ) -> Result<Commit, StoreError> {
        let op = Op::Commit(CommitOp {
            key: *key.as_bytes(),
            sid: sid.to_owned(),
            token,
            data: write.data.map(<[u8]>::to_vec),
            reply: write.reply.to_vec(),
            now_ms,
        });
        match self.call(op).await? {
            Answer::Commit(commit) => Ok(commit),
            _ => Err(mismatched()),
        }
    }

    async fn release(&self, key: &ConvKey, token: u64) -> Result<(), StoreError> {
        let key = *key.as_bytes();
        self.call(Op::Release { key, token }).await.map(drop)
    }

    async fn peek(&self, key: &ConvKey) -> Result<Option<Stored>, StoreError> {
        let key = *key.as_bytes();
        match self.call(Op::Peek { key }).await? {
            Answer::Peek(stored) => Ok(stored),
            _ => Err(mismatched()),
        }
    }

    async fn delete(&self, key: &ConvKey) -> Result<(), StoreError> {
        let key = *key.as_bytes();
        self.call(Op::Delete { key }).await.map(drop)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.call(Op::Ping).await.map(drop)
    }

    /// Deletes conversations idle for `limits.ttl` and markers older than the replay window,
    /// drops replies past the retry horizon and expired leases; returns how many
    /// conversations and markers went.
    async fn sweep(&self, now_ms: u64, limits: &Limits) -> Result<u64, StoreError> {
        let op = Op::Sweep {
            now_ms,
            ttl_ms: Limits::ms(limits.ttl),
            window_ms: Limits::ms(limits.replay_window),
            horizon_ms: Limits::ms(limits.retry_horizon),
        };
        match self.call(op).await? {
            Answer::Swept(removed) => Ok(removed),
            _ => Err(mismatched()),
        }
    }
}

/// A scratch directory for a database file, removed on drop (the unit tests of this store and
/// of the relay's, which shares its file).
#[cfg(test)]
pub(crate) struct Scratch(pub PathBuf);

#[cfg(test)]
impl Scratch {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "sms-sessions-sqlite-{name}-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&path).expect("create the scratch directory");
        Self(path)
    }

    /// `state.db` in the directory.
    pub fn db(&self) -> PathBuf {
        self.0.join("state.db")
    }
}

#[cfg(test)]
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LIMITS: Limits = Limits {
        ttl: Duration::from_secs(3600),
        retry_horizon: Duration::from_secs(120),
        replay_window: Duration::from_secs(86_400),
        lease: Duration::from_secs(10),
    };

    fn open_error(path: &Path) -> String {
        match SqliteStore::open(path) {
            Ok(_) => panic!("{} opened", path.display()),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_missing_directory_is_named_not_created() {
        let scratch = Scratch::new("missing");
        let missing = scratch.0.join("nope");
        let error = open_error(&missing.join("state.db"));
        assert!(
            error.contains(&format!("{} does not exist", missing.display())),
            "{error}"
        );
        assert!(!missing.exists());
    }

    #[test]
    fn a_second_open_of_one_file_is_refused_until_the_first_is_dropped() {
        let scratch = Scratch::new("twice");
        let first = SqliteStore::open(&scratch.db()).expect("first open");
        let error = open_error(&scratch.db());
        let expected = format!(
            "another sms-sessions process has {0} open (lock file {0}.lock)",
            scratch.db().display()
        );
        assert!(error.contains(&expected), "{error}");
        drop(first);
        SqliteStore::open(&scratch.db()).expect("open after the first is dropped");
    }

    #[test]
    fn a_newer_layout_is_refused() {
        let scratch = Scratch::new("newer");
        let conn = Connection::open(scratch.db()).expect("create");
        conn.pragma_update(None, "user_version", schema::VERSION + 1)
            .expect("set user_version");
        drop(conn);
        let error = open_error(&scratch.db());
        assert!(
            error.contains("version 2, written by a newer sms-sessions"),
            "{error}"
        );
    }

    #[test]
    fn another_programs_database_is_refused() {
        let scratch = Scratch::new("foreign");
        let conn = Connection::open(scratch.db()).expect("create");
        conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
            .expect("create a table");
        drop(conn);
        let error = open_error(&scratch.db());
        assert!(
            error.contains("tables that are not sms-sessions's (users)"),
            "{error}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let scratch = Scratch::new("garbage");
        std::fs::write(scratch.db(), vec![0x5a; 8192]).expect("write");
        let error = open_error(&scratch.db());
        assert!(error.contains("not a database"), "{error}");
    }

    #[tokio::test]
    async fn leases_are_cleared_at_reopen() {
        let scratch = Scratch::new("leases");
        let key = ConvKey::from_bytes([7; 16]);
        let now = 1_700_000_000_000;
        let store = SqliteStore::open(&scratch.db()).expect("open");
        let first = store.begin(&key, "SM1", 1, now, &LIMITS).await;
        assert!(matches!(first, Ok(Begin::Owned(None))), "{first:?}");
        let busy = store.begin(&key, "SM2", 2, now + 1, &LIMITS).await;
        assert!(matches!(busy, Ok(Begin::Busy)), "{busy:?}");
        drop(store); // as if the process died mid-step

        let store = SqliteStore::open(&scratch.db()).expect("reopen");
        let again = store.begin(&key, "SM2", 2, now + 2, &LIMITS).await;
        assert!(matches!(again, Ok(Begin::Owned(None))), "{again:?}");
    }

    #[tokio::test]
    async fn a_row_this_server_did_not_write_is_corrupt() {
        let scratch = Scratch::new("corrupt");
        let key = ConvKey::from_bytes([9; 16]);
        drop(SqliteStore::open(&scratch.db()).expect("create"));
        let conn = Connection::open(scratch.db()).expect("open directly");
        conn.execute(
            "INSERT INTO conversation (key, data, touched_ms) VALUES (?1, 'text', -5)",
            [key.as_bytes()],
        )
        .expect("insert");
        drop(conn);
        let store = SqliteStore::open(&scratch.db()).expect("reopen");
        let peeked = store.peek(&key).await;
        assert!(matches!(peeked, Err(StoreError::Corrupt(_))), "{peeked:?}");
        let begun = store.begin(&key, "SM1", 1, 1, &LIMITS).await;
        assert!(matches!(begun, Err(StoreError::Corrupt(_))), "{begun:?}");
        // The failed begin took no lease, and the store still answers.
        store.delete(&key).await.expect("delete");
        let owned = store.begin(&key, "SM1", 2, 2, &LIMITS).await;
        assert!(matches!(owned, Ok(Begin::Owned(None))), "{owned:?}");
    }
}
