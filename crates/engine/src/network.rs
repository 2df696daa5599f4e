//! Containers on networks: the network mode of `create` (`bridge` by default, `none`, `host`,
//! `container:NAME` or a user network), published ports, the `/etc/hosts` and
//! `/etc/resolv.conf` a container gets, the namespace path in config.json, and the network
//! verbs that need containers (`connect`, `disconnect`, `port`). The bridges, addresses,
//! rules and DNS servers are berth-network's.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;

use berth_network::{AttachOptions, DEFAULT_NETWORK, Network, Networks, PortMapping, PortRequest};
use oci_spec::runtime::LinuxNamespaceType;
use serde_json::{Value, json};

use crate::Engine;
use crate::error::{Error, Result, invalid};
use crate::options::ContainerCreate;
use crate::record::{Config, HostConfig, NetworkingConfig, Record};

/// Whether the mode puts the container on one of berth's networks (own namespace, veth).
pub(crate) fn on_network(mode: &str) -> bool {
    !matches!(mode, "none" | "host") && !mode.starts_with("container:")
}

/// Splits a port key (`80/tcp`, `53/udp`, `80` for tcp) into the port and the protocol.
fn port_key(k: &str) -> Result<(u16, String)> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    let port = p
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| invalid("-p/--publish", format!("invalid port {k:?}")))?;
    if !matches!(proto, "tcp" | "udp") {
        return Err(invalid(
            "-p/--publish",
            format!("invalid protocol {proto:?} in {k:?} (tcp or udp)"),
        ));
    }
    Ok((port, proto.to_string()))
}

/// Fills the network part of the record from the request and the image config: the network
/// mode (resolved: `default` is `bridge`, `container:NAME` becomes the container's ID, a user
/// network its name), the exposed and published ports, the endpoint (`--ip`, `--mac-address`,
/// `--network-alias`) keyed by the network, DNS and extra hosts, all checked.
pub(crate) fn fill_record(
    engine: &Engine,
    req: &ContainerCreate,
    image_config: &Value,
    c: &mut Config,
    hc: &mut HostConfig,
    net: &mut NetworkingConfig,
) -> Result<()> {
    let asked = req.host_config.network_mode.as_str();
    hc.network_mode = match asked {
        "" | "default" | DEFAULT_NETWORK => DEFAULT_NETWORK.into(),
        "none" => "none".into(),
        "host" => "host".into(),
        m if m.starts_with("container:") => {
            let other = engine.lookup(&m["container:".len()..])?;
            format!("container:{other}")
        }
        n => engine.networks.get(n)?.name,
    };
    let exposed = image_config["ExposedPorts"]
        .as_object()
        .into_iter()
        .flat_map(|e| e.keys())
        .chain(req.config.exposed_ports.keys());
    for k in exposed {
        let (p, proto) = port_key(k)?;
        c.exposed_ports.insert(format!("{p}/{proto}"), json!({}));
    }
    let attached = on_network(&hc.network_mode);
    if !attached
        && (!hc.port_bindings.is_empty() || hc.publish_all_ports)
        && hc.network_mode != "host"
    {
        return Err(invalid(
            "-p/--publish",
            format!(
                "conflicting options: port publishing and the {} network mode",
                hc.network_mode
            ),
        ));
    }
    let mut bindings = BTreeMap::new();
    for (k, list) in &hc.port_bindings {
        let (p, proto) = port_key(k)?;
        let key = format!("{p}/{proto}");
        for b in list {
            if !b.host_ip.is_empty() && b.host_ip.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(
                    "-p/--publish",
                    format!("{:?} is not an IP address", b.host_ip),
                ));
            }
            if !b.host_port.is_empty() && b.host_port.parse::<u16>().is_err() {
                return Err(invalid(
                    "-p/--publish",
                    format!("invalid host port {:?}", b.host_port),
                ));
            }
        }
        c.exposed_ports
            .entry(key.clone())
            .or_insert_with(|| json!({}));
        bindings.insert(key, list.clone());
    }
    hc.port_bindings = bindings;

    let eps = &req.networking.endpoints_config;
    let names = [asked, hc.network_mode.as_str(), "default"];
    if let Some(other) = eps.keys().find(|k| !names.contains(&k.as_str())) {
        return Err(invalid(
            "--network",
            format!(
                "NetworkingConfig has an endpoint for network {other:?}, but the container's \
                 network is {:?}: berth attaches one network at create (connect more with \
                 `berth network connect`)",
                hc.network_mode
            ),
        ));
    }
    if eps.len() > 1 {
        return Err(invalid(
            "--network",
            "NetworkingConfig has more than one endpoint: berth attaches one network at create \
             (connect more with `berth network connect`)",
        ));
    }
    let mut ep = eps.values().next().cloned().unwrap_or_default();
    if ep.mac_address.is_empty() {
        ep.mac_address = req.config.mac_address.clone();
    }
    let ip = ep
        .ipam_config
        .as_ref()
        .map(|i| i.ipv4_address.clone())
        .unwrap_or_default();
    if !attached && (!ip.is_empty() || !ep.mac_address.is_empty() || !ep.aliases.is_empty()) {
        return Err(invalid(
            "--network",
            "--ip, --mac-address and --network-alias need a bridge or user network",
        ));
    }
    if !ip.is_empty() {
        ip.parse::<Ipv4Addr>()
            .map_err(|_| invalid("--ip", format!("{ip:?} is not an IPv4 address")))?;
    }
    if !ep.mac_address.is_empty() {
        let ok = ep.mac_address.split(':').count() == 6
            && ep
                .mac_address
                .split(':')
                .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok());
        if !ok {
            return Err(invalid(
                "--mac-address",
                format!("{:?} is not a MAC address", ep.mac_address),
            ));
        }
    }
    if !ep.aliases.is_empty() && hc.network_mode == DEFAULT_NETWORK {
        return Err(invalid(
            "--network-alias",
            "network-scoped aliases are only supported for user-defined networks",
        ));
    }
    if attached {
        net.endpoints_config.insert(hc.network_mode.clone(), ep);
    }
    for d in &hc.dns {
        d.parse::<std::net::IpAddr>()
            .map_err(|_| invalid("--dns", format!("{d:?} is not an IP address")))?;
    }
    for h in &hc.extra_hosts {
        let (name, ip) = h
            .split_once([':', '='])
            .ok_or_else(|| invalid("--add-host", format!("{h:?}: expected NAME:IP")))?;
        if name.is_empty() || (ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err()) {
            return Err(invalid("--add-host", format!("{h:?}: expected NAME:IP")));
        }
    }
    Ok(())
}

