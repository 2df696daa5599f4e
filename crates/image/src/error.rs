//! The crate's error type.

use std::io;
use std::path::PathBuf;

use crate::Digest;

/// Everything that can go wrong in the store, an import or export, an unpack or a snapshot.
///
/// Variants carry the object they are about (path, digest, tar entry, key), so a message stands
/// on its own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed on `path`.
    #[error("{op} {path}: {error}")]
    Io {
        /// What was being done (`open`, `rename`, ...).
        op: &'static str,
        /// The file it was done to.
        path: PathBuf,
        /// The underlying error: part of the message, deliberately not `source()`, so that a
        /// printed chain names the OS error once.
        error: io::Error,
    },
    /// A string is not a valid `sha256:<64 hex>` digest.
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest(String),
    /// A string is not a valid image reference.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The text that was parsed.
        reference: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Content did not hash to the digest it was announced with; nothing of it was kept.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the content was announced with.
        expected: Digest,
        /// The digest of the bytes actually read.
        actual: Digest,
    },
    /// Content did not have the size it was announced with; nothing of it was kept.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The digest the content was announced with.
        digest: Digest,
        /// The announced size.
        expected: u64,
        /// The number of bytes read (at most one more than `expected` when it stopped early).
        actual: u64,
    },
    /// The store has no blob with this digest.
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    /// No image is known under this name.
    #[error("image {0} not found")]
    ImageNotFound(String),
    /// A short image ID matches more than one image.
    #[error("image ID {0:?} is ambiguous: give more digits")]
    AmbiguousImage(String),
    /// A JSON document (manifest, config, index, ...) could not be read or written.
    #[error("{what}: {error}")]
    Json {
        /// Which document, e.g. `manifest sha256:...`.
        what: String,
        /// The parser's error (in the message, not `source()`).
        error: serde_json::Error,
    },
    /// A manifest, index or config is well-formed JSON but not something this crate accepts.
    #[error("{what}: {reason}")]
    Invalid {
        /// Which document.
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// A layer's media type is not a tar, tar+gzip or tar+zstd layer.
    #[error("layer {digest}: unsupported media type {media_type}")]
    UnsupportedMediaType {
        /// The layer's digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// An image index has no manifest for the wanted platform.
    #[error("{what}: no manifest for platform {platform}")]
    NoMatchingPlatform {
        /// Which index.
        what: String,
        /// The platform that was asked for, e.g. `linux/amd64`.
        platform: String,
    },
    /// A tar entry was refused: it would write outside the layer directory, through a symlink,
    /// or is otherwise unsafe or malformed. The layer was not kept.
    #[error("layer tar entry {entry:?} refused: {reason}")]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A layer is not a readable tar: cut short, or not the tar (or gzip, zstd) it claims to be.
    #[error("malformed or truncated tar: {error}")]
    Tar {
        /// What the tar or decompression reader said (e.g. `unexpected EOF during skip`).
        error: io::Error,
    },
    /// A layer of an image could not be unpacked: its content is damaged or hostile, or the
    /// unpack failed. Nothing of the layer was kept.
    #[error(
        "layer {layer} of image {image} {}: {error}{}",
        verdict(error),
        hint(error)
    )]
    Layer {
        /// The layer's (compressed) blob.
        layer: Digest,
        /// The image's name, or its manifest digest when it has none.
        image: String,
        /// What went wrong (in the message, not `source()`).
        error: Box<Error>,
    },
    /// An uncompressed layer did not hash to the diff ID in the image config.
    #[error("layer {layer}: diff ID mismatch: config says {expected}, content is {actual}")]
    DiffIdMismatch {
        /// The (compressed) layer blob.
        layer: Digest,
        /// The diff ID from the config's `rootfs.diff_ids`.
        expected: Digest,
        /// The digest of the uncompressed tar.
        actual: Digest,
    },
    /// A snapshot key is empty, too long, or holds characters other than `[A-Za-z0-9_.-]`.
    #[error("invalid snapshot key {0:?}")]
    InvalidKey(String),
    /// A pin key is empty, too long, starts with `.` or holds characters other than
    /// `[A-Za-z0-9_.-]`.
    #[error("invalid pin key {0:?}: expected 1-128 of [A-Za-z0-9_.-], not starting with '.'")]
    InvalidPin(String),
    /// A container snapshot with this key already exists.
    #[error("snapshot {0} already exists")]
    SnapshotExists(String),
    /// No container snapshot has this key.
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    /// A registry could not be reached, or the connection broke (after the retries).
    #[error("{method} {url}: {reason}")]
    Transport {
        /// The HTTP method.
        method: String,
        /// The URL asked for.
        url: String,
        /// What went wrong (connection refused, TLS, timeout, ...).
        reason: String,
    },
    /// A registry answered with an unexpected status (after the retries, for 5xx and 429).
    #[error("{method} {url}: registry answered {status}{}", fmt_body(.body))]
    Registry {
        /// The HTTP method.
        method: String,
        /// The URL asked for.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body (the registry's error JSON, usually).
        body: String,
    },
    /// The registry refused our credentials, or wants some and we have none.
    #[error("{registry}: authentication required or refused{}: {reason}", if *.had_credentials { "" } else { " (try `berth login`)" })]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// Whether credentials were sent.
        had_credentials: bool,
        /// The registry's answer or what failed.
        reason: String,
    },
    /// The registry has no such manifest (tag or digest).
    #[error("{reference}: manifest unknown to the registry")]
    ManifestUnknown {
        /// The reference that was asked for.
        reference: String,
    },
    /// The Docker credentials file or a credential helper failed.
    #[error("credentials: {0}")]
    Credentials(String),
}

/// How an [`Error::Layer`] describes its layer: damaged, hostile, or neither.
fn verdict(e: &Error) -> &'static str {
    match e {
        Error::Tar { .. }
        | Error::DigestMismatch { .. }
        | Error::SizeMismatch { .. }
        | Error::DiffIdMismatch { .. } => "is corrupt",
        Error::UnsafeEntry { .. } => "is unsafe",
        _ => "could not be unpacked",
    }
}

fn hint(e: &Error) -> &'static str {
    match verdict(e) {
        "is corrupt" => " (the image is damaged: get it again from its source)",
        "is unsafe" => " (berth refuses such images: use one from a source you trust)",
        _ => "",
    }
}

impl Error {
    /// For an [`Error::Layer`], what went wrong with the layer; any other error itself.
    pub fn layer_cause(&self) -> &Error {
        match self {
            Error::Layer { error, .. } => error.layer_cause(),
            other => other,
        }
    }
}

fn fmt_body(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// The crate's result type.
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

/// Builds an [`Error::Io`]: `.map_err(io_err("open", &path))`.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |error| Error::Io { op, path, error }
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
        let json = Error::Json {
            what: "names.json".into(),
            error: serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err(),
        };
        let s = chain(&json);
        assert_eq!(s.matches("EOF while parsing").count(), 1, "{s}");
        assert!(s.starts_with("names.json: "), "{s}");
        // Every variant: a message that holds its cause has no source() repeating it.
        for e in [&e, &json] {
            assert!(std::error::Error::source(e).is_none(), "{e}");
        }
    }
}
