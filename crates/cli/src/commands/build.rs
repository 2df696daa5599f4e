//! `berth build` (also `berth image build`, `berth buildx build`) and `berth builder prune`:
//! Docker's flags, BuildKit's plain progress on stderr, the image ID with `-q`.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use berth_build::{BuildOptions, ProgressSink};
use clap::{Args, Subcommand};

use crate::Cli;

/// `build [OPTIONS] PATH | -`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag (`name:tag`); may be given several times.
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile); `-` reads it from stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// Set a build-time variable (`NAME=VALUE`, or `NAME` to take it from the environment).
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the cache when building the image.
    #[arg(long)]
    pub no_cache: bool,
    /// Do not use the cache for these stages.
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
    /// Set metadata for the image (`KEY=VALUE`).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Always attempt to pull a newer version of the base images.
    #[arg(long)]
    pub pull: bool,
    /// The network RUN instructions use by default (`bridge`, `none`, `host`).
    #[arg(long, value_name = "MODE")]
    pub network: Option<String>,
    /// Suppress the build output and print the image ID on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image ID to the file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Progress output: `auto`, `plain`, `tty`, `quiet` (`quiet` is `-q`).
    #[arg(long, default_value = "auto", value_name = "TYPE")]
    pub progress: String,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=PATH` or `id=ID,env=VAR`.
    #[arg(long = "secret", value_name = "id=ID,src=PATH|env=VAR")]
    pub secrets: Vec<String>,
    /// Write the result out as well: `type=local,dest=DIR` (or just `DIR`), `type=tar,dest=FILE`
    /// (`-`: stdout), `type=oci|docker,dest=FILE[,name=NAME]`.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub output: Vec<String>,
    /// Take cached steps from this image's inline cache (built with `--cache-to type=inline`
    /// or `--build-arg BUILDKIT_INLINE_CACHE=1`); pulled if missing.
    #[arg(long = "cache-from", value_name = "IMAGE")]
    pub cache_from: Vec<String>,
    /// `type=inline`: record the build cache in the image, for `--cache-from` elsewhere.
    #[arg(long = "cache-to", value_name = "type=inline")]
    pub cache_to: Vec<String>,
    /// Set the target platform (only this machine's, `linux/amd64` here).
    #[arg(long)]
    pub platform: Option<String>,
    /// The build context: a directory, or `-` for a tar on stdin.
    #[arg(value_name = "PATH | -")]
    pub context: String,
}

/// `builder ...`.
#[derive(Subcommand, Debug)]
pub enum BuilderSub {
    /// Remove the build cache (steps kept for later builds, and RUN cache mounts).
    Prune(BuilderPruneArgs),
    /// Remove a build's containers once its process is gone (internal: started by build).
    #[command(name = "__reaper", hide = true)]
    Reaper {
        /// The build's process ID.
        pid: i32,
    },
}

/// `builder prune`.
#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all build cache (there is no other kind yet: the flag is accepted).
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Runs `build`.
pub fn build(cli: &Cli, a: &BuildArgs) -> Result<u8> {
    let engine = super::container::engine(cli)?;
    if let Some(p) = &a.platform {
        let host = format!("linux/{}", berth_image::Platform::host().architecture);
        if p != &host && p != "linux" {
            bail!("platform {p} is not supported: berth builds for this machine ({host}) only");
        }
    }
    if !matches!(
        a.progress.as_str(),
        "auto" | "plain" | "tty" | "quiet" | "rawjson"
    ) {
        bail!(
            "invalid --progress {:?}: use auto, plain, tty or quiet",
            a.progress
        );
    }
    let quiet = a.quiet || a.progress == "quiet";
    // A tar context on stdin is unpacked into a directory of our own first.
    let tmp;
    let context = if a.context == "-" {
        if a.file.as_deref() == Some("-") {
            bail!("the context and the Dockerfile cannot both come from stdin");
        }
        tmp = tempfile::Builder::new()
            .prefix("berth-build-context")
            .tempdir()
            .context("make a directory for the context")?;
        let mut ar = tar::Archive::new(io::stdin().lock());
        ar.set_preserve_permissions(true);
        ar.unpack(tmp.path())
            .context("read the build context from stdin (a tar archive)")?;
        tmp.path().to_path_buf()
    } else {
        PathBuf::from(&a.context)
    };
    if !context.is_dir() {
        bail!("unable to prepare context: path {:?} not found", a.context);
    }
    let mut opts = BuildOptions {
        context: context.clone(),
        tags: a.tags.clone(),
        target: a.target.clone(),
        no_cache: a.no_cache,
        no_cache_filter: a.no_cache_filter.clone(),
        pull: a.pull,
        network: a.network.clone(),
        ..Default::default()
    };
    match a.file.as_deref() {
        Some("-") => {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .context("read the Dockerfile from stdin")?;
            opts.dockerfile_text = Some(text);
        }
        Some(f) => opts.dockerfile = Some(PathBuf::from(f)),
        None => {}
    }
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => {
                opts.build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                // `--build-arg NAME` takes the caller's value; unset, it is not set at all.
                if let Ok(v) = std::env::var(b) {
                    opts.build_args.insert(b.clone(), v);
                }
            }
        }
    }
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        opts.labels.insert(k.to_string(), v.to_string());
    }
    opts.secrets = secrets(&a.secrets)?;
    opts.cache_from = a
        .cache_from
        .iter()
        .map(|c| {
            // `type=registry,ref=IMAGE` as buildx writes it, or the image itself.
            c.split(',')
                .find_map(|p| p.strip_prefix("ref="))
                .unwrap_or(c)
                .to_string()
        })
        .collect();
    for c in &a.cache_to {
        match c.as_str() {
            "type=inline" | "inline" => opts.inline_cache = true,
            other => bail!(
                "--cache-to {other:?} is not supported: berth keeps its cache in its store; use type=inline"
            ),
        }
    }
    if opts
        .build_args
        .get("BUILDKIT_INLINE_CACHE")
        .is_some_and(|v| v == "1" || v == "true")
    {
        opts.inline_cache = true;
    }
    let outputs = a
        .output
        .iter()
        .map(|o| berth_build::export::Output::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    let epoch = opts
        .build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok());
    if let Some(e) = epoch {
        opts.source_date_epoch = Some(
            e.parse()
                .with_context(|| format!("invalid SOURCE_DATE_EPOCH {e:?}: seconds since 1970"))?,
        );
    }
    let tty = match a.progress.as_str() {
        "tty" => true,
        "auto" => io::stderr().is_terminal(),
        _ => false,
    };
    let live = (!quiet && tty).then(LiveView::start);
    let sink: Option<ProgressSink> = if quiet {
        None
    } else if let Some(l) = &live {
        let w: Box<dyn Write + Send> = Box::new(l.writer());
        Some(Arc::new(Mutex::new(w)))
    } else {
        let w: Box<dyn Write + Send> = Box::new(io::stderr());
        Some(Arc::new(Mutex::new(w)))
    };
    // A failed build exits 1, as `docker build` (125 stays for berth's own errors before).
    on_interrupt_remove_build_containers(cli);
    spawn_reaper(cli);
    let result = berth_build::build(&engine, &opts, sink);
    if let Some(l) = live {
        l.finish();
    }
    let built = match result {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return Ok(1);
        }
    };
    for o in &outputs {
        let mut out = io::stdout().lock();
        berth_build::export::export(&engine, &built.manifest, o, &mut out)?;
        out.flush()?;
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, built.id.to_string())
            .with_context(|| format!("write {}", f.display()))?;
    }
    // With -q the ID goes to stdout, unless an output already does.
    if quiet
        && !outputs.iter().any(|o| {
            use berth_build::export::Output;
            matches!(
                o,
                Output::Tar(None) | Output::Oci(None, _) | Output::Docker(None, _)
            )
        })
    {
        println!("{}", built.id);
    }
    Ok(0)
}

/// `--secret id=ID,src=PATH` / `id=ID,env=VAR` (also `type=file|env`, `source=`).
fn secrets(specs: &[String]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for s in specs {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        for part in s.split(',') {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            match k {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" if v == "file" || v == "env" => {}
                _ => bail!("invalid --secret {s:?}: unknown key {k:?} (use id=, src=, env=)"),
            }
        }
        let id = id
            .or_else(|| env.clone())
            .ok_or_else(|| anyhow::anyhow!("invalid --secret {s:?}: id= is required"))?;
        let content = match (src, env) {
            (Some(p), _) => std::fs::read(&p).with_context(|| format!("secret {id}: read {p}"))?,
            (None, Some(var)) => std::env::var(&var)
                .with_context(|| format!("secret {id}: environment variable {var} is not set"))?
                .into_bytes(),
            (None, None) => match std::env::var(&id) {
                Ok(v) => v.into_bytes(),
                Err(_) => bail!("invalid --secret {s:?}: give src=PATH or env=VAR"),
            },
        };
        out.insert(id, content);
    }
    Ok(out)
}

/// Runs `builder prune`: every cached step and cache mount.
pub fn builder_prune(cli: &Cli, _a: &BuilderPruneArgs) -> Result<u8> {
    let engine = super::container::engine(cli)?;
    let report = berth_build::prune_cache(&engine)?;
    println!(
        "Deleted build cache objects: {} steps, {} cache mounts\nTotal reclaimed space: {}",
        report.steps.len(),
        report.mounts,
        super::container::format::human_size(report.reclaimed)
    );
    Ok(0)
}

/// The progress on a terminal: the steps as they come (a step's output indented under it),
/// and a status line at the bottom, `[+] Building 1.2s (3/7)`, redrawn as time passes.
struct LiveView {
    state: Arc<Mutex<LiveState>>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

struct LiveState {
    start: Instant,
    steps: usize,
    finished: usize,
    partial: Vec<u8>,
    stop: bool,
}

impl LiveState {
    fn status(&self) -> String {
        format!(
            "\x1b[1m[+] Building {:.1}s ({}/{})\x1b[0m",
            self.start.elapsed().as_secs_f64(),
            self.finished,
            self.steps
        )
    }

    /// One progress line: printed above the status line.
    fn line(&mut self, line: &str) {
        let mut err = io::stderr().lock();
        let shown = match line.split_once(' ') {
            Some((num, rest)) if num.starts_with('#') => {
                if rest.starts_with('[') {
                    self.steps += 1;
                    format!("\x1b[34m=> {rest}\x1b[0m")
                } else if rest == "CACHED" || rest.starts_with("DONE") {
                    self.finished += 1;
                    return self.redraw(&mut err);
                } else if rest.starts_with("exporting") {
                    self.steps += 1;
                    format!("=> {rest}")
                } else if rest.starts_with("writing") || rest.starts_with("naming") {
                    format!("=> {rest}")
                } else {
                    // A step's output: `#N 0.123 text`.
                    let text = rest.split_once(' ').map_or(rest, |(_, t)| t);
                    format!("\x1b[2m   {text}\x1b[0m")
                }
            }
            _ => line.to_string(),
        };
        let _ = write!(err, "\r\x1b[K{shown}\n{}", self.status());
        let _ = err.flush();
    }

    fn redraw(&self, err: &mut io::StderrLock) {
        let _ = write!(err, "\r\x1b[K{}", self.status());
        let _ = err.flush();
    }
}

