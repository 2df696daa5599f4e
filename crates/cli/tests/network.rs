//! Networking end to end, as root: published ports (TCP on loopback and a host address, UDP,
//! `-P`, hairpin), user networks with names and isolation, `--internal`, `container:NAME`,
//! the DNS/hosts flags, connect/disconnect, and that removal leaves nothing on the host.
//! Each test has its own root, subnets (10.89.2xx.0/24) and host ports (180xx), so they run
//! in parallel; addresses are loopback, the host's own, or inside berth's networks.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Berth, IMAGE};

/// Serves "hello from NAME" on port 80.
const HTTPD: &str = "mkdir -p /www && echo \"hello from $HOSTNAME\" > /www/index.html && exec httpd -f -p 80 -h /www";

fn need(tool: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{tool} is missing: install it (apt-get install nftables iproute2) to run these tests"
    );
}

fn tools() {
    need("ip");
    need("nft");
}

/// GET / over plain TCP; None when nothing answers.
fn http_get(addr: (Ipv4Addr, u16)) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A global IPv4 address of the host that is not loopback nor on a container bridge.
fn host_address() -> Option<Ipv4Addr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let dev = f.get(1)?;
        if dev.starts_with("berth")
            || dev.starts_with("docker")
            || dev.starts_with("cni")
            || dev.starts_with("podman")
            || dev.starts_with("br-")
        {
            return None;
        }
        f.get(3)?.split('/').next()?.parse().ok()
    })
}

fn ip_of(b: &Berth, c: &str) -> String {
    b.inspect(c)["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The alias of a link (`berth-network-<id>` on berth's bridges).
fn link_alias(name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("ifalias"))
        .ok()
        .map(|a| a.trim().to_string())
}

/// Whether the bridge `name` that carried `alias` is gone, with its nft table. Tests run in
/// parallel and bridge names are reused (the first free `berthN`), so a link or table of the
/// same name with another alias is another network's, made since.
fn bridge_gone(name: &str, alias: &str) -> bool {
    link_alias(name).is_none_or(|a| a != alias)
        && !(nft_table_exists(name) && link_alias(name).is_none())
}

/// The bridge of the user network `net` (the link whose alias names the network's ID: a user
/// network's bridge is not among its options).
fn bridge_of(b: &Berth, net: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["network", "inspect", net])).unwrap();
    let alias = format!("berth-network-{}", v[0]["Id"].as_str().unwrap());
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| link_alias(n).is_some_and(|a| a == alias))
        .unwrap_or_else(|| panic!("no bridge with alias {alias}"))
}

