//! Crash consistency and what outlives a container: `run -d` killed at any point, `--rm` with
//! anonymous volumes, `system boot` after a (simulated) reboot, `container prune`, the store
//! closed to other users, and the resource flags checked before anything is made. Needs root.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Berth, IMAGE, mounted_below};

/// Container IDs `ps -a` lists.
fn listed(b: &Berth) -> Vec<String> {
    b.ok(&["ps", "-a", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Entries of `ROOT/containers` other than the store's lock.
fn container_entries(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(b.root.path().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect();
    v.sort();
    v
}

fn snapshots(b: &Berth) -> Vec<String> {
    fs::read_dir(b.root.path().join("snapshots/containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn run_killed_at_any_point_leaves_a_container_that_lists_and_removes() {
    let b = Berth::new();
    // Warm up (the runtime's spec cache, the layer unpack), so the kills below land inside
    // the creation itself, which takes a few tens of milliseconds.
    b.ok(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    let mut tries = 0;
    for step in 0..30u64 {
        let delay = Duration::from_micros(step * 2500);
        let net = if step % 3 == 0 { "bridge" } else { "none" };
        let mut child = b
            .cmd()
            .args([
                "run",
                "-d",
                "--network",
                net,
                "-v",
                "/anon",
                IMAGE,
                "sleep",
                "60",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        tries += 1;
        // Whatever the kill left is a container `ps -a` lists; nothing else is in the store
        // but debris of unfinished records, which the next create clears.
        let entries: Vec<String> = container_entries(&b)
            .into_iter()
            .filter(|e| !e.starts_with(".new-"))
            .collect();
        let mut ids = listed(&b);
        ids.sort();
        assert_eq!(
            entries, ids,
            "after a kill at {delay:?}: every container directory must be listed by ps -a"
        );
        // Each one that did not start is dead (its creator died) or created, and rm -f removes
        // it with its mounts, snapshot and anonymous volume.
        for id in &ids {
            let st = b.inspect(id)["State"]["Status"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                ["dead", "created", "running", "exited"].contains(&st.as_str()),
                "status {st}"
            );
        }
        for id in &ids {
            b.ok(&["rm", "-f", "-v", id]);
        }
        assert!(listed(&b).is_empty());
        let mounts = mounted_below(&b.root.path().join("containers"));
        assert!(mounts.is_empty(), "mounts left after rm -f: {mounts:?}");
        assert!(
            snapshots(&b).is_empty(),
            "snapshots left after rm -f: {:?}",
            snapshots(&b)
        );
    }
    assert_eq!(tries, 30);
    // The next create clears what interrupted records left, and every volume is gone.
    b.ok(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    assert_eq!(container_entries(&b), Vec::<String>::new());
    let vols: Vec<_> = fs::read_dir(b.root.path().join("volumes"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".lock")
        .collect();
    assert!(vols.is_empty(), "volumes left: {vols:?}");
    // Image layers are no longer pinned: the image can be removed and pruned away.
    b.ok(&["rmi", IMAGE]);
    b.ok(&["image", "prune", "-a", "-f"]);
    let layers = fs::read_dir(b.root.path().join("snapshots/layers"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(layers, 0, "layers still pinned after rmi and prune");
}

#[test]
fn a_container_whose_creator_died_is_dead_and_prune_removes_it() {
    let b = Berth::new();
    // A creator killed right after the record is in place: emulate by a record whose creator
    // pid is a process that has exited.
    let id = b
        .ok(&["create", "--network", "none", IMAGE, "true"])
        .trim()
        .to_string();
    let mut dead = Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    let p = b
        .root
        .path()
        .join("containers")
        .join(&id)
        .join("state.json");
    let mut s: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    s["CreatorPid"] = pid.into();
    s["CreatorStart"] = 1.into();
    fs::write(&p, serde_json::to_vec(&s).unwrap()).unwrap();
    let st = b.inspect(&id)["State"].clone();
    assert_eq!(st["Status"], "dead", "{st}");
    assert!(
        st["Error"]
            .as_str()
            .unwrap()
            .contains("creation was interrupted")
    );
    let start = b.run(&["start", &id]);
    assert!(!start.status.success());
    assert!(String::from_utf8_lossy(&start.stderr).contains("berth rm"));
    let keep = b
        .ok(&["run", "-d", "--network", "none", IMAGE, "sleep", "60"])
        .trim()
        .to_string();
    let out = b.ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains(&id), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(
        !out.contains(&keep),
        "a running container was pruned: {out}"
    );
    assert_eq!(listed(&b), vec![keep.clone()]);
    assert!(mounted_below(&b.root.path().join("containers").join(&id)).is_empty());
}

#[test]
fn rm_containers_take_their_anonymous_volumes() {
    let b = Berth::new();
    let vols = || -> Vec<String> {
        fs::read_dir(b.root.path().join("volumes"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != ".lock")
                    .collect()
            })
            .unwrap_or_default()
    };
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/anon",
        "-v",
        "named:/named",
        IMAGE,
        "sh",
        "-c",
        "echo x > /anon/f",
    ]);
    // The named volume stays (as in Docker); the anonymous one went with the container.
    assert_eq!(vols(), vec!["named".to_string()]);
    let id = b
        .ok(&[
            "run",
            "-d",
            "--rm",
            "--network",
            "none",
            "-v",
            "/anon",
            IMAGE,
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    assert_eq!(vols().len(), 2);
    b.ok(&["stop", "-t", "0", &id]);
    b.wait_for(20, "the --rm container to be removed", || {
        !b.root.path().join("containers").join(&id).exists()
    });
    assert_eq!(vols(), vec!["named".to_string()]);
}

/// Kills a container's monitor, then its init, as a reboot would end them, and unmounts its
/// root filesystem.
fn simulate_reboot(b: &Berth, id: &str) {
    let dir = b.root.path().join("containers").join(id);
    let s: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("state.json")).unwrap()).unwrap();
    for key in ["MonitorPid", "Pid"] {
        let pid = s[key].as_i64().unwrap() as i32;
        assert!(pid > 0, "{key} {s}");
        // SAFETY: kill has no memory arguments; the pid is this test's container's.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        b.wait_for(20, "the process to die", || {
            fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
        });
    }
    let rootfs = dir.join("rootfs");
    if !mounted_below(&rootfs).is_empty() {
        assert!(
            Command::new("umount")
                .arg(&rootfs)
                .status()
                .unwrap()
                .success()
        );
    }
}

#[test]
fn system_boot_restarts_always_and_unless_stopped_containers() {
    let b = Berth::new();
    let run = |policy: &str, name: &str| {
        b.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--restart",
            policy,
            IMAGE,
            "sleep",
            "600",
        ]);
    };
    run("always", "always");
    run("unless-stopped", "unless");
    run("unless-stopped", "stopped");
    run("no", "never");
    b.ok(&["stop", "-t", "0", "stopped"]);
    for name in ["always", "unless", "never"] {
        let id = b.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string();
        simulate_reboot(&b, &id);
    }
    for name in ["always", "unless", "never"] {
        assert_eq!(b.inspect(name)["State"]["Status"], "exited", "{name}");
    }
    let out = b.ok(&["system", "boot"]);
    let mut started: Vec<&str> = out.lines().collect();
    started.sort();
    assert_eq!(started, ["always", "unless"], "{out}");
    for (name, status) in [
        ("always", "running"),
        ("unless", "running"),
        ("stopped", "exited"),
        ("never", "exited"),
    ] {
        assert_eq!(b.inspect(name)["State"]["Status"], status, "{name}");
    }
    assert_eq!(
        b.ok(&["exec", "always", "echo", "back"]).trim(),
        "back",
        "the restarted container runs"
    );
    // Running it again changes nothing.
    assert_eq!(b.ok(&["system", "boot"]).trim(), "");
}

/// Runs `args` as the unprivileged user nobody (65534), with no groups, through a shell that
/// runs as that user: setpriv execs the program while it still holds root's capabilities
/// (they go at that exec), so it would reach what the user cannot.
fn as_nobody(args: &[&str]) -> std::process::Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["/bin/sh", "-c", &quoted.join(" ")])
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_store_is_closed_to_other_users_also_when_it_was_made_open() {
    let b = Berth::new();
    // A root made by an older berth (or by hand) with 0755 directories is closed on open.
    for d in ["", "containers", "volumes"] {
        let p = b.root.path().join(d);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    // A setuid-root copy of busybox inside the container's root, at a path anyone can compute.
    let id = b
        .ok(&[
            "run",
            "-d",
            "-v",
            "/anon",
            IMAGE,
            "sh",
            "-c",
            "cp /bin/busybox /rootme && chmod 4755 /rootme && touch /ready && sleep 600",
        ])
        .trim()
        .to_string();
    let root = b.root.path();
    let rootme = root.join("containers").join(&id).join("rootfs/rootme");
    b.wait_for(20, "the setuid file", || {
        root.join("containers")
            .join(&id)
            .join("rootfs/ready")
            .exists()
    });
    for d in ["", "containers", "volumes", "networks"] {
        assert_eq!(mode(&root.join(d)), 0o700, "ROOT/{d}");
    }
    assert_eq!(mode(Path::new("/run/berth-network.lock")) & 0o077, 0);
    // The user cannot list the root, nor reach the setuid file or the network state.
    let ls = as_nobody(&["ls", &root.display().to_string()]);
    assert!(!ls.status.success(), "nobody listed the root");
    assert!(String::from_utf8_lossy(&ls.stderr).contains("Permission denied"));
    let rootme_s = rootme.display().to_string();
    let exec = as_nobody(&[&rootme_s, "id", "-u"]);
    assert!(
        !exec.status.success(),
        "nobody ran the setuid file: {}",
        String::from_utf8_lossy(&exec.stdout)
    );
    assert!(String::from_utf8_lossy(&exec.stderr).contains("Permission denied"));
    let net = as_nobody(&[
        "cat",
        &root.join("networks/bridge.json").display().to_string(),
    ]);
    assert!(!net.status.success());
    // The network lock cannot be taken by another user (that would stall every network
    // change on the host).
    let lock = as_nobody(&["flock", "-n", "/run/berth-network.lock", "true"]);
    assert!(!lock.status.success(), "nobody took the network lock");
}

#[test]
fn resource_flags_out_of_range_are_refused_before_anything_is_made() {
    let b = Berth::new();
    // SAFETY: sysconf has no memory arguments.
    let ncpu = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let too_many = (ncpu + 1).to_string();
    for (args, want) in [
        (vec!["--cpus", "-1"], "out of range".to_string()),
        (vec!["--cpus", "1000"], format!("from 0.01 to {ncpu}.00")),
        (
            vec!["--cpus", too_many.as_str()],
            "out of range".to_string(),
        ),
        (vec!["--cpus", "0.001"], "out of range".to_string()),
        (vec!["--cpus", "lots"], "not a number".to_string()),
        (
            vec!["-m", "10m", "--memory-swap", "1m"],
            "must be at least --memory".to_string(),
        ),
        (
            vec!["--memory-swap", "100m"],
            "needs a memory limit".to_string(),
        ),
    ] {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend(&args);
        a.extend([IMAGE, "true"]);
        let o = b.run(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert!(err.contains(&want), "{args:?}: {err}");
        assert!(
            !err.contains("Invalid argument"),
            "{args:?}: raw errno: {err}"
        );
    }
    assert!(container_entries(&b).is_empty());
    // In range works; 0 means no limit; -1 swap is unlimited.
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cpus",
        "0.5",
        IMAGE,
        "true",
    ]);
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cpus",
        "0",
        IMAGE,
        "true",
    ]);
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-m",
        "64m",
        "--memory-swap",
        "-1",
        IMAGE,
        "true",
    ]);
}
