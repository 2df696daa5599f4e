//! Paths inside a container's root filesystem, resolved without leaving it: symlinks are
//! followed as if the rootfs were `/` (Docker's `FollowSymlinkInScope`), so `/etc/passwd ->
//! /host/etc/passwd` or `../../..` can never name a host file.
//!
//! The result is only as safe as the rootfs is still when it is used (a running container can
//! swap a directory for a symlink in between); callers use it on their own files (volumes'
//! copy-up, `/etc/passwd` lookups at create) or open the final component without following.

use std::fs;
use std::path::{Component, Path, PathBuf};

/// Resolves `path` (absolute in the container) to a host path below `root`; components that
/// do not exist are appended as they are.
pub fn resolve_in_root(root: &Path, path: &Path) -> std::io::Result<PathBuf> {
    let mut done = PathBuf::new(); // relative to root, no symlinks
    let mut todo: Vec<std::ffi::OsString> = components(path);
    todo.reverse();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let candidate = done.join(&c);
        let host = root.join(&candidate);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = fs::read_link(&host)?;
                if target.is_absolute() {
                    done = PathBuf::new();
                }
                let mut t = components(&target);
                t.reverse();
                todo.extend(t);
            }
            _ => done = candidate,
        }
    }
    Ok(root.join(done))
}

fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Creates `path` (and its parents) inside the rootfs, as root, mode 0755.
pub(crate) fn mkdir_in_root(root: &Path, path: &Path) -> std::io::Result<PathBuf> {
    let p = resolve_in_root(root, path)?;
    fs::create_dir_all(&p)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        symlink("/etc/shadow", r.join("etc/passwd")).unwrap();
        symlink("../../../../..", r.join("up")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("/etc/passwd")).unwrap(),
            r.join("etc/shadow")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/up/etc")).unwrap(),
            r.join("etc")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("../../x")).unwrap(),
            r.join("x")
        );
        symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, Path::new("/loop")).is_err());
    }
}
