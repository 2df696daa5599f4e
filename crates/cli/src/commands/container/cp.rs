//! `cp`: between a container and the host, as tar streams (Docker's semantics: copying to an
//! existing directory puts the source inside it, otherwise the destination is the new name).
//!
//! A source that is a symlink is copied as the link itself, as Docker does; with
//! `-L/--follow-link` it is followed, inside the container's root filesystem for a container
//! path (a link to `/etc/passwd` copies the container's file, never the host's), and the copy
//! keeps the link's name.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

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

/// Resolves `path` below `root` as if `root` were `/`: symlinks are followed, `..` stops at
/// the root, so the result is always below `root` (Docker's `FollowSymlinkInScope`).
fn resolve_in_root(root: &Path, path: &Path) -> std::io::Result<PathBuf> {
    let mut done = PathBuf::new();
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
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&host)?;
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

/// When the container's `path` names a symlink (its last component, not followed): the
/// link's host path. Its directory is resolved as the engine resolves cp paths: in the
/// source of the mount it is under (volumes, binds, /etc/hosts, ...), else in the root
/// filesystem, symlinks followed inside them only. A path ending in `/` or `/.`, or naming a
/// mount itself, is never a link.
fn symlink_at(e: &Engine, id: &str, path: &str) -> anyhow::Result<Option<PathBuf>> {
    if path.ends_with('/') || path.ends_with("/.") {
        return Ok(None);
    }
    let p = Path::new(path);
    let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
        return Ok(None);
    };
    let r = e.record(id)?;
    let root = e.rootfs(id)?;
    let clean: PathBuf = Path::new("/").join(
        p.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect::<PathBuf>(),
    );
    let cdir = e.root().join("containers").join(id);
    let mut mounts: Vec<(PathBuf, PathBuf)> = ["hosts", "hostname", "resolv.conf"]
        .iter()
        .map(|f| (Path::new("/etc").join(f), cdir.join(f)))
        .collect();
    for m in r.mounts.iter().filter(|m| m.kind != "tmpfs") {
        mounts.push((PathBuf::from(&m.destination), PathBuf::from(&m.source)));
    }
    mounts.sort_by_key(|(d, _)| std::cmp::Reverse(d.as_os_str().len()));
    let mut host_dir = None;
    if !path.split('/').any(|c| c == "..") {
        for (dst, src) in &mounts {
            if let Ok(rest) = clean.strip_prefix(dst) {
                let Some(rest_dir) = rest.parent() else {
                    return Ok(None); // the mount point itself
                };
                host_dir = Some(
                    resolve_in_root(src, rest_dir).with_context(|| format!("resolve {path}"))?,
                );
                break;
            }
        }
    }
    let host_dir = match host_dir {
        Some(d) => d,
        None => resolve_in_root(&root, dir).with_context(|| format!("resolve {path}"))?,
    };
    let host = host_dir.join(name);
    match std::fs::symlink_metadata(&host) {
        Ok(m) if m.file_type().is_symlink() => Ok(Some(host)),
        _ => Ok(None),
    }
}

/// A tar of the container's `path`, its top entry named `name`: the link itself when `path`
/// is a symlink and `follow` is false; with `follow`, what the link names, taken (as Docker's
/// CLI takes it) as a container path: the target, relative to the link's directory, cleaned
/// of `..` without leaving `/`, which the engine then resolves inside the container.
fn archive(
    e: &Engine,
    id: &str,
    path: &str,
    name: &str,
    follow: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let Some(link) = symlink_at(e, id, path)? else {
        return Ok(e.archive(id, path, name, out)?);
    };
    if follow {
        let target = std::fs::read_link(&link).with_context(|| format!("read link {path}"))?;
        let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
        let mut clean = PathBuf::from("/");
        for c in components(&Path::new("/").join(dir).join(target)) {
            if c == ".." {
                clean.pop();
            } else {
                clean.push(c);
            }
        }
        let clean = clean.to_string_lossy();
        return Ok(e.archive(id, &clean, name, out)?);
    }
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.append_path_with_name(&link, name)
        .with_context(|| format!("archive {path}"))?;
    b.finish().with_context(|| format!("archive {path}"))?;
    Ok(())
}

/// `berth cp [-L] SRC DST`.
pub fn run(e: &Engine, src: &str, dst: &str, follow: bool) -> anyhow::Result<u8> {
    match (split(src), split(dst)) {
        (Some((c, path)), None) => {
            let id = e.lookup(c)?;
            if dst == "-" {
                let mut out = std::io::stdout().lock();
                archive(e, &id, path, &base_name(path), follow, &mut out)?;
                out.flush()?;
                return Ok(0);
            }
            let (dir, name) = if Path::new(dst).is_dir() {
                (dst.to_string(), base_name(path))
            } else {
                (parent(dst), base_name(dst))
            };
            let mut buf = Vec::new();
            archive(e, &id, path, &name, follow, &mut buf)?;
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
