//! Image references with Docker Hub semantics: `busybox` is
//! `docker.io/library/busybox:latest`, `host:5000/a/b@sha256:...` names a registry on port 5000.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The registry a reference without a domain points at.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag a reference with neither tag nor digest gets.
pub const DEFAULT_TAG: &str = "latest";

/// A fully qualified image reference: registry, repository, and a tag, a digest, or both.
///
/// Parsing normalises as Docker does, so `Display` always gives the full form
/// (`docker.io/library/busybox:latest`), which is also the name the store's index keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidReference {
            reference: s.to_string(),
            reason,
        };
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d).map_err(|_| bad("bad digest"))?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !ok {
                return Err(bad("bad tag"));
            }
        }
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first != first.to_lowercase() =>
            {
                (first, path.to_string())
            }
            _ => (DEFAULT_REGISTRY, name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        if !valid_registry(registry) {
            return Err(bad("bad registry host"));
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if !repository.split('/').all(valid_component) {
            return Err(bad(
                "repository components must be lowercase letters and digits separated by '.', '_', '__' or '-'",
            ));
        }
        if registry.len() + 1 + repository.len() > 255 {
            return Err(bad("name longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(Self {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// The registry host, with its port if any (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path in the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        Self::parse(&format!("{}:{tag}", self.name()))
    }

    /// The same repository pinned to a digest (and no tag).
    pub fn with_digest(&self, digest: &Digest) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.clone()),
        }
    }
}

fn valid_registry(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && name.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    name_ok && port_ok
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("library/busybox:musl"),
            "docker.io/library/busybox:musl"
        );
    }

    #[test]
    fn registries_with_ports_and_digests() {
        let r = Reference::parse(&format!("host:5000/a/b@{D}")).unwrap();
        assert_eq!(r.registry(), "host:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("host:5000/a/b@{D}"));

        let r = Reference::parse(&format!("localhost/x:v1@{D}")).unwrap();
        assert_eq!((r.registry(), r.tag()), ("localhost", Some("v1")));
        assert_eq!(full("quay.io/coreos/etcd"), "quay.io/coreos/etcd:latest");
        assert_eq!(
            full("localhost:5000/busybox"),
            "localhost:5000/busybox:latest"
        );
        assert_eq!(
            full(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
    }

    #[test]
    fn with_tag_and_digest() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(
            r.with_tag("1").unwrap().to_string(),
            "docker.io/library/busybox:1"
        );
        let d = Digest::parse(D).unwrap();
        assert_eq!(
            r.with_digest(&d).to_string(),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(r.name(), "docker.io/library/busybox");
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            ":latest",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:abc",
            "a//b",
            "a/b/",
            "-a",
            "a..b",
            "host:5000x/a",
            "busybox:a/b",
            "bad host/a",
            "a b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
