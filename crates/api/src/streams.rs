//! The streams: container attach (a hijacked connection: stdcopy frames without a TTY, raw
//! bytes with one), logs, resize, exec create/start/resize/inspect, and events.
//!
//! A hijacked connection (the client sent `Upgrade: tcp`; we answer `101 UPGRADED`) is
//! bridged to the engine's blocking streams through a unix socketpair: a task copies between
//! the upgraded connection and our end of the pair, while the engine's threads read the
//! container's input from, and write its output (framed, without a TTY) to, the other end.
//! The client's half-close of its write side reaches the engine as EOF, which closes the
//! process's stdin; the end of the process shuts the pair down, which ends the connection.
//! A client that goes away detaches the session (the process keeps running).
//!
//! Without `Upgrade`, the output is a plain streamed 200 body (and the input, with `stdin`,
//! the request body).
//!
//! Logs and events that follow end when the client goes away: a watcher sees the response
//! body dropped and cancels the engine's reader.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::{Method, StatusCode};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::State;
use crate::http::{self, ApiError, Body, Request, Result, blocking, json, json_response};

/// The output of a process with a terminal: its bytes as they are.
const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
/// The output of a process without a terminal: stdcopy frames.
const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// `/exec/{id}/...`.
pub(crate) async fn exec_route(state: &Arc<State>, req: Request) -> Result {
    let segs: Vec<String> = req.segments.clone();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        (&Method::POST, ["exec", id, "start"]) => exec_start(state, req, id).await,
        (&Method::POST, ["exec", id, "resize"]) => exec_resize(state, req, id).await,
        (&Method::GET, ["exec", id, "json"]) => {
            let engine = state.engine.clone();
            let id = id.to_string();
            let i = blocking(move || Ok(engine.exec_inspect(&id)?)).await?;
            json(&i)
        }
        _ => Err(crate::router::no_route(&req)),
    }
}

// ---------------------------------------------------------------------------------------
// Connections: hijacked or a plain body.

/// One output stream over a shared connection: stdcopy frames of stream `frame` (1 stdout,
/// 2 stderr), or the bytes as they are (`None`, a process with a terminal).
struct StreamOut<W> {
    w: Arc<Mutex<W>>,
    frame: Option<u8>,
}

impl<W: Write> Write for StreamOut<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        match self.frame {
            Some(kind) => w.write_all(&stdcopy_frame(kind, buf))?,
            None => w.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// A stdcopy frame: `[stream, 0, 0, 0, len u32 BE]` then the data.
fn stdcopy_frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + data.len());
    b.extend_from_slice(&[kind, 0, 0, 0]);
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    b
}

/// A response body written from blocking code; writes fail once the client has gone.
struct BodyOut(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);

impl Write for BodyOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An output stream of a session, if attached.
type Output = Option<Box<dyn Write + Send>>;

/// The output stream writers for a session: stdout and stderr as asked, framed without a
/// terminal (with one, everything is stdout).
fn writers<W: Write + Send + 'static>(
    w: W,
    tty: bool,
    stdout: bool,
    stderr: bool,
) -> (Output, Output) {
    let w = Arc::new(Mutex::new(w));
    let out = |frame: u8| -> Box<dyn Write + Send> {
        Box::new(StreamOut {
            w: w.clone(),
            frame: (!tty).then_some(frame),
        })
    };
    (stdout.then(|| out(1)), stderr.then(|| out(2)))
}

/// Runs `on_gone` if the client goes away (the body's receiver is dropped) before `guard`
/// (the returned sender) is dropped.
fn watch_client(
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    on_gone: impl FnOnce() + Send + 'static,
) -> tokio::sync::oneshot::Sender<()> {
    let (guard, done) = tokio::sync::oneshot::channel::<()>();
    let tx = tx.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tx.closed() => on_gone(),
            _ = done => {}
        }
    });
    guard
}

