//! The `/containers` endpoints: create, list, inspect and the lifecycle verbs (this module),
//! the streams (attach, logs, resize, exec create: `streams`) and the data a container holds
//! (top, stats, changes, export, archive: `container_data`).

use std::sync::Arc;

use hyper::Method;

use crate::State;
use crate::http::{Request, Result};

pub(crate) async fn route(state: &Arc<State>, req: Request) -> Result {
    let segs: Vec<String> = req.segments.clone();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        // Streams.
        (&Method::POST, ["containers", id, "attach"]) => {
            crate::streams::attach(state, req, id).await
        }
        (&Method::GET, ["containers", id, "attach", "ws"]) => {
            crate::streams::attach(state, req, id).await
        }
        (&Method::GET, ["containers", id, "logs"]) => crate::streams::logs(state, req, id).await,
        (&Method::POST, ["containers", id, "resize"]) => {
            crate::streams::resize(state, req, id).await
        }
        (&Method::POST, ["containers", id, "exec"]) => {
            crate::streams::exec_create(state, req, id).await
        }
        // What a container holds.
        (&Method::GET, ["containers", id, "top"]) => {
            crate::container_data::top(state, req, id).await
        }
        (&Method::GET, ["containers", id, "stats"]) => {
            crate::container_data::stats(state, req, id).await
        }
        (&Method::GET, ["containers", id, "changes"]) => {
            crate::container_data::changes(state, req, id).await
        }
        (&Method::GET, ["containers", id, "export"]) => {
            crate::container_data::export(state, req, id).await
        }
        (&Method::GET | &Method::HEAD | &Method::PUT, ["containers", id, "archive"]) => {
            crate::container_data::archive(state, req, id).await
        }
        _ => Err(crate::router::no_route(&req)),
    }
}
