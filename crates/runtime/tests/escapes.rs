//! Regression tests for container escapes, one per class: each runs the attack against
//! berth-runtime and checks that it fails, in a way that would catch a vulnerable runtime.
//!
//! - CVE-2019-5736: overwriting the runtime binary through /proc/PID/exe.
//! - CVE-2024-21626: a working directory through a leaked descriptor (/proc/self/fd/N).
//! - CVE-2021-30465: a mount destination that is a symlink pointing out of the rootfs.
//! - CVE-2019-16884 / CVE-2019-19921: mounts over /proc (its attr or sys files), /proc itself a
//!   symlink; masked paths stay masked.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{BIN, Bundle};
use serde_json::json;

/// The runtime binary's bytes and metadata, to compare before and after an attack.
fn runtime_binary() -> (Vec<u8>, u64, i64) {
    let bytes = fs::read(*BIN).unwrap();
    let meta = fs::metadata(*BIN).unwrap();
    (bytes, meta.size(), meta.mtime())
}

#[track_caller]
fn assert_runtime_unchanged(before: &(Vec<u8>, u64, i64)) {
    let after = runtime_binary();
    assert_eq!(before.1, after.1, "the runtime binary's size changed");
    assert_eq!(before.2, after.2, "the runtime binary's mtime changed");
    assert!(before.0 == after.0, "the runtime binary's content changed");
}

// ---- CVE-2019-5736 --------------------------------------------------------------------------

#[test]
fn cve_2019_5736_entrypoint_proc_self_exe() {
    let before = runtime_binary();
    let mut b = Bundle::new("esc-5736-shebang");
    b.cfg["root"]["readonly"] = json!(false);
    // The container's entrypoint makes the init exec whatever /proc/self/exe is at that moment.
    let entry = b.rootfs.join("entry");
    fs::write(&entry, "#!/proc/self/exe\n").unwrap();
    fs::set_permissions(&entry, fs::Permissions::from_mode(0o755)).unwrap();
    b.args(&["/entry"]);
    let out = b.run();
    // Whatever ran, it must not have been able to touch the host binary; and it is not the
    // host's berth-runtime file that was exec'd (the runtime runs from a sealed copy).
    assert_runtime_unchanged(&before);
    assert_ne!(out.code, 0, "{out:?}");

    // The same from inside, explicitly: the entrypoint runs the interpreter and a second
    // process opens /proc/1/exe for writing while it runs.
    let mut b = Bundle::new("esc-5736-proc1");
    b.cfg["root"]["readonly"] = json!(false);
    b.sh("readlink /proc/self/exe; echo pwned >> /proc/self/exe; echo self=$?");
    let out = b.run().ok();
    // /proc/self/exe is busybox here (the container's own, running: ETXTBSY); the point is that
    // it is not the runtime.
    assert!(out.stdout.starts_with("/bin/busybox\n"), "{out:?}");
    assert!(out.stdout.contains("self=1"), "{out:?}");
    assert_runtime_unchanged(&before);
}

