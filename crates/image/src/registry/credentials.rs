//! Registry credentials in Docker's `config.json` format, so `docker login` and `berth login`
//! share them: `auths` (base64 `user:password`), `credHelpers` (per registry) and `credsStore`
//! (default helper), the helpers being `docker-credential-NAME get|store|erase`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::reference::DEFAULT_REGISTRY;

/// The key Docker files Docker Hub's credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password, or an access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    pub(crate) fn basic_header(&self) -> String {
        super::client::basic(&self.username, &self.password)
    }
}

/// Docker's client configuration file (only what berth reads and writes; every other field is
/// kept as it is when the file is rewritten).
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    json: serde_json::Value,
}

/// Where Docker's config.json is: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker/config.json")
}

/// The key a registry's credentials are filed under.
pub fn config_key(registry: &str) -> String {
    if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// A registry as Docker's clients name it (`https://index.docker.io/v1/`, `localhost:5000`,
/// `http://host:5000/`, empty for Docker Hub) as the host a reference has (`docker.io`,
/// `localhost:5000`).
pub fn registry_host(server: &str) -> &str {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    match s.split('/').next().unwrap_or(s) {
        "" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DEFAULT_REGISTRY
        }
        h => h,
    }
}

/// The host of an `auths` key: `https://host/v1/` and `host` name the same registry (an empty
/// key names none).
fn key_host(key: &str) -> &str {
    if key.trim().is_empty() {
        return "";
    }
    registry_host(key)
}

impl DockerConfig {
    /// Reads the file at `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self> {
        let json = match fs::read(path) {
            Ok(data) if data.iter().all(u8::is_ascii_whitespace) => serde_json::json!({}),
            Ok(data) => serde_json::from_slice(&data).map_err(|source| Error::Json {
                what: path.display().to_string(),
                error: source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => serde_json::json!({}),
            Err(e) => {
                return Err(Error::Credentials(format!("read {}: {e}", path.display())));
            }
        };
        if !json.is_object() {
            return Err(Error::Credentials(format!(
                "{}: not a JSON object",
                path.display()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            json,
        })
    }

    /// The file this configuration was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn helper_for(&self, registry: &str) -> Option<String> {
        if let Some(helpers) = self.json.get("credHelpers").and_then(|h| h.as_object()) {
            for (k, v) in helpers {
                if key_host(k) == registry
                    && let Some(name) = v.as_str()
                {
                    return Some(name.to_string());
                }
            }
        }
        self.json
            .get("credsStore")
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credentials for a registry (`docker.io`, `localhost:5000`), from its credential
    /// helper if one is configured, else from `auths`. `None` means anonymous.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(helper) = self.helper_for(registry) {
            return helper_get(&helper, &config_key(registry));
        }
        let Some(auths) = self.json.get("auths").and_then(|a| a.as_object()) else {
            return Ok(None);
        };
        for (key, entry) in auths {
            if key_host(key) != registry {
                continue;
            }
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str())
                && !auth.is_empty()
            {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| {
                        Error::Credentials(format!(
                            "{}: auths.{key}.auth: {e}",
                            self.path.display()
                        ))
                    })?;
                let raw = String::from_utf8(raw).map_err(|_| {
                    Error::Credentials(format!(
                        "{}: auths.{key}.auth: not UTF-8",
                        self.path.display()
                    ))
                })?;
                let (u, p) = raw.split_once(':').ok_or_else(|| {
                    Error::Credentials(format!(
                        "{}: auths.{key}.auth: not user:password",
                        self.path.display()
                    ))
                })?;
                return Ok(Some(Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                }));
            }
            if let Some(token) = entry.get("identitytoken").and_then(|t| t.as_str()) {
                return Ok(Some(Credentials {
                    username: "<token>".into(),
                    password: token.to_string(),
                }));
            }
        }
        Ok(None)
    }

    /// Stores credentials for a registry (in its credential helper if one is configured, else
    /// base64 in `auths`) and writes the file: mode 0600, temp file and rename.
    pub fn store(&mut self, registry: &str, creds: &Credentials) -> Result<()> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(registry) {
            return helper_run(
                &helper,
                "store",
                &serde_json::json!({"ServerURL": key, "Username": creds.username, "Secret": creds.password})
                    .to_string(),
            )
            .map(|_| ());
        }
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.username, creds.password));
        let obj = self.json.as_object_mut().expect("checked at load");
        let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
        if !auths.is_object() {
            *auths = serde_json::json!({});
        }
        let auths = auths.as_object_mut().expect("just made an object");
        auths.retain(|k, _| key_host(k) != registry);
        auths.insert(key, serde_json::json!({ "auth": auth }));
        self.save()
    }

    /// Removes a registry's credentials; returns whether there were any.
    pub fn erase(&mut self, registry: &str) -> Result<bool> {
        if let Some(helper) = self.helper_for(registry) {
            helper_run(&helper, "erase", &config_key(registry))?;
            return Ok(true);
        }
        let Some(auths) = self.json.get_mut("auths").and_then(|a| a.as_object_mut()) else {
            return Ok(false);
        };
        let before = auths.len();
        auths.retain(|k, _| key_host(k) != registry);
        if auths.len() == before {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    fn save(&self) -> Result<()> {
        let err = |op: &str, p: &Path, e: io::Error| {
            Error::Credentials(format!("{op} {}: {e}", p.display()))
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| err("create", dir, e))?;
        let data = serde_json::to_vec_pretty(&self.json).map_err(|source| Error::Json {
            what: self.path.display().to_string(),
            error: source,
        })?;
        let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
        let res = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(&data)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(err("write", &self.path, e));
        }
        Ok(())
    }
}

