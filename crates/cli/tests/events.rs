//! `berth events`: the event log every transition appends to, read back in order, filtered,
//! formatted and followed. Needs root.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Berth, IMAGE};

fn now() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// `events --since SINCE --until NOW ARGS...`: what happened since `since`, up to now.
fn past_events(b: &Berth, since: &str, args: &[&str]) -> String {
    let until = now();
    let mut all = vec!["events", "--since", since, "--until", &until];
    all.extend_from_slice(args);
    b.ok(&all)
}

/// The actions of the container's events between `since` and now, as `events --format` prints
/// them.
fn actions(b: &Berth, since: &str, filter: &str) -> Vec<String> {
    past_events(b, since, &["--filter", filter, "--format", "{{.Action}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_transition_is_an_event_in_order() {
    let b = Berth::new();
    let t0 = now();
    let name = format!("ev-{}", std::process::id());
    let id = b
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            IMAGE,
            "sleep",
            "100",
        ])
        .trim()
        .to_string();
    b.ok(&["exec", &name, "true"]);
    b.ok(&["pause", &name]);
    b.ok(&["unpause", &name]);
    let renamed = format!("{name}-2");
    b.ok(&["rename", &name, &renamed]);
    // sleep ignores SIGTERM as PID 1: stop kills it after the timeout.
    b.ok(&["restart", "-t", "0", &renamed]);
    b.ok(&["kill", "-s", "USR1", &renamed]);
    b.ok(&["rm", "-f", &renamed]);

    let got = actions(&b, &t0, &format!("container={id}"));
    let want = [
        "create",
        "start",
        "exec_create: true",
        "exec_start: true",
        "exec_die",
        "pause",
        "unpause",
        "rename",
        "kill",
        "kill",
        "die",
        "stop",
        "start",
        "restart",
        "kill",
        "kill",
        "die",
        "destroy",
    ];
    assert_eq!(got, want, "events of {id}");

    // The attributes a script reads: the exit code of die, the signal of kill, the old name.
    let json = past_events(
        &b,
        &t0,
        &[
            "--filter",
            &format!("container={renamed}"),
            "--filter",
            "event=die",
            "--format",
            "json",
        ],
    );
    let dies: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dies.len(), 2, "{json}");
    for d in &dies {
        assert_eq!(d["Type"], "container");
        assert_eq!(d["Actor"]["ID"], id.as_str());
        assert_eq!(d["Actor"]["Attributes"]["exitCode"], "137", "{d}");
        assert_eq!(d["Actor"]["Attributes"]["image"], IMAGE);
        assert_eq!(d["status"], "die", "the deprecated fields are there too");
    }
    let kills = past_events(
        &b,
        &t0,
        &[
            "--filter",
            &format!("container={id}"),
            "--filter",
            "event=kill",
            "--format",
            "{{.Actor.Attributes.signal}}",
        ],
    );
    assert_eq!(
        kills.split_whitespace().collect::<Vec<_>>(),
        ["15", "9", "10", "9"]
    );
    let rename = past_events(
        &b,
        &t0,
        &[
            "--filter",
            "event=rename",
            "--filter",
            &format!("container={id}"),
        ],
    );
    // Docker's default line: TIME TYPE ACTION ID (ATTRIBUTES).
    let line = rename.trim();
    let fields: Vec<&str> = line.splitn(5, ' ').collect();
    assert!(
        fields[0].ends_with('Z') && fields[0].contains('T'),
        "{line}"
    );
    assert_eq!(
        &fields[1..4],
        ["container", "rename", id.as_str()],
        "{line}"
    );
    assert!(
        fields[4].contains(&format!("name={renamed}"))
            && fields[4].contains(&format!("oldName=/{name}")),
        "{line}"
    );
}

#[test]
fn network_events_and_filters_by_type() {
    let b = Berth::new();
    let t0 = now();
    let net = format!("evnet{}", std::process::id());
    let id = b.ok(&["network", "create", &net]).trim().to_string();
    let c = b
        .ok(&["create", "--network", &net, IMAGE, "true"])
        .trim()
        .to_string();
    b.ok(&["rm", &c]);
    b.ok(&["network", "rm", &net]);
    let got = past_events(
        &b,
        &t0,
        &[
            "--filter",
            "type=network",
            "--filter",
            &format!("network={net}"),
            "--format",
            "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.container}}",
        ],
    );
    let want = format!(
        "create {id} <no value>\nconnect {id} {c}\ndisconnect {id} {c}\ndestroy {id} <no value>\n"
    );
    assert_eq!(got, want);
    let bad = b.run(&["events", "--filter", "colour=red"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid filter \"colour\""),
        "{bad:?}"
    );
}

#[test]
fn a_follower_sees_events_as_they_happen() {
    let b = Berth::new();
    let name = format!("evf-{}", std::process::id());
    let mut follower = b
        .cmd()
        .args([
            "events",
            "--since",
            &now(),
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{.Action}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let _ = tx.send(l.unwrap());
        }
    });
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        &name,
        IMAGE,
        "true",
    ]);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.last().map(String::as_str) != Some("destroy") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => break,
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(seen, ["create", "attach", "start", "die", "destroy"]);
}

#[test]
fn image_operations_are_events_and_rmi_spares_an_image_in_use() {
    let b = Berth::new();
    let t0 = now();
    let name = format!("evimg/copy:{}", std::process::id());
    b.ok(&["tag", IMAGE, &name]);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("img.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    // A container made from it: removing its last name needs -f (as Docker).
    let c = b
        .ok(&["create", "--network", "none", &name, "true"])
        .trim()
        .to_string();
    b.ok(&["rmi", IMAGE]);
    let refused = b.run(&["rmi", &name]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("must force") && err.contains(&c[..12]),
        "{err}"
    );
    b.ok(&["rm", &c]);
    b.ok(&["rmi", &name]);
    b.ok(&["load", "-i", archive.to_str().unwrap()]);
    let got = past_events(
        &b,
        &t0,
        &[
            "--filter",
            "type=image",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    let want = [
        format!("tag {name}"),
        format!("save {name}"),
        format!("untag {IMAGE}"),
        format!("untag {name}"),
    ];
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(&lines[..4], want, "{got}");
    assert!(lines[4].starts_with("delete sha256:"), "{got}");
    assert_eq!(lines[5], format!("load {name}"), "{got}");
    assert_eq!(lines.len(), 6, "{got}");
}
