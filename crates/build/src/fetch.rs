//! `ADD https://...`: a file downloaded for a build, checked against `--checksum`.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// The most a downloaded file may hold (what no Dockerfile should `ADD` over HTTP).
const MAX: u64 = 4 << 30;

/// Downloads `url` into `dir`, under the last segment of its path (`index.html` when there is
/// none); checks `checksum` (`sha256:<hex>`) when given. Returns the file name.
pub(crate) fn download(url: &str, dir: &Path, checksum: Option<&str>) -> Result<String, String> {
    let expected = match checksum {
        Some(c) => Some(
            c.strip_prefix("sha256:")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| {
                    format!("invalid checksum {c:?}: expected sha256:<64 hex digits>")
                })?,
        ),
        None => None,
    };
    let path_part = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(url)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let name = match path_part.split_once('/') {
        Some((_, p)) => p.rsplit('/').next().unwrap_or_default(),
        None => "",
    };
    let name = if name.is_empty() || name == "." || name == ".." {
        "index.html".to_string()
    } else {
        name.to_string()
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .max_redirects(10)
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| format!("failed to fetch {url}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!(
            "failed to fetch {url}: invalid response status {}",
            status.as_u16()
        ));
    }
    let mut reader = resp.body_mut().with_config().limit(MAX).reader();
    let path = dir.join(&name);
    let mut file =
        std::fs::File::create(&path).map_err(|e| format!("write {}: {e}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("failed to fetch {url}: {e}"))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        std::io::Write::write_all(&mut file, &buf[..n])
            .map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    let actual: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if let Some(want) = expected
        && want != actual
    {
        return Err(format!(
            "digest mismatch for {url}: expected sha256:{want}, got sha256:{actual}"
        ));
    }
    Ok(name)
}
