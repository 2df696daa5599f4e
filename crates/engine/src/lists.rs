//! `ps` as the Engine API's `GET /containers/json` (API v1.44): [`Engine::containers`] takes
//! `all`, `limit`, `size` and Docker's filters and returns [`ContainerSummary`]s, newest first,
//! for any front end to format (the CLI's table and templates) or return as they are (an API
//! server). [`Filters`] are the `--filter KEY=VALUE` lists (the API's `filters` map) that the
//! container and image lists check against the keys they accept.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_image::{Digest, Image, SnapshotMode, Snapshotter};
use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::error::{Result, invalid};
use crate::ops::ContainerInfo;
use crate::record::{HealthStatus, MountPoint, Status};
use crate::util::parse_rfc3339;

/// Docker's list filters: the API's `filters` (`{"status": ["running"], "label": ["a=b"]}`),
/// or the CLI's `--filter KEY=VALUE`s. Values of one key are alternatives, keys must all
/// match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses `KEY=VALUE` filters (a missing `=` is an error naming the filter; the keys are
    /// checked by the list that uses them).
    pub fn parse(filters: &[String]) -> Result<Self> {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in filters {
            let Some((k, v)) = f.split_once('=') else {
                return Err(invalid(
                    "--filter",
                    format!("bad format of filter {f:?} (expected name=value)"),
                ));
            };
            by.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(Filters(by))
    }

    /// An error naming the first key not in `accepted`.
    pub(crate) fn check(&self, accepted: &[&str]) -> Result<()> {
        match self.0.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(k) => Err(invalid(
                "--filter",
                format!("invalid filter {k:?} (filters: {})", accepted.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// The values of `key` (none when it is not given).
    pub(crate) fn values(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether `key` is given.
    pub(crate) fn has(&self, key: &str) -> bool {
        !self.values(key).is_empty()
    }

    /// True when `key` is not given or one of its values passes `f`.
    pub(crate) fn any(&self, key: &str, f: impl Fn(&str) -> bool) -> bool {
        !self.has(key) || self.values(key).iter().any(|v| f(v))
    }

    /// The error for a value that `key` does not take.
    pub(crate) fn bad_value(key: &str, value: &str, why: &str) -> crate::Error {
        invalid("--filter", format!("invalid filter '{key}={value}': {why}"))
    }
}

/// Whether `labels` has `KEY` or `KEY=VALUE` (Docker's `label` filter).
pub(crate) fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// What `ps` asks for (the query of `GET /containers/json`).
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Stopped containers too (implied by `limit` and by a `status` filter, as in Docker).
    pub all: bool,
    /// Only the newest N (of any state) that pass the filters: `-n N`, `-l` is 1.
    pub limit: Option<usize>,
    /// Fill `SizeRw` and `SizeRootFs` (walks each writable layer).
    pub size: bool,
    /// `ancestor`, `before`, `expose`, `exited`, `health`, `id`, `isolation`, `is-task`,
    /// `label`, `name`, `network`, `publish`, `since`, `status`, `volume`.
    pub filters: Filters,
}

/// One port of a [`ContainerSummary`]: published (`IP`, `PublicPort`) or only exposed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Port {
    /// The host address it is published on.
    #[serde(rename = "IP", default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The port in the container.
    pub private_port: u16,
    /// The host port, when published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    /// `tcp` or `udp`.
    #[serde(rename = "Type")]
    pub kind: String,
}

/// [`ContainerSummary::host_config`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    /// `--network` as given (`default`, `host`, a network's name...).
    pub network_mode: String,
}

/// [`ContainerSummary::network_settings`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryNetworkSettings {
    /// The networks by name (for `none`, `host` and `container:NAME`, that mode with an empty
    /// endpoint, as Docker).
    pub networks: BTreeMap<String, SummaryEndpoint>,
}

/// One network of a [`ContainerSummary`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SummaryEndpoint {
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint (the host end of the veth pair).
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The network's gateway.
    pub gateway: String,
    /// The container's address.
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    /// Its prefix length.
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    /// Its IPv6 address, if any.
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    /// Its MAC address.
    pub mac_address: String,
    /// `--network-alias` names.
    pub aliases: Vec<String>,
}

