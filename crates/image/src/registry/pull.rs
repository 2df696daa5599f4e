//! Pull: manifest (index -> platform manifest), then config and missing layers in parallel,
//! every byte verified by the store.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use oci_spec::image::ImageIndex;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Image, OCI_INDEX, OCI_MANIFEST, is_index, parse_manifest,
};
use crate::reference::Reference;
use crate::registry::client::{Body, Client, pull_scope};
use crate::registry::{Outcome, Progress, PullOptions, Transfer};
use crate::store::Store;

/// The largest manifest or index accepted.
const MAX_MANIFEST: u64 = 4 << 20;
/// Attempts per blob when the connection breaks mid-body (each request is retried on its own).
const BLOB_ATTEMPTS: u32 = 3;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// What [`pull`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// The name the image was recorded under in the store.
    pub name: Reference,
    /// The digest the reference points at in the registry (an index's, for multi-platform
    /// images): Docker's "Digest:" line.
    pub digest: Digest,
    /// The platform manifest's digest, which the store's name points at.
    pub manifest: Digest,
    /// Blobs downloaded (config and layers).
    pub fetched: usize,
    /// Blobs already in the store, not downloaded.
    pub skipped: usize,
    /// Bytes downloaded for blobs.
    pub bytes: u64,
}

/// Pulls an image into the store and names it `reference` (for a reference by digest of an
/// image index, the index is kept too and the name points at the platform's manifest).
/// Returns what it did.
///
/// Nothing is named until every blob is in the store and the image loads; a failure leaves
/// at most complete, verified blobs (which [`Store::prune`] removes if nothing names them).
pub fn pull(
    store: &Store,
    reference: &Reference,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let client = Client::new(reference.registry(), &opts.registry, None)?;
    let repo = reference.repository();
    let scopes = [pull_scope(repo)];
    let _lease = store.lease()?;

    let (data, media_type, top) = get_top(&client, reference, &scopes)?;
    progress.resolved(reference, &top);

    let index_data = data.clone();
    let (manifest_digest, manifest_data) = if is_index(&media_type) {
        let what = format!("image index {top} of {reference}");
        let index: ImageIndex = serde_json::from_slice(&data).map_err(|source| Error::Json {
            what: what.clone(),
            error: source,
        })?;
        let desc = opts.platform.select(&index, &what)?;
        let digest = Digest::from_oci(desc.digest())?;
        let (data, _) = get_manifest(&client, reference, &digest.to_string(), &scopes)?;
        let actual = Digest::of(&data);
        if actual != digest {
            return Err(Error::DigestMismatch {
                expected: digest,
                actual,
            });
        }
        if data.len() as u64 != desc.size() {
            return Err(Error::SizeMismatch {
                digest,
                expected: desc.size(),
                actual: data.len() as u64,
            });
        }
        (digest, data)
    } else {
        (top.clone(), data)
    };
    let (manifest, _) = parse_manifest(
        &manifest_data,
        &format!("manifest {manifest_digest} of {reference}"),
    )?;

    let config = Digest::from_oci(manifest.config().digest())?;
    let mut layers = Vec::new();
    for layer in manifest.layers() {
        layers.push((Digest::from_oci(layer.digest())?, layer.size()));
    }
    progress.manifest(&config, &layers);
    let mut wanted = vec![(config, manifest.config().size())];
    for (d, size) in layers {
        if !wanted.iter().any(|(w, _)| w == &d) {
            wanted.push((d, size));
        }
    }
    let mut queue = VecDeque::new();
    let mut skipped = 0;
    for (digest, size) in wanted {
        if store.has(&digest) {
            progress.start(&digest, size, Transfer::Download);
            progress.finish(&digest, &Outcome::Exists);
            skipped += 1;
        } else {
            queue.push_back((digest, size));
        }
    }
    let fetched = queue.len();
    let bytes = fetch_blobs(
        store,
        &client,
        repo,
        &scopes,
        queue,
        opts.parallel,
        progress,
    )?;

    store.ingest(
        &manifest_digest,
        Some(manifest_data.len() as u64),
        &manifest_data[..],
    )?;
    // As Docker (containerd) does, the layers are unpacked before the image is named: a
    // corrupt or hostile layer fails the pull (naming the layer and the image) and leaves no
    // image behind, only unnamed blobs for prune.
    let mut image = Image::load(store, &manifest_digest)?;
    image.name = Some(reference.clone());
    crate::Snapshotter::new(store, crate::SnapshotMode::detect()).unpack(&image)?;
    // A reference by index digest keeps the (verified) index, so that the name resolves.
    if reference.digest().is_some_and(|d| d != &manifest_digest) {
        store.ingest(&top, Some(index_data.len() as u64), &index_data[..])?;
    }
    let name = reference.clone();
    store.tag(&name, &manifest_digest)?;
    Ok(Pulled {
        name,
        digest: top,
        manifest: manifest_digest,
        fetched,
        skipped,
        bytes,
    })
}