/// What a session's client has: set once it went away, and how to detach the session then.
#[derive(Clone, Default)]
struct Client {
    gone: Arc<AtomicBool>,
    detacher: Arc<Mutex<Option<berth_engine::Detacher>>>,
}

impl Client {
    /// The client went away: detach the session, if there is one yet.
    fn went_away(&self) {
        self.gone.store(true, Ordering::SeqCst);
        if let Some(d) = self
            .detacher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            d.detach();
        }
    }

    /// The session is attached: it is detached at once if the client went away already.
    fn attached(&self, d: Option<berth_engine::Detacher>) {
        let mut slot = self.detacher.lock().unwrap_or_else(|e| e.into_inner());
        *slot = d;
        if self.gone.load(Ordering::SeqCst)
            && let Some(d) = slot.take()
        {
            d.detach();
        }
    }

    fn is_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }
}

/// The engine's side of a session's connection (for blocking code).
struct EngineSide {
    out: EngineOut,
    stdin: Option<Box<dyn Read + Send>>,
    client: Client,
    /// Ends the watch of a plain body's client (see [`watch_client`]) when dropped.
    _guard: Option<tokio::sync::oneshot::Sender<()>>,
    /// For a hijacked connection: told once the `101` is out (`false`: the upgrade failed).
    upgraded: Option<tokio::sync::oneshot::Receiver<bool>>,
}

enum EngineOut {
    /// Our end of the socketpair to the hijacked connection.
    Sock(UnixStream),
    /// The response body.
    Body(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>),
}

impl EngineSide {
    /// Waits until the client has our answer, so that no output of the session goes out
    /// with (or before) it: a client that reads the answer through a buffer it then leaves,
    /// as docker-py does, would lose it. `false` if the client is gone.
    fn ready(&mut self) -> bool {
        match self.upgraded.take() {
            Some(rx) => rx.blocking_recv().unwrap_or(false),
            None => true,
        }
    }

    /// The writers for the session's output.
    fn writers(&self, tty: bool, stdout: bool, stderr: bool) -> std::io::Result<(Output, Output)> {
        Ok(match &self.out {
            EngineOut::Sock(s) => writers(s.try_clone()?, tty, stdout, stderr),
            EngineOut::Body(tx) => writers(BodyOut(tx.clone()), tty, stdout, stderr),
        })
    }

    /// [`EngineSide::ready`], then [`EngineSide::writers`]: `None` (the session finished, the
    /// failure logged as `what`'s) if the client is gone or the writers cannot be made.
    fn open(
        mut self,
        tty: bool,
        stdout: bool,
        stderr: bool,
        what: &str,
    ) -> Option<(Self, Output, Output)> {
        if !self.ready() {
            return None;
        }
        match self.writers(tty, stdout, stderr) {
            Ok((out, err)) => Some((self, out, err)),
            Err(e) => {
                tracing::warn!(error = %e, "{what} streams");
                self.finish();
                None
            }
        }
    }

    /// Writes an error into the output (Docker's way once the stream has begun), as stdout.
    fn write_error(&self, tty: bool, message: &str) {
        if let Ok((Some(mut w), _)) = self.writers(tty, true, false) {
            let _ = w.write_all(format!("{message}\r\n").as_bytes());
        }
    }

