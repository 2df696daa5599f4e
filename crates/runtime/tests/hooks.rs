//! OCI hooks (runtime spec, config.md "POSIX-platform Hooks"): prestart, createRuntime,
//! createContainer, startContainer, poststart and poststop; when and where each runs, what it
//! gets (state JSON on stdin, args, env), and what its failure or timeout does.
//!
//! Hooks here are `/bin/sh -c SCRIPT` programs. The host's /bin/sh runs every hook but
//! startContainer, which resolves in the container (its busybox sh). Hooks record what they see
//! in the test's private `hooks` directory, bind-mounted at /hooks in the container.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Bundle, Out, WAIT, leftover_cgroups, processes_mentioning, wait_until};
use serde_json::{Value, json};

/// Every hook kind, in the order the spec runs them.
const KINDS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A PATH for hooks (they get exactly the env of their config, nothing from the runtime).
const PATH: &str = "PATH=/usr/local/bin:/usr/bin:/bin";

/// A hook running `sh -c SCRIPT` with a PATH.
fn hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": [PATH]})
}

/// A bundle with the host directory `hooks` bind-mounted at /hooks; returns the host directory.
fn hooks_bundle(name: &str) -> (Bundle, PathBuf) {
    let mut b = Bundle::new(name);
    let dir = b.host_dir("hooks");
    b.bind(&dir, "/hooks", &[]);
    (b, dir)
}

/// The directory a hook of `kind` writes to: the host path, or /hooks in the container.
fn dir_for(kind: &str, host: &Path) -> String {
    if kind == "startContainer" {
        "/hooks".into()
    } else {
        host.display().to_string()
    }
}

/// A hook that saves its stdin to DIR/KIND.json and appends KIND to DIR/log.
fn recording_hook(kind: &str, host: &Path) -> Value {
    let d = dir_for(kind, host);
    hook(&format!("cat > {d}/{kind}.json; echo {kind} >> {d}/log"))
}

