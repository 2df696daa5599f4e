//! `berth serve` basics, driven by the real docker CLI: version negotiation, info, errors.

mod common;

use common::serve::Server;

#[test]
fn version_and_info_through_both_docker_clis() {
    let s = Server::start(&[]);
    let v = s.docker_ok(&["version", "--format", "{{json .Server}}"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["ApiVersion"], "1.44", "{v}");
    assert_eq!(v["MinAPIVersion"], "1.24", "{v}");
    assert_eq!(v["Os"], "linux");
    // Debian's 20.10 CLI speaks API 1.41: the versioned prefix is accepted.
    let o = s
        .client("/usr/bin/docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1.44");
    let info = s.docker_ok(&[
        "info",
        "--format",
        "{{.Driver}} {{.OSType}} {{.DockerRootDir}}",
    ]);
    assert_eq!(
        info.trim(),
        format!(
            "overlay linux {}",
            s.berth.root.path().canonicalize().unwrap().display()
        )
    );
}

#[test]
fn unknown_group_is_refused() {
    let b = common::Berth::new();
    let o = b.run(&[
        "serve",
        "--group",
        "no-such-group-here",
        "-H",
        "unix:///tmp/berth-never.sock",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-group-here: no such group"));
}

#[test]
fn socket_is_0660_and_removed_at_sigterm() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;
    let mut s = Server::start(&["--group", "4242"]);
    let meta = std::fs::metadata(&s.sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), 4242, "--group owns the socket");
    assert!(
        s.stop(),
        "berth serve did not exit at SIGTERM:\n{}",
        s.log()
    );
    assert!(!s.sock.exists(), "the socket outlived the server");
}
