//! `POST /build`: the classic builder's protocol (what `DOCKER_BUILDKIT=0 docker build`,
//! docker CLI 28 without the buildx plugin, and docker-py speak) over berth's builder.
//!
//! The body is the build context as a tar (plain, gzip or zstd), already filtered by the
//! client's `.dockerignore`. It is hostile input: it is unpacked with berth-image's layer
//! unpacker (nothing written outside the directory or through a symlink) into a directory of
//! the store's `tmp/`, named so that the store removes it if the server dies mid-build, and
//! removed when the build ends.
//!
//! The builder's progress (BuildKit's plain `#N ...` lines) is rewritten into the classic
//! builder's messages: `{"stream":"Step 2/3 : RUN make\n"}`, a step's output, ` ---> Using
//! cache`, then `{"aux":{"ID":...}}`, `Successfully built ID` and `Successfully tagged NAME`.
//! A failed build ends with `{"errorDetail":{"code":N,...},"error":...}`, `N` being a failed
//! `RUN`'s exit status (the docker CLI exits with it).
//!
//! The server is the builds' owner process: the containers a step runs carry its pid
//! ([`berth_engine::OWNER_PID_LABEL`]), so they go when it dies, and a reaper started with the
//! first build (`berth builder __reaper PID`, as the CLI's) removes what a killed server
//! left.
//!
//! Not done: cancelling a build when its client goes away (it runs to its end), remote
//! contexts (`remote=`), BuildKit (`version=2`), and the resource limits of `RUN` steps
//! (`memory`, `cpu*`, `shmsize`, accepted and ignored).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

use berth_build::{BuildError, BuildOptions, ProgressSink};
use berth_image::Reference;
use berth_image::archive::familiar_name;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::State;
use crate::http::{ApiError, Request, Result, error_chain};
use crate::images::{JsonStream, StreamError, credentials_of, json_stream, registry_host};

pub(crate) async fn route(state: &Arc<State>, req: Request) -> Result {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        (&Method::POST, ["build"]) => build(state, req).await,
        (&Method::POST, ["build", "prune"]) => prune(state, req).await,
        _ => Err(crate::router::no_route(&req)),
    }
}

/// `POST /session` and `/grpc`, what BuildKit clients (buildx) open: not served, with an
/// answer that says what is.
pub(crate) async fn buildkit(_state: &Arc<State>, _req: Request) -> Result {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "BuildKit is not available: berth serves the classic builder API (POST /build); \
         build with DOCKER_BUILDKIT=0 docker build",
    ))
}

/// `POST /build/prune`: the whole build cache (berth's cache takes no filters).
async fn prune(state: &Arc<State>, req: Request) -> Result {
    req.flag("all", false)?;
    if !req.filters()?.is_empty() {
        return Err(ApiError::bad_request(
            "build cache filters are not supported: berth prunes the whole build cache",
        ));
    }
    let engine = state.engine.clone();
    let report = crate::http::blocking(move || {
        berth_build::prune_cache(&engine).map_err(|e| ApiError::internal(error_chain(&e)))
    })
    .await?;
    crate::http::json(&json!({
        "CachesDeleted": if report.steps.is_empty() { Value::Null } else { json!(report.steps) },
        "SpaceReclaimed": report.reclaimed,
    }))
}

/// A JSON object query parameter (`buildargs`, `labels`): string values, `null` ones left
/// out (`--build-arg NAME` with NAME unset in the client's environment).
fn json_map(req: &Request, key: &str) -> Result<BTreeMap<String, String>> {
    let Some(text) = req.param(key).filter(|t| !t.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let map: BTreeMap<String, Option<String>> = serde_json::from_str(text).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid {key} {text:?}: a JSON object of strings expected: {e}"
        ))
    })?;
    Ok(map.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
}

