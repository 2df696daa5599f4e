//! OCI layout import/export, snapshots mounted for real, and garbage collection.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use berth_image::layout::{export_layout, import_layout};
use berth_image::{Error, Image, Mount, Platform, Reference, SnapshotMode, Snapshotter, Store};
use common::{LayerTar, TestLayer, busybox_layer, ls, require_root, upper_layer, write_layout};

const NAME: &str = "docker.io/library/busybox:latest";

fn test_image(layout: &Path) -> berth_image::Digest {
    write_layout(
        layout,
        &[
            TestLayer::gzip(busybox_layer()),
            TestLayer::zstd(upper_layer()),
        ],
        NAME,
    )
}

#[test]
fn imports_an_oci_layout_with_platform_selection() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let manifest = test_image(&layout);
    let store = Store::new(tmp.path().join("store")).unwrap();
    let imported = import_layout(&store, &layout, None, &Platform::host()).unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].manifest, manifest);
    assert_eq!(imported[0].name.as_ref().unwrap().to_string(), NAME);
    let image = Image::by_name(&store, &Reference::parse("busybox").unwrap()).unwrap();
    assert_eq!(image.manifest_digest, manifest);
    assert_eq!(image.layers.len(), 2);
    assert_eq!(image.layers[0].chain_id, image.layers[0].diff_id);
    // manifest + config + 2 layers; the index and the other platform's manifest are not kept.
    assert_eq!(store.blobs().unwrap().len(), 4);

    // Another platform is not in the layout.
    let store2 = Store::new(tmp.path().join("store2")).unwrap();
    let arm = Platform::parse("linux/mips64le").unwrap();
    assert!(matches!(
        import_layout(&store2, &layout, None, &arm),
        Err(Error::NoMatchingPlatform { .. })
    ));

    // A given name wins.
    let mine = Reference::parse("localhost:5000/mine:v1").unwrap();
    import_layout(&store2, &layout, Some(&mine), &Platform::host()).unwrap();
    assert_eq!(store2.resolve(&mine).unwrap(), manifest);
}

#[test]
fn a_corrupted_blob_fails_the_import_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    test_image(&layout);
    let store = Store::new(tmp.path().join("store")).unwrap();
    let image = {
        let ok = Store::new(tmp.path().join("ok")).unwrap();
        import_layout(&ok, &layout, None, &Platform::host()).unwrap();
        Image::by_name(&ok, &Reference::parse(NAME).unwrap()).unwrap()
    };
    // Flip one byte of the top layer.
    let top = layout
        .join("blobs/sha256")
        .join(image.layers[1].digest.hex());
    let mut data = fs::read(&top).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    fs::write(&top, &data).unwrap();
    let err = import_layout(&store, &layout, None, &Platform::host()).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&image.layers[1].digest.to_string())
    );
    assert!(
        store.blobs().unwrap().is_empty(),
        "blobs kept after a failed import"
    );
    assert!(store.names().unwrap().is_empty());
    assert!(ls(&tmp.path().join("store/tmp")).is_empty());
}

#[test]
fn export_writes_a_layout_that_imports_back() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let manifest = test_image(&layout);
    let store = Store::new(tmp.path().join("store")).unwrap();
    import_layout(&store, &layout, None, &Platform::host()).unwrap();
    let out = tmp.path().join("out");
    export_layout(&store, &[Reference::parse(NAME).unwrap()], &out).unwrap();
    assert_eq!(ls(&out), ["blobs", "index.json", "oci-layout"]);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], manifest.to_string());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let again = Store::new(tmp.path().join("again")).unwrap();
    let imported = import_layout(&again, &out, None, &Platform::host()).unwrap();
    assert_eq!(imported[0].manifest, manifest);
    assert_eq!(imported[0].name.as_ref().unwrap().to_string(), NAME);
}

fn mount(m: &Mount, target: &Path) {
    let c = |s: &str| CString::new(s).unwrap();
    let (fstype, flags) = match m.kind.as_str() {
        "bind" => (c("none"), libc::MS_BIND | libc::MS_REC),
        k => (c(k), 0),
    };
    let src = c(&m.source.display().to_string());
    let tgt = c(&target.display().to_string());
    let data = c(&m
        .options
        .iter()
        .filter(|o| *o != "rbind" && *o != "rw")
        .cloned()
        .collect::<Vec<_>>()
        .join(","));
    // SAFETY: valid C strings; mounting on a test-owned directory.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    assert_eq!(rc, 0, "mount {m:?}: {}", std::io::Error::last_os_error());
}

