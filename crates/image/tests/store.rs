//! The content store and the name index.

mod common;

use std::fs;
use std::io::Read;

use berth_image::{Digest, Error, Reference, Store};
use common::ls;

#[test]
fn ingest_streams_verifies_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path()).unwrap();
    let data = b"hello blob".repeat(10_000);
    let d = Digest::of(&data);
    assert!(!store.has(&d));
    store
        .ingest(&d, Some(data.len() as u64), &data[..])
        .unwrap();
    assert!(store.has(&d));
    assert_eq!(store.size(&d).unwrap(), data.len() as u64);
    let mut back = Vec::new();
    store.open(&d).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(
        store.blob_path(&d),
        tmp.path().join("blobs/sha256").join(d.hex())
    );
    assert_eq!(store.blobs().unwrap(), vec![d.clone()]);
    // Present already: not read again.
    store.ingest(&d, None, std::io::empty()).unwrap();
    store.delete(&d).unwrap();
    assert!(!store.has(&d));
    assert!(matches!(store.delete(&d), Err(Error::BlobNotFound(_))));
    assert!(matches!(store.open(&d), Err(Error::BlobNotFound(_))));
}

#[test]
fn a_wrong_digest_or_size_is_refused_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path()).unwrap();
    let announced = Digest::of(b"what the registry promised");
    let err = store
        .ingest(&announced, None, &b"what it sent"[..])
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&announced.to_string())
            && msg.contains(&Digest::of(b"what it sent").to_string()),
        "{msg}"
    );
    let good = Digest::of(b"12345");
    assert!(matches!(
        store.ingest(&good, Some(4), &b"12345"[..]),
        Err(Error::SizeMismatch {
            expected: 4,
            actual: 5,
            ..
        })
    ));
    assert!(matches!(
        store.ingest(&good, Some(6), &b"12345"[..]),
        Err(Error::SizeMismatch {
            expected: 6,
            actual: 5,
            ..
        })
    ));
    assert!(store.blobs().unwrap().is_empty());
    assert!(
        ls(&tmp.path().join("tmp")).is_empty(),
        "temp file left behind"
    );
    store.ingest(&good, Some(5), &b"12345"[..]).unwrap();
}

#[test]
fn the_index_maps_names_to_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path()).unwrap();
    let m = store.ingest_bytes(b"{}").unwrap();
    let busybox = Reference::parse("busybox").unwrap();
    store.tag(&busybox, &m).unwrap();
    assert_eq!(
        store
            .resolve(&Reference::parse("docker.io/library/busybox:latest").unwrap())
            .unwrap(),
        m
    );
    // By digest, whatever the repository.
    assert_eq!(
        store
            .resolve(&Reference::parse(&format!("other@{m}")).unwrap())
            .unwrap(),
        m
    );
    let names = store.names().unwrap();
    assert_eq!(names.get("docker.io/library/busybox:latest"), Some(&m));
    // A pinned digest must match; a missing manifest cannot be tagged.
    let wrong = Reference::parse(&format!("busybox@{}", Digest::of(b"x"))).unwrap();
    assert!(store.tag(&wrong, &m).is_err());
    assert!(matches!(
        store.tag(&busybox, &Digest::of(b"x")),
        Err(Error::BlobNotFound(_))
    ));
    assert_eq!(store.untag(&busybox).unwrap(), m);
    assert!(matches!(
        store.resolve(&busybox),
        Err(Error::ImageNotFound(_))
    ));
    assert!(store.untag(&busybox).is_err());
    // The index is JSON on disk, written atomically.
    let on_disk: serde_json::Value =
        serde_json::from_slice(&fs::read(tmp.path().join("names.json")).unwrap()).unwrap();
    assert!(on_disk["names"].as_object().unwrap().is_empty());
}

