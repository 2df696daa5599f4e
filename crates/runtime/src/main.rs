//! berth-runtime: an OCI runtime with runc's command line.
//!
//! This file parses the command line and maps errors to exit codes and log lines; each verb
//! lives in `commands/`, the container setup in `create`, `init` and `rootfs`.

mod attrs;
mod commands;
mod config;
mod create;
mod criu;
mod exe;
mod hooks;
mod hostmounts;
mod idmap;
mod init;
mod log;
mod profile;
mod rootfs;
mod seccomp;
mod signal;
mod state;
mod sync;
mod sys;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::create::CreateOpts;

/// berth-runtime: run containers from OCI bundles (a drop-in for runc).
///
/// A bundle is a directory with a config.json (see `spec`) and a root filesystem. The usual
/// lifecycle is `create`, `start`, then `delete` once the container has stopped; `run` does it
/// all in one step.
#[derive(Parser)]
#[command(name = "berth-runtime", version, about, long_about = None)]
struct Cli {
    /// Directory for the state of containers (use one per engine) [default: /run/berth-runtime,
    /// or $XDG_RUNTIME_DIR/berth-runtime when not run as root].
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Append log lines (errors, and debug messages with --debug) to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of the log: text or json.
    #[arg(long, global = true, default_value = "text")]
    log_format: String,
    /// Log debug messages.
    #[arg(long, global = true)]
    debug: bool,
    /// Use the systemd cgroup driver (not available: berth-runtime manages cgroupfs directly).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility with runc (rootless mode is detected).
    #[arg(long)]
    rootless: Option<String>,
    /// The CRIU binary for checkpoint and restore (4.1 or newer) [default: criu on PATH].
    #[arg(long, global = true)]
    criu: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Debug, Clone)]
struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's init pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master to (when process.terminal is true).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for a rootfs on a ramdisk).
    #[arg(long)]
    no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass N more file descriptors (3 .. 3+N-1) to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Container ID.
    id: String,
}

impl CreateArgs {
    fn opts(&self) -> CreateOpts {
        CreateOpts {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
        }
    }
}

/// Flags of both `checkpoint` and `restore` (runc's).
#[derive(clap::Args, Debug, Clone)]
struct CriuArgs {
    /// Directory of the CRIU images [default: ./checkpoint].
    #[arg(long)]
    image_path: Option<PathBuf>,
    /// Directory for CRIU's logs (dump.log, restore.log) [default: the image path].
    #[arg(long)]
    work_path: Option<PathBuf>,
    /// Checkpoint (restore) established TCP connections.
    #[arg(long)]
    tcp_established: bool,
    /// Allow unix sockets connected to the outside.
    #[arg(long)]
    ext_unix_sk: bool,
    /// The container's process is a shell job (its session leader is outside).
    #[arg(long)]
    shell_job: bool,
    /// Checkpoint (restore) file locks.
    #[arg(long)]
    file_locks: bool,
    /// How CRIU handles cgroups: soft (default), full, strict or ignore.
    #[arg(long, value_name = "MODE")]
    manage_cgroups_mode: Option<String>,
    /// A namespace to leave empty instead of checkpointing it (network; repeatable).
    #[arg(long, value_name = "NS")]
    empty_ns: Vec<String>,
    /// Post-copy: leave memory behind for a lazy-pages server (checkpoint), fetch it on demand
    /// (restore).
    #[arg(long)]
    lazy_pages: bool,
    /// Deduplicate memory pages against the parent images.
    #[arg(long)]
    auto_dedup: bool,
}

