//! The `volumes` endpoints: list, create, inspect, delete, prune, over the engine's `local`
//! volumes (with `type`/`device`/`o` options for tmpfs and bind mounts). Cluster volumes
//! (`PUT /volumes/{name}`) are swarm's: 503 as on a Docker that is not a manager.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;

use crate::State;
use crate::http::{self, ApiError, Request, Result, blocking, json, json_response};
use crate::networks::null_default;

pub(crate) async fn route(state: &Arc<State>, mut req: Request) -> Result {
    let segs: Vec<String> = req.segments.clone();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        (&Method::GET, ["volumes"]) => list(state, &req).await,
        (&Method::POST, ["volumes", "create"]) => create(state, &mut req).await,
        (&Method::POST, ["volumes", "prune"]) => prune(state, &req).await,
        (&Method::GET, ["volumes", name]) => {
            let engine = state.engine.clone();
            let name = name.to_string();
            let v = blocking(move || Ok(engine.volume(&name)?)).await?;
            json(&v)
        }
        (&Method::PUT, ["volumes", _]) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This node is not a swarm manager: only cluster volumes can be updated, and berth \
             has no swarm",
        )),
        (&Method::DELETE, ["volumes", name]) => {
            let force = req.flag("force", false)?;
            let engine = state.engine.clone();
            let name = name.to_string();
            blocking(move || Ok(engine.volume_remove(&name, force)?)).await?;
            Ok(http::no_content())
        }
        _ => Err(crate::router::no_route(&req)),
    }
}

/// `GET /volumes` (`dangling`, `driver`, `label`, `name`): `{"Volumes": [...], "Warnings": []}`.
async fn list(state: &Arc<State>, req: &Request) -> Result {
    let filters = berth_engine::Filters::parse(&req.filters()?)?;
    let engine = state.engine.clone();
    let vols = blocking(move || Ok(engine.volume_list(&filters)?)).await?;
    json(&serde_json::json!({ "Volumes": vols, "Warnings": [] }))
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    #[serde(deserialize_with = "null_default")]
    name: String,
    #[serde(deserialize_with = "null_default")]
    driver: String,
    #[serde(deserialize_with = "null_default")]
    driver_opts: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    cluster_volume_spec: Option<serde_json::Value>,
}

/// `POST /volumes/create`: 201 with the volume (an existing one of that name as it is, as
/// Docker); no name makes an anonymous volume.
async fn create(state: &Arc<State>, req: &mut Request) -> Result {
    let b: CreateBody = req.json(true).await?;
    if b.cluster_volume_spec.is_some() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ClusterVolumeSpec: cluster volumes need a swarm, and berth has none",
        ));
    }
    let o = berth_engine::VolumeCreate {
        name: Some(b.name).filter(|n| !n.is_empty()),
        driver: Some(b.driver).filter(|d| !d.is_empty()),
        labels: b.labels,
        options: b.driver_opts,
    };
    let engine = state.engine.clone();
    let v = blocking(move || Ok(engine.volume_create(&o)?)).await?;
    Ok(json_response(StatusCode::CREATED, &v))
}

/// `POST /volumes/prune` (`all`, `label`, `label!`): `{"VolumesDeleted", "SpaceReclaimed"}`.
async fn prune(state: &Arc<State>, req: &Request) -> Result {
    let filters = berth_engine::Filters::parse(&req.filters()?)?;
    let engine = state.engine.clone();
    let r = blocking(move || Ok(engine.volume_prune(&filters)?)).await?;
    json(&serde_json::json!({
        "VolumesDeleted": r.removed,
        "SpaceReclaimed": r.reclaimed,
    }))
}
