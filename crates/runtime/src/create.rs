//! `create`: the parent side of setting up a container.
//!
//! The parent validates config.json, makes the state directory (its existence is the ID's
//! reservation), the exec fifo and the cgroup, forks the init into its namespaces, writes the id
//! maps, puts the init into the cgroup, and saves the state once the init reports it is ready.
//! If any step fails, everything made so far is undone (init killed, cgroup and state removed).
//!
//! Namespaces: when the config only asks for new namespaces (and joins of pid/time, which only
//! affect children and are done here), the init is cloned straight into them. When it joins
//! other namespaces by path, an intermediate process joins them first, then unshares the new
//! ones and forks the init, because a namespace must be joined before a new user namespace
//! takes away the privileges to join it.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, LinuxResources,
};

use crate::config::{self, Config, ns_flag};
use crate::hooks;
use crate::init::{self, InitArgs};
use crate::state::{self, Container, EXEC_FIFO, Saved};
use crate::sync::{Msg, Sync};
use crate::sys;

/// Flags of `create` (and `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Write the init's pid here.
    pub pid_file: Option<PathBuf>,
    /// Send the terminal's master to this unix socket.
    pub console_socket: Option<PathBuf>,
    /// Use chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Do not give the container a new session keyring.
    pub no_new_keyring: bool,
    /// Pass descriptors 3..3+N to the container.
    pub preserve_fds: u32,
}

/// What `create` hands back to `run`.
pub struct Created {
    /// The locked container.
    pub container: Container,
    /// Our end of the console socket pair when `run` owns the terminal.
    pub console: Option<OwnedFd>,
}

/// Undoes a half-made container when dropped, unless disarmed.
struct Cleanup {
    dir: PathBuf,
    cgroup: Option<Box<dyn berth_cgroups::Manager>>,
    pids: Vec<i32>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for &pid in &self.pids {
            let _ = sys::kill(pid, libc::SIGKILL);
            let _ = sys::waitpid(pid, 0);
        }
        if let Some(cg) = &self.cgroup {
            if let Ok(pids) = cg.pids() {
                for p in pids {
                    let _ = sys::kill(p, libc::SIGKILL);
                }
            }
            let _ = cg.destroy();
        }
        // The init may have mounted in the host's mount namespace before it failed. If they
        // cannot all be unmounted, the state directory stays, with the record of them, for
        // `delete --force`.
        if let Err(e) = crate::hostmounts::unmount_new(&self.dir) {
            crate::log::error(&format!(
                "{e:#} (the container's state directory {} is kept: run delete --force on it)",
                self.dir.display()
            ));
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The namespaces of a container split by how we get into them.
struct NsPlan {
    /// CLONE_NEW* flags to create (without cgroup and time: those are handled apart).
    new_flags: libc::c_int,
    new_user: bool,
    /// Namespaces to join by path from the intermediate process: (flag, fd).
    joins: Vec<(libc::c_int, OwnedFd)>,
}

fn open_ns(path: &Path, i: usize) -> Result<OwnedFd> {
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("linux.namespaces[{i}].path: open {}", path.display()))?;
    Ok(f.into())
}

/// Join the time namespace (and the pid namespace when no intermediate process is needed) by
/// path and make a new time namespace, all of which only affect the children of this process;
/// return the plan for the rest.
fn plan_namespaces(cfg: &Config) -> Result<NsPlan> {
    let linux = cfg.spec.linux().as_ref().expect("validated");
    let mut plan = NsPlan {
        new_flags: 0,
        new_user: false,
        joins: Vec::new(),
    };
    let mut pid_join = None;
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        let flag = ns_flag(ns.typ());
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::Pid, Some(p)) => pid_join = Some((i, p.clone(), open_ns(p, i)?)),
            (LinuxNamespaceType::Time, Some(p)) => {
                let fd = open_ns(p, i)?;
                sys::setns(fd.as_raw_fd(), flag)
                    .with_context(|| format!("linux.namespaces[{i}]: join {}", p.display()))?;
            }
            (LinuxNamespaceType::Time, None) => {
                sys::unshare(libc::CLONE_NEWTIME)
                    .context("linux.namespaces: new time namespace")?;
                let mut offsets = String::new();
                for (clock, off) in linux.time_offsets().iter().flatten() {
                    offsets.push_str(&format!(
                        "{clock} {} {}\n",
                        off.secs().unwrap_or(0),
                        off.nanosecs().unwrap_or(0)
                    ));
                }
                if !offsets.is_empty() {
                    std::fs::write("/proc/self/timens_offsets", offsets)
                        .context("linux.timeOffsets: write /proc/self/timens_offsets")?;
                }
            }
            (LinuxNamespaceType::Cgroup, None) => {} // unshared by the init once in its cgroup
            (LinuxNamespaceType::User, None) => plan.new_user = true,
            (_, None) => plan.new_flags |= flag,
            (t, Some(p)) => {
                let _ = t;
                plan.joins.push((flag, open_ns(p, i)?));
            }
        }
    }
    // A pid namespace joined here only holds our children: fine when the init is our child.
    // With an intermediate process, the intermediate joins it instead, so that it stays in
    // our pid namespace itself and the init's pid it reports is the one we see (not the pid
    // inside the joined namespace).
    if let Some((i, p, fd)) = pid_join {
        if plan.joins.is_empty() {
            sys::setns(fd.as_raw_fd(), libc::CLONE_NEWPID)
                .with_context(|| format!("linux.namespaces[{i}]: join {}", p.display()))?;
        } else {
            plan.joins.push((libc::CLONE_NEWPID, fd));
        }
    }
    // Join the user namespace first: it decides what the other joins may do.
    plan.joins.sort_by_key(|(f, _)| *f != libc::CLONE_NEWUSER);
    Ok(plan)
}

