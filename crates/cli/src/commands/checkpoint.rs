//! Checkpoint and restore (CRIU): Docker's `checkpoint create|ls|rm` and `start --checkpoint`,
//! podman's `container checkpoint|restore` with `--export`/`--import`, and `migrate`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use berth_engine::{CheckpointOptions, Engine};
use clap::{Args, Subcommand};

use super::container::engine;
use crate::Cli;

/// Where podman's `container checkpoint` keeps its images (one per container): a checkpoint
/// of this name.
const PODMAN_CHECKPOINT: &str = "container-checkpoint";

/// Docker's `checkpoint` group, and `migrate`.
#[derive(Subcommand, Debug)]
pub enum CheckpointCommand {
    /// Manage checkpoints of running containers (CRIU).
    Checkpoint {
        /// What to do.
        #[command(subcommand)]
        command: CheckpointVerb,
    },
    /// Move a running container to another berth root: checkpoint, copy, restore there, and
    /// remove it here once it runs there (on a failure it runs on here). Prints the time it
    /// was frozen.
    Migrate(MigrateArgs),
}

/// `checkpoint` verbs.
#[derive(Subcommand, Debug)]
pub enum CheckpointVerb {
    /// Checkpoint a running container (it stops, unless --leave-running).
    Create {
        /// Leave the container running after the checkpoint.
        #[arg(long)]
        leave_running: bool,
        /// Checkpoint established TCP connections (restore them with `start --checkpoint`).
        #[arg(long)]
        tcp_established: bool,
        /// Keep checkpoints in DIR/CONTAINER-ID instead of the container's directory.
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<PathBuf>,
        /// Container.
        container: String,
        /// Name of the checkpoint.
        checkpoint: String,
    },
    /// List a container's checkpoints.
    #[command(alias = "list")]
    Ls {
        /// Where the checkpoints are (as given to `checkpoint create`).
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<PathBuf>,
        /// Container.
        container: String,
    },
    /// Remove a checkpoint.
    #[command(alias = "remove")]
    Rm {
        /// Where the checkpoints are (as given to `checkpoint create`).
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<PathBuf>,
        /// Container.
        container: String,
        /// Name of the checkpoint.
        checkpoint: String,
    },
}

/// `migrate` flags.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Move established TCP connections too.
    #[arg(long)]
    tcp_established: bool,
    /// Container.
    container: String,
    /// The destination: the root directory of another berth (`berth --root DIR`) on this
    /// machine, or a `berth serve` at unix:///PATH or tcp://HOST:PORT (TCP with --tlscacert,
    /// --tlscert and --tlskey: the server's CA, our client certificate and key).
    destination: String,
    /// The CA the server's certificate must chain to (tcp://).
    #[arg(long, value_name = "FILE", requires_all = ["tlscert", "tlskey"])]
    tlscacert: Option<PathBuf>,
    /// Our client certificate (tcp://).
    #[arg(long, value_name = "FILE")]
    tlscert: Option<PathBuf>,
    /// The key of our client certificate (tcp://).
    #[arg(long, value_name = "FILE")]
    tlskey: Option<PathBuf>,
}

/// A `berth serve` as the destination of a migration, through its API: the image through
/// `/images/load`, the checkpoint through berth's `/containers/import`.
struct Remote(berth_api::client::Client);

impl Remote {
    fn call(&self, method: &str, path: &str, body: Vec<u8>) -> berth_engine::Result<Vec<u8>> {
        self.0
            .request(method, path, "application/x-tar", body)
            .map_err(|e| berth_engine::Error::Other(format!("the destination: {e}")))
    }
}

