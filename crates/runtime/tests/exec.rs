//! `exec`: running another process in a container, as `runc exec` does: its exit status and
//! output, the namespaces, cgroup, root and hostname it shares with the container, the flags
//! that change the process, and the errors.

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Bundle, Out, WAIT, wait_until};
use serde_json::json;

/// Namespaces an exec'd process must share with the container's init.
const NAMESPACES: &[&str] = &["ipc", "mnt", "net", "pid", "uts", "cgroup", "user"];

/// Start the default container as `sleep 100` with `run --detach`; its init's pid.
fn sleeper(b: &mut Bundle) -> i32 {
    b.args(&["sleep", "100"]);
    b.save();
    let id = b.id.clone();
    b.rt(&[
        "run",
        "--detach",
        "--bundle",
        b.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    b.wait_status(&id, "running");
    b.pid(&id)
}

/// `exec ARGS...` in the default container (flags go before the ID, the command after).
fn exec(b: &Bundle, flags: &[&str], cmd: &[&str]) -> Out {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.push(&b.id);
    args.extend_from_slice(cmd);
    b.rt(&args)
}

/// The value of a field of /proc/PID/status ("self" for the reader).
fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
        .to_string()
}

/// /proc/PID/status of a host process.
fn host_status(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

/// The namespace link of `ns` for a host process, e.g. "uts:[4026531838]".
fn ns_link(pid: i32, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

/// Read a pid file written by the runtime.
fn read_pid(path: &std::path::Path) -> i32 {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad pid file {text:?}"))
}

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

#[test]
fn exit_status_and_output_are_passed_through() {
    let mut b = Bundle::new("exec-status");
    sleeper(&mut b);
    let out = exec(&b, &[], &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    assert_eq!(exec(&b, &[], &["true"]).ok().stdout, "");
    let out = exec(&b, &[], &["false"]);
    assert_eq!(out.code, 1, "{out:?}");
}

#[test]
fn killed_by_a_signal_is_128_plus_n() {
    let mut b = Bundle::new("exec-signal");
    sleeper(&mut b);
    let out = exec(&b, &[], &["sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code, 137, "{out:?}");
}

#[test]
fn exec_is_in_every_namespace_of_the_container() {
    let mut b = Bundle::new("exec-ns");
    let init = sleeper(&mut b);
    let script = NAMESPACES
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n};"))
        .collect::<String>();
    let out = exec(&b, &[], &["sh", "-c", &script]).ok();
    let want: String = NAMESPACES.iter().map(|n| ns_link(init, n) + "\n").collect();
    assert_eq!(out.stdout, want);
    // The container has its own pid namespace: the exec'd process is not pid 1, but sees it.
    let out = exec(&b, &[], &["sh", "-c", "echo $$; cat /proc/1/cmdline"]).ok();
    let mut lines = out.stdout.lines();
    assert_ne!(lines.next(), Some("1"), "{out:?}");
    assert_eq!(lines.next(), Some("sleep\x00100\0"), "{out:?}");
}

#[test]
fn exec_sees_the_container_root_and_hostname() {
    let mut b = Bundle::new("exec-root");
    b.cfg["hostname"] = json!("exec-host");
    fs::write(b.rootfs.join("marker"), "in the rootfs\n").unwrap();
    sleeper(&mut b);
    let out = exec(&b, &[], &["sh", "-c", "cat /marker; hostname; pwd"]).ok();
    assert_eq!(out.stdout, "in the rootfs\nexec-host\n/\n");
    // The host's root is not visible.
    let out = exec(&b, &[], &["ls", b.dir.to_str().unwrap()]).failed();
    assert!(out.stderr.contains("No such file"), "{out:?}");
}

#[test]
fn detached_exec_writes_a_live_pid_in_the_container_and_its_cgroup() {
    let mut b = Bundle::new("exec-detach");
    let init = sleeper(&mut b);
    let pid_file = b.dir.join("exec.pid");
    let out = exec(
        &b,
        &["--detach", "--pid-file", pid_file.to_str().unwrap()],
        &["sleep", "50"],
    )
    .ok();
    assert_eq!(out.stdout, "", "{out:?}");
    let pid = read_pid(&pid_file);
    assert_ne!(pid, init);
    assert!(alive(pid), "the exec'd process {pid} is not running");
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap(),
        "sleep\x0050\0"
    );
    assert_eq!(ns_link(pid, "pid"), ns_link(init, "pid"));
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap(),
        "the exec'd process is not in the container's cgroup"
    );
    // It is one of the container's processes, and goes with it.
    let ps = b.rt(&["ps", "--format", "json", &b.id]).ok();
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
    assert!(pids.contains(&pid), "{pids:?}");
    b.rt(&["delete", "--force", &b.id]).ok();
    assert!(
        wait_until(WAIT, || !alive(pid)),
        "{pid} outlived its container"
    );
}

#[test]
fn env_adds_to_the_containers_env() {
    let mut b = Bundle::new("exec-env");
    b.cfg["process"]["env"]
        .as_array_mut()
        .unwrap()
        .extend([json!("FROM_CONFIG=1"), json!("OVERRIDDEN=config")]);
    sleeper(&mut b);
    let out = exec(
        &b,
        &["--env", "ADDED=two words", "-e", "OVERRIDDEN=flag"],
        &["env"],
    )
    .ok();
    let env: Vec<&str> = out.stdout.lines().collect();
    for want in [
        "FROM_CONFIG=1",
        "ADDED=two words",
        "OVERRIDDEN=flag",
        "TERM=xterm",
    ] {
        assert!(env.contains(&want), "{want} missing: {env:?}");
    }
    assert!(!env.contains(&"OVERRIDDEN=config"), "{env:?}");
    assert!(
        env.iter().any(|e| e.starts_with("PATH=")),
        "PATH missing: {env:?}"
    );
}

#[test]
fn cwd_sets_the_working_directory() {
    let mut b = Bundle::new("exec-cwd");
    sleeper(&mut b);
    assert_eq!(exec(&b, &["--cwd", "/tmp"], &["pwd"]).ok().stdout, "/tmp\n");
    assert_eq!(exec(&b, &[], &["pwd"]).ok().stdout, "/\n");
}

#[test]
fn user_and_additional_gids() {
    let mut b = Bundle::new("exec-user");
    sleeper(&mut b);
    let out = exec(&b, &["--user", "1000:1000"], &["sh", "-c", "id -u; id -g"]).ok();
    assert_eq!(out.stdout, "1000\n1000\n");
    let out = exec(
        &b,
        &[
            "--user",
            "1000:1000",
            "--additional-gids",
            "5",
            "--additional-gids",
            "10",
        ],
        &["cat", "/proc/self/status"],
    )
    .ok();
    assert_eq!(status_field(&out.stdout, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out.stdout, "Gid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out.stdout, "Groups"), "5 10");
    // Without the flags: the container's user, root, and no supplementary groups.
    let out = exec(&b, &[], &["cat", "/proc/self/status"]).ok();
    assert_eq!(status_field(&out.stdout, "Uid"), "0\t0\t0\t0");
    assert_eq!(status_field(&out.stdout, "Groups"), "");
}

#[test]
fn cap_adds_a_capability() {
    const CAP_SYS_ADMIN: u32 = 21;
    let mut b = Bundle::new("exec-cap");
    sleeper(&mut b);
    let eff = |out: &Out| u64::from_str_radix(&status_field(&out.stdout, "CapEff"), 16).unwrap();
    let out = exec(&b, &[], &["cat", "/proc/self/status"]).ok();
    assert_eq!(eff(&out) & (1 << CAP_SYS_ADMIN), 0, "{}", out.stdout);
    let out = exec(
        &b,
        &["--cap", "CAP_SYS_ADMIN"],
        &["cat", "/proc/self/status"],
    )
    .ok();
    assert_ne!(eff(&out) & (1 << CAP_SYS_ADMIN), 0, "{}", out.stdout);
    // And it works: only CAP_SYS_ADMIN may set the hostname here.
    exec(&b, &[], &["hostname", "nope"]).failed();
    exec(&b, &["--cap", "CAP_SYS_ADMIN"], &["hostname", "newname"]).ok();
    assert_eq!(exec(&b, &[], &["hostname"]).ok().stdout, "newname\n");
}

#[test]
fn capabilities_of_exec_are_the_containers() {
    let mut b = Bundle::new("exec-caps");
    let init = sleeper(&mut b);
    let init_status = host_status(init);
    let out = exec(&b, &[], &["cat", "/proc/self/status"]).ok();
    for f in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(
            status_field(&out.stdout, f),
            status_field(&init_status, f),
            "{f}"
        );
    }
    assert_eq!(
        status_field(&out.stdout, "NoNewPrivs"),
        status_field(&init_status, "NoNewPrivs")
    );
}

#[test]
fn no_new_privs_flag() {
    let mut b = Bundle::new("exec-nnp");
    b.cfg["process"]["noNewPrivileges"] = json!(false);
    sleeper(&mut b);
    let out = exec(&b, &[], &["cat", "/proc/self/status"]).ok();
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), "0");
    let out = exec(&b, &["--no-new-privs"], &["cat", "/proc/self/status"]).ok();
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), "1");
}

