//! `cp`: files in and out of a container as tar streams (the Docker API's archive endpoints),
//! with every container path resolved inside its root filesystem.
//!
//! A path under one of the container's mounts (volumes, binds, /etc/hosts, /etc/hostname,
//! /etc/resolv.conf) is resolved in that mount's source when it names it literally; symlinks
//! are followed within the root filesystem (or the mount's source) only. tmpfs mounts are not
//! seen (they live in the container's mount namespace).

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::error::{Result, invalid, io_err};
use crate::rootpath::resolve_in_root;

/// A container path's stat, as Docker's archive endpoints send it (base64 JSON in the
/// `X-Docker-Container-Path-Stat` header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    /// The last component (`.` for `DIR/.`).
    pub name: String,
    /// Bytes.
    pub size: i64,
    /// Go's `os.FileMode`: permissions plus type bits (directory `1<<31`, symlink `1<<27`).
    pub mode: u32,
    /// Modification time, RFC 3339.
    pub mtime: String,
    /// For a symlink: what it names, as a container path with every link resolved.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// How [`Engine::extract_archive`] unpacks (the query of `PUT /containers/{id}/archive`).
#[derive(Clone, Debug, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory or the reverse
    /// (`noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Every file owned by the container's user (`copyUIDGID`, `cp -a`, for a container
    /// with a `User`); else the owners in the archive are kept.
    pub copy_uid_gid: bool,
}

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

    /// Writes a tar of the container's `path` to `out`, its top entry named `name` (`.`: a
    /// directory's entries named `./...`, Docker's archive of a `DIR/.` source). A `path`
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
                let clean = link_target(path, &link)?;
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
        if m.is_dir() && name == "." {
            append_dot_dir(&mut b, &p, Path::new("")).map_err(io_err("archive", path))?;
        } else if m.is_dir() {
            b.append_dir_all(name, &p)
                .map_err(io_err("archive", path))?;
        } else {
            b.append_path_with_name(&p, name)
                .map_err(io_err("archive", path))?;
        }
        b.finish().map_err(io_err("archive", path))
    }

    /// The stat of the container's `path` (the last component not followed), `None` when it
    /// does not exist.
    pub fn path_stat(&self, id: &str, path: &str) -> Result<Option<PathStat>> {
        let (host, link_target) = match self.symlink_at(id, path)? {
            Some(link) => {
                // Follow the chain inside the container, as Docker's linkTarget.
                let mut target = link_target(path, &link)?;
                for _ in 0..40 {
                    let t = target.to_string_lossy().into_owned();
                    match self.symlink_at(id, &t)? {
                        Some(next) => target = link_target(&t, &next)?,
                        None => break,
                    }
                }
                (link, target.to_string_lossy().into_owned())
            }
            None => (self.resolve(id, path)?, String::new()),
        };
        let m = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(None),
            Err(e) => return Err(io_err("stat", path)(e)),
        };
        let mtime = m
            .modified()
            .map(crate::util::rfc3339)
            .unwrap_or_else(|_| crate::util::ZERO_TIME.to_string());
        Ok(Some(PathStat {
            name: docker_base_name(path),
            size: m.len() as i64,
            mode: go_file_mode(m.mode()),
            mtime,
            link_target,
        }))
    }

    /// Unpacks a tar into the container's directory `dir` with Docker's options: the owners
    /// in the archive kept (or the container user's with `copy_uid_gid`), modes and times
    /// kept, entries that would leave the directory refused; a directory is not replaced by
    /// a file or the reverse with `no_overwrite_dir_non_dir`. Refused on a read-only root
    /// filesystem outside the container's writable mounts, and in a read-only mount.
    pub fn extract_archive(
        &self,
        id: &str,
        dir: &str,
        o: &ExtractOptions,
        input: &mut dyn Read,
    ) -> Result<()> {
        let r = self.containers.record(id)?;
        let clean = clean_path(dir);
        let mount = r
            .mounts
            .iter()
            .filter(|m| m.kind != "tmpfs" && clean.starts_with(&m.destination))
            .max_by_key(|m| m.destination.len());
        match mount {
            Some(m) if !m.rw => return Err(invalid("cp", "mounted volume is marked read-only")),
            None if r.host_config.readonly_rootfs => {
                return Err(invalid("cp", "container rootfs is marked read-only"));
            }
            _ => {}
        }
        let owner = if o.copy_uid_gid && !r.config.user.is_empty() {
            let u = crate::user::resolve(&self.rootfs(id)?, &r.config.user)?;
            Some((u.uid, u.gid))
        } else {
            None
        };
        let p = self.resolve(id, dir)?;
        let mut a = tar::Archive::new(input);
        a.set_preserve_permissions(true);
        a.set_preserve_ownerships(owner.is_none());
        a.set_preserve_mtime(true);
        a.set_overwrite(true);
        for entry in a.entries().map_err(io_err("read archive for", dir))? {
            let mut entry = entry.map_err(io_err("read archive for", dir))?;
            let rel = entry
                .path()
                .map_err(io_err("read archive for", dir))?
                .into_owned();
            // Normal components only (`dir/` would stat through a file as ENOTDIR).
            let dest = p.join(rel.components().collect::<PathBuf>());
            if o.no_overwrite_dir_non_dir
                && let Ok(existing) = std::fs::symlink_metadata(&dest)
            {
                let new_dir = entry.header().entry_type().is_dir();
                let shown = Path::new(dir).join(&rel);
                if existing.is_dir() && !new_dir {
                    return Err(invalid(
                        "cp",
                        format!(
                            "cannot overwrite directory {:?} with non-directory {:?}",
                            shown.display(),
                            rel.display()
                        ),
                    ));
                }
                if !existing.is_dir() && new_dir {
                    return Err(invalid(
                        "cp",
                        format!(
                            "cannot overwrite non-directory {:?} with directory {:?}",
                            shown.display(),
                            rel.display()
                        ),
                    ));
                }
            }
            let unpacked = entry.unpack_in(&p).map_err(|e| {
                // The tar crate's messages name host paths: the OS error and the
                // container's path are what to show.
                let mut os = None;
                let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
                while let Some(c) = cur {
                    if let Some(code) = c
                        .downcast_ref::<std::io::Error>()
                        .and_then(std::io::Error::raw_os_error)
                    {
                        os = Some(code);
                    }
                    cur = c.source();
                }
                let e = match os {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::from(e.kind()),
                };
                io_err("unpack", Path::new(dir).join(&rel))(e)
            })?;
            if let (true, Some((uid, gid))) = (unpacked, owner) {
                std::os::unix::fs::lchown(&dest, Some(uid), Some(gid))
                    .map_err(io_err("chown", &dest))?;
            }
        }
        Ok(())
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

/// What a symlink at the container's `path` (its host path `link`) names, as a container
/// path: the target taken relative to the link's directory, `..` stopping at `/`.
fn link_target(path: &str, link: &Path) -> Result<PathBuf> {
    let target = std::fs::read_link(link).map_err(io_err("read link", path))?;
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
    Ok(clean)
}

/// Appends the directory `dir` as Docker archives a `DIR/.` source: `.` then every entry
/// below as `./REL`. Tar headers cannot hold a leading `./` (the tar crate drops it), so
/// each entry's name is a PAX path record, its header holding a truncated copy (no GNU
/// long-name record, which readers prefer over PAX).
fn append_dot_dir<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    rel: &Path,
) -> std::io::Result<()> {
    let host = dir.join(rel);
    let m = std::fs::symlink_metadata(&host)?;
    if rel.as_os_str().is_empty() {
        b.append_dir(".", &host)?;
    } else {
        let name = format!("./{}", rel.display());
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
        let short = &name.as_bytes()[..name.len().min(99)];
        let slot = &mut h.as_old_mut().name;
        slot.fill(0);
        slot[..short.len()].copy_from_slice(short);
        let mut pax: Vec<(&str, Vec<u8>)> = vec![("path", name.as_bytes().to_vec())];
        if m.file_type().is_symlink() {
            let target = std::fs::read_link(&host)?;
            let t = target.as_os_str().as_encoded_bytes().to_vec();
            let slot = &mut h.as_old_mut().linkname;
            slot.fill(0);
            let n = t.len().min(99);
            slot[..n].copy_from_slice(&t[..n]);
            pax.push(("linkpath", t));
        }
        h.set_cksum();
        b.append_pax_extensions(pax.iter().map(|(k, v)| (*k, v.as_slice())))?;
        if m.is_file() {
            b.append(&h, std::fs::File::open(&host)?)?;
        } else {
            b.append(&h, std::io::empty())?;
        }
    }
    if m.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(&host)?.collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            append_dot_dir(b, dir, &rel.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Go's `os.FileMode` bits of a Unix mode (what Docker's path stat carries).
fn go_file_mode(mode: u32) -> u32 {
    let mut g = mode & 0o777;
    g |= match mode & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        _ => 0,
    };
    if mode & libc::S_ISUID != 0 {
        g |= 1 << 23;
    }
    if mode & libc::S_ISGID != 0 {
        g |= 1 << 22;
    }
    if mode & libc::S_ISVTX != 0 {
        g |= 1 << 20;
    }
    g
}

/// The name Docker gives a container path in its stat and archive: the last component,
/// `.` for `DIR/.`, `/` for the root.
pub(crate) fn docker_base_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    if trimmed == "." || trimmed.ends_with("/.") {
        return ".".into();
    }
    Path::new(trimmed)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
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
