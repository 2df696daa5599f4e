//! The flags of `create` and `run`, as Docker spells them.

use berth_engine::CreateOptions;
use clap::{ArgAction, Args};

/// Flags shared by `create` and `run`.
#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Print usage.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Set meta data on a container.
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Bind mount a volume.
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container.
    #[arg(long = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory.
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Memory limit.
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit: the kernel reclaims down to it under pressure.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options.
    #[arg(long = "ulimit")]
    pub ulimit: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Security Options.
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Connect a container to a network (bridge, none, host, container:NAME, NETWORK).
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 10.89.0.10).
    #[arg(long)]
    pub ip: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33).
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Log driver options (max-size, max-file).
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Logging driver for the container (only json-file).
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Command to run to check health.
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries")]
    pub health_retries: Option<u32>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h).
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Pull image before running: missing, always, never.
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Publish a container's port(s) to the host ([IP:][HOSTPORT:]CTRPORT[/PROTO]).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// The image, then the command and its arguments. Flags before the image are berth's
    /// (an unknown one is an error); everything after it is the command's.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true,
          value_name = "IMAGE [COMMAND] [ARG...]")]
    pub image_and_cmd: Vec<String>,
}

impl CreateFlags {
    /// The engine's options.
    pub fn options(&self) -> anyhow::Result<CreateOptions> {
        if let Some(d) = &self.log_driver
            && d != "json-file"
        {
            anyhow::bail!("--log-driver: only json-file is supported");
        }
        let mut it = self.image_and_cmd.iter().cloned();
        let image = it.next().unwrap_or_default();
        Ok(CreateOptions {
            name: self.name.clone(),
            image,
            cmd: it.collect(),
            entrypoint: self.entrypoint.clone(),
            env: self.env.clone(),
            env_files: self.env_file.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            tty: self.tty,
            interactive: self.interactive,
            labels: self.label.clone(),
            volumes: self.volume.clone(),
            mounts: self.mount.clone(),
            tmpfs: self.tmpfs.clone(),
            memory: self.memory.clone(),
            memory_swap: self.memory_swap.clone(),
            memory_reservation: self.memory_reservation.clone(),
            cpus: self.cpus.clone(),
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit,
            ulimits: self.ulimit.clone(),
            privileged: self.privileged,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            security_opt: self.security_opt.clone(),
            read_only: self.read_only,
            network: self.network.clone(),
            publish: self.publish.clone(),
            publish_all: self.publish_all,
            ip: self.ip.clone(),
            mac_address: self.mac_address.clone(),
            network_aliases: self.network_alias.clone(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            add_hosts: self.add_host.clone(),
            restart: self.restart.clone(),
            auto_remove: self.rm,
            log_opts: self.log_opt.clone(),
            init: self.init,
            health_cmd: self.health_cmd.clone(),
            health_interval: self.health_interval.clone(),
            health_timeout: self.health_timeout.clone(),
            health_retries: self.health_retries,
            health_start_period: self.health_start_period.clone(),
            no_healthcheck: self.no_healthcheck,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
        })
    }
}
