//! Image commands: pull, push, images, rmi, tag, image inspect, save, load, import,
//! image prune, login, logout. Flags and output follow Docker's.

mod progress;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use berth_image::archive::familiar_name;
use berth_image::registry::{
    self, Credentials, DockerConfig, PullOptions, PushOptions, RegistryOptions,
};
use berth_image::{Error, Platform, Reference, Store};
use clap::{Args, Subcommand};

use super::container::format::human_size3;
use super::template::{ListFormat, Titles};
use crate::Cli;
use berth_engine::{Engine, Filters, ImageDeleted, ImageListOptions, ImageSummary};

/// Commands on images and registries.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// List images.
    Images(ImagesArgs),
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Save one or more images to a tar archive (streamed to stdout by default).
    Save(SaveArgs),
    /// Load images from a tar archive (docker save or OCI layout) or stdin.
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Log in to a registry.
    Login(LoginArgs),
    /// Log out from a registry.
    Logout(LogoutArgs),
    /// Build an image from a Dockerfile.
    Build(Box<super::build::BuildArgs>),
    /// Docker Buildx's command group (`buildx build`).
    #[command(subcommand)]
    Buildx(BuildxSub),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(super::build::BuilderSub),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageSub),
}

/// `berth buildx ...`.
#[derive(Subcommand, Debug)]
pub enum BuildxSub {
    /// Build an image from a Dockerfile (as `berth build`).
    Build(Box<super::build::BuildArgs>),
    /// Remove the build cache (as `berth builder prune`).
    Prune(super::build::BuilderPruneArgs),
}

/// `berth image ...`.
#[derive(Subcommand, Debug)]
pub enum ImageSub {
    /// Build an image from a Dockerfile (as `berth build`).
    Build(Box<super::build::BuildArgs>),
    /// Display detailed information on one or more images.
    /// Show the history of an image (as `berth history`).
    History(super::system::HistoryArgs),
    Inspect(InspectArgs),
    /// Remove unused images and blobs.
    Prune(PruneArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images.
    Rm(RmiArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Save one or more images to a tar archive.
    Save(SaveArgs),
    /// Load images from a tar archive.
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
}

/// Registry access flags.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Use plain HTTP for this registry (host:port); repeatable. Also BERTH_INSECURE_REGISTRIES.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
}

impl RegistryArgs {
    fn options(&self) -> RegistryOptions {
        let mut o = RegistryOptions::from_env();
        o.insecure.extend(self.insecure_registry.iter().cloned());
        o
    }
}

/// `pull`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform to pull from a multi-platform image (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Image name, with a tag or digest.
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
}

/// `push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Image name, with a tag.
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

/// `images`.
#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show all images (berth keeps no intermediate images: same as without).
    #[arg(short, long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: table, table TEMPLATE, json (one JSON object per line), or a Go
    /// template.
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided (dangling=, label=, reference=, before=,
    /// since=).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Only images of this repository (a reference filter: `*` and `?` match).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
}

/// `rmi`.
#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove an image ID even when several names point at it.
    #[arg(short, long)]
    pub force: bool,
    /// Images (names or IDs).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `tag`.
#[derive(Args, Debug)]
pub struct TagArgs {
    /// Existing image (name or ID).
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// New name.
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// `image inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output: json (the default) or a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Images (names or IDs).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `image prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all images not used by a container, not only unreferenced blobs.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation (berth never prompts).
    #[arg(short, long)]
    pub force: bool,
}

/// `save`.
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Images to save.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from a tar archive file instead of stdin.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform to load from a multi-platform archive.
    #[arg(long)]
    pub platform: Option<String>,
}

/// `import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Platform of the image (default: the host's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Root filesystem tarball (plain, gzip or zstd), or - for stdin.
    #[arg(value_name = "file|-")]
    pub file: String,
    /// Name of the new image.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: String,
}

