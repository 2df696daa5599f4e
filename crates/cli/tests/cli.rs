//! The command line itself, as a Docker user meets it: flags berth does not know, `--format`
//! templates, a terminal asked for without one, and how errors read.

mod common;

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
