//! Usage counters, serialized like runc's `events --stats` (`types.Stats`).

use std::collections::BTreeMap;

use serde::Serialize;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Usage counters of a container's cgroup, shaped like runc's `types.Stats` JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: Cpu,
    /// Memory and swap.
    pub memory: Memory,
    /// Number of tasks.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// Huge pages, by page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

/// CPU counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cpu {
    /// CPU time used.
    pub usage: CpuUsage,
    /// CFS bandwidth throttling.
    pub throttling: Throttling,
}

/// CPU time used, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CpuUsage {
    /// Total CPU time.
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Total CPU time per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Time in kernel mode.
    pub kernel: u64,
    /// Time in user mode.
    pub user: u64,
}

/// CFS bandwidth throttling counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total time throttled, in nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// Memory counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Page cache bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory plus swap on v1; on v2 memory plus swap as well, to match.
    pub swap: MemoryEntry,
    /// Kernel memory (v1 only).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers (v1 only).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// `memory.stat`, as is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// One memory counter set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryEntry {
    /// Limit in bytes (`u64::MAX` when unlimited).
    pub limit: u64,
    /// Current usage in bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage in bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Task counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pids {
    /// Tasks in the cgroup.
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// Limit (0 when unlimited).
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One block I/O counter: a device, an operation and a value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    /// Device major number.
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    /// Device minor number.
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The value.
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// Block I/O counters (recursive over descendants).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Blkio {
    /// Bytes transferred.
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// I/O operations.
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// Huge page counters of one page size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hugetlb {
    /// Bytes in use.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak bytes in use (v1 only).
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times an allocation failed because of the limit.
    pub failcnt: u64,
}

/// Parse a v1 blkio file (`MAJ:MIN Op VALUE` lines; `Total N` lines are skipped).
pub(crate) fn parse_blkio_v1(s: &str) -> Vec<BlkioEntry> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (maj, min) = f[0].split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: f[1].to_string(),
                value: f[2].parse().ok()?,
            })
        })
        .collect()
}

/// Parse v2 `io.stat` into (bytes, ios) entries shaped like v1's.
pub(crate) fn parse_io_stat(s: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for l in s.lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ios)
}

/// Nanoseconds per `USER_HZ` clock tick (for `cpuacct.stat`).
pub(crate) fn ns_per_tick() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        1_000_000_000 / hz as u64
    } else {
        10_000_000
    }
}

/// Read `memory.stat`-like flat files into a map (missing file: empty).
pub(crate) fn read_flat_map(path: &std::path::Path) -> crate::Result<BTreeMap<String, u64>> {
    Ok(crate::fsutil::read_opt(path)?
        .map(|s| crate::fsutil::parse_flat(&s).into_iter().collect())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.memory.usage.limit = 7;
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["cpu"]["usage"]["total"], 5);
        assert_eq!(j["cpu"]["usage"]["kernel"], 0);
        assert_eq!(j["memory"]["usage"]["limit"], 7);
        assert!(j["memory"]["kernelTCP"].is_object());
        assert!(j["pids"].is_object());
        assert!(j["hugetlb"].is_object());
    }

    #[test]
    fn blkio_parsing() {
        let v = parse_blkio_v1("8:0 Read 10\n8:0 Write 20\nTotal 30\n");
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].op, "Write");
        let (b, i) = parse_io_stat("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n");
        assert_eq!(b.len(), 3);
        assert_eq!(i[1].value, 4);
    }
}
