//! The registry client against a real registry (Debian's docker-registry) on loopback, skopeo
//! for interop, and a fake registry for lies, failures and bearer tokens.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use berth_image::layout::import_layout;
use berth_image::registry::{
    self, Credentials, NoProgress, PullOptions, PushOptions, RegistryOptions,
};
use berth_image::{Digest, Error, Image, Platform, Reference, Store, unpack_layer};
use common::fake_registry::{Behaviour, FakeRegistry};
use common::registry::TestRegistry;
use common::{TestLayer, busybox_layer, put_image};

/// A store holding a busybox image (one gzip layer) named `name`.
fn store_with_busybox(root: &Path, name: &Reference) -> (Store, Digest) {
    let store = Store::new(root).unwrap();
    let layout = tempfile::tempdir().unwrap();
    let desc = put_image(
        layout.path(),
        &[TestLayer::gzip(busybox_layer())],
        &Platform::host().architecture,
    );
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [desc]});
    fs::write(
        layout.path().join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    fs::write(
        layout.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let imported = import_layout(&store, layout.path(), Some(name), &Platform::host()).unwrap();
    (store, imported[0].manifest.clone())
}

fn opts() -> PullOptions {
    PullOptions {
        registry: RegistryOptions::default(),
        ..PullOptions::default()
    }
}

/// Unpacks an image's layers into a directory and runs its busybox there with chroot.
fn check_rootfs_runs(store: &Store, manifest: &Digest) {
    let image = Image::load(store, manifest).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for l in &image.layers {
        unpack_layer(store.open(&l.digest).unwrap(), dir.path()).unwrap();
    }
    assert_eq!(
        fs::read(dir.path().join("bin/busybox")).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
    let st = Command::new("chroot")
        .arg(dir.path())
        .args(["/bin/busybox", "true"])
        .status()
        .unwrap();
    assert!(st.success(), "busybox true in the pulled rootfs: {st}");
}

fn tmp_is_empty(store: &Store) {
    let left: Vec<_> = fs::read_dir(store.root().join("tmp")).unwrap().collect();
    assert!(left.is_empty(), "tmp/ leftovers: {left:?}");
}

#[test]
fn push_then_pull_by_tag_and_digest_gives_the_same_image() {
    common::require_root();
    let reg = TestRegistry::start(None);
    let src = tempfile::tempdir().unwrap();
    let name = Reference::parse(&format!("{}/test/busybox:1", reg.addr)).unwrap();
    let (store, manifest) = store_with_busybox(src.path(), &name);

    let pushed = registry::push(&store, &name, &PushOptions::default(), &NoProgress).unwrap();
    assert_eq!(pushed.digest, manifest);
    assert_eq!(
        (pushed.uploaded, pushed.mounted, pushed.existing),
        (2, 0, 0)
    );

    // A second push finds everything there.
    let again = registry::push(&store, &name, &PushOptions::default(), &NoProgress).unwrap();
    assert_eq!((again.uploaded, again.existing), (0, 2));

    let dst = tempfile::tempdir().unwrap();
    let fresh = Store::new(dst.path()).unwrap();
    let pulled = registry::pull(&fresh, &name, &opts(), &NoProgress).unwrap();
    assert_eq!(pulled.manifest, manifest);
    assert_eq!(pulled.digest, manifest);
    assert_eq!((pulled.fetched, pulled.skipped), (2, 0));
    assert_eq!(fresh.resolve(&name).unwrap(), manifest);
    for blob in Image::load(&store, &manifest).unwrap().blobs() {
        assert_eq!(
            fs::read(fresh.blob_path(&blob)).unwrap(),
            fs::read(store.blob_path(&blob)).unwrap()
        );
    }
    check_rootfs_runs(&fresh, &manifest);

    // Pull again: nothing downloaded.
    let second = registry::pull(&fresh, &name, &opts(), &NoProgress).unwrap();
    assert_eq!((second.fetched, second.skipped), (0, 2));

    // By digest, into another store.
    let by_digest = name.with_digest(&manifest);
    let dst2 = tempfile::tempdir().unwrap();
    let other = Store::new(dst2.path()).unwrap();
    let pulled = registry::pull(&other, &by_digest, &opts(), &NoProgress).unwrap();
    assert_eq!(pulled.manifest, manifest);
    assert_eq!(other.resolve(&by_digest).unwrap(), manifest);

    // A digest the registry does not have.
    let missing = name.with_digest(&Digest::of(b"nothing"));
    let err = registry::pull(&other, &missing, &opts(), &NoProgress).unwrap_err();
    assert!(matches!(err, Error::ManifestUnknown { .. }), "{err}");
    tmp_is_empty(&other);
}

#[test]
fn second_push_to_another_repository_mounts_and_chunked_uploads_work() {
    common::require_root();
    let reg = TestRegistry::start(None);
    let src = tempfile::tempdir().unwrap();
    let a = Reference::parse(&format!("{}/team/a:1", reg.addr)).unwrap();
    let b = Reference::parse(&format!("{}/team/b:1", reg.addr)).unwrap();
    let (store, manifest) = store_with_busybox(src.path(), &a);
    registry::push(&store, &a, &PushOptions::default(), &NoProgress).unwrap();
    store.tag(&b, &manifest).unwrap();
    let pushed = registry::push(&store, &b, &PushOptions::default(), &NoProgress).unwrap();
    // Both blobs answered 201 to `POST .../blobs/uploads/?mount=...&from=team/a`.
    assert_eq!(
        (pushed.uploaded, pushed.mounted, pushed.existing),
        (0, 2, 0)
    );
    assert!(
        reg.log().matches("mount=sha256").count() >= 2,
        "registry log shows no mount:\n{}",
        reg.log()
    );

    // Chunked upload from a store that knows no sibling repository.
    let src2 = tempfile::tempdir().unwrap();
    let c = Reference::parse(&format!("{}/team/chunked:1", reg.addr)).unwrap();
    let (store2, manifest2) = store_with_busybox(src2.path(), &c);
    let chunked = PushOptions {
        chunk_size: Some(256 * 1024),
        ..PushOptions::default()
    };
    let pushed = registry::push(&store2, &c, &chunked, &NoProgress).unwrap();
    assert_eq!(pushed.uploaded, 2);
    let dst = tempfile::tempdir().unwrap();
    let fresh = Store::new(dst.path()).unwrap();
    let pulled = registry::pull(&fresh, &c, &opts(), &NoProgress).unwrap();
    assert_eq!(pulled.manifest, manifest2);
    check_rootfs_runs(&fresh, &manifest2);
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo not found: apt-get install skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn skopeo_reads_what_berth_pushes_and_berth_pulls_an_index_skopeo_pushed() {
    common::require_root();
    let reg = TestRegistry::start(None);
    let src = tempfile::tempdir().unwrap();
    let name = Reference::parse(&format!("{}/interop/bb:1", reg.addr)).unwrap();
    let (store, manifest) = store_with_busybox(src.path(), &name);
    registry::push(&store, &name, &PushOptions::default(), &NoProgress).unwrap();
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/interop/bb:1", reg.addr),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], manifest.to_string());

    // A two-platform index, pushed by skopeo.
    let layout = tempfile::tempdir().unwrap();
    let host = Platform::host().architecture;
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let mut mine = put_image(layout.path(), &[TestLayer::gzip(busybox_layer())], &host);
    mine["platform"] = serde_json::json!({"os": "linux", "architecture": host});
    let other_layer = common::LayerTar::new()
        .file("other", b"other arch\n")
        .finish();
    let mut theirs = put_image(layout.path(), &[TestLayer::gzip(other_layer)], other);
    theirs["platform"] = serde_json::json!({"os": "linux", "architecture": other});
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [theirs.clone(), mine.clone()],
    });
    let mut index_desc = common::put_blob(layout.path(), &serde_json::to_vec(&index).unwrap());
    index_desc["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
    index_desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "multi"});
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [index_desc]});
    fs::write(
        layout.path().join("index.json"),
        serde_json::to_vec(&top).unwrap(),
    )
    .unwrap();
    fs::write(
        layout.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.path().display()),
        &format!("docker://{}/interop/multi:1", reg.addr),
    ]);

    let multi = Reference::parse(&format!("{}/interop/multi:1", reg.addr)).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let fresh = Store::new(dst.path()).unwrap();
    let pulled = registry::pull(&fresh, &multi, &opts(), &NoProgress).unwrap();
    assert_eq!(
        pulled.manifest.to_string(),
        mine["digest"].as_str().unwrap()
    );
    assert_ne!(pulled.digest, pulled.manifest, "the tag names the index");
    check_rootfs_runs(&fresh, &pulled.manifest);

    let arm = PullOptions {
        platform: Platform::parse(&format!("linux/{other}")).unwrap(),
        ..opts()
    };
    let pulled_other = registry::pull(&fresh, &multi, &arm, &NoProgress).unwrap();
    assert_eq!(
        pulled_other.manifest.to_string(),
        theirs["digest"].as_str().unwrap()
    );
    // By the index digest: the name resolves to the platform manifest, and survives a prune.
    let by_index = multi.with_digest(&pulled.digest);
    let p = registry::pull(&fresh, &by_index, &opts(), &NoProgress).unwrap();
    assert_eq!(p.manifest, pulled.manifest);
    assert_eq!(p.fetched, 0);
    assert_eq!(p.name, by_index);
    fresh.prune().unwrap();
    assert_eq!(fresh.resolve(&by_index).unwrap(), pulled.manifest);
    assert_eq!(
        Image::by_name(&fresh, &by_index).unwrap().manifest_digest,
        pulled.manifest
    );
    // Another index's digest cannot name it.
    let bogus = multi.with_digest(&Digest::of(b"not an index"));
    assert!(fresh.tag(&bogus, &pulled.manifest).is_err());
    let none = PullOptions {
        platform: Platform::parse("linux/s390x").unwrap(),
        ..opts()
    };
    if host != "s390x" {
        let err = registry::pull(&fresh, &multi, &none, &NoProgress).unwrap_err();
        assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err}");
    }
}

