//! The image endpoints: pull and import (`POST /images/create`), push, list, inspect, history,
//! tag, remove, prune, save (`GET /images/{name}/get`, `GET /images/get`), load,
//! `GET /distribution/{name}/json` and `POST /auth`.
//!
//! Pulls and pushes answer with Docker's JSON progress messages, one per line, as the docker
//! CLI displays them (per-layer lines keyed by `id`, with `progressDetail`); an error before
//! the first message is an HTTP error, one after it the stream's last message
//! (`{"errorDetail": ..., "error": ...}`). Credentials come only from the client
//! (`X-Registry-Auth`): the server never reads its own user's Docker config.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_engine::{Filters, ImageDeleted, ImageListOptions};
use berth_image::archive::familiar_name;
use berth_image::registry::{
    self, Credentials, Outcome, Progress, PullOptions, PushOptions, RegistryOptions, Transfer,
};
use berth_image::{Digest, Image, Platform, Reference, SnapshotMode, Snapshotter, Store};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::State;
use crate::http::{
    self, ApiError, ChannelWriter, Request, Result, blocking, error_chain, json, json_response,
};

pub(crate) async fn route(state: &Arc<State>, req: Request) -> Result {
    let segs: Vec<String> = req.segments.clone();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let name = |parts: &[&str]| parts.join("/");
    match (&req.method, segs.as_slice()) {
        (&Method::GET, ["images", "json"]) => list(state, req).await,
        (&Method::POST, ["images", "create"]) => create(state, req).await,
        (&Method::POST, ["images", "load"]) => load(state, req).await,
        (&Method::POST, ["images", "prune"]) => prune(state, req).await,
        (&Method::GET, ["images", "get"]) => {
            let names = req.all("names").iter().map(|s| s.to_string()).collect();
            save(state, names).await
        }
        (&Method::GET, ["distribution", n @ .., "json"]) if !n.is_empty() => {
            distribution(state, req, name(n)).await
        }
        (&Method::GET, ["images", n @ .., "json"]) if !n.is_empty() => {
            inspect(state, name(n)).await
        }
        (&Method::GET, ["images", n @ .., "history"]) if !n.is_empty() => {
            history(state, name(n)).await
        }
        (&Method::POST, ["images", n @ .., "tag"]) if !n.is_empty() => {
            tag(state, req, name(n)).await
        }
        (&Method::POST, ["images", n @ .., "push"]) if !n.is_empty() => {
            push(state, req, name(n)).await
        }
        (&Method::GET, ["images", n @ .., "get"]) if !n.is_empty() => {
            save(state, vec![name(n)]).await
        }
        (&Method::DELETE, ["images", n @ ..]) if !n.is_empty() => remove(state, req, name(n)).await,
        _ => Err(crate::router::no_route(&req)),
    }
}

// ---- errors, credentials, JSON message streams (shared with `build`) ----

/// An engine error about the image `name`: Docker's `No such image: NAME` (404) when it is
/// not in the store, 409 for Docker's `conflict: ...` refusals.
pub(crate) fn image_error(e: berth_engine::Error, name: &str) -> ApiError {
    use berth_engine::Error as E;
    match &e {
        E::ImageNotFound(_) | E::Image(berth_image::Error::ImageNotFound(_)) => {
            ApiError::not_found(format!("No such image: {name}"))
        }
        E::Image(berth_image::Error::AmbiguousImage(_)) => ApiError::bad_request(error_chain(&e)),
        E::Other(m) if m.starts_with("conflict:") => ApiError::conflict(m.clone()),
        _ => e.into(),
    }
}

/// [`image_error`] for the image store's errors.
fn store_error(e: berth_image::Error, name: &str) -> ApiError {
    image_error(berth_engine::Error::Image(e), name)
}

/// Registry access for a request: plain HTTP for loopback registries and those in
/// `BERTH_INSECURE_REGISTRIES`, and only the client's credentials (an empty Docker config
/// stands in for the server user's own).
pub(crate) fn registry_options(credentials: Option<Credentials>) -> RegistryOptions {
    RegistryOptions {
        docker_config: Some(PathBuf::from("/dev/null")),
        credentials,
        ..RegistryOptions::from_env()
    }
}

