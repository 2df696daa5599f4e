//! The container's root filesystem: mounts, devices, pivot_root, masked and read-only paths.
//!
//! Runs in the container's init, inside its new mount namespace (or, for a config that lists no
//! mount namespace, in the host's: then the rootfs is entered with chroot, the host's `/` is
//! left as it is, and `delete` unmounts what was made; see `hostmounts`). Every destination is
//! resolved
//! inside the rootfs with `openat2(RESOLVE_IN_ROOT)` and mounted through its `/proc/self/fd/N`
//! path, so a symlink planted in the rootfs (or swapped in during setup) cannot send a mount
//! outside it.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::sys;

/// What one entry of `mounts[].options` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOpt {
    /// Set (true) or clear (false) a mount flag.
    Flag(bool, libc::c_ulong),
    /// A propagation type applied after mounting.
    Propagation(libc::c_ulong),
    /// A recursive attribute (`rro`, `rnosuid`, ...) for mount_setattr.
    Recursive(bool, u64),
    /// Anything else goes to the filesystem as data (`size=64m`, `mode=755`).
    Data,
}

/// Classify a mount option as runc does.
pub fn mount_option(opt: &str) -> Option<MountOpt> {
    use MountOpt::*;
    Some(match opt {
        "defaults" => Flag(true, 0),
        "ro" => Flag(true, libc::MS_RDONLY),
        "rw" => Flag(false, libc::MS_RDONLY),
        "suid" => Flag(false, libc::MS_NOSUID),
        "nosuid" => Flag(true, libc::MS_NOSUID),
        "dev" => Flag(false, libc::MS_NODEV),
        "nodev" => Flag(true, libc::MS_NODEV),
        "exec" => Flag(false, libc::MS_NOEXEC),
        "noexec" => Flag(true, libc::MS_NOEXEC),
        "sync" => Flag(true, libc::MS_SYNCHRONOUS),
        "async" => Flag(false, libc::MS_SYNCHRONOUS),
        "dirsync" => Flag(true, libc::MS_DIRSYNC),
        "remount" => Flag(true, libc::MS_REMOUNT),
        "mand" => Flag(true, libc::MS_MANDLOCK),
        "nomand" => Flag(false, libc::MS_MANDLOCK),
        "atime" => Flag(false, libc::MS_NOATIME),
        "noatime" => Flag(true, libc::MS_NOATIME),
        "diratime" => Flag(false, libc::MS_NODIRATIME),
        "nodiratime" => Flag(true, libc::MS_NODIRATIME),
        "bind" => Flag(true, libc::MS_BIND),
        "rbind" => Flag(true, libc::MS_BIND | libc::MS_REC),
        "relatime" => Flag(true, libc::MS_RELATIME),
        "norelatime" => Flag(false, libc::MS_RELATIME),
        "strictatime" => Flag(true, libc::MS_STRICTATIME),
        "nostrictatime" => Flag(false, libc::MS_STRICTATIME),
        "silent" => Flag(true, libc::MS_SILENT),
        "loud" => Flag(false, libc::MS_SILENT),
        // Idmapped mounts are made from uidMappings/gidMappings (see idmap.rs).
        "idmap" | "ridmap" => Flag(true, 0),
        "rro" => Recursive(true, libc::MOUNT_ATTR_RDONLY),
        "rrw" => Recursive(false, libc::MOUNT_ATTR_RDONLY),
        "rnosuid" => Recursive(true, libc::MOUNT_ATTR_NOSUID),
        "rsuid" => Recursive(false, libc::MOUNT_ATTR_NOSUID),
        "rnodev" => Recursive(true, libc::MOUNT_ATTR_NODEV),
        "rdev" => Recursive(false, libc::MOUNT_ATTR_NODEV),
        "rnoexec" => Recursive(true, libc::MOUNT_ATTR_NOEXEC),
        "rexec" => Recursive(false, libc::MOUNT_ATTR_NOEXEC),
        "rnoatime" => Recursive(true, libc::MOUNT_ATTR_NOATIME),
        "rnodiratime" => Recursive(true, libc::MOUNT_ATTR_NODIRATIME),
        p => match propagation(p) {
            Some(f) => Propagation(f),
            None => Data,
        },
    })
}

