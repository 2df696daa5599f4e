//! `images` and `image inspect` as the Engine API answers them: [`Engine::image_summaries`]
//! (`GET /images/json`, API v1.44) with Docker's filters (`dangling`, `label`, `reference`,
//! `before`, `since`) and [`Engine::image_inspect`] (`GET /images/{name}/json`). Front ends
//! format these (the CLI's table, one row per tag) or return them as they are.

use std::collections::{BTreeMap, HashMap};

use berth_image::archive::familiar_name;
use berth_image::{Digest, Image, Reference, SnapshotMode, Snapshotter};
use oci_spec::image::Config as OciConfig;
use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::error::Result;
use crate::lists::{Filters, label_matches, unix_time};

/// What `images` asks for (the query of `GET /images/json`).
#[derive(Clone, Debug, Default)]
pub struct ImageListOptions {
    /// Intermediate images too (berth keeps none: no effect).
    pub all: bool,
    /// `dangling` (`true`/`false`), `label` (`KEY` or `KEY=VALUE`), `reference` (a
    /// `NAME[:TAG]` pattern with `*` and `?`), `before` and `since` (an image).
    pub filters: Filters,
}

/// One image of `GET /images/json` (API v1.44).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// The image ID (config digest).
    pub id: String,
    /// Empty: berth keeps no parent chain.
    pub parent_id: String,
    /// Its `repo:tag` names, familiar form (only those a `reference` filter matched).
    pub repo_tags: Vec<String>,
    /// `repo@sha256:<manifest>` for each repository that names it.
    pub repo_digests: Vec<String>,
    /// Creation time, seconds since the epoch (0 when the config has none).
    pub created: i64,
    /// Bytes of its unpacked layers (its compressed layers before it is unpacked).
    pub size: i64,
    /// -1: not computed for a list (`system df` has it).
    pub shared_size: i64,
    /// The config's labels.
    pub labels: BTreeMap<String, String>,
    /// -1: not computed for a list (`system df` has it).
    pub containers: i64,
}

/// `GET /images/{name}/json`'s answer (API v1.44 and its `Descriptor`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    /// The image ID (config digest).
    pub id: String,
    /// Its `repo:tag` names.
    pub repo_tags: Vec<String>,
    /// `repo@sha256:<manifest>` for each repository that names it.
    pub repo_digests: Vec<String>,
    /// Empty: berth keeps no parent chain.
    pub parent: String,
    /// The config's comment.
    pub comment: String,
    /// The config's creation time (RFC 3339), if any.
    pub created: Option<String>,
    /// The config's author.
    pub author: String,
    /// The container configuration the image carries (Docker's `Healthcheck` included).
    pub config: Option<ImageInspectConfig>,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// The CPU variant, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `linux`.
    pub os: String,
    /// Bytes of its unpacked layers (its compressed layers before it is unpacked).
    pub size: i64,
    /// Its layers' diff IDs.
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    /// The manifest it was found by.
    pub descriptor: Descriptor,
    /// Tag times (not recorded: Docker's zero time).
    pub metadata: ImageMetadata,
}

/// [`ImageInspect::config`]: the OCI image config's `config`, plus Docker's `Healthcheck`,
/// which the OCI spec does not have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInspectConfig {
    /// `User`, `Env`, `Cmd`, `Entrypoint`, `Labels`, ...
    #[serde(flatten)]
    pub config: OciConfig,
    /// Docker's health check of the image, as its config blob has it.
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<serde_json::Value>,
    /// Docker's `OnBuild` triggers (null when none, as Docker shows it).
    #[serde(rename = "OnBuild", default)]
    pub on_build: Option<Vec<String>>,
    /// Docker's `Shell` (`SHELL`), when set.
    #[serde(rename = "Shell", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// [`ImageInspect::root_fs`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    /// `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Diff IDs, bottom first.
    pub layers: Vec<String>,
}

/// An OCI descriptor ([`ImageInspect::descriptor`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's digest.
    pub digest: String,
    /// The manifest's size.
    pub size: u64,
}

/// [`ImageInspect::metadata`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    /// When it was last tagged.
    pub last_tag_time: String,
}

