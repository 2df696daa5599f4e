//! `berth` image commands as a user runs them: import, images, tag, push, pull, rmi, save,
//! load, image inspect/prune, login/logout, against Debian's docker-registry and skopeo.

mod common;

#[path = "../../image/tests/common/registry.rs"]
mod registry;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use common::rootfs_tar;
use registry::TestRegistry;

struct Berth {
    root: tempfile::TempDir,
    docker_config: tempfile::TempDir,
}

impl Berth {
    fn new() -> Self {
        let uid = Command::new("id").arg("-u").output().unwrap().stdout;
        assert_eq!(
            String::from_utf8_lossy(&uid).trim(),
            "0",
            "these tests need root (CI runs them as root)"
        );
        Self {
            root: tempfile::tempdir().unwrap(),
            docker_config: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(self.root.path())
            .args(args)
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env_remove("BERTH_INSECURE_REGISTRIES");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "berth {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }
}

#[test]
fn import_push_pull_images_rmi() {
    let reg = TestRegistry::start(None);
    let work = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(work.path());
    let a = Berth::new();
    let name = format!("{}/cli/bb:1", reg.addr);
    let id = a.ok(&["import", tar.to_str().unwrap(), &name]);
    assert!(id.trim().starts_with("sha256:"), "{id}");

    let table = a.ok(&["images"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with(&format!("{}/cli/bb", reg.addr)), "{row}");
    assert!(row.contains(&id.trim()["sha256:".len()..][..12]), "{row}");

    // A format that is not a named one is a template, here without actions (as in Docker);
    // a broken template is refused.
    assert_eq!(a.ok(&["images", "--format", "yaml"]).trim(), "yaml");
    let err = a.fails(&["images", "--format", "{{.Tag"]);
    assert!(err.contains("--format"), "{err}");
    let json = a.ok(&["images", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["Tag"], "1");

    let push = a.ok(&["push", &name]);
    assert!(push.contains("1: digest: sha256:"), "{push}");
    let digest = push
        .split("digest: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();

    // Pull into a fresh root, by tag then by digest.
    let b = Berth::new();
    let pull = b.ok(&["pull", &name]);
    assert!(pull.contains(&format!("Digest: {digest}")), "{pull}");
    assert!(pull.contains("Status: Downloaded newer image"), "{pull}");
    assert!(pull.trim_end().ends_with(&name), "{pull}");
    // As Docker does, the pull unpacked the layer (run need not).
    let layers: Vec<_> = fs::read_dir(b.root.path().join("snapshots/layers"))
        .unwrap()
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    let again = b.ok(&["pull", &name]);
    assert!(again.contains("Status: Image is up to date"), "{again}");
    let quiet = b.ok(&["pull", "-q", &format!("{}/cli/bb@{digest}", reg.addr)]);
    assert_eq!(quiet.trim(), format!("{}/cli/bb@{digest}", reg.addr));

    let inspect = b.ok(&["image", "inspect", &name]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["Id"], id.trim());
    assert_eq!(v[0]["Descriptor"]["digest"], digest);
    assert_eq!(v[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    // Docker's size: what the unpacked layer holds (here /bin/busybox alone), not the
    // compressed download.
    let busybox = fs::metadata("/bin/busybox").unwrap().len();
    assert_eq!(v[0]["Size"], busybox, "{inspect}");

    let missing = b.fails(&["image", "inspect", "busybox:nope"]);
    assert!(
        missing.contains("image not found: busybox:nope (try `berth pull busybox:nope`)"),
        "{missing}"
    );

    b.ok(&["tag", &name, "local/copy:2"]);
    let ids = b.ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), 1, "one image, three names: {ids}");
    // An ID with several names needs -f.
    let short = &id.trim()["sha256:".len()..][..12];
    let err = b.fails(&["rmi", short]);
    assert!(err.contains("must be forced"), "{err}");
    let rmi = b.ok(&["rmi", "local/copy:2"]);
    assert!(rmi.contains("Untagged: local/copy:2"), "{rmi}");
    let rmi = b.ok(&["rmi", "-f", short]);
    assert!(rmi.contains(&format!("Deleted: {digest}")), "{rmi}");
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
}

#[test]
fn login_logout_and_push_with_stored_credentials() {
    let reg = TestRegistry::start(Some(("alice", "wonder land")));
    let work = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(work.path());
    let a = Berth::new();
    let name = format!("{}/private/bb:1", reg.addr);
    a.ok(&["import", tar.to_str().unwrap(), &name]);
    let err = a.fails(&["push", &name]);
    assert!(err.contains("berth login"), "{err}");

    let login = |password: &str| {
        let mut child = a
            .cmd(&["login", "-u", "alice", "--password-stdin", &reg.addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let bad = login("wrong");
    assert!(!bad.status.success());
    let config = a.docker_config.path().join("config.json");
    assert!(!config.exists(), "a failed login stores nothing");
    let good = login("wonder land");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("Login Succeeded"));
    let mode = fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&reg.addr) && text.contains("\"auth\""),
        "{text}"
    );

    a.ok(&["push", &name]);
    let out = a.ok(&["logout", &reg.addr]);
    assert!(out.contains("Removing login credentials"), "{out}");
    let err = a.fails(&["pull", &name]);
    assert!(err.contains("berth login"), "{err}");
}

#[test]
fn save_load_and_skopeo_archives() {
    let work = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(work.path());
    let a = Berth::new();
    a.ok(&["import", tar.to_str().unwrap(), "example.com/saved:1"]);
    let archive = work.path().join("saved.tar");
    a.ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "example.com/saved:1",
    ]);

    // skopeo reads it both as a docker archive and as an OCI archive.
    for (transport, dest) in [
        ("docker-archive", "from-docker"),
        ("oci-archive", "from-oci"),
    ] {
        let out = Command::new("skopeo")
            .arg("copy")
            .arg(format!("{transport}:{}", archive.display()))
            .arg(format!("oci:{}:x", work.path().join(dest).display()))
            .output()
            .expect("skopeo not found: apt-get install skopeo");
        assert!(
            out.status.success(),
            "skopeo copy {transport}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // berth loads its own archive into a fresh root...
    let b = Berth::new();
    let out = b.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: example.com/saved:1"), "{out}");

    // ...and a legacy docker archive written by skopeo (layer tars, manifest.json only).
    let legacy = work.path().join("legacy.tar");
    let out = Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:x", work.path().join("from-oci").display()))
        .arg(format!("docker-archive:{}:legacy/img:7", legacy.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = Berth::new();
    let mut child = c
        .cmd(&["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let data = fs::read(&legacy).unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Loaded image: legacy/img:7"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ids_b = b.ok(&["images", "-q", "--no-trunc"]);
    let ids_c = c.ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(
        ids_b, ids_c,
        "same config whichever archive it came through"
    );

    // prune -a removes what no container uses.
    let out = c.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(c.ok(&["images", "-q"]).trim(), "");
}
