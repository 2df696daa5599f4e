//! `berth run` of an image that is only in a registry: the image made locally is pushed to a
//! real registry (Debian's docker-registry on loopback), and a berth with an empty store pulls it
//! on `run` (`--pull missing`, Docker's default) and runs it.

mod common;
#[path = "../../image/tests/common/registry.rs"]
mod registry;

use common::{Berth, IMAGE};
use registry::TestRegistry;

#[test]
fn run_pulls_a_missing_image_from_a_registry_and_runs_it() {
    let reg = TestRegistry::start(None);
    let remote = format!("{}/e2e/busybox:1", reg.addr);

    let a = Berth::new();
    a.ok(&["tag", IMAGE, &remote]);
    a.ok(&["push", &remote]);
    let pushed = a.inspect_image(&remote);

    // Another berth, with an empty store.
    let b = Berth::new();
    b.ok(&["rmi", IMAGE]);
    b.ok(&["image", "prune", "-a"]);
    assert_eq!(b.ok(&["images", "-q"]).trim(), "", "the store is not empty");

    // --pull never: a clear error, exit 125, nothing made.
    let o = b.run(&["run", "--rm", "--pull", "never", &remote, "true"]);
    assert_eq!(o.status.code(), Some(125), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not found"),
        "{o:?}"
    );
    assert!(b.container_ids().is_empty());

    // The default pulls, then runs.
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &remote,
        "sh",
        "-c",
        "echo pulled and ran as $(id -u) in $(hostname | wc -c)-char host",
    ]);
    assert!(
        out.contains("pulled and ran as 0 in 13-char host"),
        "{out:?}"
    );
    let pulled = b.inspect_image(&remote);
    assert_eq!(
        pulled["Id"], pushed["Id"],
        "the pulled image is not the pushed one"
    );
    let remote_digest = &pulled["RepoDigests"][0];
    assert!(
        remote_digest
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("{}/e2e/busybox@sha256:", reg.addr))),
        "{pulled}"
    );
    assert!(
        pushed["RepoDigests"]
            .as_array()
            .unwrap()
            .contains(remote_digest),
        "pulled {remote_digest}, pushed {}",
        pushed["RepoDigests"]
    );
    assert!(b.container_ids().is_empty(), "--rm left a container");
}
