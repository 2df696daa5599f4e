//! Usage counters on cgroup v1.

use super::V1Manager;
use crate::{Error, Result, Stats};

/// Collect the counters of every mounted controller.
pub(crate) fn stats(_m: &V1Manager) -> Result<Stats> {
    Err(Error::Unsupported("stats: not implemented yet".into()))
}

/// OOM kills from `memory.oom_control`.
pub(crate) fn oom_kills(_m: &V1Manager) -> Result<u64> {
    Err(Error::Unsupported("oom_kills: not implemented yet".into()))
}
