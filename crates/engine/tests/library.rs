//! The engine as a library, with no CLI in between: a container from typed options, attached
//! through a socket pair, execs with pipes and with a terminal, resize, exit codes, exec
//! inspect, and the container's events in order; and nothing of it written to our own stdio;
//! `ps`, `images` and `image inspect` as the Engine API's shapes.
//!
//! The monitor of a container is `<monitor_exe> __monitor ...` (see `Engine::new`): this test
//! binary is its own monitor (it has no libtest harness: `main` below runs the monitor when
//! called as one, else the tests), so no `berth` binary is involved. berth-runtime is
//! `$BERTH_TEST_RUNTIME`, else the one in this target directory, built with
//! `cargo build -p berth-runtime` when missing. The tests run real containers and need root.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use berth_engine::{
    AttachEnd, AttachIo, ContainerCreate, Engine, Error, EventQuery, ExecConfig, ExecIo, Filters,
    ImageListOptions, ListOptions, LogOptions, MONITOR_COMMAND,
};

const IMAGE: &str = "berth-engine-test/busybox:latest";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == MONITOR_COMMAND) {
        std::process::exit(monitor(&args, at));
    }
    let filters: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    let tests: &[(&str, fn())] = &[
        (
            "attach_exec_resize_and_events",
            attach_exec_resize_and_events,
        ),
        (
            "nothing_is_written_to_our_stdio",
            nothing_is_written_to_our_stdio,
        ),
        ("lists_are_the_api_shapes", lists_are_the_api_shapes),
        (
            "attach_before_start_detach_and_log_bounds",
            attach_before_start_detach_and_log_bounds,
        ),
    ];
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, f) in tests {
        if !filters.is_empty() && !filters.iter().any(|x| name.contains(x.as_str())) {
            continue;
        }
        ran += 1;
        println!("test {name} ...");
        match std::panic::catch_unwind(f) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    println!(
        "test result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}

/// `--root R --runtime RT __monitor [--ready-fd N] [--wait-attach] ID`, as `berth` takes it.
fn monitor(args: &[String], at: usize) -> i32 {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args[i + 1].clone())
    };
    let root = PathBuf::from(value("--root").expect("--root"));
    let runtime = PathBuf::from(value("--runtime").expect("--runtime"));
    let ready_fd = value("--ready-fd").map(|v| v.parse().expect("--ready-fd N"));
    let wait_attach = args[at..].iter().any(|a| a == "--wait-attach");
    let id = args.last().expect("ID");
    let exe = std::env::current_exe().expect("this binary");
    let e = Engine::new(&root, &runtime, &exe).expect("engine");
    e.run_monitor(id, wait_attach, ready_fd)
}

/// The berth-runtime binary (built if missing).
fn runtime_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_TEST_RUNTIME") {
        return PathBuf::from(p);
    }
    // This binary is target/<profile>/deps/library-HASH.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let p = dir.join("berth-runtime");
    if !p.is_file() {
        let mut c = Command::new(env!("CARGO"));
        c.args(["build", "-p", "berth-runtime"]);
        if dir.ends_with("release") {
            c.arg("--release");
        }
        let st = c.status().expect("run cargo build -p berth-runtime");
        assert!(
            st.success() && p.is_file(),
            "berth-runtime is missing at {} and `cargo build -p berth-runtime` failed: build it \
             first or set BERTH_TEST_RUNTIME",
            p.display()
        );
    }
    p
}

/// A root with the busybox image (the host's /bin/busybox), removed with what it holds.
struct Root {
    dir: tempfile::TempDir,
    engine: Engine,
}

