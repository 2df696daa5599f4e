//! `run`/`create` flags checked by their effect inside real containers: --shm-size, --ipc,
//! --pid, --userns, --sysctl, --group-add, --device, --gpus (CDI), --cidfile, --platform.
//! Needs root.

mod common;

use std::fs;

use common::{Berth, IMAGE};

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `berth run --rm --network none ARGS... IMAGE sh -c SCRIPT`, returns stdout.
fn sh(b: &Berth, args: &[&str], script: &str) -> String {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(args);
    a.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    b.ok(&a)
}

/// Asserts that `run ARGS IMAGE true` fails with status 125 and `want` in its message, and
/// that it left no container.
fn refused(b: &Berth, args: &[&str], want: &str) {
    let before = b.container_ids().len();
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(args);
    a.extend_from_slice(&[IMAGE, "true"]);
    let o = b.run(&a);
    assert_eq!(o.status.code(), Some(125), "{args:?}: {}", err(&o));
    assert!(err(&o).contains(want), "{args:?}: {}", err(&o));
    assert_eq!(b.container_ids().len(), before, "{args:?} left a container");
}

fn host_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn shm_size_sets_the_size_of_dev_shm() {
    let b = Berth::new();
    let size = |args: &[&str]| {
        sh(&b, args, "grep ' /dev/shm ' /proc/mounts")
            .split_whitespace()
            .nth(3)
            .unwrap()
            .split(',')
            .find_map(|o| o.strip_prefix("size=").map(str::to_string))
            .unwrap()
    };
    // Docker's default is 64m.
    assert_eq!(size(&[]), "65536k");
    assert_eq!(size(&["--shm-size", "128m"]), "131072k");
    let id = b
        .ok(&["create", "--network", "none", IMAGE, "true"])
        .trim()
        .to_string();
    assert_eq!(b.inspect(&id)["HostConfig"]["ShmSize"], 64 << 20);
    b.ok(&["rm", &id]);
    refused(&b, &["--shm-size", "lots"], "--shm-size");
}

#[test]
fn ipc_modes_private_host_none_shareable_and_container() {
    let b = Berth::new();
    let ns = "readlink /proc/self/ns/ipc";
    assert_ne!(sh(&b, &[], ns).trim(), host_ns("ipc"));
    assert_ne!(sh(&b, &["--ipc", "private"], ns).trim(), host_ns("ipc"));
    assert_eq!(sh(&b, &["--ipc", "host"], ns).trim(), host_ns("ipc"));
    // none: its own namespace and no /dev/shm mount.
    let o = sh(
        &b,
        &["--ipc", "none"],
        "readlink /proc/self/ns/ipc; grep -c ' /dev/shm ' /proc/mounts || true",
    );
    let mut lines = o.lines();
    assert_ne!(lines.next().unwrap(), host_ns("ipc"));
    assert_eq!(lines.next().unwrap(), "0", "{o}");
    // A shareable donor's namespace and /dev/shm are a joiner's.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--network",
        "none",
        "--ipc",
        "shareable",
        "--shm-size",
        "32m",
        IMAGE,
        "sh",
        "-c",
        "echo from-donor > /dev/shm/x; sleep 600",
    ]);
    b.wait_for(20, "the donor's /dev/shm file", || {
        b.run(&["exec", "donor", "cat", "/dev/shm/x"])
            .status
            .success()
    });
    let donor_ns = b.ok(&["exec", "donor", "readlink", "/proc/self/ns/ipc"]);
    let o = sh(
        &b,
        &["--ipc", "container:donor"],
        "readlink /proc/self/ns/ipc; cat /dev/shm/x; echo back > /dev/shm/y",
    );
    assert_eq!(o, format!("{}from-donor\n", donor_ns));
    assert_eq!(b.ok(&["exec", "donor", "cat", "/dev/shm/y"]), "back\n");
    let df = b.ok(&[
        "exec",
        "donor",
        "sh",
        "-c",
        "grep ' /dev/shm ' /proc/mounts",
    ]);
    assert!(df.contains("size=32768k"), "{df}");
    // A private one cannot be joined.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "private",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "600",
    ]);
    refused(&b, &["--ipc", "container:private"], "non-shareable IPC");
    refused(&b, &["--ipc", "sideways"], "invalid mode");
    // The shareable /dev/shm is unmounted with its container.
    let id = b
        .ok(&["inspect", "-f", "{{.Id}}", "donor"])
        .trim()
        .to_string();
    let shm = b.root.path().join("containers").join(&id).join("shm");
    assert!(!common::mounted_below(&shm).is_empty());
    b.ok(&["rm", "-f", "donor", "private"]);
    assert!(common::mounted_below(&shm).is_empty(), "shm left mounted");
}

