//! The content-addressed blob store and the name index.
//!
//! On disk, under the root (default [`DEFAULT_ROOT`], always passed in):
//!
//! ```text
//! blobs/sha256/<hex>          content, read-only, named by its digest
//! names.json                  {"names": {"docker.io/library/busybox:latest": "sha256:..."}}
//! names.lock                  flock serialising read-modify-write of names.json
//! gc.lock                     shared by writers (leases), exclusive for prune
//! snapshots/layers/<chainid>  unpacked layers (see the snapshot module)
//! snapshots/containers/<key>  writable container snapshots
//! tmp/                        temp files and dirs; renamed into place when complete
//! ```
//!
//! The root and every directory in it are 0700 (tightened when an older store is opened), files
//! 0600, blobs 0400: unpacked layers and container snapshots hold setuid files and device nodes
//! that other users must not reach.
//!
//! Every write lands in `tmp/` first and is renamed into place once complete and fsynced, so a
//! crash leaves either nothing or a whole object. Entries in `tmp/` are named
//! `<kind>-<pid>-<start time>-<nanos>-<n>` after the process that made them; what a dead
//! process left (its pid gone, or reused by a process started at another time) is removed by
//! the first write of the next [`Store`] (its first [`Store::lease`]) and by prune.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_sys::Flock;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result, io_err};
use crate::fsutil::{atomic_write, remove_any, sync_dir, temp_name, temp_owner_alive, tree_size};
use crate::reference::Reference;

/// Where berth keeps images unless told otherwise.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";

/// A content store rooted at a directory: blobs by digest, a name index, unpacked layers and
/// container snapshots.
///
/// Several processes may use one root at once: blob and index writes are atomic, the index is
/// updated under a flock, and [`Store::prune`] waits for every [`Lease`] to be dropped.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Set once the debris of dead writers in `tmp/` was cleared (at the first lease).
    debris_cleared: Arc<AtomicBool>,
}

