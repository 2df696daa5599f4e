//! Executing a Dockerfile: stages, steps, the cache.
//!
//! Every stage is a chain of images. Each step starts from the image the previous one made,
//! and makes the next: metadata instructions (`ENV`, `CMD`, ...) change the config only;
//! `RUN` runs a container of the engine from the current image and commits its changes
//! ([`Engine::diff_layer`]) as a layer; `COPY`/`ADD` create a container that is never started,
//! write into its mounted root ([`crate::copy`]) and commit that. Every step's image is written
//! into the store without a name and pinned under its cache key (`build-<key>`,
//! [`berth_image::Store::pin`]), so a step whose key was built before is not run again: its
//! image is taken as it is, so an unchanged rebuild gives the same image ID.
//!
//! A step's cache key is the sha256 of the previous key, the instruction after substitution,
//! for `RUN` the build arguments in scope (they are its environment), and for `COPY`/`ADD` a
//! digest of what it reads (file contents and metadata, [`crate::copy::sources_digest`]).
//!
//! Only the stages the target needs are built (its `FROM` and `COPY --from` /
//! `RUN --mount=from=` references, transitively), each once; stages that do not depend on each
//! other are built at the same time, one thread each.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use berth_engine::{AttachEnd, AttachIo, ContainerCreate, DiffOptions, Engine};
use berth_image::registry::{Credentials, PullOptions, RegistryOptions};
use berth_image::{Digest, Image, Reference};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::copy::{self, CopySpec};
use crate::dockerfile::{
    self, CommandLine, Dockerfile, Healthcheck, Instruction, Kind, MountType, Network, Stage, lex,
};
use crate::error::{BuildError, Result};
use crate::ignore::Matcher;
use crate::state::{ImageState, LAYER_TAR, host_arch};

/// Label on the containers a build makes (its process ID): the engine's owner label, so that
/// a started step's container goes with a killed build (its monitor sees the build exit), and
/// one only created is recognised and removed by the next build.
pub const BUILD_LABEL: &str = berth_engine::OWNER_PID_LABEL;

/// The PATH an image without one gets (BuildKit's, for Linux).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Arguments every build has without an `ARG` (proxies: usable, never recorded).
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What to build.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// The build context: a directory.
    pub context: PathBuf,
    /// The Dockerfile's path (default: `Dockerfile` in the context).
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text, when it does not come from a file (`-f -`).
    pub dockerfile_text: Option<String>,
    /// Names for the result (`-t`, several).
    pub tags: Vec<String>,
    /// `--build-arg NAME=VALUE`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--no-cache`: run every step.
    pub no_cache: bool,
    /// `--no-cache-filter`: run every step of these stages.
    pub no_cache_filter: Vec<String>,
    /// `--label`: labels added to the result.
    pub labels: BTreeMap<String, String>,
    /// `--pull`: pull base images even when present.
    pub pull: bool,
    /// `--network`: what `RUN --network=default` uses (`bridge` unless set).
    pub network: Option<String>,
    /// `SOURCE_DATE_EPOCH`: timestamps of the result (history, config, layer files) clamped
    /// to it, for reproducible images.
    pub source_date_epoch: Option<u64>,
    /// `--secret id=ID,src=PATH|env=VAR`: `(id, content)`.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// `--cache-from IMAGE`: images whose inline cache (below) may provide steps' layers.
    pub cache_from: Vec<String>,
    /// `--cache-to type=inline` / `BUILDKIT_INLINE_CACHE=1`: record in the result's config
    /// which step made which layer ([`INLINE_CACHE`]), for `--cache-from` elsewhere.
    pub inline_cache: bool,
    /// How base and `--cache-from` images are pulled: `None` for
    /// [`RegistryOptions::from_env`] (credentials from Docker's config file).
    pub registry: Option<RegistryOptions>,
    /// Credentials by registry host (`docker.io`, `localhost:5000`) for those pulls, before
    /// `registry`'s (the Engine API's `X-Registry-Config`).
    pub registry_auth: BTreeMap<String, Credentials>,
}

impl BuildOptions {
    /// The options to pull `reference` with.
    pub fn pull_options(&self, reference: &Reference) -> PullOptions {
        let mut registry = self
            .registry
            .clone()
            .unwrap_or_else(RegistryOptions::from_env);
        if let Some(c) = self.registry_auth.get(reference.registry()) {
            registry.credentials = Some(c.clone());
        }
        PullOptions {
            registry,
            ..PullOptions::default()
        }
    }
}

/// The config field where an inline cache is kept: `[{"key", "layer", "history"}]`, the cache
/// key of each step that made a layer, with the indexes of that layer and its history entry.
pub const INLINE_CACHE: &str = "berth.build.cache.v0";

/// What a build made.
#[derive(Clone, Debug)]
pub struct Built {
    /// The image ID (config digest).
    pub id: Digest,
    /// The manifest digest.
    pub manifest: Digest,
    /// Steps that ran.
    pub ran: usize,
    /// Steps taken from the cache.
    pub cached: usize,
}

/// Where the plain progress goes (BuildKit's `--progress=plain` shape: `#N ...` lines).
pub type ProgressSink = Arc<Mutex<Box<dyn Write + Send>>>;

struct Progress {
    out: Option<ProgressSink>,
    next: Mutex<usize>,
}

impl Progress {
    fn vertex(&self) -> usize {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        *n
    }
    fn line(&self, text: &str) {
        if let Some(out) = &self.out {
            let mut w = out.lock().unwrap();
            let _ = writeln!(w, "{text}");
            let _ = w.flush();
        }
    }
}

/// Builds the image a Dockerfile describes, with `engine`'s images and containers. Progress
/// lines go to `progress` (none with `None`, as `-q`).
pub fn build(
    engine: &Engine,
    opts: &BuildOptions,
    progress: Option<ProgressSink>,
) -> Result<Built> {
    let p = Progress {
        out: progress,
        next: Mutex::new(0),
    };
    let context = opts
        .context
        .canonicalize()
        .map_err(|e| BuildError::Context {
            path: opts.context.display().to_string(),
            message: e.to_string(),
        })?;
    if !context.is_dir() {
        return Err(BuildError::Context {
            path: context.display().to_string(),
            message: "not a directory".into(),
        });
    }
    let v = p.vertex();
    p.line(&format!(
        "#{v} [internal] load build definition from Dockerfile"
    ));
    let (text, file_name, df_path) = match &opts.dockerfile_text {
        Some(t) => (t.clone(), "Dockerfile".to_string(), None),
        None => {
            let path = match &opts.dockerfile {
                Some(f) if f.is_absolute() => f.clone(),
                Some(f) => std::env::current_dir()
                    .map(|d| d.join(f))
                    .unwrap_or_else(|_| f.clone()),
                None => context.join("Dockerfile"),
            };
            let text = std::fs::read_to_string(&path).map_err(|e| BuildError::Context {
                path: path.display().to_string(),
                message: format!("cannot read the Dockerfile: {e}"),
            })?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "Dockerfile".into());
            (text, name, Some(path))
        }
    };
    let df = dockerfile::parse_named(&text, &file_name)?;
    p.line(&format!("#{v} DONE 0.0s"));
    for w in &df.warnings {
        p.line(&format!("#{v} WARN: {file_name}:{}: {}", w.line, w.message));
    }

    let v = p.vertex();
    p.line(&format!("#{v} [internal] load .dockerignore"));
    let df_for_ignore = df_path
        .clone()
        .unwrap_or_else(|| context.join("Dockerfile"));
    let ignore = match crate::ignore::find_ignore_file(&context, &df_for_ignore) {
        Some(f) => Some(crate::ignore::load(&context, &df_for_ignore).map_err(|e| {
            BuildError::Context {
                path: f.display().to_string(),
                message: e.to_string(),
            }
        })?),
        None => None,
    };
    p.line(&format!("#{v} DONE 0.0s"));

    remove_stale_build_containers(engine);
    let _lease = engine.images().lease()?;
    let b = Builder {
        engine,
        opts,
        df: &df,
        file: file_name,
        context,
        ignore,
        progress: p,
        results: Mutex::new(HashMap::new()),
        ran: Mutex::new(0),
        cached: Mutex::new(0),
        cache_from: load_cache_from(engine, opts)?,
    };
    let target = match &opts.target {
        Some(t) => df.stage(t).ok_or_else(|| BuildError::NoTarget(t.clone()))?,
        None => df
            .stages
            .last()
            .ok_or_else(|| BuildError::Other("the Dockerfile has no FROM".into()))?,
    };
    b.build_needed(target.index)?;
    let (mut state, inline) = b
        .results
        .lock()
        .unwrap()
        .get(&target.index)
        .cloned()
        .expect("built above");
    if opts.inline_cache {
        state.config[INLINE_CACHE] = Value::Array(inline);
    } else if let Some(o) = state.config.as_object_mut() {
        o.remove(INLINE_CACHE);
    }
    b.finish(&mut state)
}