/// Create a container: returns once its init waits for `start`.
pub fn create(root: &Path, id: &str, opts: &CreateOpts, own_console: bool) -> Result<Created> {
    let cfg = config::load(&opts.bundle)?;
    let mut container = Container::create(root, id)?;
    let mut cleanup = Cleanup {
        dir: container.dir.clone(),
        cgroup: None,
        pids: Vec::new(),
        armed: true,
    };
    let linux = cfg.spec.linux().as_ref().expect("validated");
    let process = cfg.spec.process().as_ref().expect("validated");

    // The fifo the init blocks on until `start`.
    let fifo_path = container.dir.join(EXEC_FIFO);
    let c = sys::cstr(&fifo_path)?;
    // SAFETY: a valid C string.
    sys::check(unsafe { libc::mkfifo(c.as_ptr(), 0o600) })
        .with_context(|| format!("mkfifo {}", fifo_path.display()))?;
    let fifo: OwnedFd = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&fifo_path)
        .with_context(|| format!("open {}", fifo_path.display()))?
        .into();

    // The terminal goes to the console socket (or to `run`, which proxies it).
    let terminal = process.terminal() == Some(true);
    let (console_child, console_ours): (Option<OwnedFd>, Option<OwnedFd>) = if !terminal {
        if opts.console_socket.is_some() {
            bail!("--console-socket was given but process.terminal is false");
        }
        (None, None)
    } else if let Some(sock) = &opts.console_socket {
        let s = UnixStream::connect(sock)
            .with_context(|| format!("--console-socket: connect {}", sock.display()))?;
        (Some(s.into()), None)
    } else if own_console {
        let (a, b) = sys::socketpair(libc::SOCK_STREAM)?;
        (Some(a), Some(b))
    } else {
        bail!("process.terminal is true: --console-socket is required with create and run -d");
    };

    let cgroups_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let resources = effective_resources(linux)?;
    let cg = berth_cgroups::manager(cgroups_path.as_deref(), id).context("linux.cgroupsPath")?;
    let cg_path = cg.path().to_path_buf();
    // Recorded before the cgroup exists, so `delete --force` can find it if this process dies
    // before the state is saved.
    sys::write_atomic(
        &container.dir.join(state::CGROUP_FILE),
        &serde_json::to_vec(&cgroups_path)?,
    )
    .context("record the container's cgroup path")?;
    match cg.create() {
        Ok(()) => {
            // Limits are in place before any process joins.
            let cg = cleanup.cgroup.insert(cg);
            cg.apply(&resources).context("linux.resources")?;
        }
        // Rootless without a delegated cgroup: run without one, unless limits are asked for.
        Err(_) if rootless() && !has_limits(linux) => {}
        Err(e) => {
            return Err(anyhow::Error::from(e).context(if rootless() {
                "create the container's cgroup (rootless: linux.resources needs a cgroup delegated to this user)"
            } else {
                "create the container's cgroup"
            }));
        }
    }

    let plan = plan_namespaces(&cfg)?;
    if !linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Mount)
    {
        // No mount namespace: the init mounts in ours; note what is there before it does.
        crate::hostmounts::record(&container.dir, &cfg.rootfs)?;
    }
    let own_pidns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none());

    let idmapped = crate::idmap::prepare(
        cfg.spec.mounts().as_deref().unwrap_or_default(),
        &cfg.bundle,
    )?;
    let (parent_end, child_end) = sys::socketpair(libc::SOCK_SEQPACKET)?;
    // The init joins its v1 cgroups itself, unless it is in another user namespace (whose root
    // may not write the host's cgroup files) or joins a cgroup namespace.
    let cgroup_join = match &cleanup.cgroup {
        Some(cg)
            if !rootless()
                && !plan.new_user
                && !plan.joins.iter().any(|(flag, _)| {
                    *flag & (libc::CLONE_NEWUSER | libc::CLONE_NEWCGROUP) != 0
                }) =>
        {
            cg.self_join_files()
        }
        _ => Vec::new(),
    };
    let self_join = !cgroup_join.is_empty();
    let init_args = InitArgs {
        cfg: &cfg,
        fifo: Some(fifo.as_raw_fd()),
        console: console_child.as_ref().map(|c| c.as_raw_fd()),
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        cgroup_path: &cg_path,
        cgroup_join,
        needs_maps: false,
        close_fds: vec![container.lock_fd()],
        idmapped: idmapped
            .iter()
            .map(|(i, fd)| (*i, fd.as_raw_fd()))
            .collect(),
    };
    let intermediate = !plan.joins.is_empty();
    if intermediate {
        // Children of a dying intermediate process come to us.
        sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1)?;
    }
    let clone_flags = if intermediate {
        0
    } else {
        plan.new_flags
            | if plan.new_user {
                libc::CLONE_NEWUSER
            } else {
                0
            }
    };
    // The init (or the intermediate process) starts in the cgroup2 part of its cgroup.
    let cgroup2 = cleanup
        .cgroup
        .as_ref()
        .and_then(|cg| cg.cgroup2_dir())
        .and_then(|d| std::fs::File::open(d).ok());
    // SAFETY: the runtime is single-threaded (no threads are ever started before this point).
    let (child, in_cgroup2) = unsafe {
        sys::clone_fork_into(
            clone_flags as libc::c_ulong,
            cgroup2.as_ref().map(|f| f.as_raw_fd()),
        )
    }
    .context("clone the container's init")?;
    if child == 0 {
        drop(parent_end);
        let sync = Sync(child_end);
        if intermediate {
            intermediate_main(&plan, init_args, sync);
        }
        init::main(
            InitArgs {
                needs_maps: plan.new_user,
                ..init_args
            },
            sync,
        );
    }
    drop(child_end);
    drop(console_child);
    drop(cgroup2);
    cleanup.pids.push(child);
    let sync = Sync(parent_end);

    let mut joined = false;
    let init_pid = handshake(
        &sync,
        &cfg,
        child,
        intermediate,
        plan.new_user,
        &mut joined,
        &mut cleanup,
    )?;
    if self_join && !joined {
        sync.expect(Msg::Joined)
            .context("the container's init joining its cgroup")?;
    }
    crate::log::debug(|| {
        format!(
            "{id}: init pid {init_pid}, new namespaces {:#x}, {} joined, intermediate {intermediate}, cgroup {}",
            plan.new_flags,
            plan.joins.len(),
            cg_path.display()
        )
    });
    let annotations = cfg.spec.annotations().clone().unwrap_or_default();
    let hook_state = hooks::state_json(id, "creating", init_pid, &cfg.bundle, &annotations);
    sync.send(&Msg::Proceed(hook_state.clone()))?;
    if let Some(cg) = cleanup.cgroup.as_ref() {
        match add_rest_to_cgroup(cg.as_ref(), init_pid, self_join, in_cgroup2) {
            Ok(()) => {}
            Err(_) if rootless() && !has_limits(linux) => {}
            Err(e) => {
                return Err(anyhow::Error::from(e))
                    .with_context(|| format!("add init {init_pid} to the cgroup"));
            }
        }
    }
    sync.send(&Msg::CgroupsDone)?;
    loop {
        match sync.recv()? {
            Some(Msg::Ready) => break,
            Some(Msg::RunHooks) => {
                let h = cfg
                    .spec
                    .hooks()
                    .as_ref()
                    .expect("init asks only when there are hooks");
                #[allow(deprecated)]
                let r = hooks::run(
                    "prestart",
                    h.prestart().as_deref().unwrap_or_default(),
                    &hook_state,
                )
                .and_then(|_| {
                    hooks::run(
                        "createRuntime",
                        h.create_runtime().as_deref().unwrap_or_default(),
                        &hook_state,
                    )
                });
                if let Err(e) = r {
                    let _ = sync.send(&Msg::Error(format!("{e:#}")));
                    return Err(e);
                }
                sync.send(&Msg::HooksDone)?;
            }
            Some(Msg::Error(e)) => return Err(anyhow!(e)),
            Some(m) => bail!("unexpected message from the container's init: {m:?}"),
            None => bail!("the container's init exited during setup"),
        }
    }

    let pid_start = berth_sys::proc::stat(init_pid)
        .context("the container's init vanished")?
        .start_time;
    let mut saved = saved_state(&cfg, id, init_pid, pid_start)?;
    saved.started = false;
    saved.own_pidns = own_pidns;
    container.save(saved)?;
    if let Some(pid_file) = &opts.pid_file {
        sys::write_atomic(pid_file, init_pid.to_string().as_bytes())
            .with_context(|| format!("--pid-file {}", pid_file.display()))?;
    }
    sync.send(&Msg::Ack)?;
    crate::log::debug(|| format!("{id}: created"));
    cleanup.armed = false;
    Ok(Created {
        container,
        console: console_ours,
    })
}

