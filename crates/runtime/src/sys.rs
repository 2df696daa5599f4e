//! Thin, checked wrappers over the Linux system calls the runtime needs.
//!
//! Each wrapper turns `-1`/errno into `io::Error` and nothing more; the callers add context
//! (which path, which field of config.json).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Turns a `-1` return into the thread's errno.
pub fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A path as a C string (paths with a NUL byte are refused).
pub fn cstr(path: impl AsRef<Path>) -> io::Result<CString> {
    CString::new(path.as_ref().as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// mount(2).
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cstr).transpose()?;
    let target = cstr(target)?;
    let fstype = fstype.map(CString::new).transpose()?;
    let data = data.map(CString::new).transpose()?;
    let p = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is either null or a valid NUL-terminated string that outlives the call.
    check(unsafe {
        libc::mount(
            p(&source),
            target.as_ptr(),
            p(&fstype),
            flags,
            p(&data).cast(),
        )
    })?;
    Ok(())
}

/// umount2(2).
pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let target = cstr(target)?;
    // SAFETY: target is a valid C string.
    check(unsafe { libc::umount2(target.as_ptr(), flags) })?;
    Ok(())
}

/// Attributes for mount_setattr(2) (`struct mount_attr`).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2): set `attr_set` bits on the mount at `dirfd`/`path`.
pub fn mount_setattr(
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_uint,
    attr_set: u64,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: path is a valid C string and attr a valid struct of the size we pass.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// mount_setattr(2) with MOUNT_ATTR_IDMAP on a detached mount descriptor.
pub fn mount_setattr_idmap(fd: RawFd, recursive: bool, userns: RawFd) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns as u64,
    };
    let flags = libc::AT_EMPTY_PATH as libc::c_uint
        | if recursive {
            libc::AT_RECURSIVE as libc::c_uint
        } else {
            0
        };
    // SAFETY: a valid descriptor, an empty C string, and a mount_attr of the size we pass.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// mount_setattr(2) with AT_RECURSIVE on the mount at `target`: set `attr_set` bits.
pub fn mount_setattr_recursive(target: &Path, attr_set: u64) -> io::Result<()> {
    mount_setattr(
        libc::AT_FDCWD,
        &cstr(target)?,
        libc::AT_RECURSIVE as libc::c_uint,
        attr_set,
    )
}

/// openat2(2) with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: `path` is resolved as if `root`
/// were `/`, so neither `..` nor an absolute symlink can leave it.
pub fn open_in_root(
    root: RawFd,
    path: &Path,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = cstr(rel)?;
    // SAFETY: open_how is plain data; zero is a valid value for every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: c is a valid C string, how a valid open_how whose size we pass.
    let fd = check_long(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })?;
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// mkdirat(2) relative to a directory descriptor.
pub fn mkdirat(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) })?;
    Ok(())
}

/// mknodat(2) relative to a directory descriptor.
pub fn mknodat(dir: RawFd, name: &CStr, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) })?;
    Ok(())
}

/// The `/proc/self/fd/N` path of a descriptor, to mount onto exactly the inode we resolved.
pub fn fd_path(fd: &impl AsRawFd) -> std::path::PathBuf {
    format!("/proc/self/fd/{}", fd.as_raw_fd()).into()
}

/// unshare(2).
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare has no memory arguments.
    check(unsafe { libc::unshare(flags) })?;
    Ok(())
}

/// setns(2).
pub fn setns(fd: RawFd, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: setns has no memory arguments; an invalid fd is reported as EBADF.
    check(unsafe { libc::setns(fd, nstype) })?;
    Ok(())
}

/// The raw clone(2) system call used like fork(2): no new stack, the child continues here.
/// Returns 0 in the child and the child's pid in the parent.
///
/// # Safety
/// The caller must be single-threaded: the child gets a copy of only the calling thread, so any
/// lock held by another thread would stay locked forever in the child.
pub unsafe fn clone_fork(flags: libc::c_ulong) -> io::Result<libc::pid_t> {
    // SAFETY: with a null stack, clone behaves like fork; the caller guarantees a single thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    Ok(check_long(ret)? as libc::pid_t)
}

/// [`clone_fork`], with the child started in the cgroup2 directory `cgroup` (`CLONE_INTO_CGROUP`,
/// Linux 5.7) when given. Returns the pid (0 in the child) and whether the child started in
/// that cgroup: where clone3 or `CLONE_INTO_CGROUP` is unavailable or refused, this falls back
/// to a plain clone and the caller adds the child to the cgroup itself.
///
/// # Safety
/// As [`clone_fork`]: the caller must be single-threaded.
pub unsafe fn clone_fork_into(
    flags: libc::c_ulong,
    cgroup: Option<RawFd>,
) -> io::Result<(libc::pid_t, bool)> {
    /// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    if let Some(fd) = cgroup {
        let args = CloneArgs {
            flags: flags | CLONE_INTO_CGROUP,
            pidfd: 0,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: libc::SIGCHLD as u64,
            stack: 0,
            stack_size: 0,
            tls: 0,
            set_tid: 0,
            set_tid_size: 0,
            cgroup: fd as u64,
        };
        // SAFETY: a valid clone_args of the size given; with no stack the child continues on a
        // copy of ours, like fork; the caller guarantees a single thread.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if ret >= 0 {
            return Ok((ret as libc::pid_t, true));
        }
    }
    // SAFETY: forwarded from the caller.
    Ok((unsafe { clone_fork(flags) }?, false))
}

/// close_range(2) with CLOSE_RANGE_CLOEXEC: mark every descriptor from `first` on close-on-exec.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range has no memory arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        // Before Linux 5.11: walk /proc/self/fd instead.
        for entry in std::fs::read_dir("/proc/self/fd")?.flatten() {
            if let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
                && fd >= first as i32
            {
                // SAFETY: setting a flag on a descriptor number; a stale number fails with EBADF.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
    Ok(())
}

/// Clear the close-on-exec flag of a descriptor so it survives execve.
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an integer descriptor; no memory arguments.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
    Ok(())
}

/// waitpid(2); returns the raw status.
pub fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        return Ok((ret, status));
    }
}

/// The exit code a shell would report for a wait status (128+N for a signal).
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// kill(2).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory arguments.
    check(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// prctl(2) with integer arguments.
pub fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the options used by the runtime take integer arguments only.
    check(unsafe { libc::prctl(option, arg2, 0, 0, 0) })?;
    Ok(())
}

/// Write the runtime's state files (state.json, the cgroup and mount records, the seccomp
/// cache, `--pid-file`) atomically, mode 0644 less the umask. Without fsync, as runc: the state
/// does not outlive a reboot, and `/run` may be on disk, where each fsync would cost a
/// container's start milliseconds.
pub fn write_atomic(path: &std::path::Path, data: &[u8]) -> berth_sys::Result<()> {
    berth_sys::write_atomic_nosync(path, data, 0o644)
}

/// A unix socketpair of the given type, both ends close-on-exec.
pub fn socketpair(ty: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-array of two ints.
    check(unsafe {
        libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr())
    })?;
    // SAFETY: socketpair returned two new descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