impl berth_engine::MigrationTarget for Remote {
    fn has_image(&self, id: &str) -> berth_engine::Result<bool> {
        match self.0.request(
            "GET",
            &format!("/images/{id}/json"),
            "application/json",
            Vec::new(),
        ) {
            Ok(_) => Ok(true),
            Err(berth_api::client::ClientError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(berth_engine::Error::Other(format!("the destination: {e}"))),
        }
    }
    fn load_image(&self, archive: &[u8]) -> berth_engine::Result<()> {
        let out = self.call("POST", "/images/load?quiet=1", archive.to_vec())?;
        // The load streams its result: an error comes as a JSON line, with 200.
        for l in String::from_utf8_lossy(&out).lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(l)
                && let Some(m) = v["error"].as_str().or(v["errorDetail"]["message"].as_str())
            {
                return Err(berth_engine::Error::Other(format!(
                    "the destination: load the image: {m}"
                )));
            }
        }
        Ok(())
    }
    fn import(&self, archive: &[u8], name: &str, tcp: bool) -> berth_engine::Result<String> {
        let out = self.call(
            "POST",
            &format!("/containers/import?name={name}&tcpEstablished={tcp}"),
            archive.to_vec(),
        )?;
        serde_json::from_slice::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v["Id"].as_str().map(String::from))
            .ok_or_else(|| {
                berth_engine::Error::Other(
                    "the destination answered the import without an Id".into(),
                )
            })
    }
}