#[test]
fn pid_host_and_container_namespaces() {
    let b = Berth::new();
    let ns = "readlink /proc/self/ns/pid";
    assert_ne!(sh(&b, &[], ns).trim(), host_ns("pid"));
    assert_eq!(sh(&b, &["--pid", "host"], ns).trim(), host_ns("pid"));
    b.ok(&[
        "run",
        "-d",
        "--name",
        "p1",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "600",
    ]);
    let p1 = b.inspect("p1")["State"]["Pid"].as_i64().unwrap();
    let p1_ns = fs::read_link(format!("/proc/{p1}/ns/pid"))
        .unwrap()
        .display()
        .to_string();
    let o = sh(
        &b,
        &["--pid", "container:p1"],
        "readlink /proc/self/ns/pid; ps -o args",
    );
    assert!(o.starts_with(&format!("{p1_ns}\n")), "{o}");
    assert!(
        o.contains("sleep 600"),
        "the other container's process is visible: {o}"
    );
    b.ok(&["stop", "-t", "0", "p1"]);
    refused(&b, &["--pid", "container:p1"], "not running");
    refused(&b, &["--pid", "private"], "invalid mode");
    refused(&b, &["--pid", "container:nosuch"], "No such container");
}

#[test]
fn userns_is_host_or_refused() {
    let b = Berth::new();
    assert_eq!(
        sh(&b, &["--userns", "host"], "readlink /proc/self/ns/user").trim(),
        host_ns("user")
    );
    refused(&b, &["--userns", "keep-id"], "only --userns=host");
}

#[test]
fn sysctl_sets_namespaced_parameters_only() {
    let b = Berth::new();
    let o = sh(
        &b,
        &[
            "--sysctl",
            "kernel.shmmax=12345678",
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=123",
        ],
        "cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_unprivileged_port_start",
    );
    assert_eq!(o, "12345678\n123\n");
    refused(&b, &["--sysctl", "vm.swappiness=1"], "not a namespaced");
    refused(&b, &["--sysctl", "kernel.hostname=x"], "not a namespaced");
    refused(
        &b,
        &["--ipc", "host", "--sysctl", "kernel.shmmax=1"],
        "not allowed with --ipc host",
    );
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "net.ipv4.ip_forward=0",
        IMAGE,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        err(&o).contains("not allowed with --network host"),
        "{}",
        err(&o)
    );
    refused(&b, &["--sysctl", "novalue"], "KEY=VALUE");
}

#[test]
fn group_add_takes_names_from_the_image_and_numbers() {
    let b = Berth::new();
    let o = sh(
        &b,
        &["--group-add", "staff", "--group-add", "4242"],
        "id -G",
    );
    let groups: Vec<&str> = o.split_whitespace().collect();
    assert!(groups.contains(&"50") && groups.contains(&"4242"), "{o}");
    refused(
        &b,
        &["--group-add", "nosuchgroup"],
        "unable to find group nosuchgroup",
    );
}

#[test]
fn device_adds_the_node_with_its_cgroup_permissions() {
    let b = Berth::new();
    let o = sh(
        &b,
        &["--device", "/dev/null:/dev/xnull:rw"],
        "test -c /dev/xnull && echo hi > /dev/xnull && echo wrote",
    );
    assert_eq!(o, "wrote\n");
    // /dev/kmsg is not among the devices every container may use: the cgroup rule of the
    // permissions given decides whether it opens for writing (`: >` opens it and writes
    // nothing).
    let open =
        "test -c /dev/xk && echo node; (: > /dev/xk) 2>/dev/null && echo writable || echo refused";
    assert_eq!(
        sh(&b, &["--device", "/dev/kmsg:/dev/xk:rw"], open),
        "node\nwritable\n"
    );
    assert_eq!(
        sh(&b, &["--device", "/dev/kmsg:/dev/xk:r"], open),
        "node\nrefused\n"
    );
    // The default container path is the host's, the default permissions rwm.
    assert_eq!(
        sh(
            &b,
            &["--device", "/dev/zero"],
            "head -c 2 /dev/zero | wc -c"
        )
        .trim(),
        "2"
    );
    refused(&b, &["--device", "/nonexistent-dev"], "/nonexistent-dev");
    refused(&b, &["--device", "/etc/hostname"], "not a device node");
    refused(
        &b,
        &["--device", "/dev/null:/dev/n:rwx"],
        "invalid permissions",
    );
}