#[test]
fn seccomp_of_the_container_applies_to_exec() {
    let mut b = Bundle::new("exec-seccomp");
    b.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    });
    sleeper(&mut b);
    let out = exec(
        &b,
        &[],
        &["sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x"],
    );
    assert_ne!(out.code, 0, "mkdir was allowed: {out:?}");
    assert!(out.stdout.contains("Seccomp:\t2"), "{out:?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
}

/// Read from a pty master until `want` shows up, the slave side is closed (EIO), or `timeout`.
fn read_until(master: &OwnedFd, want: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while Instant::now() < deadline && !String::from_utf8_lossy(&got).contains(want) {
        let mut p = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 100) };
        if n <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: a valid buffer of its size.
        let r = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r <= 0 {
            break;
        }
        got.extend_from_slice(&buf[..r as usize]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn tty_sends_the_pty_master_to_the_console_socket() {
    let mut b = Bundle::new("exec-tty");
    sleeper(&mut b);
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let pid_file = b.dir.join("exec.pid");
    exec(
        &b,
        &[
            "--tty",
            "--console-socket",
            sock.to_str().unwrap(),
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
        &["sh", "-c", "tty; echo tty-done; sleep 100"],
    )
    .ok();
    let mut conn = None;
    assert!(
        wait_until(WAIT, || {
            conn = listener.accept().ok().map(|(s, _)| s);
            conn.is_some()
        }),
        "nobody connected to the console socket"
    );
    let conn = conn.unwrap();
    conn.set_nonblocking(false).unwrap();
    let (_, mut fds) = common::recv_with_fds(conn.as_raw_fd());
    assert_eq!(fds.len(), 1, "one descriptor expected");
    let master = fds.remove(0);
    let got = read_until(&master, "tty-done", WAIT);
    let first = got.lines().next().unwrap_or_default().trim_end();
    assert!(
        first.starts_with("/dev/pts/") && first["/dev/pts/".len()..].parse::<u32>().is_ok(),
        "tty printed {got:?}"
    );
    let pid = read_pid(&pid_file);
    assert!(alive(pid));
}

#[test]
fn process_file_gives_the_whole_process() {
    let mut b = Bundle::new("exec-process");
    sleeper(&mut b);
    let process = b.dir.join("process.json");
    fs::write(
        &process,
        json!({
            "terminal": false,
            "user": {"uid": 1000, "gid": 1000},
            "args": ["sh", "-c", "echo $FOO; pwd; id -u; exit 3"],
            "env": ["FOO=from-file", "PATH=/bin"],
            "cwd": "/tmp",
        })
        .to_string(),
    )
    .unwrap();
    let out = exec(&b, &["--process", process.to_str().unwrap()], &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "from-file\n/tmp\n1000\n");
}

#[test]
fn preserve_fds_passes_descriptor_3() {
    let mut b = Bundle::new("exec-preserve");
    sleeper(&mut b);
    let mut fds = [0; 2];
    // SAFETY: a valid out-array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two new descriptors nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let wfd = w.as_raw_fd();
    let mut cmd = Command::new(*BIN);
    cmd.arg("--root")
        .arg(&b.state_root)
        .args(["exec", "--preserve-fds", "1", &b.id])
        .args(["sh", "-c", "echo via-fd3 >&3; ls /proc/self/fd"]);
    // SAFETY: dup2 is async-signal-safe; it clears close-on-exec on descriptor 3.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(wfd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = common::run_cmd(&mut cmd).ok();
    drop(w);
    let mut got = String::new();
    fs::File::from(r).read_to_string(&mut got).unwrap();
    assert_eq!(got, "via-fd3\n");
    let mut open: Vec<u32> = out
        .stdout
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    open.sort();
    // 0-2, the preserved 3, and the one ls reads /proc/self/fd with.
    assert_eq!(open[..4], [0, 1, 2, 3], "{out:?}");
    assert!(open.len() <= 5, "more descriptors leaked: {out:?}");
}

#[test]
fn exec_into_a_created_container() {
    let mut b = Bundle::new("exec-created");
    b.args(&["sleep", "100"]);
    b.create(&b.id).ok();
    let out = exec(&b, &[], &["sh", "-c", "echo hi; exit 4"]);
    assert_eq!((out.code, out.stdout.as_str()), (4, "hi\n"), "{out:?}");
    assert_eq!(b.status(&b.id), "created");
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let mut b = Bundle::new("exec-stopped");
    b.args(&["true"]);
    b.create(&b.id).ok();
    b.start(&b.id).ok();
    b.wait_status(&b.id, "stopped");
    let out = exec(&b, &[], &["true"]).failed();
    assert!(out.stderr.contains("stopped"), "{out:?}");
}

#[test]
fn exec_into_a_paused_container_fails() {
    let mut b = Bundle::new("exec-paused");
    sleeper(&mut b);
    b.rt(&["pause", &b.id]).ok();
    let out = exec(&b, &[], &["true"]).failed();
    assert!(out.stderr.contains("paused"), "{out:?}");
    b.rt(&["resume", &b.id]).ok();
    exec(&b, &[], &["true"]).ok();
}

#[test]
fn exec_of_a_missing_command_fails() {
    let mut b = Bundle::new("exec-missing");
    sleeper(&mut b);
    let out = exec(&b, &[], &["no-such-command"]).failed();
    assert!(
        out.stderr.contains("executable file not found") && out.stderr.contains("no-such-command"),
        "{out:?}"
    );
    let out = exec(&b, &[], &["/no/such/file"]).failed();
    assert!(out.stderr.contains("no such file"), "{out:?}");
    // The container is unharmed.
    assert_eq!(b.status(&b.id), "running");
}

#[test]
fn exec_into_an_unknown_container_fails() {
    let b = Bundle::new("exec-unknown");
    let out = b.rt(&["exec", "no-such-container", "true"]).failed();
    assert!(out.stderr.contains("no-such-container"), "{out:?}");
}

#[test]
fn exec_without_a_command_fails() {
    let mut b = Bundle::new("exec-nocmd");
    sleeper(&mut b);
    let out = exec(&b, &[], &[]).failed();
    assert!(out.stderr.to_lowercase().contains("command"), "{out:?}");
}

#[test]
fn tty_without_a_console_socket_is_proxied() {
    let mut b = Bundle::new("exec-tty-proxy");
    sleeper(&mut b);
    let out = exec(&b, &["--tty"], &["sh", "-c", "tty; exit 5"]);
    assert_eq!(out.code, 5, "{out:?}");
    let first = out.stdout.lines().next().unwrap_or_default().trim_end();
    assert!(first.starts_with("/dev/pts/"), "{out:?}");
}

#[test]
fn rlimits_of_the_container_apply_to_exec() {
    let mut b = Bundle::new("exec-rlimits");
    b.cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
    sleeper(&mut b);
    let out = exec(&b, &[], &["sh", "-c", "ulimit -n; ulimit -Hn"]).ok();
    assert_eq!(out.stdout, "256\n512\n");
}

#[test]
fn missing_cwd_fails_naming_it() {
    let mut b = Bundle::new("exec-bad-cwd");
    sleeper(&mut b);
    let out = exec(&b, &["--cwd", "/no/such/dir"], &["pwd"]).failed();
    assert!(out.stderr.contains("/no/such/dir"), "{out:?}");
    assert_eq!(out.stdout, "");
}

/// chown a tree without following symlinks.
fn chown_tree(p: &std::path::Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    if p.is_dir() && !p.is_symlink() {
        for e in fs::read_dir(p).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

#[test]
fn exec_joins_the_containers_user_namespace() {
    let mut b = Bundle::new("exec-userns");
    chown_tree(&b.rootfs, 100000, 100000);
    b.with_ns("user", None);
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.cfg["linux"]["uidMappings"] = map.clone();
    b.cfg["linux"]["gidMappings"] = map;
    let init = sleeper(&mut b);
    assert_ne!(
        ns_link(init, "user"),
        ns_link(std::process::id() as i32, "user")
    );
    let script = NAMESPACES
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n};"))
        .collect::<String>();
    let out = exec(&b, &[], &["sh", "-c", &format!("{script} id -u")]).ok();
    let want: String = NAMESPACES
        .iter()
        .map(|n| ns_link(init, n) + "\n")
        .collect::<String>()
        + "0\n";
    assert_eq!(out.stdout, want);
    // Root in the container is the mapped uid on the host.
    let pid_file = b.dir.join("exec.pid");
    exec(
        &b,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        &["sleep", "50"],
    )
    .ok();
    let pid = read_pid(&pid_file);
    assert_eq!(
        status_field(&host_status(pid), "Uid"),
        "100000\t100000\t100000\t100000"
    );
}

#[test]
fn detached_exec_of_a_file_that_cannot_be_executed_fails() {
    let mut b = Bundle::new("exec-detach-noexec");
    // Found on PATH checks, refused by execve itself: a regular file without an ELF or #! header.
    fs::write(b.rootfs.join("bin/not-a-program"), "just text\n").unwrap();
    fs::set_permissions(
        b.rootfs.join("bin/not-a-program"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    sleeper(&mut b);
    let out = exec(&b, &["--detach"], &["/bin/not-a-program"]).failed();
    assert!(
        out.stderr.contains("/bin/not-a-program") && out.stderr.contains("format error"),
        "{out:?}"
    );
    assert_eq!(b.status(&b.id), "running");
}
