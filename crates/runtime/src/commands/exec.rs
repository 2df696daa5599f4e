//! `exec`: run another process in a running container.
//!
//! The parent joins the container's pid and time namespaces for its children, forks the new
//! process into the container's cgroup (as `create` does its init: cloned into the cgroup2 part,
//! joining the v1 hierarchies itself), which joins the user namespace first and then the others
//! (mount last, which puts it at the container's root; a container without a mount namespace is
//! entered by chroot into its init's root), waits until the parent has added it to
//! whatever part of the cgroup it could not join itself, joins the cgroup namespace, and then
//! goes through the same process setup as the init (cwd, rlimits, user, capabilities,
//! no_new_privs) before it execs. Without `--detach` the parent waits and
//! exits with the process's status, forwarding signals and proxying the terminal.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{Capability, LinuxCapabilities, Process};

use crate::init;
use crate::state::{Container, Status};
use crate::sync::{Msg, Sync};
use crate::sys;
use crate::sys::write_atomic;

/// Flags of `exec`.
#[derive(Debug, Default, Clone)]
pub struct ExecOpts {
    /// A process.json to run instead of building one from the flags.
    pub process: Option<PathBuf>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Send the terminal's master here.
    pub console_socket: Option<PathBuf>,
    /// Return once the process has started.
    pub detach: bool,
    /// Write the process's pid here.
    pub pid_file: Option<PathBuf>,
    /// Working directory in the container.
    pub cwd: Option<PathBuf>,
    /// Extra environment variables.
    pub env: Vec<String>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    /// Extra groups.
    pub additional_gids: Vec<u32>,
    /// Capabilities to add.
    pub caps: Vec<String>,
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// Pass descriptors 3..3+N.
    pub preserve_fds: u32,
    /// AppArmor profile (not supported on this host).
    pub apparmor: Option<String>,
    /// SELinux label (not supported on this host).
    pub process_label: Option<String>,
    /// The command.
    pub args: Vec<String>,
}

/// The process to run: `--process FILE`, or the container's own process with the flags applied.
fn build_process(c: &Container, o: &ExecOpts) -> Result<Process> {
    if let Some(path) = &o.process {
        let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let de = &mut serde_json::Deserializer::from_slice(&text);
        let p: Process = serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))?;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!("{}: args: must not be empty", path.display());
        }
        return Ok(p);
    }
    if o.args.is_empty() {
        bail!("exec: give the command to run after the container ID (or --process FILE)");
    }
    let cfg = crate::config::load(&c.saved().bundle)
        .with_context(|| "read the container's config.json for the process defaults")?;
    let mut p = cfg.spec.process().clone().expect("validated");
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for e in &o.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let uid: u32 = uid
            .parse()
            .map_err(|_| anyhow!("--user: {u:?} is not UID[:GID]"))?;
        let mut user = p.user().clone();
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .map_err(|_| anyhow!("--user: {u:?} is not UID[:GID]"))?,
            );
        }
        p.set_user(user);
    }
    if !o.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(o.additional_gids.clone()));
        p.set_user(user);
    }
    if !o.caps.is_empty() {
        let mut caps = p
            .capabilities()
            .clone()
            .unwrap_or_else(LinuxCapabilities::default);
        for name in &o.caps {
            let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| anyhow!("--cap: unknown capability {name:?}"))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

const NAMESPACES: &[(&str, libc::c_int)] = &[
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("time", libc::CLONE_NEWTIME),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("mnt", libc::CLONE_NEWNS),
];

/// The init's namespaces that differ from ours, user first and mount last.
fn namespaces_of(pid: i32) -> Result<Vec<(libc::c_int, OwnedFd)>> {
    let mut out = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let Ok(t) = std::fs::metadata(&theirs) else {
            continue; // the kernel lacks this namespace type
        };
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))?;
        if t.ino() == ours.ino() && t.dev() == ours.dev() {
            continue;
        }
        let f = File::options()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&theirs)
            .with_context(|| format!("open {theirs}"))?;
        out.push((*flag, f.into()));
    }
    Ok(out)
}

