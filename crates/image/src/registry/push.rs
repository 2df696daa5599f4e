//! Push: each blob is checked with HEAD, mounted from a sibling repository when possible, else
//! uploaded (monolithic or chunked, following `Location`); then the manifest is PUT.

use std::collections::HashMap;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::reference::Reference;
use crate::registry::client::{Body, Client, pull_scope, push_scope, urlencode};
use crate::registry::{Outcome, Progress, PushOptions, Transfer};
use crate::store::Store;

/// What [`push`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest (what the registry now serves for the tag).
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the registry mounted from another repository (it answered 201 to the mount).
    pub mounted: usize,
    /// Blobs the registry already had in this repository.
    pub existing: usize,
    /// Requests retried (5xx, 429, broken connections).
    pub retries: u64,
}

/// Pushes the image named `reference` in the store to its registry, under its tag (or by
/// digest when it has none).
pub fn push(
    store: &Store,
    reference: &Reference,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<Pushed> {
    let image = Image::by_name(store, reference)?;
    let client = Client::new(reference.registry(), &opts.registry, None)?;
    let repo = reference.repository();
    let sources = mount_sources(store, reference)?;
    let mut report = Pushed {
        digest: image.manifest_digest.clone(),
        size: store.size(&image.manifest_digest)?,
        uploaded: 0,
        mounted: 0,
        existing: 0,
        retries: 0,
    };
    let mut blobs: Vec<(Digest, u64)> = image
        .layers
        .iter()
        .map(|l| (l.digest.clone(), l.size))
        .collect();
    blobs.push((
        image.config_digest.clone(),
        store.size(&image.config_digest)?,
    ));
    let scopes = [push_scope(repo)];
    let mut seen = Vec::new();
    for (digest, _) in blobs {
        if seen.contains(&digest) {
            continue;
        }
        seen.push(digest.clone());
        let size = store.size(&digest)?;
        progress.start(&digest, size, Transfer::Upload);
        let outcome = push_blob(
            store,
            &client,
            repo,
            &scopes,
            &digest,
            size,
            sources.get(&digest).map(String::as_str),
            opts.chunk_size,
            progress,
        )?;
        match &outcome {
            Outcome::Exists => report.existing += 1,
            Outcome::Done => report.uploaded += 1,
            Outcome::Mounted { .. } => report.mounted += 1,
        }
        progress.finish(&digest, &outcome);
    }

    let manifest = store.read_blob(&image.manifest_digest)?;
    let target = match (reference.tag(), reference.digest()) {
        (Some(t), _) => t.to_string(),
        (None, _) => image.manifest_digest.to_string(),
    };
    let url = format!("{}/v2/{repo}/manifests/{target}", client.base());
    let resp = client.send(
        "PUT",
        &url,
        &[("content-type", image.manifest_media_type.as_str())],
        &Body::Bytes(&manifest),
        &scopes,
    )?;
    if resp.status().as_u16() != 201 {
        return Err(Client::status_error("PUT", &url, resp));
    }
    if let Some(d) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        && d != image.manifest_digest.to_string()
    {
        return Err(Error::Invalid {
            what: url,
            reason: format!(
                "the registry stored the manifest as {d}, not {}",
                image.manifest_digest
            ),
        });
    }
    report.retries = client
        .stats
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    Ok(report)
}

/// For each blob of an image named in the store under another repository of the same
/// registry, that repository: a candidate for a cross-repository mount.
fn mount_sources(store: &Store, reference: &Reference) -> Result<HashMap<Digest, String>> {
    let mut out = HashMap::new();
    for (name, manifest) in store.names()? {
        let Ok(other) = Reference::parse(&name) else {
            continue;
        };
        if other.registry() != reference.registry() || other.repository() == reference.repository()
        {
            continue;
        }
        let Ok(image) = Image::load(store, &manifest) else {
            continue;
        };
        for d in image.blobs() {
            out.entry(d)
                .or_insert_with(|| other.repository().to_string());
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn push_blob(
    store: &Store,
    client: &Client,
    repo: &str,
    scopes: &[String],
    digest: &Digest,
    size: u64,
    mount_from: Option<&str>,
    chunk_size: Option<u64>,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let base = client.base();
    let head = format!("{base}/v2/{repo}/blobs/{digest}");
    let resp = client.send("HEAD", &head, &[], &Body::Empty, scopes)?;
    match resp.status().as_u16() {
        200 => return Ok(Outcome::Exists),
        404 => {}
        _ => return Err(Client::status_error("HEAD", &head, resp)),
    }

    let mut location = None;
    if let Some(from) = mount_from {
        let url = format!(
            "{base}/v2/{repo}/blobs/uploads/?mount={digest}&from={}",
            urlencode(from)
        );
        let mount_scopes = [scopes[0].clone(), pull_scope(from)];
        let resp = client.send("POST", &url, &[], &Body::Empty, &mount_scopes)?;
        match resp.status().as_u16() {
            201 => {
                return Ok(Outcome::Mounted {
                    from: from.to_string(),
                });
            }
            // The registry could not mount: it opened an upload session instead.
            202 => location = Some(location_of(client, &url, &resp)?),
            _ => return Err(Client::status_error("POST", &url, resp)),
        }
    }
    let mut location = match location {
        Some(l) => l,
        None => {
            let url = format!("{base}/v2/{repo}/blobs/uploads/");
            let resp = client.send("POST", &url, &[], &Body::Empty, scopes)?;
            if resp.status().as_u16() != 202 {
                return Err(Client::status_error("POST", &url, resp));
            }
            location_of(client, &url, &resp)?
        }
    };

    let mut offset = 0;
    if let Some(chunk) = chunk_size.filter(|c| *c > 0 && size > *c) {
        while offset < size {
            let len = chunk.min(size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let resp = client.send(
                "PATCH",
                &location,
                &[
                    ("content-type", "application/octet-stream"),
                    ("content-range", range.as_str()),
                ],
                &Body::Blob {
                    store,
                    digest,
                    offset,
                    len,
                },
                scopes,
            )?;
            if resp.status().as_u16() != 202 {
                return Err(Client::status_error("PATCH", &location, resp));
            }
            location = location_of(client, &location, &resp)?;
            offset += len;
            progress.advance(digest, len);
        }
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{sep}digest={}", urlencode(&digest.to_string()));
    let body = if offset < size {
        Body::Blob {
            store,
            digest,
            offset,
            len: size - offset,
        }
    } else {
        Body::Empty
    };
    let resp = client.send(
        "PUT",
        &url,
        &[("content-type", "application/octet-stream")],
        &body,
        scopes,
    )?;
    if resp.status().as_u16() != 201 {
        return Err(Client::status_error("PUT", &url, resp));
    }
    progress.advance(digest, size - offset);
    Ok(Outcome::Done)
}

fn location_of(
    client: &Client,
    url: &str,
    resp: &ureq::http::Response<ureq::Body>,
) -> Result<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(|l| client.absolute(l))
        .ok_or_else(|| Error::Invalid {
            what: url.to_string(),
            reason: "the registry opened an upload without a Location".into(),
        })
}
