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
    // Deleted names the image ID (the config digest), as `images` shows it.
    assert!(rmi.contains(&format!("Deleted: {}", id.trim())), "{rmi}");
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

/// When process `pid` started, from /proc (field 22 of its stat line).
fn start_time(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// What a `berth pull` killed mid-way leaves in ROOT/tmp: a partial blob (`size` bytes) and a
/// half-unpacked layer (`size` bytes in one file), named after a process that is gone. Returns
/// their names.
fn killed_pull_debris(root: &std::path::Path, size: usize) -> [String; 2] {
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let (pid, start) = (child.id(), start_time(child.id()));
    child.kill().unwrap();
    child.wait().unwrap();
    let blob = format!("ingest-{pid}-{start}-1-0");
    let layer = format!("unpack-{pid}-{start}-2-1");
    fs::write(root.join("tmp").join(&blob), vec![1u8; size]).unwrap();
    fs::create_dir_all(root.join("tmp").join(&layer).join("bin")).unwrap();
    fs::write(
        root.join("tmp").join(&layer).join("bin/sh"),
        vec![2u8; size],
    )
    .unwrap();
    [blob, layer]
}

fn tmp_entries(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(b.root.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_killed_pulls_debris_goes_at_the_next_write_and_prune_counts_what_it_removes() {
    let work = tempfile::tempdir().unwrap();
    let tar = rootfs_tar(work.path());
    let a = Berth::new();
    a.ok(&["images"]);
    // An entry of a live writer (this test process) must survive both.
    let me = std::process::id();
    let live = format!("ingest-{me}-{}-9-9", start_time(me));
    fs::write(a.root.path().join("tmp").join(&live), b"in flight").unwrap();

    // The next write (here an import) removes the dead writer's leftovers.
    killed_pull_debris(a.root.path(), 1000);
    a.ok(&["import", tar.to_str().unwrap(), "example.com/debris:1"]);
    assert_eq!(tmp_entries(&a), std::slice::from_ref(&live));

    // prune removes them too, and counts them: 2 x 2000 bytes.
    killed_pull_debris(a.root.path(), 2000);
    let out = a.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 4kB"), "{out}");
    assert_eq!(tmp_entries(&a), [live]);
    let out = a.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}

/// A `docker save` archive (legacy form: manifest.json, config, one layer tar) of one image
/// named `name` whose layer is `layer` (a plain tar, so its diff ID is its digest).
fn docker_archive(path: &std::path::Path, name: &str, layer: &[u8]) {
    let config = serde_json::json!({
        "architecture": berth_image::Platform::host().architecture,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(layer))]},
    });
    let manifest = serde_json::json!([
        {"Config": "config.json", "RepoTags": [name], "Layers": ["layer.tar"]}
    ]);
    let mut b = tar::Builder::new(Vec::new());
    for (file, data) in [
        ("config.json", serde_json::to_vec(&config).unwrap()),
        ("layer.tar", layer.to_vec()),
        ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, file, &data[..]).unwrap();
    }
    fs::write(path, b.into_inner().unwrap()).unwrap();
}

/// The header of a regular file in a layer, owned by root.
fn layer_header(mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h
}

/// A layer cut short in the middle of a file's data.
fn truncated_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = layer_header(0o755, 100_000);
    b.append_data(&mut h, "bin/big", &vec![9u8; 100_000][..])
        .unwrap();
    let mut tar = b.into_inner().unwrap();
    tar.truncate(512 + 40_000);
    tar
}

/// A layer whose only entry climbs out of the layer directory (written raw: the tar crate's
/// setters refuse `..`).
fn hostile_layer() -> Vec<u8> {
    let mut h = layer_header(0o644, 5);
    h.as_old_mut().name[.."../evil".len()].copy_from_slice(b"../evil");
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"evil\n"[..]).unwrap();
    b.into_inner().unwrap()
}

