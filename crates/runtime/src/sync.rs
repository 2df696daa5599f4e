//! Messages between the runtime (parent) and the container's init over a SOCK_SEQPACKET pair.
//!
//! ```text
//! parent                                  init (or the intermediate process)
//!   <---- NeedMaps (new user namespace) -----
//!   ----- MapsDone ------------------------->
//!   <---- InitPid(pid) (intermediate only) --
//!   <---- Joined (self-joining init only) ---   it wrote 0 to its v1 cgroups' `tasks`
//!   ----- Proceed(state for hooks) --------->   sets up, while the parent adds it to the
//!   (cgroup: add init where it cannot)          rest of its cgroup (v2, unified)
//!   ----- CgroupsDone ---------------------->   awaited before a cgroup namespace or hooks
//!   <---- RunHooks (only with hooks) --------   mounts made, before pivot_root
//!   ----- HooksDone ------------------------>   (prestart, createRuntime ran here)
//!   <---- Ready  | Error(message) -----------
//!   (state.json written)
//!   ----- Ack ------------------------------>   init then waits for `start`
//! ```
//! End of file on either side means the other died: the parent reports it as an error, the init
//! exits. A send to a side that has exited returns the `Error` it left queued, if any.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

/// One message.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// The child unshared a user namespace: write its id maps.
    NeedMaps,
    /// The maps are written.
    MapsDone,
    /// The pid (in the parent's namespace) of the init forked by the intermediate process.
    InitPid(i32),
    /// The init has joined its v1 cgroups itself (before the parent's `cgroup.procs` write,
    /// which holds the kernel's cgroup mutex for an RCU grace period).
    Joined,
    /// Go on with the setup. Carries the state JSON for hooks.
    Proceed(String),
    /// The parent has added the init to the rest of its cgroup (v2, or a hybrid host's unified
    /// hierarchy): the init is wholly in its cgroup now.
    CgroupsDone,
    /// The mounts are made: run the prestart and createRuntime hooks.
    RunHooks,
    /// The hooks ran.
    HooksDone,
    /// The init is set up and waits for `start`.
    Ready,
    /// The setup failed.
    Error(String),
    /// The state is saved; the init may outlive the parent.
    Ack,
}

/// One end of the sync socket.
pub struct Sync(pub OwnedFd);

impl Sync {
    /// Send a message.
    pub fn send(&self, msg: &Msg) -> io::Result<()> {
        let buf = serde_json::to_vec(msg).map_err(io::Error::other)?;
        loop {
            // SAFETY: buf is a valid buffer of the given length.
            let n = unsafe {
                libc::send(
                    self.0.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) {
                    // The other side reported an error and exited before reading this: its
                    // message, still queued for us, says what went wrong (not "broken pipe").
                    while let Ok(Some(m)) = self.recv() {
                        if let Msg::Error(why) = m {
                            return Err(io::Error::other(why));
                        }
                    }
                }
                return Err(e);
            }
            return Ok(());
        }
    }

    /// Receive a message; `None` at end of file (the other side is gone).
    pub fn recv(&self) -> io::Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut reset_seen = false;
        loop {
            // SAFETY: buf is a valid, writable buffer of the given length.
            let n =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if e.raw_os_error() == Some(libc::ECONNRESET) && !reset_seen {
                    // The other side closed with our messages unread. The kernel reports that
                    // once, before what it sent us last (its Error, say): read on.
                    reset_seen = true;
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Ok(None);
            }
            return serde_json::from_slice(&buf[..n as usize])
                .map(Some)
                .map_err(io::Error::other);
        }
    }

    /// Receive and insist on one message kind.
    pub fn expect(&self, want: Msg) -> io::Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Error(e)) => Err(io::Error::other(e)),
            Some(m) => Err(io::Error::other(format!("expected {want:?}, got {m:?}"))),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the other side exited",
            )),
        }
    }
}
