//! cgroup limits biting for real on containers run by the `berth-runtime` binary: memory (OOM
//! kill and the `oom` event), pids, cpu quota, pause/resume, live `update`, the device cgroup
//! (v1 `devices` controller, v2 eBPF program) and no cgroup left behind afterwards.
//!
//! Every test passes on a cgroup v1 (hybrid) host and on a pure cgroup v2 one.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_cgroups::Layout;
use common::{BIN, Bundle, Out, WAIT, wait_until};
use serde_json::{Value, json};

/// Applets these tests need on top of the ones `Bundle` links.
const MORE_APPLETS: &[&str] = &["seq", "tr", "yes"];

/// A bundle with the extra applets and a host directory bind-mounted at /out.
fn bundle(name: &str) -> (Bundle, PathBuf) {
    let mut b = Bundle::new(&format!("cg-{name}"));
    for a in MORE_APPLETS {
        let _ = symlink("busybox", b.rootfs.join("bin").join(a));
    }
    let out = b.host_dir("out");
    b.bind(&out, "/out", &[]);
    (b, out)
}

/// Every cgroup directory of container `id` under the default path `/berth/<id>`, in any
/// hierarchy (`/sys/fs/cgroup/*/berth/<id>` on v1, `/sys/fs/cgroup/berth/<id>` on v2).
fn cgroup_dirs_of(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut found = Vec::new();
    let direct = root.join("berth").join(id);
    if direct.exists() {
        found.push(direct);
    }
    for e in fs::read_dir(root).into_iter().flatten().flatten() {
        let p = e.path().join("berth").join(id);
        if p.exists() {
            found.push(p);
        }
    }
    found
}

/// Drop the bundle (its guard runs `delete --force` on every container of its `--root`), then
/// check that no cgroup directory of the given containers is left.
#[track_caller]
fn finish(b: Bundle, ids: &[&str]) {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    drop(b);
    for id in ids {
        let left = cgroup_dirs_of(&id);
        assert!(left.is_empty(), "cgroup directories left behind: {left:?}");
    }
}

fn v2() -> bool {
    matches!(Layout::detect().expect("cgroup layout"), Layout::V2 { .. })
}

/// The host directory of a process's cgroup for `controller` (v1), or its v2 directory.
fn cgroup_dir_of_pid(pid: i32, controller: &str) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup");
    let entries: Vec<(Vec<&str>, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            let subs = it.next()?;
            let path = it.next()?;
            let subs = if subs.is_empty() {
                Vec::new()
            } else {
                subs.split(',').collect()
            };
            Some((subs, path))
        })
        .collect();
    match Layout::detect().expect("layout") {
        Layout::V2 { root } => {
            let p = entries
                .iter()
                .find(|(s, _)| s.is_empty())
                .expect("v2 entry")
                .1;
            root.join(p.trim_start_matches('/'))
        }
        Layout::V1 { hierarchies, .. } => {
            let h = hierarchies
                .iter()
                .find(|h| h.has(controller))
                .unwrap_or_else(|| panic!("no {controller} hierarchy"));
            let p = entries
                .iter()
                .find(|(s, _)| s.contains(&controller))
                .unwrap_or_else(|| panic!("{pid} has no {controller} cgroup: {text}"))
                .1;
            let rel = Path::new(p)
                .strip_prefix(&h.root)
                .unwrap_or(Path::new(p.trim_start_matches('/')));
            h.mount_point
                .join(rel.to_str().unwrap().trim_start_matches('/'))
        }
    }
}

fn read_trim(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// `events --stats ID`, parsed: the `data` object.
fn stats(b: &Bundle, id: &str) -> Value {
    let out = b.rt(&["events", "--stats", id]).ok();
    let v: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("events --stats: bad JSON ({e}): {out:?}"));
    assert_eq!(v["type"], "stats", "{v}");
    v["data"].clone()
}

