//! flock(2) guards.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::{PathError, Result};

/// A held flock(2), released when dropped (or when the process dies, or when every descriptor
/// of it is closed). Lock files are created with mode 0600 (less the umask): whoever can open
/// a lock file can flock it and stall everyone who takes it.
#[derive(Debug)]
pub struct Flock {
    file: File,
}

impl Flock {
    /// An exclusive lock on `path` (created if missing), waiting until granted.
    pub fn exclusive(path: &Path) -> Result<Self> {
        Self::acquire(open(path)?, path, libc::LOCK_EX).map(|l| l.expect("blocking lock"))
    }

    /// A shared lock on `path` (created if missing), waiting until granted.
    pub fn shared(path: &Path) -> Result<Self> {
        Self::acquire(open(path)?, path, libc::LOCK_SH).map(|l| l.expect("blocking lock"))
    }

    /// An exclusive lock on `path` (created if missing) if nobody holds one; `None` if someone
    /// does.
    pub fn try_exclusive(path: &Path) -> Result<Option<Self>> {
        Self::acquire(open(path)?, path, libc::LOCK_EX | libc::LOCK_NB)
    }

    /// An exclusive lock on the directory `dir` itself (which must exist), waiting until
    /// granted.
    pub fn exclusive_dir(dir: &Path) -> Result<Self> {
        let file = File::open(dir).map_err(PathError::map("open", dir))?;
        Self::acquire(file, dir, libc::LOCK_EX).map(|l| l.expect("blocking lock"))
    }

    /// The open lock file (to check or change its mode, say).
    pub fn file(&self) -> &File {
        &self.file
    }

    fn acquire(file: File, path: &Path, op: libc::c_int) -> Result<Option<Self>> {
        loop {
            // SAFETY: flock on a descriptor we own; no memory arguments.
            if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
                return Ok(Some(Self { file }));
            }
            let err = io::Error::last_os_error();
            if op & libc::LOCK_NB != 0 && err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Ok(None);
            }
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(PathError::map("flock", path)(err));
            }
        }
    }
}

impl AsFd for Flock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl From<Flock> for File {
    /// The lock file, still locked: the lock lasts until every descriptor of it is closed.
    fn from(l: Flock) -> File {
        l.file
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(PathError::map("open", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::TestDir;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn exclusive_excludes_and_drop_releases() {
        let d = TestDir::new("lock");
        let p = d.0.join("lock");
        let l = Flock::exclusive(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o077, 0);
        // flock locks belong to open file descriptions: a second open conflicts even in the
        // same process.
        assert!(Flock::try_exclusive(&p).unwrap().is_none());
        drop(l);
        let l = Flock::try_exclusive(&p).unwrap().expect("free after drop");
        drop(l);
    }

    #[test]
    fn shared_locks_coexist_and_exclude_exclusive() {
        let d = TestDir::new("shared");
        let p = d.0.join("lock");
        let a = Flock::shared(&p).unwrap();
        let b = Flock::shared(&p).unwrap();
        assert!(Flock::try_exclusive(&p).unwrap().is_none());
        drop((a, b));
        assert!(Flock::try_exclusive(&p).unwrap().is_some());
    }

    #[test]
    fn directory_lock_and_errors_name_the_path() {
        let d = TestDir::new("dirlock");
        let l = Flock::exclusive_dir(&d.0).unwrap();
        let f = File::open(&d.0).unwrap();
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, -1, "directory lock not held");
        drop(l);
        let e = Flock::exclusive(&d.0.join("no/such/lock")).unwrap_err();
        assert_eq!((e.op, e.kind()), ("open", io::ErrorKind::NotFound));
    }
}
