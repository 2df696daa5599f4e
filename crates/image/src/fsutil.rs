//! Small file-system helpers: private directories, atomic writes, directory fsync, flock, temp
//! names.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
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
    let start = *START.get_or_init(|| pid_start_time(u64::from(pid)).unwrap_or(0));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{kind}-{pid}-{start}-{nanos}-{n}")
}

/// When process `pid` started (field 22 of `/proc/PID/stat`, clock ticks since boot); `None`
/// when there is no such process or it is a zombie.
pub(crate) fn pid_start_time(pid: u64) -> Option<u64> {
    if pid == 0 || pid > i32::MAX as u64 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // fields[0] is the state (field 3), so field 22 is fields[19].
    if matches!(fields.first(), Some(&"Z" | &"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the process that made the `tmp/` entry `name` is still running: `Some` for names made
/// by [`temp_name`] (the pid and start time must both match) or by older versions
/// (`<kind>-<pid>-<nanos>-<n>`: the pid must exist), `None` for any other name.
pub(crate) fn temp_owner_alive(name: &str) -> Option<bool> {
    let mut parts = name.split('-');
    parts.next().filter(|kind| !kind.is_empty())?;
    let nums: Vec<u64> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
    match nums[..] {
        [pid, start, _, _] => Some(pid_start_time(pid) == Some(start)),
        [pid, _, _] => Some(pid_start_time(pid).is_some()),
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

/// Makes `dir` (and missing parents) with mode 0700, and takes group and other bits off it if it
/// exists with them (a store made by an older berth, or by hand): unpacked layers and container
/// roots hold setuid files and device nodes at paths anyone could compute.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create", dir))?;
    let m = fs::metadata(dir).map_err(io_err("stat", dir))?;
    if m.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod", dir))?;
    }
    Ok(())
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
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err("fsync", dir))
}

/// Writes `data` to `path` atomically: a temp file in `tmp_dir` (same file system), fsync,
/// rename over `path`, fsync of the parent.
pub(crate) fn atomic_write(tmp_dir: &Path, path: &Path, data: &[u8]) -> Result<()> {
    let tmp = tmp_dir.join(temp_name("write"));
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(data).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename", path))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res?;
    sync_dir(path.parent().unwrap_or(Path::new("/")))
}

/// A held flock(2); released when dropped (or when the process dies).
pub(crate) struct Flock {
    _file: File,
}

impl Flock {
    /// Locks `path` (created if missing), shared or exclusive, blocking until granted.
    pub(crate) fn lock(path: &Path, exclusive: bool) -> Result<Self> {
        Self::lock_with(path, exclusive, true).map(|l| l.expect("a blocking lock is granted"))
    }

    /// Locks `path` exclusively if nobody holds it; `None` if someone does.
    pub(crate) fn try_exclusive(path: &Path) -> Result<Option<Self>> {
        Self::lock_with(path, true, false)
    }

    fn lock_with(path: &Path, exclusive: bool, block: bool) -> Result<Option<Self>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io_err("open", path))?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        } | if block { 0 } else { libc::LOCK_NB };
        loop {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
            if rc == 0 {
                return Ok(Some(Self { _file: file }));
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) && !block {
                return Ok(None);
            }
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(io_err("flock", path)(err));
            }
        }
    }
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
