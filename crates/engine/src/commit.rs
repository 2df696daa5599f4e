//! `commit`: a container's changes as a new image. The overlay upper directory becomes a layer
//! tar with overlayfs whiteouts turned back into OCI ones (a 0/0 character device is
//! `.wh.<name>`, an opaque directory gets `.wh..wh..opq`), on top of the container's image,
//! with the container's Config as the new image config.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_image::{Digest, Image, Reference};
use serde_json::{Value, json};

use crate::Engine;
use crate::error::{Error, Result, io_err};
use crate::record::Status;
use crate::util::rfc3339;

/// Mount targets the runtime may leave empty in the upper dir; not part of an image.
const SKIP: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "sbin/docker-init",
];

fn is_opaque(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: lgetxattr reads into our buffer of the size given.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

fn empty_entry(b: &mut tar::Builder<Vec<u8>>, path: &Path) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, path, &[][..])
}

/// Top-level directories the runtime makes as mount points when an image lacks them.
const MOUNT_DIRS: &[&str] = &["proc", "sys", "dev", "etc"];

/// Whether `dir` (top-level `rel` in the upper dir) holds nothing but what the runtime made to
/// mount over: an empty `proc`, `sys`, `dev`, or an `etc` with only the empty mount targets.
fn only_mount_points(dir: &Path, rel: &Path) -> bool {
    if !MOUNT_DIRS.iter().any(|d| Path::new(d) == rel) || is_opaque(dir) {
        return false;
    }
    let Ok(rd) = fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().all(|e| {
        let r = rel.join(e.file_name());
        fs::symlink_metadata(e.path()).is_ok_and(|m| {
            m.file_type().is_file() && m.len() == 0 && SKIP.iter().any(|s| Path::new(s) == r)
        })
    })
}

/// Options for [`Engine::diff_layer`].
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// Clamp every entry's mtime to at most this (seconds since the epoch):
    /// `SOURCE_DATE_EPOCH` for reproducible layers.
    pub clamp_mtime: Option<u64>,
}

fn add_tree(
    b: &mut tar::Builder<Vec<u8>>,
    upper: &Path,
    rel: &Path,
    opts: &DiffOptions,
) -> std::io::Result<()> {
    let dir = upper.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let r = rel.join(&name);
        let p = e.path();
        let m = fs::symlink_metadata(&p)?;
        let ft = m.file_type();
        if SKIP.iter().any(|s| Path::new(s) == r) && ft.is_file() && m.len() == 0 {
            continue;
        }
        if ft.is_char_device() && m.rdev() == 0 {
            let mut wh = std::ffi::OsString::from(".wh.");
            wh.push(&name);
            empty_entry(b, &rel.join(wh))?;
            continue;
        }
        if ft.is_dir() {
            if rel.as_os_str().is_empty() && only_mount_points(&p, &r) {
                continue;
            }
            append(b, &p, &r, &m, opts)?;
            if is_opaque(&p) {
                empty_entry(b, &r.join(".wh..wh..opq"))?;
            }
            add_tree(b, upper, &r, opts)?;
        } else if ft.is_file() || ft.is_symlink() {
            append(b, &p, &r, &m, opts)?;
        }
    }
    Ok(())
}

/// One entry, with its metadata (mtime clamped when asked).
fn append(
    b: &mut tar::Builder<Vec<u8>>,
    p: &Path,
    r: &Path,
    m: &fs::Metadata,
    opts: &DiffOptions,
) -> std::io::Result<()> {
    match opts.clamp_mtime {
        Some(max) if m.mtime() < 0 || m.mtime() as u64 > max => {
            let mut h = tar::Header::new_gnu();
            h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
            h.set_mtime(max);
            if m.file_type().is_symlink() {
                let target = fs::read_link(p)?;
                b.append_link(&mut h, r, target)
            } else if m.is_dir() {
                h.set_size(0);
                b.append_data(&mut h, r, std::io::empty())
            } else {
                b.append_data(&mut h, r, fs::File::open(p)?)
            }
        }
        _ => b.append_path_with_name(p, r),
    }
}

fn upper_dir(mounts_json: &Path) -> Option<PathBuf> {
    let mounts: Vec<berth_image::Mount> =
        serde_json::from_slice(&fs::read(mounts_json).ok()?).ok()?;
    mounts.iter().find_map(|m| {
        m.options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir=").map(PathBuf::from))
    })
}

