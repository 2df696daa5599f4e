//! Namespaces: new ones are separate from the host's, joined ones are shared; uts, user and
//! time namespaces do what their config says.

mod common;

use std::fs;
use std::os::unix::fs::lchown;
use std::path::Path;

use common::{Bundle, WAIT, wait_until};
use serde_json::json;

fn host_ns(name: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn new_namespaces_are_not_the_hosts() {
    let mut b = Bundle::new("ns-new");
    b.sh("for n in net ipc uts mnt pid cgroup; do readlink /proc/self/ns/$n; done");
    let out = b.run().ok();
    let inside: Vec<&str> = out.stdout.lines().collect();
    for (i, n) in ["net", "ipc", "uts", "mnt", "pid", "cgroup"]
        .iter()
        .enumerate()
    {
        assert!(inside[i].starts_with(&format!("{n}:[")), "{out:?}");
        assert_ne!(inside[i], host_ns(n), "{n} namespace is the host's");
    }
}

#[test]
fn namespaces_not_asked_for_are_the_hosts() {
    let mut b = Bundle::new("ns-host");
    b.without_ns("network").without_ns("ipc");
    b.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc");
    let out = b.run().ok();
    assert_eq!(
        out.stdout,
        format!("{}\n{}\n", host_ns("net"), host_ns("ipc"))
    );
}

#[test]
fn join_the_network_namespace_of_another_container() {
    let mut a = Bundle::new("ns-join-a");
    let shared = a.host_dir("shared");
    a.bind(&shared, "/shared", &[]);
    a.sh("readlink /proc/self/ns/net > /shared/ns; exec sleep 100");
    a.create(&a.id).ok();
    a.start(&a.id).ok();
    a.wait_status(&a.id, "running");
    assert!(wait_until(WAIT, || fs::read_to_string(shared.join("ns"))
        .is_ok_and(|s| s.ends_with('\n'))));
    let a_ns = fs::read_to_string(shared.join("ns")).unwrap();
    let pid = a.pid(&a.id);

    let mut b = Bundle::new("ns-join-b");
    b.with_ns("network", Some(&format!("/proc/{pid}/ns/net")));
    b.args(&["readlink", "/proc/self/ns/net"]);
    let out = b.run().ok();
    assert_eq!(out.stdout, a_ns);
    assert_ne!(a_ns.trim(), host_ns("net"));

    // The joiner still has its own new namespaces of the other types.
    b.sh("readlink /proc/self/ns/uts");
    let out = b.run().ok();
    assert_ne!(out.stdout.trim(), host_ns("uts"));
}

/// A pod with a shared pid namespace (Kubernetes' shareProcessNamespace): the container joins
/// the sandbox's pid namespace and others by path. The runtime must record the init's pid as
/// the host sees it, not as it is inside the joined namespace.
#[test]
fn joining_pid_and_network_namespaces_records_the_host_pid() {
    let mut a = Bundle::new("ns-pidjoin-a");
    a.args(&["sleep", "100"]);
    a.create(&a.id).ok();
    a.start(&a.id).ok();
    let a_pid = a.pid(&a.id);

    let mut b = Bundle::new("ns-pidjoin-b");
    for (typ, name) in [("pid", "pid"), ("network", "net"), ("ipc", "ipc")] {
        b.with_ns(typ, Some(&format!("/proc/{a_pid}/ns/{name}")));
    }
    b.args(&["sleep", "100"]);
    let pid_file = b.dir.join("pid");
    b.save();
    b.rt(&[
        "create",
        "--bundle",
        b.bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &b.id,
    ])
    .ok();
    let pid = b.pid(&b.id);
    assert_eq!(fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    // The recorded pid is the init itself: in a's pid namespace, and not pid 2 of the host.
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
        fs::read_link(format!("/proc/{a_pid}/ns/pid")).unwrap(),
        "state pid {pid} is not the container's init"
    );
    b.start(&b.id).ok();
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap(),
        "sleep\x00100\0"
    );
    // Inside, the init is not pid 1 (a's init is).
    let out = b.rt(&["exec", &b.id, "cat", "/proc/1/cmdline"]).ok();
    assert_eq!(out.stdout, "sleep\x00100\0");
    b.rt(&["delete", "--force", &b.id]).ok();
    a.rt(&["delete", "--force", &a.id]).ok();
}

#[test]
fn joining_a_missing_namespace_path_fails() {
    let mut b = Bundle::new("ns-join-missing");
    b.with_ns("network", Some("/proc/999999999/ns/net"));
    let out = b.create(&b.id).failed();
    assert!(out.stderr.contains("/proc/999999999/ns/net"), "{out:?}");
    assert!(!b.state_dir_exists(&b.id));
}

