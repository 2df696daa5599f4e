//! `cp`: between a container and the host, as tar streams (Docker's semantics: copying to an
//! existing directory puts the source inside it, otherwise the destination is the new name).
//!
//! A source that is a symlink is copied as the link itself, as Docker does; with
//! `-L/--follow-link` it is followed, inside the container's root filesystem for a container
//! path (a link to `/etc/passwd` copies the container's file, never the host's), and the copy
//! keeps the link's name.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_engine::Engine;

fn split(p: &str) -> Option<(&str, &str)> {
    if super::is_host_path(p) {
        return None;
    }
    p.split_once(':')
}

fn base_name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into())
}

fn parent(p: &str) -> String {
    Path::new(p)
        .parent()
        .map(|s| s.display().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            if p.starts_with('/') {
                "/".into()
            } else {
                ".".into()
            }
        })
}

/// `berth cp [-L] SRC DST`.
pub fn run(e: &Engine, src: &str, dst: &str, follow: bool) -> anyhow::Result<u8> {
    match (split(src), split(dst)) {
        (Some((c, path)), None) => {
            let id = e.lookup(c)?;
            if dst == "-" {
                let mut out = std::io::stdout().lock();
                e.archive(&id, path, &base_name(path), follow, &mut out)?;
                out.flush()?;
                return Ok(0);
            }
            let (dir, name) = if Path::new(dst).is_dir() {
                (dst.to_string(), base_name(path))
            } else {
                (parent(dst), base_name(dst))
            };
            let mut buf = Vec::new();
            e.archive(&id, path, &name, follow, &mut buf)?;
            let mut a = tar::Archive::new(&buf[..]);
            a.set_preserve_permissions(true);
            a.set_overwrite(true);
            a.unpack(&dir)
                .with_context(|| format!("unpack into {dir}"))?;
            Ok(0)
        }
        (None, Some((c, path))) => {
            let id = e.lookup(c)?;
            if src == "-" {
                e.extract(&id, path, &mut std::io::stdin().lock())?;
                return Ok(0);
            }
            let meta = std::fs::symlink_metadata(src).with_context(|| format!("stat {src}"))?;
            // -L: what the link names, under the link's name.
            let (from, meta) = if follow && meta.file_type().is_symlink() {
                let to = std::fs::canonicalize(src).with_context(|| format!("follow {src}"))?;
                let m = std::fs::metadata(&to).with_context(|| format!("stat {}", to.display()))?;
                (to, m)
            } else {
                (PathBuf::from(src), meta)
            };
            let (dir, name) = match e.path_kind(&id, path)? {
                Some(true) => (path.to_string(), base_name(src)),
                _ => (parent(path), base_name(path)),
            };
            let mut b = tar::Builder::new(Vec::new());
            b.follow_symlinks(false);
            if meta.is_dir() {
                b.append_dir_all(&name, &from)?;
            } else {
                b.append_path_with_name(&from, &name)?;
            }
            let data = b.into_inner()?;
            e.extract(&id, &dir, &mut &data[..])?;
            Ok(0)
        }
        _ => anyhow::bail!("cp: one of SRC and DST must be CONTAINER:PATH, the other a local path"),
    }
}