/// The filters `images` takes.
const IMAGE_FILTERS: &[&str] = &["before", "dangling", "label", "reference", "since"];

/// A name without its tag or digest, familiar form (`busybox`, `ghcr.io/a/b`).
fn repo_of(r: &Reference) -> String {
    let f = familiar_name(&r.with_digest(&Digest::of(b"")));
    f.split('@').next().unwrap_or(&f).to_string()
}

/// Go's `path.Match` for `*` (any run of characters but `/`) and `?` (one of them); other
/// characters are literal.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => {
            for i in 0..=text.len() {
                if glob(rest, &text[i..]) {
                    return true;
                }
                if text.get(i) == Some(&b'/') {
                    break;
                }
            }
            false
        }
        Some((b'?', rest)) => text
            .split_first()
            .is_some_and(|(c, t)| *c != b'/' && glob(rest, t)),
        Some((c, rest)) => text
            .split_first()
            .is_some_and(|(t, tail)| t == c && glob(rest, tail)),
    }
}

/// Docker's `reference` filter: `NAME[:TAG]`, each part a glob; the name is matched against
/// the familiar repository (`busybox`) and the full one (`docker.io/library/busybox`).
fn reference_matches(pattern: &str, r: &Reference) -> bool {
    let (name, tag) = match pattern.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (pattern, None),
    };
    let name_ok = [repo_of(r), r.name()]
        .iter()
        .any(|n| glob(name.as_bytes(), n.as_bytes()));
    let tag_ok = match tag {
        None => true,
        Some(t) => r.tag().is_some_and(|rt| glob(t.as_bytes(), rt.as_bytes())),
    };
    name_ok && tag_ok
}

pub(crate) fn labels_of(image: &Image) -> BTreeMap<String, String> {
    image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .map(|l| l.into_iter().collect())
        .unwrap_or_default()
}

pub(crate) fn created_of(image: &Image) -> i64 {
    image
        .config
        .created()
        .as_deref()
        .map_or(0, |c| unix_time(&normalize_time(c)))
}

/// An RFC 3339 time as [`crate::parse_rfc3339`] takes it (UTC with `Z`): offsets other than
/// UTC are rare in image configs and read as UTC.
fn normalize_time(t: &str) -> String {
    let base = t.get(..19).unwrap_or(t);
    format!("{base}Z")
}

impl Engine {
    fn snapshots(&self) -> Snapshotter {
        Snapshotter::new(&self.images, SnapshotMode::detect())
    }

