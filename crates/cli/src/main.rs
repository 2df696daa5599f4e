//! `berth`: the command line. Parses Docker-compatible flags and hands the work to the engine
//! and image crates; it holds no logic of its own beyond presentation.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
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
    /// Checkpoint commands (checkpoint create|ls|rm, migrate).
    #[command(flatten)]
    Checkpoint(commands::checkpoint::CheckpointCommand),
    /// Serve the Docker Engine API (docker CLI, compose, docker-py) on a unix socket or TLS.
    Serve(commands::serve::ServeArgs),
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
    if let Some(code) = monitor_fast_path() {
        return code;
    }
    let cli = match command()
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_logging(&cli);
    let result = match &cli.command {
        Command::Image(c) => commands::image::run(&cli, c),
        Command::Container(c) => commands::container::run(&cli, c),
        Command::Network(c) => commands::network::run(&cli, c),
        Command::Volume(c) => commands::volume::run(&cli, c),
        Command::System(c) => commands::system::run(&cli, c),
        Command::Checkpoint(c) => commands::checkpoint::run(&cli, c),
        Command::Serve(a) => commands::serve::run(&cli, a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("berth: {}", error_text(e.as_ref()));
            ExitCode::from(EXIT_BERTH_ERROR)
        }
    }
}

/// The monitor's command line exactly as the engine writes it (`--root R --runtime RT
/// __monitor [--ready-fd N] [--wait-attach] ID|--id-fd N`), read without building the whole CLI: a
/// monitor starts for every container start, and clap's command tree of every berth command
/// costs about a millisecond to build. Any other shape (a human typing `berth __monitor
/// --help`) goes through clap as usual.
fn monitor_fast_path() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let [root_flag, root, rt_flag, rt, cmd, rest @ ..] = args.as_slice() else {
        return None;
    };
    if root_flag != "--root" || rt_flag != "--runtime" || cmd != berth_engine::MONITOR_COMMAND {
        return None;
    }
    let (mut ready_fd, mut wait_attach, mut id_fd, mut id) = (None, false, None, None);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.to_str()? {
            "--ready-fd" => ready_fd = Some(it.next()?.to_str()?.parse().ok()?),
            "--id-fd" => id_fd = Some(it.next()?.to_str()?.parse().ok()?),
            "--wait-attach" => wait_attach = true,
            s if !s.starts_with('-') && id.is_none() => id = Some(s.to_string()),
            _ => return None,
        }
    }
    if id.is_none() && id_fd.is_none() {
        return None;
    }
    let cli = Cli {
        root: root.into(),
        runtime: Some(rt.into()),
        debug: false,
        command: Command::Container(commands::container::ContainerCommand::Monitor {
            ready_fd,
            wait_attach,
            id_fd,
            id,
        }),
    };
    init_logging(&cli);
    let Command::Container(c) = &cli.command else {
        unreachable!("made above")
    };
    Some(match commands::container::run(&cli, c) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("berth: {}", error_text(e.as_ref()));
            ExitCode::from(EXIT_BERTH_ERROR)
        }
    })
}

/// The command line, read as Docker's (pflag) reads it: a flag that takes a value takes the
/// next word even when it starts with `-` (`--cpus -1`, `-e -x`); only a word where a flag or
/// an argument is expected is taken as a flag.
fn command() -> clap::Command {
    fn pflag(c: clap::Command) -> clap::Command {
        c.mut_args(|a| {
            if !a.is_positional() && a.get_action().takes_values() {
                a.allow_hyphen_values(true)
            } else {
                a
            }
        })
        .mut_subcommands(pflag)
    }
    let root = <Cli as clap::CommandFactory>::command();
    // Only the command named on the command line needs it (the others are not parsed), and
    // going through all of berth's commands and their flags would cost each run a fraction
    // of a millisecond.
    let named =
        first_word().and_then(|w| root.find_subcommand(&w).map(|c| c.get_name().to_string()));
    match named {
        Some(name) => {
            let root = root.mut_args(|a| {
                if !a.is_positional() && a.get_action().takes_values() {
                    a.allow_hyphen_values(true)
                } else {
                    a
                }
            });
            root.mut_subcommand(name, pflag)
        }
        None => pflag(root),
    }
}

/// The first word of the command line past berth's global flags: the command's name.
fn first_word() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--root" || a == "--runtime" {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// An error as berth prints it: its message, then each cause the message does not already
/// hold, joined by `: `.
pub use berth_sys::error_text;

