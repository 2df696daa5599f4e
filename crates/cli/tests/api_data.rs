//! `berth serve`'s networks, volumes and container data endpoints, driven by the real docker
//! CLI 28 (and docker-py where docker-compose's calls are checked): network
//! create/ls/inspect/rm/prune/connect/disconnect with names resolving in berth's DNS, volumes
//! with filters and tmpfs options, top, stats, diff, export, cp both ways, system df.
//! Containers are run with the berth CLI on the server's root. Subnets are 10.89.23x.0/24
//! (other suites use others), so the tests run in parallel.

mod common;

use std::process::{Command, Stdio};

use common::IMAGE;
use common::serve::Server;

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// The container's address on `net` (as the berth CLI shows it).
fn ip_on(s: &Server, c: &str, net: &str) -> String {
    let v = s.berth.inspect(c);
    v["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// What `nslookup NAME` prints in container `from` (None when the name does not resolve).
fn resolve(s: &Server, from: &str, name: &str) -> Option<String> {
    let o = s.berth.run(&["exec", from, "nslookup", name]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    o.status.success().then_some(out)
}

#[test]
fn networks_create_list_inspect_remove_and_prune() {
    let s = Server::start(&[]);
    let id = s.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.89.230.0/24",
        "--gateway",
        "10.89.230.254",
        "--ip-range",
        "10.89.230.128/25",
        "--label",
        "team=a",
        "neta",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    // The berth CLI on the same root sees it.
    assert!(s.berth.ok(&["network", "ls"]).contains("neta"));
    let err = s.docker_err(&["network", "create", "neta"]);
    assert!(err.contains("already exists"), "{err}");
    let err = s.docker_err(&["network", "create", "host"]);
    assert!(err.contains("predefined"), "{err}");
    s.docker_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.89.231.0/24",
        "neti",
    ]);

    let ls = |f: &[&str]| {
        let mut a = vec!["network", "ls", "--format", "{{.Name}}"];
        a.extend_from_slice(f);
        lines(&s.docker_ok(&a))
    };
    assert_eq!(ls(&[]), ["bridge", "neta", "neti"]);
    assert_eq!(ls(&["--filter", "label=team=a"]), ["neta"]);
    // The berth CLI filters the same way (the engine's filters).
    assert_eq!(
        s.berth
            .ok(&[
                "network",
                "ls",
                "--filter",
                "label=team=a",
                "--format",
                "{{.Name}}"
            ])
            .trim(),
        "neta"
    );
    assert_eq!(ls(&["--filter", "label=team"]), ["neta"]);
    assert_eq!(ls(&["--filter", "type=custom"]), ["neta", "neti"]);
    assert_eq!(ls(&["--filter", "type=builtin"]), ["bridge"]);
    assert_eq!(ls(&["--filter", "name=net"]), ["neta", "neti"]);
    assert_eq!(ls(&["--filter", &format!("id={}", &id[..10])]), ["neta"]);
    assert_eq!(ls(&["--filter", "driver=bridge"]).len(), 3);
    assert_eq!(ls(&["--filter", "dangling=true"]), ["neta", "neti"]);
    let err = s.docker_err(&["network", "ls", "--filter", "color=red"]);
    assert!(err.contains("invalid filter"), "{err}");
    let err = s.docker_err(&["network", "ls", "--filter", "type=weird"]);
    assert!(err.contains("type=weird"), "{err}");

    let ipam = s.docker_ok(&[
        "network",
        "inspect",
        "neta",
        "--format",
        "{{json .IPAM.Config}}",
    ]);
    let ipam: serde_json::Value = serde_json::from_str(&ipam).unwrap();
    assert_eq!(ipam[0]["Subnet"], "10.89.230.0/24", "{ipam}");
    assert_eq!(ipam[0]["Gateway"], "10.89.230.254", "{ipam}");
    assert_eq!(ipam[0]["IPRange"], "10.89.230.128/25", "{ipam}");
    let v = s.docker_ok(&[
        "network",
        "inspect",
        "neti",
        "--format",
        "{{.Internal}} {{.Driver}} {{.Scope}}",
    ]);
    assert_eq!(v.trim(), "true bridge local");
    let err = s.docker_err(&["network", "inspect", "nope"]);
    assert!(err.contains("not found"), "{err}");

    // A container on neta gets its address from the range.
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "neta",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let ip = ip_on(&s, "c1", "neta");
    let last: u8 = ip.rsplit('.').next().unwrap().parse().unwrap();
    assert!(ip.starts_with("10.89.230.") && last >= 128, "{ip}");
    let names = s.docker_ok(&[
        "network",
        "inspect",
        "neta",
        "--format",
        "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
    ]);
    assert_eq!(names.trim(), format!("c1 {ip}/24"));
    // Containers are not listed by ls (Docker's list since API 1.28), and in-use is not dangling.
    assert_eq!(ls(&["--filter", "dangling=true"]), ["neti"]);
    assert_eq!(ls(&["--filter", "dangling=false"]), ["bridge", "neta"]);

    let err = s.docker_err(&["network", "rm", "neta"]);
    assert!(err.contains("active endpoints"), "{err}");
    for predefined in ["bridge", "host", "none"] {
        let err = s.docker_err(&["network", "rm", predefined]);
        assert!(err.contains("pre-defined network"), "{err}");
    }
    let (code, body) = s.curl(&["-X", "DELETE", "http://d/v1.44/networks/bridge"]);
    assert_eq!(code, 403, "{body}");
    let (code, body) = s.curl(&["-X", "DELETE", "http://d/v1.44/networks/neta"]);
    assert_eq!(code, 403, "{body}");

    // Driver options are recorded and shown as given (docker-compose compares them), with
    // a warning that berth does not apply them; a user network shows no other option.
    let o = s.docker(&[
        "network",
        "create",
        "--subnet",
        "10.89.232.0/24",
        "--label",
        "keep",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "netk",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // (docker 28 does not print the create's warning: read it with curl.)
    let (code, body) = s.request(
        "POST",
        "/v1.44/networks/create",
        Some(r#"{"Name":"netw","Options":{"com.docker.network.bridge.enable_icc":"false"}}"#),
    );
    assert_eq!(code, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["Warning"].as_str().unwrap().contains("enable_icc"),
        "{body}"
    );
    s.docker_ok(&["network", "rm", "netw"]);
    let opts = s.docker_ok(&[
        "network",
        "inspect",
        "netk",
        "--format",
        "{{json .Options}}",
    ]);
    assert_eq!(opts.trim(), r#"{"com.docker.network.driver.mtu":"1400"}"#);
    let opts = s.docker_ok(&[
        "network",
        "inspect",
        "neta",
        "--format",
        "{{json .Options}}",
    ]);
    assert_eq!(opts.trim(), "{}");
    // Prune: unused user networks, with Docker's label filters; neta is in use.
    s.docker_ok(&["network", "create", "--subnet", "10.89.233.0/24", "netp"]);
    let out = s.docker_ok(&["network", "prune", "-f", "--filter", "label!=keep"]);
    assert!(out.contains("netp") && out.contains("neti"), "{out}");
    assert!(!out.contains("netk") && !out.contains("neta"), "{out}");
    assert_eq!(ls(&[]), ["bridge", "neta", "netk"]);
    assert_eq!(s.docker_ok(&["network", "rm", "netk"]).trim(), "netk");
    s.berth.ok(&["rm", "-f", "c1"]);
    s.docker_ok(&["network", "rm", id]);
    assert_eq!(ls(&[]), ["bridge"]);

    // Bad bodies: 400 naming the field.
    let (code, body) = s.request(
        "POST",
        "/v1.44/networks/create",
        Some(r#"{"Name":"x","Internal":"yes"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Internal"), "{body}");
}

#[test]
fn network_connect_aliases_resolve_and_internal_has_no_route_out() {
    let s = Server::start(&[]);
    s.docker_ok(&["network", "create", "--subnet", "10.89.234.0/24", "front"]);
    s.docker_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.89.235.0/24",
        "back",
    ]);
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        IMAGE,
        "sleep",
        "1000",
    ]);
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(resolve(&s, "db", "web").is_none(), "web is not on back yet");

    s.docker_ok(&["network", "connect", "--alias", "www", "back", "web"]);
    let web_back = ip_on(&s, "web", "back");
    assert!(web_back.starts_with("10.89.235."), "{web_back}");
    for name in ["web", "www"] {
        let out = resolve(&s, "db", name).unwrap_or_else(|| panic!("{name} does not resolve"));
        assert!(out.contains(&web_back), "{name}: {out}");
    }
    let aliases = s.docker_ok(&[
        "network",
        "inspect",
        "back",
        "--format",
        "{{range .Containers}}{{.Name}},{{end}}",
    ]);
    assert_eq!(lines(&aliases.trim().replace(',', "\n")), ["db", "web"]);
    // Already connected: Docker's 403.
    let err = s.docker_err(&["network", "connect", "back", "web"]);
    assert!(err.contains("already connected"), "{err}");
    // The internal network gives no default route; the other one does.
    let routes = s.berth.ok(&["exec", "db", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    let routes = s.berth.ok(&["exec", "web", "ip", "route"]);
    assert!(routes.contains("default via 10.89.234.1"), "{routes}");

    s.docker_ok(&["network", "disconnect", "back", "web"]);
    assert!(resolve(&s, "db", "www").is_none(), "www still resolves");
    let err = s.docker_err(&["network", "disconnect", "back", "web"]);
    assert!(err.contains("not connected"), "{err}");
    let err = s.docker_err(&["network", "connect", "back", "nosuch"]);
    assert!(err.contains("No such container"), "{err}");
    let err = s.docker_err(&["network", "connect", "nosuch", "web"]);
    assert!(err.contains("not found"), "{err}");
}

/// docker-compose 1.29 (docker-py) disconnects and reconnects the networks of a created
/// container to give it its aliases (the service name and the short ID) before it starts:
/// the same calls through docker-py, then the aliases answer once the container runs.
#[test]
fn compose_style_reconnect_of_a_created_container() {
    let s = Server::start(&[]);
    s.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.89.236.0/24",
        "proj_default",
    ]);
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "proj_default",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let id = s.berth.ok(&[
        "create",
        "--name",
        "proj_api_1",
        "--network",
        "proj_default",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let id = id.trim().to_string();
    let short = &id[..12];
    let script = format!(
        "import docker\n\
         c = docker.APIClient(base_url='unix://{sock}', version='1.41')\n\
         c.disconnect_container_from_network('{id}', 'proj_default')\n\
         c.connect_container_to_network('{id}', 'proj_default', aliases=['api', '{short}'])\n",
        sock = s.sock.display()
    );
    let o = s
        .client("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker-py: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        s.log()
    );
    s.berth.ok(&["start", "proj_api_1"]);
    let ip = ip_on(&s, "proj_api_1", "proj_default");
    assert!(ip.starts_with("10.89.236."), "{ip}");
    for name in ["api", short, "proj_api_1"] {
        let out = resolve(&s, "client", name).unwrap_or_else(|| panic!("{name} does not resolve"));
        assert!(out.contains(&ip), "{name}: {out}");
    }
}

#[test]
fn volumes_create_list_inspect_remove_and_prune() {
    let s = Server::start(&[]);
    assert_eq!(
        s.docker_ok(&["volume", "create", "--label", "a=b", "v1"])
            .trim(),
        "v1"
    );
    s.docker_ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=8m",
        "vt",
    ]);
    let anon = s.docker_ok(&["volume", "create"]);
    let anon = anon.trim();
    assert_eq!(anon.len(), 64, "{anon}");
    // Creating an existing volume gives it back.
    assert_eq!(s.docker_ok(&["volume", "create", "v1"]).trim(), "v1");
    let ls = |f: &[&str]| {
        let mut a = vec!["volume", "ls", "-q"];
        a.extend_from_slice(f);
        lines(&s.docker_ok(&a))
    };
    assert_eq!(ls(&[]).len(), 3);
    assert_eq!(ls(&["--filter", "label=a=b"]), ["v1"]);
    assert_eq!(ls(&["--filter", "label=a"]), ["v1"]);
    assert_eq!(ls(&["--filter", "name=vt"]), ["vt"]);
    assert_eq!(ls(&["--filter", "driver=local"]).len(), 3);
    assert_eq!(ls(&["--filter", "dangling=true"]).len(), 3);
    let err = s.docker_err(&["volume", "ls", "--filter", "color=red"]);
    assert!(err.contains("invalid filter"), "{err}");
    let v = s.docker_ok(&[
        "volume",
        "inspect",
        "vt",
        "--format",
        "{{.Driver}} {{.Options.type}} {{.Options.device}} {{.Options.o}} {{.Scope}}",
    ]);
    assert_eq!(v.trim(), "local tmpfs tmpfs size=8m local");
    let v = s.docker_ok(&["volume", "inspect", "v1", "--format", "{{json .Labels}}"]);
    assert_eq!(v.trim(), r#"{"a":"b"}"#);
    let err = s.docker_err(&["volume", "inspect", "nope"]);
    assert!(err.contains("No such volume"), "{err}");

    s.berth.ok(&[
        "run", "-d", "--name", "vuser", "-v", "v1:/data", "-v", "vt:/t", IMAGE, "sleep", "1000",
    ]);
    let mounts = s.berth.ok(&["exec", "vuser", "cat", "/proc/mounts"]);
    assert!(mounts.lines().any(|l| l.contains(" /t tmpfs ")), "{mounts}");
    // Docker's MountPoint names a volume's driver (docker ps --format {{.Mounts}} and compose
    // read it).
    let m = s.docker_ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Name}}:{{.Driver}} {{end}}",
        "vuser",
    ]);
    assert_eq!(m.trim(), "v1:local vt:local");
    assert_eq!(ls(&["--filter", "dangling=false"]), ["v1", "vt"]);
    assert_eq!(ls(&["--filter", "dangling=true"]), [anon]);
    let err = s.docker_err(&["volume", "rm", "v1"]);
    assert!(err.contains("in use"), "{err}");
    let (code, _) = s.curl(&["-X", "DELETE", "http://d/v1.44/volumes/v1?force=1"]);
    assert_eq!(code, 409, "in use, even with force");
    // Prune: the anonymous volume only, then with -a the named ones no container uses.
    let out = s.docker_ok(&["volume", "prune", "-f"]);
    assert!(out.contains(anon), "{out}");
    assert_eq!(ls(&[]), ["v1", "vt"]);
    s.berth.ok(&["rm", "-f", "vuser"]);
    s.docker_ok(&["volume", "create", "--label", "keep=1", "vk"]);
    let out = s.docker_ok(&["volume", "prune", "-af", "--filter", "label!=keep"]);
    assert!(out.contains("v1") && out.contains("vt"), "{out}");
    assert_eq!(ls(&[]), ["vk"]);
    assert_eq!(s.docker_ok(&["volume", "rm", "vk"]).trim(), "vk");
    // -f: a missing volume is no error.
    s.docker_ok(&["volume", "rm", "-f", "vk"]);
    let err = s.docker_err(&["volume", "rm", "vk"]);
    assert!(err.contains("No such volume"), "{err}");
}