    /// The session has ended: the client sees the end of the output.
    fn finish(self) {
        if let EngineOut::Sock(s) = &self.out {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// The client's side of a session's connection: becomes the response.
enum ClientSide {
    Hijacked {
        upgrade: hyper::upgrade::OnUpgrade,
        sock: UnixStream,
        client: Client,
        upgraded: tokio::sync::oneshot::Sender<bool>,
    },
    Body {
        body: Body,
    },
}

/// The content type of an attach or exec session: multiplexed (stdout and stderr framed) when
/// there is no terminal, the connection is hijacked and the API is 1.42 or later; else raw.
fn session_type(req: &Request, tty: bool) -> &'static str {
    if !tty && req.upgrade.is_some() && req.at_least(1, 42) {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    }
}

/// A session's connection: hijacked when the client asked for an upgrade, else a streamed
/// body (with the request body as stdin, if `stdin`).
fn connection(req: &mut Request, stdin: bool) -> Result<(EngineSide, ClientSide)> {
    let client = Client::default();
    match req.upgrade.take() {
        Some(upgrade) => {
            let (ours, theirs) = UnixStream::pair()
                .map_err(|e| ApiError::internal(format!("make a socket pair: {e}")))?;
            let input = if stdin {
                Some(Box::new(
                    ours.try_clone()
                        .map_err(|e| ApiError::internal(format!("dup a socket: {e}")))?,
                ) as Box<dyn Read + Send>)
            } else {
                None
            };
            let (upgraded, ready) = tokio::sync::oneshot::channel();
            Ok((
                EngineSide {
                    out: EngineOut::Sock(ours),
                    stdin: input,
                    client: client.clone(),
                    _guard: None,
                    upgraded: Some(ready),
                },
                ClientSide::Hijacked {
                    upgrade,
                    sock: theirs,
                    client,
                    upgraded,
                },
            ))
        }
        None => {
            let (tx, body) = http::channel_body();
            let c = client.clone();
            let guard = watch_client(&tx, move || c.went_away());
            let input = stdin.then(|| Box::new(req.reader()) as Box<dyn Read + Send>);
            Ok((
                EngineSide {
                    out: EngineOut::Body(tx),
                    stdin: input,
                    client,
                    _guard: Some(guard),
                    upgraded: None,
                },
                ClientSide::Body { body },
            ))
        }
    }
}

impl ClientSide {
    /// The response: `101 UPGRADED` (and the bridge started), or 200 with the body.
    fn respond(self, content_type: &'static str) -> http::Response {
        match self {
            ClientSide::Hijacked {
                upgrade,
                sock,
                client,
                upgraded,
            } => {
                tokio::spawn(bridge(upgrade, sock, client, upgraded));
                let mut r = http::status(StatusCode::SWITCHING_PROTOCOLS);
                r.extensions_mut()
                    .insert(hyper::ext::ReasonPhrase::from_static(b"UPGRADED"));
                let h = r.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
                h.insert(UPGRADE, HeaderValue::from_static("tcp"));
                r
            }
            ClientSide::Body { body } => {
                let mut r = hyper::Response::new(body);
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                r
            }
        }
    }
}

/// Copies between the upgraded connection and our end of the socketpair: the client's
/// input (then its half-close) one way, the session's output (then the end) the other. A
/// connection that fails (the client went away) detaches the session.
async fn bridge(
    upgrade: hyper::upgrade::OnUpgrade,
    sock: UnixStream,
    client: Client,
    ready: tokio::sync::oneshot::Sender<bool>,
) {
    let upgraded = match upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(error = %e, "connection upgrade failed");
            client.went_away();
            let _ = ready.send(false);
            return;
        }
    };
    let _ = ready.send(true);
    let sock = match sock
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(sock))
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "bridge a hijacked connection");
            client.went_away();
            return;
        }
    };
    let io = hyper_util::rt::TokioIo::new(upgraded);
    let (mut conn_r, mut conn_w) = tokio::io::split(io);
    let (mut sock_r, mut sock_w) = sock.into_split();
    let mut input = tokio::spawn(async move {
        let r = tokio::io::copy(&mut conn_r, &mut sock_w).await;
        // The client's half-close: EOF for the session's stdin.
        let _ = sock_w.shutdown().await;
        r.is_err()
    });
    let failed = {
        let output = tokio::io::copy(&mut sock_r, &mut conn_w);
        tokio::pin!(output);
        let mut input_done = false;
        loop {
            tokio::select! {
                r = &mut output => break r.is_err(),
                r = &mut input, if !input_done => {
                    input_done = true;
                    if matches!(r, Ok(true)) {
                        break true;
                    }
                }
            }
        }
    };
    if failed {
        client.went_away();
    } else {
        let _ = conn_w.shutdown().await;
    }
    input.abort();
}

