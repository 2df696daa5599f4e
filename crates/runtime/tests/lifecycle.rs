//! The lifecycle commands: create, start, state, kill, delete, list, and their errors.

mod common;

use std::fs;
use std::path::Path;

use common::{Bundle, WAIT, leftover_cgroups, wait_until};
use serde_json::Value;

/// Whether a process is alive (present and not a zombie).
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s[s.rfind(')').unwrap() + 2..].chars().next().unwrap();
            state != 'Z' && state != 'X'
        }
        Err(_) => false,
    }
}

/// A bundle running `sleep 100`, started with `run --detach` as `id`.
fn detached_sleeper(b: &mut Bundle, id: &str) -> i32 {
    b.args(&["sleep", "100"]);
    b.save();
    b.rt(&[
        "run",
        "--detach",
        "--bundle",
        b.bundle.to_str().unwrap(),
        id,
    ])
    .ok();
    b.wait_status(id, "running");
    b.pid(id)
}

#[test]
fn create_start_stop_delete() {
    let mut b = Bundle::new("lifecycle");
    let host = b.host_dir("shared");
    b.bind(&host, "/shared", &[]);
    b.sh("echo started > /shared/started; \
         while [ ! -e /shared/go ]; do sleep 0.02; done; echo done > /shared/done");
    b.save();
    let pid_file = b.dir.join("init.pid");
    let id = b.id.clone();
    b.rt(&[
        "create",
        "--bundle",
        b.bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ])
    .ok();

    // created: an init waits, the user's command has not run.
    let st = b.state(&id).expect("state after create");
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(
        Path::new(st["bundle"].as_str().unwrap()),
        fs::canonicalize(&b.bundle).unwrap()
    );
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid > 1, "{st}");
    assert!(alive(pid));
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert!(
        !host.join("started").exists(),
        "the process ran before start"
    );

    // running.
    b.start(&id).ok();
    assert!(
        wait_until(WAIT, || host.join("started").exists()),
        "the process did not run after start"
    );
    let st = b.state(&id).unwrap();
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"].as_i64().unwrap() as i32, pid);

    // A second start is refused.
    let out = b.start(&id).failed();
    assert!(out.stderr.contains("running"), "{out:?}");

    // stopped, though nobody waited for the init (its parent, `create`, is long gone).
    fs::write(host.join("go"), "").unwrap();
    b.wait_status(&id, "stopped");
    assert_eq!(fs::read_to_string(host.join("done")).unwrap(), "done\n");
    let st = b.state(&id).unwrap();
    assert_eq!(st["pid"], 0, "{st}");
    let out = b.rt(&["kill", &id, "KILL"]).failed();
    assert!(out.stderr.contains("not running"), "{out:?}");

    // delete removes everything.
    assert!(b.state_dir_exists(&id));
    b.rt(&["delete", &id]).ok();
    assert!(!b.state_dir_exists(&id));
    assert!(b.state(&id).is_none());
    assert_eq!(leftover_cgroups(&id), Vec::<std::path::PathBuf>::new());
}

/// OCI: deleting a container that is not stopped is an error and leaves it as it was; a
/// created one included (runc kills it instead). --force kills and deletes it.
#[test]
fn delete_of_a_created_container_needs_force() {
    let mut b = Bundle::new("delete-created");
    let host = b.host_dir("shared");
    b.bind(&host, "/shared", &[]);
    b.sh("echo ran > /shared/ran");
    b.create(&b.id).ok();
    let pid = b.pid(&b.id);
    let out = b.rt(&["delete", &b.id]).failed();
    assert!(out.stderr.contains("created"), "{out:?}");
    assert!(out.stderr.contains("--force"), "{out:?}");
    // No effect: still created, its init alive, and it can still be started.
    assert_eq!(b.status(&b.id), "created");
    assert!(alive(pid));
    assert!(!leftover_cgroups(&b.id).is_empty());
    b.start(&b.id).ok();
    assert!(wait_until(WAIT, || host.join("ran").exists()));
    b.wait_status(&b.id, "stopped");
    b.rt(&["delete", &b.id]).ok();

    // --force kills a created container and removes it.
    let id2 = format!("{}-2", b.id);
    b.create(&id2).ok();
    let pid2 = b.pid(&id2);
    b.rt(&["delete", "--force", &id2]).ok();
    assert!(!alive(pid2));
    assert!(!b.state_dir_exists(&id2));
    assert!(leftover_cgroups(&id2).is_empty());
}