#[test]
fn top_stats_diff_and_export() {
    let s = Server::start(&[]);
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--memory",
        "64m",
        IMAGE,
        "sh",
        "-c",
        "echo new > /added; rm /etc/group; echo x >> /etc/passwd; \
         ping -c 3 -W 1 $(ip route | awk '/default/ {print $3}'); \
         while :; do :; done",
    ]);
    // top: Docker's titles and the command whole.
    let top = s.docker_ok(&["top", "busy"]);
    let head = top.lines().next().unwrap();
    assert!(head.contains("PID") && head.contains("CMD"), "{top}");
    assert!(top.contains("while :; do :; done"), "{top}");
    let top = s.docker_ok(&["top", "busy", "-o", "pid,comm"]);
    assert!(top.lines().next().unwrap().contains("COMMAND"), "{top}");
    assert!(
        top.lines().skip(1).any(|l| l.trim_end().ends_with("sh")),
        "{top}"
    );

    // stats: what `docker stats` shows, parsed from its template.
    s.berth.wait_for(20, "the pings", || {
        s.berth
            .run(&["logs", "busy"])
            .stdout
            .windows(b"packets received".len())
            .any(|w| w == b"packets received")
    });
    let st = s.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.PIDs}}",
        "busy",
    ]);
    let f: Vec<&str> = st.trim().split('|').collect();
    assert_eq!(f.len(), 6, "{st}");
    assert_eq!(f[0], "busy");
    let cpu: f64 = f[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 1.0, "a busy loop uses a CPU: {st}");
    let (used, limit) = f[2].split_once(" / ").unwrap();
    assert_eq!(limit.trim(), "64MiB", "{st}");
    assert!(!used.starts_with("0B"), "{st}");
    let mem: f64 = f[3].trim_end_matches('%').parse().unwrap();
    assert!(mem > 0.0 && mem < 100.0, "{st}");
    let (rx, tx) = f[4].split_once(" / ").unwrap();
    assert!(rx != "0B" && tx != "0B", "the pings went out: {st}");
    let pids: u32 = f[5].parse().unwrap();
    assert!(pids >= 1, "{st}");
    // The stream, through docker-py: one object a second, the second with precpu filled.
    let script = format!(
        "import docker, json\n\
         c = docker.APIClient(base_url='unix://{}')\n\
         it = c.stats('busy', decode=True, stream=True)\n\
         a = next(it); b = next(it)\n\
         print(json.dumps([a['precpu_stats'], b['precpu_stats']['cpu_usage']['total_usage'], \
         b['cpu_stats']['online_cpus'], b['memory_stats']['limit'], sorted(b['networks'])]))\n",
        s.sock.display()
    );
    let v: serde_json::Value = serde_json::from_str(&s.python_ok(&["-c", &script])).unwrap();
    assert!(
        v[0]["cpu_usage"]["total_usage"].as_u64().unwrap_or(0) == 0,
        "{v}"
    );
    assert!(v[1].as_u64().unwrap() > 0, "{v}");
    assert!(v[2].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v[3], 64 << 20, "{v}");
    assert_eq!(v[4], serde_json::json!(["eth0"]), "{v}");
    // A stopped container: zeros, as Docker.
    s.berth.ok(&["create", "--name", "idle", IMAGE, "true"]);
    let st = s.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.PIDs}}",
        "idle",
    ]);
    assert_eq!(st.trim(), "idle|0.00%|0");

    // diff: Docker's letters.
    let diff = s.docker_ok(&["diff", "busy"]);
    let d = lines(&diff);
    for want in ["A /added", "C /etc", "C /etc/passwd", "D /etc/group"] {
        assert!(d.contains(&want.to_string()), "{want} missing:\n{diff}");
    }

    // export: the whole filesystem as a tar.
    let names = s.sh_ok("docker export busy | tar t");
    let names: Vec<&str> = names.lines().map(|l| l.trim_end_matches('/')).collect();
    for want in ["added", "bin/busybox", "etc/passwd"] {
        assert!(names.contains(&want), "{want} not exported");
    }
    assert!(!names.contains(&"etc/group"), "a deleted file was exported");
    let err = s.docker_err(&["export", "nosuch"]);
    assert!(err.contains("No such container"), "{err}");
    let err = s.docker_err(&["top", "idle"]);
    assert!(
        err.contains("not running") || err.contains("is created"),
        "{err}"
    );
}

