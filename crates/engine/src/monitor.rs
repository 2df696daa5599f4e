//! The monitor: one process per running container, like Podman's conmon.
//!
//! `berth run`/`start` spawn it (the hidden `berth __monitor` command) and wait on a pipe for
//! `started PID` or `error CODE MESSAGE`. The monitor leaves the caller's session, becomes a
//! child subreaper (so the container's init, forked by `berth-runtime create`, becomes its
//! child when the runtime exits), and then for each run of the container:
//!
//! ```text
//! berth-runtime create --pid-file --log (--console-socket)   stdio = pipes we hold (or a pty)
//! berth-runtime start
//!   pumps: stdout/stderr -> json-file log + attached clients     health checks: runtime exec
//! waitpid(init) -> exit code, OOM kill count from the cgroup, berth-runtime delete
//! restart policy? back-off, again : --rm? remove : exit
//! ```
//!
//! Its state goes to state.json under the container's lock; readers never trust it alone
//! (see `Engine::state`): a SIGKILLed monitor is noticed by its pid and start time.

use std::fs::{self, File};
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::Engine;
use crate::attach::{
    ATTACH, CLOSE_STDIN, EXEC, EXIT, RESIZE, STDERR, STDIN, STDOUT, parse_size, read_frame,
    write_frame,
};
use crate::error::{Error, Result, io_err};
use crate::lifecycle::Transition;
use crate::logs::{LogWriter, log_path};
use crate::record::{Health, HealthLog, HealthStatus, Record, Status};
use crate::runtime::runtime_error;
use crate::util::{parse_bytes, pid_start_time, rfc3339};

/// What the monitor shares between its threads.
struct Shared {
    clients: Mutex<Vec<UnixStream>>,
    stdin: Mutex<Option<File>>,
    /// What clients sent to stdin before the container first started (and whether they
    /// closed it): `run -i` attaches first. None once the first run has its stdin.
    early_stdin: Mutex<Option<(Vec<u8>, bool)>>,
    master: Mutex<Option<File>>,
    /// The last size a client asked for, applied to each new terminal.
    size: Mutex<Option<libc::winsize>>,
    log: Mutex<LogWriter>,
    first_client: Mutex<Option<mpsc::Sender<()>>>,
    /// Exec processes being served (see `exec.rs`).
    execs: AtomicUsize,
}

impl Shared {
    fn broadcast(&self, kind: u8, data: &[u8]) {
        let mut c = self.clients.lock().unwrap();
        c.retain_mut(|s| write_frame(s, kind, data).is_ok());
    }

    /// Writes a client's input to the container's stdin (kept for the first start if the
    /// container has not started yet).
    fn write_stdin(&self, data: &[u8]) {
        let mut stdin = self.stdin.lock().unwrap();
        match stdin.as_mut() {
            Some(f) => {
                let _ = f.write_all(data);
            }
            None => {
                if let Some((buf, false)) = self.early_stdin.lock().unwrap().as_mut() {
                    buf.extend_from_slice(data);
                }
            }
        }
    }

    /// A client closed the container's stdin.
    fn close_stdin(&self) {
        let mut stdin = self.stdin.lock().unwrap();
        stdin.take();
        if let Some((_, closed)) = self.early_stdin.lock().unwrap().as_mut() {
            *closed = true;
        }
    }

    /// Gives the running container its stdin: first what clients sent before it started.
    fn open_stdin(&self, mut f: File) {
        let mut stdin = self.stdin.lock().unwrap();
        if let Some((buf, closed)) = self.early_stdin.lock().unwrap().take() {
            let _ = f.write_all(&buf);
            if closed {
                return;
            }
        }
        *stdin = Some(f);
    }

    /// Records the size a client asked for and applies it to the terminal, if any.
    fn resize(&self, ws: libc::winsize) {
        *self.size.lock().unwrap() = Some(ws);
        if let Some(m) = self.master.lock().unwrap().as_ref() {
            // SAFETY: TIOCSWINSZ reads a winsize.
            unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        }
    }
}

/// Appends a line to the container's `monitor.log` (the monitor's own messages: nothing of
/// the engine writes to the stdio of the process it runs in).
pub(crate) fn log(dir: &Path, msg: &str) {
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("monitor.log"))
    {
        let _ = writeln!(f, "{} {msg}", rfc3339(SystemTime::now()));
    }
}