#[test]
fn uts_namespace_isolates_the_hostname() {
    let host_before = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut b = Bundle::new("uts");
    b.cfg["hostname"] = json!("inner-name");
    b.cfg["domainname"] = json!("inner.domain");
    // sethostname(2) inside needs CAP_SYS_ADMIN (in the container's UTS namespace only).
    b.add_cap("CAP_SYS_ADMIN");
    b.sh("hostname; cat /proc/sys/kernel/domainname; \
         hostname changed-inside && hostname");
    let out = b.run().ok();
    assert_eq!(
        out.stdout, "inner-name\ninner.domain\nchanged-inside\n",
        "{out:?}"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_before
    );
}

#[test]
fn hostname_without_a_uts_namespace_is_refused() {
    let mut b = Bundle::new("uts-missing");
    b.without_ns("uts");
    let out = b.create(&b.id).failed();
    assert!(out.stderr.contains("hostname"), "{out:?}");
    assert!(out.stderr.contains("UTS"), "{out:?}");

    // Without a hostname it runs, with the host's.
    b.cfg.as_object_mut().unwrap().remove("hostname");
    b.args(&["hostname"]);
    let out = b.run().ok();
    assert_eq!(
        out.stdout,
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap()
    );
}

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    lchown(p, Some(uid), Some(gid)).unwrap();
    if p.is_dir() && !p.is_symlink() {
        for e in fs::read_dir(p).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

/// A bundle with a user namespace mapping 0..65536 to 100000..165536, its rootfs chowned.
fn userns_bundle(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    chown_tree(&b.rootfs, 100000, 100000);
    b.with_ns("user", None);
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.cfg["linux"]["uidMappings"] = map.clone();
    b.cfg["linux"]["gidMappings"] = map;
    b
}

#[test]
fn user_namespace_maps_root() {
    let mut b = userns_bundle("userns");
    b.sh(
        "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; \
         stat -c '%u %g' /bin/busybox; readlink /proc/self/ns/user",
    );
    let out = b.run().ok();
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[0], "0", "{out:?}");
    assert_eq!(lines[1], "0", "{out:?}");
    assert_eq!(lines[2], "0 100000 65536", "{out:?}");
    assert_eq!(lines[3], "0 100000 65536", "{out:?}");
    // Files owned by 100000 on the host are root's inside.
    assert_eq!(lines[4], "0 0", "{out:?}");
    assert_ne!(lines[5], host_ns("user"));
}

#[test]
fn user_namespace_root_is_unprivileged_on_the_host() {
    let mut b = userns_bundle("userns-host");
    b.args(&["sleep", "100"]);
    b.save();
    b.rt(&["run", "-d", "--bundle", b.bundle.to_str().unwrap(), &b.id])
        .ok();
    let pid = b.pid(&b.id);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uids: Vec<&str> = uid_line.split_whitespace().skip(1).collect();
    assert_eq!(uids, ["100000"; 4], "{uid_line}");
    b.rt(&["delete", "--force", &b.id]).ok();
}

#[test]
fn time_namespace_offsets() {
    let mut b = Bundle::new("timens");
    b.with_ns("time", None);
    b.cfg["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": 86400, "nanosecs": 0},
        "boottime": {"secs": 86400, "nanosecs": 0}
    });
    b.sh("cat /proc/uptime; cat /proc/self/timens_offsets; readlink /proc/self/ns/time");
    let uptime = || -> f64 {
        fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = uptime();
    let out = b.run().ok();
    let after = uptime();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let inside: f64 = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        inside >= before + 86400.0 - 0.5 && inside <= after + 86400.0 + 0.5,
        "uptime inside {inside}, host {before}..{after}"
    );
    let offsets: Vec<String> = lines[1..3]
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        offsets.contains(&"monotonic 86400 0".to_string()),
        "{out:?}"
    );
    assert!(offsets.contains(&"boottime 86400 0".to_string()), "{out:?}");
    assert_ne!(lines[3], host_ns("time"));
}

#[test]
fn time_offsets_without_a_time_namespace_are_refused() {
    let mut b = Bundle::new("timens-missing");
    b.cfg["linux"]["timeOffsets"] = json!({"boottime": {"secs": 10}});
    let out = b.create(&b.id).failed();
    assert!(out.stderr.contains("linux.timeOffsets"), "{out:?}");
}

/// An idmapped bind mount with the container's own mapping shows host-root-owned files as the
/// container's root, and files the container creates there belong to host root.
#[test]
fn idmapped_mount_maps_host_ids_into_the_user_namespace() {
    let mut b = userns_bundle("idmap");
    let data = b.host_dir("idmap-data");
    fs::write(data.join("hostfile"), "x").unwrap();
    lchown(data.join("hostfile"), Some(0), Some(0)).unwrap();
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.mount(
        json!({"destination": "/data", "type": "bind", "source": data, "options": ["bind"],
                   "uidMappings": map, "gidMappings": map}),
    );
    b.sh("stat -c '%u:%g' /data/hostfile; touch /data/made-inside && echo made; grep ' /data ' /proc/self/mountinfo");
    let out = b.run().ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "0:0", "{out:?}");
    assert_eq!(lines[1], "made", "{out:?}");
    assert!(lines[2].contains("idmapped"), "{out:?}");
    let meta = fs::metadata(data.join("made-inside")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "created through the idmapped mount"
    );
}