/// The mount flags of a propagation name (`rprivate`, `slave`, ...).
pub fn propagation(name: &str) -> Option<libc::c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// A mount entry reduced to what the syscalls need.
struct Parsed {
    flags: libc::c_ulong,
    clear: libc::c_ulong,
    propagation: Vec<libc::c_ulong>,
    attr_set: u64,
    data: Vec<String>,
}

fn parse_options(m: &Mount) -> Parsed {
    let mut p = Parsed {
        flags: 0,
        clear: 0,
        propagation: Vec::new(),
        attr_set: 0,
        data: Vec::new(),
    };
    for opt in m.options().iter().flatten() {
        match mount_option(opt).expect("every option classifies") {
            MountOpt::Flag(true, f) => p.flags |= f,
            MountOpt::Flag(false, f) => {
                p.flags &= !f;
                p.clear |= f;
            }
            MountOpt::Propagation(f) => p.propagation.push(f),
            MountOpt::Recursive(true, a) => p.attr_set |= a,
            MountOpt::Recursive(false, _) => {}
            MountOpt::Data => {
                if opt != "tmpcopyup" && opt != "notmpcopyup" {
                    p.data.push(opt.clone())
                }
            }
        }
    }
    p
}

/// Inputs of the rootfs setup.
pub struct RootfsSetup<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// Absolute rootfs path on the host.
    pub rootfs: &'a Path,
    /// Absolute bundle path (relative bind sources are relative to it).
    pub bundle: &'a Path,
    /// Whether the container has a new user namespace (no mknod, locked mount flags).
    pub userns: bool,
    /// Whether the container has a new cgroup namespace.
    pub cgroupns: bool,
    /// The cgroup path of the container (for cgroup mounts without a cgroup namespace).
    pub cgroup_path: &'a Path,
    /// Idmapped mounts made by the parent: mount index -> detached mount descriptor.
    pub idmapped: &'a std::collections::HashMap<usize, RawFd>,
    /// The container has no mount namespace of its own: everything is mounted in the host's.
    pub host_mntns: bool,
}

/// Prepare `/`'s propagation and bind the rootfs onto itself (so it is a mount point for
/// pivot_root). Returns an O_PATH descriptor of the rootfs.
///
/// In the host's mount namespace (`host_mntns`) the host's `/` and the rootfs's parent mount
/// are left alone; the rootfs bind (which `root.readonly` remounts) is made private
/// (`linux.rootfsPropagation` if given), so that the mounts made inside it do not propagate
/// anywhere else.
pub fn prepare_root(setup: &RootfsSetup) -> Result<OwnedFd> {
    let linux = setup.spec.linux().as_ref().expect("validated");
    let prop = linux.rootfs_propagation().as_deref().and_then(propagation);
    if !setup.host_mntns {
        sys::mount(
            None,
            Path::new("/"),
            None,
            prop.unwrap_or(libc::MS_SLAVE | libc::MS_REC),
            None,
        )
        .context("make / a slave mount in the container's mount namespace")?;
        make_parent_private(setup.rootfs)?;
    }
    sys::mount(
        Some(setup.rootfs),
        setup.rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .with_context(|| format!("bind mount rootfs {}", setup.rootfs.display()))?;
    if setup.host_mntns {
        sys::mount(
            None,
            setup.rootfs,
            None,
            prop.unwrap_or(libc::MS_PRIVATE | libc::MS_REC),
            None,
        )
        .context("make the rootfs bind private (no mount namespace: it is in the host's)")?;
    }
    let fd = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(setup.rootfs)
        .with_context(|| format!("open rootfs {}", setup.rootfs.display()))?;
    Ok(fd.into())
}

use std::os::unix::fs::OpenOptionsExt;

/// pivot_root needs the rootfs's parent mount not to be shared: make the mount that holds it
/// private (only in our mount namespace).
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mounts = berth_sys::mountinfo::read()?;
    let Some(best) = mounts
        .iter()
        .filter(|m| rootfs.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
    else {
        return Ok(());
    };
    // A shared parent would make pivot_root fail; private only affects our namespace. Any
    // mount stacked at that point counts (the last one is the one we see).
    if mounts
        .iter()
        .any(|m| m.mount_point == best.mount_point && m.is_shared())
    {
        sys::mount(None, &best.mount_point, None, libc::MS_PRIVATE, None)
            .with_context(|| format!("make {} private", best.mount_point.display()))?;
    }
    Ok(())
}

/// Create every missing directory of `path` inside the root, resolving inside it.
fn mkdir_all(root: &OwnedFd, path: &Path) -> Result<OwnedFd> {
    // Usually the directory exists: one lookup instead of one per component.
    if let Ok(fd) = sys::open_in_root(root.as_raw_fd(), path, libc::O_PATH | libc::O_DIRECTORY, 0) {
        return Ok(fd);
    }
    let mut cur = PathBuf::from("/");
    let mut fd = sys::open_in_root(root.as_raw_fd(), &cur, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    for comp in path.components() {
        let name = match comp {
            Component::Normal(n) => n,
            Component::ParentDir => bail!("{}: '..' is not allowed", path.display()),
            _ => continue,
        };
        cur.push(name);
        match sys::open_in_root(root.as_raw_fd(), &cur, libc::O_PATH | libc::O_DIRECTORY, 0) {
            Ok(f) => fd = f,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let c = CString::new(name.as_bytes())?;
                match sys::mkdirat(fd.as_raw_fd(), &c, 0o755) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("mkdir {}", cur.display()));
                    }
                }
                fd = sys::open_in_root(root.as_raw_fd(), &cur, libc::O_PATH | libc::O_DIRECTORY, 0)
                    .with_context(|| format!("open {}", cur.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("open {} in rootfs", cur.display())),
        }
    }
    Ok(fd)
}

