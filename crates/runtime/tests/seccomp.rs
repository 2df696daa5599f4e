//! linux.seccomp with real containers: Docker's default profile (`spec --profile docker`),
//! custom profiles with errnoRet and argument filters, SCMP_ACT_NOTIFY with a listener, and
//! `exec` getting the container's profile.
//!
//! Some checks need exact syscalls busybox does not make (keyctl, clone3, socket(AF_VSOCK),
//! io_uring_setup): for those the container runs this test binary itself (`/probe`, with the
//! host's /usr mounted read-only for its libraries) as [`zz_probe_helper`], which makes the
//! syscalls named in $BERTH_PROBE and prints `PROBE name=errno` lines (0 for success).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{BIN, Bundle, Out, WAIT, run_cmd};
use serde_json::{Value, json};

/// The config `berth-runtime spec --profile docker` writes.
fn docker_spec(b: &Bundle) -> Value {
    let dir = b.host_dir("docker-spec");
    let _ = fs::remove_file(dir.join("config.json"));
    run_cmd(
        std::process::Command::new(*BIN)
            .args(["spec", "--profile", "docker", "--bundle"])
            .arg(&dir),
    )
    .ok();
    serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

/// A bundle with Docker's profile (capabilities and seccomp), a writable root.
fn docker_bundle(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    let d = docker_spec(&b);
    b.cfg["process"]["capabilities"] = d["process"]["capabilities"].clone();
    b.cfg["linux"]["seccomp"] = d["linux"]["seccomp"].clone();
    b.cfg["root"]["readonly"] = json!(false);
    b
}

/// Link more busybox applets into the rootfs.
fn applets(b: &Bundle, names: &[&str]) {
    for n in names {
        let _ = symlink("busybox", b.rootfs.join("bin").join(n));
    }
}

/// Make the container able to run this test binary as /probe (host /usr read-only for the
/// dynamic loader and libraries) and set its args to probe `which`.
fn probe(b: &mut Bundle, which: &[&str]) {
    fs::create_dir_all(b.rootfs.join("usr")).unwrap();
    let _ = symlink("usr/lib", b.rootfs.join("lib"));
    let _ = symlink("usr/lib64", b.rootfs.join("lib64"));
    b.bind(Path::new("/usr"), "/usr", &["ro"]);
    let me = std::env::current_exe().unwrap();
    b.mount(
        json!({"destination": "/probe", "type": "bind", "source": me,
                   "options": ["bind", "ro"]}),
    );
    b.args(&["/probe", "--exact", "zz_probe_helper", "--nocapture", "-q"]);
    let env = b.cfg["process"]["env"].as_array_mut().unwrap();
    env.push(json!(format!("BERTH_PROBE={}", which.join(","))));
    env.push(json!("RUST_TEST_THREADS=1"));
}

/// The `PROBE name=errno` lines of a probe's output.
fn probed(out: &Out) -> BTreeMap<String, i32> {
    let m: BTreeMap<String, i32> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("PROBE "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect();
    assert!(!m.is_empty(), "the probe printed nothing: {out:#?}");
    m
}

/// Run one syscall in a forked child (so that a call that succeeds, like unshare, cannot change
/// the probe itself); its errno, 0 on success.
fn in_child(f: impl FnOnce() -> libc::c_long) -> i32 {
    // SAFETY: the child only makes raw syscalls and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let r = f();
        let e = if r < 0 {
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(255)
        } else {
            0
        };
        // SAFETY: ends the child without running anything of the parent's.
        unsafe { libc::_exit(e) };
    }
    assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "probe child status {status:#x}");
    libc::WEXITSTATUS(status)
}

