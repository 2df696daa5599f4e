//! berth's image store.
//!
//! Its job: keep images on disk the way the OCI image spec describes them and turn them into
//! root filesystems for containers.
//!
//! - [`Store`]: a content-addressed blob store (`blobs/sha256/<hex>`) where every write is
//!   streamed through sha256 into a temp file and renamed into place only when digest and
//!   size match, plus an index of names (`docker.io/library/busybox:latest`) to manifest
//!   digests, updated atomically under a flock. [`Reference`] parses names with Docker Hub
//!   semantics.
//! - [`layout`]: import and export of OCI image layouts (`oci-layout`, `index.json`, `blobs/`),
//!   with platform selection in image indexes.
//! - [`unpack_layer`]: applies a layer tar (plain, gzip, zstd) to a directory, refusing hostile
//!   entries, and turns whiteouts into overlayfs whiteouts.
//! - [`Snapshotter`]: unpacks an image's layers once per chain ID (shared between images) and
//!   prepares writable container snapshots, returned as [`Mount`]s (overlay, or a bind mount of
//!   a copied rootfs where overlayfs cannot be used). Like containerd's snapshotters it never
//!   mounts anything itself: the caller (the engine, or the runtime through config.json) does.
//! - [`Store::prune`]: garbage collection of blobs and layers no name, pin ([`Store::pin`]) or
//!   snapshot refers to.
//!
//! - [`registry`]: the registry client ([`registry::pull`], [`registry::push`], login with
//!   Docker's credentials), every downloaded blob streamed into [`Store::ingest`] with the
//!   digest and size the manifest announced.
//! - [`archive`]: `docker save` / OCI archive tars in and out, and rootfs tarballs imported as
//!   single-layer images.
//!
//! What it does not do: print (progress goes to a [`registry::Progress`]), run containers, or
//! know anything about the runtime.
//!
//! Crash safety: objects become visible only by rename once complete and fsynced; a crash
//! leaves temp files and directories in `tmp/`, which readers ignore and which the next
//! writer (once their owner process is dead) and prune remove.

pub mod archive;
mod digest;
mod error;
mod fsutil;
mod gc;
mod image;
pub mod layout;
mod parallel;
mod pins;
mod reference;
pub mod registry;
mod snapshot;
mod store;
mod unpack;

pub use digest::Digest;
pub use error::{Error, Result};
pub use gc::PruneReport;
pub use image::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Image, Layer, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
    Platform, is_index, is_layer, is_manifest,
};
pub use reference::{DEFAULT_REGISTRY, DEFAULT_TAG, Reference};
pub use snapshot::{HistoryEntry, Mount, SnapshotMode, Snapshotter};
pub use store::{DEFAULT_ROOT, FoundImage, Lease, Store};
pub use unpack::{decompressed, unpack_layer};