/// Make sure a file exists at `path` inside the root (for file bind mounts).
fn touch(root: &OwnedFd, path: &Path) -> Result<OwnedFd> {
    if let Some(parent) = path.parent() {
        mkdir_all(root, parent)?;
    }
    match sys::open_in_root(root.as_raw_fd(), path, libc::O_PATH, 0) {
        Ok(f) => return Ok(f),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    }
    drop(
        sys::open_in_root(
            root.as_raw_fd(),
            path,
            libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW,
            0o644,
        )
        .with_context(|| format!("create {}", path.display()))?,
    );
    sys::open_in_root(root.as_raw_fd(), path, libc::O_PATH, 0)
        .with_context(|| format!("open {}", path.display()))
}

/// Make the mount points of config.json's mounts in a root filesystem that will be restored by
/// CRIU (which mounts, but does not create them, as runc's prepareCriuRestoreMounts does): a
/// file for a bind of a file, a directory otherwise, resolved inside `rootfs`. Mount points
/// inside other mounts (/proc, /sys, /dev) are left to CRIU, which restores those mounts' own
/// contents first.
pub fn make_mountpoints(rootfs: &Path, spec: &Spec, bundle: &Path) -> Result<()> {
    let root: OwnedFd = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(rootfs)
        .with_context(|| format!("open {}", rootfs.display()))?
        .into();
    for m in spec.mounts().iter().flatten() {
        let dest = clean(m.destination());
        if ["/proc", "/sys", "/dev"]
            .iter()
            .any(|top| dest.starts_with(top) && dest != Path::new(top))
        {
            continue;
        }
        let opts = parse_options(m);
        let is_bind = opts.flags & libc::MS_BIND != 0 || m.typ().as_deref() == Some("bind");
        let file = is_bind
            && m.source().as_ref().is_some_and(|src| {
                let src = if src.is_absolute() {
                    src.clone()
                } else {
                    bundle.join(src)
                };
                std::fs::metadata(src).is_ok_and(|md| !md.is_dir())
            });
        let made = if file {
            touch(&root, &dest)
        } else {
            mkdir_all(&root, &dest)
        };
        made.with_context(|| format!("mount point {}", dest.display()))?;
    }
    Ok(())
}

/// Paths under /proc that may be mounted over (lxcfs-style), as runc allows.
const PROC_MOUNT_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Mount every entry of `mounts` in config.json.
pub fn mount_all(setup: &RootfsSetup, root: &OwnedFd) -> Result<()> {
    for (i, m) in setup.spec.mounts().iter().flatten().enumerate() {
        mount_one(setup, root, m, setup.idmapped.get(&i).copied()).with_context(|| {
            format!(
                "mounts[{i}] ({} on {})",
                m.typ().as_deref().unwrap_or("bind"),
                m.destination().display()
            )
        })?;
    }
    Ok(())
}