/// The pipe back to the process that started the monitor.
struct Ready(Option<File>);

impl Ready {
    fn send(&mut self, line: &str) {
        if let Some(f) = &mut self.0 {
            let _ = f.write_all(format!("{}\n", line.replace('\n', " ")).as_bytes());
        }
    }
    fn close(&mut self) {
        self.0 = None;
    }
}

/// How one run of the container ended.
struct Exit {
    code: i32,
    oom: bool,
}

pub(crate) fn pipe() -> Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io_err("pipe", "")(std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors are new and ours.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

/// Reads the last error of `berth-runtime --log-format json`.
pub(crate) fn runtime_log_error(path: &Path) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    s.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error")
        .and_then(|v| v["msg"].as_str().map(str::to_string))
        .unwrap_or_else(|| "failed (no message)".into())
}

/// Whether the container's memory cgroup saw an OOM kill.
fn oom_killed(id: &str) -> bool {
    let count = |path: &str, key: &str| -> u64 {
        fs::read_to_string(path)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix(key).map(|v| v.trim().parse().unwrap_or(0)))
            })
            .unwrap_or(0)
    };
    count(
        &format!("/sys/fs/cgroup/memory/berth/{id}/memory.oom_control"),
        "oom_kill ",
    ) > 0
        || count(
            &format!("/sys/fs/cgroup/berth/{id}/memory.events"),
            "oom_kill ",
        ) > 0
}

fn pump(
    shared: Arc<Shared>,
    mut from: File,
    stream: &'static str,
    kind: u8,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let data = &buf[..n];
            shared.broadcast(kind, data);
            pending.extend_from_slice(data);
            let cut = match pending.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if pending.len() >= 16 * 1024 => pending.len(),
                None => 0,
            };
            if cut > 0 {
                let _ = shared.log.lock().unwrap().write(stream, &pending[..cut]);
                pending.drain(..cut);
            }
        }
        if !pending.is_empty() {
            let _ = shared.log.lock().unwrap().write(stream, &pending);
        }
    })
}

/// Serves the attach socket: each connection in a thread of its own, by its first frame.
fn accept_loop(
    engine: Engine,
    id: String,
    dirf: RawFd,
    shared: Arc<Shared>,
    listener: UnixListener,
) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (engine, id, shared) = (engine.clone(), id.clone(), shared.clone());
            std::thread::spawn(move || serve(&engine, &id, dirf, &shared, conn));
        }
    });
}

