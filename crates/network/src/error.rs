//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a path.
    #[error("{op} {path}: {error}")]
    Io {
        /// What was done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error: part of the message, deliberately not `source()`, so that a printed
        /// chain names the OS error once.
        error: std::io::Error,
    },
    /// A tool (ip, nft, iptables) failed.
    #[error("{tool} failed: {msg}")]
    Tool {
        /// The command.
        tool: String,
        /// Its stderr, or why it could not run.
        msg: String,
    },
    /// No network with that name or ID.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// A network with that name exists.
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    /// The network still has containers.
    #[error("error while removing network: network {name} has active endpoints ({containers})")]
    InUse {
        /// The network.
        name: String,
        /// Its containers.
        containers: String,
    },
    /// A flag or value is invalid.
    #[error("{what}: {msg}")]
    Invalid {
        /// The flag or field.
        what: String,
        /// Why.
        msg: String,
    },
    /// A host port is taken.
    #[error("port {proto}/{port} is already allocated{by}")]
    PortInUse {
        /// tcp or udp.
        proto: String,
        /// The host port.
        port: u16,
        /// By whom (" by container X" or empty).
        by: String,
    },
    /// The subnet has no free address (or the requested one is taken).
    #[error("network {net}: {msg}")]
    Ipam {
        /// The network.
        net: String,
        /// Why.
        msg: String,
    },
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

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

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |error| Error::Io { op, path, error }
}

pub(crate) fn invalid(what: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Invalid {
        what: what.into(),
        msg: msg.into(),
    }
}