#[test]
fn cve_2019_5736_write_through_proc_pid_exe_during_execs() {
    // The container watches for processes that are not its own busybox (the runtime's exec
    // helper joins the container's PID namespace while it sets up) and tries to write through
    // their /proc/PID/exe; meanwhile the test runs execs. No write may succeed.
    let before = runtime_binary();
    let mut b = Bundle::new("esc-5736-race");
    b.cfg["root"]["readonly"] = json!(false);
    b.sh(": > /tmp/seen; : > /tmp/hits; \
         while [ ! -e /tmp/stop ]; do \
           for f in /proc/[0-9]*/exe; do \
             l=$(readlink $f 2>/dev/null) || continue; \
             case $l in /bin/busybox|'') continue;; esac; \
             echo \"$f $l\" >> /tmp/seen; \
             if echo X >> $f 2>/dev/null; then echo \"append $f $l\" >> /tmp/hits; fi; \
             if printf X 1<> $f 2>/dev/null; then echo \"rdwr $f $l\" >> /tmp/hits; fi; \
           done; \
         done; echo done > /tmp/done; sleep 1000");
    let id = b.id.clone();
    b.create(&id).ok();
    b.start(&id).ok();
    b.wait_status(&id, "running");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut execs = 0;
    while Instant::now() < deadline {
        b.rt(&["exec", &id, "true"]).ok();
        execs += 1;
    }
    // The watcher finishes the scan it is in (over every process of the last exec, if it was
    // still there) and stops.
    fs::write(b.rootfs.join("tmp/stop"), "").unwrap();
    assert!(
        common::wait_until(Duration::from_secs(60), || b
            .rootfs
            .join("tmp/done")
            .exists()),
        "the watcher did not stop"
    );
    let seen = fs::read_to_string(b.rootfs.join("tmp/seen")).unwrap_or_default();
    let hits = fs::read_to_string(b.rootfs.join("tmp/hits")).unwrap_or_default();
    b.rt(&["kill", &id, "KILL"]).ok();
    assert_runtime_unchanged(&before);
    assert!(
        hits.is_empty(),
        "writes through /proc/PID/exe succeeded:\n{hits}\n(seen: {seen})"
    );
    eprintln!(
        "{execs} execs; the container saw {} non-busybox processes",
        seen.lines().count()
    );
}

// ---- CVE-2024-21626 -------------------------------------------------------------------------

/// Names that would show the container a host directory: the state and bundle directories
/// around the rootfs, or the host's root.
fn shows_host(listing: &str) -> Option<&str> {
    listing.lines().find(|l| {
        [
            "config.json",
            "rootfs",
            "state",
            "bundle",
            "HOST-MARKER",
            "work",
            "usr",
        ]
        .contains(&l.trim())
    })
}

#[test]
fn cve_2024_21626_cwd_through_leaked_fd() {
    for n in 3..10 {
        let mut b = Bundle::new(&format!("esc-21626-cwd{n}"));
        fs::write(b.dir.join("HOST-MARKER"), "").unwrap();
        b.cfg["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.sh("pwd; ls ..; ls ../..; ls ../../..; ls .");
        let out = b.run();
        if out.code == 0 {
            assert!(
                shows_host(&out.stdout).is_none(),
                "cwd /proc/self/fd/{n} shows host files: {out:?}"
            );
        } else {
            assert!(
                out.stderr.contains("cwd") || out.stderr.contains("fd"),
                "cwd /proc/self/fd/{n}: unclear error: {out:?}"
            );
        }
    }
}

#[test]
fn cve_2024_21626_exec_cwd_through_leaked_fd() {
    let mut b = Bundle::new("esc-21626-exec");
    fs::write(b.dir.join("HOST-MARKER"), "").unwrap();
    b.args(&["sleep", "60"]);
    let id = b.id.clone();
    b.create(&id).ok();
    b.start(&id).ok();
    b.wait_status(&id, "running");
    for n in 3..10 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = b.rt(&[
            "exec",
            "--cwd",
            &cwd,
            &id,
            "sh",
            "-c",
            "pwd; ls ..; ls ../..; ls ../../..; ls .",
        ]);
        if out.code == 0 {
            assert!(
                shows_host(&out.stdout).is_none(),
                "exec --cwd {cwd} shows host files: {out:?}"
            );
        }
    }
    b.rt(&["kill", &id, "KILL"]).ok();
}

/// The descriptors `ls /proc/self/fd` shows besides its own directory (the highest number).
fn fds_of(listing: &str) -> Vec<u32> {
    let mut fds: Vec<u32> = listing.lines().filter_map(|l| l.parse().ok()).collect();
    fds.sort_unstable();
    fds.pop(); // ls's own descriptor of /proc/self/fd
    fds
}

