//! `system boot` (what a boot unit runs: containers whose restart policy says so come back
//! after a reboot) and `container prune`.

use clap::{Args, Subcommand};

use super::container::{engine, format::human_size};
use crate::Cli;

/// Commands over the whole of berth and over all containers.
#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Manage berth itself.
    System {
        /// What to do.
        #[command(subcommand)]
        command: System,
    },
    /// Manage containers (group form; each verb is also a top-level command).
    Container {
        /// What to do.
        #[command(subcommand)]
        command: ContainerGroup,
    },
}

/// `system` verbs.
#[derive(Subcommand, Debug)]
pub enum System {
    /// Start the containers whose restart policy is `always`, or `unless-stopped` and not
    /// stopped by a user: run it once at boot (contrib/systemd/berth-boot.service does).
    /// Containers already running are left alone.
    Boot,
}

/// `container` verbs.
#[derive(Subcommand, Debug)]
pub enum ContainerGroup {
    /// Remove all stopped containers (created, exited, dead).
    Prune(PruneArgs),
}

/// `container prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation (berth never prompts).
    #[arg(short, long)]
    pub force: bool,
    /// Only containers with these labels: `label=KEY` or `label=KEY=VALUE`.
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// Runs a system or container-group command; returns the exit status.
pub fn run(cli: &Cli, cmd: &SystemCommand) -> anyhow::Result<u8> {
    let e = engine(cli)?;
    match cmd {
        SystemCommand::System {
            command: System::Boot,
        } => {
            let mut failed = 0;
            for b in e.boot()? {
                match b.result {
                    Ok(()) => println!("{}", b.name),
                    Err(err) => {
                        failed += 1;
                        eprintln!("berth: start {}: {}", b.name, crate::error_text(&err));
                    }
                }
            }
            Ok(if failed > 0 { 1 } else { 0 })
        }
        SystemCommand::Container {
            command: ContainerGroup::Prune(a),
        } => {
            let _ = a.force;
            let mut labels = Vec::new();
            for f in &a.filter {
                match f.split_once('=') {
                    Some(("label", l)) => labels.push(l.to_string()),
                    _ => anyhow::bail!(
                        "--filter: {f:?} is not supported (container prune takes label=KEY[=VALUE])"
                    ),
                }
            }
            let report = e.prune_containers(&labels)?;
            if !report.removed.is_empty() {
                println!("Deleted Containers:");
                for id in &report.removed {
                    println!("{id}");
                }
                println!();
            }
            println!("Total reclaimed space: {}", human_size(report.reclaimed));
            Ok(0)
        }
    }
}