#[test]
fn basic_auth_is_required_and_used() {
    common::require_root();
    let reg = TestRegistry::start(Some(("berth", "s3cret")));
    let src = tempfile::tempdir().unwrap();
    let name = Reference::parse(&format!("{}/private/bb:1", reg.addr)).unwrap();
    let (store, manifest) = store_with_busybox(src.path(), &name);
    let cfg = tempfile::tempdir().unwrap();
    let anonymous = RegistryOptions {
        docker_config: Some(cfg.path().join("config.json")),
        ..RegistryOptions::default()
    };
    let push_anon = PushOptions {
        registry: anonymous.clone(),
        ..PushOptions::default()
    };
    let err = registry::push(&store, &name, &push_anon, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("berth login"), "{err}");

    let wrong = Credentials {
        username: "berth".into(),
        password: "nope".into(),
    };
    assert!(registry::check_login(&reg.addr, &wrong, &anonymous).is_err());
    let right = Credentials {
        username: "berth".into(),
        password: "s3cret".into(),
    };
    registry::check_login(&reg.addr, &right, &anonymous).unwrap();
    // Credentials from Docker's config.json, as `berth login` writes them.
    let mut config = registry::DockerConfig::load(&cfg.path().join("config.json")).unwrap();
    config.store(&reg.addr, &right).unwrap();
    let push_auth = PushOptions {
        registry: anonymous.clone(),
        ..PushOptions::default()
    };
    registry::push(&store, &name, &push_auth, &NoProgress).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let fresh = Store::new(dst.path()).unwrap();
    let pull_auth = PullOptions {
        registry: anonymous,
        ..opts()
    };
    assert_eq!(
        registry::pull(&fresh, &name, &pull_auth, &NoProgress)
            .unwrap()
            .manifest,
        manifest
    );
}

