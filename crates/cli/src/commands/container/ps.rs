//! `ps` and `stats`: Docker's columns, filters and formats.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_engine::{ContainerSummary, Engine, Filters, ListOptions, Status};
use clap::Args;
use serde_json::{Value, json};

use super::format::{bytes_size, go_time, human_duration, human_size3};
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
    /// Filter output based on conditions provided (ancestor=, before=, expose=, exited=,
    /// health=, id=, label=, name=, network=, publish=, since=, status=, volume=).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output: table, table TEMPLATE, json, or a Go template.
    #[arg(long)]
    format: Option<String>,
}

fn command_text(s: &ContainerSummary, trunc: bool) -> String {
    let mut c = s.command.clone();
    if trunc && c.chars().count() > 20 {
        c = c.chars().take(19).collect::<String>() + "…";
    }
    format!("{c:?}")
}

/// Docker's `PORTS` column: `0.0.0.0:8080->80/tcp` for a published port, `80/tcp` for one
/// only exposed.
fn ports_text(s: &ContainerSummary) -> String {
    s.ports
        .iter()
        .map(|p| match (&p.ip, p.public_port) {
            (Some(ip), Some(public)) => format!("{ip}:{public}->{}/{}", p.private_port, p.kind),
            (None, Some(public)) => format!("{public}->{}/{}", p.private_port, p.kind),
            _ => format!("{}/{}", p.private_port, p.kind),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn ago(unix: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    let d = SystemTime::now().duration_since(t).unwrap_or_default();
    format!("{} ago", human_duration(d))
}

fn row(s: &ContainerSummary, trunc: bool) -> Value {
    let id = if trunc {
        s.id[..12].to_string()
    } else {
        s.id.clone()
    };
    let labels = s
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let names = s
        .names
        .iter()
        .map(|n| n.trim_start_matches('/'))
        .collect::<Vec<_>>()
        .join(",");
    let mut v = json!({
        "ID": id,
        "Image": s.image,
        "Command": command_text(s, trunc),
        "CreatedAt": go_time(s.created),
        "RunningFor": ago(s.created),
        "Status": s.status,
        "State": s.state,
        "Ports": ports_text(s),
        "Names": names,
        "Labels": labels,
        "Mounts": s.mounts.iter().map(|m| if m.name.is_empty() { m.source.clone() } else { m.name.clone() }).collect::<Vec<_>>().join(","),
        "Networks": s.network_settings.networks.keys().cloned().collect::<Vec<_>>().join(","),
        "LocalVolumes": s.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
    });
    if let Some(rw) = s.size_rw {
        let rw = rw.max(0) as u64;
        let virt = s.size_root_fs.unwrap_or(0).max(0) as u64;
        v["Size"] = json!(format!(
            "{} (virtual {})",
            human_size3(rw),
            human_size3(virt)
        ));
    }
    v
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

/// `berth ps`: the engine's list (filters checked there), formatted.
pub fn run(e: &Engine, a: &PsArgs) -> anyhow::Result<u8> {
    let opts = ListOptions {
        all: a.all,
        limit: if a.latest { Some(1) } else { a.last },
        size: a.size,
        filters: Filters::parse(&a.filter)?,
    };
    let list = e.containers(&opts)?;
    let trunc = !a.no_trunc;
    if a.quiet {
        for s in &list {
            println!("{}", if trunc { &s.id[..12] } else { &s.id });
        }
        return Ok(0);
    }
    let rows: Vec<Value> = list.iter().map(|s| row(s, trunc)).collect();
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
                "NetIO": format!("{} / {}", human_size3(s.net_rx), human_size3(s.net_tx)),
                "BlockIO": format!("{} / {}", human_size3(s.blk_read), human_size3(s.blk_write)),
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
