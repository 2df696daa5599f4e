//! HTTP to one registry: endpoint and scheme, authentication (anonymous, basic, bearer tokens
//! from the `WWW-Authenticate` challenge, cached per scope), retries with bounded exponential
//! backoff on 5xx, 429 and broken connections.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use ureq::http::{self, Response};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::DEFAULT_REGISTRY;
use crate::registry::RegistryOptions;
use crate::registry::credentials::Credentials;
use crate::store::Store;

/// Attempts per request: the first plus retries on 5xx, 429 and broken connections.
const ATTEMPTS: u32 = 5;
/// First backoff delay, doubled after each retry, capped at [`MAX_DELAY`].
const BASE_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(5);
/// How much of an error body goes into an error message.
const ERROR_BODY: u64 = 512;

/// The host a reference's registry is served from: Docker Hub's name is not its API host.
pub(crate) fn endpoint_host(registry: &str) -> &str {
    if registry == DEFAULT_REGISTRY {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// Whether a registry is spoken to over plain HTTP: loopback hosts (as Docker does) and those
/// listed as insecure.
pub(crate) fn is_plain_http(registry: &str, insecure: &[String]) -> bool {
    if insecure.iter().any(|i| i == registry) {
        return true;
    }
    let host = host_without_port(registry);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

/// A request body that can be produced again for a retry.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a store blob from `offset`.
    Blob {
        store: &'a Store,
        digest: &'a Digest,
        offset: u64,
        len: u64,
    },
}

/// Counters of what a client did, for reports and tests.
#[derive(Default, Debug)]
pub(crate) struct Stats {
    pub(crate) retries: AtomicU64,
}

#[derive(Default)]
struct AuthState {
    /// The registry asked for basic auth: send it with every request.
    basic: bool,
    /// Bearer tokens by scope list.
    tokens: HashMap<String, String>,
}

/// A client for one registry.
pub(crate) struct Client {
    registry: String,
    base: String,
    agent: ureq::Agent,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    pub(crate) stats: Stats,
}

/// Authorization scopes of a request: `repository:library/busybox:pull`.
pub(crate) type Scopes<'a> = &'a [String];

/// The pull scope of a repository.
pub(crate) fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// The push scope of a repository.
pub(crate) fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

impl Client {
    /// A client for `registry` (a reference's registry: `docker.io`, `localhost:5000`), with
    /// credentials looked up in Docker's config unless `creds` are given.
    pub(crate) fn new(
        registry: &str,
        opts: &RegistryOptions,
        creds: Option<Credentials>,
    ) -> Result<Self> {
        let plain = is_plain_http(registry, &opts.insecure);
        let scheme = if plain { "http" } else { "https" };
        let base = format!("{scheme}://{}", endpoint_host(registry));
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_redirects(5)
            .build()
            .into();
        let creds = match creds {
            Some(c) => Some(c),
            None => opts.credentials_for(registry)?,
        };
        Ok(Self {
            registry: registry.to_string(),
            base,
            agent,
            creds,
            auth: Mutex::new(AuthState::default()),
            stats: Stats::default(),
        })
    }

    /// `scheme://host` of the API.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Makes a URL absolute: a registry's `Location` may be a path or a full URL.
    pub(crate) fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    fn auth_header(&self, scopes: Scopes) -> Option<String> {
        let state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = state.tokens.get(&scopes.join(" ")) {
            return Some(format!("Bearer {t}"));
        }
        match (&self.creds, state.basic) {
            (Some(c), true) => Some(c.basic_header()),
            _ => None,
        }
    }

    /// Sends a request, authenticating on a 401 challenge and retrying on 5xx, 429 and broken
    /// connections. Returns the response whatever its status otherwise.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
        scopes: Scopes,
    ) -> Result<Response<ureq::Body>> {
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let auth = self.auth_header(scopes);
            let result = self.send_once(method, url, headers, body, auth.as_deref());
            let retry_after = match result {
                Ok(resp) if resp.status() == 401 => {
                    let challenge = resp
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let body = error_body(resp);
                    if authenticated {
                        return Err(Error::Unauthorized {
                            registry: self.registry.clone(),
                            had_credentials: self.creds.is_some(),
                            reason: if body.is_empty() { "401".into() } else { body },
                        });
                    }
                    authenticated = true;
                    self.authenticate(challenge.as_deref(), scopes)?;
                    attempt -= 1;
                    continue;
                }
                Ok(resp) if retryable_status(resp.status().as_u16()) && attempt < ATTEMPTS => {
                    let after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    drop(resp);
                    after
                }
                Ok(resp) => return Ok(resp),
                Err(e) if retryable_error(&e) && attempt < ATTEMPTS => None,
                Err(e) => {
                    return Err(Error::Transport {
                        method: method.to_string(),
                        url: url.to_string(),
                        reason: e.to_string(),
                    });
                }
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let backoff = BASE_DELAY.saturating_mul(1 << (attempt - 1)).min(MAX_DELAY);
            std::thread::sleep(retry_after.map_or(backoff, |a| a.min(MAX_DELAY)));
        }
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
        auth: Option<&str>,
    ) -> std::result::Result<Response<ureq::Body>, ureq::Error> {
        let mut req = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        match body {
            Body::Empty => {
                if matches!(method, "PUT" | "POST" | "PATCH") {
                    req = req.header("content-length", "0");
                }
                self.agent.run(req.body(())?)
            }
            Body::Bytes(b) => {
                req = req.header("content-length", b.len().to_string());
                self.agent.run(req.body(b.to_vec())?)
            }
            Body::Blob {
                store,
                digest,
                offset,
                len,
            } => {
                let mut file = store
                    .open(digest)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                io::Seek::seek(&mut file, io::SeekFrom::Start(*offset))?;
                let mut reader = file.take(*len);
                req = req.header("content-length", len.to_string());
                let req = req.body(ureq::SendBody::from_reader(&mut reader))?;
                self.agent.run(req)
            }
        }
    }

    /// Answers a 401 challenge: remembers basic auth, or fetches and caches a bearer token for
    /// these scopes.
    fn authenticate(&self, challenge: Option<&str>, scopes: Scopes) -> Result<()> {
        let unauthorized = |reason: String| Error::Unauthorized {
            registry: self.registry.clone(),
            had_credentials: self.creds.is_some(),
            reason,
        };
        let challenge =
            challenge.ok_or_else(|| unauthorized("401 without WWW-Authenticate".into()))?;
        let (scheme, params) = parse_challenge(challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                if self.creds.is_none() {
                    return Err(unauthorized(
                        "the registry wants a user name and password".into(),
                    ));
                }
                self.auth.lock().unwrap_or_else(|e| e.into_inner()).basic = true;
                Ok(())
            }
            "bearer" => {
                let realm = params
                    .get("realm")
                    .ok_or_else(|| unauthorized(format!("no realm in challenge {challenge:?}")))?;
                let mut url = realm.clone();
                let mut sep = if url.contains('?') { '&' } else { '?' };
                if let Some(service) = params.get("service") {
                    url.push_str(&format!("{sep}service={}", urlencode(service)));
                    sep = '&';
                }
                for scope in scopes {
                    url.push_str(&format!("{sep}scope={}", urlencode(scope)));
                    sep = '&';
                }
                let token = self.fetch_token(&url)?;
                self.auth
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .tokens
                    .insert(scopes.join(" "), token);
                Ok(())
            }
            other => Err(unauthorized(format!("unsupported auth scheme {other:?}"))),
        }
    }

    fn fetch_token(&self, url: &str) -> Result<String> {
        let mut req = self.agent.get(url);
        if let Some(c) = &self.creds {
            req = req.header("authorization", c.basic_header());
        }
        let transport = |e: ureq::Error| Error::Transport {
            method: "GET".into(),
            url: url.to_string(),
            reason: e.to_string(),
        };
        let resp = req.call().map_err(transport)?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(Error::Unauthorized {
                registry: self.registry.clone(),
                had_credentials: self.creds.is_some(),
                reason: format!("token server answered {status}: {}", error_body(resp)),
            });
        }
        if status != 200 {
            return Err(Error::Registry {
                method: "GET".into(),
                url: url.to_string(),
                status,
                body: error_body(resp),
            });
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let data = resp
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(transport)?;
        let t: Token = serde_json::from_slice(&data).map_err(|source| Error::Json {
            what: format!("token from {url}"),
            error: source,
        })?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Invalid {
                what: format!("token from {url}"),
                reason: "no token in the answer".into(),
            })
    }

    /// `GET /v2/`: checks the registry speaks the API and accepts our credentials (a 401
    /// challenge is answered with them).
    pub(crate) fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send("GET", &url, &[], &Body::Empty, &[])?;
        match resp.status().as_u16() {
            // An open registry answers 200 without asking: then there is nothing to check.
            200 => Ok(()),
            _ => Err(Self::status_error("GET", &url, resp)),
        }
    }

    /// An error for an answer with an unexpected status (404 on a manifest is
    /// [`Error::ManifestUnknown`] at the caller's choice).
    pub(crate) fn status_error(method: &str, url: &str, resp: Response<ureq::Body>) -> Error {
        let status = resp.status().as_u16();
        Error::Registry {
            method: method.to_string(),
            url: url.to_string(),
            status,
            body: error_body(resp),
        }
    }
}

