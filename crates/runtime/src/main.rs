//! berth-runtime: an OCI runtime with runc's command line.
//!
//! This file parses the command line and maps errors to exit codes and log lines; each verb
//! lives in `commands/`, the container setup in `create`, `init` and `rootfs`.

mod commands;
mod config;
mod create;
mod exe;
mod hooks;
mod init;
mod log;
mod rootfs;
mod signal;
mod state;
mod sync;
mod sys;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::create::CreateOpts;

/// berth-runtime: run containers from OCI bundles (a drop-in for runc).
///
/// A bundle is a directory with a config.json (see `spec`) and a root filesystem. The usual
/// lifecycle is `create`, `start`, then `delete` once the container has stopped; `run` does it
/// all in one step.
#[derive(Parser)]
#[command(name = "berth-runtime", version, about, long_about = None)]
struct Cli {
    /// Directory for the state of containers (use one per engine).
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    root: PathBuf,
    /// Append log lines (errors, and debug messages with --debug) to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of the log: text or json.
    #[arg(long, global = true, default_value = "text")]
    log_format: String,
    /// Log debug messages.
    #[arg(long, global = true)]
    debug: bool,
    /// Use the systemd cgroup driver (not available: berth-runtime manages cgroupfs directly).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility with runc (rootless mode is detected).
    #[arg(long)]
    rootless: Option<String>,
    /// Accepted for compatibility with runc (checkpointing is not supported).
    #[arg(long, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Debug, Clone)]
struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's init pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master to (when process.terminal is true).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for a rootfs on a ramdisk).
    #[arg(long)]
    no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass N more file descriptors (3 .. 3+N-1) to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Container ID.
    id: String,
}

impl CreateArgs {
    fn opts(&self) -> CreateOpts {
        CreateOpts {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container from a bundle; its process waits until `start`.
    Create(CreateArgs),
    /// Run the process of a created container.
    Start {
        /// Container ID.
        id: String,
    },
    /// Create and start a container; without --detach, wait for it and exit with its status.
    Run {
        /// Return once the container has started.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits (accepted; the state is always removed).
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Print the state of a container as JSON.
    State {
        /// Container ID.
        id: String,
    },
    /// Send a signal (default TERM) to the container's init, or to all its processes.
    Kill {
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
        /// Container ID.
        id: String,
        /// Signal name (KILL, SIGKILL) or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped (or, with --force, any) container and everything it holds.
    Delete {
        /// Kill the container first if it is still running.
        #[arg(short, long)]
        force: bool,
        /// Container ID.
        id: String,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        /// Output format: table or json.
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Print only the IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json into the bundle.
    Spec {
        /// Path to the bundle directory.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for running without root (user namespace, no cgroup limits).
        #[arg(long)]
        rootless: bool,
    },
    /// Print what this runtime supports, as OCI features JSON.
    Features,
}

fn main() {
    let cli = Cli::parse();
    let logger = log::Logger::new(cli.log.clone(), &cli.log_format, cli.debug);
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&format!("{e:#}"));
            1
        }
    };
    std::process::exit(code);
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        anyhow::bail!(
            "--systemd-cgroup: the systemd cgroup driver is not supported by berth-runtime; use the cgroupfs driver (omit the flag)"
        );
    }
    let root = &cli.root;
    match &cli.cmd {
        Cmd::Create(a) => {
            exe::ensure_sealed().map_err(|e| anyhow::anyhow!("protect the runtime binary: {e}"))?;
            create::create(root, &a.id, &a.opts(), false)?;
        }
        Cmd::Run {
            detach, create: a, ..
        } => {
            exe::ensure_sealed().map_err(|e| anyhow::anyhow!("protect the runtime binary: {e}"))?;
            return commands::run::run(root, &a.id, &a.opts(), *detach);
        }
        Cmd::Start { id } => commands::start(root, id)?,
        Cmd::State { id } => commands::state(root, id)?,
        Cmd::Kill { all, id, signal } => commands::kill(root, id, signal, *all)?,
        Cmd::Delete { force, id } => commands::delete(root, id, *force)?,
        Cmd::List { format, quiet } => commands::list(root, format, *quiet)?,
        Cmd::Spec { bundle, rootless } => commands::spec::run(bundle, *rootless)?,
        Cmd::Features => println!(
            "{}",
            serde_json::to_string_pretty(&commands::features::features())?
        ),
    }
    Ok(0)
}
