//! Verbs over all containers: `system boot` (restart policies after a reboot) and
//! `container prune`.

use std::path::Path;

use crate::Engine;
use crate::error::{Error, Result};
use crate::lists::{Filters, label_matches};
use crate::record::Status;

/// What [`Engine::boot`] did for one container.
#[derive(Debug)]
pub struct BootResult {
    /// The container's ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Started, or why it could not be.
    pub result: Result<()>,
}

/// What [`Engine::prune_containers`] removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    /// IDs of the removed containers.
    pub removed: Vec<String>,
    /// Bytes their writable layers held.
    pub reclaimed: u64,
}

/// The bytes of regular files below `dir` (not following symlinks, not crossing mounts).
pub(crate) fn tree_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() && m.dev() == top.dev() {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

impl Engine {
    /// Starts, after a reboot, the containers whose restart policy says so (what a boot
    /// unit runs as `berth system boot`, as podman-restart.service runs podman): `always`,
    /// and `unless-stopped` unless a user stopped it. Containers that run already are left
    /// alone, so running it twice is harmless. Results come in the containers' creation order.
    pub fn boot(&self) -> Result<Vec<BootResult>> {
        let mut out = Vec::new();
        let mut all = self.list()?;
        all.reverse();
        for c in all {
            let wanted = c
                .record
                .host_config
                .restart_policy
                .restarts_at_boot(c.state.manual_stop);
            let active = c.state.status.is_running();
            if !wanted || active || c.state.status == Status::Dead {
                continue;
            }
            out.push(BootResult {
                result: self.start(&c.record.id),
                id: c.record.id,
                name: c.record.name,
            });
        }
        Ok(out)
    }

    /// Removes every stopped container (created, exited, dead) that passes `filters`, with its
    /// anonymous volumes kept, as Docker's `container prune` keeps them. The filters are
    /// Docker's: `label` (`KEY` or `KEY=VALUE`, all must match), `label!` (containers that
    /// match all of them are kept) and `until` (only containers created before that time:
    /// RFC 3339, Unix seconds or a duration ago); any other key is an error naming it.
    pub fn prune_containers(&self, filters: &Filters) -> Result<PruneReport> {
        filters.check(&["label", "label!", "until"])?;
        let now = std::time::SystemTime::now();
        let mut until = None;
        for v in filters.values("until") {
            let t = crate::util::parse_timestamp(v, now).ok_or_else(|| {
                Filters::bad_value(
                    "until",
                    v,
                    "expected a timestamp (RFC 3339 or Unix seconds) or a duration (10m)",
                )
            })?;
            until = Some(until.map_or(t, |u: std::time::SystemTime| u.min(t)));
        }
        let mut report = PruneReport::default();
        for c in self.list()? {
            if matches!(
                c.state.status,
                Status::Running | Status::Paused | Status::Restarting | Status::Removing
            ) || c.state.creator_pid != 0
            {
                continue;
            }
            let l = &c.record.config.labels;
            let all = |key: &str| filters.values(key).iter().all(|f| label_matches(l, f));
            if !all("label") || (filters.has("label!") && all("label!")) {
                continue;
            }
            if let Some(u) = until
                && crate::util::parse_rfc3339(&c.record.created).is_none_or(|t| t >= u)
            {
                continue;
            }
            let id = c.record.id.clone();
            let size = self.rw_size(&id);
            match self.remove_stopped(&id, false) {
                Ok(()) => {
                    report.removed.push(id);
                    report.reclaimed += size;
                }
                Err(Error::NoSuchContainer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// The bytes of a container's writable layer (its snapshot's upper or copied root).
    pub(crate) fn rw_size(&self, id: &str) -> u64 {
        let snap = self
            .images()
            .root()
            .join("snapshots")
            .join("containers")
            .join(id);
        ["upper", "rootfs"]
            .iter()
            .map(|d| tree_size(&snap.join(d)))
            .sum()
    }
}
