//! berth's shared low-level helpers, one copy for every crate: atomic file writes
//! ([`write_atomic`]), directory fsync ([`sync_dir`]), private directories ([`private_dir`]),
//! flock guards ([`Flock`]), RFC 3339 time stamps ([`time`]), `/proc/self/mountinfo`
//! ([`mountinfo`]), process identity by pid and start time ([`proc`]), descriptor passing
//! over unix sockets ([`fdpass`]) and read-only clones of executables ([`exe`]).
//!
//! The crate depends on std, libc and humantime only, and starts no threads: `berth-runtime`
//! (lean, single-threaded, linked statically) uses it as the engine does.
//!
//! Functions that act on a path fail with a [`PathError`] naming the operation and the path;
//! each crate turns it into its own error type (`Error::Io { op, path, error }`).

use std::fmt;
use std::io;
use std::path::PathBuf;

pub mod exe;
pub mod fdpass;
mod fs;
mod lock;
pub mod mountinfo;
pub mod proc;
pub mod time;

pub use fs::{
    private_dir, sync_dir, write_atomic, write_atomic_nosync, write_atomic_via, write_new_durable,
};
pub use lock::Flock;

/// An error as berth shows it (the CLI's messages, the API's): its message, then each cause
/// the message does not already hold, joined by `: `. Errors that put their cause's text into
/// their own message (most `{op} {path}: {source}` errors do) would otherwise name it twice.
pub fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
}

/// An operation on a path failed: `"{op} {path}: {source}"`, e.g.
/// `rename /var/lib/berth/names.json: No such file or directory`.
///
/// The OS error is part of the message and not [`std::error::Error::source`], as in the
/// crates' own `Error::Io`, so that a printed chain names it once.
#[derive(Debug)]
pub struct PathError {
    /// What was being done (`create`, `write`, `fsync`, `rename`, `chmod`, `open`, `flock`...).
    pub op: &'static str,
    /// The file it was done to.
    pub path: PathBuf,
    /// The underlying error.
    pub source: io::Error,
}

impl PathError {
    /// A function for `map_err` that names `op` and `path`.
    pub fn map(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self { op, path, source }
    }

    /// The kind of the underlying error.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

impl std::error::Error for PathError {}

impl From<PathError> for io::Error {
    /// Keeps the kind; the message names the operation and the path.
    fn from(e: PathError) -> Self {
        io::Error::new(e.source.kind(), e.to_string())
    }
}

/// A `Result` whose error is a [`PathError`].
pub type Result<T> = std::result::Result<T, PathError>;
