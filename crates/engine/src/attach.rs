//! The protocol between a client (`run`, `start -a`, `attach`, `exec`, or any program using the
//! library) and a container's monitor, over the monitor's unix socket `attach.sock`; and the
//! client side, which copies between the caller's byte streams and the socket's frames.
//!
//! Frames in both directions: `[kind: u8][len: u32 BE][data]`. The first frame of a connection
//! says what it is for:
//! - ATTACH (`[rows u16 BE, cols u16 BE]` or empty): the container's stdio. The size, if given,
//!   applies to the container's terminal before the container starts (`run` attaches first).
//! - EXEC (JSON `{"id", "detach", "rows", "cols"}`): start the exec process `id` recorded by
//!   `Engine::exec_create`; the monitor answers STARTED (`pid` i32 BE) or ERROR (JSON
//!   `{"kind", "code", "message"}`), and, unless detached, this connection carries that
//!   process's stdio.
//! - RESIZE alone: resize the container's terminal, then the connection ends.
//!
//! Then, client -> monitor: STDIN data, CLOSE_STDIN, RESIZE (rows, cols as u16 BE);
//! monitor -> client: STDOUT / STDERR data, EXIT (i32 BE exit code) when the process ends.
//!
//! Nothing here touches the process's own stdio or terminal: the caller hands in the streams
//! (a terminal, a hijacked HTTP connection, a pipe, a buffer) and handles raw mode and window
//! size changes itself ([`Resizer`]).

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Engine;
use crate::error::{Error, Result, invalid, io_err};
use crate::logs::LogOptions;

pub(crate) const STDIN: u8 = 0;
pub(crate) const STDOUT: u8 = 1;
pub(crate) const STDERR: u8 = 2;
pub(crate) const EXIT: u8 = 3;
pub(crate) const RESIZE: u8 = 4;
pub(crate) const CLOSE_STDIN: u8 = 5;
pub(crate) const ATTACH: u8 = 6;
pub(crate) const EXEC: u8 = 7;
pub(crate) const STARTED: u8 = 8;
pub(crate) const ERROR: u8 = 9;

/// Docker's default detach keys, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Writes one frame.
pub(crate) fn write_frame(w: &mut impl Write, kind: u8, data: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(5 + data.len());
    buf.push(kind);
    buf.extend_from_slice(&(data.len() as u32).to_be_bytes());
    buf.extend_from_slice(data);
    w.write_all(&buf)
}

/// Reads one frame; None at EOF.
pub(crate) fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut hdr = [0u8; 5];
    match r.read_exact(&mut hdr) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
    if len > 16 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some((hdr[0], data)))
}

/// Connects to a unix socket by a path of any length (through /proc/self/fd of its dir).
pub(crate) fn connect(path: &Path) -> io::Result<UnixStream> {
    let dir = std::fs::File::open(path.parent().unwrap_or(Path::new("/")))?;
    let name = path.file_name().unwrap_or_default();
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    UnixStream::connect(short)
}

/// The data of a RESIZE frame (or of an ATTACH frame with a size).
pub(crate) fn size_data(rows: u16, cols: u16) -> Vec<u8> {
    let mut d = rows.to_be_bytes().to_vec();
    d.extend_from_slice(&cols.to_be_bytes());
    d
}

/// The size in a RESIZE (or ATTACH) frame, as a winsize.
pub(crate) fn parse_size(data: &[u8]) -> Option<libc::winsize> {
    (data.len() == 4).then(|| libc::winsize {
        ws_row: u16::from_be_bytes([data[0], data[1]]),
        ws_col: u16::from_be_bytes([data[2], data[3]]),
        ws_xpixel: 0,
        ws_ypixel: 0,
    })
}