/// Credentials from a decoded auth configuration (`X-Registry-Auth`, an `X-Registry-Config`
/// entry, the `/auth` body): `username` and `password`, or `auth` (base64 `user:password`).
/// An identity token alone is not usable by berth's registry client: none.
pub(crate) fn credentials_of(auth: &HashMap<String, String>) -> Option<Credentials> {
    let get = |k: &str| auth.get(k).filter(|v| !v.is_empty());
    if let (Some(u), Some(p)) = (get("username"), get("password")) {
        return Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        });
    }
    let raw = http::base64_decode(get("auth")?)?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    (!u.is_empty()).then(|| Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

/// A registry as Docker's clients name it as the host a reference has.
pub(crate) fn registry_host(server: &str) -> String {
    berth_image::registry::credentials::registry_host(server).to_string()
}

/// The `X-Registry-Auth` credentials of a request.
fn request_credentials(req: &Request) -> Result<Option<Credentials>> {
    Ok(credentials_of(&http::registry_auth(&req.headers)?))
}

/// Docker's JSON message stream written from blocking code: the first message sends the
/// response head (200, `application/json`); see [`json_stream`].
pub(crate) struct JsonStream {
    inner: Mutex<StreamInner>,
}

struct StreamInner {
    out: ChannelWriter,
    /// Told when the first message is written (the response can start), or of an error
    /// before any.
    started: Option<tokio::sync::oneshot::Sender<Result<()>>>,
    /// The client went away.
    gone: bool,
}

impl JsonStream {
    /// Writes one message; false once the client has gone.
    pub fn send(&self, v: &Value) -> bool {
        let mut line = serde_json::to_vec(v).unwrap_or_default();
        line.push(b'\n');
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if st.gone {
            return false;
        }
        if let Some(tx) = st.started.take() {
            let _ = tx.send(Ok(()));
        }
        if st.out.write_all(&line).is_err() {
            st.gone = true;
        }
        !st.gone
    }

    /// `{"status": text}`.
    pub fn status(&self, text: &str) -> bool {
        self.send(&json!({ "status": text }))
    }

    /// `{"stream": text}`.
    pub fn stream(&self, text: &str) -> bool {
        self.send(&json!({ "stream": text }))
    }

    /// Whether the client has gone (a write failed).
    pub fn gone(&self) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).gone
    }

    /// Whether a message was written (an error now goes into the stream).
    fn started(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .started
            .is_none()
    }
}

/// What a failed streamed operation reports: its HTTP error (before any message) and, once
/// the stream has started, Docker's error message with an optional `code` (a build's exit
/// status, which the docker CLI exits with).
pub(crate) struct StreamError {
    pub error: ApiError,
    pub code: Option<i64>,
}

impl From<ApiError> for StreamError {
    fn from(error: ApiError) -> Self {
        Self { error, code: None }
    }
}

/// Runs `f` on the blocking pool with a [`JsonStream`]: the response is 200 with the
/// messages once `f` writes the first one; if `f` fails before that, its error is the
/// response; if it fails after, the error is the stream's last message.
pub(crate) async fn json_stream<F>(f: F) -> Result
where
    F: FnOnce(&Arc<JsonStream>) -> std::result::Result<(), StreamError> + Send + 'static,
{
    let (out, body) = http::writer_body();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stream = Arc::new(JsonStream {
        inner: Mutex::new(StreamInner {
            out,
            started: Some(tx),
            gone: false,
        }),
    });
    tokio::task::spawn_blocking(move || {
        let result = f(&stream);
        if let Err(e) = result {
            if stream.started() {
                let mut detail = json!({ "message": e.error.message });
                if let Some(code) = e.code {
                    detail["code"] = json!(code);
                }
                stream.send(&json!({ "errorDetail": detail, "error": e.error.message }));
            } else {
                let tx = stream
                    .inner
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .started
                    .take();
                if let Some(tx) = tx {
                    let _ = tx.send(Err(e.error));
                }
            }
        }
        // Dropping the last handle on the stream (its writer) ends the body.
    });
    match rx.await {
        Ok(Err(e)) => Err(e),
        // Started, or done without a message (the sender dropped with the stream).
        Ok(Ok(())) | Err(_) => {
            let mut r = hyper::Response::new(body);
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            Ok(r)
        }
    }
}

