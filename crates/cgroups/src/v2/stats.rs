//! Usage counters on cgroup v2.

use std::path::Path;

use super::V2Manager;
use crate::fsutil::{flat_get, hugepage_sizes, read, read_opt, read_u64};
use crate::stats::{Hugetlb, parse_io_stat, read_flat_map};
use crate::{Result, Stats};

fn u(dir: &Path, file: &str) -> Result<u64> {
    Ok(read_u64(&dir.join(file))?.unwrap_or(0))
}

/// Collect the counters of the enabled controllers; missing files leave zeros.
pub(crate) fn stats(m: &V2Manager) -> Result<Stats> {
    let d = m.dir();
    let mut s = Stats::default();
    if let Some(st) = read_opt(&d.join("cpu.stat"))? {
        let g = |k| flat_get(&st, k).unwrap_or(0);
        s.cpu.usage.total = g("usage_usec") * 1000;
        s.cpu.usage.user = g("user_usec") * 1000;
        s.cpu.usage.kernel = g("system_usec") * 1000;
        s.cpu.throttling.periods = g("nr_periods");
        s.cpu.throttling.throttled_periods = g("nr_throttled");
        s.cpu.throttling.throttled_time = g("throttled_usec") * 1000;
    }
    if d.join("memory.current").exists() {
        let events = read_opt(&d.join("memory.events"))?.unwrap_or_default();
        s.memory.usage.usage = u(d, "memory.current")?;
        s.memory.usage.limit = u(d, "memory.max")?;
        s.memory.usage.max = u(d, "memory.peak")?;
        s.memory.usage.failcnt = flat_get(&events, "max").unwrap_or(0);
        // like runc: "swap" is memory+swap, as on v1
        s.memory.swap.usage = s
            .memory
            .usage
            .usage
            .saturating_add(u(d, "memory.swap.current")?);
        s.memory.swap.limit = match read_u64(&d.join("memory.swap.max"))? {
            Some(sw) => sw.saturating_add(s.memory.usage.limit),
            None => s.memory.usage.limit,
        };
        s.memory.swap.max = u(d, "memory.swap.peak")?;
        s.memory.raw = read_flat_map(&d.join("memory.stat"))?;
        s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
    }
    s.pids.current = u(d, "pids.current")?;
    s.pids.limit = match u(d, "pids.max")? {
        u64::MAX => 0,
        n => n,
    };
    if let Some(io) = read_opt(&d.join("io.stat"))? {
        let (bytes, ios) = parse_io_stat(&io);
        s.blkio.io_service_bytes_recursive = bytes;
        s.blkio.io_serviced_recursive = ios;
    }
    for size in hugepage_sizes() {
        if !d.join(format!("hugetlb.{size}.current")).exists() {
            continue;
        }
        let events = read_opt(&d.join(format!("hugetlb.{size}.events")))?;
        s.hugetlb.insert(
            size.clone(),
            Hugetlb {
                usage: u(d, &format!("hugetlb.{size}.current"))?,
                max: 0,
                failcnt: events.and_then(|e| flat_get(&e, "max")).unwrap_or(0),
            },
        );
    }
    Ok(s)
}

/// OOM kills: the `oom_kill` line of `memory.events`.
pub(crate) fn oom_kills(m: &V2Manager) -> Result<u64> {
    let text = read(&m.dir().join("memory.events"))?;
    Ok(flat_get(&text, "oom_kill").unwrap_or(0))
}