/// Nothing of a refused load or import is left: no image listed, no blob, no unpacked layer,
/// nothing in tmp/.
fn assert_nothing_left(b: &Berth) {
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    for d in ["blobs/sha256", "snapshots/layers", "snapshots/sizes", "tmp"] {
        let left: Vec<_> = fs::read_dir(b.root.path().join(d)).unwrap().collect();
        assert!(left.is_empty(), "ROOT/{d}: {left:?}");
    }
}

#[test]
fn load_and_import_refuse_a_truncated_or_hostile_layer_by_its_digest() {
    let work = tempfile::tempdir().unwrap();
    let b = Berth::new();
    let tmp_path = b.root.path().join("tmp").display().to_string();
    for (what, layer) in [("corrupt", truncated_layer()), ("unsafe", hostile_layer())] {
        let digest = format!("sha256:{}", sha256_hex(&layer));
        let archive = work.path().join(format!("{what}.tar"));
        let name = format!("example.com/{what}:1");
        docker_archive(&archive, &name, &layer);
        let err = b.fails(&["load", "-i", archive.to_str().unwrap()]);
        assert!(
            err.contains(&format!("layer {digest} of image {name} is {what}")),
            "{err}"
        );
        assert!(
            !err.contains(&tmp_path) && !err.contains("unpack-"),
            "{err}"
        );
        if what == "corrupt" {
            assert!(err.contains("unexpected EOF"), "{err}");
        } else {
            assert!(err.contains("../evil"), "{err}");
        }
        assert_nothing_left(&b);

        // The same layer as a rootfs tarball for `import`.
        let tarball = work.path().join(format!("{what}-rootfs.tar"));
        fs::write(&tarball, &layer).unwrap();
        let name = format!("example.com/{what}-import:1");
        let err = b.fails(&["import", tarball.to_str().unwrap(), &name]);
        assert!(
            err.contains(&format!("layer {digest} of image {name} is {what}")),
            "{err}"
        );
        assert!(!err.contains(&tmp_path), "{err}");
        assert_nothing_left(&b);
    }
    assert!(!b.root.path().join("evil").exists() && !b.root.path().join("tmp/evil").exists());

    // A good archive loads, its layer unpacked already (as a pull does).
    let good = work.path().join("good.tar");
    let mut tb = tar::Builder::new(Vec::new());
    let mut h = layer_header(0o644, 3);
    tb.append_data(&mut h, "ok", &b"ok\n"[..]).unwrap();
    docker_archive(&good, "example.com/good:1", &tb.into_inner().unwrap());
    let out = b.ok(&["load", "-i", good.to_str().unwrap()]);
    assert!(out.contains("Loaded image: example.com/good:1"), "{out}");
    let layers: Vec<_> = fs::read_dir(b.root.path().join("snapshots/layers"))
        .unwrap()
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
}

#[test]
fn a_pull_of_a_corrupt_or_hostile_layer_fails_and_names_no_image() {
    let reg = TestRegistry::start(None);
    let work = tempfile::tempdir().unwrap();
    let b = Berth::new();
    for (what, layer) in [("corrupt", truncated_layer()), ("unsafe", hostile_layer())] {
        // skopeo pushes the layer gzipped: the registry serves what its digest says.
        let archive = work.path().join(format!("{what}.tar"));
        docker_archive(&archive, &format!("example.com/{what}:1"), &layer);
        let remote = format!("{}/bad/{what}:1", reg.addr);
        let out = Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("docker://{remote}"))
            .output()
            .expect("skopeo not found: apt-get install skopeo");
        assert!(out.status.success(), "skopeo: {out:?}");
        let err = b.fails(&["pull", &remote]);
        assert!(
            err.contains("layer sha256:") && err.contains(&format!("of image {remote} is {what}")),
            "{err}"
        );
        assert_eq!(b.ok(&["images", "-q"]).trim(), "", "no image is named");
        assert!(b.fails(&["image", "inspect", &remote]).contains(&remote));
    }
    // What the pulls fetched goes with prune.
    b.ok(&["image", "prune", "-a", "-f"]);
    assert_nothing_left(&b);
}