#[test]
fn concurrent_taggers_lose_no_update() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path()).unwrap();
    let m = store.ingest_bytes(b"{}").unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = store.clone();
            let m = m.clone();
            s.spawn(move || {
                for i in 0..25 {
                    store
                        .tag(&Reference::parse(&format!("img{t}:v{i}")).unwrap(), &m)
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(store.names().unwrap().len(), 100);
}

#[test]
fn prune_removes_unreferenced_blobs_and_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path()).unwrap();
    let loose = store.ingest_bytes(b"nobody refers to me").unwrap();
    // A crash mid-ingest leaves a temp file: readers ignore it, prune removes it.
    fs::write(tmp.path().join("tmp/ingest-crashed"), b"partial").unwrap();
    assert!(store.blobs().unwrap().contains(&loose));
    let report = store.prune().unwrap();
    assert_eq!(report.blobs, vec![loose.clone()]);
    assert_eq!(report.temp, 1);
    assert!(!store.has(&loose));
    assert!(ls(&tmp.path().join("tmp")).is_empty());
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

const STORE_DIRS: [&str; 8] = [
    "",
    "blobs",
    "blobs/sha256",
    "tmp",
    "snapshots",
    "snapshots/layers",
    "snapshots/sizes",
    "snapshots/containers",
];

#[test]
fn a_new_store_is_closed_to_other_users() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a/new/store");
    let store = Store::new(&root).unwrap();
    for d in STORE_DIRS {
        assert_eq!(mode(&root.join(d)), 0o700, "ROOT/{d}");
    }
    let m = store.ingest_bytes(b"{}").unwrap();
    store
        .tag(&Reference::parse("closed:1").unwrap(), &m)
        .unwrap();
    assert_eq!(mode(&store.blob_path(&m)) & 0o077, 0, "blob");
    assert_eq!(mode(&root.join("names.json")) & 0o077, 0, "names.json");
}

#[test]
fn opening_a_store_made_open_closes_it() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    // A store made by an older berth (or by hand) with 0755 directories.
    for d in STORE_DIRS {
        fs::create_dir_all(root.join(d)).unwrap();
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    Store::new(&root).unwrap();
    for d in STORE_DIRS {
        assert_eq!(mode(&root.join(d)), 0o700, "ROOT/{d}");
    }
}

/// When process `pid` started, from /proc (field 22 of its stat line).
fn start_time(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// The pid and start time of a process that has exited and been reaped.
fn dead_process() -> (u32, u64) {
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = start_time(pid);
    child.kill().unwrap();
    child.wait().unwrap();
    (pid, start)
}

/// Writes `tmp/<name>`: a file of `size` bytes, or (`dir`) a directory holding one.
fn debris(root: &std::path::Path, name: &str, dir: bool, size: usize) {
    let p = root.join("tmp").join(name);
    if dir {
        fs::create_dir_all(p.join("bin")).unwrap();
        fs::write(p.join("bin/partial"), vec![7u8; size]).unwrap();
    } else {
        fs::write(p, vec![7u8; size]).unwrap();
    }
}

#[test]
fn the_first_write_clears_what_dead_writers_left_and_keeps_live_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    Store::new(root).unwrap();
    let (dead, dead_start) = dead_process();
    let me = std::process::id();
    let my_start = start_time(me);
    // What a killed pull leaves: a partial blob and a half-unpacked layer.
    let gone = [
        format!("ingest-{dead}-{dead_start}-1-0"),
        format!("unpack-{dead}-{dead_start}-2-1"),
        // Written by an older berth (no start time), its pid gone.
        format!("ingest-{dead}-3-2"),
        // Our pid, but another start time: the pid was reused, the owner is dead.
        format!("unpack-{me}-{}-4-3", my_start + 1),
    ];
    let kept = [
        format!("ingest-{me}-{my_start}-5-4"),
        format!("unpack-{me}-{my_start}-6-5"),
        format!("ingest-{me}-7-6"),
        "not-ours".to_string(),
    ];
    for name in gone.iter().chain(&kept) {
        debris(root, name, name.starts_with("unpack"), 100);
    }

    // A pull (any write) takes a lease: that clears the dead writers' debris.
    let store = Store::new(root).unwrap();
    store.ingest_bytes(b"a pulled blob").unwrap();
    let mut left = ls(&root.join("tmp"));
    left.sort();
    let mut want = kept.to_vec();
    want.sort();
    assert_eq!(left, want, "dead owners' debris removed, live ones' kept");

    // prune leaves a live writer's entries too; it takes unknown ones.
    let report = store.prune().unwrap();
    assert_eq!(report.temp, 1, "{report:?}");
    assert_eq!(ls(&root.join("tmp")).len(), 3);
}

#[test]
fn prune_reports_the_bytes_it_removed_with_the_debris() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path()).unwrap();
    let loose = b"a blob nothing names".repeat(50);
    store.ingest_bytes(&loose).unwrap();
    let (dead, start) = dead_process();
    debris(
        tmp.path(),
        &format!("ingest-{dead}-{start}-1-0"),
        false,
        3000,
    );
    debris(
        tmp.path(),
        &format!("unpack-{dead}-{start}-2-1"),
        true,
        5000,
    );
    let report = store.prune().unwrap();
    assert_eq!(report.temp, 2, "{report:?}");
    assert_eq!(
        report.reclaimed,
        loose.len() as u64 + 3000 + 5000,
        "{report:?}"
    );
    assert!(ls(&tmp.path().join("tmp")).is_empty());
    // Nothing left: nothing reclaimed.
    assert_eq!(store.prune().unwrap().reclaimed, 0);
}