#[test]
fn list_shows_containers() {
    let mut b = Bundle::new("list");
    let running = format!("{}-a", b.id);
    let created = format!("{}-b", b.id);
    let pid = detached_sleeper(&mut b, &running);
    b.create(&created).ok();

    let out = b.rt(&["list"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], running);
    assert_eq!(row[1], pid.to_string());
    assert_eq!(row[2], "running");
    assert_eq!(row[5], "root");
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!((row[0], row[2]), (created.as_str(), "created"));

    let out = b.rt(&["list", "--format", "json"]).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2, "{v}");
    let a = arr.iter().find(|c| c["id"] == running.as_str()).unwrap();
    assert_eq!(a["status"], "running");
    assert_eq!(a["pid"].as_i64().unwrap() as i32, pid);
    let c = arr.iter().find(|c| c["id"] == created.as_str()).unwrap();
    assert_eq!(c["status"], "created");

    let out = b.rt(&["list", "-q"]).ok();
    assert_eq!(out.stdout, format!("{running}\n{created}\n"));
}

#[test]
fn list_of_an_empty_root() {
    let b = Bundle::new("list-empty");
    assert_eq!(b.rt(&["list", "-q"]).ok().stdout, "");
    let out = b.rt(&["list", "--format", "json"]).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
}

fn kill_with(name: &str, signal: &str) {
    let mut b = Bundle::new(name);
    let id = b.id.clone();
    let pid = detached_sleeper(&mut b, &id);
    b.rt(&["kill", &id, signal]).ok();
    b.wait_status(&id, "stopped");
    assert!(!alive(pid));
    b.rt(&["delete", &id]).ok();
}

#[test]
fn kill_by_name() {
    kill_with("kill-name", "KILL");
}

#[test]
fn kill_by_number() {
    kill_with("kill-number", "9");
}

#[test]
fn kill_by_sig_name() {
    kill_with("kill-signame", "SIGKILL");
}

#[test]
fn kill_sigterm_reaches_a_handler() {
    let mut b = Bundle::new("kill-term");
    let host = b.host_dir("shared");
    b.bind(&host, "/shared", &[]);
    // pid 1 of a namespace only gets the signals it handles.
    b.sh(
        "trap 'echo got-term > /shared/term; exit 0' TERM; echo ready > /shared/ready; \
         while true; do sleep 0.02; done",
    );
    b.create(&b.id).ok();
    b.start(&b.id).ok();
    assert!(wait_until(WAIT, || host.join("ready").exists()));
    b.rt(&["kill", &b.id, "SIGTERM"]).ok();
    b.wait_status(&b.id, "stopped");
    assert_eq!(fs::read_to_string(host.join("term")).unwrap(), "got-term\n");
}

#[test]
fn kill_with_an_unknown_signal_fails() {
    let mut b = Bundle::new("kill-bad");
    let id = b.id.clone();
    detached_sleeper(&mut b, &id);
    let out = b.rt(&["kill", &id, "SIGNOPE"]).failed();
    assert!(out.stderr.contains("SIGNOPE"), "{out:?}");
    assert_eq!(b.status(&id), "running");
}

#[test]
fn delete_of_a_running_container_needs_force() {
    let mut b = Bundle::new("delete-running");
    let id = b.id.clone();
    let pid = detached_sleeper(&mut b, &id);
    let out = b.rt(&["delete", &id]).failed();
    assert!(out.stderr.contains("running"), "{out:?}");
    assert_eq!(b.status(&id), "running");
    assert!(alive(pid));

    b.rt(&["delete", "--force", &id]).ok();
    assert!(!b.state_dir_exists(&id));
    assert!(wait_until(WAIT, || !alive(pid)), "the init survived");
    assert!(leftover_cgroups(&id).is_empty());
}

#[test]
fn second_create_with_the_same_id_fails_and_leaves_the_first() {
    let mut b = Bundle::new("dup-id");
    let host = b.host_dir("shared");
    b.bind(&host, "/shared", &[]);
    b.sh("echo ran > /shared/ran");
    b.create(&b.id).ok();
    let pid = b.pid(&b.id);

    let out = b.create(&b.id).failed();
    assert!(out.stderr.contains(&b.id), "{out:?}");
    assert!(out.stderr.contains("already exists"), "{out:?}");

    let st = b.state(&b.id).expect("the first container is gone");
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"].as_i64().unwrap() as i32, pid);
    assert!(
        !leftover_cgroups(&b.id).is_empty(),
        "the first container's cgroup is gone"
    );
    b.start(&b.id).ok();
    assert!(wait_until(WAIT, || host.join("ran").exists()));
}

