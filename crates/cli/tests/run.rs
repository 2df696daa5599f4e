//! `berth run` in the foreground: output, exit statuses, the config from image and flags,
//! users, read-only rootfs, networks, stdin and terminals. Real containers; needs root.

mod common;

use common::{Berth, IMAGE};

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_rm_echo_prints_and_leaves_nothing() {
    let b = Berth::new();
    let o = b.run(&["run", "--rm", IMAGE, "echo", "hi"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "hi\n");
    assert!(b.container_ids().is_empty(), "--rm left a container");
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}

#[test]
fn exit_statuses_propagate_like_docker() {
    let b = Berth::new();
    let o = b.run(&["run", "--rm", IMAGE, "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    let o = b.run(&["run", "--rm", IMAGE, "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", err(&o));
    assert!(err(&o).contains("no-such-command"), "{}", err(&o));
    let o = b.run(&["run", "--rm", IMAGE, "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "{}", err(&o));
    let o = b.run(&["run", "--rm", "--pull", "never", "no/such-image"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        err(&o).contains("image not found: no/such-image"),
        "{}",
        err(&o)
    );
    let o = b.run(&["run", "--rm", "--memory", "lots", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    // Killed by a signal: 128 + n (pid 1 cannot get SIGKILL from inside, so under --init).
    let o = b.run(&["run", "--rm", "--init", IMAGE, "sh", "-c", "kill -9 $$"]);
    assert_eq!(o.status.code(), Some(137));
    b.wait_for(10, "--rm cleanup", || b.container_ids().is_empty());
}

#[test]
fn config_from_image_and_flags() {
    let b = Berth::new();
    // Image Env, WorkingDir and Cmd; -e overrides; HOSTNAME is the short ID.
    let o = b.ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-e",
        "IMAGE_VAR=over",
        IMAGE,
        "sh",
        "-c",
        "echo $A $IMAGE_VAR $PWD $HOME",
    ]);
    assert_eq!(o, "1 over /work /root\n");
    let o = b.ok(&[
        "run",
        "--rm",
        "-w",
        "/tmp/new",
        "-h",
        "box",
        IMAGE,
        "sh",
        "-c",
        "pwd; hostname; cat /etc/hostname",
    ]);
    assert_eq!(o, "/tmp/new\nbox\nbox\n");
    let o = b.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        IMAGE,
        "from",
        "entrypoint",
    ]);
    assert_eq!(o, "from entrypoint\n");
    let envfile = b.root.path().join("env.list");
    std::fs::write(&envfile, "# comment\nFROM_FILE=yes\n").unwrap();
    let o = b.ok(&[
        "run",
        "--rm",
        "--env-file",
        envfile.to_str().unwrap(),
        IMAGE,
        "sh",
        "-c",
        "echo $FROM_FILE",
    ]);
    assert_eq!(o, "yes\n");
    // Docker's default capabilities: no CAP_SYS_ADMIN (bit 21) unless added.
    let caps = |extra: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[IMAGE, "sh", "-c", "grep CapEff /proc/self/status"]);
        let s = b.ok(&a);
        u64::from_str_radix(s.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(caps(&[]) & (1 << 21), 0);
    assert_ne!(caps(&["--cap-add", "SYS_ADMIN"]) & (1 << 21), 0);
    assert_eq!(caps(&["--cap-drop", "ALL"]), 0);
    // The seccomp profile follows the capabilities, as Docker's does: with CAP_SYS_ADMIN, mount(2)
    // gets through (without it seccomp refuses it with EPERM before the capability check).
    let mount = |extra: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[
            IMAGE,
            "sh",
            "-c",
            "mkdir -p /m && mount -t tmpfs none /m && echo mounted",
        ]);
        b.run(&a)
    };
    let o = mount(&["--cap-add", "SYS_ADMIN"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "mounted\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!mount(&[]).status.success());
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = own
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    assert_eq!(
        caps(&["--privileged"]),
        u64::from_str_radix(bounding, 16).unwrap()
    );
    // Seccomp on by default, off with seccomp=unconfined.
    let seccomp = |extra: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[IMAGE, "sh", "-c", "grep Seccomp: /proc/self/status"]);
        b.ok(&a)
    };
    assert!(seccomp(&[]).contains('2'));
    assert!(seccomp(&["--security-opt", "seccomp=unconfined"]).contains('0'));
    assert!(seccomp(&["--privileged"]).contains('0'));
    let o = b.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        IMAGE,
        "sh",
        "-c",
        "grep NoNewPrivs /proc/self/status",
    ]);
    assert!(o.contains('1'), "{o}");
    let o = b.ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=123:456",
        IMAGE,
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(o, "123\n456\n");
    let o = b.ok(&[
        "run",
        "--rm",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        IMAGE,
        "true",
    ]);
    assert_eq!(o, "");
}

