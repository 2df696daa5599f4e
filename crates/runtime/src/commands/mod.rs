//! The verbs of the command line, one function each; `main` parses flags and calls them.

pub mod cgroup;
pub mod checkpoint;
pub mod exec;
pub mod features;
pub mod run;
pub mod spec;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::hooks;
use crate::signal;
use crate::state::{Container, EXEC_FIFO, Status};
use crate::sys;

/// `start ID`: let a created container's init exec the user's process.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let mut c = Container::load(root, id)?;
    match c.status() {
        Status::Created => {}
        s => bail!("cannot start a container that is {}", s.as_str()),
    }
    let fifo = c.dir.join(EXEC_FIFO);
    let f = std::fs::File::options()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo);
    let mut f = match f {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            bail!("cannot start container {id}: its init process has exited")
        }
        Err(e) => return Err(e).with_context(|| format!("open {}", fifo.display())),
    };
    // A read end of our own, to see the init's end close: the init holds the fifo open
    // (read-write, close-on-exec) until it execs the user's process or dies, so the last writer
    // goes away exactly then and poll reports POLLHUP (as runc's start waits for the exec).
    // Opened while the init's writer exists, so the kernel does not suppress that hangup.
    let watch: OwnedFd = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .with_context(|| format!("open {}", fifo.display()))?
        .into();
    f.write_all(&[0]).context("wake the container's init")?;
    drop(f);
    wait_hangup(&watch).context("wait for the container's process to start")?;
    drop(watch);
    let mut saved = c.saved().clone();
    saved.started = true;
    c.save(saved)?;
    let _ = std::fs::remove_file(&fifo);
    let s = c.saved();
    if let Some(h) = saved_hooks(&c) {
        let state = hooks::state_json(id, "running", s.pid, &s.bundle, &s.annotations);
        hooks::run_all(
            "poststart",
            h.poststart().as_deref().unwrap_or_default(),
            &state,
        );
    }
    Ok(())
}

/// Block until every writer of the fifo behind `fd` has closed it.
fn wait_hangup(fd: &OwnedFd) -> Result<()> {
    loop {
        // Only POLLHUP/POLLERR can be reported with no events asked for, so the byte for the
        // init still in the pipe does not wake us.
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        if p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            return Ok(());
        }
    }
}

fn saved_hooks(c: &Container) -> Option<oci_spec::runtime::Hooks> {
    c.saved()
        .hooks
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
}

use std::os::unix::fs::OpenOptionsExt;

/// `state ID`: print the OCI state.
pub fn state(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    println!("{}", c.state_json(true)?);
    Ok(())
}

/// Signal every process of the container's cgroup (frozen first, so none can fork away).
fn signal_all(c: &Container, sig: i32) -> Result<()> {
    let s = c.saved();
    let cg = berth_cgroups::manager(s.cgroups_path.as_deref(), &s.id)?;
    let frozen = sig == libc::SIGKILL && cg.freeze(berth_cgroups::FreezerState::Frozen).is_ok();
    let pids = cg.pids().unwrap_or_default();
    for p in pids {
        let _ = sys::kill(p, sig);
    }
    if frozen {
        cg.freeze(berth_cgroups::FreezerState::Thawed)?;
    }
    Ok(())
}

/// `kill [--all] ID [SIGNAL]`.
pub fn kill(root: &Path, id: &str, sig: &str, all: bool) -> Result<()> {
    let c = Container::load(root, id)?;
    let sig = signal::parse(sig)?;
    let status = c.status();
    if status == Status::Stopped && !all {
        bail!("container {id} is not running");
    }
    if all {
        return signal_all(&c, sig);
    }
    sys::kill(c.saved().pid, sig).with_context(|| format!("signal the init of {id}"))
}

/// Wait until a process is gone or a zombie (it may not be our child, so no waitpid).
fn wait_gone(pid: i32, start: u64, timeout: Duration) -> bool {
    // SAFETY: pidfd_open has no memory arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd >= 0 {
        // SAFETY: pidfd_open returned a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // The pid might have been reused between the state check and pidfd_open.
        if !matches!(berth_sys::proc::stat(pid), Some(s) if s.start_time == start) {
            return true;
        }
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
        return n > 0;
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match berth_sys::proc::stat(pid) {
            Some(s) if s.start_time == start && s.state != 'Z' => {
                std::thread::sleep(Duration::from_millis(5))
            }
            _ => return true,
        }
    }
    false
}

