//! `berth build`: real Dockerfiles built end to end on the test busybox image, RUN steps as
//! real containers. Needs root.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::{Berth, IMAGE, build_context as context};

fn build(b: &Berth, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let c = ctx.display().to_string();
    args.push(&c);
    b.run(&args)
}

/// Builds, asserting success; returns the image ID (from the progress) and the progress.
fn build_ok(b: &Berth, ctx: &Path, extra: &[&str]) -> (String, String) {
    let o = build(b, ctx, extra);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "build {extra:?} failed ({:?}):\n{err}",
        o.status
    );
    let id = err
        .lines()
        .find_map(|l| l.split("writing image ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    assert!(
        id.starts_with("sha256:"),
        "no image ID in the progress:\n{err}"
    );
    (id, err)
}

/// The step lines (`#N [..] RUN ...` followed by CACHED or DONE) that ran, by their text.
fn ran_steps(progress: &str) -> Vec<String> {
    let lines: Vec<&str> = progress.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some((num, rest)) = l.split_once(' ') else {
            continue;
        };
        if !rest.starts_with('[') || rest.starts_with("[internal]") || rest.contains("] FROM ") {
            continue;
        }
        let done = lines[i + 1..].iter().find(|n| {
            n.starts_with(&format!("{num} DONE")) || n.starts_with(&format!("{num} CACHED"))
        });
        if done.is_some_and(|d| d.contains("DONE")) {
            out.push(rest.to_string());
        }
    }
    out
}

#[test]
fn multi_stage_metadata_run_and_cache() {
    let b = Berth::new();
    let df = format!(
        r#"# syntax=docker/dockerfile:1
ARG BASE={IMAGE}
FROM $BASE AS base
ENV GREETING=hello \
    EMPTY=
RUN echo "$GREETING from run" && mkdir -p /out && echo data > /out/file
WORKDIR /out
LABEL org.example.a=b "second label"="x y"

FROM base AS broken
RUN echo this stage is not needed && exit 7

FROM base
ARG WHO=world
RUN echo "hi $WHO" > /out/who
EXPOSE 80 53/udp
VOLUME /data
USER 1000:1000
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD test -f /out/file
SHELL ["/bin/sh", "-ec"]
MAINTAINER someone@example.com
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /out/file /out/who"]
"#
    );
    let ctx = context(&df, &[]);
    let (id, progress) = build_ok(&b, ctx.path(), &["-t", "built:1", "-t", "built:2"]);
    // The unused stage never ran; the needed RUNs did, with their output.
    assert!(!progress.contains("not needed"), "{progress}");
    assert!(progress.contains("hello from run"), "{progress}");
    let ran = ran_steps(&progress);
    assert_eq!(ran.len(), 3, "{ran:?}\n{progress}");

    // What the image says, as Docker's inspect shows it.
    let img = b.inspect_image("built:1");
    assert_eq!(img["Id"], id.as_str());
    let c = &img["Config"];
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"GREETING=hello") && env.contains(&"EMPTY="),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|e| e.starts_with("WHO=")),
        "build args are not in the image: {env:?}"
    );
    assert_eq!(c["WorkingDir"], "/out");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Labels"]["org.example.a"], "b");
    assert_eq!(c["Labels"]["second label"], "x y");
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["cat /out/file /out/who"]));
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /out/file"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 4);
    assert_eq!(img["Author"], "someone@example.com");
    assert_eq!(b.inspect_image("built:2")["Id"], id.as_str());

    // It runs as built (as root: the files were written by root, USER only reads them).
    let out = b.ok(&["run", "--rm", "built:1"]);
    assert_eq!(out, "data\nhi world\n");

    // History: one entry per instruction, metadata ones without a layer.
    let hist = b.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Size}}",
        "built:1",
    ]);
    assert!(
        hist.contains("RUN |1 WHO=world /bin/sh -c echo \"hi $WHO\" > /out/who # buildkit|"),
        "{hist}"
    );
    assert!(
        hist.contains("EXPOSE map[53/udp:{} 80/tcp:{}]|0B"),
        "{hist}"
    );
    assert!(hist.contains("ENV GREETING=hello EMPTY=|0B"), "{hist}");
    assert!(hist.contains("ARG WHO=world|0B"), "{hist}");

    // Nothing changed: nothing runs, same image.
    let (again, progress) = build_ok(&b, ctx.path(), &[]);
    assert_eq!(again, id);
    assert!(ran_steps(&progress).is_empty(), "{progress}");
    assert!(progress.contains("CACHED"), "{progress}");

    // Another build argument: only what follows its ARG runs again.
    let (other, progress) = build_ok(&b, ctx.path(), &["--build-arg", "WHO=you"]);
    assert_ne!(other, id);
    let ran = ran_steps(&progress);
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert!(ran[0].contains("RUN echo \"hi $WHO\""), "{ran:?}");

    // --no-cache runs everything needed.
    let (_, progress) = build_ok(&b, ctx.path(), &["--no-cache"]);
    assert_eq!(ran_steps(&progress).len(), 3, "{progress}");

    // --target builds the failing stage, and fails with its command, code and output.
    let o = build(&b, ctx.path(), &["--target", "broken"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Dockerfile:11: process \"/bin/sh -c echo this stage is not needed && exit 7\" did not complete successfully: exit code: 7"),
        "{err}"
    );
    assert!(err.contains("> this stage is not needed"), "{err}");
    // No build container is left, running or not.
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}

