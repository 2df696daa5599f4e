//! The container's init: the forked child that sets the container up from the inside and then
//! waits for `start` before it execs the user's process.
//!
//! Steps, in order (each a function below): wait for the parent (id maps, cgroup), cgroup
//! namespace, hostname, root filesystem, terminal, pivot_root, sysctl, read-only and masked
//! paths, the process itself (cwd, rlimits, user, capabilities), report ready, wait for `start`,
//! exec.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Process};

use crate::config::Config;
use crate::rootfs::{self, RootfsSetup};
use crate::sync::{Msg, Sync};
use crate::sys;

/// Everything the init needs, prepared by the parent before the fork.
pub struct InitArgs<'a> {
    /// The validated config.
    pub cfg: &'a Config,
    /// The exec fifo, opened read-write.
    pub fifo: Option<RawFd>,
    /// The connected console socket, when `process.terminal` is true.
    pub console: Option<RawFd>,
    /// chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one.
    pub no_new_keyring: bool,
    /// Descriptors 3..3+N pass into the container.
    pub preserve_fds: u32,
    /// The container's cgroup path (for cgroup mounts).
    pub cgroup_path: &'a Path,
    /// The v1 `tasks` files this process writes `0` into to join its cgroup itself (empty when
    /// the parent adds it; see [`berth_cgroups::Manager::self_join_files`]).
    pub cgroup_join: Vec<std::path::PathBuf>,
    /// Whether this process must ask for its id maps (it made the user namespace).
    pub needs_maps: bool,
    /// Descriptors of the parent to close at once (the container lock).
    pub close_fds: Vec<RawFd>,
    /// Idmapped mounts prepared by the parent: mount index -> detached mount.
    pub idmapped: std::collections::HashMap<usize, RawFd>,
}

/// Run the init; never returns.
pub fn main(args: InitArgs, sync: Sync) -> ! {
    for fd in &args.close_fds {
        // SAFETY: closing the parent's descriptors in this forked copy; nothing here uses them.
        unsafe { libc::close(*fd) };
    }
    match setup(&args, &sync) {
        Ok(Some(exec)) => exec.run(),
        Ok(None) => exit(0),
        Err(e) => {
            let _ = sync.send(&Msg::Error(format!("{e:#}")));
            exit(1)
        }
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process at once, without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

fn has_new(cfg: &Config, t: LinuxNamespaceType) -> bool {
    cfg.spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t && n.path().is_none()))
}

fn joined(cfg: &Config, t: LinuxNamespaceType) -> Option<PathBuf> {
    cfg.spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| {
            ns.iter()
                .find(|n| n.typ() == t)
                .and_then(|n| n.path().clone())
        })
}

/// The prepared exec of the user's process.
pub struct Exec {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    fifo: Option<RawFd>,
    start_hooks: Vec<oci_spec::runtime::Hook>,
    hook_state: String,
    /// Host pid of this process (for the seccomp listener).
    pid: i32,
    /// Loaded right before execve (with no_new_privs, no privilege is needed for it).
    seccomp: Option<crate::seccomp::Compiled>,
    /// Where a failed execve is reported (the sync socket of `exec`), close-on-exec.
    report: Option<RawFd>,
}

impl Exec {
    /// Report a failed execve as an error message on `fd` (a sync socket) before exiting.
    pub fn report_exec_errors_to(&mut self, fd: RawFd) {
        self.report = Some(fd);
    }

    /// Wait for `start` (when there is a fifo), run startContainer hooks, exec.
    pub fn run(self) -> ! {
        if let Some(fifo) = self.fifo {
            let mut b = [0u8; 1];
            loop {
                // SAFETY: reading one byte into a valid buffer.
                let n = unsafe { libc::read(fifo, b.as_mut_ptr().cast(), 1) };
                if n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                if n != 1 {
                    exit(1);
                }
                break;
            }
            // The fifo stays open (close-on-exec) until the exec: `start` waits for it to close.
        }
        if let Err(e) = crate::hooks::run("startContainer", &self.start_hooks, &self.hook_state) {
            eprintln!("berth-runtime: {e:#}");
            exit(1);
        }
        if let Some(s) = &self.seccomp
            && let Err(e) = s.load(&self.hook_state, self.pid)
        {
            eprintln!("berth-runtime: {e:#}");
            exit(1);
        }
        unblock_signals();
        let argv: Vec<*const libc::c_char> = self
            .argv
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp: Vec<*const libc::c_char> = self
            .envp
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        // SAFETY: argv and envp are NULL-terminated arrays of valid C strings.
        unsafe { libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let e = std::io::Error::last_os_error();
        eprintln!("berth-runtime: exec {}: {e}", self.path.to_string_lossy());
        if let Some(fd) = self.report {
            // SAFETY: the sync socket handed over by `exec`; this process exits right after.
            let sync = Sync(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) });
            let _ = sync.send(&Msg::Error(format!(
                "exec {}: {e}",
                self.path.to_string_lossy()
            )));
        }
        exit(if e.raw_os_error() == Some(libc::ENOENT) {
            127
        } else {
            126
        })
    }
}

