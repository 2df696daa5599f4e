//! `run`: create + start, and without `--detach` wait for the container, forward signals to it,
//! proxy its terminal, delete it and exit with its status.
//!
//! Exit statuses are collected without a SIGCHLD handler: SIGCHLD is blocked before the init is
//! forked and read from a signalfd, and every wake-up reaps with `waitpid(WNOHANG)` until the
//! init is found, so an init that exits at once cannot be missed. This process is a child
//! subreaper, so the init is its child even when an intermediate process forked it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::{Context, Result};

use crate::create::{self, CreateOpts};
use crate::sys;

/// Signals we never block: the synchronous faults.
const UNBLOCKABLE: &[i32] = &[
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
];

/// `run [--detach]`; returns the exit code for the process.
pub fn run(root: &Path, id: &str, opts: &CreateOpts, detach: bool) -> Result<i32> {
    if detach {
        drop(create::create(root, id, opts, false)?);
        super::start(root, id)?;
        return Ok(0);
    }
    let mask = block_signals();
    sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1)?;
    let created = create::create(root, id, opts, true)?;
    let pid = created.container.saved().pid;
    let console = created.console;
    drop(created.container); // unlock, so `state` works while we wait
    let master = match console {
        Some(sock) => Some(berth_sys::fdpass::recv_fd(&sock).context("receive the terminal")?),
        None => None,
    };
    if let Err(e) = super::start(root, id) {
        let _ = super::delete(root, id, true);
        return Err(e);
    }
    // SAFETY: a valid mask pointer.
    let sfd = sys::check(unsafe { libc::signalfd(-1, &mask, libc::SFD_CLOEXEC) })?;
    // SAFETY: signalfd returned a new descriptor nothing else owns.
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    let raw = master.as_ref().map(|_| RawTerminal::enter(0));
    let status = wait_loop(pid, &sfd, master.as_ref())?;
    drop(raw);
    super::delete(root, id, true)?;
    Ok(sys::exit_code(status))
}

/// Block every signal but the synchronous faults (children unblock them before exec); the
/// blocked set, to read them from a signalfd.
pub fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigfillset.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers.
    unsafe {
        libc::sigfillset(&mut mask);
        for s in UNBLOCKABLE {
            libc::sigdelset(&mut mask, *s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &mask, std::ptr::null_mut());
    }
    mask
}

/// Reap children until `pid` exits; forward signals to it; copy terminal data.
pub fn wait_loop(pid: i32, sfd: &OwnedFd, master: Option<&OwnedFd>) -> Result<i32> {
    if let Some(m) = master {
        resize(0, m.as_raw_fd());
    }
    let mut stdin_open = true;
    loop {
        if let Some(status) = reap(pid)? {
            if let Some(m) = master {
                drain(m.as_raw_fd(), 1);
            }
            return Ok(status);
        }
        let mut fds = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(m) = master {
            fds.push(libc::pollfd {
                fd: m.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            if stdin_open {
                fds.push(libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            // SAFETY: signalfd_siginfo is plain data.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            // SAFETY: reading one struct into a valid buffer of its size.
            let r = unsafe {
                libc::read(
                    sfd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            };
            if r > 0 {
                match info.ssi_signo as i32 {
                    libc::SIGCHLD => {}
                    libc::SIGWINCH if master.is_some() => {
                        resize(0, master.expect("some").as_raw_fd())
                    }
                    s => {
                        let _ = sys::kill(pid, s);
                    }
                }
            }
        }
        if let Some(m) = master {
            if fds[1].revents & (libc::POLLIN | libc::POLLHUP) != 0 && !copy(m.as_raw_fd(), 1) {
                // The terminal closed: the process is exiting; keep reaping.
                if fds[1].revents & libc::POLLHUP != 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            if stdin_open && fds.len() > 2 && fds[2].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
                stdin_open = copy(0, m.as_raw_fd());
            }
        }
    }
}

/// Reap every exited child; the init's status once it has exited.
fn reap(init: i32) -> Result<Option<i32>> {
    loop {
        match sys::waitpid(-1, libc::WNOHANG) {
            Ok((0, _)) => return Ok(None),
            Ok((p, status)) if p == init => return Ok(Some(status)),
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
                anyhow::bail!("the container's init is not our child any more")
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn copy(from: RawFd, to: RawFd) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: a valid buffer of its size.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut off = 0;
    while off < n as usize {
        // SAFETY: the slice is within buf.
        let w = unsafe { libc::write(to, buf[off..].as_ptr().cast(), n as usize - off) };
        if w <= 0 {
            return false;
        }
        off += w as usize;
    }
    true
}

fn drain(from: RawFd, to: RawFd) {
    // SAFETY: setting O_NONBLOCK on our descriptor.
    unsafe {
        let fl = libc::fcntl(from, libc::F_GETFL);
        libc::fcntl(from, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    while copy(from, to) {}
}

fn resize(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain data; the ioctls take a valid pointer.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Puts a terminal in raw mode and restores it when dropped.
pub struct RawTerminal {
    fd: RawFd,
    saved: Option<libc::termios>,
}

impl RawTerminal {
    /// Raw mode on `fd` if it is a terminal.
    pub fn enter(fd: RawFd) -> RawTerminal {
        // SAFETY: termios is plain data; tcgetattr fills it or fails on a non-terminal.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer.
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return RawTerminal { fd, saved: None };
        }
        let saved = t;
        // SAFETY: a valid pointer; cfmakeraw only edits the struct.
        unsafe {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
        }
        RawTerminal {
            fd,
            saved: Some(saved),
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: restoring attributes read earlier.
            unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, t) };
        }
    }
}
