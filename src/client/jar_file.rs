//! Keeping the [`Jar`] between `send` invocations: a small TOML file, replaced atomically.
//!
//! Each write goes to a temporary file in the same directory, is flushed to disk, then renamed
//! over the jar, so a crash or a concurrent reader never sees half a file. The file holds live
//! session cookies, so on Unix it is created readable by its owner only.

use std::fs;
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

/// Replaces the jar file with `jar`, creating its directory when needed.
pub fn save(path: &Path, jar: &Jar) -> Result<(), JarError> {
    let write_error = |source| JarError::Write {
        path: path.to_owned(),
        source,
    };
    let text = toml::to_string(jar)
        .map_err(|error| write_error(io::Error::new(io::ErrorKind::InvalidData, error)))?;
    let contents = format!("# sms-sessions cookie jar: one [[pair]] per (To, From).\n{text}");
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(write_error)?;
    }
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
