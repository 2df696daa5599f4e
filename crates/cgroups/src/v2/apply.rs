//! Applying `linux.resources` on cgroup v2 (runc's fs2 driver semantics).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxResources,
    LinuxThrottleDevice,
};

use super::V2Manager;
use crate::convert::{
    blkio_to_io_weight, check_blkio_weight, check_hugepage_size, check_unified_key, mem_str,
    pids_str, rdma_lines, shares_to_weight, swap_v2,
};
use crate::fsutil::{read_opt, write, write_if_exists, write_required};
use crate::{Error, Result};

/// Write every limit of `r` to the container's cgroup; the `unified` map last, so it wins.
///
/// `devices` become an eBPF program attached to the cgroup ([`super::devices`]).
///
/// Not applied on v2: `memory.kernel`,
/// `memory.kernelTCP`, `memory.swappiness` and `memory.disableOOMKiller` (no such files),
/// `blockIO.leafWeight`.
pub(crate) fn apply(m: &V2Manager, r: &LinuxResources) -> Result<()> {
    let dir = m.dir();
    if let Some(d) = r.devices() {
        super::devices::apply(dir, d)?;
    }
    if let Some(mem) = r.memory() {
        memory(dir, mem)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = r.pids() {
        write_required(&dir.join("pids.max"), &pids_str(p.limit()), "pids.limit")?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb(dir, h)?;
    }
    if let Some(n) = r.network() {
        network(n)?;
    }
    if let Some(rdma) = r.rdma() {
        for l in rdma_lines(rdma) {
            write_required(&dir.join("rdma.max"), &l, "rdma")?;
        }
    }
    if let Some(u) = r.unified() {
        unified(dir, u)?;
    }
    Ok(())
}

fn memory(dir: &Path, mem: &LinuxMemory) -> Result<()> {
    let limit = mem.limit().unwrap_or(0);
    let limit_str = mem_str("memory.limit", mem.limit())?;
    let swap = swap_v2(mem.swap().unwrap_or(0), limit)?;
    if let Some(s) = swap {
        let v = if s == -1 { "max".into() } else { s.to_string() };
        let f = dir.join("memory.swap.max");
        // without swap accounting, "unlimited" and "none" need no file
        if f.exists() {
            write(&f, &v)?;
        } else if !(v == "max" || v == "0") {
            return Err(Error::Unsupported(format!(
                "memory.swap requested but {} does not exist (swap accounting is off)",
                f.display()
            )));
        }
    }
    if let Some(l) = limit_str {
        write_required(&dir.join("memory.max"), &l, "memory.limit")?;
    }
    if let Some(r) = mem_str("memory.reservation", mem.reservation())? {
        write_required(&dir.join("memory.low"), &r, "memory.reservation")?;
    }
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_period().is_some_and(|p| p != 0) || c.realtime_runtime().is_some_and(|r| r != 0) {
        return Err(Error::Unsupported(
            "cpu.realtimePeriod/realtimeRuntime are not supported on cgroup v2".into(),
        ));
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        write_required(
            &dir.join("cpu.weight"),
            &shares_to_weight(s).to_string(),
            "cpu.shares",
        )?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if quota != 0 || period != 0 {
        let mut v = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        if period != 0 {
            v.push_str(&format!(" {period}"));
        }
        write_required(&dir.join("cpu.max"), &v, "cpu.quota/cpu.period")?;
    }
    if let Some(b) = c.burst() {
        write_required(&dir.join("cpu.max.burst"), &b.to_string(), "cpu.burst")?;
    }
    if let Some(i) = c.idle() {
        write_required(&dir.join("cpu.idle"), &i.to_string(), "cpu.idle")?;
    }
    if let Some(v) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write_required(&dir.join("cpuset.cpus"), v, "cpu.cpus")?;
    }
    if let Some(v) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write_required(&dir.join("cpuset.mems"), v, "cpu.mems")?;
    }
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = dir.join("io.bfq.weight");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        check_blkio_weight("blockIO.weight", w)?;
        if bfq.exists() {
            write(&bfq, &w.to_string())?;
        } else {
            write_required(
                &dir.join("io.weight"),
                &blkio_to_io_weight(w).to_string(),
                "blockIO.weight",
            )?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            check_blkio_weight("blockIO.weightDevice.weight", w)?;
            write_required(
                &bfq,
                &format!("{}:{} {w}", wd.major(), wd.minor()),
                "blockIO.weightDevice",
            )?;
        }
    }
    let lists: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in lists {
        for t in list.iter().flatten() {
            write_required(
                &dir.join("io.max"),
                &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
                "blockIO.throttle*",
            )?;
        }
    }
    Ok(())
}

fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        check_hugepage_size(l.page_size())?;
        let v = l.limit().to_string();
        write_required(
            &dir.join(format!("hugetlb.{}.max", l.page_size())),
            &v,
            "hugepageLimits",
        )?;
        write_if_exists(&dir.join(format!("hugetlb.{}.rsvd.max", l.page_size())), &v)?;
    }
    Ok(())
}

fn network(n: &LinuxNetwork) -> Result<()> {
    if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(Error::Unsupported(
            "network.classID/priorities need the cgroup v1 net_cls/net_prio controllers".into(),
        ));
    }
    Ok(())
}

fn unified(dir: &Path, map: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<_> = map.keys().collect();
    keys.sort();
    for k in keys {
        check_unified_key(k)?;
        let f = dir.join(k);
        if !f.exists() {
            let ctl = k.split('.').next().unwrap_or_default();
            let available = read_opt(&dir.join("cgroup.controllers"))?.unwrap_or_default();
            let why = if available.split_whitespace().any(|c| c == ctl) {
                "no such file".to_string()
            } else {
                format!("controller {ctl:?} is not enabled for this cgroup")
            };
            return Err(Error::Unsupported(format!("unified.{k}: {why}")));
        }
        write(&f, &map[k])?;
    }
    Ok(())
}
