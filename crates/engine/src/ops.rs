//! The container verbs after create/start: state, list, inspect, stop, kill, rm, wait,
//! pause, logs, top, stats, rename (exec is in `exec.rs`).

use std::fs;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::Engine;
use crate::error::{Error, Result, io_err};
use crate::lifecycle::Transition;
use crate::logs::{LogEntry, LogOptions, log_path};
use crate::record::{Record, State, Status};
use crate::store::valid_name;
use crate::util::{ZERO_TIME, parse_signal, pid_alive, rfc3339};

/// A container as `ps` and `inspect` see it.
#[derive(Clone, Debug)]
pub struct ContainerInfo {
    /// What it is.
    pub record: Record,
    /// Its state, checked against the processes.
    pub state: State,
}

/// One sample of a container's resource usage.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// CPU time used, nanoseconds.
    pub cpu_ns: u64,
    /// Memory used (without the inactive page cache), bytes.
    pub mem_usage: u64,
    /// Memory limit (the host's memory when unlimited), bytes.
    pub mem_limit: u64,
    /// Bytes read from block devices.
    pub blk_read: u64,
    /// Bytes written to block devices.
    pub blk_write: u64,
    /// Processes.
    pub pids: u64,
    /// Bytes received by the container's network interfaces (loopback excluded).
    pub net_rx: u64,
    /// Bytes sent by the container's network interfaces (loopback excluded).
    pub net_tx: u64,
}

impl Engine {
    /// The ID of the container named `key` (full ID, name, or unique ID prefix).
    pub fn lookup(&self, key: &str) -> Result<String> {
        self.containers.lookup(key)
    }

    /// The container's record.
    pub fn record(&self, id: &str) -> Result<Record> {
        self.containers.record(id)
    }

    /// The container's state, checked: a container recorded as running whose monitor is gone
    /// is running only while its init lives; otherwise it is recorded as exited (255, as the
    /// real status was lost with the monitor).
    pub fn state(&self, id: &str) -> Result<State> {
        let s = self.containers.state(id)?;
        if s.creator_pid != 0 && !pid_alive(s.creator_pid, s.creator_start) {
            return self.creation_interrupted(id);
        }
        if !s.status.is_running() || pid_alive(s.monitor_pid, s.monitor_start) {
            return Ok(s);
        }
        if s.status != Status::Restarting && pid_alive(s.pid, s.pid_start) {
            return Ok(s);
        }
        let _lock = self.containers.lock(id)?;
        let mut s = self.containers.state(id)?;
        if !s.status.is_running()
            || pid_alive(s.monitor_pid, s.monitor_start)
            || (s.status != Status::Restarting && pid_alive(s.pid, s.pid_start))
        {
            return Ok(s);
        }
        s.apply(Transition::MonitorLost)?;
        s.exit_code = 255;
        s.error = "the container's monitor died; its exit status is unknown".into();
        s.pid = 0;
        s.finished_at = rfc3339(SystemTime::now());
        self.containers.save_state(id, &s)?;
        let _ = self.runtime.delete(id);
        Ok(s)
    }

    /// A container whose creating process died before it finished: `dead`, for `rm` to
    /// remove what had been made.
    fn creation_interrupted(&self, id: &str) -> Result<State> {
        let _lock = self.containers.lock(id)?;
        let mut s = self.containers.state(id)?;
        if s.creator_pid != 0 && !pid_alive(s.creator_pid, s.creator_start) {
            s.apply(Transition::CreatorDied)?;
            s.creator_pid = 0;
            s.creator_start = 0;
            s.error = "its creation was interrupted (the creating process died); \
                       remove it with `berth rm`"
                .into();
            self.containers.save_state(id, &s)?;
        }
        Ok(s)
    }

    /// Record and checked state of one container.
    pub fn info(&self, id: &str) -> Result<ContainerInfo> {
        Ok(ContainerInfo {
            record: self.containers.record(id)?,
            state: self.state(id)?,
        })
    }