fn nft_table_exists(name: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn publish_tcp_on_loopback_host_address_and_hairpin() {
    tools();
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1:18080:80",
        "-p",
        "18081:80",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    b.wait_for(20, "httpd on 127.0.0.1:18080", || {
        http_get((Ipv4Addr::LOCALHOST, 18080)).is_some_and(|r| r.contains("hello from"))
    });
    // Published on every address: loopback too.
    assert!(
        http_get((Ipv4Addr::LOCALHOST, 18081))
            .unwrap()
            .contains("hello from")
    );
    match host_address() {
        Some(ip) => {
            let r = http_get((ip, 18081)).expect("published port answers on the host's address");
            assert!(r.contains("hello from"), "{r}");
            assert!(
                http_get((ip, 18080)).is_none(),
                "127.0.0.1:18080 must not answer on {ip}"
            );
            // Hairpin: another container through the host's address.
            let o = b.ok(&[
                "run",
                "--rm",
                IMAGE,
                "timeout",
                "10",
                "wget",
                "-qO-",
                &format!("http://{ip}:18081/"),
            ]);
            assert!(o.contains("hello from"), "{o}");
        }
        None => eprintln!(
            "skipped the host-address and hairpin checks: the host has no global IPv4 address"
        ),
    }
    // port, ps, inspect.
    let p = b.ok(&["port", "web"]);
    assert!(p.contains("80/tcp -> 127.0.0.1:18080"), "{p}");
    assert!(p.contains("80/tcp -> 0.0.0.0:18081"), "{p}");
    assert_eq!(b.ok(&["port", "web", "80"]).lines().count(), 2);
    let ps = b.ok(&["ps"]);
    assert!(ps.contains("127.0.0.1:18080->80/tcp"), "{ps}");
    let ns = &b.inspect("web")["NetworkSettings"];
    assert_eq!(ns["Ports"]["80/tcp"][0]["HostPort"], "18080", "{ns}");
    assert!(
        ns["Networks"]["bridge"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.89."),
        "{ns}"
    );
    // stats counts the traffic of the container's interface (the HTTP exchanges above).
    let st: serde_json::Value = serde_json::from_str(
        b.ok(&["stats", "--no-stream", "--format", "json", "web"])
            .trim(),
    )
    .unwrap();
    let net = st["NetIO"].as_str().unwrap();
    let (rx, tx) = net.split_once(" / ").unwrap();
    assert!(rx != "0B" && tx != "0B", "NetIO {net}");
    // A second container cannot take the same host port.
    let o = b.run(&["run", "-d", "-p", "18081:80", IMAGE, "sleep", "1"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already allocated"));
}

#[test]
fn publish_udp() {
    tools();
    need("python3");
    let b = Berth::new();
    let echo = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9000))\nwhile True:\n  d,a=s.recvfrom(2000)\n  s.sendto(b'echo:'+d,a)\n";
    // The host's python3 with its libraries mounted read-only (busybox has no UDP server).
    b.ok(&[
        "run",
        "-d",
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/lib:/lib:ro",
        "-v",
        "/lib64:/lib64:ro",
        "-p",
        "127.0.0.1:18082:9000/udp",
        IMAGE,
        "/usr/bin/python3",
        "-c",
        echo,
    ]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = String::new();
    b.wait_for(20, "the UDP echo through 127.0.0.1:18082", || {
        let _ = s.send_to(b"ping", "127.0.0.1:18082");
        let mut buf = [0u8; 64];
        match s.recv_from(&mut buf) {
            Ok((n, _)) => {
                got = String::from_utf8_lossy(&buf[..n]).into_owned();
                true
            }
            Err(_) => false,
        }
    });
    assert_eq!(got, "echo:ping");
}

/// Imports a copy of the busybox image whose config exposes 80/tcp and 81/tcp.
fn import_exposing(b: &Berth, name: &str) {
    common::import_with_config(b, name, |config| {
        config["ExposedPorts"] = serde_json::json!({"80/tcp": {}, "81/tcp": {}});
    });
}

#[test]
fn publish_all_exposed_ports() {
    tools();
    let b = Berth::new();
    import_exposing(&b, "berth-test/exposing:latest");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "pall",
        "-P",
        "berth-test/exposing:latest",
        "sh",
        "-c",
        HTTPD,
    ]);
    let ports = b.ok(&["port", "pall"]);
    assert_eq!(ports.lines().count(), 2, "{ports}");
    let p80: u16 = b
        .ok(&["port", "pall", "80/tcp"])
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let p81: u16 = b
        .ok(&["port", "pall", "81"])
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(p80, p81);
    b.wait_for(20, "httpd on the -P port", || {
        http_get((Ipv4Addr::LOCALHOST, p80)).is_some_and(|r| r.contains("hello from"))
    });
}

#[test]
fn user_networks_resolve_names_and_are_isolated() {
    tools();
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.89.210.0/24", "neta"]);
    b.ok(&["network", "create", "--subnet", "10.89.211.0/24", "netb"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "a1",
        "--network",
        "neta",
        "--network-alias",
        "web-a",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    let a1 = ip_of(&b, "a1");
    assert!(a1.starts_with("10.89.210."), "{a1}");
    // By name and by alias (through the network's DNS server), and HTTP to the resolved address.
    let o = b.ok(&[
        "run",
        "--rm",
        "--network",
        "neta",
        IMAGE,
        "sh",
        "-c",
        "ping -c1 -W3 a1 >/dev/null && ping -c1 -W3 web-a >/dev/null && nslookup a1 && \
         timeout 10 wget -qO- http://$(nslookup a1 | awk '/^Address/ {a=$NF} END {print a}')/",
    ]);
    assert!(o.contains(&a1), "{o}");
    assert!(o.contains("hello from"), "{o}");
    // Names of other networks do not resolve there; their addresses do not answer.
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "netb",
        IMAGE,
        "ping",
        "-c1",
        "-W1",
        "a1",
    ]);
    assert!(!o.status.success());
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "netb",
        IMAGE,
        "ping",
        "-c1",
        "-W1",
        &a1,
    ]);
    assert!(!o.status.success(), "netb reached {a1} on neta");
    let o = b.run(&["run", "--rm", IMAGE, "ping", "-c1", "-W1", &a1]);
    assert!(
        !o.status.success(),
        "the default network reached {a1} on neta"
    );
    // In use: rm is refused.
    assert!(!b.run(&["network", "rm", "neta"]).status.success());
    let ls = b.ok(&["network", "ls"]);
    assert!(
        ls.contains("neta") && ls.contains("netb") && ls.contains("bridge"),
        "{ls}"
    );
}