fn mount_one(
    setup: &RootfsSetup,
    root: &OwnedFd,
    m: &Mount,
    idmapped: Option<RawFd>,
) -> Result<()> {
    let dest = clean(m.destination());
    if dest.starts_with("/proc") && dest != Path::new("/proc") {
        let ok = PROC_MOUNT_ALLOWED.iter().any(|p| Path::new(p) == dest);
        if !ok {
            bail!(
                "destination {} is inside /proc: only {} may be mounted over",
                dest.display(),
                PROC_MOUNT_ALLOWED.join(", ")
            );
        }
    }
    let opts = parse_options(m);
    let typ = m.typ().as_deref().unwrap_or("");
    let is_bind = opts.flags & libc::MS_BIND != 0 || typ == "bind";
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(setup, root, &dest, &opts);
    }

    let target = if is_bind {
        let src = bind_source(setup, m)?;
        let meta = std::fs::metadata(&src)
            .with_context(|| format!("bind source {} does not exist", src.display()))?;
        let target = if meta.is_dir() {
            mkdir_all(root, &dest)?
        } else {
            touch(root, &dest)?
        };
        check_not_into_proc(setup, &target, &dest)?;
        let target_path = sys::fd_path(&target);
        match idmapped {
            Some(fd) => crate::idmap::attach(fd, &target)?,
            None => sys::mount(
                Some(&src),
                &target_path,
                None,
                libc::MS_BIND | (opts.flags & libc::MS_REC),
                None,
            )
            .with_context(|| format!("bind {}", src.display()))?,
        }
        let extra = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        if extra != 0 {
            // The target fd still points at the directory under the new mount: reopen it.
            let mounted = sys::open_in_root(root.as_raw_fd(), &dest, libc::O_PATH, 0)?;
            remount_bind(&sys::fd_path(&mounted), extra, setup.userns)?;
        }
        target
    } else {
        // proc and sysfs must land on a real directory, not through a symlink (CVE-2019-19921).
        if typ == "proc" || typ == "sysfs" {
            check_no_symlink(root, &dest)?;
        }
        let target = mkdir_all(root, &dest)?;
        check_not_into_proc(setup, &target, &dest)?;
        let source = m
            .source()
            .clone()
            .unwrap_or_else(|| PathBuf::from(if typ.is_empty() { "none" } else { typ }));
        let data = opts.data.join(",");
        let mut flags = opts.flags;
        if typ == "mqueue" || typ == "sysfs" || (typ == "proc" && setup.userns) {
            flags &= !libc::MS_RDONLY;
        }
        sys::mount(
            Some(&source),
            &sys::fd_path(&target),
            Some(typ),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .or_else(|e| {
            // sysfs in a user namespace without its own network namespace: bind the host's.
            if typ == "sysfs" && e.raw_os_error() == Some(libc::EPERM) {
                sys::mount(
                    Some(Path::new("/sys")),
                    &sys::fd_path(&target),
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )
            } else {
                Err(e)
            }
        })
        .with_context(|| format!("mount {typ}"))?;
        if flags != opts.flags {
            let mounted = sys::open_in_root(root.as_raw_fd(), &dest, libc::O_PATH, 0)?;
            let _ = sys::mount(
                None,
                &sys::fd_path(&mounted),
                None,
                libc::MS_REMOUNT | opts.flags,
                None,
            );
        }
        target
    };
    drop(target);
    if !opts.propagation.is_empty() || opts.attr_set != 0 {
        let mounted = sys::open_in_root(root.as_raw_fd(), &dest, libc::O_PATH, 0)?;
        let path = sys::fd_path(&mounted);
        for p in &opts.propagation {
            sys::mount(None, &path, None, *p, None).context("set propagation")?;
        }
        if opts.attr_set != 0 {
            sys::mount_setattr_recursive(&path, opts.attr_set)
                .context("recursive mount attributes (rro, rnosuid, ...) need Linux 5.12")?;
        }
    }
    Ok(())
}

