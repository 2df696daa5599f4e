//! Value conversions and validation shared by the v1 and v2 `apply` (runc semantics).

use std::collections::HashMap;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxRdma};

use crate::fsutil::hugepage_sizes;
use crate::{Error, Result};

/// A memory value as cgroup files take it: `None` for 0 (unset), `max` for -1.
pub(crate) fn mem_str(field: &'static str, v: Option<i64>) -> Result<Option<String>> {
    match v {
        None | Some(0) => Ok(None),
        Some(-1) => Ok(Some("max".into())),
        Some(n) if n > 0 => Ok(Some(n.to_string())),
        Some(n) => Err(Error::Invalid {
            field,
            reason: format!("{n} is negative (only -1, unlimited, is allowed)"),
        }),
    }
}

/// v1 spelling of [`mem_str`]: `-1` for unlimited.
pub(crate) fn mem_str_v1(field: &'static str, v: Option<i64>) -> Result<Option<String>> {
    Ok(mem_str(field, v)?.map(|s| if s == "max" { "-1".into() } else { s }))
}

/// `memory.swap.max` from the OCI memory+swap value (runc's `ConvertMemorySwapToCgroupV2Value`):
/// `None` to leave it, `Some(-1)` for `max`.
pub(crate) fn swap_v2(swap: i64, memory: i64) -> Result<Option<i64>> {
    let bad = |reason: &str| Error::Invalid {
        field: "memory.swap",
        reason: reason.to_string(),
    };
    if memory == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    if swap == -1 {
        return Ok(Some(-1));
    }
    if swap == 0 {
        return Ok(None);
    }
    if swap < -1 {
        return Err(bad("negative"));
    }
    if memory == 0 || memory == -1 {
        return Err(bad("unable to set swap limit without memory limit"));
    }
    if memory < 0 {
        return Err(bad("invalid memory value"));
    }
    if swap < memory {
        return Err(bad("memory+swap limit should be >= memory limit"));
    }
    Ok(Some(swap - memory))
}

/// `cpu.weight` from `cpu.shares` (runc's linear `ConvertCPUSharesToCgroupV2Value`).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// `io.weight` from a blkio weight (runc's `ConvertBlkIOToIOWeightValue`).
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// Check a blkio weight is within 10..=1000 (callers skip 0, which engines send for "unset", as runc does).
pub(crate) fn check_blkio_weight(field: &'static str, w: u16) -> Result<()> {
    if !(10..=1000).contains(&w) {
        return Err(Error::Invalid {
            field,
            reason: format!("{w} is outside 10..=1000"),
        });
    }
    Ok(())
}

/// `pids.max` from `pids.limit`: 0 or negative is unlimited.
pub(crate) fn pids_str(limit: i64) -> String {
    if limit <= 0 {
        "max".into()
    } else {
        limit.to_string()
    }
}

/// Check a hugepage size (`2MB`) exists on this host.
pub(crate) fn check_hugepage_size(size: &str) -> Result<()> {
    let sizes = hugepage_sizes();
    if !sizes.iter().any(|s| s == size) {
        return Err(Error::Invalid {
            field: "hugepageLimits.pageSize",
            reason: format!("{size:?} is not a hugepage size of this host ({sizes:?})"),
        });
    }
    Ok(())
}

/// The lines of `rdma.max` for `linux.resources.rdma`.
pub(crate) fn rdma_lines(rdma: &HashMap<String, LinuxRdma>) -> Vec<String> {
    let mut v: Vec<String> = rdma
        .iter()
        .filter_map(|(dev, l)| {
            let mut s = dev.clone();
            if let Some(h) = l.hca_handles() {
                s.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                s.push_str(&format!(" hca_object={o}"));
            }
            (l.hca_handles().is_some() || l.hca_objects().is_some()).then_some(s)
        })
        .collect();
    v.sort();
    v
}

/// Check a key of `linux.resources.unified` names a plain file of a cgroup directory.
pub(crate) fn check_unified_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.contains('/')
        || key == "."
        || key == ".."
        || !key.contains('.')
        || matches!(
            key,
            "cgroup.procs" | "cgroup.threads" | "cgroup.subtree_control"
        )
    {
        return Err(Error::Invalid {
            field: "unified",
            reason: format!("{key:?} is not a settable cgroup file"),
        });
    }
    Ok(())
}

/// A v1 `devices.allow`/`devices.deny` line from an OCI rule.
pub(crate) fn device_rule(d: &LinuxDeviceCgroup) -> Result<String> {
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(Error::Invalid {
            field: "devices.access",
            reason: format!("{access:?} is not a subset of \"rwm\""),
        });
    }
    let num = |n: Option<i64>| n.filter(|n| *n >= 0).map_or("*".into(), |n| n.to_string());
    let typ = match d.typ().unwrap_or_default() {
        oci_spec::runtime::LinuxDeviceType::P => {
            return Err(Error::Invalid {
                field: "devices.type",
                reason: "\"p\" (fifo) is not a device cgroup type: use a, b or c".into(),
            });
        }
        oci_spec::runtime::LinuxDeviceType::U => "c".to_string(),
        t => t.as_str().to_string(),
    };
    Ok(format!(
        "{typ} {}:{} {access}",
        num(d.major()),
        num(d.minor())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(blkio_to_io_weight(500), 1 + 490 * 9999 / 990);
    }

    #[test]
    fn swap_like_runc() {
        assert_eq!(swap_v2(0, -1).unwrap(), Some(-1));
        assert_eq!(swap_v2(-1, 100).unwrap(), Some(-1));
        assert_eq!(swap_v2(0, 100).unwrap(), None);
        assert_eq!(swap_v2(300, 100).unwrap(), Some(200));
        assert!(swap_v2(50, 100).is_err());
        assert!(swap_v2(50, 0).is_err());
    }

    #[test]
    fn misc() {
        assert_eq!(pids_str(-1), "max");
        assert_eq!(pids_str(0), "max");
        assert_eq!(pids_str(10), "10");
        assert_eq!(mem_str("x", Some(-1)).unwrap().as_deref(), Some("max"));
        assert_eq!(mem_str_v1("x", Some(-1)).unwrap().as_deref(), Some("-1"));
        assert!(mem_str("x", Some(-2)).is_err());
        assert!(check_unified_key("memory.max").is_ok());
        assert!(check_unified_key("../x").is_err());
        assert!(check_unified_key("cgroup.procs").is_err());
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        assert_eq!(device_rule(&d).unwrap(), "a *:* rwm");
        d.set_typ(Some(oci_spec::runtime::LinuxDeviceType::C));
        d.set_major(Some(1));
        d.set_minor(Some(3));
        d.set_access(Some("rw".into()));
        assert_eq!(device_rule(&d).unwrap(), "c 1:3 rw");
        d.set_typ(Some(oci_spec::runtime::LinuxDeviceType::P));
        assert!(device_rule(&d).is_err());
    }
}
