//! The OCI config.json for berth-runtime, made as Docker makes it: the runtime's `spec
//! --profile docker` (Docker's capabilities, seccomp profile, masked and read-only paths) read
//! as a typed [`Spec`] (oci-spec) as the base, then the container's record applied on top as
//! typed edits.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxCpu, LinuxDevice, LinuxDeviceCgroup,
    LinuxDeviceType, LinuxMemory, LinuxNamespaceType, LinuxPids, LinuxResources, LinuxSeccomp,
    Mount, PosixRlimitBuilder, PosixRlimitType, Root, Spec, User,
};
use serde_json::{Value, json};

use crate::error::{Error, Result, invalid, io_err};
use crate::record::{MountPoint, Record};
use crate::runtime::Runtime;
use crate::user::ExecUser;

/// Every capability, in the kernel's order (index = number), for `--privileged` and
/// `--cap-add ALL`; [`all_caps`] keeps those the running kernel knows.
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Where the init binary for `--init` is looked for on the host, and where it goes.
pub(crate) const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/bin/catatonit",
    "/usr/libexec/podman/catatonit",
];
/// The init's path in the container (Docker's).
pub(crate) const INIT_PATH: &str = "/sbin/docker-init";

/// The base spec from the runtime (`spec --profile docker`), cached per runtime binary: it is
/// the same for every container, and asking costs an exec of the runtime (~3 ms) at each create
/// and start.
///
/// With `caps`, the capabilities and Docker's seccomp profile are those for that capability set
/// instead of Docker's default one (`spec --caps`): --cap-add SYS_ADMIN must also let mount(2)
/// through seccomp, as with Docker.
pub(crate) fn base_spec(rt: &Runtime, dir: &Path, caps: Option<&[String]>) -> Result<Spec> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let caps_key = caps.map(|c| {
        let mut sorted = c.to_vec();
        sorted.sort();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        sorted.hash(&mut h);
        format!("-caps{:016x}", h.finish())
    });
    let key = fs::metadata(&rt.bin).ok().map(|m| {
        format!(
            "spec-docker-{}-{}-{}-{}{}.json",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime_nsec() + m.mtime() * 1_000_000_000,
            caps_key.as_deref().unwrap_or("")
        )
    });
    let cache = rt.root.parent().unwrap_or(&rt.root).join("cache");
    if let Some(k) = &key
        && let Ok(data) = fs::read(cache.join(k))
        && let Ok(v) = serde_json::from_slice(&data)
    {
        return Ok(v);
    }
    let v = base_spec_uncached(rt, dir, caps)?;
    if let Some(k) = &key
        && fs::create_dir_all(&cache).is_ok()
    {
        // Best effort; atomic, so a reader never sees half of it.
        let _ =
            crate::util::write_atomic(&cache.join(k), &serde_json::to_vec(&v).unwrap_or_default());
    }
    Ok(v)
}

fn base_spec_uncached(rt: &Runtime, dir: &Path, caps: Option<&[String]>) -> Result<Spec> {
    let _ = fs::remove_file(dir.join("config.json"));
    let bundle = dir.display().to_string();
    let list = caps.map(|c| c.join(","));
    let mut args = vec!["--profile", "docker", "--bundle", &bundle];
    if let Some(l) = &list {
        args.extend(["--caps", l]);
    }
    rt.run("spec", &args)?;
    let p = dir.join("config.json");
    let data = fs::read(&p).map_err(io_err("read", &p))?;
    serde_json::from_slice(&data).map_err(|error| Error::Json {
        what: p.display().to_string(),
        error,
    })
}

