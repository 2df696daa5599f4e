//! `cp`: files in and out of a container as tar streams (the Docker API's archive endpoints),
//! with every container path resolved inside its root filesystem.
//!
//! A path under one of the container's mounts (volumes, binds, /etc/hosts, /etc/hostname,
//! /etc/resolv.conf) is resolved in that mount's source when it names it literally; symlinks
//! are followed within the root filesystem (or the mount's source) only. tmpfs mounts are not
//! seen (they live in the container's mount namespace).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::Engine;
use crate::error::{Result, io_err};
use crate::rootpath::resolve_in_root;

impl Engine {
    /// The container's mounts as (container path, host source), longest first: the engine's
    /// `/etc` files, then volumes and binds (tmpfs mounts live in the container's namespace).
    fn cp_mounts(&self, id: &str) -> Result<Vec<(PathBuf, PathBuf)>> {
        let r = self.containers.record(id)?;
        let dir = self.containers.dir(id);
        let mut mounts: Vec<(PathBuf, PathBuf)> = ["hosts", "hostname", "resolv.conf"]
            .iter()
            .map(|f| (Path::new("/etc").join(f), dir.join(f)))
            .collect();
        for m in r.mounts.iter().filter(|m| m.kind != "tmpfs") {
            mounts.push((PathBuf::from(&m.destination), PathBuf::from(&m.source)));
        }
        mounts.sort_by_key(|(d, _)| std::cmp::Reverse(d.as_os_str().len()));
        Ok(mounts)
    }

    /// Resolves a container path to a host path: in the source of the mount it is under,
    /// else in the root filesystem.
    fn resolve(&self, id: &str, path: &str) -> Result<PathBuf> {
        let root = self.rootfs(id)?;
        let clean = clean_path(path);
        let in_mount = !path.split('/').any(|c| c == "..");
        for (dst, src) in self.cp_mounts(id)? {
            if let (true, Ok(rest)) = (in_mount, clean.strip_prefix(&dst)) {
                if rest.as_os_str().is_empty() {
                    return Ok(src);
                }
                return resolve_in_root(&src, rest).map_err(io_err("resolve", path));
            }
        }
        resolve_in_root(&root, Path::new(path)).map_err(io_err("resolve", path))
    }

    /// When the container's `path` names a symlink (its last component, not followed): the
    /// link's host path. Its directory is resolved as [`Engine::resolve`] resolves (in the
    /// mount's source, else in the root filesystem, symlinks followed inside them only). A path
    /// ending in `/` or `/.`, or naming a mount itself, is never a link.
    fn symlink_at(&self, id: &str, path: &str) -> Result<Option<PathBuf>> {
        if path.ends_with('/') || path.ends_with("/.") {
            return Ok(None);
        }
        let p = Path::new(path);
        let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
            return Ok(None);
        };
        let clean = clean_path(path);
        let mut host_dir = None;
        if !path.split('/').any(|c| c == "..") {
            for (dst, src) in self.cp_mounts(id)? {
                if let Ok(rest) = clean.strip_prefix(&dst) {
                    let Some(rest_dir) = rest.parent() else {
                        return Ok(None); // the mount point itself
                    };
                    host_dir =
                        Some(resolve_in_root(&src, rest_dir).map_err(io_err("resolve", path))?);
                    break;
                }
            }
        }
        let host_dir = match host_dir {
            Some(d) => d,
            None => resolve_in_root(&self.rootfs(id)?, dir).map_err(io_err("resolve", path))?,
        };
        let host = host_dir.join(name);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => Ok(Some(host)),
            _ => Ok(None),
        }
    }

    /// What `path` is in the container: Some(true) a directory, Some(false) something else,
    /// None missing.
    pub fn path_kind(&self, id: &str, path: &str) -> Result<Option<bool>> {
        let p = self.resolve(id, path)?;
        Ok(std::fs::symlink_metadata(&p).ok().map(|m| m.is_dir()))
    }

    /// Writes a tar of the container's `path` to `out`, its top entry named `name`. A `path`
    /// that is a symlink is archived as the link itself, as Docker's `cp` does; with
    /// `follow_link`, what it names: the target taken as a container path (relative to the
    /// link's directory, `..` stopping at `/`) and resolved inside the container, so a link to
    /// `/etc/passwd` gives the container's file, never the host's.
    pub fn archive(
        &self,
        id: &str,
        path: &str,
        name: &str,
        follow_link: bool,
        out: &mut dyn Write,
    ) -> Result<()> {
        if let Some(link) = self.symlink_at(id, path)? {
            if follow_link {
                let target = std::fs::read_link(&link).map_err(io_err("read link", path))?;
                let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
                let joined = Path::new("/").join(dir).join(target);
                let mut clean = PathBuf::from("/");
                for c in joined.components() {
                    match c {
                        Component::Normal(s) => clean.push(s),
                        Component::ParentDir => {
                            clean.pop();
                        }
                        _ => {}
                    }
                }
                return self.archive_resolved(id, &clean.to_string_lossy(), name, out);
            }
            let mut b = tar::Builder::new(out);
            b.follow_symlinks(false);
            b.append_path_with_name(&link, name)
                .map_err(io_err("archive", path))?;
            return b.finish().map_err(io_err("archive", path));
        }
        self.archive_resolved(id, path, name, out)
    }

    fn archive_resolved(
        &self,
        id: &str,
        path: &str,
        name: &str,
        out: &mut dyn Write,
    ) -> Result<()> {
        let p = self.resolve(id, path)?;
        let m = std::fs::symlink_metadata(&p).map_err(io_err("stat", path))?;
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        if m.is_dir() {
            b.append_dir_all(name, &p)
                .map_err(io_err("archive", path))?;
        } else {
            b.append_path_with_name(&p, name)
                .map_err(io_err("archive", path))?;
        }
        b.finish().map_err(io_err("archive", path))
    }

    /// Unpacks a tar into the container's directory `dir`; entries that would leave it
    /// (`..`, symlinks out of it) are refused by the unpacker.
    pub fn extract(&self, id: &str, dir: &str, input: &mut dyn Read) -> Result<()> {
        let p = self.resolve(id, dir)?;
        let mut a = tar::Archive::new(input);
        a.set_preserve_permissions(true);
        a.set_overwrite(true);
        a.unpack(&p).map_err(io_err("unpack into", dir))
    }
}

/// `/` and the normal components of `path` (`.` and `..` dropped, as for matching mounts).
fn clean_path(path: &str) -> PathBuf {
    Path::new("/").join(
        Path::new(path)
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect::<PathBuf>(),
    )
}
