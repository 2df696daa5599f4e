//! Mounts as seen from inside the container: /proc, tmpfs options, bind mounts, read-only root,
//! masked and read-only paths.

mod common;

use std::fs;

use common::Bundle;
use serde_json::json;

/// The /proc/mounts line of a mount point inside the container.
fn mounts_line<'a>(mounts: &'a str, dest: &str) -> &'a str {
    mounts
        .lines()
        .rfind(|l| l.split(' ').nth(1) == Some(dest))
        .unwrap_or_else(|| panic!("{dest} not in /proc/mounts:\n{mounts}"))
}

#[test]
fn proc_is_procfs_of_the_container() {
    let mut b = Bundle::new("proc");
    b.sh("stat -f -c %T /proc; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'");
    let out = b.run().ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "proc", "{out:?}");
    assert!(lines[1].starts_with("sh -c"), "{out:?}");
    // Only the container's processes: sh, and the pipeline's children (ls, grep).
    let n: u32 = lines[2].parse().unwrap();
    assert!(n <= 4, "the container sees {n} processes: {out:?}");
}

#[test]
fn tmpfs_mount_with_options() {
    let mut b = Bundle::new("tmpfs");
    b.mount(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "noexec", "nodev", "size=4m", "mode=750"]}),
    );
    b.sh("grep ' /scratch ' /proc/mounts; stat -c %a /scratch; \
         cp /bin/busybox /scratch/bb && /scratch/bb true; echo exec=$?");
    let out = b.run().ok();
    let line = mounts_line(&out.stdout, "/scratch");
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[2], "tmpfs", "{line}");
    let opts: Vec<&str> = fields[3].split(',').collect();
    for o in ["rw", "nosuid", "nodev", "noexec", "size=4096k", "mode=750"] {
        assert!(opts.contains(&o), "{o} missing in {line}");
    }
    assert!(out.stdout.contains("\n750\n"), "{out:?}");
    // noexec is enforced: busybox copied there cannot run (126: found but not executable).
    assert!(out.stdout.ends_with("exec=126\n"), "{out:?}");
}

#[test]
fn bind_mount_of_a_host_directory() {
    let mut b = Bundle::new("bind");
    let host = b.host_dir("shared");
    fs::write(host.join("from-host"), "hello from host\n").unwrap();
    b.bind(&host, "/shared", &[]);
    b.sh("cat /shared/from-host; echo written inside > /shared/from-container");
    let out = b.run().ok();
    assert_eq!(out.stdout, "hello from host\n");
    assert_eq!(
        fs::read_to_string(host.join("from-container")).unwrap(),
        "written inside\n"
    );
}

#[test]
fn bind_mount_of_a_file() {
    let mut b = Bundle::new("bind-file");
    let host = b.host_dir("files");
    fs::write(host.join("conf"), "key=value\n").unwrap();
    b.bind(&host.join("conf"), "/etc/app.conf", &[]);
    b.args(&["cat", "/etc/app.conf"]);
    assert_eq!(b.run().ok().stdout, "key=value\n");
}

#[test]
fn read_only_bind_mount_refuses_writes() {
    let mut b = Bundle::new("bind-ro");
    let host = b.host_dir("ro");
    fs::write(host.join("existing"), "old\n").unwrap();
    b.bind(&host, "/ro", &["ro"]);
    b.sh("cat /ro/existing; echo new > /ro/existing; echo write=$?; touch /ro/newfile; echo touch=$?");
    let out = b.run().ok();
    assert!(out.stdout.starts_with("old\n"), "{out:?}");
    assert!(out.stdout.contains("write=1"), "{out:?}");
    assert!(out.stdout.contains("touch=1"), "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    assert_eq!(fs::read_to_string(host.join("existing")).unwrap(), "old\n");
    assert!(!host.join("newfile").exists());
}

#[test]
fn readonly_root_refuses_writes() {
    let mut b = Bundle::new("root-ro");
    assert_eq!(b.cfg["root"]["readonly"], json!(true));
    b.sh(
        "touch /newfile; echo touch=$?; grep -c ' / ' /proc/mounts >/dev/null; \
          echo tmp > /tmp/x; echo tmp=$?",
    );
    let out = b.run().ok();
    assert!(out.stdout.contains("touch=1"), "{out:?}");
    assert!(out.stdout.contains("tmp=1"), "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    assert!(!b.rootfs.join("newfile").exists());

    // /dev and /dev/shm are their own tmpfs mounts and stay writable.
    b.sh("touch /dev/shm/x && echo shm-ok");
    assert_eq!(b.run().ok().stdout, "shm-ok\n");
}

#[test]
fn writable_root_accepts_writes() {
    let mut b = Bundle::new("root-rw");
    b.cfg["root"]["readonly"] = json!(false);
    b.sh("echo data > /newfile");
    b.run().ok();
    assert_eq!(
        fs::read_to_string(b.rootfs.join("newfile")).unwrap(),
        "data\n"
    );
}

#[test]
fn masked_paths_are_empty() {
    // Masked files read as empty; check those that have content on this host.
    let files: Vec<&str> = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
    ]
    .into_iter()
    .filter(|p| {
        fs::File::open(p)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut [0u8; 1]))
            .is_ok_and(|n| n > 0)
    })
    .collect();
    assert!(
        !files.is_empty(),
        "no masked /proc file has content on this host"
    );
    let mut b = Bundle::new("masked");
    let mut script = String::new();
    for f in &files {
        script.push_str(&format!("echo {f}=$(cat {f} | wc -c); "));
    }
    script.push_str(
        "echo firmware=$(ls -A /sys/firmware | wc -l); touch /sys/firmware/x; echo touch=$?",
    );
    b.sh(&script);
    let out = b.run().ok();
    for f in &files {
        assert!(
            out.stdout.contains(&format!("{f}=0\n")),
            "{f} is not masked: {out:?}"
        );
    }
    assert!(
        fs::read_dir("/sys/firmware").unwrap().next().is_some(),
        "/sys/firmware is empty on the host: the test proves nothing"
    );
    assert!(
        out.stdout.contains("firmware=0\n"),
        "/sys/firmware is not masked: {out:?}"
    );
    assert!(out.stdout.contains("touch=1\n"), "{out:?}");
}

#[test]
fn readonly_paths_refuse_writes() {
    let mut b = Bundle::new("ro-paths");
    // The container has its own UTS namespace, so a successful write would only rename it.
    b.sh(
        "echo changed > /proc/sys/kernel/hostname; echo write=$?; hostname; \
          grep ' /proc/sys ' /proc/mounts",
    );
    let out = b.run().ok();
    assert!(out.stdout.contains("write=1\nberth\n"), "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    let line = mounts_line(&out.stdout, "/proc/sys");
    assert!(
        line.split(' ')
            .nth(3)
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "{line}"
    );
}

#[test]
fn default_mounts_are_there() {
    let mut b = Bundle::new("default-mounts");
    b.args(&["cat", "/proc/mounts"]);
    let out = b.run().ok();
    for (dest, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        let line = mounts_line(&out.stdout, dest);
        assert_eq!(line.split(' ').nth(2), Some(fstype), "{line}");
    }
    let sys = mounts_line(&out.stdout, "/sys");
    assert!(sys.split(' ').nth(3).unwrap().starts_with("ro"), "{sys}");
}