/// One connection: an attach to the container's stdio, an exec, or a resize.
fn serve(engine: &Engine, id: &str, dirf: RawFd, shared: &Shared, conn: UnixStream) {
    let Ok(mut reader) = conn.try_clone() else {
        return;
    };
    match read_frame(&mut reader) {
        Ok(Some((ATTACH, data))) => {
            // The size first: a container started by this attach (`run`) sees it at once.
            if let Some(ws) = parse_size(&data) {
                shared.resize(ws);
            }
            shared.clients.lock().unwrap().push(conn);
            if let Some(tx) = shared.first_client.lock().unwrap().take() {
                let _ = tx.send(());
            }
            while let Ok(Some((kind, data))) = read_frame(&mut reader) {
                match kind {
                    STDIN => shared.write_stdin(&data),
                    CLOSE_STDIN => shared.close_stdin(),
                    RESIZE => {
                        if let Some(ws) = parse_size(&data) {
                            shared.resize(ws);
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Some((EXEC, data))) => engine.serve_exec(id, dirf, conn, &data, &shared.execs),
        Ok(Some((RESIZE, data))) => {
            if let Some(ws) = parse_size(&data) {
                shared.resize(ws);
            }
        }
        _ => {}
    }
}

pub(crate) fn wait_init(pid: i32, start: u64) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status int.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            if libc::WIFSIGNALED(status) {
                return 128 + libc::WTERMSIG(status);
            }
            continue;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // Not our child (should not happen as a subreaper): poll until it is gone.
        while pid_start_time(pid) == Some(start) {
            std::thread::sleep(Duration::from_millis(100));
        }
        return 255;
    }
}

impl Engine {
    /// The monitor's main function (the hidden `berth __monitor ID` command). `ready_fd` is
    /// the pipe to report `listening`, `started PID` or `error CODE MSG` on; with
    /// `wait_attach`, the container starts only once a client is attached (or after 30 s).
    /// Returns the monitor's exit status.
    pub fn run_monitor(&self, id: &str, wait_attach: bool, ready_fd: Option<RawFd>) -> i32 {
        // One malloc arena: a monitor's few threads move little memory, and each extra
        // arena is pages of its own (a monitor per container: its memory is counted 200-fold).
        // SAFETY: mallopt has no memory arguments.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        // SAFETY: ready_fd was given to us by our parent, for us alone.
        let mut ready = Ready(ready_fd.map(|fd| unsafe { File::from_raw_fd(fd) }));
        match self.monitor(id, wait_attach, &mut ready) {
            Ok(()) => 0,
            Err(e) => {
                log(
                    &self.containers.dir(id),
                    &format!("berth monitor {id}: {e}"),
                );
                ready.send(&format!("error 125 {e}"));
                1
            }
        }
    }

    fn monitor(&self, id: &str, wait_attach: bool, ready: &mut Ready) -> Result<()> {
        // SAFETY: setsid and prctl have no memory arguments.
        unsafe {
            libc::setsid();
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
        let record = self.containers.record(id)?;
        let _span = tracing::info_span!("monitor", container = &id[..12.min(id.len())]).entered();
        tracing::info!(pid = std::process::id(), "monitor started");
        let dir = self.containers.dir(id);
        let sock = dir.join("attach.sock");
        let _ = fs::remove_file(&sock);
        let dirf = File::open(&dir).map_err(io_err("open", &dir))?;
        let short = PathBuf::from(format!("/proc/self/fd/{}/attach.sock", dirf.as_raw_fd()));
        let listener = UnixListener::bind(&short).map_err(io_err("listen", &sock))?;

        let lc = &record.host_config.log_config.config;
        let max_size = lc.get("max-size").and_then(|s| parse_bytes(s)).unwrap_or(0) as u64;
        let max_file = lc.get("max-file").and_then(|s| s.parse().ok()).unwrap_or(1);
        let log = LogWriter::open(log_path(&dir, id), max_size, max_file)
            .map_err(io_err("open", log_path(&dir, id)))?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            clients: Mutex::new(Vec::new()),
            stdin: Mutex::new(None),
            early_stdin: Mutex::new(Some((Vec::new(), false))),
            master: Mutex::new(None),
            size: Mutex::new(None),
            log: Mutex::new(log),
            first_client: Mutex::new(Some(tx)),
            execs: AtomicUsize::new(0),
        });
        let me = std::process::id() as i32;
        self.containers.update_state(id, |s| {
            s.monitor_pid = me;
            s.monitor_start = pid_start_time(me).unwrap_or(0);
        })?;
        accept_loop(
            self.clone(),
            id.to_string(),
            dirf.as_raw_fd(),
            shared.clone(),
            listener,
        );
        if wait_attach {
            ready.send("listening");
            let _ = rx.recv_timeout(Duration::from_secs(30));
        }

        // A container whose owner process is named (`io.berth.owner.pid`: a build's step)
        // goes when that process does, even killed with SIGKILL: killed, then removed.
        let owner_gone = Arc::new(AtomicBool::new(false));
        if let Some(pid) = record
            .config
            .labels
            .get(crate::OWNER_PID_LABEL)
            .and_then(|p| p.parse::<i32>().ok())
        {
            let (rt, cid, gone) = (self.runtime.clone(), id.to_string(), owner_gone.clone());
            std::thread::spawn(move || {
                wait_for_exit(pid);
                tracing::info!(owner = pid, "the container's owner is gone: killing it");
                gone.store(true, Ordering::SeqCst);
                let _ = rt.kill(&cid, libc::SIGKILL, true);
            });
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            let began = Instant::now();
            let run = self.run_once(&record, &dir, &dirf, &shared, ready);
            self.unmount_volumes(&record);
            match run {
                Err(e) => {
                    let code = match &e {
                        Error::Command { code, .. } => *code as i32,
                        _ => 128,
                    };
                    let msg = e.to_string();
                    tracing::warn!(error = %msg, "container did not start");
                    self.containers.update_state(id, |s| {
                        s.error = msg.clone();
                        s.exit_code = code;
                        s.pid = 0;
                        if s.status != Status::Created {
                            s.finished_at = rfc3339(SystemTime::now());
                        }
                        s.apply(Transition::StartFailed)
                    })??;
                    ready.send(&format!("error {code} {msg}"));
                    shared.broadcast(EXIT, &code.to_be_bytes());
                    break;
                }
                Ok(exit) => {
                    tracing::info!(code = exit.code, oom = exit.oom, "container exited");
                    // The record as it is now: the container may have been renamed.
                    let now = self.containers.record(id);
                    let r = now.as_ref().unwrap_or(&record);
                    if exit.oom {
                        self.container_event(r, "oom", &[]);
                    }
                    self.container_event(r, "die", &[("exitCode", exit.code.to_string())]);
                    let s = self.containers.update_state(id, |s| {
                        s.apply(Transition::Exited)?;
                        s.exit_code = exit.code;
                        s.oom_killed = exit.oom;
                        s.pid = 0;
                        s.finished_at = rfc3339(SystemTime::now());
                        Ok::<_, Error>(s.clone())
                    })??;
                    shared.broadcast(EXIT, &exit.code.to_be_bytes());
                    let p = &record.host_config.restart_policy;
                    let restart = !s.checkpointing
                        && p.restarts_after(exit.code, s.manual_stop, s.restart_count);
                    if !restart {
                        break;
                    }
                    if began.elapsed() > Duration::from_secs(10) {
                        backoff = Duration::from_millis(100);
                    }
                    tracing::info!(policy = %p.name, backoff_ms = backoff.as_millis() as u64, "restarting");
                    self.containers
                        .update_state(id, |s| s.apply(Transition::Restarting))??;
                    let until = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    let mut stopped = false;
                    while Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(50));
                        if self.containers.state(id).is_ok_and(|s| s.manual_stop) {
                            stopped = true;
                            break;
                        }
                    }
                    if stopped {
                        self.containers
                            .update_state(id, |s| s.apply(Transition::StoppedWhileRestarting))??;
                        break;
                    }
                    self.containers.update_state(id, |s| s.restart_count += 1)?;
                }
            }
        }
        ready.close();
        let _ = fs::remove_file(&sock);
        // Exec processes die with the container; let their sessions record how they ended.
        let until = Instant::now() + Duration::from_secs(5);
        while shared.execs.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        // As Docker: a --rm container takes its anonymous volumes with it; not when it was
        // stopped by `restart`, which starts it again.
        // Nor after a checkpoint, which keeps it to be restored.
        let restarting = self
            .containers
            .state(id)
            .is_ok_and(|s| s.manual_restart || s.checkpointing || s.checkpointed);
        if (record.host_config.auto_remove && !restarting) || owner_gone.load(Ordering::SeqCst) {
            self.remove_stopped(id, true)?;
        }
        Ok(())
    }

    fn run_once(
        &self,
        r: &Record,
        dir: &Path,
        dirf: &File,
        shared: &Arc<Shared>,
        ready: &mut Ready,
    ) -> Result<Exit> {
        let id = &r.id;
        self.mount_rootfs(id)?;
        self.mount_volumes(r)?;
        // `run --detach` starts the process at once: the size a client attached with is
        // the terminal's from its first instruction (set again on the master below).
        let size = *shared.size.lock().unwrap();
        self.write_bundle(r, size)?;
        let _ = self.runtime.delete(id);
        let pidfile = dir.join("init.pid");
        let rtlog = dir.join("runtime.log");
        let _ = fs::remove_file(&pidfile);
        let _ = fs::remove_file(&rtlog);
        // `start --checkpoint`: this start restores, once.
        let restore = self
            .containers
            .update_state(id, |s| s.restore_from.take())?;
        let verb = if restore.is_some() { "restore" } else { "run" };
        let mut cmd = self.runtime.command();
        cmd.arg("--log").arg(&rtlog).arg("--log-format").arg("json");
        match &restore {
            Some(from) => {
                let work = dir.join("restore");
                let _ = fs::remove_dir_all(&work);
                cmd.arg("restore")
                    .arg("--detach")
                    .arg("--image-path")
                    .arg(&from.images)
                    .arg("--work-path")
                    .arg(&work);
                if from.tcp_established {
                    cmd.arg("--tcp-established");
                }
            }
            // Created and started in one runtime process (its init is ours, as a subreaper,
            // either way): one exec less than `create` then `start`.
            None => {
                cmd.arg("run").arg("--detach");
            }
        }
        cmd.arg("--bundle")
            .arg(dir.join("bundle"))
            .arg("--pid-file")
            .arg(&pidfile);
        let tty = r.config.tty;
        let mut outputs: Vec<(File, &'static str, u8)> = Vec::new();
        // The container's stdin, given to clients once it has started.
        let mut stdin = None;
        let console = if tty {
            let name = "console.sock";
            let _ = fs::remove_file(dir.join(name));
            let l = UnixListener::bind(format!("/proc/self/fd/{}/{name}", dirf.as_raw_fd()))
                .map_err(io_err("listen", dir.join(name)))?;
            cmd.arg("--console-socket").arg(format!(
                "/proc/{}/fd/{}/{name}",
                std::process::id(),
                dirf.as_raw_fd()
            ));
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            Some(l)
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            if r.config.open_stdin {
                let (in_r, in_w) = pipe()?;
                cmd.stdin(in_r);
                stdin = Some(in_w);
            } else {
                cmd.stdin(Stdio::null());
            }
            cmd.stdout(out_w).stderr(err_w);
            outputs.push((out_r, "stdout", STDOUT));
            outputs.push((err_r, "stderr", STDERR));
            None
        };
        cmd.arg(id);
        let began = Instant::now();
        let status = cmd
            .status()
            .map_err(|e| Error::Other(format!("run {}: {e}", self.runtime.bin.display())))?;
        drop(cmd);
        tracing::debug!(
            runtime = %self.runtime.bin.display(),
            verb,
            args = "--detach",
            status = status.code(),
            elapsed_ms = began.elapsed().as_secs_f64() * 1e3,
            "berth-runtime"
        );
        if !status.success() {
            let _ = fs::remove_file(dir.join("console.sock"));
            let _ = self.runtime.delete(id);
            return Err(runtime_error(verb, &runtime_log_error(&rtlog)));
        }
        if let Some(l) = console {
            l.set_nonblocking(true).ok();
            let deadline = Instant::now() + Duration::from_secs(10);
            let conn = loop {
                match l.accept() {
                    Ok((c, _)) => break c,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => return Err(io_err("accept console", dir.join("console.sock"))(e)),
                }
            };
            conn.set_nonblocking(false).ok();
            let master = berth_sys::fdpass::recv_fd(&conn)
                .map_err(io_err("receive console", dir.join("console.sock")))?;
            let _ = fs::remove_file(dir.join("console.sock"));
            let master = File::from(master);
            if let Some(ws) = *shared.size.lock().unwrap() {
                // SAFETY: TIOCSWINSZ reads a winsize.
                unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
            }
            let dup = master.try_clone().map_err(io_err("dup", "console"))?;
            if r.config.open_stdin {
                stdin = Some(master.try_clone().map_err(io_err("dup", "console"))?);
            }
            *shared.master.lock().unwrap() = Some(master);
            outputs.push((dup, "stdout", STDOUT));
        }
        let pid: i32 = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::Other(format!("no pid in {}", pidfile.display())))?;
        let pid_start = pid_start_time(pid).unwrap_or(0);
        // The loopback is up: in a network namespace the runtime made (berth-runtime does it
        // as runc and crun do), and in one berth made (the network's setup).
        let pumps: Vec<_> = outputs
            .into_iter()
            .map(|(f, stream, kind)| pump(shared.clone(), f, stream, kind))
            .collect();
        if let Some(f) = stdin {
            shared.open_stdin(f);
        }
        self.containers.update_state(id, |s| {
            // A state the machine has no edge from is left as it is (logged): the process
            // runs either way, and the next exit puts the record right.
            if let Err(e) = s.apply(Transition::Started) {
                tracing::warn!(error = %e, "started");
            }
            s.pid = pid;
            s.pid_start = pid_start;
            s.started_at = rfc3339(SystemTime::now());
            s.error.clear();
            s.exit_code = 0;
            s.oom_killed = false;
            s.checkpointed = false;
            if r.config
                .healthcheck
                .as_ref()
                .is_some_and(|h| h.test.first().is_some_and(|t| t != "NONE"))
            {
                s.health = Some(Health {
                    status: HealthStatus::Starting,
                    ..Default::default()
                });
            }
        })?;
        self.container_event(r, "start", &[]);
        ready.send(&format!("started {pid}"));
        // What parsing the command line and building config.json freed goes back to the
        // kernel: otherwise it stays dirty in the heap for the container's whole life.
        // SAFETY: malloc_trim has no memory arguments.
        unsafe { libc::malloc_trim(0) };
        let stop_health = Arc::new(AtomicBool::new(false));
        let health = r
            .config
            .healthcheck
            .clone()
            .filter(|h| h.test.first().is_some_and(|t| t != "NONE"))
            .map(|h| self.health_loop(id.clone(), h, stop_health.clone()));

        let code = wait_init(pid, pid_start);
        stop_health.store(true, Ordering::SeqCst);
        // Give the pumps a bounded time to drain what the container wrote last.
        let (dtx, drx) = mpsc::channel();
        std::thread::spawn(move || {
            for p in pumps {
                let _ = p.join();
            }
            let _ = dtx.send(());
        });
        let _ = drx.recv_timeout(Duration::from_secs(5));
        if let Some(h) = health {
            let _ = h.join();
        }
        shared.stdin.lock().unwrap().take();
        shared.master.lock().unwrap().take();
        let oom = oom_killed(id);
        let _ = self.runtime.delete(id);
        Ok(Exit { code, oom })
    }

    /// Runs the health check every interval through `berth-runtime exec` until `stop`.
    fn health_loop(
        &self,
        id: String,
        h: crate::record::HealthConfig,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let engine = self.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let interval = Duration::from_nanos(h.interval.max(1_000_000));
            let timeout = Duration::from_nanos(h.timeout.max(1_000_000));
            let start_period = Duration::from_nanos(h.start_period);
            let args: Vec<String> = match h.test.first().map(String::as_str) {
                Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), h.test[1..].join(" ")],
                Some("CMD") => h.test[1..].to_vec(),
                _ => return,
            };
            loop {
                let wake = Instant::now() + interval;
                while Instant::now() < wake {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let t0 = SystemTime::now();
                let (code, output) = engine.health_probe(&id, &args, timeout, &stop);
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let entry = HealthLog {
                    start: rfc3339(t0),
                    end: rfc3339(SystemTime::now()),
                    exit_code: code,
                    output,
                };
                let in_start_period = started.elapsed() < start_period;
                let change = engine.containers.update_state(&id, |s| {
                    let hs = s.health.get_or_insert_with(Health::default);
                    let before = hs.status;
                    hs.log.push(entry);
                    if hs.log.len() > 5 {
                        hs.log.remove(0);
                    }
                    if code == 0 {
                        hs.status = HealthStatus::Healthy;
                        hs.failing_streak = 0;
                    } else if !in_start_period || hs.status != HealthStatus::Starting {
                        hs.failing_streak += 1;
                        if hs.failing_streak >= h.retries.max(1) {
                            hs.status = HealthStatus::Unhealthy;
                        }
                    }
                    (hs.status != before).then_some(hs.status)
                });
                // Docker records a change of status as `health_status: STATUS`.
                if let (Ok(Some(status)), Ok(r)) = (change, engine.containers.record(&id)) {
                    engine.container_event(&r, &format!("health_status: {}", status.as_str()), &[]);
                }
            }
        })
    }

    fn health_probe(
        &self,
        id: &str,
        args: &[String],
        timeout: Duration,
        stop: &AtomicBool,
    ) -> (i32, String) {
        let child = self
            .runtime
            .command()
            .arg("exec")
            .arg(id)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return (-1, e.to_string()),
        };
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(st)) => {
                    let mut out = String::new();
                    if let Some(mut o) = child.stdout.take() {
                        let _ = o.read_to_string(&mut out);
                    }
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut out);
                    }
                    out.truncate(4096);
                    return (st.code().unwrap_or(-1), out);
                }
                Ok(None) if Instant::now() < deadline && !stop.load(Ordering::SeqCst) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return (-1, format!("Health check exceeded timeout ({timeout:?})"));
                }
            }
        }
    }
}

