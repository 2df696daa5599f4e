//! `info`, `version`, `system df`, `system prune`, `history`, the `container` group, and the
//! one image look-up (`run IMAGE-ID` finds what `rmi IMAGE-ID` finds). Needs root.

mod common;

use common::{Berth, IMAGE};

fn image_id(b: &Berth) -> String {
    b.inspect_image(IMAGE)["Id"].as_str().unwrap().to_string()
}

#[test]
fn info_and_version_say_what_berth_is() {
    let b = Berth::new();
    b.ok(&["create", "--network", "none", IMAGE, "true"]);
    let info = b.ok(&["info"]);
    for want in [
        "Containers: 1",
        "Stopped: 1",
        "Images: 1",
        "Storage Driver: overlay",
        "Cgroup Driver: cgroupfs",
        "Logging Driver: json-file",
        "OSType: linux",
        "seccomp",
    ] {
        assert!(info.contains(want), "{want:?} missing:\n{info}");
    }
    let root = b.root.path().display().to_string();
    assert!(info.contains(&format!("Docker Root Dir: {root}")), "{info}");
    let j: serde_json::Value = serde_json::from_str(&b.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(j["Containers"], 1);
    assert_eq!(j["ContainersStopped"], 1);
    assert!(j["NCPU"].as_u64().unwrap() > 0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(j["KernelVersion"], kernel.trim());
    assert_eq!(b.ok(&["info", "--format", "{{.Images}}"]).trim(), "1");
    let v = b.ok(&["version"]);
    assert!(v.contains("API version:       1.44"), "{v}");
    assert!(v.contains("(minimum version 1.24)"), "{v}");
    assert!(v.contains("berth-runtime"), "{v}");
    assert_eq!(
        b.ok(&["version", "--format", "{{.Server.ApiVersion}}"])
            .trim(),
        "1.44"
    );
}

#[test]
fn system_df_counts_and_prune_reclaims() {
    let b = Berth::new();
    let vol = format!("dfvol{}", std::process::id());
    b.ok(&["volume", "create", &vol]);
    b.ok(&[
        "run",
        "--network",
        "none",
        "-v",
        "/anon",
        IMAGE,
        "sh",
        "-c",
        "head -c 50000 /dev/zero > /written; head -c 20000 /dev/zero > /anon/f",
    ]);
    let df = b.ok(&["system", "df"]);
    let row = |kind: &str| -> Vec<String> {
        df.lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("{kind} row missing:\n{df}"))
            .trim_start_matches(kind)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert!(df.starts_with("TYPE"), "{df}");
    let images = row("Images");
    assert_eq!(&images[..2], ["1", "1"], "one image, in use:\n{df}");
    let containers = row("Containers");
    assert_eq!(&containers[..2], ["1", "0"], "{df}");
    assert_eq!(containers[2], "50kB", "the written file:\n{df}");
    let volumes = row("Local Volumes");
    assert_eq!(&volumes[..2], ["2", "1"], "{df}");
    assert_eq!(row("Build Cache")[..2], ["0", "0"]);
    let verbose = b.ok(&["system", "df", "-v"]);
    for want in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        &vol,
    ] {
        assert!(verbose.contains(want), "{want:?} missing:\n{verbose}");
    }
    // Without -a: the stopped container goes, the image it used is then dangling-free and
    // stays; with --volumes the now unused anonymous volume goes, the named one stays.
    let out = b.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains("Deleted Volumes:"), "{out}");
    assert!(!out.contains(&vol), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert!(!out.trim_end().ends_with(" 0B"), "{out}");
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "");
    assert!(
        b.ok(&["images", "-q"]).trim().len() >= 12,
        "the image stays without -a"
    );
    let out = b.ok(&["system", "prune", "-a", "-f"]);
    assert!(
        out.contains("Deleted Images:") && out.contains("untagged: "),
        "{out}"
    );
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    assert_eq!(b.ok(&["volume", "ls", "-q"]).trim(), vol);
}

#[test]
fn history_shows_each_layer_and_image_history_is_the_same() {
    let b = Berth::new();
    let out = b.ok(&["history", IMAGE]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&image_id(&b).trim_start_matches("sha256:")[..12]),
        "{out}"
    );
    assert!(lines.len() >= 2, "{out}");
    assert_eq!(b.ok(&["image", "history", IMAGE]), out);
    let q = b.ok(&["history", "-q", IMAGE]);
    assert_eq!(q.lines().count(), lines.len() - 1, "{q}");
    let sizes = b.ok(&["history", "-H=false", "--format", "{{.Size}}", IMAGE]);
    assert!(
        sizes.lines().all(|s| s.parse::<u64>().is_ok()),
        "bytes without -H: {sizes}"
    );
    assert!(
        sizes.lines().any(|s| s.parse::<u64>().unwrap() > 0),
        "{sizes}"
    );
    let missing = b.run(&["history", "no-such-image"]);
    assert_ne!(missing.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No such image"));
}

#[test]
fn the_container_group_has_every_verb_and_run_finds_an_image_by_id() {
    let b = Berth::new();
    let id = image_id(&b);
    let short = id.trim_start_matches("sha256:")[..12].to_string();
    // The image by its short and full ID, as rmi and inspect take it.
    for by in [short.as_str(), id.as_str()] {
        assert_eq!(
            b.ok(&[
                "container",
                "run",
                "--rm",
                "--network",
                "none",
                by,
                "echo",
                "by-id"
            ]),
            "by-id\n"
        );
    }
    let c = b
        .ok(&[
            "container",
            "create",
            "--network",
            "none",
            "--name",
            "grp",
            IMAGE,
            "true",
        ])
        .trim()
        .to_string();
    assert_eq!(b.ok(&["container", "ls", "-aq", "--no-trunc"]).trim(), c);
    assert_eq!(b.ok(&["container", "list", "-aq"]).trim(), &c[..12]);
    b.ok(&["container", "start", "-a", "grp"]);
    assert_eq!(
        b.ok(&[
            "container",
            "inspect",
            "--format",
            "{{.State.Status}}",
            "grp"
        ])
        .trim(),
        "exited"
    );
    b.ok(&["container", "rm", "grp"]);
    b.ok(&["container", "prune", "-f"]);
    assert_eq!(b.ok(&["container", "ls", "-aq"]).trim(), "");
}
