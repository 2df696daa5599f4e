//! Pins: manifests kept alive without a name.
//!
//! A pin is a file `pins/<key>` holding a manifest digest. Garbage collection keeps a pinned
//! manifest and everything it refers to, as it keeps a named one, but a pin is no image name:
//! `images` does not list it. The builder pins the image after each cached step
//! (`build-<cache key>`), so a rebuild finds its steps after a prune and a build's own
//! intermediate images survive one that runs meanwhile.

use std::fs;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::error::{Error, Result, io_err};
use crate::store::Store;

impl Store {
    fn pins_dir(&self) -> PathBuf {
        self.root().join("pins")
    }

    /// Pins `manifest` under `key` (letters, digits, `.`, `_`, `-`; at most 128), replacing
    /// what the key pinned before. Atomic and durable.
    pub fn pin(&self, key: &str, manifest: &Digest) -> Result<()> {
        check_key(key)?;
        let dir = self.pins_dir();
        berth_sys::private_dir(&dir)?;
        let p = dir.join(key);
        Ok(berth_sys::write_atomic(
            &p,
            manifest.to_string().as_bytes(),
            0o600,
        )?)
    }

    /// The manifest pinned under `key`, if any (a pin whose file is unreadable or holds no
    /// digest counts as none).
    pub fn pinned(&self, key: &str) -> Option<Digest> {
        check_key(key).ok()?;
        let text = fs::read_to_string(self.pins_dir().join(key)).ok()?;
        Digest::parse(text.trim()).ok()
    }

    /// Removes the pin `key`; `false` if there was none. What it kept goes at the next prune.
    pub fn unpin(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let p = self.pins_dir().join(key);
        match fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }

    /// Every pin whose key starts with `prefix`, sorted by key.
    pub fn pins(&self, prefix: &str) -> Result<Vec<(String, Digest)>> {
        let dir = self.pins_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &dir)(e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(io_err("read", &dir))?;
            let key = e.file_name().to_string_lossy().into_owned();
            if key.starts_with('.') || !key.starts_with(prefix) {
                continue;
            }
            if let Some(d) = self.pinned(&key) {
                out.push((key, d));
            }
        }
        out.sort();
        Ok(out)
    }
}

fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidPin(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_replace_list_unpin() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path()).unwrap();
        let a = s.ingest_bytes(b"a").unwrap();
        let b = s.ingest_bytes(b"b").unwrap();
        assert_eq!(s.pinned("build-1"), None);
        s.pin("build-1", &a).unwrap();
        s.pin("build-2", &b).unwrap();
        s.pin("other", &b).unwrap();
        s.pin("build-1", &b).unwrap();
        assert_eq!(s.pinned("build-1"), Some(b.clone()));
        let keys: Vec<String> = s.pins("build-").unwrap().into_iter().map(|p| p.0).collect();
        assert_eq!(keys, ["build-1", "build-2"]);
        assert!(s.unpin("build-1").unwrap());
        assert!(!s.unpin("build-1").unwrap());
        assert_eq!(s.pinned("build-1"), None);
    }

    #[test]
    fn bad_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path()).unwrap();
        let a = s.ingest_bytes(b"a").unwrap();
        for k in ["", "../x", "a/b", ".hidden", &"k".repeat(129)] {
            let e = s.pin(k, &a).unwrap_err();
            assert!(e.to_string().contains("invalid pin"), "{k}: {e}");
        }
    }
}
