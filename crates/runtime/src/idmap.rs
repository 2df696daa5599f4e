//! Idmapped mounts (`mounts[].uidMappings/gidMappings`): the parent makes them, the init
//! attaches them.
//!
//! With host privileges, the parent clones each source as a detached mount
//! (`open_tree(OPEN_TREE_CLONE)`), makes a throw-away user namespace holding the mount's id
//! mappings, and marks the clone with `mount_setattr(MOUNT_ATTR_IDMAP)`. The descriptors are
//! inherited by the init, which moves each one onto its destination with `move_mount`: that
//! works even when the init is already in the container's own user namespace, where it could
//! not have made the idmapped mount itself.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxIdMapping, Mount};

use crate::sys;

fn maps(m: &[LinuxIdMapping]) -> String {
    m.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace with the given mappings, held by its descriptor only.
fn userns_with(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (ours, theirs) = sys::socketpair(libc::SOCK_STREAM)?;
    // SAFETY: the runtime is single-threaded.
    let pid = unsafe { sys::clone_fork(libc::CLONE_NEWUSER as libc::c_ulong) }?;
    if pid == 0 {
        drop(ours);
        let mut b = [0u8; 1];
        // Wait until the parent is done with us (it closes its end).
        // SAFETY: reading into a valid one-byte buffer, then ending this child at once.
        unsafe {
            libc::read(theirs.as_raw_fd(), b.as_mut_ptr().cast(), 1);
            libc::_exit(0)
        }
    }
    drop(theirs);
    let r = (|| -> Result<OwnedFd> {
        std::fs::write(format!("/proc/{pid}/uid_map"), maps(uid)).context("write uid_map")?;
        std::fs::write(format!("/proc/{pid}/gid_map"), maps(gid)).context("write gid_map")?;
        Ok(std::fs::File::open(format!("/proc/{pid}/ns/user"))?.into())
    })();
    drop(ours);
    let _ = sys::waitpid(pid, 0);
    r
}

/// Make the idmapped mounts of the config: mount index -> detached mount descriptor.
pub fn prepare(mounts: &[Mount], bundle: &Path) -> Result<HashMap<usize, OwnedFd>> {
    let mut out = HashMap::new();
    for (i, m) in mounts.iter().enumerate() {
        let opts: Vec<&str> = m.options().iter().flatten().map(String::as_str).collect();
        let wants = m.uid_mappings().is_some()
            || m.gid_mappings().is_some()
            || opts.iter().any(|o| *o == "idmap" || *o == "ridmap");
        if !wants {
            continue;
        }
        let field = format!("mounts[{i}]");
        let is_bind = m.typ().as_deref() == Some("bind")
            || opts.iter().any(|o| *o == "bind" || *o == "rbind");
        if !is_bind {
            bail!("{field}: idmapped mounts must be bind mounts");
        }
        let (Some(uid), Some(gid)) = (m.uid_mappings(), m.gid_mappings()) else {
            bail!("{field}: an idmapped mount needs both uidMappings and gidMappings");
        };
        let src = m
            .source()
            .as_ref()
            .with_context(|| format!("{field}.source: missing"))?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        let recursive = opts.iter().any(|o| *o == "rbind" || *o == "ridmap");
        let userns = userns_with(uid, gid).with_context(|| format!("{field}: id mappings"))?;
        let c = sys::cstr(&src)?;
        const OPEN_TREE_CLONE: libc::c_uint = 1;
        let flags = OPEN_TREE_CLONE
            | libc::O_CLOEXEC as libc::c_uint
            | if recursive {
                libc::AT_RECURSIVE as libc::c_uint
            } else {
                0
            };
        // SAFETY: a valid C string; open_tree returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("{field}: clone {}", src.display()));
        }
        // SAFETY: open_tree returned a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        sys::mount_setattr_idmap(fd.as_raw_fd(), recursive, userns.as_raw_fd()).with_context(
            || {
                format!(
                    "{field}: idmap {} (does its filesystem support idmapped mounts?)",
                    src.display()
                )
            },
        )?;
        out.insert(i, fd);
    }
    Ok(out)
}

/// Attach a prepared idmapped mount on the destination `target` (resolved in the rootfs).
/// move_mount does not follow `/proc/self/fd/N`, so the target goes by descriptor.
pub fn attach(fd: RawFd, target: &impl AsRawFd) -> Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: valid descriptors and empty C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("move the idmapped mount into place");
    }
    Ok(())
}
