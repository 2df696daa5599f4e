//! Usage counters on cgroup v2.

use super::V2Manager;
use crate::{Error, Result, Stats};

/// Collect the counters of the enabled controllers.
pub(crate) fn stats(_m: &V2Manager) -> Result<Stats> {
    Err(Error::Unsupported("stats: not implemented yet".into()))
}

/// OOM kills from `memory.events`.
pub(crate) fn oom_kills(_m: &V2Manager) -> Result<u64> {
    Err(Error::Unsupported("oom_kills: not implemented yet".into()))
}
