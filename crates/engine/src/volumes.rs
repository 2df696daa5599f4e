//! `-v`, `--mount` and `--tmpfs` parsed into [`MountPoint`]s, and named volumes under
//! `ROOT/volumes/<name>/_data`, copied up from the image on first use as Docker does.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Result, invalid, io_err};
use crate::record::MountPoint;
use crate::rootpath::resolve_in_root;

/// The volumes directory of a root.
pub(crate) fn volume_dir(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name).join("_data")
}

/// Whether a volume name is one `create` made for an anonymous `-v /path` (64 hex digits, as
/// Docker's): those go with their container at `rm -v` and with `--rm` containers.
pub(crate) fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn valid_volume_name(n: &str) -> bool {
    crate::store::valid_name(n)
}

/// Parses one `-v` spec: `HOST:CTR[:OPTS]`, `NAME:CTR[:OPTS]` or `CTR` (anonymous volume).
pub(crate) fn parse_volume(root: &Path, spec: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(invalid("--volume", format!("invalid spec {spec:?}"))),
    };
    if !dst.starts_with('/') {
        return Err(invalid(
            "--volume",
            format!("{spec:?}: the container path must be absolute"),
        ));
    }
    let mut rw = true;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" | "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave"
            | "nocopy" => {}
            _ => {
                return Err(invalid(
                    "--volume",
                    format!("{spec:?}: unknown option {o:?}"),
                ));
            }
        }
    }
    if src.starts_with('/') {
        return Ok(MountPoint {
            kind: "bind".into(),
            name: String::new(),
            source: src.into(),
            destination: dst.into(),
            mode: opts.into(),
            rw,
        });
    }
    let name = if src.is_empty() {
        crate::util::random_hex(32)
    } else if valid_volume_name(src) {
        src.to_string()
    } else {
        return Err(invalid(
            "--volume",
            format!("{src:?} is not a valid volume name or absolute path"),
        ));
    };
    Ok(MountPoint {
        kind: "volume".into(),
        source: volume_dir(root, &name).display().to_string(),
        name,
        destination: dst.into(),
        mode: opts.into(),
        rw,
    })
}

/// Parses one `--mount type=...,source=...,target=...[,readonly][,tmpfs-size=...]`.
pub(crate) fn parse_mount(root: &Path, spec: &str) -> Result<MountPoint> {
    let mut kind = "volume".to_string();
    let (mut src, mut dst, mut rw, mut mode) = (String::new(), String::new(), true, Vec::new());
    for kv in spec.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "type" => kind = v.to_string(),
            "source" | "src" => src = v.to_string(),
            "target" | "destination" | "dst" => dst = v.to_string(),
            "readonly" | "ro" => rw = !matches!(v, "" | "true" | "1"),
            "tmpfs-size" => mode.push(format!("size={v}")),
            "tmpfs-mode" => mode.push(format!("mode={v}")),
            "bind-propagation" | "consistency" | "volume-nocopy" => {}
            _ => return Err(invalid("--mount", format!("{spec:?}: unknown key {k:?}"))),
        }
    }
    if !dst.starts_with('/') {
        return Err(invalid(
            "--mount",
            format!("{spec:?}: target must be absolute"),
        ));
    }
    match kind.as_str() {
        "bind" => {
            if !src.starts_with('/') {
                return Err(invalid(
                    "--mount",
                    format!("{spec:?}: bind source must be absolute"),
                ));
            }
            if !Path::new(&src).exists() {
                return Err(invalid(
                    "--mount",
                    format!("bind source path does not exist: {src}"),
                ));
            }
            Ok(MountPoint {
                kind,
                name: String::new(),
                source: src,
                destination: dst,
                mode: String::new(),
                rw,
            })
        }
        "volume" => {
            let mut mp = if src.is_empty() {
                parse_volume(root, &dst)?
            } else {
                parse_volume(root, &format!("{src}:{dst}"))?
            };
            mp.rw = rw;
            Ok(mp)
        }
        "tmpfs" => Ok(tmpfs_point(&dst, &mode.join(","))),
        _ => Err(invalid("--mount", format!("unknown type {kind:?}"))),
    }
}

/// A tmpfs mount point.
pub(crate) fn tmpfs_point(dst: &str, opts: &str) -> MountPoint {
    MountPoint {
        kind: "tmpfs".into(),
        name: String::new(),
        source: String::new(),
        destination: dst.into(),
        mode: opts.into(),
        rw: true,
    }
}

/// Prepares a mount's source: bind sources are created as directories if missing (as `-v`
/// does); a volume's directory is created and, when new, filled with what the image has at
/// the destination (copy-up).
pub(crate) fn prepare_source(mp: &MountPoint, rootfs: &Path) -> Result<()> {
    match mp.kind.as_str() {
        "bind" => {
            let p = Path::new(&mp.source);
            if !p.exists() {
                fs::create_dir_all(p).map_err(io_err("create", p))?;
            }
        }
        "volume" => {
            let data = Path::new(&mp.source);
            if !data.exists() {
                let vol = data.parent().expect("volume dir has a parent");
                let tmp = vol.join("_data.tmp");
                let _ = fs::remove_dir_all(&tmp);
                fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
                let from = resolve_in_root(rootfs, Path::new(&mp.destination))
                    .map_err(io_err("resolve", &mp.destination))?;
                if from.is_dir() {
                    copy_tree(&from, &tmp)?;
                    let m = fs::metadata(&from).map_err(io_err("stat", &from))?;
                    let _ = std::os::unix::fs::lchown(&tmp, Some(m.uid()), Some(m.gid()));
                    let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(m.mode()));
                }
                fs::rename(&tmp, data).map_err(io_err("rename", data))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Copies a directory tree (files, dirs, symlinks; owners and modes kept; no hard links).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for e in fs::read_dir(from).map_err(io_err("read", from))? {
        let e = e.map_err(io_err("read", from))?;
        let src = e.path();
        let dst = to.join(e.file_name());
        let m = fs::symlink_metadata(&src).map_err(io_err("stat", &src))?;
        let ft = m.file_type();
        if ft.is_dir() {
            fs::create_dir(&dst).map_err(io_err("create", &dst))?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            let t = fs::read_link(&src).map_err(io_err("readlink", &src))?;
            std::os::unix::fs::symlink(t, &dst).map_err(io_err("symlink", &dst))?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).map_err(io_err("copy", &src))?;
        } else {
            continue;
        }
        let _ = std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid()));
        if !ft.is_symlink() {
            let _ = fs::set_permissions(&dst, fs::Permissions::from_mode(m.mode()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let r = Path::new("/r");
        let b = parse_volume(r, "/h:/c:ro").unwrap();
        assert_eq!((b.kind.as_str(), b.rw), ("bind", false));
        let v = parse_volume(r, "data:/d").unwrap();
        assert_eq!(v.source, "/r/volumes/data/_data");
        let a = parse_volume(r, "/anon").unwrap();
        assert_eq!(a.kind, "volume");
        assert!(parse_volume(r, "x:rel").is_err());
        let t = parse_mount(r, "type=tmpfs,target=/t,tmpfs-size=1m").unwrap();
        assert_eq!(t.mode, "size=1m");
        let m = parse_mount(r, "type=volume,source=v1,target=/v,readonly").unwrap();
        assert_eq!((m.name.as_str(), m.rw), ("v1", false));
    }
}