/// Not a test of its own: the probe run inside containers (does nothing without $BERTH_PROBE).
#[test]
fn zz_probe_helper() {
    let Ok(which) = std::env::var("BERTH_PROBE") else {
        return;
    };
    for name in which.split(',') {
        let e = in_child(|| {
            // SAFETY: raw syscalls with integer, null or C-string arguments.
            unsafe {
                match name {
                    // KEYCTL_GET_KEYRING_ID of KEY_SPEC_SESSION_KEYRING
                    "keyctl" => libc::syscall(libc::SYS_keyctl, 0, -3i64, 0),
                    // An invalid clone3 (EINVAL if the kernel sees it).
                    "clone3" => libc::syscall(libc::SYS_clone3, 0usize, 0usize),
                    "clone_newns" => {
                        let r = libc::syscall(
                            libc::SYS_clone,
                            (libc::CLONE_NEWNS | libc::SIGCHLD) as libc::c_ulong,
                            0usize,
                            0usize,
                            0usize,
                            0usize,
                        );
                        if r == 0 {
                            libc::_exit(0);
                        }
                        r
                    }
                    "clone_plain" => {
                        let r = libc::syscall(
                            libc::SYS_clone,
                            libc::SIGCHLD as libc::c_ulong,
                            0usize,
                            0usize,
                            0usize,
                            0usize,
                        );
                        if r == 0 {
                            libc::_exit(0);
                        }
                        r
                    }
                    "unshare_user" => libc::unshare(libc::CLONE_NEWUSER) as libc::c_long,
                    "socket_vsock" => libc::socket(40, libc::SOCK_STREAM, 0) as libc::c_long,
                    // AF_ALG (EAFNOSUPPORT if the kernel sees it and has no AF_ALG).
                    "socket_alg" => libc::socket(38, libc::SOCK_SEQPACKET, 0) as libc::c_long,
                    // A ring of one entry; io_uring_params is 120 bytes, zero for defaults.
                    "io_uring_setup" => {
                        let mut params = [0u8; 120];
                        libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr())
                    }
                    "socket_unix" => {
                        libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) as libc::c_long
                    }
                    "personality_query" => libc::personality(0xffff_ffff) as libc::c_long,
                    "personality_linux32" => libc::personality(8) as libc::c_long,
                    // ADDR_NO_RANDOMIZE
                    "personality_norandom" => libc::personality(0x0040000) as libc::c_long,
                    // Wrong magic: EINVAL if the kernel sees it and the caller has CAP_SYS_BOOT.
                    "reboot" => libc::syscall(libc::SYS_reboot, 0, 0, 0, 0usize),
                    "mkdir" => libc::mkdir(c"/tmp/probe-dir".as_ptr(), 0o755) as libc::c_long,
                    "chroot" => libc::chroot(c"/".as_ptr()) as libc::c_long,
                    other => panic!("unknown probe {other}"),
                }
            }
        });
        println!("PROBE {name}={e}");
    }
}

