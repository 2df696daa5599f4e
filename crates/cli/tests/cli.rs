//! The command line itself, as a Docker user meets it: flags berth does not know, `--format`
//! templates, a terminal asked for without one, and how errors read.

mod common;

use std::path::Path;

use common::{Berth, IMAGE};

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_flags_are_refused_by_name_before_the_image() {
    let b = Berth::new();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--rm", "--bogus-flag", IMAGE, "true"], "run"),
        (&["create", "--bogus-flag", IMAGE], "create"),
        (&["exec", "--bogus-flag", "c", "true"], "exec"),
        (&["ps", "--bogus-flag"], "ps"),
        (&["images", "--bogus-flag"], "images"),
        (&["inspect", "--bogus-flag", "c"], "inspect"),
        (&["cp", "--bogus-flag", "c:/a", "b"], "cp"),
        (&["top", "--bogus-flag", "c"], "top"),
        (&["network", "ls", "--bogus-flag"], "network ls"),
        (
            &["image", "inspect", "--bogus-flag", IMAGE],
            "image inspect",
        ),
        (
            &["--root", "/nonexistent", "logs", "--bogus-flag", "c"],
            "logs",
        ),
    ];
    for (args, cmd) in cases {
        let o = b.run(args);
        let e = err(&o);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {e}");
        assert!(
            e.lines().next() == Some("unknown flag: --bogus-flag"),
            "{args:?}: {e}"
        );
        assert!(
            e.contains(&format!("Run 'berth {cmd} --help' for more information")),
            "{args:?}: {e}"
        );
        assert!(!e.contains("invalid image reference"), "{args:?}: {e}");
    }
    assert!(b.container_ids().is_empty(), "nothing was created");

    let o = b.run(&["run", "--rm", "-Z", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        err(&o).starts_with("unknown shorthand flag: 'Z' in -Z"),
        "{}",
        err(&o)
    );
    // A flag's bad value is a flag error too, named with its command.
    let o = b.run(&["stop", "-t", "soon", "c"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("'soon'"), "{}", err(&o));
    assert!(err(&o).contains("Run 'berth stop --help'"), "{}", err(&o));

    let o = b.run(&["run", "--name"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        err(&o).starts_with("flag needs an argument: --name\n"),
        "{}",
        err(&o)
    );

    // A flag that takes a value takes the next word, dash or not (as pflag does).
    let o = b.run(&["run", "--rm", "--cpus", "-1", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("--cpus"), "{}", err(&o));
    assert!(!err(&o).contains("unknown"), "{}", err(&o));
    let id = b.ok(&["create", "-l", "-odd=1", IMAGE, "true"]);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"-odd\"}}",
            id.trim()
        ]),
        "1\n"
    );
    b.ok(&["rm", id.trim()]);

    // After the image, flags are the command's.
    let o = b.run(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo \"$@\"",
        "sh",
        "--bogus-flag",
        "-Z",
    ]);
    assert_eq!(out(&o), "--bogus-flag -Z\n", "{}", err(&o));
    assert_eq!(
        b.ok(&["run", "--rm", IMAGE, "echo", "--rm", "-it"]),
        "--rm -it\n"
    );
}

/// Runs berth with `input` piped to it, killing it (and failing) past `secs` seconds.
fn run_piped_within(b: &Berth, args: &[&str], input: &[u8], secs: u64) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = b
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "berth {args:?} still running after {secs}s: {}{}",
                out(&o),
                err(&o)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_terminal_asked_for_without_one_is_refused_before_anything_is_made() {
    let b = Berth::new();
    for args in [
        &["run", "--rm", "-it", IMAGE, "sh"][..],
        &["run", "-it", "--name", "tty-refused", IMAGE, "sh"][..],
        &["run", "-i", "-t", IMAGE, "sh", "-c", "echo ran"][..],
    ] {
        let o = run_piped_within(&b, args, b"echo hi\n", 20);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", err(&o));
        assert_eq!(err(&o), "the input device is not a TTY\n", "{args:?}");
        assert_eq!(out(&o), "", "{args:?}");
        assert!(b.container_ids().is_empty(), "{args:?} made a container");
    }
    // Without -i nothing reads our stdin, without -t nothing wants a terminal: both run.
    assert_eq!(
        b.ok(&["run", "--rm", "-t", IMAGE, "sh", "-c", "echo ran"])
            .trim_end(),
        "ran"
    );
    let o = b.run_input(&["run", "--rm", "-i", IMAGE, "cat"], b"piped\n");
    assert_eq!(out(&o), "piped\n", "{}", err(&o));

    // exec: the same check, the container untouched.
    let id = b.ok(&["run", "-d", IMAGE, "sleep", "60"]);
    let id = id.trim();
    let o = run_piped_within(&b, &["exec", "-it", id, "sh"], b"echo hi\n", 20);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_eq!(err(&o), "the input device is not a TTY\n");
    let o = b.run_input(&["exec", "-i", id, "cat"], b"piped\n");
    assert_eq!(out(&o), "piped\n", "{}", err(&o));
}

