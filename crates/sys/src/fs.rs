//! Atomic writes, directory fsync, private directories.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{PathError, Result};

/// The directory a path is in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `data` to `path` atomically: a temp file next to it (`.NAME.tmpPID-N`, in the same
/// directory, so the same file system), created with `mode` (less the umask), fsynced and
/// renamed over `path`, then the directory fsynced. Readers see the old content or the new,
/// never a part; after a crash (even of the machine) at most the temp file is left.
///
/// Fails naming the step and its file: `create`, `write` or `fsync` of the temp file, `rename`
/// to `path`, `fsync` of the directory.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    write_next_to(path, data, mode, true)
}

/// [`write_atomic`] without the fsyncs: readers still see the old content or the new, and a
/// killed process leaves at most its temp file, but a power loss may lose the write. For state
/// that does not outlive a reboot (the runtime's, as runc's), where an fsync per write would
/// cost each container start milliseconds on a disk-backed `/run`.
pub fn write_atomic_nosync(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    write_next_to(path, data, mode, false)
}

fn write_next_to(path: &Path, data: &[u8], mode: u32, durable: bool) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = parent(path).join(format!(".{name}.tmp{}-{n}", std::process::id()));
    match write_via(&tmp, path, data, mode, durable) {
        // Debris of a killed process that had our pid: ours to replace.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && e.path == tmp => {
            let _ = fs::remove_file(&tmp);
            write_via(&tmp, path, data, mode, durable)
        }
        r => r,
    }
}

/// [`write_atomic`] through the temp file `tmp` the caller names (it must not exist, and must
/// be on `path`'s file system): for stores whose temp files live in a directory of their own
/// that is cleaned after a crash. The temp file is removed again if any step fails.
pub fn write_atomic_via(tmp: &Path, path: &Path, data: &[u8], mode: u32) -> Result<()> {
    write_via(tmp, path, data, mode, true)
}

fn write_via(tmp: &Path, path: &Path, data: &[u8], mode: u32, durable: bool) -> Result<()> {
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(tmp)
            .map_err(PathError::map("create", tmp))?;
        f.write_all(data).map_err(PathError::map("write", tmp))?;
        if durable {
            f.sync_all().map_err(PathError::map("fsync", tmp))?;
        }
        fs::rename(tmp, path).map_err(PathError::map("rename", path))
    })();
    if let Err(e) = res {
        if !(e.op == "create" && e.kind() == io::ErrorKind::AlreadyExists) {
            let _ = fs::remove_file(tmp);
        }
        return Err(e);
    }
    if durable {
        sync_dir(parent(path))?;
    }
    Ok(())
}

/// Creates the new file `path` (it must not exist) with `data` and `mode`, fsynced: for a file
/// in a directory nobody sees yet, made visible afterwards by renaming the directory (after a
/// [`sync_dir`] of it), where a temp file and rename per file would be wasted. A failed write
/// removes the file again. Fails with `create`, `write` or `fsync` of `path`.
pub fn write_new_durable(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(PathError::map("create", path))?;
        f.write_all(data).map_err(PathError::map("write", path))?;
        f.sync_all().map_err(PathError::map("fsync", path))
    })();
    if let Err(e) = &res
        && e.op != "create"
    {
        let _ = fs::remove_file(path);
    }
    res
}

/// fsyncs a directory, so that a rename, creation or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(PathError::map("fsync", dir))
}

/// Makes `dir` (and missing parents) with mode 0700, and takes group and other bits off it if
/// it exists with them (made by an older version, or by hand): state directories hold what
/// other users must not read or reach (container roots with setuid files and device nodes,
/// CVE-2021-41091 class).
///
/// Fails with `create`, `stat` or `chmod` of `dir`.
pub fn private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(PathError::map("create", dir))?;
    let m = fs::metadata(dir).map_err(PathError::map("stat", dir))?;
    if m.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(PathError::map("chmod", dir))?;
    }
    Ok(())
}

/// A fresh temp directory for a test (removed when dropped).
#[cfg(test)]
pub(crate) struct TestDir(pub(crate) std::path::PathBuf);

#[cfg(test)]
impl TestDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "berth-sys-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

#[cfg(test)]
impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn umask() -> u32 {
        // SAFETY: umask has no memory arguments; we set it back at once.
        let old = unsafe { libc::umask(0o022) };
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        old
    }

    #[test]
    fn write_atomic_replaces_content_with_mode_and_leaves_no_temp() {
        let d = TestDir::new("write");
        let p = d.0.join("state.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        write_atomic_nosync(&p, b"three", 0o644).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o644 & !umask());
        let names: Vec<_> = fs::read_dir(&d.0).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "temp files left: {names:?}");
    }

    #[test]
    fn write_atomic_replaces_a_dead_process_temp_file() {
        let d = TestDir::new("debris");
        let p = d.0.join("f");
        // The first counter value this process can still use is unknown: make debris for all.
        for n in 0..64 {
            fs::write(d.0.join(format!(".f.tmp{}-{n}", std::process::id())), "old").unwrap();
        }
        write_atomic(&p, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn write_atomic_names_the_step_and_file() {
        let d = TestDir::new("err");
        let p = d.0.join("missing-dir").join("f");
        let e = write_atomic(&p, b"x", 0o600).unwrap_err();
        assert_eq!(e.op, "create");
        assert!(e.path.starts_with(d.0.join("missing-dir")), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("create "), "{e}");
    }

    #[test]
    fn write_atomic_via_removes_its_temp_file_on_failure() {
        let d = TestDir::new("via");
        let tmp = d.0.join("tmp-1");
        // Renaming a file over a non-empty directory fails.
        let target = d.0.join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), "").unwrap();
        let e = write_atomic_via(&tmp, &target, b"x", 0o600).unwrap_err();
        assert_eq!(e.op, "rename");
        assert!(!tmp.exists());
        write_atomic_via(&tmp, &d.0.join("ok"), b"y", 0o400).unwrap();
        assert_eq!(fs::read(d.0.join("ok")).unwrap(), b"y");
        assert_eq!(fs::metadata(d.0.join("ok")).unwrap().mode() & 0o777, 0o400);
    }

    #[test]
    fn private_dir_creates_0700_and_tightens_an_open_one() {
        let d = TestDir::new("private");
        let p = d.0.join("a/b");
        private_dir(&p).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&p).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o700);
        sync_dir(&p).unwrap();
        assert_eq!(sync_dir(&d.0.join("nope")).unwrap_err().op, "fsync");
    }
}
