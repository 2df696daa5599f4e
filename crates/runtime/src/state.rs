//! The container's state on disk (`--root/ID/state.json`), its lock, and its status.
//!
//! Status is derived, never trusted from the file alone:
//!
//! ```text
//! creating --(init reports ready)--> created --(start)--> running --(process exits)--> stopped
//!                                       \____________________________(process exits)___/
//! running --(pause)--> paused --(resume)--> running
//! ```
//! `created` is "the init process is alive and the exec fifo still exists"; `running` is "alive
//! and the fifo is gone"; a process that has exited (gone, zombie, or its pid reused by another
//! process, detected by its start time) is `stopped` whether or not anybody reaped it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::sys;

/// The name of the fifo that holds a created container's init until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";
/// Holds `linux.cgroupsPath` from early in `create`, for `delete --force` of a container whose
/// creator died before its state was saved.
pub const CGROUP_FILE: &str = "cgroup.json";
const STATE_FILE: &str = "state.json";

/// The container status of the OCI runtime spec (plus runc's `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The runtime is setting the container up.
    Creating,
    /// Set up; the user process has not been started.
    Created,
    /// The user process runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The user process has exited.
    Stopped,
}

impl Status {
    /// The lowercase name used in state JSON and `list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What the runtime keeps about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    /// Container ID.
    pub id: String,
    /// Host PID of the container's init.
    pub pid: i32,
    /// Its start time in clock ticks since boot, to tell it from a later process with its pid.
    pub pid_start: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The user who created it.
    pub owner: String,
    /// Annotations from config.json.
    pub annotations: HashMap<String, String>,
    /// `linux.cgroupsPath` as given (None: the default path).
    pub cgroups_path: Option<String>,
    /// Whether `start` has been called (the fifo is gone).
    pub started: bool,
    /// poststop hooks to run at delete, as JSON of the config's hooks.
    #[serde(default)]
    pub hooks: Option<serde_json::Value>,
    /// The seccomp profile, applied to `exec` processes too.
    #[serde(default)]
    pub seccomp: Option<serde_json::Value>,
    /// Whether the container has its own PID namespace (then killing init kills all).
    #[serde(default)]
    pub own_pidns: bool,
}

/// The state JSON printed by `state` and passed to hooks: the OCI fields plus runc's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    /// OCI runtime spec version.
    pub oci_version: &'static str,
    /// Container ID.
    pub id: &'a str,
    /// Status.
    pub status: &'static str,
    /// Init PID (0 once stopped, as runc).
    pub pid: i32,
    /// Bundle path.
    pub bundle: &'a Path,
    /// Rootfs path (runc).
    pub rootfs: &'a Path,
    /// Creation time (runc).
    pub created: &'a str,
    /// Owner (runc).
    pub owner: &'a str,
    /// Annotations.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

/// The OCI runtime spec version we implement.
pub const OCI_VERSION: &str = "1.2.0";

/// A container directory under `--root`, locked for the lifetime of this value.
pub struct Container {
    /// `--root/ID`.
    pub dir: PathBuf,
    /// The saved state (absent while creating).
    pub saved: Option<Saved>,
    _lock: File,
}

/// Container IDs are file names: refuse anything that could be a path.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 1024
        || id == "."
        || id == ".."
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
    {
        bail!("invalid container id {id:?}: use letters, digits, '_', '-', '.' and '+'");
    }
    Ok(())
}

fn lock_dir(dir: &Path) -> Result<File> {
    Ok(berth_sys::Flock::exclusive_dir(dir)?.into())
}

/// Make the state root (mode 0700) if it is missing, and take group and other access away from
/// one that has it (older versions made it 0711), so that no other user can list the
/// containers or read their state, which names bundles, annotations and hooks.
pub fn secure_root(root: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("create state root {}", root.display()))?;
    restrict_mode(root).context("--root")
}