// ---------------------------------------------------------------------------------------
// Attach.

/// The statuses with a monitor to attach to now (for the others, an attach that streams
/// waits for the next start).
fn is_active(s: berth_engine::Status) -> bool {
    use berth_engine::Status as S;
    matches!(s, S::Running | S::Restarting)
}

/// `POST /containers/{id}/attach`.
pub(crate) async fn attach(state: &Arc<State>, mut req: Request, key: &str) -> Result {
    if req.segments.last().is_some_and(|s| s == "ws") {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "attach over a websocket is not supported: use POST /containers/{id}/attach",
        ));
    }
    let want_stdin = req.flag("stdin", false)?;
    let want_stdout = req.flag("stdout", false)?;
    let want_stderr = req.flag("stderr", false)?;
    let logs = req.flag("logs", false)?;
    let stream = req.flag("stream", false)?;
    let detach_keys = req.param("detachKeys").filter(|k| !k.is_empty());
    if let Some(k) = detach_keys {
        berth_engine::parse_detach_keys(k).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let detach_keys = detach_keys.map(str::to_string);
    let engine = state.engine.clone();
    let key = key.to_string();
    let (id, record, waiter) = blocking(move || {
        let id = engine.lookup(&key)?;
        let record = engine.record(&id)?;
        let s = engine.state(&id)?;
        if s.status == berth_engine::Status::Paused {
            return Err(ApiError::conflict(format!(
                "container {id} is paused, unpause the container before attach"
            )));
        }
        // Not running: a client that streams waits for the next start (`docker run`
        // attaches before it starts the container), registered before we answer.
        let waiter = if stream && !is_active(s.status) {
            Some(engine.attach_wait(&id)?)
        } else {
            None
        };
        Ok((id, record, waiter))
    })
    .await?;
    let tty = record.config.tty;
    let stdin = want_stdin && record.config.open_stdin;
    let content_type = session_type(&req, tty);
    let (side, client) = connection(&mut req, stdin)?;
    let engine = state.engine.clone();
    std::thread::spawn(move || {
        let Some((mut side, stdout, stderr)) = side.open(tty, want_stdout, want_stderr, "attach")
        else {
            return;
        };
        let io = berth_engine::AttachIo {
            stdin: side.stdin.take(),
            stdout,
            stderr,
            logs,
            stream,
            detach_keys,
            size: None,
        };
        let gone = side.client.clone();
        let attached = match waiter {
            Some(w) => w.attach(io, &|| gone.is_gone()),
            None => engine.attach(&id, io).map(Some),
        };
        match attached {
            Ok(Some(att)) => {
                side.client.attached(att.detacher());
                let end = att.wait();
                tracing::debug!(container = %id, ?end, "attach ended");
            }
            Ok(None) => {}
            // The container stopped between our look and the attach: the stream just ends.
            Err(berth_engine::Error::WrongState { .. }) => {}
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "attach");
                side.write_error(tty, &e.to_string());
            }
        }
        side.finish();
    });
    Ok(client.respond(content_type))
}

// ---------------------------------------------------------------------------------------
// Logs.

/// A Unix time as Docker's API sends it: `SECONDS[.NANOSECONDS]` (the CLI turns durations
/// and dates into these), or, leniently, RFC 3339.
fn parse_unix_time(v: &str) -> Option<SystemTime> {
    if let Some(t) = berth_engine::parse_rfc3339(v) {
        return Some(t);
    }
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().ok()?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    if secs < 0 {
        return Some(UNIX_EPOCH - Duration::new(secs.unsigned_abs(), 0) + Duration::new(0, nanos));
    }
    Some(UNIX_EPOCH + Duration::new(secs as u64, nanos))
}

/// A time parameter (`since`, `until`); absent or empty is none.
fn time_param(req: &Request, key: &str) -> Result<Option<SystemTime>> {
    match req.param(key) {
        None | Some("") => Ok(None),
        Some(v) => parse_unix_time(v).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid value for {key:?}: {v:?} is not a Unix timestamp (SECONDS[.NANOSECONDS])"
            ))
        }),
    }
}