/// The lines of the hooks' log.
fn log_lines(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The log without poststart, whose place relative to startContainer and the user process
/// only the test dedicated to it checks.
fn without_poststart(log: &[String]) -> Vec<&str> {
    log.iter()
        .map(String::as_str)
        .filter(|l| *l != "poststart")
        .collect()
}

/// The state a hook saved to DIR/KIND.json.
fn saved_state(dir: &Path, kind: &str) -> Value {
    let p = dir.join(format!("{kind}.json"));
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{kind} got bad JSON ({e}): {text:?}"))
}

/// `create` of the default container.
fn create(b: &Bundle) -> Out {
    b.create(&b.id)
}

/// Run `berth-runtime --root STATE ARGS` with an extra variable in its environment, which must
/// not reach any hook.
fn rt_with_env(b: &Bundle, args: &[&str]) -> Out {
    common::run_cmd(
        Command::new(*BIN)
            .env("BERTH_HOOK_LEAK", "leaked")
            .arg("--root")
            .arg(&b.state_root)
            .args(args),
    )
}

/// The namespace link of `ns` for a process, e.g. "uts:[4026531838]".
fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
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

/// Nothing of a failed `create` is left: no state, no cgroup, no process.
#[track_caller]
fn nothing_left(b: &Bundle) {
    assert!(!b.state_dir_exists(&b.id), "the state directory is left");
    assert!(b.state(&b.id).is_none(), "state still answers");
    assert_eq!(leftover_cgroups(&b.id), Vec::<PathBuf>::new());
    let mut procs = Vec::new();
    let gone = wait_until(WAIT, || {
        procs = processes_mentioning(&b.id);
        procs.is_empty()
    });
    assert!(gone, "processes are left: {procs:?}");
}

#[test]
fn every_hook_runs_once_in_order_with_the_state() {
    let (mut b, dir) = hooks_bundle("hooks-order");
    let mut hooks = json!({});
    for k in KINDS {
        hooks[*k] = json!([recording_hook(k, &dir)]);
    }
    b.cfg["hooks"] = hooks;
    b.cfg["annotations"] = json!({"org.berth.test": "hooks"});
    b.sh("echo process >> /hooks/log; exec sleep 100");
    let id = b.id.clone();
    let bundle = fs::canonicalize(&b.bundle).unwrap();

    create(&b).ok();
    let pid = b.pid(&id);
    assert_eq!(
        log_lines(&dir),
        ["prestart", "createRuntime", "createContainer"],
        "after create"
    );
    for k in ["prestart", "createRuntime", "createContainer"] {
        let st = saved_state(&dir, k);
        assert_eq!(st["status"], "creating", "{k}: {st}");
        assert_eq!(st["id"], id.as_str(), "{k}: {st}");
        assert_eq!(st["pid"].as_i64(), Some(pid as i64), "{k}: {st}");
        assert_eq!(
            Path::new(st["bundle"].as_str().unwrap()),
            bundle,
            "{k}: {st}"
        );
        assert!(st["ociVersion"].is_string(), "{k}: {st}");
        assert_eq!(st["annotations"]["org.berth.test"], "hooks", "{k}: {st}");
    }

    b.start(&id).ok();
    let ok = wait_until(WAIT, || log_lines(&dir).len() >= 6);
    let log = log_lines(&dir);
    assert!(ok, "after start: {log:?}");
    assert_eq!(log.len(), 6, "{log:?}");
    // Where poststart lands is checked by poststart_runs_after_start_container_and_the_exec
    // (the user process may log before or after it, even in runc).
    assert_eq!(
        without_poststart(&log),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "process"
        ],
        "{log:?}"
    );
    assert_eq!(
        log.iter().filter(|l| *l == "poststart").count(),
        1,
        "{log:?}"
    );
    for k in ["startContainer", "poststart"] {
        let st = saved_state(&dir, k);
        assert!(
            st["status"] == "created" || st["status"] == "running",
            "{k}: {st}"
        );
        assert_eq!(st["id"], id.as_str(), "{k}: {st}");
        assert_eq!(st["pid"].as_i64(), Some(pid as i64), "{k}: {st}");
        assert_eq!(
            Path::new(st["bundle"].as_str().unwrap()),
            bundle,
            "{k}: {st}"
        );
    }
    assert_eq!(b.status(&id), "running");

    b.rt(&["kill", &id, "KILL"]).ok();
    b.wait_status(&id, "stopped");
    assert!(!log_lines(&dir).contains(&"poststop".to_string()));
    b.rt(&["delete", &id]).ok();
    let log = log_lines(&dir);
    assert_eq!(log.len(), 7, "{log:?}");
    assert_eq!(log.last().unwrap(), "poststop", "{log:?}");
    let st = saved_state(&dir, "poststop");
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(st["id"], id.as_str(), "{st}");
    assert_eq!(Path::new(st["bundle"].as_str().unwrap()), bundle, "{st}");
}

#[test]
fn run_runs_every_hook_once() {
    let (mut b, dir) = hooks_bundle("hooks-run");
    let mut hooks = json!({});
    for k in KINDS {
        hooks[*k] = json!([recording_hook(k, &dir)]);
    }
    b.cfg["hooks"] = hooks;
    b.sh("echo process >> /hooks/log");
    b.run().ok();
    let log = log_lines(&dir);
    assert_eq!(log.len(), 7, "{log:?}");
    assert_eq!(
        without_poststart(&log),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "process",
            "poststop"
        ],
        "{log:?}"
    );
    assert_eq!(
        log.iter().filter(|l| *l == "poststart").count(),
        1,
        "{log:?}"
    );
    assert!(!b.state_dir_exists(&b.id));
}

/// Shell code that sets `$me` to the shell's pid as seen by the /proc it has mounted at /proc
/// ($$ is the pid in its own pid namespace, which is not the one of /proc for createContainer
/// hooks, which run before pivot_root).
const MY_PID: &str = "read -r me rest < /proc/self/stat";

/// A script that saves its own argv and environment to DIR/KIND.cmdline and DIR/KIND.environ.
fn args_env_script(d: &str, k: &str) -> String {
    // `; true` keeps the shell from exec'ing its last command.
    format!(
        "{MY_PID}; cat /proc/$me/cmdline > {d}/{k}.cmdline; \
         cat /proc/$me/environ > {d}/{k}.environ; true"
    )
}

/// The argv[0] given to the hook of `kind`: busybox, the container's /bin/sh, picks its applet
/// by argv[0], so the startContainer hook must be called "sh".
fn argv0(kind: &str) -> String {
    if kind == "startContainer" {
        "sh".into()
    } else {
        format!("argv0-{kind}")
    }
}

