//! CRIU through its RPC, as runc and crun drive it: `criu swrk FD` is started with one end of a
//! SOCK_SEQPACKET socketpair, gets one request (a `criu_req` of images/rpc.proto), may send
//! notifications that we answer (restore's `setup-namespaces`, `post-restore`,
//! `orphan-pts-master` with a descriptor), and ends with its response.
//!
//! The messages are the subset of rpc.proto (CRIU 4.1) that we send and read, declared with
//! prost's derive: the tags are rpc.proto's, so the wire format is CRIU's.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use prost::Message;

use crate::sys;

/// `criu_page_server_info`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PageServerInfo {
    /// Address of the page server.
    #[prost(string, optional, tag = "1")]
    pub address: Option<String>,
    /// Its port.
    #[prost(int32, optional, tag = "2")]
    pub port: Option<i32>,
}

/// `ext_mount_map`: an external mount, by its key in the images.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExtMountMap {
    /// The key (at dump: the mount point in the container).
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// At dump the same; at restore the host path to bind there.
    #[prost(string, required, tag = "2")]
    pub val: String,
}

/// `inherit_fd`: a descriptor of the criu process that stands for a resource the images name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InheritFd {
    /// The resource (`pipe:[123]`, `extRootNetNS`).
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// The descriptor number in the criu process.
    #[prost(int32, required, tag = "2")]
    pub fd: i32,
}

/// `cgroup_root`: where a controller's tree is restored.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CgroupRoot {
    /// Controller(s) (`cpu,cpuacct`); none: every controller.
    #[prost(string, optional, tag = "1")]
    pub ctrl: Option<String>,
    /// Path inside the hierarchy.
    #[prost(string, required, tag = "2")]
    pub path: String,
}

/// `criu_cg_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgMode {
    /// Leave cgroups alone.
    Ignore = 0,
    /// Restore properties of cgroups criu creates.
    Soft = 3,
    /// Restore all properties.
    Full = 4,
    /// Fail when a cgroup is missing.
    Strict = 5,
}

impl CgMode {
    /// runc's `--manage-cgroups-mode` values.
    pub fn parse(s: &str) -> Result<CgMode> {
        Ok(match s {
            "soft" => CgMode::Soft,
            "full" => CgMode::Full,
            "strict" => CgMode::Strict,
            "ignore" => CgMode::Ignore,
            _ => bail!("--manage-cgroups-mode: {s:?} is not one of soft, full, strict, ignore"),
        })
    }
}

/// `criu_opts` (the fields we use).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Opts {
    #[prost(int32, required, tag = "1")]
    pub images_dir_fd: i32,
    #[prost(int32, optional, tag = "2")]
    pub pid: Option<i32>,
    #[prost(bool, optional, tag = "3")]
    pub leave_running: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    pub ext_unix_sk: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    pub tcp_established: Option<bool>,
    #[prost(bool, optional, tag = "7")]
    pub shell_job: Option<bool>,
    #[prost(bool, optional, tag = "8")]
    pub file_locks: Option<bool>,
    #[prost(int32, optional, tag = "9")]
    pub log_level: Option<i32>,
    #[prost(string, optional, tag = "10")]
    pub log_file: Option<String>,
    #[prost(message, optional, tag = "11")]
    pub ps: Option<PageServerInfo>,
    #[prost(bool, optional, tag = "12")]
    pub notify_scripts: Option<bool>,
    #[prost(string, optional, tag = "13")]
    pub root: Option<String>,
    #[prost(string, optional, tag = "14")]
    pub parent_img: Option<String>,
    #[prost(bool, optional, tag = "15")]
    pub track_mem: Option<bool>,
    #[prost(bool, optional, tag = "16")]
    pub auto_dedup: Option<bool>,
    #[prost(int32, optional, tag = "17")]
    pub work_dir_fd: Option<i32>,
    #[prost(message, repeated, tag = "23")]
    pub ext_mnt: Vec<ExtMountMap>,
    #[prost(bool, optional, tag = "24")]
    pub manage_cgroups: Option<bool>,
    #[prost(message, repeated, tag = "25")]
    pub cg_root: Vec<CgroupRoot>,
    #[prost(bool, optional, tag = "26")]
    pub rst_sibling: Option<bool>,
    #[prost(message, repeated, tag = "27")]
    pub inherit_fd: Vec<InheritFd>,
    #[prost(int32, optional, tag = "34")]
    pub manage_cgroups_mode: Option<i32>,
    #[prost(string, repeated, tag = "37")]
    pub external: Vec<String>,
    #[prost(uint32, optional, tag = "38")]
    pub empty_ns: Option<u32>,
    #[prost(string, optional, tag = "44")]
    pub freeze_cgroup: Option<String>,
    #[prost(bool, optional, tag = "48")]
    pub lazy_pages: Option<bool>,
    #[prost(int32, optional, tag = "49")]
    pub status_fd: Option<i32>,
    #[prost(bool, optional, tag = "50")]
    pub orphan_pts_master: Option<bool>,
    #[prost(string, optional, tag = "53")]
    pub lsm_profile: Option<String>,
}