/// The capabilities of the running kernel (up to /proc/sys/kernel/cap_last_cap) that we hold
/// in our bounding set (a container cannot get more than its engine has).
fn all_caps() -> Vec<String> {
    let last = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(ALL_CAPS.len() - 1);
    let bounding = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .take(last + 1)
        .filter(|(i, _)| bounding & (1 << i) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The container's capabilities when they are not those of the base spec `base` (Docker's
/// defaults), for [`base_spec`]'s `caps`; `None` when they are the same set or seccomp does not
/// apply (privileged).
pub(crate) fn changed_caps(base: &Spec, r: &Record) -> Result<Option<Vec<String>>> {
    if r.host_config.privileged {
        return Ok(None);
    }
    let base_caps = bounding_caps(base);
    let caps = capabilities(&base_caps, r)?;
    let same = caps.len() == base_caps.len() && caps.iter().all(|c| base_caps.contains(c));
    Ok((!same).then_some(caps))
}

/// The base spec's bounding capabilities, by name.
fn bounding_caps(spec: &Spec) -> Vec<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .map(|set| {
            set.iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Capability names (`CAP_CHOWN`) as oci-spec's set.
fn cap_set(caps: &[String]) -> Result<Capabilities> {
    caps.iter()
        .map(|c| {
            serde_json::from_value::<Capability>(json!(c))
                .map_err(|_| invalid("--cap-add", format!("unknown capability: {c:?}")))
        })
        .collect()
}

/// A `--ulimit` name (`nofile`) as the rlimit it sets, or an error naming the flag.
pub(crate) fn rlimit_type(name: &str) -> Result<PosixRlimitType> {
    serde_json::from_value(json!(format!("RLIMIT_{}", name.to_ascii_uppercase()))).map_err(|_| {
        invalid(
            "--ulimit",
            format!("invalid ulimit name {name:?} (e.g. nofile, nproc, core, memlock)"),
        )
    })
}

/// The final capability set: Docker's defaults (or all), minus drops, plus adds.
fn capabilities(base: &[String], r: &Record) -> Result<Vec<String>> {
    let hc = &r.host_config;
    if hc.privileged {
        return Ok(all_caps());
    }
    let mut caps: Vec<String> = base.to_vec();
    for d in &hc.cap_drop {
        if d.eq_ignore_ascii_case("all") {
            caps.clear();
        } else {
            let n = cap_name(d);
            caps.retain(|c| *c != n);
        }
    }
    for a in &hc.cap_add {
        if a.eq_ignore_ascii_case("all") {
            caps = all_caps();
        } else {
            let n = cap_name(a);
            if !ALL_CAPS.contains(&n.as_str()) {
                return Err(invalid("--cap-add", format!("unknown capability: {a:?}")));
            }
            if !all_caps().contains(&n) {
                return Err(invalid(
                    "--cap-add",
                    format!("{n} is not available (kernel or our bounding set)"),
                ));
            }
            if !caps.contains(&n) {
                caps.push(n);
            }
        }
    }
    Ok(caps)
}

/// Reads a seccomp profile file: OCI `linux.seccomp` JSON, or Docker's format (its
/// conditional rules are kept only when unconditional).
fn seccomp_file(path: &str) -> Result<LinuxSeccomp> {
    let data = fs::read(path).map_err(io_err("read seccomp profile", path))?;
    let mut v: Value = serde_json::from_slice(&data).map_err(|error| Error::Json {
        what: path.to_string(),
        error,
    })?;
    if let Some(map) = v.get("archMap").and_then(Value::as_array).cloned() {
        let mut arches = Vec::new();
        for a in map {
            if let Some(s) = a["architecture"].as_str() {
                arches.push(json!(s));
            }
            for s in a["subArchitectures"].as_array().into_iter().flatten() {
                arches.push(s.clone());
            }
        }
        v["architectures"] = json!(arches);
        let obj = v.as_object_mut().expect("an object");
        obj.remove("archMap");
        if let Some(rules) = obj.get_mut("syscalls").and_then(Value::as_array_mut) {
            rules.retain(|r| {
                r.get("includes")
                    .is_none_or(|i| i.as_object().is_none_or(|o| o.is_empty()))
                    && r.get("excludes")
                        .is_none_or(|i| i.as_object().is_none_or(|o| o.is_empty()))
            });
            for r in rules.iter_mut() {
                if let Some(o) = r.as_object_mut() {
                    o.remove("includes");
                    o.remove("excludes");
                    o.remove("comment");
                }
            }
        }
    }
    serde_json::from_value(v).map_err(|error| Error::Json {
        what: format!("seccomp profile {path}"),
        error,
    })
}

/// Sets the namespace of kind `typ` in the spec: removed when `keep` is false (the host's is
/// used), else a new one, or the one at `path` when given.
pub(crate) fn set_namespace(
    spec: &mut Spec,
    typ: LinuxNamespaceType,
    path: Option<&str>,
    keep: bool,
) {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut ns = linux.namespaces().clone().unwrap_or_default();
    ns.retain(|n| n.typ() != typ);
    if keep {
        let mut n = oci_spec::runtime::LinuxNamespace::default();
        n.set_typ(typ);
        n.set_path(path.map(PathBuf::from));
        ns.push(n);
    }
    linux.set_namespaces(Some(ns));
    spec.set_linux(Some(linux));
}

/// A mount as oci-spec's type.
pub(crate) fn mount(dst: &str, kind: &str, src: &str, opts: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dst));
    m.set_typ(Some(kind.to_string()));
    m.set_source(Some(PathBuf::from(src)));
    m.set_options(Some(opts.iter().map(|o| o.to_string()).collect()));
    m
}

/// Adds `m`, replacing a mount on the same destination.
pub(crate) fn push_mount(mounts: &mut Vec<Mount>, m: Mount) {
    mounts.retain(|x| x.destination() != m.destination());
    mounts.push(m);
}

fn user_mount(mp: &MountPoint) -> Mount {
    match mp.kind.as_str() {
        "tmpfs" => {
            let mut opts = vec!["nosuid", "nodev", "noexec"];
            opts.extend(mp.mode.split(',').filter(|o| !o.is_empty()));
            mount(&mp.destination, "tmpfs", "tmpfs", &opts)
        }
        _ => {
            let mut opts = vec!["rbind", "rprivate"];
            if !mp.rw {
                opts.push("ro");
            }
            mount(&mp.destination, "bind", &mp.source, &opts)
        }
    }
}

/// Paths of the files the container gets from its directory.
pub(crate) struct EtcFiles<'a> {
    pub(crate) hosts: &'a Path,
    pub(crate) hostname: &'a Path,
    pub(crate) resolv: &'a Path,
}

/// Builds config.json from the base spec and the record.
pub(crate) fn build(
    mut spec: Spec,
    r: &Record,
    user: &ExecUser,
    rootfs: &Path,
    etc: &EtcFiles<'_>,
    init: Option<&str>,
) -> Result<Spec> {
    let c = &r.config;
    let hc = &r.host_config;

    // Process.
    let mut args = Vec::new();
    if init.is_some() {
        args.push(INIT_PATH.to_string());
        args.push("--".to_string());
    }
    args.push(r.path.clone());
    args.extend(r.args.iter().cloned());
    let base_caps = bounding_caps(&spec);
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(args));
    p.set_env(Some(c.env.clone()));
    p.set_cwd(PathBuf::from(if c.working_dir.is_empty() {
        "/"
    } else {
        &c.working_dir
    }));
    p.set_terminal(Some(c.tty));
    let mut u = User::default();
    u.set_uid(user.uid);
    u.set_gid(user.gid);
    if !user.additional_gids.is_empty() {
        u.set_additional_gids(Some(user.additional_gids.clone()));
    }
    p.set_user(u);
    let caps = cap_set(&capabilities(&base_caps, r)?)?;
    let mut lc = LinuxCapabilities::default();
    lc.set_bounding(Some(caps.clone()));
    lc.set_effective(Some(caps.clone()));
    lc.set_permitted(Some(caps));
    lc.set_inheritable(None);
    lc.set_ambient(None);
    p.set_capabilities(Some(lc));
    p.set_no_new_privileges(Some(false));
    let mut rlimits = Vec::new();
    for u in &hc.ulimits {
        let rl = PosixRlimitBuilder::default()
            .typ(rlimit_type(&u.name)?)
            .soft(u.soft as u64)
            .hard(u.hard as u64)
            .build()
            .map_err(|e| invalid("--ulimit", e.to_string()))?;
        rlimits.push(rl);
    }
    p.set_rlimits((!rlimits.is_empty()).then_some(rlimits));

    // Security options.
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut seccomp = linux.seccomp().clone();
    for o in &hc.security_opt {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o, ""));
        match k {
            "no-new-privileges" => {
                p.set_no_new_privileges(Some(v.is_empty() || v == "true"));
            }
            "seccomp" if v == "unconfined" => seccomp = None,
            "seccomp" => seccomp = Some(seccomp_file(v)?),
            "apparmor" if v == "unconfined" => {}
            "apparmor" => {
                p.set_apparmor_profile(Some(v.to_string()));
            }
            "label" => {}
            _ => return Err(invalid("--security-opt", format!("unknown option {o:?}"))),
        }
    }
    spec.set_process(Some(p));
    linux.set_seccomp(if hc.privileged { None } else { seccomp });
    if hc.privileged {
        linux.set_masked_paths(Some(vec![]));
        linux.set_readonly_paths(Some(vec![]));
        linux.set_devices(Some(host_devices()));
    }

    // Namespaces.
    if hc.network_mode == "host"
        && let Some(ns) = linux.namespaces_mut()
    {
        ns.retain(|n| n.typ() != LinuxNamespaceType::Network);
    }
    if hc.cgroupns_mode == "host"
        && let Some(ns) = linux.namespaces_mut()
    {
        ns.retain(|n| n.typ() != LinuxNamespaceType::Cgroup);
    }
    linux.set_cgroups_path(Some(PathBuf::from(format!("/berth/{}", r.id))));

    // Resources.
    let mut res = LinuxResources::default();
    res.set_devices(if hc.privileged {
        let mut all = LinuxDeviceCgroup::default();
        all.set_allow(true);
        all.set_typ(Some(LinuxDeviceType::A));
        all.set_access(Some("rwm".into()));
        Some(vec![all])
    } else {
        Some(
            linux
                .resources()
                .as_ref()
                .and_then(|r| r.devices().clone())
                .unwrap_or_default(),
        )
    });
    let mut mem = LinuxMemory::default();
    let mut any_mem = false;
    if hc.memory > 0 {
        mem.set_limit(Some(hc.memory));
        let swap = match hc.memory_swap {
            0 => hc.memory * 2,
            s => s,
        };
        if swap_accounting() {
            mem.set_swap(Some(swap));
        }
        any_mem = true;
    }
    if hc.memory_reservation > 0 {
        mem.set_reservation(Some(hc.memory_reservation));
        any_mem = true;
    }
    if any_mem {
        res.set_memory(Some(mem));
    }
    let mut cpu = LinuxCpu::default();
    let mut any_cpu = false;
    if hc.nano_cpus > 0 {
        cpu.set_period(Some(100_000));
        cpu.set_quota(Some(hc.nano_cpus * 100_000 / 1_000_000_000));
        any_cpu = true;
    }
    if hc.cpu_shares > 0 {
        cpu.set_shares(Some(hc.cpu_shares as u64));
        any_cpu = true;
    }
    if !hc.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(hc.cpuset_cpus.clone()));
        any_cpu = true;
    }
    if any_cpu {
        res.set_cpu(Some(cpu));
    }
    if let Some(n) = hc.pids_limit.filter(|n| *n > 0) {
        let mut pids = LinuxPids::default();
        pids.set_limit(n);
        res.set_pids(Some(pids));
    }
    linux.set_resources(Some(res));
    spec.set_linux(Some(linux));

    // Root and mounts.
    let mut root = Root::default();
    root.set_path(rootfs.to_path_buf());
    root.set_readonly(Some(hc.readonly_rootfs));
    spec.set_root(Some(root));
    spec.set_hostname(Some(c.hostname.clone()));
    let mut mounts: Vec<Mount> = spec.mounts().clone().unwrap_or_default();
    if hc.privileged {
        for m in mounts.iter_mut() {
            if (m.destination() == Path::new("/sys")
                || m.destination() == Path::new("/sys/fs/cgroup"))
                && let Some(o) = m.options_mut()
            {
                o.retain(|x| x != "ro");
                o.push("rw".into());
            }
        }
    }
    for (dst, src) in [
        ("/etc/hosts", etc.hosts),
        ("/etc/hostname", etc.hostname),
        ("/etc/resolv.conf", etc.resolv),
    ] {
        let mut opts = vec!["rbind", "rprivate"];
        if hc.readonly_rootfs {
            opts.push("ro");
        }
        push_mount(
            &mut mounts,
            mount(dst, "bind", &src.display().to_string(), &opts),
        );
    }
    if let Some(init) = init {
        push_mount(
            &mut mounts,
            mount(INIT_PATH, "bind", init, &["bind", "ro", "rprivate"]),
        );
    }
    let mut user_mounts: Vec<&MountPoint> = r.mounts.iter().collect();
    user_mounts.sort_by_key(|m| m.destination.matches('/').count());
    for mp in user_mounts {
        push_mount(&mut mounts, user_mount(mp));
    }
    spec.set_mounts(Some(mounts));
    Ok(spec)
}

