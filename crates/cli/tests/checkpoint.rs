//! Checkpoint and restore through berth (CRIU >= 4.2, scripts/install-criu.sh): Docker's
//! `checkpoint create|ls|rm` and `start --checkpoint`, podman's `container
//! checkpoint|restore` with `--export`/`--import` into another root, `migrate` between roots,
//! and failures half-way that leave the source running. Needs root.

mod common;

use std::time::Duration;

use common::{Berth, IMAGE, mounted_below, stderr};

/// The last number the container wrote into its volume (0 if none yet).
fn count(b: &Berth, c: &str) -> u64 {
    let o = b.run(&["exec", c, "cat", "/data/count"]);
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The counts in the container's log, in order.
fn logged(b: &Berth, c: &str) -> Vec<u64> {
    b.ok(&["logs", c])
        .lines()
        .filter_map(|l| l.strip_prefix("n=")?.parse().ok())
        .collect()
}

/// A container counting into its log and its volume every 50 ms, after changing its rootfs.
fn counter(b: &Berth, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none", "-v"];
    let vol = format!("{name}-data:/data");
    args.push(&vol);
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        IMAGE,
        "sh",
        "-c",
        "echo changed > /etc/motd; rm /bin/true; i=0; \
         while :; do i=$((i+1)); echo $i > /data/count; echo n=$i; sleep 0.05; done",
    ]);
    let id = b.ok(&args).trim().to_string();
    b.wait_for(10, "the counter to count", || count(b, name) >= 5);
    id
}