/// podman's `container checkpoint`.
#[derive(Args, Debug)]
pub struct ContainerCheckpointArgs {
    /// Write the checkpoint, the container's configuration, rootfs changes and volumes to
    /// this tar file (podman's layout), to restore with `container restore --import`.
    #[arg(short, long, value_name = "FILE")]
    export: Option<PathBuf>,
    /// Leave the container running after the checkpoint.
    #[arg(short = 'R', long)]
    leave_running: bool,
    /// Checkpoint established TCP connections.
    #[arg(long)]
    tcp_established: bool,
    /// Checkpoint file locks.
    #[arg(long)]
    file_locks: bool,
    /// Keep the CRIU images after --export (they are removed once exported otherwise).
    #[arg(short, long)]
    keep: bool,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// podman's `container restore`.
#[derive(Args, Debug)]
pub struct ContainerRestoreArgs {
    /// Create the container from this exported checkpoint and restore it.
    #[arg(short, long, value_name = "FILE")]
    import: Option<PathBuf>,
    /// With --import: the new container's name.
    #[arg(short, long)]
    name: Option<String>,
    /// Restore established TCP connections.
    #[arg(long)]
    tcp_established: bool,
    /// Keep the checkpoint after restoring from it.
    #[arg(short, long)]
    keep: bool,
    /// Containers checkpointed with `container checkpoint` (none with --import).
    containers: Vec<String>,
}

/// Runs `checkpoint ...` or `migrate`.
pub fn run(cli: &Cli, cmd: &CheckpointCommand) -> anyhow::Result<u8> {
    let e = engine(cli)?;
    match cmd {
        CheckpointCommand::Checkpoint { command } => match command {
            CheckpointVerb::Create {
                leave_running,
                tcp_established,
                checkpoint_dir,
                container,
                checkpoint,
            } => {
                e.checkpoint_create(
                    container,
                    checkpoint,
                    checkpoint_dir.as_deref(),
                    &CheckpointOptions {
                        leave_running: *leave_running,
                        tcp_established: *tcp_established,
                        file_locks: false,
                    },
                )?;
                println!("{checkpoint}");
            }
            CheckpointVerb::Ls {
                checkpoint_dir,
                container,
            } => {
                println!("CHECKPOINT NAME");
                for c in e.checkpoint_list(container, checkpoint_dir.as_deref())? {
                    if c.name != PODMAN_CHECKPOINT {
                        println!("{}", c.name);
                    }
                }
            }
            CheckpointVerb::Rm {
                checkpoint_dir,
                container,
                checkpoint,
            } => e.checkpoint_remove(container, checkpoint, checkpoint_dir.as_deref())?,
        },
        CheckpointCommand::Migrate(a) => return migrate(cli, &e, a),
    }
    Ok(0)
}

fn migrate(cli: &Cli, e: &Engine, a: &MigrateArgs) -> anyhow::Result<u8> {
    let d = &a.destination;
    if d.contains("://") {
        let tls = match (&a.tlscacert, &a.tlscert, &a.tlskey) {
            (Some(ca), Some(cert), Some(key)) => Some(berth_api::TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        let addr = berth_api::client::Address::parse(d, tls).map_err(anyhow::Error::msg)?;
        let remote = Remote(berth_api::client::Client::new(addr));
        let m = e.migrate(&a.container, &remote, a.tcp_established)?;
        println!("{}", m.id);
        eprintln!(
            "berth: migrated {} to {d}: frozen for {:.1} ms",
            a.container,
            m.frozen.as_secs_f64() * 1e3
        );
        let _ = cli;
        return Ok(0);
    }
    let dest_root = Path::new(d);
    let exe = std::env::current_exe().context("find the berth binary")?;
    let dest = Engine::new(dest_root, e.runtime_bin(), &exe)
        .with_context(|| format!("open the destination root {}", dest_root.display()))?;
    let _ = cli;
    let m = e.migrate(&a.container, &dest, a.tcp_established)?;
    println!("{}", m.id);
    eprintln!(
        "berth: migrated {} to {}: frozen for {:.1} ms",
        a.container,
        dest_root.display(),
        m.frozen.as_secs_f64() * 1e3
    );
    Ok(0)
}

/// `container checkpoint`.
pub fn container_checkpoint(cli: &Cli, a: &ContainerCheckpointArgs) -> anyhow::Result<u8> {
    let e = engine(cli)?;
    if a.export.is_some() && a.containers.len() > 1 {
        bail!("--export: only one container can be exported to a file");
    }
    Ok(each_id(&a.containers, |c| {
        let id = e.lookup(c)?;
        let _ = e.checkpoint_remove(&id, PODMAN_CHECKPOINT, None);
        e.checkpoint_create(
            &id,
            PODMAN_CHECKPOINT,
            None,
            &CheckpointOptions {
                leave_running: a.leave_running,
                tcp_established: a.tcp_established,
                file_locks: a.file_locks,
            },
        )?;
        if let Some(file) = &a.export {
            let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
            let res = (|| -> anyhow::Result<()> {
                let mut f = std::io::BufWriter::new(
                    std::fs::File::create(&tmp)
                        .with_context(|| format!("--export: create {}", tmp.display()))?,
                );
                e.checkpoint_export(&id, PODMAN_CHECKPOINT, None, &mut f)?;
                use std::io::Write;
                f.flush()?;
                f.into_inner()?.sync_all()?;
                std::fs::rename(&tmp, file)
                    .with_context(|| format!("--export: write {}", file.display()))?;
                Ok(())
            })();
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res?;
            if !a.keep {
                let _ = e.checkpoint_remove(&id, PODMAN_CHECKPOINT, None);
            }
        }
        Ok(id)
    }))
}

/// `container restore`.
pub fn container_restore(cli: &Cli, a: &ContainerRestoreArgs) -> anyhow::Result<u8> {
    let e = engine(cli)?;
    if let Some(file) = &a.import {
        if !a.containers.is_empty() {
            bail!("--import restores a new container: name no containers with it");
        }
        let mut f = std::io::BufReader::new(
            std::fs::File::open(file)
                .with_context(|| format!("--import: open {}", file.display()))?,
        );
        let id = e.checkpoint_import(&mut f, a.name.as_deref(), a.tcp_established)?;
        println!("{id}");
        return Ok(0);
    }
    if a.name.is_some() {
        bail!("--name is only for --import (a container restored in place keeps its name)");
    }
    if a.containers.is_empty() {
        bail!("name the containers to restore, or --import FILE");
    }
    Ok(each_id(&a.containers, |c| {
        let id = e.lookup(c)?;
        e.start_checkpoint(&id, PODMAN_CHECKPOINT, None)?;
        if !a.keep {
            let _ = e.checkpoint_remove(&id, PODMAN_CHECKPOINT, None);
        }
        Ok(id)
    }))
}

/// Runs `f` for each container, printing the ID it returns (podman prints each one done) or
/// the error; the status is 125 if any failed.
fn each_id(containers: &[String], mut f: impl FnMut(&str) -> anyhow::Result<String>) -> u8 {
    let mut status = 0;
    for c in containers {
        match f(c) {
            Ok(id) => println!("{id}"),
            Err(err) => {
                eprintln!("berth: {c}: {}", crate::error_text(err.as_ref()));
                status = 125;
            }
        }
    }
    status
}