    /// All containers, newest first.
    pub fn list(&self) -> Result<Vec<ContainerInfo>> {
        let mut out = Vec::new();
        for id in self.containers.ids()? {
            match self.info(&id) {
                Ok(i) => out.push(i),
                Err(Error::NoSuchContainer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        Ok(out)
    }

    /// `inspect` output, in Docker's shape.
    pub fn inspect(&self, id: &str) -> Result<Value> {
        let ContainerInfo {
            record: r,
            state: s,
        } = self.info(id)?;
        let dir = self.containers.dir(id);
        let time = |t: &str| {
            if t.is_empty() {
                ZERO_TIME.to_string()
            } else {
                t.to_string()
            }
        };
        let mut state = json!({
            "Status": s.status.as_str(),
            "Running": matches!(s.status, Status::Running | Status::Paused),
            "Paused": s.status == Status::Paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": time(&s.started_at),
            "FinishedAt": time(&s.finished_at),
        });
        if let Some(h) = &s.health {
            state["Health"] = serde_json::to_value(h).unwrap_or(Value::Null);
        }
        let hc = serde_json::to_value(&r.host_config).unwrap_or(Value::Null);
        Ok(json!({
            "Id": r.id,
            "Created": r.created,
            "Path": r.path,
            "Args": r.args,
            "State": state,
            "Image": r.image,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": log_path(&dir, id),
            "Name": format!("/{}", r.name),
            "RestartCount": s.restart_count,
            "Driver": "overlay",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "HostConfig": hc,
            "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": dir.join("rootfs")}},
            "Mounts": r.mounts,
            "Config": r.config,
            "NetworkSettings": self.network_settings(&r),
        }))
    }

    fn wait_inactive(&self, id: &str, timeout: Option<Duration>) -> Result<bool> {
        let until = timeout.map(|t| Instant::now() + t);
        loop {
            match self.state(id) {
                Ok(s) if s.status.is_running() => {}
                Ok(_) | Err(Error::NoSuchContainer(_)) => return Ok(true),
                Err(e) => return Err(e),
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a created or exited container with its monitor, not attached (`start`).
    /// Does nothing if it already runs. When a client waits to attach to it
    /// ([`Engine::attach_wait`]: `docker run` attaches before it starts), the container starts
    /// once that client is attached, so that it sees all of the output.
    pub fn start(&self, id: &str) -> Result<()> {
        if self.state(id)?.status.is_running() {
            return Ok(());
        }
        self.prepare_start(id)?;
        let waiting = self.attach_waiting(id);
        let mut starting = self.start_monitor(id, waiting)?;
        if waiting {
            starting.wait_listening()?;
        }
        starting.wait_started().map(drop)
    }

    /// Resets what a new start must not inherit (the manual-stop flag, the last error);
    /// call before [`Engine::start_monitor`].
    pub fn prepare_start(&self, id: &str) -> Result<()> {
        let s = self.state(id)?;
        if s.creator_pid != 0 || s.status == Status::Dead {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: s.status.as_str().into(),
                what: if s.creator_pid != 0 {
                    "it is still being created".into()
                } else {
                    "a dead container cannot be started: remove it with `berth rm`".into()
                },
            });
        }
        if s.status.is_running() {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: s.status.as_str().into(),
                what: "it is already running".into(),
            });
        }
        self.containers.update_state(id, |s| {
            s.manual_stop = false;
            s.manual_restart = false;
            s.error.clear();
        })
    }

