//! Files: bind mounts, named and anonymous volumes (copy-up), --mount, cp both ways, log
//! rotation. Needs root.

mod common;

use std::fs;

use common::{Berth, IMAGE};

#[test]
fn bind_mounts_and_named_volumes_persist() {
    let b = Berth::new();
    let host = tempfile::tempdir().unwrap();
    let h = host.path().display().to_string();
    b.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/mnt"),
        IMAGE,
        "sh",
        "-c",
        "echo from-container > /mnt/f",
    ]);
    assert_eq!(
        fs::read_to_string(host.path().join("f")).unwrap(),
        "from-container\n"
    );
    let o = b.run(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/mnt:ro"),
        IMAGE,
        "sh",
        "-c",
        "echo x > /mnt/g",
    ]);
    assert_ne!(o.status.code(), Some(0), "a :ro bind is read-only");
    // A named volume is filled from the image on first use and outlives its containers.
    let o = b.ok(&[
        "run",
        "--rm",
        "-v",
        "vol1:/data",
        IMAGE,
        "sh",
        "-c",
        "cat /data/from-image; echo kept > /data/new",
    ]);
    assert_eq!(o, "image data\n");
    let o = b.ok(&["run", "--rm", "-v", "vol1:/data", IMAGE, "cat", "/data/new"]);
    assert_eq!(o, "kept\n");
    assert!(b.root.path().join("volumes/vol1/_data/new").exists());
    let o = b.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=vol1,target=/v,readonly",
        IMAGE,
        "sh",
        "-c",
        "cat /v/new; touch /v/x 2>/dev/null || echo ro",
    ]);
    assert_eq!(o, "kept\nro\n");
    let o = b.ok(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,source={h},target=/b"),
        "--mount",
        "type=tmpfs,target=/t",
        IMAGE,
        "sh",
        "-c",
        "cat /b/f; grep ' /t ' /proc/mounts | cut -d' ' -f3",
    ]);
    assert_eq!(o, "from-container\ntmpfs\n");
    // Anonymous volumes go with rm -v.
    let id = b
        .ok(&["create", "-v", "/anon", IMAGE, "true"])
        .trim()
        .to_string();
    let v = b.inspect(&id);
    let src = v["Mounts"][0]["Source"].as_str().unwrap().to_string();
    assert!(fs::metadata(&src).is_ok());
    b.ok(&["rm", "-v", &id]);
    assert!(fs::metadata(&src).is_err(), "anonymous volume removed");
    assert!(
        b.root.path().join("volumes/vol1").exists(),
        "named volume kept"
    );
}

#[test]
fn cp_in_and_out_with_tar_semantics() {
    let b = Berth::new();
    let id = b
        .ok(&["run", "-d", IMAGE, "sleep", "100"])
        .trim()
        .to_string();
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("in.txt");
    fs::write(&src, "to the container\n").unwrap();
    b.ok(&["cp", src.to_str().unwrap(), &format!("{id}:/tmp/")]);
    assert_eq!(
        b.ok(&["exec", &id, "cat", "/tmp/in.txt"]),
        "to the container\n"
    );
    b.ok(&[
        "cp",
        src.to_str().unwrap(),
        &format!("{id}:/tmp/renamed.txt"),
    ]);
    assert_eq!(
        b.ok(&["exec", &id, "cat", "/tmp/renamed.txt"]),
        "to the container\n"
    );
    b.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mkdir -p /out/sub && echo deep > /out/sub/f && ln -s /etc/passwd /out/link",
    ]);
    let dst = host.path().join("got");
    b.ok(&["cp", &format!("{id}:/out"), dst.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(dst.join("sub/f")).unwrap(), "deep\n");
    assert_eq!(
        fs::read_link(dst.join("link")).unwrap().to_str(),
        Some("/etc/passwd")
    );
    b.ok(&[
        "cp",
        &format!("{id}:/etc/hostname"),
        host.path().to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_to_string(host.path().join("hostname"))
            .unwrap()
            .trim(),
        &id[..12]
    );
    // A symlink in the container pointing at a host path resolves inside the container.
    b.ok(&["exec", &id, "ln", "-s", "/", "/escape"]);
    b.ok(&[
        "cp",
        &format!("{id}:/escape/etc/group"),
        host.path().join("group").to_str().unwrap(),
    ]);
    assert!(
        fs::read_to_string(host.path().join("group"))
            .unwrap()
            .contains("staff:x:50")
    );
    // To stdout as a tar.
    let o = b.run(&["cp", &format!("{id}:/etc/group"), "-"]);
    let mut a = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["group"]);
}

#[test]
fn logs_rotate_by_size() {
    let b = Berth::new();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--log-opt",
            "max-size=2k",
            "--log-opt",
            "max-file=2",
            IMAGE,
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done",
        ])
        .trim()
        .to_string();
    assert_eq!(b.ok(&["wait", &id]).trim(), "0");
    let dir = b.root.path().join("containers").join(&id);
    let log = dir.join(format!("{id}-json.log"));
    assert!(fs::metadata(&log).unwrap().len() <= 2048);
    assert!(dir.join(format!("{id}-json.log.1")).exists());
    assert!(!dir.join(format!("{id}-json.log.2")).exists());
    let out = b.ok(&["logs", &id]);
    assert!(out.ends_with("line 199\n"), "{out}");
    assert!(
        !out.starts_with("line 0\n"),
        "the oldest lines were rotated away"
    );
    assert_eq!(b.ok(&["logs", "--tail", "2", &id]), "line 198\nline 199\n");
}

#[test]
fn logs_follow_until_exit() {
    let b = Berth::new();
    let id = b
        .ok(&["run", "-d", IMAGE, "sh", "-c", "echo a; sleep 1; echo b"])
        .trim()
        .to_string();
    assert_eq!(b.ok(&["logs", "-f", &id]), "a\nb\n");
}

#[test]
fn commit_makes_an_image_with_the_changes() {
    let b = Berth::new();
    let id = b
        .ok(&["run", "-d", "-e", "COMMITTED=1", "-w", "/data", IMAGE, "sh", "-c", "echo new > /newfile; rm /data/from-image; mkdir -p /etc/opq && touch /etc/opq/a; sleep 100"])
        .trim()
        .to_string();
    b.wait_for(10, "the changes", || {
        b.run(&["exec", &id, "test", "-e", "/etc/opq/a"])
            .status
            .success()
    });
    let img = b.ok(&["commit", "-m", "test", &id, "committed:v1"]);
    assert!(img.trim().starts_with("sha256:"), "{img}");
    let o = b.ok(&[
        "run",
        "--rm",
        "committed:v1",
        "sh",
        "-c",
        "cat /newfile; ls /data; echo $COMMITTED; pwd",
    ]);
    assert_eq!(
        o, "new\n1\n/data\n",
        "the file, the whiteout, the env and workdir"
    );
    // The committed Cmd is the container's.
    let o = b.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "",
        "committed:v1",
        "cat",
        "/etc/opq/a",
    ]);
    assert_eq!(o, "");
}