#[test]
fn users_resolve_against_the_image() {
    let b = Berth::new();
    let o = b.ok(&["run", "--rm", "-u", "1000:1000", IMAGE, "id"]);
    assert_eq!(o.trim(), "uid=1000(user) gid=1000(user)");
    let o = b.ok(&[
        "run",
        "--rm",
        "-u",
        "user",
        IMAGE,
        "sh",
        "-c",
        "id; echo $HOME",
    ]);
    assert_eq!(
        o,
        "uid=1000(user) gid=1000(user) groups=50(staff)\n/home/user\n"
    );
    let o = b.ok(&["run", "--rm", "-u", "4242", IMAGE, "id"]);
    assert_eq!(o.trim(), "uid=4242 gid=0(root)");
    let o = b.run(&["run", "--rm", "-u", "nosuchuser", IMAGE, "id"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        err(&o).contains("unable to find user nosuchuser"),
        "{}",
        err(&o)
    );
}

#[test]
fn dockers_masked_paths_hide_what_leaks_about_the_host() {
    // /proc/interrupts (GHSA-6fw5-f8r9-fgfm) has content on every host; masked, it reads empty.
    assert!(std::fs::metadata("/proc/interrupts").is_ok());
    let b = Berth::new();
    let o = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "wc -c < /proc/interrupts; wc -c < /proc/keys; ls /sys/firmware | wc -l",
    ]);
    assert_eq!(
        o.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "0"],
        "{o}"
    );
}

#[test]
fn read_only_rootfs_refuses_writes() {
    let b = Berth::new();
    let o = b.run(&["run", "--rm", "--read-only", IMAGE, "touch", "/x"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(err(&o).contains("Read-only file system"), "{}", err(&o));
    // A tmpfs stays writable.
    let o = b.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        IMAGE,
        "sh",
        "-c",
        "touch /scratch/x && echo ok",
    ]);
    assert_eq!(o, "ok\n");
    let o = b.ok(&["run", "--rm", IMAGE, "sh", "-c", "touch /x && echo ok"]);
    assert_eq!(o, "ok\n");
}

#[test]
fn network_none_has_only_loopback_and_host_shares() {
    let b = Berth::new();
    let o = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    ]);
    assert_eq!(o, "lo\n");
    let o = b.ok(&["run", "--rm", IMAGE, "cat", "/sys/class/net/lo/operstate"]);
    assert_ne!(o.trim(), "down", "lo is up");
    // The host's network namespace itself (interface counts change while other tests run).
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let o = b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        IMAGE,
        "readlink",
        "/proc/self/ns/net",
    ]);
    assert_eq!(o.trim(), host_ns.to_str().unwrap());
    let o = b.ok(&["run", "--rm", IMAGE, "cat", "/etc/hosts"]);
    assert!(o.contains("localhost"), "{o}");
}

