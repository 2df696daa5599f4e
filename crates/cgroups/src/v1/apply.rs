//! Applying `linux.resources` on cgroup v1 (runc's cgroupfs driver semantics).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxResources, LinuxThrottleDevice,
};

use super::V1Manager;
use crate::convert::{
    check_blkio_weight, check_hugepage_size, check_unified_key, device_rule, mem_str_v1, pids_str,
    rdma_lines,
};
use crate::fsutil::{read_opt, read_u64, write, write_if_exists, write_required};
use crate::v2::enable_controllers;
use crate::{Error, Result};

/// Write every limit of `r` to the v1 hierarchies (and to the unified one of a hybrid host where
/// it owns a controller, e.g. hugetlb). The `unified` map is written last.
pub(crate) fn apply(m: &V1Manager, r: &LinuxResources) -> Result<()> {
    if let Some(d) = r.devices() {
        devices(m, d)?;
    }
    if let Some(mem) = r.memory() {
        memory(m, mem)?;
    }
    if let Some(c) = r.cpu() {
        cpu(m, c)?;
    }
    if let Some(p) = r.pids() {
        write(
            &m.require("pids", "pids.limit")?.join("pids.max"),
            &pids_str(p.limit()),
        )?;
    }
    if let Some(b) = r.block_io() {
        blkio(m, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb(m, h)?;
    }
    if let Some(n) = r.network() {
        network(m, n)?;
    }
    if let Some(rdma) = r.rdma() {
        let lines = rdma_lines(rdma);
        if !lines.is_empty() {
            let f = m.require("rdma", "rdma")?.join("rdma.max");
            for l in lines {
                write(&f, &l)?;
            }
        }
    }
    if let Some(u) = r.unified() {
        unified(m, u)?;
    }
    Ok(())
}

/// runc's v1 device handling: deny everything, then replay the rules in order.
/// An empty (or absent) list leaves the cgroup as it is.
fn devices(m: &V1Manager, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let lines = rules
        .iter()
        .map(|d| Ok((d.allow(), device_rule(d)?)))
        .collect::<Result<Vec<_>>>()?;
    let dir = m.require("devices", "linux.resources.devices")?;
    write(&dir.join("devices.deny"), "a")?;
    for (allow, line) in lines {
        let f = if allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write(&dir.join(f), &line)?;
    }
    Ok(())
}

fn memory(m: &V1Manager, mem: &LinuxMemory) -> Result<()> {
    #[allow(deprecated)]
    let kernel = mem.kernel();
    let limit = mem_str_v1("memory.limit", mem.limit())?;
    let mut swap = mem_str_v1("memory.swap", mem.swap())?;
    let reservation = mem_str_v1("memory.reservation", mem.reservation())?;
    if let Some(s) = mem.swappiness()
        && s > 100
    {
        return Err(Error::Invalid {
            field: "memory.swappiness",
            reason: format!("{s} is above 100"),
        });
    }
    let wanted = limit.is_some()
        || swap.is_some()
        || reservation.is_some()
        || mem.swappiness().is_some()
        || mem.disable_oom_killer() == Some(true);
    let dir = match m.dir("memory") {
        Some(d) => d.path.as_path(),
        None if wanted => return Err(unmounted("memory", "memory limits")),
        None => return Ok(()),
    };
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let limit_file = dir.join("memory.limit_in_bytes");
    // unlimited memory without a swap value: swap unlimited too (if swap accounting is on)
    if limit.as_deref() == Some("-1") && swap.is_none() && memsw.exists() {
        swap = Some("-1".into());
    }
    let write_swap = |v: &str| -> Result<()> {
        if memsw.exists() {
            write(&memsw, v)
        } else if v == "-1" {
            Ok(())
        } else {
            Err(Error::Unsupported(format!(
                "memory.swap requested but {} does not exist (swap accounting is off)",
                memsw.display()
            )))
        }
    };
    match (&limit, &swap) {
        (Some(l), Some(s)) => {
            // order the writes so that memory <= memory+swap holds at every step
            let cur = read_u64(&limit_file)?.unwrap_or(u64::MAX);
            let swap_first = s == "-1" || s.parse::<u64>().is_ok_and(|s| cur < s);
            if swap_first {
                write_swap(s)?;
                write(&limit_file, l)?;
            } else {
                write(&limit_file, l)?;
                write_swap(s)?;
            }
        }
        (Some(l), None) => write(&limit_file, l)?,
        (None, Some(s)) => write_swap(s)?,
        (None, None) => {}
    }
    if let Some(r) = reservation {
        write(&dir.join("memory.soft_limit_in_bytes"), &r)?;
    }
    // kernel memory limits are obsolete: set them where the kernel still takes them
    if let Some(k) = mem_str_v1("memory.kernel", kernel)? {
        match write_if_exists(&dir.join("memory.kmem.limit_in_bytes"), &k) {
            Err(Error::Io { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EINVAL | libc::EBUSY)
                ) => {}
            other => {
                other?;
            }
        }
    }
    if let Some(k) = mem_str_v1("memory.kernelTCP", mem.kernel_tcp())? {
        write_if_exists(&dir.join("memory.kmem.tcp.limit_in_bytes"), &k)?;
    }
    if let Some(s) = mem.swappiness() {
        write(&dir.join("memory.swappiness"), &s.to_string())?;
    }
    if mem.disable_oom_killer() == Some(true) {
        write(&dir.join("memory.oom_control"), "1")?;
    }
    Ok(())
}

fn unmounted(subsystem: &str, what: &str) -> Error {
    Error::Unsupported(format!(
        "{what} requested but the cgroup v1 {subsystem} controller is not mounted"
    ))
}

fn cpu(m: &V1Manager, c: &LinuxCpu) -> Result<()> {
    let wants_cpu = c.shares().is_some_and(|s| s != 0)
        || c.quota().is_some_and(|q| q != 0)
        || c.period().is_some_and(|p| p != 0)
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_period().is_some_and(|p| p != 0)
        || c.realtime_runtime().is_some_and(|r| r != 0);
    if wants_cpu {
        let dir = m.require("cpu", "cpu limits")?;
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            write(&dir.join("cpu.shares"), &s.to_string())?;
        }
        let quota = c.quota().unwrap_or(0);
        let mut period_pending = None;
        if let Some(p) = c.period().filter(|p| *p != 0) {
            let f = dir.join("cpu.cfs_period_us");
            match write(&f, &p.to_string()) {
                Ok(()) => {}
                // a smaller period can be refused until the new quota is in: retry after it
                Err(Error::Io { ref source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) && quota != 0 =>
                {
                    period_pending = Some(p);
                }
                Err(e) => return Err(e),
            }
        }
        if quota != 0 {
            let q = if quota < 0 { -1 } else { quota };
            write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
            if let Some(p) = period_pending {
                write(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
            }
        }
        if let Some(b) = c.burst() {
            write_required(&dir.join("cpu.cfs_burst_us"), &b.to_string(), "cpu.burst")?;
        }
        if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
            write_required(
                &dir.join("cpu.rt_period_us"),
                &p.to_string(),
                "cpu.realtimePeriod",
            )?;
        }
        if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
            write_required(
                &dir.join("cpu.rt_runtime_us"),
                &r.to_string(),
                "cpu.realtimeRuntime",
            )?;
        }
        if let Some(i) = c.idle() {
            write_required(&dir.join("cpu.idle"), &i.to_string(), "cpu.idle")?;
        }
    }
    let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        let dir = m.require("cpuset", "cpu.cpus/cpu.mems")?;
        if let Some(v) = cpus {
            write(&dir.join("cpuset.cpus"), v)?;
        }
        if let Some(v) = mems {
            write(&dir.join("cpuset.mems"), v)?;
        }
    }
    Ok(())
}