/// `login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Registry (default: Docker Hub).
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// `logout`.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry (default: Docker Hub).
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// Runs an image command; returns the exit status.
pub fn run(cli: &Cli, cmd: &ImageCommand) -> Result<u8> {
    let engine = || super::container::engine(cli);
    match cmd {
        ImageCommand::Pull(a) | ImageCommand::Image(ImageSub::Pull(a)) => pull(&engine()?, a),
        ImageCommand::Push(a) | ImageCommand::Image(ImageSub::Push(a)) => push(&engine()?, a),
        ImageCommand::Images(a) | ImageCommand::Image(ImageSub::Ls(a)) => images(&engine()?, a),
        ImageCommand::Rmi(a) | ImageCommand::Image(ImageSub::Rm(a)) => rmi(&engine()?, a),
        ImageCommand::Tag(a) | ImageCommand::Image(ImageSub::Tag(a)) => tag(&engine()?, a),
        ImageCommand::Save(a) | ImageCommand::Image(ImageSub::Save(a)) => save(&engine()?, a),
        ImageCommand::Load(a) | ImageCommand::Image(ImageSub::Load(a)) => load(&engine()?, a),
        ImageCommand::Import(a) | ImageCommand::Image(ImageSub::Import(a)) => import(&engine()?, a),
        ImageCommand::Image(ImageSub::Inspect(a)) => inspect(&engine()?, a),
        ImageCommand::Image(ImageSub::History(a)) => super::system::history_command(cli, a),
        ImageCommand::Image(ImageSub::Prune(a)) => prune(cli, a),
        ImageCommand::Build(a)
        | ImageCommand::Buildx(BuildxSub::Build(a))
        | ImageCommand::Image(ImageSub::Build(a)) => super::build::build(cli, a),
        ImageCommand::Builder(super::build::BuilderSub::Prune(a))
        | ImageCommand::Buildx(BuildxSub::Prune(a)) => super::build::builder_prune(cli, a),
        ImageCommand::Builder(super::build::BuilderSub::Reaper { pid }) => {
            super::build::reaper(cli, *pid)
        }
        ImageCommand::Login(a) => login(a),
        ImageCommand::Logout(a) => logout(a),
    }
}

fn platform(p: &Option<String>) -> Result<Platform> {
    match p {
        None => Ok(Platform::host()),
        Some(s) => Platform::parse(s)
            .ok_or_else(|| anyhow!("invalid platform {s:?}: expected os/arch[/variant]")),
    }
}

fn parse_ref(s: &str) -> Result<Reference> {
    Reference::parse(s).map_err(|e| anyhow!("{e}"))
}

/// An image in the store, found by name, full or short ID (config digest, as Docker's IDs),
/// or manifest digest: berth-image's one look-up, with the CLI's message when nothing is found.
fn find_image(store: &Store, text: &str) -> Result<berth_image::FoundImage> {
    match store.find_image(text) {
        Ok(f) => Ok(f),
        Err(Error::ImageNotFound(_)) => bail!("{}", not_found(text)),
        Err(e) => Err(e.into()),
    }
}

fn not_found(text: &str) -> String {
    match Reference::parse(text) {
        Ok(r) => format!(
            "image not found: {} (try `berth pull {text}`)",
            familiar_name(&r)
        ),
        Err(_) => format!("image not found: {text}"),
    }
}

// ---- pull / push ----

fn pull(e: &Engine, a: &PullArgs) -> Result<u8> {
    let store = e.images();
    let reference = parse_ref(&a.name)?;
    let opts = PullOptions {
        platform: platform(&a.platform)?,
        registry: a.registry.options(),
        ..PullOptions::default()
    };
    let before = store.resolve(&reference).ok();
    let mut out = io::stdout().lock();
    if !a.quiet {
        let last = a.name.rsplit('/').next().unwrap_or(&a.name);
        if !last.contains([':', '@']) {
            writeln!(out, "Using default tag: latest")?;
        }
        let what = reference
            .tag()
            .map(str::to_string)
            .or_else(|| reference.digest().map(|d| d.hex().to_string()))
            .unwrap_or_default();
        writeln!(out, "{what}: Pulling from {}", reference.repository())?;
        out.flush()?;
    }
    let progress = progress::for_terminal(a.quiet);
    let pulled = e
        .image_pull(&reference, &opts, progress.as_ref())
        .with_context(|| format!("pull {}", familiar_name(&reference)))?;
    // registry::pull unpacked the layers before naming the image, as Docker does.
    if !a.quiet {
        writeln!(out, "Digest: {}", pulled.digest)?;
        if pulled.fetched == 0 && before.as_ref() == Some(&pulled.manifest) {
            writeln!(
                out,
                "Status: Image is up to date for {}",
                familiar_name(&reference)
            )?;
        } else {
            writeln!(
                out,
                "Status: Downloaded newer image for {}",
                familiar_name(&reference)
            )?;
        }
    }
    writeln!(out, "{reference}")?;
    Ok(0)
}

