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
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Engine;
use crate::error::{Error, Result, invalid};
use crate::lists::{Filters, label_matches};
use crate::options::ContainerCreate;
use crate::record::{Config, HostConfig, NetworkingConfig, Record};
use crate::util::parse_rfc3339;

/// Docker's predefined networks: `bridge` (berth's default network), and the `host` and
/// `none` network modes, which no network file stands for and none may take as a name.
pub const PREDEFINED_NETWORKS: &[&str] = &[DEFAULT_NETWORK, "host", "none"];

/// Whether `name` is one of [`PREDEFINED_NETWORKS`].
pub fn is_predefined_network(name: &str) -> bool {
    PREDEFINED_NETWORKS.contains(&name)
}

/// A time as Docker's `until`/`since` filters take it: seconds since the epoch (with a
/// fraction), RFC 3339, or a Go duration before now (`10m`, `1h30m`).
pub(crate) fn parse_timestamp(s: &str) -> Option<std::time::SystemTime> {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = s.parse().ok()?;
        return Some(UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    if let Some(d) = crate::util::parse_duration(s) {
        return SystemTime::now().checked_sub(d);
    }
    parse_rfc3339(s)
}

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
        // Published ports go where the container has its way out, as Docker's gateway
        // endpoint: not on an internal network (compose creates a container on its first
        // network, which may be internal, and connects the others): a later connect to a
        // network that is not internal publishes them there.
        let internal = self
            .networks
            .get(&r.host_config.network_mode)
            .is_ok_and(|n| n.internal);
        let o = AttachOptions {
            ip: ip.parse().ok(),
            mac,
            aliases: ep.aliases,
            ports: if internal {
                Vec::new()
            } else {
                port_requests(r)?
            },
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

    /// `network prune [--filter ...]` (`POST /networks/prune`): removes the user networks no
    /// container uses, of those that pass Docker's prune filters (`label=K[=V]`,
    /// `label!=K[=V]`, `until=TIMESTAMP`); returns their names.
    pub fn network_prune(&self, filters: &Filters) -> Result<Vec<String>> {
        filters.check(&["label", "label!", "until"])?;
        let until = match filters.values("until").last() {
            Some(u) => Some(parse_timestamp(u).ok_or_else(|| {
                Filters::bad_value("until", u, "a timestamp or a duration expected")
            })?),
            None => None,
        };
        let mut gone = Vec::new();
        for n in self.networks.list()? {
            if n.is_default() || !n.endpoints.is_empty() {
                continue;
            }
            if !filters
                .values("label")
                .iter()
                .all(|l| label_matches(&n.labels, l))
                || filters
                    .values("label!")
                    .iter()
                    .any(|l| label_matches(&n.labels, l))
            {
                continue;
            }
            if let Some(u) = until
                && parse_rfc3339(&n.created).is_none_or(|c| c >= u)
            {
                continue;
            }
            match self.networks.remove(&n.name) {
                Ok(_) => {
                    self.network_event("destroy", &n, None);
                    gone.push(n.name);
                }
                // Taken by a container since, or removed by someone else: not ours to prune.
                Err(
                    berth_network::Error::InUse { .. } | berth_network::Error::NoSuchNetwork(_),
                ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(gone)
    }

    /// `network ls [--filter ...]` (`GET /networks`): every network as `network inspect`
    /// shows it, by name, that passes Docker's filters: `driver`, `id` and `name` (part of
    /// it), `label` (`K` or `K=V`), `scope` (`local`), `type` (`builtin`: the predefined
    /// `bridge`; `custom`: the others), `dangling` (`true`: user networks without containers;
    /// `false`: the predefined one and networks with containers).
    pub fn network_list(&self, filters: &Filters) -> Result<Vec<NetworkInspect>> {
        filters.check(&["dangling", "driver", "id", "label", "name", "scope", "type"])?;
        let dangling = match filters.values("dangling") {
            [] => None,
            [v] => Some(match v.as_str() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => {
                    return Err(Filters::bad_value(
                        "dangling",
                        v,
                        "must be \"true\" (or \"1\"), or \"false\" (or \"0\")",
                    ));
                }
            }),
            _ => {
                return Err(invalid(
                    "--filter",
                    "got more than one value for filter key \"dangling\"",
                ));
            }
        };
        for t in filters.values("type") {
            if !matches!(t.as_str(), "builtin" | "custom") {
                return Err(Filters::bad_value("type", t, "builtin or custom"));
            }
        }
        let mut out = Vec::new();
        for n in self.networks.list()? {
            let builtin = is_predefined_network(&n.name);
            let keep = filters.any("driver", |d| d == n.driver)
                && filters.any("name", |v| n.name.contains(v))
                && filters.any("id", |v| n.id.contains(v))
                && filters
                    .values("label")
                    .iter()
                    .all(|l| label_matches(&n.labels, l))
                && filters.any("scope", |v| v == "local")
                && filters.any("type", |t| (t == "builtin") == builtin)
                && dangling.is_none_or(|d| d == (!builtin && n.endpoints.is_empty()));
            if keep {
                out.push(NetworkInspect::of(&n));
            }
        }
        Ok(out)
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
        // Ports not published yet (the container's first network is internal) are published
        // on the first network it joins that is not.
        let target_internal = self.networks.get(network).is_ok_and(|n| n.internal);
        let published = self
            .networks
            .endpoints(&id)
            .unwrap_or_default()
            .iter()
            .any(|(_, e)| !e.ports.is_empty());
        let ports = if target_internal || published {
            Vec::new()
        } else {
            port_requests(&r)?
        };
        let o = AttachOptions {
            ip,
            mac: None,
            aliases: aliases.to_vec(),
            ports,
        };
        self.networks.attach(&id, &r.name, network, &o)?;
        if let Ok(n) = self.networks.get(network) {
            self.network_event("connect", &n, Some(&id));
        }
        Ok(())
    }

    /// `network disconnect [-f] NETWORK CONTAINER`; with `force`, an endpoint whose
    /// container is gone goes too (named by the container's ID, ID prefix or name as the
    /// network recorded it).
    pub fn network_disconnect(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let n = self.networks.get(network)?;
        let id = match self.lookup(container) {
            Ok(id) => id,
            Err(Error::NoSuchContainer(c)) if force => n
                .endpoints
                .values()
                .find(|e| {
                    e.container_id == container
                        || e.container_name == container
                        || (container.len() >= 3 && e.container_id.starts_with(container))
                })
                .map(|e| e.container_id.clone())
                .ok_or(Error::NoSuchContainer(c))?,
            Err(e) => return Err(e),
        };
        self.networks.detach(&id, &n.name)?;
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

/// `GET /networks/{id}`'s answer (API v1.44), as `network inspect` prints it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInspect {
    /// Its name.
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// `local`.
    pub scope: String,
    /// `bridge`.
    pub driver: String,
    /// Whether it has an IPv6 subnet too.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// Its address management.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// No outbound route.
    pub internal: bool,
    /// Always false (no swarm).
    pub attachable: bool,
    /// Always false (no swarm).
    pub ingress: bool,
    /// The network it takes its configuration from (none).
    pub config_from: ConfigReference,
    /// Always false.
    pub config_only: bool,
    /// Attached containers by ID.
    pub containers: BTreeMap<String, NetworkContainer>,
    /// Driver options as given at create (the default network: its bridge,
    /// `com.docker.network.bridge.name`).
    pub options: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// [`NetworkInspect::ipam`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    /// `default`.
    pub driver: String,
    /// None.
    pub options: BTreeMap<String, String>,
    /// One entry per subnet (IPv4, then IPv6 with `--ipv6`).
    pub config: Vec<IpamConfig>,
}

/// One subnet of an [`Ipam`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    /// CIDR.
    pub subnet: String,
    /// The gateway address.
    pub gateway: String,
    /// Where addresses are given out from (`--ip-range`), when not the whole subnet.
    #[serde(default, rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
}

/// [`NetworkInspect::config_from`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    /// Empty.
    pub network: String,
}

/// One attached container in [`NetworkInspect::containers`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkContainer {
    /// The container's name.
    pub name: String,
    /// The endpoint (the host end of the veth pair).
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The container's MAC address on this network.
    pub mac_address: String,
    /// `ADDRESS/PREFIX`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// `ADDRESS/64`, or empty.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

impl NetworkInspect {
    /// A network's inspect object.
    pub fn of(n: &Network) -> Self {
        let containers = n
            .endpoints
            .iter()
            .map(|(id, ep)| {
                let c = NetworkContainer {
                    name: ep.container_name.clone(),
                    endpoint_id: ep.veth.clone(),
                    mac_address: ep.mac.clone(),
                    ipv4_address: format!("{}/{}", ep.ip, n.subnet.prefix),
                    ipv6_address: if ep.ip6.is_empty() {
                        String::new()
                    } else {
                        format!("{}/64", ep.ip6)
                    },
                };
                (id.clone(), c)
            })
            .collect();
        let mut config = vec![IpamConfig {
            subnet: n.subnet.to_string(),
            gateway: n.gateway.to_string(),
            ip_range: n.ip_range.map(|r| r.to_string()).unwrap_or_default(),
        }];
        if n.ipv6 {
            config.push(IpamConfig {
                subnet: n.subnet6.clone(),
                gateway: n.subnet6.replace("::/64", "::1"),
                ip_range: String::new(),
            });
        }
        // The options as given; the default network's bridge as Docker shows docker0's
        // (a user network's bridge name is not an option: clients such as docker-compose
        // compare the options with the ones they asked for).
        let mut options = n.options.clone();
        if n.is_default() {
            options.insert(
                "com.docker.network.bridge.name".to_string(),
                n.bridge.clone(),
            );
        }
        NetworkInspect {
            name: n.name.clone(),
            id: n.id.clone(),
            created: n.created.clone(),
            scope: "local".into(),
            driver: n.driver.clone(),
            enable_ipv6: n.ipv6,
            ipam: Ipam {
                driver: "default".into(),
                options: BTreeMap::new(),
                config,
            },
            internal: n.internal,
            attachable: false,
            ingress: false,
            config_from: ConfigReference::default(),
            config_only: false,
            containers,
            options,
            labels: n.labels.clone(),
        }
    }
}

impl Engine {
    /// `network inspect NAME` (name, ID or unique ID prefix as berth-network looks it up).
    pub fn network_inspect(&self, network: &str) -> Result<NetworkInspect> {
        Ok(NetworkInspect::of(&self.networks.get(network)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `network inspect` is the Engine API's object: Docker's field names, the containers by
    /// ID with their addresses in CIDR form, one IPAM entry per subnet.
    #[test]
    fn network_inspect_has_the_api_shape() {
        let n: Network = serde_json::from_value(json!({
            "name": "front", "id": "ab".repeat(32), "created": "2024-01-02T03:04:05Z",
            "driver": "bridge", "subnet": "10.89.7.0/24", "gateway": "10.89.7.1",
            "internal": true, "ipv6": true, "subnet6": "fd00:1:2:3::/64", "auto_subnet": false,
            "labels": {"team": "a"}, "bridge": "berth3",
            "endpoints": {"c1": {
                "container_id": "c1", "container_name": "web", "ifname": "eth0",
                "veth": "vbc1", "ip": "10.89.7.2", "ip6": "fd00:1:2:3::2",
                "mac": "02:42:0a:59:07:02", "netns": "/x"
            }}
        }))
        .unwrap();
        let v = serde_json::to_value(NetworkInspect::of(&n)).unwrap();
        assert_eq!(v["Name"], "front");
        assert_eq!(v["EnableIPv6"], true);
        assert_eq!(v["Internal"], true);
        assert_eq!(v["Scope"], "local");
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.89.7.0/24");
        assert_eq!(v["IPAM"]["Config"][1]["Gateway"], "fd00:1:2:3::1");
        assert_eq!(v["Containers"]["c1"]["Name"], "web");
        assert_eq!(v["Containers"]["c1"]["IPv4Address"], "10.89.7.2/24");
        assert_eq!(v["Containers"]["c1"]["IPv6Address"], "fd00:1:2:3::2/64");
        assert_eq!(v["Containers"]["c1"]["EndpointID"], "vbc1");
        assert_eq!(
            v["Options"],
            json!({}),
            "a user network's bridge is no option"
        );
        let mut d = n.clone();
        d.name = DEFAULT_NETWORK.into();
        let vd = serde_json::to_value(NetworkInspect::of(&d)).unwrap();
        assert_eq!(vd["Options"]["com.docker.network.bridge.name"], "berth3");
        assert_eq!(v["Labels"]["team"], "a");
        assert_eq!(v["ConfigFrom"]["Network"], "");
        let back: NetworkInspect = serde_json::from_value(v).unwrap();
        assert_eq!(back, NetworkInspect::of(&n));
    }
}
