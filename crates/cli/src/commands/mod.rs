//! One module per group of commands. Each exposes a clap `Subcommand` enum (flattened into the
//! top-level command list) and `run(&Cli, &Command) -> anyhow::Result<u8>` returning the exit status.

pub mod build;
pub mod checkpoint;
pub mod container;
pub mod image;
pub mod network;
pub mod serve;
pub mod system;
pub mod template;
pub mod volume;