/// chmod 0700 a directory that gives group or others any access.
fn restrict_mode(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(dir).with_context(|| format!("stat {}", dir.display()))?;
    if !meta.is_dir() {
        bail!(
            "{} is not a directory: remove it or choose another --root",
            dir.display()
        );
    }
    let mode = meta.permissions().mode();
    if mode & (libc::S_ISVTX | 0o002) != 0 {
        // A shared directory such as /tmp: never take it away from everybody else.
        bail!(
            "{} is a shared directory (mode {:o}), not a state directory: use one of its own, e.g. {}",
            dir.display(),
            mode & 0o7777,
            dir.join("berth-runtime").display()
        );
    }
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).with_context(|| {
            format!(
                "make {} private (chmod 0700; it is open to other users)",
                dir.display()
            )
        })?;
    }
    Ok(())
}

impl Container {
    /// Make the directory of a new container; fails if the ID is taken.
    pub fn create(root: &Path, id: &str) -> Result<Container> {
        validate_id(id)?;
        secure_root(root)?;
        let dir = root.join(id);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container with id {id} already exists")
            }
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
        let lock = lock_dir(&dir)?;
        Ok(Container {
            dir,
            saved: None,
            _lock: lock,
        })
    }

    /// Open and lock an existing container.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = root.join(id);
        let lock = match lock_dir(&dir) {
            Ok(l) => l,
            Err(_) if !dir.exists() => bail!("container {id} does not exist"),
            Err(e) => return Err(e),
        };
        // A root and container directory made by an older version may be open to others.
        restrict_mode(root).context("--root")?;
        restrict_mode(&dir)?;
        let path = dir.join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!(
                    "container {id} does not exist (it is still being created, or its creation failed)"
                )
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let saved: Saved =
            serde_json::from_slice(&data).with_context(|| format!("parse {}", path.display()))?;
        Ok(Container {
            dir,
            saved: Some(saved),
            _lock: lock,
        })
    }

    /// The saved state; only absent in the middle of `create`.
    pub fn saved(&self) -> &Saved {
        self.saved.as_ref().expect("container state is loaded")
    }

    /// Write the state atomically: temporary file, rename. Readers see the old state or the
    /// new one, never a torn one. No fsync: the state describes processes, which a machine
    /// crash ends anyway (a state left empty by one reads as an error, and `delete --force`
    /// removes it), and on a disk-backed /run each fsync cost ~5 ms of every create and start.
    pub fn save(&mut self, saved: Saved) -> Result<()> {
        sys::write_atomic(&self.dir.join(STATE_FILE), &serde_json::to_vec(&saved)?)?;
        self.saved = Some(saved);
        Ok(())
    }

    /// Whether the init process recorded in the state is still alive (not a zombie, not a
    /// different process that reused its pid).
    pub fn init_alive(&self) -> bool {
        let s = self.saved();
        berth_sys::proc::pid_alive(s.pid, s.pid_start)
    }

    /// The status as the spec defines it, derived from the process and the fifo.
    pub fn status(&self) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if !self.saved().started && self.dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    fn is_frozen(&self) -> bool {
        let s = self.saved();
        berth_cgroups::manager(s.cgroups_path.as_deref(), &s.id)
            .and_then(|m| m.freezer_state())
            .map(|f| f == berth_cgroups::FreezerState::Frozen)
            .unwrap_or(false)
    }

    /// The OCI state of this container.
    pub fn oci_state(&self) -> (Status, i32) {
        let status = self.status();
        let pid = if status == Status::Stopped {
            0
        } else {
            self.saved().pid
        };
        (status, pid)
    }

    /// Serialise the OCI state JSON (pretty, as `runc state` prints it).
    pub fn state_json(&self, pretty: bool) -> Result<String> {
        let (status, pid) = self.oci_state();
        let s = self.saved();
        let st = OciState {
            oci_version: OCI_VERSION,
            id: &s.id,
            status: status.as_str(),
            pid,
            bundle: &s.bundle,
            rootfs: &s.rootfs,
            created: &s.created,
            owner: &s.owner,
            annotations: &s.annotations,
        };
        Ok(if pretty {
            serde_json::to_string_pretty(&st)?
        } else {
            serde_json::to_string(&st)?
        })
    }

    /// The descriptor holding the lock (a forked init must close it, or it would keep the lock).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    /// Remove the container directory.
    pub fn remove_dir(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("remove {}", self.dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_paths_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "web-1", "abc_DEF.1+2"] {
            validate_id(good).unwrap();
        }
    }
}
