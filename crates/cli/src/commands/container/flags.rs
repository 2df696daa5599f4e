//! The flags of `create` and `run`, as Docker spells them.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow, bail};
use berth_engine::{
    BindOptions, Config, ContainerCreate, DeviceMapping, DeviceRequest, EndpointIpamConfig,
    EndpointSettings, HealthConfig, HostConfig, LogConfig, Mount, NetworkingConfig, PortBinding,
    RestartPolicy, Ulimit, VolumeOptions,
};
use clap::{ArgAction, Args};

/// The resource flags of `create`, `run` and `update`.
#[derive(Args, Debug, Clone, Default)]
pub struct ResourceFlags {
    /// Memory limit (for update, 0 removes it).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit: the kernel reclaims down to it under pressure.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs (for update, 0 removes the limit).
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
}

/// A size flag's value: `-1` (unlimited) or a size such as 64m, 1g.
pub(crate) fn size_flag(flag: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    match v.as_deref() {
        None => Ok(None),
        Some("-1") => Ok(Some(-1)),
        Some(s) => berth_engine::parse_bytes(s)
            .map(Some)
            .ok_or_else(|| anyhow!("{flag}: invalid size {s:?} (e.g. 64m, 1g)")),
    }
}

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
    #[command(flatten)]
    pub resources: ResourceFlags,
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
    /// Size of /dev/shm (default 64m).
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Add a host device to the container (HOST[:CONTAINER[:PERMS]]).
    #[arg(long)]
    pub device: Vec<String>,
    /// IPC mode: private, shareable, host, none, container:NAME.
    #[arg(long)]
    pub ipc: Option<String>,
    /// PID namespace: host or container:NAME.
    #[arg(long)]
    pub pid: Option<String>,
    /// Cgroup namespace: private (its own, the default) or host (the host's, where the
    /// container sees the whole cgroup tree).
    #[arg(long, value_name = "MODE")]
    pub cgroupns: Option<String>,
    /// User namespace (only host).
    #[arg(long)]
    pub userns: Option<String>,
    /// Namespaced kernel parameters (KEY=VALUE).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Additional groups to join (names in the image's /etc/group, or numbers).
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Write the container ID to the file.
    #[arg(long)]
    pub cidfile: Option<std::path::PathBuf>,
    /// Platform of the image (os/arch[/variant]): pulled if missing, refused if it differs.
    #[arg(long)]
    pub platform: Option<String>,
    /// GPU devices to add, as CDI devices ('all', a count, or "device=ID[,ID]").
    #[arg(long)]
    pub gpus: Option<String>,
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
    /// The engine's create request (Docker's `Config`, `HostConfig` and `NetworkingConfig`),
    /// with what is the client's business done here: `-e VAR` and `--env-file` read from this
    /// process's environment and files, relative `-v`/`--mount` sources made absolute, and the
    /// flags' syntax (sizes, durations, `KEY=VALUE`s) parsed. The engine checks the values.
    pub fn request(&self) -> anyhow::Result<ContainerCreate> {
        let mut it = self.image_and_cmd.iter().cloned();
        let image = it.next().unwrap_or_default();
        let cmd: Vec<String> = it.collect();
        let mut env = Vec::new();
        for f in &self.env_file {
            let data = std::fs::read_to_string(f).with_context(|| format!("--env-file {f}"))?;
            for (n, line) in data.lines().enumerate() {
                let line = line.trim_start();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let key = line.split('=').next().unwrap_or(line);
                if key.is_empty() || key.contains(char::is_whitespace) {
                    bail!(
                        "--env-file {f}, line {}: invalid variable name {key:?}",
                        n + 1
                    );
                }
                env.push(env_value(line));
            }
        }
        for e in &self.env {
            if e.is_empty() || e.starts_with('=') {
                bail!("-e/--env: invalid environment variable {e:?}");
            }
            env.push(env_value(e));
        }
        let mut labels = BTreeMap::new();
        for l in &self.label {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            if k.is_empty() {
                bail!("--label: {l:?}: expected KEY=VALUE");
            }
            labels.insert(k.to_string(), v.to_string());
        }
        let mut config = Config {
            image,
            cmd: (!cmd.is_empty()).then_some(cmd),
            entrypoint: self.entrypoint.as_ref().map(|e| vec![e.clone()]),
            env,
            working_dir: self.workdir.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            hostname: self.hostname.clone().unwrap_or_default(),
            tty: self.tty,
            open_stdin: self.interactive,
            labels,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            healthcheck: self.healthcheck()?,
            ..Default::default()
        };

        let mut binds = Vec::new();
        for v in &self.volume {
            match v.split_once(':') {
                // `-v /path`: an anonymous volume, which Docker's client sends as a volume.
                None => {
                    config.volumes.insert(v.clone(), serde_json::json!({}));
                }
                Some((src, rest)) => binds.push(format!("{}:{rest}", absolute(src)?)),
            }
        }
        let mounts = self
            .mount
            .iter()
            .map(|m| parse_mount(m))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut tmpfs = BTreeMap::new();
        for t in &self.tmpfs {
            let (p, opts) = t.split_once(':').unwrap_or((t, ""));
            tmpfs.insert(p.to_string(), opts.to_string());
        }
        let res = &self.resources;
        let size = |flag: &str, v: &Option<String>| -> anyhow::Result<i64> {
            Ok(size_flag(flag, v)?.unwrap_or(0))
        };
        let mut ulimits = Vec::new();
        for u in &self.ulimit {
            let (name, vals) = u
                .split_once('=')
                .ok_or_else(|| anyhow!("--ulimit: {u:?}: expected NAME=SOFT[:HARD]"))?;
            let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
            let n = |x: &str| -> anyhow::Result<i64> {
                x.parse()
                    .map_err(|_| anyhow!("--ulimit: {u:?}: {x:?} is not a number"))
            };
            ulimits.push(Ulimit {
                name: name.to_string(),
                soft: n(soft)?,
                hard: n(hard)?,
            });
        }
        let mut log_config = LogConfig {
            kind: self.log_driver.clone().unwrap_or_default(),
            config: BTreeMap::new(),
        };
        for kv in &self.log_opt {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("--log-opt: {kv:?}: expected KEY=VALUE"))?;
            log_config.config.insert(k.to_string(), v.to_string());
        }
        let mut port_bindings: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
        for spec in &self.publish {
            for r in berth_engine::parse_publish(spec)? {
                let key = format!("{}/{}", r.container_port, r.proto);
                config
                    .exposed_ports
                    .entry(key.clone())
                    .or_insert_with(|| serde_json::json!({}));
                port_bindings.entry(key).or_default().push(PortBinding {
                    host_ip: r.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                    host_port: if r.host_port == 0 {
                        String::new()
                    } else {
                        r.host_port.to_string()
                    },
                });
            }
        }
        let network_mode = self.network.clone().unwrap_or_else(|| "default".into());
        let host_config = HostConfig {
            binds,
            mounts,
            tmpfs,
            memory: size("--memory", &res.memory)?,
            memory_swap: size("--memory-swap", &res.memory_swap)?,
            memory_reservation: size("--memory-reservation", &res.memory_reservation)?,
            nano_cpus: match &res.cpus {
                Some(c) => berth_engine::parse_cpus(c)?,
                None => 0,
            },
            cpu_shares: res.cpu_shares.unwrap_or(0),
            cpuset_cpus: res.cpuset_cpus.clone().unwrap_or_default(),
            pids_limit: res.pids_limit,
            ulimits,
            privileged: self.privileged,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            security_opt: self.security_opt.clone(),
            readonly_rootfs: self.read_only,
            network_mode: network_mode.clone(),
            port_bindings,
            publish_all_ports: self.publish_all,
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            extra_hosts: self.add_host.clone(),
            restart_policy: match &self.restart {
                Some(r) => berth_engine::parse_restart_policy(r)?,
                None => RestartPolicy::default(),
            },
            auto_remove: self.rm,
            log_config,
            init: self.init,
            shm_size: match &self.shm_size {
                Some(v) => berth_engine::parse_bytes(v)
                    .ok_or_else(|| anyhow!("--shm-size: invalid size {v:?} (e.g. 64m, 1g)"))?,
                None => 0,
            },
            devices: self
                .device
                .iter()
                .map(|d| parse_device(d))
                .collect::<anyhow::Result<_>>()?,
            ipc_mode: self.ipc.clone().unwrap_or_default(),
            pid_mode: self.pid.clone().unwrap_or_default(),
            cgroupns_mode: self.cgroupns.clone().unwrap_or_default(),
            userns_mode: self.userns.clone().unwrap_or_default(),
            sysctls: self
                .sysctl
                .iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| anyhow!("--sysctl: {kv:?}: expected KEY=VALUE"))
                })
                .collect::<anyhow::Result<_>>()?,
            group_add: self.group_add.clone(),
            device_requests: match &self.gpus {
                Some(g) => vec![parse_gpus(g)?],
                None => vec![],
            },
        };
        let mut networking = NetworkingConfig::default();
        if self.ip.is_some() || self.mac_address.is_some() || !self.network_alias.is_empty() {
            networking.endpoints_config.insert(
                network_mode,
                EndpointSettings {
                    ipam_config: self.ip.as_ref().map(|ip| EndpointIpamConfig {
                        ipv4_address: ip.clone(),
                    }),
                    aliases: self.network_alias.clone(),
                    mac_address: self.mac_address.clone().unwrap_or_default(),
                },
            );
        }
        Ok(ContainerCreate {
            name: self.name.clone(),
            platform: self.platform.clone(),
            skip_image_volumes: false,
            config,
            host_config,
            networking,
        })
    }

    /// The `--health-*` flags as Docker's client sends them: `["NONE"]` for
    /// `--no-healthcheck`, else the fields given (0 takes the image's value).
    fn healthcheck(&self) -> anyhow::Result<Option<HealthConfig>> {
        let any = self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some();
        if self.no_healthcheck {
            if any {
                bail!("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            }));
        }
        if !any {
            return Ok(None);
        }
        let ns = |flag: &str, v: &Option<String>| -> anyhow::Result<u64> {
            match v {
                None => Ok(0),
                Some(s) => berth_engine::parse_duration(s)
                    .map(|d| d.as_nanos() as u64)
                    .ok_or_else(|| anyhow!("{flag}: {s:?} is not a duration (e.g. 30s)")),
            }
        };
        Ok(Some(HealthConfig {
            test: match &self.health_cmd {
                Some(c) => vec!["CMD-SHELL".into(), c.clone()],
                None => vec![],
            },
            interval: ns("--health-interval", &self.health_interval)?,
            timeout: ns("--health-timeout", &self.health_timeout)?,
            retries: self.health_retries.unwrap_or(0),
            start_period: ns("--health-start-period", &self.health_start_period)?,
        }))
    }
}

/// `KEY=VALUE` as given; a bare `KEY` takes this process's value, or stays bare (which makes
/// the engine remove the image's `KEY`), as Docker's client does.
fn env_value(e: &str) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match std::env::var(e) {
        Ok(v) => format!("{e}={v}"),
        Err(_) => e.to_string(),
    }
}