/// `GET /containers/{id}/logs`.
pub(crate) async fn logs(state: &Arc<State>, req: Request, key: &str) -> Result {
    let stdout = req.flag("stdout", false)?;
    let stderr = req.flag("stderr", false)?;
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let follow = req.flag("follow", false)?;
    let timestamps = req.flag("timestamps", false)?;
    let since = time_param(&req, "since")?.filter(|t| *t > UNIX_EPOCH);
    let until = match req.param("until") {
        Some("0") => None,
        _ => time_param(&req, "until")?,
    };
    let tail = match req.param("tail") {
        None | Some("") | Some("all") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid value for \"tail\": {n:?} is not a number or \"all\""
                )));
            }
        },
    };
    let engine = state.engine.clone();
    let key = key.to_string();
    let (id, tty) = blocking(move || {
        let id = engine.lookup(&key)?;
        let tty = engine.record(&id)?.config.tty;
        Ok((id, tty))
    })
    .await?;
    let content_type = if !tty && req.at_least(1, 42) {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    };
    let (tx, body) = http::channel_body();
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    let guard = watch_client(&tx, move || c.store(true, Ordering::SeqCst));
    let opts = berth_engine::LogOptions {
        follow,
        tail,
        since,
        until,
        cancel: Some(cancel),
    };
    let engine = state.engine.clone();
    std::thread::spawn(move || {
        let r = engine.logs(&id, &opts, &mut |e| {
            let is_err = e.stream == "stderr";
            if (is_err && !stderr) || (!is_err && !stdout) {
                return Ok(());
            }
            let mut line = Vec::with_capacity(e.log.len() + 32);
            if timestamps {
                line.extend_from_slice(e.time.as_bytes());
                line.push(b' ');
            }
            line.extend_from_slice(e.log.as_bytes());
            let data = if tty {
                line
            } else {
                stdcopy_frame(if is_err { 2 } else { 1 }, &line)
            };
            tx.blocking_send(Ok(Bytes::from(data)))
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        });
        if let Err(e) = r
            && !e.to_string().contains("Broken pipe")
        {
            tracing::warn!(container = %id, error = %e, "logs");
        }
        drop(guard);
    });
    let mut r = hyper::Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Resize.

/// The `h` and `w` parameters of a resize.
fn size_params(req: &Request) -> Result<(u16, u16)> {
    let get = |key: &str, what: &str| -> Result<u16> {
        match req.param(key) {
            Some(v) => v.parse::<u16>().map_err(|_| {
                ApiError::bad_request(format!("invalid resize {what} {v:?}: a number 0-65535"))
            }),
            None => Err(ApiError::bad_request(format!(
                "invalid resize {what}: the {key:?} parameter is missing"
            ))),
        }
    };
    Ok((get("h", "height")?, get("w", "width")?))
}

/// `POST /containers/{id}/resize`.
pub(crate) async fn resize(state: &Arc<State>, req: Request, key: &str) -> Result {
    let (h, w) = size_params(&req)?;
    let engine = state.engine.clone();
    let key = key.to_string();
    blocking(move || {
        let id = engine.lookup(&key)?;
        let s = engine.state(&id)?;
        if s.status != berth_engine::Status::Running {
            return Err(ApiError::conflict(format!("Container {id} is not running")));
        }
        engine.resize(&id, h, w)?;
        Ok(())
    })
    .await?;
    Ok(http::status(StatusCode::OK))
}

// ---------------------------------------------------------------------------------------
// Exec.

/// A string or a list of strings (Docker's `Cmd` takes both).
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum StrOrList {
    One(String),
    Many(Vec<String>),
}

/// The body of `POST /containers/{id}/exec`.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct ExecCreate {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    // `ConsoleSize` is taken from the start's body, as Docker does.
    detach_keys: Option<String>,
    tty: bool,
    env: Option<Vec<String>>,
    cmd: Option<StrOrList>,
    privileged: bool,
    user: Option<String>,
    working_dir: Option<String>,
}

