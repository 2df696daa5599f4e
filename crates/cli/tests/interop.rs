//! Round trips with real peers: `berth save` into `docker load` and `podman load`, `docker
//! save` and `podman save` into `berth load` and `berth run`, and an image `berth push`ed to a
//! registry pulled and run by podman.
//!
//! A peer whose binary is absent is skipped with a printed reason; a peer that is installed
//! but misbehaves fails the test. Docker runs as a dockerd of the test's own (socket, data
//! root, cgroup parent; never the system daemon), podman with a temp `--root`/`--runroot`.

mod common;

#[path = "../../image/tests/common/registry.rs"]
mod registry;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Berth, rootfs_tar};
use registry::TestRegistry;

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

fn out_ok(what: &str, o: Output) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A name no other test run (or person) uses.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("berth-interop/{what}-{}-{nanos}", std::process::id())
}

/// A dockerd of the test's own (Debian's docker.io): its own socket, data root, exec root, pid
/// file and cgroup parent, an empty config file, no default bridge and no iptables, sysctl or
/// NAT changes, so a system daemon (running or not) is never used or touched. Stopped, its
/// mounts and cgroups removed, when dropped.
struct Dockerd {
    dir: tempfile::TempDir,
    child: std::process::Child,
    cgroup: String,
}

impl Dockerd {
    /// Starts one and waits until it answers; `None` (printed) when dockerd is not installed.
    fn start() -> Option<Self> {
        if which("dockerd").is_none() || which("docker").is_none() {
            eprintln!(
                "skipped docker: dockerd or docker not installed (apt-get install docker.io)"
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd")
            .tempdir_in("/var/tmp")
            .unwrap();
        let d = dir.path();
        fs::write(d.join("daemon.json"), "{}").unwrap();
        let cgroup = format!("berth-interop-dockerd-{}", std::process::id());
        let log = fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .args(["--bridge", "none", "--iptables=false", "--ip-forward=false"])
            .args(["--ip-masq=false", "--storage-driver", "overlay2"])
            .args(["--cgroup-parent", &format!("/{cgroup}")])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        let me = Self { dir, child, cgroup };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if me.cmd(&["version"]).status.success() {
                return Some(me);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dockerd did not answer within 60 s; its log:\n{}",
                fs::read_to_string(me.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.dir.path().join("docker.sock").display()),
            )
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        out_ok(&format!("docker {args:?}"), self.cmd(args))
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-f", "-v", "--all"]);
        // SIGTERM: dockerd stops its containerd and shims and exits.
        // SAFETY: kill(2) on our own child's pid (not yet reaped, so not reused).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Whatever is still mounted under its directory (overlay layers, its shm), deepest first.
        let mut mounts = common::mounted_below(self.dir.path());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: a valid NUL-terminated path; umount2 only reads it.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        // Its cgroup parent in every hierarchy (children first).
        for h in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            rmdir_tree(&h.path().join(&self.cgroup));
        }
        rmdir_tree(&Path::new("/sys/fs/cgroup").join(&self.cgroup));
    }
}

/// Removes a cgroup directory and its child cgroups (rmdir, children first).
fn rmdir_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rmdir_tree(&e.path());
            }
        }
        let _ = fs::remove_dir(dir);
    }
}

/// Podman with a temp root and runroot of its own.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Option<Self> {
        if which("podman").is_none() {
            eprintln!("skipped: podman not installed");
            return None;
        }
        Some(Self {
            dir: tempfile::Builder::new()
                .prefix("berth-podman")
                .tempdir_in("/var/tmp")
                .unwrap(),
        })
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            // Its own tmpdir too: the default /run/libpod (exit files, the alive file) is shared
            // by every podman, and the tests run in parallel.
            .arg("--tmpdir")
            .arg(self.dir.path().join("tmp"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        out_ok(&format!("podman {args:?}"), self.cmd(args))
    }

    /// `podman run --rm ARGS`, with runc when crun refuses this host (crun does not support
    /// hybrid cgroup hierarchies).
    fn run_rm(&self, args: &[&str]) -> String {
        // podman asks for RLIMIT_NOFILE and RLIMIT_NPROC 1048576 as root; root without
        // CAP_SYS_RESOURCE (this host) cannot raise a hard limit, so the runtime fails with
        // "error setting rlimit type 7". Ask for no more than this process holds.
        let nofile = hard_limit(libc::RLIMIT_NOFILE).min(1 << 20);
        let nproc = hard_limit(libc::RLIMIT_NPROC).min(32768);
        let (nofile, nproc) = (
            format!("nofile={nofile}:{nofile}"),
            format!("nproc={nproc}:{nproc}"),
        );
        let limits = ["--ulimit", &nofile, "--ulimit", &nproc];
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend_from_slice(&limits);
        all.extend_from_slice(args);
        let o = self.cmd(&all);
        if !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("hybrid mode not supported")
            && which("runc").is_some()
        {
            let mut all = vec!["run", "--rm", "--runtime", "runc", "--network", "none"];
            all.extend_from_slice(&limits);
            all.extend_from_slice(args);
            return self.ok(&all);
        }
        out_ok(&format!("podman {all:?}"), o)
    }
}