fn push(e: &Engine, a: &PushArgs) -> Result<u8> {
    let store = e.images();
    let reference = parse_ref(&a.name)?;
    if let Err(Error::ImageNotFound(_)) = store.resolve(&reference) {
        bail!(
            "image not found: {} (tag an image with `berth tag IMAGE {}` first)",
            familiar_name(&reference),
            a.name
        );
    }
    let opts = PushOptions {
        registry: a.registry.options(),
        chunk_size: std::env::var("BERTH_PUSH_CHUNK_SIZE")
            .ok()
            .and_then(|s| s.parse().ok()),
    };
    let mut out = io::stdout().lock();
    if !a.quiet {
        writeln!(out, "The push refers to repository [{}]", reference.name())?;
        out.flush()?;
    }
    let progress = progress::for_terminal(a.quiet);
    let pushed = e
        .image_push(&reference, &opts, progress.as_ref())
        .with_context(|| format!("push {}", familiar_name(&reference)))?;
    if a.quiet {
        writeln!(out, "{reference}")?;
    } else {
        writeln!(
            out,
            "{}: digest: {} size: {}",
            reference.tag().unwrap_or("latest"),
            pushed.digest,
            pushed.size
        )?;
    }
    Ok(0)
}

// ---- images ----

/// One row of `images`: an image under one of its names.
struct Row<'a> {
    repository: String,
    tag: String,
    digest: String,
    image: &'a ImageSummary,
}

/// The rows of the engine's summaries, as Docker's CLI expands them: one per tag, or one per
/// digest name for an image without tags; newest first, then by name.
fn rows(list: &[ImageSummary]) -> Vec<Row<'_>> {
    let mut out = Vec::new();
    for image in list {
        let digest_of = |repo: &str| {
            image
                .repo_digests
                .iter()
                .find_map(|d| d.strip_prefix(repo)?.strip_prefix('@'))
                .unwrap_or("<none>")
                .to_string()
        };
        for t in &image.repo_tags {
            let (repo, tag) = split_tag(t);
            out.push(Row {
                digest: digest_of(repo),
                repository: repo.to_string(),
                tag: tag.unwrap_or("<none>").to_string(),
                image,
            });
        }
        if image.repo_tags.is_empty() {
            for d in &image.repo_digests {
                let (repo, digest) = d.split_once('@').unwrap_or((d, "<none>"));
                out.push(Row {
                    repository: repo.to_string(),
                    tag: "<none>".into(),
                    digest: digest.to_string(),
                    image,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        b.image
            .created
            .cmp(&a.image.created)
            .then(a.repository.cmp(&b.repository))
            .then(a.tag.cmp(&b.tag))
    });
    out
}

/// `repo:tag` -> (`repo`, `tag`); a colon in a registry's `host:port` is not a tag.
fn split_tag(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    }
}

fn images(e: &Engine, a: &ImagesArgs) -> Result<u8> {
    let mut filters = a.filter.clone();
    // `images REPOSITORY[:TAG]` is a reference filter, as Docker's CLI sends it.
    if let Some(r) = &a.repository {
        filters.push(format!("reference={r}"));
    }
    let list = e.image_summaries(&ImageListOptions {
        all: a.all,
        filters: Filters::parse(&filters)?,
    })?;
    let rows = rows(&list);
    let mut out = io::stdout().lock();
    let id = |d: &str| {
        if a.no_trunc {
            d.to_string()
        } else {
            let hex = d.strip_prefix("sha256:").unwrap_or(d);
            hex[..hex.len().min(12)].to_string()
        }
    };
    if a.quiet {
        let mut seen = HashSet::new();
        for r in &rows {
            if seen.insert(&r.image.id) {
                writeln!(out, "{}", id(&r.image.id))?;
            }
        }
        return Ok(0);
    }
    let now = now_secs();
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let created = Some(r.image.created).filter(|c| *c > 0);
            let count = |n: i64| {
                if n < 0 {
                    "N/A".to_string()
                } else {
                    n.to_string()
                }
            };
            let size = |n: i64| {
                if n < 0 {
                    "N/A".to_string()
                } else {
                    human_size3(n as u64)
                }
            };
            serde_json::json!({
                "Containers": count(r.image.containers),
                "CreatedAt": created.map(super::container::format::go_time).unwrap_or_default(),
                "CreatedSince": created_since(created, now),
                "Digest": r.digest,
                "ID": id(&r.image.id),
                "Repository": r.repository,
                "SharedSize": size(r.image.shared_size),
                "Size": human_size3(r.image.size.max(0) as u64),
                "Tag": r.tag,
                "UniqueSize": if r.image.shared_size < 0 { "N/A".to_string() } else {
                    human_size3((r.image.size - r.image.shared_size).max(0) as u64) },
                "VirtualSize": human_size3(r.image.size.max(0) as u64),
            })
        })
        .collect();
    let default = if a.digests {
        IMAGES_TABLE.replace("{{.Tag}}", "{{.Tag}}\t{{.Digest}}")
    } else {
        IMAGES_TABLE.to_string()
    };
    ListFormat::parse(a.format.as_deref(), &default)?.write(&mut out, &items, IMAGES_TITLES)?;
    Ok(0)
}

