//! `linux.resources.devices` on cgroup v2: a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to
//! the container's cgroup, as runc and crun do.
//!
//! The program (runc's `devicefilter`) checks the rules from the last to the first and returns
//! the verdict of the first one that matches, so the last matching rule wins; no match denies.
//! It is loaded and attached with raw `bpf(2)` calls; on a later `apply` the new program is
//! attached first (`BPF_F_ALLOW_MULTI`) and the ones attached before are detached after, so
//! there is no moment without a filter.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::fsutil::io_err;
use crate::{Error, Result};

// bpf(2) commands, program and attach types, flags (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

// `struct bpf_cgroup_dev_ctx`: access_type is (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (dst & 0xf) | (src << 4),
            off,
            imm,
        }
    }
    /// `dst = *(u32 *)(src + off)`
    const fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(0x61, dst, src, off, 0) // BPF_LDX | BPF_MEM | BPF_W
    }
    /// `dst = (u32)src`
    const fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn::new(0xbc, dst, src, 0, 0) // BPF_ALU | BPF_MOV | BPF_X
    }
    /// `dst = imm` (64 bit)
    const fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(0xb7, dst, 0, 0, imm) // BPF_ALU64 | BPF_MOV | BPF_K
    }
    /// `dst &= imm` (32 bit)
    const fn and32_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(0x54, dst, 0, 0, imm) // BPF_ALU | BPF_AND | BPF_K
    }
    /// `dst >>= imm` (32 bit)
    const fn rsh32_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(0x74, dst, 0, 0, imm) // BPF_ALU | BPF_RSH | BPF_K
    }
    /// `if dst != imm goto +off`
    const fn jne_imm(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(0x55, dst, 0, off, imm) // BPF_JMP | BPF_JNE | BPF_K
    }
    /// `if dst != src goto +off`
    const fn jne_reg(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(0x5d, dst, src, off, 0) // BPF_JMP | BPF_JNE | BPF_X
    }
    const fn exit() -> Insn {
        Insn::new(0x95, 0, 0, 0, 0) // BPF_JMP | BPF_EXIT
    }
}

/// A device rule reduced to what the program compares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    /// `DEV_BLOCK`, `DEV_CHAR`, or `None` for every type.
    typ: Option<i32>,
    major: Option<u32>,
    minor: Option<u32>,
    /// `ACC_*` bits.
    access: i32,
}

fn rule(d: &LinuxDeviceCgroup) -> Result<Rule> {
    let access_str = d.access().clone().unwrap_or_else(|| "rwm".into());
    let mut access = 0;
    for c in access_str.chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        };
    }
    if access_str.is_empty() || !access_str.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(Error::Invalid {
            field: "devices.access",
            reason: format!("{access_str:?} is not a subset of \"rwm\""),
        });
    }
    let typ = match d.typ().unwrap_or_default() {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(DEV_BLOCK),
        LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
        LinuxDeviceType::P => {
            return Err(Error::Invalid {
                field: "devices.type",
                reason: "\"p\" (fifo) is not a device cgroup type: use a, b or c".into(),
            });
        }
    };
    let num = |n: Option<i64>, field: &'static str| -> Result<Option<u32>> {
        match n {
            None => Ok(None),
            Some(n) if n < 0 => Ok(None),
            Some(n) => u32::try_from(n).map(Some).map_err(|_| Error::Invalid {
                field,
                reason: format!("{n} is out of range"),
            }),
        }
    };
    Ok(Rule {
        allow: d.allow(),
        typ,
        major: num(d.major(), "devices.major")?,
        minor: num(d.minor(), "devices.minor")?,
        access,
    })
}