#[test]
fn stdin_with_i_and_a_terminal_with_t() {
    let b = Berth::new();
    let o = b.run_input(
        &["run", "--rm", "-i", IMAGE, "sh", "-c", "cat; echo done"],
        b"hello\n",
    );
    assert_eq!(out(&o), "hello\ndone\n", "{}", err(&o));
    // Without -t there is no terminal.
    let o = b.run_input(
        &[
            "run",
            "--rm",
            "-i",
            IMAGE,
            "sh",
            "-c",
            "test -t 0 || echo notty",
        ],
        b"",
    );
    assert_eq!(out(&o), "notty\n");
    // -it under a pty made by script(1): the container sees a terminal and our input.
    let cmd = format!(
        "stty rows 33 cols 101; {} --root {} --runtime {} run --rm -it {IMAGE} sh -c 'test -t 0 && tty; stty size; read x; echo got:$x'",
        common::berth_bin().display(),
        b.root.path().display(),
        common::runtime_bin().display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    // What the terminal shows, as it comes.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        // Typed once the container has printed its size: berth's terminal is set up by then
        // (typed earlier, it could be flushed when the terminal is put in raw mode).
        let shows = |text: &str| {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while std::time::Instant::now() < until {
                if seen.lock().unwrap().contains(text) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            panic!(
                "the terminal never showed {text:?}; it showed: {:?}",
                seen.lock().unwrap()
            );
        };
        shows("33 101");
        i.write_all(b"abc\n").unwrap();
        shows("got:abc");
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success());
    let s = seen.lock().unwrap().clone();
    assert!(s.contains("/dev/pts/"), "{s}");
    assert!(s.contains("got:abc"), "{s}");
    assert!(
        s.contains("33 101"),
        "the container's terminal has our size: {s}"
    );
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn init_runs_as_pid_one() {
    let b = Berth::new();
    let o = b.ok(&[
        "run",
        "--rm",
        "--init",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert!(o.starts_with("/sbin/docker-init -- sh"), "{o}");
}

#[test]
fn foreground_run_forwards_sigint_and_survives_the_cli() {
    let b = Berth::new();
    let child = b
        .cmd()
        .args([
            "run",
            "--name",
            "fg",
            IMAGE,
            "sh",
            "-c",
            "trap 'echo got INT; exit 9' INT; echo ready; while :; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    b.wait_for(10, "the container to run", || {
        b.ok(&["ps", "--format", "{{.Names}} {{.State}}"])
            .contains("fg running")
    });
    b.wait_for(10, "ready", || b.ok(&["logs", "fg"]).contains("ready"));
    // SAFETY: kill has no memory arguments; the pid is our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(9));
    assert_eq!(out(&o), "ready\ngot INT\n");
    // A detached container outlives the command that started it; a foreground one outlives a
    // killed CLI.
    let mut child = b
        .cmd()
        .args(["run", "--name", "orphan", IMAGE, "sleep", "100"])
        .spawn()
        .unwrap();
    b.wait_for(10, "the container to run", || {
        b.ok(&["ps", "--format", "{{.Names}} {{.State}}"])
            .contains("orphan running")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // What must not happen (the container dying with its client) would show within this.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        b.ok(&["ps", "--format", "{{.Names}} {{.State}}"])
            .contains("orphan running")
    );
    let id = b.ok(&["ps", "-q", "--no-trunc", "--filter", "name=orphan"]);
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            b.root
                .path()
                .join(format!("containers/{}/state.json", id.trim())),
        )
        .unwrap(),
    )
    .unwrap();
    let monitor = state["MonitorPid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{monitor}/stat")).unwrap();
    assert!(!stat.contains(") Z "), "the monitor outlives its client");
}

#[test]
fn ctrl_p_ctrl_q_detaches_from_a_terminal() {
    let b = Berth::new();
    let cmd = format!(
        "{} --root {} --runtime {} run -it --name det {IMAGE} sleep 100",
        common::berth_bin().display(),
        b.root.path().display(),
        common::runtime_bin().display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("script (util-linux)");
    b.wait_for(10, "the container to run", || {
        b.ok(&["ps", "--format", "{{.Names}} {{.State}}"])
            .contains("det running")
    });
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        // Until berth has its terminal in raw mode, the line discipline keeps ^P and eats ^Q
        // (IXON): the keys are typed again until berth detaches.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < until, "berth did not detach");
            i.write_all(b"\x10\x11").unwrap();
            let again = std::time::Instant::now() + std::time::Duration::from_secs(1);
            while child.try_wait().unwrap().is_none() && std::time::Instant::now() < again {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(
        b.ok(&["ps", "--format", "{{.Names}} {{.State}}"])
            .contains("det running")
    );
}

/// The client's part of a create is done by the client, with Docker's semantics: `-e VAR`
/// unset on the client removes the image's VAR, `-e VAR` set takes the client's value, a
/// relative `-v ./dir` is the client's working directory's; and inspect shows Docker's typed
/// shapes (`HostConfig.Mounts` objects, `Config.Volumes` for `-v /path`).
#[test]
fn the_create_request_is_dockers_typed_shapes() {
    let b = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/f"), "relative\n").unwrap();
    let o = b
        .cmd()
        .current_dir(dir.path())
        .env_remove("IMAGE_VAR")
        .env("FROM_CLIENT", "client")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "-e",
            "IMAGE_VAR",
            "-e",
            "FROM_CLIENT",
            "-v",
            "./sub:/rel",
            IMAGE,
            "sh",
            "-c",
            "echo ${IMAGE_VAR-removed} $FROM_CLIENT; cat /rel/f",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "removed client\nrelative\n");
    let id = b
        .ok(&[
            "create",
            "--network",
            "none",
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
            "-v",
            "/anon",
            IMAGE,
            "true",
        ])
        .trim()
        .to_string();
    let v = b.inspect(&id);
    let m = &v["HostConfig"]["Mounts"][0];
    assert_eq!(m["Type"], "tmpfs", "{v}");
    assert_eq!(m["Target"], "/t", "{v}");
    assert_eq!(m["TmpfsOptions"]["SizeBytes"], 1 << 20, "{v}");
    assert_eq!(m["TmpfsOptions"]["Mode"], 0o1770, "{v}");
    assert!(v["Config"]["Volumes"]["/anon"].is_object(), "{v}");
    let kinds: Vec<&str> = v["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["tmpfs", "volume"], "{v}");
    b.ok(&["rm", "-v", &id]);
    // A relative host path that does not start with `.` is a volume name, and not a valid one.
    let o = b.run(&["run", "--rm", "-v", "a/b:/x", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("not a valid volume name"), "{}", err(&o));
}
