//! Helpers shared by the integration tests: a bundle builder around a busybox rootfs, a runner
//! for the `berth-runtime` binary, and bounded waits.
//!
//! Every [`Bundle`] lives in its own directory under /tmp with its own `--root` state directory
//! and its own container IDs, so tests run in parallel; dropping it runs `delete --force` on
//! every container left in its state directory and removes the directory.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The binary under test.
/// The berth-runtime under test: `$BERTH_TEST_RUNTIME` (e.g. the static release build), else the
/// binary cargo built with these tests.
pub static BIN: std::sync::LazyLock<&'static str> =
    std::sync::LazyLock::new(|| match std::env::var("BERTH_TEST_RUNTIME") {
        Ok(p) if !p.is_empty() => Box::leak(p.into_boxed_str()),
        _ => env!("CARGO_BIN_EXE_berth-runtime"),
    });

/// The static busybox every rootfs is made of.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked into every rootfs (sh runs applets without links too, but a user's image
/// would have them).
const APPLETS: &[&str] = &[
    "sh", "cat", "id", "hostname", "ls", "sleep", "echo", "grep", "stat", "mount", "readlink",
    "test", "[", "wc", "env", "pwd", "mknod", "head", "touch", "true", "false", "kill", "ps",
    "tty", "stty", "cp", "chmod", "mkdir", "rm", "dd", "printf", "umount", "uname",
];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// What a command did: its exit code (128+N when killed by signal N) and its output.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Panic with the whole output unless the command exited 0.
    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "command failed: {self:#?}");
        self
    }

    /// Panic with the whole output if the command exited 0.
    #[track_caller]
    pub fn failed(self) -> Out {
        assert_ne!(self.code, 0, "command should have failed: {self:#?}");
        self
    }
}

/// The exit code a shell would report.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn scratch_file(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    PathBuf::from(format!(
        "/tmp/berth-it-out-{}-{n}.{tag}",
        std::process::id()
    ))
}

/// Run `berth-runtime ARGS...` and collect its exit code, stdout and stderr.
///
/// Output goes through files, not pipes: a container made by `create` or `run -d` inherits the
/// runtime's stdio and would hold a pipe open for as long as it lives.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> (i32, String, String) {
    let out = run_cmd(Command::new(*BIN).args(args));
    (out.code, out.stdout, out.stderr)
}

/// Run a prepared command with stdin from /dev/null and stdout/stderr through files.
pub fn run_cmd(cmd: &mut Command) -> Out {
    let (o, e) = (scratch_file("out"), scratch_file("err"));
    let status = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&o).expect("create stdout file"))
        .stderr(fs::File::create(&e).expect("create stderr file"))
        .status()
        .expect("spawn berth-runtime");
    let stdout = fs::read_to_string(&o).unwrap_or_default();
    let stderr = fs::read_to_string(&e).unwrap_or_default();
    let _ = fs::remove_file(&o);
    let _ = fs::remove_file(&e);
    Out {
        code: exit_code(status),
        stdout,
        stderr,
    }
}

/// Poll `f` every 10 ms until it is true or `timeout` has passed; whether it became true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The usual bound of a wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// A bundle (busybox rootfs + config.json from `berth-runtime spec`) in a private temp
/// directory, with a private `--root`.
pub struct Bundle {
    /// The test's private directory (removed on drop).
    pub dir: PathBuf,
    /// The bundle directory (holds config.json and rootfs/).
    pub bundle: PathBuf,
    /// The rootfs.
    pub rootfs: PathBuf,
    /// The `--root` state directory.
    pub state_root: PathBuf,
    /// The default container ID (unique to this test and process).
    pub id: String,
    /// The config; written by [`Bundle::save`] (and by the helpers that create containers).
    pub cfg: Value,
}

impl Bundle {
    /// A fresh bundle named after the test: default spec with terminal off and args `true`.
    pub fn new(name: &str) -> Bundle {
        let pid = std::process::id();
        let dir = PathBuf::from(format!("/tmp/berth-it-{pid}-{name}"));
        let _ = fs::remove_dir_all(&dir);
        let bundle = dir.join("bundle");
        let rootfs = bundle.join("rootfs");
        fs::create_dir_all(rootfs.join("bin")).unwrap();
        fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy /bin/busybox");
        for a in APPLETS {
            symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        for d in ["proc", "sys", "dev", "tmp", "etc", "root", "home/user"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\ntty:x:5:\nuser:x:1000:\n",
        )
        .unwrap();
        let state_root = dir.join("state");
        let out = run_cmd(Command::new(*BIN).arg("spec").arg("--bundle").arg(&bundle));
        assert_eq!(out.code, 0, "spec failed: {out:?}");
        let text = fs::read_to_string(bundle.join("config.json")).unwrap();
        let mut cfg: Value = serde_json::from_str(&text).unwrap();
        cfg["process"]["terminal"] = json!(false);
        cfg["process"]["args"] = json!(["true"]);
        Bundle {
            dir,
            bundle,
            rootfs,
            state_root,
            id: format!("{name}-{pid}"),
            cfg,
        }
    }

    /// Set process.args.
    pub fn args(&mut self, args: &[&str]) -> &mut Bundle {
        self.cfg["process"]["args"] = json!(args);
        self
    }

    /// Set process.args to `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) -> &mut Bundle {
        self.args(&["sh", "-c", script])
    }

    /// Write config.json.
    pub fn save(&self) {
        fs::write(
            self.bundle.join("config.json"),
            serde_json::to_string_pretty(&self.cfg).unwrap(),
        )
        .unwrap();
    }

