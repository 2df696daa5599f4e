//! Docker's volume command line: `volume create|ls|inspect|rm|prune`, over the engine's
//! volumes (the `local` driver, with `type`/`device`/`o` options for tmpfs and bind mounts).

use std::collections::BTreeMap;

use berth_engine::{Volume, VolumeCreate};
use clap::{Args, Subcommand};

use super::container::{engine, format::human_size};
use super::template::{ListFormat, write_inspect};
use crate::Cli;

/// `volume ...`.
#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Manage volumes.
    Volume {
        /// What to do.
        #[command(subcommand)]
        command: VolumeSub,
    },
}

/// The volume verbs.
#[derive(Subcommand, Debug)]
pub enum VolumeSub {
    /// Create a volume (an existing one of that name is kept as it is); prints its name.
    Create(CreateArgs),
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Show volumes as JSON (Docker's Volume objects).
    Inspect {
        /// Go template per volume (`{{.Mountpoint}}`).
        #[arg(short, long)]
        format: Option<String>,
        /// Volumes.
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes; refused while a container (running or not) uses one.
    #[command(visible_alias = "remove")]
    Rm {
        /// No error for volumes that do not exist.
        #[arg(short, long)]
        force: bool,
        /// Volumes.
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove the unused anonymous volumes (all unused ones with -a).
    Prune {
        /// Also named volumes no container uses.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation (berth never prompts).
        #[arg(short, long)]
        force: bool,
        /// Only volumes with these labels: `label=KEY` or `label=KEY=VALUE`.
        #[arg(long, value_name = "FILTER")]
        filter: Vec<String>,
    },
}

/// `volume create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Volume driver (only `local`).
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata: KEY=VALUE.
    #[arg(long)]
    pub label: Vec<String>,
    /// Driver options: `type=tmpfs`, `device=tmpfs|/path`, `o=size=64m,uid=1000` or `o=bind`.
    #[arg(short, long)]
    pub opt: Vec<String>,
    /// The name (random, as an anonymous volume's, when not given).
    #[arg(long = "name", hide = true)]
    pub name_flag: Option<String>,
    /// The name.
    pub name: Option<String>,
}

/// `volume ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only names.
    #[arg(short, long)]
    pub quiet: bool,
    /// `dangling=true|false`, `driver=local`, `label=KEY[=VALUE]`, `name=PART`.
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Go template per volume (`{{.Name}}`), `table TEMPLATE`, or `json`.
    #[arg(long)]
    pub format: Option<String>,
}

fn key_values(flag: &str, items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ if flag == "--label" && !kv.is_empty() => Ok((kv.clone(), String::new())),
            _ => anyhow::bail!("{flag}: {kv:?} is not KEY=VALUE"),
        })
        .collect()
}

/// What `volume ls` templates see (Docker's field names).
fn ls_value(v: &Volume) -> serde_json::Value {
    let labels: Vec<String> = v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
    serde_json::json!({
        "Name": v.name,
        "Driver": v.driver,
        "Scope": v.scope,
        "Mountpoint": v.mountpoint,
        "Labels": labels.join(","),
        "CreatedAt": v.created_at,
        "Size": "N/A",
        "Links": "N/A",
    })
}

/// Runs a volume command; returns the exit status.
pub fn run(cli: &Cli, cmd: &VolumeCommand) -> anyhow::Result<u8> {
    let e = engine(cli)?;
    let VolumeCommand::Volume { command } = cmd;
    match command {
        VolumeSub::Create(a) => {
            let name = match (&a.name, &a.name_flag) {
                (Some(n), Some(f)) if n != f => {
                    anyhow::bail!("conflicting names: {n:?} and --name {f:?}")
                }
                (n, f) => n.clone().or(f.clone()),
            };
            let v = e.volume_create(&VolumeCreate {
                name,
                driver: Some(a.driver.clone()),
                labels: key_values("--label", &a.label)?,
                options: key_values("--opt", &a.opt)?,
            })?;
            println!("{}", v.name);
            Ok(0)
        }
        VolumeSub::Ls(a) => ls(&e, a),
        VolumeSub::Inspect { format, volumes } => {
            let mut all = Vec::new();
            let mut status = 0;
            for n in volumes {
                match e.volume(n) {
                    Ok(v) => all.push(serde_json::to_value(&v)?),
                    Err(err) => {
                        eprintln!("berth: {err}");
                        status = 1;
                    }
                }
            }
            write_inspect(&mut std::io::stdout().lock(), format.as_deref(), &all)?;
            Ok(status)
        }
        VolumeSub::Rm { force, volumes } => {
            let mut status = 0;
            for n in volumes {
                match e.volume_remove(n, *force) {
                    Ok(()) => println!("{n}"),
                    Err(err) => {
                        eprintln!("berth: {err}");
                        status = 1;
                    }
                }
            }
            Ok(status)
        }
        VolumeSub::Prune { all, force, filter } => {
            let _ = force;
            let mut filters = filter.clone();
            if *all {
                filters.push("all=true".into());
            }
            let report = e.volume_prune(&berth_engine::Filters::parse(&filters)?)?;
            if !report.removed.is_empty() {
                println!("Deleted Volumes:");
                for n in &report.removed {
                    println!("{n}");
                }
                println!();
            }
            println!("Total reclaimed space: {}", human_size(report.reclaimed));
            Ok(0)
        }
    }
}

fn ls(e: &berth_engine::Engine, a: &LsArgs) -> anyhow::Result<u8> {
    let list = e.volume_list(&berth_engine::Filters::parse(&a.filter)?)?;
    if a.quiet {
        for v in &list {
            println!("{}", v.name);
        }
        return Ok(0);
    }
    let items: Vec<serde_json::Value> = list.iter().map(ls_value).collect();
    ListFormat::parse(a.format.as_deref(), "table {{.Driver}}\t{{.Name}}")?.write(
        &mut std::io::stdout().lock(),
        &items,
        &[
            ("Name", "VOLUME NAME"),
            ("Mountpoint", "MOUNTPOINT"),
            ("CreatedAt", "CREATED"),
        ],
    )?;
    Ok(0)
}
