//! berth's container networking: Docker's bridge networks for a daemonless engine.
//!
//! A network is a Linux bridge with the network's gateway address, created when its first
//! container attaches and deleted with its last one (so an idle network costs nothing on the
//! host). A container gets a network namespace of its own, bind-mounted at
//! `ROOT/netns/<id>` at `create` and joined by the runtime through config.json; each
//! attachment is a veth pair (host end on the bridge, `ethN` in the namespace), an address
//! leased from the network's subnet and, for the first one, the default route. Published
//! ports and NAT are nftables rules in a table of berth's own per bridge; names resolve
//! through a small DNS server per network (`berth __dns NETWORK`).
//!
//! The key design choice is that the state on disk is the truth and the kernel's is derived
//! from it: every change takes one host-wide lock, updates `ROOT/networks/<name>.json`
//! atomically and rebuilds the bridge's nft table in one transaction. So `rm` after a
//! SIGKILLed monitor, or a reboot (see [`Networks::ensure`]), finds what to undo or redo.
//!
//! What it does not do: know about containers beyond an ID, a name and a namespace path
//! (the engine owns those), or touch the runtime. Links are made with iproute2's
//! `ip -batch`, rules with `nft -f` (see ARCHITECTURE.md for why).

mod dns;
mod error;
mod firewall;
mod ipam;
mod link;
mod netns;
mod ports;
mod store;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use ipam::Subnet;
pub use ports::{PortMapping, PortRequest, parse_publish};
pub use store::{Endpoint, Network};

use error::{invalid, io_err};
use store::Store;

/// The default network's name (Docker's).
pub const DEFAULT_NETWORK: &str = "bridge";

/// The hidden subcommand of the `berth` binary that runs a network's DNS server:
/// `berth --root R __dns NETWORK`.
pub const DNS_COMMAND: &str = "__dns";

/// Where the default network's subnet comes from (`BERTH_DEFAULT_SUBNET`, else this; when
/// taken on the host, the next free /24 of 10.89.0.0/16).
pub const DEFAULT_SUBNET: &str = "10.89.0.0/24";

