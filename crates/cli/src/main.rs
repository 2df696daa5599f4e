//! `berth`: the command line. Parses Docker-compatible flags and hands the work to the engine
//! and image crates; it holds no logic of its own beyond presentation.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for berth's own errors, as Docker uses 125.
pub const EXIT_BERTH_ERROR: u8 = 125;

/// The command line: global flags and one command.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "Run containers from OCI images: Docker's command line, no daemon",
    long_about = "berth pulls, builds and runs OCI containers. Each container is run by \
berth-runtime (an OCI runtime) under a small monitor process, so no daemon is needed: \
containers keep running after the berth command exits.",
    propagate_version = true
)]
pub struct Cli {
    /// Root of berth's state: images, layers, containers.
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    pub root: PathBuf,

    /// Path of the OCI runtime binary (default: berth-runtime next to berth, else from PATH).
    #[arg(long, global = true, env = "BERTH_RUNTIME")]
    pub runtime: Option<PathBuf>,

    /// Print debug output to stderr: what berth does and each berth-runtime call with its
    /// time (BERTH_LOG=FILTER picks modules and levels, e.g. berth_engine=debug).
    #[arg(long, short = 'D', global = true)]
    pub debug: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command, from the groups in `commands`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Image commands (pull, push, images, rmi, tag, save, load, login, ...).
    #[command(flatten)]
    Image(commands::image::ImageCommand),
    /// Container commands (run, ps, logs, exec, stop, rm, ...).
    #[command(flatten)]
    Container(commands::container::ContainerCommand),
    /// Network commands (network create|ls|inspect|rm|connect|disconnect|prune, port).
    #[command(flatten)]
    Network(commands::network::NetworkCommand),
    /// Volume commands (volume create|ls|inspect|rm|prune).
    #[command(flatten)]
    Volume(commands::volume::VolumeCommand),
    /// System commands (system boot, events, container prune).
    #[command(flatten)]
    System(commands::system::SystemCommand),
}

/// Logging through `tracing` to stderr: `-D` is debug, else `BERTH_LOG` (an env-filter such
/// as `berth_engine=debug`), else warnings only. A monitor's stderr is its container's
/// `monitor.log`, where it logs at info (debug when the command that started it had `-D`).
fn init_logging(cli: &Cli) {
    let monitor = matches!(
        cli.command,
        Command::Container(commands::container::ContainerCommand::Monitor { .. })
    );
    let default = if cli.debug {
        "debug"
    } else if monitor {
        "info"
    } else {
        "warn"
    };
    let filter = std::env::var("BERTH_LOG")
        .ok()
        .filter(|_| !cli.debug)
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!monitor && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(cli.debug)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let result = match &cli.command {
        Command::Image(c) => commands::image::run(&cli, c),
        Command::Container(c) => commands::container::run(&cli, c),
        Command::Network(c) => commands::network::run(&cli, c),
        Command::Volume(c) => commands::volume::run(&cli, c),
        Command::System(c) => commands::system::run(&cli, c),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::from(EXIT_BERTH_ERROR)
        }
    }
}