/// What a registry serves for a reference, read without pulling it (the Engine API's
/// `GET /distribution/{name}/json`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteImage {
    /// The media type of what the reference points at (an index or a manifest).
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The platforms it has: an index's manifests' (attestations, `unknown/unknown`, left
    /// out), or a single manifest's config's.
    pub platforms: Vec<crate::Platform>,
}

/// Reads the manifest (or index) `reference` points at in its registry, and the platforms it
/// covers (for a single manifest, from its config blob). Nothing is stored. A digest
/// reference is checked against what the registry sent.
pub fn inspect(
    reference: &Reference,
    opts: &crate::registry::RegistryOptions,
) -> Result<RemoteImage> {
    let client = Client::new(reference.registry(), opts, None)?;
    let repo = reference.repository();
    let scopes = [pull_scope(repo)];
    let (data, media_type, digest) = get_top(&client, reference, &scopes)?;
    let what = format!("{media_type} {digest} of {reference}");
    let mut platforms = Vec::new();
    if is_index(&media_type) {
        let index: ImageIndex = serde_json::from_slice(&data).map_err(|source| Error::Json {
            what: what.clone(),
            error: source,
        })?;
        for d in index.manifests() {
            if let Some(p) = d.platform() {
                let os = p.os().to_string();
                let architecture = p.architecture().to_string();
                if os == "unknown" || architecture == "unknown" {
                    continue;
                }
                platforms.push(crate::Platform {
                    os,
                    architecture,
                    variant: p.variant().clone(),
                });
            }
        }
    } else {
        let (manifest, _) = parse_manifest(&data, &what)?;
        let config = Digest::from_oci(manifest.config().digest())?;
        let url = format!("{}/v2/{repo}/blobs/{config}", client.base());
        let resp = client.send("GET", &url, &[], &Body::Empty, &scopes)?;
        if resp.status().as_u16() != 200 {
            return Err(Client::status_error("GET", &url, resp));
        }
        let blob = read_small(resp, &url)?;
        let actual = Digest::of(&blob);
        if actual != config {
            return Err(Error::DigestMismatch {
                expected: config,
                actual,
            });
        }
        #[derive(serde::Deserialize)]
        struct Probe {
            os: Option<String>,
            architecture: Option<String>,
            variant: Option<String>,
        }
        let p: Probe = serde_json::from_slice(&blob).map_err(|source| Error::Json {
            what: format!("config {config} of {reference}"),
            error: source,
        })?;
        if let (Some(os), Some(architecture)) = (p.os, p.architecture) {
            platforms.push(crate::Platform {
                os,
                architecture,
                variant: p.variant.filter(|v| !v.is_empty()),
            });
        }
    }
    Ok(RemoteImage {
        media_type,
        size: data.len() as u64,
        digest,
        platforms,
    })
}

/// Fetches what `reference` points at (its digest, else its tag, else the default tag): its
/// bytes, media type and digest. A digest reference is checked against what came.
fn get_top(
    client: &Client,
    reference: &Reference,
    scopes: &[String],
) -> Result<(Vec<u8>, String, Digest)> {
    let target = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => crate::DEFAULT_TAG.to_string(),
    };
    let (data, media_type) = get_manifest(client, reference, &target, scopes)?;
    let digest = Digest::of(&data);
    if let Some(expected) = reference.digest()
        && &digest != expected
    {
        return Err(Error::DigestMismatch {
            expected: expected.clone(),
            actual: digest,
        });
    }
    Ok((data, media_type, digest))
}

/// The body of a GET of `url` that is small by nature (a manifest, an index, a config): at
/// most [`MAX_MANIFEST`] bytes.
fn read_small(resp: ureq::http::Response<ureq::Body>, url: &str) -> Result<Vec<u8>> {
    resp.into_body()
        .with_config()
        .limit(MAX_MANIFEST)
        .read_to_vec()
        .map_err(|e| Error::Transport {
            method: "GET".into(),
            url: url.to_string(),
            reason: e.to_string(),
        })
}