#[test]
fn errors_name_the_file_and_line() {
    let b = Berth::new();
    let ctx = context(&format!("FROM {IMAGE}\nFROOM x\n"), &[]);
    let o = build(&b, ctx.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Dockerfile:2: unknown instruction: FROOM"),
        "{err}"
    );

    let ctx = context(&format!("FROM {IMAGE}\nRUN true\n"), &[]);
    let o = build(&b, ctx.path(), &["--target", "nope"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("target stage \"nope\" could not be found")
    );

    let o = b.run(&["build", "/nonexistent/berth/context"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
}

#[test]
fn heredocs_onbuild_quiet_iidfile_and_stdin_dockerfile() {
    let b = Berth::new();
    let parent = context(
        &format!(
            "FROM {IMAGE}\nONBUILD RUN echo triggered > /onbuild\nRUN <<EOF\nset -e\necho one > /h1\necho two >> /h1\nEOF\n"
        ),
        &[],
    );
    build_ok(&b, parent.path(), &["-t", "parent:1"]);
    let img = b.inspect_image("parent:1");
    assert_eq!(
        img["Config"]["OnBuild"],
        serde_json::json!(["RUN echo triggered > /onbuild"])
    );
    assert_eq!(
        b.ok(&["run", "--rm", "parent:1", "cat", "/h1"]),
        "one\ntwo\n"
    );

    // The child runs the trigger; its own config has none.
    let child = tempfile::tempdir().unwrap();
    let iid = child.path().join("iid");
    let o = b.run_input(
        &[
            "build",
            "-q",
            "--iidfile",
            &iid.display().to_string(),
            "-t",
            "child:1",
            "-f",
            "-",
            &child.path().display().to_string(),
        ],
        b"FROM parent:1\nRUN cat /onbuild\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(id.starts_with("sha256:"), "-q prints the ID: {id:?}");
    assert_eq!(o.stderr, b"", "-q prints no progress");
    assert_eq!(fs::read_to_string(&iid).unwrap(), id);
    assert_eq!(
        b.ok(&["run", "--rm", "child:1", "cat", "/onbuild"]),
        "triggered\n"
    );
    assert!(b.inspect_image("child:1")["Config"]["OnBuild"].is_null());
}

#[test]
fn run_mounts_cache_tmpfs_secret_and_network() {
    let b = Berth::new();
    let secret = tempfile::NamedTempFile::new().unwrap();
    fs::write(secret.path(), "s3cr3t-value").unwrap();
    let df = format!(
        "FROM {IMAGE}\n\
         RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /count\n\
         RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && [ -f /scratch/x ] && mount | grep -q ' /scratch type tmpfs'\n\
         RUN --mount=type=secret,id=tok cp /run/secrets/tok /copied-secret-is-allowed-by-user; rm /copied-secret-is-allowed-by-user; cat /run/secrets/tok | wc -c > /secret-len\n\
         RUN --mount=type=secret,id=tok,env=TOKEN [ \"${{TOKEN#s3cr3t}}\" = -value ]\n\
         RUN --network=none [ \"$(ls /sys/class/net)\" = lo ]\n"
    );
    let ctx = context(&df, &[]);
    let s = format!("id=tok,src={}", secret.path().display());
    build_ok(&b, ctx.path(), &["-t", "mounts:1", "--secret", &s]);
    assert_eq!(
        b.ok(&["run", "--rm", "mounts:1", "cat", "/count"]).trim(),
        "1"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "mounts:1", "cat", "/secret-len"])
            .trim(),
        "12"
    );
    // The cache mount is kept across builds, and is no part of the image.
    build_ok(
        &b,
        ctx.path(),
        &["-t", "mounts:2", "--no-cache", "--secret", &s],
    );
    assert_eq!(
        b.ok(&["run", "--rm", "mounts:2", "cat", "/count"]).trim(),
        "2"
    );
    assert!(
        !b.run(&["run", "--rm", "mounts:2", "test", "-e", "/cache/log"])
            .status
            .success()
    );
    // The secret is in no layer and no history.
    let save = tempfile::NamedTempFile::new().unwrap();
    b.ok(&["save", "-o", &save.path().display().to_string(), "mounts:2"]);
    let data = fs::read(save.path()).unwrap();
    assert!(
        !data.windows(12).any(|w| w == b"s3cr3t-value"),
        "the secret leaked into the image"
    );
    let hist = b.ok(&["history", "--no-trunc", "mounts:2"]);
    assert!(!hist.contains("s3cr3t-value"), "{hist}");
    // A missing secret is no error unless required.
    let ctx2 = context(
        &format!("FROM {IMAGE}\nRUN --mount=type=secret,id=nope,required=true true\n"),
        &[],
    );
    let o = build(&b, ctx2.path(), &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("secret nope not found"));
    // `builder prune` empties the cache: the next build runs the cached steps again.
    b.ok(&["builder", "prune", "-f"]);
    let (_, progress) = build_ok(&b, ctx.path(), &["--secret", &s]);
    assert_eq!(ran_steps(&progress).len(), 5, "{progress}");
}

#[test]
fn source_date_epoch_gives_reproducible_images() {
    let b = Berth::new();
    let ctx = context(
        &format!("FROM {IMAGE}\nRUN echo stable > /f && touch /g\nENV X=1\n"),
        &[],
    );
    let (a, _) = build_ok(
        &b,
        ctx.path(),
        &["--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000"],
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (c, _) = build_ok(
        &b,
        ctx.path(),
        &["--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000"],
    );
    assert_eq!(a, c, "two builds of the same inputs differ");
    let img = b.inspect_image(&a);
    assert_eq!(img["Created"], "2023-11-14T22:13:20Z");
    // Without it, the second build is another image (its time differs).
    let (d, _) = build_ok(&b, ctx.path(), &["--no-cache"]);
    assert_ne!(d, a);
}

#[test]
fn an_interrupted_build_leaves_nothing_behind() {
    let b = Berth::new();
    let ctx = context(&format!("FROM {IMAGE}\nRUN sleep 60\n"), &[]);
    let mut child = b
        .cmd()
        .args(["build", "-q", &ctx.path().display().to_string()])
        .spawn()
        .unwrap();
    b.wait_for(20, "the RUN container to start", || {
        b.ok(&["ps", "-q"]).lines().count() == 1
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // Killed with SIGKILL, the build cleans nothing itself: the step's container goes with
    // it all the same (its monitor sees its owner exit), mounts and all.
    b.wait_for(20, "the killed build's container to go", || {
        b.ok(&["ps", "-aq"]).is_empty()
    });
    let root = b.root.path().display().to_string();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&format!("{root}/containers/"))),
        "a container mount is left:\n{mounts}"
    );
    // Completed steps stay cached; the next build works.
    let ctx2 = context(&format!("FROM {IMAGE}\nRUN true\n"), &[]);
    build_ok(&b, ctx2.path(), &[]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}

#[test]
fn a_build_killed_during_copy_leaves_no_container() {
    let b = Berth::new();
    // A big file, so that the COPY step's container (created, never started) is there a
    // while: the build is killed then, and its reaper removes the container.
    let ctx = context(&format!("FROM {IMAGE}\nCOPY big /big\n"), &[]);
    {
        use std::io::Write;
        let mut f = fs::File::create(ctx.path().join("big")).unwrap();
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..300 {
            f.write_all(&chunk).unwrap();
        }
    }
    let mut child = b
        .cmd()
        .args(["build", "-q", &ctx.path().display().to_string()])
        .spawn()
        .unwrap();
    b.wait_for(60, "the COPY step's container", || {
        !b.ok(&["ps", "-aq"]).trim().is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    b.wait_for(
        20,
        "the killed build's reaper to remove its container",
        || b.ok(&["ps", "-aq"]).trim().is_empty(),
    );
    let root = b.root.path().display().to_string();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&format!("{root}/containers/"))),
        "a container mount is left:\n{mounts}"
    );
}
