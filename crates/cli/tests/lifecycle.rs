//! Detached containers and their monitor: ps, logs, exec, stop, kill, restart policies, health
//! checks, OOM kills, rm, a killed monitor, pause, top, stats, rename, wait. Needs root.

mod common;

use std::fs;

use common::{Berth, IMAGE, cgroup_dirs, mounted_below};

fn run_d(b: &Berth, args: &[&str]) -> String {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    let id = b.ok(&a).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full ID: {id}");
    id
}

fn status(b: &Berth, id: &str) -> String {
    b.ok(&["inspect", "--format", "{{.State.Status}}", id])
        .trim()
        .to_string()
}

#[test]
fn detached_ps_logs_and_json_file() {
    let b = Berth::new();
    let id = run_d(
        &b,
        &[
            "--name",
            "web",
            "--label",
            "tier=front",
            IMAGE,
            "sh",
            "-c",
            "echo out; echo err >&2; exec sleep 100",
        ],
    );
    let ps = b.ok(&["ps"]);
    let lines: Vec<&str> = ps.lines().collect();
    assert!(lines[0].starts_with("CONTAINER ID   IMAGE"), "{ps}");
    for col in ["COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"] {
        assert!(lines[0].contains(col), "{ps}");
    }
    assert!(lines[1].starts_with(&id[..12]), "{ps}");
    assert!(lines[1].contains(" Up "), "{ps}");
    assert!(lines[1].ends_with("web"), "{ps}");
    assert!(lines[1].contains("\"sh -c echo out; ech…\""), "{ps}");
    // Lookups by name and short ID; filters and formats.
    assert_eq!(
        b.ok(&["ps", "-q", "--filter", "name=web"]).trim(),
        &id[..12]
    );
    assert_eq!(
        b.ok(&["ps", "-q", "--filter", "label=tier=front"]).trim(),
        &id[..12]
    );
    assert_eq!(b.ok(&["ps", "-q", "--filter", "status=exited"]).trim(), "");
    assert_eq!(
        b.ok(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"])
            .trim(),
        format!("{id} web")
    );
    let j: serde_json::Value =
        serde_json::from_str(b.ok(&["ps", "--format", "json"]).trim()).unwrap();
    assert_eq!(j["State"], "running");
    b.wait_for(10, "logs", || b.ok(&["logs", "web"]) == "out\n");
    let o = b.run(&["logs", &id[..8]]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    let log =
        fs::read_to_string(b.root.path().join(format!("containers/{id}/{id}-json.log"))).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert!(first["log"] == "out\n" || first["log"] == "err\n", "{log}");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    let ts = b.ok(&["logs", "-t", "--tail", "2", "web"]);
    assert!(ts.contains("Z out\n") && ts.lines().count() == 1, "{ts}");
    // Names are unique.
    let o = b.run(&["run", "-d", "--name", "web", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already in use"));
    // inspect
    let v = b.inspect("web");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["State"]["Running"], true);
    assert!(v["State"]["Pid"].as_i64().unwrap() > 0);
    assert_eq!(v["Config"]["Labels"]["tier"], "front");
    assert_eq!(v["Config"]["Labels"]["org.example.image"], "busybox");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "no");
    b.ok(&["rename", "web", "web2"]);
    assert_eq!(b.inspect(&id)["Name"], "/web2");
    b.ok(&["rm", "-f", "web2"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}

#[test]
fn exec_shares_the_container_namespaces() {
    let b = Berth::new();
    let id = run_d(&b, &["-h", "exechost", IMAGE, "sleep", "100"]);
    assert_eq!(b.ok(&["exec", &id, "hostname"]).trim(), "exechost");
    let ps = b.ok(&["exec", &id, "cat", "/proc/1/cmdline"]);
    assert_eq!(ps, "sleep\x00100\x00");
    assert_eq!(
        b.run(&["exec", &id, "sh", "-c", "exit 5"]).status.code(),
        Some(5)
    );
    let o = b.run(&["exec", &id, "no-such-command"]);
    assert_eq!(
        o.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        b.ok(&[
            "exec",
            "-u",
            "1000",
            "-w",
            "/tmp",
            "-e",
            "X=y",
            &id,
            "sh",
            "-c",
            "id -u; pwd; echo $X"
        ]),
        "1000\n/tmp\ny\n"
    );
    let o = b.run_input(&["exec", "-i", &id, "cat"], b"piped\n");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "piped\n");
    let top = b.ok(&["top", &id]);
    assert!(top.contains("sleep 100"), "{top}");
    b.ok(&["pause", &id]);
    assert_eq!(status(&b, &id), "paused");
    assert!(b.ok(&["ps"]).contains("(Paused)"));
    b.ok(&["unpause", &id]);
    assert_eq!(status(&b, &id), "running");
    let st = b.ok(&["stats", "--no-stream", &id]);
    assert!(st.starts_with("CONTAINER ID   NAME"), "{st}");
    assert!(
        st.contains("MEM USAGE / LIMIT") && st.contains("PIDS"),
        "{st}"
    );
    let j: serde_json::Value = serde_json::from_str(
        b.ok(&["stats", "--no-stream", "--format", "json", &id])
            .trim(),
    )
    .unwrap();
    assert_eq!(j["PIDs"], "1");
}

#[test]
fn stop_kills_after_the_timeout_and_wait_reports() {
    let b = Berth::new();
    // pid 1 ignores TERM (no handler): stop has to SIGKILL it after -t 1.
    let id = run_d(
        &b,
        &[IMAGE, "sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
    );
    b.ok(&["stop", "-t", "1", &id]);
    let v = b.inspect(&id);
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert!(b.ok(&["ps", "-a"]).contains("Exited (137)"));
    assert_eq!(b.ok(&["wait", &id]).trim(), "137");
    // A container that handles TERM stops with its own status; restart runs it again.
    let id2 = run_d(
        &b,
        &[
            "--stop-signal",
            "USR1",
            IMAGE,
            "sh",
            "-c",
            "trap 'exit 7' USR1; while :; do sleep 0.1; done",
        ],
    );
    b.ok(&["stop", &id2]);
    assert_eq!(b.inspect(&id2)["State"]["ExitCode"], 7);
    b.ok(&["restart", "-t", "1", &id2]);
    assert_eq!(status(&b, &id2), "running");
    b.ok(&["kill", "-s", "USR1", &id2]);
    assert_eq!(b.ok(&["wait", &id2]).trim(), "7");
    // start again, then create + start.
    b.ok(&["start", &id2]);
    assert_eq!(status(&b, &id2), "running");
    let c = b.ok(&[
        "create",
        "--name",
        "later",
        IMAGE,
        "sh",
        "-c",
        "echo started; exit 4",
    ]);
    assert_eq!(status(&b, c.trim()), "created");
    assert!(b.ok(&["ps", "-a"]).contains("Created"));
    let o = b.run(&["start", "-a", "later"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "started\n");
    assert_eq!(
        b.run(&["rm", &id2]).status.code(),
        Some(1),
        "rm of a running container needs -f"
    );
}

#[test]
fn restart_on_failure_counts_restarts() {
    let b = Berth::new();
    let id = run_d(
        &b,
        &[
            "--restart",
            "on-failure:2",
            IMAGE,
            "sh",
            "-c",
            "echo run; exit 1",
        ],
    );
    b.wait_for(30, "two restarts, then exited", || {
        let v = b.inspect(&id);
        v["RestartCount"] == 2 && v["State"]["Status"] == "exited"
    });
    assert_eq!(b.inspect(&id)["State"]["ExitCode"], 1);
    assert_eq!(b.ok(&["logs", &id]), "run\nrun\nrun\n");
    // always + stop: stop wins.
    let id = run_d(
        &b,
        &[
            "--restart",
            "always",
            IMAGE,
            "sh",
            "-c",
            "sleep 0.2; exit 0",
        ],
    );
    b.wait_for(30, "a restart", || {
        b.inspect(&id)["RestartCount"].as_u64().unwrap() >= 1
    });
    b.ok(&["stop", "-t", "1", &id]);
    let s = status(&b, &id);
    assert_eq!(s, "exited");
    // What must not happen (a restart after the stop) would show within a few back-offs.
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(
        status(&b, &id),
        "exited",
        "a stopped container is not restarted"
    );
}

#[test]
fn health_check_becomes_healthy_or_unhealthy() {
    let b = Berth::new();
    let id = run_d(
        &b,
        &[
            "--health-cmd",
            "test -e /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            IMAGE,
            "sh",
            "-c",
            "touch /tmp/ok; sleep 100",
        ],
    );
    b.wait_for(30, "healthy", || {
        b.inspect(&id)["State"]["Health"]["Status"] == "healthy"
    });
    assert!(b.ok(&["ps"]).contains("(healthy)"));
    b.ok(&["exec", &id, "rm", "/tmp/ok"]);
    b.wait_for(30, "unhealthy", || {
        b.inspect(&id)["State"]["Health"]["Status"] == "unhealthy"
    });
    let v = b.inspect(&id);
    assert!(v["State"]["Health"]["FailingStreak"].as_u64().unwrap() >= 2);
    assert_ne!(
        v["State"]["Health"]["Log"][0]["ExitCode"],
        serde_json::json!(null)
    );
}

#[test]
fn exec_detached_with_a_terminal_keeps_running() {
    let b = Berth::new();
    let id = run_d(&b, &[IMAGE, "sleep", "100"]);
    // The process gets a terminal that stays up after exec returns (a holder process has the
    // master), and it runs to its end.
    b.ok(&[
        "exec",
        "-d",
        "-t",
        &id,
        "sh",
        "-c",
        "tty > /tmp/t; sleep 1; echo done > /tmp/d",
    ]);
    b.wait_for(30, "the detached process to finish", || {
        b.run(&["exec", &id, "cat", "/tmp/d"]).status.success()
    });
    let t = b.ok(&["exec", &id, "cat", "/tmp/t"]);
    assert!(t.starts_with("/dev/pts/"), "{t:?}");
    // Its console socket is gone from the container's directory.
    let dir = b.root.path().join("containers").join(&id);
    let socks: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("exec-"))
        .collect();
    assert!(socks.is_empty(), "{socks:?}");
}

#[test]
fn image_healthcheck_runs_and_flags_override_it() {
    let b = Berth::new();
    let image = "berth-test/healthy:latest";
    common::import_with_config(&b, image, |config| {
        config["Healthcheck"] = serde_json::json!({
            "Test": ["CMD-SHELL", "test -e /tmp/ok"],
            "Interval": 200_000_000u64,
            "Retries": 2,
        });
    });
    let run = |flags: &[&str]| {
        let mut a: Vec<&str> = flags.to_vec();
        a.extend([image, "sh", "-c", "touch /tmp/ok; sleep 100"]);
        run_d(&b, &a)
    };
    // The image's check alone: it runs (at the image's 200 ms interval) and turns healthy.
    let id = run(&[]);
    b.wait_for(30, "healthy from the image's HEALTHCHECK", || {
        b.inspect(&id)["State"]["Health"]["Status"] == "healthy"
    });
    let hc = &b.inspect(&id)["Config"]["Healthcheck"];
    assert_eq!(hc["Test"][1], "test -e /tmp/ok", "{hc}");
    assert_eq!(hc["Retries"], 2, "{hc}");
    // A flag replaces one field; the others still come from the image.
    let id = run(&["--health-retries", "5"]);
    let hc = &b.inspect(&id)["Config"]["Healthcheck"];
    assert_eq!(hc["Retries"], 5, "{hc}");
    assert_eq!(hc["Interval"], 200_000_000u64, "{hc}");
    // --no-healthcheck turns it off.
    let id = run(&["--no-healthcheck"]);
    // What must not happen (a probe at the image's 200 ms interval) would show within this.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let v = b.inspect(&id);
    assert_eq!(
        v["State"]["Health"],
        serde_json::Value::Null,
        "{}",
        v["State"]
    );
    assert_eq!(v["Config"]["Healthcheck"]["Test"][0], "NONE");
}

#[test]
fn memory_limit_oom_kill_is_reported() {
    let b = Berth::new();
    let o = b.run(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        "--memory-swap",
        "32m",
        IMAGE,
        "sh",
        "-c",
        "a=xxxxxxxxxxxxxxxx; while :; do a=$a$a; done",
    ]);
    assert_eq!(
        o.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = b.inspect("hog");
    assert_eq!(v["State"]["OOMKilled"], true);
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(v["HostConfig"]["Memory"], 32 << 20);
}

#[test]
fn rm_f_leaves_no_mount_cgroup_or_runtime_state() {
    let b = Berth::new();
    let id = run_d(&b, &[IMAGE, "sleep", "100"]);
    let rootfs = b.root.path().join("containers").join(&id).join("rootfs");
    assert_eq!(mounted_below(&rootfs).len(), 1);
    assert!(!cgroup_dirs(&id).is_empty(), "the container has a cgroup");
    assert!(b.root.path().join("runtime").join(&id).exists());
    b.ok(&["rm", "-f", &id]);
    assert!(
        mounted_below(b.root.path()).is_empty(),
        "{:?}",
        mounted_below(b.root.path())
    );
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(!b.root.path().join("runtime").join(&id).exists());
    assert!(!b.root.path().join("containers").join(&id).exists());
    assert!(
        !b.root
            .path()
            .join("snapshots/containers")
            .join(&id)
            .exists()
    );
    assert_eq!(b.run(&["inspect", &id]).status.code(), Some(1));
}

#[test]
fn killed_monitor_does_not_fool_ps() {
    let b = Berth::new();
    let id = run_d(&b, &[IMAGE, "sleep", "100"]);
    let state: serde_json::Value = serde_json::from_slice(
        &fs::read(b.root.path().join(format!("containers/{id}/state.json"))).unwrap(),
    )
    .unwrap();
    let monitor = state["MonitorPid"].as_i64().unwrap() as i32;
    let init = state["Pid"].as_i64().unwrap() as i32;
    // SAFETY: kill has no memory arguments; the pid is the monitor we started.
    assert_eq!(unsafe { libc::kill(monitor, libc::SIGKILL) }, 0);
    b.wait_for(10, "the monitor to die", || {
        fs::read_to_string(format!("/proc/{monitor}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    assert!(
        b.ok(&["ps"]).contains(" Up "),
        "the container itself still runs"
    );
    // SAFETY: as above, the container's init.
    unsafe { libc::kill(init, libc::SIGKILL) };
    b.wait_for(10, "ps to see it exited", || {
        b.ok(&["ps", "-a"]).contains("Exited (255)")
    });
    assert_eq!(b.ok(&["ps", "-q"]), "");
    b.ok(&["rm", &id]);
    assert!(mounted_below(b.root.path()).is_empty());
    assert!(cgroup_dirs(&id).is_empty());
}

#[test]
fn exec_it_has_our_terminal_and_detaches_with_the_keys() {
    let b = Berth::new();
    let id = run_d(&b, &[IMAGE, "sleep", "100"]);
    let berth = format!(
        "{} --root {} --runtime {}",
        common::berth_bin().display(),
        b.root.path().display(),
        common::runtime_bin().display()
    );
    let script = |cmd: String, input: &[u8]| {
        let mut child = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("script (util-linux)");
        let mut i = child.stdin.take().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        std::io::Write::write_all(&mut i, input).unwrap();
        (child, i)
    };
    // The process's terminal has our size from its first moment, and our input.
    let (child, i) = script(
        format!(
            "stty rows 33 cols 101; {berth} exec -it {id} sh -c 'test -t 0 && tty; stty size; \
             read x; echo got:$x; exit 4'"
        ),
        b"abc\n",
    );
    let o = child.wait_with_output().unwrap();
    drop(i);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("/dev/pts/"), "{s}");
    assert!(
        s.contains("33 101"),
        "the exec's terminal has our size: {s}"
    );
    assert!(s.contains("got:abc"), "{s}");
    assert_eq!(o.status.code(), Some(4), "{s}");
    // --detach-keys: berth returns, the process runs on to its end.
    let (mut child, i) = script(
        format!(
            "{berth} exec -it --detach-keys ctrl-x,x {id} sh -c 'sleep 1; echo done > /tmp/dk'"
        ),
        b"\x18x",
    );
    b.wait_for(10, "berth to detach", || {
        child.try_wait().unwrap().is_some()
    });
    drop(i);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    b.wait_for(10, "the detached process to finish", || {
        b.run(&["exec", &id, "cat", "/tmp/dk"]).status.success()
    });
    // Every exec's end is recorded, also that of the detached one: an exec_die per exec.
    let actions = || {
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        b.ok(&[
            "events",
            "--since",
            "0",
            "--until",
            &until.to_string(),
            "--filter",
            &format!("container={id}"),
            "--format",
            "{{.Action}}",
        ])
    };
    b.wait_for(10, "an exec_die per exec", || {
        let a = actions();
        let created = a.matches("exec_create").count();
        created >= 3 && a.matches("exec_die").count() == created
    });
}

/// `ps` filters with Docker's semantics, checked in the engine: before/since by container,
/// status implies -a, -n includes stopped ones, exited codes, volumes by name or destination,
/// networks, health, ancestor; bad filters are errors naming them; --size shows the virtual
/// size; CreatedAt is Docker's form.
#[test]
fn ps_filters_as_docker() {
    let b = Berth::new();
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        b.ok(&a).lines().map(str::to_string).collect::<Vec<_>>()
    };
    b.ok(&["create", "--name", "f1", "--network", "none", IMAGE, "true"]);
    b.ok(&[
        "create",
        "--name",
        "f2",
        "--network",
        "none",
        "-v",
        "fvol:/data",
        "--label",
        "k=v",
        IMAGE,
        "true",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "f3",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(b.ok(&["wait", "f3"]).trim(), "3");

    assert_eq!(names(&["-a"]), ["f3", "f2", "f1"]);
    assert_eq!(names(&["-a", "--filter", "before=f3"]), ["f2", "f1"]);
    assert_eq!(names(&["-a", "--filter", "since=f1"]), ["f3", "f2"]);
    assert!(names(&[]).is_empty(), "nothing runs");
    assert_eq!(names(&["--filter", "status=created"]), ["f2", "f1"]);
    assert_eq!(names(&["-n", "2"]), ["f3", "f2"]);
    assert_eq!(names(&["-l"]), ["f3"]);
    assert_eq!(names(&["-a", "--filter", "exited=3"]), ["f3"]);
    assert!(names(&["-a", "--filter", "exited=0"]).is_empty());
    assert_eq!(names(&["-a", "--filter", "volume=fvol"]), ["f2"]);
    assert_eq!(names(&["-a", "--filter", "volume=/data"]), ["f2"]);
    assert_eq!(names(&["-a", "--filter", "label=k"]), ["f2"]);
    assert_eq!(names(&["-a", "--filter", "network=none"]).len(), 3);
    assert!(names(&["-a", "--filter", "network=bridge"]).is_empty());
    assert_eq!(names(&["-a", "--filter", "health=none"]).len(), 3);
    assert_eq!(names(&["-a", "--filter", "ancestor="]).len(), 0);
    assert_eq!(
        names(&["-a", "--filter", &format!("ancestor={IMAGE}")]).len(),
        3
    );
    assert_eq!(
        names(&["-a", "--filter", "name=f", "--filter", "status=exited"]),
        ["f3"]
    );

    for (filter, want) in [
        ("status=bogus", "'status=bogus'"),
        ("colour=red", "\"colour\""),
        ("exited=x", "'exited=x'"),
        ("health=sick", "'health=sick'"),
        ("publish=1.2.3.4:80", "'publish=1.2.3.4:80'"),
    ] {
        let o = b.run(&["ps", "--filter", filter]);
        assert_eq!(o.status.code(), Some(125), "{filter}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{filter}: {err}");
    }
    let o = b.run(&["ps", "--filter", "before=nosuch"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nosuch"));

    let size = b.ok(&[
        "ps",
        "-a",
        "-s",
        "--filter",
        "name=f1",
        "--format",
        "{{.Size}}",
    ]);
    assert!(size.contains("(virtual ") && size.contains("MB)"), "{size}");
    let j: serde_json::Value =
        serde_json::from_str(b.ok(&["ps", "-l", "--format", "json"]).trim()).unwrap();
    assert!(
        j["CreatedAt"].as_str().unwrap().ends_with(" +0000 UTC"),
        "{j}"
    );
    assert_eq!(j["Networks"], "none");
    assert!(
        j["Status"].as_str().unwrap().starts_with("Exited (3) "),
        "{j}"
    );
}