/// `exec`; returns the exit code for this process.
pub fn exec(root: &Path, id: &str, o: &ExecOpts) -> Result<i32> {
    if o.apparmor.is_some() {
        bail!("--apparmor: AppArmor is not enabled on this host");
    }
    if o.process_label.is_some() {
        bail!("--process-label: SELinux is not enabled on this host");
    }
    let c = Container::load(root, id)?;
    match c.status() {
        Status::Running | Status::Created => {}
        s => bail!("cannot exec in container {id}: it is {}", s.as_str()),
    }
    let process = build_process(&c, o)?;
    let s = c.saved().clone();
    let seccomp: Option<oci_spec::runtime::LinuxSeccomp> = s
        .seccomp
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .context("the saved seccomp profile")?;
    let cg = berth_cgroups::manager(s.cgroups_path.as_deref(), &s.id)?;
    let nss = namespaces_of(s.pid)?;
    // A container without a mount namespace of its own is in ours, chrooted into its rootfs:
    // the process goes into the init's root directory instead of joining a namespace.
    let chroot_to: Option<OwnedFd> = if nss.iter().any(|(f, _)| *f == libc::CLONE_NEWNS) {
        None
    } else {
        let p = format!("/proc/{}/root", s.pid);
        let f = File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&p)
            .with_context(|| format!("open the container's root {p}"))?;
        Some(f.into())
    };
    // pid and time namespaces apply to our children: join them here.
    let mut child_nss = Vec::new();
    for (flag, fd) in nss {
        if flag == libc::CLONE_NEWPID || flag == libc::CLONE_NEWTIME {
            sys::setns(fd.as_raw_fd(), flag).context("join the container's namespace")?;
        } else {
            child_nss.push((flag, fd));
        }
    }
    let tty = process.terminal() == Some(true);
    let (console_child, console_ours) = match (&o.console_socket, tty) {
        (Some(_), false) => bail!("--console-socket needs --tty"),
        (Some(p), true) => {
            let s = UnixStream::connect(p)
                .with_context(|| format!("--console-socket: connect {}", p.display()))?;
            (Some(OwnedFd::from(s)), None)
        }
        (None, true) if o.detach => bail!("--tty with --detach needs --console-socket"),
        (None, true) => {
            let (a, b) = sys::socketpair(libc::SOCK_STREAM)?;
            (Some(a), Some(b))
        }
        (None, false) => (None, None),
    };

    let mask = if o.detach {
        None
    } else {
        Some(super::run::block_signals())
    };
    let (parent_end, child_end) = sys::socketpair(libc::SOCK_SEQPACKET)?;
    // As for the init (see create.rs): the process starts in the cgroup2 part of the cgroup and
    // joins the v1 hierarchies itself, so no `cgroup.procs` write waits for an RCU grace period.
    let join_files = if crate::create::rootless() {
        Vec::new()
    } else {
        cg.self_join_files()
    };
    let cgroup2 = cg.cgroup2_dir().and_then(|d| File::open(d).ok());
    // SAFETY: the runtime is single-threaded.
    let (pid, in_cgroup2) =
        unsafe { sys::clone_fork_into(0, cgroup2.as_ref().map(|f| f.as_raw_fd())) }
            .context("fork the exec process")?;
    if pid == 0 {
        drop(parent_end);
        let sync = Sync(child_end);
        let r = (|| -> Result<init::Exec> {
            // SAFETY: closing the lock descriptor in this forked copy.
            unsafe { libc::close(c.lock_fd()) };
            // Before joining the container's user and mount namespaces.
            berth_cgroups::join_self(&join_files).context("join the container's cgroup")?;
            // Keep container processes from reading our memory or /proc/self/exe.
            sys::prctl(libc::PR_SET_DUMPABLE, 0)?;
            // The seccomp listener is a host path: connect before joining the mount namespace.
            let mut compiled = seccomp.as_ref().map(crate::seccomp::compile).transpose()?;
            if let Some(s) = &mut compiled {
                s.connect()?;
            }
            let mut cgroupns = None;
            for (flag, fd) in &child_nss {
                if *flag == libc::CLONE_NEWCGROUP {
                    cgroupns = Some(fd);
                    continue;
                }
                sys::setns(fd.as_raw_fd(), *flag)
                    .with_context(|| format!("join the container's namespace {flag:#x}"))?;
            }
            if let Some(root) = &chroot_to {
                // SAFETY: fchdir on a descriptor we own.
                sys::check(unsafe { libc::fchdir(root.as_raw_fd()) })
                    .context("enter the container's root (it has no mount namespace)")?;
                // SAFETY: a valid C string.
                sys::check(unsafe { libc::chroot(c".".as_ptr()) })
                    .context("chroot into the container's root (it has no mount namespace)")?;
                std::env::set_current_dir("/")?;
            }
            let (state, my_pid) = match sync.recv()? {
                Some(Msg::Proceed(p)) => {
                    let v: serde_json::Value = serde_json::from_str(&p)?;
                    (
                        v["state"].to_string(),
                        v["pid"].as_i64().unwrap_or(0) as i32,
                    )
                }
                _ => bail!("the runtime went away"),
            };
            if let Some(fd) = cgroupns {
                sys::setns(fd.as_raw_fd(), libc::CLONE_NEWCGROUP)
                    .context("join the container's cgroup namespace")?;
            }
            if let Some(console) = &console_child {
                let root: OwnedFd = File::options()
                    .read(true)
                    .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                    .open("/")?
                    .into();
                init::attach_terminal(&root, console.as_raw_fd(), &process, false)?;
            }
            init::prepare_process(&process, None, o.preserve_fds, compiled, &state, my_pid)
        })();
        match r {
            Ok(mut exec) => {
                if sync.send(&Msg::Ready).is_err() {
                    // SAFETY: ends this child at once.
                    unsafe { libc::_exit(1) }
                }
                // Held (close-on-exec) until the exec, so `exec --detach` can wait for it;
                // unless it sits among the preserved descriptors, which the process keeps.
                if sync.0.as_raw_fd() >= 3 + o.preserve_fds as i32 {
                    exec.report_exec_errors_to(sync.0.as_raw_fd());
                    std::mem::forget(sync);
                } else {
                    drop(sync);
                }
                exec.run()
            }
            Err(e) => {
                let _ = sync.send(&Msg::Error(format!("{e:#}")));
                // SAFETY: as above.
                unsafe { libc::_exit(1) }
            }
        }
    }
    drop(child_end);
    drop(console_child);
    drop(cgroup2);
    let sync = Sync(parent_end);
    let fail = |e: anyhow::Error| -> Result<i32> {
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = sys::waitpid(pid, 0);
        Err(e)
    };
    let added =
        crate::create::add_rest_to_cgroup(cg.as_ref(), pid, !join_files.is_empty(), in_cgroup2);
    if let Err(e) = added {
        return fail(anyhow::Error::from(e).context("add the process to the container's cgroup"));
    }
    let state = crate::hooks::state_json(&s.id, "running", s.pid, &s.bundle, &s.annotations);
    let proceed = serde_json::json!({
        "state": serde_json::from_str::<serde_json::Value>(&state)?,
        "pid": pid,
    });
    sync.send(&Msg::Proceed(proceed.to_string()))?;
    match sync.recv() {
        Ok(Some(Msg::Ready)) => {}
        Ok(Some(Msg::Error(e))) => return fail(anyhow!(e)),
        _ => return fail(anyhow!("the exec process died during setup")),
    }
    if let Some(pid_file) = &o.pid_file {
        write_atomic(pid_file, pid.to_string().as_bytes())
            .with_context(|| format!("--pid-file {}", pid_file.display()))?;
    }
    drop(c); // unlock
    if o.detach {
        // Return once the process has exec'd (its end of the socket closes), so the caller
        // sees the command running, or its failure (not found, not executable) as an error.
        if let Ok(Some(Msg::Error(e))) = sync.recv() {
            let _ = sys::waitpid(pid, 0);
            bail!(e);
        }
        return Ok(0);
    }
    let master = match console_ours {
        Some(sock) => Some(berth_sys::fdpass::recv_fd(&sock).context("receive the terminal")?),
        None => None,
    };
    let mask = mask.expect("blocked when not detached");
    // SAFETY: a valid mask pointer.
    let sfd = sys::check(unsafe { libc::signalfd(-1, &mask, libc::SFD_CLOEXEC) })?;
    // SAFETY: signalfd returned a new descriptor nothing else owns.
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    let raw = master.as_ref().map(|_| super::run::RawTerminal::enter(0));
    let status = super::run::wait_loop(pid, &sfd, master.as_ref())?;
    drop(raw);
    Ok(sys::exit_code(status))
}
