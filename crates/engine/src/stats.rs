//! A container's resource usage in Docker's shape (`GET /containers/{id}/stats`, API v1.44):
//! the cgroup's counters from `berth-runtime events --stats`, the interfaces of its network
//! namespace from /proc/PID/net/dev, and the host's CPU time and CPU count that clients
//! compute CPU % against. [`Engine::stats`] (the CLI's `stats`) is a digest of the same sample.

use std::collections::BTreeMap;
use std::fs;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Engine;
use crate::error::{Error, Result};
use crate::record::Status;
use crate::util::{ZERO_TIME, rfc3339};

/// One sample of `GET /containers/{id}/stats`, as Docker's `StatsResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// `/name`.
    pub name: String,
    /// The container's ID.
    pub id: String,
    /// When the sample was taken (RFC 3339; the zero time for a container not running).
    pub read: String,
    /// When the previous sample was taken (the zero time for the first).
    pub preread: String,
    /// Processes.
    pub pids_stats: PidsStats,
    /// Block I/O.
    pub blkio_stats: BlkioStats,
    /// Always 0 on Linux.
    pub num_procs: u32,
    /// Windows only: empty.
    pub storage_stats: BTreeMap<String, u64>,
    /// CPU now.
    pub cpu_stats: CpuStats,
    /// CPU at the previous sample (zero for the first).
    pub precpu_stats: CpuStats,
    /// Memory.
    pub memory_stats: MemoryStats,
    /// The container's interfaces (loopback excluded) by name; absent without a network
    /// namespace of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, InterfaceStats>>,
}

/// [`ContainerStats::pids_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Processes (threads) in the cgroup.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// `--pids-limit` (absent when unlimited).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// [`ContainerStats::blkio_stats`]: on cgroup v2 only bytes read and written per device,
/// the other lists null, as Docker's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    /// Bytes per device and operation (`read`, `write`).
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
    /// I/O operations per device and operation.
    pub io_serviced_recursive: Option<Vec<BlkioEntry>>,
    /// cgroup v1 only.
    pub io_queue_recursive: Option<Vec<BlkioEntry>>,
    /// cgroup v1 only.
    pub io_service_time_recursive: Option<Vec<BlkioEntry>>,
    /// cgroup v1 only.
    pub io_wait_time_recursive: Option<Vec<BlkioEntry>>,
    /// cgroup v1 only.
    pub io_merged_recursive: Option<Vec<BlkioEntry>>,
    /// cgroup v1 only.
    pub io_time_recursive: Option<Vec<BlkioEntry>>,
    /// cgroup v1 only.
    pub sectors_recursive: Option<Vec<BlkioEntry>>,
}

/// One block I/O counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// `read`, `write`, ...
    pub op: String,
    /// The count.
    pub value: u64,
}

/// [`ContainerStats::cpu_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    /// The container's CPU time.
    pub cpu_usage: CpuUsage,
    /// The host's CPU time (all CPUs, every state), nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub system_cpu_usage: u64,
    /// CPUs online on the host.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub online_cpus: u32,
    /// CFS throttling.
    pub throttling_data: Throttling,
}

/// [`CpuStats::cpu_usage`], nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Total.
    pub total_usage: u64,
    /// Per CPU (cgroup v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percpu_usage: Option<Vec<u64>>,
    /// In kernel mode.
    pub usage_in_kernelmode: u64,
    /// In user mode.
    pub usage_in_usermode: u64,
}

/// [`CpuStats::throttling_data`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    /// Enforcement periods.
    pub periods: u64,
    /// Periods throttled.
    pub throttled_periods: u64,
    /// Time throttled, nanoseconds.
    pub throttled_time: u64,
}

/// [`ContainerStats::memory_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Bytes used, page cache included (clients subtract `stats.inactive_file`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// The cgroup's `memory.stat`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, u64>,
    /// The limit (the host's memory when unlimited).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One interface of [`ContainerStats::networks`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStats {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Packets dropped on sending.
    pub tx_dropped: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

impl ContainerStats {
    /// Memory used without the inactive page cache, as Docker's CLI shows it.
    pub fn memory_used(&self) -> u64 {
        let m = &self.memory_stats;
        let cache = m
            .stats
            .get("total_inactive_file")
            .or_else(|| m.stats.get("inactive_file"))
            .copied()
            .unwrap_or(0);
        if cache < m.usage {
            m.usage - cache
        } else {
            m.usage
        }
    }

