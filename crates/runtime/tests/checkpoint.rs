//! `checkpoint` and `restore` with CRIU (>= 4.1, installed by scripts/install-criu.sh): a
//! counting process resumes its count, `--leave-running`, established TCP connections, and
//! failures that leave the container as it was (checkpoint) or nothing at all (restore).
//!
//! The containers here get /dev/null as their standard streams: CRIU cannot checkpoint a
//! descriptor of a host file outside the container (runc has the same rule), and the files
//! through which `common::run_cmd` collects output are such files. Errors are read from the
//! runtime's `--log` file instead.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Bundle, Out, WAIT, exit_code, leftover_cgroups, wait_until};

/// `berth-runtime --root STATE --log LOG ARGS...` with /dev/null as stdio; stderr is the log.
fn rt_quiet(b: &Bundle, args: &[&str]) -> Out {
    let log = b.dir.join("runtime.log");
    let _ = fs::remove_file(&log);
    let status = Command::new(*BIN)
        .arg("--root")
        .arg(&b.state_root)
        .arg("--log")
        .arg(&log)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn berth-runtime");
    Out {
        code: exit_code(status),
        stdout: String::new(),
        stderr: fs::read_to_string(&log).unwrap_or_default(),
    }
}

/// The number in a file the container writes (0 while it is missing or half-written).
fn count(p: &Path) -> u64 {
    fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A container counting into /shared/count every 20 ms (the count lives in the shell's
/// memory), started with `run -d`; returns the count file.
fn counter(b: &mut Bundle, id: &str) -> PathBuf {
    let shared = b.host_dir("shared");
    b.bind(&shared, "/shared", &[]);
    b.sh(
        "i=0; while true; do i=$((i+1)); echo $i > /shared/count.new; \
          mv /shared/count.new /shared/count; sleep 0.02; done",
    );
    b.save();
    rt_quiet(
        b,
        &["run", "-d", "--bundle", b.bundle.to_str().unwrap(), id],
    )
    .ok();
    let file = shared.join("count");
    assert!(
        wait_until(WAIT, || count(&file) >= 5),
        "the counter did not count"
    );
    file
}

/// Whether a process is alive (present and not a zombie: a detached container's init may
/// wait for a slow reaper).
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !matches!(
            s[s.rfind(')').unwrap() + 2..].chars().next(),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

fn images(b: &Bundle) -> String {
    b.dir.join("images").display().to_string()
}

#[test]
fn a_checkpointed_counter_resumes_its_count_after_restore() {
    let mut b = Bundle::new("ckpt-count");
    let id = b.id.clone();
    let file = counter(&mut b, &id);
    let pid = b.pid(&id);
    let img = images(&b);
    rt_quiet(&b, &["checkpoint", "--image-path", &img, &id]).ok();
    // Without --leave-running the container is gone, as with runc: process, state, cgroup.
    assert!(b.state(&id).is_none(), "the container is still there");
    assert!(!alive(pid), "pid {pid} lives on");
    assert!(
        leftover_cgroups(&id).is_empty(),
        "{:?}",
        leftover_cgroups(&id)
    );
    let at_checkpoint = count(&file);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count(&file),
        at_checkpoint,
        "counting went on after the checkpoint"
    );
    for f in [
        "inventory.img",
        "pstree.img",
        "descriptors.json",
        "dump.log",
    ] {
        assert!(Path::new(&img).join(f).exists(), "{f} is not in the images");
    }

    // A root filesystem prepared elsewhere may give / another mode (podman's is 0555): the
    // restore gives it back the dumped one, which CRIU insists on.
    use std::os::unix::fs::PermissionsExt;
    let rootfs = b.bundle.join("rootfs");
    let mode = fs::metadata(&rootfs).unwrap().permissions().mode() & 0o7777;
    let other = if mode == 0o555 { 0o755 } else { 0o555 };
    fs::set_permissions(&rootfs, fs::Permissions::from_mode(other)).unwrap();

    let restored = format!("{id}-r");
    let pid_file = b.dir.join("restored.pid");
    rt_quiet(
        &b,
        &[
            "restore",
            "-d",
            "--image-path",
            &img,
            "--work-path",
            b.dir.join("work").to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--bundle",
            b.bundle.to_str().unwrap(),
            &restored,
        ],
    )
    .ok();
    assert_eq!(b.status(&restored), "running");
    let new_pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(b.pid(&restored), new_pid);
    assert!(b.dir.join("work/restore.log").exists());
    assert_eq!(
        fs::metadata(&rootfs).unwrap().permissions().mode() & 0o7777,
        mode
    );
    // The count goes on from where it was, not from 1.
    assert!(
        wait_until(WAIT, || count(&file) > at_checkpoint + 5),
        "the restored counter does not count (still {})",
        count(&file)
    );
    // It is in the container's own cgroup again, with the config's limits' files there.
    let cg = fs::read_to_string(format!("/proc/{new_pid}/cgroup")).unwrap();
    assert!(
        cg.lines()
            .all(|l| l.ends_with(&format!("/berth/{restored}"))),
        "{cg}"
    );
    rt_quiet(&b, &["kill", &restored, "KILL"]).ok();
    assert!(wait_until(WAIT, || b.status(&restored) == "stopped"));
    rt_quiet(&b, &["delete", &restored]).ok();
    assert!(leftover_cgroups(&restored).is_empty());
}

#[test]
fn leave_running_keeps_the_container_counting() {
    let mut b = Bundle::new("ckpt-leave");
    let id = b.id.clone();
    let file = counter(&mut b, &id);
    let img = images(&b);
    rt_quiet(
        &b,
        &["checkpoint", "--leave-running", "--image-path", &img, &id],
    )
    .ok();
    assert_eq!(b.status(&id), "running");
    let n = count(&file);
    assert!(
        wait_until(WAIT, || count(&file) > n + 3),
        "it stopped counting"
    );
    assert!(Path::new(&img).join("pstree.img").exists());
    // `state` still reports the same process.
    assert!(b.pid(&id) > 0);
}

#[test]
fn an_established_tcp_connection_survives_with_tcp_established() {
    let mut b = Bundle::new("ckpt-tcp");
    let id = b.id.clone();
    let shared = b.host_dir("shared");
    b.bind(&shared, "/shared", &[]);
    // Both ends in the container's network namespace: a server writing what it receives, and
    // a client sending a line every 50 ms over one connection.
    // (The server's stdin is a pipe that stays open: busybox nc closes the connection at EOF.)
    b.sh("sleep 1000 | nc -l -p 5000 > /shared/got & sleep 0.3; \
          i=0; while true; do i=$((i+1)); echo line$i; sleep 0.05; done | nc 127.0.0.1 5000");
    b.save();
    rt_quiet(
        &b,
        &["run", "-d", "--bundle", b.bundle.to_str().unwrap(), &id],
    )
    .ok();
    let got = shared.join("got");
    let lines = || {
        fs::read_to_string(&got)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    assert!(
        wait_until(WAIT, || lines() >= 3),
        "no data over the connection"
    );
    let img = images(&b);

    // Without the flag CRIU refuses, and the container runs on untouched.
    let out = rt_quiet(&b, &["checkpoint", "--image-path", &img, &id]).failed();
    assert!(out.stderr.contains("criu dump failed"), "{}", out.stderr);
    assert!(out.stderr.contains("tcp-established"), "{}", out.stderr);
    assert_eq!(b.status(&id), "running");
    let n = lines();
    assert!(
        wait_until(WAIT, || lines() > n + 2),
        "the connection stalled after a failed checkpoint"
    );

    let _ = fs::remove_dir_all(&img);
    rt_quiet(
        &b,
        &["checkpoint", "--tcp-established", "--image-path", &img, &id],
    )
    .ok();
    assert!(b.state(&id).is_none());
    let before = lines();
    let restored = format!("{id}-r");
    rt_quiet(
        &b,
        &[
            "restore",
            "-d",
            "--tcp-established",
            "--image-path",
            &img,
            "--bundle",
            b.bundle.to_str().unwrap(),
            &restored,
        ],
    )
    .ok();
    assert!(
        wait_until(WAIT, || lines() > before + 3),
        "the restored connection carries no data"
    );
    // The same connection: the line numbers go on without a gap or a restart at 1.
    let text = fs::read_to_string(&got).unwrap();
    let nums: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("line")?.parse().ok())
        .collect();
    assert!(
        nums.windows(2).all(|w| w[1] == w[0] + 1),
        "lines lost or repeated: {nums:?}"
    );
    rt_quiet(&b, &["delete", "--force", &restored]).ok();
}

#[test]
fn a_failed_restore_leaves_nothing_behind() {
    let b = Bundle::new("ckpt-badrestore");
    b.save();
    let img = b.dir.join("images");
    fs::create_dir_all(&img).unwrap();
    fs::write(img.join("inventory.img"), b"not a criu image").unwrap();
    let id = format!("{}-r", b.id);
    let out = rt_quiet(
        &b,
        &[
            "restore",
            "-d",
            "--image-path",
            img.to_str().unwrap(),
            "--bundle",
            b.bundle.to_str().unwrap(),
            &id,
        ],
    )
    .failed();
    assert!(out.stderr.contains("criu restore failed"), "{}", out.stderr);
    assert!(
        !b.state_dir_exists(&id),
        "state of the failed restore is left"
    );
    assert!(
        leftover_cgroups(&id).is_empty(),
        "{:?}",
        leftover_cgroups(&id)
    );
    assert!(
        common::mounts_at_or_below(&b.state_root).is_empty(),
        "{:?}",
        common::mounts_at_or_below(&b.state_root)
    );
    // A missing image directory is named.
    let out = rt_quiet(
        &b,
        &[
            "restore",
            "--image-path",
            b.dir.join("nothing").to_str().unwrap(),
            "--bundle",
            b.bundle.to_str().unwrap(),
            &id,
        ],
    )
    .failed();
    assert!(out.stderr.contains("--image-path"), "{}", out.stderr);
}

#[test]
fn checkpoint_refuses_what_is_not_running_and_bad_flags() {
    let mut b = Bundle::new("ckpt-refuse");
    let id = b.id.clone();
    b.args(&["sleep", "100"]);
    b.save();
    rt_quiet(&b, &["create", "--bundle", b.bundle.to_str().unwrap(), &id]).ok();
    let img = images(&b);
    let out = rt_quiet(&b, &["checkpoint", "--image-path", &img, &id]).failed();
    assert!(out.stderr.contains("that is created"), "{}", out.stderr);
    rt_quiet(&b, &["start", &id]).ok();
    let out = rt_quiet(
        &b,
        &[
            "checkpoint",
            "--manage-cgroups-mode",
            "sometimes",
            "--image-path",
            &img,
            &id,
        ],
    )
    .failed();
    assert!(
        out.stderr.contains("--manage-cgroups-mode"),
        "{}",
        out.stderr
    );
    let out = rt_quiet(
        &b,
        &["checkpoint", "--empty-ns", "pid", "--image-path", &img, &id],
    )
    .failed();
    assert!(out.stderr.contains("--empty-ns"), "{}", out.stderr);
    assert_eq!(b.status(&id), "running");
}

#[test]
fn pre_dump_works_only_where_the_kernel_tracks_memory_changes() {
    let mut b = Bundle::new("ckpt-predump");
    let id = b.id.clone();
    let file = counter(&mut b, &id);
    let tracks = Command::new("criu")
        .args(["check", "--feature", "mem_dirty_track"])
        .output()
        .expect("criu is installed (scripts/install-criu.sh)")
        .status
        .success();
    let img = images(&b);
    let out = rt_quiet(&b, &["checkpoint", "--pre-dump", "--image-path", &img, &id]);
    if tracks {
        out.ok();
    } else {
        let out = out.failed();
        assert!(out.stderr.contains("soft-dirty"), "{}", out.stderr);
    }
    // Either way the container runs on.
    assert_eq!(b.status(&id), "running");
    let n = count(&file);
    assert!(wait_until(WAIT, || count(&file) > n + 2));
}

#[test]
fn features_report_checkpoint_support() {
    let (code, out, err) = common::run(&["features"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["annotations"]["org.opencontainers.runc.checkpoint.enabled"], "true",
        "criu >= 4.1 is installed here: {v}"
    );
    let (code, out, _) = common::run(&["--criu", "/nonexistent/criu", "features"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["annotations"]["org.opencontainers.runc.checkpoint.enabled"],
        "false"
    );
}

/// A container in a user namespace, whose devices are binds of the host's nodes, checkpoints:
/// the binds are external and its /dev/null descriptors are the container's own. (Its restore
/// does not work yet: CRIU cannot remount the container's sysfs in the new user namespace,
/// "Unable to apply bind-mount options: Operation not permitted".)
#[test]
fn a_user_namespace_container_with_host_device_binds_checkpoints() {
    let mut b = Bundle::new("ckpt-userns");
    let id = b.id.clone();
    b.with_ns("user", None);
    let map = serde_json::json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    b.cfg["linux"]["uidMappings"] = map.clone();
    b.cfg["linux"]["gidMappings"] = map;
    let pid = {
        counter(&mut b, &id);
        b.pid(&id)
    };
    // Its standard input is the container's /dev/null, not the host's.
    let fdinfo = fs::read_to_string(format!("/proc/{pid}/fdinfo/0")).unwrap();
    let host = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mnt = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        !host
            .lines()
            .any(|l| l.split(' ').next() == Some(mnt.as_str())),
        "fd 0 is on the host's mount {mnt}"
    );
    let img = images(&b);
    let out = b.rt(&["checkpoint", "--image-path", &img, &id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(Path::new(&img).join("inventory.img").exists());
    assert!(b.state(&id).is_none());
}