/// A destination that resolved (through symlinks inside the rootfs) onto procfs is refused
/// unless it is one of the allowed files: the lexical check on the destination alone would let
/// `/innocent -> /proc` carry a mount over /proc/self/attr (CVE-2019-16884 class).
fn check_not_into_proc(setup: &RootfsSetup, target: &OwnedFd, dest: &Path) -> Result<()> {
    const PROC_SUPER_MAGIC: libc::c_long = 0x9fa0;
    // SAFETY: statfs is plain data; fstatfs fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and out-pointer.
    sys::check(unsafe { libc::fstatfs(target.as_raw_fd(), &mut st) })
        .with_context(|| format!("statfs {}", dest.display()))?;
    if st.f_type as libc::c_long != PROC_SUPER_MAGIC {
        return Ok(());
    }
    let real = std::fs::read_link(sys::fd_path(target)).unwrap_or_default();
    let inside = real
        .strip_prefix(setup.rootfs)
        .map(|p| Path::new("/").join(p))
        .unwrap_or(real);
    if !PROC_MOUNT_ALLOWED.iter().any(|p| Path::new(p) == inside) {
        bail!(
            "destination {} resolves to {} on procfs: only {} may be mounted over",
            dest.display(),
            inside.display(),
            PROC_MOUNT_ALLOWED.join(", ")
        );
    }
    Ok(())
}

fn check_no_symlink(root: &OwnedFd, dest: &Path) -> Result<()> {
    match sys::open_in_root(root.as_raw_fd(), dest, libc::O_PATH | libc::O_NOFOLLOW, 0) {
        Ok(fd) => {
            let st = fstat(&fd)?;
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                bail!("{} is a symlink: refusing to mount there", dest.display());
            }
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("open {}", dest.display())),
    }
}

fn fstat(fd: &OwnedFd) -> Result<libc::stat> {
    // SAFETY: stat is plain data; zero is a valid initial value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: st is a valid out-pointer, empty a valid C string, fd an open descriptor.
    sys::check(unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            empty.as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

/// Remount a bind mount with flags, keeping the flags the kernel locks in a user namespace.
fn remount_bind(path: &Path, flags: libc::c_ulong, userns: bool) -> Result<()> {
    let mut flags = flags;
    if userns {
        flags |= locked_flags(path)?;
    }
    sys::mount(
        None,
        path,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | flags,
        None,
    )
    .context("remount with options")?;
    Ok(())
}

fn locked_flags(path: &Path) -> Result<libc::c_ulong> {
    let c = sys::cstr(path)?;
    // SAFETY: statvfs is plain data; zero is a valid initial value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string and st a valid out-pointer.
    sys::check(unsafe { libc::statvfs(c.as_ptr(), &mut st) })?;
    let mut f = 0;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            f |= ms;
        }
    }
    Ok(f)
}

fn bind_source(setup: &RootfsSetup, m: &Mount) -> Result<PathBuf> {
    let src = m
        .source()
        .as_ref()
        .context("source: missing for a bind mount")?;
    Ok(if src.is_absolute() {
        src.clone()
    } else {
        setup.bundle.join(src)
    })
}

/// Lexically clean an absolute path (no `.`/`..`, single slashes).
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// cgroup mounts: cgroup2 on a unified host; on v1, a tmpfs with one mount per hierarchy.
fn mount_cgroup(setup: &RootfsSetup, root: &OwnedFd, dest: &Path, opts: &Parsed) -> Result<()> {
    let flags = opts.flags & !(libc::MS_BIND | libc::MS_REC);
    let hierarchies = cgroup_hierarchies()?;
    let unified_only = hierarchies.len() == 1 && hierarchies[0].1 == "cgroup2";
    if unified_only {
        let target = mkdir_all(root, dest)?;
        drop(target);
        return mount_cgroup_one(setup, root, dest, "/sys/fs/cgroup", "cgroup2", "", flags);
    }
    let target = mkdir_all(root, dest)?;
    sys::mount(
        Some(Path::new("tmpfs")),
        &sys::fd_path(&target),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some("mode=755"),
    )
    .context("mount tmpfs for cgroup hierarchies")?;
    drop(target);
    for (mountpoint, fstype, options) in &hierarchies {
        let name = Path::new(mountpoint)
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let sub = dest.join(&name);
        drop(mkdir_all(root, &sub)?);
        mount_cgroup_one(setup, root, &sub, mountpoint, fstype, options, flags)
            .with_context(|| format!("cgroup hierarchy {}", sub.display()))?;
    }
    if flags & libc::MS_RDONLY != 0 {
        let t = sys::open_in_root(root.as_raw_fd(), dest, libc::O_PATH, 0)?;
        sys::mount(
            None,
            &sys::fd_path(&t),
            None,
            libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY,
            Some("mode=755"),
        )
        .context("remount cgroup tmpfs read-only")?;
    }
    Ok(())
}