/// The host's device nodes directly in /dev (what `--privileged` gives, as Docker does).
fn host_devices() -> Vec<LinuxDevice> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/dev") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if matches!(
            name.as_str(),
            "console" | "ptmx" | "tty" | "full" | "null" | "zero" | "random" | "urandom"
        ) {
            continue;
        }
        let Ok(m) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        let kind = if m.file_type().is_char_device() {
            LinuxDeviceType::C
        } else if m.file_type().is_block_device() {
            LinuxDeviceType::B
        } else {
            continue;
        };
        let rdev = m.rdev();
        let mut d = LinuxDevice::default();
        d.set_path(PathBuf::from(format!("/dev/{name}")));
        d.set_typ(kind);
        d.set_major(libc::major(rdev) as i64);
        d.set_minor(libc::minor(rdev) as i64);
        d.set_file_mode(Some(m.mode() & 0o777));
        d.set_uid(Some(m.uid()));
        d.set_gid(Some(m.gid()));
        out.push(d);
    }
    out
}

/// Whether the memory cgroup accounts swap (memory.memsw.* on v1, memory.swap.max on v2).
pub(crate) fn swap_accounting() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || Path::new("/sys/fs/cgroup/memory.swap.max").exists()
        || fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|s| s.contains("memory"))
}

