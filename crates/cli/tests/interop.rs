//! Round trips with real peers: `berth save` into `docker load` and `podman load`, `docker
//! save` and `podman save` into `berth load` and `berth run`, and an image `berth push`ed to a
//! registry pulled and run by podman.
//!
//! A peer whose binary is absent is skipped with a printed reason; a peer that is installed
//! but misbehaves fails the test. Docker is used only through its own CLI against the system
//! daemon (skipped when /var/run/docker.sock is absent), with unique image names that are
//! removed afterwards. Podman always gets a temp `--root`/`--runroot` of its own.

mod common;

#[path = "../../image/tests/common/registry.rs"]
mod registry;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Berth;
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

/// A rootfs tarball with busybox-static as /bin/busybox.
fn rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("/bin/busybox (apt-get install busybox-static)");
    let tar = dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

/// The system Docker daemon through its CLI, or why not.
fn docker() -> Result<(), String> {
    if which("docker").is_none() {
        return Err("docker CLI not installed".into());
    }
    if !Path::new("/var/run/docker.sock").exists() {
        return Err("/var/run/docker.sock absent (no Docker daemon)".into());
    }
    Ok(())
}

fn docker_cmd(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

/// Removes a Docker image when dropped.
struct DockerImage(String);

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = docker_cmd(&["rmi", "-f", &self.0]);
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
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend_from_slice(args);
        let o = self.cmd(&all);
        if !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("hybrid mode not supported")
            && which("runc").is_some()
        {
            let mut all = vec!["run", "--rm", "--runtime", "runc", "--network", "none"];
            all.extend_from_slice(args);
            return self.ok(&all);
        }
        out_ok(&format!("podman {all:?}"), o)
    }
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
fn berth_save_loads_in_docker_and_podman() {
    let b = Berth::new();
    let work = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(work.path());
    let name = format!("{}:1", unique("saved"));
    b.ok(&["import", tar.to_str().unwrap(), &name]);
    let archive = work.path().join("saved.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), &name]);

    match docker() {
        Err(why) => eprintln!("skipped docker load: {why}"),
        Ok(()) => {
            let _guard = DockerImage(name.clone());
            let out = out_ok(
                "docker load",
                docker_cmd(&["load", "-i", archive.to_str().unwrap()]),
            );
            assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
            let out = out_ok(
                "docker run",
                docker_cmd(&[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    &name,
                    "/bin/busybox",
                    "echo",
                    "from-docker",
                ]),
            );
            assert_eq!(out.trim(), "from-docker");
        }
    }

    if let Some(p) = Podman::new() {
        let out = p.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(out.contains(&name), "podman load: {out}");
        let out = p.run_rm(&[&name, "/bin/busybox", "echo", "from-podman"]);
        assert_eq!(out.trim(), "from-podman");
    }
}

#[test]
fn docker_and_podman_saves_load_and_run_in_berth() {
    let work = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(work.path());

    match docker() {
        Err(why) => eprintln!("skipped docker save: {why}"),
        Ok(()) => {
            let name = format!("{}:2", unique("docker"));
            let _guard = DockerImage(name.clone());
            out_ok(
                "docker import",
                docker_cmd(&["import", tar.to_str().unwrap(), &name]),
            );
            let archive = work.path().join("docker.tar");
            out_ok(
                "docker save",
                docker_cmd(&["save", "-o", archive.to_str().unwrap(), &name]),
            );
            let b = Berth::new();
            let out = b.ok(&["load", "-i", archive.to_str().unwrap()]);
            assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
            assert!(b.ok(&["images"]).contains(&name[..name.len() - 2]));
            berth_runs(&b, &name);
        }
    }

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
