//! berth-runtime run by an unprivileged user: a user namespace maps that user to root, no
//! cgroup is needed, and what needs privilege fails with a clear error.

mod common;

use std::process::Command;

use common::{BIN, Bundle, run_cmd};
use serde_json::json;

const UID: u32 = 1500;

/// Run the runtime as UID through setpriv (util-linux), with the state under the test dir.
fn as_user(b: &Bundle, args: &[&str]) -> common::Out {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={UID}"),
        &format!("--regid={UID}"),
        "--clear-groups",
        *BIN,
        "--root",
    ])
    .arg(&b.state_root)
    .args(args)
    .env_remove("XDG_RUNTIME_DIR");
    run_cmd(&mut cmd)
}

fn rootless_bundle(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    // The same config `spec --rootless` writes, built from the test bundle's own.
    b.cfg["linux"].as_object_mut().unwrap().remove("resources");
    b.cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
        {"type": "mount"}, {"type": "user"}]);
    b.cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": UID, "size": 1}]);
    b.cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": UID, "size": 1}]);
    let mounts: Vec<serde_json::Value> = b.cfg["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] != "/sys/fs/cgroup")
        .map(|m| {
            if m["destination"] == "/sys" {
                json!({"destination": "/sys", "type": "none", "source": "/sys",
                       "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
            } else if m["destination"] == "/dev/pts" {
                json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                       "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]})
            } else {
                m.clone()
            }
        })
        .collect();
    b.cfg["mounts"] = json!(mounts);
    std::fs::create_dir_all(&b.state_root).unwrap();
    for p in [&b.dir, &b.state_root] {
        std::os::unix::fs::chown(p, Some(UID), Some(UID)).unwrap();
    }
    b
}

#[test]
fn an_unprivileged_user_runs_a_container_as_its_root() {
    let mut b = rootless_bundle("rootless-run");
    b.sh("id -u; cat /proc/self/uid_map; hostname; echo x > /dev/null && echo devnull-ok");
    b.save();
    let out = as_user(&b, &["run", "--bundle", b.bundle.to_str().unwrap(), &b.id]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "0", "{out:?}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", "1500", "1"], "{out:?}");
    assert_eq!(lines[2], "berth");
    assert_eq!(lines[3], "devnull-ok");
    assert!(!b.state_dir_exists(&b.id), "state left behind");
}

#[test]
fn rootless_limits_without_a_delegated_cgroup_are_refused() {
    let mut b = rootless_bundle("rootless-limit");
    b.cfg["linux"]["resources"] = json!({"pids": {"limit": 10}});
    b.save();
    let out = as_user(&b, &["run", "--bundle", b.bundle.to_str().unwrap(), &b.id]).failed();
    assert!(out.stderr.contains("delegated"), "{out:?}");
    assert!(!b.state_dir_exists(&b.id), "state left behind");
}
