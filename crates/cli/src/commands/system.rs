//! `system boot` (what a boot unit runs: containers whose restart policy says so come back
//! after a reboot), `events` and `container prune`.

use std::io::Write;

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
    /// Print events (container, image, network, volume) as they happen; with --since, past
    /// ones first.
    Events(EventsArgs),
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
    /// Print events (as `berth events`).
    Events(EventsArgs),
}

/// `events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Show events since this time: RFC 3339, Unix seconds, or a duration ago (`10m`).
    #[arg(long)]
    pub since: Option<String>,
    /// Stop at this time (same forms as --since); without it, wait for new events.
    #[arg(long)]
    pub until: Option<String>,
    /// Only events matching: container=, event=, image=, label=KEY[=VALUE], network=,
    /// type=container|image|network|volume, volume=.
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Go template per event (`{{.Type}} {{.Action}} {{.Actor.ID}}`), or `json`.
    #[arg(long)]
    pub format: Option<String>,
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
                        eprintln!("berth: start {}: {err:#}", b.name);
                    }
                }
            }
            Ok(if failed > 0 { 1 } else { 0 })
        }
        SystemCommand::Events(a)
        | SystemCommand::System {
            command: System::Events(a),
        } => events(&e, a),
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

fn events(e: &berth_engine::Engine, a: &EventsArgs) -> anyhow::Result<u8> {
    let filter = berth_engine::EventFilter::parse(&a.filter)?;
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                super::container::parse_time(s).map_err(|err| anyhow::anyhow!("{flag}: {err}"))
            })
            .transpose()
    };
    let since = time("--since", &a.since)?;
    let until = time("--until", &a.until)?;
    let q = berth_engine::EventQuery {
        // As Docker: without --since, only what happens from now on.
        since: Some(since.unwrap_or_else(std::time::SystemTime::now)),
        until,
        follow: until.is_none_or(|u| u > std::time::SystemTime::now()),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let format = a.format.as_deref().map(str::trim);
    let r = e.events().read(&q, &|ev| filter.matches(ev), &mut |ev| {
        let line = match format {
            Some("json") | Some("{{json .}}") => {
                serde_json::to_string(&with_legacy_fields(ev)).expect("an event serialises")
            }
            Some(t) => super::container::format::render(t, &template_value(ev)),
            None => default_line(ev),
        };
        writeln!(out, "{line}")?;
        out.flush()
    });
    match r {
        Ok(()) => Ok(0),
        // The reader went away (`berth events | head`): done.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(err) => Err(anyhow::anyhow!("read the event log: {err}")),
    }
}

/// Docker's line: `TIME TYPE ACTION ID (k=v, ...)`.
fn default_line(ev: &berth_engine::Event) -> String {
    let attrs: Vec<String> = ev
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut line = format!(
        "{} {} {} {}",
        humantime::format_rfc3339_nanos(ev.when()),
        ev.kind,
        ev.action,
        ev.actor.id
    );
    if !attrs.is_empty() {
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

/// The message as the Engine API sends it, with the deprecated `status`, `id` and `from`.
fn with_legacy_fields(ev: &berth_engine::Event) -> serde_json::Value {
    let mut v = serde_json::to_value(ev).expect("an event serialises");
    if ev.kind == "container" || ev.kind == "image" {
        v["status"] = ev.action.clone().into();
        v["id"] = ev.actor.id.clone().into();
        if let Some(img) = ev.actor.attributes.get("image") {
            v["from"] = img.clone().into();
        }
    }
    v
}

/// The fields a template sees, by their Go names (`.Type`, `.Action`, `.Actor.ID`,
/// `.Actor.Attributes`, `.Scope`, `.Time`, `.TimeNano`, and the deprecated `.Status`, `.ID`,
/// `.From`).
fn template_value(ev: &berth_engine::Event) -> serde_json::Value {
    serde_json::json!({
        "Type": ev.kind,
        "Action": ev.action,
        "Actor": {"ID": ev.actor.id, "Attributes": ev.actor.attributes},
        "Scope": ev.scope,
        "Time": ev.time,
        "TimeNano": ev.time_nano,
        "Status": ev.action,
        "ID": ev.actor.id,
        "From": ev.actor.attributes.get("image").cloned().unwrap_or_default(),
    })
}
