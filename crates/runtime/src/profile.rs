//! Docker's default security profile: its capability set and its default seccomp profile.
//!
//! `profiles/docker-default.json` is Docker's default seccomp profile (Apache-2.0), as of
//! `github.com/moby/profiles/seccomp` v0.2.3 (`seccomp/default.json`, which moby vendors; it
//! used to be moby's `profiles/seccomp/default.json`). Like Docker 25 and later it does not
//! allow io_uring (`io_uring_setup`, `io_uring_enter`, `io_uring_register` get the default
//! EPERM), and `socket` refuses AF_ALG (38) and AF_VSOCK (40). It is kept in Docker's own
//! format: besides plain rules it has rules that apply only `includes` (or unless `excludes`)
//! some capabilities, architectures or a minimum kernel version. [`resolve`] turns it into a
//! plain OCI `linux.seccomp` the way Docker does (moby's `setupSeccomp`): the architectures of
//! the host's entry in `archMap`, and only the rules whose conditions hold for the container's
//! bounding capabilities, the host architecture and the running kernel.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Value, json};

/// Docker's default capabilities (moby's `oci/caps.DefaultCapabilities`).
pub const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// moby's default seccomp profile, in Docker's format.
const DOCKER_SECCOMP: &str = include_str!("../profiles/docker-default.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    caps: Vec<String>,
    min_kernel: Option<String>,
}

/// Where the profile is resolved: the architecture (Go's name: amd64, arm64, ...), the
/// capabilities and the kernel version.
pub struct Target<'a> {
    /// Go's name of the architecture (`runtime.GOARCH`).
    pub goarch: &'a str,
    /// The container's bounding capabilities.
    pub caps: &'a [&'a str],
    /// The running kernel's (major, minor) version.
    pub kernel: (u32, u32),
}

/// Go's name of the architecture this binary is built for.
pub fn host_goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64" => "mips64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The architecture name the profile's `includes.arches`/`excludes.arches` use for a Go
/// architecture (moby's `goToNative`: libseccomp's names, `x86` for Go's `386`).
fn profile_arch(goarch: &str) -> &str {
    match goarch {
        "386" => "x86",
        "loong64" => "loongarch64",
        "mips64p32" => "mips64n32",
        "mips64le" => "mipsel64",
        "mips64p32le" => "mipsel64n32",
        "mipsle" => "mipsel",
        other => other,
    }
}

/// libseccomp's name of a Go architecture (moby's `goToNative`).
fn native_arch(goarch: &str) -> Option<&'static str> {
    Some(match goarch {
        "386" => "SCMP_ARCH_X86",
        "amd64" => "SCMP_ARCH_X86_64",
        "arm" => "SCMP_ARCH_ARM",
        "arm64" => "SCMP_ARCH_AARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mipsel64n32" => "SCMP_ARCH_MIPSEL64N32",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390x" => "SCMP_ARCH_S390X",
        "loong64" => "SCMP_ARCH_LOONGARCH64",
        _ => return None,
    })
}

/// The (major, minor) version of the running kernel ((0, 0) if it cannot be read).
pub fn kernel_version() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|r| parse_version(&r))
        .unwrap_or((0, 0))
}