/// The `dockerfile` parameter: a relative path inside the context, without `..`.
fn dockerfile_path(text: &str) -> Result<PathBuf> {
    let p = Path::new(text);
    let ok = !text.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !ok {
        return Err(ApiError::bad_request(format!(
            "dockerfile {text:?}: a path inside the build context expected"
        )));
    }
    Ok(p.to_path_buf())
}

/// The `X-Registry-Config` header: base64 JSON of auth configurations by registry; the
/// credentials by registry host.
fn registry_config(req: &Request) -> Result<BTreeMap<String, berth_image::registry::Credentials>> {
    let Some(v) = req.headers.get("x-registry-config") else {
        return Ok(BTreeMap::new());
    };
    let text = v
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Registry-Config: not ASCII"))?;
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let raw = crate::http::base64_decode(text)
        .ok_or_else(|| ApiError::bad_request("X-Registry-Config: invalid base64"))?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    let map: HashMap<String, Value> = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request(format!("X-Registry-Config: invalid JSON: {e}")))?;
    let mut out = BTreeMap::new();
    for (server, conf) in map {
        let Value::Object(o) = conf else { continue };
        let fields: HashMap<String, String> = o
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
            .collect();
        if let Some(c) = credentials_of(&fields) {
            out.insert(registry_host(&server), c);
        }
    }
    Ok(out)
}

/// A directory for a build context in the store's `tmp/`, named as the store names its own
/// temp entries (`<kind>-<pid>-<start time>-<nanos>-<n>`), so that the store's clean-up of
/// dead writers' debris removes it if the server is killed; removed on drop.
struct ContextDir(PathBuf);

impl ContextDir {
    fn new(engine: &berth_engine::Engine) -> std::io::Result<Self> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let pid = std::process::id();
        let start = berth_sys::proc::pid_start_time(pid as i32).unwrap_or(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = engine
            .images()
            .root()
            .join("tmp")
            .join(format!("buildctx-{pid}-{start}-{nanos}-{n}"));
        std::fs::create_dir_all(dir.parent().unwrap_or(Path::new("/")))?;
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for ContextDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts, once per server, the reaper that removes the build containers this server (their
/// owner) leaves when it is killed mid-build.
fn ensure_reaper(state: &State) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        match berth_build::spawn_reaper(
            &state.berth_exe,
            state.engine.root(),
            Some(state.engine.runtime_bin()),
            std::process::id(),
        ) {
            // Not waited for: it outlives the server by design; reap it when it exits.
            Ok(mut child) => {
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
            }
            Err(e) => tracing::warn!(error = %e, "start the build reaper"),
        }
    });
}

