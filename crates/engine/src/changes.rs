//! `diff` and `export`: what a container changed in its filesystem (read from the overlay upper
//! directory against the image's layers, as Docker's overlay2 driver does) and its whole
//! filesystem as a tar (the Engine API's `/changes` and `/export`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Engine;
use crate::error::{Error, Result, io_err};

/// Files the engine bind-mounts over; an empty one in the upper dir is the runtime's mount
/// target, not a change.
const MOUNT_TARGETS: &[&str] = &["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// What happened to a path (the API's `Kind`: 0 modified, 1 added, 2 deleted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Changed (`C`).
    Modified,
    /// New (`A`).
    Added,
    /// Removed (`D`).
    Deleted,
}

impl ChangeKind {
    /// Docker's letter: `C`, `A` or `D`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

impl Serialize for ChangeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        })
    }
}

/// One change, as `GET /containers/{id}/changes` returns it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    /// The absolute path in the container.
    pub path: String,
    /// What happened.
    pub kind: ChangeKind,
}

/// The overlay's upper and lower directories from a container's `snapshot.json`.
fn overlay_dirs(snapshot_json: &Path) -> Option<(PathBuf, Vec<PathBuf>)> {
    let mounts: Vec<berth_image::Mount> =
        serde_json::from_slice(&fs::read(snapshot_json).ok()?).ok()?;
    let opts = &mounts.iter().find(|m| m.kind == "overlay")?.options;
    let upper = opts
        .iter()
        .find_map(|o| o.strip_prefix("upperdir=").map(PathBuf::from))?;
    let lower = opts
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .map(|l| l.split(':').map(PathBuf::from).collect())
        .unwrap_or_default();
    Some((upper, lower))
}

fn in_lower(lower: &[PathBuf], rel: &Path) -> bool {
    lower
        .iter()
        .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
}

fn walk(upper: &Path, lower: &[PathBuf], rel: &Path, out: &mut Vec<Change>) -> Result<()> {
    let dir = upper.join(rel);
    for e in fs::read_dir(&dir).map_err(io_err("read", &dir))? {
        let e = e.map_err(io_err("read", &dir))?;
        let r = rel.join(e.file_name());
        let m = fs::symlink_metadata(e.path()).map_err(io_err("stat", e.path()))?;
        let path = format!("/{}", r.display());
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            out.push(Change {
                path,
                kind: ChangeKind::Deleted,
            });
            continue;
        }
        if MOUNT_TARGETS.contains(&path.as_str()) && ft.is_file() && m.len() == 0 {
            continue;
        }
        let kind = if in_lower(lower, &r) {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        out.push(Change { path, kind });
        // Below a new directory everything is new; below a changed one, look.
        if ft.is_dir() {
            walk(upper, lower, &r, out)?;
        }
    }
    Ok(())
}

impl Engine {
    /// `diff`: the container's changes to its image's filesystem, sorted by path.
    pub fn changes(&self, id: &str) -> Result<Vec<Change>> {
        let snap = self.containers.dir(id).join("snapshot.json");
        let (upper, lower) = overlay_dirs(&snap).ok_or_else(|| {
            Error::Other(format!(
                "diff needs an overlay snapshot (container {id}'s is a copy)"
            ))
        })?;
        let mut out = Vec::new();
        walk(&upper, &lower, Path::new(""), &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// `export`: the container's filesystem (without its volumes and binds) as a tar.
    pub fn export(&self, id: &str, out: &mut dyn Write) -> Result<()> {
        let r = self.containers.record(id)?;
        let root = self.rootfs(id)?;
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        let mut entries: Vec<_> = fs::read_dir(&root)
            .map_err(io_err("read", &root))?
            .collect::<std::io::Result<_>>()
            .map_err(io_err("read", &root))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let p = e.path();
            let m = fs::symlink_metadata(&p).map_err(io_err("stat", &p))?;
            if m.is_dir() {
                b.append_dir_all(&name, &p).map_err(io_err("archive", &p))?;
            } else {
                b.append_path_with_name(&p, &name)
                    .map_err(io_err("archive", &p))?;
            }
        }
        b.finish().map_err(io_err("archive", &root))?;
        self.container_event(&r, "export", &[]);
        Ok(())
    }
}
