//! The `containers` endpoints.

use std::sync::Arc;

use crate::State;
use crate::http::{Request, Result};

pub(crate) async fn route(_state: &Arc<State>, req: Request) -> Result {
    Err(crate::router::no_route(&req))
}
