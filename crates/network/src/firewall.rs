//! berth's packet filtering and NAT: one nftables table per active bridge
//! (`table inet <bridge>`), rebuilt whole in one `nft -f -` transaction from the network's
//! state whenever it changes, and deleted with the bridge. berth never lists, flushes or
//! edits anybody else's tables.
//!
//! A packet must pass every base chain on its hook, of every table: so when the iptables
//! FORWARD chain (iptables-nft's `table ip filter`, or iptables-legacy's) has a DROP policy,
//! as Docker sets it, berth adds two ACCEPT rules scoped to its bridge there, as netavark
//! does, and removes exactly those when the bridge goes.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::Result;
use crate::link::run;
use crate::store::Network;

/// The table of a bridge.
fn table(bridge: &str) -> String {
    format!("inet {bridge}")
}

/// The tables of berth's other active bridges (`inet berthN`), on the whole host: every
/// berth root's, so networks of different roots are isolated too.
fn berth_tables() -> Vec<String> {
    let out = run("nft", &["list", "tables", "inet"], "", None).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.strip_prefix("table inet "))
        .filter(|t| {
            t.strip_prefix("berth")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect()
}

/// The whole table for `n` (its bridge must be up), and the bridge added to the `peers` set
/// of every other berth table, in one transaction.
fn ruleset(n: &Network) -> String {
    let br = &n.bridge;
    let sn = n.subnet;
    let mut s = String::new();
    let t = table(br);
    // Create-then-delete makes the delete succeed whether or not the table exists; all in
    // one transaction, so nothing half-built is ever visible.
    let _ = writeln!(s, "table {t} {{}}\ndelete table {t}\ntable {t} {{");
    // Isolation: nothing from this bridge to another berth bridge (the `peers` set, kept up
    // to date by each bridge's table as it comes and goes); internal: nothing in or out.
    let peers: Vec<String> = berth_tables().into_iter().filter(|p| p != br).collect();
    let _ = writeln!(s, "  set peers {{\n    type ifname;");
    if !peers.is_empty() {
        let list: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
        let _ = writeln!(s, "    elements = {{ {} }}", list.join(", "));
    }
    let _ = writeln!(
        s,
        "  }}\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n    \
         iifname \"{br}\" oifname @peers drop"
    );
    if n.internal {
        let _ = writeln!(
            s,
            "    iifname \"{br}\" oifname != \"{br}\" drop\n    oifname \"{br}\" iifname != \"{br}\" drop"
        );
    }
    let _ = writeln!(s, "  }}");
    // Published ports: DNAT on the way in (prerouting: other hosts and containers) and for
    // the host's own connections (output).
    let _ = writeln!(
        s,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
         fib daddr type local jump ports\n  }}\n  \
         chain output {{\n    type nat hook output priority -100; policy accept;\n    \
         fib daddr type local jump ports\n  }}"
    );
    let _ = writeln!(s, "  chain ports {{");
    s += &port_rules(n);
    let _ = writeln!(s, "  }}");
    // Source NAT: outbound masquerade; connections to a published port from 127.0.0.0/8
    // (route_localnet lets them out on the bridge) or from this network itself (hairpin
    // through a host address) get the gateway as source so the reply comes back through us.
    let _ = writeln!(
        s,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;"
    );
    if !n.internal {
        let _ = writeln!(s, "    ip saddr {sn} oifname != \"{br}\" masquerade");
        if let Some(sn6) = Some(&n.subnet6).filter(|s| n.ipv6 && !s.is_empty()) {
            let _ = writeln!(s, "    ip6 saddr {sn6} oifname != \"{br}\" masquerade");
        }
    }
    let _ = writeln!(
        s,
        "    oifname \"{br}\" ct status dnat ip saddr 127.0.0.0/8 masquerade\n    \
         oifname \"{br}\" ct status dnat ip saddr {sn} masquerade\n  }}\n}}"
    );
    for p in &peers {
        let _ = writeln!(s, "add element inet {p} peers {{ \"{br}\" }}");
    }
    s
}

