//! Image commands: pull, push, images, rmi, tag, inspect, save, load, import, prune, login, logout.

use clap::Subcommand;

use crate::Cli;

/// Commands on images and registries.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images.
    Images,
}

/// Runs an image command; returns the exit status.
pub fn run(_cli: &Cli, cmd: &ImageCommand) -> anyhow::Result<u8> {
    match cmd {
        ImageCommand::Images => anyhow::bail!("not implemented yet"),
    }
}