fn mount_cgroup_one(
    setup: &RootfsSetup,
    root: &OwnedFd,
    dest: &Path,
    host_mountpoint: &str,
    fstype: &str,
    options: &str,
    flags: libc::c_ulong,
) -> Result<()> {
    let target = sys::open_in_root(root.as_raw_fd(), dest, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    let tpath = sys::fd_path(&target);
    if setup.cgroupns {
        sys::mount(
            Some(Path::new("cgroup")),
            &tpath,
            Some(fstype),
            flags | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            (!options.is_empty()).then_some(options),
        )
        .with_context(|| format!("mount {fstype} {options}"))?;
    } else {
        // Without a cgroup namespace, show the container its own cgroup, as runc does.
        let rel = setup
            .cgroup_path
            .strip_prefix("/")
            .unwrap_or(setup.cgroup_path);
        let mut src = Path::new(host_mountpoint).join(rel);
        if !src.exists() {
            src = PathBuf::from(host_mountpoint);
        }
        sys::mount(Some(&src), &tpath, None, libc::MS_BIND | libc::MS_REC, None)
            .with_context(|| format!("bind {}", src.display()))?;
        // Remount the new mount, not the directory under it: reopen the destination.
        let mounted = sys::open_in_root(root.as_raw_fd(), dest, libc::O_PATH, 0)?;
        sys::mount(
            None,
            &sys::fd_path(&mounted),
            None,
            libc::MS_REMOUNT
                | libc::MS_BIND
                | flags
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC,
            None,
        )
        .context("remount cgroup bind")?;
    }
    Ok(())
}

/// (mountpoint, fstype, super options to mount it again) of every cgroup hierarchy on the host.
fn cgroup_hierarchies() -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for m in berth_sys::mountinfo::read()? {
        if !m.mount_point.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let mp = m.mount_point.to_string_lossy().into_owned();
        match m.fs_type.as_str() {
            "cgroup2" => out.push((mp, "cgroup2".into(), String::new())),
            "cgroup" => {
                let keep: Vec<&str> = m
                    .super_options
                    .split(',')
                    .filter(|o| *o != "rw" && *o != "ro" && !o.starts_with("release_agent"))
                    .collect();
                out.push((mp, "cgroup".into(), keep.join(",")));
            }
            _ => {}
        }
    }
    if out.is_empty() {
        bail!("no cgroup hierarchy is mounted under /sys/fs/cgroup");
    }
    Ok(out)
}

/// The devices every container gets (runc's default set).
const DEFAULT_DEVICES: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Whether config.json binds /dev itself (then no device is made in it).
fn dev_is_bind(spec: &oci_spec::runtime::Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        clean(m.destination()) == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    })
}

/// The device nodes a container in a user namespace gets as binds of the host's (no mknod
/// there): the default set and `linux.devices`, FIFOs aside, at their paths. Empty when /dev
/// itself is a bind.
pub fn userns_device_binds(spec: &oci_spec::runtime::Spec) -> Vec<PathBuf> {
    let dev_is_bind = dev_is_bind(spec);
    let Some(linux) = spec.linux() else {
        return Vec::new();
    };
    let userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User);
    if !userns || dev_is_bind {
        return Vec::new();
    }
    let mut out: Vec<PathBuf> = DEFAULT_DEVICES
        .iter()
        .map(|(p, _, _)| PathBuf::from(p))
        .collect();
    for d in linux.devices().iter().flatten() {
        if d.typ() != oci_spec::runtime::LinuxDeviceType::P && !out.contains(d.path()) {
            out.push(d.path().clone());
        }
    }
    out
}

/// Create the default devices, `linux.devices`, and the /dev symlinks.
pub fn create_devices(setup: &RootfsSetup, root: &OwnedFd) -> Result<()> {
    let linux = setup.spec.linux().as_ref().expect("validated");
    let dev_is_bind = dev_is_bind(setup.spec);
    if !dev_is_bind {
        for (path, major, minor) in DEFAULT_DEVICES {
            if linux
                .devices()
                .iter()
                .flatten()
                .any(|d| d.path() == Path::new(path))
            {
                continue;
            }
            make_device(
                root,
                Path::new(path),
                libc::S_IFCHR,
                *major,
                *minor,
                0o666,
                0,
                0,
                setup.userns,
            )
            .with_context(|| format!("default device {path}"))?;
        }
        for (link, target) in [
            ("/dev/fd", "/proc/self/fd"),
            ("/dev/stdin", "/proc/self/fd/0"),
            ("/dev/stdout", "/proc/self/fd/1"),
            ("/dev/stderr", "/proc/self/fd/2"),
            ("/dev/ptmx", "pts/ptmx"),
        ] {
            symlink_in(root, Path::new(link), target)?;
        }
        if Path::new("/proc/kcore").exists() {
            symlink_in(root, Path::new("/dev/core"), "/proc/kcore")?;
        }
    }
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        device_from_spec(root, d, setup.userns)
            .with_context(|| format!("linux.devices[{i}] ({})", d.path().display()))?;
    }
    Ok(())
}