/// Keeps [`Store::prune`] away while held: take one around a sequence of writes whose objects
/// are only referenced at the end (ingest blobs, then tag). Dropping it releases it.
///
/// Do not call [`Store::prune`] while holding a lease in the same thread: it would wait forever.
pub struct Lease {
    _lock: Flock,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct NameIndex {
    names: BTreeMap<String, Digest>,
}

impl Store {
    /// Opens a store rooted at `root`, creating its directories (0700) if needed; existing ones
    /// open to group or others are made 0700.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let store = Self {
            root: root.into(),
            debris_cleared: Arc::new(AtomicBool::new(false)),
        };
        for dir in [
            store.root.clone(),
            store.root.join("blobs"),
            store.blobs_dir(),
            store.tmp_dir(),
            store.root.join("snapshots"),
            store.layers_dir(),
            store.sizes_dir(),
            store.containers_dir(),
        ] {
            berth_sys::private_dir(&dir)?;
        }
        crate::fsutil::mark_top_dir(&store.tmp_dir());
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("snapshots/layers")
    }

    /// `snapshots/sizes/<chain id hex>`: an unpacked layer's size (decimal bytes).
    pub(crate) fn sizes_dir(&self) -> PathBuf {
        self.root.join("snapshots/sizes")
    }

    pub(crate) fn containers_dir(&self) -> PathBuf {
        self.root.join("snapshots/containers")
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    /// The path of a blob (which may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Takes a lease: [`Store::prune`] waits until it is dropped.
    ///
    /// Every write takes one, so the first lease of a `Store` (the store opened for writing)
    /// also removes what writers that died left in `tmp/` (see [`Store::remove_dead_debris`]).
    pub fn lease(&self) -> Result<Lease> {
        let lease = Lease {
            _lock: Flock::shared(&self.root.join("gc.lock"))?,
        };
        if !self.debris_cleared.swap(true, Ordering::AcqRel) {
            // Best effort: what cannot be removed now stays for the next writer or prune.
            let _ = self.remove_dead_debris();
        }
        Ok(lease)
    }

    /// Removes the entries of `tmp/` whose owner is dead: the process that made it is gone, or
    /// its pid now belongs to a process that started later (a killed pull's `ingest-*` files
    /// and `unpack-*` directories). Entries of live processes and names of unknown form are
    /// left alone. Returns the bytes removed.
    ///
    /// Safe while other processes write: an entry is first renamed to a name of this process,
    /// so two cleaners never remove the same one, and a live owner's entries are never touched.
    /// Nothing is removed when `/proc` cannot tell who is alive.
    pub fn remove_dead_debris(&self) -> Result<u64> {
        if berth_sys::proc::pid_start_time(std::process::id() as i32).is_none() {
            return Ok(0);
        }
        let tmp = self.tmp_dir();
        let mut bytes = 0;
        for e in fs::read_dir(&tmp).map_err(io_err("read", &tmp))? {
            let e = e.map_err(io_err("read", &tmp))?;
            if temp_owner_alive(&e.file_name().to_string_lossy()) != Some(false) {
                continue;
            }
            let mine = tmp.join(temp_name("rm"));
            if fs::rename(e.path(), &mine).is_err() {
                continue; // another cleaner took it
            }
            bytes += tree_size(&mine);
            remove_any(&mine).map_err(io_err("remove", &mine))?;
        }
        Ok(bytes)
    }

    pub(crate) fn gc_lock(&self) -> Result<Flock> {
        Ok(Flock::exclusive(&self.root.join("gc.lock"))?)
    }

    /// Streams `reader` into the store as the blob `expected`.
    ///
    /// The bytes are hashed while they are written to a temp file in the store; when
    /// `expected_size` is given, reading stops one byte past it. Content whose size or digest
    /// does not match is refused ([`Error::SizeMismatch`], [`Error::DigestMismatch`]) and
    /// nothing of it is kept. Good content is fsynced, made read-only and renamed into place.
    /// If the blob is already present, `reader` is not read at all.
    pub fn ingest(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
        reader: impl Read,
    ) -> Result<()> {
        let _lease = self.lease()?;
        if self.has(expected) {
            return Ok(());
        }
        let tmp = self.tmp_dir().join(temp_name("ingest"));
        let res = self.ingest_to(&tmp, expected, expected_size, reader);
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    fn ingest_to(
        &self,
        tmp: &Path,
        expected: &Digest,
        expected_size: Option<u64>,
        reader: impl Read,
    ) -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .custom_flags(libc::O_CLOEXEC)
            .open(tmp)
            .map_err(io_err("create", tmp))?;
        let limit = expected_size.map_or(u64::MAX, |s| s.saturating_add(1));
        let mut hashing = HashingReader::new(reader.take(limit));
        io::copy(&mut hashing, &mut file).map_err(io_err("write", tmp))?;
        let (actual, size) = hashing.finish_now();
        if let Some(expected_size) = expected_size
            && size != expected_size
        {
            return Err(Error::SizeMismatch {
                digest: expected.clone(),
                expected: expected_size,
                actual: size,
            });
        }
        if &actual != expected {
            return Err(Error::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        file.sync_all().map_err(io_err("fsync", tmp))?;
        let dest = self.blob_path(expected);
        fs::rename(tmp, &dest).map_err(io_err("rename", &dest))?;
        sync_dir(&self.blobs_dir())
    }

    /// Stores `data` as a blob and returns its digest.
    pub fn ingest_bytes(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        self.ingest(&digest, Some(data.len() as u64), data)?;
        Ok(digest)
    }

    /// Whether the blob is present.
    pub fn has(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a blob for reading.
    pub fn open(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(digest.clone()),
            _ => io_err("open", &path)(e),
        })
    }

    /// The size of a blob in bytes.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(io_err("stat", &path)(e)),
        }
    }

    /// Reads a whole (small) blob, checking its digest again: used for manifests, indexes and
    /// configs, which are parsed right after.
    pub(crate) fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        const MAX: u64 = 16 << 20;
        let mut data = Vec::new();
        self.open(digest)?
            .take(MAX)
            .read_to_end(&mut data)
            .map_err(io_err("read", self.blob_path(digest)))?;
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Removes a blob. Names that point at it are left alone (see [`Store::untag`]).
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.blobs_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Every blob in the store.
    pub fn blobs(&self) -> Result<Vec<Digest>> {
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("read", &dir))? {
            let entry = entry.map_err(io_err("read", &dir))?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    // ---- name index ----

    fn names_path(&self) -> PathBuf {
        self.root.join("names.json")
    }

    fn read_index(&self) -> Result<NameIndex> {
        let path = self.names_path();
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|source| Error::Json {
                what: path.display().to_string(),
                error: source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(NameIndex::default()),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    fn update_index<T>(&self, f: impl FnOnce(&mut NameIndex) -> Result<T>) -> Result<T> {
        let _lock = Flock::exclusive(&self.root.join("names.lock"))?;
        let mut index = self.read_index()?;
        let out = f(&mut index)?;
        let data = serde_json::to_vec_pretty(&index).map_err(|source| Error::Json {
            what: "names.json".into(),
            error: source,
        })?;
        atomic_write(&self.tmp_dir(), &self.names_path(), &data)?;
        Ok(out)
    }

    /// Records `name` -> `manifest` in the index, replacing what the name pointed at.
    ///
    /// The manifest blob must be in the store. A name that pins a digest must pin this one, or
    /// an image index in the store that lists it (a pull by index digest).
    pub fn tag(&self, name: &Reference, manifest: &Digest) -> Result<()> {
        if !self.has(manifest) {
            return Err(Error::BlobNotFound(manifest.clone()));
        }
        if let Some(d) = name.digest()
            && d != manifest
            && !self.index_lists(d, manifest)
        {
            return Err(Error::DigestMismatch {
                expected: d.clone(),
                actual: manifest.clone(),
            });
        }
        self.update_index(|index| {
            index.names.insert(name.to_string(), manifest.clone());
            Ok(())
        })
    }

    /// Whether the blob `index` is an image index that lists `manifest`.
    fn index_lists(&self, index: &Digest, manifest: &Digest) -> bool {
        #[derive(serde::Deserialize)]
        struct Entry {
            digest: String,
        }
        #[derive(serde::Deserialize)]
        struct Index {
            manifests: Vec<Entry>,
        }
        self.read_blob(index)
            .ok()
            .and_then(|data| serde_json::from_slice::<Index>(&data).ok())
            .is_some_and(|i| i.manifests.iter().any(|e| e.digest == manifest.to_string()))
    }

    /// Removes a name from the index and returns what it pointed at. Blobs stay until
    /// [`Store::prune`].
    pub fn untag(&self, name: &Reference) -> Result<Digest> {
        self.update_index(|index| {
            index
                .names
                .remove(&name.to_string())
                .ok_or_else(|| Error::ImageNotFound(name.to_string()))
        })
    }

    /// The manifest digest a name points at. A reference pinning a digest resolves to it when
    /// that manifest is in the store, whatever the repository.
    pub fn resolve(&self, name: &Reference) -> Result<Digest> {
        if let Some(d) = self.read_index()?.names.get(&name.to_string()) {
            return Ok(d.clone());
        }
        match name.digest() {
            Some(d) if self.has(d) => Ok(d.clone()),
            _ => Err(Error::ImageNotFound(name.to_string())),
        }
    }

    /// All names in the index with the manifest each points at, sorted by name.
    pub fn names(&self) -> Result<BTreeMap<String, Digest>> {
        Ok(self.read_index()?.names)
    }
}

/// An image found by [`Store::find_image`].
#[derive(Clone, Debug)]
pub struct FoundImage {
    /// Its manifest digest.
    pub manifest: Digest,
    /// The names pointing at it.
    pub names: Vec<Reference>,
    /// The name it was found by, when found by name.
    pub by_name: Option<Reference>,
}

impl Store {
    /// The one image look-up every front end uses: by name (`busybox`, `busybox:1`,
    /// `repo@sha256:...`), by full or short ID (the config digest, as Docker's image IDs,
    /// with or without `sha256:`), or by manifest digest (the full one also for an image
    /// with no name, as the builder's steps). A short ID matching two images is
    /// [`Error::AmbiguousImage`]; nothing found is [`Error::ImageNotFound`].
    pub fn find_image(&self, text: &str) -> Result<FoundImage> {
        let names = self.names()?;
        let names_of = |manifest: &Digest| -> Vec<Reference> {
            names
                .iter()
                .filter(|(_, d)| *d == manifest)
                .filter_map(|(n, _)| Reference::parse(n).ok())
                .collect()
        };
        if let Ok(r) = Reference::parse(text) {
            match self.resolve(&r) {
                Ok(manifest) => {
                    return Ok(FoundImage {
                        names: names_of(&manifest),
                        manifest,
                        by_name: Some(r),
                    });
                }
                Err(Error::ImageNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let mut hits: Vec<Digest> = Vec::new();
            // Named images, then unnamed ones that are kept (a build's result without `-t`).
            let pinned: Vec<Digest> = self.pins("")?.into_iter().map(|(_, d)| d).collect();
            for manifest in names.values().chain(pinned.iter()) {
                if hits.contains(manifest) {
                    continue;
                }
                let config = crate::Image::load(self, manifest)
                    .map(|i| i.config_digest)
                    .ok();
                if manifest.hex().starts_with(&hex)
                    || config.is_some_and(|c| c.hex().starts_with(&hex))
                {
                    hits.push(manifest.clone());
                }
            }
            // A full manifest digest of an image that has no name (a pinned build step).
            if hits.is_empty()
                && hex.len() == 64
                && let Ok(d) = Digest::from_hex(&hex)
                && self.has(&d)
                && crate::Image::load(self, &d).is_ok()
            {
                hits.push(d);
            }
            match hits.as_slice() {
                [one] => {
                    return Ok(FoundImage {
                        names: names_of(one),
                        manifest: one.clone(),
                        by_name: None,
                    });
                }
                [] => {}
                _ => return Err(Error::AmbiguousImage(text.to_string())),
            }
        }
        Err(Error::ImageNotFound(text.to_string()))
    }

    /// [`Store::find_image`], loaded, with its name set to the one it was found by (else its
    /// first name).
    pub fn find_image_loaded(&self, text: &str) -> Result<crate::Image> {
        let found = self.find_image(text)?;
        let mut image = crate::Image::load(self, &found.manifest)?;
        image.name = found.by_name.or_else(|| found.names.first().cloned());
        Ok(image)
    }
}
