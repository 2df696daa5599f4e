//! An image as the store knows it: manifest, config, layers with their diff and chain IDs;
//! media types and platform selection.

use std::fmt;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::Store;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image manifest (v2 schema 2) media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Whether a media type is an image manifest (OCI or Docker).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Whether a media type is an image index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether a media type is a layer this crate unpacks: OCI tar, tar+gzip, tar+zstd (also
/// non-distributable), Docker's rootfs diffs. The compression is detected from the content.
pub fn is_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

/// A platform as image indexes describe it: `linux/amd64`, `linux/arm64/v8`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// Architecture in Go's naming, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Variant, e.g. `v8`; `None` matches any.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on: `linux/<GOARCH of the host>`.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            "loongarch64" => "loong64",
            other => other,
        };
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let architecture = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            os: os.into(),
            architecture: architecture.into(),
            variant,
        })
    }

    fn matches(&self, p: &oci_spec::image::Platform) -> bool {
        p.os().to_string() == self.os
            && p.architecture().to_string() == self.architecture
            && match (&self.variant, p.variant()) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) | (None, _) => true,
            }
    }

    /// Picks the manifest for this platform from an index: the first entry whose platform
    /// matches, or the only entry when it has no platform at all.
    pub fn select<'a>(&self, index: &'a ImageIndex, what: &str) -> Result<&'a Descriptor> {
        let manifests = index.manifests();
        let found = manifests
            .iter()
            .find(|d| d.platform().as_ref().is_some_and(|p| self.matches(p)));
        match (found, manifests.as_slice()) {
            (Some(d), _) => Ok(d),
            (None, [only]) if only.platform().is_none() => Ok(only),
            _ => Err(Error::NoMatchingPlatform {
                what: what.to_string(),
                platform: self.to_string(),
            }),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// One layer of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Digest of the (possibly compressed) blob.
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Media type of the blob.
    pub media_type: String,
    /// Digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// Chain ID of this layer and all below it: the key of its unpacked snapshot.
    pub chain_id: Digest,
}

/// An image whose manifest and config are in the store (layers need not be).
#[derive(Clone, Debug)]
pub struct Image {
    /// Digest of the manifest.
    pub manifest_digest: Digest,
    /// Media type of the manifest (OCI or Docker).
    pub manifest_media_type: String,
    /// The parsed manifest.
    pub manifest: ImageManifest,
    /// Digest of the config blob.
    pub config_digest: Digest,
    /// The parsed config.
    pub config: ImageConfiguration,
    /// Docker's `config.Healthcheck` of the config blob (`Test`, `Interval`, ... as Docker writes
    /// it): not part of the OCI image spec, so [`ImageConfiguration`] drops it.
    pub healthcheck: Option<serde_json::Value>,
    /// Docker's `config.OnBuild`: the triggers a build from this image runs first.
    pub on_build: Option<Vec<String>>,
    /// Docker's `config.Shell`: the shell of shell-form instructions (`SHELL`).
    pub shell: Option<Vec<String>>,
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
    /// The name it was found by ([`Image::by_name`]); `None` from [`Image::load`]. Used in
    /// messages (`layer ... of image NAME is corrupt`); set it when the name is known.
    pub name: Option<Reference>,
}

impl Image {
    /// Loads the image a name points at.
    pub fn by_name(store: &Store, name: &Reference) -> Result<Self> {
        let mut image = Self::load(store, &store.resolve(name)?)?;
        image.name = Some(name.clone());
        Ok(image)
    }