#[test]
fn hooks_get_their_args_and_exactly_their_env() {
    let (mut b, dir) = hooks_bundle("hooks-args-env");
    let mut hooks = json!({});
    for k in KINDS {
        let d = dir_for(k, &dir);
        let script = args_env_script(&d, k);
        hooks[*k] = json!([{
            "path": "/bin/sh",
            "args": [argv0(k), "-c", script, "first", "second arg"],
            "env": [format!("HOOK_KIND={k}"), "HOOK_SPACES=a b  c", PATH],
        }]);
    }
    b.cfg["hooks"] = hooks;
    b.save();
    let id = b.id.clone();
    let bundle = b.bundle.display().to_string();
    rt_with_env(&b, &["create", "--bundle", &bundle, &id]).ok();
    rt_with_env(&b, &["start", &id]).ok();
    b.wait_status(&id, "stopped");
    rt_with_env(&b, &["delete", &id]).ok();

    for k in KINDS {
        let d = dir_for(k, &dir);
        let cmdline = fs::read(dir.join(format!("{k}.cmdline")))
            .unwrap_or_else(|e| panic!("{k} did not run: {e}"));
        let argv: Vec<String> = String::from_utf8_lossy(&cmdline)
            .split_terminator('\0')
            .map(str::to_string)
            .collect();
        let script = args_env_script(&d, k);
        assert_eq!(
            argv,
            [
                argv0(k),
                "-c".into(),
                script,
                "first".into(),
                "second arg".into()
            ],
            "{k}: argv"
        );
        let environ = fs::read(dir.join(format!("{k}.environ"))).unwrap();
        let mut env: Vec<String> = String::from_utf8_lossy(&environ)
            .split_terminator('\0')
            .map(str::to_string)
            .collect();
        env.sort();
        let mut want = vec![
            format!("HOOK_KIND={k}"),
            "HOOK_SPACES=a b  c".to_string(),
            PATH.to_string(),
        ];
        want.sort();
        assert_eq!(env, want, "{k}: environment");
    }
}

#[test]
fn create_runtime_and_prestart_run_in_the_runtime_namespaces() {
    let (mut b, dir) = hooks_bundle("hooks-runtime-ns");
    b.cfg["hostname"] = json!("hooks-ctr");
    let mut hooks = json!({});
    for k in ["prestart", "createRuntime"] {
        let d = dir.display();
        hooks[k] = json!([hook(&format!(
            "for n in uts mnt pid net ipc; do readlink /proc/self/ns/$n; done > {d}/{k}.ns; \
             cat /proc/sys/kernel/hostname > {d}/{k}.hostname"
        ))]);
    }
    b.cfg["hooks"] = hooks;
    create(&b).ok();
    let host_ns: String = ["uts", "mnt", "pid", "net", "ipc"]
        .iter()
        .map(|n| ns_link("self", n) + "\n")
        .collect();
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for k in ["prestart", "createRuntime"] {
        assert_eq!(
            fs::read_to_string(dir.join(format!("{k}.ns"))).unwrap(),
            host_ns,
            "{k}: namespaces"
        );
        assert_eq!(
            fs::read_to_string(dir.join(format!("{k}.hostname"))).unwrap(),
            host_name,
            "{k}: hostname"
        );
    }
}

#[test]
fn create_container_runs_in_the_container_namespaces_before_pivot_root() {
    let (mut b, dir) = hooks_bundle("hooks-ctr-ns");
    b.cfg["hostname"] = json!("hooks-ctr");
    let d = dir.display();
    let rootfs = b.rootfs.display();
    b.cfg["hooks"] = json!({"createContainer": [hook(&format!(
        "for n in uts mnt pid net ipc cgroup; do readlink /proc/self/ns/$n; done > {d}/ns; \
         cat /proc/sys/kernel/hostname > {d}/hostname; \
         test -e {rootfs}/bin/busybox && echo host-paths >> {d}/root; \
         test -e {rootfs}/proc/self/status && echo proc-mounted >> {d}/root"
    ))]});
    create(&b).ok();
    let pid = b.pid(&b.id).to_string();
    let init_ns: String = ["uts", "mnt", "pid", "net", "ipc", "cgroup"]
        .iter()
        .map(|n| ns_link(&pid, n) + "\n")
        .collect();
    assert_eq!(fs::read_to_string(dir.join("ns")).unwrap(), init_ns);
    assert_ne!(ns_link(&pid, "mnt"), ns_link("self", "mnt"));
    assert_eq!(
        fs::read_to_string(dir.join("hostname")).unwrap(),
        "hooks-ctr\n"
    );
    // Before pivot_root: host paths resolve, and the container's mounts are made.
    assert_eq!(
        fs::read_to_string(dir.join("root")).unwrap(),
        "host-paths\nproc-mounted\n"
    );
}