    /// Make a directory on the host inside the test's directory.
    pub fn host_dir(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// Append a mount to config.json's mounts.
    pub fn mount(&mut self, m: Value) -> &mut Bundle {
        self.cfg["mounts"].as_array_mut().unwrap().push(m);
        self
    }

    /// Bind-mount a host path at `dest` with extra options.
    pub fn bind(&mut self, src: &Path, dest: &str, opts: &[&str]) -> &mut Bundle {
        let mut o = vec!["rbind"];
        o.extend_from_slice(opts);
        self.mount(json!({"destination": dest, "type": "bind",
                          "source": src, "options": o}))
    }

    /// Remove a namespace type from linux.namespaces.
    pub fn without_ns(&mut self, typ: &str) -> &mut Bundle {
        self.cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != typ);
        self
    }

    /// Add (or replace) a namespace in linux.namespaces, joined by path if given.
    pub fn with_ns(&mut self, typ: &str, path: Option<&str>) -> &mut Bundle {
        self.without_ns(typ);
        let ns = match path {
            Some(p) => json!({"type": typ, "path": p}),
            None => json!({"type": typ}),
        };
        self.cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(ns);
        self
    }

    /// Give the process a capability (bounding, effective and permitted sets).
    pub fn add_cap(&mut self, cap: &str) -> &mut Bundle {
        for set in ["bounding", "effective", "permitted"] {
            self.cfg["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!(cap));
        }
        self
    }

    /// Run `berth-runtime --root STATE ARGS...`.
    pub fn rt<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        run_cmd(
            Command::new(*BIN)
                .arg("--root")
                .arg(&self.state_root)
                .args(args),
        )
    }

    /// The arguments of `berth-runtime --root STATE VERB --bundle BUNDLE` (the ID goes last).
    pub fn verb_args(&self, verb: &str) -> Vec<String> {
        vec![
            "--root".into(),
            self.state_root.display().to_string(),
            verb.into(),
            "--bundle".into(),
            self.bundle.display().to_string(),
        ]
    }

    /// Save the config and `run` the default container in the foreground.
    pub fn run(&self) -> Out {
        self.save();
        self.rt(&["run", "--bundle", self.bundle.to_str().unwrap(), &self.id])
    }

    /// Save the config and `create` a container with this ID.
    pub fn create(&self, id: &str) -> Out {
        self.save();
        self.rt(&["create", "--bundle", self.bundle.to_str().unwrap(), id])
    }

    /// `start ID`.
    pub fn start(&self, id: &str) -> Out {
        self.rt(&["start", id])
    }

    /// The parsed output of `state ID`, or None if it failed.
    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.rt(&["state", id]);
        if out.code != 0 {
            return None;
        }
        Some(serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!("state {id}: bad JSON ({e}): {:?}", out.stdout);
        }))
    }

    /// The status of a container ("" if `state` fails).
    pub fn status(&self, id: &str) -> String {
        self.state(id)
            .and_then(|s| s["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The init pid from `state ID`.
    pub fn pid(&self, id: &str) -> i32 {
        let s = self.state(id).expect("state");
        s["pid"].as_i64().expect("pid") as i32
    }

    /// Wait (bounded) until the status of `id` is `want`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) {
        let mut last = String::new();
        let ok = wait_until(WAIT, || {
            last = self.status(id);
            last == want
        });
        assert!(ok, "container {id}: status {last:?}, wanted {want:?}");
    }

    /// Whether `--root/ID` exists.
    pub fn state_dir_exists(&self, id: &str) -> bool {
        self.state_root.join(id).exists()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Ok(rd) = fs::read_dir(&self.state_root) {
            for e in rd.flatten() {
                let id = e.file_name();
                let _ = self.rt(&[OsStr::new("delete"), OsStr::new("--force"), &id]);
            }
        }
        // A container without a mount namespace mounts in ours: never walk into mounts (host
        // binds, proc, sysfs) that a failed test left behind.
        let left = mounts_at_or_below(&self.dir);
        if !left.is_empty() {
            eprintln!(
                "{}: not removed, mounts are left under it: {left:?}",
                self.dir.display()
            );
            return;
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Cgroup directories of container `id` under the default path `/berth/<id>` that exist: the
/// memory, pids and freezer hierarchies on a v1 host, and the unified one.
pub fn leftover_cgroups(id: &str) -> Vec<PathBuf> {
    [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/freezer",
        "/sys/fs/cgroup/devices",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ]
    .iter()
    .map(|h| Path::new(h).join("berth").join(id))
    .filter(|p| p.exists())
    .collect()
}

/// Processes (other than this one) whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            let st = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            out.push((pid, format!("{cmd} [{st}]")));
        }
    }
    out
}

/// Whether this process has CAP_SYS_RESOURCE in its effective set.
pub fn have_cap_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    const CAP_SYS_RESOURCE: u32 = 24;
    eff & (1 << CAP_SYS_RESOURCE) != 0
}

/// Receive one message with SCM_RIGHTS descriptors: (payload, descriptors).
pub fn recv_with_fds(sock: RawFd) -> (Vec<u8>, Vec<OwnedFd>) {
    use std::os::fd::FromRawFd;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE((4 * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: msg points at valid buffers of the given sizes.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    buf.truncate(n as usize);
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel wrote into cbuf.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                let count = ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    (buf, fds)
}

/// Mount points at or below `dir` (canonicalised) in this process's mount namespace, from
/// /proc/self/mountinfo (octal escapes decoded).
pub fn mounts_at_or_below(dir: &Path) -> Vec<String> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|mp| {
            mp.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
        })
        .filter(|mp| Path::new(mp).starts_with(&dir))
        .collect()
}
