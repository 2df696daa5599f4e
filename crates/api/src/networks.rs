//! The `networks` endpoints: list, inspect, create, connect, disconnect, delete, prune, over
//! the engine's bridge networks (berth-network). The predefined networks are Docker's names:
//! `bridge` (berth's default network), `host` and `none` (network modes without a network
//! file), none of which may be created or removed.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::{Deserialize, Deserializer};

use crate::State;
use crate::http::{self, ApiError, Request, Result, blocking, json, json_response};

pub(crate) async fn route(state: &Arc<State>, mut req: Request) -> Result {
    let segs: Vec<String> = req.segments.clone();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        (&Method::GET, ["networks"]) => list(state, &req).await,
        (&Method::POST, ["networks", "create"]) => create(state, &mut req).await,
        (&Method::POST, ["networks", "prune"]) => prune(state, &req).await,
        (&Method::GET, ["networks", id]) => inspect(state, &req, id).await,
        (&Method::DELETE, ["networks", id]) => remove(state, id).await,
        (&Method::POST, ["networks", id, "connect"]) => connect(state, &mut req, id).await,
        (&Method::POST, ["networks", id, "disconnect"]) => disconnect(state, &mut req, id).await,
        _ => Err(crate::router::no_route(&req)),
    }
}

/// A field that clients send as `null` as often as they leave it out (docker-py sends
/// `"Options": null`, `"IPAM": null`): null is the default.
pub(crate) fn null_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The engine's error for a network call, with Docker's status where it differs from the
/// generic mapping: a container already on the network is 403, as Docker's "endpoint
/// already exists"; a network with containers is 403 at removal, as Docker's "active
/// endpoints".
fn network_error(e: berth_engine::Error) -> ApiError {
    use berth_network::Error as N;
    let forbidden = match &e {
        berth_engine::Error::Network(N::InUse { .. }) => true,
        berth_engine::Error::Network(N::Invalid { msg, .. }) => msg.contains("already connected"),
        _ => false,
    };
    let mut err = ApiError::from(e);
    if forbidden {
        err.status = StatusCode::FORBIDDEN;
    }
    err
}

/// `GET /networks`: the networks without their containers (as Docker's list since 1.28).
async fn list(state: &Arc<State>, req: &Request) -> Result {
    let filters = berth_engine::Filters::parse(&req.filters()?)?;
    let engine = state.engine.clone();
    let mut nets = blocking(move || Ok(engine.network_list(&filters)?)).await?;
    for n in &mut nets {
        n.containers.clear();
    }
    json(&nets)
}