    /// Stops a container: `signal` (default its stop signal, else SIGTERM), then SIGKILL after
    /// `timeout` seconds (default the container's `--stop-timeout`, else 10; negative waits
    /// forever).
    pub fn stop(&self, id: &str, signal: Option<&str>, timeout: Option<i64>) -> Result<()> {
        let given = match signal {
            Some(s) => Some(parse_signal(s).ok_or_else(|| {
                crate::error::invalid("--signal", format!("invalid signal {s:?}"))
            })?),
            None => None,
        };
        let r = self.containers.record(id)?;
        self.containers.update_state(id, |s| s.manual_stop = true)?;
        let s = self.state(id)?;
        if !s.status.is_running() {
            return Ok(());
        }
        if s.status == Status::Paused {
            let _ = self.unpause(id);
        }
        let sig = given
            .or_else(|| r.config.stop_signal.as_deref().and_then(parse_signal))
            .unwrap_or(libc::SIGTERM);
        let t = timeout.or(r.config.stop_timeout).unwrap_or(10);
        let _ = self.runtime.kill(id, sig, false);
        self.container_event(&r, "kill", &[("signal", sig.to_string())]);
        let wait = (t >= 0).then(|| Duration::from_secs(t as u64));
        if self.wait_inactive(id, wait)? {
            self.container_event(&r, "stop", &[]);
            return Ok(());
        }
        let _ = self.runtime.kill(id, libc::SIGKILL, false);
        self.container_event(&r, "kill", &[("signal", libc::SIGKILL.to_string())]);
        if self.wait_inactive(id, Some(Duration::from_secs(30)))? {
            self.container_event(&r, "stop", &[]);
            return Ok(());
        }
        Err(Error::Other(format!(
            "container {id} did not stop after SIGKILL"
        )))
    }

    /// Stops the container if it runs, then starts it (`restart`). An `AutoRemove` (`--rm`)
    /// container is kept through it, as Docker keeps it; the old monitor is let finish before
    /// the new one starts.
    pub fn restart(&self, id: &str, signal: Option<&str>, timeout: Option<i64>) -> Result<()> {
        let before = self.containers.update_state(id, |s| {
            s.manual_restart = true;
            s.clone()
        })?;
        let res = self.stop(id, signal, timeout).and_then(|()| {
            let until = Instant::now() + Duration::from_secs(10);
            while pid_alive(before.monitor_pid, before.monitor_start) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            self.start(id)
        });
        // The old monitor is done with it (a new one reads it only when its run ends).
        let _ = self
            .containers
            .update_state(id, |s| s.manual_restart = false);
        res?;
        self.container_event(&self.containers.record(id)?, "restart", &[]);
        Ok(())
    }