/// The host init binary for `--init`.
pub(crate) fn find_init() -> Result<&'static str> {
    INIT_CANDIDATES
        .iter()
        .copied()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| {
            invalid(
                "--init",
                format!(
                    "no init binary found (looked for {})",
                    INIT_CANDIDATES.join(", ")
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Config, HostConfig, Record, Ulimit};

    fn record(hc: HostConfig) -> Record {
        Record {
            id: "b".repeat(64),
            name: "t".into(),
            created: String::new(),
            path: "sh".into(),
            args: vec!["-c".into(), "true".into()],
            image: String::new(),
            config: Config {
                hostname: "box".into(),
                env: vec!["A=1".into()],
                ..Default::default()
            },
            host_config: hc,
            mounts: vec![],
            networking: Default::default(),
        }
    }

    /// The record becomes typed edits of the base spec, serialised as the runtime reads them.
    #[test]
    fn the_record_is_applied_to_the_base_spec_as_typed_values() {
        let base: Spec = serde_json::from_value(json!({
            "ociVersion": "1.0.2",
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"],
                        "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"]}},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "mount"}],
                      "resources": {"devices": [{"allow": false, "access": "rwm"}]}},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]
        }))
        .unwrap();
        let r = record(HostConfig {
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(20),
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 100,
                hard: 200,
            }],
            cap_drop: vec!["kill".into()],
            network_mode: "host".into(),
            readonly_rootfs: true,
            ..Default::default()
        });
        let user = ExecUser {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![50],
            home: "/".into(),
        };
        let etc = EtcFiles {
            hosts: Path::new("/c/hosts"),
            hostname: Path::new("/c/hostname"),
            resolv: Path::new("/c/resolv.conf"),
        };
        let spec = build(base, &r, &user, Path::new("/c/rootfs"), &etc, None).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["process"]["args"], json!(["sh", "-c", "true"]));
        assert_eq!(
            v["process"]["user"],
            json!({"uid": 1000, "gid": 1000, "additionalGids": [50]})
        );
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            json!(["CAP_CHOWN"])
        );
        assert_eq!(
            v["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}])
        );
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "mount"]);
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 20);
        assert_eq!(v["linux"]["cgroupsPath"], format!("/berth/{}", r.id));
        assert_eq!(v["root"], json!({"path": "/c/rootfs", "readonly": true}));
        assert_eq!(v["hostname"], "box");
        let hosts = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/etc/hosts")
            .unwrap();
        assert_eq!(hosts["options"], json!(["rbind", "rprivate", "ro"]));
        assert!(rlimit_type("nosuch").is_err());
    }
}
