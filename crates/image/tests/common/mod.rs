//! Helpers shared by the integration tests: layers built with the `tar` crate (including
//! hostile entries the crate's safe setters would refuse), OCI layouts written by hand.

#![allow(dead_code)]

pub mod fake_registry;
pub mod registry;

use std::fs;
use std::io::Write;
use std::path::Path;

use berth_image::{Digest, Platform};
use tar::{EntryType, Header};

pub const MTIME: u64 = 1_600_000_000;

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "these tests need root (CI runs them as root)");
}

/// A layer tar under construction.
pub struct LayerTar {
    b: tar::Builder<Vec<u8>>,
}

impl LayerTar {
    pub fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry, writing name and link name raw, so `../x` and `/x` go in as they are.
    pub fn entry(
        &mut self,
        name: &str,
        kind: EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Self {
        self.entry_owned(name, kind, mode, link, data, 0, 0)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn entry_owned(
        &mut self,
        name: &str,
        kind: EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(MTIME);
        h.set_size(data.len() as u64);
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, EntryType::Directory, 0o755, None, b"")
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, EntryType::Regular, 0o644, None, data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, EntryType::Symlink, 0o777, Some(target), b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, EntryType::Link, 0o644, Some(target), b"")
    }

    /// A PAX header with xattrs for the next entry.
    pub fn xattrs(&mut self, xattrs: &[(&str, &[u8])]) -> &mut Self {
        let keys: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.b
            .append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

/// The base layer: busybox-static as /bin/busybox, /bin/sh linking to it, some files to hide.
pub fn busybox_layer() -> Vec<u8> {
    let busybox = fs::read("/bin/busybox").expect("/bin/busybox (apt-get install busybox-static)");
    LayerTar::new()
        .dir("bin/")
        .entry("bin/busybox", EntryType::Regular, 0o755, None, &busybox)
        .symlink("bin/sh", "busybox")
        .dir("etc/")
        .file("etc/hidden", b"deleted by the upper layer\n")
        .file("etc/kept", b"kept\n")
        .dir("opq/")
        .file("opq/a", b"lower a\n")
        .dir("tmp/")
        .finish()
}

/// The upper layer: a whiteout of etc/hidden, opq/ made opaque with a new file.
pub fn upper_layer() -> Vec<u8> {
    LayerTar::new()
        .dir("etc/")
        .file("etc/.wh.hidden", b"")
        .dir("opq/")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/b", b"upper b\n")
        .file("etc/motd", b"hello from layer 2\n")
        .finish()
}

/// One layer of a test image: the blob as stored and its media type, plus the uncompressed tar.
pub struct TestLayer {
    pub blob: Vec<u8>,
    pub media_type: &'static str,
    pub tar: Vec<u8>,
}

impl TestLayer {
    pub fn gzip(tar: Vec<u8>) -> Self {
        Self {
            blob: gzip(&tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
            tar,
        }
    }
    pub fn zstd(tar: Vec<u8>) -> Self {
        Self {
            blob: zstd(&tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
            tar,
        }
    }
    pub fn plain(tar: Vec<u8>) -> Self {
        Self {
            blob: tar.clone(),
            media_type: "application/vnd.oci.image.layer.v1.tar",
            tar,
        }
    }
}

pub fn put_blob(dir: &Path, data: &[u8]) -> serde_json::Value {
    let d = Digest::of(data);
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join(d.hex()), data).unwrap();
    serde_json::json!({"digest": d.to_string(), "size": data.len()})
}

/// Writes manifest + config + layers into the layout's blobs and returns the manifest's
/// descriptor (without platform/annotations).
pub fn put_image(dir: &Path, layers: &[TestLayer], arch: &str) -> serde_json::Value {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| Digest::of(&l.tar).to_string())
        .collect();
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let mut config_desc = put_blob(dir, &serde_json::to_vec(&config).unwrap());
    config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let mut d = put_blob(dir, &l.blob);
            d["mediaType"] = l.media_type.into();
            d
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": layer_descs,
    });
    let mut desc = put_blob(dir, &serde_json::to_vec(&manifest).unwrap());
    desc["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    desc
}

/// Writes an OCI layout whose index.json points at an image index with a manifest for the
/// host and one for another architecture (whose blobs are absent: selection must skip it).
/// Returns the host manifest's digest.
pub fn write_layout(dir: &Path, layers: &[TestLayer], ref_name: &str) -> Digest {
    let host = Platform::host();
    let mut mine = put_image(dir, layers, &host.architecture);
    mine["platform"] = serde_json::json!({"os": "linux", "architecture": host.architecture});
    let other_arch = if host.architecture == "s390x" {
        "riscv64"
    } else {
        "s390x"
    };
    let other = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": Digest::of(b"absent").to_string(), "size": 6,
        "platform": {"os": "linux", "architecture": other_arch},
    });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [other, mine.clone()],
    });
    let mut index_desc = put_blob(dir, &serde_json::to_vec(&index).unwrap());
    index_desc["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
    index_desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": ref_name});
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [index_desc]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Digest::parse(mine["digest"].as_str().unwrap()).unwrap()
}

/// Names in a directory, sorted.
pub fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
