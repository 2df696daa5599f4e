//! The engine's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the engine. Messages stand on their own (they name the
/// container, the file or the flag).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed on `path`.
    #[error("{op} {path}: {error}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file it was done to.
        path: PathBuf,
        /// The underlying error: part of the message, deliberately not `source()`, so that a
        /// printed chain names the OS error once.
        error: io::Error,
    },
    /// No container has this name or ID (prefix).
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// No exec has this ID.
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// An ID prefix matches more than one container.
    #[error("multiple containers match {0:?}: use more characters of the ID")]
    Ambiguous(String),
    /// The name is taken by another container.
    #[error("the container name \"/{name}\" is already in use by container \"{id}\"")]
    NameInUse {
        /// The name asked for.
        name: String,
        /// The container that has it.
        id: String,
    },
    /// No volume has this name.
    #[error("No such volume: {0}")]
    NoSuchVolume(String),
    /// The volume is used by containers (running or not).
    #[error("remove {name}: volume is in use - [{}]", .containers.join(", "))]
    VolumeInUse {
        /// The volume.
        name: String,
        /// The containers using it.
        containers: Vec<String>,
    },
    /// The image is not in the store.
    #[error("image not found: {0} (try `berth pull {0}`)")]
    ImageNotFound(String),
    /// A flag's value is invalid.
    #[error("{flag}: {reason}")]
    InvalidOption {
        /// The flag, e.g. `--memory`.
        flag: String,
        /// Why it was refused.
        reason: String,
    },
    /// The operation needs the container in another state.
    #[error("container {id} is {status}: {what}")]
    WrongState {
        /// The container.
        id: String,
        /// Its status.
        status: String,
        /// What was refused.
        what: String,
    },
    /// berth-runtime failed; `message` is its error line.
    #[error("berth-runtime {verb}: {message}")]
    Runtime {
        /// The verb run (`create`, `start`, ...).
        verb: String,
        /// What it printed on stderr.
        message: String,
    },
    /// The container's command could not be run: not found (127) or not executable (126).
    #[error("{message}")]
    Command {
        /// 126 or 127, the exit status Docker gives.
        code: u8,
        /// The runtime's message.
        message: String,
    },
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    /// A network error (berth-network).
    #[error(transparent)]
    Network(#[from] berth_network::Error),
    /// A JSON file of the engine could not be read or written.
    #[error("{what}: {error}")]
    Json {
        /// Which file.
        what: String,
        /// The parser's error (in the message, not `source()`).
        error: serde_json::Error,
    },
    /// Something named (a checkpoint) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operation conflicts with what exists (a checkpoint of that name).
    #[error("{0}")]
    Conflict(String),
    /// Anything else, with its message.
    #[error("{0}")]
    Other(String),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<berth_sys::PathError> for Error {
    /// A failed file operation of berth-sys, with its operation and path.
    fn from(e: berth_sys::PathError) -> Self {
        Error::Io {
            op: e.op,
            path: e.path,
            error: e.source,
        }
    }
}

/// Wraps an `io::Error` with the operation and path.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |error| Error::Io { op, path, error }
}

/// An [`Error::InvalidOption`].
pub(crate) fn invalid(flag: &str, reason: impl Into<String>) -> Error {
    Error::InvalidOption {
        flag: flag.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `source()` as a printed chain does (`anyhow`'s `{:#}`).
    fn chain(e: &dyn std::error::Error) -> String {
        let mut s = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            s += &format!(": {c}");
            cur = c.source();
        }
        s
    }

    #[test]
    fn a_printed_chain_names_the_os_error_once() {
        let e = io_err("open", "/nonexistent")(io::Error::from_raw_os_error(libc::ENOENT));
        let s = chain(&e);
        assert_eq!(s.matches("No such file or directory").count(), 1, "{s}");
        assert!(s.starts_with("open /nonexistent: "), "{s}");
        let net = Error::from(berth_network::Error::Io {
            op: "read",
            path: "/x".into(),
            error: io::Error::from_raw_os_error(libc::EACCES),
        });
        let s = chain(&net);
        assert_eq!(s.matches("Permission denied").count(), 1, "{s}");
    }
}