#[test]
fn spec_profile_docker_writes_docker_caps_and_seccomp() {
    let b = Bundle::new("spec-docker");
    let d = docker_spec(&b);
    let caps = &d["process"]["capabilities"];
    let mut bounding: Vec<&str> = caps["bounding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    bounding.sort_unstable();
    assert_eq!(
        bounding,
        [
            "CAP_AUDIT_WRITE",
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_MKNOD",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW",
            "CAP_SETFCAP",
            "CAP_SETGID",
            "CAP_SETPCAP",
            "CAP_SETUID",
            "CAP_SYS_CHROOT"
        ]
    );
    assert!(caps.get("ambient").is_none() && caps.get("inheritable").is_none());
    let s = &d["linux"]["seccomp"];
    assert_eq!(s["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(s["defaultErrnoRet"], 1);
    assert!(s["syscalls"].as_array().unwrap().len() > 10);
    // The plain spec has no seccomp profile, as runc's.
    assert!(b.cfg["linux"].get("seccomp").is_none());
    // Unknown profiles are refused.
    let out = run_cmd(
        std::process::Command::new(*BIN)
            .args(["spec", "--profile", "nope", "--bundle"])
            .arg(b.host_dir("nope")),
    )
    .failed();
    assert!(out.stderr.contains("unknown profile"), "{out:?}");
}

#[test]
fn docker_profile_runs_a_normal_workload() {
    let mut b = docker_bundle("docker-normal");
    applets(&b, &["sed", "sort", "tr"]);
    b.sh(
        "set -e; ls / >/dev/null; ps >/dev/null; grep -E '^(Seccomp|CapBnd)' /proc/self/status; \
          mkdir -p /tmp/d/e; echo hello > /tmp/d/e/f; cat /tmp/d/e/f; chmod 600 /tmp/d/e/f; \
          ( sleep 0; echo subshell ) | cat; rm -r /tmp/d; echo done",
    );
    let out = b.run().ok();
    assert!(out.stdout.contains("Seccomp:\t2\n"), "{out:?}");
    // Docker's 14 capabilities: 0xa80425fb.
    assert!(
        out.stdout.contains("CapBnd:\t00000000a80425fb\n"),
        "{out:?}"
    );
    assert!(out.stdout.contains("hello\nsubshell\ndone\n"), "{out:?}");
}

#[test]
fn docker_profile_denies_namespaces_and_mounts_even_with_cap_sys_admin() {
    // The profile is resolved for Docker's default capabilities; giving the process
    // CAP_SYS_ADMIN afterwards shows that it is the filter that says no.
    let mut b = docker_bundle("docker-deny");
    b.add_cap("CAP_SYS_ADMIN");
    applets(&b, &["unshare", "nsenter"]);
    fs::create_dir_all(b.rootfs.join("mnt")).unwrap();
    b.sh(
        "mount -t tmpfs t /mnt && echo mount=0 || echo mount=failed; unshare -m true; echo unshare=$?; \
          nsenter -t 1 -m true; echo nsenter=$?",
    );
    let out = b.run();
    assert!(out.stdout.contains("mount=failed\n"), "{out:?}");
    assert!(out.stdout.contains("unshare=1\n"), "{out:?}");
    assert!(out.stdout.contains("nsenter=1\n"), "{out:?}");
    assert!(
        out.stderr
            .contains("mount: permission denied (are you root?)"),
        "{out:?}"
    );
    assert!(
        out.stderr.matches("Operation not permitted").count() >= 2,
        "{out:?}"
    );

    // Control: the same capabilities without the profile can mount.
    let mut c = Bundle::new("docker-deny-control");
    c.add_cap("CAP_SYS_ADMIN");
    fs::create_dir_all(c.rootfs.join("mnt")).unwrap();
    c.sh("mount -t tmpfs t /mnt && echo mount=0 || echo mount=failed");
    assert_eq!(c.run().ok().stdout, "mount=0\n");
}

#[test]
fn docker_profile_syscall_by_syscall() {
    let which = [
        "keyctl",
        "clone3",
        "clone_newns",
        "clone_plain",
        "unshare_user",
        "socket_vsock",
        "socket_alg",
        "socket_unix",
        "io_uring_setup",
        "personality_query",
        "personality_linux32",
        "personality_norandom",
        "reboot",
        "mkdir",
        "chroot",
    ];
    let mut b = docker_bundle("docker-probe");
    b.add_cap("CAP_SYS_BOOT");
    probe(&mut b, &which);
    let got = probed(&b.run().ok());
    let want: BTreeMap<String, i32> = [
        ("keyctl", libc::EPERM),
        ("clone3", libc::ENOSYS),
        ("clone_newns", libc::EPERM),
        ("clone_plain", 0),
        ("unshare_user", libc::EPERM),
        ("socket_vsock", libc::EPERM),
        ("socket_alg", libc::EPERM),
        ("socket_unix", 0),
        // Docker 25 and later block io_uring.
        ("io_uring_setup", libc::EPERM),
        ("personality_query", 0),
        ("personality_linux32", 0),
        ("personality_norandom", libc::EPERM),
        ("reboot", libc::EPERM),
        ("mkdir", 0),
        ("chroot", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);

    // Control without the filter: the kernel itself answers differently.
    let mut c = Bundle::new("docker-probe-control");
    c.add_cap("CAP_SYS_BOOT");
    c.cfg["root"]["readonly"] = json!(false);
    probe(
        &mut c,
        &[
            "keyctl",
            "clone3",
            "reboot",
            "personality_norandom",
            "io_uring_setup",
            "socket_alg",
        ],
    );
    let got = probed(&c.run().ok());
    assert_eq!(got["io_uring_setup"], 0, "{got:?}");
    assert_ne!(got["socket_alg"], libc::EPERM, "{got:?}");
    assert_eq!(got["clone3"], libc::EINVAL, "{got:?}");
    assert_eq!(got["reboot"], libc::EINVAL, "{got:?}");
    assert_eq!(got["personality_norandom"], 0, "{got:?}");
    assert_ne!(got["keyctl"], libc::EPERM, "{got:?}");
}

#[test]
fn custom_profile_with_errno_ret() {
    let mut b = Bundle::new("errno-ret");
    b.cfg["root"]["readonly"] = json!(false);
    b.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSPC},
            {"names": ["unlink", "unlinkat"], "action": "SCMP_ACT_ERRNO"}
        ]
    });
    b.sh("mkdir /tmp/x; echo mkdir=$?; echo f > /tmp/f; rm /tmp/f; echo rm=$?; cat /tmp/f");
    let out = b.run().ok();
    assert_eq!(out.stdout, "mkdir=1\nrm=1\nf\n", "{out:?}");
    assert!(
        out.stderr.contains("No space left on device"),
        "mkdir gets errnoRet: {out:?}"
    );
    // Without errnoRet, SCMP_ACT_ERRNO means EPERM.
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
}