fn status(b: &Berth, c: &str) -> String {
    b.inspect(c)["State"]["Status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The log's counts go on by one from the first to the last: the count was never restarted.
fn assert_one_count(v: &[u64]) {
    assert!(
        v.windows(2).all(|w| w[1] == w[0] + 1),
        "the count restarted or jumped: {v:?}"
    );
}

#[test]
fn checkpoint_create_ls_rm_and_start_from_it() {
    let b = Berth::new();
    counter(&b, "ck1", &["--restart", "always"]);
    assert_eq!(
        b.ok(&["checkpoint", "create", "ck1", "first"]).trim(),
        "first"
    );
    // Stopped by the checkpoint, and its restart policy does not start it again.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&b, "ck1"), "exited");
    let at = *logged(&b, "ck1").last().unwrap();
    let ls = b.ok(&["checkpoint", "ls", "ck1"]);
    assert_eq!(ls, "CHECKPOINT NAME\nfirst\n");
    // A second checkpoint of that name, or of a stopped container, is refused.
    let o = b.run(&["checkpoint", "create", "ck1", "second"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("only a running container"),
        "{}",
        stderr(&o)
    );

    b.ok(&["start", "--checkpoint", "first", "ck1"]);
    assert_eq!(status(&b, "ck1"), "running");
    b.wait_for(10, "the restored counter to count on", || {
        logged(&b, "ck1").last().is_some_and(|n| *n > at + 5)
    });
    let v = logged(&b, "ck1");
    assert_one_count(&v);
    assert!(
        v.contains(&(at + 1)),
        "count {} missing after restore: {v:?}",
        at + 1
    );
    // The rootfs change and the volume are the same.
    assert_eq!(b.ok(&["exec", "ck1", "cat", "/etc/motd"]), "changed\n");
    b.wait_for(10, "the volume's count to go on", || count(&b, "ck1") > at);
    // The checkpoint stays (as Docker's) until removed.
    let o = b.run(&["checkpoint", "create", "ck1", "first"]);
    assert!(
        stderr(&o).contains("already has a checkpoint named"),
        "{}",
        stderr(&o)
    );
    b.ok(&["checkpoint", "rm", "ck1", "first"]);
    assert_eq!(b.ok(&["checkpoint", "ls", "ck1"]), "CHECKPOINT NAME\n");
    let o = b.run(&["start", "--checkpoint", "first", "ck1"]);
    assert!(
        stderr(&o).contains("no checkpoint named \"first\""),
        "{}",
        stderr(&o)
    );

    // --leave-running: a checkpoint of a running container that goes on.
    assert_eq!(
        b.ok(&["checkpoint", "create", "--leave-running", "ck1", "live"])
            .trim(),
        "live"
    );
    assert_eq!(status(&b, "ck1"), "running");
    let n = count(&b, "ck1");
    b.wait_for(10, "counting after --leave-running", || {
        count(&b, "ck1") > n + 3
    });
    let ev = b.ok(&[
        "events",
        "--since",
        "5m",
        "--until",
        "0s",
        "--filter",
        "container=ck1",
        "--format",
        "{{.Action}}",
    ]);
    assert!(ev.lines().any(|l| l == "checkpoint"), "{ev}");
    assert!(ev.lines().any(|l| l == "restore"), "{ev}");
}

#[test]
fn podman_syntax_export_and_import_into_another_root() {
    let b = Berth::new();
    let id = counter(&b, "pm1", &[]);
    let file = b.root.path().join("pm1.tar");
    let f = file.to_str().unwrap();
    assert_eq!(
        b.ok(&["container", "checkpoint", "--export", f, "pm1"])
            .trim(),
        id
    );
    assert_eq!(status(&b, "pm1"), "exited");
    let at = *logged(&b, "pm1").last().unwrap();
    // podman's layout.
    let list = std::process::Command::new("tar")
        .args(["-tf", f])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for want in [
        "checkpoint/inventory.img",
        "config.dump",
        "spec.dump",
        "network.status",
        "rootfs-diff.tar",
        "deleted.files",
        "volumes/pm1-data.tar",
    ] {
        assert!(
            list.lines().any(|l| l.trim_start_matches("./") == want),
            "{want} not in:\n{list}"
        );
    }

    let b2 = Berth::new();
    let new = b2.ok(&["container", "restore", "--import", f, "--name", "moved"]);
    let new = new.trim();
    assert_eq!(status(&b2, "moved"), "running");
    assert_eq!(b2.inspect("moved")["Id"], new);
    b2.wait_for(10, "the imported counter to count on", || {
        count(&b2, "moved") > at + 5
    });
    // Its rootfs changes (a new file, a deleted one) and its volume came along.
    assert_eq!(b2.ok(&["exec", "moved", "cat", "/etc/motd"]), "changed\n");
    let o = b2.run(&["exec", "moved", "ls", "/bin/true"]);
    assert!(
        !o.status.success(),
        "/bin/true was deleted before the checkpoint"
    );
    let v: Vec<u64> = b2
        .ok(&["exec", "moved", "cat", "/data/count"])
        .trim()
        .parse()
        .into_iter()
        .collect();
    assert!(v[0] > at);

    // In place: checkpoint, restore (the checkpoint goes once restored, unless --keep).
    b.ok(&["rm", "-f", "pm1"]);
    counter(&b, "pm2", &[]);
    b.ok(&["container", "checkpoint", "pm2"]);
    let at = *logged(&b, "pm2").last().unwrap();
    b.ok(&["container", "restore", "pm2"]);
    b.wait_for(10, "pm2 to count on", || {
        logged(&b, "pm2").last().is_some_and(|n| *n > at + 3)
    });
    assert_one_count(&logged(&b, "pm2"));
    let o = b.run(&["container", "restore", "pm2"]);
    assert!(!o.status.success());
    // A file that is not an archive is named as such, and leaves no container.
    let bad = b.root.path().join("bad.tar");
    std::fs::write(&bad, b"nonsense").unwrap();
    let o = b2.run(&["container", "restore", "--import", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("not a checkpoint archive"),
        "{}",
        stderr(&o)
    );
    assert_eq!(b2.container_ids().len(), 1);
}

#[test]
fn migrate_between_roots_keeps_the_count_and_frees_the_source() {
    let b = Berth::new();
    let old = counter(&b, "mig", &[]);
    let dest = Berth::new();
    let o = b.run(&["migrate", "mig", dest.root.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let frozen: f64 = err
        .split("frozen for ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no frozen time in {err:?}"));
    assert!(frozen > 0.0);
    // The source is gone: no container, mount or cgroup of it.
    assert!(b.container_ids().is_empty(), "{:?}", b.container_ids());
    assert!(
        mounted_below(b.root.path()).is_empty(),
        "{:?}",
        mounted_below(b.root.path())
    );
    assert!(
        common::cgroup_dirs(&old).is_empty(),
        "{:?}",
        common::cgroup_dirs(&old)
    );
    // It counts on at the destination, from where it was.
    assert_eq!(status(&dest, "mig"), "running");
    let n = count(&dest, "mig");
    dest.wait_for(10, "the migrated counter to count on", || {
        count(&dest, "mig") > n + 3
    });
    let v = logged(&dest, "mig");
    assert!(
        v.first().is_some_and(|f| *f > 5),
        "the count started again: {v:?}"
    );
    assert_one_count(&v);
}

#[test]
fn failures_half_way_leave_the_source_running() {
    let b = Berth::new();
    // An established TCP connection inside the container: CRIU refuses it without
    // --tcp-established, and the container runs on, its restart policy intact.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "tcp",
        "--network",
        "none",
        "--restart",
        "always",
        IMAGE,
        "sh",
        "-c",
        "sleep 1000 | nc -l -p 5000 > /tmp/got & sleep 0.3; \
         i=0; while :; do i=$((i+1)); echo line$i; sleep 0.05; done | nc 127.0.0.1 5000",
    ]);
    let lines = |b: &Berth| {
        String::from_utf8_lossy(&b.run(&["exec", "tcp", "cat", "/tmp/got"]).stdout)
            .lines()
            .count()
    };
    b.wait_for(10, "data over the connection", || lines(&b) >= 3);
    let o = b.run(&["checkpoint", "create", "tcp", "c1"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("tcp-established"), "{}", stderr(&o));
    assert_eq!(status(&b, "tcp"), "running");
    let n = lines(&b);
    b.wait_for(10, "the connection to carry on", || lines(&b) > n + 2);
    assert_eq!(b.ok(&["checkpoint", "ls", "tcp"]), "CHECKPOINT NAME\n");
    // With the flag the connection survives the checkpoint and restore.
    b.ok(&["checkpoint", "create", "--tcp-established", "tcp", "c2"]);
    b.ok(&["start", "--checkpoint", "c2", "tcp"]);
    let n = lines(&b);
    b.wait_for(10, "the restored connection to carry on", || {
        lines(&b) > n + 3
    });

    // A migration whose destination refuses the container (its name is taken there): the
    // source is thawed and counts on, and the destination keeps nothing new.
    counter(&b, "stay", &[]);
    let dest = Berth::new();
    dest.ok(&["create", "--name", "stay", IMAGE, "true"]);
    let o = b.run(&["migrate", "stay", dest.root.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    assert_eq!(status(&b, "stay"), "running");
    let n = count(&b, "stay");
    b.wait_for(10, "the source to count on", || count(&b, "stay") > n + 3);
    assert_eq!(dest.container_ids().len(), 1);
    assert_eq!(b.ok(&["checkpoint", "ls", "stay"]), "CHECKPOINT NAME\n");
}

#[test]
fn migrate_to_a_remote_berth_serve_over_its_api() {
    let b = Berth::new();
    let old = counter(&b, "far", &[]);
    let server = common::serve::Server::start(&[]);
    // The destination lacks the image: it goes through /images/load first.
    server.berth.ok(&["rmi", IMAGE]);
    let dest = format!("unix://{}", server.sock.display());
    let o = b.run(&["migrate", "far", &dest]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("frozen for "), "{}", stderr(&o));
    let new = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        b.container_ids().is_empty(),
        "the source is left: {:?}",
        b.container_ids()
    );
    assert!(common::cgroup_dirs(&old).is_empty());
    // The server runs it: its API and its root see it counting on.
    let (code, body) = server.request("GET", "/containers/far/json", None);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Id"], new.as_str());
    assert_eq!(v["State"]["Status"], "running");
    let n = count(&server.berth, "far");
    server
        .berth
        .wait_for(10, "the migrated counter to count on", || {
            count(&server.berth, "far") > n + 3
        });
    assert_one_count(&logged(&server.berth, "far"));
    // A destination that is not there is named, and the source runs on.
    counter(&b, "near", &[]);
    let o = b.run(&["migrate", "near", "unix:///nonexistent/berth.sock"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("/nonexistent/berth.sock"),
        "{}",
        stderr(&o)
    );
    assert_eq!(status(&b, "near"), "running");
    // Docker's checkpoint endpoints on the server.
    let (code, body) = server.request(
        "POST",
        "/containers/far/checkpoints",
        Some(r#"{"CheckpointID":"api1","Exit":false}"#),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = server.request("GET", "/containers/far/checkpoints", None);
    assert_eq!((code, body.trim()), (200, r#"[{"Name":"api1"}]"#));
    let (code, _) = server.request("DELETE", "/containers/far/checkpoints/api1", None);
    assert_eq!(code, 204);
}

/// The container's IP address on its network, from inspect.
fn ip_on(b: &Berth, c: &str, net: &str) -> String {
    b.inspect(c)["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn an_import_keeps_the_address_and_an_established_tcp_connection() {
    use std::io::{BufRead, BufReader, Write};
    let b = Berth::new();
    b.ok(&["network", "create", "keep"]);
    // The first address goes to a container that leaves before the import: a new container
    // would get it then.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "keep",
        IMAGE,
        "sleep",
        "60",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "echo",
        "--network",
        "keep",
        IMAGE,
        "nc",
        "-l",
        "-p",
        "7000",
        "-e",
        "/bin/cat",
    ]);
    let ip = ip_on(&b, "echo", "keep");
    let mac = b.inspect("echo")["NetworkSettings"]["Networks"]["keep"]["MacAddress"].clone();
    assert!(!ip.is_empty(), "{}", b.inspect("echo"));
    let mut conn = None;
    b.wait_for(10, "the echo server to accept", || {
        conn = std::net::TcpStream::connect((ip.as_str(), 7000)).ok();
        conn.is_some()
    });
    let conn = conn.unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rd = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    let mut echo = |w: &str, line: &mut String| {
        (&conn).write_all(format!("{w}\n").as_bytes()).unwrap();
        line.clear();
        rd.read_line(line).unwrap();
    };
    echo("before", &mut line);
    assert_eq!(line, "before\n");

    let file = b.root.path().join("echo.tar");
    let f = file.to_str().unwrap();
    let export_echo = || {
        b.ok(&[
            "container",
            "checkpoint",
            "--tcp-established",
            "--export",
            f,
            "echo",
        ])
    };
    export_echo();
    // network.status in podman's layout names the address.
    let o = std::process::Command::new("tar")
        .args(["-xOf", f, "network.status"])
        .output()
        .unwrap();
    let net_status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        net_status["keep"]["interfaces"]["eth0"]["subnets"][0]["ipnet"]
            .as_str()
            .and_then(|s| s.split('/').next()),
        Some(ip.as_str()),
        "{net_status}"
    );
    let freed = ip_on(&b, "first", "keep");
    b.ok(&["rm", "-f", "echo", "first"]);
    b.ok(&["run", "--rm", "--network", "keep", IMAGE, "true"]); // would get `freed`
    assert_ne!(freed, ip);
    b.ok(&["container", "restore", "--tcp-established", "--import", f]);
    assert_eq!(status(&b, "echo"), "running");
    assert_eq!(ip_on(&b, "echo", "keep"), ip);
    assert_eq!(
        b.inspect("echo")["NetworkSettings"]["Networks"]["keep"]["MacAddress"],
        mac
    );
    // The connection made before the checkpoint goes on.
    echo("after", &mut line);
    assert_eq!(line, "after\n");

    // Where the address is taken, the established connection cannot come along: the error
    // says why, and nothing is left.
    export_echo();
    b.ok(&["rm", "-f", "echo"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "squatter",
        "--network",
        "keep",
        "--ip",
        &ip,
        IMAGE,
        "sleep",
        "60",
    ]);
    let before = b.container_ids();
    let o = b.run(&["container", "restore", "--import", f]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains(&format!(
            "established TCP connections need its address {ip}"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(b.container_ids(), before);
    // Without connections, the import gets a new address rather than failing.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "idle",
        "--network",
        "keep",
        IMAGE,
        "sleep",
        "60",
    ]);
    let idle_ip = ip_on(&b, "idle", "keep");
    b.ok(&["container", "checkpoint", "--export", f, "idle"]);
    b.ok(&["rm", "-f", "idle"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "squatter2",
        "--network",
        "keep",
        "--ip",
        &idle_ip,
        IMAGE,
        "sleep",
        "60",
    ]);
    b.ok(&["container", "restore", "--import", f, "--name", "idle2"]);
    assert_eq!(status(&b, "idle2"), "running");
    let new = ip_on(&b, "idle2", "keep");
    assert!(!new.is_empty() && new != idle_ip, "{new}");
    b.ok(&["rm", "-f", "idle2", "squatter", "squatter2"]);
    b.ok(&["network", "rm", "keep"]);
}