fn throttle(dir: &Path, file: &str, list: &Option<Vec<LinuxThrottleDevice>>) -> Result<()> {
    for t in list.iter().flatten() {
        write(
            &dir.join(file),
            &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
        )?;
    }
    Ok(())
}

fn blkio(m: &V1Manager, b: &LinuxBlockIo) -> Result<()> {
    let empty = |l: &Option<Vec<LinuxThrottleDevice>>| l.as_ref().is_none_or(Vec::is_empty);
    let wanted = b.weight().is_some()
        || b.leaf_weight().is_some()
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || !empty(b.throttle_read_bps_device())
        || !empty(b.throttle_write_bps_device())
        || !empty(b.throttle_read_iops_device())
        || !empty(b.throttle_write_iops_device());
    if !wanted {
        return Ok(());
    }
    let dir = m.require("blkio", "blockIO")?;
    // CFQ files, or BFQ's on kernels without CFQ
    let (weight, weight_device) = if dir.join("blkio.weight").exists() {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        check_blkio_weight("blockIO.weight", w)?;
        write_required(&dir.join(weight), &w.to_string(), "blockIO.weight")?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        check_blkio_weight("blockIO.leafWeight", w)?;
        write_required(
            &dir.join("blkio.leaf_weight"),
            &w.to_string(),
            "blockIO.leafWeight",
        )?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            check_blkio_weight("blockIO.weightDevice.weight", w)?;
            write_required(
                &dir.join(weight_device),
                &format!("{}:{} {w}", wd.major(), wd.minor()),
                "blockIO.weightDevice",
            )?;
        }
        if let Some(w) = wd.leaf_weight() {
            check_blkio_weight("blockIO.weightDevice.leafWeight", w)?;
            write_required(
                &dir.join("blkio.leaf_weight_device"),
                &format!("{}:{} {w}", wd.major(), wd.minor()),
                "blockIO.weightDevice.leafWeight",
            )?;
        }
    }
    throttle(
        dir,
        "blkio.throttle.read_bps_device",
        b.throttle_read_bps_device(),
    )?;
    throttle(
        dir,
        "blkio.throttle.write_bps_device",
        b.throttle_write_bps_device(),
    )?;
    throttle(
        dir,
        "blkio.throttle.read_iops_device",
        b.throttle_read_iops_device(),
    )?;
    throttle(
        dir,
        "blkio.throttle.write_iops_device",
        b.throttle_write_iops_device(),
    )?;
    Ok(())
}