/// The program for `rules` (runc's devicefilter): last matching rule wins, default deny.
pub(crate) fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let rules = rules.iter().map(rule).collect::<Result<Vec<_>>>()?;
    // r1 = ctx; r2 = device type, r3 = requested access, r4 = major, r5 = minor
    let mut p = vec![
        Insn::ldx_w(2, 1, 0),
        Insn::and32_imm(2, 0xffff),
        Insn::ldx_w(3, 1, 0),
        Insn::rsh32_imm(3, 16),
        Insn::ldx_w(4, 1, 4),
        Insn::ldx_w(5, 1, 8),
    ];
    for r in rules.iter().rev() {
        // Conditions jump to the end of the block: build them with a placeholder offset,
        // then patch once the block's length is known.
        let mut block: Vec<Insn> = Vec::new();
        if let Some(t) = r.typ {
            block.push(Insn::jne_imm(2, t, 0));
        }
        if r.access != ACC_READ | ACC_WRITE | ACC_MKNOD {
            // the request must be a subset of the rule's access: (r3 & access) == r3
            block.push(Insn::mov32_reg(1, 3));
            block.push(Insn::and32_imm(1, r.access));
            block.push(Insn::jne_reg(1, 3, 0));
        }
        if let Some(m) = r.major {
            block.push(Insn::jne_imm(4, m as i32, 0));
        }
        if let Some(m) = r.minor {
            block.push(Insn::jne_imm(5, m as i32, 0));
        }
        block.push(Insn::mov64_imm(0, i32::from(r.allow)));
        block.push(Insn::exit());
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if matches!(insn.code, 0x55 | 0x5d) {
                insn.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
        if r.typ.is_none()
            && r.major.is_none()
            && r.minor.is_none()
            && r.access == ACC_READ | ACC_WRITE | ACC_MKNOD
        {
            // matches everything: the rules before it and the default can never be reached
            // (and the verifier refuses unreachable instructions)
            return Ok(p);
        }
    }
    p.push(Insn::mov64_imm(0, 0));
    p.push(Insn::exit());
    Ok(p)
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i64> {
    // SAFETY: bpf(2) with a pointer to a properly sized, zero-padded attribute struct that
    // lives for the duration of the call; the size passed is that of the struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `union bpf_attr` for BPF_PROG_LOAD (fields up to `expected_attach_type`, zero padded).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    pad: [u64; 4],
}

/// `union bpf_attr` for BPF_PROG_ATTACH / BPF_PROG_DETACH.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    pad: [u32; 3],
}

/// `union bpf_attr` for BPF_PROG_QUERY.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

/// `union bpf_attr` for BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    pad: u32,
}

fn unsupported(what: &str, dir: &Path, e: std::io::Error) -> Error {
    Error::Unsupported(format!(
        "linux.resources.devices on cgroup v2 needs a BPF device program: {what} for {}: {e}",
        dir.display()
    ))
}

/// Load `insns` as a cgroup device program; returns its fd.
fn load(insns: &[Insn], dir: &Path) -> Result<OwnedFd> {
    let license = CString::new("Apache").expect("no NUL");
    let mut name = [0u8; 16];
    name[..5].copy_from_slice(b"berth");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: a successful BPF_PROG_LOAD returns a new descriptor that we now own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // again with the verifier's log, to say why
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let again = bpf(BPF_PROG_LOAD, &mut attr);
            if let Ok(fd) = again {
                // SAFETY: as above.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
            }
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err(Error::Unsupported(format!(
                "load the BPF device program for {}: {e}: {}",
                dir.display(),
                String::from_utf8_lossy(&log[..end]).trim()
            )))
        }
        Err(e) => Err(unsupported("BPF_PROG_LOAD", dir, e)),
    }
}

/// Ids of the device programs attached directly to the cgroup of `cg`.
fn attached(cg: &File, dir: &Path) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|e| unsupported("BPF_PROG_QUERY", dir, e))?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Detach program `id` from the cgroup of `cg`; one that has gone already is fine.
fn detach(cg: &File, id: u32, dir: &Path) -> Result<()> {
    let mut get = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    let fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut get) {
        // SAFETY: a successful BPF_PROG_GET_FD_BY_ID returns a new descriptor that we own.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd as i32) },
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(unsupported("BPF_PROG_GET_FD_BY_ID", dir, e)),
    };
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    match bpf(BPF_PROG_DETACH, &mut attr) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(unsupported("BPF_PROG_DETACH", dir, e)),
    }
}

