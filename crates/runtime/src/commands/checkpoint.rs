//! `checkpoint` and `restore`: a running container saved to CRIU images and brought back, with
//! runc's flags (what containerd's go-runc and podman pass).
//!
//! What crosses the container's boundary is declared to CRIU, as runc does:
//! - bind mounts (the engine's /etc/hosts, volumes) are external mounts, keyed by their
//!   destination; at restore the key maps to the bind's source in the (new) bundle;
//! - without a cgroup namespace, the per-hierarchy binds of the container's own cgroups too;
//! - namespaces joined by path (the network namespace an engine made, a pod's) are external:
//!   `net[INODE]:extRootNetNS`, and the restore hands the new one in as an inherited descriptor;
//! - the standard descriptors are listed in `descriptors.json` in the images; pipes among them
//!   are replaced at restore by the restoring process's own (the engine's new pipes);
//! - a terminal's master is the engine's: the pty is dumped as an orphan slave
//!   (`orphan_pts_master`); at restore CRIU makes a new pair and hands us its master, which goes
//!   to `--console-socket`.
//!
//! A failed checkpoint leaves the container running (CRIU resumes it); a failed restore leaves
//! nothing (no state, cgroup or process).

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::config;
use crate::create::{self, CreateOpts};
use crate::criu::{self, CgMode, Criu, ExtMountMap, InheritFd, Opts, Req, req_type};
use crate::hooks;
use crate::state::{self, Container, Status};
use crate::sys;

/// The file in the images with the container's standard descriptors at checkpoint.
const DESCRIPTORS: &str = "descriptors.json";

/// Flags shared by `checkpoint` and `restore`.
#[derive(Debug, Clone, Default)]
pub struct CommonOpts {
    /// Path to the criu binary (`--criu`).
    pub criu: Option<String>,
    /// Where the images are (`--image-path`, default ./checkpoint).
    pub image_path: Option<PathBuf>,
    /// Where criu's logs go (`--work-path`, default: the image path).
    pub work_path: Option<PathBuf>,
    /// Checkpoint/restore established TCP connections.
    pub tcp_established: bool,
    /// Allow external unix sockets.
    pub ext_unix_sk: bool,
    /// The process is a shell job (its session is outside).
    pub shell_job: bool,
    /// Checkpoint/restore file locks.
    pub file_locks: bool,
    /// soft, full, strict or ignore.
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces to make empty instead of restoring (only `network`).
    pub empty_ns: Vec<String>,
    /// Post-copy: memory pages are fetched on demand at restore.
    pub lazy_pages: bool,
    /// Deduplicate pages against the parent images.
    pub auto_dedup: bool,
}

/// `checkpoint`'s own flags.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOpts {
    /// Shared flags.
    pub common: CommonOpts,
    /// Images of a previous pre-dump, relative to the image path.
    pub parent_path: Option<PathBuf>,
    /// Keep the container running after the checkpoint.
    pub leave_running: bool,
    /// Serve pages to ADDRESS:PORT instead of writing them.
    pub page_server: Option<String>,
    /// Only dump memory (for iterative migration).
    pub pre_dump: bool,
    /// criu writes a byte here when a lazy-pages dump is ready for restore.
    pub status_fd: Option<RawFd>,
}

/// `restore`'s own flags.
#[derive(Debug, Clone, Default)]
pub struct RestoreOpts {
    /// Shared flags.
    pub common: CommonOpts,
    /// Bundle, pid file, console socket, no-pivot.
    pub create: CreateOpts,
    /// Return once restored.
    pub detach: bool,
    /// AppArmor/SELinux profile for the restored process.
    pub lsm_profile: Option<String>,
}

fn image_dir(o: &CommonOpts) -> PathBuf {
    o.image_path
        .clone()
        .unwrap_or_else(|| PathBuf::from("checkpoint"))
}

fn open_dir(p: &Path) -> Result<OwnedFd> {
    Ok(File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(p)
        .with_context(|| format!("open {}", p.display()))?
        .into())
}

