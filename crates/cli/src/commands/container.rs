//! Container commands: run, create, start, ps, logs, exec, stop, kill, rm, wait, inspect, stats, ...

use clap::Subcommand;

use crate::Cli;

/// Commands on containers.
#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List containers.
    Ps,
}

/// Runs a container command; returns the exit status.
pub fn run(_cli: &Cli, cmd: &ContainerCommand) -> anyhow::Result<u8> {
    match cmd {
        ContainerCommand::Ps => anyhow::bail!("not implemented yet"),
    }
}