impl LiveView {
    fn start() -> LiveView {
        let state = Arc::new(Mutex::new(LiveState {
            start: Instant::now(),
            steps: 0,
            finished: 0,
            partial: Vec::new(),
            stop: false,
        }));
        let s = state.clone();
        let ticker = std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let st = s.lock().unwrap();
                if st.stop {
                    break;
                }
                st.redraw(&mut io::stderr().lock());
            }
        });
        LiveView {
            state,
            ticker: Some(ticker),
        }
    }

    fn writer(&self) -> LiveWriter {
        LiveWriter(self.state.clone())
    }

    fn finish(mut self) {
        let mut st = self.state.lock().unwrap();
        st.stop = true;
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "\r\x1b[K{}", st.status());
        drop(st);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

/// What the builder writes into: split into lines for [`LiveState::line`].
struct LiveWriter(Arc<Mutex<LiveState>>);

impl Write for LiveWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.0.lock().unwrap();
        st.partial.extend_from_slice(buf);
        while let Some(i) = st.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = st.partial.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            st.line(&text);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

static INTERRUPT_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = INTERRUPT_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; one byte from our stack.
    unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
}

/// Ctrl-C (SIGINT), SIGTERM or SIGHUP during a build: the step's container (which runs under
/// its own monitor and would outlive us) and the other containers this build made are
/// removed, then we exit 130 as an interrupted command does. Completed steps stay cached.
fn on_interrupt_remove_build_containers(cli: &Cli) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    INTERRUPT_PIPE.store(fds[1], std::sync::atomic::Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only writes to a pipe; exec resets it in children.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let root = cli.root.clone();
    let runtime = cli.runtime.clone();
    let read_fd = fds[0];
    std::thread::spawn(move || {
        let mut b = 0u8;
        // SAFETY: reading one byte into our buffer from our pipe.
        let n = unsafe { libc::read(read_fd, (&mut b as *mut u8).cast(), 1) };
        if n != 1 {
            return;
        }
        eprintln!("\nERROR: interrupted: removing the build's containers");
        if let (Ok(rt), Ok(exe)) = (
            berth_engine::locate_runtime(runtime.as_deref()),
            std::env::current_exe(),
        ) && let Ok(e) = berth_engine::Engine::new(&root, &rt, &exe)
        {
            let _ = berth_build::remove_build_containers(&e, std::process::id());
        }
        std::process::exit(130);
    });
}

/// A process of its own (its own session: Ctrl-C does not reach it) that waits for this build
/// to end, however it ends (SIGKILL included), then removes any container the build left: a
/// step's container that was only created (COPY), or one whose monitor had not started yet.
fn spawn_reaper(cli: &Cli) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // Not waited for: it outlives us by design (PID 1 or a subreaper reaps it).
    let _ = berth_build::spawn_reaper(&exe, &cli.root, cli.runtime.as_deref(), std::process::id());
}

/// Runs `builder __reaper PID`.
pub fn reaper(cli: &Cli, pid: i32) -> Result<u8> {
    // SAFETY: pidfd_open has no memory arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd >= 0 {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; then our descriptor closed.
        unsafe {
            while libc::poll(&mut p, 1, -1) < 0
                && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {}
            libc::close(fd);
        }
    }
    // A root removed meanwhile (a test's, gone with it) is not made again.
    if !cli.root.join("containers").is_dir() {
        return Ok(0);
    }
    let engine = super::container::engine(cli)?;
    berth_build::remove_build_containers(&engine, pid as u32)?;
    Ok(0)
}