#[test]
fn cve_2024_21626_no_descriptor_leaks_into_the_container() {
    let mut b = Bundle::new("esc-21626-fds");
    b.cfg["root"]["readonly"] = json!(false);
    b.args(&["sh", "-c", "ls /proc/self/fd > /tmp/init-fds; sleep 60"]);
    let id = b.id.clone();
    b.create(&id).ok();
    b.start(&id).ok();
    b.wait_status(&id, "running");
    assert!(common::wait_until(common::WAIT, || b
        .rootfs
        .join("tmp/init-fds")
        .metadata()
        .map(|m| m.len() > 0)
        .unwrap_or(false)));
    let init = fs::read_to_string(b.rootfs.join("tmp/init-fds")).unwrap();
    assert_eq!(fds_of(&init), [0, 1, 2], "the init has more: {init}");
    let out = b.rt(&["exec", &id, "ls", "/proc/self/fd"]).ok();
    assert_eq!(fds_of(&out.stdout), [0, 1, 2], "exec has more: {out:?}");
    b.rt(&["kill", &id, "KILL"]).ok();
}

// ---- CVE-2021-30465 -------------------------------------------------------------------------

/// Whether the host sees anything mounted at or under `p`.
fn host_mounts_under(p: &Path) -> Vec<String> {
    let p = p.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(p)))
        .map(str::to_string)
        .collect()
}

#[test]
fn cve_2021_30465_mount_destination_symlinks_out_of_the_rootfs() {
    let mut b = Bundle::new("esc-30465");
    let victim = b.host_dir("victim");
    // The links lead to the same path inside the rootfs, where they must be followed to.
    fs::create_dir_all(b.rootfs.join(victim.strip_prefix("/").unwrap())).unwrap();
    let src = b.host_dir("volume");
    fs::write(src.join("from-volume"), "v\n").unwrap();
    fs::write(src.join("file"), "f\n").unwrap();
    // Absolute and relative symlinks pointing at the host's victim directory.
    symlink(&victim, b.rootfs.join("abs")).unwrap();
    let rel: PathBuf =
        Path::new("../../../../../../../../../..").join(victim.strip_prefix("/").unwrap());
    symlink(&rel, b.rootfs.join("rel")).unwrap();
    // And one at the host's /etc.
    symlink("/etc", b.rootfs.join("etclink")).unwrap();
    b.bind(&src, "/abs/sub", &[]);
    b.mount(json!({"destination": "/rel/tmpfs", "type": "tmpfs", "source": "tmpfs"}));
    b.bind(&src.join("file"), "/rel/file", &[]);
    b.bind(&src, "/etclink/berth-escape-test", &[]);
    let inside = victim.display().to_string();
    b.sh(&format!(
        "cat {inside}/sub/from-volume; grep -c ' {inside}/tmpfs ' /proc/mounts; \
         cat {inside}/file; cat /etc/berth-escape-test/from-volume"
    ));
    let etc_before: Vec<_> = fs::read_dir("/etc")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let out = b.run();
    // Nothing happened on the host: no directory or file made through the links, no mount.
    let left: Vec<_> = fs::read_dir(&victim)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        left.is_empty(),
        "created on the host through a symlink: {left:?} ({out:?})"
    );
    assert!(
        !Path::new("/etc/berth-escape-test").exists(),
        "created /etc/berth-escape-test on the host: {out:?}"
    );
    let etc_after: Vec<_> = fs::read_dir("/etc")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(etc_before.len(), etc_after.len());
    assert!(host_mounts_under(&victim).is_empty());
    // Either refused, or the mounts landed inside the rootfs where the links lead in there.
    if out.code == 0 {
        assert_eq!(out.stdout, "v\n1\nf\nv\n", "{out:?}");
        assert!(
            b.rootfs
                .join(victim.strip_prefix("/").unwrap())
                .join("sub")
                .is_dir()
        );
    } else {
        assert!(out.stderr.contains("symlink"), "unclear error: {out:?}");
    }
}

// ---- CVE-2019-16884 / CVE-2019-19921 --------------------------------------------------------

