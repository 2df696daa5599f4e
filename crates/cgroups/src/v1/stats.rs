//! Usage counters on cgroup v1 (plus hugetlb from the unified hierarchy on hybrid hosts).

use std::path::Path;

use super::V1Manager;
use crate::fsutil::{flat_get, hugepage_sizes, read_opt, read_u64};
use crate::stats::{Hugetlb, MemoryEntry, ns_per_tick, parse_blkio_v1, read_flat_map};
use crate::{Error, Result, Stats};

fn u(dir: &Path, file: &str) -> Result<u64> {
    Ok(read_u64(&dir.join(file))?.unwrap_or(0))
}

/// A v1 memory counter set with prefix `memory`, `memory.memsw`, `memory.kmem`, ...
fn mem_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    Ok(MemoryEntry {
        limit: u(dir, &format!("{prefix}.limit_in_bytes"))?,
        usage: u(dir, &format!("{prefix}.usage_in_bytes"))?,
        max: u(dir, &format!("{prefix}.max_usage_in_bytes"))?,
        failcnt: u(dir, &format!("{prefix}.failcnt"))?,
    })
}

/// Collect the counters of every mounted controller; missing controllers leave zeros.
pub(crate) fn stats(m: &V1Manager) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(d) = m.dir("cpuacct") {
        let d = &d.path;
        s.cpu.usage.total = u(d, "cpuacct.usage")?;
        s.cpu.usage.percpu = read_opt(&d.join("cpuacct.usage_percpu"))?
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(st) = read_opt(&d.join("cpuacct.stat"))? {
            let tick = ns_per_tick();
            s.cpu.usage.user = flat_get(&st, "user").unwrap_or(0) * tick;
            s.cpu.usage.kernel = flat_get(&st, "system").unwrap_or(0) * tick;
        }
    }
    if let Some(d) = m.dir("cpu")
        && let Some(st) = read_opt(&d.path.join("cpu.stat"))?
    {
        s.cpu.throttling.periods = flat_get(&st, "nr_periods").unwrap_or(0);
        s.cpu.throttling.throttled_periods = flat_get(&st, "nr_throttled").unwrap_or(0);
        s.cpu.throttling.throttled_time = flat_get(&st, "throttled_time").unwrap_or(0);
    }
    if let Some(d) = m.dir("memory") {
        let d = &d.path;
        s.memory.usage = mem_entry(d, "memory")?;
        s.memory.swap = mem_entry(d, "memory.memsw")?;
        s.memory.kernel = mem_entry(d, "memory.kmem")?;
        s.memory.kernel_tcp = mem_entry(d, "memory.kmem.tcp")?;
        s.memory.raw = read_flat_map(&d.join("memory.stat"))?;
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    }
    if let Some(d) = m.dir("pids") {
        s.pids.current = u(&d.path, "pids.current")?;
        s.pids.limit = match u(&d.path, "pids.max")? {
            u64::MAX => 0,
            n => n,
        };
    }
    if let Some(d) = m.dir("blkio") {
        // CFQ, then BFQ, then the throttling layer's counters: the first that has data
        for prefix in ["blkio", "blkio.bfq", "blkio.throttle"] {
            let bytes = read_opt(&d.path.join(format!("{prefix}.io_service_bytes_recursive")))?
                .map(|t| parse_blkio_v1(&t))
                .unwrap_or_default();
            if bytes.is_empty() {
                continue;
            }
            s.blkio.io_service_bytes_recursive = bytes;
            s.blkio.io_serviced_recursive =
                read_opt(&d.path.join(format!("{prefix}.io_serviced_recursive")))?
                    .map(|t| parse_blkio_v1(&t))
                    .unwrap_or_default();
            break;
        }
    }
    if let Some(d) = m.dir("hugetlb") {
        for size in hugepage_sizes() {
            let h = Hugetlb {
                usage: u(&d.path, &format!("hugetlb.{size}.usage_in_bytes"))?,
                max: u(&d.path, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                failcnt: u(&d.path, &format!("hugetlb.{size}.failcnt"))?,
            };
            s.hugetlb.insert(size, h);
        }
    } else if let Some(un) = m.unified()
        && un.path.join("cgroup.controllers").exists()
    {
        for size in hugepage_sizes() {
            if !un.path.join(format!("hugetlb.{size}.current")).exists() {
                continue;
            }
            let events = read_opt(&un.path.join(format!("hugetlb.{size}.events")))?;
            let h = Hugetlb {
                usage: u(&un.path, &format!("hugetlb.{size}.current"))?,
                max: 0,
                failcnt: events.and_then(|e| flat_get(&e, "max")).unwrap_or(0),
            };
            s.hugetlb.insert(size, h);
        }
    }
    Ok(s)
}

/// OOM kills: the `oom_kill` line of `memory.oom_control` (Linux 4.13 and later).
pub(crate) fn oom_kills(m: &V1Manager) -> Result<u64> {
    let d = m.dir("memory").ok_or_else(|| {
        Error::Unsupported("the cgroup v1 memory controller is not mounted".into())
    })?;
    let f = d.path.join("memory.oom_control");
    let text = crate::fsutil::read(&f)?;
    Ok(flat_get(&text, "oom_kill").unwrap_or(0))
}