/// The image the fake registry serves: manifest bytes, config, layer.
fn fake_image() -> (Vec<u8>, Vec<u8>, Vec<u8>, Digest) {
    let tar = busybox_layer();
    let layer = common::gzip(&tar);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": Platform::host().architecture, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(&tar).to_string()]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": config.len(), "digest": Digest::of(&config).to_string()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": layer.len(), "digest": Digest::of(&layer).to_string()}],
    }))
    .unwrap();
    let layer_digest = Digest::of(&layer);
    (manifest, config, layer, layer_digest)
}

fn fake(behaviour: Behaviour) -> (FakeRegistry, Reference, Digest) {
    let (manifest, config, layer, layer_digest) = fake_image();
    let reg = FakeRegistry::start(
        "fake/img",
        "latest",
        "application/vnd.docker.distribution.manifest.v2+json",
        manifest,
        vec![config, layer],
        behaviour,
    );
    let name = Reference::parse(&format!("{}/fake/img:latest", reg.addr)).unwrap();
    (reg, name, layer_digest)
}

#[test]
fn a_registry_that_lies_about_a_digest_or_a_size_is_refused() {
    let (_, _, _, layer) = fake_image();
    for behaviour in [
        Behaviour {
            wrong_digest: Some(layer.clone()),
            ..Behaviour::default()
        },
        Behaviour {
            wrong_size: Some(layer.clone()),
            ..Behaviour::default()
        },
    ] {
        let (_reg, name, layer) = fake(behaviour);
        let dst = tempfile::tempdir().unwrap();
        let store = Store::new(dst.path()).unwrap();
        let err = registry::pull(&store, &name, &opts(), &NoProgress).unwrap_err();
        assert!(
            matches!(
                err,
                Error::DigestMismatch { .. } | Error::SizeMismatch { .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(&layer.to_string()), "{err}");
        assert!(!store.has(&layer));
        assert!(store.names().unwrap().is_empty());
        tmp_is_empty(&store);
    }

    // A manifest served under a digest it does not have.
    let lie = Digest::of(b"another manifest");
    let (_reg, name, _) = fake(Behaviour {
        manifest_lie: Some(lie.clone()),
        ..Behaviour::default()
    });
    let dst = tempfile::tempdir().unwrap();
    let store = Store::new(dst.path()).unwrap();
    let err = registry::pull(&store, &name.with_digest(&lie), &opts(), &NoProgress).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&lie.to_string()), "{err}");
    assert!(store.blobs().unwrap().is_empty());
    tmp_is_empty(&store);
}

