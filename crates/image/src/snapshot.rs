//! Unpacked layers keyed by chain ID, and writable container snapshots returned as mounts.
//!
//! ```text
//! snapshots/layers/<chain id hex>/       one unpacked layer (its own files, whiteouts kept)
//! snapshots/containers/<key>/meta.json   {"mode", "image", "chain"}: what the snapshot uses
//! snapshots/containers/<key>/upper, work overlay mode
//! snapshots/containers/<key>/rootfs      copy mode
//! ```
//!
//! Lifecycle (as containerd's snapshotter): `prepare` makes the snapshot and returns its
//! mounts; the caller mounts them, runs the container, unmounts; `remove` deletes it.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result, io_err};
use crate::fsutil::{
    atomic_write, create_private_dir, remove_tree_atomically, sync_dir, temp_name,
};
use crate::image::Image;
use crate::store::Store;
use crate::unpack::{Unpacked, unpack_sized};

/// A mount for the caller to perform, as data: `mount -t <kind> -o <options> <source> TARGET`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// File system type: `overlay`, or `bind` for the copy fallback.
    pub kind: String,
    /// Source: `overlay`, or the directory to bind.
    pub source: PathBuf,
    /// Options, e.g. `lowerdir=...`, `upperdir=...`, `workdir=...`, or `rbind`, `rw`.
    pub options: Vec<String>,
}

/// One step of an image's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When (RFC 3339), if recorded.
    pub created: Option<String>,
    /// The instruction that made it (`/bin/sh -c #(nop) CMD ["sh"]`, `RUN ...`).
    pub created_by: String,
    /// Its comment.
    pub comment: String,
    /// Bytes of the layer it made (0 when it made none).
    pub size: u64,
    /// It made no layer (ENV, CMD, ...).
    pub empty_layer: bool,
}

/// How container snapshots are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    /// An overlay of the layer directories with a per-container upper and work dir.
    Overlay,
    /// A full copy of the layers (whiteouts applied) into a per-container rootfs, bind mounted.
    Copy,
}

