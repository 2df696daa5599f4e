//! Per-process kernel attributes from config.json: `linux.personality`, `process.scheduler`,
//! `process.ioPriority`, `process.execCPUAffinity` and `linux.memoryPolicy`. Each is applied by
//! the process itself right before exec, and each failure names its field.

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{
    ExecCPUAffinity, IOPriorityClass, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType,
    Scheduler,
};

/// Parse a CPU or node list like `0-3,7` into a bit set of `words` 64-bit words.
pub fn parse_list(s: &str, words: usize) -> Result<Vec<u64>> {
    let mut set = vec![0u64; words];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let a: usize = a
            .parse()
            .with_context(|| format!("{part:?} is not a number or range"))?;
        let b: usize = b
            .parse()
            .with_context(|| format!("{part:?} is not a number or range"))?;
        if a > b || b >= words * 64 {
            bail!("{part:?} is out of range");
        }
        for i in a..=b {
            set[i / 64] |= 1 << (i % 64);
        }
    }
    Ok(set)
}

/// `linux.personality`.
pub fn personality(p: &LinuxPersonality) -> Result<()> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        bail!("linux.personality.flags: no flags are supported");
    }
    let domain: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality takes an integer.
    if unsafe { libc::personality(domain) } < 0 {
        return Err(std::io::Error::last_os_error()).context("linux.personality");
    }
    Ok(())
}

#[repr(C)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

/// `process.scheduler` through sched_setattr(2).
pub fn scheduler(s: &Scheduler) -> Result<()> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => {
            bail!("process.scheduler.policy: SCHED_ISO is not implemented by Linux")
        }
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: policy,
        sched_flags: flags,
        sched_nice: s.nice().unwrap_or(0),
        sched_priority: s.priority().unwrap_or(0) as u32,
        sched_runtime: s.runtime().unwrap_or(0),
        sched_deadline: s.deadline().unwrap_or(0),
        sched_period: s.period().unwrap_or(0),
    };
    // SAFETY: attr is a valid sched_attr of the size it declares.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("process.scheduler: sched_setattr");
    }
    Ok(())
}

/// `process.ioPriority` through ioprio_set(2).
pub fn io_priority(class: IOPriorityClass, priority: i64) -> Result<()> {
    if !(0..=7).contains(&priority) {
        bail!("process.ioPriority.priority: {priority} is out of range (0-7)");
    }
    let class = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let prio = (class << 13) | priority;
    // SAFETY: ioprio_set takes integers (IOPRIO_WHO_PROCESS = 1, 0 = this process).
    if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, prio) } < 0 {
        return Err(std::io::Error::last_os_error()).context("process.ioPriority: ioprio_set");
    }
    Ok(())
}

/// Set this process's CPU affinity from a list like `0-3`.
pub fn cpu_affinity(field: &str, list: &str) -> Result<()> {
    let words = 1024 / 64;
    let set = parse_list(list, words).with_context(|| format!("{field}: {list:?}"))?;
    // SAFETY: the mask buffer is words*8 bytes long, as we tell the kernel.
    let r = unsafe { libc::syscall(libc::SYS_sched_setaffinity, 0, words * 8, set.as_ptr()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("{field}: sched_setaffinity {list:?}"));
    }
    Ok(())
}

/// The affinity for the process's exec: `final` if given, else `initial`.
pub fn exec_cpu_affinity(a: &ExecCPUAffinity) -> Result<()> {
    if let Some(l) = a.cpu_affinity_final() {
        cpu_affinity("process.execCPUAffinity.final", l)
    } else if let Some(l) = a.initial() {
        cpu_affinity("process.execCPUAffinity.initial", l)
    } else {
        Ok(())
    }
}

/// `linux.memoryPolicy` through set_mempolicy(2).
pub fn memory_policy(p: &LinuxMemoryPolicy) -> Result<()> {
    let mut mode: i64 = match p.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    for f in p.flags().iter().flatten() {
        mode |= match f {
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        };
    }
    let words = 1024 / 64;
    let nodes = match p.nodes() {
        Some(n) => {
            parse_list(n, words).with_context(|| format!("linux.memoryPolicy.nodes: {n:?}"))?
        }
        None => vec![0; words],
    };
    let empty = nodes.iter().all(|w| *w == 0);
    // SAFETY: the node mask holds words*64 bits, as we tell the kernel.
    let r = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            mode,
            if empty {
                std::ptr::null()
            } else {
                nodes.as_ptr()
            },
            if empty { 0 } else { words * 64 + 1 },
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("linux.memoryPolicy: set_mempolicy");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse() {
        assert_eq!(parse_list("0-3,5", 1).unwrap(), vec![0b101111]);
        assert_eq!(parse_list("64", 2).unwrap(), vec![0, 1]);
        assert!(parse_list("3-1", 1).is_err());
        assert!(parse_list("x", 1).is_err());
        assert!(parse_list("64", 1).is_err());
    }
}
