//! IPv4 subnets and address allocation. Leases are the endpoints recorded in the network's
//! state file: an address is free when no endpoint holds it, so removing an endpoint is
//! releasing its lease and there is no second table to get out of step.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid};

/// An IPv4 subnet, `10.89.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

impl Subnet {
    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// Whether `ip` is inside.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(self, o: Subnet) -> bool {
        let m = self.mask() & o.mask();
        u32::from(self.addr) & m == u32::from(o.addr) & m
    }

    /// The `n`th address (0 is the network address).
    pub fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + n)
    }

    /// Number of addresses.
    pub fn size(self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    /// Whether `ip` can be given to a host (not the network or broadcast address).
    pub fn is_host(self, ip: Ipv4Addr) -> bool {
        let off = u64::from(u32::from(ip) - u32::from(self.addr));
        self.contains(ip) && (self.prefix >= 31 || (off != 0 && off != self.size() - 1))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            invalid(
                "--subnet",
                format!("{s:?} is not an IPv4 CIDR (e.g. 10.89.1.0/24)"),
            )
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(invalid(
                "--subnet",
                format!("{s}: the prefix must be between 8 and 30"),
            ));
        }
        let sn = Subnet { addr, prefix };
        if u32::from(addr) & sn.mask() != u32::from(addr) {
            return Err(invalid("--subnet", format!("{s}: host bits are set")));
        }
        Ok(sn)
    }
}

impl TryFrom<String> for Subnet {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// The first free host address of `subnet` in `range` (the subnet itself or a part of it;
/// not the gateway, not in `used`).
pub(crate) fn allocate(
    net: &str,
    range: Subnet,
    subnet: Subnet,
    gateway: Ipv4Addr,
    used: &[Ipv4Addr],
) -> Result<Ipv4Addr> {
    (0..range.size().min(1 << 20) as u32)
        .map(|n| range.nth(n))
        .find(|ip| subnet.is_host(*ip) && *ip != gateway && !used.contains(ip))
        .ok_or_else(|| Error::Ipam {
            net: net.to_string(),
            msg: format!("no free address left in {range}"),
        })
}

/// Checks an address asked for with `--ip`.
pub(crate) fn reserve(
    net: &str,
    subnet: Subnet,
    gateway: Ipv4Addr,
    used: &[Ipv4Addr],
    ip: Ipv4Addr,
) -> Result<Ipv4Addr> {
    let err = |msg: String| Error::Ipam {
        net: net.to_string(),
        msg,
    };
    if !subnet.is_host(ip) {
        return Err(err(format!("--ip {ip} is not a host address of {subnet}")));
    }
    if ip == gateway || used.contains(&ip) {
        return Err(err(format!("address {ip} is already in use")));
    }
    Ok(ip)
}

/// IPv4 routes of the host's main table (destination subnets), from /proc/net/route.
pub(crate) fn host_routes() -> Vec<(String, Subnet)> {
    let Ok(s) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dst = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None;
            }
            Some((
                f[0].to_string(),
                Subnet {
                    addr: Ipv4Addr::from(u32::from_be(dst)),
                    prefix: u32::from_be(mask).count_ones() as u8,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_math() {
        let s: Subnet = "10.89.3.0/24".parse().unwrap();
        assert!(s.contains("10.89.3.200".parse().unwrap()));
        assert!(!s.contains("10.89.4.1".parse().unwrap()));
        assert!(s.overlaps("10.89.0.0/16".parse().unwrap()));
        assert!(!s.overlaps("10.89.4.0/24".parse().unwrap()));
        assert!(!s.is_host(s.nth(255)));
        let gw = s.nth(1);
        assert_eq!(allocate("n", s, s, gw, &[s.nth(2)]).unwrap(), s.nth(3));
        let r: Subnet = "10.89.3.128/25".parse().unwrap();
        assert_eq!(allocate("n", r, s, gw, &[]).unwrap(), s.nth(128));
        let top: Subnet = "10.89.3.252/30".parse().unwrap();
        // The broadcast address is never given, even at the end of a range.
        assert!(allocate("n", top, s, gw, &[s.nth(252), s.nth(253), s.nth(254)]).is_err());
        assert!(reserve("n", s, gw, &[], gw).is_err());
        assert!("10.89.3.1/24".parse::<Subnet>().is_err());
    }
}