/// A plain directory tree (no overlay whiteouts in it) as an uncompressed OCI layer tar, its
/// entries as they are on disk: what `COPY --link` made on an empty root.
pub fn dir_layer(dir: &Path, opts: &DiffOptions) -> Result<Vec<u8>> {
    layer_tar(dir, opts)
}

/// The upper dir as an OCI layer tar.
fn layer_tar(upper: &Path, opts: &DiffOptions) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    add_tree(&mut b, upper, Path::new(""), opts)
        .and_then(|()| b.into_inner())
        .map_err(io_err("archive", upper))
}

impl Engine {
    /// The changes of a stopped (or created, never started) container to its image, as an
    /// uncompressed OCI layer tar (overlayfs whiteouts turned into OCI ones; what the runtime
    /// made only to mount over left out): what the builder commits after each step.
    pub fn diff_layer(&self, id: &str, opts: &DiffOptions) -> Result<Vec<u8>> {
        let upper = upper_dir(&self.containers.dir(id).join("snapshot.json")).ok_or_else(|| {
            Error::Other("a layer needs an overlay snapshot (this container's is a copy)".into())
        })?;
        layer_tar(&upper, opts)
    }

    /// Makes an image named `name` from the container's changes; returns the new image's ID
    /// (its config digest). A running container is paused meanwhile.
    pub fn commit(&self, id: &str, name: &str, author: &str, message: &str) -> Result<Digest> {
        let r = self.containers.record(id)?;
        let reference = Reference::parse(name)?;
        let image = Image::load(&self.images, &Digest::parse(&r.image)?)?;
        let upper = upper_dir(&self.containers.dir(id).join("snapshot.json")).ok_or_else(|| {
            Error::Other("commit needs an overlay snapshot (this container's is a copy)".into())
        })?;
        let _lease = self.images.lease()?;
        let running = self.state(id)?.status == Status::Running;
        if running {
            self.runtime.run("pause", &[id])?;
        }
        let res = layer_tar(&upper, &DiffOptions::default());
        if running {
            let _ = self.runtime.run("resume", &[id]);
        }
        let layer = res?;
        let diff = self.images.ingest_bytes(&layer)?;

        let mut config = serde_json::to_value(&image.config).map_err(|error| Error::Json {
            what: "image config".into(),
            error,
        })?;
        let now = rfc3339(SystemTime::now());
        config["created"] = json!(now);
        if !author.is_empty() {
            config["author"] = json!(author);
        }
        let c = &r.config;
        let cc = &mut config["config"];
        if !cc.is_object() {
            *cc = json!({});
        }
        cc["Env"] = json!(c.env);
        cc["Cmd"] = json!(c.cmd);
        cc["Entrypoint"] = match &c.entrypoint {
            Some(e) if !e.is_empty() => json!(e),
            _ => Value::Null,
        };
        cc["WorkingDir"] = json!(c.working_dir);
        cc["User"] = json!(c.user);
        cc["Labels"] = json!(c.labels);
        if let Some(ids) = config["rootfs"]["diff_ids"].as_array_mut() {
            ids.push(json!(diff.to_string()));
        }
        let entry = json!({"created": now, "created_by": format!("berth commit {}", r.name), "comment": message});
        match config["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => config["history"] = json!([entry]),
        }
        let config_bytes = serde_json::to_vec(&config).expect("config serialises");
        let config_digest = self.images.ingest_bytes(&config_bytes)?;

        let mut layers: Vec<Value> = image
            .layers
            .iter()
            .map(|l| json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size}))
            .collect();
        layers.push(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                           "digest": diff.to_string(), "size": layer.len()}),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": berth_image::OCI_MANIFEST,
            "config": {"mediaType": berth_image::OCI_CONFIG, "digest": config_digest.to_string(),
                       "size": config_bytes.len()},
            "layers": layers,
        });
        let manifest_digest = self
            .images
            .ingest_bytes(&serde_json::to_vec(&manifest).expect("manifest serialises"))?;
        self.images.tag(&reference, &manifest_digest)?;
        self.container_event(
            &r,
            "commit",
            &[
                ("comment", message.to_string()),
                ("imageID", config_digest.to_string()),
                ("imageRef", reference.to_string()),
            ],
        );
        Ok(config_digest)
    }
}
