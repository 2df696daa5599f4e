//! Exec: another process in a running container, run by the container's monitor.
//!
//! As in Docker, an exec is created ([`Engine::exec_create`]: the process's configuration,
//! checked and recorded in `<container>/execs/<exec id>.json`, which is also what
//! [`Engine::exec_inspect`] answers from) and then started ([`Engine::exec_start`], attached
//! to the caller's streams, or [`Engine::exec_start_detached`]). Starting goes through the
//! monitor's attach socket (the EXEC frame, see `attach.rs`): the monitor writes the process's
//! `process.json` from the container's bundle, runs `berth-runtime exec --detach --process`,
//! and, being a child subreaper, becomes the process's parent when the runtime returns. So
//! it reaps the process and records its exit code (and `exec_die`) also for a detached exec,
//! and it holds the process's pipes or terminal master (received over `--console-socket`) and
//! copies them to and from the client's frames; a detached process's output is drained and
//! dropped, as Docker does, and its terminal stays up until it ends.
//!
//! ```text
//! client                      monitor                           berth-runtime exec --detach
//!   EXEC {id, rows, cols} ->    process.json, exec_start event  -> forks, execs, returns
//!                               (tty: master from console.sock)
//!   <- STARTED pid                  waitpid(pid) in a thread
//!   STDIN, CLOSE_STDIN, RESIZE ->   pipe / master
//!   <- STDOUT, STDERR               pumps
//!   <- EXIT code                    record, exec_die event
//! ```

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Engine;
use crate::attach::{
    self, AttachEnd, CLOSE_STDIN, ERROR, EXEC, EXIT, RESIZE, Resizer, STARTED, STDERR, STDIN,
    STDOUT, Session, read_frame, write_frame,
};
use crate::error::{Error, Result, invalid, io_err};
use crate::record::Status;
use crate::runtime::runtime_error;
use crate::util::{pid_alive, pid_start_time, rfc3339, write_atomic};

/// Finished exec records kept per container (the oldest go first).
const KEEP_FINISHED: usize = 64;

/// What `exec` runs (Docker's `ExecConfig`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExecConfig {
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// Give the process a terminal (`-t`).
    pub tty: bool,
    /// Give the process a stdin the client writes to (`-i`); else it reads /dev/null.
    pub stdin: bool,
    /// `USER[:GROUP]` (names or IDs, resolved in the container); default the container's.
    pub user: Option<String>,
    /// `KEY=VALUE` entries over the container's environment.
    pub env: Vec<String>,
    /// The working directory; default the container's.
    pub workdir: Option<String>,
    /// Extended privileges (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE added).
    pub privileged: bool,
    /// Docker's detach keys (default ctrl-p,ctrl-q); they apply to a process with a terminal.
    pub detach_keys: Option<String>,
}

/// The caller's streams for an exec. A missing output stream drops that output; a missing
/// stdin leaves the process's stdin (if `ExecConfig::stdin`) open until the exec ends.
#[derive(Default)]
pub struct ExecIo {
    /// Sent to the process's stdin; EOF closes it. The reading thread ends at EOF, at the
    /// detach keys, or at the first read that returns after the exec ended.
    pub stdin: Option<Box<dyn Read + Send>>,
    /// Gets the process's stdout (all of its output with a terminal).
    pub stdout: Option<Box<dyn Write + Send>>,
    /// Gets the process's stderr.
    pub stderr: Option<Box<dyn Write + Send>>,
    /// The terminal's size (rows, cols) from the first moment (with `tty`).
    pub size: Option<(u16, u16)>,
}

impl std::fmt::Debug for ExecIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecIo")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("size", &self.size)
            .finish()
    }
}

/// The process of an exec, as Docker's exec inspect shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessConfig {
    /// Whether it has a terminal.
    pub tty: bool,
    /// The command.
    pub entrypoint: String,
    /// Its arguments.
    pub arguments: Vec<String>,
    /// Whether it is privileged.
    pub privileged: bool,
    /// The user asked for (empty: the container's).
    pub user: String,
}

