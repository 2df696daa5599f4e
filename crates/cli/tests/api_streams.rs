//! `berth serve`'s streams, driven by the real docker CLI (28, and Debian's 20.10 for exec):
//! logs (follow, tail, timestamps, since/until), exec (exit codes, piped stdin, a terminal
//! through a real pty, resized), attach to a running container (and its detach keys), and
//! events (since/until, filters, and a follow that sees new events). Containers are made
//! with the berth CLI on the server's root. Error paths by hand with curl.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::serve::{Server, tail};
use common::{IMAGE, stderr, stdout};

/// `berth run -d --network none ARGS...`: the container's ID.
fn run_d(s: &Server, args: &[&str]) -> String {
    let mut a = vec!["run", "-d", "--network", "none"];
    a.extend_from_slice(args);
    s.berth.ok(&a).trim().to_string()
}

/// Runs `client` with `args` and `input` on its stdin (then closed).
fn with_input(s: &Server, client: &str, args: &[&str], input: &[u8]) -> Output {
    let mut c = s.client(client);
    c.args(args);
    common::output_with_input(c, input)
}

/// A child's stdout as it comes, read by a thread.
struct Lines {
    rx: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Lines {
    fn of(child: &mut Child) -> Self {
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: String::new(),
        }
    }

    /// Waits until what was read contains `want` (at most 30 s); returns all of it so far.
    fn until(&mut self, want: &str, s: &Server) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.contains(want) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.push_str(&String::from_utf8_lossy(&b)),
                Err(e) => panic!(
                    "{want:?} never came ({e}); got {:?}\nserver log:\n{}",
                    self.seen,
                    tail(&s.log(), 30)
                ),
            }
        }
        self.seen.clone()
    }
}

/// Drives `argv` (a docker command, with DOCKER_HOST set) on a real terminal: a pty of 30x100
/// made by Python, then the steps: `["expect", text]` (in what the terminal shows, after the
/// last match), `["send", text]`, `["resize", rows, cols]` (the pty's size: the kernel sends
/// SIGWINCH to the CLI), `["retry", text, want]` (sends `text` every half second until `want`
/// shows). Returns the command's exit code and everything the terminal showed.
fn on_a_pty(s: &Server, argv: &[&str], steps: serde_json::Value) -> (i32, String) {
    const DRIVER: &str = r#"
import fcntl, json, os, select, struct, subprocess, sys, termios, time
steps = json.loads(sys.argv[1])
argv = sys.argv[2:]
m, sl = os.openpty()
def size(r, c):
    fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))
size(30, 100)
def setup():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
p = subprocess.Popen(argv, stdin=sl, stdout=sl, stderr=sl, preexec_fn=setup, close_fds=True)
os.close(sl)
seen = b""
pos = 0
def read_some(t):
    global seen
    r, _, _ = select.select([m], [], [], t)
    if not r:
        return True
    try:
        d = os.read(m, 4096)
    except OSError:
        return False
    if not d:
        return False
    seen += d
    return True
def fail(why):
    p.kill()
    print(json.dumps({"code": -1, "seen": seen.decode(errors="replace"), "failed": why}))
    sys.exit(0)
for st in steps:
    deadline = time.time() + 30
    if st[0] == "expect" or st[0] == "retry":
        want = st[-1].encode()
        last_send = 0
        while want not in seen[pos:]:
            if time.time() > deadline:
                fail("no %r" % st)
            if st[0] == "retry" and time.time() - last_send > 0.5:
                os.write(m, st[1].encode())
                last_send = time.time()
            if not read_some(0.1):
                fail("the terminal closed before %r" % st)
        pos = seen.index(want, pos) + len(want)
    elif st[0] == "send":
        os.write(m, st[1].encode())
    elif st[0] == "resize":
        size(st[1], st[2])
deadline = time.time() + 30
while read_some(0.1):
    if p.poll() is not None and not select.select([m], [], [], 0.2)[0]:
        break
    if time.time() > deadline:
        fail("the command did not end")
print(json.dumps({"code": p.wait(), "seen": seen.decode(errors="replace")}))
"#;
    let driver = s.berth.root.path().join("pty-driver.py");
    std::fs::write(&driver, DRIVER).unwrap();
    let mut c = s.client("python3");
    c.arg(&driver).arg(steps.to_string()).args(argv);
    let o = c.output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("the pty driver: {e}: {}", s.explain(&o)));
    let seen = v["seen"].as_str().unwrap_or_default().to_string();
    if let Some(why) = v.get("failed") {
        panic!(
            "on a pty, {argv:?}: {why}; the terminal showed {seen:?}\nserver log:\n{}",
            tail(&s.log(), 30)
        );
    }
    (v["code"].as_i64().unwrap() as i32, seen)
}