/// The state of a container of `cfg` whose init is `pid` (started: true; the caller sets what
/// differs).
pub(crate) fn saved_state(cfg: &Config, id: &str, pid: i32, pid_start: u64) -> Result<Saved> {
    let linux = cfg.spec.linux().as_ref().expect("validated");
    Ok(Saved {
        id: id.to_string(),
        pid,
        pid_start,
        bundle: cfg.bundle.clone(),
        rootfs: cfg.rootfs.clone(),
        created: berth_sys::time::now_rfc3339_nanos(),
        owner: owner_name(),
        annotations: cfg.spec.annotations().clone().unwrap_or_default(),
        cgroups_path: linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        started: true,
        hooks: cfg
            .spec
            .hooks()
            .as_ref()
            .map(serde_json::to_value)
            .transpose()?,
        own_pidns: linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none()),
        seccomp: linux
            .seccomp()
            .as_ref()
            .map(serde_json::to_value)
            .transpose()?,
    })
}

/// `linux.resources` plus the device rules every container needs (runc's defaults) and the
/// devices of `linux.devices`, after the config's own rules. Only character and block devices
/// get rules: a FIFO (`p`) is a file that mknod makes without any device-cgroup permission, and
/// neither v1 `devices.allow` nor the v2 device program has a type for it. A device the config
/// has its own allow rule for keeps that rule's access (an engine's read-only `--device
/// HOST:CTR:r`), rather than getting `rwm`.
pub(crate) fn effective_resources(linux: &oci_spec::runtime::Linux) -> Result<LinuxResources> {
    let mut res = linux.resources().clone().unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    let own: Vec<(LinuxDeviceType, i64, i64)> = rules
        .iter()
        .filter(|r| r.allow())
        .filter_map(|r| Some((r.typ()?, r.major()?, r.minor()?)))
        .collect();
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .major(major.unwrap_or(-1))
            .minor(minor.unwrap_or(-1))
            .access(access)
            .build()
    };
    use LinuxDeviceType::{B, C};
    for (t, maj, min, acc) in [
        (C, None, None, "m"),
        (B, None, None, "m"),
        (C, Some(1), Some(3), "rwm"),
        (C, Some(1), Some(8), "rwm"),
        (C, Some(1), Some(7), "rwm"),
        (C, Some(5), Some(0), "rwm"),
        (C, Some(1), Some(5), "rwm"),
        (C, Some(1), Some(9), "rwm"),
        (C, Some(5), Some(1), "rwm"),
        (C, Some(136), None, "rwm"),
        (C, Some(5), Some(2), "rwm"),
        (C, Some(10), Some(200), "rwm"),
    ] {
        rules.push(rule(t, maj, min, acc)?);
    }
    for d in linux.devices().iter().flatten() {
        if matches!(d.typ(), C | B | LinuxDeviceType::U)
            && !own.contains(&(d.typ(), d.major(), d.minor()))
        {
            rules.push(rule(d.typ(), Some(d.major()), Some(d.minor()), "rwm")?);
        }
    }
    res.set_devices(Some(rules));
    Ok(res)
}

