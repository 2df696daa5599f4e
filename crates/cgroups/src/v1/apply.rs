//! Applying `linux.resources` on cgroup v1.

use oci_spec::runtime::LinuxResources;

use super::V1Manager;
use crate::{Error, Result};

/// Write every limit of `r` to the v1 hierarchies (and the unified one where it owns a
/// controller).
pub(crate) fn apply(_m: &V1Manager, _r: &LinuxResources) -> Result<()> {
    Err(Error::Unsupported("apply: not implemented yet".into()))
}