/// `delete [--force] ID`.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        Err(e) if force && !root.join(id).join("state.json").exists() => {
            // A half-created container (its creator died): remove what is there.
            let _ = e;
            let dir = root.join(id);
            remove_orphan_cgroup(&dir, id)?;
            crate::hostmounts::unmount_new(&dir)?;
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("remove {}", dir.display()))?;
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    // Only a stopped container is deleted without --force, a created one included, as the OCI
    // runtime spec says ("deleting a container that is not stopped MUST have no effect on the
    // container and MUST generate an error"); runc kills a created container instead. Nobody
    // we know of depends on runc's way: podman (libpod's DeleteContainer) and the berth engine
    // always pass --force; containerd's shim (go-runc Delete without Force from its created
    // state's Delete) only gets there after containerd's client has killed the task and seen it
    // exit (task.Delete refuses a created task with a pid unless WithProcessKill), and its
    // cleanup paths (shim delete, the manager's Stop) use --force.
    let status = c.status();
    match status {
        Status::Stopped => {}
        _ if force => kill_and_wait(&c)?,
        Status::Created => bail!(
            "cannot delete container {id} that is created (its process has not been started): start and stop it, kill it first, or use --force"
        ),
        s => bail!(
            "cannot delete container {id} that is {}: stop it first or use --force",
            s.as_str()
        ),
    }
    destroy(&c)
}

/// Kill what is left in the cgroup of a container whose creator died, and remove the cgroup.
fn remove_orphan_cgroup(dir: &Path, id: &str) -> Result<()> {
    let Ok(data) = std::fs::read(dir.join(crate::state::CGROUP_FILE)) else {
        return Ok(());
    };
    let path: Option<String> = serde_json::from_slice(&data).unwrap_or_default();
    let cg = berth_cgroups::manager(path.as_deref(), id)?;
    let _ = cg.freeze(berth_cgroups::FreezerState::Frozen);
    kill_until_empty(cg.as_ref(), id)?;
    cg.destroy().context("remove the container's cgroup")?;
    Ok(())
}

/// SIGKILL every process of the cgroup until none is left (at most 10 s). A frozen cgroup is
/// thawed after each round, so the signals are delivered while nothing could fork meanwhile.
fn kill_until_empty(cg: &dyn berth_cgroups::Manager, id: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = cg.pids().unwrap_or_default();
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("container {id}: processes {pids:?} are still in its cgroup");
        }
        for p in pids {
            let _ = sys::kill(p, libc::SIGKILL);
        }
        let _ = cg.freeze(berth_cgroups::FreezerState::Thawed);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill_and_wait(c: &Container) -> Result<()> {
    let s = c.saved();
    if s.own_pidns {
        // Killing init of a pid namespace kills everything in it.
        let _ = sys::kill(s.pid, libc::SIGKILL);
    }
    signal_all(c, libc::SIGKILL)?;
    if !wait_gone(s.pid, s.pid_start, Duration::from_secs(10)) {
        bail!("container {} did not die after SIGKILL", s.id);
    }
    Ok(())
}

/// Remove the cgroup (once every process is gone), what the container mounted in the host's
/// mount namespace (when it had none of its own), and the state directory.
fn destroy(c: &Container) -> Result<()> {
    let s = c.saved();
    let cg = berth_cgroups::manager(s.cgroups_path.as_deref(), &s.id)?;
    kill_until_empty(cg.as_ref(), &s.id)?;
    cg.destroy().context("remove the container's cgroup")?;
    crate::hostmounts::unmount_new(&c.dir)?;
    c.remove_dir()?;
    if let Some(h) = saved_hooks(c) {
        let state = hooks::state_json(&s.id, "stopped", 0, &s.bundle, &s.annotations);
        hooks::run_all(
            "poststop",
            h.poststop().as_deref().unwrap_or_default(),
            &state,
        );
    }
    Ok(())
}

/// `list [--format table|json] [--quiet]`.
pub fn list(root: &Path, format: &str, quiet: bool) -> Result<()> {
    if root.exists() {
        crate::state::secure_root(root)?;
    }
    let mut ids: Vec<String> = match std::fs::read_dir(root) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("read {}", root.display())),
    };
    ids.sort();
    let containers: Vec<Container> = ids
        .iter()
        .filter_map(|id| Container::load(root, id).ok())
        .collect();
    if quiet {
        for c in &containers {
            println!("{}", c.saved().id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            let states: Vec<serde_json::Value> = containers
                .iter()
                .map(|c| serde_json::from_str(&c.state_json(false)?).map_err(Into::into))
                .collect::<Result<_>>()?;
            println!("{}", serde_json::to_string(&states)?);
        }
        "table" => {
            let mut out = String::from("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n");
            for c in &containers {
                let (status, pid) = c.oci_state();
                let s = c.saved();
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\n",
                    s.id,
                    pid,
                    status.as_str(),
                    s.bundle.display(),
                    s.created,
                    if s.owner.is_empty() { "root" } else { &s.owner }
                ));
            }
            print!("{}", tabulate(&out));
        }
        f => bail!("--format: unknown format {f:?} (table or json)"),
    }
    Ok(())
}

/// Align tab-separated columns with spaces, as Go's tabwriter does for runc.
fn tabulate(text: &str) -> String {
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == r.len() {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i] + 3)
                }
            })
            .collect();
        out.push_str(line.join("").trim_end());
        out.push('\n');
    }
    out
}
