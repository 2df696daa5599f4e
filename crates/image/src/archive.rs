//! Image archives: `docker save` tars (legacy, and Docker 25+ which are also OCI layouts),
//! OCI layout tars, and root filesystem tarballs imported as single-layer images.
//!
//! [`load`] unpacks the tar into the store's `tmp/` (regular files and directories only, names
//! checked; symlinks, which legacy `docker save` uses for repeated layers, are resolved by name
//! inside the archive), then imports it as an OCI layout when it has `oci-layout` and
//! `index.json`, else from Docker's `manifest.json`. [`save`] writes what Docker 25+ writes:
//! an OCI layout with a `manifest.json` beside, so `docker load`, `podman load` and
//! `skopeo copy docker-archive:` / `oci-archive:` all read it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result, io_err};
use crate::fsutil::{create_private_dir, temp_name};
use crate::image::{DOCKER_MANIFEST, Image, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Platform};
use crate::layout::{ImportedImage, import_unnamed};
use crate::reference::{DEFAULT_REGISTRY, Reference};
use crate::snapshot::{SnapshotMode, Snapshotter};
use crate::store::Lease;
use crate::store::Store;

/// Docker's image config media type.
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The short name Docker shows: `busybox:latest` for `docker.io/library/busybox:latest`.
pub fn familiar_name(r: &Reference) -> String {
    let repo = if r.registry() == DEFAULT_REGISTRY {
        r.repository()
            .strip_prefix("library/")
            .unwrap_or(r.repository())
            .to_string()
    } else {
        r.name()
    };
    let mut s = repo;
    if let Some(t) = r.tag() {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = r.digest() {
        s.push('@');
        s.push_str(&d.to_string());
    }
    s
}

/// Removes a temp directory when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Loads the images of an archive (a `docker save` tar or an OCI layout tar, possibly
/// gzip-compressed) into the store and names them as the archive does.
///
/// Their layers are unpacked (as a pull does) before any name is recorded: an image with a
/// corrupt or hostile layer fails the load with [`Error::Layer`] naming it, and such a load
/// names nothing and leaves nothing in `tmp/`; what it brought into the store is removed again
/// (or, when another writer is busy, left unreferenced for prune).
pub fn load(store: &Store, reader: impl Read, platform: &Platform) -> Result<Vec<ImportedImage>> {
    let lease = store.lease()?;
    let images = {
        let dir = TempDir(store.tmp_dir().join(temp_name("load")));
        create_private_dir(&dir.0)?;
        let links = extract(reader, &dir.0)?;
        if dir.0.join("oci-layout").is_file() && dir.0.join("index.json").is_file() {
            import_unnamed(store, &dir.0, None, platform)?
        } else if dir.0.join("manifest.json").is_file() {
            load_docker(store, &dir.0, &links)?
        } else {
            return Err(Error::Invalid {
                what: "archive".into(),
                reason: "neither an OCI layout (oci-layout, index.json) nor a docker save \
                         archive (manifest.json)"
                    .into(),
            });
        }
    };
    unpack_then_name(store, lease, &images)?;
    Ok(images)
}

/// Unpacks the layers of images just brought into the store, then records their names. If a
/// layer fails, nothing is named, and what only these images use is removed once `lease` (the
/// caller's only one) is dropped, unless another writer is busy (then prune removes it).
fn unpack_then_name(store: &Store, lease: Lease, images: &[ImportedImage]) -> Result<()> {
    let snaps = Snapshotter::new(store, SnapshotMode::detect());
    let res = (|| {
        let mut done: Vec<&Digest> = Vec::new();
        for i in images {
            if done.contains(&&i.manifest) {
                continue;
            }
            let mut image = Image::load(store, &i.manifest)?;
            image.name = i.name.clone();
            snaps.unpack(&image)?;
            done.push(&i.manifest);
        }
        for i in images {
            if let Some(name) = &i.name {
                store.tag(name, &i.manifest)?;
            }
        }
        Ok(())
    })();
    if res.is_err() {
        drop(lease);
        for i in images {
            // Still named (the same image was in the store before): nothing is removed.
            let _ = store.remove_image_if_idle(&i.manifest);
        }
    }
    res
}

/// Lexically normalises an archive path; `None` when it leaves the archive.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Extracts regular files and directories; returns symlinks as archive path -> target path.
fn extract(reader: impl Read, dir: &Path) -> Result<HashMap<PathBuf, PathBuf>> {
    let mut buffered = io::BufReader::new(reader);
    let head = io::BufRead::fill_buf(&mut buffered).map_err(io_err("read", "archive"))?;
    let input: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(input);
    let mut links = HashMap::new();
    let bad = |entry: &Path, reason: &str| Error::UnsafeEntry {
        entry: entry.display().to_string(),
        reason: reason.to_string(),
    };
    for entry in archive.entries().map_err(io_err("read", "archive"))? {
        let mut entry = entry.map_err(io_err("read", "archive"))?;
        let raw = entry
            .path()
            .map_err(io_err("read", "archive"))?
            .into_owned();
        let Some(rel) = clean(&raw) else {
            return Err(bad(&raw, "leaves the archive"));
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let dest = dir.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).map_err(io_err("create", &dest))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(io_err("create", parent))?;
                }
                // create_new: a second entry with the same name (or a symlinked parent made
                // by nobody, since we never create symlinks) cannot overwrite anything.
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&dest)
                    .map_err(io_err("create", &dest))?;
                io::copy(&mut entry, &mut f).map_err(io_err("write", &dest))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(io_err("read", "archive"))?
                    .ok_or_else(|| bad(&raw, "symlink without a target"))?;
                let joined = rel.parent().unwrap_or(Path::new("")).join(target);
                let target = clean(&joined).ok_or_else(|| bad(&raw, "link leaves the archive"))?;
                links.insert(rel, target);
            }
            // pax headers and the like carry nothing we use
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => {
                return Err(bad(
                    &raw,
                    "only files, directories and symlinks are allowed",
                ));
            }
        }
    }
    Ok(links)
}