/// Fetches a manifest or index; returns its bytes and media type (its `mediaType` field, else
/// the Content-Type, else guessed from its shape).
fn get_manifest(
    client: &Client,
    reference: &Reference,
    target: &str,
    scopes: &[String],
) -> Result<(Vec<u8>, String)> {
    let url = format!(
        "{}/v2/{}/manifests/{target}",
        client.base(),
        reference.repository()
    );
    let resp = client.send("GET", &url, &[("accept", ACCEPT)], &Body::Empty, scopes)?;
    match resp.status().as_u16() {
        200 => {}
        404 => {
            return Err(Error::ManifestUnknown {
                reference: reference.to_string(),
            });
        }
        _ => return Err(Client::status_error("GET", &url, resp)),
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
    let data = read_small(resp, &url)?;
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
    }
    let shown = if target.starts_with("sha256:") {
        format!("{}@{target}", reference.name())
    } else {
        format!("{}:{target}", reference.name())
    };
    let probe: Probe = serde_json::from_slice(&data).map_err(|source| Error::Json {
        what: format!("manifest of {shown}: not JSON"),
        error: source,
    })?;
    if probe.schema_version == Some(1) {
        return Err(Error::Invalid {
            what: format!("manifest of {shown}"),
            reason: "Docker schema 1 manifests are not supported".into(),
        });
    }
    let media_type = probe
        .media_type
        .or(content_type.filter(|c| {
            [
                OCI_MANIFEST,
                OCI_INDEX,
                DOCKER_MANIFEST,
                DOCKER_MANIFEST_LIST,
            ]
            .contains(&c.as_str())
        }))
        .unwrap_or_else(|| {
            if probe.manifests.is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        });
    Ok((data, media_type))
}

/// Downloads blobs on up to `parallel` threads; the first error stops the others.
fn fetch_blobs(
    store: &Store,
    client: &Client,
    repo: &str,
    scopes: &[String],
    queue: VecDeque<(Digest, u64)>,
    parallel: usize,
    progress: &dyn Progress,
) -> Result<u64> {
    let bytes = AtomicU64::new(0);
    crate::parallel::try_each(queue, parallel.clamp(1, 8), |(digest, size), stop| {
        progress.start(&digest, size, Transfer::Download);
        fetch_blob(store, client, repo, scopes, &digest, size, stop, progress)?;
        bytes.fetch_add(size, Ordering::Relaxed);
        progress.finish(&digest, &Outcome::Done);
        Ok(())
    })?;
    Ok(bytes.into_inner())
}

#[allow(clippy::too_many_arguments)]
fn fetch_blob(
    store: &Store,
    client: &Client,
    repo: &str,
    scopes: &[String],
    digest: &Digest,
    size: u64,
    cancel: &AtomicBool,
    progress: &dyn Progress,
) -> Result<()> {
    let url = format!("{}/v2/{repo}/blobs/{digest}", client.base());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let resp = client.send("GET", &url, &[], &Body::Empty, scopes)?;
        if resp.status().as_u16() != 200 {
            return Err(Client::status_error("GET", &url, resp));
        }
        let reader = Counting {
            inner: resp.into_body().into_reader(),
            digest,
            cancel,
            progress,
        };
        match store.ingest(digest, Some(size), reader) {
            // The body broke off mid-way (not a lie about the content): start again.
            Err(Error::Io { error: source, .. })
                if attempt < BLOB_ATTEMPTS && !cancel.load(Ordering::Relaxed) =>
            {
                progress.note(&format!("{digest}: {source}; retrying"));
            }
            // Still failing after the last attempt (a body that keeps breaking off, or a
            // local write error): say which blob and where from.
            Err(Error::Io { error: source, .. }) => {
                return Err(Error::Transport {
                    method: "GET".into(),
                    url,
                    reason: format!("blob {digest}: {source} (after {attempt} attempts)"),
                });
            }
            other => return other,
        }
    }
}

/// Reports bytes as they are read and stops reading when another download failed.
struct Counting<'a, R> {
    inner: R,
    digest: &'a Digest,
    cancel: &'a AtomicBool,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            // Not `Interrupted`: `io::copy` would retry that.
            return Err(io::Error::other("cancelled: another download failed"));
        }
        if self.progress.cancelled() {
            self.cancel.store(true, Ordering::Relaxed);
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.progress.advance(self.digest, n as u64);
        Ok(n)
    }
}