/// Docker's `images` table and column titles.
const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_TITLES: &Titles = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Docker's `units.HumanDuration` + " ago".
fn created_since(created: Option<i64>, now: i64) -> String {
    match created {
        None => "N/A".into(),
        Some(t) => format!(
            "{} ago",
            berth_engine::human_duration(std::time::Duration::from_secs((now - t).max(0) as u64))
        ),
    }
}

// ---- rmi / tag / inspect / prune ----

fn rmi(e: &Engine, a: &RmiArgs) -> Result<u8> {
    let mut out = io::stdout().lock();
    let mut failed = false;
    for text in &a.images {
        match e.image_remove(text, a.force) {
            Ok(items) => {
                for item in items {
                    match item {
                        ImageDeleted::Untagged(n) => writeln!(out, "Untagged: {n}")?,
                        ImageDeleted::Deleted(d) => writeln!(out, "Deleted: {d}")?,
                    }
                }
            }
            Err(berth_engine::Error::Image(Error::ImageNotFound(_))) => {
                eprintln!("berth: {}", not_found(text));
                failed = true;
            }
            Err(err) => {
                eprintln!("berth: {err}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn tag(e: &Engine, a: &TagArgs) -> Result<u8> {
    let target = parse_ref(&a.target)?;
    match e.image_tag(&a.source, &target) {
        Ok(()) => Ok(0),
        Err(berth_engine::Error::Image(Error::ImageNotFound(_))) => {
            bail!("{}", not_found(&a.source))
        }
        Err(err) => Err(err.into()),
    }
}

fn inspect(e: &Engine, a: &InspectArgs) -> Result<u8> {
    let mut all = Vec::new();
    let mut failed = false;
    for text in &a.images {
        match e.image_inspect(text) {
            Ok(i) => all.push(serde_json::to_value(i)?),
            Err(berth_engine::Error::Image(Error::ImageNotFound(_))) => {
                eprintln!("berth: {}", not_found(text));
                failed = true;
            }
            Err(err) => {
                eprintln!("berth: {}", crate::error_text(&err));
                failed = true;
            }
        }
    }
    super::template::write_inspect(&mut io::stdout().lock(), a.format.as_deref(), &all)?;
    Ok(if failed { 1 } else { 0 })
}

fn prune(cli: &Cli, a: &PruneArgs) -> Result<u8> {
    let report = super::container::engine(cli)?.prune_images(a.all)?;
    let mut out = io::stdout().lock();
    for n in &report.untagged {
        writeln!(out, "untagged: {n}")?;
    }
    for d in &report.deleted {
        writeln!(out, "deleted: {d}")?;
    }
    // Blobs, unpacked layers and what failed or killed writes left in tmp/.
    writeln!(
        out,
        "Total reclaimed space: {}",
        super::container::format::human_size(report.reclaimed)
    )?;
    Ok(0)
}

// ---- save / load / import ----

fn save(e: &Engine, a: &SaveArgs) -> Result<u8> {
    for text in &a.images {
        find_image(e.images(), text)?;
    }
    match &a.output {
        Some(path) => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let tmp = match dir {
                Some(d) => d.join(format!(".berth-save-{}.tmp", std::process::id())),
                None => PathBuf::from(format!(".berth-save-{}.tmp", std::process::id())),
            };
            let res = (|| -> Result<()> {
                let f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
                let mut w = io::BufWriter::new(f);
                e.image_save(&a.images, &mut w)?;
                w.into_inner()
                    .map_err(|e| e.into_error())?
                    .sync_all()
                    .with_context(|| format!("write {}", tmp.display()))?;
                std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))
            })();
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res?;
        }
        None => {
            if io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
            }
            let mut w = io::BufWriter::new(io::stdout().lock());
            e.image_save(&a.images, &mut w)?;
            w.flush()?;
        }
    }
    Ok(0)
}

