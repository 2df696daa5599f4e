//! PLACEHOLDER until the copy module lands (helper-13).
#![allow(missing_docs)]
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CopyError(pub String);

#[derive(Clone, Debug, Default)]
pub struct CopySpec {
    pub sources: Vec<String>,
    pub dest: String,
    pub workdir: String,
    pub chown: Option<(u32, u32)>,
    pub chmod: Option<u32>,
    pub excludes: Vec<String>,
    pub parents: bool,
    pub add: bool,
}

pub fn parse_chmod(s: &str) -> Result<u32, CopyError> {
    u32::from_str_radix(s, 8).map_err(|_| CopyError(format!("invalid chmod {s}")))
}

pub fn sources_digest(
    _root: &Path,
    _spec: &CopySpec,
    _ignore: Option<&crate::ignore::Matcher>,
) -> Result<String, CopyError> {
    Err(CopyError("not yet".into()))
}

pub fn copy_into(
    _root: &Path,
    _rootfs: &Path,
    _spec: &CopySpec,
    _ignore: Option<&crate::ignore::Matcher>,
) -> Result<(), CopyError> {
    Err(CopyError("not yet".into()))
}
