//! `berth serve`'s `POST /build` (the classic builder's protocol) driven by the real docker
//! CLI 28 (`DOCKER_BUILDKIT=0 docker build`, and plain `docker build`, which falls back to it
//! without the buildx plugin) and docker-py's `images.build`: tags, build args, targets, the
//! cache, `-q`/`--iidfile`, a failing `RUN` (its exit status), a bad Dockerfile, a base image
//! pulled with the client's registry credentials, and hostile contexts.

mod common;
#[path = "../../image/tests/common/registry.rs"]
mod registry;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use common::serve::Server;
use common::{IMAGE, build_context, text};
use registry::TestRegistry;

/// `DOCKER_BUILDKIT=0 docker build ARGS` against the server.
fn classic(s: &Server, args: &[&str]) -> Output {
    s.client("docker")
        .env("DOCKER_BUILDKIT", "0")
        .arg("build")
        .args(args)
        .output()
        .unwrap()
}

fn classic_ok(s: &Server, args: &[&str]) -> String {
    let o = classic(s, args);
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "docker build {args:?} failed ({:?}):\nstdout: {out}\nstderr: {err}\nserver log:\n{}",
        o.status,
        common::serve::tail(&s.log(), 40)
    );
    out
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

const MULTI: &str = "\
FROM berth-test/busybox:latest AS base
ARG MSG=default
RUN echo \"msg=$MSG\" > /msg && echo building-$MSG
COPY data.txt /data.txt

FROM base AS final
LABEL stage=final
CMD [\"cat\", \"/msg\", \"/data.txt\"]

FROM base AS other
RUN echo other > /other
";

#[test]
fn classic_build_tags_args_target_cache_quiet() {
    let s = Server::start(&[]);
    let ctx = build_context(MULTI, &[("data.txt", "from the context\n")]);
    let out = classic_ok(
        &s,
        &[
            "-t",
            "apibuild/app:1",
            "-t",
            "apibuild/app:latest",
            "--build-arg",
            "MSG=hello",
            "--target",
            "final",
            "--label",
            "by=test",
            path(ctx.path()),
        ],
    );
    assert!(
        out.contains("Step 1/3 : FROM berth-test/busybox:latest\n"),
        "{out}"
    );
    assert!(out.contains(": RUN echo \"msg=$MSG\""), "{out}");
    assert!(out.contains("\nbuilding-hello\n"), "{out}");
    assert!(
        !out.contains("echo other"),
        "a stage the target does not need ran: {out}"
    );
    let id = s.berth.inspect_image("apibuild/app:1")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        out.contains(&format!("Successfully built {}\n", &id[7..19])),
        "{out}"
    );
    assert!(
        out.contains("Successfully tagged apibuild/app:1\n"),
        "{out}"
    );
    assert!(
        out.contains("Successfully tagged apibuild/app:latest\n"),
        "{out}"
    );
    let img = s.berth.inspect_image("apibuild/app:latest");
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["Config"]["Labels"]["stage"], "final");
    assert_eq!(img["Config"]["Labels"]["by"], "test");
    let run = s
        .berth
        .ok(&["run", "--rm", "--network", "none", "apibuild/app:1"]);
    assert_eq!(run, "msg=hello\nfrom the context\n");

    // Unchanged: every step from the cache, the same image.
    let out = classic_ok(
        &s,
        &[
            "-t",
            "apibuild/app:1",
            "--build-arg",
            "MSG=hello",
            "--target",
            "final",
            "--label",
            "by=test",
            path(ctx.path()),
        ],
    );
    assert!(out.contains(" ---> Using cache"), "{out}");
    assert!(!out.contains("building-hello"), "{out}");
    assert!(
        out.contains(&format!("Successfully built {}", &id[7..19])),
        "{out}"
    );

    // -q: only the ID; --iidfile from the aux message.
    let iid = ctx.path().join("iid");
    let out = classic_ok(
        &s,
        &[
            "-q",
            "--iidfile",
            path(&iid),
            "--build-arg",
            "MSG=hello",
            "--target",
            "final",
            "--label",
            "by=test",
            path(ctx.path()),
        ],
    );
    assert_eq!(out.trim(), id);
    assert_eq!(std::fs::read_to_string(&iid).unwrap().trim(), id);

    // The other target, a Dockerfile given with -f from outside the context.
    let df = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        df.path(),
        "FROM berth-test/busybox:latest\nCOPY data.txt /copied\nRUN cat /copied\n",
    )
    .unwrap();
    let out = classic_ok(
        &s,
        &[
            "-f",
            path(df.path()),
            "-t",
            "apibuild/outside",
            path(ctx.path()),
        ],
    );
    assert!(out.contains("\nfrom the context\n"), "{out}");
    let out = classic_ok(
        &s,
        &[
            "--compress",
            "--target",
            "other",
            "-t",
            "apibuild/other",
            path(ctx.path()),
        ],
    );
    assert!(
        out.contains("Successfully tagged apibuild/other:latest"),
        "{out}"
    );
    let ls = s.berth.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "apibuild/other",
        "cat",
        "/other",
    ]);
    assert_eq!(ls.trim(), "other");
    assert!(
        s.berth.container_ids().is_empty(),
        "the builds left containers"
    );

    // builder prune (the CLI's own without buildx): the cache is gone, the next build runs.
    let out = s.docker_ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    let out = classic_ok(
        &s,
        &[
            "--build-arg",
            "MSG=hello",
            "--target",
            "final",
            path(ctx.path()),
        ],
    );
    assert!(!out.contains("Using cache"), "{out}");
    assert!(out.contains("\nbuilding-hello\n"), "{out}");
}