fn device_from_spec(root: &OwnedFd, d: &LinuxDevice, userns: bool) -> Result<()> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => bail!("type: 'a' is only valid in cgroup device rules"),
    };
    let path = clean(d.path());
    if !path.starts_with("/dev") {
        bail!("path: devices must be under /dev");
    }
    make_device(
        root,
        &path,
        kind,
        d.major() as u32,
        d.minor() as u32,
        d.file_mode().unwrap_or(0o666),
        d.uid().unwrap_or(0),
        d.gid().unwrap_or(0),
        userns,
    )
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    root: &OwnedFd,
    path: &Path,
    kind: u32,
    major: u32,
    minor: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    userns: bool,
) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = mkdir_all(root, parent)?;
    let name = CString::new(path.file_name().context("no file name")?.as_bytes())?;
    if userns && kind != libc::S_IFIFO {
        // No mknod of devices in a user namespace (a FIFO needs no privilege): bind the host's
        // node onto a placeholder file.
        let target = touch(root, path)?;
        sys::mount(
            Some(path),
            &sys::fd_path(&target),
            None,
            libc::MS_BIND,
            None,
        )
        .with_context(|| format!("bind host device {}", path.display()))?;
        return Ok(());
    }
    // A dir fd opened O_PATH cannot be used for mknodat: reopen it for real.
    let real = sys::open_in_root(
        root.as_raw_fd(),
        parent,
        libc::O_DIRECTORY | libc::O_RDONLY,
        0,
    )?;
    drop(dir);
    // SAFETY: unlinkat on a descriptor and a valid C string; a missing file is fine.
    unsafe { libc::unlinkat(real.as_raw_fd(), name.as_ptr(), 0) };
    sys::mknodat(
        real.as_raw_fd(),
        &name,
        kind | (mode & 0o7777),
        libc::makedev(major, minor),
    )
    .with_context(|| format!("mknod {}", path.display()))?;
    // SAFETY: fchownat/fchmodat on a descriptor and a valid C string.
    sys::check(unsafe {
        libc::fchownat(
            real.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .with_context(|| format!("chown {}", path.display()))?;
    // mknod applies the umask: set the mode exactly.
    // SAFETY: as above.
    sys::check(unsafe { libc::fchmodat(real.as_raw_fd(), name.as_ptr(), mode & 0o7777, 0) })
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(())
}

fn symlink_in(root: &OwnedFd, link: &Path, target: &str) -> Result<()> {
    let parent = mkdir_all(root, link.parent().unwrap_or(Path::new("/")))?;
    let real = sys::open_in_root(
        root.as_raw_fd(),
        link.parent().unwrap_or(Path::new("/")),
        libc::O_DIRECTORY | libc::O_RDONLY,
        0,
    )?;
    drop(parent);
    let name = CString::new(link.file_name().context("no file name")?.as_bytes())?;
    let t = CString::new(target)?;
    // SAFETY: valid C strings and an open directory descriptor.
    let ret = unsafe { libc::symlinkat(t.as_ptr(), real.as_raw_fd(), name.as_ptr()) };
    if ret < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e).with_context(|| format!("symlink {}", link.display()));
        }
    }
    Ok(())
}

/// Bind the terminal's slave onto /dev/console.
pub fn mount_console(root: &OwnedFd, slave: &Path) -> Result<()> {
    let target = touch(root, Path::new("/dev/console"))?;
    sys::mount(
        Some(slave),
        &sys::fd_path(&target),
        None,
        libc::MS_BIND,
        None,
    )
    .context("bind the terminal onto /dev/console")
}

