//! `-D/--debug` and the monitor's log: what berth does goes to stderr with -D and nowhere
//! without it; each container's monitor logs its life to `monitor.log`. Needs root.

mod common;

use std::fs;

use common::{Berth, IMAGE};

#[test]
fn debug_logs_to_stderr_and_monitors_to_their_log() {
    let b = Berth::new();
    let quiet = b.run(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    assert!(quiet.status.success());
    assert_eq!(
        String::from_utf8_lossy(&quiet.stderr),
        "",
        "nothing without -D"
    );

    let loud = b.run(&["-D", "run", "-d", "--network", "none", IMAGE, "true"]);
    assert!(loud.status.success());
    let id = String::from_utf8_lossy(&loud.stdout).trim().to_string();
    let err = String::from_utf8_lossy(&loud.stderr);
    assert!(
        err.contains("DEBUG") && err.contains("start monitor") && err.contains(&id),
        "-D says what it does: {err}"
    );
    b.ok(&["wait", &id]);
    let log = fs::read_to_string(
        b.root
            .path()
            .join("containers")
            .join(&id)
            .join("monitor.log"),
    )
    .unwrap();
    assert!(log.contains("monitor started"), "{log}");
    assert!(log.contains("container exited code=0"), "{log}");
    // The monitor of a -D command logs at debug: each berth-runtime call with its time.
    assert!(
        log.contains("berth-runtime") && log.contains("verb=\"run\"") && log.contains("elapsed_ms"),
        "{log}"
    );
}