fn umount(target: &Path) {
    let tgt = CString::new(target.display().to_string()).unwrap();
    // SAFETY: valid C string.
    let rc = unsafe { libc::umount2(tgt.as_ptr(), 0) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// Prepares a snapshot in `mode`, mounts it, checks what a container would see, unmounts.
fn check_snapshot(mode: SnapshotMode) {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    test_image(&layout);
    let store = Store::new(tmp.path().join("store")).unwrap();
    import_layout(&store, &layout, None, &Platform::host()).unwrap();
    let image = Image::by_name(&store, &Reference::parse(NAME).unwrap()).unwrap();
    let snaps = Snapshotter::new(&store, mode);
    let mounts = snaps.prepare("c1", &image).unwrap();
    assert!(matches!(
        snaps.prepare("c1", &image),
        Err(Error::SnapshotExists(_))
    ));
    assert!(matches!(
        snaps.prepare("../x", &image),
        Err(Error::InvalidKey(_))
    ));
    assert_eq!(mounts.len(), 1);
    let lower: Vec<_> = image
        .layers
        .iter()
        .map(|l| snaps.layer_dir(&l.chain_id))
        .collect();
    let lower_before: Vec<Vec<String>> = lower.iter().map(|d| ls(d)).collect();

    let target = tmp.path().join("rootfs");
    fs::create_dir(&target).unwrap();
    mount(&mounts[0], &target);
    let result = std::panic::catch_unwind(|| {
        assert!(target.join("bin/busybox").is_file());
        assert!(
            !target.join("etc/hidden").exists(),
            "whiteout does not hide the lower file"
        );
        assert_eq!(fs::read(target.join("etc/kept")).unwrap(), b"kept\n");
        assert_eq!(
            fs::read(target.join("etc/motd")).unwrap(),
            b"hello from layer 2\n"
        );
        assert_eq!(
            ls(&target.join("opq")),
            ["b"],
            "opaque dir shows lower entries"
        );
        let out = Command::new("chroot")
            .args([
                target.as_os_str(),
                "/bin/sh".as_ref(),
                "-c".as_ref(),
                "echo written > /tmp/new; busybox cat /etc/motd".as_ref(),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"hello from layer 2\n");
        fs::remove_file(target.join("etc/kept")).unwrap();
    });
    umount(&target);
    result.unwrap();

    let dir = store.root().join("snapshots/containers/c1");
    // The snapshot is closed to other users; the container's `/` has the image's mode.
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
    let root_mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    match mode {
        SnapshotMode::Overlay => {
            assert_eq!(root_mode(&dir.join("work")), 0o700);
            assert_eq!(root_mode(&dir.join("upper")), root_mode(&lower[1]));
        }
        SnapshotMode::Copy => assert_eq!(root_mode(&dir.join("rootfs")), root_mode(&lower[1])),
    }
    assert_eq!(root_mode(&lower[1]), 0o755, "a layer without a root entry");
    match mode {
        SnapshotMode::Overlay => {
            assert_eq!(mounts[0].kind, "overlay");
            assert_eq!(fs::read(dir.join("upper/tmp/new")).unwrap(), b"written\n");
            let wh = fs::symlink_metadata(dir.join("upper/etc/kept")).unwrap();
            assert!(
                wh.file_type().is_char_device() && wh.rdev() == 0,
                "delete not recorded as whiteout"
            );
        }
        SnapshotMode::Copy => {
            assert_eq!(mounts[0].kind, "bind");
            assert_eq!(fs::read(dir.join("rootfs/tmp/new")).unwrap(), b"written\n");
        }
    }
    // The layers are untouched.
    assert_eq!(
        lower.iter().map(|d| ls(d)).collect::<Vec<_>>(),
        lower_before
    );
    assert_eq!(fs::read(lower[0].join("etc/kept")).unwrap(), b"kept\n");
    assert!(!lower[0].join("tmp/new").exists());

    snaps.remove("c1").unwrap();
    assert!(matches!(
        snaps.remove("c1"),
        Err(Error::SnapshotNotFound(_))
    ));
    assert!(snaps.list().unwrap().is_empty());
}

#[test]
fn overlay_snapshot_mounts_and_isolates_writes() {
    check_snapshot(SnapshotMode::Overlay);
}

#[test]
fn copy_snapshot_mounts_and_isolates_writes() {
    check_snapshot(SnapshotMode::Copy);
}

#[test]
fn layers_are_shared_and_diff_ids_checked() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path().join("store")).unwrap();
    // Two images with the same base layer share its unpacked directory.
    for (i, top) in [b"one".as_slice(), b"two"].iter().enumerate() {
        let layout = tmp.path().join(format!("layout{i}"));
        let top = LayerTar::new().file("top", top).finish();
        write_layout(
            &layout,
            &[TestLayer::plain(busybox_layer()), TestLayer::gzip(top)],
            &format!("docker.io/x/img{i}:latest"),
        );
        import_layout(&store, &layout, None, &Platform::host()).unwrap();
    }
    let snaps = Snapshotter::new(&store, SnapshotMode::Overlay);
    for i in 0..2 {
        let image =
            Image::by_name(&store, &Reference::parse(&format!("x/img{i}")).unwrap()).unwrap();
        snaps.unpack(&image).unwrap();
    }
    assert_eq!(ls(&store.root().join("snapshots/layers")).len(), 3);

    // A config whose diff ID does not match the layer: refused, nothing unpacked kept.
    let layout = tmp.path().join("bad");
    let mut layer = TestLayer::gzip(LayerTar::new().file("a", b"a").finish());
    layer.tar = LayerTar::new().file("a", b"something else").finish();
    write_layout(&layout, &[layer], "docker.io/x/bad:latest");
    import_layout(&store, &layout, None, &Platform::host()).unwrap();
    let bad = Image::by_name(&store, &Reference::parse("x/bad").unwrap()).unwrap();
    let err = snaps.prepare("c", &bad).unwrap_err();
    assert!(
        matches!(err.layer_cause(), Error::DiffIdMismatch { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "layer {} of image x/bad:latest is corrupt",
            bad.layers[0].digest
        )),
        "{msg}"
    );
    assert_eq!(ls(&store.root().join("snapshots/layers")).len(), 3);
    assert!(ls(&store.root().join("tmp")).is_empty());
    assert!(snaps.list().unwrap().is_empty());

    // A hostile layer in an image: refused the same way.
    let layout = tmp.path().join("evil");
    write_layout(
        &layout,
        &[TestLayer::gzip(
            LayerTar::new().file("../evil", b"x").finish(),
        )],
        "docker.io/x/evil:latest",
    );
    import_layout(&store, &layout, None, &Platform::host()).unwrap();
    let evil = Image::by_name(&store, &Reference::parse("x/evil").unwrap()).unwrap();
    let err = snaps.prepare("c", &evil).unwrap_err();
    assert!(
        matches!(err.layer_cause(), Error::UnsafeEntry { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("x/evil:latest is unsafe"), "{err}");
    assert_eq!(ls(&store.root().join("snapshots/layers")).len(), 3);
    assert!(
        !store.root().join("snapshots/evil").exists() && !tmp.path().join("evil/../evil").is_file()
    );
}

#[test]
fn a_truncated_layer_is_named_with_its_image_not_by_a_temp_path() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path().join("store")).unwrap();
    let mut cut = LayerTar::new().file("big", &[5u8; 100_000]).finish();
    cut.truncate(512 + 30_000);
    let layout = tmp.path().join("cut");
    write_layout(&layout, &[TestLayer::plain(cut)], "docker.io/x/cut:latest");
    import_layout(&store, &layout, None, &Platform::host()).unwrap();
    let image = Image::by_name(&store, &Reference::parse("x/cut").unwrap()).unwrap();
    let err = Snapshotter::new(&store, SnapshotMode::Overlay)
        .unpack(&image)
        .unwrap_err();
    assert!(matches!(err.layer_cause(), Error::Tar { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "layer {} of image x/cut:latest is corrupt: ",
            image.layers[0].digest
        )) && msg.contains("unexpected EOF"),
        "{msg}"
    );
    assert!(!msg.contains("tmp/"), "{msg}");
    assert!(ls(&store.root().join("tmp")).is_empty());
    assert!(ls(&store.root().join("snapshots/layers")).is_empty());
}

#[test]
fn prune_keeps_what_names_and_snapshots_use() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    test_image(&layout);
    let store = Store::new(tmp.path().join("store")).unwrap();
    import_layout(&store, &layout, None, &Platform::host()).unwrap();
    let name = Reference::parse(NAME).unwrap();
    let image = Image::by_name(&store, &name).unwrap();
    let snaps = Snapshotter::new(&store, SnapshotMode::Overlay);
    snaps.prepare("c1", &image).unwrap();

    let report = store.prune().unwrap();
    assert!(
        report.blobs.is_empty() && report.layers.is_empty(),
        "{report:?}"
    );

    // Untagged but used by a snapshot: its layers stay, unused blobs go.
    store.untag(&name).unwrap();
    let report = store.prune().unwrap();
    assert!(report.layers.is_empty(), "{report:?}");
    assert_eq!(
        report.blobs.len(),
        3,
        "config and layer blobs of the untagged image"
    );
    assert!(store.has(&image.manifest_digest));

    // Nothing refers to anything: all gone.
    snaps.remove("c1").unwrap();
    let report = store.prune().unwrap();
    assert_eq!(report.layers.len(), 2);
    assert!(store.blobs().unwrap().is_empty());
    assert!(ls(&store.root().join("snapshots/layers")).is_empty());
}