fn load(e: &Engine, a: &LoadArgs) -> Result<u8> {
    let platform = platform(&a.platform)?;
    let images = match &a.input {
        Some(path) => {
            let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
            e.image_load(io::BufReader::new(f), &platform)
                .with_context(|| format!("load {}", path.display()))?
        }
        None => {
            if io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty: use -i FILE or a pipe");
            }
            e.image_load(io::stdin().lock(), &platform)
                .context("load from stdin")?
        }
    };
    if !a.quiet {
        let mut out = io::stdout().lock();
        for i in images {
            match i.name {
                Some(n) => writeln!(out, "Loaded image: {n}")?,
                None => writeln!(out, "Loaded image ID: {}", i.manifest)?,
            }
        }
    }
    Ok(0)
}

fn import(e: &Engine, a: &ImportArgs) -> Result<u8> {
    let name = parse_ref(&a.reference)?;
    let platform = platform(&a.platform)?;
    let image = if a.file == "-" {
        e.image_import(io::stdin().lock(), &name, &platform)?
    } else {
        let f = File::open(&a.file).with_context(|| format!("open {}", a.file))?;
        e.image_import(io::BufReader::new(f), &name, &platform)?
    };
    println!("{}", image.config_digest);
    Ok(0)
}

// ---- login / logout ----

/// `docker.io`, `https://index.docker.io/v1/`, `https://host:5000/` (none: Docker Hub) -> the
/// registry host.
fn server_host(server: Option<&str>) -> String {
    registry::credentials::registry_host(server.unwrap_or_default()).to_string()
}

fn prompt(label: &str, hidden: bool) -> Result<String> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        bail!("cannot prompt for the {label} without a terminal: use -u and --password-stdin");
    }
    eprint!("{label}: ");
    io::stderr().flush()?;
    let echo_off = hidden
        && std::process::Command::new("stty")
            .arg("-echo")
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success());
    let mut line = String::new();
    let res = stdin.lock().read_line(&mut line);
    if echo_off {
        let _ = std::process::Command::new("stty")
            .arg("echo")
            .stdin(std::process::Stdio::inherit())
            .status();
        eprintln!();
    }
    res?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn login(a: &LoginArgs) -> Result<u8> {
    let host = server_host(a.server.as_deref());
    let username = match &a.username {
        Some(u) => u.clone(),
        None => prompt("Username", false)?,
    };
    let password = if a.password_stdin {
        if a.password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut s = String::new();
        io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        prompt("Password", true)?
    };
    if username.is_empty() || password.is_empty() {
        bail!("a username and a password are needed");
    }
    let creds = Credentials { username, password };
    registry::check_login(&host, &creds, &a.registry.options())
        .with_context(|| format!("login to {host}"))?;
    let path = registry::credentials::default_config_path();
    let mut config = DockerConfig::load(&path)?;
    config.store(&host, &creds)?;
    println!("Login Succeeded");
    Ok(0)
}

fn logout(a: &LogoutArgs) -> Result<u8> {
    let host = server_host(a.server.as_deref());
    let path = registry::credentials::default_config_path();
    let mut config = DockerConfig::load(&path)?;
    if config.erase(&host)? {
        println!("Removing login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_docker() {
        let t = 1_700_000_000;
        let c = Some(t);
        assert_eq!(created_since(c, t + 3 * 86400), "3 days ago");
        assert_eq!(created_since(c, t + 90), "About a minute ago");
        assert_eq!(created_since(None, t), "N/A");
    }

    #[test]
    fn servers() {
        assert_eq!(server_host(None), "docker.io");
        assert_eq!(
            server_host(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(server_host(Some("localhost:5000")), "localhost:5000");
    }
}