    /// CPU % since the previous sample, as Docker's CLI computes it: the container's share
    /// of the host's CPU time, times the CPUs (100% is one CPU busy).
    pub fn cpu_percent(&self) -> f64 {
        let cpu = self.cpu_stats.cpu_usage.total_usage as f64
            - self.precpu_stats.cpu_usage.total_usage as f64;
        let sys =
            self.cpu_stats.system_cpu_usage as f64 - self.precpu_stats.system_cpu_usage as f64;
        if cpu > 0.0 && sys > 0.0 {
            cpu / sys * f64::from(self.cpu_stats.online_cpus.max(1)) * 100.0
        } else {
            0.0
        }
    }
}

/// The interfaces of `pid`'s network namespace, loopback excluded, from /proc/PID/net/dev
/// (which shows the namespace of that process).
pub(crate) fn interfaces(pid: i32) -> BTreeMap<String, InterfaceStats> {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return BTreeMap::new();
    };
    parse_net_dev(&text)
}

fn parse_net_dev(text: &str) -> BTreeMap<String, InterfaceStats> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, counters) = l.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let f: Vec<u64> = counters
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            if f.len() < 12 {
                return None;
            }
            // receive: bytes packets errs drop fifo frame compressed multicast;
            // transmit: bytes packets errs drop ...
            Some((
                name.to_string(),
                InterfaceStats {
                    rx_bytes: f[0],
                    rx_packets: f[1],
                    rx_errors: f[2],
                    rx_dropped: f[3],
                    tx_bytes: f[8],
                    tx_packets: f[9],
                    tx_errors: f[10],
                    tx_dropped: f[11],
                },
            ))
        })
        .collect()
}

/// The host's memory, bytes.
pub(crate) fn host_mem() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .unwrap_or(0)
        * 1024
}

/// The host's CPU time in nanoseconds (the first line of /proc/stat: user, nice, system,
/// idle, iowait, irq, softirq, as Docker sums them).
fn system_cpu_ns() -> u64 {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no memory arguments.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    ticks * (1_000_000_000 / hz)
}

fn online_cpus() -> u32 {
    // SAFETY: sysconf has no memory arguments.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as u32
}

/// The block I/O entries of the runtime's `blkio` list (`op` lower-cased, as Docker's on
/// cgroup v2).
fn blkio_list(v: &Value) -> Option<Vec<BlkioEntry>> {
    let a = v.as_array()?;
    Some(
        a.iter()
            .map(|e| BlkioEntry {
                major: e["major"].as_u64().unwrap_or(0),
                minor: e["minor"].as_u64().unwrap_or(0),
                op: e["op"].as_str().unwrap_or("").to_ascii_lowercase(),
                value: e["value"].as_u64().unwrap_or(0),
            })
            .collect(),
    )
}

