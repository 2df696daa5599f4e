//! `spec`: write a default config.json, as `runc spec` does.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::state::OCI_VERSION;

/// The default config (runc's), or its rootless variant.
pub fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
                            "/sys/devices/virtual/powercap"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        // SAFETY: getuid/getgid have no arguments.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let linux = &mut spec["linux"];
        linux.as_object_mut().expect("object").remove("resources");
        linux["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                                     {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}]);
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        let mounts = spec["mounts"].as_array_mut().expect("array");
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
        for m in mounts.iter_mut() {
            if m["destination"] == "/dev/pts" {
                m["options"] = json!([
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620"
                ]);
            }
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
        }
    }
    spec
}

/// The security profiles `spec --profile` knows.
pub const PROFILES: &[&str] = &["docker"];

/// Apply Docker's default security profile to a config: Docker's default capabilities (bounding,
/// effective and permitted; no inheritable or ambient ones) and its default seccomp profile
/// resolved for them.
pub fn apply_docker_profile(spec: &mut Value) {
    apply_docker_profile_for(spec, &crate::profile::DOCKER_CAPS);
}

/// [`apply_docker_profile`] for the capability set `caps` instead of Docker's default one: the
/// seccomp profile's conditional rules follow the capabilities, as Docker resolves them for
/// `--cap-add`/`--cap-drop` (CAP_SYS_ADMIN allows mount, unshare, setns, ...).
pub fn apply_docker_profile_for(spec: &mut Value, caps: &[&str]) {
    spec["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    spec["linux"]["seccomp"] = crate::profile::docker_seccomp(caps);
    spec["linux"]["maskedPaths"] = json!(docker_masked_paths());
}

/// Docker's masked paths (moby's `oci.DefaultLinuxSpec`): runc's list plus `/proc/interrupts`
/// (GHSA-6fw5-f8r9-fgfm) and each CPU's `thermal_throttle` directory where the host has one
/// (its counters leak what other tenants run, GHSA-jq35-85cj-fj4p).
fn docker_masked_paths() -> Vec<String> {
    let mut paths: Vec<String> = [
        "/proc/asound",
        "/proc/acpi",
        "/proc/interrupts",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ]
    .map(String::from)
    .to_vec();
    if let Ok(rd) = std::fs::read_dir("/sys/devices/system/cpu") {
        let mut cpus: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.strip_prefix("cpu")
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|n| format!("/sys/devices/system/cpu/{n}/thermal_throttle"))
            .filter(|p| std::path::Path::new(p).is_dir())
            .collect();
        cpus.sort();
        paths.extend(cpus);
    }
    paths
}

/// The default config with Docker's default security profile.
#[cfg(test)]
pub fn docker_spec() -> Value {
    let mut spec = default_spec(false);
    apply_docker_profile(&mut spec);
    spec
}

/// Write BUNDLE/config.json; refuses to overwrite one. `profile` selects a security profile
/// (`docker`); without it the config is runc's.
/// `caps` (with the docker profile): the capability set, comma-separated, that the process gets
/// and the seccomp profile is resolved for.
pub fn run(bundle: &Path, rootless: bool, profile: Option<&str>, caps: Option<&str>) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} already exists: remove it first", path.display());
    }
    let mut spec = default_spec(rootless);
    match (profile, caps) {
        (None, Some(_)) => bail!("--caps needs --profile docker"),
        (None, None) => {}
        (Some("docker"), None) => apply_docker_profile(&mut spec),
        (Some("docker"), Some(list)) => {
            let caps: Vec<&str> = list.split(',').filter(|c| !c.is_empty()).collect();
            if let Some(bad) = caps.iter().find(|c| c.parse::<caps::Capability>().is_err()) {
                bail!("--caps: unknown capability {bad:?} (names like CAP_SYS_ADMIN)");
            }
            apply_docker_profile_for(&mut spec, &caps);
        }
        (Some(p), _) => bail!(
            "--profile: unknown profile {p:?} (known: {})",
            PROFILES.join(", ")
        ),
    }
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specs_are_valid_configs() {
        for rootless in [false, true] {
            let text = serde_json::to_vec(&default_spec(rootless)).unwrap();
            let spec = crate::config::parse(&text).unwrap();
            crate::config::validate(&spec).unwrap();
        }
    }

    #[test]
    fn docker_profile_sets_caps_and_seccomp() {
        let spec = docker_spec();
        let caps = &spec["process"]["capabilities"];
        assert_eq!(caps["bounding"].as_array().unwrap().len(), 14);
        assert_eq!(caps["bounding"], caps["effective"]);
        assert_eq!(caps["bounding"], caps["permitted"]);
        assert!(caps.get("ambient").is_none() && caps.get("inheritable").is_none());
        assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        // Docker's masked paths: runc's and /proc/interrupts.
        let masked = spec["linux"]["maskedPaths"].as_array().unwrap();
        assert!(masked.contains(&json!("/proc/interrupts")));
        let plain = default_spec(false);
        for p in plain["linux"]["maskedPaths"].as_array().unwrap() {
            assert!(masked.contains(p), "{p}");
        }
        // Everything else is the plain config's.
        let mut plain = plain;
        plain["process"]["capabilities"] = caps.clone();
        plain["linux"]["seccomp"] = spec["linux"]["seccomp"].clone();
        plain["linux"]["maskedPaths"] = spec["linux"]["maskedPaths"].clone();
        assert!(plain == spec, "only caps, seccomp and masked paths differ");
    }
}