/// The inline caches of the `--cache-from` images (pulled if missing; one that cannot be had
/// is skipped, as BuildKit does, with no cache from it).
fn load_cache_from(
    engine: &Engine,
    opts: &BuildOptions,
) -> Result<HashMap<String, (Value, Digest, Value)>> {
    let mut out = HashMap::new();
    let store = engine.images();
    for name in &opts.cache_from {
        let image = match store.find_image_loaded(name) {
            Ok(i) => i,
            Err(_) => {
                let Ok(r) = Reference::parse(name) else {
                    continue;
                };
                if engine
                    .image_pull(
                        &r,
                        &opts.pull_options(&r),
                        &berth_image::registry::NoProgress,
                    )
                    .is_err()
                {
                    continue;
                }
                match store.find_image_loaded(&r.to_string()) {
                    Ok(i) => i,
                    Err(_) => continue,
                }
            }
        };
        let Ok(st) = ImageState::load(store, &image) else {
            continue;
        };
        let history = st.config["history"].as_array().cloned().unwrap_or_default();
        let diff_ids = st.config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for e in st.config[INLINE_CACHE].as_array().into_iter().flatten() {
            let (Some(key), Some(layer), Some(hist)) = (
                e["key"].as_str(),
                e["layer"].as_u64().map(|n| n as usize),
                e["history"].as_u64().map(|n| n as usize),
            ) else {
                continue;
            };
            let diff = diff_ids
                .get(layer)
                .and_then(|d| d.as_str())
                .and_then(|d| Digest::parse(d).ok());
            let (Some(desc), Some(entry), Some(diff)) =
                (st.layers.get(layer), history.get(hist), diff)
            else {
                continue;
            };
            out.insert(key.to_string(), (desc.clone(), diff, entry.clone()));
        }
    }
    Ok(out)
}

/// Records the step that made the state's last layer in the inline cache.
fn record_inline(scope: &mut Scope) {
    let layers = scope.state.layers.len();
    let history = scope.state.config["history"].as_array().map_or(0, Vec::len);
    if layers == 0 || history == 0 {
        return;
    }
    scope
        .inline
        .push(json!({"key": scope.key, "layer": layers - 1, "history": history - 1}));
}

/// Removes the containers build `pid` made (its reaper and its Ctrl-C handler call this once
/// it is over); errors are the caller's to ignore, one container's removal failing does not
/// stop the others'.
pub fn remove_build_containers(engine: &Engine, pid: u32) -> Result<()> {
    let pid = pid.to_string();
    for c in engine.list()? {
        if c.record.config.labels.get(BUILD_LABEL) == Some(&pid) {
            let _ = engine.remove(&c.record.id, true, true);
        }
    }
    Ok(())
}

/// Starts `BERTH --root ROOT [--runtime RUNTIME] builder __reaper OWNER`: a process in a
/// session of its own (a signal to the owner's process group, Ctrl-C, does not reach it) that
/// waits for process `owner` to end, however it ends (SIGKILL included), then removes the
/// containers its builds left ([`remove_build_containers`]). Not waited for here: it outlives
/// its owner by design.
pub fn spawn_reaper(
    berth: &Path,
    root: &Path,
    runtime: Option<&Path>,
    owner: u32,
) -> std::io::Result<std::process::Child> {
    let mut cmd = std::process::Command::new(berth);
    cmd.arg("--root").arg(root);
    if let Some(rt) = runtime {
        cmd.arg("--runtime").arg(rt);
    }
    cmd.args(["builder", "__reaper", &owner.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn()
}

/// What [`prune_cache`] removed.
#[derive(Clone, Debug, Default)]
pub struct CachePruneReport {
    /// The cached steps (their keys, `build-<sha256>`).
    pub steps: Vec<String>,
    /// `RUN --mount=type=cache` directories.
    pub mounts: usize,
    /// Bytes freed: the cache mounts' and the blobs and layers only the steps held.
    pub reclaimed: u64,
}

/// `builder prune` (`POST /build/prune`): forgets every cached step and removes the `RUN`
/// cache mounts, then the store content nothing else holds.
pub fn prune_cache(engine: &Engine) -> Result<CachePruneReport> {
    let store = engine.images();
    let mut report = CachePruneReport::default();
    for (key, _) in store.pins("build-")? {
        store.unpin(&key)?;
        report.steps.push(key);
    }
    let mounts = engine.root().join("build-cache");
    if let Ok(rd) = std::fs::read_dir(&mounts) {
        for e in rd.flatten() {
            let p = e.path();
            let io =
                |err: std::io::Error| BuildError::Other(format!("remove {}: {err}", p.display()));
            // A directory per cache mount, and its lock file.
            if p.is_dir() {
                report.reclaimed += dir_size(&p);
                std::fs::remove_dir_all(&p).map_err(io)?;
                report.mounts += 1;
            } else {
                std::fs::remove_file(&p).map_err(io)?;
            }
        }
    }
    report.reclaimed += store.prune()?.reclaimed;
    Ok(report)
}

/// The bytes of the regular files below `dir` (symlinks not followed).
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Removes the containers of builds whose process is gone (killed mid-step).
fn remove_stale_build_containers(engine: &Engine) {
    let Ok(list) = engine.list() else {
        return;
    };
    for c in list {
        let Some(pid) = c.record.config.labels.get(BUILD_LABEL) else {
            continue;
        };
        let alive = pid
            .parse::<i32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = engine.remove(&c.record.id, true, true);
        }
    }
}

struct Builder<'a> {
    engine: &'a Engine,
    opts: &'a BuildOptions,
    df: &'a Dockerfile,
    file: String,
    context: PathBuf,
    ignore: Option<Matcher>,
    progress: Progress,
    results: Mutex<HashMap<usize, (ImageState, Vec<Value>)>>,
    ran: Mutex<usize>,
    cached: Mutex<usize>,
    /// From `--cache-from`: a step's key -> its layer descriptor, diff ID and history entry.
    cache_from: HashMap<String, (Value, Digest, Value)>,
}

/// A stage's scope while it is built.
#[derive(Clone)]
struct Scope {
    state: ImageState,
    key: String,
    /// The build arguments declared in the stage (with their values), in order.
    args: Vec<(String, String)>,
    /// The cache is off for this stage (`--no-cache`, `--no-cache-filter`).
    no_cache: bool,
    /// A `CMD` was given in this stage (an `ENTRYPOINT` then keeps it).
    cmd_set: bool,
    step: usize,
    /// The inline cache entries of the layers so far ([`INLINE_CACHE`]).
    inline: Vec<Value>,
}