/// `criu_features`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Features {
    #[prost(bool, optional, tag = "1")]
    pub mem_track: Option<bool>,
    #[prost(bool, optional, tag = "2")]
    pub lazy_pages: Option<bool>,
}

/// `criu_req`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Req {
    #[prost(int32, required, tag = "1")]
    pub typ: i32,
    #[prost(message, optional, tag = "2")]
    pub opts: Option<Opts>,
    #[prost(bool, optional, tag = "3")]
    pub notify_success: Option<bool>,
    #[prost(message, optional, tag = "5")]
    pub features: Option<Features>,
}

/// `criu_dump_resp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DumpResp {
    #[prost(bool, optional, tag = "1")]
    pub restored: Option<bool>,
}

/// `criu_restore_resp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RestoreResp {
    #[prost(int32, required, tag = "1")]
    pub pid: i32,
}

/// `criu_notify`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Notify {
    #[prost(string, optional, tag = "1")]
    pub script: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub pid: Option<i32>,
}

/// `criu_version`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Version {
    #[prost(int32, required, tag = "1")]
    pub major_number: i32,
    #[prost(int32, required, tag = "2")]
    pub minor_number: i32,
    #[prost(string, optional, tag = "3")]
    pub gitid: Option<String>,
    #[prost(int32, optional, tag = "4")]
    pub sublevel: Option<i32>,
}

/// `criu_resp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resp {
    #[prost(int32, required, tag = "1")]
    pub typ: i32,
    #[prost(bool, required, tag = "2")]
    pub success: bool,
    #[prost(message, optional, tag = "3")]
    pub dump: Option<DumpResp>,
    #[prost(message, optional, tag = "4")]
    pub restore: Option<RestoreResp>,
    #[prost(message, optional, tag = "5")]
    pub notify: Option<Notify>,
    #[prost(int32, optional, tag = "7")]
    pub cr_errno: Option<i32>,
    #[prost(message, optional, tag = "8")]
    pub features: Option<Features>,
    #[prost(string, optional, tag = "9")]
    pub cr_errmsg: Option<String>,
    #[prost(message, optional, tag = "10")]
    pub version: Option<Version>,
}

/// `criu_req_type`.
pub mod req_type {
    /// Checkpoint.
    pub const DUMP: i32 = 1;
    /// Restore.
    pub const RESTORE: i32 = 2;
    /// A notification (both ways).
    pub const NOTIFY: i32 = 6;
    /// Which optional features work here.
    pub const FEATURE_CHECK: i32 = 9;
    /// The version.
    pub const VERSION: i32 = 10;
}

/// `CLONE_NEWNET`, for `empty_ns`.
pub const EMPTY_NS_NET: u32 = libc::CLONE_NEWNET as u32;

/// The criu binary to run: `--criu`, or `criu` on PATH.
pub struct Criu {
    path: PathBuf,
}

/// A notification from criu: the script name, its pid, a descriptor that came with it.
pub struct Note<'a> {
    /// `setup-namespaces`, `post-restore`, `orphan-pts-master`, ...
    pub script: &'a str,
    /// The pid criu reports (the restored init for the restore notifications).
    pub pid: i32,
    /// The descriptor sent with it (orphan-pts-master: the terminal's master).
    pub fd: Option<OwnedFd>,
}

/// A started `criu swrk`, before its request is sent (so the caller can put it in a cgroup).
pub struct Session {
    child: Child,
    sock: OwnedFd,
}

impl Criu {
    /// The binary at `path` (a name is looked up on PATH).
    pub fn new(path: Option<&str>) -> Criu {
        Criu {
            path: PathBuf::from(path.unwrap_or("criu")),
        }
    }

