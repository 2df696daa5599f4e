//! `ps` and `stats`: Docker's columns, filters and formats.

use std::io::Write;
use std::time::{Duration, Instant};

use berth_engine::{ContainerInfo, Engine, HealthStatus, Status};
use clap::Args;
use serde_json::{Value, json};

use super::format::{bytes_size, human_duration, human_size, since};
use crate::commands::template::{ListFormat, Titles};

/// `ps` flags.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    size: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Show the latest created container.
    #[arg(short, long)]
    latest: bool,
    /// Show n last created containers.
    #[arg(short = 'n', long)]
    last: Option<usize>,
    /// Filter output based on conditions provided (status=, name=, label=, id=).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output: table, table TEMPLATE, json, or a Go template.
    #[arg(long)]
    format: Option<String>,
}

fn status_text(i: &ContainerInfo) -> String {
    let s = &i.state;
    let health = match s.health.as_ref().map(|h| h.status) {
        Some(HealthStatus::Starting) => " (health: starting)",
        Some(HealthStatus::Healthy) => " (healthy)",
        Some(HealthStatus::Unhealthy) => " (unhealthy)",
        None => "",
    };
    match s.status {
        Status::Running => format!("Up {}{health}", human_duration(since(&s.started_at))),
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&s.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        Status::Exited if !s.finished_at.is_empty() => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        Status::Created | Status::Exited => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

fn command_text(i: &ContainerInfo, trunc: bool) -> String {
    let mut c = std::iter::once(i.record.path.clone())
        .chain(i.record.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    if trunc && c.chars().count() > 20 {
        c = c.chars().take(19).collect::<String>() + "…";
    }
    format!("{c:?}")
}

fn dir_size(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if let Ok(m) = e.path().symlink_metadata() {
                total += m.size();
                if m.is_dir() {
                    total += dir_size(&e.path());
                }
            }
        }
    }
    total
}

fn networks(e: &Engine, i: &ContainerInfo) -> String {
    let nets: Vec<String> = e
        .networks()
        .endpoints(&i.record.id)
        .unwrap_or_default()
        .into_iter()
        .map(|(n, _)| n.name)
        .collect();
    if nets.is_empty() {
        i.record.host_config.network_mode.clone()
    } else {
        nets.join(",")
    }
}

fn row(e: &Engine, i: &ContainerInfo, trunc: bool, size: bool) -> Value {
    let id = if trunc {
        i.record.id[..12].to_string()
    } else {
        i.record.id.clone()
    };
    let labels = i
        .record
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut v = json!({
        "ID": id,
        "Image": i.record.config.image,
        "Command": command_text(i, trunc),
        "CreatedAt": i.record.created,
        "RunningFor": format!("{} ago", human_duration(since(&i.record.created))),
        "Status": status_text(i),
        "State": i.state.status.as_str(),
        "Ports": e.ports(&i.record.id).unwrap_or_default().iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
        "Names": i.record.name,
        "Labels": labels,
        "Mounts": i.record.mounts.iter().map(|m| if m.name.is_empty() { m.source.clone() } else { m.name.clone() }).collect::<Vec<_>>().join(","),
        "Networks": networks(e, i),
        "LocalVolumes": i.record.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
    });
    if size {
        let upper = e
            .root()
            .join("snapshots/containers")
            .join(&i.record.id)
            .join("upper");
        v["Size"] = json!(human_size(dir_size(&upper)));
    }
    v
}

fn matches(i: &ContainerInfo, filters: &[String]) -> anyhow::Result<bool> {
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--filter: {f:?}: expected KEY=VALUE"))?;
        let ok = match k {
            "status" => i.state.status.as_str() == v,
            "name" => i.record.name.contains(v.trim_start_matches('/')),
            "id" => i.record.id.starts_with(v),
            "label" => match v.split_once('=') {
                Some((lk, lv)) => i.record.config.labels.get(lk).is_some_and(|x| x == lv),
                None => i.record.config.labels.contains_key(v),
            },
            "exited" => i.state.status == Status::Exited && i.state.exit_code.to_string() == v,
            "ancestor" => i.record.config.image == v || i.record.image == v,
            _ => anyhow::bail!("--filter: unknown filter {k:?}"),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

const TITLES: &Titles = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Size", "SIZE"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// Docker's `ps` table.
const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// `berth ps`.
pub fn run(e: &Engine, a: &PsArgs) -> anyhow::Result<u8> {
    let mut list: Vec<ContainerInfo> = e
        .list()?
        .into_iter()
        .filter(|i| {
            a.all
                || a.latest
                || a.last.is_some()
                || matches!(
                    i.state.status,
                    Status::Running | Status::Paused | Status::Restarting
                )
        })
        .collect();
    let mut kept = Vec::new();
    for i in list.drain(..) {
        if matches(&i, &a.filter)? {
            kept.push(i);
        }
    }
    if a.latest {
        kept.truncate(1);
    } else if let Some(n) = a.last {
        kept.truncate(n);
    }
    let trunc = !a.no_trunc;
    if a.quiet {
        for i in &kept {
            println!(
                "{}",
                if trunc {
                    &i.record.id[..12]
                } else {
                    &i.record.id
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Value> = kept.iter().map(|i| row(e, i, trunc, a.size)).collect();
    let default = if a.size {
        format!("{PS_TABLE}\t{{{{.Size}}}}")
    } else {
        PS_TABLE.to_string()
    };
    ListFormat::parse(a.format.as_deref(), &default)?.write(
        &mut std::io::stdout().lock(),
        &rows,
        TITLES,
    )?;
    Ok(0)
}

/// Docker's `stats` columns and table.
const STATS_TITLES: &Titles = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];
const STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// `berth stats`.
pub fn stats(
    e: &Engine,
    containers: &[String],
    all: bool,
    no_stream: bool,
    format: Option<&str>,
    no_trunc: bool,
) -> anyhow::Result<u8> {
    let ids: Vec<String> = if containers.is_empty() {
        e.list()?
            .into_iter()
            .filter(|i| all || i.state.status == Status::Running)
            .map(|i| i.record.id)
            .collect()
    } else {
        containers
            .iter()
            .map(|c| e.lookup(c))
            .collect::<Result<_, _>>()?
    };
    let fmt = ListFormat::parse(format, STATS_TABLE)?;
    let sample = |id: &String| e.stats(id).ok();
    let mut prev: Vec<Option<berth_engine::Stats>> = ids.iter().map(sample).collect();
    let mut t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(if no_stream { 500 } else { 1000 }));
        let now: Vec<Option<berth_engine::Stats>> = ids.iter().map(sample).collect();
        let elapsed = t0.elapsed().as_nanos() as f64;
        t0 = Instant::now();
        let mut rows = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            let name = e.record(id).map(|r| r.name).unwrap_or_default();
            let (cpu, s) = match (&prev[k], &now[k]) {
                (Some(a), Some(b)) => (
                    b.cpu_ns.saturating_sub(a.cpu_ns) as f64 / elapsed * 100.0,
                    b.clone(),
                ),
                (_, Some(b)) => (0.0, b.clone()),
                _ => (0.0, berth_engine::Stats::default()),
            };
            let mem_perc = if s.mem_limit > 0 {
                s.mem_usage as f64 / s.mem_limit as f64 * 100.0
            } else {
                0.0
            };
            rows.push(json!({
                "ID": if no_trunc { id.clone() } else { id[..12].to_string() },
                "Container": if no_trunc { id.clone() } else { id[..12].to_string() },
                "Name": name,
                "CPUPerc": format!("{cpu:.2}%"),
                "MemUsage": format!("{} / {}", bytes_size(s.mem_usage), bytes_size(s.mem_limit)),
                "MemPerc": format!("{mem_perc:.2}%"),
                "NetIO": format!("{} / {}", human_size(s.net_rx), human_size(s.net_tx)),
                "BlockIO": format!("{} / {}", human_size(s.blk_read), human_size(s.blk_write)),
                "PIDs": s.pids.to_string(),
            }));
        }
        prev = now;
        let mut out = std::io::stdout().lock();
        if !no_stream && fmt.is_table() {
            // Each sample on a clean screen, as Docker's live table.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        fmt.write(&mut out, &rows, STATS_TITLES)?;
        out.flush()?;
        if no_stream {
            return Ok(0);
        }
    }
}