/// A background `berth-runtime events ID` writing its stdout to a file; killed on drop.
struct Events {
    child: Child,
    out: PathBuf,
}

impl Events {
    fn spawn(b: &Bundle, id: &str) -> Events {
        let out = b.dir.join(format!("events-{id}.out"));
        let child = Command::new(*BIN)
            .arg("--root")
            .arg(&b.state_root)
            .args(["events", "--interval", "1s", id])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(b.dir.join(format!("events-{id}.err"))).unwrap())
            .spawn()
            .expect("spawn events");
        Events { child, out }
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Wait (bounded) until `events` has printed its first stats line: it has loaded the
    /// container, noted its OOM count, and streams.
    #[track_caller]
    fn wait_streaming(&self) {
        let ok = wait_until(DEADLINE, || {
            self.text()
                .lines()
                .any(|l| l.contains("\"type\":\"stats\""))
        });
        let err = fs::read_to_string(self.out.with_extension("err")).unwrap_or_default();
        assert!(
            ok,
            "events printed no stats line: {:?} {err:?}",
            self.text()
        );
    }

    /// Wait (bounded) for `events` to exit on its own (it does once the container stops).
    fn wait_exit(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Create and start container `id`, asserting both succeed.
#[track_caller]
fn create_start(b: &Bundle, id: &str) {
    b.create(id).ok();
    b.start(id).ok();
}

/// Bytes the container could not hold under a 32 MiB limit: the shell keeps the output of a
/// command substitution in memory.
const HOG: &str = r#"x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived ${#x}"#;

const MIB: i64 = 1024 * 1024;

/// The bound of waits for things a slow (emulated) machine may take long to do.
const DEADLINE: Duration = Duration::from_secs(60);

fn limit_memory(b: &mut Bundle, bytes: i64) {
    b.cfg["linux"]["resources"]["memory"] = json!({"limit": bytes, "swap": bytes});
}

#[test]
fn memory_limit_oom_kills_the_container() {
    let (mut b, _out) = bundle("oom-run");
    limit_memory(&mut b, 32 * MIB);
    b.sh(HOG);
    let out = b.run();
    assert_eq!(out.code, 137, "the init should be OOM-killed: {out:?}");
    assert!(!out.stdout.contains("survived"), "{out:?}");
    let id = b.id.clone();
    finish(b, &[&id]);
}

#[test]
fn memory_oom_is_an_event() {
    let (mut b, _out) = bundle("oom-events");
    limit_memory(&mut b, 32 * MIB);
    // the init itself is OOM-killed, so the container stops right away
    b.sh(HOG);
    let id = b.id.clone();
    b.create(&id).ok();
    let mut ev = Events::spawn(&b, &id);
    // events knows the OOM count from before the start
    ev.wait_streaming();
    b.start(&id).ok();
    // filling 32 MiB through a pipe takes a while on a slow (emulated) machine
    assert!(
        wait_until(Duration::from_secs(90), || b.status(&id) == "stopped"),
        "the container was not OOM-killed: {:?}",
        b.state(&id)
    );
    assert!(
        ev.wait_exit(WAIT),
        "events did not exit once the container stopped"
    );
    let text = ev.text();
    let oom = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|v| v["type"] == "oom" && v["id"] == json!(id));
    assert!(oom, "no oom event: {text}");
    // the stopped container's cgroup is there until delete: the peak stayed at the limit
    let s = stats(&b, &id);
    let mem = &s["memory"]["usage"];
    assert_eq!(mem["limit"], json!(32 * MIB), "{s}");
    let peak = mem["max"].as_u64().unwrap_or(0);
    eprintln!("memory: limit {} peak {peak}", 32 * MIB);
    assert!(peak <= 32 * MIB as u64, "peak {peak} over the limit");
    drop(ev);
    finish(b, &[&id]);
}

/// A streaming `events` must not keep the container locked: `state`, `start`, `kill`, `delete`
/// go on while it runs (as with runc).
#[test]

fn events_does_not_lock_out_other_commands() {
    let (mut b, _out) = bundle("events-lock");
    b.sh("sleep 100");
    let id = b.id.clone();
    b.create(&id).ok();
    let ev = Events::spawn(&b, &id);
    ev.wait_streaming();
    let mut state = Command::new(*BIN)
        .arg("--root")
        .arg(&b.state_root)
        .args(["state", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = wait_until(Duration::from_secs(5), || {
        state.try_wait().unwrap().is_some()
    });
    let _ = state.kill();
    let _ = state.wait();
    drop(ev);
    assert!(done, "`state` blocked while `events` runs");
    finish(b, &[&id]);
}

#[test]
fn pids_limit_makes_forks_fail() {
    let (mut b, out) = bundle("pids");
    b.cfg["linux"]["resources"]["pids"] = json!({"limit": 10});
    // ash gives up on the first failed fork, so the loop runs in a child shell; the init then
    // execs (no fork needed) to stay around
    b.sh(
        "sh -c 'for i in $(seq 30); do sleep 5 & done' 2>/out/err; echo spawned > /out/done; \
         exec sleep 5",
    );
    let id = b.id.clone();
    create_start(&b, &id);
    assert!(
        wait_until(WAIT, || out.join("done").exists()),
        "the loop did not finish"
    );
    let err = fs::read_to_string(out.join("err")).unwrap();
    assert!(err.contains("can't fork"), "no fork failure: {err:?}");
    let ps = b.rt(&["ps", "--format", "json", &id]).ok();
    let pids: Vec<i32> = serde_json::from_str(ps.stdout.trim()).expect("ps json");
    assert!(
        (2..=10).contains(&pids.len()),
        "{} tasks: {pids:?}",
        pids.len()
    );
    let s = stats(&b, &id);
    assert_eq!(s["pids"]["limit"], 10, "{s}");
    let current = s["pids"]["current"].as_u64().unwrap();
    assert!(current <= 10, "{s}");
    eprintln!("pids: {} in ps, current {current}, limit 10", pids.len());
    b.rt(&["kill", &id, "KILL"]).ok();
    b.wait_status(&id, "stopped");
    finish(b, &[&id]);
}

#[test]
fn cpu_quota_throttles() {
    let (mut b, _out) = bundle("cpu");
    b.cfg["linux"]["resources"]["cpu"] = json!({"quota": 20000, "period": 100000});
    b.sh("while :; do :; done");
    let id = b.id.clone();
    create_start(&b, &id);
    let usage = |s: &Value| s["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    let periods = |s: &Value| s["cpu"]["throttling"]["periods"].as_u64().unwrap_or(0);
    let throttled = |s: &Value| {
        s["cpu"]["throttling"]["throttledPeriods"]
            .as_u64()
            .unwrap_or(0)
    };
    // The loop runs once it has used CPU time.
    assert!(
        wait_until(DEADLINE, || usage(&stats(&b, &id)) > 0),
        "no cpu usage: {}",
        stats(&b, &id)
    );
    // Measure over 20 enforcement periods of 100 ms (about 2 s), however slow the machine,
    // and until the quota has throttled the loop at least once.
    let (t0, s0) = (Instant::now(), stats(&b, &id));
    let mut s1 = s0.clone();
    let enough = wait_until(DEADLINE, || {
        s1 = stats(&b, &id);
        periods(&s1) >= periods(&s0) + 20 && throttled(&s1) > throttled(&s0)
    });
    let t1 = Instant::now();
    let used = usage(&s1).saturating_sub(usage(&s0)) as f64;
    let wall = (t1 - t0).as_nanos() as f64;
    let share = used / wall;
    let (throttled, periods) = (throttled(&s1), periods(&s1));
    eprintln!(
        "cpu: {:.1}% of one CPU over {:.2}s, {throttled}/{periods} periods throttled",
        share * 100.0,
        wall / 1e9
    );
    assert!(
        enough,
        "20 periods with a throttled one did not pass: {s0} -> {s1}"
    );
    assert!(used > 0.0, "no cpu usage: {s1}");
    assert!(share < 0.5, "used {:.1}% of a CPU", share * 100.0);
    assert!(throttled > 0, "never throttled: {s1}");
    b.rt(&["kill", &id, "KILL"]).ok();
    b.wait_status(&id, "stopped");
    finish(b, &[&id]);
}

#[test]
fn pause_stops_the_container_and_resume_continues_it() {
    let (mut b, out) = bundle("pause");
    b.sh("while :; do echo x >> /out/count; sleep 0.05; done");
    let id = b.id.clone();
    create_start(&b, &id);
    let count = out.join("count");
    let size = || fs::metadata(&count).map(|m| m.len()).unwrap_or(0);
    assert!(wait_until(WAIT, || size() >= 4), "the counter does not run");
    b.rt(&["pause", &id]).ok();
    assert_eq!(b.status(&id), "paused");
    let frozen_at = size();
    // Something that must NOT happen (the counter advancing) can only be given time: 600 ms is
    // 12 of its 50 ms steps.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(size(), frozen_at, "the counter advanced while paused");
    assert_eq!(b.status(&id), "paused");
    b.rt(&["resume", &id]).ok();
    assert_eq!(b.status(&id), "running");
    assert!(
        wait_until(WAIT, || size() >= frozen_at + 4),
        "the counter did not advance after resume"
    );
    b.rt(&["kill", &id, "KILL"]).ok();
    b.wait_status(&id, "stopped");
    finish(b, &[&id]);
}

#[test]
fn update_changes_memory_and_pids_limits_of_a_running_container() {
    let (mut b, _out) = bundle("update");
    b.sh("sleep 1000");
    let id = b.id.clone();
    create_start(&b, &id);
    let pid = b.pid(&id);
    let mem_dir = cgroup_dir_of_pid(pid, "memory");
    let mem_file = mem_dir.join(if v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    });
    b.rt(&["update", "--memory", "64m", &id]).ok();
    assert_eq!(read_trim(&mem_file), (64 * MIB).to_string());
    let s = stats(&b, &id);
    assert_eq!(s["memory"]["usage"]["limit"], json!(64 * MIB), "{s}");

    // forks are fine before the pids limit
    let fork = ["for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo forked"];
    let before = b
        .rt(&[&["exec", &id, "sh", "-c"][..], &fork[..]].concat())
        .ok();
    assert!(before.stdout.contains("forked"), "{before:?}");
    assert!(!before.stderr.contains("can't fork"), "{before:?}");

    b.rt(&["update", "--pids-limit", "5", &id]).ok();
    let pids_file = cgroup_dir_of_pid(pid, "pids").join("pids.max");
    assert_eq!(read_trim(&pids_file), "5");
    let after = b.rt(&[&["exec", &id, "sh", "-c"][..], &fork[..]].concat());
    assert!(
        after.stderr.contains("can't fork"),
        "forks should fail under pids.max 5: {after:?}"
    );
    b.rt(&["kill", &id, "KILL"]).ok();
    b.wait_status(&id, "stopped");
    finish(b, &[&id]);
}

#[test]
fn device_cgroup_denies_by_default() {
    let (mut b, _out) = bundle("dev-deny");
    b.add_cap("CAP_MKNOD");
    // mknod itself is allowed ("m" on every device by the runtime's default rules) or fails;
    // opening the node must be refused by the cgroup either way
    b.sh(
        "mknod /dev/sda b 8 0 && echo mknod-ok; head -c 1 /dev/sda >/dev/null; echo read=$?; \
         echo x > /dev/null && echo null-ok",
    );
    let out = b.run().ok();
    assert!(out.stdout.contains("read=1"), "{out:?}");
    assert!(out.stdout.contains("null-ok"), "{out:?}");
    if out.stdout.contains("mknod-ok") {
        assert!(
            out.stderr.contains("/dev/sda: Operation not permitted"),
            "the device cgroup should refuse /dev/sda: {out:?}"
        );
    }
    let id = b.id.clone();
    finish(b, &[&id]);
}

#[test]
fn device_cgroup_allow_rule_lets_open_through() {
    let (mut b, _out) = bundle("dev-allow");
    b.add_cap("CAP_MKNOD");
    b.cfg["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm"}));
    // The host may have no disk 8:0 (ENXIO, "No such device or address"); what matters is that
    // the cgroup's EPERM is gone.
    b.sh("mknod /dev/sda b 8 0 && echo mknod-ok; head -c 1 /dev/sda >/dev/null; true");
    let out = b.run().ok();
    assert!(out.stdout.contains("mknod-ok"), "{out:?}");
    assert!(!out.stderr.contains("Operation not permitted"), "{out:?}");
    // a deny rule after the allow wins again (last match wins)
    b.cfg["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": false, "type": "b", "major": 8, "minor": 0, "access": "r"}));
    let out = b.run().ok();
    assert!(
        out.stderr.contains("/dev/sda: Operation not permitted"),
        "{out:?}"
    );
    let id = b.id.clone();
    finish(b, &[&id]);
}

