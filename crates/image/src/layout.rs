//! OCI image layout import and export: a directory with `oci-layout`, `index.json` and
//! `blobs/sha256/<hex>`.
//!
//! Import walks `index.json` -> (image index: the manifest for the wanted platform) ->
//! manifest -> config and layers. Every blob is checked twice: first all of them are hashed in
//! place, so a layout with one bad blob is refused before anything enters the store, then each
//! is streamed into the store with [`Store::ingest`], which checks again.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, MediaType};

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result, io_err};
use crate::fsutil::sync_dir;
use crate::image::{Image, OCI_INDEX, Platform, is_index, is_manifest, parse_manifest};
use crate::reference::Reference;
use crate::store::Store;

/// The annotation an OCI layout uses to name a manifest (usually just a tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation with the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// An image brought in by [`import_layout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedImage {
    /// The name it was recorded under, if it had one (or was given one).
    pub name: Option<Reference>,
    /// Its manifest digest (the platform's manifest when the layout held an index).
    pub manifest: Digest,
}

struct Blob {
    digest: Digest,
    size: u64,
}

/// Imports the images of the OCI layout at `dir` into `store`.
///
/// Each manifest in `index.json` (or, for an image index, the one for `platform`) is imported
/// with its config and layers. The name recorded is `name` if given (then the layout must hold
/// exactly one image), else the `io.containerd.image.name` annotation, else
/// `org.opencontainers.image.ref.name` when it is a full reference; an image with none of these
/// is imported without a name (and [`Store::prune`] will remove it unless it is tagged).
///
/// A blob whose digest or size does not match its descriptor fails the import before anything
/// is written to the store. Layers are not unpacked here ([`crate::archive::load`] does that,
/// before it names anything).
pub fn import_layout(
    store: &Store,
    dir: &Path,
    name: Option<&Reference>,
    platform: &Platform,
) -> Result<Vec<ImportedImage>> {
    let _lease = store.lease()?;
    let images = import_unnamed(store, dir, name, platform)?;
    for image in &images {
        if let Some(name) = &image.name {
            store.tag(name, &image.manifest)?;
        }
    }
    Ok(images)
}

/// [`import_layout`] but for the names: they are returned, not recorded.
pub(crate) fn import_unnamed(
    store: &Store,
    dir: &Path,
    name: Option<&Reference>,
    platform: &Platform,
) -> Result<Vec<ImportedImage>> {
    let _lease = store.lease()?;
    check_layout_header(dir)?;
    let index_path = dir.join("index.json");
    let index: ImageIndex = read_json(
        &fs::read(&index_path).map_err(io_err("read", &index_path))?,
        "index.json",
    )?;

    // Pass 1: walk and verify everything, write nothing.
    let mut blobs: Vec<Blob> = Vec::new();
    let mut images = Vec::new();
    for desc in index.manifests() {
        let manifest = resolve_manifest(dir, desc, platform, &mut blobs)?;
        images.push(ImportedImage {
            name: name_of(desc)?,
            manifest,
        });
    }
    if let Some(name) = name {
        if images.len() != 1 {
            return Err(Error::Invalid {
                what: format!("layout {}", dir.display()),
                reason: format!(
                    "holds {} images; a given name needs exactly one",
                    images.len()
                ),
            });
        }
        images[0].name = Some(name.clone());
    }

    // Pass 2: stream into the store (checked again).
    for blob in &blobs {
        let path = blob_path(dir, &blob.digest);
        let file = File::open(&path).map_err(io_err("open", &path))?;
        store.ingest(&blob.digest, Some(blob.size), file)?;
    }
    for image in &images {
        Image::load(store, &image.manifest)?;
    }
    Ok(images)
}