/// A host path as Docker's client sends it: one starting with `.` made absolute against the
/// working directory (`-v ./dir:/x`); anything else (absolute, or a volume name) as given.
fn absolute(src: &str) -> anyhow::Result<String> {
    if !src.starts_with('.') {
        return Ok(src.to_string());
    }
    let cwd = std::env::current_dir().context("the working directory for a relative path")?;
    let p = cwd.join(src);
    // Lexically normalised (`./a/../b`), without following symlinks, as Go's filepath.Abs.
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    Ok(out.display().to_string())
}

/// One `--mount type=...,source=...,target=...[,readonly][,tmpfs-size=...]` (Docker's CSV).
fn parse_mount(spec: &str) -> anyhow::Result<Mount> {
    let mut m = Mount {
        kind: "volume".into(),
        ..Default::default()
    };
    let bool_value = |k: &str, v: Option<&str>| -> anyhow::Result<bool> {
        match v {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(x) => bail!("--mount: {spec:?}: invalid value {x:?} for {k}"),
        }
    };
    for kv in spec.split(',') {
        let (k, v) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (kv, None),
        };
        let val = || v.map(str::to_string).unwrap_or_default();
        match k {
            "type" => m.kind = val(),
            "source" | "src" => m.source = val(),
            "target" | "destination" | "dst" => m.target = val(),
            "readonly" | "ro" => m.read_only = bool_value(k, v)?,
            "tmpfs-size" => {
                let s = val();
                let n = berth_engine::parse_bytes(&s)
                    .ok_or_else(|| anyhow!("--mount: {spec:?}: invalid tmpfs-size {s:?}"))?;
                m.tmpfs_options
                    .get_or_insert_with(Default::default)
                    .size_bytes = n;
            }
            "tmpfs-mode" => {
                let s = val();
                let n = u32::from_str_radix(&s, 8)
                    .map_err(|_| anyhow!("--mount: {spec:?}: invalid tmpfs-mode {s:?} (octal)"))?;
                m.tmpfs_options.get_or_insert_with(Default::default).mode = n;
            }
            "bind-propagation" => {
                m.bind_options = Some(BindOptions { propagation: val() });
            }
            "volume-nocopy" => {
                m.volume_options = Some(VolumeOptions {
                    no_copy: bool_value(k, v)?,
                });
            }
            "consistency" => {}
            _ => bail!("--mount: {spec:?}: unknown key {k:?}"),
        }
    }
    if m.kind == "bind" {
        m.source = absolute(&m.source)?;
    }
    Ok(m)
}

