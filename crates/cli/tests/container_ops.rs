//! `diff`, `export` and `update` (resources and restart policy of a live container), and
//! `--memory-reservation`. Needs root.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{Berth, IMAGE, cgroup_dirs};

/// The container's cgroup file `name` (v1 controller directory or v2), trimmed.
fn cgroup_file(id: &str, v1: &str, name: &str) -> Option<String> {
    cgroup_dirs(id)
        .into_iter()
        .filter(|d| {
            d.components()
                .any(|c| c.as_os_str().to_string_lossy().split(',').any(|x| x == v1))
                || d.starts_with("/sys/fs/cgroup/berth")
        })
        .map(|d: PathBuf| d.join(name))
        .find(|p| p.exists())
        .map(|p| fs::read_to_string(p).unwrap().trim().to_string())
}

#[test]
fn diff_lists_added_changed_and_deleted_paths() {
    let b = Berth::new();
    let id = b
        .ok(&[
            "run",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            "echo new > /etc/added; echo x >> /etc/passwd; rm /etc/group; mkdir -p /srv/a/b",
        ])
        .to_string();
    let _ = id;
    let id = b.container_ids()[0].clone();
    let out = b.ok(&["diff", &id]);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "C /etc",
        "A /etc/added",
        "C /etc/passwd",
        "D /etc/group",
        "A /srv",
        "A /srv/a",
        "A /srv/a/b",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{out}");
    }
    assert!(
        !lines.iter().any(|l| l.ends_with("/etc/hosts")),
        "the engine's mount targets are not changes:\n{out}"
    );
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| l[2..].to_string());
    assert_eq!(lines, sorted, "sorted by path");
}

#[test]
fn export_writes_the_containers_filesystem_as_a_tar() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo exported > /root-file",
    ]);
    let id = b.container_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("fs.tar");
    b.ok(&["export", "-o", tarball.to_str().unwrap(), &id]);
    let mut a = tar::Archive::new(fs::File::open(&tarball).unwrap());
    let mut names = Vec::new();
    let mut content = String::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        if p == "root-file" {
            std::io::Read::read_to_string(&mut e, &mut content).unwrap();
        }
        names.push(p);
    }
    assert_eq!(content, "exported\n");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(names.iter().all(|n| !n.starts_with('/')), "relative paths");
    // To stdout too, the same archive.
    let out = b.cmd().args(["export", &id]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        out.stdout.len() as u64,
        fs::metadata(&tarball).unwrap().len()
    );
}

#[test]
fn update_changes_a_running_containers_limits_and_the_record() {
    let b = Berth::new();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "-m",
            "32m",
            "--memory-reservation",
            "16m",
            IMAGE,
            "sleep",
            "100",
        ])
        .trim()
        .to_string();
    let mem = |f: &str| cgroup_file(&id, "memory", f);
    assert_eq!(
        mem("memory.soft_limit_in_bytes").or_else(|| mem("memory.low")),
        Some((16u64 << 20).to_string())
    );
    b.ok(&[
        "update",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--restart",
        "on-failure:3",
        &id,
    ]);
    assert_eq!(
        mem("memory.limit_in_bytes").or_else(|| mem("memory.max")),
        Some((64u64 << 20).to_string())
    );
    let quota = cgroup_file(&id, "cpu", "cpu.cfs_quota_us")
        .or_else(|| cgroup_file(&id, "cpu", "cpu.max"))
        .unwrap();
    assert!(quota.starts_with("50000"), "{quota}");
    assert_eq!(cgroup_file(&id, "pids", "pids.max").as_deref(), Some("50"));
    let hc = &b.inspect(&id)["HostConfig"];
    assert_eq!(hc["Memory"], 64 << 20, "{hc}");
    assert_eq!(hc["MemorySwap"], 128 << 20, "{hc}");
    assert_eq!(hc["NanoCpus"], 500_000_000i64, "{hc}");
    assert_eq!(hc["PidsLimit"], 50, "{hc}");
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure", "{hc}");
    assert_eq!(hc["RestartPolicy"]["MaximumRetryCount"], 3, "{hc}");

    // A stopped container gets its new limits at the next start.
    b.ok(&["stop", "-t", "0", &id]);
    b.ok(&["update", "--pids-limit", "20", &id]);
    b.ok(&["start", &id]);
    assert_eq!(cgroup_file(&id, "pids", "pids.max").as_deref(), Some("20"));

    // Refused with the reason, nothing changed.
    for (args, why) in [
        (vec!["update", &id], "one or more flags"),
        (vec!["update", "-m", "4m", &id], "minimum memory limit"),
        (vec!["update", "-m", "256m", &id], "memoryswap"),
        (
            vec!["update", "--restart", "sometimes", &id],
            "invalid restart policy",
        ),
        (vec!["update", "--cpus", "1000", &id], "out of range"),
    ] {
        let o = b.run(&args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(b.inspect(&id)["HostConfig"]["Memory"], 64 << 20);
    b.ok(&["rm", "-f", &id]);
}