fn check_layout_header(dir: &Path) -> Result<()> {
    let path = dir.join("oci-layout");
    let data = fs::read(&path).map_err(io_err("read", &path))?;
    let v: serde_json::Value = read_json(&data, "oci-layout")?;
    match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(_) => Ok(()),
        None => Err(Error::Invalid {
            what: path.display().to_string(),
            reason: "no imageLayoutVersion".into(),
        }),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(data: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(data).map_err(|source| Error::Json {
        what: what.to_string(),
        error: source,
    })
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

/// Hashes a layout blob in place against its descriptor, returning its content when `keep`.
fn verify_blob(
    dir: &Path,
    desc: &Descriptor,
    keep: bool,
    blobs: &mut Vec<Blob>,
) -> Result<(Digest, Vec<u8>)> {
    let digest = Digest::from_oci(desc.digest())?;
    let path = blob_path(dir, &digest);
    let file = File::open(&path).map_err(io_err("open", &path))?;
    let mut r = HashingReader::new(file.take(desc.size().saturating_add(1)));
    let mut data = Vec::new();
    if keep {
        r.read_to_end(&mut data).map_err(io_err("read", &path))?;
    }
    let (actual, size) = r.finish().map_err(io_err("read", &path))?;
    if size != desc.size() {
        return Err(Error::SizeMismatch {
            digest,
            expected: desc.size(),
            actual: size,
        });
    }
    if actual != digest {
        return Err(Error::DigestMismatch {
            expected: digest,
            actual,
        });
    }
    if !blobs.iter().any(|b| b.digest == digest) {
        blobs.push(Blob {
            digest: digest.clone(),
            size,
        });
    }
    Ok((digest, data))
}

/// Follows a descriptor from index.json to a manifest, verifying the manifest, its config and
/// layers, and returns the manifest digest.
fn resolve_manifest(
    dir: &Path,
    desc: &Descriptor,
    platform: &Platform,
    blobs: &mut Vec<Blob>,
) -> Result<Digest> {
    let media_type = desc.media_type().to_string();
    if is_index(&media_type) {
        let mut scratch = Vec::new();
        let (digest, data) = verify_blob(dir, desc, true, &mut scratch)?;
        let what = format!("image index {digest}");
        let index: ImageIndex = read_json(&data, &what)?;
        let chosen = platform.select(&index, &what)?;
        return resolve_manifest(dir, chosen, platform, blobs);
    }
    if !is_manifest(&media_type) {
        return Err(Error::UnsupportedMediaType {
            digest: Digest::from_oci(desc.digest())?,
            media_type,
        });
    }
    let (digest, data) = verify_blob(dir, desc, true, blobs)?;
    let (manifest, _) = parse_manifest(&data, &format!("manifest {digest}"))?;
    verify_blob(dir, manifest.config(), false, blobs)?;
    for layer in manifest.layers() {
        let media_type = layer.media_type().to_string();
        if !crate::image::is_layer(&media_type) {
            return Err(Error::UnsupportedMediaType {
                digest: Digest::from_oci(layer.digest())?,
                media_type,
            });
        }
        verify_blob(dir, layer, false, blobs)?;
    }
    Ok(digest)
}

fn name_of(desc: &Descriptor) -> Result<Option<Reference>> {
    let empty = HashMap::new();
    let ann = desc.annotations().as_ref().unwrap_or(&empty);
    if let Some(n) = ann.get(CONTAINERD_NAME) {
        return Reference::parse(n).map(Some);
    }
    match ann.get(REF_NAME) {
        // A bare tag ("latest") names no repository: it cannot be recorded on its own.
        Some(n) if n.contains(['/', ':', '@']) => Reference::parse(n).map(Some),
        _ => Ok(None),
    }
}

/// The `index.json` entry of an image saved under `name`: its manifest, annotated with the tag
/// (OCI's ref.name) and the full name (containerd's), as Docker and containerd write them.
pub(crate) fn index_descriptor(
    store: &Store,
    image: &Image,
    name: Option<&Reference>,
) -> Result<Descriptor> {
    let mut desc = Descriptor::new(
        MediaType::from(image.manifest_media_type.as_str()),
        store.size(&image.manifest_digest)?,
        image.manifest_digest.to_oci(),
    );
    if let Some(name) = name {
        let mut ann = HashMap::new();
        if let Some(tag) = name.tag() {
            ann.insert(REF_NAME.to_string(), tag.to_string());
        }
        ann.insert(CONTAINERD_NAME.to_string(), name.to_string());
        desc.set_annotations(Some(ann));
    }
    Ok(desc)
}

/// Writes the named images as an OCI layout into `dir` (created if missing; an existing
/// `index.json` is replaced). Each manifest's descriptor carries its tag in
/// `org.opencontainers.image.ref.name` (as skopeo and umoci expect) and the full name in
/// `io.containerd.image.name`.
pub fn export_layout(store: &Store, names: &[Reference], dir: &Path) -> Result<()> {
    let blobs_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs_dir).map_err(io_err("create", &blobs_dir))?;
    let mut descriptors = Vec::new();
    for name in names {
        let image = Image::by_name(store, name)?;
        for digest in image.blobs() {
            let dest = blobs_dir.join(digest.hex());
            if dest.exists() {
                continue;
            }
            let tmp = blobs_dir.join(format!(".{}.tmp", digest.hex()));
            let mut src = store.open(&digest)?;
            let mut out = File::create(&tmp).map_err(io_err("create", &tmp))?;
            io::copy(&mut src, &mut out).map_err(io_err("write", &tmp))?;
            out.sync_all().map_err(io_err("fsync", &tmp))?;
            fs::rename(&tmp, &dest).map_err(io_err("rename", &dest))?;
        }
        descriptors.push(index_descriptor(store, &image, Some(name))?);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": descriptors,
    });
    write_file(dir, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let data = serde_json::to_vec(&index).map_err(|source| Error::Json {
        what: "index.json".into(),
        error: source,
    })?;
    write_file(dir, "index.json", &data)?;
    sync_dir(dir)
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    Ok(berth_sys::write_atomic(&dir.join(name), data, 0o644)?)
}