impl CriuArgs {
    fn opts(&self, criu: Option<&String>) -> commands::checkpoint::CommonOpts {
        commands::checkpoint::CommonOpts {
            criu: criu.cloned(),
            image_path: self.image_path.clone(),
            work_path: self.work_path.clone(),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: self.manage_cgroups_mode.clone(),
            empty_ns: self.empty_ns.clone(),
            lazy_pages: self.lazy_pages,
            auto_dedup: self.auto_dedup,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Checkpoint a running container with CRIU; it is stopped and deleted afterwards unless
    /// --leave-running is given.
    Checkpoint {
        #[command(flatten)]
        criu: CriuArgs,
        /// Images of an earlier --pre-dump, relative to the image path.
        #[arg(long)]
        parent_path: Option<PathBuf>,
        /// Keep the container running after the checkpoint.
        #[arg(long)]
        leave_running: bool,
        /// Send the memory pages to a CRIU page server at ADDRESS:PORT.
        #[arg(long, value_name = "ADDRESS:PORT")]
        page_server: Option<String>,
        /// Dump memory only, for a later checkpoint with --parent-path (needs soft-dirty
        /// memory tracking in the kernel).
        #[arg(long)]
        pre_dump: bool,
        /// CRIU writes to this descriptor when a --lazy-pages checkpoint is ready.
        #[arg(long, value_name = "FD")]
        status_fd: Option<i32>,
        /// Container ID.
        id: String,
    },
    /// Restore a container from CRIU images made by `checkpoint`; without --detach, wait for
    /// it and exit with its status.
    Restore {
        #[command(flatten)]
        criu: CriuArgs,
        /// Path to the bundle directory.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// Return once the container is restored.
        #[arg(short, long)]
        detach: bool,
        /// Write the restored init's pid to this file.
        #[arg(long)]
        pid_file: Option<PathBuf>,
        /// Unix socket to send the restored terminal's master to.
        #[arg(long)]
        console_socket: Option<PathBuf>,
        /// Accepted for compatibility with runc (CRIU restores the root it is given).
        #[arg(long)]
        no_pivot: bool,
        /// Accepted for compatibility with runc (restore always makes this process a subreaper
        /// when it waits).
        #[arg(long)]
        no_subreaper: bool,
        /// Security profile (AppArmor or SELinux label) for the restored process.
        #[arg(long)]
        lsm_profile: Option<String>,
        /// SELinux mount context (accepted for compatibility with runc; no SELinux here).
        #[arg(long)]
        lsm_mount_context: Option<String>,
        /// Container ID.
        id: String,
    },
    /// Create a container from a bundle; its process waits until `start`.
    Create(CreateArgs),
    /// Run the process of a created container.
    Start {
        /// Container ID.
        id: String,
    },
    /// Create and start a container; without --detach, wait for it and exit with its status.
    Run {
        /// Return once the container has started.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits (accepted; the state is always removed).
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Print the state of a container as JSON.
    State {
        /// Container ID.
        id: String,
    },
    /// Send a signal (default TERM) to the container's init, or to all its processes.
    Kill {
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
        /// Container ID.
        id: String,
        /// Signal name (KILL, SIGKILL) or number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped (or, with --force, any) container and everything it holds.
    Delete {
        /// Kill the container first if it is not stopped (created, running or paused).
        #[arg(short, long)]
        force: bool,
        /// Container ID.
        id: String,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        /// Output format: table or json.
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Print only the IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json into the bundle.
    Spec {
        /// Path to the bundle directory.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for running without root (user namespace, no cgroup limits).
        #[arg(long)]
        rootless: bool,
        /// A security profile: `docker` (Docker's default capabilities and seccomp profile).
        #[arg(long)]
        profile: Option<String>,
        /// With `--profile docker`: the capabilities instead of Docker's default set
        /// (comma-separated, e.g. CAP_CHOWN,CAP_SYS_ADMIN); the seccomp profile's conditional
        /// rules follow them, as Docker's do for --cap-add/--cap-drop.
        #[arg(long, value_name = "CAPS")]
        caps: Option<String>,
    },
    /// Print what this runtime supports, as OCI features JSON.
    Features,
    /// Run a new process in a running container.
    Exec {
        /// A process.json to run (instead of the command and flags).
        #[arg(short, long)]
        process: Option<PathBuf>,
        /// Allocate a terminal.
        #[arg(short, long)]
        tty: bool,
        /// Unix socket to send the terminal's master to.
        #[arg(long)]
        console_socket: Option<PathBuf>,
        /// Return once the process has started.
        #[arg(short, long)]
        detach: bool,
        /// Write the process's pid to this file.
        #[arg(long)]
        pid_file: Option<PathBuf>,
        /// Working directory in the container.
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Set an environment variable (KEY=VALUE; repeatable).
        #[arg(short, long)]
        env: Vec<String>,
        /// UID[:GID] to run as.
        #[arg(short, long)]
        user: Option<String>,
        /// Additional group ids (repeatable).
        #[arg(short = 'g', long)]
        additional_gids: Vec<u32>,
        /// Add a capability (repeatable).
        #[arg(short, long)]
        cap: Vec<String>,
        /// Set no_new_privs for the process.
        #[arg(long)]
        no_new_privs: bool,
        /// Pass N more file descriptors (3 .. 3+N-1).
        #[arg(long, default_value_t = 0)]
        preserve_fds: u32,
        /// AppArmor profile for the process.
        #[arg(long)]
        apparmor: Option<String>,
        /// SELinux label for the process.
        #[arg(long)]
        process_label: Option<String>,
        /// Container ID.
        id: String,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Freeze every process of a running container.
    Pause {
        /// Container ID.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// Container ID.
        id: String,
    },
    /// List the processes of a container (ps options after the ID, default -ef).
    Ps {
        /// Output format: table or json (a list of pids).
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Container ID.
        id: String,
        /// Options for ps(1).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print resource usage and OOM events of a container as JSON lines.
    Events {
        /// Print one stats event and exit.
        #[arg(long)]
        stats: bool,
        /// Interval between stats events (e.g. 5s, 500ms).
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Container ID.
        id: String,
    },
    /// Change the resource limits of a running container.
    Update {
        /// A file with linux.resources JSON ('-' for stdin).
        #[arg(short, long)]
        resources: Option<String>,
        /// Memory limit (bytes, or with k/m/g suffix).
        #[arg(long)]
        memory: Option<String>,
        /// Memory soft limit.
        #[arg(long)]
        memory_reservation: Option<String>,
        /// Memory plus swap limit (-1 for unlimited).
        #[arg(long)]
        memory_swap: Option<String>,
        /// CPU shares (relative weight).
        #[arg(long)]
        cpu_shares: Option<u64>,
        /// CPU CFS quota in microseconds per period (-1 for none).
        #[arg(long, allow_hyphen_values = true)]
        cpu_quota: Option<i64>,
        /// CPU CFS period in microseconds.
        #[arg(long)]
        cpu_period: Option<u64>,
        /// CPUs in which to allow execution (0-3, 0,1).
        #[arg(long)]
        cpuset_cpus: Option<String>,
        /// Memory nodes in which to allow execution.
        #[arg(long)]
        cpuset_mems: Option<String>,
        /// Maximum number of processes (-1 or 0 for unlimited).
        #[arg(long, allow_hyphen_values = true)]
        pids_limit: Option<i64>,
        /// Block IO weight (10-1000).
        #[arg(long)]
        blkio_weight: Option<u16>,
        /// Container ID.
        id: String,
    },
}

/// Parse a byte size: a number with an optional k/m/g/t suffix (powers of 1024); -1 stays -1.
fn parse_bytes(flag: &str, s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--{flag}: {s:?} is not a size (e.g. 512m, 1g, 1048576)"))?;
    n.checked_mul(mul)
        .filter(|v| *v >= 0)
        .ok_or_else(|| anyhow::anyhow!("--{flag}: {s:?} is out of range"))
}

/// Parse a duration like Go's: 5s, 500ms, 1m, 1.5s.
fn parse_duration(s: &str) -> anyhow::Result<std::time::Duration> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--interval: {s:?} is not a duration (e.g. 5s, 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => anyhow::bail!("--interval: unknown unit in {s:?} (ms, s, m, h)"),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        anyhow::bail!("--interval: must be positive");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn main() {
    let cli = Cli::parse();
    let logger = log::init(log::Logger::new(
        cli.log.clone(),
        &cli.log_format,
        cli.debug,
    ));
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&format!("{e:#}"));
            1
        }
    };
    std::process::exit(code);
}

/// runc's default state directory, per user when rootless.
fn default_root() -> PathBuf {
    if create::rootless() {
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d).join("berth-runtime"),
            // SAFETY: geteuid has no arguments.
            _ => PathBuf::from(format!("/tmp/berth-runtime-{}", unsafe { libc::geteuid() })),
        }
    } else {
        PathBuf::from("/run/berth-runtime")
    }
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        anyhow::bail!(
            "--systemd-cgroup: the systemd cgroup driver is not supported by berth-runtime; use the cgroupfs driver (omit the flag)"
        );
    }
    let root = &cli.root.clone().unwrap_or_else(default_root);
    seccomp::set_cache_dir(root.join(".seccomp-cache"));
    match &cli.cmd {
        Cmd::Create(a) => {
            exe::ensure_sealed().map_err(|e| anyhow::anyhow!("protect the runtime binary: {e}"))?;
            create::create(root, &a.id, &a.opts(), false)?;
        }
        Cmd::Run {
            detach, create: a, ..
        } => {
            exe::ensure_sealed().map_err(|e| anyhow::anyhow!("protect the runtime binary: {e}"))?;
            return commands::run::run(root, &a.id, &a.opts(), *detach);
        }
        Cmd::Start { id } => commands::start(root, id)?,
        Cmd::Checkpoint {
            criu,
            parent_path,
            leave_running,
            page_server,
            pre_dump,
            status_fd,
            id,
        } => commands::checkpoint::checkpoint(
            root,
            id,
            &commands::checkpoint::CheckpointOpts {
                common: criu.opts(cli.criu.as_ref()),
                parent_path: parent_path.clone(),
                leave_running: *leave_running,
                page_server: page_server.clone(),
                pre_dump: *pre_dump,
                status_fd: *status_fd,
            },
        )?,
        Cmd::Restore {
            criu,
            bundle,
            detach,
            pid_file,
            console_socket,
            no_pivot,
            lsm_profile,
            id,
            ..
        } => {
            exe::ensure_sealed().map_err(|e| anyhow::anyhow!("protect the runtime binary: {e}"))?;
            return commands::checkpoint::restore(
                root,
                id,
                &commands::checkpoint::RestoreOpts {
                    common: criu.opts(cli.criu.as_ref()),
                    create: CreateOpts {
                        bundle: bundle.clone(),
                        pid_file: pid_file.clone(),
                        console_socket: console_socket.clone(),
                        no_pivot: *no_pivot,
                        ..Default::default()
                    },
                    detach: *detach,
                    lsm_profile: lsm_profile.clone(),
                },
            );
        }
        Cmd::State { id } => commands::state(root, id)?,
        Cmd::Kill { all, id, signal } => commands::kill(root, id, signal, *all)?,
        Cmd::Delete { force, id } => commands::delete(root, id, *force)?,
        Cmd::List { format, quiet } => commands::list(root, format, *quiet)?,
        Cmd::Spec {
            bundle,
            rootless,
            profile,
            caps,
        } => commands::spec::run(bundle, *rootless, profile.as_deref(), caps.as_deref())?,
        Cmd::Exec {
            process,
            tty,
            console_socket,
            detach,
            pid_file,
            cwd,
            env,
            user,
            additional_gids,
            cap,
            no_new_privs,
            preserve_fds,
            apparmor,
            process_label,
            id,
            command,
        } => {
            exe::ensure_sealed().map_err(|e| anyhow::anyhow!("protect the runtime binary: {e}"))?;
            let o = commands::exec::ExecOpts {
                process: process.clone(),
                tty: *tty,
                console_socket: console_socket.clone(),
                detach: *detach,
                pid_file: pid_file.clone(),
                cwd: cwd.clone(),
                env: env.clone(),
                user: user.clone(),
                additional_gids: additional_gids.clone(),
                caps: cap.clone(),
                no_new_privs: *no_new_privs,
                preserve_fds: *preserve_fds,
                apparmor: apparmor.clone(),
                process_label: process_label.clone(),
                args: command.clone(),
            };
            return commands::exec::exec(root, id, &o);
        }
        Cmd::Pause { id } => commands::cgroup::pause(root, id)?,
        Cmd::Resume { id } => commands::cgroup::resume(root, id)?,
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => commands::cgroup::ps(root, id, format, ps_args)?,
        Cmd::Events {
            stats,
            interval,
            id,
        } => commands::cgroup::events(root, id, *stats, parse_duration(interval)?)?,
        Cmd::Update {
            resources,
            memory,
            memory_reservation,
            memory_swap,
            cpu_shares,
            cpu_quota,
            cpu_period,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            blkio_weight,
            id,
        } => {
            let bytes = |flag: &str, v: &Option<String>| {
                v.as_deref().map(|s| parse_bytes(flag, s)).transpose()
            };
            let flags = commands::cgroup::UpdateFlags {
                resources: resources.clone(),
                memory: bytes("memory", memory)?,
                memory_reservation: bytes("memory-reservation", memory_reservation)?,
                memory_swap: bytes("memory-swap", memory_swap)?,
                cpu_shares: *cpu_shares,
                cpu_quota: *cpu_quota,
                cpu_period: *cpu_period,
                cpuset_cpus: cpuset_cpus.clone(),
                cpuset_mems: cpuset_mems.clone(),
                pids_limit: *pids_limit,
                blkio_weight: *blkio_weight,
            };
            commands::cgroup::update(root, id, &flags)?
        }
        Cmd::Features => println!(
            "{}",
            serde_json::to_string_pretty(&commands::features::features(cli.criu.as_deref()))?
        ),
    }
    Ok(0)
}