    /// How messages name the image: its short name (`busybox:latest`), else its manifest
    /// digest.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => crate::archive::familiar_name(n),
            None => self.manifest_digest.to_string(),
        }
    }

    /// Loads an image from its manifest digest, checking the manifest and config digests again,
    /// that the layers are unpackable media types and that the config has one diff ID per layer.
    pub fn load(store: &Store, manifest_digest: &Digest) -> Result<Self> {
        let what = format!("manifest {manifest_digest}");
        let data = store.read_blob(manifest_digest)?;
        let (manifest, media_type) = parse_manifest(&data, &what)?;
        let config_digest = Digest::from_oci(manifest.config().digest())?;
        let config_data = store.read_blob(&config_digest)?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_data).map_err(|source| Error::Json {
                what: format!("config {config_digest}"),
                error: source,
            })?;
        #[derive(serde::Deserialize)]
        struct DockerExtras {
            #[serde(default)]
            config: Option<DockerConfig>,
        }
        #[derive(serde::Deserialize)]
        struct DockerConfig {
            #[serde(rename = "Healthcheck", default)]
            healthcheck: Option<serde_json::Value>,
            #[serde(rename = "OnBuild", default)]
            on_build: Option<Vec<String>>,
            #[serde(rename = "Shell", default)]
            shell: Option<Vec<String>>,
        }
        let extras = serde_json::from_slice::<DockerExtras>(&config_data)
            .ok()
            .and_then(|e| e.config);
        let (healthcheck, on_build, shell) = match extras {
            Some(c) => (c.healthcheck.filter(|h| h.is_object()), c.on_build, c.shell),
            None => (None, None, None),
        };
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(Error::Invalid {
                what,
                reason: format!(
                    "{} layers but config {config_digest} has {} diff IDs",
                    manifest.layers().len(),
                    diff_ids.len()
                ),
            });
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        let mut parent: Option<Digest> = None;
        for (desc, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let digest = Digest::from_oci(desc.digest())?;
            let media_type = desc.media_type().to_string();
            if !is_layer(&media_type) {
                return Err(Error::UnsupportedMediaType { digest, media_type });
            }
            let diff_id = Digest::parse(diff_id)?;
            let chain_id = Digest::chain(parent.as_ref(), &diff_id);
            parent = Some(chain_id.clone());
            layers.push(Layer {
                digest,
                size: desc.size(),
                media_type,
                diff_id,
                chain_id,
            });
        }
        Ok(Self {
            manifest_digest: manifest_digest.clone(),
            manifest_media_type: media_type,
            manifest,
            config_digest,
            config,
            healthcheck,
            on_build: on_build.filter(|v| !v.is_empty()),
            shell: shell.filter(|v| !v.is_empty()),
            layers,
            name: None,
        })
    }

    /// Every blob the image is made of: manifest, config, layers.
    pub fn blobs(&self) -> Vec<Digest> {
        let mut out = vec![self.manifest_digest.clone(), self.config_digest.clone()];
        out.extend(self.layers.iter().map(|l| l.digest.clone()));
        out
    }
}

/// Parses a manifest and returns it with its media type (from its `mediaType`, OCI when absent);
/// image indexes are refused.
pub(crate) fn parse_manifest(data: &[u8], what: &str) -> Result<(ImageManifest, String)> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let json_err = |source| Error::Json {
        what: what.to_string(),
        error: source,
    };
    let probe: Probe = serde_json::from_slice(data).map_err(json_err)?;
    let media_type = probe.media_type.unwrap_or_else(|| OCI_MANIFEST.to_string());
    if probe.manifests.is_some() || is_index(&media_type) {
        return Err(Error::Invalid {
            what: what.to_string(),
            reason: "is an image index, not a manifest".into(),
        });
    }
    if !is_manifest(&media_type) {
        return Err(Error::UnsupportedMediaType {
            digest: Digest::of(data),
            media_type,
        });
    }
    let manifest = serde_json::from_slice(data).map_err(json_err)?;
    Ok((manifest, media_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_display() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("linux/a/b/c").is_none());
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn media_types() {
        assert!(is_layer(
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        ));
        assert!(is_layer("application/vnd.oci.image.layer.v1.tar+zstd"));
        assert!(!is_layer("application/vnd.in-toto+json"));
        assert!(is_index(DOCKER_MANIFEST_LIST) && is_manifest(DOCKER_MANIFEST));
    }

    #[test]
    fn selects_the_platform() {
        let d = Digest::of(b"x");
        let index: ImageIndex = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": Digest::of(b"arm").to_string(), "size": 1,
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": 1,
                 "platform": {"os": "linux", "architecture": "amd64"}},
            ]
        }))
        .unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            amd.select(&index, "i").unwrap().digest().as_ref(),
            d.to_string()
        );
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(
            arm.select(&index, "i").unwrap().digest().as_ref(),
            Digest::of(b"arm").to_string()
        );
        let err = Platform::parse("linux/s390x").unwrap().select(&index, "i");
        assert!(matches!(err, Err(Error::NoMatchingPlatform { .. })));
    }

    #[test]
    fn refuses_an_index_as_manifest() {
        let data = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(matches!(
            parse_manifest(data, "m"),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            parse_manifest(b"not json", "m"),
            Err(Error::Json { .. })
        ));
    }
}