#[test]
fn retries_on_503_then_succeeds() {
    let (reg, name, layer) = fake(Behaviour {
        fail_first: 1,
        ..Behaviour::default()
    });
    let dst = tempfile::tempdir().unwrap();
    let store = Store::new(dst.path()).unwrap();
    let pulled = registry::pull(&store, &name, &opts(), &NoProgress).unwrap();
    assert_eq!(pulled.fetched, 2);
    let gets = reg
        .requests()
        .iter()
        .filter(|r| r.starts_with(&format!("GET /v2/fake/img/blobs/{layer}")))
        .count();
    assert_eq!(gets, 2, "one 503, then the blob: {:?}", reg.requests());
    assert!(store.has(&layer));
}

#[test]
fn bearer_tokens_are_fetched_with_credentials_and_cached() {
    let (reg, name, _) = fake(Behaviour {
        bearer: Some(("tok-user".into(), "tok-pass".into())),
        ..Behaviour::default()
    });
    let dst = tempfile::tempdir().unwrap();
    let store = Store::new(dst.path()).unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.registry.docker_config = Some(cfg.path().join("config.json"));
    let err = registry::pull(&store, &name, &o, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");

    let mut config = registry::DockerConfig::load(&cfg.path().join("config.json")).unwrap();
    let creds = Credentials {
        username: "tok-user".into(),
        password: "tok-pass".into(),
    };
    config.store(&reg.addr, &creds).unwrap();
    let pulled = registry::pull(&store, &name, &o, &NoProgress).unwrap();
    assert_eq!(pulled.fetched, 2);
    let log = reg.log.lock().unwrap();
    // One token for the pull (the failed anonymous attempt asked for one too), reused for
    // the manifest and both blobs.
    assert_eq!(
        log.token_scopes,
        vec!["repository:fake/img:pull", "repository:fake/img:pull"]
    );
}

/// Names and blobs of a store, to compare before and after a failed pull.
fn snapshot_of(store: &Store) -> (std::collections::BTreeMap<String, Digest>, Vec<Digest>) {
    let mut blobs = store.blobs().unwrap();
    blobs.sort();
    (store.names().unwrap(), blobs)
}

/// A store holding the fake image, pulled from a well-behaved fake registry.
fn store_with_fake_image(root: &Path) -> Store {
    let (_reg, name, _) = fake(Behaviour::default());
    let store = Store::new(root).unwrap();
    registry::pull(&store, &name, &opts(), &NoProgress).unwrap();
    store
}

#[test]
fn a_manifest_that_is_not_json_or_not_a_manifest_is_refused_naming_the_reference() {
    let dst = tempfile::tempdir().unwrap();
    let store = store_with_fake_image(dst.path());
    let before = snapshot_of(&store);
    for (body, why) in [
        (
            &b"<html><body>502 Bad Gateway</body></html>"[..],
            "not JSON",
        ),
        (&b"\x1f\x8b\x08\x00garbage\xff\xfe"[..], "not JSON"),
        (&br#"{"hello": "world"}"#[..], "not a manifest"),
    ] {
        let (_reg, name, _) = fake(Behaviour {
            manifest_body: Some(body.to_vec()),
            ..Behaviour::default()
        });
        let err = registry::pull(&store, &name, &opts(), &NoProgress).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&name.to_string()), "{why}: {msg}");
        assert!(
            matches!(err, Error::Json { .. } | Error::Invalid { .. }),
            "{why}: {err:?}"
        );
        assert_eq!(snapshot_of(&store), before, "{why}: store changed");
        tmp_is_empty(&store);
    }
}