/// Whether berth-runtime runs without root (rootless containers).
pub fn rootless() -> bool {
    // SAFETY: geteuid has no arguments.
    unsafe { libc::geteuid() != 0 }
}

/// Whether the config asks for resource limits (device rules alone are not limits).
fn has_limits(linux: &oci_spec::runtime::Linux) -> bool {
    linux.resources().as_ref().is_some_and(|r| {
        r.memory().is_some()
            || r.cpu().is_some()
            || r.pids().is_some()
            || r.block_io().is_some()
            || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
            || r.unified().as_ref().is_some_and(|u| !u.is_empty())
    })
}

/// Adds `pid` to the parts of its cgroup it is not in yet: the v1 hierarchies unless it joined
/// them itself (`self_joined`, through `tasks`), the cgroup2 one unless it was cloned into it.
pub(crate) fn add_rest_to_cgroup(
    cg: &dyn berth_cgroups::Manager,
    pid: i32,
    self_joined: bool,
    in_cgroup2: bool,
) -> berth_cgroups::Result<()> {
    if !self_joined {
        cg.add_task_v1(pid)?;
    }
    if !in_cgroup2 {
        cg.add_task_unified(pid)?;
    }
    Ok(())
}

/// Parent side of the handshake up to knowing the init's pid.
fn handshake(
    sync: &Sync,
    cfg: &Config,
    child: i32,
    intermediate: bool,
    new_user: bool,
    joined: &mut bool,
    cleanup: &mut Cleanup,
) -> Result<i32> {
    let mut maps_pending = new_user;
    loop {
        if !intermediate && !maps_pending {
            return Ok(child);
        }
        match sync.recv()? {
            Some(Msg::NeedMaps) => {
                write_id_maps(cfg, child)?;
                maps_pending = false;
                sync.send(&Msg::MapsDone)?;
            }
            // A self-joining init forked by the intermediate may say so before its pid comes.
            Some(Msg::Joined) => *joined = true,
            Some(Msg::InitPid(pid)) => {
                // Never trust a pid blindly: it is about to be moved into the cgroup. The init
                // is the intermediate's child (or ours, once the intermediate has exited).
                // SAFETY: getpid has no arguments.
                let me = unsafe { libc::getpid() };
                if !matches!(berth_sys::proc::stat(pid), Some(s) if s.ppid == child || s.ppid == me)
                {
                    bail!("the intermediate process reported pid {pid}, which is not its child");
                }
                cleanup.pids.push(pid);
                // The intermediate process exits now; reap it.
                let (_, status) = sys::waitpid(child, 0)?;
                cleanup.pids.retain(|p| *p != child);
                if sys::exit_code(status) != 0 {
                    bail!("the intermediate process failed");
                }
                return Ok(pid);
            }
            Some(Msg::Error(e)) => return Err(anyhow!(e)),
            Some(m) => bail!("unexpected message from the container's init: {m:?}"),
            None => bail!("the container's init exited during setup"),
        }
    }
}

