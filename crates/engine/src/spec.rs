//! The OCI config.json for berth-runtime, made as Docker makes it: the runtime's `spec
//! --profile docker` (Docker's capabilities, seccomp profile, masked and read-only paths) as the
//! base, then the container's record applied on top.

use std::fs;
use std::path::Path;

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
pub(crate) fn base_spec(rt: &Runtime, dir: &Path, caps: Option<&[String]>) -> Result<Value> {
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

fn base_spec_uncached(rt: &Runtime, dir: &Path, caps: Option<&[String]>) -> Result<Value> {
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
pub(crate) fn changed_caps(base: &Value, r: &Record) -> Result<Option<Vec<String>>> {
    if r.host_config.privileged {
        return Ok(None);
    }
    let base_caps: Vec<String> =
        serde_json::from_value(base["process"]["capabilities"]["bounding"].clone())
            .unwrap_or_default();
    let caps = capabilities(&base_caps, r)?;
    let same = caps.len() == base_caps.len() && caps.iter().all(|c| base_caps.contains(c));
    Ok((!same).then_some(caps))
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
fn seccomp_file(path: &str) -> Result<Value> {
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
    Ok(v)
}

fn push_mount(mounts: &mut Vec<Value>, m: Value) {
    let dst = m["destination"].as_str().unwrap_or("").to_string();
    mounts.retain(|x| x["destination"].as_str() != Some(dst.as_str()));
    mounts.push(m);
}

fn user_mount(mp: &MountPoint) -> Value {
    match mp.kind.as_str() {
        "tmpfs" => {
            let mut opts = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ];
            opts.extend(
                mp.mode
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string),
            );
            json!({"destination": mp.destination, "type": "tmpfs", "source": "tmpfs", "options": opts})
        }
        _ => {
            let mut opts = vec!["rbind", "rprivate"];
            if !mp.rw {
                opts.push("ro");
            }
            json!({"destination": mp.destination, "type": "bind", "source": mp.source, "options": opts})
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
    mut spec: Value,
    r: &Record,
    user: &ExecUser,
    rootfs: &Path,
    etc: &EtcFiles<'_>,
    init: Option<&str>,
) -> Result<Value> {
    let c = &r.config;
    let hc = &r.host_config;

    // Process.
    let mut args = Vec::new();
    if let Some(init) = init {
        let _ = init;
        args.push(INIT_PATH.to_string());
        args.push("--".to_string());
    }
    args.push(r.path.clone());
    args.extend(r.args.iter().cloned());
    let p = &mut spec["process"];
    p["args"] = json!(args);
    p["env"] = json!(c.env);
    p["cwd"] = json!(if c.working_dir.is_empty() {
        "/"
    } else {
        &c.working_dir
    });
    p["terminal"] = json!(c.tty);
    let mut u = json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        u["additionalGids"] = json!(user.additional_gids);
    }
    p["user"] = u;
    let base_caps: Vec<String> =
        serde_json::from_value(p["capabilities"]["bounding"].clone()).unwrap_or_default();
    let caps = capabilities(&base_caps, r)?;
    p["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    p["noNewPrivileges"] = json!(false);
    let obj = p.as_object_mut().expect("process is an object");
    obj.remove("rlimits");
    if !hc.ulimits.is_empty() {
        let rl: Vec<Value> = hc
            .ulimits
            .iter()
            .map(|u| {
                json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
                       "soft": u.soft, "hard": u.hard})
            })
            .collect();
        p["rlimits"] = json!(rl);
    }

    // Security options.
    let mut seccomp: Option<Value> = spec["linux"].get("seccomp").cloned();
    for o in &hc.security_opt {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o, ""));
        match k {
            "no-new-privileges" => {
                spec["process"]["noNewPrivileges"] = json!(v.is_empty() || v == "true")
            }
            "seccomp" if v == "unconfined" => seccomp = None,
            "seccomp" => seccomp = Some(seccomp_file(v)?),
            "apparmor" if v == "unconfined" => {}
            "apparmor" => spec["process"]["apparmorProfile"] = json!(v),
            "label" => {}
            _ => return Err(invalid("--security-opt", format!("unknown option {o:?}"))),
        }
    }
    let linux = spec["linux"].as_object_mut().expect("linux is an object");
    match seccomp {
        Some(s) if !hc.privileged => {
            linux.insert("seccomp".into(), s);
        }
        _ => {
            linux.remove("seccomp");
        }
    }
    if hc.privileged {
        linux.insert("maskedPaths".into(), json!([]));
        linux.insert("readonlyPaths".into(), json!([]));
        linux.insert("devices".into(), json!(host_devices()));
    }

    // Namespaces.
    if hc.network_mode == "host"
        && let Some(ns) = linux.get_mut("namespaces").and_then(Value::as_array_mut)
    {
        ns.retain(|n| n["type"] != "network");
    }
    linux.insert("cgroupsPath".into(), json!(format!("/berth/{}", r.id)));

    // Resources.
    let mut res = json!({});
    res["devices"] = if hc.privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        linux
            .get("resources")
            .and_then(|x| x.get("devices"))
            .cloned()
            .unwrap_or(json!([]))
    };
    let mut mem = json!({});
    if hc.memory > 0 {
        mem["limit"] = json!(hc.memory);
        let swap = match hc.memory_swap {
            0 => hc.memory * 2,
            s => s,
        };
        if swap_accounting() {
            mem["swap"] = json!(swap);
        }
    }
    if hc.memory_reservation > 0 {
        mem["reservation"] = json!(hc.memory_reservation);
    }
    if mem.as_object().is_some_and(|m| !m.is_empty()) {
        res["memory"] = mem;
    }
    let mut cpu = json!({});
    if hc.nano_cpus > 0 {
        cpu["period"] = json!(100_000u64);
        cpu["quota"] = json!(hc.nano_cpus * 100_000 / 1_000_000_000);
    }
    if hc.cpu_shares > 0 {
        cpu["shares"] = json!(hc.cpu_shares);
    }
    if !hc.cpuset_cpus.is_empty() {
        cpu["cpus"] = json!(hc.cpuset_cpus);
    }
    if cpu.as_object().is_some_and(|m| !m.is_empty()) {
        res["cpu"] = cpu;
    }
    if let Some(n) = hc.pids_limit.filter(|n| *n > 0) {
        res["pids"] = json!({"limit": n});
    }
    linux.insert("resources".into(), res);

    // Root and mounts.
    spec["root"] = json!({"path": rootfs, "readonly": hc.readonly_rootfs});
    spec["hostname"] = json!(c.hostname);
    let mut mounts: Vec<Value> = spec["mounts"].as_array().cloned().unwrap_or_default();
    if hc.privileged {
        for m in mounts.iter_mut() {
            if (m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup")
                && let Some(o) = m["options"].as_array_mut()
            {
                o.retain(|x| x != "ro");
                o.push(json!("rw"));
            }
        }
    }
    let etc_ro = hc.readonly_rootfs;
    for (dst, src) in [
        ("/etc/hosts", etc.hosts),
        ("/etc/hostname", etc.hostname),
        ("/etc/resolv.conf", etc.resolv),
    ] {
        let mut opts = vec!["rbind", "rprivate"];
        if etc_ro {
            opts.push("ro");
        }
        push_mount(
            &mut mounts,
            json!({"destination": dst, "type": "bind", "source": src, "options": opts}),
        );
    }
    if let Some(init) = init {
        push_mount(
            &mut mounts,
            json!({"destination": INIT_PATH, "type": "bind", "source": init,
                   "options": ["bind", "ro", "rprivate"]}),
        );
    }
    let mut user_mounts: Vec<&MountPoint> = r.mounts.iter().collect();
    user_mounts.sort_by_key(|m| m.destination.matches('/').count());
    for mp in user_mounts {
        push_mount(&mut mounts, user_mount(mp));
    }
    spec["mounts"] = json!(mounts);
    Ok(spec)
}

/// The host's device nodes directly in /dev (what `--privileged` gives, as Docker does).
fn host_devices() -> Vec<Value> {
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
            "c"
        } else if m.file_type().is_block_device() {
            "b"
        } else {
            continue;
        };
        let rdev = m.rdev();
        out.push(json!({
            "path": format!("/dev/{name}"), "type": kind,
            "major": libc::major(rdev), "minor": libc::minor(rdev),
            "fileMode": m.mode() & 0o777, "uid": m.uid(), "gid": m.gid(),
        }));
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