#[test]
fn failing_builds_report_and_exit_like_docker() {
    let s = Server::start(&[]);
    let ctx = build_context(
        "FROM berth-test/busybox:latest\nRUN echo about-to-fail && exit 3\n",
        &[],
    );
    let o = classic(&s, &["-t", "apibuild/failing", path(ctx.path())]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(out.contains("about-to-fail"), "{out}");
    assert!(
        err.contains(
            "The command '/bin/sh -c echo about-to-fail && exit 3' returned a non-zero code: 3"
        ),
        "{err}"
    );
    assert!(
        s.berth.container_ids().is_empty(),
        "the failed RUN's container is left"
    );
    let o = s.docker(&["image", "inspect", "apibuild/failing"]);
    assert!(!o.status.success());

    // A Dockerfile that does not parse: the daemon's error response, exit 1.
    let bad = build_context("FROM berth-test/busybox:latest\nFROBNICATE now\n", &[]);
    let o = classic(&s, &[path(bad.path())]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("Error response from daemon"), "{err}");
    assert!(err.to_lowercase().contains("frobnicate"), "{err}");

    // An unknown target.
    let o = classic(&s, &["--target", "nope", path(ctx.path())]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("target stage \"nope\" could not be found"),
        "{err}"
    );
}

#[test]
fn docker_build_without_buildkit_env_falls_back_to_the_classic_builder() {
    // docker CLI 28 without the buildx plugin prints its deprecation notice and uses POST
    // /build, which berth serves.
    let s = Server::start(&[]);
    let ctx = build_context(
        "FROM berth-test/busybox:latest\nRUN echo plain-build\n",
        &[],
    );
    let o = s
        .client("docker")
        .env_remove("DOCKER_BUILDKIT")
        .args(["build", "-t", "apibuild/plain", path(ctx.path())])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}\n{}", s.log());
    assert!(err.contains("legacy builder"), "{err}");
    assert!(out.contains("plain-build"), "{out}");
    assert!(s.berth.ok(&["images"]).contains("apibuild/plain"));
    // Debian's docker 20.10 CLI (API 1.41) uses the classic builder by default.
    let o = s
        .client("/usr/bin/docker")
        .env_remove("DOCKER_BUILDKIT")
        .args(["build", "-q", "-t", "apibuild/old-cli", path(ctx.path())])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let id = s.berth.inspect_image("apibuild/old-cli")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out.trim(), id);
}

#[test]
fn docker_py_builds_and_raises_build_errors() {
    let s = Server::start(&[]);
    let ctx = build_context(
        "FROM berth-test/busybox:latest\nARG WHO\nRUN echo hello-$WHO | tee /who\n",
        &[],
    );
    let bad = build_context("FROM berth-test/busybox:latest\nRUN exit 7\n", &[]);
    let code = format!(
        "import docker\n\
         c = docker.from_env()\n\
         img, logs = c.images.build(path='{}', tag='apibuild/py:1', buildargs={{'WHO': 'py'}})\n\
         print(img.id, img.tags)\n\
         print(''.join(l.get('stream', '') for l in logs))\n\
         try:\n    c.images.build(path='{}')\n    print('no error')\n\
         except docker.errors.BuildError as e:\n    print('BuildError:', e.msg)\n",
        path(ctx.path()),
        path(bad.path())
    );
    let out = s.python_ok(&["-c", &code]);
    let id = s.berth.inspect_image("apibuild/py:1")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(out.starts_with(&format!("{id} ['apibuild/py:1']")), "{out}");
    assert!(out.contains("hello-py"), "{out}");
    assert!(
        out.contains("BuildError: The command '/bin/sh -c exit 7' returned a non-zero code: 7"),
        "{out}"
    );
}

