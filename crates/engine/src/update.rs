//! `update`: a container's resources and restart policy changed in place (the Engine API's
//! `POST /containers/{id}/update`): checked as at create, written to the record, and applied to
//! a running container's cgroup through `berth-runtime update`.

use crate::Engine;
use crate::create::check_memory;
use crate::error::{Result, invalid};
use crate::record::{RestartPolicy, Status};

/// What `update` changes; `None` keeps the current value. Sizes in bytes, as the API's.
#[derive(Clone, Debug, Default)]
pub struct UpdateConfig {
    /// `--memory` (0 removes the limit).
    pub memory: Option<i64>,
    /// `--memory-swap` (memory plus swap; -1 unlimited).
    pub memory_swap: Option<i64>,
    /// `--memory-reservation`.
    pub memory_reservation: Option<i64>,
    /// `--cpus` in units of 1e-9 CPUs (0 removes the limit).
    pub nano_cpus: Option<i64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<i64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit` (0 or -1 removes the limit).
    pub pids_limit: Option<i64>,
    /// `--restart`.
    pub restart_policy: Option<RestartPolicy>,
}

impl Engine {
    /// Changes the container's resources and restart policy. A running (or paused)
    /// container's cgroup changes at once; a stopped one gets them at its next start.
    pub fn update(&self, id: &str, u: &UpdateConfig) -> Result<()> {
        let _l = self.containers.lock(id)?;
        let mut r = self.containers.record(id)?;
        let hc = &mut r.host_config;
        if let Some(m) = u.memory {
            hc.memory = m;
        }
        if let Some(s) = u.memory_swap {
            hc.memory_swap = s;
        } else if u.memory.is_some() && hc.memory_swap > 0 && hc.memory > hc.memory_swap {
            return Err(invalid(
                "--memory",
                "Memory limit should be smaller than already set memoryswap limit, update the \
                 memoryswap at the same time",
            ));
        }
        if let Some(v) = u.memory_reservation {
            hc.memory_reservation = v;
        }
        check_memory(hc.memory, hc.memory_swap, hc.memory_reservation)?;
        if let Some(n) = u.nano_cpus {
            if n < 0 {
                return Err(invalid("--cpus", "must not be negative"));
            }
            hc.nano_cpus = n;
        }
        if let Some(s) = u.cpu_shares {
            if s < 0 {
                return Err(invalid("--cpu-shares", "must not be negative"));
            }
            hc.cpu_shares = s;
        }
        if let Some(c) = &u.cpuset_cpus {
            hc.cpuset_cpus = c.clone();
        }
        if let Some(p) = u.pids_limit {
            hc.pids_limit = Some(p);
        }
        if let Some(p) = &u.restart_policy {
            if hc.auto_remove && p.name != crate::record::RestartPolicyName::No {
                return Err(invalid(
                    "--restart",
                    "Restart policy cannot be updated because AutoRemove is enabled for the \
                     container",
                ));
            }
            hc.restart_policy = p.clone();
        }
        let status = self.state(id)?.status;
        if matches!(status, Status::Running | Status::Paused) {
            let mut args: Vec<String> = Vec::new();
            let mut arg = |k: &str, v: String| {
                args.push(format!("--{k}"));
                args.push(v);
            };
            if u.memory.is_some() || u.memory_swap.is_some() {
                let hc = &r.host_config;
                // No limit is the cgroup's maximum; the swap default is twice the memory, as
                // at create.
                let mem = if hc.memory > 0 { hc.memory } else { -1 };
                let swap = match (hc.memory, hc.memory_swap) {
                    (m, _) if m <= 0 => -1,
                    (m, 0) => m * 2,
                    (_, s) => s,
                };
                if crate::spec::swap_accounting() {
                    arg("memory-swap", swap.to_string());
                }
                arg("memory", mem.to_string());
            }
            if u.memory_reservation.is_some() {
                let v = r.host_config.memory_reservation;
                arg(
                    "memory-reservation",
                    if v > 0 { v.to_string() } else { "-1".into() },
                );
            }
            if u.nano_cpus.is_some() {
                let n = r.host_config.nano_cpus;
                arg("cpu-period", "100000".into());
                arg(
                    "cpu-quota",
                    if n > 0 {
                        (n * 100_000 / 1_000_000_000).to_string()
                    } else {
                        "-1".into()
                    },
                );
            }
            if let Some(s) = u.cpu_shares.filter(|s| *s > 0) {
                arg("cpu-shares", s.to_string());
            }
            if let Some(c) = &u.cpuset_cpus {
                arg("cpuset-cpus", c.clone());
            }
            if let Some(p) = u.pids_limit {
                arg(
                    "pids-limit",
                    if p > 0 { p.to_string() } else { "-1".into() },
                );
            }
            if !args.is_empty() {
                args.push(id.to_string());
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                self.runtime.run("update", &refs)?;
            }
        }
        self.containers.save_record(&r)?;
        self.container_event(&r, "update", &[]);
        Ok(())
    }
}
