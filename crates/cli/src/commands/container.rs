//! Container commands: run, create, start, ps, logs, exec, stop, restart, kill, rm, wait,
//! inspect, stats, top, pause, unpause, cp, rename, attach, commit; and the hidden `__monitor`.
//!
//! Each verb parses Docker's flags, calls `berth_engine::Engine`, and prints what Docker
//! prints. Exit statuses: 125 for berth's own errors (from main), 126/127 when the command
//! cannot be run, else the container's or command's status.

mod cp;
mod flags;
pub(crate) mod format;
mod ps;
mod term;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use berth_engine::{
    AttachEnd, AttachIo, Engine, Error as EngineError, ExecConfig, ExecIo, LogOptions,
};
use clap::{Args, Subcommand};

use crate::Cli;
use flags::CreateFlags;

/// Commands on containers.
#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(Box<RunArgs>),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(Box<CreateFlags>),
    /// Start one or more stopped containers.
    Start {
        /// Attach STDOUT/STDERR and forward signals.
        #[arg(short, long)]
        attach: bool,
        /// Attach container's STDIN.
        #[arg(short, long)]
        interactive: bool,
        /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q).
        #[arg(long)]
        detach_keys: Option<String>,
        /// Restore from this checkpoint (`checkpoint create`) instead of starting anew.
        #[arg(long, value_name = "NAME")]
        checkpoint: Option<String>,
        /// Where the checkpoint is (as given to `checkpoint create --checkpoint-dir`).
        #[arg(long, value_name = "DIR", requires = "checkpoint")]
        checkpoint_dir: Option<std::path::PathBuf>,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers (`container ls`).
    #[command(alias = "ls", alias = "list")]
    Ps(ps::PsArgs),
    /// Fetch the logs of a container.
    Logs {
        /// Follow log output.
        #[arg(short, long)]
        follow: bool,
        /// Number of lines to show from the end of the logs.
        #[arg(short = 'n', long)]
        tail: Option<String>,
        /// Show timestamps.
        #[arg(short, long)]
        timestamps: bool,
        /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m).
        #[arg(long)]
        since: Option<String>,
        /// Container.
        container: String,
    },
    /// Execute a command in a running container.
    Exec(ExecArgs),
    /// Stop one or more running containers.
    Stop {
        /// Seconds to wait before killing the container.
        #[arg(
            short = 't',
            long = "time",
            alias = "timeout",
            allow_hyphen_values = true
        )]
        time: Option<i64>,
        /// Signal to send (default: the container's stop signal).
        #[arg(short, long)]
        signal: Option<String>,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Restart one or more containers.
    Restart {
        /// Seconds to wait before killing the container.
        #[arg(
            short = 't',
            long = "time",
            alias = "timeout",
            allow_hyphen_values = true
        )]
        time: Option<i64>,
        /// Signal to send to stop it (default: the container's stop signal).
        #[arg(short, long)]
        signal: Option<String>,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Kill one or more running containers.
    Kill {
        /// Signal to send to the container.
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more containers.
    Rm {
        /// Force the removal of a running container (uses SIGKILL).
        #[arg(short, long)]
        force: bool,
        /// Remove anonymous volumes associated with the container.
        #[arg(short, long)]
        volumes: bool,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Block until one or more containers stop, then print their exit codes.
    Wait {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Return low-level information on containers.
    Inspect {
        /// Format output: json (the default) or a Go template.
        #[arg(short, long)]
        format: Option<String>,
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Display a live stream of container(s) resource usage statistics.
    Stats {
        /// Disable streaming stats and only pull the first result.
        #[arg(long)]
        no_stream: bool,
        /// Show all containers (default shows just running).
        #[arg(short, long)]
        all: bool,
        /// Format output: table, table TEMPLATE, json, or a Go template.
        #[arg(long)]
        format: Option<String>,
        /// Do not truncate output.
        #[arg(long)]
        no_trunc: bool,
        /// Containers (default: all running).
        containers: Vec<String>,
    },
    /// Display the running processes of a container.
    Top {
        /// Container.
        container: String,
        /// Options for ps.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Pause all processes within one or more containers.
    Pause {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers.
    Unpause {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Copy files/folders between a container and the local filesystem.
    Cp {
        /// Always follow a symlink in SRC (default: copy the link itself).
        #[arg(short = 'L', long = "follow-link")]
        follow_link: bool,
        /// Source: CONTAINER:SRC_PATH, a host path, or - (a tar on stdin).
        src: String,
        /// Destination: CONTAINER:DEST_PATH, a host path, or - (a tar to stdout).
        dst: String,
    },
    /// Rename a container.
    Rename {
        /// Container.
        container: String,
        /// New name.
        new_name: String,
    },
    /// Show what a container changed in its filesystem: A added, C changed, D deleted.
    Diff {
        /// Container.
        container: String,
    },
    /// Write a container's filesystem as a tar archive (to stdout, or -o FILE).
    Export {
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        /// Container.
        container: String,
    },
    /// Change the resources or restart policy of containers (running ones at once).
    Update(UpdateArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach {
        /// Do not attach STDIN.
        #[arg(long)]
        no_stdin: bool,
        /// Proxy all received signals to the process (without a terminal).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        sig_proxy: bool,
        /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q).
        #[arg(long)]
        detach_keys: Option<String>,
        /// Container.
        container: String,
    },
    /// Create a new image from a container's changes.
    Commit {
        /// Author (e.g. "John Hannibal Smith <hannibal@a-team.com>").
        #[arg(short, long, default_value = "")]
        author: String,
        /// Commit message.
        #[arg(short, long, default_value = "")]
        message: String,
        /// Container.
        container: String,
        /// Repository[:tag] for the new image.
        repository: String,
    },
    /// Run a container's monitor (internal: started by run/start).
    #[command(name = "__monitor", hide = true)]
    Monitor {
        /// Report on this descriptor.
        #[arg(long)]
        ready_fd: Option<i32>,
        /// Start only once a client is attached.
        #[arg(long)]
        wait_attach: bool,
        /// Read the container ID from this descriptor (a monitor started before its container).
        #[arg(long)]
        id_fd: Option<i32>,
        /// Container ID.
        #[arg(required_unless_present = "id_fd")]
        id: Option<String>,
    },
}

/// `run` = `create` flags plus detach.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Proxy received signals to the process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sig_proxy: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q).
    #[arg(long)]
    detach_keys: Option<String>,
    #[command(flatten)]
    create: CreateFlags,
}

/// `exec` flags.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    user: Option<String>,
    /// Set environment variables.
    #[arg(short, long)]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    privileged: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q).
    #[arg(long)]
    detach_keys: Option<String>,
    /// Container.
    container: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

pub(crate) fn engine(cli: &Cli) -> anyhow::Result<Engine> {
    let rt = berth_engine::locate_runtime(cli.runtime.as_deref())?;
    let exe = std::env::current_exe().context("find the berth binary")?;
    Ok(Engine::new(&cli.root, &rt, &exe)?)
}

/// 126/127 errors print and become the exit status; others go up (125).
fn command_status(e: EngineError) -> anyhow::Result<u8> {
    match e {
        EngineError::Command { code, message } => {
            eprintln!("berth: {message}");
            Ok(code)
        }
        e => Err(e.into()),
    }
}

/// Runs a container command; returns the exit status.
pub fn run(cli: &Cli, cmd: &ContainerCommand) -> anyhow::Result<u8> {
    if let ContainerCommand::Monitor {
        ready_fd,
        wait_attach,
        id_fd,
        id,
    } = cmd
    {
        let e = engine(cli)?;
        let code = match (id_fd, id) {
            (Some(fd), _) => e.run_monitor_waiting(*fd, *wait_attach, *ready_fd),
            (None, Some(id)) => e.run_monitor(id, *wait_attach, *ready_fd),
            (None, None) => 125,
        };
        return Ok(code as u8);
    }
    let e = engine(cli)?;
    match cmd {
        ContainerCommand::Monitor { .. } => unreachable!(),
        ContainerCommand::Run(a) => run_container(&e, a),
        ContainerCommand::Create(f) => {
            let (id, _) = create_container(&e, f)?;
            println!("{id}");
            Ok(0)
        }
        ContainerCommand::Start {
            attach,
            interactive,
            detach_keys,
            checkpoint,
            checkpoint_dir,
            containers,
        } => {
            if let Some(name) = checkpoint {
                if *attach || *interactive {
                    anyhow::bail!("--checkpoint cannot be combined with --attach or --interactive");
                }
                return each(containers, |c| {
                    e.start_checkpoint(c, name, checkpoint_dir.as_deref())?;
                    Ok(())
                });
            }
            if *attach || *interactive {
                let id = e.lookup(&containers[0])?;
                if let Some(code) = no_tty(*interactive, e.record(&id)?.config.tty) {
                    return Ok(code);
                }
                return start_attached(&e, &id, *interactive, true, detach_keys.clone(), None);
            }
            each(containers, |c| {
                let id = e.lookup(c)?;
                match e.start(&id) {
                    Ok(()) => Ok(()),
                    Err(err) => Err(err.into()),
                }
            })
        }
        ContainerCommand::Ps(a) => ps::run(&e, a),
        ContainerCommand::Logs {
            follow,
            tail,
            timestamps,
            since,
            container,
        } => logs(
            &e,
            container,
            *follow,
            tail.as_deref(),
            *timestamps,
            since.as_deref(),
        ),
        ContainerCommand::Exec(a) => exec(&e, a),
        ContainerCommand::Stop {
            time,
            signal,
            containers,
        } => each(containers, |c| {
            let id = e.lookup(c)?;
            e.stop(&id, signal.as_deref(), *time)?;
            Ok(())
        }),
        ContainerCommand::Restart {
            time,
            signal,
            containers,
        } => each(containers, |c| {
            let id = e.lookup(c)?;
            e.restart(&id, signal.as_deref(), *time)?;
            Ok(())
        }),
        ContainerCommand::Kill { signal, containers } => each(containers, |c| {
            let id = e.lookup(c)?;
            e.kill(&id, signal)?;
            Ok(())
        }),
        ContainerCommand::Rm {
            force,
            volumes,
            containers,
        } => each(containers, |c| {
            let id = e.lookup(c)?;
            e.remove(&id, *force, *volumes)?;
            Ok(())
        }),
        ContainerCommand::Wait { containers } => {
            let mut status = 0;
            for c in containers {
                match e.lookup(c).and_then(|id| e.wait(&id)) {
                    Ok(code) => println!("{code}"),
                    Err(err) => {
                        eprintln!("berth: {}", crate::error_text(&err));
                        status = 1;
                    }
                }
            }
            Ok(status)
        }
        ContainerCommand::Inspect { format, containers } => {
            let mut all = Vec::new();
            let mut status = 0;
            for c in containers {
                match e.lookup(c).and_then(|id| e.inspect(&id)) {
                    Ok(v) => all.push(v),
                    Err(err) => {
                        eprintln!("berth: {}", crate::error_text(&err));
                        status = 1;
                    }
                }
            }
            crate::commands::template::write_inspect(
                &mut std::io::stdout().lock(),
                format.as_deref(),
                &all,
            )?;
            Ok(status)
        }
        ContainerCommand::Stats {
            no_stream,
            all,
            format,
            no_trunc,
            containers,
        } => ps::stats(
            &e,
            containers,
            *all,
            *no_stream,
            format.as_deref(),
            *no_trunc,
        ),
        ContainerCommand::Top { container, ps_args } => {
            let id = e.lookup(container)?;
            print!("{}", e.top(&id, ps_args)?);
            Ok(0)
        }
        ContainerCommand::Pause { containers } => each(containers, |c| {
            let id = e.lookup(c)?;
            e.pause(&id)?;
            Ok(())
        }),
        ContainerCommand::Unpause { containers } => each(containers, |c| {
            let id = e.lookup(c)?;
            e.unpause(&id)?;
            Ok(())
        }),
        ContainerCommand::Cp {
            follow_link,
            src,
            dst,
        } => cp::run(&e, src, dst, *follow_link),
        ContainerCommand::Commit {
            author,
            message,
            container,
            repository,
        } => {
            let id = e.lookup(container)?;
            println!("{}", e.commit(&id, repository, author, message)?);
            Ok(0)
        }
        ContainerCommand::Diff { container } => {
            let id = e.lookup(container)?;
            for c in e.changes(&id)? {
                println!("{} {}", c.kind.letter(), c.path);
            }
            Ok(0)
        }
        ContainerCommand::Export { output, container } => {
            let id = e.lookup(container)?;
            match output {
                Some(path) => {
                    // Written beside the target and renamed: never a half-written archive.
                    let dir = path
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(std::path::Path::new("."));
                    let mut tmp = tempfile::NamedTempFile::new_in(dir)
                        .with_context(|| format!("create a file in {}", dir.display()))?;
                    e.export(&id, &mut tmp)?;
                    tmp.persist(path)
                        .with_context(|| format!("write {}", path.display()))?;
                }
                None => {
                    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                        anyhow::bail!(
                            "refusing to write a tar archive to a terminal: use -o FILE or \
                             redirect stdout"
                        );
                    }
                    let stdout = std::io::stdout();
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    e.export(&id, &mut out)?;
                    out.flush()?;
                }
            }
            Ok(0)
        }
        ContainerCommand::Update(a) => {
            let u = a.config()?;
            each(&a.containers, |c| {
                let id = e.lookup(c)?;
                e.update(&id, &u)?;
                Ok(())
            })
        }
        ContainerCommand::Rename {
            container,
            new_name,
        } => {
            let id = e.lookup(container)?;
            e.rename(&id, new_name)?;
            Ok(0)
        }
        ContainerCommand::Attach {
            no_stdin,
            sig_proxy,
            detach_keys,
            container,
        } => {
            let id = e.lookup(container)?;
            let r = e.record(&id)?;
            if let Some(code) = no_tty(!no_stdin, r.config.tty) {
                return Ok(code);
            }
            let tty = r.config.tty;
            let stdin = r.config.open_stdin && !no_stdin;
            let signals = term::Signals::block(*sig_proxy && !tty);
            let att = e.attach(&id, stdio(stdin, tty, detach_keys.clone()))?;
            let raw = (tty && stdin).then(|| term::RawMode::enter(0)).flatten();
            signals.handle(att.resizer().filter(|_| tty), signal_proxy(&e, &id));
            let end = att.wait();
            drop(raw);
            match end {
                AttachEnd::Exited(code) => Ok((code & 0xff) as u8),
                AttachEnd::Detached | AttachEnd::Lost => Ok(0),
            }
        }
    }
}

/// Runs `f` on each container, printing its name on success as Docker does.
fn each(
    containers: &[String],
    mut f: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<u8> {
    let mut status = 0;
    for c in containers {
        match f(c) {
            Ok(()) => println!("{c}"),
            Err(err) => {
                eprintln!("berth: {}", crate::error_text(err.as_ref()));
                status = 1;
            }
        }
    }
    Ok(status)
}

fn signal_proxy(e: &Engine, id: &str) -> impl Fn(i32) + Send + 'static {
    let e = e.clone();
    let id = id.to_string();
    move |sig| {
        let _ = e.kill(&id, &sig.to_string());
    }
}

/// Docker's check before attaching a container's terminal to ours (run, exec and start
/// without -d, attach): with stdin attached and a TTY asked for, our stdin must be a
/// terminal. Prints Docker's message and gives its exit status (1) when it is not.
fn no_tty(stdin: bool, tty: bool) -> Option<u8> {
    use std::io::IsTerminal;
    if stdin && tty && !std::io::stdin().is_terminal() {
        eprintln!("the input device is not a TTY");
        return Some(1);
    }
    None
}

fn run_container(e: &Engine, a: &RunArgs) -> anyhow::Result<u8> {
    // Before anything is pulled or made: a refused run leaves no container.
    if !a.detach
        && let Some(code) = no_tty(a.create.interactive, a.create.tty)
    {
        return Ok(code);
    }
    // The monitor starts (exec, loading) while the container is made, and waits for it.
    let early = e.spawn_monitor_early(!a.detach)?;
    let (id, req) = create_container(e, &a.create)?;
    if a.detach {
        e.prepare_start(&id)?;
        if let Err(err) = early.begin(&id)?.wait_started() {
            return command_status(err);
        }
        println!("{id}");
        return Ok(0);
    }
    start_attached(
        e,
        &id,
        req.config.open_stdin,
        a.sig_proxy,
        a.detach_keys.clone(),
        Some(early),
    )
}

/// Pulls the image (Docker's "Unable to find image locally") when the engine does not have
/// it, per `--pull`: the engine itself never touches the network.
fn pull(e: &Engine, name: &str, platform: Option<&str>) -> anyhow::Result<()> {
    use berth_image::registry::{NoProgress, PullOptions};
    let r = berth_image::Reference::parse(name)?;
    let mut o = PullOptions::default();
    if let Some(p) = platform {
        o.platform = berth_image::Platform::parse(p).ok_or_else(|| {
            anyhow::anyhow!(
                "--platform: {p:?} is not a platform (os/arch[/variant], e.g. linux/arm64)"
            )
        })?;
    }
    let pulled = e
        .image_pull(&r, &o, &NoProgress)
        .with_context(|| format!("pull {name}"))?;
    eprintln!("Digest: {}", pulled.digest);
    eprintln!("Status: Downloaded newer image for {}", pulled.name.name());
    Ok(())
}

/// `create` and `run`'s creation: the request from the flags, the image pulled per `--pull`
/// (for `--platform`'s platform), and `--cidfile` written.
fn create_container(
    e: &Engine,
    f: &CreateFlags,
) -> anyhow::Result<(String, berth_engine::ContainerCreate)> {
    let req = f.request()?;
    // Refused before anything is made, as Docker does (a second run with the same file would
    // otherwise lose track of the first container).
    if let Some(p) = &f.cidfile
        && p.exists()
    {
        anyhow::bail!(
            "--cidfile: container ID file found, make sure the other container isn't running or \
             delete {}",
            p.display()
        );
    }
    let id = create_pulling(e, &req, &f.pull)?;
    if let Some(p) = &f.cidfile
        && let Err(err) = write_cidfile(p, &id)
    {
        let _ = e.remove(&id, true, true);
        return Err(err);
    }
    Ok((id, req))
}

/// Writes the container ID to `path` atomically (a temp file beside it, linked into place
/// only if nothing is there: never half a file, never over another's).
fn write_cidfile(path: &Path, id: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("--cidfile: create a file in {}", dir.display()))?;
    tmp.write_all(id.as_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("--cidfile: write {}", path.display()))?;
    tmp.persist_noclobber(path).map_err(|e| {
        anyhow::anyhow!(
            "--cidfile: container ID file found, make sure the other container isn't running \
             or delete {}: {}",
            path.display(),
            e.error
        )
    })?;
    Ok(())
}

fn create_pulling(
    e: &Engine,
    o: &berth_engine::ContainerCreate,
    policy: &str,
) -> anyhow::Result<String> {
    let platform = o.platform.as_deref();
    match policy {
        "always" => pull(e, &o.config.image, platform)?,
        "missing" | "never" => {}
        p => anyhow::bail!("--pull: {p:?} is not one of missing, always, never"),
    }
    match e.create(o) {
        Err(EngineError::ImageNotFound(name)) if policy == "missing" => {
            eprintln!("Unable to find image '{name}' locally");
            pull(e, &name, platform)?;
            Ok(e.create(o)?)
        }
        r => Ok(r?),
    }
}

/// Our stdio as the streams of an attach: stdin only when it is attached, our terminal's
/// size for a container with a terminal.
fn stdio(stdin: bool, tty: bool, detach_keys: Option<String>) -> AttachIo {
    AttachIo {
        stdin: stdin.then(|| Box::new(std::io::stdin()) as Box<dyn Read + Send>),
        stdout: Some(Box::new(std::io::stdout())),
        stderr: Some(Box::new(std::io::stderr())),
        detach_keys,
        size: if tty { term::size() } else { None },
        ..AttachIo::default()
    }
}

/// Starts a container attached to our stdio and returns its exit status.
fn start_attached(
    e: &Engine,
    id: &str,
    stdin: bool,
    sig_proxy: bool,
    detach_keys: Option<String>,
    early: Option<berth_engine::EarlyMonitor>,
) -> anyhow::Result<u8> {
    let r = e.record(id)?;
    let tty = r.config.tty;
    let stdin = stdin && r.config.open_stdin;
    e.prepare_start(id)?;
    let mut starting = match early {
        Some(m) => m.begin(id)?,
        None => e.start_monitor(id, true)?,
    };
    starting.wait_listening()?;
    // Before the attach starts its threads, so that none of them takes these signals.
    let signals = term::Signals::block(sig_proxy && !tty);
    // Attached before the container starts (the monitor waits for it): no output is lost,
    // and the container's terminal has our size from the start.
    let att = e.attach(id, stdio(stdin, tty, detach_keys))?;
    let monitor = starting.monitor_pid();
    if let Err(err) = starting.wait_started() {
        if r.host_config.auto_remove {
            e.wait_removed(id, Duration::from_secs(10));
        }
        return command_status(err);
    }
    let raw = (tty && stdin).then(|| term::RawMode::enter(0)).flatten();
    signals.handle(att.resizer().filter(|_| tty), signal_proxy(e, id));
    let end = att.wait();
    drop(raw);
    let code = match end {
        AttachEnd::Exited(c) => c,
        AttachEnd::Detached => return Ok(0),
        AttachEnd::Lost => e.wait(id).unwrap_or(255),
    };
    if r.host_config.auto_remove {
        // The monitor exits once it has removed the container: wait for that, not poll.
        berth_engine::wait_process_exit(monitor, Some(Duration::from_secs(10)));
        e.wait_removed(id, Duration::from_secs(10));
    }
    Ok((code & 0xff) as u8)
}

/// `exec`: the process attached to our stdio (our terminal in raw mode with `-it`, signals
/// passed on without `-t`), or detached with `-d`.
fn exec(e: &Engine, a: &ExecArgs) -> anyhow::Result<u8> {
    let id = e.lookup(&a.container)?;
    if !a.detach
        && let Some(code) = no_tty(a.interactive, a.tty)
    {
        return Ok(code);
    }
    // `-e KEY` takes KEY from our environment (and is dropped when we have none).
    let env = a
        .env
        .iter()
        .filter_map(|x| {
            if x.contains('=') {
                Some(x.clone())
            } else {
                std::env::var(x).ok().map(|v| format!("{x}={v}"))
            }
        })
        .collect();
    let cfg = ExecConfig {
        cmd: a.cmd.clone(),
        tty: a.tty,
        stdin: a.interactive,
        user: a.user.clone(),
        env,
        workdir: a.workdir.clone(),
        privileged: a.privileged,
        detach_keys: a.detach_keys.clone(),
    };
    let size = if a.tty { term::size() } else { None };
    if a.detach {
        let started = e
            .exec_create(&id, &cfg)
            .and_then(|x| e.exec_start_detached(&x, size));
        return match started {
            Ok(_) => Ok(0),
            Err(err) => command_status(err),
        };
    }
    let signals = term::Signals::block(!a.tty);
    let io = ExecIo {
        stdin: a
            .interactive
            .then(|| Box::new(std::io::stdin()) as Box<dyn Read + Send>),
        stdout: Some(Box::new(std::io::stdout())),
        stderr: Some(Box::new(std::io::stderr())),
        size,
    };
    let h = match e.exec(&id, &cfg, io) {
        Ok(h) => h,
        Err(err) => return command_status(err),
    };
    let raw = (a.tty && a.interactive)
        .then(|| term::RawMode::enter(0))
        .flatten();
    let process = h.process();
    signals.handle(h.resizer().filter(|_| a.tty), move |sig| {
        let _ = process.signal(sig);
    });
    let end = h.wait();
    drop(raw);
    match end? {
        AttachEnd::Exited(code) => Ok((code & 0xff) as u8),
        AttachEnd::Detached => Ok(0),
        AttachEnd::Lost => anyhow::bail!(
            "lost the connection to the monitor of container {id}: the exit code of the exec is \
             unknown"
        ),
    }
}

/// A time as `--since`/`--until` take it: RFC 3339, Unix seconds, or a duration ago.
pub(crate) fn parse_time(s: &str) -> anyhow::Result<std::time::SystemTime> {
    if let Some(t) = berth_engine::parse_rfc3339(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(std::time::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    if let Some(d) = berth_engine::parse_duration(s) {
        return Ok(std::time::SystemTime::now() - d);
    }
    anyhow::bail!("{s:?} is not a timestamp (RFC 3339 or Unix seconds) or a duration (10m)")
}

fn logs(
    e: &Engine,
    container: &str,
    follow: bool,
    tail: Option<&str>,
    timestamps: bool,
    since: Option<&str>,
) -> anyhow::Result<u8> {
    let id = e.lookup(container)?;
    let tail = match tail {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse()
                .with_context(|| format!("--tail: {n:?} is not a number"))?,
        ),
    };
    let opts = LogOptions {
        follow,
        tail,
        since: since
            .map(|s| parse_time(s).context("--since"))
            .transpose()?,
        ..LogOptions::default()
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    e.logs(&id, &opts, &mut |entry| {
        let line = if timestamps {
            format!("{} {}", entry.time, entry.log)
        } else {
            entry.log.clone()
        };
        if entry.stream == "stderr" {
            let mut w = stderr.lock();
            w.write_all(line.as_bytes())?;
            w.flush()
        } else {
            let mut w = stdout.lock();
            w.write_all(line.as_bytes())?;
            w.flush()
        }
    })?;
    Ok(0)
}

/// Whether `p` names a file on the host rather than `CONTAINER:PATH`.
fn is_host_path(p: &str) -> bool {
    p == "-"
        || p.starts_with('/')
        || p.starts_with('.')
        || !p.contains(':')
        || Path::new(p).exists()
}

/// `update`'s flags.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub resources: flags::ResourceFlags,
    /// Restart policy: no, always, unless-stopped, on-failure[:N].
    #[arg(long)]
    pub restart: Option<String>,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl UpdateArgs {
    fn config(&self) -> anyhow::Result<berth_engine::UpdateConfig> {
        let r = &self.resources;
        let bytes = flags::size_flag;
        let u = berth_engine::UpdateConfig {
            memory: bytes("--memory", &r.memory)?,
            memory_swap: bytes("--memory-swap", &r.memory_swap)?,
            memory_reservation: bytes("--memory-reservation", &r.memory_reservation)?,
            nano_cpus: r.cpus.as_deref().map(berth_engine::nano_cpus).transpose()?,
            cpu_shares: r.cpu_shares,
            cpuset_cpus: r.cpuset_cpus.clone(),
            pids_limit: r.pids_limit,
            restart_policy: self
                .restart
                .as_deref()
                .map(berth_engine::parse_restart_policy)
                .transpose()?,
        };
        let nothing = u.memory.is_none()
            && u.memory_swap.is_none()
            && u.memory_reservation.is_none()
            && u.nano_cpus.is_none()
            && u.cpu_shares.is_none()
            && u.cpuset_cpus.is_none()
            && u.pids_limit.is_none()
            && u.restart_policy.is_none();
        if nothing {
            anyhow::bail!("you must provide one or more flags when using this command");
        }
        Ok(u)
    }
}