impl Root {
    fn new() -> Self {
        // SAFETY: geteuid has no arguments.
        let uid = unsafe { libc::geteuid() };
        assert_eq!(
            uid, 0,
            "these tests run real containers and need root (run them as root, as CI does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-engine-test")
            .tempdir()
            .unwrap();
        let exe = std::env::current_exe().unwrap();
        let engine = Engine::new(dir.path(), &runtime_bin(), &exe).unwrap();
        let store = engine.images();
        berth_image::archive::import_rootfs(
            store,
            &busybox_tar()[..],
            &berth_image::Reference::parse(IMAGE).unwrap(),
            &berth_image::Platform::host(),
        )
        .unwrap();
        Root { dir, engine }
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Ok(all) = self.engine.list() {
            for c in all {
                let _ = self.engine.remove(&c.record.id, true, true);
            }
        }
        let root = self.dir.path().display().to_string();
        if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
            for l in info.lines() {
                if let Some(mp) = l.split(' ').nth(4)
                    && mp.starts_with(&root)
                {
                    let _ = Command::new("umount").args(["-l", mp]).status();
                }
            }
        }
    }
}

/// A rootfs tar: busybox and its applets, /etc/passwd and /etc/group.
fn busybox_tar() -> Vec<u8> {
    let busybox = fs::read("/bin/busybox").expect("/bin/busybox (install busybox-static)");
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind, mode, size| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for d in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, format!("{d}/"), &[][..]).unwrap();
    }
    let mut file = |path: &str, mode, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    };
    file("bin/busybox", 0o755, &busybox);
    file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    file("etc/group", 0o644, b"root:x:0:\n");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet == "busybox" || applet.is_empty() {
            continue;
        }
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    b.into_inner().unwrap()
}

/// Creates a container from the typed create request, written as an Engine API client sends
/// it (the one place that knows the request's shape).
fn create(e: &Engine, name: &str, cmd: &[&str]) -> String {
    let mut req: ContainerCreate = serde_json::from_value(serde_json::json!({
        "Image": IMAGE,
        "Cmd": cmd,
        "OpenStdin": true,
        "AttachStdin": true,
        "AttachStdout": true,
        "AttachStderr": true,
        "HostConfig": {"NetworkMode": "none"},
    }))
    .unwrap();
    req.name = Some(name.to_string());
    e.create(&req).unwrap()
}