    /// Start `criu swrk`; `keep` are descriptors it must inherit (images dir, inherited fds).
    /// Its standard streams are ours: a restored process inherits the ones named by
    /// `inherit_fd`.
    pub fn start(&self, keep: &[RawFd]) -> Result<Session> {
        let (ours, theirs) = sys::socketpair(libc::SOCK_SEQPACKET)?;
        let theirs_fd = theirs.as_raw_fd();
        let mut cmd = Command::new(&self.path);
        cmd.arg("swrk").arg(theirs_fd.to_string());
        let keep: Vec<RawFd> = keep.iter().copied().chain([theirs_fd]).collect();
        // SAFETY: the closure only calls fcntl (async-signal-safe) on descriptor numbers.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &keep {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow!(
                    "{} not found: checkpoint and restore need CRIU 4.1 or newer (scripts/install-criu.sh installs it; --criu PATH names another binary)",
                    self.path.display()
                )
            } else {
                anyhow!("start {} swrk: {e}", self.path.display())
            }
        })?;
        drop(theirs);
        Ok(Session { child, sock: ours })
    }

    /// CRIU's version as (major, minor, sublevel).
    pub fn version(&self) -> Result<(i32, i32, i32)> {
        let resp = self.start(&[])?.call(
            Req {
                typ: req_type::VERSION,
                ..Default::default()
            },
            |_| Ok(()),
            None,
        )?;
        let v = resp
            .version
            .ok_or_else(|| anyhow!("criu answered VERSION without a version"))?;
        Ok((v.major_number, v.minor_number, v.sublevel.unwrap_or(0)))
    }

    /// Refuse a CRIU older than 4.1 (3.x fails on kernels with the vvar_vclock mapping).
    pub fn require_usable(&self) -> Result<()> {
        let (major, minor, sub) = self.version()?;
        if (major, minor) < (4, 1) {
            bail!(
                "{} is CRIU {major}.{minor}.{sub}: berth-runtime needs 4.1 or newer (older ones fail on this kernel's vDSO layout); scripts/install-criu.sh installs 4.1.1",
                self.path.display()
            );
        }
        Ok(())
    }

    /// Which of memory tracking (pre-dump) and lazy pages work on this machine.
    pub fn features(&self) -> Result<Features> {
        let resp = self.start(&[])?.call(
            Req {
                typ: req_type::FEATURE_CHECK,
                features: Some(Features {
                    mem_track: Some(true),
                    lazy_pages: Some(true),
                }),
                ..Default::default()
            },
            |_| Ok(()),
            None,
        );
        // criu answers a feature check with success=false when a feature is missing, and the
        // features it found in either case.
        match resp {
            Ok(r) => Ok(r.features.unwrap_or_default()),
            Err(e) => match e.downcast::<Failed>() {
                Ok(f) => Ok(f.resp.features.unwrap_or_default()),
                Err(e) => Err(e),
            },
        }
    }
}

/// A request criu answered with success=false.
#[derive(Debug)]
pub struct Failed {
    /// The response.
    pub resp: Resp,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.resp.cr_errmsg, self.resp.cr_errno) {
            (Some(m), _) if !m.is_empty() => write!(f, "{m}"),
            (_, Some(e)) if e != 0 => write!(f, "{}", std::io::Error::from_raw_os_error(e)),
            _ => write!(f, "criu reported a failure"),
        }
    }
}

impl std::error::Error for Failed {}

impl Session {
    /// The pid of `criu swrk`.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Send the request, answer notifications with `on_note` (an error there aborts the
    /// request), and return criu's final response. `log` is named in errors.
    pub fn call(
        mut self,
        req: Req,
        mut on_note: impl FnMut(Note<'_>) -> Result<()>,
        log: Option<&Path>,
    ) -> Result<Resp> {
        let typ = req.typ;
        let r = self.exchange(req, &mut on_note);
        // criu exits after its response (or when the socket closes on an error).
        if r.is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        r.map_err(|e| {
            let what = type_name(typ);
            // The log's errors say more than criu's errno or its first error message (often
            // only that RLIMIT_NOFILE could not be raised, which criu survives).
            match (log.and_then(log_errors), e.downcast_ref::<Failed>()) {
                (Some(lines), Some(_)) => anyhow!(
                    "criu {what} failed: {lines} (log: {})",
                    log.expect("some").display()
                ),
                (Some(lines), None) => e.context(format!(
                    "criu {what} failed: {lines} (log: {})",
                    log.expect("some").display()
                )),
                (None, _) => e.context(format!("criu {what} failed")),
            }
        })
    }

    fn exchange(
        &mut self,
        req: Req,
        on_note: &mut impl FnMut(Note<'_>) -> Result<()>,
    ) -> Result<Resp> {
        self.send(&req)?;
        loop {
            let (resp, fd) = self.recv()?;
            if resp.typ == req_type::NOTIFY {
                let n = resp.notify.clone().unwrap_or_default();
                let r = on_note(Note {
                    script: n.script.as_deref().unwrap_or(""),
                    pid: n.pid.unwrap_or(0),
                    fd,
                });
                self.send(&Req {
                    typ: req_type::NOTIFY,
                    notify_success: Some(r.is_ok()),
                    ..Default::default()
                })?;
                r.with_context(|| format!("criu notification {:?}", n.script.unwrap_or_default()))?;
                continue;
            }
            if !resp.success {
                return Err(Failed { resp }.into());
            }
            if resp.typ != req.typ {
                bail!("criu answered request {} with {}", req.typ, resp.typ);
            }
            return Ok(resp);
        }
    }

    fn send(&self, req: &Req) -> Result<()> {
        let buf = req.encode_to_vec();
        // SAFETY: writing a valid buffer to our socket.
        let n = unsafe { libc::send(self.sock.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("send the request to criu");
        }
        Ok(())
    }

    /// One message, with the descriptor it may carry.
    fn recv(&self) -> Result<(Resp, Option<OwnedFd>)> {
        let fd = self.sock.as_raw_fd();
        // SAFETY: MSG_PEEK|MSG_TRUNC with no buffer returns the datagram's length.
        let len = unsafe {
            libc::recv(
                fd,
                std::ptr::null_mut(),
                0,
                libc::MSG_PEEK | libc::MSG_TRUNC,
            )
        };
        if len < 0 {
            return Err(std::io::Error::last_os_error()).context("read criu's answer");
        }
        if len == 0 {
            bail!("criu exited without an answer");
        }
        let mut buf = vec![0u8; len as usize];
        let mut cbuf = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        // SAFETY: a valid msghdr; descriptors received are close-on-exec.
        let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("read criu's answer");
        }
        let mut got = None;
        // SAFETY: walking the control messages the kernel filled in.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            if !c.is_null()
                && (*c).cmsg_level == libc::SOL_SOCKET
                && (*c).cmsg_type == libc::SCM_RIGHTS
            {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd);
                got = Some(OwnedFd::from_raw_fd(raw));
            }
        }
        let resp = Resp::decode(&buf[..n as usize]).context("decode criu's answer")?;
        Ok((resp, got))
    }
}

