//! The DNS server of a network (what aardvark-dns is to podman): one process per active
//! network, bound to the gateway on port 53 (UDP and TCP). It answers A/AAAA queries for the
//! names of the network's containers (name, short ID, `--network-alias`) from the network's
//! state file, read per query (written atomically, so always whole), and relays everything
//! else to the host's resolvers from /etc/resolv.conf (it runs in the host's namespace, so a
//! loopback resolver such as systemd-resolved's works).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use crate::store::{Network, Store};

/// The host's resolvers.
fn upstreams(own: Ipv4Addr) -> Vec<SocketAddr> {
    let s = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let v: Vec<SocketAddr> = s
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .filter(|a| *a != std::net::IpAddr::V4(own))
        .map(|a| SocketAddr::new(a, 53))
        .collect();
    if v.is_empty() {
        vec!["8.8.8.8:53".parse().expect("address")]
    } else {
        v
    }
}

/// The question's name (lowercase, no trailing dot), type, and the offset after it.
fn question(q: &[u8]) -> Option<(String, u16, usize)> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut name = String::new();
    loop {
        let n = *q.get(i)? as usize;
        i += 1;
        if n == 0 {
            break;
        }
        if n & 0xc0 != 0 {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(q.get(i..i + n)?).to_ascii_lowercase());
        i += n;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((name, qtype, i + 4))
}

/// Our answer for a query about one of the network's containers, or None to relay it.
fn answer(net: &Network, q: &[u8]) -> Option<Vec<u8>> {
    let (name, qtype, end) = question(q)?;
    if net.is_default() {
        return None;
    }
    let e = net.endpoints.values().find(|e| {
        e.dns_names()
            .any(|n| n.eq_ignore_ascii_case(&name) || name.strip_suffix(".dns.berth") == Some(n))
    })?;
    let mut r = q[..end].to_vec();
    r[2] = 0x84 | (q[2] & 0x01); // QR, AA, RD as asked
    r[3] = 0x80; // RA, NOERROR
    r[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut rr = |typ: u16, data: &[u8]| {
        r.extend_from_slice(&[0xc0, 0x0c]);
        r.extend_from_slice(&typ.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 10]); // IN, TTL 10 s
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(data);
    };
    let mut n = 0u16;
    if qtype == 1 || qtype == 255 {
        rr(1, &e.ip.octets());
        n += 1;
    }
    if (qtype == 28 || qtype == 255)
        && let Ok(ip6) = e.ip6.parse::<std::net::Ipv6Addr>()
    {
        rr(28, &ip6.octets());
        n += 1;
    }
    r[6..8].copy_from_slice(&n.to_be_bytes());
    Some(r)
}

fn relay(q: &[u8], ups: &[SocketAddr]) -> Option<Vec<u8>> {
    for u in ups {
        let bind = if u.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let Ok(s) = UdpSocket::bind(bind) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        if s.send_to(q, u).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

fn servfail(q: &[u8]) -> Vec<u8> {
    let mut r = q.to_vec();
    if r.len() >= 4 {
        r[2] |= 0x80;
        r[3] = 0x82;
    }
    r
}

fn handle(store: &Store, name: &str, q: &[u8], ups: &[SocketAddr]) -> Vec<u8> {
    let ours = store.load(name).ok().and_then(|n| answer(&n, q));
    ours.or_else(|| relay(q, ups))
        .unwrap_or_else(|| servfail(q))
}

fn tcp_conn(store: &Store, name: &str, mut c: TcpStream, ups: &[SocketAddr]) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        let mut len = [0u8; 2];
        if c.read_exact(&mut len).is_err() {
            return;
        }
        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
        if c.read_exact(&mut q).is_err() {
            return;
        }
        let r = handle(store, name, &q, ups);
        let mut out = (r.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&r);
        if c.write_all(&out).is_err() {
            return;
        }
    }
}

/// Binds the server's sockets on the gateway (done before the process detaches, so the
/// caller learns about a failure).
pub(crate) fn bind(gw: Ipv4Addr) -> std::io::Result<(UdpSocket, TcpListener)> {
    Ok((UdpSocket::bind((gw, 53))?, TcpListener::bind((gw, 53))?))
}

/// Serves forever.
pub(crate) fn serve(
    store: Store,
    name: String,
    gw: Ipv4Addr,
    udp: UdpSocket,
    tcp: TcpListener,
) -> ! {
    let ups: Arc<Vec<SocketAddr>> = Arc::new(upstreams(gw));
    let ctx = Arc::new((store, name));
    {
        let (ctx, ups) = (ctx.clone(), ups.clone());
        std::thread::spawn(move || {
            for c in tcp.incoming().flatten() {
                let (ctx, ups) = (ctx.clone(), ups.clone());
                std::thread::spawn(move || tcp_conn(&ctx.0, &ctx.1, c, &ups));
            }
        });
    }
    let udp = Arc::new(udp);
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = udp.recv_from(&mut buf) else {
            continue;
        };
        let q = buf[..n].to_vec();
        let (ctx, ups, udp) = (ctx.clone(), ups.clone(), udp.clone());
        std::thread::spawn(move || {
            let r = handle(&ctx.0, &ctx.1, &q, &ups);
            let _ = udp.send_to(&r, from);
        });
    }
}
