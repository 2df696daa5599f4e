//! `berth serve`'s image endpoints driven by the real docker CLI 28 (and docker-py where the
//! CLI does not reach): pull and push through a real registry (Debian's docker-registry on
//! loopback, with htpasswd for login), images with filters and templates, tag, rmi (409 while
//! a container uses the image), prune, history, save | load, distribution inspect.

mod common;
#[path = "../../image/tests/common/registry.rs"]
mod registry;

use std::io::Write;
use std::process::Stdio;

use common::serve::Server;
use common::{IMAGE, import_with_config, text};
use registry::TestRegistry;

/// The server's store emptied (no name, no blob): what it pulls it downloads.
fn empty_store(s: &Server) {
    s.berth.ok(&["image", "prune", "-a"]);
    assert_eq!(s.berth.ok(&["images", "-q"]).trim(), "");
}

#[test]
fn push_then_pull_through_a_registry_with_progress() {
    let reg = TestRegistry::start(None);
    let remote = format!("{}/api/busybox:1", reg.addr);
    let s = Server::start(&[]);
    s.docker_ok(&["tag", IMAGE, &remote]);
    let out = s.docker_ok(&["push", &remote]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/api/busybox]",
            reg.addr
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let pushed = s.berth.inspect_image(&remote);
    let size = std::fs::metadata(
        s.berth.root.path().join("blobs/sha256").join(
            pushed["Descriptor"]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    )
    .unwrap()
    .len();
    assert!(
        out.contains(&format!(
            "1: digest: {} size: {size}",
            pushed["Descriptor"]["digest"].as_str().unwrap()
        )),
        "{out}"
    );
    // Again: the registry has every layer.
    let out = s.docker_ok(&["push", &remote]);
    assert!(out.contains(": Layer already exists"), "{out}");
    assert!(!out.contains(": Pushed"), "{out}");
    // --all-tags: every tag of the repository.
    s.docker_ok(&["tag", IMAGE, &format!("{}/api/busybox:2", reg.addr)]);
    let out = s.docker_ok(&["push", "--all-tags", &format!("{}/api/busybox", reg.addr)]);
    assert!(out.contains("\n1: digest: sha256:"), "{out}");
    assert!(out.contains("\n2: digest: sha256:"), "{out}");
    // An image the store does not have: Docker's message, nothing streamed.
    let o = s.docker(&["push", &format!("{}/api/nothing:1", reg.addr)]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("An image does not exist locally with the tag"),
        "{err}"
    );

    // Another server, its store empty: the pull downloads every layer.
    let s2 = Server::start(&[]);
    empty_store(&s2);
    let o = s2.docker(&["pull", &remote]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}\n{}", s2.log());
    assert!(out.contains("1: Pulling from api/busybox"), "{out}");
    assert!(out.contains(": Pulling fs layer"), "{out}");
    assert!(out.contains(": Download complete"), "{out}");
    assert!(out.contains(": Pull complete"), "{out}");
    assert!(
        out.contains(&format!(
            "Digest: {}",
            pushed["Descriptor"]["digest"].as_str().unwrap()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {remote}")),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some(remote.as_str()), "{out}");
    let listed = s2
        .berth
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let short = &pushed["Id"].as_str().unwrap()["sha256:".len()..][..12];
    assert!(
        listed.contains(&format!("{}/api/busybox:1 {short}", reg.addr)),
        "{listed}"
    );
    // Pulled again: nothing to download.
    let out = s2.docker_ok(&["pull", &remote]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {remote}")),
        "{out}"
    );
    // By digest.
    let by_digest = format!(
        "{}/api/busybox@{}",
        reg.addr,
        pushed["Descriptor"]["digest"].as_str().unwrap()
    );
    let out = s2.docker_ok(&["pull", "-q", &by_digest]);
    assert_eq!(out.trim(), by_digest);
    // A tag the registry does not have: an error response, exit 1.
    let o = s2.docker(&["pull", &format!("{}/api/busybox:nope", reg.addr)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("not found"), "{err}");

    // The raw messages, as docker-py decodes them: per-layer progress with progressDetail.
    empty_store(&s2);
    let out = s2.python_ok(&[
        "-c",
        &format!(
            "import docker, json\n\
             c = docker.from_env()\n\
             for m in c.api.pull('{}/api/busybox', tag='1', stream=True, decode=True):\n    \
                 print(json.dumps(m))\n",
            reg.addr
        ),
    ]);
    let msgs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let downloading = msgs
        .iter()
        .find(|m| m["status"] == "Downloading")
        .unwrap_or_else(|| panic!("no Downloading message: {out}"));
    assert!(
        downloading["progressDetail"]["total"].as_u64().unwrap() > 0,
        "{downloading}"
    );
    assert!(
        downloading["progress"].as_str().unwrap().starts_with('['),
        "{downloading}"
    );
    assert_eq!(downloading["id"].as_str().unwrap().len(), 12);
    assert!(
        msgs.iter()
            .any(|m| m["status"] == "Pull complete" && m["progressDetail"].is_object()),
        "{out}"
    );

    // The registry's view of the image (docker-py's registry data: /distribution).
    let out = s2.python_ok(&[
        "-c",
        &format!(
            "import docker\n\
             d = docker.from_env().images.get_registry_data('{remote}')\n\
             print(d.id, d.attrs['Descriptor']['size'], d.attrs['Platforms'])\n"
        ),
    ]);
    assert!(
        out.starts_with(&format!(
            "{} {size} [{{'architecture': '{}', 'os': 'linux'}}]",
            pushed["Descriptor"]["digest"].as_str().unwrap(),
            berth_image::Platform::host().architecture
        )),
        "{out}"
    );
}

#[test]
fn images_filters_tag_inspect_history_rmi_prune() {
    let s = Server::start(&[]);
    s.docker_ok(&["tag", IMAGE, "apitest/one:1"]);
    s.docker_ok(&["tag", IMAGE, "apitest/two"]);
    import_with_config(&s.berth, "apitest/labelled:1", |c| {
        c["Labels"] = serde_json::json!({"team": "core", "tier": "web"});
    });

    let all = s.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for n in [
        "apitest/one:1",
        "apitest/two:latest",
        "apitest/labelled:1",
        "berth-test/busybox:latest",
    ] {
        assert!(all.lines().any(|l| l == n), "{n} missing: {all}");
    }
    let refs = s.docker_ok(&[
        "images",
        "--filter",
        "reference=apitest/*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    let mut refs: Vec<&str> = refs.lines().collect();
    refs.sort();
    assert_eq!(
        refs,
        ["apitest/labelled:1", "apitest/one:1", "apitest/two:latest"]
    );
    let labelled = s.docker_ok(&[
        "images",
        "--filter",
        "label=team=core",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(labelled.trim(), "apitest/labelled");
    assert_eq!(
        s.docker_ok(&["images", "-q", "--filter", "dangling=true"])
            .trim(),
        ""
    );
    // The positional argument is a reference filter.
    let two = s.docker_ok(&["images", "apitest/two", "--format", "{{.Tag}} {{.ID}}"]);
    let id = s.berth.inspect_image(IMAGE)["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(two.trim(), format!("latest {}", &id[7..19]));
    let o = s.docker(&["images", "--filter", "colour=blue"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("colour"), "{err}");

    // Tag by ID, inspect by the new name.
    s.docker_ok(&["tag", &id[7..19], "apitest/by-id:7"]);
    let got = s.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "apitest/by-id:7"]);
    assert_eq!(got.trim(), id);
    let o = s.docker(&["tag", "apitest/none:1", "apitest/x:1"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("No such image: apitest/none:1"), "{err}");

    // History: the image's ID on its top entry, the layer's size.
    let h = s.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Size}}|{{.CreatedBy}}",
        "apitest/one:1",
    ]);
    let first = h.lines().next().unwrap();
    assert!(first.starts_with(&format!("{id}|")), "{h}");
    let table = s.docker_ok(&["history", "apitest/one:1"]);
    assert!(table.starts_with("IMAGE"), "{table}");
    assert!(table.contains("CREATED BY"), "{table}");

    // rmi: a container uses the labelled image (its only name): 409, Docker's message.
    let ctr = s
        .berth
        .ok(&["create", "apitest/labelled:1", "true"])
        .trim()
        .to_string();
    let o = s.docker(&["rmi", "apitest/labelled:1"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("conflict: unable to remove repository reference")
            && err.contains(&format!(
                "container {} is using its referenced image",
                &ctr[..12]
            )),
        "{err}"
    );
    let status = s.python_ok(&[
        "-c",
        "import docker\n\
         try:\n    docker.from_env().images.remove('apitest/labelled:1')\n\
         except docker.errors.APIError as e:\n    print(e.status_code)\n",
    ]);
    assert_eq!(status.trim(), "409");
    s.berth.ok(&["rm", &ctr]);
    let out = s.docker_ok(&["rmi", "apitest/labelled:1"]);
    assert!(out.contains("Untagged: apitest/labelled:1"), "{out}");
    assert!(out.contains("Deleted: sha256:"), "{out}");
    let out = s.docker_ok(&["rmi", "apitest/one:1"]);
    assert_eq!(out.trim(), "Untagged: apitest/one:1");
    let o = s.docker(&["rmi", "apitest/one:1"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("No such image"), "{err}");

    // Prune: without -a nothing named goes; with -a and a label filter only those images.
    import_with_config(&s.berth, "apitest/prune-me:1", |c| {
        c["Labels"] = serde_json::json!({"prune": "yes"});
    });
    let out = s.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert!(s.berth.ok(&["images"]).contains("apitest/prune-me"));
    let out = s.docker_ok(&["image", "prune", "-a", "-f", "--filter", "label=prune=yes"]);
    assert!(out.contains("untagged: apitest/prune-me:1"), "{out}");
    assert!(out.contains("deleted: sha256:"), "{out}");
    let left = s
        .berth
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!left.contains("prune-me"), "{left}");
    assert!(left.contains("apitest/two:latest"), "{left}");
    // until: images created before it go (the busybox copies are years old).
    let out = s.docker_ok(&["image", "prune", "-a", "-f", "--filter", "until=1h"]);
    assert!(out.contains("untagged: apitest/two:latest"), "{out}");
    let o = s.docker(&["image", "prune", "-f", "--filter", "until=soon"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("until"), "{err}");
}

#[test]
fn save_and_load_round_trip() {
    let s = Server::start(&[]);
    s.docker_ok(&["tag", IMAGE, "apitest/saved:2"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("images.tar");
    s.docker_ok(&[
        "save",
        "-o",
        file.to_str().unwrap(),
        IMAGE,
        "apitest/saved:2",
    ]);
    assert!(std::fs::metadata(&file).unwrap().len() > 100_000);
    let missing = dir.path().join("missing.tar");
    let o = s.docker(&["save", "apitest/missing:1", "-o", missing.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("No such image: apitest/missing:1"), "{err}");

    // Loaded into an empty store from the file.
    let s2 = Server::start(&[]);
    empty_store(&s2);
    let out = s2.docker_ok(&["load", "-i", file.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: berth-test/busybox:latest"),
        "{out}"
    );
    assert!(out.contains("Loaded image: apitest/saved:2"), "{out}");
    let a = s.berth.inspect_image("apitest/saved:2");
    let b = s2.berth.inspect_image("apitest/saved:2");
    assert_eq!(a["Id"], b["Id"]);
    let run = s2.berth.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "apitest/saved:2",
        "echo",
        "loaded",
    ]);
    assert_eq!(run.trim(), "loaded");

    // docker save | docker load between the two servers.
    s.docker_ok(&["tag", IMAGE, "apitest/piped:3"]);
    let mut save = s
        .client("docker")
        .args(["save", "apitest/piped:3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = s2
        .client("docker")
        .args(["load", "-q"])
        .stdin(save.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(save.wait().unwrap().success());
    let o = load.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.trim(), "Loaded image: apitest/piped:3");

    // Not an archive: an error, nothing loaded.
    let mut load = s2
        .client("docker")
        .args(["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    load.stdin.take().unwrap().write_all(&[b'x'; 4096]).unwrap();
    let o = load.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("Error response from daemon"), "{err}");
}

#[test]
fn import_a_rootfs_tarball() {
    let s = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let tar = common::rootfs_tar(dir.path());
    let out = s.docker_ok(&["import", tar.to_str().unwrap(), "apitest/imported:1"]);
    let id = s.berth.inspect_image("apitest/imported:1")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out.trim(), id);
    let run = s.berth.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "apitest/imported:1",
        "/bin/busybox",
        "echo",
        "imported",
    ]);
    assert_eq!(run.trim(), "imported");
    // --change is refused, not ignored.
    let o = s.docker(&[
        "import",
        "--change",
        "CMD [\"sh\"]",
        tar.to_str().unwrap(),
        "apitest/changed:1",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("changes are not supported"), "{err}");
}

#[test]
fn login_and_push_pull_with_htpasswd() {
    let reg = TestRegistry::start(Some(("apiuser", "s3cret-pw")));
    let s = Server::start(&[]);
    let login = |password: &str| {
        let mut c = s
            .client("docker")
            .args(["login", "-u", "apiuser", "--password-stdin", &reg.addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        c.wait_with_output().unwrap()
    };
    let o = login("wrong");
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(err.contains("401 Unauthorized"), "{err}");

    let remote = format!("{}/private/busybox:1", reg.addr);
    s.docker_ok(&["tag", IMAGE, &remote]);
    // Without credentials the registry refuses the push.
    let o = s.docker(&["push", &remote]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(err.contains("authentication required"), "{out}\n{err}");

    let o = login("s3cret-pw");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}\n{}", s.log());
    assert!(out.contains("Login Succeeded"), "{out}");
    let out = s.docker_ok(&["push", &remote]);
    assert!(out.contains(": Pushed"), "{out}");
    s.docker_ok(&["rmi", &remote]);
    let out = s.docker_ok(&["pull", &remote]);
    assert!(out.contains("Digest: sha256:"), "{out}");
}

#[test]
fn docker_20_10_push_and_pull() {
    let reg = TestRegistry::start(None);
    let remote = format!("{}/api/old:1", reg.addr);
    let a = Server::start(&[]);
    let old = |s: &Server, args: &[&str]| {
        let o = s.client("/usr/bin/docker").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "docker 20.10 {args:?}: {}",
            s.explain(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    old(&a, &["tag", IMAGE, &remote]);
    let out = old(&a, &["push", &remote]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    // Another server with an empty store pulls it.
    let b = Server::start(&[]);
    let out = old(&b, &["pull", &remote]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {remote}")),
        "{out}"
    );
    assert_eq!(
        b.berth.inspect_image(&remote)["Id"],
        a.berth.inspect_image(&remote)["Id"]
    );
}