#[test]
fn from_pulls_with_the_clients_registry_credentials() {
    let reg = TestRegistry::start(Some(("builder", "pw-for-build")));
    let s = Server::start(&[]);
    let base = format!("{}/base/busybox:1", reg.addr);
    let mut c = s
        .client("docker")
        .args(["login", "-u", "builder", "--password-stdin", &reg.addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b"pw-for-build").unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    s.docker_ok(&["tag", IMAGE, &base]);
    s.docker_ok(&["push", &base]);
    s.docker_ok(&["rmi", &base]);
    let ctx = build_context(&format!("FROM {base}\nRUN echo on-pulled-base\n"), &[]);
    let out = classic_ok(&s, &["-t", "apibuild/from-registry", path(ctx.path())]);
    assert!(out.contains("on-pulled-base"), "{out}");
    assert!(
        s.berth
            .ok(&["images"])
            .contains(&format!("{}/base/busybox", reg.addr))
    );

    // Logged out, the pull of the base is refused.
    s.docker_ok(&["logout", &reg.addr]);
    s.docker_ok(&["rmi", &base]);
    let o = classic(&s, &["--no-cache", path(ctx.path())]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(err.contains("authentication required"), "{err}");
}

/// POSTs a tar to /build with curl: (HTTP status, body).
fn post_build(s: &Server, query: &str, tar: &[u8]) -> (u16, String) {
    let url = format!("http://localhost/v1.44/build{query}");
    let args = ["-X", "POST", "-H", "Content-Type: application/x-tar"];
    s.curl_input(&[&args[..], &["--data-binary", "@-", &url]].concat(), tar)
}

/// A tar of (path, content) entries, written without tar's own path checks.
fn raw_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn hostile_contexts_and_bad_parameters_are_refused() {
    let s = Server::start(&[]);
    let df: &[u8] = b"FROM berth-test/busybox:latest\n";
    let escape = format!("../../../tmp/berth-api-escape-{}", std::process::id());
    let (code, body) = post_build(&s, "", &raw_tar(&[("Dockerfile", df), (&escape, b"x")]));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not a valid tar archive"), "{body}");
    assert!(!Path::new(&format!("/tmp/berth-api-escape-{}", std::process::id())).exists());

    let (code, body) = post_build(
        &s,
        "?dockerfile=../../etc/passwd",
        &raw_tar(&[("Dockerfile", df)]),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("a path inside the build context"), "{body}");

    let (code, body) = post_build(
        &s,
        "?buildargs=%7Bnot-json",
        &raw_tar(&[("Dockerfile", df)]),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid buildargs"), "{body}");

    let (code, body) = post_build(&s, "?t=Bad%20Name", &raw_tar(&[("Dockerfile", df)]));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid reference format"), "{body}");

    let (code, body) = post_build(&s, "?dockerfile=Missing", &raw_tar(&[("Dockerfile", df)]));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("Cannot locate specified Dockerfile: Missing"),
        "{body}"
    );

    let (code, body) = post_build(&s, "?version=2", &raw_tar(&[("Dockerfile", df)]));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("BuildKit"), "{body}");
    let (code, body) = s.request("POST", "/v1.44/session", None);
    assert_eq!(code, 501, "{body}");
    assert!(body.contains("DOCKER_BUILDKIT=0"), "{body}");

    // A well-formed one through the same path works, and leaves no context behind.
    let (code, body) = post_build(&s, "?t=apibuild/raw:1", &raw_tar(&[("Dockerfile", df)]));
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("Successfully tagged apibuild/raw:1"),
        "{body}"
    );
    let tmp = s.berth.root.path().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("buildctx-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_killed_server_takes_its_builds_containers_with_it() {
    // The server is the owner of its builds' containers: killed mid-RUN, the step's
    // container goes (its monitor sees the owner exit; the reaper removes what is left).
    let s = Server::start(&[]);
    let ctx = build_context(
        "FROM berth-test/busybox:latest\nRUN echo started && sleep 300\n",
        &[],
    );
    let mut client = s
        .client("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", path(ctx.path())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    s.berth.wait_for(60, "the RUN step's container", || {
        s.berth.container_ids().len() == 1
    });
    let id = s.berth.container_ids().remove(0);
    let owner = s.berth.inspect(&id)["Config"]["Labels"]["io.berth.owner.pid"]
        .as_str()
        .unwrap()
        .parse::<i32>()
        .unwrap();
    // SAFETY: kill has no memory arguments; the pid is the server this test started.
    assert_eq!(unsafe { libc::kill(owner, libc::SIGKILL) }, 0);
    s.berth
        .wait_for(60, "the build's container to be removed", || {
            s.berth.container_ids().is_empty()
        });
    let _ = client.wait();
}