/// A monitor process this process spawned: reaped once it exits, after its handle is dropped,
/// so that a long-lived caller (`berth serve`) does not collect a zombie per container that
/// has run. The ones still running are kept in a list that every later drop reaps from: no
/// thread (a short-lived `berth run` would pay for one at every start), and at most the
/// monitors since the last start wait as zombies.
/// A long-lived caller may also call [`reap_monitors`] now and then.
struct MonitorChild(Option<std::process::Child>);

static REAPED: Mutex<Vec<std::process::Child>> = Mutex::new(Vec::new());

/// Reaps the monitors this process spawned that have exited since (see [`MonitorChild`]):
/// what a long-lived front end (`berth serve`) calls now and then.
pub fn reap_monitors() {
    REAPED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
}

impl Drop for MonitorChild {
    fn drop(&mut self) {
        let mut pending = REAPED.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        let Some(mut child) = self.0.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            pending.push(child);
        }
    }
}

/// A started monitor, reporting on its ready pipe.
pub struct Starting {
    ready: std::io::BufReader<File>,
    child: MonitorChild,
}

impl Starting {
    /// The monitor's process ID (a child of this process).
    pub fn monitor_pid(&self) -> i32 {
        self.child.0.as_ref().map_or(0, |c| c.id() as i32)
    }