impl Builder<'_> {
    fn result(&self, stage: usize) -> Option<ImageState> {
        self.results
            .lock()
            .unwrap()
            .get(&stage)
            .map(|r| r.0.clone())
    }

    /// The meta arguments (before the first FROM) with their values.
    fn meta_args(&self) -> Result<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = predefined_args();
        for ins in &self.df.meta_args {
            let Kind::Arg { args } = &ins.kind else {
                continue;
            };
            for a in args {
                let value = match (self.opts.build_args.get(&a.name), &a.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => Some(self.expand(ins, d, &out)?.value),
                    (None, None) => None,
                };
                if let Some(v) = value {
                    out.retain(|(k, _)| k != &a.name);
                    out.push((a.name.clone(), v));
                }
            }
        }
        Ok(out)
    }

    fn err(&self, ins: &Instruction, message: impl Into<String>) -> BuildError {
        BuildError::Instruction {
            file: self.file.clone(),
            line: ins.start_line,
            message: message.into(),
        }
    }

    fn expand(&self, ins: &Instruction, word: &str, env: &dyn lex::Env) -> Result<lex::Expanded> {
        lex::expand(word, env, self.df.directives.escape).map_err(|e| self.err(ins, e.to_string()))
    }

    fn expand_words(
        &self,
        ins: &Instruction,
        word: &str,
        env: &dyn lex::Env,
    ) -> Result<Vec<String>> {
        lex::expand_words(word, env, self.df.directives.escape)
            .map(|w| w.words)
            .map_err(|e| self.err(ins, e.to_string()))
    }

    /// The stage a `FROM`, `--from` or `from=` names, if it is one defined before `before`.
    fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        if let Some(s) = self.df.stages[..before]
            .iter()
            .find(|s| s.name() == Some(lower.as_str()))
        {
            return Some(s.index);
        }
        name.parse::<usize>().ok().filter(|i| *i < before)
    }

    /// The stages `stage` needs first.
    fn deps(&self, stage: &Stage) -> Result<BTreeSet<usize>> {
        let mut out = BTreeSet::new();
        let meta = self.meta_args()?;
        let base = lex::expand(&stage.from.image, &meta, self.df.directives.escape)
            .map(|e| e.value)
            .unwrap_or_else(|_| stage.from.image.clone());
        if let Some(i) = self.stage_ref(&base, stage.index) {
            out.insert(i);
        }
        for ins in &stage.instructions {
            let from = match &ins.kind {
                Kind::Copy(c) => c.from.clone().into_iter().collect::<Vec<_>>(),
                Kind::Run(r) => r.mounts.iter().filter_map(|m| m.from.clone()).collect(),
                _ => Vec::new(),
            };
            for f in from {
                if let Some(i) = self.stage_ref(&f, stage.index) {
                    out.insert(i);
                }
            }
        }
        Ok(out)
    }

    /// Builds `target` and every stage it needs, independent stages in parallel.
    fn build_needed(&self, target: usize) -> Result<()> {
        // The stages needed, with their dependencies.
        let mut needed: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if needed.contains_key(&i) {
                continue;
            }
            let d = self.deps(&self.df.stages[i])?;
            todo.extend(d.iter().copied());
            needed.insert(i, d);
        }
        // Waves: every stage whose dependencies are built, at once.
        let mut done: BTreeSet<usize> = BTreeSet::new();
        while done.len() < needed.len() {
            let wave: Vec<usize> = needed
                .iter()
                .filter(|(i, d)| !done.contains(i) && d.iter().all(|x| done.contains(x)))
                .map(|(i, _)| *i)
                .collect();
            if wave.is_empty() {
                return Err(BuildError::Other(
                    "circular dependency between stages".into(),
                ));
            }
            if wave.len() == 1 {
                self.build_stage(wave[0])?;
            } else {
                let results: Vec<Result<()>> = std::thread::scope(|s| {
                    let handles: Vec<_> = wave
                        .iter()
                        .map(|i| s.spawn(move || self.build_stage(*i)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(BuildError::Other("a stage's thread panicked".into()))
                            })
                        })
                        .collect()
                });
                for r in results {
                    r?;
                }
            }
            done.extend(wave);
        }
        Ok(())
    }

    fn build_stage(&self, index: usize) -> Result<()> {
        let stage = &self.df.stages[index];
        let meta = self.meta_args()?;
        let from_ins = Instruction {
            keyword: "FROM".into(),
            start_line: stage.line,
            end_line: stage.line,
            original: stage.original.clone(),
            kind: Kind::From(stage.from.clone()),
        };
        let base_name = self.expand(&from_ins, &stage.from.image, &meta)?.value;
        if let Some(p) = &stage.from.platform {
            let p = self.expand(&from_ins, p, &meta)?.value;
            let host = format!("linux/{}", host_arch());
            if p != host && p != "linux" {
                return Err(self.err(
                    &from_ins,
                    format!("FROM --platform={p}: berth builds for this machine's platform ({host}) only"),
                ));
            }
        }
        let label = stage
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("stage-{index}"));
        let single = self.df.stages.len() == 1;
        // As BuildKit counts: the FROM and the instructions that touch files.
        let steps = 1 + stage.instructions.iter().filter(|i| is_vertex(i)).count();
        let prefix = |n: usize| {
            if single {
                format!("[{n}/{steps}]")
            } else {
                format!("[{label} {n}/{steps}]")
            }
        };
        let v = self.progress.vertex();
        let t0 = Instant::now();
        let mut inline = Vec::new();
        let (state, key) = if stage.from.is_scratch() {
            self.progress
                .line(&format!("#{v} {} FROM scratch", prefix(1)));
            (ImageState::scratch(), sha_hex(b"FROM scratch"))
        } else if let Some(i) = self.stage_ref(&base_name, index) {
            self.progress
                .line(&format!("#{v} {} FROM {}", prefix(1), base_name));
            let (st, parent_inline) = self
                .results
                .lock()
                .unwrap()
                .get(&i)
                .cloned()
                .expect("dependencies are built first");
            inline = parent_inline;
            let (manifest, _) = st.commit(self.engine.images())?;
            (st, sha_hex(format!("FROM {manifest}").as_bytes()))
        } else {
            let image = self.base_image(&from_ins, &base_name)?;
            self.progress.line(&format!(
                "#{v} {} FROM {}",
                prefix(1),
                image
                    .name
                    .as_ref()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| base_name.clone())
            ));
            let st = ImageState::load(self.engine.images(), &image)?;
            (
                st,
                sha_hex(format!("FROM {}", image.manifest_digest).as_bytes()),
            )
        };
        self.progress
            .line(&format!("#{v} DONE {:.1}s", t0.elapsed().as_secs_f64()));

        let no_cache = self.opts.no_cache
            || self
                .opts
                .no_cache_filter
                .iter()
                .any(|f| f.eq_ignore_ascii_case(&label) || *f == index.to_string());
        let mut scope = Scope {
            state,
            key,
            args: Vec::new(),
            no_cache,
            cmd_set: false,
            step: 1,
            inline,
        };
        // As BuildKit: an image without PATH gets the default one (no step of its own).
        if !scope.state.env().iter().any(|(k, _)| k == "PATH") {
            scope.state.set_env("PATH", DEFAULT_PATH);
        }
        // The base's ONBUILD triggers run first, then are gone from the image.
        let triggers = scope.state.get_list("OnBuild");
        if !triggers.is_empty() {
            scope.state.cc().insert("OnBuild".into(), Value::Null);
            for t in &triggers {
                let parsed = dockerfile::parse_named(&format!("FROM scratch\n{t}\n"), &self.file)
                    .map_err(|e| {
                    self.err(&from_ins, format!("ONBUILD trigger {t:?}: {}", e.message))
                })?;
                for mut ins in parsed.stages[0].instructions.clone() {
                    ins.start_line = stage.line;
                    ins.end_line = stage.line;
                    self.step(&mut scope, &ins, &meta, &prefix(1))?;
                }
            }
        }
        for ins in &stage.instructions {
            if is_vertex(ins) {
                scope.step += 1;
            }
            let pre = prefix(scope.step);
            self.step(&mut scope, ins, &meta, &pre)?;
        }
        self.results
            .lock()
            .unwrap()
            .insert(index, (scope.state, scope.inline));
        Ok(())
    }

    /// The base image of a `FROM`: from the store, else (or with `--pull`) pulled.
    fn base_image(&self, ins: &Instruction, name: &str) -> Result<Image> {
        let store = self.engine.images();
        if !self.opts.pull
            && let Ok(i) = store.find_image_loaded(name)
        {
            return Ok(i);
        }
        let reference = Reference::parse(name).map_err(|e| self.err(ins, e.to_string()))?;
        let opts = self.opts.pull_options(&reference);
        let v = self.progress.vertex();
        self.progress
            .line(&format!("#{v} [internal] pull {reference}"));
        let t0 = Instant::now();
        let pulled = self.engine.image_pull(
            &reference,
            &opts,
            &PullProgress {
                progress: &self.progress,
                vertex: v,
                sizes: Mutex::new(HashMap::new()),
            },
        );
        match &pulled {
            Ok(_) => self
                .progress
                .line(&format!("#{v} DONE {:.1}s", t0.elapsed().as_secs_f64())),
            Err(e) => self.progress.line(&format!("#{v} ERROR: {e}")),
        }
        match pulled {
            Ok(_) => {}
            Err(e) => {
                // With --pull, an image that is present but cannot be pulled is still used.
                if let Ok(i) = store.find_image_loaded(name) {
                    return Ok(i);
                }
                return Err(self.err(
                    ins,
                    format!("failed to resolve source metadata for {name}: {e}"),
                ));
            }
        }
        Ok(store.find_image_loaded(&reference.to_string())?)
    }

    /// The environment a step's words are expanded in: the stage's build arguments, then the
    /// image's environment (ENV wins over ARG, as in Docker).
    fn word_env(&self, scope: &Scope) -> Vec<(String, String)> {
        let mut env = scope.args.clone();
        env.extend(scope.state.env());
        env
    }

    fn step(
        &self,
        scope: &mut Scope,
        ins: &Instruction,
        meta: &[(String, String)],
        prefix: &str,
    ) -> Result<()> {
        let env = self.word_env(scope);
        let now = self.now();
        match &ins.kind {
            Kind::Arg { args } => {
                for a in args {
                    let value = match (self.opts.build_args.get(&a.name), &a.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(d)) => Some(self.expand(ins, d, &env)?.value),
                        (None, None) => meta
                            .iter()
                            .rev()
                            .find(|(k, _)| k == &a.name)
                            .map(|(_, v)| v.clone()),
                    };
                    scope.args.retain(|(k, _)| k != &a.name);
                    if let Some(v) = value {
                        scope.args.push((a.name.clone(), v));
                    }
                }
                // No layer, a history entry (as BuildKit records it); what it sets reaches
                // the keys of the steps that use it.
                let text = format!("ARG {}", self.arg_text(args, &scope.args));
                self.meta_step(scope, prefix, &text, &now)
            }
            Kind::Env { pairs } => {
                let mut text = Vec::new();
                let mut env = env;
                for kv in pairs {
                    let k = self.expand(ins, &kv.key, &env)?.value;
                    let v = self.expand(ins, &kv.value, &env)?.value;
                    scope.state.set_env(&k, &v);
                    env.push((k.clone(), v.clone()));
                    text.push(format!("{k}={v}"));
                }
                self.meta_step(scope, prefix, &format!("ENV {}", text.join(" ")), &now)
            }
            Kind::Label { pairs } => {
                let mut text = Vec::new();
                for kv in pairs {
                    let k = self.expand(ins, &kv.key, &env)?.value;
                    let v = self.expand(ins, &kv.value, &env)?.value;
                    let cc = scope.state.cc();
                    if !cc.get("Labels").is_some_and(Value::is_object) {
                        cc.insert("Labels".into(), json!({}));
                    }
                    cc["Labels"][&k] = json!(v);
                    text.push(format!("{k}={v}"));
                }
                self.meta_step(scope, prefix, &format!("LABEL {}", text.join(" ")), &now)
            }
            Kind::Workdir { path } => {
                let p = self.expand(ins, path, &env)?.value;
                let cur = scope.state.get_str("WorkingDir");
                let wd = join_path(if cur.is_empty() { "/" } else { &cur }, &p);
                scope.state.cc().insert("WorkingDir".into(), json!(wd));
                self.meta_step(scope, prefix, &format!("WORKDIR {p}"), &now)
            }
            Kind::User { user } => {
                let u = self.expand(ins, user, &env)?.value;
                scope.state.cc().insert("User".into(), json!(u));
                self.meta_step(scope, prefix, &format!("USER {u}"), &now)
            }
            Kind::Expose { ports } => {
                let mut list = Vec::new();
                for p in ports {
                    list.extend(self.expand_words(ins, p, &env)?);
                }
                let cc = scope.state.cc();
                if !cc.get("ExposedPorts").is_some_and(Value::is_object) {
                    cc.insert("ExposedPorts".into(), json!({}));
                }
                for p in &list {
                    let port = if p.contains('/') {
                        p.to_ascii_lowercase()
                    } else {
                        format!("{p}/tcp")
                    };
                    let (num, _) = port.split_once('/').unwrap_or((&port, ""));
                    if num.split('-').any(|n| n.parse::<u16>().is_err()) {
                        return Err(self.err(ins, format!("invalid containerPort: {p}")));
                    }
                    cc["ExposedPorts"][&port] = json!({});
                }
                let mut ports: Vec<String> = list
                    .iter()
                    .map(|p| {
                        if p.contains('/') {
                            p.to_ascii_lowercase()
                        } else {
                            format!("{p}/tcp")
                        }
                    })
                    .collect();
                ports.sort();
                ports.dedup();
                let text = format!(
                    "EXPOSE map[{}]",
                    ports
                        .iter()
                        .map(|p| format!("{p}:{{}}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                self.meta_step(scope, prefix, &text, &now)
            }
            Kind::Volume { paths } => {
                let mut list = Vec::new();
                for p in paths {
                    list.push(self.expand(ins, p, &env)?.value);
                }
                let cc = scope.state.cc();
                if !cc.get("Volumes").is_some_and(Value::is_object) {
                    cc.insert("Volumes".into(), json!({}));
                }
                for p in &list {
                    if p.is_empty() {
                        return Err(self.err(ins, "VOLUME specified can not be an empty string"));
                    }
                    cc["Volumes"][p] = json!({});
                }
                self.meta_step(scope, prefix, &format!("VOLUME [{}]", list.join(" ")), &now)
            }
            Kind::Entrypoint { command } => {
                let argv = self.command_argv(scope, command);
                let cc = scope.state.cc();
                cc.insert("Entrypoint".into(), json!(argv));
                // An ENTRYPOINT resets the base image's CMD.
                if !scope.cmd_set {
                    scope.state.cc().insert("Cmd".into(), Value::Null);
                }
                let text = format!("ENTRYPOINT {}", json!(argv));
                self.meta_step(scope, prefix, &text, &now)
            }
            Kind::Cmd { command } => {
                let argv = self.command_argv(scope, command);
                scope.state.cc().insert("Cmd".into(), json!(argv));
                scope.cmd_set = true;
                let text = format!("CMD {}", json!(argv));
                self.meta_step(scope, prefix, &text, &now)
            }
            Kind::Shell { shell } => {
                scope.state.cc().insert("Shell".into(), json!(shell));
                let text = format!("SHELL {}", json!(shell));
                self.meta_step(scope, prefix, &text, &now)
            }
            Kind::StopSignal { signal } => {
                let s = self.expand(ins, signal, &env)?.value;
                if berth_engine::parse_signal(&s).is_none() {
                    return Err(self.err(ins, format!("invalid signal: {s}")));
                }
                scope.state.cc().insert("StopSignal".into(), json!(s));
                self.meta_step(scope, prefix, &format!("STOPSIGNAL {s}"), &now)
            }
            Kind::Healthcheck(h) => {
                let (value, text) = match h {
                    Healthcheck::None => {
                        (json!({"Test": ["NONE"]}), "HEALTHCHECK NONE".to_string())
                    }
                    Healthcheck::Cmd(c) => {
                        let mut v = json!({"Test": c.test});
                        let ns = |d: &std::time::Duration| d.as_nanos() as u64;
                        if let Some(d) = &c.interval {
                            v["Interval"] = json!(ns(d));
                        }
                        if let Some(d) = &c.timeout {
                            v["Timeout"] = json!(ns(d));
                        }
                        if let Some(d) = &c.start_period {
                            v["StartPeriod"] = json!(ns(d));
                        }
                        if let Some(d) = &c.start_interval {
                            v["StartInterval"] = json!(ns(d));
                        }
                        if let Some(r) = c.retries {
                            v["Retries"] = json!(r);
                        }
                        let text = format!("HEALTHCHECK {}", json!(c.test));
                        (v, text)
                    }
                };
                scope.state.cc().insert("Healthcheck".into(), value);
                self.meta_step(scope, prefix, &text, &now)
            }
            Kind::Onbuild(o) => {
                let cc = scope.state.cc();
                match cc.get_mut("OnBuild").and_then(Value::as_array_mut) {
                    Some(list) => list.push(json!(o.expression)),
                    None => {
                        cc.insert("OnBuild".into(), json!([o.expression]));
                    }
                }
                let text = format!("ONBUILD {}", o.expression);
                self.meta_step(scope, prefix, &text, &now)
            }
            Kind::Maintainer { name } => {
                scope.state.config["author"] = json!(name);
                self.meta_step(scope, prefix, &format!("MAINTAINER {name}"), &now)
            }
            Kind::Run(_) => self.run_step(scope, ins, prefix),
            Kind::Copy(_) | Kind::Add(_) => self.copy_step(scope, ins, prefix),
            Kind::From(_) => Err(self.err(ins, "FROM inside a stage")),
        }
    }

    /// `ARG` as recorded in keys: names with the values they got.
    fn arg_text(&self, args: &[dockerfile::ArgDef], values: &[(String, String)]) -> String {
        args.iter()
            .map(|a| match values.iter().find(|(k, _)| *k == a.name) {
                Some((k, v)) => format!("{k}={v}"),
                None => a.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command_argv(&self, scope: &Scope, command: &CommandLine) -> Vec<String> {
        match command {
            CommandLine::Exec(v) => v.clone(),
            CommandLine::Shell(s) => {
                let mut argv = self.shell(scope);
                argv.push(s.clone());
                argv
            }
        }
    }

    fn shell(&self, scope: &Scope) -> Vec<String> {
        let sh = scope.state.get_list("Shell");
        if sh.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            sh
        }
    }

    fn now(&self) -> String {
        let t = match self.opts.source_date_epoch {
            Some(s) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s),
            None => SystemTime::now(),
        };
        berth_sys::time::rfc3339_seconds(t)
    }

    /// A step that changes only the config: its key, from the cache or made. Only `WORKDIR`
    /// shows in the progress (as in BuildKit's, where it is a file operation).
    fn meta_step(&self, scope: &mut Scope, prefix: &str, text: &str, now: &str) -> Result<()> {
        let key = sha_hex(format!("{}\n{text}", scope.key).as_bytes());
        let shown = text.starts_with("WORKDIR ");
        let v = if shown {
            let v = self.progress.vertex();
            self.progress.line(&format!("#{v} {prefix} {text}"));
            Some(v)
        } else {
            None
        };
        if let Some(st) = self.cached(scope, &key) {
            scope.state = st;
            scope.key = key;
            if let Some(v) = v {
                self.progress.line(&format!("#{v} CACHED"));
            }
            return Ok(());
        }
        scope.state.push_history(now, text, None);
        self.save(scope, key)?;
        if let Some(v) = v {
            self.progress.line(&format!("#{v} DONE 0.0s"));
        }
        Ok(())
    }

    /// The image a key was built into before, unless the cache is off for this stage.
    fn cached(&self, scope: &Scope, key: &str) -> Option<ImageState> {
        if scope.no_cache {
            return None;
        }
        let store = self.engine.images();
        let manifest = store.pinned(&format!("build-{key}"))?;
        let image = Image::load(store, &manifest).ok()?;
        // Its layers must still be there (pins keep them; a damaged store may not).
        if image.layers.iter().any(|l| !store.has(&l.digest)) {
            return None;
        }
        *self.cached.lock().unwrap() += 1;
        ImageState::load(store, &image).ok()
    }

    /// Writes the step's image and pins it under its key.
    fn save(&self, scope: &mut Scope, key: String) -> Result<()> {
        let store = self.engine.images();
        let (manifest, _) = scope.state.commit(store)?;
        store.pin(&format!("build-{key}"), &manifest)?;
        scope.key = key;
        *self.ran.lock().unwrap() += 1;
        Ok(())
    }

    /// The environment of a `RUN`: the image's, then the stage's build arguments not set by
    /// it (as Docker passes them), and the proxies given as build arguments.
    fn run_env(&self, scope: &Scope) -> Vec<String> {
        let env = scope.state.env();
        let mut out: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for (k, v) in &scope.args {
            if !env.iter().any(|(e, _)| e == k) {
                out.push(format!("{k}={v}"));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.opts.build_args.get(*p)
                && !out.iter().any(|e| e.starts_with(&format!("{p}=")))
            {
                out.push(format!("{p}={v}"));
            }
        }
        out
    }

    fn run_step(&self, scope: &mut Scope, ins: &Instruction, prefix: &str) -> Result<()> {
        let Kind::Run(run) = &ins.kind else {
            unreachable!()
        };
        let env_words = self.word_env(scope);
        // The command as the shell gets it: a heredoc-only RUN runs its content; heredocs
        // after a command stay in the script, for the shell to read.
        let argv = match &run.command {
            CommandLine::Exec(v) => v.clone(),
            CommandLine::Shell(s) => {
                let mut script = s.clone();
                if !run.heredocs.is_empty() {
                    let only = run.heredocs.len() == 1
                        && s.trim()
                            .trim_start_matches(|c: char| c.is_ascii_digit())
                            .starts_with("<<")
                        && !s.trim().contains(' ');
                    if only {
                        script = run.heredocs[0].content.clone();
                    } else {
                        for h in &run.heredocs {
                            script.push('\n');
                            script.push_str(&h.content);
                            script.push_str(&h.name);
                        }
                    }
                }
                let mut argv = self.shell(scope);
                argv.push(script);
                argv
            }
        };
        if run.security == dockerfile::Security::Insecure {
            return Err(self.err(
                ins,
                "RUN --security=insecure is refused: berth build runs every step with Docker's default privileges",
            ));
        }
        let network = match run.network {
            Network::Default => self.opts.network.clone().unwrap_or_else(|| "bridge".into()),
            Network::None => "none".into(),
            Network::Host => "host".into(),
        };
        // Mounts, their values substituted.
        let mut mounts = Vec::new();
        for m in &run.mounts {
            let m = if m.spec.contains('$') {
                dockerfile::Mount::parse_expanded(&m.spec, &mut |w: &str| {
                    lex::expand(w, &env_words, self.df.directives.escape)
                        .map(|e| e.value)
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| self.err(ins, e))?
            } else {
                m.clone()
            };
            mounts.push(m);
        }
        let shown = argv.join(" ");
        let build_args: Vec<String> = scope.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut mount_text: Vec<String> = Vec::new();
        for m in &mounts {
            mount_text.push(m.spec.clone());
            // What a bind mount shows is an input of the step: the stage's image, or a
            // digest of the context files (as COPY's).
            if m.kind == MountType::Bind {
                mount_text.push(self.bind_input(ins, m)?);
            }
        }
        let key = sha_hex(
            format!(
                "{}\nRUN {}\nargs {}\nmounts {}\nnetwork {network}",
                scope.key,
                json!(argv),
                build_args.join("\x00"),
                mount_text.join("\x00"),
            )
            .as_bytes(),
        );
        let v = self.progress.vertex();
        self.progress
            .line(&format!("#{v} {prefix} {}", display(ins)));
        if self.layer_from_cache(scope, &key)? {
            self.progress.line(&format!("#{v} CACHED"));
            return Ok(());
        }
        let t0 = Instant::now();
        let (manifest, _) = scope.state.commit(self.engine.images())?;
        let mut host = json!({"NetworkMode": network, "Binds": [], "Tmpfs": {}});
        let secrets_dir = tempfile::Builder::new()
            .prefix("berth-build-secrets")
            .tempdir()
            .map_err(|e| BuildError::Other(format!("secrets directory: {e}")))?;
        let mut env = self.run_env(scope);
        let mut from_containers = Vec::new();
        // Held until the step is done: cache mount locks, private cache directories.
        let mut locks = Vec::new();
        let mut private_dirs = Vec::new();
        let res = (|| {
            for m in &mounts {
                self.add_mount(
                    scope,
                    ins,
                    m,
                    &mut host,
                    &mut env,
                    secrets_dir.path(),
                    &mut from_containers,
                    &mut locks,
                    &mut private_dirs,
                )?;
            }
            let req = json!({
                "Image": manifest.to_string(),
                "Cmd": argv,
                "Entrypoint": [""],
                "Env": env,
                "WorkingDir": scope.state.get_str("WorkingDir"),
                "User": scope.state.get_str("User"),
                "AttachStdout": true,
                "AttachStderr": true,
                "Labels": {BUILD_LABEL: std::process::id().to_string()},
                "HostConfig": host,
            });
            let mut req: ContainerCreate = serde_json::from_value(req)
                .map_err(|e| BuildError::Other(format!("RUN container request: {e}")))?;
            req.skip_image_volumes = true;
            let id = self.engine.create(&req)?;
            let out = self.run_container(&id, v, t0);
            let layer = match out {
                Ok((0, _)) => self.layer(&id),
                Ok((code, tail)) => Err(BuildError::Run {
                    file: self.file.clone(),
                    line: ins.start_line,
                    command: shown.clone(),
                    code,
                    tail,
                }),
                Err(e) => Err(e),
            };
            let _ = self.engine.remove(&id, true, true);
            layer
        })();
        for c in from_containers {
            let _ = self.engine.remove(&c, true, true);
        }
        let (desc, diff_id) = res?;
        let created_by = match &run.command {
            CommandLine::Exec(v) => format!("RUN {}{}", args_prefix(&scope.args), json!(v)),
            CommandLine::Shell(s) => format!(
                "RUN {}{} {s} # buildkit",
                args_prefix(&scope.args),
                self.shell(scope).join(" ")
            ),
        };
        scope
            .state
            .push_history(&self.now(), &created_by, Some((desc, diff_id)));
        self.save(scope, key)?;
        record_inline(scope);
        self.progress
            .line(&format!("#{v} DONE {:.1}s", t0.elapsed().as_secs_f64()));
        Ok(())
    }

    /// A layer step's result from the cache: this store's (a pinned step), else an
    /// image of `--cache-from` that recorded the key. `true` when taken.
    fn layer_from_cache(&self, scope: &mut Scope, key: &str) -> Result<bool> {
        if let Some(st) = self.cached(scope, key) {
            scope.state = st;
            scope.key = key.to_string();
            record_inline(scope);
            return Ok(true);
        }
        if scope.no_cache {
            return Ok(false);
        }
        let Some((desc, diff_id, entry)) = self.cache_from.get(key) else {
            return Ok(false);
        };
        let digest = desc["digest"].as_str().and_then(|d| Digest::parse(d).ok());
        if !digest.is_some_and(|d| self.engine.images().has(&d)) {
            return Ok(false);
        }
        scope
            .state
            .push_entry(entry.clone(), desc.clone(), diff_id.clone());
        self.save(scope, key.to_string())?;
        *self.ran.lock().unwrap() -= 1;
        *self.cached.lock().unwrap() += 1;
        record_inline(scope);
        Ok(true)
    }

    /// The content a `RUN --mount=type=bind` shows, as text for the step's key.
    fn bind_input(&self, ins: &Instruction, m: &dockerfile::Mount) -> Result<String> {
        let src = m.source.clone().unwrap_or_else(|| "/".into());
        match &m.from {
            Some(f) => match self.stage_ref(f, self.df.stages.len()) {
                Some(i) => {
                    let st = self.result(i).ok_or_else(|| {
                        self.err(ins, format!("stage {f} is not built before this one"))
                    })?;
                    Ok(format!("stage {}", st.commit(self.engine.images())?.0))
                }
                None => Ok(format!(
                    "image {}",
                    self.base_image(ins, f)?.manifest_digest
                )),
            },
            None => {
                let spec = CopySpec {
                    sources: vec![src],
                    dest: "/".into(),
                    workdir: "/".into(),
                    ..Default::default()
                };
                let d = copy::sources_digest(&self.context, &spec, self.ignore.as_ref())
                    .map_err(|e| self.err(ins, e.to_string()))?;
                Ok(format!("context {d}"))
            }
        }
    }

    /// Adds a `RUN --mount` to the container's host config.
    #[allow(clippy::too_many_arguments)]
    fn add_mount(
        &self,
        scope: &Scope,
        ins: &Instruction,
        m: &dockerfile::Mount,
        host: &mut Value,
        env: &mut Vec<String>,
        secrets: &Path,
        from_containers: &mut Vec<String>,
        locks: &mut Vec<berth_sys::Flock>,
        private_dirs: &mut Vec<tempfile::TempDir>,
    ) -> Result<()> {
        let wd = scope.state.get_str("WorkingDir");
        let wd = if wd.is_empty() { "/".to_string() } else { wd };
        let target = |default: Option<String>| -> Result<String> {
            match m.target.clone().or(default) {
                Some(t) => Ok(join_path(&wd, &t)),
                None => Err(self.err(ins, format!("mount {:?} needs a target", m.spec))),
            }
        };
        match m.kind {
            MountType::Cache => {
                let target = target(None)?;
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let base = self.engine.root().join("build-cache");
                berth_sys::private_dir(&base)
                    .map_err(|e| BuildError::Other(format!("cache mounts: {e}")))?;
                let hash = sha_hex(id.as_bytes());
                let lock_path = base.join(format!("{hash}.lock"));
                let lock_err =
                    |e: berth_sys::PathError| BuildError::Other(format!("cache mount {id}: {e}"));
                // shared: any number of steps at once; locked: one at a time (the others
                // wait); private: a step finding it in use gets a fresh one of its own.
                let dir = match m.sharing {
                    Some(dockerfile::Sharing::Shared) | None => {
                        locks.push(berth_sys::Flock::shared(&lock_path).map_err(lock_err)?);
                        base.join(&hash)
                    }
                    Some(dockerfile::Sharing::Locked) => {
                        locks.push(berth_sys::Flock::exclusive(&lock_path).map_err(lock_err)?);
                        base.join(&hash)
                    }
                    Some(dockerfile::Sharing::Private) => {
                        match berth_sys::Flock::try_exclusive(&lock_path).map_err(lock_err)? {
                            Some(l) => {
                                locks.push(l);
                                base.join(&hash)
                            }
                            None => {
                                let t = tempfile::Builder::new()
                                    .prefix(".private-")
                                    .tempdir_in(&base)
                                    .map_err(|e| {
                                        BuildError::Other(format!("cache mount {id}: {e}"))
                                    })?;
                                let p = t.path().to_path_buf();
                                private_dirs.push(t);
                                p
                            }
                        }
                    }
                };
                std::fs::create_dir_all(&dir).map_err(|e| {
                    BuildError::Other(format!("cache mount {}: {e}", dir.display()))
                })?;
                use std::os::unix::fs::PermissionsExt;
                let mode = m.mode.unwrap_or(0o755);
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode));
                let _ = std::os::unix::fs::chown(
                    &dir,
                    Some(m.uid.unwrap_or(0)),
                    Some(m.gid.unwrap_or(0)),
                );
                let ro = if m.readonly { ":ro" } else { "" };
                push_bind(host, format!("{}:{target}{ro}", dir.display()));
            }
            MountType::Bind => {
                let target = target(None)?;
                let src = m.source.clone().unwrap_or_else(|| "/".into());
                let root = match &m.from {
                    Some(f) => self.source_root(ins, f, from_containers)?,
                    None => self.context.clone(),
                };
                let path = resolve_inside(&root, &src).map_err(|e| self.err(ins, e))?;
                let ro = if m.readonly || !m.spec.contains("rw") {
                    ":ro"
                } else {
                    ""
                };
                push_bind(host, format!("{}:{target}{ro}", path.display()));
            }
            MountType::Tmpfs => {
                let target = target(None)?;
                let opts = m.size.map(|s| format!("size={s}")).unwrap_or_default();
                host["Tmpfs"][target] = json!(opts);
            }
            MountType::Secret => {
                let id =
                    m.id.clone()
                        .or_else(|| {
                            m.target
                                .as_ref()
                                .and_then(|t| Path::new(t).file_name())
                                .map(|n| n.to_string_lossy().into_owned())
                        })
                        .ok_or_else(|| self.err(ins, "secret mount needs an id or a target"))?;
                let Some(content) = self.opts.secrets.get(&id) else {
                    if m.required {
                        return Err(self.err(
                            ins,
                            format!(
                                "secret {id} not found: give it with --secret id={id},src=PATH"
                            ),
                        ));
                    }
                    return Ok(());
                };
                if let Some(var) = &m.env {
                    env.push(format!("{var}={}", String::from_utf8_lossy(content)));
                    if m.target.is_none() {
                        return Ok(());
                    }
                }
                let file = secrets.join(sha_hex(id.as_bytes()));
                std::fs::write(&file, content)
                    .map_err(|e| BuildError::Other(format!("secret {id}: {e}")))?;
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(
                    &file,
                    std::fs::Permissions::from_mode(m.mode.unwrap_or(0o400)),
                );
                let _ = std::os::unix::fs::chown(
                    &file,
                    Some(m.uid.unwrap_or(0)),
                    Some(m.gid.unwrap_or(0)),
                );
                let target = target(Some(format!("/run/secrets/{id}")))?;
                push_bind(host, format!("{}:{target}:ro", file.display()));
            }
            MountType::Ssh => {
                return Err(self.err(ins, "RUN --mount=type=ssh is not supported by berth build"));
            }
        }
        Ok(())
    }

    /// The root of a `--from`/`from=` source: a stage's or an image's files, through a
    /// created (never started) container whose ID goes to `containers` for removal.
    fn source_root(
        &self,
        ins: &Instruction,
        from: &str,
        containers: &mut Vec<String>,
    ) -> Result<PathBuf> {
        let manifest = match self
            .df
            .stages
            .iter()
            .find(|s| s.name() == Some(&from.to_ascii_lowercase()))
            .map(|s| s.index)
            .or_else(|| from.parse::<usize>().ok())
        {
            Some(i) => {
                let st = self.result(i).ok_or_else(|| {
                    self.err(ins, format!("stage {from} is not built before this one"))
                })?;
                st.commit(self.engine.images())?.0
            }
            None => self.base_image(ins, from)?.manifest_digest,
        };
        let id = self.scratch_container(&manifest)?;
        containers.push(id.clone());
        Ok(self.engine.rootfs(&id)?)
    }

    /// A container that is only created, for its mounted root.
    fn scratch_container(&self, manifest: &Digest) -> Result<String> {
        scratch_container(self.engine, manifest)
    }

    /// Starts a created container with its output streamed as progress; returns its exit code
    /// and last lines.
    fn run_container(&self, id: &str, v: usize, t0: Instant) -> Result<(i32, Vec<String>)> {
        let (out_r, out_w) = pipe()?;
        self.engine.prepare_start(id)?;
        let mut starting = self.engine.start_monitor(id, true)?;
        starting.wait_listening()?;
        let err_w = out_w
            .try_clone()
            .map_err(|e| BuildError::Other(format!("dup: {e}")))?;
        let att = self.engine.attach(
            id,
            AttachIo {
                stdout: Some(Box::new(out_w)),
                stderr: Some(Box::new(err_w)),
                ..Default::default()
            },
        )?;
        starting.wait_started()?;
        let tail = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let tail = tail.clone();
            let out = self.progress.out.clone();
            std::thread::spawn(move || {
                let mut r = std::io::BufReader::new(out_r);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match std::io::BufRead::read_until(&mut r, b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf)
                                .trim_end_matches('\n')
                                .to_string();
                            if let Some(out) = &out {
                                let mut w = out.lock().unwrap();
                                let _ =
                                    writeln!(w, "#{v} {:.3} {line}", t0.elapsed().as_secs_f64());
                                let _ = w.flush();
                            }
                            let mut t = tail.lock().unwrap();
                            t.push(line);
                            if t.len() > 10 {
                                t.remove(0);
                            }
                        }
                    }
                }
            })
        };
        let end = att.wait();
        let _ = reader.join();
        let code = match end {
            AttachEnd::Exited(c) => c,
            _ => self.engine.wait(id)?,
        };
        let tail = tail.lock().unwrap().clone();
        Ok((code, tail))
    }

    /// The container's changes as a layer in the store: (descriptor, diff ID).
    fn layer(&self, id: &str) -> Result<(Value, Digest)> {
        let tar = self.engine.diff_layer(
            id,
            &DiffOptions {
                clamp_mtime: self.opts.source_date_epoch,
            },
        )?;
        let digest = self.engine.images().ingest_bytes(&tar)?;
        Ok((
            json!({"mediaType": LAYER_TAR, "digest": digest.to_string(), "size": tar.len()}),
            digest,
        ))
    }

    fn copy_step(&self, scope: &mut Scope, ins: &Instruction, prefix: &str) -> Result<()> {
        let env = self.word_env(scope);
        let (
            keyword,
            sources,
            heredocs,
            dest,
            from,
            chown,
            chmod,
            excludes,
            parents,
            add,
            checksum,
        ) = match &ins.kind {
            Kind::Copy(c) => (
                "COPY",
                &c.sources,
                &c.heredocs,
                &c.dest,
                c.from.clone(),
                &c.chown,
                &c.chmod,
                &c.excludes,
                c.parents,
                false,
                None,
            ),
            Kind::Add(a) => (
                "ADD",
                &a.sources,
                &a.heredocs,
                &a.dest,
                None,
                &a.chown,
                &a.chmod,
                &a.excludes,
                false,
                true,
                a.checksum.clone(),
            ),
            _ => unreachable!(),
        };
        let link = match &ins.kind {
            Kind::Copy(c) => c.link,
            Kind::Add(a) => a.link,
            _ => false,
        };
        let mut srcs = Vec::new();
        for s in sources {
            srcs.push(self.expand(ins, s, &env)?.value);
        }
        let shown_sources = srcs.clone();
        let dest = self.expand(ins, dest, &env)?.value;
        let chown = match chown {
            Some(c) => Some(self.expand(ins, c, &env)?.value),
            None => None,
        };
        let chmod = match chmod {
            Some(c) => Some(
                copy::parse_chmod(&self.expand(ins, c, &env)?.value)
                    .map_err(|e| self.err(ins, e.to_string()))?,
            ),
            None => None,
        };
        let mut ex = Vec::new();
        for e in excludes {
            ex.push(self.expand(ins, e, &env)?.value);
        }
        let checksum = match checksum {
            Some(c) => Some(self.expand(ins, &c, &env)?.value),
            None => None,
        };
        let is_url = |s: &String| s.starts_with("http://") || s.starts_with("https://");
        // ADD URL...: the files downloaded first (into a directory of their own, which is then
        // the source), checked against --checksum, never extracted, 0600 unless --chmod.
        let url_dir = if srcs.iter().any(is_url) {
            if !srcs.iter().all(is_url) {
                return Err(self.err(
                    ins,
                    "ADD with both URLs and local sources: give them in two ADDs",
                ));
            }
            let dir = tempfile::Builder::new()
                .prefix("berth-build-add")
                .tempdir()
                .map_err(|e| BuildError::Other(format!("ADD download directory: {e}")))?;
            let mut names = Vec::new();
            for url in &srcs {
                names.push(
                    crate::fetch::download(url, dir.path(), checksum.as_deref())
                        .map_err(|e| self.err(ins, e))?,
                );
            }
            srcs = names;
            Some(dir)
        } else {
            if checksum.is_some() {
                return Err(self.err(ins, "ADD --checksum needs a URL source"));
            }
            None
        };
        let chmod = if url_dir.is_some() && chmod.is_none() {
            Some(0o600)
        } else {
            chmod
        };
        let add = add && url_dir.is_none();
        let wd = scope.state.get_str("WorkingDir");
        let mut spec = CopySpec {
            sources: srcs.clone(),
            dest: dest.clone(),
            workdir: if wd.is_empty() { "/".into() } else { wd },
            chown: None,
            chmod,
            excludes: ex,
            parents,
            add,
            // BuildKit keeps the owners of a stage's or image's files, not the context's.
            preserve_owners: from.is_some(),
        };
        let text = one_line(&format!(
            "{keyword} {}{}{}",
            from.as_ref()
                .map(|f| format!("--from={f} "))
                .unwrap_or_default(),
            shown_sources
                .iter()
                .chain(heredocs.iter().map(|h| &h.name))
                .map(|s| format!("{s} "))
                .collect::<String>(),
            dest
        ));
        let v = self.progress.vertex();
        self.progress
            .line(&format!("#{v} {prefix} {}", display(ins)));
        let t0 = Instant::now();
        let mut containers = Vec::new();
        let res = (|| -> Result<(ImageState, String, bool)> {
            // The sources: the context (with .dockerignore), a stage or image, or heredocs.
            let heredoc_dir;
            let (root, ignore) = if !heredocs.is_empty() {
                heredoc_dir = tempfile::Builder::new()
                    .prefix("berth-build-heredoc")
                    .tempdir()
                    .map_err(|e| BuildError::Other(format!("heredoc: {e}")))?;
                for h in heredocs {
                    let content = if h.expand {
                        self.expand(ins, &h.content, &env)?.value
                    } else {
                        h.content.clone()
                    };
                    std::fs::write(heredoc_dir.path().join(&h.name), content)
                        .map_err(|e| BuildError::Other(format!("heredoc {}: {e}", h.name)))?;
                    spec.sources.push(h.name.clone());
                }
                (heredoc_dir.path().to_path_buf(), None)
            } else {
                match (&from, &url_dir) {
                    (_, Some(d)) => (d.path().to_path_buf(), None),
                    (Some(f), None) => (self.source_root(ins, f, &mut containers)?, None),
                    (None, None) => (self.context.clone(), self.ignore.as_ref()),
                }
            };
            let digest =
                copy::sources_digest(&root, &spec, ignore).map_err(|e| BuildError::Copy {
                    file: self.file.clone(),
                    line: ins.start_line,
                    message: e.to_string(),
                })?;
            let key = sha_hex(
                format!(
                    "{}\n{text}\nchown {}\nchmod {:?}\nparents {parents}\nsources {digest}",
                    scope.key,
                    chown.clone().unwrap_or_default(),
                    chmod
                )
                .as_bytes(),
            );
            let mut probe = scope.clone();
            if self.layer_from_cache(&mut probe, &key)? {
                return Ok((probe.state, key, true));
            }
            let created_by = format!("{text} # buildkit");
            if link {
                // --link: a layer of its own, made on an empty root, so that it (and its
                // cache entry, keyed without the layers below) stays valid when they change.
                let link_key = sha_hex(
                    format!(
                        "LINK\n{text}\nworkdir {}\nchown {}\nchmod {:?}\nparents {parents}\nsources {digest}",
                        spec.workdir,
                        chown.clone().unwrap_or_default(),
                        chmod
                    )
                    .as_bytes(),
                );
                let mut st = scope.state.clone();
                let pin = format!("build-link-{link_key}");
                let store = self.engine.images();
                let reused = (!scope.no_cache)
                    .then(|| store.pinned(&pin))
                    .flatten()
                    .and_then(|m| Image::load(store, &m).ok())
                    .and_then(|img| ImageState::load(store, &img).ok())
                    .and_then(|one| {
                        let desc = one.layers.last()?.clone();
                        let diff = one.config["rootfs"]["diff_ids"]
                            .as_array()?
                            .last()?
                            .as_str()?
                            .to_string();
                        let entry = one.config["history"].as_array()?.last()?.clone();
                        Some((desc, Digest::parse(&diff).ok()?, entry))
                    });
                if let Some((desc, diff, entry)) = reused {
                    st.push_entry(entry, desc, diff);
                    *self.cached.lock().unwrap() += 1;
                    return Ok((st, key, true));
                }
                if let Some(c) = &chown {
                    spec.chown = Some(self.chown_ids(scope, ins, c, &mut containers)?);
                }
                let empty = tempfile::Builder::new()
                    .prefix("berth-build-link")
                    .tempdir()
                    .map_err(|e| BuildError::Other(format!("--link layer: {e}")))?;
                copy::copy_into(&root, empty.path(), &spec, ignore).map_err(|e| {
                    BuildError::Copy {
                        file: self.file.clone(),
                        line: ins.start_line,
                        message: e.to_string(),
                    }
                })?;
                let tar = berth_engine::dir_layer(
                    empty.path(),
                    &DiffOptions {
                        clamp_mtime: self.opts.source_date_epoch,
                    },
                )?;
                let digest = store.ingest_bytes(&tar)?;
                let desc = json!({"mediaType": LAYER_TAR, "digest": digest.to_string(), "size": tar.len()});
                let mut one = ImageState::scratch();
                one.push_history(
                    &self.now(),
                    &created_by,
                    Some((desc.clone(), digest.clone())),
                );
                let (m, _) = one.commit(store)?;
                store.pin(&pin, &m)?;
                st.push_history(&self.now(), &created_by, Some((desc, digest)));
                return Ok((st, key, false));
            }
            let (manifest, _) = scope.state.commit(self.engine.images())?;
            let id = self.scratch_container(&manifest)?;
            containers.push(id.clone());
            let rootfs = self.engine.rootfs(&id)?;
            if let Some(c) = &chown {
                spec.chown = Some(resolve_chown(&rootfs, c).map_err(|e| self.err(ins, e))?);
            }
            copy::copy_into(&root, &rootfs, &spec, ignore).map_err(|e| BuildError::Copy {
                file: self.file.clone(),
                line: ins.start_line,
                message: e.to_string(),
            })?;
            let layer = self.layer(&id)?;
            let mut st = scope.state.clone();
            st.push_history(&self.now(), &created_by, Some(layer));
            Ok((st, key, false))
        })();
        for c in containers {
            let _ = self.engine.remove(&c, true, true);
        }
        let (st, key, was_cached) = res?;
        scope.state = st;
        if was_cached {
            scope.key = key;
            self.progress.line(&format!("#{v} CACHED"));
        } else {
            self.save(scope, key)?;
            self.progress
                .line(&format!("#{v} DONE {:.1}s", t0.elapsed().as_secs_f64()));
        }
        record_inline(scope);
        Ok(())
    }

    /// `--chown` as numbers: as given, or names looked up in the stage's image.
    fn chown_ids(
        &self,
        scope: &Scope,
        ins: &Instruction,
        spec: &str,
        containers: &mut Vec<String>,
    ) -> Result<(u32, u32)> {
        let numeric = spec.split(':').all(|p| p.parse::<u32>().is_ok());
        let empty = tempfile::tempdir().map_err(|e| BuildError::Other(e.to_string()))?;
        let root = if numeric {
            empty.path().to_path_buf()
        } else {
            let (manifest, _) = scope.state.commit(self.engine.images())?;
            let id = self.scratch_container(&manifest)?;
            containers.push(id.clone());
            self.engine.rootfs(&id)?
        };
        resolve_chown(&root, spec).map_err(|e| self.err(ins, e))
    }

    /// The last step: `--label`s, the names, the result.
    fn finish(&self, state: &mut ImageState) -> Result<Built> {
        let v = self.progress.vertex();
        let t0 = Instant::now();
        self.progress.line(&format!("#{v} exporting to image"));
        if !self.opts.labels.is_empty() {
            let cc = state.cc();
            if !cc.get("Labels").is_some_and(Value::is_object) {
                cc.insert("Labels".into(), json!({}));
            }
            for (k, val) in &self.opts.labels {
                cc["Labels"][k] = json!(val);
            }
        }
        if state.config.get("created").is_none_or(Value::is_null) {
            state.config["created"] = json!(self.now());
        }
        if self.opts.source_date_epoch.is_some() {
            state.config["created"] = json!(self.now());
        }
        if state.config["architecture"].is_null() {
            state.config["architecture"] = json!(host_arch());
        }
        let store = self.engine.images();
        let (manifest, id) = state.commit(store)?;
        self.progress.line(&format!("#{v} writing image {id} done"));
        for t in &self.opts.tags {
            let r = Reference::parse(t)
                .map_err(|e| BuildError::Other(format!("invalid tag {t:?}: {e}")))?;
            self.engine.image_tag(&manifest.to_string(), &r)?;
            self.progress.line(&format!("#{v} naming to {r} done"));
        }
        self.progress
            .line(&format!("#{v} DONE {:.1}s", t0.elapsed().as_secs_f64()));
        Ok(Built {
            id,
            manifest,
            ran: *self.ran.lock().unwrap(),
            cached: *self.cached.lock().unwrap(),
        })
    }
}

