//! Garbage collection: removes what no name and no container snapshot refers to.

use std::collections::HashSet;
use std::fs;

use crate::digest::Digest;
use crate::error::{Result, io_err};
use crate::fsutil::{remove_tree_atomically, sync_dir};
use crate::image::Image;
use crate::snapshot::{list_keys, read_meta};
use crate::store::Store;

/// What [`Store::prune`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Blobs removed.
    pub blobs: Vec<Digest>,
    /// Unpacked layers removed, by chain ID.
    pub layers: Vec<Digest>,
    /// Leftover temp files and directories removed (from crashed or failed writes).
    pub temp: usize,
}

impl Store {
    /// Removes blobs and unpacked layers that are not reachable from a name in the index
    /// (name -> manifest -> config and layers, and the layers' chain IDs) or from a container
    /// snapshot, and everything in `tmp/`.
    ///
    /// It waits for every [`crate::Lease`] (held by ingests, imports, unpacks, prepares in any
    /// process) to be released, and holds writers off while it runs.
    pub fn prune(&self) -> Result<PruneReport> {
        let _lock = self.gc_lock()?;
        let (blobs, chains) = self.reachable()?;
        let mut report = PruneReport::default();
        for blob in self.blobs()? {
            if !blobs.contains(&blob) {
                self.delete(&blob)?;
                report.blobs.push(blob);
            }
        }
        let layers = self.layers_dir();
        for e in fs::read_dir(&layers).map_err(io_err("read", &layers))? {
            let e = e.map_err(io_err("read", &layers))?;
            let name = e.file_name().to_string_lossy().into_owned();
            match Digest::from_hex(&name) {
                Ok(chain) if chains.contains(&chain) => {}
                parsed => {
                    remove_tree_atomically(&self.tmp_dir(), &e.path())?;
                    if let Ok(chain) = parsed {
                        report.layers.push(chain);
                    }
                }
            }
        }
        sync_dir(&layers)?;
        let sizes = self.sizes_dir();
        for e in fs::read_dir(&sizes).map_err(io_err("read", &sizes))? {
            let e = e.map_err(io_err("read", &sizes))?;
            let keep = Digest::from_hex(&e.file_name().to_string_lossy()).is_ok_and(|chain| {
                chains.contains(&chain) && self.layers_dir().join(chain.hex()).is_dir()
            });
            if !keep {
                fs::remove_file(e.path()).map_err(io_err("remove", e.path()))?;
            }
        }
        let tmp = self.tmp_dir();
        for e in fs::read_dir(&tmp).map_err(io_err("read", &tmp))? {
            let path = e.map_err(io_err("read", &tmp))?.path();
            let res = if path.is_dir() && !path.is_symlink() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            res.map_err(io_err("remove", &path))?;
            report.temp += 1;
        }
        Ok(report)
    }

    /// Blobs and chain IDs reachable from the names and the container snapshots.
    fn reachable(&self) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut chains: HashSet<Digest> = HashSet::new();
        for (name, manifest) in self.names()? {
            // A name by index digest keeps its index (see `registry::pull`).
            if let Some(pinned) = crate::Reference::parse(&name)
                .ok()
                .and_then(|r| r.digest().cloned())
            {
                blobs.insert(pinned);
            }
            blobs.insert(manifest.clone());
            match Image::load(self, &manifest) {
                Ok(image) => {
                    blobs.extend(image.blobs());
                    chains.extend(image.layers.iter().map(|l| l.chain_id.clone()));
                }
                // A broken image keeps what its manifest names, as far as it can be read.
                Err(_) => blobs.extend(self.loose_refs(&manifest)),
            }
        }
        for key in list_keys(self)? {
            let meta = read_meta(&self.containers_dir().join(&key), &key)?;
            blobs.insert(meta.image);
            chains.extend(meta.chain);
        }
        Ok((blobs, chains))
    }

    /// Removes what the image `manifest` refers to (its manifest, config and layer blobs and
    /// unpacked layers) and nothing else references: what `rmi` does once the last name of an
    /// image is gone. Other unreferenced content stays for [`Store::prune`]. Nothing is removed
    /// while a name or a container snapshot still uses the image.
    pub fn remove_image(&self, manifest: &Digest) -> Result<PruneReport> {
        let _lock = self.gc_lock()?;
        let (blobs, chains) = self.reachable()?;
        let mut report = PruneReport::default();
        if blobs.contains(manifest) {
            return Ok(report);
        }
        let (mine, my_chains) = match Image::load(self, manifest) {
            Ok(image) => (
                image.blobs(),
                image.layers.iter().map(|l| l.chain_id.clone()).collect(),
            ),
            Err(_) => (self.loose_refs(manifest), Vec::new()),
        };
        for blob in std::iter::once(manifest.clone()).chain(mine) {
            if !blobs.contains(&blob) && self.has(&blob) && !report.blobs.contains(&blob) {
                self.delete(&blob)?;
                report.blobs.push(blob);
            }
        }
        let layers = self.layers_dir();
        for chain in my_chains {
            let dir = layers.join(chain.hex());
            if !chains.contains(&chain) && dir.is_dir() {
                remove_tree_atomically(&self.tmp_dir(), &dir)?;
                let size = self.sizes_dir().join(chain.hex());
                if size.exists() {
                    fs::remove_file(&size).map_err(io_err("remove", &size))?;
                }
                report.layers.push(chain);
            }
        }
        sync_dir(&layers)?;
        Ok(report)
    }

    /// The manifests container snapshots were prepared from: images in use by containers.
    pub fn images_in_use(&self) -> Result<HashSet<Digest>> {
        let mut out = HashSet::new();
        for key in list_keys(self)? {
            out.insert(read_meta(&self.containers_dir().join(&key), &key)?.image);
        }
        Ok(out)
    }

    fn loose_refs(&self, manifest: &Digest) -> Vec<Digest> {
        let Ok(data) = self.read_blob(manifest) else {
            return Vec::new();
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) else {
            return Vec::new();
        };
        let config = v.pointer("/config/digest").into_iter();
        let layers = v
            .get("layers")
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten();
        config
            .chain(layers.filter_map(|l| l.get("digest")))
            .filter_map(|d| Digest::parse(d.as_str()?).ok())
            .collect()
    }
}
