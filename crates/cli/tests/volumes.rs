//! `volume create|ls|inspect|rm|prune` and volumes in containers: copy-up into a new or empty
//! volume, in-use refusal, anonymous volumes, the local driver's tmpfs and bind options, and
//! the volume events. Needs root.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Berth, IMAGE, mounted_below};

fn unique(prefix: &str) -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{prefix}{}-{}", std::process::id(), t.subsec_nanos())
}

#[test]
fn create_ls_inspect_rm_and_in_use() {
    let b = Berth::new();
    let name = unique("vol");
    assert_eq!(
        b.ok(&["volume", "create", "--label", "tier=db", &name])
            .trim(),
        name
    );
    // Created again: the same volume, no error (as Docker).
    assert_eq!(b.ok(&["volume", "create", &name]).trim(), name);
    let ls = b.ok(&["volume", "ls"]);
    assert!(ls.starts_with("DRIVER"), "{ls}");
    assert!(ls.lines().next().unwrap().contains("VOLUME NAME"), "{ls}");
    assert!(
        ls.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["local", name.as_str()]),
        "{ls}"
    );
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["volume", "inspect", &name])).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], name.as_str());
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["tier"], "db");
    let mountpoint = v["Mountpoint"].as_str().unwrap().to_string();
    assert!(
        mountpoint.ends_with(&format!("/volumes/{name}/_data")),
        "{v}"
    );
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'), "{v}");
    assert_eq!(
        b.ok(&["volume", "inspect", "--format", "{{.Labels.tier}}", &name])
            .trim(),
        "db"
    );
    assert_eq!(
        b.ok(&["volume", "ls", "-q", "--filter", "label=tier=db"])
            .trim(),
        name
    );

    // A pre-created empty volume is filled from the image on first use (copy-up), and what
    // a container writes persists for the next one.
    let c = b
        .ok(&[
            "create",
            "--network",
            "none",
            "-v",
            &format!("{name}:/etc"),
            IMAGE,
            "sh",
            "-c",
            "cat /etc/passwd >/dev/null && echo kept > /etc/mine",
        ])
        .trim()
        .to_string();
    assert!(
        std::path::Path::new(&mountpoint).join("passwd").exists(),
        "copied up at create"
    );
    b.ok(&["start", "-a", &c]);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{name}:/data"),
            IMAGE,
            "cat",
            "/data/mine"
        ])
        .trim(),
        "kept"
    );
    // In use by a stopped container: refused, with the container named; dangling filter.
    let rm = b.run(&["volume", "rm", &name]);
    assert_eq!(rm.status.code(), Some(1));
    let err = String::from_utf8_lossy(&rm.stderr);
    assert!(
        err.contains("volume is in use") && err.contains(&c),
        "{err}"
    );
    let dangling = b.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert!(!dangling.lines().any(|l| l == name), "{dangling}");
    b.ok(&["rm", &c]);
    let dangling = b.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert!(dangling.lines().any(|l| l == name), "{dangling}");
    assert_eq!(b.ok(&["volume", "rm", &name]).trim(), name);
    assert!(!b.ok(&["volume", "ls", "-q"]).lines().any(|l| l == name));
    let gone = b.run(&["volume", "inspect", &name]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("No such volume"));
    // -f: a missing volume is no error.
    b.ok(&["volume", "rm", "-f", &name]);
    let bad = b.run(&["volume", "create", "--opt", "colour=red", &unique("v")]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid option key \"colour\""),
        "{bad:?}"
    );
    let bad = b.run(&["volume", "create", "bad/name"]);
    assert_eq!(bad.status.code(), Some(125));
}

#[test]
fn prune_takes_unused_anonymous_volumes_and_all_with_a() {
    let b = Berth::new();
    let named = unique("keep");
    b.ok(&["volume", "create", &named]);
    // An anonymous volume left by an `rm` without -v.
    let c = b
        .ok(&[
            "run",
            "--network",
            "none",
            "-v",
            "/anon",
            IMAGE,
            "sh",
            "-c",
            "head -c 100000 /dev/zero > /anon/f",
        ])
        .to_string();
    let _ = c;
    let ids = b.container_ids();
    let r = b.inspect(&ids[0]);
    let anon = r["Mounts"][0]["Name"].as_str().unwrap().to_string();
    assert_eq!(anon.len(), 64, "{r}");
    // Used by a container: prune keeps it.
    let out = b.ok(&["volume", "prune", "-f"]);
    assert!(!out.contains(&anon), "{out}");
    b.ok(&["rm", &ids[0]]);
    let out = b.ok(&["volume", "prune", "-f"]);
    assert!(
        out.contains("Deleted Volumes:") && out.contains(&anon),
        "{out}"
    );
    assert!(
        !out.contains(&named),
        "named volumes stay without -a: {out}"
    );
    let reclaimed = out.lines().last().unwrap();
    assert!(
        reclaimed.starts_with("Total reclaimed space: ") && !reclaimed.ends_with(" 0B"),
        "{out}"
    );
    let out = b.ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.contains(&named), "{out}");
    assert!(b.ok(&["volume", "ls", "-q"]).trim().is_empty());
}

#[test]
fn local_driver_tmpfs_and_bind_options_mount_while_containers_run() {
    let b = Berth::new();
    let tmp = unique("tmpv");
    b.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=2m,mode=0750",
        &tmp,
    ]);
    let df = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{tmp}:/t"),
        IMAGE,
        "sh",
        "-c",
        "grep ' /t ' /proc/mounts; stat -c %a /t",
    ]);
    assert!(
        df.contains("tmpfs /t tmpfs") && df.contains("size=2048k"),
        "{df}"
    );
    assert!(df.trim_end().ends_with("750"), "{df}");
    // Unmounted once no container runs: nothing of it stays mounted on the host.
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["volume", "inspect", &tmp])).unwrap();
    let mp = v[0]["Mountpoint"].as_str().unwrap().to_string();
    assert_eq!(
        mounted_below(std::path::Path::new(&mp)),
        Vec::<String>::new()
    );

    // A bind of a host directory through the local driver.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("hello"), "from the host\n").unwrap();
    let bind = unique("bindv");
    b.ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        &format!("device={}", host.path().display()),
        "--opt",
        "o=bind",
        &bind,
    ]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{bind}:/h"),
        IMAGE,
        "sh",
        "-c",
        "cat /h/hello; echo back > /h/reply",
    ]);
    assert_eq!(out, "from the host\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("reply")).unwrap(),
        "back\n"
    );
    let bad = b.run(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "device=/nonexistent-dir",
        "--opt",
        "o=bind",
        &unique("bad"),
    ]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent-dir"));

    // The volume events, in order.
    let ev = b.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        &format!("volume={tmp}"),
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(
        ev.lines().collect::<Vec<_>>(),
        ["create", "mount", "unmount"],
        "{ev}"
    );
    b.ok(&["volume", "rm", &tmp, &bind]);
    assert!(
        host.path().join("hello").exists(),
        "rm of a bind volume keeps the source"
    );
}