#[test]
fn failed_create_leaves_no_cgroup() {
    let (mut b, _out) = bundle("failed-create");
    // the cgroup is made and the init is inside it before this is found to be impossible
    b.cfg["linux"]["resources"]["unified"] = json!({"nosuch.file": "1"});
    b.sh("sleep 100");
    let id = b.id.clone();
    let out: Out = b.create(&id).failed();
    assert!(out.stderr.contains("nosuch.file"), "{out:?}");
    assert!(cgroup_dirs_of(&id).is_empty(), "{:?}", cgroup_dirs_of(&id));
    assert!(!b.state_dir_exists(&id));
    // an invalid memory value, found while applying
    b.cfg["linux"]["resources"] = json!({"memory": {"limit": -5}});
    let out = b.create(&id).failed();
    assert!(out.stderr.contains("memory"), "{out:?}");
    finish(b, &[&id]);
}

/// Every line of /proc/PID/cgroup (each v1 hierarchy, and the cgroup2 one) names the
/// container's cgroup `/berth/<id>`.
#[track_caller]
fn assert_in_cgroup_everywhere(pid: i32, id: &str) {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup");
    let want = format!("/berth/{id}");
    assert!(!text.is_empty());
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or_default();
        assert_eq!(
            path, want,
            "process {pid} is not in {want} everywhere:\n{text}"
        );
    }
}

/// The init and an exec'd process join every hierarchy of the container's cgroup: by
/// themselves (cloned into the cgroup2 part, writing to the v1 `tasks` files) and, in a user
/// namespace, through the parent's `cgroup.procs` writes.
#[test]
fn init_and_exec_processes_are_in_every_hierarchy_of_the_cgroup() {
    for userns in [false, true] {
        let (mut b, _out) = bundle(if userns { "join-userns" } else { "join" });
        if userns {
            b.with_ns("user", None);
            let map = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
            b.cfg["linux"]["uidMappings"] = map.clone();
            b.cfg["linux"]["gidMappings"] = map;
        }
        b.sh("exec sleep 60");
        let id = b.id.clone();
        create_start(&b, &id);
        let init = b.pid(&id);
        assert_in_cgroup_everywhere(init, &id);
        let pid_file = b.dir.join("exec.pid");
        b.rt(&[
            "exec",
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
            "sleep",
            "60",
        ])
        .ok();
        let exec_pid: i32 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_in_cgroup_everywhere(exec_pid, &id);
        b.rt(&["kill", "--all", &id, "KILL"]).ok();
        b.wait_status(&id, "stopped");
        finish(b, &[&id]);
    }
}