fn make_dir(p: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .with_context(|| format!("create {}", p.display()))
}

fn cg_mode(o: &CommonOpts) -> Result<CgMode> {
    o.manage_cgroups_mode
        .as_deref()
        .map(CgMode::parse)
        .transpose()
        .map(|m| m.unwrap_or(CgMode::Soft))
}

fn empty_ns(o: &CommonOpts) -> Result<u32> {
    let mut flags = 0;
    for n in &o.empty_ns {
        match n.as_str() {
            "network" | "net" => flags |= criu::EMPTY_NS_NET,
            _ => bail!("--empty-ns: {n:?}: only the network namespace can be left empty"),
        }
    }
    Ok(flags)
}

fn base_opts(o: &CommonOpts, images: &OwnedFd, work: &OwnedFd, log: &str) -> Result<Opts> {
    Ok(Opts {
        images_dir_fd: images.as_raw_fd(),
        work_dir_fd: Some(work.as_raw_fd()),
        log_level: Some(4),
        log_file: Some(log.to_string()),
        tcp_established: Some(o.tcp_established),
        ext_unix_sk: Some(o.ext_unix_sk),
        shell_job: Some(o.shell_job),
        file_locks: Some(o.file_locks),
        manage_cgroups: Some(true),
        manage_cgroups_mode: Some(cg_mode(o)? as i32),
        lazy_pages: o.lazy_pages.then_some(true),
        auto_dedup: o.auto_dedup.then_some(true),
        empty_ns: Some(empty_ns(o)?).filter(|f| *f != 0),
        ..Default::default()
    })
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    namespaces(spec).any(|n| n.typ() == t)
}

fn namespaces(spec: &Spec) -> impl Iterator<Item = &oci_spec::runtime::LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
}

/// Namespaces joined by path that CRIU can take as external: (type key, inherit key, path).
fn external_namespaces(spec: &Spec, empty: u32) -> Vec<(&'static str, &'static str, PathBuf)> {
    namespaces(spec)
        .filter_map(|n| {
            let p = n.path().clone()?;
            match n.typ() {
                LinuxNamespaceType::Network if empty & criu::EMPTY_NS_NET == 0 => {
                    Some(("net", "extRootNetNS", p))
                }
                LinuxNamespaceType::Pid => Some(("pid", "extRootPidNS", p)),
                _ => None,
            }
        })
        .collect()
}

/// The cgroup v1/v2 hierarchies bound into a container without a cgroup namespace, as
/// (destination inside the container, host mount point of the hierarchy).
fn cgroup_binds(spec: &Spec) -> Result<Vec<(PathBuf, PathBuf)>> {
    if has_ns(spec, LinuxNamespaceType::Cgroup) {
        return Ok(Vec::new()); // mounted anew inside, which CRIU restores itself
    }
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        if !matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) {
            continue;
        }
        let dest = m.destination();
        for h in berth_sys::mountinfo::read()? {
            if !matches!(h.fs_type.as_str(), "cgroup" | "cgroup2")
                || !h.mount_point.starts_with("/sys/fs/cgroup")
            {
                continue;
            }
            let rel = h
                .mount_point
                .strip_prefix("/sys/fs/cgroup")
                .unwrap_or(Path::new(""));
            out.push((dest.join(rel), h.mount_point.clone()));
        }
    }
    Ok(out)
}

