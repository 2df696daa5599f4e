//! The streams: container attach (a hijacked connection: stdcopy frames without a TTY, raw
//! bytes with one), logs, resize, exec create/start/resize/inspect, and events.

use std::sync::Arc;

use hyper::Method;

use crate::State;
use crate::http::{Request, Result};

/// `/exec/{id}/...`.
pub(crate) async fn exec_route(_state: &Arc<State>, req: Request) -> Result {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        (&Method::POST, ["exec", _id, "start"]) => Err(crate::router::no_route(&req)),
        (&Method::POST, ["exec", _id, "resize"]) => Err(crate::router::no_route(&req)),
        (&Method::GET, ["exec", _id, "json"]) => Err(crate::router::no_route(&req)),
        _ => Err(crate::router::no_route(&req)),
    }
}

pub(crate) async fn attach(_state: &Arc<State>, req: Request, _id: &str) -> Result {
    Err(crate::router::no_route(&req))
}

pub(crate) async fn logs(_state: &Arc<State>, req: Request, _id: &str) -> Result {
    Err(crate::router::no_route(&req))
}

pub(crate) async fn resize(_state: &Arc<State>, req: Request, _id: &str) -> Result {
    Err(crate::router::no_route(&req))
}

pub(crate) async fn exec_create(_state: &Arc<State>, req: Request, _id: &str) -> Result {
    Err(crate::router::no_route(&req))
}

/// `GET /events`.
pub(crate) async fn events(_state: &Arc<State>, req: Request) -> Result {
    Err(crate::router::no_route(&req))
}