#[test]
fn logs_tail_timestamps_since_until_and_a_tty() {
    let s = Server::start(&[]);
    let id = run_d(
        &s,
        &[
            "--name",
            "lg",
            IMAGE,
            "sh",
            "-c",
            // The second line written apart (a write of its own, with a time of its own).
            "echo out1; echo err1 >&2; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo out2",
        ],
    );
    s.berth.wait_for(30, "the first lines", || {
        s.berth.ok(&["logs", &id]).contains("out1")
    });
    s.berth.ok(&["exec", &id, "touch", "/tmp/go"]);
    assert_eq!(s.berth.ok(&["wait", &id]).trim(), "0");
    // stdout and stderr apart (stdcopy frames: no terminal).
    let o = s.docker(&["logs", "lg"]);
    assert!(o.status.success(), "{}", s.explain(&o));
    assert_eq!(stdout(&o), "out1\nout2\n");
    assert_eq!(stderr(&o), "err1\n");
    let o = s.docker(&["logs", "--tail", "1", "lg"]);
    assert_eq!(stdout(&o), "out2\n", "{}", s.explain(&o));
    assert_eq!(stderr(&o), "");
    // Timestamps: RFC 3339 with nanoseconds, then the line.
    let ts = s.docker_ok(&["logs", "--timestamps", &id]);
    let lines: Vec<(&str, &str)> = ts.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(lines.len(), 2, "{ts}");
    assert_eq!(lines[0].1, "out1");
    assert_eq!(lines[1].1, "out2");
    for (t, _) in &lines {
        assert!(
            t.len() == 30 && t.ends_with('Z') && t.as_bytes()[19] == b'.',
            "{t}"
        );
    }
    // --since the second line's time: only it (the CLI sends it as a Unix timestamp); --until
    // it: the lines before.
    let o = s.docker(&["logs", "--since", lines[1].0, "lg"]);
    assert_eq!(stdout(&o), "out2\n", "{}", s.explain(&o));
    let o = s.docker(&["logs", "--until", lines[1].0, "lg"]);
    assert_eq!(stdout(&o), "out1\n", "{}", s.explain(&o));
    assert_eq!(stderr(&o), "err1\n");
    // An attach that replays the logs and does not stream (no upgrade: a plain body of
    // stdcopy frames).
    let (code, body) = s.curl(&[
        "-X",
        "POST",
        "http://x/containers/lg/attach?logs=1&stream=0&stdout=1&stderr=1",
    ]);
    assert_eq!(code, 200);
    let mut frames = Vec::new();
    let mut b = body.as_bytes();
    while b.len() >= 8 {
        let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        assert_eq!(&b[1..4], [0, 0, 0], "{body:?}");
        frames.push((b[0], String::from_utf8_lossy(&b[8..8 + len]).into_owned()));
        b = &b[8 + len..];
    }
    assert!(b.is_empty(), "{body:?}");
    // Each stream in its order (the two pipes' lines are logged as they are read).
    let of = |k: u8| -> Vec<String> {
        frames
            .iter()
            .filter(|f| f.0 == k)
            .map(|f| f.1.clone())
            .collect()
    };
    assert_eq!(of(1), ["out1\n", "out2\n"], "{frames:?}");
    assert_eq!(of(2), ["err1\n"], "{frames:?}");
    assert_eq!(frames.len(), 3, "{frames:?}");
    // With a terminal: one raw stream, as the terminal wrote it.
    let t = run_d(
        &s,
        &["-t", IMAGE, "sh", "-c", "echo on-tty; echo to-err >&2"],
    );
    s.berth.ok(&["wait", &t]);
    let o = s.docker(&["logs", &t]);
    assert!(o.status.success(), "{}", s.explain(&o));
    assert_eq!(stdout(&o), "on-tty\r\nto-err\r\n");
    assert_eq!(stderr(&o), "");
    let o = s.docker(&["logs", "no-such-container"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("No such container: no-such-container"),
        "{}",
        s.explain(&o)
    );
}

#[test]
fn logs_follow_until_the_container_exits() {
    let s = Server::start(&[]);
    run_d(
        &s,
        &[
            "--name",
            "fl",
            IMAGE,
            "sh",
            "-c",
            "echo one; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo two >&2; echo three",
        ],
    );
    let mut child = s
        .client("docker")
        .args(["logs", "-f", "fl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::of(&mut child);
    lines.until("one\n", &s);
    // A line written after the follow began comes through it, and the follow ends with the
    // container.
    s.berth.ok(&["exec", "fl", "touch", "/tmp/go"]);
    lines.until("three\n", &s);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", s.explain(&o));
    assert_eq!(lines.seen, "one\nthree\n");
    assert_eq!(stderr(&o), "two\n");
}

#[test]
fn exec_exit_codes_stdin_options_and_detach() {
    let s = Server::start(&[]);
    run_d(&s, &["--name", "ex", IMAGE, "sleep", "600"]);
    let o = s.docker(&["exec", "ex", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", s.explain(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    // Piped stdin: the client's half-close ends the process's stdin.
    let o = with_input(&s, "docker", &["exec", "-i", "ex", "cat"], b"hi\n");
    assert!(o.status.success(), "{}", s.explain(&o));
    assert_eq!(stdout(&o), "hi\n");
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let o = with_input(&s, "docker", &["exec", "-i", "ex", "wc", "-c"], &big);
    assert_eq!(stdout(&o).trim(), "200000", "{}", s.explain(&o));
    // The user, environment and directory asked for.
    let o = s.docker_ok(&[
        "exec",
        "-u",
        "1000",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "ex",
        "sh",
        "-c",
        "echo $(id -u) $FOO $(pwd)",
    ]);
    assert_eq!(o, "1000 bar /tmp\n");
    // A command that cannot be run: Docker's 127, with the reason.
    let o = s.docker(&["exec", "ex", "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", s.explain(&o));
    assert!(
        format!("{}{}", stdout(&o), stderr(&o)).contains("no-such-command"),
        "{}",
        s.explain(&o)
    );
    // Detached: it runs on its own.
    s.docker_ok(&["exec", "-d", "ex", "sh", "-c", "echo done > /tmp/detached"]);
    s.berth.wait_for(30, "the detached exec", || {
        s.berth
            .run(&["exec", "ex", "cat", "/tmp/detached"])
            .stdout
            .starts_with(b"done")
    });
    // Debian's docker 20.10 (API 1.41: no multiplexed content type, same frames).
    let o = s
        .client("/usr/bin/docker")
        .args([
            "exec",
            "ex",
            "sh",
            "-c",
            "echo old; echo old-err >&2; exit 5",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", s.explain(&o));
    assert_eq!(stdout(&o), "old\n");
    assert_eq!(stderr(&o), "old-err\n");
    let o = with_input(
        &s,
        "/usr/bin/docker",
        &["exec", "-i", "ex", "cat"],
        b"x\ny\n",
    );
    assert_eq!(stdout(&o), "x\ny\n", "{}", s.explain(&o));
    // Not running: refused.
    s.berth.ok(&["stop", "-t", "0", "ex"]);
    let o = s.docker(&["exec", "ex", "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is not running") || stderr(&o).contains("exited"),
        "{}",
        s.explain(&o)
    );
}

#[test]
fn exec_with_a_terminal_through_a_pty_and_resized() {
    let s = Server::start(&[]);
    run_d(&s, &["--name", "tt", IMAGE, "sleep", "600"]);
    let steps = serde_json::json!([
        // The size of our terminal from the start (ConsoleSize), then what the CLI sends
        // on SIGWINCH (POST /exec/{id}/resize).
        ["send", "stty size; tty\r"],
        ["expect", "30 100"],
        ["expect", "/dev/pts/"],
        ["resize", 40, 120],
        ["retry", "stty size\r", "40 120"],
        ["send", "echo typed-$((40+2)); exit 4\r"],
        ["expect", "typed-42"],
    ]);
    let (code, seen) = on_a_pty(&s, &["docker", "exec", "-it", "tt", "sh"], steps);
    assert_eq!(code, 4, "{seen:?}");
    // Debian's 20.10: no ConsoleSize; its first resize gives the size.
    let steps = serde_json::json!([["retry", "stty size\r", "30 100"], ["send", "exit 6\r"],]);
    let (code, seen) = on_a_pty(&s, &["/usr/bin/docker", "exec", "-it", "tt", "sh"], steps);
    assert_eq!(code, 6, "{seen:?}");
}

#[test]
fn attach_to_a_running_container() {
    let s = Server::start(&[]);
    run_d(
        &s,
        &[
            "-i",
            "--name",
            "at",
            IMAGE,
            "sh",
            "-c",
            "while read l; do echo got:$l; echo err:$l >&2; [ \"$l\" = quit ] && exit 5; done",
        ],
    );
    let mut child = s
        .client("docker")
        .args(["attach", "at"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut lines = Lines::of(&mut child);
    // The attach is live once what we type comes back (typed again until it does: the CLI
    // may not be attached yet when the first line goes).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.seen.contains("got:hello") {
        assert!(Instant::now() < deadline, "no echo: {:?}", lines.seen);
        input.write_all(b"hello\n").unwrap();
        if let Ok(b) = lines.rx.recv_timeout(Duration::from_millis(500)) {
            lines.seen.push_str(&String::from_utf8_lossy(&b));
        }
    }
    input.write_all(b"quit\n").unwrap();
    lines.until("got:quit\n", &s);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", s.explain(&o));
    assert!(stderr(&o).contains("err:quit"), "{}", s.explain(&o));
    // With a terminal, through a pty: raw bytes both ways, and the detach keys leave it
    // running.
    run_d(&s, &["-it", "--name", "att", IMAGE, "sh"]);
    let steps = serde_json::json!([
        ["retry", "echo seen-$((1+2))\r", "seen-3"],
        ["send", "\u{10}\u{11}"],
    ]);
    let (code, seen) = on_a_pty(&s, &["docker", "attach", "att"], steps);
    // The CLI's own status for a detach (its escape proxy's error).
    assert_eq!(code, 1, "{seen:?}");
    assert!(seen.contains("read escape sequence"), "{seen:?}");
    assert_eq!(
        s.berth
            .ok(&["inspect", "-f", "{{.State.Status}}", "att"])
            .trim(),
        "running"
    );
}

#[test]
fn events_since_until_filters_and_follow() {
    let s = Server::start(&[]);
    let since = unix_time(-1);
    let a = run_d(&s, &["--name", "ev-a", IMAGE, "true"]);
    s.berth.ok(&["wait", &a]);
    run_d(&s, &["--name", "ev-b", IMAGE, "true"]);
    let until = unix_time(0);
    // Past events only (between since and until): the stream ends by itself.
    let past = |args: &[&str]| {
        let mut a = vec!["events", "--since", &since, "--until", &until];
        a.extend_from_slice(args);
        s.docker_ok(&a)
    };
    let o = past(&[
        "--filter",
        "container=ev-a",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Status}}",
    ]);
    let got: Vec<&str> = o.lines().collect();
    assert!(got.contains(&"container create ev-a create"), "{o}");
    assert!(got.contains(&"container start ev-a start"), "{o}");
    assert!(got.contains(&"container die ev-a die"), "{o}");
    assert!(!o.contains("ev-b"), "{o}");
    let o = past(&[
        "--filter",
        "event=start",
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    let mut names: Vec<&str> = o.lines().collect();
    names.sort();
    assert_eq!(names, ["ev-a", "ev-b"], "{o}");
    // The JSON messages: Docker's fields, with the deprecated status/id/from.
    let o = past(&[
        "--filter",
        "container=ev-a",
        "--filter",
        "event=create",
        "--format",
        "{{json .}}",
    ]);
    let v: serde_json::Value = serde_json::from_str(o.lines().next().unwrap()).unwrap();
    assert_eq!(v["Type"], "container", "{v}");
    assert_eq!(v["Actor"]["ID"], a.as_str(), "{v}");
    assert_eq!(v["status"], "create", "{v}");
    assert_eq!(v["id"], a.as_str(), "{v}");
    assert_eq!(v["from"], IMAGE, "{v}");
    assert_eq!(v["scope"], "local", "{v}");
    assert!(v["timeNano"].as_i64().unwrap() > 0);
    // Debian's 20.10 reads the same stream.
    let o = s
        .client("/usr/bin/docker")
        .args([
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=container",
            "--filter",
            "event=die",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", s.explain(&o));
    assert!(
        stdout(&o).contains("container die") && stdout(&o).contains("name=ev-a"),
        "{}",
        s.explain(&o)
    );
    // Following: a container created now shows; then its start, which happens after the
    // follow is known to be live.
    s.berth.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "ev-c",
        IMAGE,
        "true",
    ]);
    let mut child = s
        .client("docker")
        .args([
            "events",
            "--since",
            &since,
            "--filter",
            "container=ev-c",
            "--format",
            "{{.Action}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::of(&mut child);
    lines.until("create\n", &s);
    s.berth.ok(&["start", "ev-c"]);
    let seen = lines.until("die\n", &s);
    assert_eq!(seen, "create\nstart\ndie\n");
    // SAFETY: kill has no memory arguments; the pid is our child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    // A bad filter: 400 naming it.
    let (code, body) = s.curl(&["http://x/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D"]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("bogus"), "{body}");
}

/// Now plus `secs`, as a Unix timestamp with nanoseconds (what `--since`/`--until` take).
fn unix_time(secs: i64) -> String {
    let now = std::time::SystemTime::now();
    let t = if secs < 0 {
        now - Duration::from_secs(secs.unsigned_abs())
    } else {
        now + Duration::from_secs(secs as u64)
    };
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

#[test]
fn error_paths_by_hand() {
    let s = Server::start(&[]);
    run_d(&s, &["--name", "er", IMAGE, "sleep", "600"]);
    // A malformed exec body: 400 naming the field.
    let (code, body) = s.request(
        "POST",
        "/v1.44/containers/er/exec",
        Some(r#"{"Cmd":["true"],"Tty":"yes"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Tty"), "{body}");
    let (code, body) = s.request("POST", "/containers/er/exec", Some(r#"{"Cmd":[]}"#));
    assert_eq!(
        (code, body.trim()),
        (400, r#"{"message":"No exec command specified"}"#)
    );
    let (code, _) = s.request("POST", "/containers/nope/exec", Some(r#"{"Cmd":["true"]}"#));
    assert_eq!(code, 404);
    // Create, inspect before the start, start, inspect after.
    let (code, body) = s.request(
        "POST",
        "/containers/er/exec",
        Some(r#"{"Cmd":["sh","-c","exit 9"],"AttachStdout":true}"#),
    );
    assert_eq!(code, 201, "{body}");
    let exec: serde_json::Value = serde_json::from_str(&body).unwrap();
    let exec = exec["Id"].as_str().unwrap().to_string();
    let (code, body) = s.curl(&[&format!("http://x/exec/{exec}/json")]);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Running"], false);
    assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
    let (code, _) = s.request(
        "POST",
        &format!("/exec/{exec}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(code, 200);
    s.berth.wait_for(30, "the detached exec's exit", || {
        let (_, body) = s.curl(&[&format!("http://x/exec/{exec}/json")]);
        body.contains(r#""ExitCode":9"#)
    });
    // Started once only.
    let (code, _) = s.request(
        "POST",
        &format!("/exec/{exec}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(code, 409);
    let (code, _) = s.curl(&["-X", "POST", "http://x/exec/nope/start"]);
    assert_eq!(code, 404);
    let (code, _) = s.curl(&["http://x/exec/nope/json"]);
    assert_eq!(code, 404);
    // Logs need a stream; resizes need both numbers; a bad time is a 400.
    let (code, body) = s.curl(&["http://x/containers/er/logs"]);
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.curl(&["-X", "POST", "http://x/containers/er/resize?h=10"]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("width"), "{body}");
    let (code, _) = s.curl(&["-X", "POST", "http://x/containers/er/resize?h=10&w=20"]);
    assert_eq!(code, 200);
    let (code, body) = s.curl(&["http://x/containers/er/logs?stdout=1&since=yesterday"]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("since"), "{body}");
    // Attach with bad detach keys: 400 before anything is hijacked.
    let (code, body) = s.curl(&[
        "-X",
        "POST",
        "http://x/containers/er/attach?stream=1&stdout=1&detachKeys=ctrl-xy",
    ]);
    assert_eq!(code, 400, "{body}");
    s.berth.ok(&["stop", "-t", "0", "er"]);
    let (code, body) = s.curl(&["-X", "POST", "http://x/containers/er/resize?h=10&w=20"]);
    assert_eq!(code, 409, "{body}");
}

#[test]
fn docker_run_attached_with_stdin_and_a_terminal() {
    let s = Server::start(&[]);
    // Attached before the start (docker run's order): nothing of the output is lost.
    let o = s.docker(&["run", "--rm", "--network", "none", IMAGE, "echo", "hi"]);
    assert!(o.status.success(), "{}", s.explain(&o));
    assert_eq!(stdout(&o), "hi\n");
    let o = s.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", s.explain(&o));
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    // Piped stdin, ended by the client's half-close.
    let o = with_input(
        &s,
        "docker",
        &["run", "-i", "--rm", "--network", "none", IMAGE, "cat"],
        b"piped\nlines\n",
    );
    assert!(o.status.success(), "{}", s.explain(&o));
    assert_eq!(stdout(&o), "piped\nlines\n");
    // Debian's 20.10 the same way.
    let o = with_input(
        &s,
        "/usr/bin/docker",
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            "cat; exit 4",
        ],
        b"old\n",
    );
    assert_eq!(o.status.code(), Some(4), "{}", s.explain(&o));
    assert_eq!(stdout(&o), "old\n");
    // With a terminal, on a pty: its size, what we type.
    let steps = serde_json::json!([
        ["retry", "stty size\r", "30 100"],
        ["send", "echo in-$((2+3)); exit 2\r"],
        ["expect", "in-5"],
    ]);
    let (code, seen) = on_a_pty(
        &s,
        &[
            "docker",
            "run",
            "-it",
            "--rm",
            "--network",
            "none",
            IMAGE,
            "sh",
        ],
        steps,
    );
    assert_eq!(code, 2, "{seen:?}");
    // Debian's 20.10 the same way on a pty.
    let steps = serde_json::json!([
        ["retry", "stty size\r", "30 100"],
        ["send", "echo old-$((3+4)); exit 6\r"],
        ["expect", "old-7"],
    ]);
    let (code, seen) = on_a_pty(
        &s,
        &[
            "/usr/bin/docker",
            "run",
            "-it",
            "--rm",
            "--network",
            "none",
            IMAGE,
            "sh",
        ],
        steps,
    );
    assert_eq!(code, 6, "{seen:?}");
    s.berth.wait_for(30, "the --rm containers to go", || {
        s.berth.container_ids().is_empty()
    });
}

/// Debian's docker 20.10 (API 1.41): `run -d -p` with the port answering, and `logs -f`
/// following a container until it ends.
#[test]
fn docker_20_10_run_detached_with_a_port_and_logs_follow() {
    let s = Server::start(&[]);
    let port = common::serve::free_port();
    let old = |args: &[&str]| {
        let o = s.client("/usr/bin/docker").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "docker 20.10 {args:?}: {}",
            s.explain(&o)
        );
        stdout(&o)
    };
    let publish = format!("127.0.0.1:{port}:80");
    old(&[
        "run",
        "-d",
        "--name",
        "oldweb",
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        "echo via-20.10 > /index.html; exec httpd -f -p 80 -h /",
    ]);
    assert_eq!(
        old(&["port", "oldweb"]).trim(),
        format!("80/tcp -> 127.0.0.1:{port}")
    );
    let body = common::serve::get_when_up(&format!("http://127.0.0.1:{port}/index.html"));
    assert_eq!(body, "via-20.10\n");
    old(&[
        "run",
        "-d",
        "--name",
        "oldlog",
        IMAGE,
        "sh",
        "-c",
        "echo first; sleep 1; echo second",
    ]);
    // -f returns once the container ends, with what it printed after the follow began.
    assert_eq!(old(&["logs", "-f", "oldlog"]), "first\nsecond\n");
    old(&["rm", "-f", "oldweb", "oldlog"]);
}

/// docker-py reads a hijacked answer through a buffer it then leaves for the raw socket:
/// output sent with the `101` would be lost (the session starts once the answer is out).
#[test]
fn docker_py_exec_output_and_logs() {
    const SCRIPT: &str = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
ctr = c.containers.get(sys.argv[2])
for i in range(30):
    code, out = ctr.exec_run(["echo", str(i)])
    assert (code, out) == (0, ("%d\n" % i).encode()), (i, code, out)
code, (o, e) = ctr.exec_run(["sh", "-c", "echo o; echo e >&2; exit 2"], demux=True)
assert (code, o, e) == (2, b"o\n", b"e\n"), (code, o, e)
code, out = ctr.exec_run(["sh", "-c", "tty; stty size"], tty=True)
assert code == 0 and out.startswith(b"/dev/pts/"), (code, out)
assert ctr.logs(stdout=True, stderr=False) == b"first\n", ctr.logs()
assert ctr.logs(stdout=False, stderr=True) == b"second\n", ctr.logs(stderr=True)
print("ok")
"#;
    let s = Server::start(&[]);
    run_d(
        &s,
        &[
            "--name",
            "py",
            IMAGE,
            "sh",
            "-c",
            "echo first; echo second >&2; exec sleep 600",
        ],
    );
    s.berth.wait_for(30, "the first lines", || {
        s.berth.run(&["logs", "py"]).stderr.starts_with(b"second")
    });
    assert_eq!(s.python_ok(&["-c", SCRIPT, &s.host(), "py"]), "ok\n");
}