/// `GET /networks/{id}` (`scope` other than `local` finds nothing, as no swarm exists).
async fn inspect(state: &Arc<State>, req: &Request, id: &str) -> Result {
    if let Some(scope) = req
        .param("scope")
        .filter(|s| !s.is_empty() && *s != "local")
    {
        if !matches!(scope, "swarm" | "global") {
            return Err(ApiError::bad_request(format!("invalid scope {scope:?}")));
        }
        return Err(ApiError::not_found(format!("network {id} not found")));
    }
    let engine = state.engine.clone();
    let key = id.to_string();
    let n = blocking(move || Ok(engine.network_inspect(&key)?)).await?;
    json(&n)
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    #[serde(deserialize_with = "null_default")]
    driver: String,
    #[serde(deserialize_with = "null_default")]
    internal: bool,
    #[serde(deserialize_with = "null_default")]
    attachable: bool,
    #[serde(deserialize_with = "null_default")]
    ingress: bool,
    #[serde(rename = "IPAM", deserialize_with = "null_default")]
    ipam: IpamBody,
    #[serde(rename = "EnableIPv6", deserialize_with = "null_default")]
    enable_ipv6: bool,
    #[serde(deserialize_with = "null_default")]
    options: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    scope: String,
    #[serde(deserialize_with = "null_default")]
    config_only: bool,
    #[serde(deserialize_with = "null_default")]
    config_from: Option<serde_json::Value>,
    /// Deprecated (always on): accepted and ignored.
    #[serde(deserialize_with = "null_default")]
    #[allow(dead_code)]
    check_duplicate: bool,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct IpamBody {
    #[serde(deserialize_with = "null_default")]
    driver: String,
    #[serde(deserialize_with = "null_default")]
    config: Vec<IpamConfigBody>,
    #[serde(deserialize_with = "null_default")]
    options: BTreeMap<String, String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfigBody {
    #[serde(deserialize_with = "null_default")]
    subnet: String,
    #[serde(deserialize_with = "null_default")]
    gateway: String,
    #[serde(rename = "IPRange", deserialize_with = "null_default")]
    ip_range: String,
    #[serde(rename = "AuxiliaryAddresses", deserialize_with = "null_default")]
    aux_addresses: BTreeMap<String, String>,
}

/// The engine's options for a create body, and the warning for what berth does not apply;
/// what it cannot do at all is a 400 (403 for Docker's forbidden cases).
fn create_options(b: CreateBody) -> Result<(berth_engine::NetworkCreateOptions, String)> {
    if b.name.is_empty() {
        return Err(ApiError::bad_request("network name is required (Name)"));
    }
    if berth_engine::is_predefined_network(&b.name) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "operation is not permitted on predefined {} network ",
                b.name
            ),
        ));
    }
    match b.driver.as_str() {
        "" | "bridge" => {}
        "overlay" => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm \
                 join\" to connect this node to swarm and try again.",
            ));
        }
        d => {
            return Err(ApiError::not_found(format!(
                "plugin \"{d}\" not found: berth has the bridge network driver only"
            )));
        }
    }
    if !matches!(b.scope.as_str(), "" | "local") {
        return Err(ApiError::bad_request(format!(
            "Scope {:?}: berth's networks are local",
            b.scope
        )));
    }
    if b.ingress {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Ingress networks are swarm networks: berth has no swarm",
        ));
    }
    if b.config_only || b.config_from.is_some() {
        return Err(ApiError::bad_request(
            "ConfigOnly and ConfigFrom networks are not supported",
        ));
    }
    if !matches!(b.ipam.driver.as_str(), "" | "default") {
        return Err(ApiError::bad_request(format!(
            "IPAM driver {:?} is not supported: berth has the default IPAM driver only",
            b.ipam.driver
        )));
    }
    let mut o = berth_engine::NetworkCreateOptions {
        name: b.name,
        internal: b.internal,
        ipv6: b.enable_ipv6,
        labels: b.labels,
        ..Default::default()
    };
    for c in b.ipam.config {
        if !c.aux_addresses.is_empty() {
            return Err(ApiError::bad_request(
                "IPAM.Config.AuxiliaryAddresses is not supported",
            ));
        }
        let v6 = c.subnet.contains(':') || c.gateway.contains(':');
        if v6 {
            if o.subnet6.is_some() {
                return Err(ApiError::bad_request(
                    "IPAM.Config: berth's networks have one IPv6 subnet",
                ));
            }
            if c.subnet.is_empty() {
                return Err(ApiError::bad_request(
                    "IPAM.Config: an IPv6 Gateway needs its Subnet",
                ));
            }
            if !c.ip_range.is_empty() {
                return Err(ApiError::bad_request(
                    "IPAM.Config: an IPRange in an IPv6 subnet is not supported",
                ));
            }
            if !c.gateway.is_empty() {
                let want = c.subnet.replace("::/64", "::1");
                let ok = c.gateway.parse::<std::net::Ipv6Addr>().ok()
                    == want.parse::<std::net::Ipv6Addr>().ok();
                if !ok {
                    return Err(ApiError::bad_request(format!(
                        "IPAM.Config: the IPv6 gateway of {} is its ::1 on berth, not {}",
                        c.subnet, c.gateway
                    )));
                }
            }
            o.subnet6 = Some(c.subnet);
            o.ipv6 = true;
            continue;
        }
        if o.subnet.is_some() {
            return Err(ApiError::bad_request(
                "IPAM.Config: berth's networks have one IPv4 subnet",
            ));
        }
        if c.subnet.is_empty() {
            if !c.gateway.is_empty() || !c.ip_range.is_empty() {
                return Err(ApiError::bad_request(
                    "IPAM.Config: Gateway and IPRange need a Subnet",
                ));
            }
            continue;
        }
        o.subnet = Some(c.subnet);
        o.gateway = Some(c.gateway).filter(|g| !g.is_empty());
        o.ip_range = Some(c.ip_range).filter(|r| !r.is_empty());
    }
    let mut ignored: Vec<String> = b.options.keys().cloned().collect();
    o.options = b.options;
    ignored.extend(b.ipam.options.into_keys().map(|k| format!("IPAM {k}")));
    let warning = if ignored.is_empty() {
        String::new()
    } else {
        format!(
            "berth records but does not apply these network options: {}",
            ignored.join(", ")
        )
    };
    // Attachable is a swarm network's property: every berth network is attachable.
    let _ = b.attachable;
    Ok((o, warning))
}

