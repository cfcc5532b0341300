//! Keeping the [`Jar`] between `send` invocations: a small TOML file, replaced atomically.
//!
//! Each write goes to a temporary file in the same directory, is flushed to disk, then renamed
//! over the jar, so a crash or a concurrent reader never sees half a file. The file holds live
//! session cookies, so on Unix it is created readable by its owner only.
//!
//! Writers go through [`update`], which holds an exclusive lock on a sibling file (`jar.toml`
//! → `jar.toml.lock`) from before it reads the jar until after the rename: concurrent `send`
//! and `chat` runs on one jar take turns, and none writes back a jar that misses another's
//! pair. The lock file stays (deleting it would let two runs lock two different files).

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::jar::Jar;

/// The jar file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JarError {
    #[error("cannot read the cookie jar {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("the cookie jar {path} is not valid (fix or delete it): {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("cannot write the cookie jar {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot lock the cookie jar with {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error(
        "no cache directory (neither XDG_CACHE_HOME nor HOME is set); pass --jar FILE to choose one"
    )]
    NoDefault,
}

/// `$XDG_CACHE_HOME/sms-sessions/jar.toml`, else `~/.cache/sms-sessions/jar.toml`.
pub fn default_path() -> Result<PathBuf, JarError> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    let cache = absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .ok_or(JarError::NoDefault)?;
    Ok(cache.join("sms-sessions").join("jar.toml"))
}

/// Reads the jar; a missing file is an empty jar.
pub fn load(path: &Path) -> Result<Jar, JarError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Jar::default()),
        Err(source) => {
            return Err(JarError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    toml::from_str(&text).map_err(|error| JarError::Parse {
        path: path.to_owned(),
        reason: error.message().to_owned(),
    })
}

/// Reads the jar, lets `change` edit it and writes it back, under the jar's lock: no other
/// `update` can read or write in between, so what `change` leaves is never overwritten by a
/// jar read before it. Keep `change` short (merge what a request brought, don't make one).
pub fn update<T>(path: &Path, change: impl FnOnce(&mut Jar) -> T) -> Result<T, JarError> {
    let lock = lock(path)?;
    let mut jar = load(path)?;
    let result = change(&mut jar);
    save(path, &jar)?;
    drop(lock);
    Ok(result)
}

/// The jar's lock file, opened (created when needed) and locked exclusively; unlocked when
/// the returned file is dropped (or the process ends).
fn lock(path: &Path) -> Result<File, JarError> {
    let lock_path = sibling(path, ".lock");
    let lock_error = |source| JarError::Lock {
        path: lock_path.clone(),
        source,
    };
    create_parent(path).map_err(lock_error)?;
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock_path).map_err(lock_error)?;
    file.lock().map_err(lock_error)?;
    Ok(file)
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .unwrap_or_else(|| "jar".as_ref())
        .to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => fs::create_dir_all(dir),
        None => Ok(()),
    }
}

/// Replaces the jar file with `jar`, creating its directory when needed. Without the lock:
/// callers go through [`update`].
fn save(path: &Path, jar: &Jar) -> Result<(), JarError> {
    let write_error = |source| JarError::Write {
        path: path.to_owned(),
        source,
    };
    let text = toml::to_string(jar)
        .map_err(|error| write_error(io::Error::new(io::ErrorKind::InvalidData, error)))?;
    let contents = format!("# sms-sessions cookie jar: one [[pair]] per (To, From).\n{text}");
    create_parent(path).map_err(write_error)?;
    let temporary = temporary_path(path);
    let result =
        write_new(&temporary, contents.as_bytes()).and_then(|()| fs::rename(&temporary, path));
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.map_err(write_error)
}

/// A sibling of `path` no other process picks.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "jar".into(), |name| name.to_string_lossy());
    let unique = format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    );
    path.with_file_name(unique)
}

fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Pair;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sms-sessions-jar-file-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn round_trips_and_leaves_no_temporary_file() {
        let dir = scratch("round-trip");
        let path = dir.join("nested").join("jar.toml");
        assert_eq!(load(&path).expect("missing is empty"), Jar::default());
        let mut jar = Jar::default();
        let pair = Pair {
            to: "+1 \"quoted\"",
            from: "whatsapp:+2",
        };
        jar.store(pair, "sms_session=1.a.b; Max-Age=60", 1_000)
            .expect("parsable");
        save(&path, &jar).expect("written");
        save(&path, &jar).expect("replaced");
        assert_eq!(load(&path).expect("readable"), jar);
        let names: Vec<_> = fs::read_dir(path.parent().expect("has a parent"))
            .expect("listable")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["jar.toml"]);
        let _ = fs::remove_dir_all(dir);
    }

    fn pair(from: &str) -> Pair<'_> {
        Pair {
            to: "+14155550100",
            from,
        }
    }

    #[test]
    fn update_merges_under_a_lock_file_beside_the_jar() {
        let dir = scratch("update");
        let path = dir.join("jar.toml");
        let mut mine = Jar::default();
        mine.store(pair("+1"), "a=mine", 1_000).expect("parsable");
        update(&path, |jar| jar.store(pair("+2"), "b=theirs", 1_000))
            .expect("updated")
            .expect("parsable");
        update(&path, |jar| jar.adopt(pair("+1"), &mine)).expect("updated");
        let jar = load(&path).expect("readable");
        assert_eq!(
            jar.cookie_header(pair("+1"), 1_000).as_deref(),
            Some("a=mine")
        );
        assert_eq!(
            jar.cookie_header(pair("+2"), 1_000).as_deref(),
            Some("b=theirs")
        );
        let mut names: Vec<_> = fs::read_dir(&dir)
            .expect("listable")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["jar.toml", "jar.toml.lock"]);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn concurrent_updates_keep_every_pair() {
        let dir = scratch("concurrent");
        let path = dir.join("jar.toml");
        let phones: Vec<String> = (0..16).map(|n| format!("+1555{n:04}")).collect();
        std::thread::scope(|scope| {
            for phone in &phones {
                let path = &path;
                scope.spawn(move || {
                    update(path, |jar| {
                        // Widen the read-modify-write window a racing writer would hit.
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        jar.store(pair(phone), "c=1", 1_000)
                    })
                    .expect("updated")
                    .expect("parsable");
                });
            }
        });
        let jar = load(&path).expect("readable");
        for phone in &phones {
            assert!(
                jar.cookie_header(pair(phone), 1_000).is_some(),
                "{phone} lost"
            );
        }
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_corrupt_jar_names_its_path() {
        let dir = scratch("corrupt");
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("jar.toml");
        fs::write(&path, "[[pair]]\nto = 1\n").expect("written");
        let error = load(&path).expect_err("invalid");
        assert!(error.to_string().contains("jar.toml"), "{error}");
        let _ = fs::remove_dir_all(dir);
    }
}
