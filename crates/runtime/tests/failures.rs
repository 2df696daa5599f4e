//! A create that fails says why and leaves nothing behind: no state directory, no cgroup, no
//! process.

mod common;

use std::fs;

use common::{Bundle, leftover_cgroups, processes_mentioning};
use serde_json::json;

/// `create` (or `run` when `foreground`) must fail naming every one of `needles`, and leave
/// nothing behind.
#[track_caller]
fn assert_fails_cleanly(b: &Bundle, foreground: bool, needles: &[&str]) {
    let out = if foreground {
        b.rt(&["run", "--bundle", b.bundle.to_str().unwrap(), &b.id])
    } else {
        b.rt(&["create", "--bundle", b.bundle.to_str().unwrap(), &b.id])
    };
    assert_ne!(out.code, 0, "should fail: {out:?}");
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "the error should mention {n:?}: {out:?}"
        );
    }
    assert!(
        !b.state_dir_exists(&b.id),
        "state directory left behind: {:?}",
        fs::read_dir(b.state_root.join(&b.id))
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    assert_eq!(
        leftover_cgroups(&b.id),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left behind"
    );
    let procs = processes_mentioning(b.state_root.to_str().unwrap());
    assert!(procs.is_empty(), "processes left behind: {procs:?}");
    // The ID can be used again.
    assert!(b.state(&b.id).is_none());
}

#[test]
fn bind_mount_from_a_missing_source() {
    let mut b = Bundle::new("fail-bind");
    let missing = b.dir.join("does-not-exist");
    b.bind(&missing, "/data", &[]);
    b.save();
    assert_fails_cleanly(&b, false, &["/data", missing.to_str().unwrap()]);
    assert_fails_cleanly(&b, true, &["/data", missing.to_str().unwrap()]);
}

#[test]
fn mount_of_an_unknown_filesystem_type() {
    let mut b = Bundle::new("fail-fstype");
    b.mount(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}));
    b.save();
    assert_fails_cleanly(&b, false, &["/x", "nosuchfs"]);
}

#[test]
fn missing_rootfs() {
    let mut b = Bundle::new("fail-rootfs");
    b.cfg["root"]["path"] = json!("no-rootfs-here");
    b.save();
    assert_fails_cleanly(&b, false, &["root.path", "no-rootfs-here"]);
}

#[test]
fn invalid_json() {
    let b = Bundle::new("fail-json");
    fs::write(b.bundle.join("config.json"), "{ not json }").unwrap();
    assert_fails_cleanly(
        &b,
        false,
        &["config.json", "key must be a string at line 1 column 3"],
    );
    // Truncated: the error says where the text ends.
    fs::write(
        b.bundle.join("config.json"),
        "{\"ociVersion\": \"1.2.0\", \"process\": ",
    )
    .unwrap();
    assert_fails_cleanly(&b, false, &["config.json", "EOF while parsing"]);
}

#[test]
fn invalid_json_is_called_invalid_json() {
    // config::parse means to say "invalid JSON: ..." for a syntax error outside any field,
    // rather than a bare "?:" path.
    let b = Bundle::new("fail-json-msg");
    fs::write(b.bundle.join("config.json"), "{ not json }").unwrap();
    let out = b
        .rt(&["create", "--bundle", b.bundle.to_str().unwrap(), &b.id])
        .failed();
    assert!(out.stderr.contains("invalid JSON"), "{out:?}");
    assert!(!out.stderr.contains("?:"), "{out:?}");
}

#[test]
fn wrong_type_names_the_field() {
    let mut b = Bundle::new("fail-type");
    b.cfg["process"]["user"]["uid"] = json!("root");
    b.save();
    assert_fails_cleanly(&b, false, &["process.user.uid"]);
}

#[test]
fn empty_args() {
    let mut b = Bundle::new("fail-args");
    b.args(&[]);
    b.save();
    assert_fails_cleanly(&b, false, &["process.args: must not be empty"]);
}

#[test]
fn missing_bundle() {
    let b = Bundle::new("fail-bundle");
    let out = b
        .rt(&["create", "--bundle", "/nonexistent/bundle", &b.id])
        .failed();
    assert!(out.stderr.contains("/nonexistent/bundle"), "{out:?}");
    assert!(!b.state_dir_exists(&b.id));
}

#[test]
fn executable_not_found() {
    let mut b = Bundle::new("fail-exec");
    b.args(&["no-such-command", "arg"]);
    b.save();
    assert_fails_cleanly(&b, false, &["no-such-command", "executable file not found"]);
    assert_fails_cleanly(&b, true, &["no-such-command", "executable file not found"]);
}

#[test]
fn executable_path_not_found() {
    let mut b = Bundle::new("fail-exec-path");
    b.args(&["/bin/nope"]);
    b.save();
    assert_fails_cleanly(&b, false, &["/bin/nope", "no such file or directory"]);
}

#[test]
fn console_socket_without_terminal() {
    let b = Bundle::new("fail-console");
    b.save();
    let sock = b.dir.join("nosock");
    let out = b
        .rt(&[
            "create",
            "--bundle",
            b.bundle.to_str().unwrap(),
            "--console-socket",
            sock.to_str().unwrap(),
            &b.id,
        ])
        .failed();
    assert!(out.stderr.contains("terminal"), "{out:?}");
    assert!(!b.state_dir_exists(&b.id));
    assert!(leftover_cgroups(&b.id).is_empty());
}

#[test]
fn terminal_without_console_socket() {
    let mut b = Bundle::new("fail-no-console");
    b.cfg["process"]["terminal"] = json!(true);
    b.save();
    assert_fails_cleanly(&b, false, &["--console-socket"]);
}

#[test]
fn invalid_id() {
    let b = Bundle::new("fail-id");
    b.save();
    let out = b
        .rt(&[
            "create",
            "--bundle",
            b.bundle.to_str().unwrap(),
            "../escape",
        ])
        .failed();
    assert!(out.stderr.contains("invalid container id"), "{out:?}");
    assert!(!b.dir.join("escape").exists());
}

#[test]
fn delete_force_after_the_creator_was_killed_removes_the_cgroup() {
    let mut b = Bundle::new("fail-creator-killed");
    // createRuntime runs in `create` itself after the cgroup is made and the init is in it:
    // the hook kills its parent, as an OOM kill or a crash of the caller would.
    b.cfg["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", "kill -9 $PPID; sleep 1"],
    }]});
    b.save();
    let out = b.rt(&["create", "--bundle", b.bundle.to_str().unwrap(), &b.id]);
    assert_eq!(out.code, 137, "create should die of SIGKILL: {out:?}");
    assert!(b.state_dir_exists(&b.id), "nothing half-created to test");
    assert!(
        !leftover_cgroups(&b.id).is_empty(),
        "no cgroup half-created to test"
    );
    b.rt(&["delete", "--force", &b.id]).ok();
    assert!(!b.state_dir_exists(&b.id), "state directory left behind");
    assert_eq!(
        leftover_cgroups(&b.id),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left behind"
    );
    let procs = processes_mentioning(b.state_root.to_str().unwrap());
    assert!(procs.is_empty(), "processes left behind: {procs:?}");
}