#[test]
fn remove_image_removes_only_what_that_image_alone_used() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path().join("store")).unwrap();
    // Two images sharing the busybox layer; the second adds its own layer.
    let a_layout = tmp.path().join("a");
    write_layout(&a_layout, &[TestLayer::gzip(busybox_layer())], "a:1");
    let b_layout = tmp.path().join("b");
    write_layout(
        &b_layout,
        &[
            TestLayer::gzip(busybox_layer()),
            TestLayer::zstd(upper_layer()),
        ],
        "b:1",
    );
    let a = Reference::parse("example.com/a:1").unwrap();
    let b = Reference::parse("example.com/b:1").unwrap();
    import_layout(&store, &a_layout, Some(&a), &Platform::host()).unwrap();
    import_layout(&store, &b_layout, Some(&b), &Platform::host()).unwrap();
    let ia = Image::by_name(&store, &a).unwrap();
    let ib = Image::by_name(&store, &b).unwrap();
    let snaps = Snapshotter::new(&store, SnapshotMode::Overlay);
    snaps.unpack(&ia).unwrap();
    snaps.unpack(&ib).unwrap();
    // Sizes as Docker counts them: file bytes and symlink targets, per unpacked layer.
    let busybox = fs::metadata("/bin/busybox").unwrap().len();
    let base = busybox + "busybox".len() as u64 + 27 + 5 + 8;
    assert_eq!(snaps.unpacked_size(&ia), Some(base));
    assert_eq!(snaps.unpacked_size(&ib), Some(base + 8 + 19));
    // Unrelated garbage: a blob nothing names. `rmi` must leave it to `image prune`.
    let stray = store.ingest_bytes(b"unrelated blob").unwrap();

    // Still named: nothing removed.
    assert_eq!(
        store.remove_image(&ib.manifest_digest).unwrap(),
        Default::default()
    );
    store.untag(&b).unwrap();
    let report = store.remove_image(&ib.manifest_digest).unwrap();
    let mut expected = vec![
        ib.manifest_digest.clone(),
        ib.config_digest.clone(),
        ib.layers[1].digest.clone(),
    ];
    expected.sort();
    let mut got = report.blobs.clone();
    got.sort();
    assert_eq!(got, expected, "b's own blobs only");
    assert_eq!(report.layers, vec![ib.layers[1].chain_id.clone()]);
    assert!(store.has(&stray), "an unrelated blob stays");
    assert!(store.has(&ia.layers[0].digest), "the shared layer stays");
    assert!(snaps.layer_dir(&ia.layers[0].chain_id).is_dir());
    assert_eq!(snaps.unpacked_size(&ia), Some(base));
    assert_eq!(snaps.unpacked_size(&ib), None, "b's upper layer is gone");
    assert_eq!(
        Image::by_name(&store, &a).unwrap().manifest_digest,
        ia.manifest_digest
    );

    // prune then takes the stray blob.
    let report = store.prune().unwrap();
    assert_eq!(report.blobs, vec![stray]);
}