/// `checkpoint ID`.
pub fn checkpoint(root: &Path, id: &str, o: &CheckpointOpts) -> Result<()> {
    let criu = Criu::new(o.common.criu.as_deref());
    let c = Container::load(root, id)?;
    match c.status() {
        Status::Running | Status::Paused => {}
        s => bail!(
            "cannot checkpoint container {id} that is {}: only a running or paused container can be checkpointed",
            s.as_str()
        ),
    }
    criu.require_usable()?;
    if o.pre_dump || o.common.lazy_pages {
        let f = criu.features()?;
        if o.pre_dump && f.mem_track != Some(true) {
            bail!(
                "--pre-dump needs memory change tracking (soft-dirty bits, CONFIG_MEM_SOFT_DIRTY), which this kernel does not offer: checkpoint without --pre-dump (stop and copy)"
            );
        }
        if o.common.lazy_pages && f.lazy_pages != Some(true) {
            bail!("--lazy-pages needs userfaultfd, which this kernel does not offer");
        }
    }
    let s = c.saved().clone();
    let cfg = config::load(&s.bundle)?;
    let images = image_dir(&o.common);
    make_dir(&images)?;
    let work = o.common.work_path.clone().unwrap_or_else(|| images.clone());
    make_dir(&work)?;
    let images_fd = open_dir(&images)?;
    let work_fd = open_dir(&work)?;
    let mut opts = base_opts(&o.common, &images_fd, &work_fd, "dump.log")?;
    opts.pid = Some(s.pid);
    opts.root = Some(s.rootfs.to_string_lossy().into_owned());
    opts.leave_running = Some(o.leave_running || o.pre_dump);
    if let Some(p) = &o.parent_path {
        opts.parent_img = Some(p.to_string_lossy().into_owned());
    }
    if o.pre_dump {
        opts.track_mem = Some(true);
    }
    if let Some(ps) = &o.page_server {
        let (addr, port) = ps
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("--page-server: {ps:?} is not ADDRESS:PORT"))?;
        let port: i32 = port
            .parse()
            .map_err(|_| anyhow!("--page-server: {port:?} is not a port"))?;
        opts.ps = Some(criu::PageServerInfo {
            address: Some(addr.to_string()),
            port: Some(port),
        });
    }
    if let Some(fd) = o.status_fd {
        opts.status_fd = Some(fd);
    }
    opts.freeze_cgroup = freezer_dir(s.pid)?;
    for m in cfg.spec.mounts().iter().flatten().filter(|m| is_bind(m)) {
        let d = m.destination().to_string_lossy().into_owned();
        opts.ext_mnt.push(ExtMountMap {
            key: d.clone(),
            val: d,
        });
    }
    // In a user namespace the devices are binds of the host's nodes: external, as binds are.
    for dest in crate::rootfs::userns_device_binds(&cfg.spec)
        .into_iter()
        .chain(cgroup_binds(&cfg.spec)?.into_iter().map(|(d, _)| d))
    {
        let d = dest.to_string_lossy().into_owned();
        opts.ext_mnt.push(ExtMountMap {
            key: d.clone(),
            val: d,
        });
    }
    for (kind, key, path) in external_namespaces(&cfg.spec, opts.empty_ns.unwrap_or(0)) {
        let ino = std::fs::metadata(&path)
            .with_context(|| format!("stat namespace {}", path.display()))?;
        use std::os::unix::fs::MetadataExt;
        opts.external.push(format!("{kind}[{}]:{key}", ino.ino()));
    }
    // The standard descriptors, for the restore to replace pipes with its own.
    let mut descriptors = Vec::new();
    for fd in 0..3 {
        let l = std::fs::read_link(format!("/proc/{}/fd/{fd}", s.pid))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "/dev/null".into());
        descriptors.push(l);
    }
    if cfg
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        // The pty's master is outside (the engine's): the slave and /dev/console, a bind
        // of it, are dumped without it, and the restore makes a new pair whose master goes
        // to --console-socket.
        opts.orphan_pts_master = Some(true);
    }
    sys::write_atomic(
        &images.join(DESCRIPTORS),
        &serde_json::to_vec(&descriptors)?,
    )
    .with_context(|| format!("write {}", images.join(DESCRIPTORS).display()))?;
    let log = work.join("dump.log");
    let keep: Vec<RawFd> = [images_fd.as_raw_fd(), work_fd.as_raw_fd()]
        .into_iter()
        .chain(o.status_fd)
        .collect();
    crate::log::debug(|| format!("{id}: criu dump {opts:?}"));
    // A lazy dump lasts until the restore has fetched every page: `state` and `list` must
    // not wait on the container's lock for that long.
    let c = (!o.common.lazy_pages).then_some(c);
    criu.start(&keep)?.call(
        Req {
            typ: req_type::DUMP,
            opts: Some(opts),
            ..Default::default()
        },
        |_| Ok(()),
        Some(&log),
    )?;
    crate::log::debug(|| format!("{id}: checkpointed to {}", images.display()));
    drop(c);
    if !(o.leave_running || o.pre_dump) {
        // CRIU killed the processes; what is left goes, as runc's checkpoint destroys it.
        super::delete(root, id, true)?;
    }
    Ok(())
}

