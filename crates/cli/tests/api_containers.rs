//! `berth serve`'s container lifecycle endpoints, driven by the real docker CLI 28 (and
//! Debian's 20.10, API 1.41): create, start, ps with filters and formats, inspect, stop,
//! restart, kill, wait, rename, update, pause, rm, prune, `run -d` (with `--rm`), and the
//! daemonless CLI seeing the same containers. Error paths by hand over the socket.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::IMAGE;
use common::serve::{Server, free_port, get_when_up};

/// A name unique to this test run (suites run in parallel, each server has its own root, but
/// names also show in events and logs).
fn uniq(what: &str) -> String {
    format!("{what}-{}", std::process::id())
}

/// `docker inspect --format FORMAT C`, trimmed.
fn fmt(s: &Server, c: &str, format: &str) -> String {
    s.docker_ok(&["inspect", "--format", format, c])
        .trim()
        .to_string()
}

/// `docker ps ARGS --format {{.Names}}`, the names sorted.
fn ps_names(s: &Server, args: &[&str]) -> Vec<String> {
    let mut a = vec!["ps"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--format", "{{.Names}}"]);
    let mut v: Vec<String> = s.docker_ok(&a).lines().map(str::to_string).collect();
    v.sort();
    v
}

/// A raw HTTP/1.1 request over the server's socket: (status, body). The body of a chunked
/// response is returned as it came (its JSON is still in it whole).
fn http(s: &Server, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut c = UnixStream::connect(&s.sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// A wait request whose response headers have come (the 200 is sent at once): read the rest
/// with [`Wait::body`].
struct Wait {
    conn: UnixStream,
    seen: String,
}

impl Wait {
    fn begin(s: &Server, id: &str, condition: &str) -> Wait {
        let mut conn = UnixStream::connect(&s.sock).unwrap();
        // A guard against a hang, not a timing: every wait here ends well before.
        conn.set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        write!(
            conn,
            "POST /v1.44/containers/{id}/wait?condition={condition} HTTP/1.1\r\nHost: berth\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains("\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "the wait's connection closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
        Wait { conn, seen }
    }

    /// The response's JSON once it has come.
    fn body(mut self) -> serde_json::Value {
        let mut buf = [0u8; 4096];
        loop {
            let body = self.seen.split_once("\r\n\r\n").unwrap().1;
            if let Some(start) = body.find('{')
                && let Some(end) = body.rfind('}')
                && let Ok(v) = serde_json::from_str(&body[start..=end])
            {
                return v;
            }
            let n = self.conn.read(&mut buf).unwrap();
            assert!(n > 0, "the wait ended without a body: {}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}

#[test]
fn create_start_ps_inspect_stop_rm() {
    let s = Server::start(&[]);
    let name = uniq("life");
    let label = format!("suite={name}");
    let id = s
        .docker_ok(&[
            "create", "--name", &name, "-l", &label, IMAGE, "sleep", "300",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    // Created: only with -a, and the daemonless CLI sees it.
    assert!(ps_names(&s, &[]).is_empty());
    assert_eq!(
        ps_names(&s, &["-a", "--filter", &format!("label={label}")]),
        [name.as_str()]
    );
    assert_eq!(
        ps_names(&s, &["-a", "--filter", "status=created"]),
        [name.as_str()]
    );
    let berth_ps = s
        .berth
        .ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert!(berth_ps.contains(&format!("{name} created")), "{berth_ps}");
    assert_eq!(fmt(&s, &name, "{{.State.Status}}"), "created");

    s.docker_ok(&["start", &name]);
    assert_eq!(
        fmt(&s, &name, "{{.State.Status}} {{.State.Running}} {{.Name}}"),
        format!("running true /{name}")
    );
    // A second start has nothing to do (304): the CLI says nothing is wrong.
    s.docker_ok(&["start", &name]);
    let out = s.docker_ok(&[
        "ps",
        "--filter",
        &format!("name={name}"),
        "--filter",
        "status=running",
        "--format",
        "{{.ID}} {{.Image}} {{.Command}} {{.State}} {{.Label \"suite\"}}",
    ]);
    assert_eq!(
        out.trim(),
        format!("{} {IMAGE} \"sleep 300\" running {name}", &id[..12])
    );
    // inspect with its size, as `docker inspect -s` asks.
    let v: serde_json::Value =
        serde_json::from_str(&s.docker_ok(&["inspect", "-s", &name])).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert!(v[0]["SizeRw"].is_i64(), "{}", v[0]);
    assert!(v[0]["SizeRootFs"].as_i64().unwrap() > 0, "{}", v[0]);
    // `ps -s` too.
    let size = s.docker_ok(&["ps", "-s", "--format", "{{.Size}}"]);
    assert!(size.contains("virtual"), "{size}");

    // A running container is not removed without force: Docker's message.
    let err = s.docker_err(&["rm", &name]);
    assert!(
        err.contains(&format!(
            "cannot remove container \"/{name}\": container is running: stop the container \
             before removing or force remove"
        )),
        "{err}"
    );
    s.docker_ok(&["stop", "-t", "1", &name]);
    assert_eq!(fmt(&s, &name, "{{.State.Status}}"), "exited");
    assert_eq!(
        ps_names(&s, &["-a", "--filter", "status=exited"]),
        [name.as_str()]
    );
    // Stopping a stopped container is a 304, not an error.
    s.docker_ok(&["stop", &name]);
    s.docker_ok(&["rm", &name]);
    assert!(ps_names(&s, &["-a"]).is_empty());
    let err = s.docker_err(&["inspect", &name]);
    assert!(err.contains(&format!("No such object: {name}")), "{err}");
    assert!(s.berth.container_ids().is_empty());
}

#[test]
fn kill_wait_restart_and_rm_force() {
    let s = Server::start(&[]);
    let name = uniq("kw");
    s.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 7' HUP; while true; do sleep 0.1; done",
    ]);
    let pid1 = fmt(&s, &name, "{{.State.Pid}}");
    // `docker wait` blocks until the exit: started first, then the signal.
    let waiter: Child = s
        .client("docker")
        .args(["wait", &name])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Whether the wait is in before the signal or not, it returns the exit code.
    s.docker_ok(&["kill", "-s", "HUP", &name]);
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
    assert_eq!(fmt(&s, &name, "{{.State.ExitCode}}"), "7");
    // On an exited container: at once, with its code.
    assert_eq!(s.docker_ok(&["wait", &name]).trim(), "7");
    // Killing a container that does not run: 409 with Docker's text.
    let err = s.docker_err(&["kill", &name]);
    assert!(err.contains("is not running"), "{err}");

    // restart starts it again (a new process).
    s.docker_ok(&["restart", "-t", "1", &name]);
    assert_eq!(fmt(&s, &name, "{{.State.Running}}"), "true");
    assert_ne!(fmt(&s, &name, "{{.State.Pid}}"), pid1);
    // And again, with a signal (API 1.42's `signal`) that the trap takes.
    s.docker_ok(&["restart", "-s", "HUP", "-t", "30", &name]);
    assert_eq!(fmt(&s, &name, "{{.State.Running}}"), "true");
    // kill's default is SIGKILL, and it returns once the container is down.
    s.docker_ok(&["kill", &name]);
    assert_eq!(
        fmt(&s, &name, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    let err = s.docker_err(&["kill", "-s", "NOSUCH", &name]);
    assert!(err.contains("invalid signal"), "{err}");

    s.docker_ok(&["start", &name]);
    s.docker_ok(&["rm", "-f", &name]);
    assert!(ps_names(&s, &["-a"]).is_empty());
    assert!(s.berth.container_ids().is_empty());
}

#[test]
fn wait_conditions_next_exit_and_removed() {
    let s = Server::start(&[]);
    let name = uniq("cond");
    // Exits 5 the first time, 6 after.
    let id = s
        .docker_ok(&[
            "create",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "if [ -f /ran ]; then exit 6; fi; touch /ran; exit 5",
        ])
        .trim()
        .to_string();
    // What `docker run` does: the wait's 200 comes before the start is sent.
    let w = Wait::begin(&s, &id, "next-exit");
    s.docker_ok(&["start", &name]);
    assert_eq!(
        w.body(),
        serde_json::json!({"StatusCode": 5, "Error": null})
    );
    // Stopped with 5 now: next-exit waits for the next run's exit, 6 (not the one it is
    // stopped by), while not-running is met at once.
    let next = Wait::begin(&s, &id, "next-exit");
    let now = Wait::begin(&s, &id, "not-running");
    assert_eq!(now.body()["StatusCode"], 5);
    s.docker_ok(&["start", &name]);
    assert_eq!(next.body()["StatusCode"], 6);
    // Before API 1.30: no condition, the headers with the body.
    let (code, body) = http(&s, "POST", &format!("/v1.29/containers/{id}/wait"), "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""StatusCode":6"#), "{body}");
    // removed: once it is removed, with its last exit code.
    let removed = Wait::begin(&s, &id, "removed");
    s.docker_ok(&["rm", &name]);
    assert_eq!(removed.body()["StatusCode"], 6);

    // Bad condition: 400 before anything is sent.
    let (code, body) = s.request(
        "POST",
        "/v1.44/containers/nosuch/wait?condition=stopped",
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid condition"), "{body}");
    let (code, body) = s.request("POST", "/v1.44/containers/nosuch/wait", None);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("No such container: nosuch"), "{body}");
}

#[test]
fn run_detached_and_auto_remove() {
    let s = Server::start(&[]);
    let name = uniq("rund");
    let id = s
        .docker_ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "300"])
        .trim()
        .to_string();
    assert_eq!(fmt(&s, &id, "{{.State.Running}}"), "true");
    // The daemonless CLI sees the container the API runs, and stops it.
    let out = s.berth.ok(&["ps", "--format", "{{.ID}} {{.Names}}"]);
    assert!(out.contains(&format!("{} {name}", &id[..12])), "{out}");
    s.berth.ok(&["stop", "-t", "1", &name]);
    assert_eq!(fmt(&s, &name, "{{.State.Status}}"), "exited");

    // --rm (API >= 1.25): the server removes it after it exits.
    let gone = s
        .docker_ok(&["run", "-d", "--rm", IMAGE, "true"])
        .trim()
        .to_string();
    assert_eq!(gone.len(), 64);
    s.berth
        .wait_for(30, "the --rm container to be removed", || {
            s.docker_ok(&[
                "ps",
                "-a",
                "-q",
                "--no-trunc",
                "--filter",
                &format!("id={gone}"),
            ])
            .trim()
            .is_empty()
        });
    assert!(!s.berth.container_ids().contains(&gone));

    // A --rm container survives a restart (as Docker's), and goes at its stop.
    let rm = uniq("rm");
    s.docker_ok(&["run", "-d", "--rm", "--name", &rm, IMAGE, "sleep", "300"]);
    let pid = fmt(&s, &rm, "{{.State.Pid}}");
    s.docker_ok(&["restart", "-t", "1", &rm]);
    assert_eq!(fmt(&s, &rm, "{{.State.Running}}"), "true");
    assert_ne!(fmt(&s, &rm, "{{.State.Pid}}"), pid);
    // Its policy cannot be changed to restart it.
    let err = s.docker_err(&["update", "--restart", "always", &rm]);
    assert!(err.contains("AutoRemove"), "{err}");
    s.docker_ok(&["stop", "-t", "1", &rm]);
    s.berth
        .wait_for(30, "the --rm container to be removed after stop", || {
            ps_names(&s, &["-a", "--filter", &format!("name={rm}")]).is_empty()
        });

    // A command that cannot run: the start's 400 carries the message by which the docker CLI
    // exits 127 (not found) or 126 (not executable); a --rm one is removed.
    let o = s.docker(&["run", "-d", IMAGE, "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("executable file not found"),
        "{o:?}"
    );
    let o = s.docker(&["run", "-d", "--rm", IMAGE, "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "{o:?}");
    let failed = String::from_utf8_lossy(&o.stdout).trim().to_string();
    s.berth
        .wait_for(30, "the --rm container that failed to start to go", || {
            !s.berth.container_ids().contains(&failed)
        });

    // A container `berth run -d` made is in docker's list.
    let b = uniq("fromberth");
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        &b,
        "-l",
        "via=berth",
        IMAGE,
        "sleep",
        "300",
    ]);
    assert_eq!(ps_names(&s, &["--filter", "label=via=berth"]), [b.as_str()]);
    s.docker_ok(&["rm", "-f", &b, &name]);
}

#[test]
fn update_rename_pause() {
    let s = Server::start(&[]);
    let name = uniq("upd");
    s.docker_ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "300"]);
    let out = s.docker_ok(&[
        "update",
        "--memory",
        "64m",
        "--restart",
        "on-failure:3",
        &name,
    ]);
    assert_eq!(out.trim(), name);
    assert_eq!(
        fmt(
            &s,
            &name,
            "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}} \
             {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "67108864 on-failure 3"
    );
    // The running container's cgroup has the limit (v2, or v1's memory hierarchy).
    let id = fmt(&s, &name, "{{.Id}}");
    let limit = common::cgroup_dirs(&id).iter().find_map(|d| {
        ["memory.max", "memory.limit_in_bytes"]
            .iter()
            .find_map(|f| std::fs::read_to_string(d.join(f)).ok())
    });
    assert_eq!(limit.as_deref().map(str::trim), Some("67108864"));
    // Fields left out keep their values: only the policy changes.
    s.docker_ok(&["update", "--restart", "always", &name]);
    assert_eq!(
        fmt(
            &s,
            &name,
            "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}"
        ),
        "67108864 always"
    );
    let err = s.docker_err(&["update", "--memory", "1m", &name]);
    assert!(err.contains("6MB"), "{err}");

    // rename, and a name in use.
    let new = uniq("renamed");
    s.docker_ok(&["rename", &name, &new]);
    assert_eq!(ps_names(&s, &[]), [new.as_str()]);
    let other = uniq("other");
    s.docker_ok(&["create", "--name", &other, IMAGE, "true"]);
    let err = s.docker_err(&["rename", &other, &new]);
    assert!(
        err.contains(&format!("The container name \"/{new}\" is already in use")),
        "{err}"
    );
    let err = s.docker_err(&["create", "--name", &new, IMAGE, "true"]);
    assert!(err.contains("is already in use by container"), "{err}");

    // pause / unpause.
    s.docker_ok(&["pause", &new]);
    assert_eq!(
        fmt(&s, &new, "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    let status = s.docker_ok(&["ps", "--filter", "status=paused", "--format", "{{.Status}}"]);
    assert!(status.contains("(Paused)"), "{status}");
    let err = s.docker_err(&["pause", &new]);
    assert!(err.contains("is already paused"), "{err}");
    s.docker_ok(&["unpause", &new]);
    assert_eq!(fmt(&s, &new, "{{.State.Status}}"), "running");
    let err = s.docker_err(&["unpause", &new]);
    assert!(err.contains("is not paused"), "{err}");
    let err = s.docker_err(&["pause", &other]);
    assert!(err.contains("is not running"), "{err}");
    s.docker_ok(&["rm", "-f", &new, &other]);
}

#[test]
fn ps_filters_limit_and_prune() {
    let s = Server::start(&[]);
    let a = uniq("pa");
    let b = uniq("pb");
    let keep = uniq("keep");
    let up = uniq("up");
    s.docker_ok(&["create", "--name", &a, "-l", "prune=yes", IMAGE, "true"]);
    s.docker_ok(&[
        "create",
        "--name",
        &b,
        "-l",
        "prune=yes",
        "-l",
        "x=1",
        IMAGE,
        "true",
    ]);
    s.docker_ok(&["create", "--name", &keep, "-l", "prune=no", IMAGE, "true"]);
    s.docker_ok(&[
        "run",
        "-d",
        "--name",
        &up,
        "-l",
        "prune=yes",
        IMAGE,
        "sleep",
        "300",
    ]);
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(
        ps_names(
            &s,
            &[
                "-a",
                "--filter",
                "label=prune=yes",
                "--filter",
                "status=created"
            ]
        ),
        want
    );
    assert_eq!(
        ps_names(&s, &["--filter", "label=prune=yes"]),
        [up.as_str()]
    );
    assert_eq!(
        ps_names(&s, &["-a", "--filter", &format!("name={keep}")]),
        [keep.as_str()]
    );
    // -n 1: the newest, of any state.
    assert_eq!(ps_names(&s, &["-n", "1"]), [up.as_str()]);
    let err = s.docker_err(&["ps", "--filter", "colour=red"]);
    assert!(err.contains("invalid filter"), "{err}");
    // JSON lines as the CLI formats them.
    let line = s.docker_ok(&["ps", "--filter", &format!("name={up}"), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["Names"], up.as_str());
    assert_eq!(v["State"], "running");

    // until: nothing was created an hour ago.
    let out = s.docker_ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert!(!out.contains("Deleted Containers"), "{out}");
    // label and label!: a only (b has x=1), never the running one.
    let out = s.docker_ok(&[
        "container",
        "prune",
        "-f",
        "--filter",
        "label=prune=yes",
        "--filter",
        "label!=x=1",
    ]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    let mut left = vec![b.clone(), keep.clone(), up.clone()];
    left.sort();
    assert_eq!(ps_names(&s, &["-a"]), left);
    let out = s.docker_ok(&["container", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(ps_names(&s, &["-a"]), [up.as_str()]);
    let err = s.docker_err(&["container", "prune", "-f", "--filter", "status=exited"]);
    assert!(err.contains("invalid filter"), "{err}");
    s.docker_ok(&["rm", "-f", &up]);
}

#[test]
fn docker_20_10_lifecycle_and_mac_address() {
    let s = Server::start(&[]);
    let old = |args: &[&str]| -> String {
        let o = s.client("/usr/bin/docker").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "docker 20.10 {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            common::serve::tail(&s.log(), 30)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let name = uniq("old");
    // API 1.41 sends the MAC address at the top level of the config.
    old(&[
        "create",
        "--name",
        &name,
        "--mac-address",
        "02:42:ac:11:99:02",
        IMAGE,
        "sleep",
        "300",
    ]);
    old(&["start", &name]);
    assert_eq!(
        old(&["ps", "--format", "{{.Names}} {{.State}}"]),
        format!("{name} running")
    );
    let mac = old(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}",
        &name,
    ]);
    assert_eq!(mac, "02:42:ac:11:99:02");
    old(&["stop", "-t", "1", &name]);
    assert_eq!(
        old(&["inspect", "--format", "{{.State.Status}}", &name]),
        "exited"
    );
    old(&["rm", &name]);
    assert!(old(&["ps", "-a", "-q"]).is_empty());
    // run -d with --rm through 1.41 as well.
    let id = old(&["run", "-d", "--rm", IMAGE, "true"]);
    s.berth
        .wait_for(30, "the --rm container to be removed", || {
            !s.berth.container_ids().contains(&id)
        });
}

#[test]
fn create_errors_over_the_socket() {
    let s = Server::start(&[]);
    // A malformed body: 400 naming the field.
    let (code, body) = s.request(
        "POST",
        "/v1.44/containers/create",
        Some(r#"{"Image":"berth-test/busybox","HostConfig":{"Memory":"lots"}}"#),
    );
    assert_eq!(code, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("HostConfig.Memory"),
        "{body}"
    );
    let (code, body) = s.request("POST", "/v1.44/containers/create", Some("{\"Image\":"));
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.request("POST", "/v1.44/containers/create", Some(""));
    assert_eq!(code, 400, "{body}");
    // No such image: Docker's text, which the docker CLI answers by pulling.
    let (code, body) = s.request(
        "POST",
        "/v1.44/containers/create",
        Some(r#"{"Image":"berth-test/nosuch","Cmd":["true"]}"#),
    );
    assert_eq!(code, 404, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["message"], "No such image: berth-test/nosuch:latest");
    let err = s.docker_err(&["create", "--pull", "never", "berth-test/nosuch"]);
    assert!(
        err.contains("No such image: berth-test/nosuch:latest"),
        "{err}"
    );

    // A body as Docker's clients send it (nulls for unset fields): 201, Id and Warnings.
    let name = uniq("raw");
    let (code, body) = s.request(
        "POST",
        &format!("/v1.44/containers/create?name={name}"),
        Some(&format!(
            r#"{{"Image":"{IMAGE}","Cmd":["sleep","300"],"Entrypoint":null,"Env":null,
               "HostConfig":{{"Binds":null,"PidsLimit":0,"Ulimits":null,"NetworkMode":"default",
               "RestartPolicy":{{"Name":"","MaximumRetryCount":0}}}},
               "NetworkingConfig":{{"EndpointsConfig":{{"default":{{"IPAMConfig":null}}}}}}}}"#
        )),
    );
    assert_eq!(code, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Id"].as_str().unwrap().len(), 64, "{body}");
    assert_eq!(v["Warnings"], serde_json::json!([]));
    // The same name again: 409.
    let (code, body) = s.request(
        "POST",
        &format!("/v1.44/containers/create?name={name}"),
        Some(&format!(r#"{{"Image":"{IMAGE}"}}"#)),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("is already in use by container"), "{body}");

    // start: 204, then 304 with an empty body.
    let (code, _) = s.request("POST", &format!("/v1.44/containers/{name}/start"), None);
    assert_eq!(code, 204);
    let (code, body) = s.request("POST", &format!("/v1.44/containers/{name}/start"), None);
    assert_eq!((code, body.as_str()), (304, ""));
    // compose's Python booleans: v=True&force=False on a running container is a 409.
    let (code, body) = http(
        &s,
        "DELETE",
        &format!("/v1.44/containers/{name}?v=True&force=False"),
        "",
    );
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("stop the container before removing"),
        "{body}"
    );
    let (code, body) = http(&s, "DELETE", &format!("/containers/{name}?force=maybe"), "");
    assert_eq!(code, 400, "{body}");
    let (code, body) = http(
        &s,
        "DELETE",
        &format!("/v1.41/containers/{name}?v=True&force=True"),
        "",
    );
    assert_eq!(code, 204, "{body}");
    let (code, body) = http(&s, "DELETE", &format!("/v1.44/containers/{name}"), "");
    assert_eq!(code, 404, "{body}");
    assert!(
        body.contains(&format!("No such container: {name}")),
        "{body}"
    );
    // update with a bad type names the field too.
    let (code, body) = s.request(
        "POST",
        "/v1.44/containers/x/update",
        Some(r#"{"Memory":"lots"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Memory"), "{body}");
}

#[test]
fn docker_py_lifecycle() {
    let s = Server::start(&[]);
    let name = uniq("py");
    // docker-py's own request shapes: create with its body, start, wait's JSON, reload
    // (inspect), list with filters, update, rename, kill, remove(v=True, force=True), prune.
    let script = format!(
        r#"
import docker
c = docker.DockerClient(base_url="unix://{sock}", version="1.44")
ct = c.containers.run("{IMAGE}", ["sh", "-c", "exit 3"], detach=True, name="{name}",
                      labels={{"py": "yes"}}, environment={{"A": "1"}})
print("wait", ct.wait()["StatusCode"])
ct.reload()
print("status", ct.status, ct.attrs["State"]["ExitCode"])
print("list", [x.name for x in c.containers.list(all=True, filters={{"label": "py=yes"}})])
ct.rename("{name}-2")
ct.reload()
print("renamed", ct.name)
ct.start()
ct.wait()
up = c.containers.run("{IMAGE}", ["sleep", "300"], detach=True, mem_limit="64m")
up.update(mem_limit="96m", restart_policy={{"Name": "unless-stopped"}})
up.reload()
print("update", up.attrs["HostConfig"]["Memory"], up.attrs["HostConfig"]["RestartPolicy"]["Name"])
up.kill()
up.reload()
print("killed", up.wait()["StatusCode"], up.status)
up.remove(v=True, force=True)
r = c.containers.prune(filters={{"label": "py=yes"}})
print("pruned", len(r["ContainersDeleted"] or []), r["SpaceReclaimed"] >= 0)
print("left", c.containers.list(all=True))
"#,
        sock = s.sock.display()
    );
    let out = s.python_ok(&["-c", &script]);
    let want = format!(
        "wait 3\nstatus exited 3\nlist ['{name}']\nrenamed {name}-2\nupdate 100663296 \
         unless-stopped\nkilled 137 exited\npruned 1 True\nleft []\n"
    );
    assert_eq!(out, want);
}

#[test]
fn run_detached_with_a_published_port_and_kill_winch() {
    let s = Server::start(&[]);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    s.docker_ok(&[
        "run",
        "-d",
        "--name",
        "pweb",
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        "echo through-the-api > /index.html; exec httpd -f -p 80 -h /",
    ]);
    let ports = s.docker_ok(&["port", "pweb"]);
    assert_eq!(ports.trim(), format!("80/tcp -> 127.0.0.1:{port}"));
    let ps = s.docker_ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps.trim(), format!("127.0.0.1:{port}->80/tcp"));
    let body = get_when_up(&format!("http://127.0.0.1:{port}/index.html"));
    assert_eq!(body, "through-the-api\n");
    // What `docker attach` forwards on a terminal resize: SIGWINCH is delivered, the
    // container keeps running.
    s.docker_ok(&["kill", "-s", "WINCH", "pweb"]);
    assert_eq!(
        s.docker_ok(&["inspect", "-f", "{{.State.Running}}", "pweb"])
            .trim(),
        "true"
    );
    // A resize of a container with a terminal is accepted.
    s.docker_ok(&["run", "-d", "-t", "--name", "ptty", IMAGE, "sleep", "1000"]);
    let (code, body) = s.request("POST", "/v1.44/containers/ptty/resize?h=40&w=100", None);
    assert_eq!(code, 200, "{body}");
    s.docker_ok(&["rm", "-f", "pweb", "ptty"]);
}