#[test]
fn gpus_are_cdi_devices_and_refused_when_the_host_has_none() {
    let b = Berth::new();
    // An empty spec directory stands for a host without CDI specs.
    let none = tempfile::tempdir().unwrap();
    let o = b
        .cmd()
        .env("BERTH_CDI_SPEC_DIRS", none.path())
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--gpus",
            "all",
            IMAGE,
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", err(&o));
    assert!(
        err(&o).contains("no CDI device of class gpu found"),
        "{}",
        err(&o)
    );
    assert!(b.container_ids().is_empty());
    // A vendor's spec: one GPU, a node (the host's /dev/null stands in), its environment and a
    // library mounted from the host.
    let cdi = tempfile::tempdir().unwrap();
    let lib = cdi.path().join("libfake.so");
    fs::write(&lib, "fake driver\n").unwrap();
    let spec = serde_json::json!({
        "cdiVersion": "0.6.0",
        "kind": "example.com/gpu",
        "devices": [{"name": "gpu0", "containerEdits": {
            "deviceNodes": [{"path": "/dev/fakegpu0", "hostPath": "/dev/null"}],
            "env": ["FAKE_GPU=0"]}}],
        "containerEdits": {"mounts": [{"hostPath": lib, "containerPath": "/usr/lib/libfake.so",
                                       "options": ["ro", "rbind"]}]}
    });
    fs::write(cdi.path().join("fake.json"), spec.to_string()).unwrap();
    let run = |gpus: &str| {
        b.cmd()
            .env("BERTH_CDI_SPEC_DIRS", cdi.path())
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--gpus",
                gpus,
                IMAGE,
                "sh",
                "-c",
                "test -c /dev/fakegpu0 && echo node; echo $FAKE_GPU; cat /usr/lib/libfake.so",
            ])
            .output()
            .unwrap()
    };
    for gpus in ["all", "1", "device=gpu0", "\"device=example.com/gpu=gpu0\""] {
        let o = run(gpus);
        assert_eq!(o.status.code(), Some(0), "{gpus}: {}", err(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "node\n0\nfake driver\n",
            "{gpus}"
        );
    }
    let o = run("2");
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("2 GPUs asked for"), "{}", err(&o));
    let o = run("device=gpu7");
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("no CDI device \"gpu7\""), "{}", err(&o));
}

#[test]
fn cidfile_gets_the_id_and_an_existing_one_is_refused() {
    let b = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("cid");
    let fs_ = f.to_str().unwrap();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--cidfile",
            fs_,
            IMAGE,
            "sleep",
            "600",
        ])
        .trim()
        .to_string();
    assert_eq!(fs::read_to_string(&f).unwrap(), id);
    let o = b.run(&[
        "create",
        "--network",
        "none",
        "--cidfile",
        fs_,
        IMAGE,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("container ID file found"), "{}", err(&o));
    assert_eq!(b.container_ids(), vec![id.clone()]);
    assert_eq!(fs::read_to_string(&f).unwrap(), id);
    // Nothing but the file is left beside it.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("cid")]);
    b.ok(&["rm", "-f", &id]);
}

#[test]
fn platform_must_match_the_image() {
    let b = Berth::new();
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    assert_eq!(
        sh(&b, &["--platform", &format!("linux/{host}")], "echo ran"),
        "ran\n"
    );
    refused(
        &b,
        &["--pull", "never", "--platform", &format!("linux/{other}")],
        &format!("is linux/{host}, not the requested linux/{other}"),
    );
    refused(&b, &["--platform", "linux"], "is not a platform");
}
