//! `berth build`: outputs, the inline cache between machines, ADD from a URL, parallel stages,
//! and the same Dockerfile built by buildah for comparison. Needs root (and buildah, which
//! scripts/test.sh installs).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use common::{Berth, IMAGE, build_context as context};
use sha2::Digest as _;

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
    // type=docker: the archive `docker load` reads, with the name given.
    let docker = out.path().join("docker.tar");
    build_ok(
        &b,
        ctx.path(),
        &[
            "-o",
            &format!(
                "type=docker,dest={},name=example.com/dock:2",
                docker.display()
            ),
        ],
    );
    let mut manifest = String::new();
    let mut ar = tar::Archive::new(fs::File::open(&docker).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            e.read_to_string(&mut manifest).unwrap();
        }
    }
    assert!(manifest.contains("example.com/dock:2"), "{manifest}");
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

    buildah_build(&b, IMAGE, ctx.path(), "cmp/buildah:1");
    assert_same_image(&b, "cmp/berth:1", "cmp/buildah:1");
}

#[test]
fn copy_link_layers_survive_changes_below() {
    let b = Berth::new();
    let df = |marker: &str| {
        format!(
            "FROM {IMAGE}\nRUN echo {marker} > /below\nCOPY --link --chmod=700 app.sh /opt/app.sh\nRUN --mount=type=cache,target=/c,sharing=locked cat /opt/app.sh > /seen\n"
        )
    };
    let ctx = context(&df("one"), &[("app.sh", "echo app\n")]);
    build_ok(&b, ctx.path(), &["-t", "link:1"]);
    fs::write(ctx.path().join("Dockerfile"), df("two")).unwrap();
    let progress = build_ok(&b, ctx.path(), &["-t", "link:2"]);
    // The step below changed and ran; the --link copy is taken as it was.
    let copy = progress
        .lines()
        .position(|l| l.contains("COPY --link") || l.contains("COPY app.sh"))
        .unwrap_or_else(|| panic!("no COPY step:\n{progress}"));
    let num = progress
        .lines()
        .nth(copy)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(progress.contains(&format!("{num} CACHED")), "{progress}");
    let layers = |img: &str| {
        b.inspect_image(img)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(
        layers("link:1")[2],
        layers("link:2")[2],
        "the --link layer is the same blob"
    );
    assert_ne!(layers("link:1")[1], layers("link:2")[1]);
    let files = image_files(&b, "link:2");
    assert_eq!(files["opt/app.sh"].1, 0o700);
    assert_eq!(
        b.ok(&["run", "--rm", "link:2", "cat", "/below", "/seen"]),
        "two\necho app\n"
    );
}

#[test]
fn interrupt_context_on_stdin_and_platform() {
    let b = Berth::new();
    // Ctrl-C in a RUN: exit 130, and its container is gone at once.
    let ctx = context(&format!("FROM {IMAGE}\nRUN sleep 60\n"), &[]);
    let child = b
        .cmd()
        .args(["build", "-q", &ctx.path().display().to_string()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    b.wait_for(20, "the RUN container to start", || {
        b.ok(&["ps", "-q"]).lines().count() == 1
    });
    // SAFETY: signalling our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(b.ok(&["ps", "-aq"]), "");

    // The context as a tar on stdin, the Dockerfile in it.
    let ctx = context(
        &format!("FROM {IMAGE}\nCOPY hello /hello\n"),
        &[("hello", "from a tar\n")],
    );
    let mut tarball = tar::Builder::new(Vec::new());
    tarball.append_dir_all(".", ctx.path()).unwrap();
    let data = tarball.into_inner().unwrap();
    let o = b.run_input(&["build", "-q", "-t", "fromtar:1", "-"], &data);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        b.ok(&["run", "--rm", "fromtar:1", "cat", "/hello"]),
        "from a tar\n"
    );

    // Another platform is refused, naming it.
    let ctx = context(
        &format!("FROM --platform=linux/s390x {IMAGE}\nRUN true\n"),
        &[],
    );
    let o = build(&b, ctx.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Dockerfile:1: FROM --platform=linux/s390x"),
        "{err}"
    );
    let ctx = context(
        &format!("FROM --platform=$BUILDPLATFORM {IMAGE}\nRUN true\n"),
        &[],
    );
    build_ok(&b, ctx.path(), &[]);
}

#[test]
fn image_volumes_become_anonymous_volumes() {
    let b = Berth::new();
    let ctx = context(
        &format!(
            "FROM {IMAGE}\nRUN mkdir /seed && echo seeded > /seed/f\nVOLUME /seed\nRUN echo kept > /seed/g\n"
        ),
        &[],
    );
    build_ok(&b, ctx.path(), &["-t", "vol:1"]);
    let id = b.ok(&[
        "create",
        "--network",
        "none",
        "vol:1",
        "cat",
        "/seed/f",
        "/seed/g",
    ]);
    let id = id.trim();
    let mounts = b.inspect(id)["Mounts"].clone();
    let m = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/seed")
        .unwrap_or_else(|| panic!("no volume at /seed: {mounts}"));
    assert_eq!(m["Type"], "volume");
    let name = m["Name"].as_str().unwrap().to_string();
    assert!(b.ok(&["volume", "ls", "-q"]).lines().any(|l| l == name));
    // Filled from the image, with what a RUN after VOLUME wrote (kept, as BuildKit keeps it).
    assert_eq!(b.ok(&["start", "-a", id]), "seeded\nkept\n");
    b.ok(&["rm", "-v", id]);
    assert!(!b.ok(&["volume", "ls", "-q"]).lines().any(|l| l == name));
}

#[test]
fn scratch_heredoc_copy_bind_mounts_and_cache_filters() {
    let b = Berth::new();
    let df = format!(
        "FROM {IMAGE} AS tools\n\
         RUN echo from-tools > /tool.txt && cat /proc/sys/kernel/random/uuid > /nonce\n\
         FROM {IMAGE} AS user\n\
         ARG GREETING=hi\n\
         COPY <<EOF /etc/greeting\n\
         $GREETING there\n\
         EOF\n\
         COPY <<'EOT' /raw.txt\n\
         $NOT_EXPANDED\n\
         EOT\n\
         RUN --mount=type=bind,source=ctx.txt,target=/mnt/ctx.txt cat /mnt/ctx.txt > /from-ctx && ! touch /mnt/ctx.txt 2>/dev/null\n\
         RUN --mount=type=bind,from=tools,source=/tool.txt,target=/t cat /t > /from-stage\n\
         RUN --network=host cat /proc/net/dev | grep -q lo\n\
         FROM scratch\n\
         COPY --from=user /etc/greeting /raw.txt /from-ctx /from-stage /\n\
         COPY --parents deep/*/file.txt /kept/\n"
    );
    let ctx = context(
        &df,
        &[
            ("ctx.txt", "context file\n"),
            ("deep/a/file.txt", "a\n"),
            ("deep/b/file.txt", "b\n"),
        ],
    );
    build_ok(&b, ctx.path(), &["-t", "scratchy:1"]);
    let files = image_files(&b, "scratchy:1");
    let content = |p: &str| format!("{:x}", sha2::Sha256::digest(p.as_bytes()));
    assert_eq!(files["greeting"].4, content("hi there\n"));
    assert_eq!(files["raw.txt"].4, content("$NOT_EXPANDED\n"));
    assert_eq!(files["from-ctx"].4, content("context file\n"));
    assert_eq!(files["from-stage"].4, content("from-tools\n"));
    assert!(
        !files.contains_key("bin/busybox"),
        "FROM scratch has nothing of busybox"
    );
    // --parents keeps the sources' paths below the destination.
    assert_eq!(files["kept/deep/a/file.txt"].4, content("a\n"));
    assert_eq!(files["kept/deep/b/file.txt"].4, content("b\n"));
    let img = b.inspect_image("scratchy:1");
    assert_eq!(
        img["Config"]["Env"],
        serde_json::json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    );

    // --no-cache-filter runs that stage's steps again; the other stage's steps that do not
    // read from it stay cached, the one that mounts it runs again (its input changed).
    let progress = build_ok(&b, ctx.path(), &["--no-cache-filter", "tools"]);
    let state = |needle: &str| {
        let line = progress
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{progress}"));
        let n = line.split(' ').next().unwrap();
        if progress.contains(&format!("{n} CACHED")) {
            "CACHED"
        } else {
            "DONE"
        }
    };
    assert_eq!(state("RUN echo from-tools"), "DONE", "{progress}");
    assert_eq!(state("COPY <<EOF"), "CACHED", "{progress}");
    assert_eq!(state("source=ctx.txt"), "CACHED", "{progress}");
    assert_eq!(state("from=tools"), "DONE", "{progress}");

    // A bind-mounted context file is an input of its step: changing it runs the step again.
    fs::write(ctx.path().join("ctx.txt"), "changed\n").unwrap();
    let progress = build_ok(&b, ctx.path(), &["-t", "scratchy:2"]);
    let line = progress
        .lines()
        .find(|l| l.contains("source=ctx.txt"))
        .unwrap();
    let n = line.split(' ').next().unwrap();
    assert!(progress.contains(&format!("{n} DONE")), "{progress}");
    let files = image_files(&b, "scratchy:2");
    assert_eq!(files["from-ctx"].4, content("changed\n"));
}

/// A Debian bookworm (minbase) image, `berth-test/debian:bookworm`: debootstrap runs once per
/// machine (its tarball is kept in /var/tmp/berth-test, made under a lock, renamed into place).
fn debian_image(b: &Berth) -> &'static str {
    const NAME: &str = "berth-test/debian:bookworm";
    let dir = Path::new("/var/tmp/berth-test");
    fs::create_dir_all(dir).unwrap();
    let tarball = dir.join("debian-bookworm-minbase.tar");
    {
        let lock = fs::File::create(dir.join("debian.lock")).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: flock on our own descriptor.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        if !tarball.is_file() {
            let root = dir.join("debian-rootfs.tmp");
            let _ = fs::remove_dir_all(&root);
            let o = Command::new("debootstrap")
                .args(["--variant=minbase", "bookworm"])
                .arg(&root)
                .output()
                .expect("debootstrap (scripts/test.sh installs it)");
            assert!(
                o.status.success(),
                "debootstrap: {}",
                String::from_utf8_lossy(&o.stdout)
            );
            let tmp = dir.join("debian.tar.tmp");
            let st = Command::new("tar")
                .args(["--numeric-owner", "-C"])
                .arg(&root)
                .args(["-cf"])
                .arg(&tmp)
                .arg(".")
                .status()
                .unwrap();
            assert!(st.success());
            fs::rename(&tmp, &tarball).unwrap();
            let _ = fs::remove_dir_all(&root);
        }
    }
    b.ok(&["import", &tarball.display().to_string(), NAME]);
    NAME
}

#[test]
fn debian_image_builds_as_buildah_builds_it() {
    let b = Berth::new();
    let debian = debian_image(&b);
    let df = format!(
        "FROM {debian}\n\
         RUN useradd -m -u 1234 -s /bin/bash app && dpkg -s coreutils >/dev/null && apt-get --version >/dev/null\n\
         COPY --chown=app:app app.txt /home/app/\n\
         WORKDIR /home/app\n\
         USER app\n\
         RUN id -un > whoami && cat app.txt >> whoami && ls -l app.txt | cut -d' ' -f3,4 >> whoami\n\
         CMD [\"cat\", \"/home/app/whoami\"]\n"
    );
    let ctx = context(&df, &[("app.txt", "payload\n")]);
    build_ok(&b, ctx.path(), &["-t", "deb/berth:1"]);
    assert_eq!(
        b.ok(&["run", "--rm", "deb/berth:1"]),
        "app\npayload\napp app\n"
    );

    buildah_build(&b, debian, ctx.path(), "deb/buildah:1");
    assert_same_image(&b, "deb/berth:1", "deb/buildah:1");
}

/// Builds `ctx` with buildah (its own storage in a temp dir, runc, `bud --layers`) from the
/// same base image as berth's (`base`, saved from berth), and loads the result into berth as
/// `tag`.
fn buildah_build(b: &Berth, base: &str, ctx: &Path, tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("base.tar");
    b.ok(&["save", "-o", &archive.display().to_string(), base]);
    let buildah = |args: &[&str]| {
        let o = Command::new("buildah")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .args(["--storage-driver", "overlay"])
            .args(args)
            .output()
            .expect("buildah (scripts/test.sh installs it)");
        assert!(
            o.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    buildah(&["pull", &format!("docker-archive:{}", archive.display())]);
    buildah(&["tag", base, base]);
    buildah(&[
        "bud",
        "--layers",
        "--runtime",
        "runc",
        "-t",
        tag,
        &ctx.display().to_string(),
    ]);
    let out = dir.path().join("out.tar");
    buildah(&["push", tag, &format!("oci-archive:{}:{tag}", out.display())]);
    // What buildah left mounted below its root goes before the temp dir does.
    let _ = Command::new("umount")
        .args(["-R", &dir.path().join("root").display().to_string()])
        .stderr(std::process::Stdio::null())
        .status();
    b.ok(&["load", "-i", &out.display().to_string()]);
}

/// berth's image `mine` has buildah's `theirs` file tree (paths, types, modes, owners,
/// contents) and config, but for what buildah adds: the mount points its runtime made in the
/// RUN layers (BuildKit and berth leave them out) and its version label.
fn assert_same_image(b: &Berth, mine: &str, theirs: &str) {
    let runtime_debris = [
        "dev",
        "proc",
        "sys",
        "run",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
    ];
    let (m, t) = (image_files(b, mine), image_files(b, theirs));
    let mut differ = Vec::new();
    for (path, meta) in &t {
        if !runtime_debris.contains(&path.as_str()) && m.get(path) != Some(meta) {
            differ.push(format!("{path}: buildah {meta:?}, berth {:?}", m.get(path)));
        }
    }
    for path in m.keys() {
        if !t.contains_key(path) {
            differ.push(format!("{path}: only in berth's"));
        }
    }
    assert!(
        differ.is_empty(),
        "the trees differ:\n{}",
        differ.join("\n")
    );
    let config = |img: &str| {
        let mut c = b.inspect_image(img)["Config"].clone();
        if let Some(l) = c["Labels"].as_object_mut() {
            l.remove("io.buildah.version");
            // buildah's label was all there was: no labels, as in berth's.
            if l.is_empty() {
                c["Labels"] = serde_json::Value::Null;
            }
        }
        c
    };
    assert_eq!(config(mine), config(theirs));
}
