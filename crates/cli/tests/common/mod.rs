//! Test support: a `berth` with its own root and the built `berth-runtime`, and a busybox
//! image made from the host's /bin/busybox (busybox-static) and imported as an OCI layout.
//!
//! Locating berth-runtime: `$BERTH_TEST_RUNTIME`, else `berth-runtime` next to the `berth`
//! binary under test (target/<profile>/). `cargo test -p berth-cli` does not build other
//! packages' binaries, so if it is missing the tests build it once with
//! `cargo build -p berth-runtime` (same profile), and fail with a clear message if that fails.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub const IMAGE: &str = "berth-test/busybox:latest";

pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// The berth-runtime binary (built if missing).
pub fn runtime_bin() -> PathBuf {
    static RT: OnceLock<PathBuf> = OnceLock::new();
    RT.get_or_init(|| {
        if let Some(p) = std::env::var_os("BERTH_TEST_RUNTIME") {
            return PathBuf::from(p);
        }
        let p = berth_bin().with_file_name("berth-runtime");
        if !p.is_file() {
            let release = berth_bin().parent().is_some_and(|d| d.ends_with("release"));
            let mut c = Command::new(env!("CARGO"));
            c.args(["build", "-p", "berth-runtime"]);
            if release {
                c.arg("--release");
            }
            let st = c.status().expect("run cargo build -p berth-runtime");
            assert!(
                st.success() && p.is_file(),
                "berth-runtime is missing at {} and `cargo build -p berth-runtime` failed: \
                 build it first or set BERTH_TEST_RUNTIME",
                p.display()
            );
        }
        p
    })
    .clone()
}

pub fn require_root() {
    // SAFETY: geteuid has no arguments.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "these tests run real containers and need root (run them as root, as CI does)"
    );
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Writes an OCI layout with one image: busybox and its applets, /etc/passwd and /etc/group,
/// a /data directory with a file (for volume copy-up) and a config.
pub fn write_busybox_layout(dir: &Path) {
    let busybox = fs::read("/bin/busybox").expect("/bin/busybox (install busybox-static)");
    let mut b = tar::Builder::new(Vec::new());
    let dirs = [
        "bin",
        "etc",
        "tmp",
        "root",
        "data",
        "work",
        "home",
        "home/user",
        "proc",
        "sys",
        "dev",
    ];
    for d in dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(if d == "tmp" { 0o1777 } else { 0o755 });
        h.set_size(0);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if d == "home/user" {
            h.set_uid(1000);
            h.set_gid(1000);
        }
        b.append_data(&mut h, format!("{d}/"), &[][..]).unwrap();
    }
    let file = |b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, data).unwrap();
    };
    file(&mut b, "bin/busybox", 0o755, &busybox);
    file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    );
    file(
        &mut b,
        "etc/group",
        0o644,
        b"root:x:0:\nuser:x:1000:\nstaff:x:50:user\nnogroup:x:65534:\n",
    );
    file(&mut b, "data/from-image", 0o644, b"image data\n");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet == "busybox" || applet.is_empty() {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let layer = b.into_inner().unwrap();
    let layer_hex = sha(&layer);
    let config = serde_json::json!({
        "architecture": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "IMAGE_VAR=from-image"],
            "Cmd": ["sh"],
            "WorkingDir": "/work",
            "Labels": {"org.example.image": "busybox"}
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
        "history": [{"created_by": "berth tests"}]
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_hex = sha(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{config_hex}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": format!("sha256:{layer_hex}"), "size": layer.len()}]
    }))
    .unwrap();
    let manifest_hex = sha(&manifest);
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join(&layer_hex), &layer).unwrap();
    fs::write(blobs.join(&config_hex), &config).unwrap();
    fs::write(blobs.join(&manifest_hex), &manifest).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": format!("sha256:{manifest_hex}"), "size": manifest.len()}]
        }))
        .unwrap(),
    )
    .unwrap();
}

/// A berth root in a temp dir with the busybox image; removes every container on drop.
pub struct Berth {
    pub root: tempfile::TempDir,
}

impl Berth {
    pub fn new() -> Self {
        require_root();
        let root = tempfile::Builder::new()
            .prefix("berth-cli-test")
            .tempdir()
            .unwrap();
        let layout = tempfile::tempdir().unwrap();
        write_busybox_layout(layout.path());
        let store = berth_image::Store::new(root.path()).unwrap();
        let name = berth_image::Reference::parse(IMAGE).unwrap();
        berth_image::layout::import_layout(
            &store,
            layout.path(),
            Some(&name),
            &berth_image::Platform::host(),
        )
        .unwrap();
        Berth { root }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(berth_bin());
        c.arg("--root")
            .arg(self.root.path())
            .arg("--runtime")
            .arg(runtime_bin());
        c.stdin(Stdio::null());
        c
    }