fn type_name(t: i32) -> &'static str {
    match t {
        req_type::DUMP => "dump",
        req_type::RESTORE => "restore",
        req_type::FEATURE_CHECK => "feature check",
        req_type::VERSION => "version",
        _ => "request",
    }
}

/// The last `Error` lines of a criu log, joined, for an error message.
fn log_errors(log: &Path) -> Option<String> {
    let mut s = String::new();
    std::fs::File::open(log).ok()?.read_to_string(&mut s).ok()?;
    let lines: Vec<&str> = s
        .lines()
        .filter(|l| l.contains("Error ("))
        // criu complains about RLIMIT_NOFILE without CAP_SYS_RESOURCE and goes on.
        .filter(|l| !l.contains("RLIMIT_NOFILE"))
        .collect();
    if lines.is_empty() {
        return None;
    }
    let tail = &lines[lines.len().saturating_sub(3)..];
    Some(
        tail.iter()
            .map(|l| match l.find("): ") {
                Some(i) => l[i + 3..].trim(),
                None => l.trim(),
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// `fs-<pid>.img`'s entry (CRIU's fs.proto): the task's root directory, as a file ID.
#[derive(Clone, PartialEq, prost::Message)]
struct FsEntry {
    #[prost(uint32, optional, tag = "2")]
    root_id: Option<u32>,
}

/// `files.img`'s entries (CRIU's fdinfo.proto `file_entry`), only what names a regular file.
#[derive(Clone, PartialEq, prost::Message)]
struct FileEntry {
    #[prost(uint32, optional, tag = "2")]
    id: Option<u32>,
    #[prost(message, optional, tag = "3")]
    reg: Option<RegFileEntry>,
}

/// CRIU's regfile.proto `reg_file_entry`: its mode.
#[derive(Clone, PartialEq, prost::Message)]
struct RegFileEntry {
    #[prost(uint32, optional, tag = "10")]
    mode: Option<u32>,
}

/// The entries of a CRIU image file: two magic numbers, then each entry as its length (u32,
/// little-endian) and the protobuf message.
fn image_entries<M: Message + Default>(path: &Path) -> Result<Vec<M>> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let mut rest = data.get(8..).unwrap_or_default();
    let mut out = Vec::new();
    while rest.len() >= 4 {
        let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let msg = rest
            .get(4..4 + n)
            .ok_or_else(|| anyhow!("{}: an entry runs past the end", path.display()))?;
        out.push(M::decode(msg).with_context(|| format!("decode {}", path.display()))?);
        rest = &rest[4 + n..];
    }
    Ok(out)
}

/// The mode the container's root directory had when it was dumped (CRIU opens a task's root
/// at restore only if the directory has that mode; a root filesystem that another engine
/// prepared may differ: podman's `/` is 0555 whatever the image says). `None` when the images
/// do not say.
pub fn dumped_root_mode(images: &Path) -> Option<u32> {
    let fs: Vec<FsEntry> = image_entries(&images.join("fs-1.img")).ok().or_else(|| {
        let e = std::fs::read_dir(images).ok()?.flatten().find(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("fs-") && n.ends_with(".img")
        })?;
        image_entries(&e.path()).ok()
    })?;
    let root = fs.first()?.root_id?;
    image_entries::<FileEntry>(&images.join("files.img"))
        .ok()?
        .into_iter()
        .find(|f| f.id == Some(root))?
        .reg?
        .mode
}