#[test]
fn start_container_runs_inside_the_container() {
    let (mut b, dir) = hooks_bundle("hooks-start-ctr");
    b.cfg["hostname"] = json!("hooks-ctr");
    b.cfg["root"]["readonly"] = json!(false);
    // /bin/sh here is the container's busybox; / is the container's root.
    b.cfg["hooks"] = json!({"startContainer": [hook(
        "echo x > /started; hostname > /hooks/hostname; readlink /proc/self/ns/mnt > /hooks/mnt"
    )]});
    b.sh("cat /started > /hooks/user-saw");
    create(&b).ok();
    let init_mnt = ns_link(&b.pid(&b.id).to_string(), "mnt");
    assert!(!b.rootfs.join("started").exists(), "ran before start");
    b.start(&b.id).ok();
    b.wait_status(&b.id, "stopped");
    assert_eq!(fs::read_to_string(b.rootfs.join("started")).unwrap(), "x\n");
    assert_eq!(fs::read_to_string(dir.join("user-saw")).unwrap(), "x\n");
    assert_eq!(
        fs::read_to_string(dir.join("hostname")).unwrap(),
        "hooks-ctr\n"
    );
    assert_eq!(
        fs::read_to_string(dir.join("mnt")).unwrap().trim(),
        init_mnt
    );
}

/// `create` with a failing hook of `kind` at index 1 (after one that succeeds).
fn failing_create_hook(name: &str, kind: &str) {
    let (mut b, dir) = hooks_bundle(name);
    let d = dir.display();
    b.cfg["hooks"] = json!({kind: [
        hook(&format!("echo first >> {d}/log")),
        hook(&format!("echo second >> {d}/log; exit 1")),
        hook(&format!("echo third >> {d}/log")),
    ]});
    b.args(&["sleep", "100"]);
    let out = create(&b).failed();
    assert!(
        out.stderr.contains(&format!("hooks.{kind}[1]")),
        "the error should name the hook: {out:?}"
    );
    assert_eq!(log_lines(&dir), ["first", "second"]);
    nothing_left(&b);
}

#[test]
fn failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    failing_create_hook("hooks-fail-cr", "createRuntime");
}

#[test]
fn failing_prestart_hook_fails_create_and_leaves_nothing() {
    failing_create_hook("hooks-fail-pre", "prestart");
}

#[test]
fn failing_create_container_hook_fails_create_and_leaves_nothing() {
    failing_create_hook("hooks-fail-cc", "createContainer");
}

#[test]
fn missing_hook_program_fails_create() {
    let (mut b, _) = hooks_bundle("hooks-missing");
    b.cfg["hooks"] = json!({"createRuntime": [{"path": "/nonexistent/hook"}]});
    let out = create(&b).failed();
    assert!(out.stderr.contains("hooks.createRuntime[0]"), "{out:?}");
    nothing_left(&b);
}

/// A hook of `kind` that outlives its one-second timeout fails `create` and is killed.
fn hook_timeout(name: &str, kind: &str) {
    let (mut b, dir) = hooks_bundle(name);
    let d = dir.display();
    b.cfg["hooks"] = json!({kind: [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("{MY_PID}; echo $me > {d}/hook.pid; exec sleep 10")],
        "env": [PATH],
        "timeout": 1,
    }]});
    b.args(&["sleep", "100"]);
    let t = Instant::now();
    let out = create(&b).failed();
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "create waited for the hook to finish ({took:?})"
    );
    assert!(out.stderr.contains(&format!("hooks.{kind}[0]")), "{out:?}");
    let pid: i32 = fs::read_to_string(dir.join("hook.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(WAIT, || !alive(pid)),
        "the timed-out hook {pid} is still running"
    );
    nothing_left(&b);
}

#[test]
fn create_runtime_hook_timeout_fails_create_and_kills_the_hook() {
    hook_timeout("hooks-timeout-cr", "createRuntime");
}

