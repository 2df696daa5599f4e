//! The attach protocol between a client (`run`, `start -a`, `attach`) and a container's
//! monitor, over the monitor's unix socket `attach.sock`.
//!
//! Frames in both directions: `[kind: u8][len: u32 BE][data]`.
//! Client -> monitor: STDIN data, CLOSE_STDIN, RESIZE (rows, cols as u16 BE).
//! Monitor -> client: STDOUT / STDERR data, EXIT (i32 BE exit code) when the process ends.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Result, io_err};

pub(crate) const STDIN: u8 = 0;
pub(crate) const STDOUT: u8 = 1;
pub(crate) const STDERR: u8 = 2;
pub(crate) const EXIT: u8 = 3;
pub(crate) const RESIZE: u8 = 4;
pub(crate) const CLOSE_STDIN: u8 = 5;

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

/// What the client connects to the container.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttachIo {
    /// Send our stdin to the container (`-i`).
    pub stdin: bool,
    /// The container has a terminal (`-t`): put ours in raw mode and follow its size.
    pub tty: bool,
    /// Forward SIGINT/SIGTERM (without a terminal) to the container.
    pub sig_proxy: bool,
}

/// How an attach ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container's process exited with this code.
    Exited(i32),
    /// We detached (Ctrl-P Ctrl-Q); the container keeps running.
    Detached,
    /// The monitor went away without an exit code.
    Lost,
}

/// A connection to a container's monitor.
pub struct AttachClient {
    sock: UnixStream,
}

/// A terminal put in raw mode, restored on drop.
struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: i32) -> Option<Self> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and pointer.
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        // SAFETY: cfmakeraw only writes the struct.
        unsafe { libc::cfmakeraw(&mut t) };
        // SAFETY: valid fd and pointer.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
        Some(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enter`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// The size of the terminal on `fd`, as (rows, cols).
pub(crate) fn term_size(fd: i32) -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data filled by the ioctl.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0 {
        Some((ws.ws_row, ws.ws_col))
    } else {
        None
    }
}

fn resize_frame(rows: u16, cols: u16) -> Vec<u8> {
    let mut d = rows.to_be_bytes().to_vec();
    d.extend_from_slice(&cols.to_be_bytes());
    d
}

impl AttachClient {
    /// Connects to the monitor's socket.
    pub(crate) fn connect(sock: &Path) -> Result<Self> {
        let sock = connect(sock).map_err(io_err("connect", sock))?;
        Ok(Self { sock })
    }

    /// Sends our terminal's size (of stdout, else stdin), if it is a terminal. Call it before
    /// the container starts so its first process already sees the right size.
    pub fn send_size(&self) {
        if let Some((r, c)) = term_size(1).or_else(|| term_size(0)) {
            let _ = write_frame(&mut &self.sock, RESIZE, &resize_frame(r, c));
        }
    }

    /// Pumps our stdio to and from the container until its process exits, we detach
    /// (Ctrl-P Ctrl-Q with a terminal, as Docker), or the monitor goes away. `on_signal` is
    /// called with SIGINT/SIGTERM when `io.sig_proxy` is set.
    pub fn pump(self, io: AttachIo, on_signal: impl Fn(i32) + Send + 'static) -> Result<AttachEnd> {
        let raw = if io.tty && io.stdin {
            RawMode::enter(0)
        } else {
            None
        };
        let done = Arc::new(AtomicBool::new(false));
        let detached = Arc::new(AtomicBool::new(false));
        let writer = Arc::new(Mutex::new(
            self.sock.try_clone().map_err(io_err("dup", "socket"))?,
        ));

        // Signals: SIGWINCH (resize) and, with sig_proxy, SIGINT/SIGTERM, taken by a thread.
        // SAFETY: sigset_t is plain data initialised by sigemptyset.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to our own sigset.
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGWINCH);
            if io.sig_proxy && !io.tty {
                libc::sigaddset(&mut set, libc::SIGINT);
                libc::sigaddset(&mut set, libc::SIGTERM);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        if io.tty
            && let Some((r, c)) = term_size(1).or_else(|| term_size(0))
        {
            let _ = write_frame(&mut *writer.lock().unwrap(), RESIZE, &resize_frame(r, c));
        }
        {
            let writer = writer.clone();
            let tty = io.tty;
            std::thread::spawn(move || {
                loop {
                    let mut sig = 0;
                    // SAFETY: waits for a signal of the blocked set.
                    if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                        return;
                    }
                    if sig == libc::SIGWINCH {
                        if tty && let Some((r, c)) = term_size(1).or_else(|| term_size(0)) {
                            let _ = write_frame(
                                &mut *writer.lock().unwrap(),
                                RESIZE,
                                &resize_frame(r, c),
                            );
                        }
                    } else {
                        on_signal(sig);
                    }
                }
            });
        }
        if io.stdin {
            let writer = writer.clone();
            let done = done.clone();
            let detached = detached.clone();
            let tty = io.tty;
            std::thread::spawn(move || {
                let mut stdin = io::stdin().lock();
                let mut buf = [0u8; 8192];
                let mut last = 0u8;
                loop {
                    match stdin.read(&mut buf) {
                        Ok(0) | Err(_) => {
                            if !done.load(Ordering::SeqCst) {
                                let _ = write_frame(&mut *writer.lock().unwrap(), CLOSE_STDIN, &[]);
                            }
                            return;
                        }
                        Ok(n) => {
                            // Ctrl-P Ctrl-Q detaches (the keys are not sent).
                            if tty
                                && (0..n).any(|i| {
                                    let prev = if i == 0 { last } else { buf[i - 1] };
                                    prev == 0x10 && buf[i] == 0x11
                                })
                            {
                                detached.store(true, Ordering::SeqCst);
                                let _ = writer.lock().unwrap().shutdown(std::net::Shutdown::Both);
                                return;
                            }
                            last = buf[n - 1];
                            if write_frame(&mut *writer.lock().unwrap(), STDIN, &buf[..n]).is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            });
        }
        let mut sock = self.sock;
        let mut code = None;
        let stdout = io::stdout();
        let stderr = io::stderr();
        while let Ok(Some((kind, data))) = read_frame(&mut sock) {
            match kind {
                STDOUT => {
                    let mut o = stdout.lock();
                    let _ = o.write_all(&data);
                    let _ = o.flush();
                }
                STDERR => {
                    let mut e = stderr.lock();
                    let _ = e.write_all(&data);
                    let _ = e.flush();
                }
                EXIT if data.len() == 4 => {
                    code = Some(i32::from_be_bytes([data[0], data[1], data[2], data[3]]));
                    break;
                }
                _ => {}
            }
        }
        done.store(true, Ordering::SeqCst);
        drop(raw);
        Ok(match code {
            Some(c) => AttachEnd::Exited(c),
            None if detached.load(Ordering::SeqCst) => AttachEnd::Detached,
            None => AttachEnd::Lost,
        })
    }
}