/// Docker's `--detach-keys` format: comma-separated keys, each a single character or `ctrl-X`
/// (X one of `a`-`z`, `@`, `[`, `\`, `]`, `^`, `_`). Returns the bytes of the sequence.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>> {
    const CTRL: &str = "@abcdefghijklmnopqrstuvwxyz[\\]^_";
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let code = key
            .strip_prefix("ctrl-")
            .filter(|c| c.len() == 1)
            .and_then(|c| CTRL.find(c));
        match code {
            Some(c) => out.push(c as u8),
            None => {
                return Err(invalid(
                    "--detach-keys",
                    format!(
                        "unknown key {key:?} in {keys:?}: use single characters or ctrl-a..ctrl-z, \
                         ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_ separated by commas"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The detach keys in effect: Docker's default unless `given`; none without a terminal (as in
/// Docker, where they only apply to a process with a terminal).
pub(crate) fn detach_keys(given: Option<&str>, tty: bool) -> Result<Option<Vec<u8>>> {
    if !tty {
        return Ok(None);
    }
    let keys = match given {
        Some(k) if !k.is_empty() => k,
        _ => DEFAULT_DETACH_KEYS,
    };
    parse_detach_keys(keys).map(Some)
}

/// Finds the detach sequence in a stream of input, holding back what may be its beginning.
struct Escape {
    keys: Vec<u8>,
    matched: usize,
}

impl Escape {
    /// Feeds input; returns the bytes to pass on, and whether the sequence was completed (the
    /// bytes before it are passed on, the sequence itself never).
    fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// The caller's side of an attach: where the container's output goes and where its input comes
/// from, and what to send. A missing stream is not attached (its output is dropped).
pub struct AttachIo {
    /// Sent to the container's stdin (it must have been created with `-i`). EOF closes the
    /// container's stdin. The reading thread ends at EOF, at the detach keys, or at the first
    /// read that returns after the attach ended.
    pub stdin: Option<Box<dyn Read + Send>>,
    /// Gets the container's stdout (all of its output when it has a terminal).
    pub stdout: Option<Box<dyn Write + Send>>,
    /// Gets the container's stderr.
    pub stderr: Option<Box<dyn Write + Send>>,
    /// First copy what the container has logged so far (Docker's `logs=1`).
    pub logs: bool,
    /// Stream live output (Docker's `stream=1`, the default); without it only the logs are
    /// copied and the attach ends.
    pub stream: bool,
    /// Docker's detach keys (default ctrl-p,ctrl-q); they apply to a container with a terminal.
    pub detach_keys: Option<String>,
    /// The terminal size (rows, cols) to apply before anything else, so a container started
    /// after this attach (`run`) sees it from the first moment.
    pub size: Option<(u16, u16)>,
}

impl Default for AttachIo {
    fn default() -> Self {
        Self {
            stdin: None,
            stdout: None,
            stderr: None,
            logs: false,
            stream: true,
            detach_keys: None,
            size: None,
        }
    }
}

impl std::fmt::Debug for AttachIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachIo")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("logs", &self.logs)
            .field("stream", &self.stream)
            .field("detach_keys", &self.detach_keys)
            .field("size", &self.size)
            .finish()
    }
}

/// How an attach (or an attached exec) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachEnd {
    /// The process exited with this code.
    Exited(i32),
    /// We detached (the detach keys, or [`Attachment::detach`]); the process keeps running.
    Detached,
    /// The monitor went away without an exit code.
    Lost,
}

/// Resizes the terminal of an attached container or exec; cheap to clone and `Send`, for a
/// thread that follows SIGWINCH or a server's resize requests.
#[derive(Clone, Debug)]
pub struct Resizer(Arc<Mutex<UnixStream>>);

impl Resizer {
    /// Sets the terminal's size to `rows` x `cols`.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *w, RESIZE, &size_data(rows, cols)).map_err(io_err("resize", "monitor"))
    }
}

/// Detaches an attach or an attached exec from another thread (a server whose client went
/// away): [`Attachment::wait`] or [`crate::ExecHandle::wait`] then returns
/// [`AttachEnd::Detached`], and the process keeps running. Cheap to clone and `Send`.
#[derive(Clone, Debug)]
pub struct Detacher {
    writer: Arc<Mutex<UnixStream>>,
    detached: Arc<AtomicBool>,
}

impl Detacher {
    /// Stops the copying; the process keeps running.
    pub fn detach(&self) {
        self.detached.store(true, Ordering::SeqCst);
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _ = w.shutdown(std::net::Shutdown::Both);
    }
}

/// The client side of one connection: a thread copies the caller's stdin into STDIN frames
/// (watching for the detach keys), another the STDOUT/STDERR frames to the caller's writers
/// until EXIT.
pub(crate) struct Session {
    writer: Arc<Mutex<UnixStream>>,
    output: JoinHandle<Option<i32>>,
    detached: Arc<AtomicBool>,
}

impl Session {
    pub(crate) fn start(
        sock: UnixStream,
        stdin: Option<Box<dyn Read + Send>>,
        mut stdout: Option<Box<dyn Write + Send>>,
        mut stderr: Option<Box<dyn Write + Send>>,
        keys: Option<Vec<u8>>,
    ) -> Result<Self> {
        let writer = Arc::new(Mutex::new(
            sock.try_clone().map_err(io_err("dup", "attach socket"))?,
        ));
        let done = Arc::new(AtomicBool::new(false));
        let detached = Arc::new(AtomicBool::new(false));
        if let Some(mut input) = stdin {
            let writer = writer.clone();
            let done = done.clone();
            let detached = detached.clone();
            let mut escape = keys
                .filter(|k| !k.is_empty())
                .map(|keys| Escape { keys, matched: 0 });
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    let n = match input.read(&mut buf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => 0,
                    };
                    if done.load(Ordering::SeqCst) {
                        return;
                    }
                    let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                    if n == 0 {
                        let _ = write_frame(&mut *w, CLOSE_STDIN, &[]);
                        return;
                    }
                    let (data, detach) = match &mut escape {
                        Some(e) => e.feed(&buf[..n]),
                        None => (buf[..n].to_vec(), false),
                    };
                    if !data.is_empty() && write_frame(&mut *w, STDIN, &data).is_err() {
                        return;
                    }
                    if detach {
                        detached.store(true, Ordering::SeqCst);
                        let _ = w.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            });
        }
        let output = std::thread::spawn(move || {
            let mut sock = sock;
            let mut code = None;
            while let Ok(Some((kind, data))) = read_frame(&mut sock) {
                let w = match kind {
                    STDOUT => stdout.as_mut(),
                    STDERR => stderr.as_mut(),
                    EXIT if data.len() == 4 => {
                        code = Some(i32::from_be_bytes([data[0], data[1], data[2], data[3]]));
                        break;
                    }
                    _ => None,
                };
                if let Some(w) = w {
                    // A caller that stops taking output does not stop the process.
                    let _ = w.write_all(&data).and_then(|()| w.flush());
                }
            }
            done.store(true, Ordering::SeqCst);
            code
        });
        Ok(Self {
            writer,
            output,
            detached,
        })
    }

    pub(crate) fn resizer(&self) -> Resizer {
        Resizer(self.writer.clone())
    }

    pub(crate) fn detacher(&self) -> Detacher {
        Detacher {
            writer: self.writer.clone(),
            detached: self.detached.clone(),
        }
    }

    pub(crate) fn detach(&self) {
        self.detacher().detach();
    }

    pub(crate) fn wait(self) -> AttachEnd {
        let code = self.output.join().unwrap_or(None);
        match code {
            Some(c) => AttachEnd::Exited(c),
            None if self.detached.load(Ordering::SeqCst) => AttachEnd::Detached,
            None => AttachEnd::Lost,
        }
    }
}

/// A live attach to a container (from [`Engine::attach`]).
pub struct Attachment {
    session: Option<Session>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("streaming", &self.session.is_some())
            .finish()
    }
}