#[test]
fn internal_network_has_no_way_out() {
    tools();
    let b = Berth::new();
    b.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.89.212.0/24",
        "inside",
    ]);
    let o = b.ok(&["run", "--rm", "--network", "inside", IMAGE, "ip", "route"]);
    assert!(!o.contains("default"), "{o}");
    let target = host_address()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "10.89.0.1".into());
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "inside",
        IMAGE,
        "ping",
        "-c1",
        "-W1",
        &target,
    ]);
    assert!(!o.status.success(), "an internal network reached {target}");
    // Its gateway (and DNS server) is still there.
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "inside",
        IMAGE,
        "ping",
        "-c1",
        "-W3",
        "10.89.212.1",
    ]);
}

/// A container made on an internal network with published ports (as compose makes one on its
/// first network) publishes them on the next network it joins that is not internal.
#[test]
fn ports_of_a_container_on_an_internal_network_go_to_its_next_network() {
    tools();
    let b = Berth::new();
    b.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.89.217.0/24",
        "pin-back",
    ]);
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.89.218.0/24",
        "pin-front",
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    b.ok(&[
        "create",
        "--name",
        "pin",
        "--network",
        "pin-back",
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        "echo served > /index.html; exec httpd -f -p 80 -h /",
    ]);
    assert_eq!(
        b.ok(&["port", "pin"]).trim(),
        "",
        "published on the internal network"
    );
    b.ok(&["network", "connect", "pin-front", "pin"]);
    b.ok(&["start", "pin"]);
    assert_eq!(
        b.ok(&["port", "pin"]).trim(),
        format!("80/tcp -> 127.0.0.1:{port}")
    );
    let mut got = None;
    b.wait_for(10, "the published port to answer", || {
        got = http_get((Ipv4Addr::LOCALHOST, port));
        got.is_some()
    });
    assert!(got.unwrap().contains("served"));
    b.ok(&["rm", "-f", "pin"]);
    b.ok(&["network", "rm", "pin-back", "pin-front"]);
}

/// Bridges made at the same moment, by two berth roots, are isolated from each other: each
/// table's `peers` set names the other (the tables are built under one host-wide lock).
#[test]
fn networks_made_at_once_are_isolated() {
    tools();
    let (a, b) = (Berth::new(), Berth::new());
    std::thread::scope(|t| {
        t.spawn(|| a.ok(&["network", "create", "--subnet", "10.89.219.0/24", "race-a"]));
        t.spawn(|| b.ok(&["network", "create", "--subnet", "10.89.221.0/24", "race-b"]));
    });
    std::thread::scope(|t| {
        t.spawn(|| {
            a.ok(&[
                "run",
                "-d",
                "--name",
                "ra",
                "--network",
                "race-a",
                IMAGE,
                "sleep",
                "1000",
            ])
        });
        t.spawn(|| {
            b.ok(&[
                "run",
                "-d",
                "--name",
                "rb",
                "--network",
                "race-b",
                IMAGE,
                "sleep",
                "1000",
            ])
        });
    });
    let ip_a = ip_of(&a, "ra");
    let ip_b = ip_of(&b, "rb");
    let o = a.run(&["exec", "ra", "ping", "-c1", "-W1", &ip_b]);
    assert!(!o.status.success(), "race-a reached {ip_b} on race-b");
    let o = b.run(&["exec", "rb", "ping", "-c1", "-W1", &ip_a]);
    assert!(!o.status.success(), "race-b reached {ip_a} on race-a");
}

#[test]
fn container_mode_shares_the_namespace() {
    tools();
    let b = Berth::new();
    b.ok(&["run", "-d", "--name", "owner", IMAGE, "sleep", "300"]);
    let mine = b.ok(&[
        "exec",
        "owner",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; ip -4 -o addr show eth0",
    ]);
    let theirs = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        IMAGE,
        "sh",
        "-c",
        "readlink /proc/self/ns/net; ip -4 -o addr show eth0",
    ]);
    assert_eq!(mine, theirs);
    assert!(mine.contains(&ip_of(&b, "owner")));
}