/// Without both mappings an idmapped mount is refused, naming the mount.
#[test]
fn idmapped_mount_needs_both_mappings() {
    let mut b = Bundle::new("idmap-half");
    let data = b.host_dir("idmap-half-data");
    b.mount(
        json!({"destination": "/data", "type": "bind", "source": data, "options": ["bind"],
                   "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
    );
    let out = b.run().failed();
    assert!(
        out.stderr.contains("mounts[") && out.stderr.contains("gidMappings"),
        "{out:?}"
    );
}

/// A config that lists no namespaces at all: the container runs in the host's (OCI: a type not
/// listed is the runtime's), enters its rootfs with chroot, and the mounts of its config, made
/// in the host's mount namespace, are all gone after `delete` (and after `run`).
fn no_namespaces(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.cfg["linux"]["namespaces"] = json!([]);
    // A hostname needs a UTS namespace.
    b.cfg.as_object_mut().unwrap().remove("hostname");
    b
}

#[test]
fn no_namespaces_runs_in_the_hosts_and_run_leaves_no_mount() {
    let mut b = no_namespaces("ns-none-run");
    b.sh(
        "for n in pid mnt net ipc uts user cgroup; do readlink /proc/self/ns/$n; done; \
          head -n 1 /etc/passwd; test -x /bin/busybox && echo in-rootfs; \
          grep -c . /proc/self/mountinfo >/dev/null && echo proc-ok; \
          test -c /dev/null && echo dev-ok; echo hello",
    );
    let out = b.run().ok();
    let want: String = ["pid", "mnt", "net", "ipc", "uts", "user", "cgroup"]
        .iter()
        .map(|n| format!("{}\n", host_ns(n)))
        .collect();
    assert_eq!(
        out.stdout,
        format!("{want}root:x:0:0:root:/root:/bin/sh\nin-rootfs\nproc-ok\ndev-ok\nhello\n"),
        "{out:?}"
    );
    assert_eq!(common::mounts_at_or_below(&b.rootfs), Vec::<String>::new());
    assert!(!b.state_dir_exists(&b.id));
}

#[test]
fn no_namespaces_delete_unmounts_every_mount_of_the_config() {
    let mut b = no_namespaces("ns-none-delete");
    let shared = b.host_dir("shared");
    b.bind(&shared, "/shared", &[]);
    b.sh("readlink /proc/self/ns/pid > /shared/pid; exec sleep 100");
    let id = b.id.clone();
    b.create(&id).ok();
    b.start(&id).ok();
    assert!(wait_until(WAIT, || fs::read_to_string(shared.join("pid"))
        .is_ok_and(|s| s.ends_with('\n'))));
    assert_eq!(
        fs::read_to_string(shared.join("pid")).unwrap().trim(),
        host_ns("pid")
    );
    // The config's mounts are on the host while it runs: the rootfs bind, proc, dev, sys,
    // cgroups, the bind of /shared, masked and read-only paths.
    let during = common::mounts_at_or_below(&b.rootfs);
    let rootfs = fs::canonicalize(&b.rootfs).unwrap();
    for sub in ["", "/proc", "/dev", "/dev/pts", "/sys", "/shared"] {
        let p = format!("{}{sub}", rootfs.display());
        assert!(during.contains(&p), "{p} is not mounted: {during:#?}");
    }
    // exec enters the container's root, in the host's pid namespace.
    let out = b
        .rt(&[
            "exec",
            &id,
            "sh",
            "-c",
            "head -n 1 /etc/passwd; readlink /proc/self/ns/pid",
        ])
        .ok();
    assert_eq!(
        out.stdout,
        format!("root:x:0:0:root:/root:/bin/sh\n{}\n", host_ns("pid"))
    );

    b.rt(&["kill", &id, "KILL"]).ok();
    b.wait_status(&id, "stopped");
    b.rt(&["delete", &id]).ok();
    assert_eq!(common::mounts_at_or_below(&b.rootfs), Vec::<String>::new());
    assert!(!b.state_dir_exists(&id));
}

#[test]
fn no_namespaces_failed_create_leaves_no_mount() {
    let mut b = no_namespaces("ns-none-fail");
    // After proc, dev, sys and the rest are mounted, a bind of a missing source fails.
    let missing = b.dir.join("missing");
    b.bind(&missing, "/missing", &[]);
    let out = b.create(&b.id).failed();
    assert!(
        out.stderr.contains("(bind on /missing): bind source")
            && out.stderr.contains("does not exist"),
        "{out:?}"
    );
    assert_eq!(common::mounts_at_or_below(&b.rootfs), Vec::<String>::new());
    assert!(!b.state_dir_exists(&b.id));
}
