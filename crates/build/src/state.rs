//! The image a build step works on: an OCI image config (as JSON, so Docker's extensions such
//! as `Healthcheck`, `Shell` and `OnBuild` survive) and its layers, and turning it into blobs.

use std::io::Read;

use berth_image::{Digest, Image, Store};
use serde_json::{Value, json};

use crate::error::{BuildError, Result};

/// The OCI media type of the uncompressed layers the builder writes.
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// An image under construction.
#[derive(Clone, Debug)]
pub struct ImageState {
    /// The image config (`architecture`, `os`, `config`, `rootfs`, `history`, ...).
    pub config: Value,
    /// The manifest's layer descriptors, bottom first.
    pub layers: Vec<Value>,
}

impl ImageState {
    /// `FROM scratch`: no layers, an empty config for this machine's platform.
    pub fn scratch() -> Self {
        ImageState {
            config: json!({
                "architecture": host_arch(),
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            layers: Vec::new(),
        }
    }

    /// The state of an image in the store, its config read as the JSON it was written as.
    pub fn load(store: &Store, image: &Image) -> Result<Self> {
        let mut data = Vec::new();
        store
            .open(&image.config_digest)?
            .read_to_end(&mut data)
            .map_err(|e| BuildError::Other(format!("read config {}: {e}", image.config_digest)))?;
        let mut config: Value = serde_json::from_slice(&data)
            .map_err(|e| BuildError::Other(format!("image config {}: {e}", image.config_digest)))?;
        if !config["config"].is_object() {
            config["config"] = json!({});
        }
        if !config["history"].is_array() {
            config["history"] = json!([]);
        }
        let layers = image
            .layers
            .iter()
            .map(|l| json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size}))
            .collect();
        Ok(ImageState { config, layers })
    }

    /// The runtime config (`config.config`), made an object if it is not.
    pub fn cc(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"]
            .as_object_mut()
            .expect("made an object")
    }

    /// The environment (`KEY=value` strings) as pairs, in order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config["config"]["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .map(|s| match s.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (s.to_string(), String::new()),
            })
            .collect()
    }

    /// Sets `key=value` in the environment (replacing an earlier value, keeping its place).
    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_string(),
            None => env.push((key.to_string(), value.to_string())),
        }
        let list: Vec<Value> = env.iter().map(|(k, v)| json!(format!("{k}={v}"))).collect();
        self.cc().insert("Env".into(), Value::Array(list));
    }

    /// A string field of the runtime config (`WorkingDir`, `User`), empty when unset.
    pub fn get_str(&self, key: &str) -> String {
        self.config["config"][key]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A list field of the runtime config (`Cmd`, `Entrypoint`, `Shell`, `OnBuild`).
    pub fn get_list(&self, key: &str) -> Vec<String> {
        self.config["config"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// Appends a history entry; `layer` is `Some(descriptor, diff_id)` for a step that made one.
    pub fn push_history(
        &mut self,
        created: &str,
        created_by: &str,
        layer: Option<(Value, Digest)>,
    ) {
        let mut entry = json!({"created": created, "created_by": created_by});
        match layer {
            Some((desc, diff_id)) => {
                self.layers.push(desc);
                match self.config["rootfs"]["diff_ids"].as_array_mut() {
                    Some(ids) => ids.push(json!(diff_id.to_string())),
                    None => {
                        self.config["rootfs"] =
                            json!({"type": "layers", "diff_ids": [diff_id.to_string()]})
                    }
                }
            }
            None => entry["empty_layer"] = json!(true),
        }
        entry["comment"] = json!("buildkit.dockerfile.v0");
        match self.config["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => self.config["history"] = json!([entry]),
        }
        self.config["created"] = json!(created);
    }

    /// Appends a layer with the history entry another build recorded for it (`--cache-from`).
    pub fn push_entry(&mut self, entry: Value, desc: Value, diff_id: Digest) {
        self.layers.push(desc);
        match self.config["rootfs"]["diff_ids"].as_array_mut() {
            Some(ids) => ids.push(json!(diff_id.to_string())),
            None => {
                self.config["rootfs"] = json!({"type": "layers", "diff_ids": [diff_id.to_string()]})
            }
        }
        if let Some(c) = entry["created"].as_str() {
            self.config["created"] = json!(c);
        }
        match self.config["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => self.config["history"] = json!([entry]),
        }
    }

    /// Writes the config and manifest into the store (no name); returns (manifest digest,
    /// config digest = the image ID).
    pub fn commit(&self, store: &Store) -> Result<(Digest, Digest)> {
        let config = serde_json::to_vec(&self.config).expect("a config serialises");
        let config_digest = store.ingest_bytes(&config)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": berth_image::OCI_MANIFEST,
            "config": {"mediaType": berth_image::OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
            "layers": self.layers,
        });
        let manifest =
            store.ingest_bytes(&serde_json::to_vec(&manifest).expect("a manifest serialises"))?;
        Ok((manifest, config_digest))
    }
}

/// This machine's architecture as OCI names it (`amd64`, `arm64`, ...).
pub fn host_arch() -> String {
    berth_image::Platform::host().architecture
}