fn helper_run(helper: &str, verb: &str, input: &str) -> Result<Vec<u8>> {
    let bin = format!("docker-credential-{helper}");
    let mut child = Command::new(&bin)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Credentials(format!("run {bin} {verb}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Credentials(format!("run {bin} {verb}: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string()
            + String::from_utf8_lossy(&out.stderr).trim();
        return Err(Error::Credentials(format!(
            "{bin} {verb}: {}: {msg}",
            out.status
        )));
    }
    Ok(out.stdout)
}

fn helper_get(helper: &str, key: &str) -> Result<Option<Credentials>> {
    let bin = format!("docker-credential-{helper}");
    let out = match helper_run(helper, "get", key) {
        Ok(out) => out,
        // Helpers answer "credentials not found in native keychain" with a failure.
        Err(Error::Credentials(m)) if m.contains("not found") => return Ok(None),
        Err(e) => return Err(e),
    };
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let a: Answer = serde_json::from_slice(&out).map_err(|source| Error::Json {
        what: format!("{bin} get"),
        error: source,
    })?;
    Ok(Some(Credentials {
        username: a.username,
        password: a.secret,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_hosts() {
        use super::registry_host;
        assert_eq!(registry_host(""), "docker.io");
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("registry.hub.docker.com"), "docker.io");
        assert_eq!(registry_host("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(registry_host("localhost:5000"), "localhost:5000");
    }

    use super::*;

    #[test]
    fn reads_writes_and_erases_auths() {
        let dir = std::env::temp_dir().join(format!("berth-cred-test-{}", std::process::id()));
        let path = dir.join("config.json");
        let _ = fs::remove_dir_all(&dir);
        let mut c = DockerConfig::load(&path).unwrap();
        assert_eq!(c.get("localhost:5000").unwrap(), None);
        let creds = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        c.store("localhost:5000", &creds).unwrap();
        c.store("docker.io", &creds).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let c = DockerConfig::load(&path).unwrap();
        assert_eq!(c.get("localhost:5000").unwrap(), Some(creds.clone()));
        assert_eq!(c.get("docker.io").unwrap(), Some(creds.clone()));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(DOCKER_HUB_KEY), "{text}");
        let mut c = c;
        assert!(c.erase("localhost:5000").unwrap());
        assert!(!c.erase("localhost:5000").unwrap());
        assert_eq!(
            DockerConfig::load(&path)
                .unwrap()
                .get("localhost:5000")
                .unwrap(),
            None
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