/// The freezer cgroup directory of a process (v1 freezer, or its v2 cgroup).
fn freezer_dir(pid: i32) -> Result<Option<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("read /proc/{pid}/cgroup"))?;
    let mounts = berth_sys::mountinfo::read()?;
    let mut v2 = None;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let rel = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == "freezer")
            && let Some(m) = mounts.iter().find(|m| {
                m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "freezer")
            })
        {
            return Ok(Some(m.mount_point.join(rel).to_string_lossy().into_owned()));
        }
        if ctrls.is_empty() {
            v2 = mounts
                .iter()
                .find(|m| m.fs_type == "cgroup2")
                .map(|m| m.mount_point.join(rel).to_string_lossy().into_owned());
        }
    }
    Ok(v2)
}

/// Undoes a half-restored container when dropped, unless disarmed.
struct Cleanup {
    dir: PathBuf,
    cgroup: Option<Box<dyn berth_cgroups::Manager>>,
    criu_root: Option<PathBuf>,
    armed: bool,
}

impl Cleanup {
    fn unmount_root(&mut self) {
        if let Some(r) = self.criu_root.take() {
            let _ = sys::umount2(&r, libc::MNT_DETACH);
            let _ = std::fs::remove_dir(&r);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.unmount_root();
        if !self.armed {
            return;
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.freeze(berth_cgroups::FreezerState::Frozen);
            for p in cg.pids().unwrap_or_default() {
                let _ = sys::kill(p, libc::SIGKILL);
            }
            let _ = cg.freeze(berth_cgroups::FreezerState::Thawed);
            for _ in 0..2000 {
                if cg.pids().map(|p| p.is_empty()).unwrap_or(true) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = cg.destroy();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `restore ID`; returns the exit code (the container's, without `--detach`).
pub fn restore(root: &Path, id: &str, o: &RestoreOpts) -> Result<i32> {
    let criu = Criu::new(o.common.criu.as_deref());
    let cfg = config::load(&o.create.bundle)?;
    criu.require_usable()?;
    let images = image_dir(&o.common);
    let images_fd = open_dir(&images).context("--image-path")?;
    let work = o.common.work_path.clone().unwrap_or_else(|| images.clone());
    make_dir(&work)?;
    let work_fd = open_dir(&work)?;
    let descriptors: Vec<String> = match std::fs::read(images.join(DESCRIPTORS)) {
        Ok(d) => serde_json::from_slice(&d)
            .with_context(|| format!("{}: not a list of descriptors", DESCRIPTORS))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("read {DESCRIPTORS}")),
    };
    let linux = cfg.spec.linux().as_ref().expect("validated");
    let process = cfg.spec.process().as_ref().expect("validated");
    let terminal = process.terminal() == Some(true);
    let console = match (&o.create.console_socket, terminal) {
        (Some(p), true) => Some(
            UnixStream::connect(p)
                .with_context(|| format!("--console-socket: connect {}", p.display()))?,
        ),
        (Some(_), false) => bail!("--console-socket was given but process.terminal is false"),
        (None, true) => {
            bail!("process.terminal is true: --console-socket is required with restore")
        }
        (None, false) => None,
    };

    let mut container = Container::create(root, id)?;
    let mut cleanup = Cleanup {
        dir: container.dir.clone(),
        cgroup: None,
        criu_root: None,
        armed: true,
    };
    let cgroups_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    sys::write_atomic(
        &container.dir.join(state::CGROUP_FILE),
        &serde_json::to_vec(&cgroups_path)?,
    )
    .context("record the container's cgroup path")?;
    let cg = berth_cgroups::manager(cgroups_path.as_deref(), id).context("linux.cgroupsPath")?;
    cg.create().context("create the container's cgroup")?;
    let cg = cleanup.cgroup.insert(cg);
    cg.apply(&create::effective_resources(linux)?)
        .context("linux.resources")?;

    crate::rootfs::make_mountpoints(&cfg.rootfs, &cfg.spec, &cfg.bundle)?;
    // The root directory gets the mode it was dumped with (see criu::dumped_root_mode).
    if let Some(mode) = criu::dumped_root_mode(&images) {
        use std::os::unix::fs::PermissionsExt;
        let now = std::fs::metadata(&cfg.rootfs)
            .with_context(|| format!("stat {}", cfg.rootfs.display()))?;
        if now.permissions().mode() & 0o7777 != mode & 0o7777 {
            std::fs::set_permissions(&cfg.rootfs, std::fs::Permissions::from_mode(mode & 0o7777))
                .with_context(|| format!("chmod {}", cfg.rootfs.display()))?;
        }
    }
    // CRIU pivots into the root it restores: a mount point of its own.
    // Absolute: criu resolves it after changing directory (a relative --root would not do).
    let criu_root = std::path::absolute(container.dir.join("criu-root"))
        .context("the state directory's absolute path")?;
    make_dir(&criu_root)?;
    sys::mount(
        Some(&cfg.rootfs),
        &criu_root,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .with_context(|| format!("bind {} for criu", cfg.rootfs.display()))?;
    cleanup.criu_root = Some(criu_root.clone());
    sys::mount(
        None,
        &criu_root,
        None,
        libc::MS_PRIVATE | libc::MS_REC,
        None,
    )
    .context("make criu's root private")?;

    let mut opts = base_opts(&o.common, &images_fd, &work_fd, "restore.log")?;
    opts.root = Some(criu_root.to_string_lossy().into_owned());
    opts.rst_sibling = Some(true);
    opts.notify_scripts = Some(true);
    opts.orphan_pts_master = terminal.then_some(true);
    opts.lsm_profile = o.lsm_profile.clone();
    for m in cfg.spec.mounts().iter().flatten().filter(|m| is_bind(m)) {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| anyhow!("mounts: {} has no source", m.destination().display()))?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            cfg.bundle.join(src)
        };
        opts.ext_mnt.push(ExtMountMap {
            key: m.destination().to_string_lossy().into_owned(),
            val: src.to_string_lossy().into_owned(),
        });
    }
    for dev in crate::rootfs::userns_device_binds(&cfg.spec) {
        let d = dev.to_string_lossy().into_owned();
        opts.ext_mnt.push(ExtMountMap {
            key: d.clone(),
            val: d, // the host's node
        });
    }
    for (dest, hierarchy) in cgroup_binds(&cfg.spec)? {
        opts.ext_mnt.push(ExtMountMap {
            key: dest.to_string_lossy().into_owned(),
            val: hierarchy
                .join(cg.path().strip_prefix("/").unwrap_or(cg.path()))
                .to_string_lossy()
                .into_owned(),
        });
    }
    let mut keep: Vec<OwnedFd> = Vec::new();
    for (_, key, path) in external_namespaces(&cfg.spec, opts.empty_ns.unwrap_or(0)) {
        let f: OwnedFd = File::open(&path)
            .with_context(|| format!("open namespace {}", path.display()))?
            .into();
        opts.inherit_fd.push(InheritFd {
            key: key.to_string(),
            fd: f.as_raw_fd(),
        });
        keep.push(f);
    }
    for (fd, d) in descriptors.iter().enumerate().take(3) {
        if d.starts_with("pipe:") {
            opts.inherit_fd.push(InheritFd {
                key: d.clone(),
                fd: fd as i32,
            });
        }
    }
    let mut keep_raw: Vec<RawFd> = keep.iter().map(|f| f.as_raw_fd()).collect();
    keep_raw.extend([images_fd.as_raw_fd(), work_fd.as_raw_fd()]);

    let mask = (!o.detach).then(super::run::block_signals);
    if !o.detach {
        sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1)?;
    }
    let session = criu.start(&keep_raw)?;
    // criu and so the processes it forks start in the container's cgroup; each controller's
    // tree is restored below it.
    cg.add_task(session.pid())
        .context("put criu in the container's cgroup")?;
    opts.cg_root = cgroup_roots(session.pid())?;
    let annotations = cfg.spec.annotations().clone().unwrap_or_default();
    let mut restored_pid = 0;
    let log = work.join("restore.log");
    crate::log::debug(|| format!("{id}: criu restore {opts:?}"));
    let resp = session.call(
        Req {
            typ: req_type::RESTORE,
            opts: Some(opts),
            ..Default::default()
        },
        |n| {
            match n.script {
                "setup-namespaces" => {
                    if let Some(h) = cfg.spec.hooks() {
                        let st = hooks::state_json(id, "created", n.pid, &cfg.bundle, &annotations);
                        #[allow(deprecated)]
                        hooks::run("prestart", h.prestart().as_deref().unwrap_or_default(), &st)?;
                        hooks::run(
                            "createRuntime",
                            h.create_runtime().as_deref().unwrap_or_default(),
                            &st,
                        )?;
                    }
                }
                "post-restore" => restored_pid = n.pid,
                "orphan-pts-master" => {
                    let master = n
                        .fd
                        .ok_or_else(|| anyhow!("criu sent no terminal with orphan-pts-master"))?;
                    let sock = console.as_ref().ok_or_else(|| {
                        anyhow!("a terminal was restored but there is no --console-socket")
                    })?;
                    berth_sys::fdpass::send_fds(sock, &[master.as_raw_fd()], b"/dev/ptmx")
                        .context("send the terminal to --console-socket")?;
                }
                _ => {}
            }
            Ok(())
        },
        Some(&log),
    )?;
    drop(keep);
    let pid = resp.restore.map(|r| r.pid).unwrap_or(restored_pid);
    if pid <= 0 {
        bail!("criu restored no process");
    }
    cleanup.unmount_root();
    let pid_start = berth_sys::proc::stat(pid)
        .ok_or_else(|| anyhow!("the restored process {pid} vanished"))?
        .start_time;
    let saved = create::saved_state(&cfg, id, pid, pid_start)?;
    container.save(saved)?;
    if let Some(pid_file) = &o.create.pid_file {
        sys::write_atomic(pid_file, pid.to_string().as_bytes())
            .with_context(|| format!("--pid-file {}", pid_file.display()))?;
    }
    cleanup.armed = false;
    crate::log::debug(|| format!("{id}: restored, pid {pid}"));
    drop(container);
    let Some(mask) = mask else {
        return Ok(0);
    };
    // SAFETY: a valid mask pointer.
    let sfd = sys::check(unsafe { libc::signalfd(-1, &mask, libc::SFD_CLOEXEC) })?;
    // SAFETY: signalfd returned a new descriptor nothing else owns.
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    let status = super::run::wait_loop(pid, &sfd, None)?;
    super::delete(root, id, true)?;
    Ok(sys::exit_code(status))
}

/// CRIU's cgroup roots: each controller's path of the (criu) process in the container's
/// cgroup, as runc computes them.
fn cgroup_roots(pid: i32) -> Result<Vec<criu::CgroupRoot>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("read /proc/{pid}/cgroup"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            Some(criu::CgroupRoot {
                ctrl: (!ctrls.is_empty()).then(|| ctrls.to_string()),
                path: path.to_string(),
            })
        })
        .collect())
}

/// Whether checkpoint/restore works here (for `features`): a criu >= 4.1 answers.
pub fn supported(criu: Option<&str>) -> bool {
    Criu::new(criu).require_usable().is_ok()
}
