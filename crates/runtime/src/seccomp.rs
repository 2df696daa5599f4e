//! `linux.seccomp`: the OCI seccomp profile compiled to a BPF program with libseccomp, loaded
//! with seccomp(2) right before the exec.
//!
//! The program is compiled while the container is being set up (in the init, before it reports
//! ready), so `start` only pays for loading it; compiled programs are cached by a sha256 of the
//! profile, the libseccomp version and the kernel, under `<root>/.seccomp-cache` (Docker's
//! profile costs libseccomp ~15 ms of CPU, which every container would pay). With
//! `SCMP_ACT_NOTIFY` the filter is loaded with `SECCOMP_FILTER_FLAG_NEW_LISTENER` and the listener descriptor is sent to `listenerPath` with
//! the container process state, as the runtime spec says.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

/// A compiled filter, ready to load.
pub struct Compiled {
    bpf: Vec<u8>,
    flags: libc::c_ulong,
    notify: Option<Notify>,
    listener: Option<UnixStream>,
}

struct Notify {
    listener_path: std::path::PathBuf,
    metadata: String,
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<ScmpAction> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            let e = errno.unwrap_or(libc::EPERM as u32);
            if e > u16::MAX as u32 {
                bail!("{field}: errnoRet {e} is out of range");
            }
            ScmpAction::Errno(e as i32)
        }
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.unwrap_or(libc::EPERM as u32) as u16)
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn compare(
    op: LinuxSeccompOperator,
    index: usize,
    value: u64,
    two: Option<u64>,
) -> Result<ScmpArgCompare> {
    if index > 5 {
        bail!("args: index {index} is out of range (0-5)");
    }
    let (op, datum) = match op {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // OCI: value is the mask, valueTwo the value to compare the masked argument with.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            (ScmpCompareOp::MaskedEqual(value), two.unwrap_or(0))
        }
    };
    Ok(ScmpArgCompare::new(index as u32, op, datum))
}

/// Where compiled programs are kept (set once by `main`: below the state root, which is a tmpfs
/// on most hosts and so starts empty at each boot).
static CACHE_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Keep compiled programs in `dir`: libseccomp takes ~15 ms of CPU to compile Docker's default
/// profile, and engines give every container the same one.
pub fn set_cache_dir(dir: PathBuf) {
    let _ = CACHE_DIR.set(dir);
}

/// The cache key: the profile as given, and everything else the program depends on (the
/// libseccomp version, the kernel, the machine).
fn cache_key(s: &LinuxSeccomp) -> Option<String> {
    use sha2::{Digest, Sha256};
    let v = libseccomp::ScmpVersion::current().ok()?;
    // SAFETY: utsname is plain data filled by uname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| -> Vec<u8> {
        f.iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect()
    };
    let mut h = Sha256::new();
    h.update(format!(
        "berth-seccomp-v1 libseccomp {}.{}.{}\n",
        v.major, v.minor, v.micro
    ));
    h.update(field(&u.release));
    h.update(field(&u.version));
    h.update(field(&u.machine));
    h.update(serde_json::to_vec(s).ok()?);
    Some(hex::encode(h.finalize()))
}

fn cached(key: &str) -> Option<Vec<u8>> {
    let bpf = std::fs::read(CACHE_DIR.get()?.join(key)).ok()?;
    (!bpf.is_empty() && bpf.len() % std::mem::size_of::<libc::sock_filter>() == 0).then_some(bpf)
}

/// Store a program (atomically: readers see all of it or nothing). Best effort.
fn store(key: &str, bpf: &[u8]) {
    let Some(dir) = CACHE_DIR.get() else { return };
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    let _ = crate::sys::write_atomic(&dir.join(key), bpf);
}

/// Compile the profile, or take the program compiled for the same profile before.
pub fn compile(s: &LinuxSeccomp) -> Result<Compiled> {
    let key = CACHE_DIR.get().and_then(|_| cache_key(s));
    if let Some(bpf) = key.as_deref().and_then(cached) {
        let mut c = describe(s)?;
        c.bpf = bpf;
        return Ok(c);
    }
    let c = compile_uncached(s)?;
    if let Some(k) = &key {
        store(k, &c.bpf);
    }
    Ok(c)
}

/// What loading needs besides the program: flags and the notify listener.
fn describe(s: &LinuxSeccomp) -> Result<Compiled> {
    let mut flags: libc::c_ulong = 0;
    for f in s.flags().iter().flatten() {
        flags |= filter_flag(f);
    }
    let notify = s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|c| c.action() == LinuxSeccompAction::ScmpActNotify);
    if notify && s.listener_path().is_none() {
        bail!("linux.seccomp.listenerPath: required with SCMP_ACT_NOTIFY");
    }
    Ok(Compiled {
        bpf: Vec::new(),
        flags,
        notify: notify.then(|| Notify {
            listener_path: s.listener_path().clone().expect("checked"),
            metadata: s.listener_metadata().clone().unwrap_or_default(),
        }),
        listener: None,
    })
}

fn filter_flag(f: &LinuxSeccompFilterFlag) -> libc::c_ulong {
    match f {
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 32,
    }
}