/// Follows archive symlinks (by name, never on disk) to a regular file in `dir`.
fn archive_file(dir: &Path, links: &HashMap<PathBuf, PathBuf>, name: &str) -> Result<PathBuf> {
    let mut path = clean(Path::new(name)).ok_or_else(|| Error::UnsafeEntry {
        entry: name.to_string(),
        reason: "leaves the archive".into(),
    })?;
    for _ in 0..16 {
        match links.get(&path) {
            Some(t) => path = t.clone(),
            None => {
                let p = dir.join(&path);
                return if p.is_file() {
                    Ok(p)
                } else {
                    Err(Error::Invalid {
                        what: "archive".into(),
                        reason: format!("{name} is missing"),
                    })
                };
            }
        }
    }
    Err(Error::UnsafeEntry {
        entry: name.to_string(),
        reason: "too many levels of symlinks".into(),
    })
}

#[derive(serde::Deserialize, serde::Serialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn hash_file(path: &Path) -> Result<(Digest, u64)> {
    let f = File::open(path).map_err(io_err("open", path))?;
    HashingReader::new(f).finish().map_err(io_err("read", path))
}

fn layer_media_type(path: &Path) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let mut f = File::open(path).map_err(io_err("open", path))?;
    let n = f.read(&mut head).map_err(io_err("read", path))?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.docker.image.rootfs.diff.tar.zstd",
        _ => "application/vnd.docker.image.rootfs.diff.tar",
    })
}