/// `POST /networks/create`: 201 `{"Id", "Warning"}`; 409 when the name is taken.
async fn create(state: &Arc<State>, req: &mut Request) -> Result {
    let body: CreateBody = req.json(false).await?;
    let (o, warning) = create_options(body)?;
    let engine = state.engine.clone();
    let n = blocking(move || Ok(engine.network_create(&o)?)).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({"Id": n.id, "Warning": warning}),
    ))
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    #[serde(deserialize_with = "null_default")]
    container: String,
    #[serde(deserialize_with = "null_default")]
    endpoint_config: EndpointBody,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointBody {
    #[serde(rename = "IPAMConfig", deserialize_with = "null_default")]
    ipam_config: EndpointIpam,
    #[serde(deserialize_with = "null_default")]
    aliases: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    links: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    mac_address: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct EndpointIpam {
    #[serde(rename = "IPv4Address", deserialize_with = "null_default")]
    ipv4_address: String,
    #[serde(rename = "IPv6Address", deserialize_with = "null_default")]
    ipv6_address: String,
}

/// `POST /networks/{id}/connect`: also on a created container (its namespace exists from
/// create), as docker-compose connects its containers before it starts them; the aliases
/// answer in the network's DNS.
async fn connect(state: &Arc<State>, req: &mut Request, id: &str) -> Result {
    let b: ConnectBody = req.json(false).await?;
    if b.container.is_empty() {
        return Err(ApiError::bad_request("Container is required"));
    }
    let ep = b.endpoint_config;
    if !ep.ipam_config.ipv6_address.is_empty() {
        return Err(ApiError::bad_request(
            "EndpointConfig.IPAMConfig.IPv6Address is not supported: berth gives the address \
             of the IPv4 one in the network's IPv6 subnet",
        ));
    }
    if !ep.mac_address.is_empty() {
        return Err(ApiError::bad_request(
            "EndpointConfig.MacAddress is not supported by connect (set it at create)",
        ));
    }
    if !ep.links.is_empty() {
        tracing::warn!(network = id, container = %b.container, links = ?ep.links,
            "legacy links on a user network are not applied (names resolve by DNS)");
    }
    let engine = state.engine.clone();
    let network = id.to_string();
    let ip = Some(ep.ipam_config.ipv4_address).filter(|s| !s.is_empty());
    let aliases = ep.aliases;
    blocking(move || {
        engine
            .network_connect(&network, &b.container, &aliases, ip.as_deref())
            .map_err(network_error)
    })
    .await?;
    Ok(http::status(StatusCode::OK))
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct DisconnectBody {
    #[serde(deserialize_with = "null_default")]
    container: String,
    #[serde(deserialize_with = "null_default")]
    force: bool,
}

/// `POST /networks/{id}/disconnect`; with `Force`, an endpoint whose container is gone is
/// removed too (by the container's ID or name as the network recorded it).
async fn disconnect(state: &Arc<State>, req: &mut Request, id: &str) -> Result {
    let b: DisconnectBody = req.json(false).await?;
    if b.container.is_empty() {
        return Err(ApiError::bad_request("Container is required"));
    }
    let engine = state.engine.clone();
    let network = id.to_string();
    blocking(move || {
        engine
            .network_disconnect(&network, &b.container, b.force)
            .map_err(network_error)
    })
    .await?;
    Ok(http::status(StatusCode::OK))
}

/// `DELETE /networks/{id}`: 204; 403 for a predefined network or one with containers.
async fn remove(state: &Arc<State>, id: &str) -> Result {
    let predefined = |name: &str| format!("{name} is a pre-defined network and cannot be removed");
    if berth_engine::is_predefined_network(id) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, predefined(id)));
    }
    let engine = state.engine.clone();
    let key = id.to_string();
    blocking(move || {
        let n = engine.network_inspect(&key)?;
        if berth_engine::is_predefined_network(&n.name) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, predefined(&n.name)));
        }
        engine.network_remove(&n.name).map_err(network_error)
    })
    .await?;
    Ok(http::no_content())
}