/// The record's ports as requests for berth-network.
fn port_requests(r: &Record) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    let split = port_key;
    for (k, bindings) in &r.host_config.port_bindings {
        let (container_port, proto) = split(k)?;
        for b in bindings {
            out.push(PortRequest {
                host_ip: b.host_ip.parse().ok(),
                host_port: b.host_port.parse().unwrap_or(0),
                container_port,
                proto: proto.clone(),
            });
        }
    }
    if r.host_config.publish_all_ports {
        for k in r.config.exposed_ports.keys() {
            if !r.host_config.port_bindings.contains_key(k) {
                let (container_port, proto) = split(k)?;
                out.push(PortRequest {
                    host_ip: None,
                    host_port: 0,
                    container_port,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

fn host_resolv_lines(prefix: &str) -> Vec<String> {
    fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

impl Engine {
    /// The networks of this root.
    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    /// At create: the container's namespace and its attachment to its network.
    pub(crate) fn setup_network(&self, r: &Record) -> Result<()> {
        if !on_network(&r.host_config.network_mode) {
            return Ok(());
        }
        self.networks.create_netns(&r.id)?;
        let ep = r
            .networking
            .endpoint(&r.host_config.network_mode)
            .cloned()
            .unwrap_or_default();
        let ip = ep.ipam_config.map(|i| i.ipv4_address).unwrap_or_default();
        let mac = Some(ep.mac_address)
            .filter(|m| !m.is_empty())
            .or_else(|| Some(r.config.mac_address.clone()).filter(|m| !m.is_empty()));
        let o = AttachOptions {
            ip: ip.parse().ok(),
            mac,
            aliases: ep.aliases,
            ports: port_requests(r)?,
        };
        self.networks
            .attach(&r.id, &r.name, &r.host_config.network_mode, &o)?;
        if let Ok(n) = self.networks.get(&r.host_config.network_mode) {
            self.network_event("connect", &n, Some(&r.id));
        }
        Ok(())
    }

    /// At rm (and when create fails): every attachment and the namespace go.
    pub(crate) fn release_network(&self, id: &str) -> Result<()> {
        let attached = self.networks.endpoints(id).unwrap_or_default();
        self.networks.release(id)?;
        for (n, _) in attached {
            self.network_event("disconnect", &n, Some(id));
        }
        Ok(())
    }

    /// Records a network event with Docker's attributes (`name`, `type`, and `container`
    /// for connect and disconnect).
    fn network_event(&self, action: &str, n: &Network, container: Option<&str>) {
        let mut a = crate::events::attrs([("name", n.name.clone()), ("type", n.driver.clone())]);
        if let Some(c) = container {
            a.insert("container".into(), c.to_string());
        }
        self.events
            .append(&crate::events::Event::new("network", action, &n.id, a));
    }

    /// `network create`.
    pub fn network_create(&self, o: &berth_network::CreateOptions) -> Result<Network> {
        let n = self.networks.create(o)?;
        self.network_event("create", &n, None);
        Ok(n)
    }

    /// `network prune`: removes the networks no container uses; returns their names.
    pub fn network_prune(&self) -> Result<Vec<String>> {
        let before = self.networks.list()?;
        let gone = self.networks.prune()?;
        for n in before.iter().filter(|n| gone.contains(&n.name)) {
            self.network_event("destroy", n, None);
        }
        Ok(gone)
    }

    /// `/etc/hosts` and `/etc/resolv.conf` of a container that is not in the host's network.
    pub(crate) fn etc_network_files(&self, r: &Record) -> Result<(String, String)> {
        let mode = &r.host_config.network_mode;
        if let Some(other) = mode.strip_prefix("container:") {
            let dir = self.containers.dir(other);
            return Ok((
                fs::read_to_string(dir.join("hosts")).unwrap_or_default(),
                fs::read_to_string(dir.join("resolv.conf")).unwrap_or_default(),
            ));
        }
        let eps = self.networks.endpoints(&r.id)?;
        let first = eps.iter().min_by(|a, b| a.1.ifname.cmp(&b.1.ifname));
        let mut hosts = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n",
        );
        match first {
            Some((_, e)) => hosts += &format!("{}\t{}\n", e.ip, r.config.hostname),
            None => hosts += &format!("127.0.1.1\t{}\n", r.config.hostname),
        }
        for h in &r.host_config.extra_hosts {
            let (name, ip) = h.split_once([':', '=']).unwrap_or((h, ""));
            let ip = if ip == "host-gateway" {
                first
                    .map(|(n, _)| n.gateway.to_string())
                    .unwrap_or_else(|| "127.0.0.1".into())
            } else {
                ip.to_string()
            };
            hosts += &format!("{ip}\t{name}\n");
        }
        let mut resolv = String::new();
        let servers: Vec<String> = if !r.host_config.dns.is_empty() {
            r.host_config.dns.clone()
        } else if let Some((n, _)) = first {
            vec![n.gateway.to_string()]
        } else {
            host_resolv_lines("nameserver")
                .iter()
                .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
                .collect()
        };
        if !r.host_config.dns_search.is_empty() {
            resolv += &format!("search {}\n", r.host_config.dns_search.join(" "));
        } else {
            for l in host_resolv_lines("search")
                .into_iter()
                .chain(host_resolv_lines("domain"))
            {
                resolv += &format!("{l}\n");
            }
        }
        for s in servers {
            resolv += &format!("nameserver {s}\n");
        }
        for l in host_resolv_lines("options") {
            resolv += &format!("{l}\n");
        }
        Ok((hosts, resolv))
    }

    /// Points config.json's network namespace at the container's own (made again after a
    /// reboot) or the one it shares.
    pub(crate) fn set_netns(&self, r: &Record, spec: &mut oci_spec::runtime::Spec) -> Result<()> {
        let mut mode = r.host_config.network_mode.clone();
        let mut owner = r.id.clone();
        for _ in 0..8 {
            let Some(other) = mode.strip_prefix("container:") else {
                break;
            };
            let o = self.containers.record(other).map_err(|_| {
                invalid(
                    "--network",
                    format!("container {other} of {mode} does not exist"),
                )
            })?;
            owner = o.id;
            mode = o.host_config.network_mode;
        }
        let path = match mode.as_str() {
            "host" => {
                crate::spec::set_namespace(spec, LinuxNamespaceType::Network, None, false);
                return Ok(());
            }
            "none" if owner == r.id => return Ok(()),
            "none" => {
                let s = self.state(&owner)?;
                if s.pid <= 0 {
                    return Err(invalid(
                        "--network",
                        format!(
                            "container {owner} whose network namespace is shared is not running"
                        ),
                    ));
                }
                format!("/proc/{}/ns/net", s.pid)
            }
            _ => {
                self.networks.ensure(&owner)?;
                self.networks.netns_path(&owner).display().to_string()
            }
        };
        crate::spec::set_namespace(spec, LinuxNamespaceType::Network, Some(&path), true);
        Ok(())
    }

    /// The container's published ports (`port`, `ps`).
    pub fn ports(&self, id: &str) -> Result<Vec<PortMapping>> {
        Ok(self
            .networks
            .endpoints(id)?
            .into_iter()
            .flat_map(|(_, e)| e.ports)
            .collect())
    }

    /// Docker's `NetworkSettings` for `inspect`.
    pub(crate) fn network_settings(&self, r: &Record) -> Value {
        let eps = self.networks.endpoints(&r.id).unwrap_or_default();
        let mut ports: BTreeMap<String, Value> = r
            .config
            .exposed_ports
            .keys()
            .map(|k| (k.clone(), Value::Null))
            .collect();
        let mut networks = serde_json::Map::new();
        for (n, e) in &eps {
            for p in &e.ports {
                let k = format!("{}/{}", p.container_port, p.proto);
                let b = json!({"HostIp": p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
                               "HostPort": p.host_port.to_string()});
                match ports.get_mut(&k) {
                    Some(Value::Array(a)) => a.push(b),
                    _ => {
                        ports.insert(k, json!([b]));
                    }
                }
            }
            networks.insert(
                n.name.clone(),
                json!({
                    "NetworkID": n.id,
                    "EndpointID": e.veth,
                    "Gateway": n.gateway.to_string(),
                    "IPAddress": e.ip.to_string(),
                    "IPPrefixLen": n.subnet.prefix,
                    "GlobalIPv6Address": e.ip6,
                    "MacAddress": e.mac,
                    "Aliases": e.aliases,
                    "DNSNames": e.dns_names().collect::<Vec<_>>(),
                }),
            );
        }
        if eps.is_empty() {
            networks.insert(r.host_config.network_mode.clone(), json!({}));
        }
        let first = eps.iter().min_by(|a, b| a.1.ifname.cmp(&b.1.ifname));
        json!({
            "SandboxKey": if eps.is_empty() { String::new() } else {
                self.networks.netns_path(&r.id).display().to_string() },
            "Ports": ports,
            "IPAddress": first.map(|(_, e)| e.ip.to_string()).unwrap_or_default(),
            "IPPrefixLen": first.map(|(n, _)| n.subnet.prefix).unwrap_or(0),
            "Gateway": first.map(|(n, _)| n.gateway.to_string()).unwrap_or_default(),
            "MacAddress": first.map(|(_, e)| e.mac.clone()).unwrap_or_default(),
            "Networks": networks,
        })
    }

    /// `network connect [--alias A] [--ip IP] NETWORK CONTAINER`.
    pub fn network_connect(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
        ip: Option<&str>,
    ) -> Result<()> {
        let id = self.lookup(container)?;
        let r = self.record(&id)?;
        if !on_network(&r.host_config.network_mode) {
            return Err(invalid(
                "network connect",
                format!(
                    "container {} is in the {} network mode",
                    r.name, r.host_config.network_mode
                ),
            ));
        }
        let ip = match ip {
            Some(s) => Some(
                s.parse()
                    .map_err(|_| invalid("--ip", format!("{s:?} is not an IPv4 address")))?,
            ),
            None => None,
        };
        let o = AttachOptions {
            ip,
            mac: None,
            aliases: aliases.to_vec(),
            ports: Vec::new(),
        };
        self.networks.attach(&id, &r.name, network, &o)?;
        if let Ok(n) = self.networks.get(network) {
            self.network_event("connect", &n, Some(&id));
        }
        Ok(())
    }

    /// `network disconnect NETWORK CONTAINER`.
    pub fn network_disconnect(&self, network: &str, container: &str) -> Result<()> {
        let id = self.lookup(container)?;
        let n = self.networks.get(network)?;
        self.networks.detach(&id, network)?;
        self.network_event("disconnect", &n, Some(&id));
        Ok(())
    }

    /// `network rm`: refused while containers (even stopped ones) are attached.
    pub fn network_remove(&self, network: &str) -> Result<String> {
        let n = self.networks.get(network)?;
        let gone = self.networks.remove(network)?;
        self.network_event("destroy", &n, None);
        Ok(gone)
    }

    /// `berth __dns NETWORK`: the network's DNS server.
    pub fn serve_dns(&self, network: &str) -> Result<()> {
        self.networks.serve_dns(network).map_err(Error::from)
    }
}