    fn line(&mut self) -> Result<String> {
        let mut l = String::new();
        self.ready
            .read_line(&mut l)
            .map_err(io_err("read", "monitor pipe"))?;
        if l.is_empty() {
            if let Some(c) = self.child.0.as_mut() {
                let _ = c.try_wait();
            }
            return Err(Error::Other(
                "the container's monitor exited before reporting (see monitor.log in the container's directory)".into(),
            ));
        }
        Ok(l.trim_end().to_string())
    }

    /// Waits until the monitor listens for the attach (`start_monitor(.., true)`).
    pub fn wait_listening(&mut self) -> Result<()> {
        let l = self.line()?;
        if l == "listening" {
            return Ok(());
        }
        Err(parse_error(&l))
    }

    /// Waits until the container runs; returns the pid of its init.
    pub fn wait_started(mut self) -> Result<i32> {
        let l = self.line()?;
        if let Some(p) = l.strip_prefix("started ") {
            return Ok(p.parse().unwrap_or(0));
        }
        Err(parse_error(&l))
    }
}

fn parse_error(l: &str) -> Error {
    let rest = l.strip_prefix("error ").unwrap_or(l);
    let (code, msg) = rest.split_once(' ').unwrap_or(("125", rest));
    match code.parse::<u8>() {
        Ok(c @ (126 | 127)) => Error::Command {
            code: c,
            message: msg.to_string(),
        },
        _ => Error::Other(msg.to_string()),
    }
}