/// Answers a command line that does not parse as Docker's CLI does: a flag it does not know
/// (`unknown flag: --x`), a flag's bad or missing value, exit 125; a wrong number of
/// arguments or an unknown command, exit 1. Each names the command's usage and its `--help`.
/// Help and version requests print as clap prints them.
fn usage_error(e: &clap::Error) -> ExitCode {
    let (path, usage) = command_usage();
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let see = format!("Run '{path} --help' for more information");
    let (message, code) = match e.kind() {
        ErrorKind::UnknownArgument if invalid.starts_with("--") => {
            let name = invalid.split('=').next().unwrap_or(&invalid);
            (format!("unknown flag: {name}"), EXIT_BERTH_ERROR)
        }
        ErrorKind::UnknownArgument if invalid.starts_with('-') && invalid.len() > 1 => {
            let c = invalid[1..].chars().next().unwrap_or('-');
            (
                format!("unknown shorthand flag: '{c}' in {invalid}"),
                EXIT_BERTH_ERROR,
            )
        }
        ErrorKind::InvalidValue if matches!(e.get(ContextKind::InvalidValue), Some(ContextValue::String(v)) if v.is_empty()) =>
        {
            let name = invalid.split([' ', '=']).next().unwrap_or(&invalid);
            (format!("flag needs an argument: {name}"), EXIT_BERTH_ERROR)
        }
        ErrorKind::InvalidValue
        | ErrorKind::ValueValidation
        | ErrorKind::NoEquals
        | ErrorKind::WrongNumberOfValues
        | ErrorKind::TooManyValues
        | ErrorKind::ArgumentConflict => (clap_message(e), EXIT_BERTH_ERROR),
        ErrorKind::InvalidSubcommand => {
            let name = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            // 125, berth's own error, as for every usage error (the rule; docker 28
            // itself exits 1 here).
            eprintln!("berth: unknown command: {path} {name}\n\n{see}");
            return ExitCode::from(EXIT_BERTH_ERROR);
        }
        ErrorKind::UnknownArgument
        | ErrorKind::MissingRequiredArgument
        | ErrorKind::TooFewValues
        | ErrorKind::MissingSubcommand => (format!("berth: {}", clap_message(e)), 1),
        _ => e.exit(),
    };
    eprintln!("{message}\n\nUsage:  {usage}\n\n{see}");
    ExitCode::from(code)
}

/// clap's own sentence for an error, without its `error:` prefix, tips and usage.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let text = text.trim_start().strip_prefix("error:").unwrap_or(&text);
    let text = text.split("\n\nUsage:").next().unwrap_or(text);
    text.lines()
        .filter(|l| {
            let l = l.trim_start();
            !l.starts_with("tip:") && !l.starts_with("For more information")
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The command named on this process's command line (`berth network ls`) and its usage line
/// (`berth network ls [OPTIONS]`): the words that name subcommands, past global flags.
fn command_usage() -> (String, String) {
    let mut root = command();
    root.build();
    let mut cmd = &root;
    let mut path = vec![cmd.get_name().to_string()];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--root" || a == "--runtime" {
            args.next();
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        let Some(sub) = cmd.find_subcommand(&a) else {
            break;
        };
        path.push(sub.get_name().to_string());
        cmd = sub;
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.trim();
    let usage = usage
        .strip_prefix("Usage:")
        .unwrap_or(usage)
        .trim()
        .to_string();
    (path.join(" "), usage)
}

#[cfg(test)]
mod tests {
    use super::error_text;

    /// An error that puts its cause's text in its message, as `{op} {path}: {source}` does.
    #[derive(Debug)]
    struct Io(std::io::Error);

    impl std::fmt::Display for Io {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "open /x: {}", self.0)
        }
    }

    impl std::error::Error for Io {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_once() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(Io(io())).context("load /x");
        assert_eq!(
            error_text(e.as_ref()),
            format!("load /x: open /x: {}", io())
        );
        let e = anyhow::Error::new(io()).context("read /y");
        assert_eq!(error_text(e.as_ref()), format!("read /y: {}", io()));
    }

    /// `run`/`create` and `update` take the same resource flags (one flattened struct).
    #[test]
    fn run_and_update_share_resource_flags() {
        use super::{Cli, Command};
        use crate::commands::container::ContainerCommand;
        use clap::Parser;
        let flags = [
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--memory-reservation",
            "32m",
            "--cpus",
            "0.5",
            "-c",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "-1",
        ];
        let parse = |verb: &str| {
            let mut argv = vec!["berth", verb];
            argv.extend(flags);
            argv.push("c1");
            Cli::try_parse_from(argv).unwrap()
        };
        let Command::Container(ContainerCommand::Update(u)) = parse("update").command else {
            panic!("update did not parse as update");
        };
        let Command::Container(ContainerCommand::Create(c)) = parse("create").command else {
            panic!("create did not parse as create");
        };
        assert_eq!(format!("{:?}", u.resources), format!("{:?}", c.resources));
        assert_eq!(u.resources.memory_swap.as_deref(), Some("-1"));
        assert_eq!(u.resources.pids_limit, Some(-1));
        assert_eq!(u.resources.cpu_shares, Some(512));
    }
}