/// One container of `GET /containers/json` (API v1.44).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    /// 64 hex digits.
    pub id: String,
    /// `/name`.
    pub names: Vec<String>,
    /// The image as named at create.
    pub image: String,
    /// The image's ID (its config digest).
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// The command line, path and arguments joined by spaces.
    pub command: String,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Published ports, then exposed ones that are not published.
    pub ports: Vec<Port>,
    /// Bytes of the writable layer (with [`ListOptions::size`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    /// Bytes of the writable layer and the image (with [`ListOptions::size`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `created`, `running`, `paused`, `restarting`, `exited`, `removing`, `dead`.
    pub state: String,
    /// Docker's human status: `Up 2 minutes (healthy)`, `Exited (0) 3 seconds ago`, ...
    pub status: String,
    /// The network mode.
    pub host_config: SummaryHostConfig,
    /// The networks it is attached to.
    pub network_settings: SummaryNetworkSettings,
    /// Its mounts.
    pub mounts: Vec<MountPoint>,
}

/// Docker's `units.HumanDuration` (`About a minute`, `3 hours`, `2 weeks`), go-units'
/// thresholds exactly: minutes truncated, hours rounded, days, weeks and months counted from
/// the rounded hours, years from the truncated ones.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let minutes = s / 60;
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", s / 3600 / 24 / 365)
    }
}

