//! The registry client: pull and push over the OCI distribution API, with Docker Hub's
//! semantics and Docker's credentials.
//!
//! [`pull`] fetches a manifest (by tag or digest; from an image index it picks the
//! [`Platform`]), then the config and the layers the store lacks, a few at a time, each streamed
//! into [`Store::ingest`] with the digest and size the manifest announced: a registry that lies
//! is refused and nothing of what it sent stays. The manifest bytes are checked against a digest
//! reference too. [`push`] does the reverse: HEAD each blob, mount it from another repository
//! of the same registry when the store knows one that has it, else upload it (monolithic, or
//! chunked with [`PushOptions::chunk_size`]), then PUT the manifest.
//!
//! HTTP is blocking (`ureq`, rustls with the platform's roots) on a few threads; plain HTTP is
//! used only for loopback registries and those listed in [`RegistryOptions::insecure`].
//! Requests are retried with bounded exponential backoff on 5xx, 429 and broken connections.
//!
//! The library never prints: progress goes to a [`Progress`] the caller implements.

mod client;
pub mod credentials;
mod pull;
mod push;

use std::path::PathBuf;

pub use credentials::{Credentials, DockerConfig};
pub use pull::{Pulled, RemoteImage, inspect, pull};
pub use push::{Pushed, push};

use crate::digest::Digest;
use crate::error::Result;
use crate::image::Platform;

/// How to reach registries: which are insecure (plain HTTP), where credentials are.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Registries (`host:port`) spoken to over plain HTTP, besides loopback ones.
    pub insecure: Vec<String>,
    /// Docker's config.json to read credentials from; `None` for the default
    /// ([`credentials::default_config_path`]).
    pub docker_config: Option<PathBuf>,
    /// Credentials to use instead of the config file's.
    pub credentials: Option<Credentials>,
}

impl RegistryOptions {
    /// Options from the environment: `BERTH_INSECURE_REGISTRIES` (comma or space separated).
    pub fn from_env() -> Self {
        let insecure = std::env::var("BERTH_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Self {
            insecure,
            ..Self::default()
        }
    }

    fn config_path(&self) -> PathBuf {
        self.docker_config
            .clone()
            .unwrap_or_else(credentials::default_config_path)
    }

    pub(crate) fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(c) = &self.credentials {
            return Ok(Some(c.clone()));
        }
        DockerConfig::load(&self.config_path())?.get(registry)
    }
}

/// What [`pull`] needs besides the reference.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// The platform picked from an image index.
    pub platform: Platform,
    /// Registry access.
    pub registry: RegistryOptions,
    /// How many blobs are downloaded at once.
    pub parallel: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            platform: Platform::host(),
            registry: RegistryOptions::from_env(),
            parallel: 3,
        }
    }
}

/// What [`push`] needs besides the reference.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    /// Registry access.
    pub registry: RegistryOptions,
    /// Upload blobs larger than this in chunks of this size (POST, PATCH..., PUT); `None` for
    /// monolithic uploads (POST, PUT).
    pub chunk_size: Option<u64>,
}

/// What happens to a blob during a pull or push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// Downloaded from the registry.
    Download,
    /// Uploaded to the registry.
    Upload,
}

/// How a blob's transfer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Already there (in the store for a pull, in the registry for a push): nothing sent.
    Exists,
    /// Transferred and verified.
    Done,
    /// Mounted by the registry from another repository (push only).
    Mounted {
        /// The repository it was mounted from.
        from: String,
    },
}

/// Receives progress events; called from several threads at once. Every method has a no-op
/// default.
pub trait Progress: Sync {
    /// The manifest was resolved: `digest` is what the reference points at in the registry
    /// (an index or a manifest).
    fn resolved(&self, _reference: &crate::Reference, _digest: &Digest) {}
    /// The platform manifest of a pull was read: its config blob and its layers (digest and
    /// size, bottom first), before any blob's transfer starts.
    fn manifest(&self, _config: &Digest, _layers: &[(Digest, u64)]) {}
    /// A blob's transfer starts (or, for [`Outcome::Exists`], is skipped right after).
    fn start(&self, _blob: &Digest, _size: u64, _transfer: Transfer) {}
    /// `bytes` more bytes of a blob went through.
    fn advance(&self, _blob: &Digest, _bytes: u64) {}
    /// A blob is finished.
    fn finish(&self, _blob: &Digest, _outcome: &Outcome) {}
    /// A retry is about to happen, or some other thing worth telling.
    fn note(&self, _message: &str) {}
    /// Whether the transfer should stop (the caller's client went away): a pull checks it
    /// between reads of a blob and fails with an error saying it was cancelled.
    fn cancelled(&self) -> bool {
        false
    }
}

/// A [`Progress`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// The image a name points at in the store, pulled first when the store has none (what
/// `berth run` does).
pub fn ensure_image(
    store: &crate::Store,
    reference: &crate::Reference,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<crate::Image> {
    match crate::Image::by_name(store, reference) {
        Err(crate::Error::ImageNotFound(_)) => {
            let pulled = pull(store, reference, opts, progress)?;
            crate::Image::load(store, &pulled.manifest)
        }
        other => other,
    }
}

/// Checks credentials against a registry (the `/v2/` endpoint, answering its challenge with
/// them), as `docker login` does. Nothing is stored.
pub fn check_login(registry: &str, creds: &Credentials, opts: &RegistryOptions) -> Result<()> {
    let client = client::Client::new(registry, opts, Some(creds.clone()))?;
    client.ping()
}
