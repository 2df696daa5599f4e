//! Networks on disk: `ROOT/networks/<name>.json`, one file per network holding its
//! configuration and its live state (bridge, endpoints = IPAM leases, DNS server, the iptables
//! rules berth added). Written atomically (temp, fsync, rename); every change is made under
//! one host-wide flock, because bridges, subnets, host ports and nft tables are host-wide
//! even when several berth roots share the host.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};
use crate::ipam::Subnet;
use crate::ports::PortMapping;

/// The host-wide lock for every change to networks.
const LOCK: &str = "/run/berth-network.lock";

/// A network: configuration and live state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    /// Name (`bridge` for the default network).
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Always `bridge`.
    pub driver: String,
    /// IPv4 subnet.
    pub subnet: Subnet,
    /// Gateway: the bridge's address, and the DNS server's.
    pub gateway: Ipv4Addr,
    /// No outbound route, no NAT.
    pub internal: bool,
    /// An IPv6 ULA /64 too.
    pub ipv6: bool,
    /// The IPv6 subnet (with `ipv6`), `fdxx:xxxx:xxxx:xxxx::/64`.
    #[serde(default)]
    pub subnet6: String,
    /// Where addresses are given out from (`--ip-range`; none: the whole subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Subnet>,
    /// The subnet was picked by berth (the default network): it may be picked again when
    /// the bridge comes up with no container attached.
    pub auto_subnet: bool,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options as given at create (recorded, not applied).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// The bridge while the network has containers (empty when down).
    #[serde(default)]
    pub bridge: String,
    /// Attached containers by ID: the IPAM leases.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    /// The DNS server's pid and start time.
    #[serde(default)]
    pub dns: Option<(i32, u64)>,
    /// iptables rules berth added (each the argv that deletes it).
    #[serde(default)]
    pub forward_rules: Vec<Vec<String>>,
}

impl Network {
    /// The prefix length, for `ip addr`.
    pub fn prefix(&self) -> u8 {
        self.subnet.prefix
    }

    /// Whether this is the default network, which has no name resolution (as Docker's).
    pub fn is_default(&self) -> bool {
        self.name == crate::DEFAULT_NETWORK
    }

    /// The container's IPv6 address for an IPv4 one (same host number).
    pub(crate) fn ip6_of(&self, ip: Ipv4Addr) -> Option<String> {
        if !self.ipv6 || self.subnet6.is_empty() {
            return None;
        }
        let host = u32::from(ip) - u32::from(self.subnet.addr);
        let base: std::net::Ipv6Addr = self.subnet6.trim_end_matches("/64").parse().ok()?;
        Some(std::net::Ipv6Addr::from(u128::from(base) | u128::from(host)).to_string())
    }
}

/// One container on one network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Endpoint {
    /// The container's ID.
    pub container_id: String,
    /// The container's name.
    pub container_name: String,
    /// `--network-alias` names.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Interface in the container (`eth0`).
    pub ifname: String,
    /// The host end of the veth pair.
    pub veth: String,
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// IPv6 address (with `--ipv6`).
    #[serde(default)]
    pub ip6: String,
    /// MAC address.
    pub mac: String,
    /// The network namespace (a bind mount).
    pub netns: PathBuf,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}

impl Endpoint {
    /// Names this endpoint answers to in the network's DNS.
    pub fn dns_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.container_name.as_str())
            .chain(std::iter::once(
                &self.container_id[..12.min(self.container_id.len())],
            ))
            .chain(self.aliases.iter().map(String::as_str))
    }
}

/// The host-wide network lock, held until dropped.
pub(crate) type Lock = berth_sys::Flock;

pub(crate) fn lock() -> Result<Lock> {
    // 0600: any user who can open the lock can flock it and stall every berth network
    // operation on the host (berth-sys creates it so; one made looser by hand is tightened).
    let l = berth_sys::Flock::exclusive(Path::new(LOCK))?;
    let m = l.file().metadata().map_err(io_err("stat", LOCK))?;
    if m.permissions().mode() & 0o077 != 0 {
        l.file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err("chmod", LOCK))?;
    }
    Ok(l)
}

/// The networks of one root.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub(crate) dir: PathBuf,
}

impl Store {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    pub(crate) fn load(&self, name: &str) -> Result<Network> {
        let p = self.path(name);
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSuchNetwork(name.to_string()));
            }
            Err(e) => return Err(io_err("read", p)(e)),
        };
        serde_json::from_slice(&data).map_err(|e| {
            io_err("parse", &p)(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
    }

    pub(crate) fn save(&self, n: &Network) -> Result<()> {
        write_atomic(
            &self.path(&n.name),
            &serde_json::to_vec_pretty(n).expect("network serialises"),
        )
    }

    pub(crate) fn delete(&self, name: &str) -> Result<()> {
        let p = self.path(name);
        fs::remove_file(&p).map_err(io_err("remove", p))
    }

    pub(crate) fn all(&self) -> Result<Vec<Network>> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("read", &self.dir)(e)),
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(name) = n.strip_suffix(".json")
                && !n.starts_with('.')
            {
                match self.load(name) {
                    Ok(net) => out.push(net),
                    Err(Error::NoSuchNetwork(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Writes `data` to `path` atomically (temp file, fsync, rename, directory fsync).
/// The file is the owner's only (0600), in a directory closed to other users (0700, also
/// made so when it exists looser): network state names containers, addresses and ports.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    berth_sys::private_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(berth_sys::write_atomic(path, data, 0o600)?)
}