impl Attachment {
    /// Resizes the container's terminal.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        match &self.session {
            Some(s) => s.resizer().resize(rows, cols),
            None => Err(Error::Other("the attach has no stream to resize".into())),
        }
    }

    /// A handle that resizes the container's terminal from another thread.
    pub fn resizer(&self) -> Option<Resizer> {
        self.session.as_ref().map(Session::resizer)
    }

    /// A handle that detaches from another thread (none without `stream`).
    pub fn detacher(&self) -> Option<Detacher> {
        self.session.as_ref().map(Session::detacher)
    }

    /// Detaches: the copying stops and [`Attachment::wait`] returns [`AttachEnd::Detached`];
    /// the container keeps running.
    pub fn detach(&self) {
        if let Some(s) = &self.session {
            s.detach();
        }
    }

    /// Waits until the container's process exits (its exit code), we detach, or the monitor
    /// goes away. Without `stream`, returns [`AttachEnd::Detached`] at once.
    pub fn wait(self) -> AttachEnd {
        match self.session {
            Some(s) => s.wait(),
            None => AttachEnd::Detached,
        }
    }
}

impl Engine {
    /// Attaches the caller's streams to a running (or, for `run`, a starting) container's
    /// monitor: copies the container's output to `io.stdout`/`io.stderr` and `io.stdin` to
    /// the container, in threads of their own, until [`Attachment::wait`] sees the end.
    pub fn attach(&self, id: &str, mut io: AttachIo) -> Result<Attachment> {
        let r = self.containers.record(id)?;
        let keys = detach_keys(io.detach_keys.as_deref(), r.config.tty)?;
        if io.logs {
            let (out, err) = (&mut io.stdout, &mut io.stderr);
            self.logs(id, &LogOptions::default(), &mut |e| {
                let w = if e.stream == "stderr" {
                    err.as_mut()
                } else {
                    out.as_mut()
                };
                match w {
                    Some(w) => w.write_all(e.log.as_bytes()).and_then(|()| w.flush()),
                    None => Ok(()),
                }
            })?;
        }
        if !io.stream {
            return Ok(Attachment { session: None });
        }
        let path = self.containers.dir(id).join("attach.sock");
        let mut sock = connect(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => Error::WrongState {
                id: id.to_string(),
                status: self
                    .state(id)
                    .map(|s| s.status.as_str().to_string())
                    .unwrap_or_else(|_| "unknown".into()),
                what: "you cannot attach to a container that is not running: start it first".into(),
            },
            _ => io_err("connect", &path)(e),
        })?;
        let hello = io.size.map_or_else(Vec::new, |(r, c)| size_data(r, c));
        write_frame(&mut sock, ATTACH, &hello).map_err(io_err("write", &path))?;
        self.container_event(&r, "attach", &[]);
        let session = Session::start(sock, io.stdin, io.stdout, io.stderr, keys)?;
        Ok(Attachment {
            session: Some(session),
        })
    }

    /// Resizes a running container's terminal (Docker's `POST /containers/{id}/resize`),
    /// without attaching.
    pub fn resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let path = self.containers.dir(id).join("attach.sock");
        let mut sock = connect(&path).map_err(io_err("connect", &path))?;
        write_frame(&mut sock, RESIZE, &size_data(rows, cols)).map_err(io_err("write", &path))
    }

    /// Registers a client that waits for a container that is not running to start, to attach
    /// from its first moment (Docker's attach to a created container, which `docker run` and
    /// `docker start -a` do before the start). While the returned [`AttachWait`] lives, an
    /// [`Engine::start`] (from any process) starts the container only once this client is
    /// attached, so no output is lost: the waiter holds a shared flock on the container's
    /// `attach.wait`, which `start` probes.
    pub fn attach_wait(&self, id: &str) -> Result<AttachWait> {
        let lock = crate::util::Flock::shared(&wait_lock(&self.containers.dir(id)))
            .map_err(|e| Error::Other(format!("register the attach to {id}: {e}")))?;
        let s = self.containers.state(id)?;
        Ok(AttachWait {
            engine: self.clone(),
            id: id.to_string(),
            monitor: (s.monitor_pid, s.monitor_start),
            _lock: lock,
        })
    }

    /// Whether a client waits to attach to the container's next start ([`Engine::attach_wait`]).
    pub(crate) fn attach_waiting(&self, id: &str) -> bool {
        matches!(
            crate::util::Flock::try_exclusive(&wait_lock(&self.containers.dir(id))),
            Ok(None)
        )
    }
}

