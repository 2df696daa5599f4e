//! `berth build`: outputs, the inline cache between machines, ADD from a URL, parallel stages,
//! and the same Dockerfile built by buildah for comparison. Needs root (and buildah, which
//! scripts/test.sh installs).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use common::{Berth, IMAGE};
use sha2::Digest as _;

fn context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, content) in files {
        let p = dir.path().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    dir
}

fn build(b: &Berth, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(ctx.display().to_string());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    b.run(&a)
}

fn build_ok(b: &Berth, ctx: &Path, extra: &[&str]) -> String {
    let o = build(b, ctx, extra);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "build {extra:?} failed:\n{err}");
    err
}

/// Every entry of a tar: path -> (type, mode, uid, gid, content sha256 or link target).
fn tar_listing(data: &[u8]) -> BTreeMap<String, (u8, u32, u64, u64, String)> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(data);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().display().to_string();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let what = if h.entry_type().is_file() {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            format!("{:x}", sha2::Sha256::digest(&v))
        } else {
            h.link_name()
                .unwrap()
                .map(|l| l.display().to_string())
                .unwrap_or_default()
        };
        out.insert(
            path,
            (
                h.entry_type().as_byte(),
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap(),
                what,
            ),
        );
    }
    out
}

/// The files of an image, through `create` + `export`.
fn image_files(b: &Berth, image: &str) -> BTreeMap<String, (u8, u32, u64, u64, String)> {
    let id = b.ok(&["create", "--network", "none", image, "true"]);
    let id = id.trim();
    let o = b.run(&["export", id]);
    assert!(o.status.success());
    b.ok(&["rm", id]);
    tar_listing(&o.stdout)
}