/// Docker's `units.HumanSize`: decimal units, four significant digits (`%.4g`).
pub(crate) use berth_engine::human_size;

/// The `progress` text of a transfer as Docker's daemon renders it for a wide terminal:
/// `[=====>      ]  1.2MB/3.4MB`.
fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    format!("[{}>{}] {numbers}", "=".repeat(pct), " ".repeat(50 - pct))
}

/// A blob's short ID in progress messages (12 hex digits, as Docker's).
fn short(d: &Digest) -> String {
    d.hex()[..12].to_string()
}

/// Per-blob byte counts of a transfer, throttled to about one message per percent.
#[derive(Default)]
struct Transfers {
    /// Blob -> (done, total, done at the last message).
    blobs: HashMap<Digest, (u64, u64, u64)>,
}

impl Transfers {
    fn start(&mut self, blob: &Digest, size: u64) {
        self.blobs.insert(blob.clone(), (0, size, 0));
    }

    /// Counts `n` bytes; returns (done, total) when a message is due.
    fn advance(&mut self, blob: &Digest, n: u64) -> Option<(u64, u64)> {
        if n == 0 {
            return None;
        }
        let (done, total, last) = self.blobs.get_mut(blob)?;
        *done += n;
        let step = (*total / 100).max(64 << 10);
        if *done - *last >= step || *done >= *total {
            *last = *done;
            Some((*done, *total))
        } else {
            None
        }
    }
}

// ---- pull / import ----

/// A pull's progress as Docker's messages.
struct PullMessages<'a> {
    stream: &'a JsonStream,
    store: Store,
    tag: String,
    state: Mutex<PullState>,
}

#[derive(Default)]
struct PullState {
    config: Option<Digest>,
    /// Layers in the manifest's order.
    layers: Vec<Digest>,
    transfers: Transfers,
    /// Layers downloaded (they are "Pull complete" once the image is unpacked).
    downloaded: Vec<Digest>,
}

impl PullMessages<'_> {
    fn is_config(&self, blob: &Digest) -> bool {
        self.lock().config.as_ref() == Some(blob)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PullState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn layer(&self, blob: &Digest, status: &str) {
        self.stream.send(&json!({
            "status": status, "progressDetail": {}, "id": short(blob),
        }));
    }
}

impl Progress for PullMessages<'_> {
    fn resolved(&self, reference: &Reference, _digest: &Digest) {
        self.stream.send(&json!({
            "status": format!("Pulling from {}", reference.repository()),
            "id": self.tag,
        }));
    }

    fn manifest(&self, config: &Digest, layers: &[(Digest, u64)]) {
        let mut st = self.lock();
        st.config = Some(config.clone());
        st.layers = layers.iter().map(|(d, _)| d.clone()).collect();
        drop(st);
        for (d, _) in layers {
            if !self.store.has(d) {
                self.layer(d, "Pulling fs layer");
            }
        }
    }

    fn start(&self, blob: &Digest, size: u64, _transfer: Transfer) {
        self.lock().transfers.start(blob, size);
    }

    fn advance(&self, blob: &Digest, bytes: u64) {
        if self.is_config(blob) {
            return;
        }
        let due = self.lock().transfers.advance(blob, bytes);
        if let Some((done, total)) = due {
            self.stream.send(&json!({
                "status": "Downloading",
                "progressDetail": {"current": done, "total": total},
                "progress": progress_bar(done, total),
                "id": short(blob),
            }));
        }
    }

    fn finish(&self, blob: &Digest, outcome: &Outcome) {
        if self.is_config(blob) {
            return;
        }
        match outcome {
            Outcome::Exists => self.layer(blob, "Already exists"),
            _ => {
                self.layer(blob, "Verifying Checksum");
                self.layer(blob, "Download complete");
                self.lock().downloaded.push(blob.clone());
            }
        }
    }

    fn note(&self, message: &str) {
        self.stream.status(message);
    }

    fn cancelled(&self) -> bool {
        self.stream.gone()
    }
}