/// Compile the profile with libseccomp. Syscall names this kernel or libseccomp does not know
/// are skipped, as runc does (profiles list syscalls of every kernel version).
fn compile_uncached(s: &LinuxSeccomp) -> Result<Compiled> {
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    let mut ctx = ScmpFilterContext::new(default).context("linux.seccomp: create filter")?;
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let name = serde_json::to_value(a)?;
        let name = name.as_str().unwrap_or_default();
        let arch = ScmpArch::from_str(name)
            .with_context(|| format!("linux.seccomp.architectures[{i}]: unknown {name:?}"))?;
        ctx.add_arch(arch)
            .with_context(|| format!("linux.seccomp.architectures[{i}]: {name}"))?;
    }
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(call.action(), call.errno_ret(), &field)?;
        if act == default {
            continue; // libseccomp refuses rules that repeat the default action
        }
        let args = call.args().clone().unwrap_or_default();
        let conds: Vec<ScmpArgCompare> = args
            .iter()
            .map(|a| compare(a.op(), a.index(), a.value(), a.value_two()))
            .collect::<Result<_>>()
            .with_context(|| field.clone())?;
        let mut indices: Vec<usize> = args.iter().map(|a| a.index()).collect();
        indices.sort_unstable();
        let repeated = indices.windows(2).any(|w| w[0] == w[1]);
        for name in call.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let r = if conds.is_empty() {
                ctx.add_rule(act, sc)
            } else if repeated {
                // Several conditions on one argument mean "any of them" (runc's reading).
                conds
                    .iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, sc, &[*c]).map(|_| ()))
                    .map(|_| &mut ctx)
            } else {
                ctx.add_rule_conditional(act, sc, &conds)
            };
            r.with_context(|| format!("{field}: rule for {name}"))?;
        }
    }
    // We load the program ourselves, so no_new_privs stays our decision (process.noNewPrivileges).
    ctx.set_ctl_nnp(false)?;
    let mut c = describe(s)?;
    c.bpf = export(&ctx).context("linux.seccomp: compile")?;
    Ok(c)
}

/// The BPF program of a filter, through a memfd (libseccomp writes it to a descriptor).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    // SAFETY: a valid C string; memfd_create returns a new descriptor or -1.
    let fd = crate::sys::check(unsafe {
        libc::memfd_create(c"seccomp-bpf".as_ptr(), libc::MFD_CLOEXEC)
    })?;
    // SAFETY: memfd_create returned a new descriptor nothing else owns.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    ctx.export_bpf(&f)?;
    f.rewind()?;
    let mut bpf = Vec::new();
    f.read_to_end(&mut bpf)?;
    Ok(bpf)
}

impl Compiled {
    /// Connect to `listenerPath` (a host path: call this before entering the container's
    /// root or mount namespace). Nothing to do without SCMP_ACT_NOTIFY.
    pub fn connect(&mut self) -> Result<()> {
        if let Some(n) = &self.notify {
            let sock = UnixStream::connect(&n.listener_path).with_context(|| {
                format!(
                    "linux.seccomp.listenerPath: connect {}",
                    n.listener_path.display()
                )
            })?;
            self.listener = Some(sock);
        }
        Ok(())
    }

    /// Load the filter into this process. `state` is the container's OCI state JSON and `pid`
    /// the host pid of this process (both for the listener).
    pub fn load(&self, state: &str, pid: i32) -> Result<()> {
        let prog = libc::sock_fprog {
            len: (self.bpf.len() / std::mem::size_of::<libc::sock_filter>()) as u16,
            filter: self.bpf.as_ptr() as *mut libc::sock_filter,
        };
        const NEW_LISTENER: libc::c_ulong = 8;
        let flags = self.flags
            | if self.notify.is_some() {
                NEW_LISTENER
            } else {
                0
            };
        // SAFETY: prog points at our BPF program, which outlives the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error()).context("linux.seccomp: load the filter");
        }
        if let Some(n) = &self.notify {
            // SAFETY: with NEW_LISTENER, seccomp returned a new descriptor nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(r as i32) };
            let sock = self
                .listener
                .as_ref()
                .context("linux.seccomp.listenerPath: not connected")?;
            send_listener(n, sock, &fd, state, pid)?;
        }
        Ok(())
    }
}

fn send_listener(n: &Notify, sock: &UnixStream, fd: &OwnedFd, state: &str, pid: i32) -> Result<()> {
    use std::os::fd::AsRawFd;
    let state: serde_json::Value = serde_json::from_str(state).unwrap_or_default();
    let msg = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": n.metadata,
        "state": state,
    })
    .to_string();
    berth_sys::fdpass::send_fds(&sock.as_raw_fd(), &[fd.as_raw_fd()], msg.as_bytes())
        .context("linux.seccomp.listenerPath: send the listener")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_compiles_and_skips_unknown_names() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "write", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }))
        .unwrap();
        let c = compile(&s).unwrap();
        assert!(c.bpf.len() > 8 && c.bpf.len().is_multiple_of(8));
        assert!(c.notify.is_none());
    }

    #[test]
    fn notify_needs_a_listener() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .unwrap();
        let e = compile(&s).err().unwrap().to_string();
        assert!(e.contains("listenerPath"), "{e}");
    }
}
