//! Protection of the runtime binary against being overwritten from inside a container
//! (CVE-2019-5736).
//!
//! A container process can reach the binary its init runs from through `/proc/PID/exe` (or make
//! the init exec `/proc/self/exe`). So before creating a container (or exec'ing into one), the
//! runtime re-executes itself from a copy nobody can write:
//!
//! 1. If the binary already lives on a read-only mount, nothing is needed.
//! 2. Otherwise, a detached read-only bind mount of the binary (`open_tree(OPEN_TREE_CLONE)` +
//!    `mount_setattr(MOUNT_ATTR_RDONLY)`): no copy, and the mount is in no namespace, so a
//!    container cannot remount it writable. Writes through `/proc/PID/exe` fail with EROFS.
//! 3. Without the privilege for that (rootless), a sealed memfd copy (F_SEAL_WRITE), as runc
//!    has done since CVE-2019-5736.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether this process already runs from a binary nobody can write: a sealed memfd copy or a
/// file on a read-only mount.
fn running_from_protected_binary() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS on a descriptor we own; no memory arguments.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return true;
    }
    // SAFETY: statvfs is plain data; fstatvfs fills it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and out-pointer.
    unsafe { libc::fstatvfs(f.as_raw_fd(), &mut st) == 0 && st.f_flag & libc::ST_RDONLY != 0 }
}

/// A detached, read-only bind mount of our binary.
fn readonly_mount() -> io::Result<OwnedFd> {
    berth_sys::exe::readonly_clone(c"/proc/self/exe")
}

fn sealed_copy() -> io::Result<OwnedFd> {
    let name = c"berth-runtime";
    // MFD_EXEC (Linux 6.3) keeps the copy executable where vm.memfd_noexec would forbid it.
    const MFD_EXEC: libc::c_uint = 0x10;
    let mut fd = -1;
    for flags in [
        libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | MFD_EXEC,
        libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
    ] {
        // SAFETY: a valid C string.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        if fd >= 0 {
            break;
        }
    }
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new descriptor nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let exe = File::open("/proc/self/exe")?;
    let len = exe.metadata()?.len() as usize;
    let mut done = 0;
    while done < len {
        // SAFETY: sendfile between two descriptors we own.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                len - done,
            )
        };
        if n <= 0 {
            return Err(io::Error::last_os_error());
        }
        done += n as usize;
    }
    // SAFETY: adding seals to our memfd.
    crate::sys::check(unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) })?;
    Ok(memfd)
}

/// Re-exec from a protected binary unless already running from one. Returns only on failure to
/// re-exec, with the error (the caller must not go on creating a container then).
pub fn ensure_sealed() -> io::Result<()> {
    if running_from_protected_binary() {
        return Ok(());
    }
    let memfd = match readonly_mount() {
        Ok(fd) => fd,
        Err(_) => sealed_copy()?,
    };
    let args: Vec<std::ffi::CString> = std::env::args_os()
        .map(|a| std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())))
        .collect::<Result<_, _>>()
        .map_err(io::Error::other)?;
    let env: Vec<std::ffi::CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str()).to_vec();
            b.push(b'=');
            b.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()));
            std::ffi::CString::new(b)
        })
        .collect::<Result<_, _>>()
        .map_err(io::Error::other)?;
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let empty = c"";
    // SAFETY: argv/envp are NULL-terminated arrays of valid C strings; the memfd is ours.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            memfd.as_raw_fd(),
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(io::Error::last_os_error())
}