/// An exec as Docker's `GET /exec/{id}/json` shows it (serialises with Docker's field names).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    /// The exec's ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// The container's ID.
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// Whether the process runs.
    pub running: bool,
    /// Its exit code once it has ended (None while it runs, or when it was lost with the
    /// container's monitor).
    pub exit_code: Option<i32>,
    /// Its pid on the host (0 before it started).
    pub pid: i32,
    /// Whether it has a stdin.
    pub open_stdin: bool,
    /// Whether its stderr is attached.
    pub open_stderr: bool,
    /// Whether its stdout is attached.
    pub open_stdout: bool,
    /// Always false: berth keeps exec records until the container is removed (the newest
    /// finished ones).
    pub can_remove: bool,
    /// The detach keys asked for.
    pub detach_keys: String,
    /// The process.
    pub process_config: ProcessConfig,
}

/// What the engine keeps of an exec in `<container>/execs/<id>.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ExecRecord {
    id: String,
    container_id: String,
    created: String,
    config: ExecConfig,
    /// Resolved at create: the process's user, environment and working directory.
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
    env: Vec<String>,
    cwd: String,
    /// Set by the monitor.
    started: bool,
    attached: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
    pid_start: u64,
}

/// The EXEC frame's request.
#[derive(Debug, Serialize, Deserialize)]
struct ExecRequest {
    id: String,
    detach: bool,
    rows: Option<u16>,
    cols: Option<u16>,
}

/// The ERROR frame: an [`Error`] across the socket.
#[derive(Debug, Serialize, Deserialize)]
struct ExecFailure {
    kind: String,
    code: u8,
    message: String,
}

impl From<&Error> for ExecFailure {
    fn from(e: &Error) -> Self {
        match e {
            Error::Command { code, message } => Self {
                kind: "command".into(),
                code: *code,
                message: message.clone(),
            },
            Error::Runtime { message, .. } => Self {
                kind: "runtime".into(),
                code: 126,
                message: message.clone(),
            },
            e => Self {
                kind: "other".into(),
                code: 126,
                message: e.to_string(),
            },
        }
    }
}

impl From<ExecFailure> for Error {
    fn from(f: ExecFailure) -> Self {
        match f.kind.as_str() {
            "command" => Error::Command {
                code: f.code,
                message: f.message,
            },
            "runtime" => Error::Runtime {
                verb: "exec".into(),
                message: f.message,
            },
            _ => Error::Other(f.message),
        }
    }
}

fn valid_exec_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn exec_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("execs")
}

fn record_path(container_dir: &Path, exec_id: &str) -> PathBuf {
    exec_dir(container_dir).join(format!("{exec_id}.json"))
}

fn load(path: &Path) -> Result<ExecRecord> {
    let data = fs::read(path).map_err(io_err("read", path))?;
    serde_json::from_slice(&data).map_err(|error| Error::Json {
        what: path.display().to_string(),
        error,
    })
}

fn save(path: &Path, r: &ExecRecord) -> Result<()> {
    let data = serde_json::to_vec_pretty(r).expect("an exec record serialises");
    write_atomic(path, &data)
}

/// A started exec (from [`Engine::exec_start`] or [`Engine::exec`]).
pub struct ExecHandle {
    engine: Engine,
    id: String,
    pid: i32,
    pid_start: u64,
    session: Option<Session>,
}

/// The process of an exec, to signal it from another thread (from [`ExecHandle::process`]).
#[derive(Clone, Copy, Debug)]
pub struct ExecProcess {
    pid: i32,
    start: u64,
}

