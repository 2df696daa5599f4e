//! What `create`/`run` take: Docker's flags as the user wrote them. The engine validates and
//! turns them into a [`crate::Record`]; the CLI only parses the command line into this.

/// Options of `berth create` / `berth run`.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// `--name`.
    pub name: Option<String>,
    /// The image.
    pub image: String,
    /// The command after the image (replaces the image's Cmd).
    pub cmd: Vec<String>,
    /// `--entrypoint` (empty string clears it).
    pub entrypoint: Option<String>,
    /// `-e KEY=VALUE` or `-e KEY` (taken from the environment).
    pub env: Vec<String>,
    /// `--env-file`.
    pub env_files: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u USER[:GROUP]`.
    pub user: Option<String>,
    /// `-h`.
    pub hostname: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `--label KEY=VALUE`.
    pub labels: Vec<String>,
    /// `-v`.
    pub volumes: Vec<String>,
    /// `--mount`.
    pub mounts: Vec<String>,
    /// `--tmpfs PATH[:OPTS]`.
    pub tmpfs: Vec<String>,
    /// `-m`.
    pub memory: Option<String>,
    /// `--memory-swap`.
    pub memory_swap: Option<String>,
    /// `--memory-reservation`.
    pub memory_reservation: Option<String>,
    /// `--cpus`.
    pub cpus: Option<String>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<i64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--network`.
    pub network: Option<String>,
    /// `--restart`.
    pub restart: Option<String>,
    /// `-p [IP:][HOSTPORT:]CTRPORT[/PROTO]`.
    pub publish: Vec<String>,
    /// `-P`.
    pub publish_all: bool,
    /// `--ip`.
    pub ip: Option<String>,
    /// `--mac-address`.
    pub mac_address: Option<String>,
    /// `--network-alias`.
    pub network_aliases: Vec<String>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<String>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--log-opt KEY=VALUE`.
    pub log_opts: Vec<String>,
    /// `--init`.
    pub init: bool,
    /// `--health-cmd`.
    pub health_cmd: Option<String>,
    /// `--health-interval`.
    pub health_interval: Option<String>,
    /// `--health-timeout`.
    pub health_timeout: Option<String>,
    /// `--health-retries`.
    pub health_retries: Option<u32>,
    /// `--health-start-period`.
    pub health_start_period: Option<String>,
    /// `--no-healthcheck`.
    pub no_healthcheck: bool,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// `--stop-timeout`.
    pub stop_timeout: Option<i64>,
}
