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
    /// Resolves a container path to a host path: in the source of the mount it is under,
    /// else in the root filesystem.
    fn resolve(&self, id: &str, path: &str) -> Result<PathBuf> {
        let root = self.rootfs(id)?;
        let r = self.containers.record(id)?;
        let dir = self.containers.dir(id);
        let clean: PathBuf = Path::new("/").join(
            Path::new(path)
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect::<PathBuf>(),
        );
        let mut mounts: Vec<(PathBuf, PathBuf)> = ["hosts", "hostname", "resolv.conf"]
            .iter()
            .map(|f| (Path::new("/etc").join(f), dir.join(f)))
            .collect();
        for m in r.mounts.iter().filter(|m| m.kind != "tmpfs") {
            mounts.push((PathBuf::from(&m.destination), PathBuf::from(&m.source)));
        }
        mounts.sort_by_key(|(d, _)| std::cmp::Reverse(d.as_os_str().len()));
        let in_mount = !path.split('/').any(|c| c == "..");
        for (dst, src) in mounts {
            if let (true, Ok(rest)) = (in_mount, clean.strip_prefix(&dst)) {
                if rest.as_os_str().is_empty() {
                    return Ok(src);
                }
                return resolve_in_root(&src, rest).map_err(io_err("resolve", path));
            }
        }
        resolve_in_root(&root, Path::new(path)).map_err(io_err("resolve", path))
    }

    /// What `path` is in the container: Some(true) a directory, Some(false) something else,
    /// None missing.
    pub fn path_kind(&self, id: &str, path: &str) -> Result<Option<bool>> {
        let p = self.resolve(id, path)?;
        Ok(std::fs::symlink_metadata(&p).ok().map(|m| m.is_dir()))
    }

    /// Writes a tar of the container's `path` to `out`, its top entry named `name`.
    pub fn archive(&self, id: &str, path: &str, name: &str, out: &mut dyn Write) -> Result<()> {
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
