//! `cp`: files in and out of a container as tar streams (the Docker API's archive endpoints),
//! with every container path resolved inside its root filesystem.
//!
//! Only the root filesystem is seen: paths under the container's volumes and bind mounts
//! resolve to the image's files below them, not the mounted ones.

use std::io::{Read, Write};
use std::path::Path;

use crate::Engine;
use crate::error::{Result, io_err};
use crate::rootpath::resolve_in_root;

impl Engine {
    /// What `path` is in the container: Some(true) a directory, Some(false) something else,
    /// None missing.
    pub fn path_kind(&self, id: &str, path: &str) -> Result<Option<bool>> {
        let root = self.rootfs(id)?;
        let p = resolve_in_root(&root, Path::new(path)).map_err(io_err("resolve", path))?;
        Ok(std::fs::symlink_metadata(&p).ok().map(|m| m.is_dir()))
    }

    /// Writes a tar of the container's `path` to `out`, its top entry named `name`.
    pub fn archive(&self, id: &str, path: &str, name: &str, out: &mut dyn Write) -> Result<()> {
        let root = self.rootfs(id)?;
        let p = resolve_in_root(&root, Path::new(path)).map_err(io_err("resolve", path))?;
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
        let root = self.rootfs(id)?;
        let p = resolve_in_root(&root, Path::new(dir)).map_err(io_err("resolve", dir))?;
        let mut a = tar::Archive::new(input);
        a.set_preserve_permissions(true);
        a.set_overwrite(true);
        a.unpack(&p).map_err(io_err("unpack into", dir))
    }
}
