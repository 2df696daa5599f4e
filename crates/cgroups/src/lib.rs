//! berth-cgroups: put a container's processes in a cgroup, limit and account them.
//!
//! One small trait, [`Manager`], with a cgroup v1 implementation (one directory per mounted
//! controller hierarchy, plus the unified hierarchy on hybrid hosts) and a cgroup v2 one. The
//! layout is detected at run time from `/proc/self/mountinfo` ([`Layout::detect`]), never assumed.
//!
//! What this crate does not do: it never moves, remounts or writes to a cgroup it did not create
//! (apart from adding a task to its own container cgroup and, on v2, enabling controllers in
//! `cgroup.subtree_control` of the parents on the way to it), and it knows nothing about
//! containers beyond a path and an [`oci_spec::runtime::LinuxResources`].

use std::path::{Path, PathBuf};

mod convert;
mod fsutil;
mod layout;
mod stats;
mod v1;
mod v2;

pub use layout::{Hierarchy, Layout};
pub use stats::Stats;

/// What can go wrong while managing a cgroup. Every variant names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A cgroup file or directory could not be read, written, created or removed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`write`, `mkdir`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No cgroup filesystem is mounted where we can find it.
    #[error("no cgroup filesystem found in /proc/self/mountinfo")]
    NoCgroupFs,
    /// The configuration asks for something this host's cgroups cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// A resource value is out of range or malformed.
    #[error("invalid resource {field}: {reason}")]
    Invalid {
        /// The field of `linux.resources` (e.g. `memory.limit`).
        field: &'static str,
        /// Why it is wrong.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The freezer state of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    /// Processes run.
    Thawed,
    /// Processes are stopped.
    Frozen,
}

/// Manages one container's cgroup (on v1, one directory per hierarchy).
///
/// Lifecycle: [`Manager::create`], [`Manager::add_task`] of the container's init,
/// [`Manager::apply`] of the resources, then any of the queries, and [`Manager::destroy`] once
/// every process has gone (the runtime kills them first, see [`Manager::pids`]).
pub trait Manager {
    /// The cgroup path relative to the hierarchy root, e.g. `/berth/ID`.
    fn path(&self) -> &Path;
    /// Create the cgroup directories (idempotent).
    fn create(&self) -> Result<()>;
    /// Move a process into the cgroup.
    fn add_task(&self, pid: i32) -> Result<()>;
    /// The `tasks` files of the v1 hierarchies, through which a single-threaded process moves
    /// itself into this cgroup by writing `0` ([`join_self`]). Unlike writing a pid to
    /// `cgroup.procs`, that takes no global lock: the kernel's `cgroup.procs` write waits for an
    /// RCU grace period (5-20 ms) whenever no other migration happened just before. Empty on v2,
    /// whose `cgroup.threads` only moves threads within a threaded subtree.
    fn self_join_files(&self) -> Vec<PathBuf>;
    /// [`Manager::add_task`] in the v1 hierarchies only (nothing on v2).
    fn add_task_v1(&self, pid: i32) -> Result<()>;
    /// [`Manager::add_task`] in the cgroup2 hierarchy only: the whole cgroup on v2, the unified
    /// hierarchy of a hybrid host (nothing on pure v1).
    fn add_task_unified(&self, pid: i32) -> Result<()>;
    /// The cgroup's directory in the cgroup2 hierarchy (on v2, or a hybrid host's unified one):
    /// a process cloned with `CLONE_INTO_CGROUP` and a descriptor of it starts there, without
    /// the `cgroup.procs` write and its RCU grace period.
    fn cgroup2_dir(&self) -> Option<&Path>;
    /// Apply resource limits (creation and live update alike).
    fn apply(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<()>;
    /// Every process in the cgroup and its descendants.
    fn pids(&self) -> Result<Vec<i32>>;
    /// Freeze or thaw every process of the cgroup; returns once the state is reached.
    fn freeze(&self, state: FreezerState) -> Result<()>;
    /// The current freezer state.
    fn freezer_state(&self) -> Result<FreezerState>;
    /// Usage counters (cpu, memory, pids, blkio, hugetlb).
    fn stats(&self) -> Result<Stats>;
    /// The number of OOM kills so far in this cgroup (for `events`).
    fn oom_kills(&self) -> Result<u64>;
    /// Remove the cgroup directories. Fails if processes are still inside after a short wait.
    fn destroy(&self) -> Result<()>;
}

/// Move the calling thread into a cgroup through [`Manager::self_join_files`]: writes `0` to
/// each. The caller must be single-threaded for that to move its whole process.
pub fn join_self(files: &[PathBuf]) -> Result<()> {
    files.iter().try_for_each(|f| fsutil::write(f, "0"))
}

/// Open the manager of a container's cgroup on the layout detected on this host.
///
/// `cgroups_path` is `linux.cgroupsPath` as runc's cgroupfs driver reads it: an absolute path is
/// relative to the root of each hierarchy, a relative one to the calling process's own cgroup in
/// each hierarchy; `None` means `/berth/<id>`.
pub fn manager(cgroups_path: Option<&str>, id: &str) -> Result<Box<dyn Manager>> {
    let layout = Layout::detect()?;
    Ok(match layout {
        Layout::V2 { root } => Box::new(v2::V2Manager::new(root, cgroups_path, id)?),
        Layout::V1 {
            hierarchies,
            unified,
        } => Box::new(v1::V1Manager::new(hierarchies, unified, cgroups_path, id)?),
    })
}