/// Make the rootfs `/`: pivot_root (or move + chroot with `--no-pivot`); only chroot in the
/// host's mount namespace (`host_mntns`), where pivot_root or a move would change the host's
/// root.
pub fn enter_root(rootfs: &Path, no_pivot: bool, host_mntns: bool) -> Result<()> {
    std::env::set_current_dir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    if host_mntns {
        // SAFETY: a valid C string.
        sys::check(unsafe { libc::chroot(c".".as_ptr()) })
            .context("chroot into the rootfs (no mount namespace)")?;
    } else if no_pivot {
        sys::mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)
            .context("move rootfs to / (--no-pivot)")?;
        let dot = c".";
        // SAFETY: a valid C string.
        sys::check(unsafe { libc::chroot(dot.as_ptr()) }).context("chroot")?;
    } else {
        let old = File::open("/").context("open old root")?;
        let dot = c".";
        // SAFETY: pivot_root with two valid C strings.
        sys::check(unsafe {
            libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as i32
        })
        .context("pivot_root")?;
        // SAFETY: fchdir on a descriptor we own.
        sys::check(unsafe { libc::fchdir(old.as_raw_fd()) }).context("fchdir old root")?;
        // Never let the unmount propagate to the host.
        sys::mount(
            None,
            Path::new("."),
            None,
            libc::MS_SLAVE | libc::MS_REC,
            None,
        )
        .context("make old root a slave")?;
        sys::umount2(Path::new("."), libc::MNT_DETACH).context("unmount old root")?;
    }
    std::env::set_current_dir("/").context("chdir /")?;
    Ok(())
}

/// After pivot_root: `linux.readonlyPaths`, `linux.maskedPaths` and `root.readonly`.
pub fn finalize(spec: &Spec, userns: bool) -> Result<()> {
    let linux = spec.linux().as_ref().expect("validated");
    let root: OwnedFd = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open("/")
        .context("open /")?
        .into();
    for p in linux.readonly_paths().iter().flatten() {
        readonly_path(&root, Path::new(p), userns)
            .with_context(|| format!("linux.readonlyPaths: {p}"))?;
    }
    for p in linux.masked_paths().iter().flatten() {
        mask_path(&root, Path::new(p)).with_context(|| format!("linux.maskedPaths: {p}"))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        remount_bind(Path::new("/"), libc::MS_RDONLY, userns).context("root.readonly")?;
    }
    Ok(())
}

fn readonly_path(root: &OwnedFd, p: &Path, userns: bool) -> Result<()> {
    let fd = match sys::open_in_root(root.as_raw_fd(), p, libc::O_PATH, 0) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let path = sys::fd_path(&fd);
    sys::mount(Some(&path), &path, None, libc::MS_BIND | libc::MS_REC, None)?;
    let fd = sys::open_in_root(root.as_raw_fd(), p, libc::O_PATH, 0)?;
    remount_bind(&sys::fd_path(&fd), libc::MS_RDONLY | libc::MS_REC, userns)
}

fn mask_path(root: &OwnedFd, p: &Path) -> Result<()> {
    let fd = match sys::open_in_root(root.as_raw_fd(), p, libc::O_PATH, 0) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let st = fstat(&fd)?;
    let path = sys::fd_path(&fd);
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        sys::mount(
            Some(Path::new("tmpfs")),
            &path,
            Some("tmpfs"),
            libc::MS_RDONLY,
            Some("size=0"),
        )?;
    } else {
        sys::mount(
            Some(Path::new("/dev/null")),
            &path,
            None,
            libc::MS_BIND,
            None,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_classify_like_runc() {
        assert_eq!(
            mount_option("ro"),
            Some(MountOpt::Flag(true, libc::MS_RDONLY))
        );
        assert_eq!(
            mount_option("rprivate"),
            Some(MountOpt::Propagation(libc::MS_PRIVATE | libc::MS_REC))
        );
        assert_eq!(mount_option("size=65536k"), Some(MountOpt::Data));
        assert_eq!(
            mount_option("rro"),
            Some(MountOpt::Recursive(true, libc::MOUNT_ATTR_RDONLY))
        );
    }

    #[test]
    fn clean_removes_dots() {
        assert_eq!(clean(Path::new("/a/./b/../c//d")), PathBuf::from("/a/c/d"));
        assert_eq!(clean(Path::new("/../../x")), PathBuf::from("/x"));
    }
}