#[test]
fn an_os_error_is_named_once() {
    let b = Berth::new();
    const ENOENT: &str = "No such file or directory";
    let once = |o: &std::process::Output, what: &str, os_error: &str| {
        let e = err(o);
        assert!(!o.status.success(), "{what}: {e}");
        assert_eq!(
            e.matches(os_error).count(),
            1,
            "{what}: the OS error once:\n{e}"
        );
        e
    };
    let o = b.run(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=/nonexistent-berth.json",
        IMAGE,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    let e = once(&o, "seccomp profile", ENOENT);
    assert!(e.contains("/nonexistent-berth.json"), "{e}");

    let id = b.ok(&["run", "-d", IMAGE, "sleep", "60"]);
    let id = id.trim();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out");
    let o = b.run(&["cp", &format!("{id}:/nonexistent"), dst.to_str().unwrap()]);
    let e = once(&o, "cp from the container", ENOENT);
    assert!(e.contains("/nonexistent"), "{e}");
    let missing = dir.path().join("missing");
    let o = b.run(&["cp", missing.to_str().unwrap(), &format!("{id}:/tmp/")]);
    let e = once(&o, "cp to the container", ENOENT);
    assert!(e.contains(missing.to_str().unwrap()), "{e}");
    // An image store error names its OS error in its message and as its cause.
    let o = b.run(&["load", "-i", dir.path().to_str().unwrap()]);
    let e = once(&o, "load of a directory", "Is a directory");
    assert!(e.contains(dir.path().to_str().unwrap()), "{e}");
}

#[test]
fn format_templates_for_ps_images_and_inspect() {
    let b = Berth::new();
    let id = b.ok(&[
        "run",
        "-d",
        "--name",
        "fmt-web",
        "-l",
        "tier=front",
        "-e",
        "A=1",
        IMAGE,
        "sleep",
        "60",
    ]);
    let id = id.trim();

    // images: the template Docker users write most, a table, json.
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        format!("{IMAGE}\n")
    );
    assert_eq!(
        b.ok(&[
            "images",
            "--format",
            "table {{.Repository}}\\t{{upper .Tag}}"
        ]),
        "REPOSITORY           TAG\nberth-test/busybox   LATEST\n"
    );
    let j: serde_json::Value =
        serde_json::from_str(b.ok(&["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(j["Repository"], "berth-test/busybox");
    assert_eq!(
        b.ok(&["images", "--format", "{{json .Tag}}"]),
        "\"latest\"\n"
    );

    // ps: if/else, printf, json, split/join, a table with Docker's titles.
    assert_eq!(
        b.ok(&[
            "ps",
            "--format",
            "{{.Names}} {{if eq .State \"running\"}}up{{else}}down{{end}} {{printf \"%.5s\" .ID}}"
        ]),
        format!("fmt-web up {}\n", &id[..5])
    );
    assert_eq!(
        b.ok(&[
            "ps",
            "--format",
            "{{json .Names}} {{join (split .Labels \",\") \";\"}}"
        ]),
        "\"fmt-web\" org.example.image=busybox;tier=front\n"
    );
    assert_eq!(
        b.ok(&["ps", "--format", "table {{.Names}}\\t{{.State}}"]),
        "NAMES     STATE\nfmt-web   running\n"
    );
    let default = b.ok(&["ps", "--format", "table"]);
    assert!(
        default.starts_with("CONTAINER ID   IMAGE                       COMMAND"),
        "{default}"
    );
    assert!(
        default.lines().nth(1).unwrap().starts_with(&id[..12]),
        "{default}"
    );

    // inspect: range, index, json, join, upper, printf on the container's JSON.
    assert_eq!(
        b.ok(&[
            "inspect",
            "--format",
            "{{range .Config.Env}}{{if eq (index (split . \"=\") 0) \"A\"}}{{.}}{{end}}{{end}}",
            id
        ]),
        "A=1\n"
    );
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"tier\"}} {{json .Config.Cmd}} {{join .Config.Cmd \" \"}} {{upper .Config.Image}}",
            "fmt-web"
        ]),
        "front [\"sleep\",\"60\"] sleep 60 BERTH-TEST/BUSYBOX:LATEST\n"
    );
    let pid = b.ok(&[
        "inspect",
        "-f",
        "{{.State.Running}} {{printf \"%d\" .State.Pid}}",
        id,
    ]);
    let (running, pid) = pid.trim().split_once(' ').unwrap();
    assert_eq!(running, "true");
    assert!(pid.parse::<u32>().unwrap() > 0, "{pid}");
    let j: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "-f", "json", id])).unwrap();
    assert_eq!(j[0]["Id"], id);
    // Each item of several on its own line; image inspect and network ls take templates too.
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Config.Image}}", id, "fmt-web"]),
        format!("{IMAGE}\n{IMAGE}\n")
    );
    assert_eq!(
        b.ok(&["image", "inspect", "-f", "{{index .RepoTags 0}}", IMAGE]),
        format!("{IMAGE}\n")
    );
    let nets = b.ok(&["network", "ls", "--format", "{{.Name}}/{{.Driver}}"]);
    assert!(nets.lines().any(|l| l == "bridge/bridge"), "{nets}");

    // A template that does not parse: Docker's words, berth's exit status.
    let o = b.run(&["ps", "--format", "{{.Names"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("failed to parse template"), "{}", err(&o));
}