impl ExecProcess {
    /// Its pid on the host.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends signal `sig` to the process, if it still runs (checked by its start time, so a
    /// reused pid is never signalled).
    pub fn signal(&self, sig: i32) -> Result<()> {
        if !pid_alive(self.pid, self.start) {
            return Ok(());
        }
        // SAFETY: kill has no memory arguments; the pid was checked with its start time.
        if unsafe { libc::kill(self.pid, sig) } != 0 {
            return Err(io_err("signal", format!("exec process {}", self.pid))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for ExecHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecHandle")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .field("attached", &self.session.is_some())
            .finish()
    }
}

impl ExecHandle {
    /// The exec's ID (for [`Engine::exec_inspect`]).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The process's pid on the host.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Resizes the process's terminal.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        match &self.session {
            Some(s) => s.resizer().resize(rows, cols),
            None => Err(Error::Other(format!(
                "exec {} is detached: its terminal cannot be resized",
                self.id
            ))),
        }
    }

    /// A handle that resizes the process's terminal from another thread.
    pub fn resizer(&self) -> Option<Resizer> {
        self.session.as_ref().map(Session::resizer)
    }

    /// A handle that detaches from another thread (none for a detached exec).
    pub fn detacher(&self) -> Option<attach::Detacher> {
        self.session.as_ref().map(Session::detacher)
    }

    /// The process, to signal it.
    pub fn process(&self) -> ExecProcess {
        ExecProcess {
            pid: self.pid,
            start: self.pid_start,
        }
    }

    /// Sends signal `sig` to the process, if it still runs.
    pub fn signal(&self, sig: i32) -> Result<()> {
        self.process().signal(sig)
    }

    /// Stops copying the streams; the process keeps running.
    pub fn detach(&self) {
        if let Some(s) = &self.session {
            s.detach();
        }
    }