impl SnapshotMode {
    /// Overlay when the kernel lists overlayfs in /proc/filesystems, copy otherwise.
    pub fn detect() -> Self {
        match fs::read_to_string("/proc/filesystems") {
            Ok(s)
                if s.lines()
                    .any(|l| l.split_whitespace().last() == Some("overlay")) =>
            {
                Self::Overlay
            }
            _ => Self::Copy,
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SnapshotMeta {
    pub(crate) mode: SnapshotMode,
    pub(crate) image: Digest,
    /// Chain IDs of the layers it uses, bottom first.
    pub(crate) chain: Vec<Digest>,
}

/// Makes and removes snapshots in a [`Store`].
#[derive(Clone, Debug)]
pub struct Snapshotter {
    store: Store,
    mode: SnapshotMode,
}

impl Snapshotter {
    /// A snapshotter over `store` making snapshots in `mode`.
    pub fn new(store: &Store, mode: SnapshotMode) -> Self {
        Self {
            store: store.clone(),
            mode,
        }
    }

    /// The directory of an unpacked layer.
    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.store.layers_dir().join(chain_id.hex())
    }

    /// Unpacks the image's layers that are not unpacked yet and returns the layer directories,
    /// bottom first.
    ///
    /// Each layer is read from the store (its blob digest checked again), unpacked into a temp
    /// directory, its diff ID checked against the config, synced, and renamed to
    /// `snapshots/layers/<chain id>`. A layer another process unpacked meanwhile is kept.
    /// Layers are independent directories, so missing ones are unpacked on several threads.
    ///
    /// A layer that fails is reported as [`Error::Layer`], naming it and the image (its
    /// [`Image::name`] when set); nothing of it is kept.
    pub fn unpack(&self, image: &Image) -> Result<Vec<PathBuf>> {
        let _lease = self.store.lease()?;
        let dirs: Vec<PathBuf> = image
            .layers
            .iter()
            .map(|l| self.layer_dir(&l.chain_id))
            .collect();
        // Chain IDs differ at every position, so no two of these share a directory.
        let missing: Vec<(&crate::image::Layer, &PathBuf)> = image
            .layers
            .iter()
            .zip(&dirs)
            .filter(|(_, d)| !d.is_dir())
            .collect();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        crate::parallel::try_each(missing, threads, |(layer, dir), _| {
            self.unpack_missing(layer, dir)
                .map_err(|error| Error::Layer {
                    layer: layer.digest.clone(),
                    image: image.display_name(),
                    error: Box::new(error),
                })
        })?;
        Ok(dirs)
    }

    fn unpack_missing(&self, layer: &crate::image::Layer, dir: &Path) -> Result<()> {
        let tmp = self.store.tmp_dir().join(temp_name("unpack"));
        create_private_dir(&tmp)?;
        let res = self.unpack_one(layer, &tmp, dir);
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res
    }

    fn unpack_one(&self, layer: &crate::image::Layer, tmp: &Path, dir: &Path) -> Result<()> {
        let mut blob = HashingReader::new(self.store.open(&layer.digest)?);
        let Unpacked {
            diff_id,
            size,
            root_entry,
        } = unpack_sized(&mut blob, tmp)?;
        let (digest, _) = blob
            .finish()
            .map_err(io_err("read", self.store.blob_path(&layer.digest)))?;
        if digest != layer.digest {
            return Err(Error::DigestMismatch {
                expected: layer.digest.clone(),
                actual: digest,
            });
        }
        if diff_id != layer.diff_id {
            return Err(Error::DiffIdMismatch {
                layer: layer.digest.clone(),
                expected: layer.diff_id.clone(),
                actual: diff_id,
            });
        }
        if !root_entry {
            // The temp directory was made 0700; a layer without an entry for its root gets
            // 0755, as tar gives an archive's root (it becomes the mode of a container's `/`).
            fs::set_permissions(tmp, fs::Permissions::from_mode(0o755))
                .map_err(io_err("chmod", tmp))?;
        }
        // Recorded before the layer appears: a layer directory always has its size.
        atomic_write(
            &self.store.tmp_dir(),
            &self.store.sizes_dir().join(layer.chain_id.hex()),
            size.to_string().as_bytes(),
        )?;
        let f = fs::File::open(tmp).map_err(io_err("open", tmp))?;
        // SAFETY: syncfs on a descriptor we own.
        if unsafe { libc::syncfs(f.as_raw_fd()) } < 0 {
            return Err(io_err("syncfs", tmp)(io::Error::last_os_error()));
        }
        match fs::rename(tmp, dir) {
            Ok(()) => sync_dir(&self.store.layers_dir()),
            // Someone else unpacked the same chain first: theirs is as good as ours.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
                fs::remove_dir_all(tmp).map_err(io_err("remove", tmp))
            }
            Err(e) => Err(io_err("rename", dir)(e)),
        }
    }

    /// The image's size as Docker shows it (the sum of its layers' file bytes), when all its
    /// layers are unpacked; `None` otherwise.
    pub fn unpacked_size(&self, image: &Image) -> Option<u64> {
        image.layers.iter().try_fold(0u64, |sum, l| {
            let path = self.store.sizes_dir().join(l.chain_id.hex());
            let n: u64 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
            Some(sum + n)
        })
    }

    /// A layer's unpacked size (the file bytes recorded at unpack), if it is unpacked.
    pub fn layer_size(&self, chain_id: &Digest) -> Option<u64> {
        fs::read_to_string(self.store.sizes_dir().join(chain_id.hex()))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The image's size as `images` shows it: [`Snapshotter::unpacked_size`], else (an image
    /// not unpacked yet) the size of its compressed layers.
    pub fn image_size(&self, image: &Image) -> u64 {
        self.unpacked_size(image)
            .unwrap_or_else(|| image.layers.iter().map(|l| l.size).sum())
    }

    /// One layer's size as [`Snapshotter::image_size`] counts it.
    pub fn layer_size_or_compressed(&self, layer: &crate::image::Layer) -> u64 {
        self.layer_size(&layer.chain_id).unwrap_or(layer.size)
    }

    /// The image's history as `history` shows it, newest first: each config history entry
    /// with the size of the layer it made (0 for an `empty_layer` entry). An image without
    /// history gets one entry per layer.
    pub fn history(&self, image: &Image) -> Vec<HistoryEntry> {
        let mut layers = image.layers.iter();
        let mut out: Vec<HistoryEntry> = Vec::new();
        if let Some(h) = image.config.history() {
            for e in h {
                let empty = e.empty_layer().unwrap_or(false);
                let size = if empty {
                    0
                } else {
                    layers
                        .next()
                        .map(|l| self.layer_size_or_compressed(l))
                        .unwrap_or(0)
                };
                out.push(HistoryEntry {
                    created: e.created().clone(),
                    created_by: e.created_by().clone().unwrap_or_default(),
                    comment: e.comment().clone().unwrap_or_default(),
                    size,
                    empty_layer: empty,
                });
            }
        }
        // Layers the history does not account for.
        for l in layers {
            out.push(HistoryEntry {
                created: None,
                created_by: String::new(),
                comment: String::new(),
                size: self.layer_size_or_compressed(l),
                empty_layer: false,
            });
        }
        out.reverse();
        out
    }

    fn container_dir(&self, key: &str) -> Result<PathBuf> {
        let ok = !key.is_empty()
            && key.len() <= 128
            && key != "."
            && key != ".."
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            return Err(Error::InvalidKey(key.to_string()));
        }
        Ok(self.store.containers_dir().join(key))
    }

    /// Makes a writable snapshot `key` of `image` (unpacking its layers first) and returns the
    /// mounts that make up the container's root filesystem. Nothing is mounted.
    pub fn prepare(&self, key: &str, image: &Image) -> Result<Vec<Mount>> {
        let dir = self.container_dir(key)?;
        if dir.exists() {
            return Err(Error::SnapshotExists(key.to_string()));
        }
        let _lease = self.store.lease()?;
        let layers = self.unpack(image)?;
        let tmp = self.store.tmp_dir().join(temp_name("prepare"));
        let res = (|| {
            create_private_dir(&tmp)?;
            match self.mode {
                SnapshotMode::Overlay => {
                    let upper = tmp.join("upper");
                    fs::create_dir(&upper).map_err(io_err("create", &upper))?;
                    create_private_dir(&tmp.join("work"))?;
                    // overlayfs needs a lower directory: an image with no layers (a build
                    // `FROM scratch`) gets an empty one.
                    if layers.is_empty() {
                        create_private_dir(&tmp.join("empty"))?;
                    }
                    // The upper dir becomes the container's /: give it the root's metadata.
                    if let Some(top) = layers.last() {
                        copy_owner_mode(top, &tmp.join("upper"))?;
                    }
                }
                SnapshotMode::Copy => {
                    let rootfs = tmp.join("rootfs");
                    fs::create_dir(&rootfs).map_err(io_err("create", &rootfs))?;
                    for layer in &layers {
                        copy_layer(layer, &rootfs, &mut HashMap::new())?;
                    }
                }
            }
            let meta = SnapshotMeta {
                mode: self.mode,
                image: image.manifest_digest.clone(),
                chain: image.layers.iter().map(|l| l.chain_id.clone()).collect(),
            };
            let data = serde_json::to_vec_pretty(&meta).map_err(|source| Error::Json {
                what: format!("snapshot {key} meta.json"),
                error: source,
            })?;
            let meta_path = tmp.join("meta.json");
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&meta_path)
                .and_then(|mut f| f.write_all(&data))
                .map_err(io_err("write", &meta_path))?;
            match fs::rename(&tmp, &dir) {
                Ok(()) => sync_dir(&self.store.containers_dir()),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
                    Err(Error::SnapshotExists(key.to_string()))
                }
                Err(e) => Err(io_err("rename", &dir)(e)),
            }
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res?;
        self.mounts(key)
    }

    /// The mounts of an existing snapshot.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let dir = self.container_dir(key)?;
        let meta = read_meta(&dir, key)?;
        match meta.mode {
            SnapshotMode::Overlay => {
                let mut lower: Vec<String> = meta
                    .chain
                    .iter()
                    .rev()
                    .map(|c| self.layer_dir(c).display().to_string())
                    .collect();
                if lower.is_empty() {
                    lower.push(dir.join("empty").display().to_string());
                }
                let upper = dir.join("upper").display().to_string();
                let work = dir.join("work").display().to_string();
                for p in lower.iter().chain([&upper, &work]) {
                    if p.contains([',', ':']) {
                        return Err(Error::Invalid {
                            what: format!("snapshot {key}"),
                            reason: format!("overlay cannot use a path with ',' or ':': {p}"),
                        });
                    }
                }
                let mut options = vec![format!("lowerdir={}", lower.join(":"))];
                options.push(format!("upperdir={upper}"));
                options.push(format!("workdir={work}"));
                Ok(vec![Mount {
                    kind: "overlay".into(),
                    source: PathBuf::from("overlay"),
                    options,
                }])
            }
            SnapshotMode::Copy => Ok(vec![Mount {
                kind: "bind".into(),
                source: dir.join("rootfs"),
                options: vec!["rbind".into(), "rw".into()],
            }]),
        }
    }