#[test]
fn outputs_local_tar_and_oci() {
    let b = Berth::new();
    let ctx = context(
        &format!(
            "FROM {IMAGE}\nRUN mkdir /made && echo content > /made/file && chmod 640 /made/file\n"
        ),
        &[],
    );
    let out = tempfile::tempdir().unwrap();
    let local = out.path().join("local");
    let tarf = out.path().join("fs.tar");
    let oci = out.path().join("image.tar");
    build_ok(
        &b,
        ctx.path(),
        &[
            "-o",
            &format!("type=local,dest={}", local.display()),
            "-o",
            &format!("type=tar,dest={}", tarf.display()),
            "-o",
            &format!("type=oci,dest={},name=example.com/out:1", oci.display()),
        ],
    );
    assert_eq!(
        fs::read_to_string(local.join("made/file")).unwrap(),
        "content\n"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(local.join("made/file"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    assert!(local.join("bin/busybox").is_file());
    let listing = tar_listing(&fs::read(&tarf).unwrap());
    assert_eq!(
        listing["made/file"].1,
        0o640,
        "{:?}",
        listing.get("made/file")
    );
    // The OCI archive is an image skopeo reads, with the name given.
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            &format!("oci-archive:{}:1", oci.display()),
        ])
        .output()
        .expect("skopeo (scripts/test.sh installs it)");
    assert!(
        o.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        2,
        "{manifest}"
    );
    // `-o -` is the files as a tar on stdout.
    let o = build(&b, ctx.path(), &["-q", "-o", "-"]);
    assert!(o.status.success());
    assert!(tar_listing(&o.stdout).contains_key("made/file"));
    // A bad spec says what is wrong.
    let o = build(&b, ctx.path(), &["-o", "type=floppy"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid --output type \"floppy\""));
}

#[test]
fn inline_cache_moves_with_the_image() {
    let first = Berth::new();
    let df = format!(
        "FROM {IMAGE}\nRUN echo expensive > /step1\nCOPY f /f\nRUN cat /f > /step2\nCMD [\"cat\", \"/step2\"]\n"
    );
    let ctx = context(&df, &[("f", "from the context\n")]);
    build_ok(
        &first,
        ctx.path(),
        &["--cache-to", "type=inline", "-t", "cached/app:1"],
    );
    let archive = tempfile::NamedTempFile::new().unwrap();
    first.ok(&[
        "save",
        "-o",
        &archive.path().display().to_string(),
        "cached/app:1",
    ]);
    let layers = |b: &Berth, img: &str| b.inspect_image(img)["RootFS"]["Layers"].clone();
    let want = layers(&first, "cached/app:1");

    // Another machine (root) with the image loaded: nothing runs, the layers are the same.
    let second = Berth::new();
    second.ok(&["load", "-i", &archive.path().display().to_string()]);
    let progress = build_ok(
        &second,
        ctx.path(),
        &["--cache-from", "cached/app:1", "-t", "again:1"],
    );
    assert_eq!(progress.matches("CACHED").count(), 3, "{progress}");
    assert_eq!(layers(&second, "again:1"), want);
    assert_eq!(second.ok(&["run", "--rm", "again:1"]), "from the context\n");
    // Without --cache-from it builds.
    let third = Berth::new();
    third.ok(&["load", "-i", &archive.path().display().to_string()]);
    let progress = build_ok(&third, ctx.path(), &[]);
    assert_eq!(progress.matches("CACHED").count(), 0, "{progress}");
}

#[test]
fn add_from_a_url_with_checksum() {
    let b = Berth::new();
    let site = tempfile::tempdir().unwrap();
    fs::write(site.path().join("payload.txt"), "downloaded\n").unwrap();
    let sum = format!("{:x}", sha2::Sha256::digest(b"downloaded\n"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(site.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    b.wait_for(20, "the HTTP server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let url = format!("http://127.0.0.1:{port}/payload.txt");
    let ctx = context(
        &format!("FROM {IMAGE}\nADD --checksum=sha256:{sum} {url} /srv/\nADD {url} /named.txt\n"),
        &[],
    );
    let res = build(&b, ctx.path(), &["-t", "added:1"]);
    let bad = context(
        &format!(
            "FROM {IMAGE}\nADD --checksum=sha256:{} {url} /srv/\n",
            "0".repeat(64)
        ),
        &[],
    );
    let bad_res = build(&b, bad.path(), &[]);
    let missing = context(
        &format!("FROM {IMAGE}\nADD http://127.0.0.1:{port}/nope /x\n"),
        &[],
    );
    let missing_res = build(&b, missing.path(), &[]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let files = image_files(&b, "added:1");
    assert_eq!(
        files["srv/payload.txt"].1, 0o600,
        "{:?}",
        files["srv/payload.txt"]
    );
    assert_eq!(files["srv/payload.txt"].4, sum);
    assert_eq!(files["named.txt"].4, sum);
    let err = String::from_utf8_lossy(&bad_res.stderr);
    assert!(err.contains("digest mismatch"), "{err}");
    let err = String::from_utf8_lossy(&missing_res.stderr);
    assert!(err.contains("invalid response status 404"), "{err}");
}

#[test]
fn independent_stages_build_at_once() {
    let b = Berth::new();
    // Each stage waits (at most 30 s) for the other's mark in a shared cache mount: built one
    // after the other, the first would give up and fail.
    let df = format!(
        "FROM {IMAGE} AS a\n\
         RUN --mount=type=cache,id=rendezvous,target=/r touch /r/a && i=0; while [ ! -e /r/b ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; [ -e /r/b ] && echo a > /a\n\
         FROM {IMAGE} AS b\n\
         RUN --mount=type=cache,id=rendezvous,target=/r touch /r/b && i=0; while [ ! -e /r/a ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; [ -e /r/a ] && echo b > /b\n\
         FROM {IMAGE}\n\
         COPY --from=a /a /a\n\
         COPY --from=b /b /b\n\
         COPY --from={IMAGE} /bin/busybox /copied-busybox\n"
    );
    let ctx = context(&df, &[]);
    build_ok(&b, ctx.path(), &["-t", "par:1"]);
    assert_eq!(b.ok(&["run", "--rm", "par:1", "cat", "/a", "/b"]), "a\nb\n");
    let files = image_files(&b, "par:1");
    assert_eq!(files["copied-busybox"].4, files["bin/busybox"].4);
}

#[test]
fn the_same_tree_and_config_as_buildah() {
    let b = Berth::new();
    let df = format!(
        "FROM {IMAGE} AS build\n\
         RUN mkdir -p /src && echo 'int main;' > /src/main.c && chmod 640 /src/main.c && ln -s main.c /src/link\n\
         FROM {IMAGE}\n\
         ENV A=1 B=\"two words\"\n\
         WORKDIR /app\n\
         COPY --from=build /src/ /app/src/\n\
         COPY --chown=1000:1000 --chmod=755 f.sh /app/bin/f.sh\n\
         COPY dir/ /app/dir/\n\
         ADD archive.tar /app/unpacked/\n\
         RUN mkdir -p /etc /home/web && echo 'web:x:1001:1001::/home/web:/bin/sh' >> /etc/passwd && chown 1001 /home/web\n\
         USER web\n\
         EXPOSE 8080/tcp\n\
         VOLUME [\"/data\"]\n\
         LABEL k=v\n\
         STOPSIGNAL SIGTERM\n\
         ENTRYPOINT [\"/bin/sh\"]\n\
         CMD [\"-c\", \"echo hi\"]\n"
    );
    let ctx = context(
        &df,
        &[("f.sh", "echo f\n"), ("dir/a", "a\n"), ("dir/sub/b", "b\n")],
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        ctx.path().join("dir/sub/b"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    {
        let f = fs::File::create(ctx.path().join("archive.tar")).unwrap();
        let mut t = tar::Builder::new(f);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o604);
        h.set_uid(7);
        h.set_gid(8);
        t.append_data(&mut h, "in/tar.txt", &b"tar"[..]).unwrap();
        t.finish().unwrap();
    }
    build_ok(&b, ctx.path(), &["-t", "cmp/berth:1"]);

    // buildah, with its own storage, from the same base image.
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.tar");
    b.ok(&["save", "-o", &base.display().to_string(), IMAGE]);
    let buildah = |args: &[&str]| -> Output {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .args(["--storage-driver", "overlay"])
            .args(args);
        let o = c.output().expect("buildah (scripts/test.sh installs it)");
        assert!(
            o.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    buildah(&["pull", &format!("docker-archive:{}", base.display())]);
    buildah(&["tag", "berth-test/busybox:latest", IMAGE]);
    buildah(&[
        "bud",
        "--layers",
        "--runtime",
        "runc",
        "-t",
        "cmp/buildah:1",
        &ctx.path().display().to_string(),
    ]);
    let out = dir.path().join("out.tar");
    buildah(&[
        "push",
        "cmp/buildah:1",
        &format!("oci-archive:{}:cmp/buildah:1", out.display()),
    ]);
    // Umount what buildah left mounted below its root before the temp dir goes.
    let _ = Command::new("umount")
        .args(["-R", &dir.path().join("root").display().to_string()])
        .status();
    b.ok(&["load", "-i", &out.display().to_string()]);

    let mine = image_files(&b, "cmp/berth:1");
    let theirs = image_files(&b, "cmp/buildah:1");
    // buildah keeps the mount points its runtime made in the RUN layer; BuildKit and berth
    // leave them out.
    let runtime_debris = [
        "dev",
        "proc",
        "sys",
        "run",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
    ];
    for (path, meta) in &theirs {
        if runtime_debris.contains(&path.as_str()) {
            continue;
        }
        assert_eq!(mine.get(path), Some(meta), "{path} differs from buildah's");
    }
    for path in mine.keys() {
        assert!(
            theirs.contains_key(path),
            "{path} is not in buildah's image"
        );
    }
    let config = |img: &str| {
        let mut c = b.inspect_image(img)["Config"].clone();
        if let Some(l) = c["Labels"].as_object_mut() {
            l.remove("io.buildah.version");
        }
        c
    };
    assert_eq!(config("cmp/berth:1"), config("cmp/buildah:1"));
}