/// `POST /build`.
async fn build(state: &Arc<State>, mut req: Request) -> Result {
    match req.param("version").unwrap_or("1") {
        "" | "1" => {}
        "2" => {
            return Err(ApiError::bad_request(
                "BuildKit (version=2) is not available: berth serves the classic builder API \
                 (DOCKER_BUILDKIT=0 docker build)",
            ));
        }
        v => {
            return Err(ApiError::bad_request(format!(
                "invalid builder version {v:?}"
            )));
        }
    }
    if req.param("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "remote build contexts are not supported: send the context as the request body",
        ));
    }
    let dockerfile = dockerfile_path(req.param("dockerfile").unwrap_or("Dockerfile"))?;
    let mut tags = Vec::new();
    for t in req.all("t") {
        if t.is_empty() {
            continue;
        }
        Reference::parse(t)
            .map_err(|e| ApiError::bad_request(format!("invalid reference format: {t:?}: {e}")))?;
        tags.push(t.to_string());
    }
    let build_args = json_map(&req, "buildargs")?;
    let labels = json_map(&req, "labels")?;
    let cache_from: Vec<String> = match req.param("cachefrom").filter(|c| !c.is_empty()) {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid cachefrom {text:?}: a JSON array expected: {e}"
            ))
        })?,
    };
    if let Some(p) = req.param("platform").filter(|p| !p.is_empty()) {
        let host = format!("linux/{}", berth_image::Platform::host().architecture);
        if p != host && p != "linux" {
            return Err(ApiError::bad_request(format!(
                "platform {p} is not supported: berth builds for this machine ({host}) only"
            )));
        }
    }
    let quiet = req.flag("q", false)?;
    req.flag("rm", true)?;
    req.flag("forcerm", false)?;
    let mut opts = BuildOptions {
        tags: tags.clone(),
        target: req
            .param("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: req.flag("nocache", false)?,
        pull: req.flag("pull", false)?,
        network: req
            .param("networkmode")
            .filter(|n| !n.is_empty() && *n != "default")
            .map(str::to_string),
        build_args,
        labels,
        cache_from,
        registry: Some(crate::images::registry_options(None)),
        registry_auth: registry_config(&req)?,
        ..Default::default()
    };
    if opts
        .build_args
        .get("BUILDKIT_INLINE_CACHE")
        .is_some_and(|v| v == "1" || v == "true")
    {
        opts.inline_cache = true;
    }
    if let Some(e) = opts.build_args.get("SOURCE_DATE_EPOCH") {
        opts.source_date_epoch = Some(e.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid SOURCE_DATE_EPOCH {e:?}: seconds since 1970"
            ))
        })?);
    }
    ensure_reaper(state);
    let reader = req.reader();
    let engine = state.engine.clone();
    json_stream(move |stream| {
        let dir = ContextDir::new(&engine).map_err(|e| {
            ApiError::internal(format!("make a directory for the build context: {e}"))
        })?;
        berth_image::unpack_layer(TarTail::new(reader), &dir.0).map_err(|e| {
            ApiError::bad_request(format!(
                "the build context is not a valid tar archive: {}",
                error_chain(&e)
            ))
        })?;
        let context = dir
            .0
            .canonicalize()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let df = context.join(&dockerfile);
        // A Dockerfile that is a symlink must still be in the context.
        match df.canonicalize() {
            Ok(real) if real.starts_with(&context) => opts.dockerfile = Some(real),
            Ok(_) => {
                return Err(ApiError::bad_request(format!(
                    "dockerfile {}: a symlink out of the build context",
                    dockerfile.display()
                ))
                .into());
            }
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "Cannot locate specified Dockerfile: {}",
                    dockerfile.display()
                ))
                .into());
            }
        }
        opts.context = context;
        let classic = Arc::new(Mutex::new(Classic {
            stream: stream.clone(),
            quiet,
            partial: Vec::new(),
            vertices: HashMap::new(),
        }));
        let w: Box<dyn Write + Send> = Box::new(ClassicSink(classic));
        let sink: ProgressSink = Arc::new(Mutex::new(w));
        let result = berth_build::build(&engine, &opts, Some(sink));
        let built = result.map_err(build_error)?;
        let id = built.id.to_string();
        stream.send(&json!({ "aux": { "ID": id } }));
        if quiet {
            stream.stream(&format!("{id}\n"));
        } else {
            stream.stream(&format!("Successfully built {}\n", &built.id.hex()[..12]));
            for t in &tags {
                let name = Reference::parse(t)
                    .map(|r| familiar_name(&r))
                    .unwrap_or_else(|_| t.clone());
                stream.stream(&format!("Successfully tagged {name}\n"));
            }
        }
        Ok(())
    })
    .await
}

/// A build's error: Docker's status (400 for what is wrong with the Dockerfile, the
/// context or the target) and, for a `RUN` that failed, the classic builder's text and the
/// command's exit status.
fn build_error(e: BuildError) -> StreamError {
    match &e {
        BuildError::Run { command, code, .. } => StreamError {
            error: ApiError::internal(format!(
                "The command '{command}' returned a non-zero code: {code}"
            )),
            code: Some(i64::from(*code)),
        },
        BuildError::Parse(_)
        | BuildError::Instruction { .. }
        | BuildError::NoTarget(_)
        | BuildError::Context { .. } => StreamError {
            error: ApiError::new(StatusCode::BAD_REQUEST, error_chain(&e)),
            code: Some(1),
        },
        _ => StreamError {
            error: ApiError::internal(error_chain(&e)),
            code: Some(1),
        },
    }
}