    /// Sends a signal to the container's init. As Docker's, the container counts as stopped
    /// by its user from then on: its restart policy does not start it again after this exit
    /// (nor after a later one the signal did not cause).
    pub fn kill(&self, id: &str, sig: &str) -> Result<()> {
        let n = parse_signal(sig)
            .ok_or_else(|| crate::error::invalid("--signal", format!("invalid signal {sig:?}")))?;
        let s = self.state(id)?;
        if !matches!(s.status, Status::Running | Status::Paused) {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: s.status.as_str().into(),
                what: "cannot kill a container that is not running".into(),
            });
        }
        self.containers.update_state(id, |s| s.manual_stop = true)?;
        self.runtime.kill(id, n, false)?;
        if let Ok(r) = self.containers.record(id) {
            self.container_event(&r, "kill", &[("signal", n.to_string())]);
        }
        Ok(())
    }

    /// Removes a container (`rm`; `force` kills a running one; `volumes` removes its
    /// anonymous volumes): runtime state, snapshot mount, snapshot, directory.
    pub fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let s = self.state(id)?;
        if s.status.is_running() {
            if !force {
                return Err(Error::WrongState {
                    id: id.to_string(),
                    status: s.status.as_str().into(),
                    what: "cannot remove a running container: stop it first or use rm -f".into(),
                });
            }
            self.containers.update_state(id, |s| s.manual_stop = true)?;
            if s.status == Status::Paused {
                let _ = self.unpause(id);
            }
            let _ = self.runtime.kill(id, libc::SIGKILL, false);
            if let Ok(r) = self.containers.record(id) {
                self.container_event(&r, "kill", &[("signal", libc::SIGKILL.to_string())]);
            }
            if !self.wait_inactive(id, Some(Duration::from_secs(30)))? {
                return Err(Error::Other(format!(
                    "container {id} did not die after SIGKILL"
                )));
            }
        }
        // Let the monitor finish (it may be removing the container itself, for --rm).
        let until = Instant::now() + Duration::from_secs(10);
        let s = match self.containers.state(id) {
            Ok(s) => s,
            Err(Error::NoSuchContainer(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        while pid_alive(s.monitor_pid, s.monitor_start) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        if pid_alive(s.monitor_pid, s.monitor_start) {
            // SAFETY: kill has no memory arguments; the pid was checked with its start time.
            unsafe { libc::kill(s.monitor_pid, libc::SIGKILL) };
        }
        self.remove_stopped(id, volumes)
    }

    /// Removes a container that does not run.
    pub(crate) fn remove_stopped(&self, id: &str, volumes: bool) -> Result<()> {
        let _all = self.containers.lock_all()?;
        let record = match self.containers.record(id) {
            Ok(r) => r,
            Err(Error::NoSuchContainer(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.remove_made(&record, volumes)
    }

    /// Undoes everything made for a container, in the reverse order of `create`, each step
    /// tolerating what was never made (a creation interrupted at any point): runtime state,
    /// network, rootfs mount, snapshot, anonymous volumes (with `volumes`), then the
    /// directory. The caller holds [`store::Store::lock_all`].
    pub(crate) fn remove_made(&self, record: &Record, volumes: bool) -> Result<()> {
        let id = &record.id;
        let dir = self.containers.dir(id);
        // The runtime's delete (its state, the cgroup) runs while the rootfs is unmounted and
        // its snapshot removed: they do not touch each other, unless the bundle has hooks
        // (poststop hooks may read the rootfs), then one after the other.
        let hooks = fs::read(dir.join("bundle/config.json"))
            .map(|c| c.windows(8).any(|w| w == b"\"hooks\""))
            .unwrap_or(true);
        let mut deleting = None;
        if hooks {
            self.runtime.delete(id)?;
        } else {
            deleting = self.runtime.spawn_delete(id)?;
        }
        self.release_network(id)?;
        // The rootfs, and the /dev/shm tmpfs of an `--ipc shareable` container.
        for m in [dir.join("rootfs"), dir.join("shm")] {
            for _ in 0..10 {
                if !crate::util::is_mountpoint(&m) {
                    break;
                }
                crate::util::umount(&m).map_err(io_err("unmount", &m))?;
            }
        }
        let snap = berth_image::Snapshotter::new(&self.images, berth_image::SnapshotMode::detect());
        match snap.remove(id) {
            Ok(()) | Err(berth_image::Error::SnapshotNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // Before the container's directory goes: a failed delete leaves it for `rm` again.
        if let Some(d) = deleting {
            d.wait()?;
        }
        if volumes {
            self.remove_anonymous_volumes(record)?;
        }
        // Rename first so a half-removed container never shows up in listings.
        let gone = self.root.join("containers").join(format!(".rm-{id}"));
        fs::rename(&dir, &gone).map_err(io_err("rename", &dir))?;
        self.container_event(record, "destroy", &[]);
        fs::remove_dir_all(&gone).map_err(io_err("remove", &gone))
    }

    /// Waits until the container is not running and returns its exit code.
    pub fn wait(&self, id: &str) -> Result<i32> {
        let mut last = 0;
        let mut pause = Duration::ZERO;
        loop {
            match self.state(id) {
                Ok(s) if s.status.is_running() => last = s.exit_code,
                Ok(s) => return Ok(s.exit_code),
                Err(Error::NoSuchContainer(_)) => return Ok(last),
                Err(e) => return Err(e),
            }
            pause = backoff(pause);
        }
    }

    /// Waits until the container's directory is gone (after `--rm`), at most `timeout`.
    pub fn wait_removed(&self, id: &str, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut pause = Duration::ZERO;
        // Until its directory is gone, also the renamed one being deleted.
        let removing = self.root.join("containers").join(format!(".rm-{id}"));
        while self.containers.dir(id).exists() || removing.exists() {
            if Instant::now() >= until {
                return false;
            }
            pause = backoff(pause);
        }
        true
    }

    /// Freezes the container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let s = self.state(id)?;
        if s.status != Status::Running {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: s.status.as_str().into(),
                what: "only a running container can be paused".into(),
            });
        }
        self.runtime.run("pause", &[id])?;
        self.containers
            .update_state(id, |s| s.apply(Transition::Paused))??;
        self.container_event(&self.containers.record(id)?, "pause", &[]);
        Ok(())
    }

    /// Thaws the container.
    pub fn unpause(&self, id: &str) -> Result<()> {
        let s = self.state(id)?;
        if s.status != Status::Paused {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: s.status.as_str().into(),
                what: "the container is not paused".into(),
            });
        }
        self.runtime.run("resume", &[id])?;
        self.containers
            .update_state(id, |s| s.apply(Transition::Unpaused))??;
        self.container_event(&self.containers.record(id)?, "unpause", &[]);
        Ok(())
    }

    /// Reads the container's logs, calling `out` per entry (`-f` follows while it runs).
    pub fn logs(
        &self,
        id: &str,
        opts: &LogOptions,
        out: &mut dyn FnMut(&LogEntry) -> std::io::Result<()>,
    ) -> Result<()> {
        let p = log_path(&self.containers.dir(id), id);
        if !p.exists() {
            return Ok(());
        }
        let running = || self.state(id).is_ok_and(|s| s.status.is_running());
        crate::logs::read(&p, opts, &running, out).map_err(io_err("read", p))
    }

    /// The processes of the container, as `ps` prints them (`ps_args` default `-ef`).
    pub fn top(&self, id: &str, ps_args: &[String]) -> Result<String> {
        let s = self.state(id)?;
        if !matches!(s.status, Status::Running | Status::Paused) {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: s.status.as_str().into(),
                what: "top needs a running container".into(),
            });
        }
        let mut args = vec![id.to_string()];
        args.extend(ps_args.iter().cloned());
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.runtime.run("ps", &a)
    }

    /// One sample of the container's resource usage (a digest of
    /// [`Engine::container_stats`]).
    pub fn stats(&self, id: &str) -> Result<Stats> {
        let s = self.container_stats(id, None)?;
        let (net_rx, net_tx) = s
            .networks
            .iter()
            .flat_map(|m| m.values())
            .fold((0, 0), |(r, t), i| (r + i.rx_bytes, t + i.tx_bytes));
        let mut st = Stats {
            cpu_ns: s.cpu_stats.cpu_usage.total_usage,
            mem_usage: s.memory_used(),
            mem_limit: s.memory_stats.limit,
            pids: s.pids_stats.current,
            net_rx,
            net_tx,
            ..Default::default()
        };
        for e in s.blkio_stats.io_service_bytes_recursive.iter().flatten() {
            match e.op.as_str() {
                "read" => st.blk_read += e.value,
                "write" => st.blk_write += e.value,
                _ => {}
            }
        }
        Ok(st)
    }

    /// Renames a container.
    pub fn rename(&self, id: &str, new: &str) -> Result<()> {
        let new = new.strip_prefix('/').unwrap_or(new);
        if !valid_name(new) {
            return Err(crate::error::invalid(
                "rename",
                format!("invalid container name {new:?}"),
            ));
        }
        let _all = self.containers.lock_all()?;
        if let Some(other) = self.containers.by_name(new)? {
            return Err(Error::NameInUse {
                name: new.to_string(),
                id: other,
            });
        }
        let mut r = self.containers.record(id)?;
        let old = std::mem::replace(&mut r.name, new.to_string());
        self.containers.save_record(&r)?;
        self.networks.rename(id, new)?;
        self.container_event(&r, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// The host path of the container's mounted root filesystem (mounted if it is not).
    pub fn rootfs(&self, id: &str) -> Result<std::path::PathBuf> {
        self.mount_rootfs(id)?;
        Ok(self.containers.dir(id).join("rootfs"))
    }
}

/// Sleeps for the next pause of a poll: 1 ms, doubling up to 50 ms (quick answers for what
/// ends quickly, little load for what takes long); returns the pause slept.
fn backoff(last: Duration) -> Duration {
    let next = (last * 2).clamp(Duration::from_millis(1), Duration::from_millis(50));
    std::thread::sleep(next);
    next
}
