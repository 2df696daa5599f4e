//! Small file-system helpers: private directories, atomic writes, directory fsync, flock, temp
//! names.

use std::collections::HashSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, io_err};

/// A unique name for a temporary file or directory in the store's `tmp/`:
/// `<kind>-<pid>-<start time>-<nanos>-<n>`, naming its owner (this process, by pid and start
/// time, so that a reused pid is not taken for it) for [`temp_owner_alive`].
pub(crate) fn temp_name(kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static START: OnceLock<u64> = OnceLock::new();
    let pid = std::process::id();
    let start = *START.get_or_init(|| berth_sys::proc::pid_start_time(pid as i32).unwrap_or(0));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{kind}-{pid}-{start}-{nanos}-{n}")
}

/// The start time of `pid` (see [`berth_sys::proc::pid_start_time`]); `None` also for a pid
/// no process can have.
fn start_time(pid: u64) -> Option<u64> {
    berth_sys::proc::pid_start_time(i32::try_from(pid).ok()?)
}

/// Whether the process that made the `tmp/` entry `name` is still running: `Some` for names made
/// by [`temp_name`] (the pid and start time must both match) or by older versions
/// (`<kind>-<pid>-<nanos>-<n>`: the pid must exist), `None` for any other name.
pub(crate) fn temp_owner_alive(name: &str) -> Option<bool> {
    let mut parts = name.split('-');
    parts.next().filter(|kind| !kind.is_empty())?;
    let nums: Vec<u64> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
    match nums[..] {
        [pid, start, _, _] => Some(start_time(pid) == Some(start)),
        [pid, _, _] => Some(start_time(pid).is_some()),
        _ => None,
    }
}

/// The bytes a file or tree holds: the sizes of its non-directories (symlinks count their
/// target's length), each hardlinked inode once. 0 for what cannot be read.
pub(crate) fn tree_size(path: &Path) -> u64 {
    fn walk(path: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(m) = fs::symlink_metadata(path) else {
            return 0;
        };
        if !m.is_dir() {
            return if m.nlink() > 1 && !seen.insert((m.dev(), m.ino())) {
                0
            } else {
                m.len()
            };
        }
        let Ok(rd) = fs::read_dir(path) else { return 0 };
        rd.flatten().map(|e| walk(&e.path(), seen)).sum()
    }
    walk(path, &mut HashSet::new())
}

/// Removes a file or a directory tree (not following symlinks).
pub(crate) fn remove_any(path: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// Makes the new directory `dir` (its parent must exist) with mode 0700: temp directories in
/// `tmp/`, container snapshots.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create", dir))
}

/// fsyncs a directory, so a rename or unlink in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    Ok(berth_sys::sync_dir(dir)?)
}

/// Writes `data` to `path` atomically, mode 0600: a temp file in `tmp_dir` (same file system,
/// cleaned after a crash), fsync, rename over `path`, fsync of the parent.
pub(crate) fn atomic_write(tmp_dir: &Path, path: &Path, data: &[u8]) -> Result<()> {
    Ok(berth_sys::write_atomic_via(
        &tmp_dir.join(temp_name("write")),
        path,
        data,
        0o600,
    )?)
}

/// Removes a directory tree, first renaming it into `tmp_dir` so a crash half-way leaves no
/// partial tree under its real name.
pub(crate) fn remove_tree_atomically(tmp_dir: &Path, path: &Path) -> Result<()> {
    let doomed: PathBuf = tmp_dir.join(temp_name("rm"));
    fs::rename(path, &doomed).map_err(io_err("rename", path))?;
    fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))
}

/// ext4's "top of directory hierarchies" attribute (`chattr +T`, `FS_TOPDIR_FL`).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Marks `dir` (best effort; a no-op where unsupported) so that ext4's Orlov allocator treats
/// the directories made in it as unrelated trees and spreads them over block groups, as it does
/// for home directories. Layers are unpacked in `tmp/`: each gets a group of its own instead of
/// all landing in the store's group, where, on ext4 without a journal, every inode freed in the
/// last 30 s (a layer just deleted) is skipped one by one on each file creation.
pub(crate) fn mark_top_dir(dir: &Path) {
    let Ok(f) = fs::File::open(dir) else { return };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int to the pointer we pass.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } < 0
        || flags & FS_TOPDIR_FL != 0
    {
        return;
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int from the pointer we pass.
    let _ = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) };
}
