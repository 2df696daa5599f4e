//! cgroup v1 manager: one directory per mounted hierarchy, plus the unified hierarchy on hybrid
//! hosts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::fsutil::{self, levels_below, mkdir_below, read, read_opt, remove_tree, write};
use crate::layout::{Hierarchy, cgroup_path, resolve_dir, self_cgroups};
use crate::{Error, FreezerState, Manager, Result, Stats};

mod apply;
mod stats;

/// The container's directory in one hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    /// Controllers of the hierarchy (empty for the unified one).
    pub(crate) subsystems: Vec<String>,
    /// Mount point of the hierarchy.
    pub(crate) mount: PathBuf,
    /// The container's cgroup directory.
    pub(crate) path: PathBuf,
}

/// cgroup v1 (and hybrid) manager.
#[derive(Debug)]
pub(crate) struct V1Manager {
    path: PathBuf,
    default_parent: bool,
    dirs: Vec<Dir>,
    unified: Option<Dir>,
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

impl V1Manager {
    /// Resolve the container's directories in every hierarchy.
    pub(crate) fn new(
        hierarchies: Vec<Hierarchy>,
        unified: Option<PathBuf>,
        cgroups_path: Option<&str>,
        id: &str,
    ) -> Result<Self> {
        let (path, default_parent) = cgroup_path(cgroups_path, id)?;
        let own = if path.is_absolute() {
            Vec::new()
        } else {
            self_cgroups()?
        };
        let own_of = |subs: &[String]| {
            own.iter()
                .find(|(s, _)| same_set(s, subs))
                .map(|(_, p)| p.as_path())
        };
        let dirs = hierarchies
            .into_iter()
            .map(|h| Dir {
                path: resolve_dir(&h.mount_point, &h.root, own_of(&h.subsystems), &path),
                subsystems: h.subsystems,
                mount: h.mount_point,
            })
            .collect();
        let unified = unified.map(|m| Dir {
            path: resolve_dir(&m, Path::new("/"), own_of(&[]), &path),
            subsystems: Vec::new(),
            mount: m,
        });
        Ok(Self {
            path,
            default_parent,
            dirs,
            unified,
        })
    }

    /// The directory of the hierarchy that has `subsystem`, if mounted.
    pub(crate) fn dir(&self, subsystem: &str) -> Option<&Dir> {
        self.dirs
            .iter()
            .find(|d| d.subsystems.iter().any(|s| s == subsystem))
    }

    /// Like [`Self::dir`], but an error naming what needed it if the subsystem is not mounted.
    pub(crate) fn require(&self, subsystem: &str, what: &str) -> Result<&Path> {
        self.dir(subsystem)
            .map(|d| d.path.as_path())
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "{what} requested but the cgroup v1 {subsystem} controller is not mounted"
                ))
            })
    }

    /// The container's directory in the unified hierarchy of a hybrid host.
    pub(crate) fn unified(&self) -> Option<&Dir> {
        self.unified.as_ref()
    }

    fn all_dirs(&self) -> impl Iterator<Item = &Dir> {
        self.dirs.iter().chain(self.unified.as_ref())
    }

    /// Without a v1 freezer, a hybrid host's unified hierarchy can freeze (`cgroup.freeze`).
    fn unified_freezer(&self) -> Option<&Dir> {
        if self.dir("freezer").is_some() {
            return None;
        }
        self.unified
            .as_ref()
            .filter(|u| u.path.join("cgroup.freeze").exists())
    }

    fn freezer(&self) -> Result<PathBuf> {
        self.require("freezer", "freezing")
            .map(|p| p.join("freezer.state"))
    }

    fn read_freezer(&self, file: &Path) -> Result<String> {
        Ok(read(file)?.trim().to_string())
    }
}