/// `POST /containers/{id}/exec`.
pub(crate) async fn exec_create(state: &Arc<State>, mut req: Request, key: &str) -> Result {
    let body: ExecCreate = req.json(false).await?;
    let cmd = match body.cmd {
        Some(StrOrList::One(s)) if !s.is_empty() => vec![s],
        Some(StrOrList::Many(v)) if !v.is_empty() => v,
        _ => return Err(ApiError::bad_request("No exec command specified")),
    };
    let cfg = berth_engine::ExecConfig {
        cmd,
        tty: body.tty,
        stdin: body.attach_stdin,
        user: body.user.filter(|u| !u.is_empty()),
        env: body.env.unwrap_or_default(),
        workdir: body.working_dir.filter(|w| !w.is_empty()),
        privileged: body.privileged,
        detach_keys: body.detach_keys.filter(|k| !k.is_empty()),
    };
    let engine = state.engine.clone();
    let key = key.to_string();
    let exec_id = blocking(move || {
        let id = engine.lookup(&key)?;
        Ok(engine.exec_create(&id, &cfg)?)
    })
    .await?;
    {
        let mut outputs = state.exec_outputs.lock().unwrap_or_else(|e| e.into_inner());
        // Execs created and never started are forgotten past a bound.
        if outputs.len() >= 4096 {
            outputs.clear();
        }
        outputs.insert(exec_id.clone(), (body.attach_stdout, body.attach_stderr));
    }
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": exec_id }),
    ))
}

/// The body of `POST /exec/{id}/start`.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStart {
    detach: bool,
    // `Tty` is the exec's own (from its create), which clients repeat here.
    console_size: Option<Vec<u16>>,
}

/// `POST /exec/{id}/start`.
async fn exec_start(state: &Arc<State>, mut req: Request, exec_id: &str) -> Result {
    let body: ExecStart = req.json(true).await?;
    let engine = state.engine.clone();
    let id = exec_id.to_string();
    let inspect = blocking(move || {
        let i = engine.exec_inspect(&id)?;
        if i.running || i.exit_code.is_some() {
            return Err(ApiError::conflict(format!(
                "exec {id} has already been started: create another one"
            )));
        }
        let s = engine.state(&i.container_id)?;
        if s.status != berth_engine::Status::Running {
            return Err(ApiError::conflict(format!(
                "container {} is not running",
                i.container_id
            )));
        }
        Ok(i)
    })
    .await?;
    let tty = inspect.process_config.tty;
    let size = match body.console_size.as_deref() {
        Some(&[h, w]) if tty && h > 0 && w > 0 => Some((h, w)),
        _ => None,
    };
    let (want_stdout, want_stderr) = state
        .exec_outputs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(exec_id)
        .unwrap_or((true, true));
    let engine = state.engine.clone();
    let id = exec_id.to_string();
    if body.detach {
        blocking(move || Ok(engine.exec_start_detached(&id, size).map(drop)?)).await?;
        return Ok(http::status(StatusCode::OK));
    }
    let content_type = session_type(&req, tty);
    let (side, client) = connection(&mut req, inspect.open_stdin)?;
    let state = state.clone();
    let id = exec_id.to_string();
    // Started once the client has our answer (as Docker does), in a thread of its own.
    std::thread::spawn(move || {
        let Some((mut side, stdout, stderr)) =
            side.open(tty, want_stdout, want_stderr, &format!("exec {id}"))
        else {
            return;
        };
        let io = berth_engine::ExecIo {
            stdin: side.stdin.take(),
            stdout,
            stderr,
            size,
        };
        let handle = match engine.exec_start(&id, io) {
            Ok(h) => h,
            // The process could not be run (126/127, recorded as its exit code), or the
            // container stopped meanwhile: Docker says so in the stream.
            Err(e) => {
                side.write_error(tty, &e.to_string());
                side.finish();
                return;
            }
        };
        if let Some(r) = handle.resizer().filter(|_| tty) {
            state
                .exec_resizers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone(), r);
        }
        side.client.attached(handle.detacher());
        let end = handle.wait();
        tracing::debug!(exec = %id, ?end, "exec ended");
        state
            .exec_resizers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        side.finish();
    });
    Ok(client.respond(content_type))
}