    /// `images` (`GET /images/json`): one summary per image (manifest), newest first, with the
    /// names and filters of `opts`. An unknown filter, or a value a filter does not take, is
    /// an error naming it; `before`/`since` naming no image is [`crate::Error::Image`]'s
    /// not-found. Every image berth lists has a name, so `dangling=true` lists none.
    pub fn image_summaries(&self, opts: &ImageListOptions) -> Result<Vec<ImageSummary>> {
        let f = &opts.filters;
        f.check(IMAGE_FILTERS)?;
        let mut dangling = None;
        for v in f.values("dangling") {
            dangling = Some(match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(Filters::bad_value("dangling", v, "true or false")),
            });
        }
        let time_of = |key: &str| -> Result<Option<i64>> {
            f.values(key)
                .last()
                .map(|v| Ok(created_of(&self.images.find_image_loaded(v)?)))
                .transpose()
        };
        let before = time_of("before")?;
        let since = time_of("since")?;
        let mut by_manifest: BTreeMap<Digest, Vec<Reference>> = BTreeMap::new();
        for (name, manifest) in self.images.names()? {
            if let Ok(r) = Reference::parse(&name) {
                by_manifest.entry(manifest).or_default().push(r);
            }
        }
        let snap = self.snapshots();
        let mut sizes: HashMap<Digest, u64> = HashMap::new();
        let mut out = Vec::new();
        for (manifest, names) in by_manifest {
            let Ok(image) = Image::load(&self.images, &manifest) else {
                continue;
            };
            if dangling == Some(true) {
                continue;
            }
            let created = created_of(&image);
            let labels = labels_of(&image);
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            if !f.values("label").iter().all(|l| label_matches(&labels, l)) {
                continue;
            }
            let names: Vec<Reference> = names
                .into_iter()
                .filter(|r| f.any("reference", |p| reference_matches(p, r)))
                .collect();
            if names.is_empty() {
                continue;
            }
            let mut repo_tags: Vec<String> = names
                .iter()
                .filter(|n| n.tag().is_some())
                .map(familiar_name)
                .collect();
            repo_tags.sort();
            let mut repo_digests: Vec<String> = names
                .iter()
                .map(|n| format!("{}@{manifest}", repo_of(n)))
                .collect();
            repo_digests.sort();
            repo_digests.dedup();
            let size = *sizes
                .entry(manifest.clone())
                .or_insert_with(|| snap.image_size(&image));
            out.push(ImageSummary {
                id: image.config_digest.to_string(),
                parent_id: String::new(),
                repo_tags,
                repo_digests,
                created,
                size: size as i64,
                shared_size: -1,
                labels,
                containers: -1,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `image inspect NAME` (`GET /images/{name}/json`): anything
    /// [`berth_image::Store::find_image`] takes.
    pub fn image_inspect(&self, name: &str) -> Result<ImageInspect> {
        let found = self.images.find_image(name)?;
        let image = Image::load(&self.images, &found.manifest)?;
        let repo_tags = found
            .names
            .iter()
            .filter(|n| n.tag().is_some())
            .map(familiar_name)
            .collect();
        let mut repo_digests: Vec<String> = found
            .names
            .iter()
            .map(|n| format!("{}@{}", repo_of(n), found.manifest))
            .collect();
        repo_digests.sort();
        repo_digests.dedup();
        let c = &image.config;
        let text = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let json = serde_json::to_value(c).unwrap_or_default();
        Ok(ImageInspect {
            id: image.config_digest.to_string(),
            repo_tags,
            repo_digests,
            parent: String::new(),
            comment: text(json["comment"].clone()),
            created: c.created().clone(),
            author: c.author().clone().unwrap_or_default(),
            config: c.config().clone().map(|config| ImageInspectConfig {
                config,
                healthcheck: image.healthcheck.clone(),
                on_build: image.on_build.clone(),
                shell: image.shell.clone(),
            }),
            architecture: text(json["architecture"].clone()),
            variant: c.variant().clone(),
            os: text(json["os"].clone()),
            size: self.snapshots().image_size(&image) as i64,
            root_fs: RootFs {
                kind: "layers".into(),
                layers: image.layers.iter().map(|l| l.diff_id.to_string()).collect(),
            },
            descriptor: Descriptor {
                media_type: image.manifest_media_type.clone(),
                digest: image.manifest_digest.to_string(),
                size: self.images.size(&image.manifest_digest)?,
            },
            metadata: ImageMetadata {
                last_tag_time: crate::util::ZERO_TIME.into(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go_path_match() {
        assert!(glob(b"busy*", b"busybox"));
        assert!(glob(b"b?sybox", b"busybox"));
        assert!(!glob(b"*", b"a/b"));
        assert!(glob(b"*/*", b"a/b"));
        assert!(!glob(b"busy", b"busybox"));
    }

    #[test]
    fn reference_filter() {
        let r = Reference::parse("busybox:1.36").unwrap();
        assert!(reference_matches("busybox", &r));
        assert!(reference_matches("busybox:1.*", &r));
        assert!(!reference_matches("busybox:latest", &r));
        assert!(reference_matches("docker.io/library/busybox", &r));
        assert!(reference_matches("busy*", &r));
        let r = Reference::parse("localhost:5000/team/app:v1").unwrap();
        assert!(reference_matches("localhost:5000/team/app", &r));
        assert!(reference_matches("localhost:5000/team/*:v1", &r));
        assert!(!reference_matches("app", &r));
    }

    #[test]
    fn created_times() {
        assert_eq!(
            unix_time(&normalize_time("2023-11-14T22:13:20.123456789Z")),
            1_700_000_000
        );
        assert_eq!(
            unix_time(&normalize_time("2023-11-14T22:13:20+02:00")),
            1_700_000_000
        );
    }
}