/// Compiled programs are cached under the state root: a second container with the same
/// profile gets the same filter from the cache, and a changed profile is compiled anew.
#[test]
fn compiled_filters_are_cached_per_profile() {
    let mut b = Bundle::new("seccomp-cache");
    b.cfg["root"]["readonly"] = json!(false);
    let deny = |errno: i32| {
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]
        })
    };
    let cache = b.state_root.join(".seccomp-cache");
    let entries = || fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    b.cfg["linux"]["seccomp"] = deny(libc::ENOSPC);
    b.sh("mkdir /tmp/x");
    let first = b.run().failed();
    assert!(
        first.stderr.contains("No space left on device"),
        "{first:?}"
    );
    assert_eq!(entries(), 1, "the compiled filter was not cached");
    // A cache hit enforces the same filter.
    let again = b.run().failed();
    assert!(
        again.stderr.contains("No space left on device"),
        "{again:?}"
    );
    assert_eq!(entries(), 1);
    // Another profile is not served the first one's program.
    b.cfg["linux"]["seccomp"] = deny(libc::EROFS);
    let other = b.run().failed();
    assert!(other.stderr.contains("Read-only file system"), "{other:?}");
    assert_eq!(entries(), 2);
}

#[test]
fn custom_profile_with_argument_filter() {
    let mut b = Bundle::new("arg-filter");
    applets(&b, &["linux32", "linux64"]);
    // personality(PER_LINUX32) only is denied; personality(PER_LINUX) is not.
    b.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    b.sh("linux64 true; echo linux64=$?; linux32 true; echo linux32=$?");
    let out = b.run().ok();
    assert_eq!(out.stdout, "linux64=0\nlinux32=1\n", "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");

    // A masked comparison: any personality with ADDR_NO_RANDOMIZE (0x0040000) set.
    let mut m = Bundle::new("arg-filter-masked");
    m.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
             "args": [{"index": 0, "value": 0x0040000, "valueTwo": 0x0040000,
                       "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    });
    probe(
        &mut m,
        &[
            "personality_norandom",
            "personality_linux32",
            "personality_query",
        ],
    );
    let got = probed(&m.run().ok());
    assert_eq!(got["personality_norandom"], libc::EACCES, "{got:?}");
    assert_eq!(got["personality_linux32"], 0, "{got:?}");
}

/// What the seccomp listener got: the state message and the notifications it answered.
#[derive(Debug, Default)]
struct Listened {
    msg: Value,
    fds: usize,
    answered: Vec<i32>,
}

/// Accept the runtime's connection on `listener` (bounded by `deadline`) and take the state
/// message and the seccomp descriptor it carries.
fn accept_listener(listener: &UnixListener, deadline: Instant) -> (Listened, Option<OwnedFd>) {
    listener.set_nonblocking(true).unwrap();
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection on the listener");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    let (payload, mut fds) = common::recv_with_fds(conn.as_raw_fd());
    let out = Listened {
        msg: serde_json::from_slice(&payload).unwrap_or_else(|e| {
            panic!("state message {e}: {:?}", String::from_utf8_lossy(&payload))
        }),
        fds: fds.len(),
        ..Default::default()
    };
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let _ = conn.read(&mut [0u8; 1]);
    (out, fds.pop())
}

/// Answer every notification on `fd` with `-errno` until the filter goes away or `deadline`;
/// the syscall numbers answered.
fn answer(fd: OwnedFd, errno: i32, deadline: Instant) -> Vec<i32> {
    assert_eq!(std::mem::size_of::<libc::seccomp_notif>(), 80);
    assert_eq!(std::mem::size_of::<libc::seccomp_notif_resp>(), 24);
    let mut answered = Vec::new();
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r <= 0 {
            continue;
        }
        if pfd.revents & libc::POLLHUP != 0 && pfd.revents & libc::POLLIN == 0 {
            break; // every process with the filter is gone
        }
        // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: the ioctl fills req, whose size its number encodes.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
        if r < 0 {
            continue; // the notifying process went away (ENOENT)
        }
        answered.push(req.data.nr);
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: -errno,
            flags: 0,
        };
        // SAFETY: the ioctl reads resp, whose size its number encodes.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    }
    answered
}

/// Serve one listener connection: accept, then answer with `-errno`.
fn serve_notify(listener: UnixListener, errno: i32, deadline: Instant) -> Listened {
    let (mut got, fd) = accept_listener(&listener, deadline);
    if let Some(fd) = fd {
        got.answered = answer(fd, errno, deadline);
    }
    got
}

fn notify_profile(sock: &Path) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "berth-test-metadata",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

/// A directory for the listener socket, bind-mounted into the container at the same path, so
/// that listenerPath names the socket both on the host and inside the container.
fn listener_dir(b: &mut Bundle) -> std::path::PathBuf {
    let d = b.host_dir("sock");
    b.bind(&d, d.to_str().unwrap(), &[]);
    d
}

/// Run `mkdir` under a NOTIFY profile whose listener answers EROFS; check the message.
fn notify_mkdir(b: &mut Bundle, sock: &Path) {
    let listener = UnixListener::bind(sock).unwrap();
    let deadline = Instant::now() + WAIT;
    let server = std::thread::spawn(move || serve_notify(listener, libc::EROFS, deadline));
    b.cfg["linux"]["seccomp"] = notify_profile(sock);
    b.sh("mkdir /tmp/x; echo mkdir=$?; test -d /tmp/x; echo exists=$?");
    let out = b.run();
    if out.code != 0 {
        // Unblock the server's accept with a connection of our own.
        let _ = std::os::unix::net::UnixStream::connect(sock);
    }
    let got = server.join();
    let out = out.ok();
    let got = got.unwrap();
    assert_eq!(out.stdout, "mkdir=1\nexists=1\n", "{out:?} {got:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    assert_eq!(got.fds, 1, "{got:?}");
    assert_eq!(got.msg["fds"], json!(["seccompFd"]), "{got:?}");
    assert_eq!(got.msg["metadata"], "berth-test-metadata", "{got:?}");
    assert_eq!(got.msg["state"]["id"], b.id.as_str(), "{got:?}");
    assert!(got.msg["state"]["pid"].as_i64().unwrap_or(0) > 0, "{got:?}");
    assert!(got.msg["ociVersion"].is_string(), "{got:?}");
    let mkdirs = [libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32];
    assert!(
        !got.answered.is_empty() && got.answered.iter().all(|nr| mkdirs.contains(nr)),
        "{got:?}"
    );
}

#[test]
fn notify_listener_answers_mkdir() {
    let mut b = Bundle::new("notify");
    let sock = listener_dir(&mut b).join("listener.sock");
    notify_mkdir(&mut b, &sock);
}

/// The runtime spec's listenerPath is a path of the runtime's (the host's): runc connects to it
/// from the runtime process, outside the container.
#[test]
fn notify_listener_path_is_a_host_path() {
    let mut b = Bundle::new("notify-host");
    let sock = b.host_dir("host-only").join("listener.sock");
    notify_mkdir(&mut b, &sock);
}

/// Create and start `sleep 60` with the bundle's config; the container's ID.
fn start_sleeper(b: &mut Bundle) -> String {
    b.args(&["sleep", "60"]);
    let id = b.id.clone();
    b.create(&id).ok();
    b.start(&id).ok();
    b.wait_status(&id, "running");
    id
}

#[test]
fn exec_gets_the_containers_profile() {
    let mut b = docker_bundle("exec-seccomp");
    applets(&b, &["unshare"]);
    fs::create_dir_all(b.rootfs.join("mnt")).unwrap();
    let id = start_sleeper(&mut b);
    let out = b
        .rt(&[
            "exec",
            "--cap",
            "CAP_SYS_ADMIN",
            &id,
            "sh",
            "-c",
            "grep ^Seccomp: /proc/self/status; mount -t tmpfs t /mnt && echo mount=0 || echo mount=failed; \
             unshare -m true; echo unshare=$?; mkdir /tmp/ok && echo mkdir=$?",
        ])
        .ok();
    assert_eq!(
        out.stdout, "Seccomp:\t2\nmount=failed\nunshare=1\nmkdir=0\n",
        "{out:?}"
    );
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
    b.rt(&["kill", &id, "KILL"]).ok();
}

#[test]
fn exec_with_notify_sends_the_listener_too() {
    exec_notify(false);
}

/// The message to the listener is the container's process state (with its ID), for the exec'd
/// process as for the init.
#[test]
fn exec_listener_message_has_the_container_state() {
    exec_notify(true);
}

fn exec_notify(check_state: bool) {
    let mut b = Bundle::new(if check_state {
        "exec-notify-state"
    } else {
        "exec-notify"
    });
    b.cfg["root"]["readonly"] = json!(false);
    let sock = listener_dir(&mut b).join("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    b.cfg["linux"]["seccomp"] = notify_profile(&sock);
    let deadline = Instant::now() + WAIT;
    let id = start_sleeper(&mut b);
    // The init's listener comes first.
    let (init, init_fd) = accept_listener(&listener, deadline);
    assert_eq!(init.msg["state"]["id"], id.as_str(), "{init:?}");
    let init_fd = init_fd.expect("the init's seccomp fd");
    // The exec'd process has the filter too, and sends its own listener.
    let server = std::thread::spawn(move || serve_notify(listener, libc::EROFS, deadline));
    let out = b
        .rt(&["exec", &id, "sh", "-c", "mkdir /tmp/y; echo mkdir=$?"])
        .ok();
    b.rt(&["kill", &id, "KILL"]).ok();
    let got = server.join().unwrap();
    drop(init_fd);
    assert_eq!(out.stdout, "mkdir=1\n", "{out:?} {got:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    assert_eq!(got.fds, 1, "{got:?}");
    assert_eq!(got.msg["fds"], json!(["seccompFd"]), "{got:?}");
    assert_eq!(got.msg["metadata"], "berth-test-metadata", "{got:?}");
    if check_state {
        assert_eq!(
            got.msg["state"]["id"],
            id.as_str(),
            "exec's listener message: {got:?}"
        );
        assert!(got.msg["pid"].as_i64().unwrap_or(0) > 0, "{got:?}");
    }
}
