//! The library through its public API, as root: a network's bridge, namespace, veth, lease,
//! nft table and DNS server come with the first container and go with the last; a lost
//! namespace and bridge (as after a reboot) are made again with the same address.
//! The DNS server is stood in for by a script that starts a `sleep` and prints its pid.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use berth_network::{AttachOptions, CreateOptions, Networks, parse_publish};

fn setup() -> (tempfile::TempDir, Networks) {
    // SAFETY: geteuid has no arguments.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
    for t in ["ip", "nft"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .unwrap()
                .status
                .success(),
            "{t} is missing: install iproute2 and nftables"
        );
    }
    let root = tempfile::tempdir().unwrap();
    let exe = root.path().join("fake-dns");
    std::fs::write(
        &exe,
        "#!/bin/sh\nsleep 600 </dev/null >/dev/null 2>&1 &\necho $!\n",
    )
    .unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let n = Networks::new(root.path(), &exe);
    (root, n)
}

fn in_ns(ns: &Path, cmd: &str) -> String {
    let o = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["sh", "-c", cmd])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn table(name: &str) -> Option<String> {
    let o = Command::new("nft")
        .args(["list", "table", "inet", name])
        .output()
        .unwrap();
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

struct Cleanup<'a>(&'a Networks, &'a [&'a str]);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for id in self.1 {
            let _ = self.0.release(id);
        }
        let _ = self.0.prune();
    }
}

#[test]
fn attach_detach_and_remake_after_reboot() {
    let (_root, nets) = setup();
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    let ids = [a.as_str(), b.as_str()];
    let _c = Cleanup(&nets, &ids);
    let n = nets
        .create(&CreateOptions {
            name: "lib1".into(),
            subnet: Some("10.89.220.0/24".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(n.gateway, Ipv4Addr::new(10, 89, 220, 1));
    assert!(n.bridge.is_empty(), "an idle network has no bridge");
    // Overlapping subnets are refused.
    assert!(
        nets.create(&CreateOptions {
            name: "lib2".into(),
            subnet: Some("10.89.220.128/25".into()),
            ..Default::default()
        })
        .is_err()
    );

    let ns_a = nets.create_netns(&a).unwrap();
    let ports = parse_publish("127.0.0.1:18085:80").unwrap();
    let ea = nets
        .attach(
            &a,
            "ca",
            "lib1",
            &AttachOptions {
                ports,
                aliases: vec!["x".into()],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ea.ip, Ipv4Addr::new(10, 89, 220, 2));
    let n = nets.get("lib1").unwrap();
    let br = n.bridge.clone();
    assert!(Path::new("/sys/class/net").join(&br).exists());
    assert!(Path::new("/sys/class/net").join(&ea.veth).exists());
    assert!(
        table(&br)
            .unwrap()
            .contains("tcp dport 18085 dnat ip to 10.89.220.2:80")
    );
    assert!(in_ns(&ns_a, "ip -4 -o addr show eth0").contains("10.89.220.2/24"));
    assert!(in_ns(&ns_a, "ip route").contains("default via 10.89.220.1"));
    let (dns_pid, _) = n.dns.unwrap();

    // A second container: the next address; a taken address or host port is refused.
    nets.create_netns(&b).unwrap();
    let taken = AttachOptions {
        ip: Some(ea.ip),
        ..Default::default()
    };
    assert!(nets.attach(&b, "cb", "lib1", &taken).is_err());
    let port = AttachOptions {
        ports: parse_publish("18085:80").unwrap(),
        ..Default::default()
    };
    assert!(nets.attach(&b, "cb", "lib1", &port).is_err());
    let eb = nets
        .attach(&b, "cb", "lib1", &AttachOptions::default())
        .unwrap();
    assert_eq!(eb.ip, Ipv4Addr::new(10, 89, 220, 3));
    nets.release(&b).unwrap();
    // The kernel destroys the veth with the namespace, asynchronously.
    let gone = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        !Path::new("/sys/class/net").join(&eb.veth).exists()
    });
    assert!(gone, "{} left", eb.veth);

    // "Reboot": the namespace mount, the bridge and the table are gone; ensure remakes them.
    Command::new("umount").arg(&ns_a).status().unwrap();
    Command::new("ip")
        .args(["link", "del", &br])
        .status()
        .unwrap();
    Command::new("nft")
        .args(["delete", "table", "inet", &br])
        .status()
        .unwrap();
    nets.ensure(&a).unwrap();
    let n = nets.get("lib1").unwrap();
    assert!(in_ns(&ns_a, "ip -4 -o addr show eth0").contains("10.89.220.2/24"));
    assert!(table(&n.bridge).unwrap().contains("dport 18085"));

    // The last container goes: bridge, veth, table, DNS server, lease and namespace too.
    nets.release(&a).unwrap();
    let n2 = nets.get("lib1").unwrap();
    assert!(n2.bridge.is_empty() && n2.endpoints.is_empty() && n2.dns.is_none());
    assert!(!Path::new("/sys/class/net").join(&n.bridge).exists());
    assert!(table(&n.bridge).is_none());
    assert!(!ns_a.exists());
    assert!(
        !Path::new(&format!("/proc/{dns_pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{dns_pid}/stat"))
                .unwrap_or_default()
                .contains(" Z ")
    );
    nets.remove("lib1").unwrap();
    assert!(nets.get("lib1").is_err());
}
