//! Mounts a container without a mount namespace of its own leaves in the host's.
//!
//! A config that lists no mount namespace runs in the runtime's (OCI: a namespace type not
//! listed is inherited). Its init then makes the rootfs bind and every mount of `mounts` in the
//! host's mount namespace, and nothing unmounts them when the container dies. So `create`
//! records, before the init starts, the mounts that are already at or under the rootfs
//! ([`record`], in `--root/ID/host-mounts.json`), and `delete` (or a failed `create`) unmounts
//! every mount at or under the rootfs that is not one of those ([`unmount_new`]): what the
//! container's setup made, and whatever the container mounted there itself (it shares the
//! host's mount namespace).
//!
//! A mount is only unmounted once its path, opened here, is on a mount with the ID seen in
//! mountinfo, so a path swapped for a symlink cannot point the unmount elsewhere.

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::sys;

/// The file in the container directory.
pub const FILE: &str = "host-mounts.json";

#[derive(Serialize, Deserialize)]
struct Recorded {
    /// The canonical rootfs path.
    rootfs: PathBuf,
    /// Mount IDs at or under it before the container was set up.
    before: Vec<u64>,
}

/// (mount ID, mount point) of every mount at or under `dir`, in mountinfo order.
fn mounts_at_or_under(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    Ok(berth_sys::mountinfo::mounted_below(dir)?
        .into_iter()
        .map(|m| (m.id, m.mount_point))
        .collect())
}

/// Record the mounts already at or under `rootfs` into `container_dir`, before the container's
/// init makes its own in the host's mount namespace.
pub fn record(container_dir: &Path, rootfs: &Path) -> Result<()> {
    let rec = Recorded {
        rootfs: rootfs.to_path_buf(),
        before: mounts_at_or_under(rootfs)?
            .into_iter()
            .map(|(id, _)| id)
            .collect(),
    };
    crate::sys::write_atomic(&container_dir.join(FILE), &serde_json::to_vec(&rec)?)
        .context("record the mounts under the rootfs")
}

/// The mount ID of the mount an open file is on (`mnt_id` of /proc/self/fdinfo).
fn mnt_id(f: &File) -> Option<u64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", f.as_raw_fd())).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Unmount every mount at or under the recorded rootfs that was not there when [`record`] ran,
/// deepest first. Nothing to do for a container that did not record (it had its own mount
/// namespace). An error lists what could not be unmounted.
pub fn unmount_new(container_dir: &Path) -> Result<()> {
    let path = container_dir.join(FILE);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let rec: Recorded =
        serde_json::from_slice(&data).with_context(|| format!("parse {}", path.display()))?;
    let before: HashSet<u64> = rec.before.iter().copied().collect();
    // Mounts revealed or left by one pass (a stacked one, say) are taken by the next.
    for _ in 0..8 {
        let mut new: Vec<(u64, PathBuf)> = mounts_at_or_under(&rec.rootfs)?
            .into_iter()
            .filter(|(id, _)| !before.contains(id))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        // Deepest first; of mounts stacked on one path, the later (upper) one first.
        new.reverse();
        new.sort_by_key(|(_, mp)| std::cmp::Reverse(mp.components().count()));
        let mut failed = Vec::new();
        for (id, mp) in &new {
            let f = match File::options()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(mp)
            {
                Ok(f) => f,
                // Gone with its parent (a detached subtree) or not reachable: the next pass
                // sees whether it is still listed.
                Err(_) => continue,
            };
            if mnt_id(&f) != Some(*id) {
                continue; // hidden under a later mount (unmounted first), or not ours
            }
            if let Err(e) = sys::umount2(&sys::fd_path(&f), libc::MNT_DETACH) {
                failed.push(format!("{}: {e}", mp.display()));
            }
        }
        if !failed.is_empty() {
            bail!(
                "unmount what the container mounted in the host's mount namespace: {}; run delete again",
                failed.join(", ")
            );
        }
    }
    let left: Vec<String> = mounts_at_or_under(&rec.rootfs)?
        .into_iter()
        .filter(|(id, _)| !before.contains(id))
        .map(|(_, mp)| mp.display().to_string())
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    bail!(
        "mounts the container made in the host's mount namespace are still there: {}; unmount them, then run delete again",
        left.join(", ")
    )
}