impl Engine {
    /// A sample of the container's resource usage in Docker's shape; `previous` (the last
    /// sample of a stream) fills `precpu_stats` and `preread`. A container that is not
    /// running (or restarting) gives an empty sample with its name and ID, as Docker's.
    pub fn container_stats(
        &self,
        id: &str,
        previous: Option<&ContainerStats>,
    ) -> Result<ContainerStats> {
        let r = self.record(id)?;
        let s = self.state(id)?;
        let mut st = ContainerStats {
            name: format!("/{}", r.name),
            id: r.id.clone(),
            read: ZERO_TIME.to_string(),
            preread: ZERO_TIME.to_string(),
            ..Default::default()
        };
        if !matches!(s.status, Status::Running | Status::Paused) {
            return Ok(st);
        }
        let out = match self.runtime.run("events", &["--stats", id]) {
            Ok(o) => o,
            // Stopped between the state check and the runtime's call.
            Err(_) if !self.state(id).is_ok_and(|s| s.status == Status::Running) => {
                return Ok(st);
            }
            Err(e) => return Err(e),
        };
        let v: Value = serde_json::from_str(out.lines().next().unwrap_or("{}"))
            .map_err(|e| Error::Other(format!("berth-runtime events --stats: {e}")))?;
        let d = &v["data"];
        let cpu = &d["cpu"];
        let mem = &d["memory"];
        let host = host_mem();
        let mut limit = mem["usage"]["limit"].as_u64().unwrap_or(0);
        if limit == 0 || limit > host {
            limit = host;
        }
        st.read = rfc3339(std::time::SystemTime::now());
        st.cpu_stats = CpuStats {
            cpu_usage: CpuUsage {
                total_usage: cpu["usage"]["total"].as_u64().unwrap_or(0),
                percpu_usage: cpu["usage"]["percpu"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0)).collect()),
                usage_in_kernelmode: cpu["usage"]["kernel"].as_u64().unwrap_or(0),
                usage_in_usermode: cpu["usage"]["user"].as_u64().unwrap_or(0),
            },
            system_cpu_usage: system_cpu_ns(),
            online_cpus: online_cpus(),
            throttling_data: Throttling {
                periods: cpu["throttling"]["periods"].as_u64().unwrap_or(0),
                throttled_periods: cpu["throttling"]["throttledPeriods"].as_u64().unwrap_or(0),
                throttled_time: cpu["throttling"]["throttledTime"].as_u64().unwrap_or(0),
            },
        };
        st.memory_stats = MemoryStats {
            usage: mem["usage"]["usage"].as_u64().unwrap_or(0),
            stats: mem["raw"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                        .collect()
                })
                .unwrap_or_default(),
            limit,
        };
        st.pids_stats = PidsStats {
            current: d["pids"]["current"].as_u64().unwrap_or(0),
            limit: d["pids"]["limit"].as_u64().unwrap_or(0),
        };
        st.blkio_stats = BlkioStats {
            io_service_bytes_recursive: Some(
                blkio_list(&d["blkio"]["ioServiceBytesRecursive"]).unwrap_or_default(),
            ),
            io_serviced_recursive: blkio_list(&d["blkio"]["ioServicedRecursive"]),
            ..Default::default()
        };
        // Like Docker: the container's own interfaces; nothing with the host's network.
        if s.pid > 0 && r.host_config.network_mode != "host" {
            st.networks = Some(interfaces(s.pid));
        }
        if let Some(p) = previous {
            st.precpu_stats = p.cpu_stats.clone();
            st.preread = p.read.clone();
        }
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_parses_every_interface_but_lo() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
 lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  \
 eth0:    1500      10    1    2    0     0          0         0      700       5    3    4    0     0       0          0\n";
        let m = parse_net_dev(text);
        assert_eq!(m.len(), 1, "{m:?}");
        let e = &m["eth0"];
        assert_eq!(
            (e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped),
            (1500, 10, 1, 2)
        );
        assert_eq!(
            (e.tx_bytes, e.tx_packets, e.tx_errors, e.tx_dropped),
            (700, 5, 3, 4)
        );
    }

    /// The JSON is Docker's: snake_case keys, null block I/O lists of cgroup v1, and the
    /// numbers Docker's CLI computes CPU % and memory from.
    #[test]
    fn docker_shape_and_cli_arithmetic() {
        let mut s = ContainerStats {
            name: "/web".into(),
            id: "a".repeat(64),
            ..Default::default()
        };
        s.cpu_stats.cpu_usage.total_usage = 3_000_000_000;
        s.cpu_stats.system_cpu_usage = 20_000_000_000;
        s.cpu_stats.online_cpus = 4;
        s.precpu_stats.cpu_usage.total_usage = 2_000_000_000;
        s.precpu_stats.system_cpu_usage = 12_000_000_000;
        s.memory_stats.usage = 10 << 20;
        s.memory_stats.stats.insert("inactive_file".into(), 4 << 20);
        s.memory_stats.limit = 100 << 20;
        // 1 s of CPU in 8 s of host time on 4 CPUs: 50%.
        assert!((s.cpu_percent() - 50.0).abs() < 1e-9);
        assert_eq!(s.memory_used(), 6 << 20);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 3_000_000_000u64);
        assert_eq!(v["cpu_stats"]["online_cpus"], 4);
        assert_eq!(v["memory_stats"]["stats"]["inactive_file"], 4 << 20);
        assert!(v["blkio_stats"]["io_queue_recursive"].is_null());
        assert_eq!(v["num_procs"], 0);
        assert!(v.get("networks").is_none());
        assert_eq!(v["name"], "/web");
    }
}