/// A monitor spawned before its container exists, so that its start (exec, loading) overlaps
/// the container's creation; it waits for the container's ID on a pipe. Dropped without
/// [`EarlyMonitor::begin`] (the creation failed), it exits without doing anything.
pub struct EarlyMonitor {
    id: File,
    ready: std::io::BufReader<File>,
    child: MonitorChild,
}

impl EarlyMonitor {
    /// Gives the monitor its container (created, [`Engine::prepare_start`] done), which it
    /// starts now, as [`Engine::start_monitor`]'s does.
    pub fn begin(mut self, id: &str) -> Result<Starting> {
        tracing::debug!(
            container = id,
            "start monitor (spawned early, given its container)"
        );
        writeln!(self.id, "{id}").map_err(io_err("write", "monitor pipe"))?;
        Ok(Starting {
            ready: self.ready,
            child: self.child,
        })
    }
}

impl Engine {
    /// Spawns a monitor for a container about to be created: see [`EarlyMonitor`].
    pub fn spawn_monitor_early(&self, wait_attach: bool) -> Result<EarlyMonitor> {
        let (r, w) = pipe()?;
        let (id_r, id_w) = pipe()?;
        let mut cmd = self.monitor_command(wait_attach);
        cmd.arg("--id-fd")
            .arg("4")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = self.spawn_monitor(cmd, &[w.as_raw_fd(), id_r.as_raw_fd()])?;
        drop(w);
        drop(id_r);
        Ok(EarlyMonitor {
            id: id_w,
            ready: std::io::BufReader::new(r),
            child: MonitorChild(Some(child)),
        })
    }

