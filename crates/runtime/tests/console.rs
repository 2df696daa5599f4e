//! process.terminal: the pty master goes to --console-socket (create, and restore from a
//! checkpoint), or `run` proxies it.

mod common;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::{Bundle, WAIT, wait_until};
use serde_json::json;

/// Receive one descriptor sent with SCM_RIGHTS; also returns the payload.
fn recv_fd(sock: RawFd) -> (OwnedFd, Vec<u8>) {
    let (payload, mut fds) = common::recv_with_fds(sock);
    assert!(!fds.is_empty(), "no descriptor in the message");
    (fds.remove(0), payload)
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
            break; // EIO: every slave descriptor is closed
        }
        got.extend_from_slice(&buf[..r as usize]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn console_socket_receives_the_pty_master() {
    let mut b = Bundle::new("console");
    b.cfg["process"]["terminal"] = json!(true);
    b.cfg["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    b.sh("tty; stty size; echo hi; exec sleep 100");
    b.save();
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();

    let args: Vec<String> = b
        .verb_args("create")
        .into_iter()
        .chain([
            "--console-socket".to_string(),
            sock.display().to_string(),
            b.id.clone(),
        ])
        .collect();
    let create = std::thread::spawn(move || common::run(&args));
    let mut conn = None;
    wait_until(WAIT, || {
        conn = listener.accept().ok().map(|(c, _)| c);
        conn.is_some() || create.is_finished()
    });
    let Some(conn) = conn else {
        panic!(
            "create never connected to the console socket: {:?}",
            create.join()
        );
    };
    conn.set_nonblocking(false).unwrap();
    let (master, _name) = recv_fd(conn.as_raw_fd());
    let (code, _, stderr) = create.join().unwrap();
    assert_eq!(code, 0, "create failed: {stderr}");
    assert_eq!(b.status(&b.id), "created");

    b.start(&b.id).ok();
    let text = read_until(&master, "hi\r\n", WAIT);
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.len() >= 3,
        "the container's terminal output is incomplete: {text:?}"
    );
    assert!(
        lines[0].starts_with("/dev/pts/") || lines[0] == "/dev/console",
        "tty: {text:?}"
    );
    assert_eq!(lines[1], "30 100", "consoleSize: {text:?}");
    assert_eq!(lines[2], "hi", "{text:?}");

    // The terminal is the container's: typing reaches it (the sleep ignores it, the echo
    // comes back from the line discipline).
    let typed = b"typed\n";
    // SAFETY: a valid buffer of its size.
    let w = unsafe { libc::write(master.as_raw_fd(), typed.as_ptr().cast(), typed.len()) };
    assert_eq!(w, typed.len() as isize);
    let echo = read_until(&master, "typed", WAIT);
    assert!(echo.contains("typed"), "{echo:?}");
    b.rt(&["delete", "--force", &b.id]).ok();
}

#[test]
fn run_proxies_the_terminal() {
    let mut b = Bundle::new("console-run");
    b.cfg["process"]["terminal"] = json!(true);
    b.sh("tty; echo hi; exit 7");
    let out = b.run();
    assert_eq!(out.code, 7, "{out:?}");
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    assert!(lines.len() >= 2, "{out:?}");
    assert!(lines[0].starts_with("/dev/"), "{out:?}");
    assert!(!lines[0].contains("not a tty"), "{out:?}");
    assert_eq!(lines[1], "hi", "{out:?}");
}

#[test]
fn without_terminal_stdin_is_not_a_tty() {
    let mut b = Bundle::new("no-tty");
    b.sh("tty; echo rc=$?");
    let out = b.run().ok();
    assert!(out.stdout.contains("not a tty"), "{out:?}");
    assert!(out.stdout.ends_with("rc=1\n"), "{out:?}");
}

/// Accepts one connection on `listener` while `worker` runs; the pty master it sends.
fn master_from(
    listener: &UnixListener,
    worker: &std::thread::JoinHandle<(i32, String, String)>,
) -> Option<OwnedFd> {
    let mut conn = None;
    wait_until(WAIT, || {
        conn = listener.accept().ok().map(|(c, _)| c);
        conn.is_some() || worker.is_finished()
    });
    let conn = conn?;
    conn.set_nonblocking(false).unwrap();
    common::recv_with_fds(conn.as_raw_fd()).1.into_iter().next()
}

fn type_line(master: &OwnedFd, line: &str) {
    let l = format!("{line}\n");
    // SAFETY: a valid buffer of its size.
    let w = unsafe { libc::write(master.as_raw_fd(), l.as_ptr().cast(), l.len()) };
    assert_eq!(w, l.len() as isize);
}

#[test]
fn a_terminal_container_restores_onto_a_new_console_socket() {
    let mut b = Bundle::new("console-ckpt");
    b.cfg["process"]["terminal"] = json!(true);
    b.sh("n=0; while read l; do n=$((n+1)); echo \"got$n:$l\"; done");
    b.save();
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut args = b.verb_args("create");
    args.extend([
        "--console-socket".into(),
        sock.display().to_string(),
        b.id.clone(),
    ]);
    let create = std::thread::spawn(move || common::run(&args));
    let master = master_from(&listener, &create).expect("create sent no pty master");
    let (code, _, stderr) = create.join().unwrap();
    assert_eq!(code, 0, "create failed: {stderr}");
    b.start(&b.id).ok();
    type_line(&master, "one");
    let text = read_until(&master, "got1:one", WAIT);
    assert!(text.contains("got1:one"), "{text:?}");

    let img = b.dir.join("img");
    let out = b.rt(&["checkpoint", "--image-path", img.to_str().unwrap(), &b.id]);
    if out.code != 0 {
        let log = std::fs::read_to_string(img.join("dump.log")).unwrap_or_default();
        let tty: Vec<&str> = log.lines().filter(|l| l.contains("rror")).collect();
        panic!("checkpoint: {}\n{}", out.stderr, tty.join("\n"));
    }
    drop(master);

    // Restored with a new console socket: a new pty master, and the shell's count goes on.
    let sock2 = b.dir.join("console2.sock");
    let listener2 = UnixListener::bind(&sock2).unwrap();
    listener2.set_nonblocking(true).unwrap();
    let restored = format!("{}-r", b.id);
    let args: Vec<String> = [
        "--root",
        b.state_root.to_str().unwrap(),
        "restore",
        "-d",
        "--image-path",
        img.to_str().unwrap(),
        "--work-path",
        b.dir.join("work").to_str().unwrap(),
        "--bundle",
        b.bundle.to_str().unwrap(),
        "--console-socket",
        sock2.to_str().unwrap(),
        &restored,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let restore = std::thread::spawn(move || common::run(&args));
    let master2 = master_from(&listener2, &restore);
    let (code, _, stderr) = restore.join().unwrap();
    if code != 0 {
        let log = std::fs::read_to_string(b.dir.join("work/restore.log")).unwrap_or_default()
            + &std::fs::read_to_string(img.join("dump.log")).unwrap_or_default();
        let e: Vec<&str> = log.lines().filter(|l| l.contains("rror")).collect();
        panic!("restore failed: {stderr}\n{}", e.join("\n"));
    }
    let master2 = master2.expect("restore sent no pty master");
    assert_eq!(b.status(&restored), "running");
    type_line(&master2, "two");
    let text = read_until(&master2, "got2:two", WAIT);
    assert!(text.contains("got2:two"), "{text:?}");
    b.rt(&["delete", "--force", &restored]).ok();
}