#[test]
fn cp_files_and_directories_both_ways() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start(&[]);
    s.berth
        .ok(&["run", "-d", "--name", "box", IMAGE, "sleep", "1000"]);
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    std::fs::write(h.join("file.txt"), "hello\n").unwrap();
    std::fs::set_permissions(h.join("file.txt"), std::fs::Permissions::from_mode(0o751)).unwrap();
    std::fs::create_dir_all(h.join("dir/sub")).unwrap();
    std::fs::write(h.join("dir/a.txt"), "a\n").unwrap();
    std::fs::write(h.join("dir/sub/b.txt"), "b\n").unwrap();
    let p = |rel: &str| h.join(rel).display().to_string();
    let exec = |cmd: &str| s.berth.ok(&["exec", "box", "sh", "-c", cmd]);

    // Into the running container: a file into a directory, under a new name, a directory,
    // a directory's contents (DIR/.) to a new name.
    s.docker_ok(&["cp", &p("file.txt"), "box:/tmp/"]);
    assert_eq!(exec("cat /tmp/file.txt"), "hello\n");
    assert_eq!(exec("stat -c %a /tmp/file.txt").trim(), "751");
    // Owners: the archive's kept; with -a (copyUIDGID) the container user's.
    std::os::unix::fs::chown(h.join("file.txt"), Some(1234), Some(2345)).unwrap();
    s.docker_ok(&["cp", &p("file.txt"), "box:/tmp/owned.txt"]);
    assert_eq!(exec("stat -c %u:%g /tmp/owned.txt").trim(), "1234:2345");
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        "usr",
        "--user",
        "4321:4322",
        IMAGE,
        "sleep",
        "1000",
    ]);
    s.docker_ok(&["cp", "-a", &p("file.txt"), "usr:/tmp/"]);
    let owner = s
        .berth
        .ok(&["exec", "usr", "stat", "-c", "%u:%g", "/tmp/file.txt"]);
    assert_eq!(owner.trim(), "4321:4322");
    // A read-only root filesystem takes nothing, its writable volume does.
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        "ro",
        "--read-only",
        "-v",
        "rw:/data",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let err = s.docker_err(&["cp", &p("file.txt"), "ro:/tmp/"]);
    assert!(err.contains("read-only"), "{err}");
    s.docker_ok(&["cp", &p("file.txt"), "ro:/data/"]);
    assert_eq!(
        s.berth.ok(&["exec", "ro", "cat", "/data/file.txt"]),
        "hello\n"
    );
    s.docker_ok(&["cp", &p("file.txt"), "box:/tmp/renamed.txt"]);
    assert_eq!(exec("cat /tmp/renamed.txt"), "hello\n");
    s.docker_ok(&["cp", &p("dir"), "box:/tmp/"]);
    assert_eq!(exec("cat /tmp/dir/a.txt /tmp/dir/sub/b.txt"), "a\nb\n");
    s.docker_ok(&["cp", &format!("{}/.", p("dir")), "box:/tmp/copy"]);
    assert_eq!(exec("cat /tmp/copy/a.txt /tmp/copy/sub/b.txt"), "a\nb\n");
    // A directory over a file is refused (noOverwriteDirNonDir).
    let err = s.docker_err(&["cp", &p("dir"), "box:/tmp/renamed.txt"]);
    assert!(err.contains("cannot") || err.contains("directory"), "{err}");
    // A file where the archive has a directory: refused by the server, nothing replaced.
    exec("echo keep > /tmp/clash");
    std::fs::create_dir_all(h.join("clash")).unwrap();
    std::fs::write(h.join("clash/x"), "x\n").unwrap();
    let err = s.docker_err(&["cp", &p("clash"), "box:/tmp/"]);
    assert!(err.contains("cannot overwrite non-directory"), "{err}");
    assert_eq!(exec("cat /tmp/clash"), "keep\n");
    let err = s.docker_err(&["cp", &p("file.txt"), "box:/nosuch/dir/"]);
    assert!(!err.is_empty());

    // A created container, not started: its filesystem is there to copy into and out of.
    s.berth
        .ok(&["create", "--name", "fresh", IMAGE, "cat", "/etc/greeting"]);
    s.docker_ok(&["cp", &p("file.txt"), "fresh:/etc/greeting"]);
    s.berth.ok(&["start", "-a", "fresh"]);
    assert_eq!(s.berth.ok(&["logs", "fresh"]), "hello\n");

    // Out of it: a file into a directory, a directory to a new name, DIR/. into an existing
    // directory, a symlink followed with -L, and a tar on stdout.
    exec(
        "mkdir -p /srv/tree/deep && echo one > /srv/tree/one && echo two > /srv/tree/deep/two \
          && ln -s /srv/tree/one /srv/link",
    );
    let out = tempfile::tempdir().unwrap();
    let o = |rel: &str| out.path().join(rel).display().to_string();
    s.docker_ok(&["cp", "box:/tmp/file.txt", &o("")]);
    assert_eq!(std::fs::read_to_string(o("file.txt")).unwrap(), "hello\n");
    s.docker_ok(&["cp", "box:/srv/tree", &o("tree2")]);
    assert_eq!(
        std::fs::read_to_string(o("tree2/deep/two")).unwrap(),
        "two\n"
    );
    std::fs::create_dir(o("existing")).unwrap();
    s.docker_ok(&["cp", "box:/srv/tree/.", &o("existing")]);
    assert_eq!(std::fs::read_to_string(o("existing/one")).unwrap(), "one\n");
    assert_eq!(
        std::fs::read_to_string(o("existing/deep/two")).unwrap(),
        "two\n"
    );
    s.docker_ok(&["cp", "-L", "box:/srv/link", &o("followed")]);
    assert_eq!(std::fs::read_to_string(o("followed")).unwrap(), "one\n");
    s.docker_ok(&["cp", "box:/srv/link", &o("asis")]);
    assert!(
        std::fs::symlink_metadata(o("asis"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let names = lines(&s.sh_ok("docker cp box:/srv/tree - | tar t"));
    assert!(names.contains(&"tree/deep/two".to_string()), "{names:?}");
    let err = s.docker_err(&["cp", "box:/nosuch", &o("x")]);
    assert!(err.contains("Could not find the file /nosuch"), "{err}");

    // The archive endpoints' errors and stat header.
    let (code, body) = s.curl(&["-I", "http://d/v1.44/containers/box/archive?path=/srv/link"]);
    assert_eq!(code, 200, "{body}");
    let stat = body
        .lines()
        .find_map(|l| l.strip_prefix("x-docker-container-path-stat: "))
        .unwrap_or_else(|| panic!("no stat header:\n{body}"));
    let stat = base64_decode(stat.trim());
    let stat: serde_json::Value = serde_json::from_slice(&stat).unwrap();
    assert_eq!(stat["name"], "link", "{stat}");
    assert_eq!(stat["linkTarget"], "/srv/tree/one", "{stat}");
    assert_ne!(
        stat["mode"].as_u64().unwrap() & (1 << 27),
        0,
        "a symlink: {stat}"
    );
    let (code, body) = s.curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "x",
        "http://d/v1.44/containers/box/archive?path=/tmp/file.txt",
    ]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not a directory"), "{body}");
    let (code, body) = s.curl(&["http://d/v1.44/containers/box/archive?path=/nope"]);
    assert_eq!(code, 404, "{body}");
    let (code, body) = s.curl(&["http://d/v1.44/containers/box/archive"]);
    assert_eq!(code, 400, "{body}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    let o = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    o.stdout
}

#[test]
fn system_df_and_verbose() {
    let s = Server::start(&[]);
    s.docker_ok(&["volume", "create", "dfvol"]);
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        "dfc",
        "-v",
        "dfvol:/data",
        IMAGE,
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /data/blob; head -c 200000 /dev/zero > /big; sleep 1000",
    ]);
    s.berth.ok(&["create", "--name", "dfidle", IMAGE, "true"]);
    s.berth.wait_for(20, "the files", || {
        s.berth
            .run(&["exec", "dfc", "test", "-s", "/big"])
            .status
            .success()
    });
    let out = s.docker_ok(&["system", "df", "--format", "{{json .}}"]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |t: &str| {
        rows.iter()
            .find(|r| r["Type"] == t)
            .unwrap_or_else(|| panic!("no {t} row: {out}"))
            .clone()
    };
    assert_eq!(row("Images")["TotalCount"], "1", "{out}");
    assert_eq!(row("Images")["Active"], "1", "{out}");
    assert_eq!(row("Containers")["TotalCount"], "2", "{out}");
    assert_eq!(row("Containers")["Active"], "1", "{out}");
    assert_eq!(row("Local Volumes")["TotalCount"], "1", "{out}");
    assert_eq!(row("Local Volumes")["Active"], "1", "{out}");
    assert!(
        row("Local Volumes")["Size"]
            .as_str()
            .unwrap()
            .contains("kB"),
        "{out}"
    );
    assert_eq!(row("Build Cache")["TotalCount"], "0", "{out}");
    let table = s.docker_ok(&["system", "df"]);
    assert!(table.starts_with("TYPE"), "{table}");
    let v = s.docker_ok(&["system", "df", "-v"]);
    for want in [
        "Images space usage:",
        "berth-test/busybox",
        "Containers space usage:",
        "dfc",
        "dfidle",
        "Local Volumes space usage:",
        "dfvol",
        "Build cache usage: 0B",
    ] {
        assert!(v.contains(want), "{want} missing:\n{v}");
    }
    let dfc_line = v.lines().find(|l| l.ends_with(" dfc")).unwrap();
    assert!(dfc_line.contains("   1   "), "one local volume: {dfc_line}");
    let vol_line = v.lines().find(|l| l.starts_with("dfvol")).unwrap();
    let f: Vec<&str> = vol_line.split_whitespace().collect();
    assert_eq!(f[1], "1", "links: {vol_line}");
    let (code, body) = s.curl(&["http://d/v1.44/system/df?type=volume"]);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v.get("Images").is_none(), "{v}");
    assert_eq!(v["Volumes"][0]["UsageData"]["RefCount"], 1, "{v}");
    assert!(
        v["Volumes"][0]["UsageData"]["Size"].as_i64().unwrap() >= 300000,
        "{v}"
    );
    let (code, _) = s.curl(&["http://d/v1.44/system/df?type=bogus"]);
    assert_eq!(code, 400);
}