/// BuildKit's record of the build arguments a `RUN` saw: `|2 A=1 B=2 ` (empty without).
fn args_prefix(args: &[(String, String)]) -> String {
    if args.is_empty() {
        return String::new();
    }
    let list: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("|{} {} ", args.len(), list.join(" "))
}

/// A base image's pull as progress lines of its step (`#N sha256:... 2.1MB done`).
struct PullProgress<'a> {
    progress: &'a Progress,
    vertex: usize,
    sizes: Mutex<HashMap<Digest, u64>>,
}

impl berth_image::registry::Progress for PullProgress<'_> {
    fn resolved(&self, reference: &Reference, digest: &Digest) {
        self.progress.line(&format!(
            "#{} resolve {reference}@{digest} done",
            self.vertex
        ));
    }
    fn start(&self, blob: &Digest, size: u64, _transfer: berth_image::registry::Transfer) {
        self.sizes.lock().unwrap().insert(blob.clone(), size);
    }
    fn finish(&self, blob: &Digest, outcome: &berth_image::registry::Outcome) {
        let size = self.sizes.lock().unwrap().get(blob).copied().unwrap_or(0);
        let what = match outcome {
            berth_image::registry::Outcome::Exists => "already exists".to_string(),
            _ => format!("{:.2}MB done", size as f64 / 1e6),
        };
        self.progress.line(&format!(
            "#{} {} {what}",
            self.vertex,
            &blob.to_string()[..19]
        ));
    }
    fn note(&self, message: &str) {
        self.progress.line(&format!("#{} {message}", self.vertex));
    }
}