/// The first bytes of a body, for error messages.
pub(crate) fn error_body(resp: Response<ureq::Body>) -> String {
    let mut buf = Vec::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(ERROR_BODY)
        .read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim().to_string()
}

fn retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status) && status != 501 && status != 505
}

fn retryable_error(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted
        ),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed => true,
        ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Splits `Bearer realm="...",service="...",scope="..."` into the scheme and its parameters.
pub(crate) fn parse_challenge(s: &str) -> (String, HashMap<String, String>) {
    let s = s.trim();
    let (scheme, mut rest) = match s.split_once(' ') {
        Some((a, b)) => (a.to_string(), b.trim()),
        None => (s.to_string(), ""),
    };
    let mut params = HashMap::new();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme, params)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Basic base64(user:password)`.
pub(crate) fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/busybox:pull");
        let (scheme, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(scheme, "Basic");
        assert_eq!(p["realm"], "Registry Realm");
    }

    #[test]
    fn plain_http_for_loopback_and_insecure() {
        let none: Vec<String> = vec![];
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_plain_http(host, &none), "{host}");
        }
        for host in ["docker.io", "ghcr.io", "10.0.0.1:5000", "example.com:5000"] {
            assert!(!is_plain_http(host, &none), "{host}");
        }
        assert!(is_plain_http(
            "example.com:5000",
            &["example.com:5000".into()]
        ));
        assert_eq!(endpoint_host("docker.io"), "registry-1.docker.io");
    }

    #[test]
    fn encodes() {
        assert_eq!(
            urlencode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(basic("u", "p"), "Basic dTpw");
    }
}