/// `--device HOST[:CONTAINER[:PERMS]]`, as Docker splits it (`HOST:PERMS` when the second part
/// is permissions).
fn parse_device(d: &str) -> anyhow::Result<DeviceMapping> {
    let parts: Vec<&str> = d.split(':').collect();
    let perms_like = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, "", ""),
        [h, p] if perms_like(p) => (*h, "", *p),
        [h, c] => (*h, *c, ""),
        [h, c, p] => (*h, *c, *p),
        _ => bail!("--device: {d:?}: expected HOST[:CONTAINER[:PERMS]]"),
    };
    if host.is_empty() {
        bail!("--device: {d:?}: expected HOST[:CONTAINER[:PERMS]]");
    }
    Ok(DeviceMapping {
        path_on_host: host.to_string(),
        path_in_container: ctr.to_string(),
        cgroup_permissions: perms.to_string(),
    })
}

/// `--gpus all|N|"device=ID[,ID]"|count=N,driver=D,capabilities=C`, as Docker's client turns
/// it into a `DeviceRequest` (capability `gpu`).
fn parse_gpus(v: &str) -> anyhow::Result<DeviceRequest> {
    let v = v.trim_matches(|c| c == '"' || c == '\'');
    let mut r = DeviceRequest {
        capabilities: vec![vec!["gpu".into()]],
        ..Default::default()
    };
    if let Some(ids) = v.strip_prefix("device=") {
        r.device_ids = ids.split(',').map(str::to_string).collect();
        if r.device_ids.iter().any(String::is_empty) {
            bail!("--gpus: {v:?}: empty device ID");
        }
        return Ok(r);
    }
    for part in v.split(',') {
        match part.split_once('=') {
            None if part == "all" => r.count = -1,
            None => {
                r.count = part.parse().ok().filter(|n: &i64| *n > 0).ok_or_else(|| {
                    anyhow!("--gpus: {part:?}: expected all, a count or device=ID")
                })?;
            }
            Some(("count", n)) => {
                r.count = if n == "all" {
                    -1
                } else {
                    n.parse()
                        .ok()
                        .filter(|n: &i64| *n > 0)
                        .ok_or_else(|| anyhow!("--gpus: invalid count {n:?}"))?
                };
            }
            Some(("driver", d)) => r.driver = d.to_string(),
            Some(("capabilities", c)) => r.capabilities = vec![vec![c.to_string()]],
            Some((k, _)) => {
                bail!("--gpus: unknown option {k:?} (count, device, driver, capabilities)")
            }
        }
    }
    if r.count == 0 {
        bail!("--gpus: {v:?}: say how many GPUs (all, a count, or device=ID)");
    }
    Ok(r)
}