/// The reference `fromImage` and `tag` name: the tag (or a `sha256:` digest) replaces
/// `fromImage`'s own; neither gives `latest` (berth does not pull all tags at once).
fn pull_reference(from: &str, tag: &str) -> Result<Reference> {
    let bad = |e: berth_image::Error| ApiError::bad_request(e.to_string());
    let base = Reference::parse(from).map_err(bad)?;
    if tag.is_empty() {
        return Ok(base);
    }
    let text = if tag.starts_with("sha256:") {
        format!("{}@{tag}", base.name())
    } else {
        format!("{}:{tag}", base.name())
    };
    Reference::parse(&text).map_err(bad)
}

fn platform_param(req: &Request) -> Result<Platform> {
    match req.param("platform").filter(|p| !p.is_empty()) {
        None => Ok(Platform::host()),
        Some(p) => Platform::parse(&p.to_ascii_lowercase()).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid platform {p:?}: expected os/arch[/variant]"
            ))
        }),
    }
}

/// `POST /images/create`: a pull (`fromImage`) or an import (`fromSrc=-`).
async fn create(state: &Arc<State>, mut req: Request) -> Result {
    if let Some(src) = req.param("fromSrc").filter(|s| !s.is_empty()) {
        if src != "-" {
            return Err(ApiError::bad_request(format!(
                "fromSrc {src:?}: berth imports only from the request body (fromSrc=-)"
            )));
        }
        return import(state, &mut req).await;
    }
    let Some(from) = req.param("fromImage").filter(|s| !s.is_empty()) else {
        return Err(ApiError::bad_request("fromImage or fromSrc is required"));
    };
    let reference = pull_reference(from, req.param("tag").unwrap_or(""))?;
    let opts = PullOptions {
        platform: platform_param(&req)?,
        registry: registry_options(request_credentials(&req)?),
        ..PullOptions::default()
    };
    let engine = state.engine.clone();
    json_stream(move |stream| {
        let store = engine.images().clone();
        let before = store.resolve(&reference).ok();
        let tag = reference
            .digest()
            .map(|d| d.to_string())
            .or_else(|| reference.tag().map(str::to_string))
            .unwrap_or_default();
        let progress = PullMessages {
            stream,
            store,
            tag,
            state: Mutex::new(PullState::default()),
        };
        let pulled = engine
            .image_pull(&reference, &opts, &progress)
            .map_err(|e| pull_error(e, &reference))?;
        let st = progress.lock();
        let done: Vec<Digest> = st
            .layers
            .iter()
            .filter(|l| st.downloaded.contains(l))
            .cloned()
            .collect();
        drop(st);
        for l in &done {
            progress.layer(l, "Pull complete");
        }
        stream.status(&format!("Digest: {}", pulled.digest));
        let name = familiar_name(&reference);
        if pulled.fetched == 0 && before.as_ref() == Some(&pulled.manifest) {
            stream.status(&format!("Status: Image is up to date for {name}"));
        } else {
            stream.status(&format!("Status: Downloaded newer image for {name}"));
        }
        Ok(())
    })
    .await
}

/// A pull's error: 404 for what the registry does not have, Docker's text.
fn pull_error(e: berth_engine::Error, reference: &Reference) -> StreamError {
    use berth_image::Error as I;
    let name = familiar_name(reference);
    let error = match &e {
        berth_engine::Error::Image(I::ManifestUnknown { .. }) => ApiError::not_found(format!(
            "manifest for {name} not found: manifest unknown: {}",
            error_chain(&e)
        )),
        berth_engine::Error::Image(I::Unauthorized { .. }) => ApiError::not_found(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {}",
            reference.name(),
            error_chain(&e)
        )),
        berth_engine::Error::Image(I::NoMatchingPlatform { .. }) => {
            ApiError::not_found(error_chain(&e))
        }
        _ => ApiError::internal(error_chain(&e)),
    };
    error.into()
}

