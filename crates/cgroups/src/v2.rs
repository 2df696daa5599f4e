//! cgroup v2 manager: one directory in the unified hierarchy.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::fsutil::{self, flat_get, mkdir_below, read, read_opt, remove_tree, write};
use crate::layout::{cgroup_path, resolve_dir, self_cgroups};
use crate::{Error, FreezerState, Manager, Result, Stats};

mod apply;
mod devices;
mod stats;

/// cgroup v2 manager.
#[derive(Debug)]
pub(crate) struct V2Manager {
    path: PathBuf,
    default_parent: bool,
    mount: PathBuf,
    dir: PathBuf,
}

/// Enable in `cgroup.subtree_control` of every directory from `mount` down to `leaf`'s parent
/// the controllers of `wanted` (all available ones if `None`) that the directory offers in
/// `cgroup.controllers` and has not enabled yet. Failures are ignored here (an ancestor with
/// processes of its own refuses, for instance): a limit that then cannot be set reports the
/// missing file.
pub(crate) fn enable_controllers(mount: &Path, leaf: &Path, wanted: Option<&[&str]>) -> Result<()> {
    let mut dir = mount.to_path_buf();
    let rel = leaf.strip_prefix(mount).unwrap_or(Path::new(""));
    for c in rel.components() {
        let available = read_opt(&dir.join("cgroup.controllers"))?.unwrap_or_default();
        let enabled = read_opt(&dir.join("cgroup.subtree_control"))?.unwrap_or_default();
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        for ctl in available.split_whitespace() {
            if enabled.contains(&ctl) || wanted.is_some_and(|w| !w.contains(&ctl)) {
                continue;
            }
            let _ = write(&dir.join("cgroup.subtree_control"), &format!("+{ctl}"));
        }
        dir.push(c);
    }
    Ok(())
}

impl V2Manager {
    /// Resolve the container's directory.
    pub(crate) fn new(root: PathBuf, cgroups_path: Option<&str>, id: &str) -> Result<Self> {
        let (path, default_parent) = cgroup_path(cgroups_path, id)?;
        let own = if path.is_absolute() {
            None
        } else {
            self_cgroups()?
                .into_iter()
                .find(|(s, _)| s.is_empty())
                .map(|(_, p)| p)
        };
        let dir = resolve_dir(&root, Path::new("/"), own.as_deref(), &path);
        Ok(Self {
            path,
            default_parent,
            mount: root,
            dir,
        })
    }

    /// The container's cgroup directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

fn frozen(dir: &Path) -> Result<bool> {
    let events = read(&dir.join("cgroup.events"))?;
    Ok(flat_get(&events, "frozen") == Some(1))
}

/// Freeze or thaw a v2 cgroup through `cgroup.freeze`, waiting for `cgroup.events` to agree.
pub(crate) fn freeze_dir(dir: &Path, state: FreezerState) -> Result<()> {
    let file = dir.join("cgroup.freeze");
    if !file.exists() {
        return Err(Error::Unsupported(format!(
            "freezing needs {} (Linux 5.2 or later)",
            file.display()
        )));
    }
    let want = state == FreezerState::Frozen;
    write(&file, if want { "1" } else { "0" })?;
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    while frozen(dir)? != want {
        if start.elapsed() > Duration::from_secs(5) {
            if want {
                let _ = write(&file, "0");
            }
            return Err(Error::Unsupported(format!(
                "{}: state not reached after 5s",
                dir.join("cgroup.events").display()
            )));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
    Ok(())
}

/// The reached freezer state of a v2 cgroup (thawed if the kernel has no freezer).
pub(crate) fn freezer_state_dir(dir: &Path) -> Result<FreezerState> {
    if read_opt(&dir.join("cgroup.freeze"))?.is_none() {
        return Ok(FreezerState::Thawed);
    }
    Ok(if frozen(dir)? {
        FreezerState::Frozen
    } else {
        FreezerState::Thawed
    })
}

impl Manager for V2Manager {
    fn path(&self) -> &Path {
        &self.path
    }

    fn create(&self) -> Result<()> {
        mkdir_below(&self.mount, &self.dir)?;
        enable_controllers(&self.mount, &self.dir, None)
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    fn add_task_v1(&self, _pid: i32) -> Result<()> {
        Ok(())
    }

    fn add_task_unified(&self, pid: i32) -> Result<()> {
        self.add_task(pid)
    }

    fn cgroup2_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        apply::apply(self, resources)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        fsutil::procs_recursive(&self.dir, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn freeze(&self, state: FreezerState) -> Result<()> {
        freeze_dir(&self.dir, state)
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        freezer_state_dir(&self.dir)
    }

    fn stats(&self) -> Result<Stats> {
        stats::stats(self)
    }

    fn oom_kills(&self) -> Result<u64> {
        stats::oom_kills(self)
    }

    fn destroy(&self) -> Result<()> {
        fsutil::wait_empty(&self.dir, || self.pids())?;
        remove_tree(&self.dir)?;
        if self.default_parent
            && let Some(parent) = self.dir.parent()
        {
            fsutil::rmdir_quiet(parent);
        }
        Ok(())
    }
}