#[test]
fn dns_hosts_ip_and_mac_flags() {
    tools();
    let b = Berth::new();
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.89.213.0/24",
        "--gateway",
        "10.89.213.254",
        "flags",
    ]);
    let o = b.ok(&[
        "run", "--rm", "--network", "flags", "--ip", "10.89.213.50", "--mac-address", "02:42:aa:bb:cc:dd",
        "--hostname", "hh", "--dns", "10.89.213.254", "--dns-search", "example.org", "--add-host",
        "foo:10.1.2.3", IMAGE, "sh", "-c",
        "cat /etc/resolv.conf /etc/hosts; hostname; ip -o addr show eth0; ip -o link show eth0; ip route",
    ]);
    for want in [
        "nameserver 10.89.213.254",
        "search example.org",
        "10.1.2.3\tfoo",
        "10.89.213.50\thh",
        "\nhh\n",
        "inet 10.89.213.50/24",
        "02:42:aa:bb:cc:dd",
        "default via 10.89.213.254",
    ] {
        assert!(o.contains(want), "missing {want:?} in:\n{o}");
    }
    // A taken address is refused.
    b.ok(&[
        "run",
        "-d",
        "--network",
        "flags",
        "--ip",
        "10.89.213.60",
        IMAGE,
        "sleep",
        "300",
    ]);
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "flags",
        "--ip",
        "10.89.213.60",
        IMAGE,
        "true",
    ]);
    assert!(!o.status.success());
}

#[test]
fn connect_and_disconnect() {
    tools();
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.89.214.0/24", "one"]);
    b.ok(&["network", "create", "--subnet", "10.89.215.0/24", "two"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "multi",
        "--network",
        "one",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "two",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&["network", "connect", "--alias", "m2", "two", "multi"]);
    let o = b.ok(&["exec", "multi", "ip", "-4", "-o", "addr"]);
    assert!(o.contains("eth1") && o.contains("10.89.215."), "{o}");
    b.ok(&["exec", "peer", "ping", "-c1", "-W3", "m2"]);
    let inspect = b.ok(&["network", "inspect", "two"]);
    assert!(inspect.contains("multi"), "{inspect}");
    b.ok(&["network", "disconnect", "two", "multi"]);
    let o = b.ok(&["exec", "multi", "ip", "-4", "-o", "addr"]);
    assert!(!o.contains("eth1"), "{o}");
    assert!(
        !b.run(&["exec", "peer", "ping", "-c1", "-W1", "m2"])
            .status
            .success()
    );
}

/// Everything of berth's on the host for the network `name` of root `b`: its bridge, nft
/// table and veths must go with the containers.
#[test]
fn removal_leaves_nothing_even_after_a_killed_monitor() {
    tools();
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.89.216.0/24", "gone"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "r1",
        "--network",
        "gone",
        "-p",
        "127.0.0.1:18083:80",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "r2",
        "-p",
        "127.0.0.1:18084:80",
        IMAGE,
        "sleep",
        "300",
    ]);
    let bridge = bridge_of(&b, "gone");
    let r1 = b.inspect("r1");
    let veth1 = r1["NetworkSettings"]["Networks"]["gone"]["EndpointID"]
        .as_str()
        .unwrap()
        .to_string();
    let r2 = b.inspect("r2");
    let veth2 = r2["NetworkSettings"]["Networks"]["bridge"]["EndpointID"]
        .as_str()
        .unwrap()
        .to_string();
    let netns = r1["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(link_exists(&bridge) && link_exists(&veth1) && link_exists(&veth2));
    let alias = link_alias(&bridge).unwrap();
    assert!(alias.starts_with("berth-network-"), "{alias}");
    assert!(nft_table_exists(&bridge));
    let rules = Command::new("nft")
        .args(["list", "table", "inet", &bridge])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&rules.stdout).contains("dport 18083"));

    // r1: plain rm -f. r2: its monitor is SIGKILLed first.
    b.ok(&["rm", "-f", "r1"]);
    // The kernel destroys the veth with the namespace, asynchronously.
    b.wait_for(10, "the veth of r1 to go", || !link_exists(&veth1));
    assert!(
        bridge_gone(&bridge, &alias),
        "{bridge} ({alias}) or its table left"
    );
    assert!(!Path::new(&netns).exists(), "{netns} left");
    let id2 = r2["Id"].as_str().unwrap();
    let st: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            b.root
                .path()
                .join("containers")
                .join(id2)
                .join("state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let monitor = st["MonitorPid"].as_i64().unwrap() as i32;
    // SAFETY: kill has no memory arguments; the pid is the container's monitor.
    assert_eq!(unsafe { libc::kill(monitor, libc::SIGKILL) }, 0);
    let default_net: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", "bridge"])).unwrap();
    let default_bridge = default_net[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    let default_alias = link_alias(&default_bridge).unwrap();
    b.ok(&["rm", "-f", "r2"]);
    b.wait_for(10, "the veth of r2 to go", || !link_exists(&veth2));
    assert!(
        bridge_gone(&default_bridge, &default_alias),
        "{default_bridge} ({default_alias}) or its table left"
    );
    b.ok(&["network", "rm", "gone"]);
    // IPAM: no lease left in any network; no namespace left.
    for e in std::fs::read_dir(b.root.path().join("networks"))
        .unwrap()
        .flatten()
    {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        assert_eq!(
            v["endpoints"],
            serde_json::json!({}),
            "{}",
            e.path().display()
        );
        assert_eq!(v["bridge"], "", "{}", e.path().display());
    }
    let left: Vec<_> = std::fs::read_dir(b.root.path().join("netns"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // No DNS server of this root is left either.
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let root = b.root.path().display().to_string();
    assert!(
        !String::from_utf8_lossy(&ps.stdout)
            .lines()
            .any(|l| l.contains(&root) && l.contains("__dns"))
    );
}

#[test]
fn ipv6_network_gives_ula_addresses_and_names() {
    tools();
    let b = Berth::new();
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.89.217.0/24",
        "six",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "v6a",
        "--network",
        "six",
        IMAGE,
        "sleep",
        "300",
    ]);
    let ip6 = b.inspect("v6a")["NetworkSettings"]["Networks"]["six"]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip6.starts_with("fd"), "{ip6}");
    let o = b.ok(&[
        "run",
        "--rm",
        "--network",
        "six",
        IMAGE,
        "sh",
        "-c",
        "ip -6 route; ping6 -c1 -W3 v6a",
    ]);
    assert!(o.contains("default via") && o.contains(&ip6), "{o}");
}

