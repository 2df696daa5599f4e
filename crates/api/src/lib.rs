//! `berth serve`: the Docker Engine API (v1.24 to v1.44) over berth's engine, image and build
//! libraries, so the docker CLI, docker-compose and docker-py drive berth unchanged.
//!
//! The server is a thin layer: every request becomes calls on [`berth_engine::Engine`] (run
//! on tokio's blocking pool, since the engine works with files, locks and processes), whose
//! results are already in the Engine API's shapes. The server keeps no container state of its
//! own: a container made through the API is the one `berth ps` shows, and the daemonless CLI
//! works beside it. What only a live connection has (an exec's terminal to resize, a hijacked
//! attach stream) lives in the connection's task.
//!
//! This is the only crate of berth with async and HTTP (tokio, hyper); the engine below stays
//! synchronous.
//!
//! Layout: `listen` (unix sockets, TCP with mutual TLS, socket activation), `http` (requests,
//! errors, bodies, query parsing), `router` (version prefixes, dispatch), then one module per
//! group of endpoints: `containers` (create, list, lifecycle), `streams` (attach, logs, exec,
//! events), `container_data` (top, stats, changes, export, archive, system df), `images`
//! (pull, push, list, tag, delete, save/load, auth), `build`, `networks`, `volumes`, `system`
//! (ping, version, info).

mod build;
pub mod client;
mod container_data;
mod containers;
mod http;
mod images;
mod listen;
mod networks;
mod router;
mod streams;
mod system;
mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

pub use listen::{Host, TlsFiles};

/// How `berth serve` listens.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Where to listen (`-H`); none means [`DEFAULT_SOCKET`].
    pub hosts: Vec<Host>,
    /// The group that owns the unix sockets (mode 0660); none: root's group.
    pub group: Option<String>,
    /// Certificates for TCP listeners (`--tlsverify --tlscacert --tlscert --tlskey`).
    pub tls: Option<TlsFiles>,
    /// Allow plain TCP, on loopback addresses only (`--insecure-tcp`).
    pub insecure_tcp: bool,
    /// Do not restart `always`/`unless-stopped` containers at start.
    pub no_boot: bool,
}

/// The default socket, as `unix://` path.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// What every request handler reaches: the engine and the server's own live state.
pub(crate) struct State {
    /// The engine (cheap to clone: paths and handles).
    pub engine: berth_engine::Engine,
    /// The berth binary (for the builder's reaper and helpers).
    pub berth_exe: PathBuf,
    /// Terminals of execs started through this server, to resize by exec ID.
    pub exec_resizers: std::sync::Mutex<std::collections::HashMap<String, berth_engine::Resizer>>,
    /// The output streams (`AttachStdout`, `AttachStderr`) each exec created through this
    /// server asked for, until it is started.
    pub exec_outputs: std::sync::Mutex<std::collections::HashMap<String, (bool, bool)>>,
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be set up.
    #[error("{0}")]
    Listen(String),
    /// Anything else at start.
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    /// I/O at start.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// Runs the server in the foreground until SIGTERM or SIGINT: binds the listeners, restarts
/// the containers a daemon would (unless `no_boot`), then serves. Containers keep running when
/// it stops: each has its own monitor.
pub fn serve(
    engine: berth_engine::Engine,
    berth_exe: PathBuf,
    opts: ServeOptions,
) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-serve")
        .build()
        .map_err(|e| Error::Io("start the async runtime".into(), e))?;
    let state = Arc::new(State {
        engine,
        berth_exe,
        exec_resizers: Default::default(),
        exec_outputs: Default::default(),
    });
    rt.block_on(async move {
        let listeners = listen::bind_all(&opts).await?;
        if !opts.no_boot {
            let engine = state.engine.clone();
            match tokio::task::spawn_blocking(move || engine.boot()).await {
                Ok(Ok(results)) => {
                    for r in results {
                        tracing::info!(container = %r.id, result = ?r.result, "boot");
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "restarting containers at start"),
                Err(e) => tracing::warn!(error = %e, "restarting containers at start"),
            }
        }
        // Monitors this server started are reaped when they exit (no zombie per container).
        tokio::spawn(async {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                every.tick().await;
                let _ = tokio::task::spawn_blocking(berth_engine::reap_monitors).await;
            }
        });
        listen::serve_all(listeners, state).await
    })
}