/// The calling process's hard limit for `resource`.
fn hard_limit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit it is given.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut l) }, 0);
    l.rlim_max
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Unmounts what podman may have left mounted, so the temp dir can go.
        let _ = self.cmd(&["rm", "-af"]);
        let _ = self.cmd(&["rmi", "-af"]);
        let _ = self.cmd(&["system", "reset", "-f"]);
    }
}

/// `berth run --rm IMAGE /bin/busybox echo ...` prints what it should.
fn berth_runs(b: &Berth, image: &str) {
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "/bin/busybox",
        "echo",
        "interop-ok",
    ]);
    assert_eq!(out.trim(), "interop-ok");
}

#[test]
fn berth_save_loads_in_podman() {
    let b = Berth::new();
    let work = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(work.path());
    let name = format!("{}:1", unique("saved"));
    b.ok(&["import", tar.to_str().unwrap(), &name]);
    let archive = work.path().join("saved.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), &name]);

    if let Some(p) = Podman::new() {
        let out = p.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(out.contains(&name), "podman load: {out}");
        let out = p.run_rm(&[&name, "/bin/busybox", "echo", "from-podman"]);
        assert_eq!(out.trim(), "from-podman");
    }
}

#[test]
fn podman_saves_load_and_run_in_berth() {
    let work = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(work.path());

    if let Some(p) = Podman::new() {
        let name = format!("localhost/{}:3", unique("podman"));
        p.ok(&["import", tar.to_str().unwrap(), &name]);
        // podman's default (docker-archive) and OCI archives.
        for format in ["docker-archive", "oci-archive"] {
            let archive = work.path().join(format!("podman-{format}.tar"));
            p.ok(&[
                "save",
                "--format",
                format,
                "-o",
                archive.to_str().unwrap(),
                &name,
            ]);
            let b = Berth::new();
            let out = b.ok(&["load", "-i", archive.to_str().unwrap()]);
            assert!(out.contains("Loaded image"), "{format}: {out}");
            let images = b.ok(&["images", "--format", "json"]);
            assert!(
                images.contains("berth-interop/podman"),
                "{format}: {images}"
            );
            berth_runs(&b, &name);
        }
    }
}

#[test]
fn podman_pulls_and_runs_what_berth_pushes() {
    let Some(p) = Podman::new() else { return };
    let reg = TestRegistry::start(None);
    let b = Berth::new();
    let work = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(work.path());
    let name = format!("{}/interop/pushed:1", reg.addr);
    b.ok(&["import", tar.to_str().unwrap(), &name]);
    b.ok(&["push", &name]);
    let out = p.run_rm(&[
        "--tls-verify=false",
        &name,
        "/bin/busybox",
        "echo",
        "pulled-by-podman",
    ]);
    assert_eq!(out.trim(), "pulled-by-podman");
}

#[test]
fn docker_round_trips_with_berth() {
    let Some(d) = Dockerd::start() else { return };
    let work = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(work.path());

    // berth save -> docker load -> docker run.
    let b = Berth::new();
    let name = format!("{}:1", unique("saved"));
    b.ok(&["import", tar.to_str().unwrap(), &name]);
    let archive = work.path().join("saved.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    let out = d.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "/bin/busybox",
        "echo",
        "from-docker",
    ]);
    assert_eq!(out.trim(), "from-docker");

    // docker import + save -> berth load -> berth run.
    let name = format!("{}:2", unique("docker"));
    d.ok(&["import", tar.to_str().unwrap(), &name]);
    let archive = work.path().join("docker.tar");
    d.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    let b = Berth::new();
    let out = b.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
    assert!(b.ok(&["images"]).contains(&name[..name.len() - 2]));
    berth_runs(&b, &name);
}