    /// Removes snapshot `key`. It must be unmounted.
    pub fn remove(&self, key: &str) -> Result<()> {
        let dir = self.container_dir(key)?;
        if !dir.exists() {
            return Err(Error::SnapshotNotFound(key.to_string()));
        }
        remove_tree_atomically(&self.store.tmp_dir(), &dir)?;
        sync_dir(&self.store.containers_dir())
    }

    /// The keys of all container snapshots.
    pub fn list(&self) -> Result<Vec<String>> {
        list_keys(&self.store)
    }
}

pub(crate) fn list_keys(store: &Store) -> Result<Vec<String>> {
    let dir = store.containers_dir();
    let mut keys = Vec::new();
    for e in fs::read_dir(&dir).map_err(io_err("read", &dir))? {
        let e = e.map_err(io_err("read", &dir))?;
        keys.push(e.file_name().to_string_lossy().into_owned());
    }
    keys.sort();
    Ok(keys)
}

pub(crate) fn read_meta(dir: &Path, key: &str) -> Result<SnapshotMeta> {
    let path = dir.join("meta.json");
    let data = fs::read(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::SnapshotNotFound(key.to_string()),
        _ => io_err("read", &path)(e),
    })?;
    serde_json::from_slice(&data).map_err(|source| Error::Json {
        what: path.display().to_string(),
        error: source,
    })
}

