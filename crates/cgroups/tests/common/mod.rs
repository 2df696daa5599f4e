//! Shared helpers of the integration tests: a guard that always cleans up.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_cgroups::{FreezerState, Layout, Manager};

/// Every mount point of a cgroup hierarchy on this host.
pub fn mount_points() -> Vec<PathBuf> {
    match Layout::detect().expect("detect") {
        Layout::V2 { root } => vec![root],
        Layout::V1 {
            hierarchies,
            unified,
        } => hierarchies
            .into_iter()
            .map(|h| h.mount_point)
            .chain(unified)
            .collect(),
    }
}

/// A test cgroup under `/berth-test/NAME-PID`, destroyed (children killed) on drop.
pub struct Guard {
    /// The manager.
    pub m: Box<dyn Manager>,
    /// The cgroups path.
    pub path: String,
    children: Vec<Child>,
}

impl Guard {
    /// Open and create the cgroup.
    pub fn new(name: &str) -> Guard {
        let path = format!("/berth-test/{name}-{}", std::process::id());
        let m = berth_cgroups::manager(Some(&path), "unused").expect("manager");
        let g = Guard {
            m,
            path,
            children: Vec::new(),
        };
        g.m.create().expect("create");
        g
    }

    /// The cgroup's directory in every hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        mount_points()
            .into_iter()
            .map(|mp| mp.join(self.path.trim_start_matches('/')))
            .collect()
    }

    /// Spawn `cmd` stopped before exec... (simply: spawn, then move it in). Returns its pid.
    pub fn spawn(&mut self, cmd: &mut Command) -> i32 {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        self.children.push(child);
        pid
    }

    /// Spawn `sh -c SCRIPT` already inside the cgroup (the shell moves itself in first, then
    /// waits for `go` on fd 0 — done by reading a fifo-free marker: we add the shell's pid
    /// before it execs the script proper).
    pub fn spawn_inside(&mut self, script: &str) -> i32 {
        // The child waits until it sees itself in the cgroup, so everything the script does
        // happens under the limits.
        let wrapped = format!(
            "while ! grep -qx $$ {procs}; do sleep 0.01; done; {script}",
            procs = self.procs_file().display()
        );
        let pid = self.spawn(Command::new("sh").arg("-c").arg(wrapped));
        self.m.add_task(pid).expect("add_task");
        pid
    }

    fn procs_file(&self) -> PathBuf {
        // any hierarchy will do: the memory one exists on every host we test on
        let mp = mount_points()
            .into_iter()
            .find(|p| p.join("cgroup.procs").exists())
            .expect("a hierarchy");
        mp.join(self.path.trim_start_matches('/'))
            .join("cgroup.procs")
    }

    /// Wait for child `pid` to exit, at most `limit`; returns its status.
    pub fn wait(&mut self, pid: i32, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        let child = self
            .children
            .iter_mut()
            .find(|c| c.id() as i32 == pid)
            .expect("our child");
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill every process of the cgroup and reap our children.
    pub fn kill_all(&mut self) {
        let _ = self.m.freeze(FreezerState::Thawed);
        for c in &mut self.children {
            let _ = c.kill();
        }
        for _ in 0..100 {
            let pids = self.m.pids().unwrap_or_default();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SAFETY: plain kill(2) of a pid we created in our own test cgroup.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill_all();
        let _ = self.m.destroy();
        for mp in mount_points() {
            let _ = std::fs::remove_dir(mp.join("berth-test"));
        }
    }
}

/// The state letter of `/proc/PID/stat`.
pub fn proc_state(pid: i32) -> char {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = s.rsplit_once(')').expect("comm").1;
    after.trim_start().chars().next().expect("state")
}
