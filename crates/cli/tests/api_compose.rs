//! docker-compose 1.29 (Debian's) against `berth serve`: a multi-service project with a build
//! section, two networks (one internal), aliases, a named volume, a healthcheck gating
//! `depends_on`, a published port and an image pulled from a registry; up, ps, logs, exec,
//! run --rm, stop, down -v, which leaves nothing behind.

mod common;
#[path = "../../image/tests/common/registry.rs"]
mod registry;

use common::IMAGE;
use common::serve::{Server, free_port, get_when_up};
use registry::TestRegistry;

#[test]
fn compose_project_up_exec_logs_down() {
    let reg = TestRegistry::start(None);
    let s = Server::start(&[]);
    // An image only in the registry, for `docker-compose pull`.
    let remote = format!("{}/compose/tool:1", reg.addr);
    s.berth.ok(&["tag", IMAGE, &remote]);
    s.berth.ok(&["push", &remote]);
    s.berth.ok(&["rmi", &remote]);

    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(
        web.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN mkdir -p /www\nCOPY index.html /www/\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n"),
    )
    .unwrap();
    std::fs::write(web.join("index.html"), "hello from web\n").unwrap();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!(
            r#"version: "2.4"
services:
  db:
    image: {IMAGE}
    command: sh -c 'sleep 2; echo ready > /data/state; echo db up; exec httpd -f -p 8080 -h /data'
    volumes: ["dbdata:/data"]
    networks: [back]
    healthcheck:
      test: ["CMD", "test", "-f", "/data/state"]
      interval: 1s
      timeout: 2s
      retries: 60
  web:
    build: ./web
    image: compose-test/web:1
    ports: ["127.0.0.1:{port}:80"]
    networks:
      front: {{}}
      back:
        aliases: [webapp]
    depends_on:
      db:
        condition: service_healthy
    restart: unless-stopped
  tool:
    image: {remote}
    command: sleep 1000
    networks: [front]
networks:
  front: {{}}
  back:
    internal: true
volumes:
  dbdata: {{}}
"#
        ),
    )
    .unwrap();
    let compose = |args: &[&str]| {
        s.client("docker-compose")
            .current_dir(dir.path())
            .env("DOCKER_BUILDKIT", "0")
            // compose 1.29 shells out to the docker CLI for builds (as it does for exec).
            .env("COMPOSE_DOCKER_CLI_BUILD", "1")
            .args(["-p", "bcompose"])
            .args(args)
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let o = compose(args);
        assert!(
            o.status.success(),
            "docker-compose {args:?} failed: {}",
            s.explain(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };

    ok(&["pull", "tool"]);
    ok(&["build"]);
    ok(&["up", "-d"]);
    // web started only once db was healthy.
    let db = s.berth.inspect("bcompose_db_1");
    assert_eq!(db["State"]["Health"]["Status"], "healthy", "{db}");
    let web_started = s.berth.inspect("bcompose_web_1")["State"]["StartedAt"]
        .as_str()
        .unwrap()
        .to_string();
    let db_log = s.berth.ok(&[
        "inspect",
        "-f",
        "{{json .State.Health.Log}}",
        "bcompose_db_1",
    ]);
    assert!(!db_log.trim().is_empty());
    assert!(web_started.as_str() > db["State"]["StartedAt"].as_str().unwrap());

    let ps = ok(&["ps"]);
    for svc in ["bcompose_db_1", "bcompose_web_1", "bcompose_tool_1"] {
        let line = ps
            .lines()
            .find(|l| l.starts_with(svc))
            .unwrap_or_else(|| panic!("{svc} not in ps:\n{ps}"));
        assert!(line.contains("Up"), "{line}");
    }
    assert!(ps.contains("(healthy)"), "{ps}");

    // The published port, from the host.
    let body = get_when_up(&format!("http://127.0.0.1:{port}/index.html"));
    assert_eq!(body, "hello from web\n");

    // Service names and aliases resolve on the shared network; the volume holds db's file.
    let o = compose(&["exec", "-T", "web", "wget", "-qO-", "http://db:8080/state"]);
    assert!(o.status.success(), "{}", s.explain(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ready\n");
    let o = compose(&[
        "exec",
        "-T",
        "db",
        "wget",
        "-qO-",
        "http://webapp/index.html",
    ]);
    assert!(o.status.success(), "{}", s.explain(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello from web\n");
    // db is only on the internal network: tool (front only) cannot resolve it.
    let o = compose(&["exec", "-T", "tool", "nslookup", "db"]);
    assert!(
        !o.status.success(),
        "db resolved from another network: {}",
        s.explain(&o)
    );
    let o = compose(&["exec", "-T", "web", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", s.explain(&o));
    let back = s.docker_ok(&["network", "inspect", "-f", "{{.Internal}}", "bcompose_back"]);
    assert_eq!(back.trim(), "true");

    let logs = ok(&["logs", "--no-color", "db"]);
    assert!(logs.contains("db up"), "{logs}");
    // logs -f follows until stopped: kill it after it has printed.
    let mut child = s
        .client("docker-compose")
        .current_dir(dir.path())
        .args(["-p", "bcompose", "logs", "-f", "--no-color", "db"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    // (What it prints may come in more than one read: "Attaching to", then the names.)
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("db") {
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        assert!(n > 0, "logs -f ended before naming db: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "logs -f ended by itself"
    );
    let _ = child.kill();
    let _ = child.wait();

    let o = compose(&["run", "--rm", "-T", "web", "echo", "one-off"]);
    assert!(o.status.success(), "{}", s.explain(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("one-off"),
        "{}",
        s.explain(&o)
    );

    ok(&["stop"]);
    let ps = ok(&["ps"]);
    assert!(!ps.contains(" Up "), "{ps}");
    ok(&["down", "-v"]);
    assert_eq!(s.berth.ok(&["ps", "-aq"]).trim(), "", "containers left");
    let nets = s.berth.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("bcompose"), "networks left: {nets}");
    let vols = s.berth.ok(&["volume", "ls", "-q"]);
    assert_eq!(vols.trim(), "", "volumes left");
}
