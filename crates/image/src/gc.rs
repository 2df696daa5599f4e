//! Garbage collection: removes what no name, no pin and no container snapshot refers to.

use std::collections::HashSet;
use std::fs;

use berth_sys::Flock;

use crate::digest::Digest;
use crate::error::{Result, io_err};
use crate::fsutil::{remove_any, remove_tree_atomically, sync_dir, temp_owner_alive, tree_size};
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
    /// Bytes freed: the sizes of the removed blobs, of the files in the removed layers (and of
    /// their recorded sizes) and of the removed temp files and directories (a file hardlinked
    /// within one tree counts once).
    pub reclaimed: u64,
}

impl Store {
    /// Removes blobs and unpacked layers that are not reachable from a name in the index
    /// (name -> manifest -> config and layers, and the layers' chain IDs) or from a container
    /// snapshot, and what is in `tmp/` except the entries of live processes (writes that need
    /// no lease, such as a tag's new `names.json`, may be under way).
    ///
    /// It waits for every [`crate::Lease`] (held by ingests, imports, unpacks, prepares in any
    /// process) to be released, and holds writers off while it runs.
    pub fn prune(&self) -> Result<PruneReport> {
        let _lock = self.gc_lock()?;
        let (blobs, chains) = self.reachable()?;
        let mut report = PruneReport::default();
        for blob in self.blobs()? {
            if !blobs.contains(&blob) {
                let size = self.size(&blob).unwrap_or(0);
                self.delete(&blob)?;
                report.reclaimed += size;
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
                    report.reclaimed += tree_size(&e.path());
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
                report.reclaimed += tree_size(&e.path());
                fs::remove_file(e.path()).map_err(io_err("remove", e.path()))?;
            }
        }
        let tmp = self.tmp_dir();
        for e in fs::read_dir(&tmp).map_err(io_err("read", &tmp))? {
            let e = e.map_err(io_err("read", &tmp))?;
            if temp_owner_alive(&e.file_name().to_string_lossy()) == Some(true) {
                continue;
            }
            let path = e.path();
            let size = tree_size(&path);
            remove_any(&path).map_err(io_err("remove", &path))?;
            report.reclaimed += size;
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
        for (_, manifest) in self.pins("")? {
            blobs.insert(manifest.clone());
            match Image::load(self, &manifest) {
                Ok(image) => {
                    blobs.extend(image.blobs());
                    chains.extend(image.layers.iter().map(|l| l.chain_id.clone()));
                }
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
        let lock = self.gc_lock()?;
        self.remove_image_locked(manifest, &lock)
    }

    /// [`Store::remove_image`] when no writer holds a lease (the caller must hold none), so as
    /// not to wait for them; `None` when one does (what it would remove stays for prune).
    pub(crate) fn remove_image_if_idle(&self, manifest: &Digest) -> Result<Option<PruneReport>> {
        match Flock::try_exclusive(&self.root().join("gc.lock"))? {
            Some(lock) => self.remove_image_locked(manifest, &lock).map(Some),
            None => Ok(None),
        }
    }

    /// [`Store::remove_image`] under the gc lock held exclusively.
    fn remove_image_locked(&self, manifest: &Digest, _lock: &Flock) -> Result<PruneReport> {
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
                report.reclaimed += self.size(&blob).unwrap_or(0);
                self.delete(&blob)?;
                report.blobs.push(blob);
            }
        }
        let layers = self.layers_dir();
        for chain in my_chains {
            let dir = layers.join(chain.hex());
            if !chains.contains(&chain) && dir.is_dir() {
                report.reclaimed += tree_size(&dir);
                remove_tree_atomically(&self.tmp_dir(), &dir)?;
                let size = self.sizes_dir().join(chain.hex());
                if size.exists() {
                    report.reclaimed += tree_size(&size);
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
