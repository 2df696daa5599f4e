//! sha256 digests: parsing, display, and hashing while reading.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A content digest, `sha256:<64 lowercase hex digits>`.
///
/// Only sha256 is accepted: it is what registries and OCI layouts use in practice, and one
/// algorithm keeps the store's layout (`blobs/sha256/<hex>`) and its checks simple.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Self> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| Error::InvalidDigest(s.to_string()))?;
        Self::from_hex(hex).map_err(|_| Error::InvalidDigest(s.to_string()))
    }

    /// Builds a digest from its 64 lowercase hex digits, without the `sha256:` prefix.
    pub fn from_hex(hex: &str) -> Result<Self> {
        let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok {
            return Err(Error::InvalidDigest(format!("sha256:{hex}")));
        }
        Ok(Self {
            hex: hex.to_string(),
        })
    }

    /// The sha256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_bytes(Sha256::digest(data).into())
    }

    fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            hex: hex::encode(bytes),
        }
    }

    /// The algorithm, always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The chain ID of a layer stack given its parent's chain ID (`None` for the bottom layer)
    /// and the layer's diff ID, as the OCI image spec defines it:
    /// `ChainID(L0) = DiffID(L0)`, `ChainID(L0|..|Ln) = sha256(ChainID(L0|..|Ln-1) + " " + DiffID(Ln))`.
    pub fn chain(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
        match parent {
            None => diff_id.clone(),
            Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
        }
    }

    /// Converts to oci-spec's digest type (for descriptors).
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        oci_spec::image::Digest::from_str(&self.to_string()).expect("a sha256 digest is valid")
    }

    /// Converts from oci-spec's digest type; fails for algorithms other than sha256.
    pub fn from_oci(d: &oci_spec::image::Digest) -> Result<Self> {
        Self::parse(d.as_ref())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A reader that hashes and counts what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the input (e.g. a tar's trailing padding), then returns the digest and
    /// the number of bytes read.
    pub(crate) fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            Digest::from_bytes(self.hasher.finalize().into()),
            self.count,
        ))
    }

    /// The digest and byte count so far, without reading further.
    pub(crate) fn finish_now(self) -> (Digest, u64) {
        (
            Digest::from_bytes(self.hasher.finalize().into()),
            self.count,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::of(b""));
        assert_eq!(Digest::from_oci(&d.to_oci()).unwrap(), d);
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "sha256:",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashing_reader_counts_and_hashes() {
        let mut r = HashingReader::new(&b"hello"[..]);
        let mut buf = [0u8; 2];
        r.read_exact(&mut buf).unwrap();
        let (d, n) = r.finish().unwrap();
        assert_eq!(n, 5);
        assert_eq!(d, Digest::of(b"hello"));
    }

    #[test]
    fn chain_id_follows_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(Digest::chain(None, &a), a);
        let expected = Digest::of(format!("{a} {b}").as_bytes());
        assert_eq!(Digest::chain(Some(&a), &b), expected);
    }
}