#[test]
fn ipv6_subnet_of_its_own_and_ip_range() {
    let s = Server::start(&[]);
    s.docker_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.89.237.0/24",
        "--subnet",
        "fd00:b3a7:237:1::/64",
        "--ip-range",
        "10.89.237.64/26",
        "net6",
    ]);
    let v = s.docker_ok(&[
        "network",
        "inspect",
        "net6",
        "--format",
        "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}},{{.Gateway}};{{end}}",
    ]);
    assert_eq!(
        v.trim(),
        "true 10.89.237.0/24,10.89.237.1;fd00:b3a7:237:1::/64,fd00:b3a7:237:1::1;"
    );
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        "six",
        "--network",
        "net6",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let ip = ip_on(&s, "six", "net6");
    assert_eq!(ip, "10.89.237.64", "the first address of the range");
    let addrs = s
        .berth
        .ok(&["exec", "six", "ip", "-6", "addr", "show", "eth0"]);
    assert!(addrs.contains("fd00:b3a7:237:1::40/64"), "{addrs}");
    // An IPv6 subnet berth cannot keep, and a range outside the subnet: 400.
    let err = s.docker_err(&[
        "network",
        "create",
        "--subnet",
        "fd00:b3a7:237:2::/48",
        "bad6",
    ]);
    assert!(err.contains("/64"), "{err}");
    // (docker checks the range itself: the server's check, with curl.)
    let (code, body) = s.request(
        "POST",
        "/v1.44/networks/create",
        Some(
            r#"{"Name":"badrange","IPAM":{"Config":[{"Subnet":"10.89.239.0/24","IPRange":"10.89.240.0/25"}]}}"#,
        ),
    );
    assert_eq!(code, 400, "{body}");
    let err = body;
    assert!(err.contains("not inside the subnet"), "{err}");
}