/// Unblock every signal and restore default dispositions before exec.
pub fn unblock_signals() {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it; sigprocmask with a valid set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

fn setup(args: &InitArgs, sync: &Sync) -> Result<Option<Exec>> {
    let cfg = args.cfg;
    let spec = &cfg.spec;
    let process = spec.process().as_ref().expect("validated");
    // A session of its own, as runc's init has (its nsexec calls setsid): the container does
    // not share the caller's session and its job-control signals, and CRIU can checkpoint it
    // (it refuses a tree whose session leader is outside the container). With a terminal,
    // setup_console's setsid then fails harmlessly and TIOCSCTTY works the same.
    // SAFETY: setsid has no arguments; this process is a fork that leads no group yet.
    unsafe { libc::setsid() };
    if !args.cgroup_join.is_empty() {
        // Single-threaded, writing 0 to the v1 `tasks` files: no RCU grace period to wait for
        // (as a `cgroup.procs` write has), and the parent's own write (v2, unified) then
        // overlaps the setup below.
        berth_cgroups::join_self(&args.cgroup_join).context("join the container's cgroup")?;
        sync.send(&Msg::Joined)?;
    }
    if args.needs_maps {
        sync.send(&Msg::NeedMaps)?;
        sync.expect(Msg::MapsDone)
            .context("waiting for the id maps")?;
        become_root()?;
    }
    let hook_state = match sync.recv()? {
        Some(Msg::Proceed(state)) => state,
        Some(Msg::Error(e)) => bail!("{e}"),
        _ => return Ok(None),
    };
    if !args.no_new_keyring {
        // A fresh anonymous session keyring, so the container cannot read the host's keys.
        // SAFETY: KEYCTL_JOIN_SESSION_KEYRING with a null name takes no memory.
        let r = unsafe { libc::syscall(libc::SYS_keyctl, 1, std::ptr::null::<libc::c_char>()) };
        let err = std::io::Error::last_os_error().raw_os_error();
        if r < 0
            && !matches!(
                err,
                Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EPERM)
            )
        {
            bail!(
                "join a new session keyring: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    let userns =
        has_new(cfg, LinuxNamespaceType::User) || joined(cfg, LinuxNamespaceType::User).is_some();
    let cgroupns = has_new(cfg, LinuxNamespaceType::Cgroup);
    let host_mntns = !has_new(cfg, LinuxNamespaceType::Mount)
        && joined(cfg, LinuxNamespaceType::Mount).is_none();
    if cgroupns {
        // The namespace's root is the cgroup this process is in when it unshares.
        sync.expect(Msg::CgroupsDone)
            .context("waiting for the cgroup")?;
        sys::unshare(libc::CLONE_NEWCGROUP).context("unshare the cgroup namespace")?;
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).with_context(|| {
            format!("process.oomScoreAdj: cannot set {adj} (lowering it needs CAP_SYS_RESOURCE)")
        })?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: a valid buffer of the given length.
        sys::check(unsafe { libc::sethostname(h.as_ptr().cast(), h.len()) })
            .with_context(|| format!("hostname: sethostname {h:?}"))?;
    }
    // As runc: a network namespace made for the container has its loopback up, before the
    // container's process can want it.
    let new_netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Network && n.path().is_none()
            })
        });
    if new_netns {
        loopback_up();
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: a valid buffer of the given length.
        sys::check(unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) })
            .with_context(|| format!("domainname: setdomainname {d:?}"))?;
    }

    let rs = RootfsSetup {
        spec,
        rootfs: &cfg.rootfs,
        bundle: &cfg.bundle,
        userns,
        cgroupns,
        cgroup_path: args.cgroup_path,
        idmapped: &args.idmapped,
        host_mntns,
    };
    let root = rootfs::prepare_root(&rs)?;
    rootfs::mount_all(&rs, &root)?;
    rootfs::create_devices(&rs, &root)?;
    if process.terminal() == Some(true) {
        setup_terminal(&root, args.console, process)?;
    }
    drop(root);
    if !cgroupns {
        // Hooks and the process itself start inside the cgroup.
        sync.expect(Msg::CgroupsDone)
            .context("waiting for the cgroup")?;
    }
    if let Some(hooks) = spec.hooks() {
        #[allow(deprecated)]
        let runtime_hooks = hooks
            .prestart()
            .iter()
            .chain(hooks.create_runtime().iter())
            .flatten()
            .count();
        if runtime_hooks > 0 {
            sync.send(&Msg::RunHooks)?;
            sync.expect(Msg::HooksDone)?;
        }
        if let Some(h) = hooks.create_container() {
            crate::hooks::run("createContainer", h, &hook_state)?;
        }
    }
    // Compiled here, with the listener (a host path) connected before we leave the host's root.
    let mut seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()?;
    if let Some(s) = &mut seccomp {
        s.connect()?;
    }
    rootfs::enter_root(&cfg.rootfs, args.no_pivot, host_mntns)?;
    reopen_dev_null()?;
    for (k, v) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        write_sysctl(k, v).with_context(|| format!("linux.sysctl: {k}={v}"))?;
    }
    // A missing working directory is created (as runc does), before / may become read-only.
    std::fs::create_dir_all(process.cwd()).ok();
    rootfs::finalize(spec, userns)?;
    if let Some(linux) = spec.linux() {
        if let Some(p) = linux.personality() {
            crate::attrs::personality(p)?;
        }
        if let Some(p) = linux.memory_policy() {
            crate::attrs::memory_policy(p)?;
        }
    }

    let created_state = hook_state.replace("\"creating\"", "\"created\"");
    let init_pid = serde_json::from_str::<serde_json::Value>(&created_state)
        .ok()
        .and_then(|v| v["pid"].as_i64())
        .unwrap_or(0) as i32;
    let mut exec = prepare_process(
        process,
        args.fifo,
        args.preserve_fds,
        seccomp,
        &created_state,
        init_pid,
    )?;
    exec.start_hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
        .unwrap_or_default();

    sync.send(&Msg::Ready)?;
    match sync.recv() {
        Ok(Some(Msg::Ack)) => {}
        _ => exit(1),
    }
    Ok(Some(exec))
}