#[test]
fn a_blob_cut_off_mid_body_is_retried_and_refused_when_it_keeps_breaking() {
    let (_, _, _, layer) = fake_image();
    // Cut once: the retry gets it whole.
    let (reg, name, _) = fake(Behaviour {
        truncate: Some((layer.clone(), 1)),
        ..Behaviour::default()
    });
    let dst = tempfile::tempdir().unwrap();
    let store = Store::new(dst.path()).unwrap();
    let pulled = registry::pull(&store, &name, &opts(), &NoProgress).unwrap();
    assert_eq!(pulled.fetched, 2);
    assert!(store.has(&layer));
    let gets = reg
        .requests()
        .iter()
        .filter(|r| r.starts_with(&format!("GET /v2/fake/img/blobs/{layer}")))
        .count();
    assert_eq!(
        gets,
        2,
        "one cut-off body, then the blob: {:?}",
        reg.requests()
    );
    check_rootfs_runs(&store, &pulled.manifest);
    tmp_is_empty(&store);

    // Cut every time: a clear error naming the blob, and the store as it was.
    let dst = tempfile::tempdir().unwrap();
    let store = store_with_fake_image(dst.path());
    let before = snapshot_of(&store);
    let other = tempfile::tempdir().unwrap();
    let fresh = Store::new(other.path()).unwrap();
    for store in [&store, &fresh] {
        let (_reg, name, _) = fake(Behaviour {
            truncate: Some((layer.clone(), usize::MAX)),
            ..Behaviour::default()
        });
        if store.has(&layer) {
            // Already there: nothing to download, the pull succeeds without the bad body.
            registry::pull(store, &name, &opts(), &NoProgress).unwrap();
            assert_eq!(snapshot_of(store).1, before.1);
            continue;
        }
        let err = registry::pull(store, &name, &opts(), &NoProgress).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&layer.to_string()), "{msg}");
        assert!(!store.has(&layer));
        assert!(store.names().unwrap().is_empty(), "nothing named");
        tmp_is_empty(store);
    }
}
