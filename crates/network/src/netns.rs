//! Named network namespaces: a thread unshares a new one and bind-mounts
//! `/proc/thread-self/ns/net` on a file (what `ip netns add` does), so it outlives every
//! process and the runtime joins it by path.

use std::ffi::CString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Result, io_err};

const NSFS_MAGIC: i64 = 0x6e73_6673;

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL")
}

/// Creates a namespace bound at `path` (the file must not exist).
pub(crate) fn create(path: &Path) -> Result<()> {
    if let Some(d) = path.parent() {
        berth_sys::private_dir(d)?;
    }
    File::create(path).map_err(io_err("create", path))?;
    let target = cstr(path);
    let res = std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: unshare affects only this thread, which ends right after.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let src = c"/proc/thread-self/ns/net";
        // SAFETY: both strings are NUL-terminated and outlive the call.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    })
    .join()
    .expect("netns thread does not panic");
    if let Err(e) = res {
        let _ = std::fs::remove_file(path);
        return Err(io_err("bind network namespace at", path)(e));
    }
    Ok(())
}

/// Whether a namespace is bound at `path` (false after a reboot left the file only).
pub(crate) fn is_bound(path: &Path) -> bool {
    // SAFETY: statfs fills the zeroed struct; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let p = cstr(path);
    // SAFETY: see above.
    unsafe { libc::statfs(p.as_ptr(), &mut st) == 0 && st.f_type as i64 == NSFS_MAGIC }
}

/// Unmounts and removes the file; a missing one is fine.
pub(crate) fn remove(path: &Path) -> Result<()> {
    let p = cstr(path);
    for _ in 0..4 {
        if !is_bound(path) {
            break;
        }
        // SAFETY: NUL-terminated path.
        unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}
