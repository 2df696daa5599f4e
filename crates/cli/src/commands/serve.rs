//! `berth serve`: the Docker Engine API, so the docker CLI, compose and docker-py drive berth.

use std::path::PathBuf;

use clap::Args;

use super::container::engine;
use crate::Cli;

/// `serve`.
#[derive(Args, Debug)]
#[command(
    long_about = "Serve the Docker Engine API (v1.24 to v1.44) in the foreground, so that the docker \
CLI (DOCKER_HOST=unix:///run/berth/berth.sock), docker-compose and docker-py drive berth. \
Containers made through the API are the ones `berth ps` shows; the daemonless CLI keeps working \
beside it. Stop it with SIGTERM or Ctrl-C: containers keep running (each has its monitor). At \
start it restarts the containers whose restart policy is always or unless-stopped.\n\n\
Access to the API is root access to this machine: the unix socket is mode 0660 (root and \
--group), TCP needs mutual TLS (--tlsverify), or --insecure-tcp on a loopback address."
)]
pub struct ServeArgs {
    /// Where to listen: unix:///PATH, tcp://ADDR:PORT or fd:// (socket activation), repeatable
    /// [default: unix:///run/berth/berth.sock].
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    pub hosts: Vec<berth_api::Host>,
    /// Group that may use the unix sockets (they are mode 0660).
    #[arg(short = 'G', long)]
    pub group: Option<String>,
    /// Require TLS client certificates signed by --tlscacert on TCP listeners.
    #[arg(long)]
    pub tlsverify: bool,
    /// CA that client certificates must be signed by.
    #[arg(long, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,
    /// The server's certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
    /// Allow TCP without TLS on a loopback address (anyone on this machine who can connect
    /// is root).
    #[arg(long)]
    pub insecure_tcp: bool,
    /// Do not restart always/unless-stopped containers at start.
    #[arg(long)]
    pub no_boot: bool,
}

pub fn run(cli: &Cli, a: &ServeArgs) -> anyhow::Result<u8> {
    let tls = match (a.tlsverify, &a.tlscacert, &a.tlscert, &a.tlskey) {
        (false, None, None, None) => None,
        (_, Some(ca), Some(cert), Some(key)) => Some(berth_api::TlsFiles {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => anyhow::bail!(
            "TLS needs all of --tlscacert, --tlscert and --tlskey (clients must present a certificate signed by the CA)"
        ),
    };
    let engine = engine(cli)?;
    let exe = std::env::current_exe()?;
    berth_api::serve(
        engine,
        exe,
        berth_api::ServeOptions {
            hosts: a.hosts.clone(),
            group: a.group.clone(),
            tls,
            insecure_tcp: a.insecure_tcp,
            no_boot: a.no_boot,
        },
    )?;
    Ok(0)
}
