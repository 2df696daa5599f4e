//! `-p [IP:][HOSTPORT:]CTRPORT[/tcp|udp]` (with ranges) and the host ports they get.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// A published port as asked for: `host_port` 0 means "any free port".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    /// Host address to listen on (None: every address).
    pub host_ip: Option<Ipv4Addr>,
    /// Host port (0: pick a free one).
    pub host_port: u16,
    /// Port in the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

/// A published port as set up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address (None: every address).
    pub host_ip: Option<Ipv4Addr>,
    /// Host port.
    pub host_port: u16,
    /// Port in the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

impl fmt::Display for PortMapping {
    /// Docker's `ps` form: `0.0.0.0:8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
            self.container_port,
            self.proto
        )
    }
}

fn range(flag: &str, s: &str) -> Result<(u16, u16)> {
    let p = |x: &str| -> Result<u16> {
        x.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid(flag, format!("invalid port {x:?}")))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (p(a)?, p(b)?);
            if b < a {
                return Err(invalid(flag, format!("invalid port range {s:?}")));
            }
            Ok((a, b))
        }
        None => p(s).map(|n| (n, n)),
    }
}

/// Parses one `-p` value into one request per port.
pub fn parse_publish(spec: &str) -> Result<Vec<PortRequest>> {
    let flag = "-p/--publish";
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        return Err(invalid(
            flag,
            format!("{spec:?}: protocol must be tcp or udp"),
        ));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => (None, "", *c),
        [h, c] => (None, *h, *c),
        [i, h, c] => (Some(*i), *h, *c),
        _ => {
            return Err(invalid(
                flag,
                format!("{spec:?}: expected [IP:][HOSTPORT:]CTRPORT[/PROTO]"),
            ));
        }
    };
    let host_ip = match ip.filter(|i| !i.is_empty() && *i != "0.0.0.0") {
        Some(i) => Some(
            i.parse::<Ipv4Addr>()
                .map_err(|_| invalid(flag, format!("{spec:?}: {i:?} is not an IPv4 address")))?,
        ),
        None => None,
    };
    let (c0, c1) = range(flag, ctr)?;
    let (h0, h1) = if host.is_empty() {
        (0, 0)
    } else {
        range(flag, host)?
    };
    let n = c1 - c0;
    if h0 != 0 && n != 0 && h1 - h0 != n {
        return Err(invalid(
            flag,
            format!("{spec:?}: port ranges do not have the same size"),
        ));
    }
    if n == 0 && h1 > h0 {
        // `8000-8010:80`: Docker takes a free port of the range; we take the first.
        return Ok(vec![PortRequest {
            host_ip,
            host_port: h0,
            container_port: c0,
            proto,
        }]);
    }
    Ok((0..=n)
        .map(|i| PortRequest {
            host_ip,
            host_port: if h0 == 0 { 0 } else { h0 + i },
            container_port: c0 + i,
            proto: proto.clone(),
        })
        .collect())
}

/// A free host port for `proto` that berth does not use already: the kernel's choice of an
/// ephemeral port (bound on 0.0.0.0 and released at once).
pub(crate) fn free_port(proto: &str, taken: &[(String, u16)]) -> Option<u16> {
    for _ in 0..64 {
        let port = if proto == "udp" {
            std::net::UdpSocket::bind("0.0.0.0:0")
                .ok()?
                .local_addr()
                .ok()?
                .port()
        } else {
            std::net::TcpListener::bind("0.0.0.0:0")
                .ok()?
                .local_addr()
                .ok()?
                .port()
        };
        if !taken.iter().any(|(p, n)| p == proto && *n == port) {
            return Some(port);
        }
    }
    None
}

/// Whether a host process listens on the port (a clash Docker would report too).
pub(crate) fn host_port_busy(ip: Option<Ipv4Addr>, proto: &str, port: u16) -> bool {
    let a = (ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    if proto == "udp" {
        std::net::UdpSocket::bind(a).is_err()
    } else {
        std::net::TcpListener::bind(a).is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let r = parse_publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!((r[0].host_port, r[0].container_port), (8080, 80));
        assert_eq!(r[0].proto, "udp");
        let r = parse_publish("80").unwrap();
        assert_eq!((r[0].host_port, r[0].proto.as_str()), (0, "tcp"));
        let r = parse_publish("9000-9002:7000-7002").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[2].host_port, r[2].container_port), (9002, 7002));
        assert!(parse_publish("9000-9001:7000-7002").is_err());
        assert!(parse_publish("80/sctp").is_err());
        assert!(parse_publish("1:2:3:80").is_err());
    }
}