/// The DNAT rules of the network's published ports.
fn port_rules(n: &Network) -> String {
    let mut s = String::new();
    for e in n.endpoints.values() {
        for p in &e.ports {
            let daddr = p
                .host_ip
                .map(|ip| format!("ip daddr {ip} "))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "    {daddr}{proto} dport {hp} dnat ip to {ip}:{cp}",
                proto = p.proto,
                hp = p.host_port,
                ip = e.ip,
                cp = p.container_port
            );
        }
    }
    s
}

/// Rewrites only the `ports` chain (a container with published ports came or went): one
/// small transaction instead of the whole table.
pub(crate) fn apply_ports(n: &Network) -> Result<()> {
    let t = table(&n.bridge);
    let rules: String = port_rules(n)
        .lines()
        .map(|l| format!("add rule {t} ports {}\n", l.trim()))
        .collect();
    run(
        "nft",
        &["-f", "-"],
        &format!("flush chain {t} ports\n{rules}"),
        None,
    )
    .map(drop)
}

/// The host-wide lock under which a table is built: listing the other berth tables and
/// adding this bridge to their `peers` sets must be one step across every berth process and
/// root, or two bridges made at once each miss the other and are not isolated.
const TABLES_LOCK: &str = "/run/berth-nftables.lock";

/// Builds (or rebuilds) the network's table.
pub(crate) fn apply(n: &Network) -> Result<()> {
    let _lock = berth_sys::Flock::exclusive(Path::new(TABLES_LOCK))?;
    run("nft", &["-f", "-"], &ruleset(n), None).map(drop)
}

/// Deletes the bridge's table (if any).
pub(crate) fn remove(bridge: &str) -> Result<()> {
    let t = table(bridge);
    run(
        "nft",
        &["-f", "-"],
        &format!("table {t} {{}}\ndelete table {t}\n"),
        None,
    )
    .map(drop)
}

/// iptables binaries whose filter FORWARD chain exists with a DROP policy.
fn forward_dropping() -> Vec<&'static str> {
    let mut out = Vec::new();
    // iptables-nft: read with nft, which neither creates nor changes anything.
    if let Ok(s) = run(
        "nft",
        &["list", "chain", "ip", "filter", "FORWARD"],
        "",
        None,
    ) && s.contains("policy drop")
    {
        out.push("iptables-nft");
    }
    // iptables-legacy: only if its filter table is loaded (listing would load it).
    if std::fs::read_to_string("/proc/net/ip_tables_names")
        .is_ok_and(|t| t.lines().any(|l| l == "filter"))
        && Path::new("/usr/sbin/iptables-legacy").exists()
        && run("iptables-legacy", &["-w", "-S", "FORWARD"], "", None)
            .is_ok_and(|s| s.lines().any(|l| l == "-P FORWARD DROP"))
    {
        out.push("iptables-legacy");
    }
    out
}

/// Adds ACCEPT rules for the bridge where a FORWARD policy would drop its traffic; returns
/// the argv of each rule's deletion.
pub(crate) fn forward_accept(bridge: &str) -> Result<Vec<Vec<String>>> {
    let comment = format!("berth {bridge}");
    let rules: [Vec<&str>; 2] = [
        vec![
            "-i",
            bridge,
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            "ACCEPT",
        ],
        vec![
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED,DNAT",
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            "ACCEPT",
        ],
    ];
    let mut undo = Vec::new();
    for bin in forward_dropping() {
        for r in &rules {
            let mut del = vec![bin.to_string(), "-w".into(), "-D".into(), "FORWARD".into()];
            del.extend(r.iter().map(|s| s.to_string()));
            // The bridge is being made now, so a rule already naming it is stale (left by a
            // berth that was killed, or by a host reboot of iptables-persistent's kind): one
            // copy, not one more.
            forward_remove(std::slice::from_ref(&del));
            let mut add = vec!["-w", "-I", "FORWARD", "1"];
            add.extend(r);
            run(bin, &add, "", None)?;
            undo.push(del);
        }
    }
    Ok(undo)
}

/// Removes rules recorded by [`forward_accept`], every copy of each (bridge names are unique on
/// the host, so a copy can only be a stale one of this bridge).
pub(crate) fn forward_remove(rules: &[Vec<String>]) {
    for r in rules {
        let args: Vec<&str> = r[1..].iter().map(String::as_str).collect();
        for _ in 0..16 {
            if run(&r[0], &args, "", None).is_err() {
                break;
            }
        }
    }
}