fn copy_owner_mode(from: &Path, to: &Path) -> Result<()> {
    let m = fs::symlink_metadata(from).map_err(io_err("stat", from))?;
    std::os::unix::fs::lchown(to, Some(m.uid()), Some(m.gid())).map_err(io_err("chown", to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777))
        .map_err(io_err("chmod", to))
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 1];
    // SAFETY: valid C strings and a 1-byte buffer of the size we pass.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            1,
        )
    };
    n == 1 && buf[0] == b'y'
}

fn remove_any(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).map_err(io_err("remove", p)),
        Ok(_) => fs::remove_file(p).map_err(io_err("remove", p)),
        Err(_) => Ok(()),
    }
}

/// Applies an unpacked layer onto `dst` as overlayfs would show it: whiteouts delete, opaque
/// directories replace, everything else is copied (owner, mode, mtime; hardlinks within the
/// layer kept; xattrs are not copied). `dst` only ever holds what this function made, and it
/// never writes through a symlink: anything in the way of a directory is replaced by one.
fn copy_layer(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    if is_opaque(src) {
        for e in fs::read_dir(dst).map_err(io_err("read", dst))? {
            remove_any(&e.map_err(io_err("read", dst))?.path())?;
        }
    }
    copy_owner_mode(src, dst)?;
    for e in fs::read_dir(src).map_err(io_err("read", src))? {
        let e = e.map_err(io_err("read", src))?;
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let m = fs::symlink_metadata(&s).map_err(io_err("stat", &s))?;
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            remove_any(&d)?; // whiteout
            continue;
        }
        if ft.is_dir() {
            if !fs::symlink_metadata(&d).is_ok_and(|dm| dm.is_dir()) {
                remove_any(&d)?;
                fs::create_dir(&d).map_err(io_err("create", &d))?;
            }
            copy_layer(&s, &d, links)?;
        } else {
            remove_any(&d)?;
            if m.nlink() > 1
                && let Some(first) = links.get(&(m.dev(), m.ino()))
            {
                fs::hard_link(first, &d).map_err(io_err("hardlink", &d))?;
                continue;
            }
            if ft.is_symlink() {
                let target = fs::read_link(&s).map_err(io_err("readlink", &s))?;
                std::os::unix::fs::symlink(&target, &d).map_err(io_err("symlink", &d))?;
            } else if ft.is_file() {
                fs::copy(&s, &d).map_err(io_err("copy", &d))?;
            } else {
                let c = std::ffi::CString::new(d.as_os_str().as_encoded_bytes())
                    .map_err(|_| io_err("mknod", &d)(io::ErrorKind::InvalidInput.into()))?;
                // SAFETY: valid C string; creates a node like the source's.
                if unsafe { libc::mknod(c.as_ptr(), m.mode(), m.rdev()) } < 0 {
                    return Err(io_err("mknod", &d)(io::Error::last_os_error()));
                }
            }
            std::os::unix::fs::lchown(&d, Some(m.uid()), Some(m.gid()))
                .map_err(io_err("chown", &d))?;
            if !ft.is_symlink() {
                fs::set_permissions(&d, fs::Permissions::from_mode(m.mode() & 0o7777))
                    .map_err(io_err("chmod", &d))?;
            }
            if m.nlink() > 1 {
                links.insert((m.dev(), m.ino()), d.clone());
            }
        }
        set_mtime(&d, m.mtime())?;
    }
    Ok(())
}

fn set_mtime(p: &Path, mtime: i64) -> Result<()> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io_err("utimensat", p)(io::ErrorKind::InvalidInput.into()))?;
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    // SAFETY: valid C string and timespec pair; the link itself is changed.
    if unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [ts, ts].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } < 0
    {
        return Err(io_err("utimensat", p)(io::Error::last_os_error()));
    }
    Ok(())
}