/// A pipe: (read end, write end).
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are new and ours.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Reads from `r` until what was read contains `want` (at most 20 s); returns all of it.
fn read_until(r: &mut impl Read, want: &str) -> String {
    let until = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(want) {
        assert!(
            Instant::now() < until,
            "timed out waiting for {want:?}; got {:?}",
            String::from_utf8_lossy(&got)
        );
        match r.read(&mut buf) {
            Ok(0) => panic!(
                "EOF before {want:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The actions of the container's events since `t0`, in order.
fn actions(e: &Engine, id: &str, t0: SystemTime) -> Vec<String> {
    let q = EventQuery {
        since: Some(t0),
        until: Some(SystemTime::now() + Duration::from_millis(1)),
        follow: false,
        cancel: None,
    };
    let mut out = Vec::new();
    e.events()
        .read(&q, &|ev| ev.actor.id == id, &mut |ev| {
            out.push(ev.action.clone());
            Ok(())
        })
        .unwrap();
    out
}

fn attach_exec_resize_and_events() {
    let root = Root::new();
    let e = &root.engine;
    let t0 = SystemTime::now();
    let name = format!("lib-{}", std::process::id());
    let id = create(
        e,
        &name,
        &[
            "sh",
            "-c",
            "while read l; do echo got:$l; [ \"$l\" = quit ] && exit 7; done",
        ],
    );

    // Attached before it starts, through one end of a socket pair (as a server hijacks a
    // connection): what we write is its stdin, what it prints comes back.
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    e.prepare_start(&id).unwrap();
    let mut starting = e.start_monitor(&id, true).unwrap();
    starting.wait_listening().unwrap();
    let att = e
        .attach(
            &id,
            AttachIo {
                stdin: Some(Box::new(theirs.try_clone().unwrap())),
                stdout: Some(Box::new(theirs.try_clone().unwrap())),
                stderr: Some(Box::new(theirs)),
                ..Default::default()
            },
        )
        .unwrap();
    starting.wait_started().unwrap();
    ours.write_all(b"hello\n").unwrap();
    read_until(&mut ours, "got:hello\n");

    // An exec with our pipes: its output, its exit code.
    let (mut out_r, out_w) = pipe();
    let (mut err_r, err_w) = pipe();
    let cmd = ExecConfig {
        cmd: ["sh", "-c", "echo hi; echo oops >&2; exit 3"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    };
    let h = e
        .exec(
            &id,
            &cmd,
            ExecIo {
                stdout: Some(Box::new(out_w)),
                stderr: Some(Box::new(err_w)),
                ..Default::default()
            },
        )
        .unwrap();
    let exec_id = h.id().to_string();
    assert_eq!(h.wait().unwrap(), AttachEnd::Exited(3));
    let mut s = String::new();
    out_r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hi\n");
    s.clear();
    err_r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "oops\n");
    let i = e.exec_inspect(&exec_id).unwrap();
    assert!(!i.running);
    assert_eq!(i.exit_code, Some(3));
    assert_eq!(i.container_id, id);
    assert_eq!(i.process_config.entrypoint, "sh");
    assert!(i.pid > 0);
    let v = serde_json::to_value(&i).unwrap();
    assert_eq!(v["ExitCode"], 3, "Docker's field names: {v}");
    assert_eq!(v["ProcessConfig"]["arguments"][0], "-c", "{v}");

    // A command that cannot be run is an error with Docker's status, not an exec.
    let missing = ExecConfig {
        cmd: vec!["no-such-command".into()],
        ..Default::default()
    };
    match e.exec(&id, &missing, ExecIo::default()) {
        Err(Error::Command { code: 127, message }) => {
            assert!(message.contains("no-such-command"), "{message}")
        }
        other => panic!("expected a 127 error, got {other:?}"),
    }

    // With a terminal of the size we give, resized while it runs; stdin from a pipe.
    let (in_r, mut in_w) = pipe();
    let (mut out_r, out_w) = pipe();
    let tty = ExecConfig {
        cmd: ["sh", "-c", "stty size; read x; stty size; exit 4"]
            .map(String::from)
            .to_vec(),
        tty: true,
        stdin: true,
        ..Default::default()
    };
    let h = e
        .exec(
            &id,
            &tty,
            ExecIo {
                stdin: Some(Box::new(in_r)),
                stdout: Some(Box::new(out_w)),
                size: Some((20, 70)),
                ..Default::default()
            },
        )
        .unwrap();
    read_until(&mut out_r, "20 70");
    h.resize(30, 90).unwrap();
    in_w.write_all(b"\n").unwrap();
    let rest = read_until(&mut out_r, "30 90");
    assert!(!rest.contains("20 70"), "{rest:?}");
    assert_eq!(h.wait().unwrap(), AttachEnd::Exited(4));
    drop(in_w);

    // Detached: it runs on, and the monitor records how it ended.
    let bg = ExecConfig {
        cmd: ["sh", "-c", "sleep 0.3; exit 5"].map(String::from).to_vec(),
        ..Default::default()
    };
    let x = e.exec_create(&id, &bg).unwrap();
    let h = e.exec_start_detached(&x, None).unwrap();
    assert!(e.exec_inspect(&x).unwrap().running);
    assert!(
        e.exec_start_detached(&x, None).is_err(),
        "an exec starts once"
    );
    assert_eq!(h.wait().unwrap(), AttachEnd::Exited(5));
    assert_eq!(e.exec_inspect(&x).unwrap().exit_code, Some(5));

    // The container ends through its stdin; the attach sees its exit code.
    ours.write_all(b"quit\n").unwrap();
    assert_eq!(att.wait(), AttachEnd::Exited(7));
    assert_eq!(e.wait(&id).unwrap(), 7);

    let mut want = vec!["create", "attach", "start"];
    for c in [
        "sh -c echo hi; echo oops >&2; exit 3",
        "no-such-command",
        "sh -c stty size; read x; stty size; exit 4",
        "sh -c sleep 0.3; exit 5",
    ] {
        want.push(Box::leak(format!("exec_create: {c}").into_boxed_str()));
        want.push(Box::leak(format!("exec_start: {c}").into_boxed_str()));
        want.push("exec_die");
    }
    want.push("die");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = actions(e, &id, t0);
    while got.len() < want.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        got = actions(e, &id, t0);
    }
    assert_eq!(got, want);
    e.remove(&id, true, true).unwrap();
}

/// Runs the whole scenario with our stdout and stderr on a file: the engine writes nothing
/// there (the container's output goes where the caller said, the monitor's to its log).
fn nothing_is_written_to_our_stdio() {
    let capture = tempfile::tempfile().unwrap();
    // SAFETY: dup/dup2 on descriptors we own; restored below.
    let (saved_out, saved_err) = unsafe { (libc::dup(1), libc::dup(2)) };
    // SAFETY: as above.
    unsafe {
        libc::dup2(capture.as_raw_fd(), 1);
        libc::dup2(capture.as_raw_fd(), 2);
    }
    let r = std::panic::catch_unwind(attach_exec_resize_and_events);
    // SAFETY: puts back the descriptors saved above.
    unsafe {
        libc::dup2(saved_out, 1);
        libc::dup2(saved_err, 2);
        libc::close(saved_out);
        libc::close(saved_err);
    }
    let mut written = String::new();
    let mut f = capture;
    std::io::Seek::rewind(&mut f).unwrap();
    f.read_to_string(&mut written).unwrap();
    assert!(r.is_ok(), "the scenario failed:\n{written}");
    assert_eq!(written, "", "the engine wrote to our stdout/stderr");
}

/// `ps`, `images` and `image inspect` as an API server would return them: filters from the
/// API's JSON map, answers serialized with the Engine API's field names.
fn lists_are_the_api_shapes() {
    let root = Root::new();
    let e = &root.engine;
    let a = create(e, "list-a", &["true"]);
    let b = create(e, "list-b", &["sleep", "1"]);
    let filters = |json: &str| -> Filters { serde_json::from_str(json).unwrap() };

    // Created containers are listed only with all (or a status filter), newest first.
    assert!(e.containers(&ListOptions::default()).unwrap().is_empty());
    let opts = ListOptions {
        filters: filters(r#"{"status": ["created"]}"#),
        ..ListOptions::default()
    };
    let list = e.containers(&opts).unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [b.as_str(), a.as_str()]);
    let v = serde_json::to_value(&list[0]).unwrap();
    assert_eq!(v["Names"], serde_json::json!(["/list-b"]));
    assert_eq!(v["Image"], IMAGE);
    assert!(v["ImageID"].as_str().unwrap().starts_with("sha256:"), "{v}");
    assert_eq!(v["Command"], "sleep 1");
    assert_eq!(v["State"], "created");
    assert_eq!(v["Status"], "Created");
    assert!(v["Created"].as_i64().unwrap() > 1_600_000_000, "{v}");
    assert_eq!(v["HostConfig"]["NetworkMode"], "none");
    assert!(
        v["NetworkSettings"]["Networks"].get("none").is_some(),
        "{v}"
    );
    assert!(v.get("SizeRw").is_none(), "no size unless asked: {v}");
    let sized = e
        .containers(&ListOptions {
            all: true,
            limit: Some(1),
            size: true,
            filters: filters(r#"{"name": ["list-a"]}"#),
        })
        .unwrap();
    assert_eq!(sized.len(), 1);
    assert!(sized[0].size_root_fs.unwrap() > sized[0].size_rw.unwrap());
    let err = e
        .containers(&ListOptions {
            filters: filters(r#"{"colour": ["red"]}"#),
            ..ListOptions::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid filter \"colour\""), "{err}");

    let images = e.image_summaries(&ImageListOptions::default()).unwrap();
    assert_eq!(images.len(), 1);
    let v = serde_json::to_value(&images[0]).unwrap();
    assert_eq!(v["RepoTags"], serde_json::json!([IMAGE]));
    assert_eq!(v["Id"], serde_json::to_value(&list[0]).unwrap()["ImageID"]);
    assert_eq!(v["SharedSize"], -1);
    assert!(v["Size"].as_i64().unwrap() > 0);
    let none = e
        .image_summaries(&ImageListOptions {
            all: false,
            filters: filters(r#"{"reference": ["other/*"]}"#),
        })
        .unwrap();
    assert!(none.is_empty());
    let i = serde_json::to_value(e.image_inspect(IMAGE).unwrap()).unwrap();
    assert_eq!(i["Id"], v["Id"]);
    assert_eq!(i["RootFS"]["Type"], "layers");
    assert!(matches!(
        e.image_inspect("nosuch:1"),
        Err(Error::Image(berth_image::Error::ImageNotFound(_)))
    ));
}

/// A client waiting for a container to start (a server's attach to a created container, as
/// `docker run` does before its start) sees its output from the first byte: `start` waits for
/// it. A detacher ends an attach from another thread; logs stop at `until` and a follow at
/// its cancel flag.
fn attach_before_start_detach_and_log_bounds() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let root = Root::new();
    let e = &root.engine;
    let id = create(
        e,
        "early",
        &["sh", "-c", "echo first; read l; echo got:$l; exit 6"],
    );
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let waiter = e.attach_wait(&id).unwrap();
    let io = AttachIo {
        stdin: Some(Box::new(theirs.try_clone().unwrap())),
        stdout: Some(Box::new(theirs.try_clone().unwrap())),
        stderr: Some(Box::new(theirs)),
        ..Default::default()
    };
    // A plain start, as another process's `berth start` or a server's start endpoint; the
    // client is slow to attach (without the wait, the container would have printed already).
    let starter = {
        let (e, id) = (e.clone(), id.clone());
        std::thread::spawn(move || e.start(&id))
    };
    std::thread::sleep(Duration::from_millis(500));
    let t = std::thread::spawn(move || {
        waiter
            .attach(io, &|| false)
            .unwrap()
            .expect("attached at the start")
            .wait()
    });
    starter.join().unwrap().unwrap();
    ours.write_all(b"x\n").unwrap();
    let got = read_until(&mut ours, "got:x\n");
    assert_eq!(got, "first\ngot:x\n", "nothing before the attach is lost");
    assert_eq!(t.join().unwrap(), AttachEnd::Exited(6));
    assert_eq!(e.wait(&id).unwrap(), 6);

    // A waiter that is told to stop gives up; a container removed under it ends the wait.
    let w = e.attach_wait(&id).unwrap();
    assert!(w.attach(AttachIo::default(), &|| true).unwrap().is_none());

    // Logs before a time only.
    let mut all = Vec::new();
    e.logs(&id, &LogOptions::default(), &mut |l| {
        all.push(l.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let second = berth_engine::parse_rfc3339(&all[1].time).unwrap();
    let mut before = Vec::new();
    let opts = LogOptions {
        until: Some(second),
        ..Default::default()
    };
    e.logs(&id, &opts, &mut |l| {
        before.push(l.log.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(before, ["first\n"]);
    e.remove(&id, true, true).unwrap();

    // A running container: an attach detached from another thread, a follow cancelled.
    let id = create(e, "long", &["sleep", "60"]);
    e.start(&id).unwrap();
    let att = e.attach(&id, AttachIo::default()).unwrap();
    let d = att.detacher().expect("a streaming attach");
    let t = std::thread::spawn(move || att.wait());
    d.detach();
    assert_eq!(t.join().unwrap(), AttachEnd::Detached);
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = LogOptions {
        follow: true,
        cancel: Some(cancel.clone()),
        ..Default::default()
    };
    let c = cancel.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        c.store(true, Ordering::SeqCst);
    });
    e.logs(&id, &opts, &mut |_| Ok(())).unwrap();
    assert!(
        cancel.load(Ordering::SeqCst),
        "the follow ended by its cancel"
    );
    setter.join().unwrap();
    assert_eq!(e.state(&id).unwrap().status, berth_engine::Status::Running);
    e.remove(&id, true, true).unwrap();
}