/// The intermediate process: join namespaces by path, make the new ones, fork the init.
fn intermediate_main(plan: &NsPlan, args: InitArgs, sync: Sync) -> ! {
    let r = (|| -> Result<i32> {
        for (flag, fd) in &plan.joins {
            sys::setns(fd.as_raw_fd(), *flag)
                .with_context(|| format!("join namespace (flag {flag:#x})"))?;
        }
        if plan.new_user {
            sys::unshare(libc::CLONE_NEWUSER).context("new user namespace")?;
            sync.send(&Msg::NeedMaps)?;
            sync.expect(Msg::MapsDone)?;
            // SAFETY: no memory arguments.
            sys::check(unsafe { libc::setresgid(0, 0, 0) })?;
            // SAFETY: no memory arguments.
            sys::check(unsafe { libc::setresuid(0, 0, 0) })?;
        }
        sys::unshare(plan.new_flags).context("unshare namespaces")?;
        // SAFETY: this process is single-threaded.
        let pid = unsafe { sys::clone_fork(0) }?;
        if pid == 0 {
            init::main(args, Sync(sync.0.try_clone().expect("dup sync socket")));
        }
        Ok(pid)
    })();
    match r {
        Ok(pid) => {
            let _ = sync.send(&Msg::InitPid(pid));
            // SAFETY: ends the intermediate process at once.
            unsafe { libc::_exit(0) }
        }
        Err(e) => {
            let _ = sync.send(&Msg::Error(format!("{e:#}")));
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}

fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn write_id_maps(cfg: &Config, pid: i32) -> Result<()> {
    let linux = cfg.spec.linux().as_ref().expect("validated");
    let uid = format_map(linux.uid_mappings().as_deref().unwrap_or_default());
    let gid = format_map(linux.gid_mappings().as_deref().unwrap_or_default());
    // SAFETY: geteuid has no arguments.
    if unsafe { libc::geteuid() } != 0 {
        let _ = std::fs::write(format!("/proc/{pid}/setgroups"), "deny");
    }
    std::fs::write(format!("/proc/{pid}/uid_map"), &uid)
        .with_context(|| format!("linux.uidMappings: write {uid:?}"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), &gid)
        .with_context(|| format!("linux.gidMappings: write {gid:?}"))?;
    Ok(())
}

pub(crate) fn owner_name() -> String {
    // runc reports the owner of rootless containers only.
    // SAFETY: geteuid has no arguments.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        String::new()
    } else {
        uid.to_string()
    }
}
