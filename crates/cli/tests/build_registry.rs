//! `berth build` with a real registry (Debian's docker-registry on loopback): a base image only
//! in the registry is pulled by FROM, `--pull` takes the registry's newer one, and
//! `--cache-from` pulls an image whose inline cache provides the steps. Also `--label` and the
//! terminal progress. Needs root.

mod common;
#[path = "../../image/tests/common/registry.rs"]
mod registry;

use std::fs;

use common::{Berth, IMAGE};
use registry::TestRegistry;

#[test]
fn from_pulls_pull_refreshes_cache_from_a_registry() {
    let reg = TestRegistry::start(None);
    let base = format!("{}/build/base:1", reg.addr);
    let app = format!("{}/build/app:1", reg.addr);

    let a = Berth::new();
    a.ok(&["tag", IMAGE, &base]);
    a.ok(&["push", &base]);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo built > /built\n"),
    )
    .unwrap();
    let c = ctx.path().display().to_string();
    a.ok(&[
        "build",
        "-q",
        "--cache-to",
        "type=inline",
        "--label",
        "org.example.team=core",
        "-t",
        &app,
        &c,
    ]);
    assert_eq!(
        a.inspect_image(&app)["Config"]["Labels"]["org.example.team"],
        "core"
    );
    a.ok(&["push", &app]);

    // An empty store: FROM pulls the base; --cache-from pulls the app and reuses its RUN.
    let b = Berth::new();
    b.ok(&["rmi", IMAGE]);
    let o = b.run(&[
        "build",
        "--progress",
        "plain",
        "--cache-from",
        &app,
        "-t",
        "local/app:1",
        &c,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("CACHED"),
        "the RUN came from the registry's inline cache:\n{err}"
    );
    // The pull of the base shows as its own step, blob by blob.
    assert!(err.contains(&format!("[internal] pull {base}")), "{err}");
    assert!(err.contains("MB done"), "{err}");
    assert_eq!(
        b.ok(&["run", "--rm", "local/app:1", "cat", "/built"]),
        "built\n"
    );
    assert_eq!(
        b.inspect_image("local/app:1")["RootFS"],
        a.inspect_image(&app)["RootFS"]
    );

    // The registry's base changes: without --pull the local one is used, with --pull the new.
    fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN cat /marker 2>/dev/null || echo none\n"),
    )
    .unwrap();
    let newer = tempfile::tempdir().unwrap();
    fs::write(
        newer.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo new > /marker\n"),
    )
    .unwrap();
    a.ok(&[
        "build",
        "-q",
        "-t",
        &base,
        &newer.path().display().to_string(),
    ]);
    a.ok(&["push", &base]);
    let o = b.run(&["build", "--progress", "plain", "--no-cache", &c]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(" none"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = b.run(&["build", "--progress", "plain", "--pull", "--no-cache", &c]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(" new"), "{err}");

    // The terminal view (forced with --progress tty): the status line and the steps.
    let o = b.run(&["build", "--progress", "tty", &c]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success());
    assert!(err.contains("[+] Building"), "{err}");
    assert!(err.contains("=> [2/2] RUN cat /marker"), "{err}");
}