/// What a vertex of the builder's progress is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Vertex {
    /// `[internal] ...` (loading the Dockerfile, pulling a base image): not shown.
    Internal,
    /// A Dockerfile step.
    Step,
    /// Exporting the image: the final messages say it instead.
    Export,
}

/// The builder's plain progress rewritten as the classic builder's stream messages.
struct Classic {
    stream: Arc<JsonStream>,
    quiet: bool,
    partial: Vec<u8>,
    vertices: HashMap<String, Vertex>,
}

impl Classic {
    fn line(&mut self, line: &str) {
        if self.quiet {
            return;
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.stream.stream(&format!("{line}\n"));
            return;
        };
        let (num, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let kind = self.vertices.get(num).copied();
        if kind.is_none() {
            let k = if text.starts_with("[internal]") {
                Vertex::Internal
            } else if text.starts_with('[') {
                Vertex::Step
            } else {
                Vertex::Export
            };
            self.vertices.insert(num.to_string(), k);
            if k == Vertex::Step
                && let Some((label, instruction)) = text[1..].split_once("] ")
            {
                let count = label.rsplit(' ').next().unwrap_or(label);
                // The classic builder shows a base image as the Dockerfile names it.
                let instruction = match instruction.strip_prefix("FROM ") {
                    Some(base) if !base.contains(' ') => match Reference::parse(base) {
                        Ok(r) => format!("FROM {}", familiar_name(&r)),
                        Err(_) => instruction.to_string(),
                    },
                    _ => instruction.to_string(),
                };
                self.stream
                    .stream(&format!("Step {count} : {instruction}\n"));
            }
            return;
        }
        if let Some(w) = text.strip_prefix("WARN:") {
            self.stream
                .stream(&format!("[WARNING]: {}\n", w.trim_start()));
            return;
        }
        if kind != Some(Vertex::Step) {
            return;
        }
        if text == "CACHED" {
            self.stream.stream(" ---> Using cache\n");
            return;
        }
        if text.starts_with("DONE") || text.starts_with("ERROR") {
            return;
        }
        // A step's output: `#N 0.123 text`.
        let (t, out) = text.split_once(' ').unwrap_or((text, ""));
        if t.parse::<f64>().is_ok() {
            self.stream.stream(&format!("{out}\n"));
        } else {
            self.stream.stream(&format!("{text}\n"));
        }
    }
}

/// The builder's sink: whole lines go to [`Classic::line`].
struct ClassicSink(Arc<Mutex<Classic>>);

impl Write for ClassicSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        c.partial.extend_from_slice(buf);
        while let Some(i) = c.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = c.partial.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            c.line(&text);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A tar stream read as Go's `archive/tar` reads it: one that ends right after its last
/// entry's data, without the padding to the block and the two zero blocks (what the docker
/// CLI sends for a Dockerfile from outside the context or stdin: its tar wrapper closes the
/// pipe before the tar writer), gets them added. A stream that ends anywhere else (inside a
/// header, inside an entry's data) is passed on as it is, for the tar reader to refuse.
/// Compressed streams and GNU sparse entries are passed through unchanged.
struct TarTail<R> {
    inner: R,
    /// Bytes of the header block being read.
    header: Vec<u8>,
    /// Data bytes of the current entry still to come, then its padding.
    data: u64,
    pad: u64,
    /// Past the end marker, or a stream this does not follow: no changes.
    passthrough: bool,
    /// Zeros still to hand out after the inner stream ended.
    synthetic: u64,
    ended: bool,
}

impl<R: std::io::Read> TarTail<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            header: Vec::with_capacity(512),
            data: 0,
            pad: 0,
            passthrough: false,
            synthetic: 0,
            ended: false,
        }
    }

    /// Follows the tar structure over `buf`, which was just read.
    fn track(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() && !self.passthrough {
            if self.data > 0 || self.pad > 0 {
                let n = (buf.len() as u64).min(self.data + self.pad);
                let from_data = n.min(self.data);
                self.data -= from_data;
                self.pad -= n - from_data;
                buf = &buf[n as usize..];
                continue;
            }
            let n = (512 - self.header.len()).min(buf.len());
            self.header.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
            if self.header.len() < 512 {
                continue;
            }
            let h = std::mem::take(&mut self.header);
            if h.iter().all(|b| *b == 0) {
                self.passthrough = true;
                break;
            }
            if h[..2] == [0x1f, 0x8b] || h[..4] == [0x28, 0xb5, 0x2f, 0xfd] {
                self.passthrough = true;
                break;
            }
            let size = match h[156] {
                b'1'..=b'6' => Some(0),
                b'S' => None,
                _ => tar_size(&h[124..136]),
            };
            match size {
                Some(size) => {
                    self.data = size;
                    self.pad = (512 - size % 512) % 512;
                }
                None => self.passthrough = true,
            }
        }
    }
}