#[test]
fn cve_2019_16884_mounts_over_proc_are_refused() {
    for dest in [
        "/proc/self/attr",
        "/proc/self/attr/current",
        "/proc/sys/kernel",
        "/proc/sys",
        "/proc/1/attr/exec",
        "/proc/./sys/../self/attr",
    ] {
        let mut b = Bundle::new("esc-16884");
        b.mount(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"}));
        let out = b.create(&b.id).failed();
        assert!(
            out.stderr.contains("inside /proc"),
            "{dest}: unclear error: {out:?}"
        );
    }
}

#[test]
fn cve_2019_16884_mount_over_proc_sys_through_a_symlink_is_refused() {
    // The destination does not start with /proc, but a symlink in the rootfs leads there.
    let mut b = Bundle::new("esc-16884-link");
    symlink("/proc", b.rootfs.join("innocent")).unwrap();
    b.mount(json!({"destination": "/innocent/sys/kernel", "type": "tmpfs", "source": "tmpfs"}));
    b.sh("cat /proc/sys/kernel/ostype; grep -c ' /proc/sys/kernel ' /proc/mounts");
    let out = b.run();
    assert!(
        out.code != 0,
        "a tmpfs was mounted over /proc/sys/kernel through a symlink: {out:?}"
    );
}

#[test]
fn cve_2019_16884_mount_over_proc_self_attr_through_a_symlink_is_refused() {
    // /proc/self while the runtime sets up is the init: the container's process-to-be.
    let mut b = Bundle::new("esc-16884-attr");
    symlink("/proc/self", b.rootfs.join("me")).unwrap();
    b.mount(json!({"destination": "/me/attr", "type": "tmpfs", "source": "tmpfs"}));
    b.sh("grep ' /proc/[0-9a-z]*/attr ' /proc/mounts; ls /proc/self/attr | wc -l");
    let out = b.run();
    assert!(
        out.code != 0,
        "a tmpfs was mounted over /proc/self/attr through a symlink: {out:?}"
    );
}

#[test]
fn cve_2019_19921_proc_as_a_symlink() {
    for target in [
        "/tmp/berth-evil-proc",
        "../../../../tmp/berth-evil-proc",
        "/",
    ] {
        let mut b = Bundle::new("esc-19921");
        let victim = b.host_dir("victim");
        fs::remove_dir(b.rootfs.join("proc")).unwrap();
        let target = target.replace("/tmp/berth-evil-proc", victim.to_str().unwrap());
        symlink(&target, b.rootfs.join("proc")).unwrap();
        b.sh("stat -f -c %T /proc; cat /proc/self/status | grep -c ^Pid");
        let out = b.run();
        assert!(
            fs::read_dir(&victim).unwrap().next().is_none(),
            "proc through {target}: the host directory got content: {out:?}"
        );
        assert!(host_mounts_under(&victim).is_empty());
        if out.code == 0 {
            assert_eq!(out.stdout, "proc\n1\n", "{target}: {out:?}");
        } else {
            assert!(
                out.stderr.contains("symlink"),
                "{target}: unclear error: {out:?}"
            );
        }
    }
}

#[test]
fn masked_paths_stay_masked() {
    let mut b = Bundle::new("esc-masked");
    b.sh(
        "for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do \
           [ -e $p ] || continue; echo $p=$(head -c 16 $p | wc -c); done; \
         ls /sys/firmware | wc -l; echo x > /proc/sysrq-trigger; echo sysrq=$?; \
         echo 1 > /proc/sys/kernel/panic; echo sys=$?; \
         mount -t proc proc /tmp 2>/dev/null; echo proc=$?",
    );
    let out = b.run().ok();
    for line in out.stdout.lines().filter(|l| l.starts_with("/proc/")) {
        assert!(line.ends_with("=0"), "not masked: {line} ({out:?})");
    }
    assert!(
        out.stdout.contains("\n0\nsysrq=1\nsys=1\nproc=") || out.stdout.starts_with("0\nsysrq=1"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("proc=0"), "{out:?}");
}