/// After the id maps are written: become root of the new user namespace.
fn become_root() -> Result<()> {
    // SAFETY: setresgid/setresuid have no memory arguments.
    sys::check(unsafe { libc::setresgid(0, 0, 0) })
        .context("setresgid(0) in the user namespace")?;
    // SAFETY: as above.
    sys::check(unsafe { libc::setresuid(0, 0, 0) })
        .context("setresuid(0) in the user namespace")?;
    Ok(())
}

/// Standard descriptors that are the host's /dev/null are reopened from the container's own
/// (as runc's reOpenDevNull does): the host's device node is on a mount the container cannot
/// see, which CRIU cannot checkpoint ("Can't lookup mount for fd=0 path=/dev/null"), and
/// /proc/self/fd/0 should name a file inside the container.
fn reopen_dev_null() -> Result<()> {
    // SAFETY: stat is plain data, filled in by stat(2).
    let mut ours: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and stat buffer.
    if unsafe { libc::stat(c"/dev/null".as_ptr(), &mut ours) } != 0 {
        return Ok(()); // no /dev/null in the container: nothing to reopen onto
    }
    for fd in 0..3 {
        // SAFETY: as above.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat of a descriptor number into a valid buffer.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue;
        }
        // Reopened even when it is the same inode: in a user namespace the container's
        // /dev/null is a bind of the host's node, and the same inode on the host's mount is
        // still outside.
        let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == ours.st_rdev;
        if !is_null {
            continue;
        }
        // SAFETY: fcntl F_GETFL on an open descriptor.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) } & libc::O_ACCMODE;
        // SAFETY: a valid C string; the new descriptor is closed below.
        let new = sys::check(unsafe { libc::open(c"/dev/null".as_ptr(), flags | libc::O_CLOEXEC) })
            .context("reopen /dev/null inside the container")?;
        // SAFETY: dup2 of the new descriptor onto a standard one (clears close-on-exec), then
        // the temporary is closed.
        unsafe {
            let r = libc::dup2(new, fd);
            libc::close(new);
            sys::check(r).context("reopen /dev/null inside the container")?;
        }
    }
    Ok(())
}

fn write_sysctl(key: &str, value: &str) -> Result<()> {
    if key.contains("..") || key.contains('/') && key.contains('.') {
        bail!("invalid key");
    }
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    std::fs::write(&path, value).with_context(|| format!("write {}", path.display()))
}

fn setup_terminal(root: &OwnedFd, console: Option<RawFd>, process: &Process) -> Result<()> {
    let console = console.context("process.terminal is true but no --console-socket was given")?;
    attach_terminal(root, console, process, true)
}