    /// Waits until the process exits ([`AttachEnd::Exited`] with its code), or the caller
    /// detaches, or the container's monitor goes away ([`AttachEnd::Lost`]). For a detached
    /// exec, polls its record.
    pub fn wait(self) -> Result<AttachEnd> {
        if let Some(s) = self.session {
            return Ok(s.wait());
        }
        let mut pause = Duration::from_millis(1);
        loop {
            let i = self.engine.exec_inspect(&self.id)?;
            if !i.running {
                return Ok(i.exit_code.map_or(AttachEnd::Lost, AttachEnd::Exited));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// A mutex for the check-and-set of an exec's `started` in the monitor.
static STARTING: Mutex<()> = Mutex::new(());

impl Engine {
    fn running(&self, id: &str, what: &str) -> Result<()> {
        let s = self.state(id)?;
        if s.status != Status::Running {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: s.status.as_str().into(),
                what: what.into(),
            });
        }
        Ok(())
    }

    /// Records an exec in a running container (Docker's `POST /containers/{id}/exec`): checks
    /// the command, resolves the user in the container's files and the environment, and
    /// returns the exec's ID, for [`Engine::exec_start`].
    pub fn exec_create(&self, id: &str, c: &ExecConfig) -> Result<String> {
        self.running(id, "exec needs a running container")?;
        if c.cmd.is_empty() {
            return Err(invalid("exec", "no command given"));
        }
        if let Some(k) = &c.detach_keys {
            attach::parse_detach_keys(k)?;
        }
        let r = self.containers.record(id)?;
        let dir = self.containers.dir(id);
        let user = crate::user::resolve(
            &dir.join("rootfs"),
            c.user.as_deref().unwrap_or(&r.config.user),
        )?;
        let cwd = c
            .workdir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| Some(r.config.working_dir.clone()).filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into());
        let mut env = r.config.env.clone();
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!(
                "HOME={}",
                if user.uid == 0 { "/root" } else { &user.home }
            ));
        }
        for e in &c.env {
            let Some((k, _)) = e.split_once('=') else {
                return Err(invalid(
                    "--env",
                    format!(
                        "{e:?} is not KEY=VALUE (a bare KEY is resolved by the caller, from its \
                         own environment)"
                    ),
                ));
            };
            env.retain(|x| x.split('=').next() != Some(k));
            env.push(e.clone());
        }
        let exec_id = crate::util::random_hex(32);
        let rec = ExecRecord {
            id: exec_id.clone(),
            container_id: id.to_string(),
            created: rfc3339(SystemTime::now()),
            config: c.clone(),
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            env,
            cwd,
            ..Default::default()
        };
        let edir = exec_dir(&dir);
        crate::util::private_dir(&edir)?;
        prune(&edir);
        save(&record_path(&dir, &exec_id), &rec)?;
        // Docker's exec events name the command in the action and the exec in `execID`.
        self.container_event(
            &r,
            &format!("exec_create: {}", c.cmd.join(" ")),
            &[("execID", exec_id.clone())],
        );
        Ok(exec_id)
    }

    /// The container and record of an exec.
    fn find_exec(&self, exec_id: &str) -> Result<(String, ExecRecord)> {
        if valid_exec_id(exec_id) {
            for cid in self.containers.ids()? {
                let p = record_path(&self.containers.dir(&cid), exec_id);
                if p.exists() {
                    return Ok((cid, load(&p)?));
                }
            }
        }
        Err(Error::NoSuchExec(exec_id.to_string()))
    }

    /// An exec as Docker's exec inspect shows it. A process recorded as running whose
    /// container's monitor is gone runs only while its pid lives (its exit code is then lost).
    pub fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect> {
        let (cid, r) = self.find_exec(exec_id)?;
        let running = r.running
            && (pid_alive(r.pid, r.pid_start)
                || self
                    .containers
                    .state(&cid)
                    .is_ok_and(|s| pid_alive(s.monitor_pid, s.monitor_start)));
        let (entrypoint, arguments) = match r.config.cmd.split_first() {
            Some((e, a)) => (e.clone(), a.to_vec()),
            None => (String::new(), Vec::new()),
        };
        Ok(ExecInspect {
            id: r.id,
            container_id: r.container_id,
            running,
            exit_code: if running { None } else { r.exit_code },
            pid: r.pid,
            open_stdin: r.config.stdin,
            open_stderr: r.attached,
            open_stdout: r.attached,
            can_remove: false,
            detach_keys: r.config.detach_keys.clone().unwrap_or_default(),
            process_config: ProcessConfig {
                tty: r.config.tty,
                entrypoint,
                arguments,
                privileged: r.config.privileged,
                user: r.config.user.clone().unwrap_or_default(),
            },
        })
    }

    /// Asks the container's monitor to start the exec; returns the connection and the
    /// process's pid and start time.
    fn request_exec(
        &self,
        cid: &str,
        exec_id: &str,
        detach: bool,
        size: Option<(u16, u16)>,
    ) -> Result<(UnixStream, i32, u64)> {
        let path = self.containers.dir(cid).join("attach.sock");
        let mut sock = attach::connect(&path).map_err(io_err("connect", &path))?;
        let req = ExecRequest {
            id: exec_id.to_string(),
            detach,
            rows: size.map(|s| s.0),
            cols: size.map(|s| s.1),
        };
        let data = serde_json::to_vec(&req).expect("a request serialises");
        write_frame(&mut sock, EXEC, &data).map_err(io_err("write", &path))?;
        let wait = Duration::from_secs(60);
        sock.set_read_timeout(Some(wait))
            .map_err(io_err("configure", &path))?;
        let reply = read_frame(&mut sock).map_err(|e| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                Error::Other(format!(
                    "the monitor of container {cid} did not start exec {exec_id} within {wait:?}"
                ))
            } else {
                io_err("read", &path)(e)
            }
        })?;
        sock.set_read_timeout(None)
            .map_err(io_err("configure", &path))?;
        match reply {
            Some((STARTED, d)) if d.len() == 12 => {
                let pid = i32::from_be_bytes(d[..4].try_into().expect("4 bytes"));
                let start = u64::from_be_bytes(d[4..].try_into().expect("8 bytes"));
                Ok((sock, pid, start))
            }
            Some((ERROR, d)) => Err(serde_json::from_slice::<ExecFailure>(&d)
                .map(Error::from)
                .unwrap_or_else(|_| Error::Other(String::from_utf8_lossy(&d).into_owned()))),
            Some(_) => Err(Error::Other(format!(
                "the monitor of container {cid} does not run execs (it is older than this \
                 berth): restart the container"
            ))),
            None => Err(Error::Other(format!(
                "the monitor of container {cid} went away before starting exec {exec_id} (see \
                 monitor.log in the container's directory)"
            ))),
        }
    }

    fn startable(&self, exec_id: &str) -> Result<(String, ExecRecord)> {
        let (cid, r) = self.find_exec(exec_id)?;
        if r.started {
            return Err(Error::Other(format!(
                "exec {exec_id} has already been started: create another one"
            )));
        }
        self.running(&cid, "exec needs a running container")?;
        Ok((cid, r))
    }

    /// Starts an exec attached to the caller's streams (Docker's `POST /exec/{id}/start`):
    /// returns once the process runs (or with its failure: 126/127 as [`Error::Command`]
    /// when it cannot be run); its output is copied to `io` in threads of their own until
    /// it ends.
    pub fn exec_start(&self, exec_id: &str, io: ExecIo) -> Result<ExecHandle> {
        let (cid, r) = self.startable(exec_id)?;
        let keys = attach::detach_keys(r.config.detach_keys.as_deref(), r.config.tty)?;
        let (sock, pid, pid_start) = self.request_exec(&cid, exec_id, false, io.size)?;
        let stdin = if r.config.stdin { io.stdin } else { None };
        let session = Session::start(sock, stdin, io.stdout, io.stderr, keys)?;
        Ok(ExecHandle {
            engine: self.clone(),
            id: exec_id.to_string(),
            pid,
            pid_start,
            session: Some(session),
        })
    }

    /// Starts an exec detached (`exec -d`): its output is dropped, a terminal is kept up for
    /// it (of `size`), and the monitor records its exit code.
    pub fn exec_start_detached(
        &self,
        exec_id: &str,
        size: Option<(u16, u16)>,
    ) -> Result<ExecHandle> {
        let (cid, _) = self.startable(exec_id)?;
        let (_, pid, pid_start) = self.request_exec(&cid, exec_id, true, size)?;
        Ok(ExecHandle {
            engine: self.clone(),
            id: exec_id.to_string(),
            pid,
            pid_start,
            session: None,
        })
    }

    /// [`Engine::exec_create`] and [`Engine::exec_start`] in one.
    pub fn exec(&self, id: &str, c: &ExecConfig, io: ExecIo) -> Result<ExecHandle> {
        let exec_id = self.exec_create(id, c)?;
        self.exec_start(&exec_id, io)
    }

    /// The monitor's side of an EXEC connection (in the connection's thread): runs the
    /// process and serves its stdio until it ends. Errors go to the client as ERROR frames.
    pub(crate) fn serve_exec(
        &self,
        cid: &str,
        dirf: RawFd,
        conn: UnixStream,
        request: &[u8],
        active: &AtomicUsize,
    ) {
        active.fetch_add(1, Ordering::SeqCst);
        let mut reply = match conn.try_clone() {
            Ok(c) => c,
            Err(_) => {
                active.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        };
        if let Err(e) = self.run_exec(cid, dirf, conn, request) {
            crate::monitor::log(&self.containers.dir(cid), &format!("exec: {e}"));
            let f = ExecFailure::from(&e);
            let _ = write_frame(
                &mut reply,
                ERROR,
                &serde_json::to_vec(&f).expect("serialises"),
            );
        }
        active.fetch_sub(1, Ordering::SeqCst);
    }

    fn run_exec(&self, cid: &str, dirf: RawFd, conn: UnixStream, request: &[u8]) -> Result<()> {
        let req: ExecRequest = serde_json::from_slice(request).map_err(|error| Error::Json {
            what: "exec request".into(),
            error,
        })?;
        if !valid_exec_id(&req.id) {
            return Err(Error::NoSuchExec(req.id));
        }
        let dir = self.containers.dir(cid);
        let path = record_path(&dir, &req.id);
        if !path.exists() {
            return Err(Error::NoSuchExec(req.id));
        }
        let mut rec = {
            let _g = STARTING.lock().unwrap_or_else(|e| e.into_inner());
            let mut rec = load(&path)?;
            if rec.started {
                return Err(Error::Other(format!(
                    "exec {} has already been started: create another one",
                    req.id
                )));
            }
            rec.started = true;
            rec.attached = !req.detach;
            save(&path, &rec)?;
            rec
        };
        let container = self.containers.record(cid)?;
        let line = rec.config.cmd.join(" ");
        let exec_attr = [("execID", rec.id.clone())];
        let size = req.rows.zip(req.cols);
        let started = self.spawn_exec(cid, &dir, dirf, &rec, size);
        let (pid, pid_start, outputs, stdin, master) = match started {
            Ok(s) => s,
            Err(e) => {
                let code = match &e {
                    Error::Command { code, .. } => *code as i32,
                    _ => 126,
                };
                rec.exit_code = Some(code);
                let _ = save(&path, &rec);
                self.container_event(&container, &format!("exec_start: {line}"), &exec_attr);
                self.container_event(
                    &container,
                    "exec_die",
                    &[("execID", rec.id.clone()), ("exitCode", code.to_string())],
                );
                return Err(e);
            }
        };
        rec.running = true;
        rec.pid = pid;
        rec.pid_start = pid_start;
        save(&path, &rec)?;
        self.container_event(&container, &format!("exec_start: {line}"), &exec_attr);

        let mut hello = pid.to_be_bytes().to_vec();
        hello.extend_from_slice(&pid_start.to_be_bytes());
        let mut w = conn.try_clone().map_err(io_err("dup", "exec connection"))?;
        let client = write_frame(&mut w, STARTED, &hello).is_ok() && !req.detach;
        let out: Arc<Mutex<Option<UnixStream>>> = Arc::new(Mutex::new(client.then_some(w)));
        let stdin = Arc::new(Mutex::new(stdin));
        if client {
            let (stdin, master) = (stdin.clone(), master.clone());
            let mut conn = conn;
            std::thread::spawn(move || {
                while let Ok(Some((kind, data))) = read_frame(&mut conn) {
                    match kind {
                        STDIN => {
                            if let Some(f) = stdin.lock().unwrap().as_mut() {
                                let _ = f.write_all(&data);
                            }
                        }
                        CLOSE_STDIN => {
                            stdin.lock().unwrap().take();
                        }
                        RESIZE => {
                            if let (Some(ws), Some(m)) = (attach::parse_size(&data), &master) {
                                // SAFETY: TIOCSWINSZ reads a winsize.
                                unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                            }
                        }
                        _ => {}
                    }
                }
                // The client went away: nobody writes the process's stdin any more.
                stdin.lock().unwrap().take();
            });
        } else {
            drop(conn);
            stdin.lock().unwrap().take();
        }
        let pumps: Vec<_> = outputs
            .into_iter()
            .map(|(mut f, kind)| {
                let out = out.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        let n = match f.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let mut o = out.lock().unwrap();
                        if let Some(s) = o.as_mut()
                            && write_frame(s, kind, &buf[..n]).is_err()
                        {
                            *o = None;
                        }
                    }
                })
            })
            .collect();
        let code = crate::monitor::wait_init(pid, pid_start);
        // Give the pumps a bounded time for what the process wrote last (a child that keeps
        // its stdout or terminal open does not hold the exit back).
        let until = Instant::now() + Duration::from_secs(5);
        while pumps.iter().any(|p| !p.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        stdin.lock().unwrap().take();
        rec.running = false;
        rec.exit_code = Some(code);
        save(&path, &rec)?;
        self.container_event(
            &container,
            "exec_die",
            &[("execID", rec.id.clone()), ("exitCode", code.to_string())],
        );
        let mut o = out.lock().unwrap();
        if let Some(s) = o.as_mut() {
            let _ = write_frame(s, EXIT, &code.to_be_bytes());
        }
        *o = None;
        Ok(())
    }

    /// Runs `berth-runtime exec --detach` for the record; returns the process's pid and start
    /// time, its outputs (pipes, or the terminal's master), its stdin and its master.
    #[allow(clippy::type_complexity)]
    fn spawn_exec(
        &self,
        cid: &str,
        dir: &Path,
        dirf: RawFd,
        rec: &ExecRecord,
        size: Option<(u16, u16)>,
    ) -> Result<(i32, u64, Vec<(File, u8)>, Option<File>, Option<Arc<File>>)> {
        let edir = exec_dir(dir);
        let process = edir.join(format!("{}.process.json", rec.id));
        let pidfile = edir.join(format!("{}.pid", rec.id));
        let rtlog = edir.join(format!("{}.log", rec.id));
        let sock_name = format!("exec-{}.sock", &rec.id[..16]);
        let cleanup = || {
            for p in [&process, &pidfile, &rtlog] {
                let _ = fs::remove_file(p);
            }
            let _ = fs::remove_file(dir.join(&sock_name));
        };
        let p = self.exec_process(dir, rec, size)?;
        write_atomic(&process, p.to_string().as_bytes())?;
        let mut cmd = self.runtime.command();
        cmd.arg("--log")
            .arg(&rtlog)
            .arg("--log-format")
            .arg("json")
            .arg("exec")
            .arg("--detach")
            .arg("--process")
            .arg(&process)
            .arg("--pid-file")
            .arg(&pidfile);
        let mut outputs = Vec::new();
        let mut stdin = None;
        let console = if rec.config.tty {
            // The socket's own path can be too long for an address: reached through our
            // descriptor of the container's directory.
            let _ = fs::remove_file(dir.join(&sock_name));
            let l = UnixListener::bind(format!("/proc/self/fd/{dirf}/{sock_name}"))
                .map_err(io_err("listen", dir.join(&sock_name)))?;
            cmd.arg("--console-socket").arg(format!(
                "/proc/{}/fd/{dirf}/{sock_name}",
                std::process::id()
            ));
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            Some(l)
        } else {
            let (out_r, out_w) = crate::monitor::pipe()?;
            let (err_r, err_w) = crate::monitor::pipe()?;
            if rec.config.stdin {
                let (in_r, in_w) = crate::monitor::pipe()?;
                cmd.stdin(in_r);
                stdin = Some(in_w);
            } else {
                cmd.stdin(Stdio::null());
            }
            cmd.stdout(out_w).stderr(err_w);
            outputs.push((out_r, STDOUT));
            outputs.push((err_r, STDERR));
            None
        };
        cmd.arg(cid);
        let status = cmd.status();
        drop(cmd);
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                cleanup();
                return Err(Error::Other(format!(
                    "run {}: {e}",
                    self.runtime.bin.display()
                )));
            }
        };
        if !status.success() {
            let msg = crate::monitor::runtime_log_error(&rtlog);
            cleanup();
            return Err(runtime_error("exec", &msg));
        }
        let pid: Option<i32> = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let master = match console {
            Some(l) => {
                let got = accept_master(&l, &dir.join(&sock_name));
                match got {
                    Ok(m) => Some(m),
                    Err(e) => {
                        cleanup();
                        if let Some(pid) = pid {
                            // SAFETY: kill has no memory arguments; the process is our child.
                            unsafe { libc::kill(pid, libc::SIGKILL) };
                            crate::monitor::wait_init(pid, 0);
                        }
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        cleanup();
        let pid = pid.ok_or_else(|| {
            Error::Other(format!(
                "berth-runtime exec wrote no pid to {}",
                pidfile.display()
            ))
        })?;
        let pid_start = pid_start_time(pid).unwrap_or(0);
        let master = match master {
            Some(m) => {
                outputs.push((m.try_clone().map_err(io_err("dup", "terminal"))?, STDOUT));
                if rec.config.stdin {
                    stdin = Some(m.try_clone().map_err(io_err("dup", "terminal"))?);
                }
                Some(Arc::new(m))
            }
            None => None,
        };
        Ok((pid, pid_start, outputs, stdin, master))
    }

    /// The exec's process.json: the container's process (from its bundle: capabilities,
    /// rlimits, no_new_privs, ...) with the exec's command, user, environment, directory and
    /// terminal.
    fn exec_process(
        &self,
        dir: &Path,
        rec: &ExecRecord,
        size: Option<(u16, u16)>,
    ) -> Result<Value> {
        let path = dir.join("bundle").join("config.json");
        let data = fs::read(&path).map_err(io_err("read", &path))?;
        let spec: Value = serde_json::from_slice(&data).map_err(|error| Error::Json {
            what: path.display().to_string(),
            error,
        })?;
        let mut p = spec
            .get("process")
            .cloned()
            .filter(Value::is_object)
            .ok_or_else(|| Error::Other(format!("{}: no process", path.display())))?;
        p["args"] = json!(rec.config.cmd);
        p["env"] = json!(rec.env);
        p["cwd"] = json!(rec.cwd);
        p["terminal"] = json!(rec.config.tty);
        if !p["user"].is_object() {
            p["user"] = json!({});
        }
        p["user"]["uid"] = json!(rec.uid);
        p["user"]["gid"] = json!(rec.gid);
        let user = p["user"].as_object_mut().expect("an object");
        if rec.additional_gids.is_empty() {
            user.remove("additionalGids");
        } else {
            user.insert("additionalGids".into(), json!(rec.additional_gids));
        }
        let obj = p.as_object_mut().expect("an object");
        match size {
            Some((rows, cols)) if rec.config.tty => {
                obj.insert("consoleSize".into(), json!({"height": rows, "width": cols}));
            }
            _ => {
                obj.remove("consoleSize");
            }
        }
        if rec.config.privileged {
            let caps = obj
                .entry("capabilities")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .ok_or_else(|| Error::Other(format!("{}: capabilities", path.display())))?;
            for set in ["bounding", "effective", "permitted"] {
                let list = caps.entry(set).or_insert_with(|| json!([]));
                if let Some(l) = list.as_array_mut() {
                    for c in ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE"] {
                        if !l.iter().any(|x| x == c) {
                            l.push(json!(c));
                        }
                    }
                }
            }
        }
        Ok(p)
    }
}

/// Takes the terminal's master from the console socket `berth-runtime exec` connected to.
fn accept_master(l: &UnixListener, path: &Path) -> Result<File> {
    l.set_nonblocking(true).map_err(io_err("configure", path))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let conn = loop {
        match l.accept() {
            Ok((c, _)) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(io_err("accept console", path)(e)),
        }
    };
    conn.set_nonblocking(false)
        .map_err(io_err("configure", path))?;
    let m = berth_sys::fdpass::recv_fd(&conn).map_err(io_err("receive console", path))?;
    Ok(File::from(m))
}

/// Removes the oldest finished exec records beyond [`KEEP_FINISHED`].
fn prune(edir: &Path) {
    let Ok(rd) = fs::read_dir(edir) else { return };
    let mut finished: Vec<(String, PathBuf)> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let r = load(&p).ok()?;
            (r.exit_code.is_some() && !r.running).then_some((r.created, p))
        })
        .collect();
    if finished.len() < KEEP_FINISHED {
        return;
    }
    finished.sort();
    for (_, p) in &finished[..finished.len() + 1 - KEEP_FINISHED] {
        let _ = fs::remove_file(p);
    }
}