/// Time since an RFC 3339 stamp (zero for none or a future one).
fn since(t: &str) -> Duration {
    parse_rfc3339(t)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// Seconds since the epoch of an RFC 3339 stamp (0 when it does not parse).
pub(crate) fn unix_time(t: &str) -> i64 {
    parse_rfc3339(t)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// Docker's `Status` column of a container.
pub(crate) fn status_text(i: &ContainerInfo) -> String {
    let s = &i.state;
    let health = match s.health.as_ref().map(|h| h.status) {
        Some(HealthStatus::Starting) => " (health: starting)",
        Some(HealthStatus::Healthy) => " (healthy)",
        Some(HealthStatus::Unhealthy) => " (unhealthy)",
        None => "",
    };
    match s.status {
        Status::Running => format!("Up {}{health}", human_duration(since(&s.started_at))),
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&s.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        Status::Exited if !s.finished_at.is_empty() => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        Status::Created | Status::Exited => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

/// The filters `ps` takes (Docker's `acceptedPsFilterTags`).
const PS_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

const STATUSES: &[&str] = &[
    "created",
    "running",
    "paused",
    "restarting",
    "exited",
    "removing",
    "dead",
];

/// `PORT[/PROTO]` or `START-END[/PROTO]` of a `publish`/`expose` filter.
fn port_filter(key: &str, v: &str) -> Result<(u16, u16, String)> {
    if v.contains(':') {
        return Err(Filters::bad_value(key, v, "a port filter has no ':'"));
    }
    let (ports, proto) = v.split_once('/').unwrap_or((v, "tcp"));
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| Filters::bad_value(key, v, "expected PORT[/PROTO] or START-END[/PROTO]"))
    };
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if a > b {
        return Err(Filters::bad_value(
            key,
            v,
            "the range ends before it starts",
        ));
    }
    Ok((a, b, proto.to_lowercase()))
}

/// The checked filters of one `ps`.
struct PsFilter {
    filters: Filters,
    exited: Vec<i32>,
    /// Image IDs that `ancestor` names (an unknown image matches no container, as Docker).
    ancestors: Vec<String>,
    /// Container IDs of `before` and `since`.
    before: Option<String>,
    since: Option<String>,
    publish: Vec<(u16, u16, String)>,
    expose: Vec<(u16, u16, String)>,
}

impl Engine {
    fn ps_filter(&self, filters: &Filters) -> Result<PsFilter> {
        filters.check(PS_FILTERS)?;
        let mut exited = Vec::new();
        for v in filters.values("exited") {
            exited.push(
                v.parse::<i32>()
                    .map_err(|_| Filters::bad_value("exited", v, "an exit code is a number"))?,
            );
        }
        for v in filters.values("status") {
            if !STATUSES.contains(&v.as_str()) {
                return Err(Filters::bad_value(
                    "status",
                    v,
                    &format!("statuses: {}", STATUSES.join(", ")),
                ));
            }
        }
        for v in filters.values("health") {
            if !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
                return Err(Filters::bad_value(
                    "health",
                    v,
                    "health: starting, healthy, unhealthy, none",
                ));
            }
        }
        for v in filters.values("is-task") {
            if !["true", "false"].contains(&v.as_str()) {
                return Err(Filters::bad_value("is-task", v, "true or false"));
            }
        }
        let ancestors = filters
            .values("ancestor")
            .iter()
            .filter_map(|v| self.images.find_image_loaded(v).ok())
            .map(|i| i.config_digest.to_string())
            .collect();
        // The last value wins, as in Docker; the container must exist.
        let container = |key: &str| -> Result<Option<String>> {
            filters
                .values(key)
                .last()
                .map(|v| self.lookup(v))
                .transpose()
        };
        let ports = |key: &str| -> Result<Vec<(u16, u16, String)>> {
            filters
                .values(key)
                .iter()
                .map(|v| port_filter(key, v))
                .collect()
        };
        Ok(PsFilter {
            exited,
            ancestors,
            before: container("before")?,
            since: container("since")?,
            publish: ports("publish")?,
            expose: ports("expose")?,
            filters: filters.clone(),
        })
    }

    /// `ps` (`GET /containers/json`): the containers that pass `opts`, newest first. Without
    /// `all` (or `limit`, or a `status` filter), only running, paused and restarting ones.
    /// `name` and `id` match a substring (Docker takes a regular expression: the same for
    /// plain text), `ancestor` an image by name or ID, `before`/`since` a container by name
    /// or ID, `network` a name or an ID prefix, `volume` a volume name, a source or a
    /// destination; an unknown filter, or a value a filter does not take, is an error naming
    /// it.
    pub fn containers(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>> {
        let f = self.ps_filter(&opts.filters)?;
        let all = opts.all || opts.limit.is_some_and(|n| n > 0) || f.filters.has("status");
        let list = self.list()?;
        // `before` hides everything up to that container (the list is newest first); `since`
        // ends the list there.
        let mut skipping = f.before.is_some();
        let mut image_ids: HashMap<String, String> = HashMap::new();
        let mut image_sizes: HashMap<String, u64> = HashMap::new();
        let mut out = Vec::new();
        for i in &list {
            if skipping {
                skipping = f.before.as_deref() != Some(i.record.id.as_str());
                continue;
            }
            if f.since.as_deref() == Some(i.record.id.as_str()) {
                break;
            }
            let active = i.state.status.is_running();
            if !active && !all {
                continue;
            }
            if opts.limit.is_some_and(|n| n > 0 && out.len() >= n) {
                break;
            }
            let image_id = image_ids
                .entry(i.record.image.clone())
                .or_insert_with(|| self.image_id(&i.record.image))
                .clone();
            let s = self.summary(i, image_id);
            if !f.matches(i, &s) {
                continue;
            }
            let mut s = s;
            if opts.size {
                let rw = self.rw_size(&i.record.id);
                let image = *image_sizes
                    .entry(i.record.image.clone())
                    .or_insert_with(|| self.manifest_size(&i.record.image));
                s.size_rw = Some(rw as i64);
                s.size_root_fs = Some((rw + image) as i64);
            }
            out.push(s);
        }
        Ok(out)
    }

    /// The image ID (config digest) of a container's image, from its manifest digest; the
    /// manifest digest itself if the image is gone.
    fn image_id(&self, manifest: &str) -> String {
        manifest
            .parse::<Digest>()
            .ok()
            .and_then(|d| Image::load(&self.images, &d).ok())
            .map(|i| i.config_digest.to_string())
            .unwrap_or_else(|| manifest.to_string())
    }

    /// The unpacked size of the image with this manifest digest (0 if it is gone).
    fn manifest_size(&self, manifest: &str) -> u64 {
        manifest
            .parse::<Digest>()
            .ok()
            .and_then(|d| Image::load(&self.images, &d).ok())
            .map_or(0, |i| {
                Snapshotter::new(&self.images, SnapshotMode::detect()).image_size(&i)
            })
    }

    fn summary(&self, i: &ContainerInfo, image_id: String) -> ContainerSummary {
        let r = &i.record;
        let mut ports: Vec<Port> = self
            .ports(&r.id)
            .unwrap_or_default()
            .iter()
            .map(|p| Port {
                ip: Some(
                    p.host_ip
                        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)
                        .to_string(),
                ),
                private_port: p.container_port,
                public_port: Some(p.host_port),
                kind: p.proto.to_string(),
            })
            .collect();
        for k in r.config.exposed_ports.keys() {
            let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            let Ok(p) = p.parse::<u16>() else { continue };
            if !ports.iter().any(|x| x.private_port == p && x.kind == proto) {
                ports.push(Port {
                    ip: None,
                    private_port: p,
                    public_port: None,
                    kind: proto.to_string(),
                });
            }
        }
        let mut networks = BTreeMap::new();
        for (n, e) in self.networks.endpoints(&r.id).unwrap_or_default() {
            networks.insert(
                n.name.clone(),
                SummaryEndpoint {
                    network_id: n.id.clone(),
                    endpoint_id: e.veth.clone(),
                    gateway: n.gateway.to_string(),
                    ip_address: e.ip.to_string(),
                    ip_prefix_len: n.subnet.prefix,
                    global_ipv6_address: e.ip6.clone(),
                    mac_address: e.mac.clone(),
                    aliases: e.aliases.clone(),
                },
            );
        }
        if networks.is_empty() {
            networks.insert(
                r.host_config.network_mode.clone(),
                SummaryEndpoint::default(),
            );
        }
        ContainerSummary {
            id: r.id.clone(),
            names: vec![format!("/{}", r.name)],
            image: r.config.image.clone(),
            image_id,
            command: std::iter::once(r.path.as_str())
                .chain(r.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            created: unix_time(&r.created),
            ports,
            size_rw: None,
            size_root_fs: None,
            labels: r.config.labels.clone(),
            state: i.state.status.as_str().to_string(),
            status: status_text(i),
            host_config: SummaryHostConfig {
                network_mode: r.host_config.network_mode.clone(),
            },
            network_settings: SummaryNetworkSettings { networks },
            mounts: r.mounts.clone(),
        }
    }
}

impl PsFilter {
    fn matches(&self, i: &ContainerInfo, s: &ContainerSummary) -> bool {
        let f = &self.filters;
        let r = &i.record;
        let st = &i.state;
        let in_ports = |want: &[(u16, u16, String)], port: &dyn Fn(&Port) -> Option<u16>| {
            s.ports.iter().any(|p| {
                port(p).is_some_and(|n| {
                    want.iter()
                        .any(|(a, b, proto)| (*a..=*b).contains(&n) && *proto == p.kind)
                })
            })
        };
        let ports_ok = (self.publish.is_empty() && self.expose.is_empty())
            || in_ports(&self.publish, &|p| p.public_port)
            || in_ports(&self.expose, &|p| Some(p.private_port));
        f.any("name", |v| r.name.contains(v.trim_start_matches('/')))
            && f.any("id", |v| r.id.contains(v))
            && f.any("is-task", |v| v == "false")
            && f.any("isolation", |v| v == "default")
            && self
                .filters
                .values("label")
                .iter()
                .all(|v| label_matches(&r.config.labels, v))
            && (self.exited.is_empty()
                || (st.status == Status::Exited
                    && !st.started_at.is_empty()
                    && self.exited.contains(&st.exit_code)))
            && f.any("status", |v| st.status.as_str() == v)
            && f.any("health", |v| {
                st.health.as_ref().map_or("none", |h| h.status.as_str()) == v
            })
            && f.any("volume", |v| {
                r.mounts
                    .iter()
                    .any(|m| m.destination == v || m.name == v || m.source == v)
            })
            && (!f.has("ancestor")
                || self.ancestors.contains(&s.image_id)
                || f.values("ancestor").contains(&r.config.image))
            && f.any("network", |v| {
                s.network_settings.networks.iter().any(|(name, e)| {
                    name == v || (!e.network_id.is_empty() && e.network_id.starts_with(v))
                })
            })
            && ports_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_check() {
        let f = Filters::parse(&[
            "status=running".into(),
            "label=a=b".into(),
            "status=paused".into(),
        ])
        .unwrap();
        assert_eq!(f.values("status"), ["running", "paused"]);
        assert_eq!(f.values("label"), ["a=b"]);
        assert!(f.check(PS_FILTERS).is_ok());
        let e = Filters::parse(&["colour=red".into()])
            .unwrap()
            .check(PS_FILTERS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid filter \"colour\""), "{e}");
        let e = Filters::parse(&["status".into()]).unwrap_err().to_string();
        assert!(e.contains("\"status\"") && e.contains("name=value"), "{e}");
        // The API's form.
        let f: Filters = serde_json::from_str(r#"{"dangling":["true"]}"#).unwrap();
        assert_eq!(f.values("dangling"), ["true"]);
    }

    #[test]
    fn port_filters() {
        assert_eq!(
            port_filter("publish", "80").unwrap(),
            (80, 80, "tcp".into())
        );
        assert_eq!(
            port_filter("expose", "8000-8010/udp").unwrap(),
            (8000, 8010, "udp".into())
        );
        let e = port_filter("publish", "0.0.0.0:80")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'publish=0.0.0.0:80'"), "{e}");
        assert!(port_filter("publish", "x").is_err());
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(Duration::from_secs(0)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
        // go-units' corner cases: hours round, weeks end at 60 days.
        assert_eq!(human_duration(Duration::from_secs(90 * 60)), "2 hours");
        assert_eq!(
            human_duration(Duration::from_secs(89 * 60)),
            "About an hour"
        );
        assert_eq!(human_duration(Duration::from_secs(59 * 86400)), "8 weeks");
        assert_eq!(human_duration(Duration::from_secs(61 * 86400)), "2 months");
        assert_eq!(human_duration(Duration::from_secs(800 * 86400)), "2 years");
    }
}