/// `POST /networks/prune` (`label`, `label!`, `until`): `{"NetworksDeleted": [...]}`.
async fn prune(state: &Arc<State>, req: &Request) -> Result {
    let filters = berth_engine::Filters::parse(&req.filters()?)?;
    let engine = state.engine.clone();
    let gone = blocking(move || Ok(engine.network_prune(&filters)?)).await?;
    json(&serde_json::json!({ "NetworksDeleted": gone }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> CreateBody {
        http::parse_json(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn create_body_as_docker_py_sends_it() {
        // docker-py: nulls for what is not given.
        let b = body(serde_json::json!({
            "Name": "front", "Driver": null, "Options": null, "IPAM": null,
            "CheckDuplicate": null, "Labels": {"a": "b"}, "Internal": true,
        }));
        let (o, w) = create_options(b).unwrap();
        assert_eq!(o.name, "front");
        assert!(o.internal);
        assert_eq!(o.labels["a"], "b");
        assert!(o.subnet.is_none());
        assert_eq!(w, "");
    }

    #[test]
    fn create_body_ipam_and_refusals() {
        let b = body(serde_json::json!({
            "Name": "n", "Driver": "bridge", "Options": {"com.docker.network.driver.mtu": "1400"},
            "IPAM": {"Driver": "default", "Config": [
                {"Subnet": "10.89.240.0/24", "Gateway": "10.89.240.254", "IPRange": "10.89.240.128/25"},
                {"Subnet": "fd00:1:2:3::/64", "Gateway": "fd00:1:2:3::1"}
            ]},
        }));
        let (o, w) = create_options(b).unwrap();
        assert_eq!(o.subnet.as_deref(), Some("10.89.240.0/24"));
        assert_eq!(o.gateway.as_deref(), Some("10.89.240.254"));
        assert_eq!(o.ip_range.as_deref(), Some("10.89.240.128/25"));
        assert_eq!(o.subnet6.as_deref(), Some("fd00:1:2:3::/64"));
        assert!(o.ipv6);
        assert!(w.contains("com.docker.network.driver.mtu"), "{w}");

        let e = create_options(body(serde_json::json!({"Name": "host"}))).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = create_options(body(serde_json::json!({"Name": "x", "Driver": "macvlan"})))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = create_options(body(serde_json::json!({"Name": ""}))).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = create_options(body(serde_json::json!({"Name": "x", "IPAM": {"Config": [
            {"Subnet": "fd00:1:2:3::/64", "Gateway": "fd00:1:2:3::9"}]}})))
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        // A bad type names the field.
        let e = http::parse_json::<CreateBody>(br#"{"Name":"x","Internal":"yes"}"#).unwrap_err();
        assert!(e.message.contains("Internal"), "{}", e.message);
    }
}