/// A tar header's size field: octal, or base-256 when its first byte has the high bit.
fn tar_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

impl<R: std::io::Read> std::io::Read for TarTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ended {
            let n = (buf.len() as u64).min(self.synthetic) as usize;
            buf[..n].fill(0);
            self.synthetic -= n as u64;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.track(&buf[..n]);
            return Ok(n);
        }
        self.ended = true;
        // Only the padding of the last entry, or the end marker, is missing: add them.
        if !self.passthrough && self.data == 0 && self.header.is_empty() {
            self.synthetic = self.pad + 1024;
            self.pad = 0;
        }
        self.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn names(data: Vec<u8>) -> std::io::Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut ar = tar::Archive::new(TarTail::new(&data[..]));
        for e in ar.entries()? {
            let mut e = e?;
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v)?;
            out.push((e.path()?.display().to_string(), v));
        }
        Ok(out)
    }

    #[test]
    fn tar_without_its_tail_is_completed() {
        let full = tar_of(&[("a", b"hello"), ("b", b"world!")]);
        let expected = vec![
            ("a".to_string(), b"hello".to_vec()),
            ("b".to_string(), b"world!".to_vec()),
        ];
        assert_eq!(names(full.clone()).unwrap(), expected);
        // Cut right after the last entry's data: what the docker CLI sends.
        let data_end = 512 + 512 + 512 + 6;
        assert_eq!(names(full[..data_end].to_vec()).unwrap(), expected);
        // Cut after the padding, before the end marker.
        assert_eq!(names(full[..2048].to_vec()).unwrap(), expected);
        // Cut inside the data or a header: still an error.
        assert!(names(full[..data_end - 2].to_vec()).is_err());
        assert!(names(full[..1024 + 100].to_vec()).is_err());
    }

    #[test]
    fn tar_sizes() {
        assert_eq!(tar_size(b"00000000017\0"), Some(15));
        assert_eq!(tar_size(b"           \0"), Some(0));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 1;
        big[10] = 1;
        assert_eq!(tar_size(&big), Some(257));
        assert_eq!(tar_size(b"zz\0"), None);
    }

    #[test]
    fn dockerfile_paths() {
        assert!(dockerfile_path("Dockerfile").is_ok());
        assert!(dockerfile_path("sub/Dockerfile.dev").is_ok());
        assert!(dockerfile_path("./Dockerfile").is_ok());
        assert!(dockerfile_path("../Dockerfile").is_err());
        assert!(dockerfile_path("/etc/passwd").is_err());
        assert!(dockerfile_path("a/../../b").is_err());
        assert!(dockerfile_path("").is_err());
    }
}