fn load_docker(
    store: &Store,
    dir: &Path,
    links: &HashMap<PathBuf, PathBuf>,
) -> Result<Vec<ImportedImage>> {
    let path = dir.join("manifest.json");
    let data = fs::read(&path).map_err(io_err("read", &path))?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&data).map_err(|source| Error::Json {
            what: "manifest.json".into(),
            error: source,
        })?;
    let mut out = Vec::new();
    for e in entries {
        let config_path = archive_file(dir, links, &e.config)?;
        let (config_digest, config_size) = hash_file(&config_path)?;
        store.ingest(
            &config_digest,
            Some(config_size),
            File::open(&config_path).map_err(io_err("open", &config_path))?,
        )?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let p = archive_file(dir, links, l)?;
            let (digest, size) = hash_file(&p)?;
            let media_type = layer_media_type(&p)?;
            store.ingest(
                &digest,
                Some(size),
                File::open(&p).map_err(io_err("open", &p))?,
            )?;
            layers.push(serde_json::json!({
                "mediaType": media_type, "size": size, "digest": digest,
            }));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": config_size, "digest": config_digest},
            "layers": layers,
        });
        let manifest = store.ingest_bytes(&serde_json::to_vec(&manifest).expect("JSON value"))?;
        // Loading checks the config's diff IDs against the layer count.
        Image::load(store, &manifest)?;
        let tags = e.repo_tags.unwrap_or_default();
        if tags.is_empty() {
            out.push(ImportedImage {
                name: None,
                manifest: manifest.clone(),
            });
        }
        for t in tags {
            let name = Reference::parse(&t)?;
            out.push(ImportedImage {
                name: Some(name),
                manifest: manifest.clone(),
            });
        }
    }
    Ok(out)
}

/// Writes the named images as one tar that is both an OCI layout (`oci-layout`, `index.json`,
/// `blobs/sha256/`) and a `docker save` archive (`manifest.json` pointing into `blobs/`), as
/// Docker 25+ does.
pub fn save(store: &Store, names: &[Reference], writer: impl Write) -> Result<()> {
    let mut images = Vec::new();
    for name in names {
        images.push((Image::by_name(store, name)?, Some(name.clone())));
    }
    save_images(store, &images, writer)
}

/// [`save`] of images given as loaded, each with the name to record (none: an unnamed image,
/// as a build's result exported without a tag).
pub fn save_images(
    store: &Store,
    images: &[(Image, Option<Reference>)],
    writer: impl Write,
) -> Result<()> {
    let mut tar = tar::Builder::new(writer);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut written: Vec<Digest> = Vec::new();
    let mut index_entries = Vec::new();
    let mut docker: Vec<DockerEntry> = Vec::new();
    let werr = |e: io::Error| Error::Io {
        op: "write",
        path: PathBuf::from("archive"),
        error: e,
    };
    add_dir(&mut tar, "blobs/").map_err(werr)?;
    add_dir(&mut tar, "blobs/sha256/").map_err(werr)?;
    for (image, name) in images {
        for d in image.blobs() {
            if written.contains(&d) {
                continue;
            }
            let size = store.size(&d)?;
            let mut h = tar::Header::new_gnu();
            h.set_size(size);
            h.set_mode(0o444);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mtime(0);
            tar.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), store.open(&d)?)
                .map_err(werr)?;
            written.push(d);
        }
        index_entries.push(crate::layout::index_descriptor(
            store,
            image,
            name.as_ref(),
        )?);
        let tag = name
            .as_ref()
            .filter(|n| n.tag().is_some())
            .map(|n| familiar_name(&name_without_digest(n)));
        match docker
            .iter_mut()
            .find(|e| e.config == format!("blobs/sha256/{}", image.config_digest.hex()))
        {
            Some(e) => e.repo_tags.get_or_insert_with(Vec::new).extend(tag),
            None => docker.push(DockerEntry {
                config: format!("blobs/sha256/{}", image.config_digest.hex()),
                repo_tags: Some(tag.into_iter().collect()),
                layers: image
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect(),
            }),
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": index_entries,
    });
    add_file(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(werr)?;
    add_file(&mut tar, "index.json", &to_json(&index)).map_err(werr)?;
    add_file(&mut tar, "manifest.json", &to_json(&docker)).map_err(werr)?;
    tar.into_inner().map_err(werr)?.flush().map_err(werr)?;
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("plain data serialises")
}

