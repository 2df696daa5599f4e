//! Loading and validating a bundle's config.json.
//!
//! Every error names the field it is about, e.g. `process.args: must not be empty`, so a user
//! can fix the file without reading the runtime's source.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// A parsed and validated config.json with the bundle it came from.
pub struct Config {
    /// The spec.
    pub spec: Spec,
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
}

/// Read `BUNDLE/config.json`, parse it with field paths in errors, and validate it.
pub fn load(bundle: &Path) -> Result<Config> {
    let bundle = std::fs::canonicalize(bundle)
        .with_context(|| format!("bundle {}: cannot open", bundle.display()))?;
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let spec = parse(&data).with_context(|| format!("{}", path.display()))?;
    let root = spec
        .root()
        .as_ref()
        .context("root: missing (the spec requires root.path on Linux)")?;
    let rootfs = bundle.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs)
        .with_context(|| format!("root.path: {} does not exist", rootfs.display()))?;
    if !rootfs.is_dir() {
        bail!("root.path: {} is not a directory", rootfs.display());
    }
    validate(&spec)?;
    Ok(Config {
        spec,
        bundle,
        rootfs,
    })
}

/// Parse config.json text; errors carry the JSON path of the offending field.
pub fn parse(data: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    match serde_path_to_error::deserialize::<_, Spec>(de) {
        Ok(spec) => Ok(spec),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() || path == "." || path == "?" {
                bail!("invalid JSON: {inner}")
            }
            bail!("{path}: {inner}")
        }
    }
}

/// The checks serde cannot express.
pub fn validate(spec: &Spec) -> Result<()> {
    if !spec.version().starts_with("1.") {
        bail!(
            "ociVersion: {:?} is not supported (this runtime implements 1.x)",
            spec.version()
        );
    }
    let process = spec
        .process()
        .as_ref()
        .context("process: missing (needed to create a container)")?;
    match process.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => bail!("process.args: must not be empty"),
    }
    if !process.cwd().is_absolute() {
        bail!(
            "process.cwd: {:?} must be an absolute path",
            process.cwd().display()
        );
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') {
                bail!("process.env[{i}]: {e:?} is not of the form KEY=VALUE");
            }
        }
    }
    let linux = spec.linux().as_ref().context("linux: missing")?;
    let mut seen = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            bail!(
                "linux.namespaces[{i}]: namespace type {} given twice",
                ns_name(ns.typ())
            );
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                bail!(
                    "linux.namespaces[{i}].path: {} must be absolute",
                    p.display()
                );
            }
            if !p.exists() {
                bail!("linux.namespaces[{i}].path: {} does not exist", p.display());
            }
        }
    }
    // A type not listed is the runtime's own (OCI): without a mount namespace the rootfs is
    // entered with chroot and its mounts are made in the host's (see hostmounts.rs).
    let has = |t| seen.contains(&t);
    let new_user = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if new_user && linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
        bail!("linux.uidMappings: required with a new user namespace");
    }
    if new_user && linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
        bail!("linux.gidMappings: required with a new user namespace");
    }
    if !has(LinuxNamespaceType::Uts) && spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) {
        bail!("hostname: setting it needs a new UTS namespace in linux.namespaces");
    }
    if !has(LinuxNamespaceType::Uts) && spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) {
        bail!("domainname: setting it needs a new UTS namespace in linux.namespaces");
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::Time && n.path().is_none())
    {
        bail!("linux.timeOffsets: needs a new time namespace in linux.namespaces");
    }
    if let Some(offsets) = linux.time_offsets() {
        for k in offsets.keys() {
            if k != "monotonic" && k != "boottime" {
                bail!("linux.timeOffsets: unknown clock {k:?} (monotonic or boottime)");
            }
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            bail!(
                "mounts[{i}].destination: {} must be absolute",
                m.destination().display()
            );
        }
    }
    if let Some(p) = linux.rootfs_propagation()
        && !p.is_empty()
        && crate::rootfs::propagation(p).is_none()
    {
        bail!("linux.rootfsPropagation: unknown value {p:?} (shared, slave, private, unbindable)");
    }
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        if r.soft() > r.hard() {
            bail!(
                "process.rlimits[{i}]: soft limit {} is above the hard limit {}",
                r.soft(),
                r.hard()
            );
        }
    }
    for key in linux.sysctl().iter().flatten().map(|(k, _)| k) {
        validate_sysctl(key, &has)?;
    }
    unsupported(spec)?;
    Ok(())
}