/// Make a pty in the container's devpts, send its master to `console`, and make its slave the
/// controlling terminal and stdio of this process (bound on /dev/console with `mount_console`).
pub fn attach_terminal(
    root: &OwnedFd,
    console: RawFd,
    process: &Process,
    mount_console: bool,
) -> Result<()> {
    let master = sys::open_in_root(
        root.as_raw_fd(),
        Path::new("/dev/pts/ptmx"),
        libc::O_RDWR | libc::O_NOCTTY,
        0,
    )
    .context("open /dev/pts/ptmx (is devpts mounted on /dev/pts with newinstance?)")?;
    // SAFETY: unlockpt on the master descriptor.
    sys::check(unsafe { libc::unlockpt(master.as_raw_fd()) }).context("unlockpt")?;
    // SAFETY: TIOCGPTPEER returns a new descriptor of the slave, opened inside our devpts.
    let slave = sys::check(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })
    .context("open the terminal's slave")?;
    // SAFETY: ioctl returned a new descriptor that nothing else owns.
    let slave: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(slave) };
    if let Some(size) = process.console_size() {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    if mount_console {
        rootfs::mount_console(root, &sys::fd_path(&slave))?;
    }
    berth_sys::fdpass::send_fds(&console, &[master.as_raw_fd()], b"/dev/ptmx")
        .context("send the terminal to --console-socket")?;
    drop(master);
    // SAFETY: setsid and the controlling-terminal ioctl on our own descriptor.
    unsafe {
        libc::setsid();
        sys::check(libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0))
            .context("make the terminal the controlling terminal")?;
    }
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        sys::check(unsafe { libc::dup2(slave.as_raw_fd(), fd) }).context("dup2 terminal")?;
    }
    Ok(())
}

/// Everything between the container's setup and the exec: env, cwd, rlimits, user,
/// capabilities, no_new_privs, descriptors. Shared by the init and `exec`.
pub fn prepare_process(
    process: &Process,
    fifo: Option<RawFd>,
    preserve_fds: u32,
    seccomp: Option<crate::seccomp::Compiled>,
    state: &str,
    pid: i32,
) -> Result<Exec> {
    let nnp = process.no_new_privileges() == Some(true);
    let user = process.user();
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    let mut preserve = preserve_fds;
    if let Some(n) = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        preserve += n;
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(user.uid())));
    }

    // The working directory: create it if missing, then make sure it is inside the container
    // (a leaked descriptor path like /proc/self/fd/N would be outside: CVE-2024-21626).
    let cwd = process.cwd();
    std::env::set_current_dir(cwd)
        .with_context(|| format!("process.cwd: chdir {}", cwd.display()))?;
    match std::env::current_dir() {
        Ok(p) if p.is_absolute() => {}
        _ => bail!(
            "process.cwd: {} resolves outside the container",
            cwd.display()
        ),
    }

    let args0 = &process.args().as_ref().expect("validated")[0];
    let path = find_executable(args0, &env)?;

    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        set_rlimit(r.typ(), r.soft(), r.hard())
            .with_context(|| format!("process.rlimits[{i}] ({:?})", r.typ()))?;
    }

    // Scheduling attributes need the privileges we drop below.
    if let Some(s) = process.scheduler() {
        crate::attrs::scheduler(s)?;
    }
    if let Some(p) = process.io_priority() {
        crate::attrs::io_priority(p.class(), p.priority())?;
    }
    if let Some(a) = process.exec_cpu_affinity() {
        crate::attrs::exec_cpu_affinity(a)?;
    }

    // Without no_new_privs, loading the filter needs CAP_SYS_ADMIN: load it before the drop.
    if !nnp && let Some(s) = &seccomp {
        s.load(state, pid)?;
    }

    // Identity: groups, gid, then capabilities around the uid change.
    let gids: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    // SAFETY: gids is a valid array of the given length.
    let r = unsafe { libc::setgroups(gids.len(), gids.as_ptr()) };
    if r < 0 && !gids.is_empty() {
        return Err(std::io::Error::last_os_error())
            .context("process.user.additionalGids: setgroups");
    }
    // SAFETY: no memory arguments.
    sys::check(unsafe { libc::setresgid(user.gid(), user.gid(), user.gid()) })
        .with_context(|| format!("process.user.gid: setresgid {}", user.gid()))?;
    let caps = process.capabilities().as_ref();
    if let Some(c) = caps {
        let bounding = to_caps(c.bounding())?;
        for cap in caps::all() {
            if !bounding.contains(&cap) {
                // Capabilities the kernel does not know fail with EINVAL: nothing to drop.
                let _ = caps::drop(None, caps::CapSet::Bounding, cap);
            }
        }
    }
    sys::prctl(libc::PR_SET_KEEPCAPS, 1).context("keep capabilities across setuid")?;
    // SAFETY: no memory arguments.
    sys::check(unsafe { libc::setresuid(user.uid(), user.uid(), user.uid()) })
        .with_context(|| format!("process.user.uid: setresuid {}", user.uid()))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0)?;
    if let Some(c) = caps {
        let permitted = to_caps(c.permitted())?;
        let effective = to_caps(c.effective())?;
        let inheritable = to_caps(c.inheritable())?;
        // Inheritable first (it may only grow while we hold CAP_SETPCAP), then effective
        // (which must stay within permitted), then permitted.
        caps::set(None, caps::CapSet::Inheritable, &inheritable)
            .context("process.capabilities.inheritable")?;
        if !effective.is_subset(&permitted) {
            bail!("process.capabilities.effective: must be a subset of permitted");
        }
        caps::set(None, caps::CapSet::Effective, &effective)
            .context("process.capabilities.effective")?;
        caps::set(None, caps::CapSet::Permitted, &permitted)
            .context("process.capabilities.permitted")?;
        caps::clear(None, caps::CapSet::Ambient).ok();
        // The kernel only allows ambient capabilities that are permitted and inheritable;
        // runc skips the others, and so do we.
        for cap in to_caps(c.ambient())?
            .into_iter()
            .filter(|c| permitted.contains(c) && inheritable.contains(c))
        {
            caps::raise(None, caps::CapSet::Ambient, cap)
                .with_context(|| format!("process.capabilities.ambient: {cap}"))?;
        }
    }
    if let Some(mask) = user.umask() {
        // SAFETY: no memory arguments.
        unsafe { libc::umask(mask) };
    }
    if process.no_new_privileges() == Some(true) {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).context("process.noNewPrivileges")?;
    }

    // Everything but stdio and the preserved descriptors closes at exec.
    for fd in 3..3 + preserve {
        sys::clear_cloexec(fd as RawFd)
            .with_context(|| format!("--preserve-fds: descriptor {fd} is not open"))?;
    }
    sys::cloexec_from(3 + preserve)?;

    let argv = process
        .args()
        .as_ref()
        .expect("validated")
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .context("process.args: contains a NUL byte")?;
    let envp = env
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .context("process.env: contains a NUL byte")?;
    Ok(Exec {
        report: None,
        path: CString::new(path.as_os_str().as_bytes())?,
        argv,
        envp,
        fifo,
        start_hooks: Vec::new(),
        hook_state: state.to_string(),
        pid,
        seccomp: if nnp { seccomp } else { None },
    })
}