fn wait_lock(dir: &Path) -> std::path::PathBuf {
    dir.join("attach.wait")
}

/// A client waiting for a container to start (from [`Engine::attach_wait`]).
pub struct AttachWait {
    engine: Engine,
    id: String,
    /// The monitor recorded when the wait began (an old one, or none).
    monitor: (i32, u64),
    _lock: crate::util::Flock,
}

impl std::fmt::Debug for AttachWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachWait").field("id", &self.id).finish()
    }
}

impl AttachWait {
    /// Waits until a new monitor of the container listens (or it runs), then attaches as
    /// [`Engine::attach`] does. `None` if `stop()` turns true first, or the container is
    /// removed while we wait.
    pub fn attach(self, io: AttachIo, stop: &dyn Fn() -> bool) -> Result<Option<Attachment>> {
        let mut pause = Duration::from_millis(1);
        loop {
            if stop() {
                return Ok(None);
            }
            let s = match self.engine.state(&self.id) {
                Ok(s) => s,
                Err(Error::NoSuchContainer(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let new_monitor =
                s.monitor_pid != 0 && (s.monitor_pid, s.monitor_start) != self.monitor;
            if new_monitor || matches!(s.status, crate::Status::Running) {
                match self.engine.attach(&self.id, io) {
                    // Its monitor went between our look and the connect: the container
                    // exited already (a run of no output); nothing more to wait for.
                    Err(Error::WrongState { .. }) if new_monitor => return Ok(None),
                    r => return r.map(Some),
                }
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_docker() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            vec![0x10, 0x11]
        );
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-_").unwrap(),
            vec![b'a', 0, 31]
        );
        let e = parse_detach_keys("ctrl-pq").unwrap_err().to_string();
        assert!(e.contains("--detach-keys") && e.contains("ctrl-pq"), "{e}");
        assert_eq!(detach_keys(None, false).unwrap(), None);
        assert_eq!(detach_keys(None, true).unwrap(), Some(vec![0x10, 0x11]));
    }

    #[test]
    fn escape_holds_back_a_partial_sequence() {
        let mut e = Escape {
            keys: vec![0x10, 0x11],
            matched: 0,
        };
        assert_eq!(e.feed(b"ab\x10"), (b"ab".to_vec(), false));
        // Not the sequence after all: the held key goes through.
        assert_eq!(e.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(e.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(e.feed(b"\x11rest"), (Vec::new(), true));
        let mut e = Escape {
            keys: vec![0x10, 0x11],
            matched: 0,
        };
        assert_eq!(e.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
    }
}