fn name_without_digest(r: &Reference) -> Reference {
    match r.tag() {
        Some(t) => r.with_tag(t).unwrap_or_else(|_| r.clone()),
        None => r.clone(),
    }
}

fn add_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(0);
    tar.append_data(&mut h, path, io::empty())
}

fn add_file<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    tar.append_data(&mut h, path, data)
}

/// Now as RFC 3339 (`2024-05-01T12:00:00Z`), as image configs write `created`.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as RFC 3339 in UTC.
pub fn rfc3339(secs: u64) -> String {
    berth_sys::time::rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Imports a root filesystem tarball (plain, gzip or zstd) as a single-layer image for
/// `platform`, named `name`, and returns its manifest digest (`docker import`).
///
/// The layer is unpacked before the name is recorded, as [`load`] does: a tarball that is cut
/// short or holds hostile entries fails with [`Error::Layer`] and leaves no image.
pub fn import_rootfs(
    store: &Store,
    reader: impl Read,
    name: &Reference,
    platform: &Platform,
) -> Result<Digest> {
    let lease = store.lease()?;
    let tmp = TempDir(store.tmp_dir().join(temp_name("import")));
    create_private_dir(&tmp.0)?;
    let file = tmp.0.join("layer");
    let mut out = File::create(&file).map_err(io_err("create", &file))?;
    let mut hashing = HashingReader::new(reader);
    io::copy(&mut hashing, &mut out).map_err(io_err("write", &file))?;
    drop(out);
    let (digest, size) = hashing.finish_now();
    let media_type = match layer_media_type(&file)? {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        }
        _ => "application/vnd.oci.image.layer.v1.tar",
    };
    let raw = File::open(&file).map_err(io_err("open", &file))?;
    let plain: Box<dyn Read> = match media_type {
        "application/vnd.oci.image.layer.v1.tar+gzip" => {
            Box::new(flate2::read::GzDecoder::new(raw))
        }
        "application/vnd.oci.image.layer.v1.tar+zstd" => {
            Box::new(zstd::stream::read::Decoder::new(raw).map_err(io_err("read", &file))?)
        }
        _ => Box::new(raw),
    };
    // Walk the tar for its diff ID (the config needs it); a file that is not a tar fails here.
    let not_a_tar = |error| Error::Layer {
        layer: digest.clone(),
        image: familiar_name(name),
        error: Box::new(Error::Tar { error }),
    };
    let mut check = tar::Archive::new(HashingReader::new(plain));
    for e in check.entries().map_err(not_a_tar)? {
        e.map_err(not_a_tar)?;
    }
    let (diff_id, _) = check.into_inner().finish().map_err(not_a_tar)?;
    store.ingest(
        &digest,
        Some(size),
        File::open(&file).map_err(io_err("open", &file))?,
    )?;
    let created = now_rfc3339();
    let mut config = serde_json::json!({
        "created": created,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "berth import"}],
    });
    if let Some(v) = &platform.variant {
        config["variant"] = serde_json::json!(v);
    }
    let config_data = serde_json::to_vec(&config).expect("JSON value");
    let config_digest = store.ingest_bytes(&config_data)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": config_data.len(), "digest": config_digest},
        "layers": [{"mediaType": media_type, "size": size, "digest": digest}],
    });
    let manifest = store.ingest_bytes(&serde_json::to_vec(&manifest).expect("JSON value"))?;
    drop(tmp);
    let imported = ImportedImage {
        name: Some(name.clone()),
        manifest: manifest.clone(),
    };
    unpack_then_name(store, lease, &[imported])?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn familiar_names() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(familiar_name(&r), "busybox:latest");
        let r = Reference::parse("localhost:5000/a/b:1").unwrap();
        assert_eq!(familiar_name(&r), "localhost:5000/a/b:1");
    }

    #[test]
    fn cleans_paths() {
        assert_eq!(clean(Path::new("a/../b")), Some(PathBuf::from("b")));
        assert_eq!(clean(Path::new("../b")), None);
        assert_eq!(clean(Path::new("/etc")), None);
    }
}