/// `POST /images/create?fromSrc=-&repo=R&tag=T`: the body is a root file system tarball.
async fn import(state: &Arc<State>, req: &mut Request) -> Result {
    let repo = req.param("repo").unwrap_or("").to_string();
    if repo.is_empty() {
        req.drain().await;
        return Err(ApiError::bad_request(
            "repo is required: berth names every image it imports",
        ));
    }
    if req.param("changes").is_some_and(|c| !c.is_empty()) {
        req.drain().await;
        return Err(ApiError::bad_request(
            "changes are not supported for an import: build from the imported image instead",
        ));
    }
    let name = pull_reference(&repo, req.param("tag").unwrap_or(""))?;
    if name.digest().is_some() {
        return Err(ApiError::bad_request(
            "an imported image is named by a tag, not a digest",
        ));
    }
    let platform = platform_param(req)?;
    let reader = req.reader();
    let engine = state.engine.clone();
    json_stream(move |stream| {
        let image = engine
            .image_import(reader, &name, &platform)
            .map_err(ApiError::from)?;
        stream.status(&image.config_digest.to_string());
        Ok(())
    })
    .await
}

// ---- push ----

/// A push's progress as Docker's messages.
struct PushMessages<'a> {
    stream: &'a JsonStream,
    config: Digest,
    transfers: Mutex<Transfers>,
}

impl PushMessages<'_> {
    fn layer(&self, blob: &Digest, status: &str) {
        self.stream.send(&json!({
            "status": status, "progressDetail": {}, "id": short(blob),
        }));
    }
}

impl Progress for PushMessages<'_> {
    fn start(&self, blob: &Digest, size: u64, _transfer: Transfer) {
        self.transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .start(blob, size);
    }

    fn advance(&self, blob: &Digest, bytes: u64) {
        if blob == &self.config {
            return;
        }
        let due = self
            .transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .advance(blob, bytes);
        if let Some((done, total)) = due {
            self.stream.send(&json!({
                "status": "Pushing",
                "progressDetail": {"current": done, "total": total},
                "progress": progress_bar(done, total),
                "id": short(blob),
            }));
        }
    }

    fn finish(&self, blob: &Digest, outcome: &Outcome) {
        if blob == &self.config {
            return;
        }
        match outcome {
            Outcome::Exists => self.layer(blob, "Layer already exists"),
            Outcome::Done => self.layer(blob, "Pushed"),
            Outcome::Mounted { from } => self.layer(blob, &format!("Mounted from {from}")),
        }
    }

    fn note(&self, message: &str) {
        self.stream.status(message);
    }
}

/// Docker's 404 for a push of a name the store does not have (the repository, familiar).
fn no_local_image(r: &Reference) -> ApiError {
    let name = familiar_name(r);
    let repo = match r.tag() {
        Some(t) => name.strip_suffix(&format!(":{t}")).unwrap_or(&name),
        None => &name,
    };
    ApiError::not_found(format!(
        "An image does not exist locally with the tag: {repo}"
    ))
}