/// A container of the image `manifest` that is only created (never started), for its mounted
/// root; labelled as the build's.
pub(crate) fn scratch_container(engine: &Engine, manifest: &Digest) -> Result<String> {
    let req = json!({
        "Image": manifest.to_string(),
        "Cmd": ["/"],
        "Entrypoint": [""],
        "Labels": {BUILD_LABEL: std::process::id().to_string()},
        "HostConfig": {"NetworkMode": "none"},
    });
    let mut req: ContainerCreate = serde_json::from_value(req)
        .map_err(|e| BuildError::Other(format!("container request: {e}")))?;
    req.skip_image_volumes = true;
    Ok(engine.create(&req)?)
}

/// Whether BuildKit shows the instruction as a step of its own.
fn is_vertex(ins: &Instruction) -> bool {
    matches!(
        ins.kind,
        Kind::Run(_) | Kind::Copy(_) | Kind::Add(_) | Kind::Workdir { .. }
    )
}

fn push_bind(host: &mut Value, bind: String) {
    if let Some(b) = host["Binds"].as_array_mut() {
        b.push(json!(bind));
    }
}

/// The predefined platform arguments (global scope; a stage needs `ARG NAME` to use them).
fn predefined_args() -> Vec<(String, String)> {
    let arch = host_arch();
    vec![
        ("TARGETPLATFORM".into(), format!("linux/{arch}")),
        ("TARGETOS".into(), "linux".into()),
        ("TARGETARCH".into(), arch.clone()),
        ("TARGETVARIANT".into(), String::new()),
        ("BUILDPLATFORM".into(), format!("linux/{arch}")),
        ("BUILDOS".into(), "linux".into()),
        ("BUILDARCH".into(), arch),
        ("BUILDVARIANT".into(), String::new()),
    ]
}

