//! process.terminal: the pty master goes to --console-socket (create), or `run` proxies it.

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