#[test]
fn state_of_an_unknown_container_fails() {
    let b = Bundle::new("unknown");
    let id = format!("{}-nope", b.id);
    let out = b.rt(&["state", &id]).failed();
    assert!(out.stderr.contains(&id), "{out:?}");
    assert_eq!(out.stdout, "");
    for verb in ["start", "delete", "kill"] {
        let out = b.rt(&[verb, &id]).failed();
        assert!(out.stderr.contains(&id), "{verb}: {out:?}");
    }
}

#[test]
fn run_detach_returns_with_the_container_running() {
    let mut b = Bundle::new("run-detach");
    let id = b.id.clone();
    let pid = detached_sleeper(&mut b, &id);
    assert!(alive(pid));
    // The container is in its cgroup.
    let cgs = leftover_cgroups(&id);
    assert!(!cgs.is_empty());
    let procs = cgs
        .iter()
        .map(|c| fs::read_to_string(c.join("cgroup.procs")).unwrap_or_default())
        .find(|p| !p.is_empty())
        .unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
}

/// Run `sh -c SCRIPT` on the host as nobody (uid and gid 65534, no groups, no capabilities:
/// setpriv execs the shell, which drops them as a non-root uid).
fn as_nobody(script: &str) -> common::Out {
    common::run_cmd(std::process::Command::new("setpriv").args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        "/bin/sh",
        "-c",
        script,
    ]))
}

#[test]
fn the_state_root_is_private_even_if_an_older_version_made_it_open() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = Bundle::new("root-mode");
    // As an older version left it: open to everybody.
    fs::create_dir_all(&b.state_root).unwrap();
    fs::set_permissions(&b.state_root, fs::Permissions::from_mode(0o755)).unwrap();
    // The test's directory must not be what keeps nobody out.
    fs::set_permissions(&b.dir, fs::Permissions::from_mode(0o755)).unwrap();
    let id = b.id.clone();
    detached_sleeper(&mut b, &id);

    let mode = |p: &Path| {
        format!(
            "{:o}",
            fs::metadata(p).unwrap().permissions().mode() & 0o7777
        )
    };
    assert_eq!(mode(&b.state_root), "700", "{}", b.state_root.display());
    let cdir = b.state_root.join(&id);
    assert_eq!(mode(&cdir), "700", "{}", cdir.display());
    let state = cdir.join("state.json");
    assert!(state.exists());

    // Control: nobody can read a world-readable file next to the root.
    let probe = b.dir.join("probe");
    fs::write(&probe, "visible\n").unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o644)).unwrap();
    let out = as_nobody(&format!("cat {}", probe.display())).ok();
    assert_eq!(out.stdout, "visible\n");

    let out = as_nobody(&format!("ls {}", b.state_root.display())).failed();
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    assert!(!out.stdout.contains(&id), "{out:?}");
    let out = as_nobody(&format!("cat {}", state.display())).failed();
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    assert!(!out.stdout.contains(&id), "{out:?}");
}

#[test]
fn a_new_state_root_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = Bundle::new("root-mode-new");
    let id = b.id.clone();
    assert!(!b.state_root.exists());
    detached_sleeper(&mut b, &id);
    let mode = |p: &Path| {
        format!(
            "{:o}",
            fs::metadata(p).unwrap().permissions().mode() & 0o7777
        )
    };
    assert_eq!(mode(&b.state_root), "700");
    assert_eq!(mode(&b.state_root.join(&id)), "700");
}

#[test]
fn a_shared_directory_is_refused_as_state_root() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = Bundle::new("root-shared");
    // Like /tmp: world-writable and sticky. It must not be made private.
    fs::create_dir_all(&b.state_root).unwrap();
    fs::set_permissions(&b.state_root, fs::Permissions::from_mode(0o1777)).unwrap();
    b.args(&["true"]);
    let out = b.create(&b.id).failed();
    assert!(out.stderr.contains("shared directory"), "{out:?}");
    let mode = fs::metadata(&b.state_root).unwrap().permissions().mode() & 0o7777;
    assert_eq!(format!("{mode:o}"), "1777");
    assert!(!b.state_dir_exists(&b.id));
}