/// `path` relative to `base` (an absolute `path` as it is), cleaned.
fn join_path(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", base.trim_end_matches('/'))
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `rel` inside `root`, `..` and absolute paths kept inside (symlinks are the kernel's
/// business at mount time: a bind mount source resolved here is the host path).
fn resolve_inside(root: &Path, rel: &str) -> std::result::Result<PathBuf, String> {
    let clean = join_path("/", rel);
    let p = root.join(clean.trim_start_matches('/'));
    let real = p
        .canonicalize()
        .map_err(|e| format!("mount source {rel}: {e}"))?;
    if !real.starts_with(root.canonicalize().map_err(|e| e.to_string())?) {
        return Err(format!("mount source {rel} leaves its root"));
    }
    Ok(real)
}

/// `--chown=user[:group]` as numbers, names looked up in the image's passwd and group.
fn resolve_chown(rootfs: &Path, spec: &str) -> std::result::Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &str, name: &str, field: usize| -> Option<(u32, u32)> {
        let text = std::fs::read_to_string(rootfs.join(file)).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name) && f.len() > field).then(|| {
                let id = f[2].parse().unwrap_or(0);
                let gid = if field > 2 {
                    f[3].parse().unwrap_or(0)
                } else {
                    id
                };
                (id, gid)
            })
        })
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, lookup("etc/passwd", user, 3).map(|x| x.1).unwrap_or(n)),
        Err(_) => lookup("etc/passwd", user, 3).ok_or_else(|| {
            format!("unable to convert uid/gid chown string to host mapping: no such user {user:?}")
        })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("etc/group", g, 2).map(|x| x.0).ok_or_else(|| {
                format!(
                    "unable to convert uid/gid chown string to host mapping: no such group {g:?}"
                )
            })?,
        },
    };
    Ok((uid, gid))
}