/// "6.1.0-13-amd64" → (6, 1).
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.trim().split(['.', '-', '+']);
    let major = it.next()?.parse().ok()?;
    let minor = it
        .next()
        .map(|m| {
            m.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    Some((major, minor))
}

/// Resolve a profile in Docker's format into a plain OCI `linux.seccomp` for `target`.
pub fn resolve(text: &str, target: &Target) -> Result<Value> {
    let p: Profile = serde_json::from_str(text).context("seccomp profile")?;
    let has_cap = |c: &String| target.caps.iter().any(|t| t == c);
    let kernel_at_least = |v: &String| -> Result<bool> {
        let want = parse_version(v).with_context(|| format!("minKernel {v:?}"))?;
        Ok(target.kernel >= want)
    };
    let mut arches = Vec::new();
    if let Some(native) = native_arch(target.goarch) {
        for a in p.arch_map.iter().filter(|a| a.architecture == native) {
            arches.push(a.architecture.clone());
            arches.extend(a.sub_architectures.iter().flatten().cloned());
        }
    }
    let arch = profile_arch(target.goarch);
    let mut rules = Vec::new();
    for (i, r) in p.syscalls.iter().enumerate() {
        let ex = &r.excludes;
        if ex.arches.iter().any(|a| a == arch) || ex.caps.iter().any(has_cap) {
            continue;
        }
        if let Some(v) = &ex.min_kernel
            && kernel_at_least(v).with_context(|| format!("syscalls[{i}].excludes"))?
        {
            continue;
        }
        let inc = &r.includes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            continue;
        }
        if !inc.caps.iter().all(has_cap) {
            continue;
        }
        if let Some(v) = &inc.min_kernel
            && !kernel_at_least(v).with_context(|| format!("syscalls[{i}].includes"))?
        {
            continue;
        }
        if r.names.is_empty() {
            bail!("syscalls[{i}]: no names");
        }
        let mut rule = json!({"names": r.names, "action": r.action});
        if let Some(e) = r.errno_ret {
            rule["errnoRet"] = json!(e);
        }
        if let Some(a) = &r.args {
            rule["args"] = json!(a);
        }
        rules.push(rule);
    }
    let mut out = json!({"defaultAction": p.default_action});
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if !arches.is_empty() {
        out["architectures"] = json!(arches);
    }
    out["syscalls"] = json!(rules);
    Ok(out)
}