    /// Runs berth with `args`; returns the output (never panics on failure).
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs berth, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `image inspect NAME`, the first element.
    #[allow(dead_code)]
    pub fn inspect_image(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["image", "inspect", name])).unwrap();
        v[0].clone()
    }

    /// Runs berth with `input` on stdin.
    pub fn run_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        output_with_input(c, input)
    }

    pub fn inspect(&self, c: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", c]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    }

    /// Polls `f` every 50 ms until it is true, at most `secs` seconds.
    pub fn wait_for(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out after {secs}s waiting for {what}");
    }

    pub fn container_ids(&self) -> Vec<String> {
        let dir = self.root.path().join("containers");
        fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.len() == 64)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        for id in self.container_ids() {
            let _ = self.run(&["rm", "-f", &id]);
        }
        // The root's DNS servers (`berth --root ROOT __dns NET`), then its bridges and their
        // nftables tables (the default network's bridge outlives its last container, as
        // Docker's docker0 does) go with the root: a server left bound to a bridge's address
        // would keep that address from the next network that gets it.
        let root_arg = self.root.path().as_os_str().as_encoded_bytes().to_vec();
        for p in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = fs::read(p.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            if args.contains(&&b"__dns"[..]) && args.contains(&&root_arg[..]) {
                // SAFETY: kill(2) of this root's own DNS server.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for e in fs::read_dir(self.root.path().join("networks"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(n) = fs::read(e.path()) else { continue };
            let Ok(n) = serde_json::from_slice::<serde_json::Value>(&n) else {
                continue;
            };
            if let Some(br) = n["bridge"].as_str().filter(|b| !b.is_empty()) {
                let _ = Command::new("nft")
                    .args(["delete", "table", "inet", br])
                    .stderr(Stdio::null())
                    .status();
                let _ = Command::new("ip")
                    .args(["link", "del", br])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // Anything still mounted below the root (a failed rm) must not survive the test.
        let root = self.root.path().display().to_string();
        if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
            for l in info.lines() {
                if let Some(mp) = l.split(' ').nth(4)
                    && mp.starts_with(&root)
                {
                    let _ = Command::new("umount").args(["-l", mp]).status();
                }
            }
        }
    }
}

/// Runs `c` with `input` on its stdin (then closed); its output.
pub fn output_with_input(mut c: Command, input: &[u8]) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A process's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A process's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A process's (stdout, stderr) as text.
pub fn text(o: &Output) -> (String, String) {
    (stdout(o), stderr(o))
}

/// Whether anything is mounted below `path`.
pub fn mounted_below(path: &Path) -> Vec<String> {
    let p = path.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|mp| mp.starts_with(&p))
        .collect()
}

/// Cgroup directories of a container (v1 hierarchies and v2).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let p = e.path().join("berth").join(id);
            if p.exists() {
                out.push(p);
            }
        }
    }
    let v2 = Path::new("/sys/fs/cgroup/berth").join(id);
    if v2.exists() {
        out.push(v2);
    }
    out
}

/// Imports a copy of the busybox image as `name`, with its image config (the `config` object of
/// the config blob: Cmd, ExposedPorts, Healthcheck, ...) changed by `edit`.
pub fn import_with_config(b: &Berth, name: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let dir = tempfile::tempdir().unwrap();
    write_busybox_layout(dir.path());
    let blobs = dir.path().join("blobs/sha256");
    let read_json = |d: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(blobs.join(d)).unwrap()).unwrap()
    };
    let put = |v: &serde_json::Value| -> (String, usize) {
        let data = serde_json::to_vec(v).unwrap();
        let hex = hex::encode(Sha256::digest(&data));
        std::fs::write(blobs.join(&hex), &data).unwrap();
        (hex, data.len())
    };
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let mut manifest = read_json(&mdigest);
    let cdigest = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let mut config = read_json(&cdigest);
    edit(&mut config["config"]);
    let (ch, cl) = put(&config);
    manifest["config"]["digest"] = format!("sha256:{ch}").into();
    manifest["config"]["size"] = cl.into();
    let (mh, ml) = put(&manifest);
    index["manifests"][0]["digest"] = format!("sha256:{mh}").into();
    index["manifests"][0]["size"] = ml.into();
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let store = berth_image::Store::new(b.root.path()).unwrap();
    berth_image::layout::import_layout(
        &store,
        dir.path(),
        Some(&berth_image::Reference::parse(name).unwrap()),
        &berth_image::Platform::host(),
    )
    .unwrap();
}

/// A rootfs tarball with busybox-static as /bin/busybox.
pub fn rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("/bin/busybox (apt-get install busybox-static)");
    let tar = dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

/// A build context: a temp directory with `dockerfile` as its Dockerfile and `files` (path,
/// content) beside it.
#[allow(dead_code)]
pub fn build_context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, content) in files {
        let p = dir.path().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    dir
}
pub mod serve;