/// Options of `network create`.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// Name.
    pub name: String,
    /// `--subnet` (default: a free /24 of 10.89.0.0/16).
    pub subnet: Option<String>,
    /// `--gateway` (default: the subnet's first address).
    pub gateway: Option<String>,
    /// `--internal`.
    pub internal: bool,
    /// `--ip-range`: where addresses are given out from (a subnet inside `subnet`; default
    /// the whole subnet). Addresses asked for with `--ip` may be anywhere in the subnet.
    pub ip_range: Option<String>,
    /// `--ipv6`.
    pub ipv6: bool,
    /// An IPv6 subnet of its own (a /64, `fd00:1:2:3::/64`; implies `ipv6`); default: a
    /// ULA /64 derived from the network's ID.
    pub subnet6: Option<String>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--opt` driver options: recorded and shown as given, not applied (berth names its
    /// bridges and sets their MTU itself).
    pub options: BTreeMap<String, String>,
}

/// How a container attaches to a network.
#[derive(Clone, Debug, Default)]
pub struct AttachOptions {
    /// `--ip`.
    pub ip: Option<Ipv4Addr>,
    /// `--mac-address`.
    pub mac: Option<String>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `-p` / `-P`.
    pub ports: Vec<PortRequest>,
}

/// The networks of one berth root.
#[derive(Clone, Debug)]
pub struct Networks {
    root: PathBuf,
    store: Store,
    exe: PathBuf,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An IPv6 subnet of a network: a /64 with its host bits zero, written as berth keeps it
/// (`fd00:1:2:3::/64`, the gateway being `...::1`).
fn parse_subnet6(s: &str) -> Result<String> {
    let bad = |why: &str| invalid("--subnet", format!("{s:?}: {why}"));
    let (a, p) = s.split_once('/').ok_or_else(|| bad("not an IPv6 CIDR"))?;
    let addr: std::net::Ipv6Addr = a.parse().map_err(|_| bad("not an IPv6 CIDR"))?;
    if p != "64" {
        return Err(bad("berth's IPv6 subnets are /64"));
    }
    if u128::from(addr) & u128::from(u64::MAX) != 0 || u128::from(addr) >> 64 == 0 {
        return Err(bad("host bits are set"));
    }
    Ok(format!("{addr}/64"))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Networks {
    /// The networks under `root` (`root/networks`, namespaces in `root/netns`); DNS servers
    /// are started as `exe --root ROOT __dns NETWORK` (the `berth` binary).
    pub fn new(root: &Path, exe: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            store: Store {
                dir: root.join("networks"),
            },
            exe: exe.to_path_buf(),
        }
    }

    fn pick_subnet(&self, start: Subnet, skip: &[Subnet]) -> Result<Subnet> {
        let routes = ipam::host_routes();
        let mut cand = start;
        for _ in 0..4096 {
            let busy = routes.iter().any(|(_, r)| r.overlaps(cand))
                || skip.iter().any(|s| s.overlaps(cand));
            if !busy {
                return Ok(cand);
            }
            let next = u32::from(cand.addr).wrapping_add(cand.size() as u32);
            cand = Subnet {
                addr: Ipv4Addr::from(next),
                prefix: cand.prefix,
            };
            if !"10.89.0.0/16"
                .parse::<Subnet>()
                .expect("pool")
                .contains(cand.addr)
            {
                cand = "10.89.0.0/24".parse().expect("pool");
            }
        }
        Err(invalid("--subnet", "no free subnet left in 10.89.0.0/16"))
    }

    fn make(&self, o: &CreateOptions, auto: bool, others: &[Network]) -> Result<Network> {
        let subnet = match &o.subnet {
            Some(s) => {
                let s: Subnet = s.parse()?;
                if let Some(n) = others
                    .iter()
                    .find(|n| !n.auto_subnet && n.subnet.overlaps(s))
                {
                    return Err(invalid(
                        "--subnet",
                        format!("{s} overlaps with network {} ({})", n.name, n.subnet),
                    ));
                }
                s
            }
            None => {
                let start = if auto {
                    std::env::var("BERTH_DEFAULT_SUBNET").unwrap_or_else(|_| DEFAULT_SUBNET.into())
                } else {
                    "10.89.1.0/24".into()
                };
                let skip: Vec<Subnet> = others.iter().map(|n| n.subnet).collect();
                self.pick_subnet(start.parse()?, &skip)?
            }
        };
        let gateway = match &o.gateway {
            Some(g) => {
                let g: Ipv4Addr = g
                    .parse()
                    .map_err(|_| invalid("--gateway", format!("{g:?} is not an IPv4 address")))?;
                if !subnet.is_host(g) {
                    return Err(invalid(
                        "--gateway",
                        format!("{g} is not a host address of {subnet}"),
                    ));
                }
                g
            }
            None => subnet.nth(1),
        };
        let ip_range = match &o.ip_range {
            Some(r) => {
                let r: Subnet = r.parse().map_err(|_| {
                    invalid(
                        "--ip-range",
                        format!("{r:?} is not an IPv4 CIDR inside the subnet {subnet}"),
                    )
                })?;
                if !subnet.contains(r.addr) || r.prefix < subnet.prefix {
                    return Err(invalid(
                        "--ip-range",
                        format!("{r} is not inside the subnet {subnet}"),
                    ));
                }
                Some(r)
            }
            None => None,
        };
        let id = random_hex(32);
        let ipv6 = o.ipv6 || o.subnet6.is_some();
        let subnet6 = if let Some(s6) = &o.subnet6 {
            parse_subnet6(s6)?
        } else if ipv6 {
            let hex = |r: std::ops::Range<usize>| u16::from_str_radix(&id[r], 16).unwrap_or(0);
            let p =
                std::net::Ipv6Addr::new(0xfd00 | hex(0..2), hex(2..6), hex(6..10), 0, 0, 0, 0, 0);
            format!("{p}/64")
        } else {
            String::new()
        };
        Ok(Network {
            name: o.name.clone(),
            id,
            created: berth_sys::time::rfc3339_seconds(std::time::SystemTime::now()),
            driver: "bridge".into(),
            subnet,
            gateway,
            internal: o.internal,
            ipv6,
            subnet6,
            ip_range,
            auto_subnet: auto,
            labels: o.labels.clone(),
            options: o.options.clone(),
            bridge: String::new(),
            endpoints: BTreeMap::new(),
            dns: None,
            forward_rules: Vec::new(),
        })
    }

    /// Creates a network (`network create`).
    pub fn create(&self, o: &CreateOptions) -> Result<Network> {
        if !valid_name(&o.name) {
            return Err(invalid(
                "network name",
                format!("invalid name {:?}", o.name),
            ));
        }
        if matches!(
            o.name.as_str(),
            "none" | "host" | DEFAULT_NETWORK | "default"
        ) || o.name.starts_with("container:")
        {
            return Err(invalid(
                "network name",
                format!("{} is a reserved name", o.name),
            ));
        }
        let _l = store::lock()?;
        let all = self.store.all()?;
        if all.iter().any(|n| n.name == o.name) {
            return Err(Error::NetworkExists(o.name.clone()));
        }
        let n = self.make(o, false, &all)?;
        self.store.save(&n)?;
        Ok(n)
    }

    /// Loads a network by name, ID or unique ID prefix; the default network is made on first
    /// use. Call with the lock held.
    fn find(&self, key: &str) -> Result<Network> {
        let key = if key == "default" {
            DEFAULT_NETWORK
        } else {
            key
        };
        match self.store.load(key) {
            Ok(n) => return Ok(n),
            Err(Error::NoSuchNetwork(_)) if key == DEFAULT_NETWORK => {
                let all = self.store.all()?;
                let o = CreateOptions {
                    name: DEFAULT_NETWORK.into(),
                    ..Default::default()
                };
                let n = self.make(&o, true, &all)?;
                self.store.save(&n)?;
                return Ok(n);
            }
            Err(Error::NoSuchNetwork(_)) => {}
            Err(e) => return Err(e),
        }
        let all = self.store.all()?;
        let mut hits = all
            .into_iter()
            .filter(|n| n.id.starts_with(key) && key.len() >= 3);
        match (hits.next(), hits.next()) {
            (Some(n), None) => Ok(n),
            _ => Err(Error::NoSuchNetwork(key.to_string())),
        }
    }

    /// One network (`network inspect`).
    pub fn get(&self, key: &str) -> Result<Network> {
        let _l = store::lock()?;
        self.find(key)
    }

    /// Every network, the default one included.
    pub fn list(&self) -> Result<Vec<Network>> {
        let _l = store::lock()?;
        self.find(DEFAULT_NETWORK)?;
        self.store.all()
    }

    /// Removes a network with no containers (`network rm`).
    pub fn remove(&self, key: &str) -> Result<String> {
        let _l = store::lock()?;
        let mut n = self.find(key)?;
        if n.is_default() {
            return Err(invalid(
                "network rm",
                "bridge is a pre-defined network and cannot be removed",
            ));
        }
        if !n.endpoints.is_empty() {
            return Err(Error::InUse {
                name: n.name.clone(),
                containers: n
                    .endpoints
                    .values()
                    .map(|e| e.container_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.bridge_down(&mut n);
        self.store.delete(&n.name)?;
        Ok(n.name)
    }

    /// Removes every user network without containers (`network prune`); returns their names.
    pub fn prune(&self) -> Result<Vec<String>> {
        let names: Vec<String> = {
            let _l = store::lock()?;
            self.store
                .all()?
                .into_iter()
                .filter(|n| !n.is_default() && n.endpoints.is_empty())
                .map(|n| n.name)
                .collect()
        };
        let mut out = Vec::new();
        for n in names {
            if self.remove(&n).is_ok() {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Where a container's network namespace is bound.
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.root.join("netns").join(container_id)
    }

    /// Creates the container's network namespace (its loopback comes up with the first
    /// attachment).
    pub fn create_netns(&self, container_id: &str) -> Result<PathBuf> {
        let p = self.netns_path(container_id);
        netns::create(&p)?;
        Ok(p)
    }

    fn dns_alive(n: &Network) -> bool {
        n.dns
            .is_some_and(|(pid, start)| berth_sys::proc::pid_alive(pid, start))
    }

    fn start_dns(&self, n: &mut Network) -> Result<()> {
        if Self::dns_alive(n) {
            return Ok(());
        }
        // The server reads the state file, which must name the bridge's gateway first.
        self.store.save(n)?;
        let out = std::process::Command::new(&self.exe)
            .arg("--root")
            .arg(&self.root)
            .arg(DNS_COMMAND)
            .arg(&n.name)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(io_err("run", &self.exe))?;
        let pid: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| Error::Tool {
                tool: format!("{} {DNS_COMMAND} {}", self.exe.display(), n.name),
                msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })?;
        n.dns = berth_sys::proc::pid_start_time(pid).map(|s| (pid, s));
        Ok(())
    }

    fn stop_dns(n: &mut Network) {
        if Self::dns_alive(n)
            && let Some((pid, _)) = n.dns
        {
            // SAFETY: kill has no memory arguments; pid checked with its start time.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        n.dns = None;
    }

    /// The alias berth gives a network's bridge: bridge names are reused (the first free
    /// `berthN`), so a link of the recorded name is this network's only if it carries this.
    fn bridge_alias(n: &Network) -> String {
        format!("berth-network-{}", n.id)
    }

    /// Whether the bridge recorded for `n` is up and is this network's.
    fn bridge_ours(n: &Network) -> bool {
        !n.bridge.is_empty() && link::alias(&n.bridge).is_some_and(|a| a == Self::bridge_alias(n))
    }

    /// Whether the recorded bridge name now belongs to another network (ours went away, by a
    /// reboot or by hand, and the name was given out again): its table and FORWARD rules,
    /// which carry that name, are the other network's and must not be touched.
    fn bridge_taken(n: &Network) -> bool {
        !n.bridge.is_empty() && link::exists(&n.bridge) && !Self::bridge_ours(n)
    }

    /// Brings the network's bridge up if it is not (first container, or after a reboot).
    fn bridge_up(&self, n: &mut Network) -> Result<()> {
        if Self::bridge_ours(n) {
            return self.start_dns(n);
        }
        if !n.bridge.is_empty() {
            // Recorded but gone (a reboot): forget what went with it.
            if !Self::bridge_taken(n) {
                let _ = firewall::remove(&n.bridge);
                firewall::forward_remove(&n.forward_rules);
            }
            n.forward_rules.clear();
            Self::stop_dns(n);
            n.bridge.clear();
        }
        if n.auto_subnet && n.endpoints.is_empty() {
            let others: Vec<Subnet> = self
                .store
                .all()?
                .iter()
                .filter(|o| o.name != n.name && !o.bridge.is_empty())
                .map(|o| o.subnet)
                .collect();
            let start =
                std::env::var("BERTH_DEFAULT_SUBNET").unwrap_or_else(|_| DEFAULT_SUBNET.into());
            n.subnet = self.pick_subnet(start.parse()?, &others)?;
            n.gateway = n.subnet.nth(1);
        } else if let Some((dev, r)) = ipam::host_routes()
            .into_iter()
            .find(|(_, r)| r.overlaps(n.subnet))
        {
            return Err(Error::Ipam {
                net: n.name.clone(),
                msg: format!("subnet {} overlaps {r} on {dev}", n.subnet),
            });
        }
        let br = (0..)
            .map(|i| format!("berth{i}"))
            .find(|b| !link::exists(b))
            .expect("a free name");
        let mut cmds = format!(
            "link add {br} type bridge\nlink set {br} alias {}\naddr add {}/{} dev {br}\nlink set {br} up\n",
            Self::bridge_alias(n),
            n.gateway,
            n.prefix()
        );
        if n.ipv6 {
            cmds += &format!(
                "addr add {} dev {br} nodad\n",
                n.subnet6.replace("::/64", "::1/64")
            );
        }
        let res = link::ip_batch(&cmds, None)
            .and_then(|()| link::sysctl(&format!("net.ipv4.conf.{br}.route_localnet"), "1"))
            .and_then(|()| {
                if n.internal {
                    Ok(())
                } else {
                    link::sysctl("net.ipv4.ip_forward", "1")?;
                    if n.ipv6 {
                        link::sysctl("net.ipv6.conf.all.forwarding", "1")?;
                    }
                    Ok(())
                }
            });
        if let Err(e) = res {
            let _ = link::ip_batch(&format!("link del {br}\n"), None);
            return Err(e);
        }
        n.bridge = br;
        n.forward_rules =
            firewall::forward_accept(&n.bridge).inspect_err(|_| self.bridge_down(n))?;
        firewall::apply(n).inspect_err(|_| self.bridge_down(n))?;
        self.start_dns(n).inspect_err(|_| self.bridge_down(n))
    }

    /// Takes the bridge, its rules and its DNS server away.
    fn bridge_down(&self, n: &mut Network) {
        if n.bridge.is_empty() {
            return;
        }
        Self::stop_dns(n);
        if !Self::bridge_taken(n) {
            let _ = firewall::remove(&n.bridge);
            firewall::forward_remove(&n.forward_rules);
            if link::exists(&n.bridge) {
                let _ = link::ip_batch(&format!("link del {}\n", n.bridge), None);
            }
        }
        n.forward_rules.clear();
        n.bridge.clear();
    }

    fn ports(&self, all: &[Network], req: &[PortRequest]) -> Result<Vec<PortMapping>> {
        let mut taken: Vec<(String, u16, Option<Ipv4Addr>, String)> = all
            .iter()
            .flat_map(|n| n.endpoints.values())
            .flat_map(|e| {
                e.ports.iter().map(|p| {
                    (
                        p.proto.clone(),
                        p.host_port,
                        p.host_ip,
                        e.container_name.clone(),
                    )
                })
            })
            .collect();
        let mut out = Vec::new();
        for r in req {
            let port = if r.host_port == 0 {
                let t: Vec<(String, u16)> = taken.iter().map(|t| (t.0.clone(), t.1)).collect();
                ports::free_port(&r.proto, &t).ok_or_else(|| Error::PortInUse {
                    proto: r.proto.clone(),
                    port: 0,
                    by: ": no free port".into(),
                })?
            } else {
                if let Some(t) = taken.iter().find(|t| {
                    t.0 == r.proto
                        && t.1 == r.host_port
                        && (t.2.is_none() || r.host_ip.is_none() || t.2 == r.host_ip)
                }) {
                    return Err(Error::PortInUse {
                        proto: r.proto.clone(),
                        port: r.host_port,
                        by: format!(" by container {}", t.3),
                    });
                }
                if ports::host_port_busy(r.host_ip, &r.proto, r.host_port) {
                    return Err(Error::PortInUse {
                        proto: r.proto.clone(),
                        port: r.host_port,
                        by: " by a host process".into(),
                    });
                }
                r.host_port
            };
            taken.push((r.proto.clone(), port, r.host_ip, String::new()));
            out.push(PortMapping {
                host_ip: r.host_ip,
                host_port: port,
                container_port: r.container_port,
                proto: r.proto.clone(),
            });
        }
        Ok(out)
    }

    /// Attaches a container (its namespace made by [`Networks::create_netns`]) to a network
    /// (`run --network`, `network connect`).
    pub fn attach(
        &self,
        container_id: &str,
        container_name: &str,
        network: &str,
        o: &AttachOptions,
    ) -> Result<Endpoint> {
        let _l = store::lock()?;
        let mut n = self.find(network)?;
        if n.endpoints.contains_key(container_id) {
            return Err(invalid(
                "network connect",
                format!(
                    "container {container_name} is already connected to network {}",
                    n.name
                ),
            ));
        }
        let ns = self.netns_path(container_id);
        if !netns::is_bound(&ns) {
            return Err(invalid(
                "network connect",
                format!("container {container_name} has no network namespace of its own"),
            ));
        }
        let all = self.store.all()?;
        let mine: Vec<&Endpoint> = all
            .iter()
            .filter_map(|x| x.endpoints.get(container_id))
            .collect();
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|f| !mine.iter().any(|e| &e.ifname == f))
            .expect("a free name");
        let has_default = all
            .iter()
            .any(|x| !x.internal && x.endpoints.contains_key(container_id));
        let ports = self.ports(&all, &o.ports)?;
        let was_down = !Self::bridge_ours(&n);
        self.bridge_up(&mut n)?;
        let res = self.attach_link(
            &mut n,
            container_id,
            container_name,
            &ifname,
            &ns,
            !has_default,
            o,
            ports,
        );
        match res {
            Ok(e) => Ok(e),
            Err(err) => {
                if was_down && n.endpoints.is_empty() {
                    self.bridge_down(&mut n);
                }
                let _ = self.store.save(&n);
                Err(err)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn attach_link(
        &self,
        n: &mut Network,
        cid: &str,
        cname: &str,
        ifname: &str,
        ns: &Path,
        default_route: bool,
        o: &AttachOptions,
        ports: Vec<PortMapping>,
    ) -> Result<Endpoint> {
        let used: Vec<Ipv4Addr> = n.endpoints.values().map(|e| e.ip).collect();
        let ip = match o.ip {
            Some(ip) => ipam::reserve(&n.name, n.subnet, n.gateway, &used, ip)?,
            None => ipam::allocate(
                &n.name,
                n.ip_range.unwrap_or(n.subnet),
                n.subnet,
                n.gateway,
                &used,
            )?,
        };
        let mac = match &o.mac {
            Some(m) => {
                let ok = m.split(':').count() == 6
                    && m.split(':')
                        .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok());
                if !ok {
                    return Err(invalid(
                        "--mac-address",
                        format!("{m:?} is not a MAC address"),
                    ));
                }
                m.to_ascii_lowercase()
            }
            None => {
                let o = ip.octets();
                format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
            }
        };
        let veth = format!("vb{}{}", &cid[..11.min(cid.len())], &ifname[3..]);
        let ip6 = n.ip6_of(ip).unwrap_or_default();
        let host = format!(
            "link add {veth} type veth peer name {ifname} address {mac} netns {}\n\
             link set {veth} master {br}\nlink set {veth} up\n",
            ns.display(),
            br = n.bridge
        );
        let mut inner = format!(
            "link set lo up\naddr add {ip}/{} dev {ifname}\nlink set {ifname} up\n",
            n.prefix()
        );
        if !ip6.is_empty() {
            inner += &format!("addr add {ip6}/64 dev {ifname} nodad\n");
        }
        if default_route && !n.internal {
            inner += &format!("route add default via {}\n", n.gateway);
            if !ip6.is_empty() {
                inner += &format!(
                    "route add default via {}\n",
                    n.subnet6.replace("::/64", "::1")
                );
            }
        }
        let nsf = File::open(ns).map_err(io_err("open", ns))?;
        let undo = || {
            let _ = link::ip_batch(&format!("link del {veth}\n"), None);
        };
        link::ip_batch(&host, None).inspect_err(|_| undo())?;
        link::ip_batch(&inner, Some(&nsf)).inspect_err(|_| undo())?;
        let e = Endpoint {
            container_id: cid.to_string(),
            container_name: cname.to_string(),
            aliases: o.aliases.clone(),
            ifname: ifname.to_string(),
            veth: veth.clone(),
            ip,
            ip6,
            mac,
            netns: ns.to_path_buf(),
            ports,
        };
        n.endpoints.insert(cid.to_string(), e.clone());
        let res = if e.ports.is_empty() {
            Ok(())
        } else {
            firewall::apply_ports(n)
        };
        if let Err(err) = res.and_then(|()| self.store.save(n)) {
            n.endpoints.remove(cid);
            undo();
            if !e.ports.is_empty() {
                let _ = firewall::apply_ports(n);
            }
            return Err(err);
        }
        Ok(e)
    }

    /// Removes the endpoint; `del_veth` deletes its veth pair (not needed when the namespace
    /// was just unmounted: the kernel destroys the pair with the namespace, off our path).
    fn detach_locked(&self, n: &mut Network, container_id: &str, del_veth: bool) -> Result<()> {
        let Some(e) = n.endpoints.remove(container_id) else {
            return Ok(());
        };
        if del_veth && link::exists(&e.veth) {
            link::ip_batch(&format!("link del {}\n", e.veth), None)?;
        }
        if n.endpoints.is_empty() {
            self.bridge_down(n);
        } else if !e.ports.is_empty() && Self::bridge_ours(n) {
            firewall::apply_ports(n)?;
        }
        self.store.save(n)
    }

    /// Detaches a container from one network (`network disconnect`).
    pub fn detach(&self, container_id: &str, network: &str) -> Result<()> {
        let _l = store::lock()?;
        let mut n = self.find(network)?;
        if !n.endpoints.contains_key(container_id) {
            return Err(invalid(
                "network disconnect",
                format!(
                    "container {container_id} is not connected to network {}",
                    n.name
                ),
            ));
        }
        self.detach_locked(&mut n, container_id, true)
    }

    /// Detaches a container from every network and removes its namespace (`rm`).
    ///
    /// The namespace is unmounted first: with the container's processes gone that was its
    /// last reference, and the kernel destroys it and its veth ends asynchronously (deleting
    /// each veth here would cost ~30 ms of RCU grace period per container).
    pub fn release(&self, container_id: &str) -> Result<()> {
        let ns = self.netns_path(container_id);
        let owned = netns::is_bound(&ns);
        netns::remove(&ns)?;
        let _l = store::lock()?;
        for mut n in self.store.all()? {
            if n.endpoints.contains_key(container_id) {
                self.detach_locked(&mut n, container_id, !owned)?;
            }
        }
        Ok(())
    }

    /// The container's attachments.
    pub fn endpoints(&self, container_id: &str) -> Result<Vec<(Network, Endpoint)>> {
        Ok(self
            .store
            .all()?
            .into_iter()
            .filter_map(|n| {
                let e = n.endpoints.get(container_id).cloned()?;
                Some((n, e))
            })
            .collect())
    }

    /// Makes a container's networking whole again before it starts: after a reboot the
    /// namespace, the bridge, the rules and the DNS server are gone while the state on disk
    /// still holds the leases, so they are made again with the same addresses and ports.
    pub fn ensure(&self, container_id: &str) -> Result<()> {
        let eps = self.endpoints(container_id)?;
        let ns = self.netns_path(container_id);
        if netns::is_bound(&ns) {
            let _l = store::lock()?;
            for (n, _) in &eps {
                let mut n = self.find(&n.name)?;
                if !Self::bridge_ours(&n) || !Self::dns_alive(&n) {
                    self.bridge_up(&mut n)?;
                    self.store.save(&n)?;
                }
            }
            return Ok(());
        }
        if eps.is_empty() {
            return Ok(());
        }
        let _ = netns::remove(&ns);
        self.create_netns(container_id)?;
        let _l = store::lock()?;
        let mut first = true;
        for (n, e) in eps {
            let mut n = self.find(&n.name)?;
            n.endpoints.remove(container_id);
            self.bridge_up(&mut n)?;
            let o = AttachOptions {
                ip: Some(e.ip),
                mac: Some(e.mac.clone()),
                aliases: e.aliases.clone(),
                ports: Vec::new(),
            };
            self.attach_link(
                &mut n,
                container_id,
                &e.container_name,
                &e.ifname,
                &ns,
                first,
                &o,
                e.ports.clone(),
            )?;
            first = false;
        }
        Ok(())
    }

    /// Renames a container in every network's DNS.
    pub fn rename(&self, container_id: &str, new_name: &str) -> Result<()> {
        let _l = store::lock()?;
        for mut n in self.store.all()? {
            if let Some(e) = n.endpoints.get_mut(container_id) {
                e.container_name = new_name.to_string();
                self.store.save(&n)?;
            }
        }
        Ok(())
    }

    /// Runs the network's DNS server (`berth __dns NETWORK`): binds the gateway's port 53,
    /// prints the server's pid, detaches and serves until killed.
    pub fn serve_dns(&self, network: &str) -> Result<()> {
        let n = self.store.load(network)?;
        let (udp, tcp) =
            dns::bind(n.gateway).map_err(io_err("bind DNS on", format!("{}:53", n.gateway)))?;
        // SAFETY: fork in this single-threaded process (no thread has been started yet).
        match unsafe { libc::fork() } {
            -1 => Err(io_err("fork", "dns")(std::io::Error::last_os_error())),
            0 => {
                // SAFETY: setsid has no arguments; detaches from the caller's session.
                unsafe { libc::setsid() };
                if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
                    use std::os::fd::AsRawFd;
                    for fd in 0..3 {
                        // SAFETY: dup2 onto the standard descriptors of this process.
                        unsafe { libc::dup2(null.as_raw_fd(), fd) };
                    }
                }
                dns::serve(self.store.clone(), n.name, n.gateway, udp, tcp)
            }
            pid => {
                println!("{pid}");
                Ok(())
            }
        }
    }
}