/// Docker's default seccomp profile for a container with bounding capabilities `caps`, on this
/// host's architecture and kernel.
pub fn docker_seccomp(caps: &[&str]) -> Value {
    let target = Target {
        goarch: host_goarch(),
        caps,
        kernel: kernel_version(),
    };
    resolve(DOCKER_SECCOMP, &target).expect("the built-in profile resolves")
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};

    fn amd64(caps: &[&str]) -> Value {
        let t = Target {
            goarch: "amd64",
            caps,
            kernel: (6, 1),
        };
        resolve(DOCKER_SECCOMP, &t).unwrap()
    }

    /// Every rule naming `name`, as (action, errnoRet, args).
    fn rules_for(p: &Value, name: &str) -> Vec<Value> {
        p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
            .cloned()
            .collect()
    }

    #[test]
    fn docker_default_parses_and_compiles() {
        let v = docker_seccomp(&DOCKER_CAPS);
        let s: LinuxSeccomp = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        crate::seccomp::compile(&s).unwrap();
        // And it survives the whole config path (spec --profile docker).
        let text = serde_json::to_vec(&crate::commands::spec::docker_spec()).unwrap();
        let spec = crate::config::parse(&text).unwrap();
        crate::config::validate(&spec).unwrap();
    }

    #[test]
    fn x86_64_arches_and_default_caps() {
        let p = amd64(&DOCKER_CAPS);
        assert_eq!(
            p["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let arm = resolve(
            DOCKER_SECCOMP,
            &Target {
                goarch: "arm64",
                caps: &DOCKER_CAPS,
                kernel: (6, 1),
            },
        )
        .unwrap();
        assert_eq!(
            arm["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        assert_eq!(rules_for(&arm, "set_tls").len(), 1);
        assert!(rules_for(&arm, "arch_prctl").is_empty());
        // 32-bit x86: the profile calls it x86 (Go: 386).
        let x86 = resolve(
            DOCKER_SECCOMP,
            &Target {
                goarch: "386",
                caps: &DOCKER_CAPS,
                kernel: (6, 1),
            },
        )
        .unwrap();
        assert_eq!(x86["architectures"], json!(null));
        assert_eq!(rules_for(&x86, "modify_ldt").len(), 1);
        assert!(rules_for(&x86, "arch_prctl").is_empty());

        // The big allow list and the x86-only rules.
        for n in [
            "read",
            "openat",
            "mkdirat",
            "execve",
            "arch_prctl",
            "modify_ldt",
        ] {
            assert_eq!(rules_for(&p, n).len(), 1, "{n}");
        }
        // chroot comes with CAP_SYS_CHROOT, which is a default capability; the rest of the
        // capability-gated groups are not there.
        assert_eq!(rules_for(&p, "chroot").len(), 1);
        for n in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "reboot",
            "bpf",
            "perf_event_open",
            "init_module",
            "kcmp",
            "pidfd_getfd",
            "settimeofday",
            "open_by_handle_at",
            "syslog",
            "acct",
            "iopl",
            "vhangup",
            "mbind",
            "keyctl",
            "add_key",
            "set_tls",
        ] {
            assert!(rules_for(&p, n).is_empty(), "{n} should not be allowed");
        }
        // ptrace comes with kernel 4.8 or later, whatever the capabilities.
        assert_eq!(rules_for(&p, "ptrace").len(), 1);
        let old = resolve(
            DOCKER_SECCOMP,
            &Target {
                goarch: "amd64",
                caps: &DOCKER_CAPS,
                kernel: (4, 4),
            },
        )
        .unwrap();
        assert!(rules_for(&old, "ptrace").is_empty());
    }

    #[test]
    fn conditional_rules_without_sys_admin() {
        let p = amd64(&DOCKER_CAPS);
        // clone: only without namespace flags (index 0 on x86); clone3: ENOSYS.
        assert_eq!(
            rules_for(&p, "clone"),
            vec![json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}]})]
        );
        assert_eq!(
            rules_for(&p, "clone3"),
            vec![json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})]
        );
        // socket: anything but AF_ALG (38) and AF_VSOCK (40).
        let socket: Vec<Value> = rules_for(&p, "socket")
            .iter()
            .map(|r| r["args"].clone())
            .collect();
        assert_eq!(
            socket,
            [
                json!([{"index": 0, "value": 38, "op": "SCMP_CMP_LT"}]),
                json!([{"index": 0, "value": 39, "op": "SCMP_CMP_EQ"}]),
                json!([{"index": 0, "value": 40, "op": "SCMP_CMP_GT"}]),
            ]
        );
        // No io_uring (Docker 25 and later): the default action (EPERM) answers.
        for n in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
            assert!(rules_for(&p, n).is_empty(), "{n} is allowed");
        }
        // Newer syscalls of Docker's allow list.
        for n in ["fchmodat2", "futex_wait", "cachestat", "mseal", "statmount"] {
            assert_eq!(rules_for(&p, n).len(), 1, "{n}");
        }
        let persona: Vec<u64> = rules_for(&p, "personality")
            .iter()
            .map(|r| r["args"][0]["value"].as_u64().unwrap())
            .collect();
        assert_eq!(persona, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
    }

    #[test]
    fn sys_admin_unlocks_its_group() {
        let mut caps = DOCKER_CAPS.to_vec();
        caps.push("CAP_SYS_ADMIN");
        let p = amd64(&caps);
        for n in ["mount", "umount2", "unshare", "setns", "bpf", "clone3"] {
            let r = rules_for(&p, n);
            assert!(
                r.iter()
                    .any(|r| r["action"] == "SCMP_ACT_ALLOW" && r["args"].is_null()),
                "{n}: {r:?}"
            );
        }
        // The masked clone and the ENOSYS clone3 rules are gone.
        assert_eq!(rules_for(&p, "clone").len(), 1);
        assert_eq!(rules_for(&p, "clone3").len(), 1);
        let s: LinuxSeccomp = serde_json::from_value(p).unwrap();
        crate::seccomp::compile(&s).unwrap();
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_version("6.18.44-fc-v445"), Some((6, 18)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("5.10.0+"), Some((5, 10)));
        assert_eq!(parse_version("5"), Some((5, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(kernel_version() >= (3, 0));
    }
}
