//! Our own terminal around an attach or exec: raw mode, the window size (initial and on
//! SIGWINCH), and SIGINT/SIGTERM passed on to the container when it has no terminal. The
//! engine only sees byte streams and resize calls.

use berth_engine::Resizer;

/// A terminal put in raw mode, restored on drop.
pub(super) struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    /// Raw mode on `fd`, if it is a terminal.
    pub(super) fn enter(fd: i32) -> Option<Self> {
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

fn fd_size(fd: i32) -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data filled by the ioctl.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0 {
        Some((ws.ws_row, ws.ws_col))
    } else {
        None
    }
}

/// Our terminal's size (of stdout, else stdin) as (rows, cols), if we have one.
pub(super) fn size() -> Option<(u16, u16)> {
    fd_size(1).or_else(|| fd_size(0))
}

/// The signals we take: SIGWINCH, and SIGINT/SIGTERM when `proxy`.
pub(super) struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    /// Blocks the signals in this thread and the threads it starts from now on; call it before
    /// the engine starts the threads of an attach or exec, so that none of them gets them.
    pub(super) fn block(proxy: bool) -> Self {
        // SAFETY: sigset_t is plain data initialised by sigemptyset.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to our own sigset.
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGWINCH);
            if proxy {
                libc::sigaddset(&mut set, libc::SIGINT);
                libc::sigaddset(&mut set, libc::SIGTERM);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        Self { set }
    }

    /// Takes the signals in a thread: SIGWINCH resizes through `resize` (with our size), the
    /// others go to `on_signal`.
    pub(super) fn handle(self, resize: Option<Resizer>, on_signal: impl Fn(i32) + Send + 'static) {
        let set = self.set;
        std::thread::spawn(move || {
            loop {
                let mut sig = 0;
                // SAFETY: waits for a signal of the blocked set.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    return;
                }
                if sig == libc::SIGWINCH {
                    if let (Some(r), Some((rows, cols))) = (&resize, size()) {
                        let _ = r.resize(rows, cols);
                    }
                } else {
                    on_signal(sig);
                }
            }
        });
    }
}