/// An instruction as the progress shows it: as written (flags included), white space
/// collapsed, its first line only (heredoc bodies and continuations are not shown).
fn display(ins: &Instruction) -> String {
    let first = ins.original.lines().next().unwrap_or_default();
    let text: Vec<&str> = first.split_whitespace().collect();
    let mut out = text.join(" ");
    if let Some(rest) = out.strip_suffix('\\') {
        out = rest.trim_end().to_string();
    }
    if ins.original.lines().count() > 1 && !out.contains("<<") {
        out.push_str(" ...");
    }
    out
}

fn one_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or_default();
    if s.lines().count() > 1 {
        format!("{first} ...")
    } else {
        first.to_string()
    }
}

fn sha_hex(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(data);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(BuildError::Other(format!(
            "pipe: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: both descriptors are new and ours.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_and_clean() {
        assert_eq!(join_path("/", "app"), "/app");
        assert_eq!(join_path("/app", "sub/../x"), "/app/x");
        assert_eq!(join_path("/app", "/abs"), "/abs");
        assert_eq!(join_path("/a", "../../.."), "/");
    }

    #[test]
    fn chown_names_and_numbers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:1000:1001::/w:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_chown(dir.path(), "web").unwrap(), (1000, 1001));
        assert_eq!(resolve_chown(dir.path(), "web:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_chown(dir.path(), "7:8").unwrap(), (7, 8));
        assert_eq!(resolve_chown(dir.path(), "7").unwrap(), (7, 7));
        assert!(
            resolve_chown(dir.path(), "nobody")
                .unwrap_err()
                .contains("no such user")
        );
        assert!(
            resolve_chown(dir.path(), "web:nogroup")
                .unwrap_err()
                .contains("no such group")
        );
    }
}
