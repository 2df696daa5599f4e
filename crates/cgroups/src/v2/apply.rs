//! Applying `linux.resources` on cgroup v2.

use oci_spec::runtime::LinuxResources;

use super::V2Manager;
use crate::{Error, Result};

/// Write every limit of `r` to the container's cgroup.
pub(crate) fn apply(_m: &V2Manager, _r: &LinuxResources) -> Result<()> {
    Err(Error::Unsupported("apply: not implemented yet".into()))
}