/// While a berth bridge is up and the iptables FORWARD policy drops (Docker's), berth's two
/// ACCEPT rules for it are there; they go with the bridge.
#[test]
fn forward_rules_follow_the_bridge() {
    tools();
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.89.218.0/24", "fwd"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "f1",
        "--network",
        "fwd",
        IMAGE,
        "sleep",
        "300",
    ]);
    let bridge = bridge_of(&b, "fwd");
    let comment = format!("berth {bridge}\"");
    let rules = || {
        let o = Command::new("iptables")
            .args(["-w", "-S", "FORWARD"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let before = rules();
    if before.lines().any(|l| l == "-P FORWARD DROP") {
        assert_eq!(before.matches(&comment).count(), 2, "{before}");
    } else {
        assert_eq!(before.matches(&comment).count(), 0, "{before}");
    }
    b.ok(&["rm", "-f", "f1"]);
    assert_eq!(rules().matches(&comment).count(), 0);
}

/// After a reboot the namespace mount, the bridge, the nft table and the DNS server are gone
/// while the state on disk remains: `start` remakes them with the same address and port.
#[test]
fn start_after_a_simulated_reboot_remakes_the_network() {
    tools();
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.89.219.0/24", "boot"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "boot",
        "-p",
        "127.0.0.1:18086:80",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    let ip = ip_of(&b, "srv");
    b.ok(&["stop", "-t", "0", "srv"]);
    let bridge = bridge_of(&b, "boot");
    let netns = b.inspect("srv")["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    // The "reboot".
    Command::new("umount").arg(&netns).status().unwrap();
    Command::new("ip")
        .args(["link", "del", &bridge])
        .status()
        .unwrap();
    Command::new("nft")
        .args(["delete", "table", "inet", &bridge])
        .status()
        .unwrap();
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.root.path().join("networks/boot.json")).unwrap())
            .unwrap();
    if let Some(pid) = st["dns"][0].as_i64() {
        // SAFETY: kill has no memory arguments; the pid is this network's DNS server.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    b.ok(&["start", "srv"]);
    assert_eq!(ip_of(&b, "srv"), ip);
    b.wait_for(20, "httpd on 127.0.0.1:18086 after the restart", || {
        http_get((Ipv4Addr::LOCALHOST, 18086)).is_some_and(|r| r.contains("hello from"))
    });
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "boot",
        IMAGE,
        "ping",
        "-c1",
        "-W3",
        "srv",
    ]);
}