/// hugetlb limits: the v1 controller if mounted, else the unified hierarchy of a hybrid host if
/// it owns hugetlb (enabling it on the way down).
fn hugetlb(m: &V1Manager, limits: &[LinuxHugepageLimit]) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    for l in limits {
        check_hugepage_size(l.page_size())?;
    }
    if let Some(d) = m.dir("hugetlb") {
        for l in limits {
            let f = d
                .path
                .join(format!("hugetlb.{}.limit_in_bytes", l.page_size()));
            write(&f, &l.limit().to_string())?;
            let rsvd = d
                .path
                .join(format!("hugetlb.{}.rsvd.limit_in_bytes", l.page_size()));
            write_if_exists(&rsvd, &l.limit().to_string())?;
        }
        return Ok(());
    }
    let Some(u) = m.unified() else {
        return Err(unmounted("hugetlb", "hugepageLimits"));
    };
    let owned = read_opt(&u.mount.join("cgroup.controllers"))?
        .is_some_and(|c| c.split_whitespace().any(|c| c == "hugetlb"));
    if !owned {
        return Err(Error::Unsupported(
            "hugepageLimits requested but neither the v1 nor the unified hierarchy has hugetlb"
                .into(),
        ));
    }
    enable_controllers(&u.mount, &u.path, Some(&["hugetlb"]))?;
    for l in limits {
        let f = u.path.join(format!("hugetlb.{}.max", l.page_size()));
        write_required(&f, &l.limit().to_string(), "hugepageLimits")?;
        write_if_exists(
            &u.path.join(format!("hugetlb.{}.rsvd.max", l.page_size())),
            &l.limit().to_string(),
        )?;
    }
    Ok(())
}

fn network(m: &V1Manager, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        let dir = m.require("net_cls", "network.classID")?;
        write(&dir.join("net_cls.classid"), &id.to_string())?;
    }
    let prios = n.priorities().as_deref().unwrap_or_default();
    if !prios.is_empty() {
        let dir = m.require("net_prio", "network.priorities")?;
        for p in prios {
            write(
                &dir.join("net_prio.ifpriomap"),
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    Ok(())
}

/// `unified` on v1: only possible for files of the hybrid unified hierarchy.
fn unified(m: &V1Manager, map: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<_> = map.keys().collect();
    keys.sort();
    for k in keys {
        check_unified_key(k)?;
        let f = m.unified().map(|u| u.path.join(k));
        match f {
            Some(f) if f.exists() => write(&f, &map[k])?,
            _ => {
                return Err(Error::Unsupported(format!(
                    "unified.{k} needs cgroup v2, and this host's unified hierarchy has no such file"
                )));
            }
        }
    }
    Ok(())
}