#[test]
fn create_container_hook_timeout_fails_create_and_kills_the_hook() {
    hook_timeout("hooks-timeout-cc", "createContainer");
}

#[test]
fn failing_poststart_hook_only_warns() {
    let (mut b, dir) = hooks_bundle("hooks-fail-poststart");
    b.cfg["hooks"] = json!({"poststart": [hook("exit 1")]});
    b.sh("echo ran > /hooks/ran; exec sleep 100");
    create(&b).ok();
    let out = b.start(&b.id);
    assert_eq!(out.code, 0, "start should succeed: {out:?}");
    assert!(
        out.stderr.contains("hooks.poststart[0]"),
        "warning: {out:?}"
    );
    assert!(wait_until(WAIT, || dir.join("ran").exists()));
    assert_eq!(b.status(&b.id), "running");
}

#[test]
fn failing_poststart_hook_does_not_stop_the_next_ones() {
    let (mut b, dir) = hooks_bundle("hooks-fail-poststart-next");
    let d = dir.display();
    b.cfg["hooks"] = json!({"poststart": [
        hook("exit 1"),
        hook(&format!("echo second >> {d}/log")),
    ]});
    b.args(&["sleep", "100"]);
    create(&b).ok();
    b.start(&b.id).ok();
    assert_eq!(log_lines(&dir), ["second"]);
}

#[test]
fn failing_poststop_hook_only_warns() {
    let (mut b, _) = hooks_bundle("hooks-fail-poststop");
    b.cfg["hooks"] = json!({"poststop": [hook("exit 1")]});
    create(&b).ok();
    b.start(&b.id).ok();
    b.wait_status(&b.id, "stopped");
    let out = b.rt(&["delete", &b.id]);
    assert_eq!(out.code, 0, "delete should succeed: {out:?}");
    assert!(out.stderr.contains("hooks.poststop[0]"), "warning: {out:?}");
    assert!(!b.state_dir_exists(&b.id));
    assert!(b.state(&b.id).is_none());
    assert_eq!(leftover_cgroups(&b.id), Vec::<PathBuf>::new());
}

#[test]
fn failing_poststop_hook_does_not_stop_the_next_ones() {
    let (mut b, dir) = hooks_bundle("hooks-fail-poststop-next");
    let d = dir.display();
    b.cfg["hooks"] = json!({"poststop": [
        hook("exit 1"),
        hook(&format!("echo second >> {d}/log")),
    ]});
    create(&b).ok();
    b.start(&b.id).ok();
    b.wait_status(&b.id, "stopped");
    b.rt(&["delete", &b.id]).ok();
    assert_eq!(log_lines(&dir), ["second"]);
}

#[test]
fn failing_start_container_hook_keeps_the_user_process_from_running() {
    let (mut b, dir) = hooks_bundle("hooks-fail-startctr");
    b.cfg["hooks"] = json!({"startContainer": [hook("echo hook >> /hooks/log; exit 1")]});
    b.sh("echo ran > /hooks/ran");
    create(&b).ok();
    let _ = b.start(&b.id);
    b.wait_status(&b.id, "stopped");
    assert_eq!(log_lines(&dir), ["hook"], "the hook did not run");
    assert!(!dir.join("ran").exists(), "the user process ran");
}

#[test]
fn poststart_runs_after_start_container_and_the_exec() {
    let (mut b, dir) = hooks_bundle("hooks-poststart-after");
    let d = dir.display();
    // The startContainer hook takes a while; poststart records what the init is running.
    b.cfg["hooks"] = json!({
        "startContainer": [hook("sleep 0.5; echo startContainer >> /hooks/log")],
        "poststart": [hook(&format!(
            "echo poststart >> {d}/log; \
             pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); \
             tr '\\0' ' ' < /proc/$pid/cmdline > {d}/poststart.cmdline"
        ))],
    });
    b.args(&["sleep", "100"]);
    create(&b).ok();
    b.start(&b.id).ok();
    // poststart has run by the time start returns.
    assert_eq!(
        fs::read_to_string(dir.join("poststart.cmdline")).unwrap_or_default(),
        "sleep 100 ",
        "poststart ran before the user process was executed"
    );
    assert!(wait_until(WAIT, || log_lines(&dir).len() == 2));
    assert_eq!(log_lines(&dir), ["startContainer", "poststart"]);
}
