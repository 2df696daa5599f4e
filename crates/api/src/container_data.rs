//! What a container holds, read through the API: `top`, `stats`, `changes`, `export`,
//! `archive` (GET, HEAD, PUT).

use std::sync::Arc;

use crate::State;
use crate::http::{Request, Result};

pub(crate) async fn top(_state: &Arc<State>, req: Request, _id: &str) -> Result {
    Err(crate::router::no_route(&req))
}

pub(crate) async fn stats(_state: &Arc<State>, req: Request, _id: &str) -> Result {
    Err(crate::router::no_route(&req))
}

pub(crate) async fn changes(_state: &Arc<State>, req: Request, _id: &str) -> Result {
    Err(crate::router::no_route(&req))
}

pub(crate) async fn export(_state: &Arc<State>, req: Request, _id: &str) -> Result {
    Err(crate::router::no_route(&req))
}

pub(crate) async fn archive(_state: &Arc<State>, req: Request, _id: &str) -> Result {
    Err(crate::router::no_route(&req))
}

/// `GET /system/df`.
pub(crate) async fn system_df(_state: &Arc<State>, req: Request) -> Result {
    Err(crate::router::no_route(&req))
}