/// `POST /images/{name}/push?tag=T`: that tag, or every tag of the repository without one.
async fn push(state: &Arc<State>, req: Request, name: String) -> Result {
    let base = Reference::parse(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if base.digest().is_some() {
        return Err(ApiError::bad_request("cannot push a digest reference"));
    }
    let tag = req.param("tag").unwrap_or("").to_string();
    let opts = PushOptions {
        registry: registry_options(request_credentials(&req)?),
        chunk_size: None,
    };
    let engine = state.engine.clone();
    let store = engine.images().clone();
    let named_tag = name
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    let targets: Vec<Reference> = blocking(move || {
        let refs = if !tag.is_empty() {
            vec![
                base.with_tag(&tag)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
            ]
        } else if named_tag {
            vec![base.clone()]
        } else {
            let mut all: Vec<Reference> = store
                .names()
                .map_err(|e| store_error(e, &name))?
                .keys()
                .filter_map(|n| Reference::parse(n).ok())
                .filter(|r| r.name() == base.name() && r.tag().is_some())
                .collect();
            all.sort_by(|a, b| a.tag().cmp(&b.tag()));
            all
        };
        for r in &refs {
            if store.resolve(r).is_err() {
                return Err(no_local_image(r));
            }
        }
        if refs.is_empty() {
            return Err(no_local_image(&base));
        }
        Ok(refs)
    })
    .await?;
    json_stream(move |stream| {
        let first = &targets[0];
        stream.status(&format!("The push refers to repository [{}]", first.name()));
        for reference in &targets {
            let image = Image::by_name(engine.images(), reference)
                .map_err(|e| store_error(e, &reference.to_string()))?;
            for l in image.layers.iter().rev() {
                stream.send(&json!({
                    "status": "Preparing", "progressDetail": {}, "id": short(&l.digest),
                }));
            }
            let progress = PushMessages {
                stream,
                config: image.config_digest.clone(),
                transfers: Mutex::new(Transfers::default()),
            };
            let pushed = engine
                .image_push(reference, &opts, &progress)
                .map_err(|e| ApiError::internal(error_chain(&e)))?;
            let tag = reference.tag().unwrap_or("latest");
            stream.status(&format!(
                "{tag}: digest: {} size: {}",
                pushed.digest, pushed.size
            ));
            stream.send(&json!({
                "progressDetail": {},
                "aux": {"Tag": tag, "Digest": pushed.digest.to_string(), "Size": pushed.size},
            }));
        }
        Ok(())
    })
    .await
}

// ---- list / inspect / history ----

/// `GET /images/json`.
async fn list(state: &Arc<State>, req: Request) -> Result {
    let opts = ImageListOptions {
        all: req.flag("all", false)?,
        filters: Filters::parse(&req.filters()?)?,
    };
    let engine = state.engine.clone();
    let list = blocking(move || {
        engine.image_summaries(&opts).map_err(|e| match e {
            berth_engine::Error::Image(berth_image::Error::ImageNotFound(n)) => {
                ApiError::not_found(format!("No such image: {n}"))
            }
            e => e.into(),
        })
    })
    .await?;
    json(&list)
}

/// `GET /images/{name}/json`.
async fn inspect(state: &Arc<State>, name: String) -> Result {
    let engine = state.engine.clone();
    let info = blocking(move || {
        engine
            .image_inspect(&name)
            .map_err(|e| image_error(e, &name))
    })
    .await?;
    json(&info)
}

/// Seconds since the epoch of an RFC 3339 time (offsets other than UTC read as UTC).
fn unix_seconds(t: &str) -> i64 {
    let base = t.get(..19).unwrap_or(t);
    berth_engine::parse_rfc3339(&format!("{base}Z"))
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// `GET /images/{name}/history`: newest first; the image's ID and tags on its top entry.
async fn history(state: &Arc<State>, name: String) -> Result {
    let engine = state.engine.clone();
    let items = blocking(move || {
        let store = engine.images();
        let found = store.find_image(&name).map_err(|e| store_error(e, &name))?;
        let image = Image::load(store, &found.manifest).map_err(|e| store_error(e, &name))?;
        let tags: Vec<String> = found
            .names
            .iter()
            .filter(|n| n.tag().is_some())
            .map(familiar_name)
            .collect();
        let entries = Snapshotter::new(store, SnapshotMode::detect()).history(&image);
        Ok(entries
            .iter()
            .enumerate()
            .map(|(i, h)| {
                json!({
                    "Id": if i == 0 { image.config_digest.to_string() } else { "<missing>".into() },
                    "Created": h.created.as_deref().map_or(0, unix_seconds),
                    "CreatedBy": h.created_by,
                    "Tags": if i == 0 { json!(tags) } else { Value::Null },
                    "Size": h.size,
                    "Comment": h.comment,
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    json(&items)
}

// ---- tag / remove / prune ----

/// `POST /images/{name}/tag?repo=R&tag=T`: 201.
async fn tag(state: &Arc<State>, req: Request, name: String) -> Result {
    let repo = req.param("repo").unwrap_or("");
    if repo.is_empty() {
        return Err(ApiError::bad_request("repo is required"));
    }
    if repo.contains('@') {
        return Err(ApiError::bad_request(
            "refusing to create a tag with a digest reference",
        ));
    }
    let tag = req.param("tag").filter(|t| !t.is_empty());
    let target = match tag {
        Some(t) => {
            let base = Reference::parse(repo).map_err(|e| ApiError::bad_request(e.to_string()))?;
            base.with_tag(t)
        }
        None => Reference::parse(repo),
    }
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let engine = state.engine.clone();
    blocking(move || {
        engine
            .image_tag(&name, &target)
            .map_err(|e| image_error(e, &name))
    })
    .await?;
    Ok(http::status(StatusCode::CREATED))
}

/// `DELETE /images/{name}?force=&noprune=` (berth keeps no parent images: `noprune` changes
/// nothing).
async fn remove(state: &Arc<State>, req: Request, name: String) -> Result {
    let force = req.flag("force", false)?;
    req.flag("noprune", false)?;
    let engine = state.engine.clone();
    let items = blocking(move || {
        engine
            .image_remove(&name, force)
            .map_err(|e| image_error(e, &name))
    })
    .await?;
    let out: Vec<Value> = items
        .into_iter()
        .map(|i| match i {
            ImageDeleted::Untagged(n) => json!({ "Untagged": n }),
            ImageDeleted::Deleted(d) => json!({ "Deleted": d }),
        })
        .collect();
    json(&out)
}

/// `POST /images/prune?filters=`: `dangling`, `until`, `label`, `label!`.
async fn prune(state: &Arc<State>, req: Request) -> Result {
    let filters = Filters::parse(&req.filters()?)?;
    let engine = state.engine.clone();
    let report = blocking(move || Ok(engine.prune_images_filtered(&filters)?)).await?;
    let mut deleted: Vec<Value> = Vec::new();
    for n in &report.untagged {
        deleted.push(json!({ "Untagged": n }));
    }
    for d in &report.deleted {
        deleted.push(json!({ "Deleted": d }));
    }
    json(&json!({
        "ImagesDeleted": if deleted.is_empty() { Value::Null } else { Value::Array(deleted) },
        "SpaceReclaimed": report.reclaimed,
    }))
}

// ---- save / load ----

/// `GET /images/{name}/get`, `GET /images/get?names=...`: a `docker save` archive.
async fn save(state: &Arc<State>, names: Vec<String>) -> Result {
    if names.is_empty() {
        return Err(ApiError::bad_request(
            "names is required: the images to save",
        ));
    }
    let engine = state.engine.clone();
    let checked = names.clone();
    blocking(move || {
        for n in &checked {
            engine
                .images()
                .find_image(n)
                .map_err(|e| store_error(e, n))?;
        }
        Ok(())
    })
    .await?;
    let engine = state.engine.clone();
    let (mut out, body) = http::writer_body();
    tokio::task::spawn_blocking(move || {
        let mut w = std::io::BufWriter::with_capacity(256 << 10, &mut out);
        let result = engine.image_save(&names, &mut w).map_err(|e| e.to_string());
        let result = result.and_then(|()| w.flush().map_err(|e| e.to_string()));
        drop(w);
        if let Err(e) = result {
            // The client sees the archive cut short.
            tracing::warn!(error = %e, "image save failed mid-stream");
            out.fail(std::io::Error::other(e));
        }
    });
    let mut r = hyper::Response::new(body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

/// `POST /images/load?quiet=`: the body is a `docker save` or OCI archive.
async fn load(state: &Arc<State>, mut req: Request) -> Result {
    req.flag("quiet", false)?;
    let platform = platform_param(&req)?;
    let reader = req.reader();
    let engine = state.engine.clone();
    json_stream(move |stream| {
        let images = engine.image_load(reader, &platform).map_err(|e| {
            let status = match &e {
                berth_engine::Error::Image(berth_image::Error::Io { .. }) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                berth_engine::Error::Image(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            ApiError::new(status, error_chain(&e))
        })?;
        for i in images {
            match i.name {
                Some(n) => stream.stream(&format!("Loaded image: {n}\n")),
                None => {
                    let id = Image::load(engine.images(), &i.manifest)
                        .map(|im| im.config_digest.to_string())
                        .unwrap_or_else(|_| i.manifest.to_string());
                    stream.stream(&format!("Loaded image ID: {id}\n"))
                }
            };
        }
        Ok(())
    })
    .await
}

// ---- distribution / auth ----

/// `GET /distribution/{name}/json`: the descriptor and platforms the registry has.
async fn distribution(_state: &Arc<State>, req: Request, name: String) -> Result {
    let reference = Reference::parse(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let opts = registry_options(request_credentials(&req)?);
    let remote = blocking(move || {
        registry::inspect(&reference, &opts).map_err(|e| {
            let status = match &e {
                berth_image::Error::ManifestUnknown { .. } => StatusCode::NOT_FOUND,
                berth_image::Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            ApiError::new(status, error_chain(&e))
        })
    })
    .await?;
    let platforms: Vec<Value> = remote
        .platforms
        .iter()
        .map(|p| {
            let mut v = json!({"architecture": p.architecture, "os": p.os});
            if let Some(var) = &p.variant {
                v["variant"] = json!(var);
            }
            v
        })
        .collect();
    json(&json!({
        "Descriptor": {
            "mediaType": remote.media_type,
            "digest": remote.digest.to_string(),
            "size": remote.size,
        },
        "Platforms": platforms,
    }))
}

/// `POST /auth`: checks the credentials against the registry (nothing is stored: the client
/// keeps them).
pub(crate) async fn auth(_state: &Arc<State>, mut req: Request) -> Result {
    let body: HashMap<String, Value> = req.json(false).await?;
    let fields: HashMap<String, String> = body
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
        .collect();
    let Some(creds) = credentials_of(&fields) else {
        return Err(ApiError::bad_request(
            "a username and a password are needed (berth cannot log in with an identity token)",
        ));
    };
    let host = registry_host(fields.get("serveraddress").map_or("", String::as_str));
    let opts = registry_options(None);
    blocking(move || {
        registry::check_login(&host, &creds, &opts).map_err(|e| match &e {
            berth_image::Error::Unauthorized { registry, .. } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!(
                    "login attempt to {registry} failed with status: 401 Unauthorized ({})",
                    error_chain(&e)
                ),
            ),
            _ => ApiError::internal(error_chain(&e)),
        })
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(528), "528B");
        assert_eq!(human_size(1_240), "1.24kB");
        assert_eq!(human_size(2_100_000), "2.1MB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(12_345_678), "12.35MB");
        assert_eq!(human_size(0), "0B");
    }

    #[test]
    fn bars_like_docker() {
        let b = progress_bar(500, 1000);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert!(b.ends_with("    500B/1kB"), "{b}");
        assert_eq!(progress_bar(1000, 1000).matches('=').count(), 50);
    }

    #[test]
    fn pull_references() {
        let r = pull_reference("docker.io/library/busybox", "1.36").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:1.36");
        let r = pull_reference("busybox:1.35", "").unwrap();
        assert_eq!(r.tag(), Some("1.35"));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = pull_reference("localhost:5000/x", &d).unwrap();
        assert_eq!(r.digest().unwrap().to_string(), d);
        assert!(pull_reference("Bad Name", "").is_err());
    }

    #[test]
    fn credentials_and_hosts() {
        let mut m = HashMap::new();
        m.insert("auth".to_string(), "dTpw".to_string()); // u:p
        let c = credentials_of(&m).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        m.insert("username".into(), "a".into());
        m.insert("password".into(), "b".into());
        assert_eq!(credentials_of(&m).unwrap().username, "a");
        assert!(credentials_of(&HashMap::new()).is_none());
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(registry_host("localhost:5000"), "localhost:5000");
    }
}
