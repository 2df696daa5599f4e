//! `--output`: a build's result written out of the store: its root filesystem as a directory
//! (`type=local`) or a tar (`type=tar`), or the image as an OCI / `docker save` archive
//! (`type=oci`, `type=docker`: one tar that is both, as Docker 25+ writes).

use std::io::Write;
use std::path::Path;

use berth_engine::Engine;
use berth_image::{Digest, Image, Reference};

use crate::error::{BuildError, Result};

/// Where `--output` goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// `type=local,dest=DIR` (or `-o DIR`): the files.
    Local(std::path::PathBuf),
    /// `type=tar,dest=FILE` (`-` or no dest: the caller's writer): the files as a tar.
    Tar(Option<std::path::PathBuf>),
    /// `type=oci,dest=FILE`: the image as an OCI layout tar (named `name` when given).
    Oci(Option<std::path::PathBuf>, Option<String>),
    /// `type=docker,dest=FILE`: the same archive, which `docker load` reads.
    Docker(Option<std::path::PathBuf>, Option<String>),
}

impl Output {
    /// Parses `--output`: `DIR`, `-`, or `type=T[,dest=D][,name=N]`.
    pub fn parse(spec: &str) -> Result<Output> {
        if spec == "-" {
            return Ok(Output::Tar(None));
        }
        if !spec.contains('=') {
            return Ok(Output::Local(spec.into()));
        }
        let (mut kind, mut dest, mut name) = (None, None, None);
        for part in spec.split(',') {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            match k {
                "type" => kind = Some(v.to_string()),
                "dest" => dest = Some(v.to_string()),
                "name" => name = Some(v.to_string()),
                // Accepted, with the only behaviour berth has (uncompressed OCI layers).
                "compression" | "oci-mediatypes" => {}
                _ => {
                    return Err(BuildError::Other(format!(
                        "invalid --output {spec:?}: unknown key {k:?} (type=, dest=, name=)"
                    )));
                }
            }
        }
        let path = |d: Option<String>| d.filter(|d| d != "-").map(std::path::PathBuf::from);
        match kind.as_deref() {
            Some("local") => match dest {
                Some(d) if d != "-" => Ok(Output::Local(d.into())),
                _ => Err(BuildError::Other(
                    "--output type=local needs dest=DIR".into(),
                )),
            },
            Some("tar") => Ok(Output::Tar(path(dest))),
            Some("oci") => Ok(Output::Oci(path(dest), name)),
            Some("docker") => Ok(Output::Docker(path(dest), name)),
            Some("image") | Some("registry") => Err(BuildError::Other(format!(
                "--output type={}: the image is always in berth's store; name it with -t (push with berth push)",
                kind.unwrap_or_default()
            ))),
            Some(other) => Err(BuildError::Other(format!(
                "invalid --output type {other:?}: use local, tar, oci or docker"
            ))),
            None => Err(BuildError::Other(format!(
                "invalid --output {spec:?}: type= is missing"
            ))),
        }
    }
}

/// Writes a built image (its manifest digest) as `output`; `stdout` is where an output with
/// no file goes.
pub fn export(
    engine: &Engine,
    manifest: &Digest,
    output: &Output,
    stdout: &mut dyn Write,
) -> Result<()> {
    match output {
        Output::Local(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| BuildError::Other(format!("create {}: {e}", dir.display())))?;
            // Through an unnamed temp file: the tar is read back once complete.
            let mut f =
                tempfile::tempfile().map_err(|e| BuildError::Other(format!("temp file: {e}")))?;
            rootfs_tar(engine, manifest, &mut f)?;
            std::io::Seek::rewind(&mut f)
                .map_err(|e| BuildError::Other(format!("temp file: {e}")))?;
            let mut ar = tar::Archive::new(f);
            ar.set_preserve_permissions(true);
            ar.set_preserve_mtime(true);
            ar.set_unpack_xattrs(false);
            ar.unpack(dir).map_err(|e| {
                BuildError::Other(format!("write the files into {}: {e}", dir.display()))
            })?;
            Ok(())
        }
        Output::Tar(dest) => {
            with_dest(dest.as_deref(), stdout, |w| rootfs_tar(engine, manifest, w))
        }
        Output::Oci(dest, name) | Output::Docker(dest, name) => {
            let image = Image::load(engine.images(), manifest)?;
            let reference = match name {
                Some(n) => Some(
                    Reference::parse(n)
                        .map_err(|e| BuildError::Other(format!("invalid name {n:?}: {e}")))?,
                ),
                None => None,
            };
            with_dest(dest.as_deref(), stdout, |w| {
                berth_image::archive::save_images(engine.images(), &[(image, reference)], w)?;
                Ok(())
            })
        }
    }
}

fn with_dest(
    dest: Option<&Path>,
    stdout: &mut dyn Write,
    f: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    match dest {
        None => f(stdout),
        Some(p) => {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| BuildError::Other(format!("temp file in {}: {e}", dir.display())))?;
            f(tmp.as_file_mut())?;
            tmp.persist(p)
                .map_err(|e| BuildError::Other(format!("write {}: {e}", p.display())))?;
            Ok(())
        }
    }
}

/// The image's files as a tar, through a container that is only created.
fn rootfs_tar(engine: &Engine, manifest: &Digest, w: &mut dyn Write) -> Result<()> {
    let id = crate::build::scratch_container(engine, manifest)?;
    let res = engine.export(&id, w);
    let _ = engine.remove(&id, true, true);
    Ok(res?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs() {
        assert_eq!(Output::parse("out").unwrap(), Output::Local("out".into()));
        assert_eq!(Output::parse("-").unwrap(), Output::Tar(None));
        assert_eq!(
            Output::parse("type=tar,dest=x.tar").unwrap(),
            Output::Tar(Some("x.tar".into()))
        );
        assert_eq!(
            Output::parse("type=oci,dest=o.tar,name=a/b:c").unwrap(),
            Output::Oci(Some("o.tar".into()), Some("a/b:c".into()))
        );
        assert_eq!(
            Output::parse("type=docker").unwrap(),
            Output::Docker(None, None)
        );
        for bad in ["type=local", "type=nope", "dest=x", "type=tar,colour=red"] {
            assert!(Output::parse(bad).is_err(), "{bad}");
        }
    }
}