/// Enforce `rules` on the cgroup `dir`: attach the new program, then detach the old ones.
/// An empty list leaves the cgroup as it is (as on v1).
pub(crate) fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let insns = program(rules)?;
    let cg = File::open(dir).map_err(|e| io_err("open", dir, e))?;
    let old = attached(&cg, dir)?;
    let prog = load(&insns, dir)?;
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| unsupported("BPF_PROG_ATTACH", dir, e))?;
    for id in old {
        detach(&cg, id, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn r(
        allow: bool,
        typ: LinuxDeviceType,
        major: i64,
        minor: i64,
        access: &str,
    ) -> LinuxDeviceCgroup {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .major(major)
            .minor(minor)
            .access(access)
            .build()
            .unwrap()
    }

    /// Run the program on (type, access, major, minor) the way the kernel would.
    fn eval(p: &[Insn], typ: i32, acc: i32, major: u32, minor: u32) -> i64 {
        let mut reg = [0i64; 11];
        let ctx = [((acc << 16) | typ) as u32, major, minor];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                0x61 => reg[dst] = i64::from(ctx[(i.off / 4) as usize]),
                0xbc => reg[dst] = reg[src] & 0xffff_ffff,
                0xb7 => reg[dst] = i64::from(i.imm),
                0x54 => reg[dst] = (reg[dst] & i64::from(i.imm)) & 0xffff_ffff,
                0x74 => reg[dst] = (reg[dst] & 0xffff_ffff) >> i.imm,
                0x55 => {
                    if reg[dst] != i64::from(i.imm) {
                        pc += i.off as usize;
                    }
                }
                0x5d => {
                    if reg[dst] != reg[src] {
                        pc += i.off as usize;
                    }
                }
                0x95 => return reg[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn last_matching_rule_wins() {
        use LinuxDeviceType::{A, B, C};
        let rules = vec![
            r(false, A, -1, -1, "rwm"),
            r(true, C, -1, -1, "m"),
            r(true, C, 1, 3, "rwm"),
            r(true, B, 8, 0, "rwm"),
            r(false, B, 8, 0, "r"),
        ];
        let p = program(&rules).unwrap();
        // the deny-all rule is the last block checked and short-cuts the rest
        assert_eq!(p.last(), Some(&Insn::exit()));
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1);
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ, 1, 5), 0);
        assert_eq!(eval(&p, DEV_CHAR, ACC_MKNOD, 1, 5), 1);
        assert_eq!(eval(&p, DEV_BLOCK, ACC_MKNOD, 8, 1), 0);
        assert_eq!(eval(&p, DEV_BLOCK, ACC_READ, 8, 0), 0);
        assert_eq!(eval(&p, DEV_BLOCK, ACC_WRITE, 8, 0), 1);
        assert_eq!(eval(&p, DEV_BLOCK, ACC_MKNOD, 8, 0), 1);
        // no rule at all matches: deny
        let p = program(&[r(true, C, 1, 3, "rwm")]).unwrap();
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ, 1, 5), 0);
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
        // allow everything
        let p = program(&[r(true, A, -1, -1, "rwm")]).unwrap();
        assert_eq!(eval(&p, DEV_BLOCK, ACC_READ, 8, 0), 1);
        assert!(program(&[r(true, A, -1, -1, "x")]).is_err());
    }

    /// Exit code of `head -c 1 DEV` run by a child moved into the cgroup `dir` before exec.
    fn open_in(dir: &Path, dev: &str) -> i32 {
        use std::os::unix::process::CommandExt;
        let procs = CString::new(dir.join("cgroup.procs").to_str().unwrap()).unwrap();
        let mut cmd = std::process::Command::new("head");
        cmd.args(["-c", "1", dev])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: only async-signal-safe calls (open, write, close) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            })
        };
        cmd.status().expect("spawn head").code().unwrap_or(-1)
    }

    /// Load, attach and replace a program on a real cgroup2 directory (the unified hierarchy
    /// of a hybrid host works too). Needs root.
    #[test]
    fn attach_and_replace_on_a_cgroup2_directory() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let mount = match crate::Layout::detect() {
            Ok(crate::Layout::V2 { root }) => root,
            Ok(crate::Layout::V1 {
                unified: Some(u), ..
            }) => u,
            _ => return,
        };
        let dir = mount.join(format!("berth-devices-unit-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("mkdir test cgroup");
        struct Rm<'a>(&'a Path);
        impl Drop for Rm<'_> {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir(self.0);
            }
        }
        let _rm = Rm(&dir);
        use LinuxDeviceType::{A, C};
        apply(&dir, &[r(false, A, -1, -1, "rwm"), r(true, C, 1, 3, "rwm")]).expect("apply");
        let cg = File::open(&dir).unwrap();
        assert_eq!(attached(&cg, &dir).unwrap().len(), 1);
        assert_eq!(open_in(&dir, "/dev/null"), 0);
        assert_ne!(open_in(&dir, "/dev/zero"), 0, "/dev/zero should be denied");
        // replaced, not stacked: the new program alone decides
        apply(&dir, &[r(false, A, -1, -1, "rwm"), r(true, C, 1, 5, "r")]).expect("apply again");
        assert_eq!(attached(&cg, &dir).unwrap().len(), 1);
        assert_eq!(
            open_in(&dir, "/dev/zero"),
            0,
            "/dev/zero should be allowed now"
        );
        assert_ne!(
            open_in(&dir, "/dev/null"),
            0,
            "/dev/null should be denied now"
        );
        // an empty list changes nothing
        apply(&dir, &[]).unwrap();
        assert_eq!(attached(&cg, &dir).unwrap().len(), 1);
    }
}