    /// The monitor of an [`EarlyMonitor`]: reads its container's ID from `id_fd` (nothing: the
    /// creation failed, and it exits 0), sends its stderr to the container's `monitor.log`,
    /// then is [`Engine::run_monitor`].
    pub fn run_monitor_waiting(
        &self,
        id_fd: RawFd,
        wait_attach: bool,
        ready_fd: Option<RawFd>,
    ) -> i32 {
        // SAFETY: id_fd was given to us by our parent, for us alone.
        let mut f = std::io::BufReader::new(unsafe { File::from_raw_fd(id_fd) });
        let mut id = String::new();
        if f.read_line(&mut id).is_err() {
            return 0;
        }
        drop(f);
        let id = id.trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return 0;
        }
        let p = self.containers.dir(id).join("monitor.log");
        if let Ok(log) = fs::OpenOptions::new().create(true).append(true).open(&p) {
            // SAFETY: dup2 onto our own stderr.
            unsafe { libc::dup2(log.as_raw_fd(), 2) };
        }
        self.run_monitor(id, wait_attach, ready_fd)
    }

    /// Spawns a monitor command with `fds` as its descriptors 3, 4, ...
    fn spawn_monitor(&self, mut cmd: Command, fds: &[RawFd]) -> Result<std::process::Child> {
        let fds = fds.to_vec();
        // SAFETY: between fork and exec only async-signal-safe calls (dup2).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                for (i, fd) in fds.iter().enumerate() {
                    if libc::dup2(*fd, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd.spawn()
            .map_err(|e| Error::Other(format!("start monitor {}: {e}", self.monitor_exe.display())))
    }

    /// `berth --root R --runtime RT __monitor --ready-fd 3 [--wait-attach]`, the ID to add.
    fn monitor_command(&self, wait_attach: bool) -> Command {
        let mut cmd = Command::new(&self.monitor_exe);
        if tracing::enabled!(tracing::Level::DEBUG) {
            // The command was run with -D: so is its monitor (into monitor.log).
            cmd.env("BERTH_LOG", "debug");
        }
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--runtime")
            .arg(&self.runtime.bin)
            .arg(crate::MONITOR_COMMAND)
            .arg("--ready-fd")
            .arg("3");
        if wait_attach {
            cmd.arg("--wait-attach");
        }
        cmd
    }

    /// Spawns the container's monitor (`berth __monitor`), which starts the container.
    pub fn start_monitor(&self, id: &str, wait_attach: bool) -> Result<Starting> {
        let dir = self.containers.dir(id);
        let (r, w) = pipe()?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("monitor.log"))
            .map_err(io_err("open", dir.join("monitor.log")))?;
        tracing::debug!(container = id, wait_attach, "start monitor");
        let mut cmd = self.monitor_command(wait_attach);
        cmd.arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = self.spawn_monitor(cmd, &[w.as_raw_fd()])?;
        drop(w);
        Ok(Starting {
            ready: std::io::BufReader::new(r),
            child: MonitorChild(Some(child)),
        })
    }
}

/// Blocks until process `pid` has exited (at once if it is gone already).
fn wait_for_exit(pid: i32) {
    wait_process_exit(pid, None);
}

/// Waits until process `pid` has exited (through a pidfd: no polling), at most `timeout`;
/// `true` if it has (or was gone already). A monitor this process spawned exits once its `--rm`
/// container is removed: `run --rm` waits on it, then finds the container gone at once.
pub fn wait_process_exit(pid: i32, timeout: Option<Duration>) -> bool {
    // SAFETY: pidfd_open has no memory arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return true;
    }
    // SAFETY: the descriptor is new and ours.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let until = timeout.map(|t| Instant::now() + t);
    loop {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = match until {
            Some(u) => u
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32,
            None => -1,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return true;
        }
        if n == 0 {
            return false;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return true;
        }
    }
}