/// Only namespaced sysctls may be set, and only with their namespace: anything else would change
/// the host (runc's rules).
fn validate_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let k = key.replace('/', ".");
    let (ok, ns) = if IPC.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
        (has(LinuxNamespaceType::Ipc), "an IPC")
    } else if k.starts_with("net.") {
        (has(LinuxNamespaceType::Network), "a network")
    } else if k == "kernel.hostname" || k == "kernel.domainname" {
        (has(LinuxNamespaceType::Uts), "a UTS")
    } else {
        bail!("linux.sysctl: {key:?} is not namespaced: setting it would change the host");
    };
    if !ok {
        bail!("linux.sysctl: {key:?} needs {ns} namespace in linux.namespaces");
    }
    Ok(())
}

/// Fields of the spec this runtime does not implement yet: refuse them rather than ignore them.
fn unsupported(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref().expect("validated");
    let process = spec.process().as_ref().expect("validated");
    if linux.intel_rdt().is_some() {
        bail!("linux.intelRdt: not supported on this host (no resctrl filesystem)");
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        bail!("linux.netDevices: not supported yet");
    }
    if process
        .apparmor_profile()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        && !Path::new("/sys/kernel/security/apparmor").exists()
    {
        bail!("process.apparmorProfile: AppArmor is not enabled on this host");
    }
    if process
        .selinux_label()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        && !Path::new("/sys/fs/selinux/enforce").exists()
    {
        bail!("process.selinuxLabel: SELinux is not enabled on this host");
    }
    Ok(())
}

/// The spec's name of a namespace type.
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The clone flag of a namespace type.
pub fn ns_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<()> {
        validate(&parse(&serde_json::to_vec(&v).unwrap())?)
    }

    #[test]
    fn minimal_config_is_valid() {
        check(minimal()).unwrap();
    }

    #[test]
    fn empty_args_names_the_field() {
        let mut v = minimal();
        v["process"]["args"] = serde_json::json!([]);
        let e = check(v).unwrap_err().to_string();
        assert_eq!(e, "process.args: must not be empty");
    }

    #[test]
    fn bad_types_name_the_field() {
        let mut v = minimal();
        v["process"]["user"]["uid"] = serde_json::json!("root");
        let e = check(v).unwrap_err().to_string();
        assert!(e.starts_with("process.user.uid: "), "{e}");
        let mut v = minimal();
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_NOPE"]});
        let e = check(v).unwrap_err().to_string();
        assert!(e.contains("process.capabilities.bounding"), "{e}");
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let mut v = minimal();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "mount"}]);
        let e = check(v).unwrap_err().to_string();
        assert!(e.contains("given twice"), "{e}");
    }

    #[test]
    fn host_wide_sysctls_are_refused() {
        let mut v = minimal();
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "10"});
        let e = check(v).unwrap_err().to_string();
        assert!(e.contains("not namespaced"), "{e}");
        let mut v = minimal();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        let e = check(v).unwrap_err().to_string();
        assert!(e.contains("network namespace"), "{e}");
        let mut v = minimal();
        v["linux"]["sysctl"] = serde_json::json!({"kernel.shmmax": "1000000"});
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "ipc"}]);
        check(v).unwrap();
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let mut v = minimal();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "user"}]);
        let e = check(v).unwrap_err().to_string();
        assert!(e.starts_with("linux.uidMappings"), "{e}");
    }
}