fn to_caps(
    set: &Option<oci_spec::runtime::Capabilities>,
) -> Result<std::collections::HashSet<caps::Capability>> {
    set.iter()
        .flatten()
        .map(|c| {
            let name = format!("CAP_{c}");
            name.parse::<caps::Capability>()
                .map_err(|_| anyhow::anyhow!("unknown capability {name}"))
        })
        .collect()
}

fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".into())
}

/// Look `name` up in the container's PATH, as execvp would (and as runc reports it).
fn find_executable(name: &str, env: &[String]) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        if !p.exists() {
            bail!("exec: {name:?}: no such file or directory");
        }
        if !is_exec(&p) {
            bail!("exec: {name:?}: permission denied (not an executable file)");
        }
        return Ok(p);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(name);
        if is_exec(&p) {
            return Ok(p);
        }
    }
    bail!("exec: {name:?}: executable file not found in $PATH")
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn set_rlimit(t: PosixRlimitType, soft: u64, hard: u64) -> Result<()> {
    let res = rlimit_resource(t);
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: cur is a valid out-pointer.
    sys::check(unsafe { libc::getrlimit(res, &mut cur) })?;
    let new = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: new is a valid rlimit.
    if unsafe { libc::setrlimit(res, &new) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) && hard > cur.rlim_max {
            bail!(
                "cannot raise the hard limit from {} to {hard}: that needs CAP_SYS_RESOURCE, which this host does not give",
                cur.rlim_max
            );
        }
        return Err(e).context("setrlimit");
    }
    Ok(())
}

/// Sets `lo` up in our network namespace (best effort: without CAP_NET_ADMIN it stays down).
fn loopback_up() {
    // SAFETY: a plain socket for the ioctl.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return;
    }
    // SAFETY: ifreq is plain data; the name is NUL-terminated within IFNAMSIZ.
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr);
        }
        libc::close(s);
    }
}
