//! The `images` endpoints.

use std::sync::Arc;

use crate::State;
use crate::http::{Request, Result};

pub(crate) async fn route(_state: &Arc<State>, req: Request) -> Result {
    Err(crate::router::no_route(&req))
}

/// `POST /auth`.
pub(crate) async fn auth(_state: &Arc<State>, req: Request) -> Result {
    Err(crate::router::no_route(&req))
}