/// Debian's docker 20.10 CLI (API 1.41) on the same endpoints.
#[test]
fn docker_20_10_cli_networks_volumes_df_and_cp() {
    let s = Server::start(&[]);
    let old = |args: &[&str]| {
        let o = s.client("/usr/bin/docker").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "docker 20.10 {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            common::serve::tail(&s.log(), 20)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    old(&["network", "create", "--subnet", "10.89.238.0/24", "oldnet"]);
    assert!(old(&["network", "ls"]).contains("oldnet"));
    old(&["volume", "create", "oldvol"]);
    assert_eq!(old(&["volume", "ls", "-q"]).trim(), "oldvol");
    s.berth.ok(&[
        "run",
        "-d",
        "--name",
        "oldc",
        "--network",
        "oldnet",
        "-v",
        "oldvol:/v",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let df = old(&["system", "df"]);
    assert!(df.contains("Local Volumes"), "{df}");
    let st = old(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "oldc",
    ]);
    assert_eq!(st.trim(), "oldc 1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "old\n").unwrap();
    old(&[
        "cp",
        &dir.path().join("f").display().to_string(),
        "oldc:/v/",
    ]);
    old(&[
        "cp",
        "oldc:/v/f",
        &dir.path().join("back").display().to_string(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("back")).unwrap(),
        "old\n"
    );
    old(&["network", "disconnect", "oldnet", "oldc"]);
    old(&["network", "rm", "oldnet"]);
}
