//! Verbs that act on a running container's cgroup: `pause`, `resume`, `ps`, `events`, `update`.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use berth_cgroups::{FreezerState, Manager};
use oci_spec::runtime::{LinuxBlockIoBuilder, LinuxPidsBuilder, LinuxResources};

use crate::state::{Container, Status};

fn manager(c: &Container) -> Result<Box<dyn Manager>> {
    let s = c.saved();
    Ok(berth_cgroups::manager(s.cgroups_path.as_deref(), &s.id)?)
}

/// `pause ID`: freeze every process of the container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    match c.status() {
        Status::Running => {}
        s => bail!("cannot pause container {id}: it is {}", s.as_str()),
    }
    manager(&c)?
        .freeze(FreezerState::Frozen)
        .with_context(|| format!("freeze container {id}"))
}

/// `resume ID`: thaw a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    match c.status() {
        Status::Paused => {}
        s => bail!(
            "cannot resume container {id}: it is {}, not paused",
            s.as_str()
        ),
    }
    manager(&c)?
        .freeze(FreezerState::Thawed)
        .with_context(|| format!("thaw container {id}"))
}

/// `ps [--format table|json] ID [ps options]`.
pub fn ps(root: &Path, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    let c = Container::load(root, id)?;
    let mut pids = manager(&c)?.pids()?;
    pids.sort_unstable();
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            Ok(())
        }
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("ps output has no PID column")?;
            println!("{header}");
            for l in lines {
                let pid: Option<i32> = l.split_whitespace().nth(col).and_then(|p| p.parse().ok());
                if pid.is_some_and(|p| pids.binary_search(&p).is_ok()) {
                    println!("{l}");
                }
            }
            Ok(())
        }
        f => bail!("--format: unknown format {f:?} (table or json)"),
    }
}

/// `events [--stats] [--interval D] ID`: runc's JSON events on stdout.
pub fn events(root: &Path, id: &str, stats_once: bool, interval: Duration) -> Result<()> {
    let c = Container::load(root, id)?;
    let cg = manager(&c)?;
    let emit = |typ: &str, data: Option<serde_json::Value>| {
        let mut v = serde_json::json!({"type": typ, "id": id});
        if let Some(d) = data {
            v["data"] = d;
        }
        println!("{v}");
    };
    if stats_once {
        emit("stats", Some(serde_json::to_value(cg.stats()?)?));
        return Ok(());
    }
    // Do not hold the container's lock while streaming: other commands must go on.
    let (pid, start) = (c.saved().pid, c.saved().pid_start);
    drop(c);
    let alive =
        || matches!(berth_sys::proc::stat(pid), Some(s) if s.start_time == start && s.state != 'Z');
    let mut ooms = cg.oom_kills().unwrap_or(0);
    let mut last_stats = std::time::Instant::now() - interval;
    loop {
        if !alive() {
            // A last OOM event may have killed the init.
            if cg.oom_kills().unwrap_or(ooms) > ooms {
                emit("oom", None);
            }
            return Ok(());
        }
        let now_ooms = cg.oom_kills().unwrap_or(ooms);
        if now_ooms > ooms {
            emit("oom", None);
            ooms = now_ooms;
        }
        if last_stats.elapsed() >= interval {
            emit("stats", Some(serde_json::to_value(cg.stats()?)?));
            last_stats = std::time::Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100).min(interval));
    }
}

/// Flags of `update`.
#[derive(Debug, Default, Clone)]
pub struct UpdateFlags {
    /// `-r FILE` (`-` for stdin): a LinuxResources JSON.
    pub resources: Option<String>,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory reservation in bytes.
    pub memory_reservation: Option<i64>,
    /// Memory plus swap in bytes (-1 unlimited).
    pub memory_swap: Option<i64>,
    /// CPU shares.
    pub cpu_shares: Option<u64>,
    /// CPU quota in microseconds per period.
    pub cpu_quota: Option<i64>,
    /// CPU period in microseconds.
    pub cpu_period: Option<u64>,
    /// CPUs the container may use.
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks.
    pub pids_limit: Option<i64>,
    /// Block IO weight.
    pub blkio_weight: Option<u16>,
}

/// `update [flags] [-r resources.json] ID`: change limits of a live container.
pub fn update(root: &Path, id: &str, f: &UpdateFlags) -> Result<()> {
    let c = Container::load(root, id)?;
    if c.status() == Status::Stopped {
        bail!("cannot update container {id}: it is stopped");
    }
    let mut res: LinuxResources = match &f.resources {
        Some(path) => {
            let mut text = String::new();
            if path == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(path).with_context(|| format!("read {path}"))?;
            }
            let de = &mut serde_json::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(de)
                .map_err(|e| anyhow::anyhow!("--resources: {}: {}", e.path(), e.inner()))?
        }
        None => LinuxResources::default(),
    };
    if f.memory.is_some() || f.memory_swap.is_some() || f.memory_reservation.is_some() {
        let mut m = (*res.memory()).unwrap_or_default();
        if let Some(v) = f.memory {
            m.set_limit(Some(v));
        }
        if let Some(v) = f.memory_swap {
            m.set_swap(Some(v));
        }
        if let Some(v) = f.memory_reservation {
            m.set_reservation(Some(v));
        }
        res.set_memory(Some(m));
    }
    if f.cpu_shares.is_some()
        || f.cpu_quota.is_some()
        || f.cpu_period.is_some()
        || f.cpuset_cpus.is_some()
        || f.cpuset_mems.is_some()
    {
        let mut cpu = res.cpu().clone().unwrap_or_default();
        if let Some(v) = f.cpu_shares {
            cpu.set_shares(Some(v));
        }
        if let Some(v) = f.cpu_quota {
            cpu.set_quota(Some(v));
        }
        if let Some(v) = f.cpu_period {
            cpu.set_period(Some(v));
        }
        if let Some(v) = &f.cpuset_cpus {
            cpu.set_cpus(Some(v.clone()));
        }
        if let Some(v) = &f.cpuset_mems {
            cpu.set_mems(Some(v.clone()));
        }
        res.set_cpu(Some(cpu));
    }
    if let Some(v) = f.pids_limit {
        res.set_pids(Some(LinuxPidsBuilder::default().limit(v).build()?));
    }
    if let Some(v) = f.blkio_weight {
        let mut b = res
            .block_io()
            .clone()
            .unwrap_or(LinuxBlockIoBuilder::default().build()?);
        b.set_weight(Some(v));
        res.set_block_io(Some(b));
    }
    res.set_devices(None);
    manager(&c)?
        .apply(&res)
        .with_context(|| format!("update container {id}"))
}