/// Copy `cpuset.cpus` and `cpuset.mems` from the parent where they are empty (a new cpuset
/// cgroup starts empty and would refuse tasks with `ENOSPC`).
fn init_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let Some(cur) = read_opt(&dir.join(f))? else {
            continue;
        };
        if cur.trim().is_empty() {
            let val = read(&parent.join(f))?;
            if !val.trim().is_empty() {
                write(&dir.join(f), val.trim())?;
            }
        }
    }
    Ok(())
}

impl Manager for V1Manager {
    fn path(&self) -> &Path {
        &self.path
    }

    fn create(&self) -> Result<()> {
        for d in self.all_dirs() {
            mkdir_below(&d.mount, &d.path)?;
            if d.subsystems.iter().any(|s| s == "cpuset") {
                // like runc, fill every empty level on the way (an empty cpuset cgroup can hold
                // no task, so this changes nothing for anybody else); a parent created
                // concurrently by another manager may not be filled yet
                for level in levels_below(&d.mount, &d.path) {
                    init_cpuset(&level)?;
                }
            }
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        self.add_task_v1(pid)?;
        self.add_task_unified(pid)
    }

    fn add_task_v1(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for d in &self.dirs {
            write(&d.path.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    fn cgroup2_dir(&self) -> Option<&Path> {
        self.unified.as_ref().map(|u| u.path.as_path())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.join("tasks")).collect()
    }

    fn add_task_unified(&self, pid: i32) -> Result<()> {
        match &self.unified {
            Some(u) => write(&u.path.join("cgroup.procs"), &pid.to_string()),
            None => Ok(()),
        }
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        apply::apply(self, resources)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        for d in self.all_dirs() {
            fsutil::procs_recursive(&d.path, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn freeze(&self, state: FreezerState) -> Result<()> {
        if let Some(u) = self.unified_freezer() {
            return crate::v2::freeze_dir(&u.path, state);
        }
        let file = self.freezer()?;
        let want = match state {
            FreezerState::Frozen => "FROZEN",
            FreezerState::Thawed => "THAWED",
        };
        // Like runc: write, poll; a freeze can get stuck in FREEZING, so rewrite it every so
        // often, and give up (thawing again) after a bounded time.
        let start = Instant::now();
        let mut i = 0u32;
        loop {
            if i.rem_euclid(25) == 0 {
                if state == FreezerState::Frozen && i > 0 {
                    write(&file, "THAWED")?;
                }
                write(&file, want)?;
            }
            let cur = self.read_freezer(&file)?;
            if cur == want {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(5) {
                if state == FreezerState::Frozen {
                    let _ = write(&file, "THAWED");
                }
                return Err(Error::Unsupported(format!(
                    "{}: still {cur} after 5s, wanted {want}",
                    file.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(if i < 10 { 1 } else { 10 }));
            i += 1;
        }
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        if let Some(u) = self.unified_freezer() {
            return crate::v2::freezer_state_dir(&u.path);
        }
        let file = self.freezer()?;
        let start = Instant::now();
        loop {
            match self.read_freezer(&file)?.as_str() {
                "THAWED" => return Ok(FreezerState::Thawed),
                "FROZEN" => return Ok(FreezerState::Frozen),
                // FREEZING: in transition; report frozen if it does not settle soon
                _ if start.elapsed() > Duration::from_millis(100) => {
                    return Ok(FreezerState::Frozen);
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn stats(&self) -> Result<Stats> {
        stats::stats(self)
    }

    fn oom_kills(&self) -> Result<u64> {
        stats::oom_kills(self)
    }

    fn destroy(&self) -> Result<()> {
        if let Some(d) = self.dirs.first() {
            fsutil::wait_empty(&d.path, || self.pids())?;
        }
        let mut first_err = None;
        for d in self.all_dirs() {
            if let Err(e) = remove_tree(&d.path) {
                first_err.get_or_insert(e);
            } else if self.default_parent
                && let Some(parent) = d.path.parent()
            {
                fsutil::rmdir_quiet(parent);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