/// `POST /exec/{id}/resize`. An exec being started (its client resizes as soon as it has
/// the `101`) is waited for, at most 10 s, as Docker does.
async fn exec_resize(state: &Arc<State>, req: Request, exec_id: &str) -> Result {
    let (h, w) = size_params(&req)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let resizer = state
            .exec_resizers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(exec_id)
            .cloned();
        if let Some(r) = resizer {
            blocking(move || Ok(r.resize(h, w)?)).await?;
            return Ok(http::status(StatusCode::OK));
        }
        let engine = state.engine.clone();
        let id = exec_id.to_string();
        let i = blocking(move || Ok(engine.exec_inspect(&id)?)).await?;
        if i.exit_code.is_some() && !i.running {
            return Err(ApiError::conflict(format!("exec {exec_id} is not running")));
        }
        if !i.process_config.tty {
            // No terminal: nothing to resize (as Docker, not an error).
            return Ok(http::status(StatusCode::OK));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::conflict(if i.running {
                format!("exec {exec_id} has no terminal attached through this server to resize")
            } else {
                format!("exec {exec_id} is not running")
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Events.

/// `GET /events`.
pub(crate) async fn events(state: &Arc<State>, req: Request) -> Result {
    let since = time_param(&req, "since")?;
    let until = time_param(&req, "until")?;
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        return Err(ApiError::bad_request(format!(
            "`since` time ({}) cannot be after `until` time ({})",
            req.param("since").unwrap_or(""),
            req.param("until").unwrap_or("")
        )));
    }
    let filter = berth_engine::EventFilter::parse(&req.filters()?)?;
    let now = SystemTime::now();
    let (tx, body) = http::channel_body();
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    let guard = watch_client(&tx, move || c.store(true, Ordering::SeqCst));
    let q = berth_engine::EventQuery {
        // As Docker: without `since`, only what happens from now on.
        since: Some(since.unwrap_or(now)),
        until,
        follow: until.is_none_or(|u| u > now),
        cancel: Some(cancel),
    };
    let engine = state.engine.clone();
    std::thread::spawn(move || {
        let r = engine.events().read(&q, &|e| filter.matches(e), &mut |e| {
            let mut line =
                serde_json::to_vec(&e.with_legacy_fields()).map_err(std::io::Error::other)?;
            line.push(b'\n');
            tx.blocking_send(Ok(Bytes::from(line)))
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        });
        if let Err(e) = r
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            tracing::warn!(error = %e, "events");
        }
        drop(guard);
    });
    let mut r = hyper::Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_as_docker_sends_them() {
        let t = |s| parse_unix_time(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap());
        assert_eq!(t("1700000000"), Some(Duration::new(1_700_000_000, 0)));
        assert_eq!(
            t("1700000000.5"),
            Some(Duration::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(
            t("1700000000.000000001"),
            Some(Duration::new(1_700_000_000, 1))
        );
        assert_eq!(
            t("2023-11-14T22:13:20Z"),
            Some(Duration::new(1_700_000_000, 0))
        );
        assert_eq!(t("10m"), None);
        assert_eq!(t("1.0000000001"), None);
    }

    #[test]
    fn stdcopy_frames() {
        assert_eq!(
            stdcopy_frame(2, b"hi"),
            [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']
        );
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut w = StreamOut {
            w: buf.clone(),
            frame: Some(1),
        };
        w.write_all(b"abc").unwrap();
        let mut raw = StreamOut {
            w: buf.clone(),
            frame: None,
        };
        raw.write_all(b"d").unwrap();
        assert_eq!(
            *buf.lock().unwrap(),
            [1, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c', b'd']
        );
    }
}