#[test]
fn cp_copies_a_symlink_itself_and_follows_it_inside_the_container_with_l() {
    let b = Berth::new();
    let id = b.ok(&[
        "run",
        "-d",
        "-v",
        "cp-links:/vol",
        IMAGE,
        "sh",
        "-c",
        "echo container-file > /tmp/target && ln -s /tmp/target /tmp/link \
         && ln -s /etc/passwd /tmp/pw && ln -s ../../../../../etc/passwd /tmp/up \
         && ln -s /etc/passwd /vol/pw && touch /tmp/ready && sleep 60",
    ]);
    let id = id.trim();
    b.wait_for(20, "the links", || {
        b.run(&["exec", id, "test", "-e", "/tmp/ready"])
            .status
            .success()
    });
    let passwd = b.ok(&["exec", id, "cat", "/etc/passwd"]);
    assert_ne!(
        passwd,
        std::fs::read_to_string("/etc/passwd").unwrap(),
        "the test needs the container's /etc/passwd to differ from the host's"
    );
    let d = tempfile::tempdir().unwrap();
    let at = |n: &str| d.path().join(n);
    let link = |n: &str| {
        std::fs::read_link(at(n)).unwrap_or_else(|e| panic!("{n}: the copy is no symlink: {e}"))
    };
    let from = |p: &str| format!("{id}:{p}");

    // Without -L: the link itself, as Docker copies it (into a directory too, and from a volume).
    b.ok(&["cp", &from("/tmp/link"), at("link").to_str().unwrap()]);
    assert_eq!(link("link"), Path::new("/tmp/target"));
    b.ok(&["cp", &from("/tmp/pw"), d.path().to_str().unwrap()]);
    assert_eq!(link("pw"), Path::new("/etc/passwd"));
    b.ok(&["cp", &from("/vol/pw"), at("volpw").to_str().unwrap()]);
    assert_eq!(link("volpw"), Path::new("/etc/passwd"));
    let tar = b.run(&["cp", &from("/tmp/up"), "-"]);
    let mut a = tar::Archive::new(&tar.stdout[..]);
    let entry = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
    assert_eq!(entry.path().unwrap(), Path::new("up"));

    // With -L: what the link names, under the link's name, resolved in the container: a
    // link to /etc/passwd (absolute, or climbing out with ..) is the container's file.
    b.ok(&[
        "cp",
        "-L",
        &from("/tmp/link"),
        at("followed").to_str().unwrap(),
    ]);
    assert!(
        !std::fs::symlink_metadata(at("followed"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(at("followed")).unwrap(),
        "container-file\n"
    );
    for (link, copy) in [
        ("/tmp/pw", "pw-followed"),
        ("/tmp/up", "up-followed"),
        ("/vol/pw", "volpw-followed"),
    ] {
        b.ok(&[
            "cp",
            "--follow-link",
            &from(link),
            at(copy).to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read_to_string(at(copy)).unwrap(), passwd, "{link}");
    }
    let sub = tempfile::tempdir().unwrap();
    b.ok(&["cp", "-L", &from("/tmp/pw"), sub.path().to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(sub.path().join("pw")).unwrap(),
        passwd
    );

    // Host to container: the link itself, or with -L its target's content.
    std::os::unix::fs::symlink("/nonexistent-host-target", at("hostlink")).unwrap();
    b.ok(&["cp", at("hostlink").to_str().unwrap(), &from("/tmp/")]);
    assert_eq!(
        b.ok(&["exec", id, "readlink", "/tmp/hostlink"]),
        "/nonexistent-host-target\n"
    );
    std::os::unix::fs::symlink(at("followed"), at("hostlink2")).unwrap();
    b.ok(&[
        "cp",
        "-L",
        at("hostlink2").to_str().unwrap(),
        &from("/tmp/"),
    ]);
    assert_eq!(
        b.ok(&[
            "exec",
            id,
            "sh",
            "-c",
            "test -L /tmp/hostlink2 || cat /tmp/hostlink2"
        ]),
        "container-file\n"
    );
}

#[test]
fn an_unknown_command_is_berths_error() {
    let b = Berth::new();
    for (args, what) in [
        (&["frobnicate"][..], "berth frobnicate"),
        (&["volume", "frobnicate"][..], "berth volume frobnicate"),
        (&["system", "frobnicate"][..], "berth system frobnicate"),
    ] {
        let o = b.run(args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", err(&o));
        assert!(
            err(&o).contains(&format!("unknown command: {what}")),
            "{args:?}: {}",
            err(&o)
        );
    }
}

/// `images` filters with Docker's semantics, checked in the engine: reference globs (also
/// the REPOSITORY[:TAG] argument), label, dangling, before/since by image; bad filters are
/// errors naming them. `image inspect` keeps the API's shape.
#[test]
fn images_filters_as_docker() {
    let b = Berth::new();
    let rows = |args: &[&str]| {
        let mut a = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        a.extend_from_slice(args);
        b.ok(&a).lines().map(str::to_string).collect::<Vec<_>>()
    };
    b.ok(&["tag", IMAGE, "berth-test/busybox:two"]);
    b.ok(&["tag", IMAGE, "other/thing:v1"]);
    let id = b.ok(&["create", "--network", "none", IMAGE, "true"]);
    b.ok(&["commit", id.trim(), "late/commit:1"]);

    // Newest first (the commit has a creation time, the test image none), then by name.
    assert_eq!(
        rows(&[]),
        [
            "late/commit:1",
            "berth-test/busybox:latest",
            "berth-test/busybox:two",
            "other/thing:v1"
        ]
    );
    assert_eq!(
        rows(&["--filter", "reference=berth-test/*"]),
        ["berth-test/busybox:latest", "berth-test/busybox:two"]
    );
    assert_eq!(
        rows(&["berth-test/busybox:two"]),
        ["berth-test/busybox:two"]
    );
    assert_eq!(rows(&["-f", "reference=*/thing"]), ["other/thing:v1"]);
    assert_eq!(rows(&["-f", "reference=*/*:v?"]), ["other/thing:v1"]);
    assert_eq!(
        rows(&["-f", "reference=other/*", "-f", "reference=late/*"]),
        ["late/commit:1", "other/thing:v1"]
    );
    assert_eq!(
        rows(&[
            "-f",
            "label=org.example.image=busybox",
            "-f",
            "reference=other/*"
        ]),
        ["other/thing:v1"]
    );
    assert!(rows(&["-f", "label=nope"]).is_empty());
    assert!(rows(&["-f", "dangling=true"]).is_empty());
    assert_eq!(rows(&["-f", "dangling=false"]).len(), 4);
    assert_eq!(rows(&["-f", &format!("since={IMAGE}")]), ["late/commit:1"]);
    assert_eq!(rows(&["-f", "before=late/commit:1"]).len(), 3);
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 2, "two images");

    for (filter, want) in [
        ("dangling=maybe", "'dangling=maybe'"),
        ("colour=red", "\"colour\""),
        ("before=nosuch:1", "nosuch:1"),
    ] {
        let o = b.run(&["images", "--filter", filter]);
        assert_eq!(o.status.code(), Some(125), "{filter}");
        assert!(err(&o).contains(want), "{filter}: {}", err(&o));
    }

    let j: serde_json::Value =
        serde_json::from_str(&b.ok(&["images", "--format", "json", "late/commit"])).unwrap();
    assert!(
        j["CreatedAt"].as_str().unwrap().ends_with(" +0000 UTC"),
        "{j}"
    );
    assert!(j["CreatedSince"].as_str().unwrap().ends_with(" ago"), "{j}");
    assert_eq!(j["Containers"], "N/A");

    let v: serde_json::Value = serde_json::from_str(&b.ok(&["image", "inspect", IMAGE])).unwrap();
    let v = &v[0];
    assert_eq!(
        v["RepoTags"],
        serde_json::json!([
            "berth-test/busybox:latest",
            "berth-test/busybox:two",
            "other/thing:v1"
        ])
    );
    assert_eq!(v["Config"]["Labels"]["org.example.image"], "busybox");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["Metadata"]["LastTagTime"], "0001-01-01T00:00:00Z");
    assert!(
        v["Descriptor"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}
