//! What the engine records about a container, in Docker's shapes and field names so `inspect`
//! can print them as they are: the [`Record`] (config.json, written once at create, changed
//! only by rename) and the [`State`] (state.json, rewritten under the container's lock).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Docker's `Config`: what runs, from the image and the flags. The same shape is the request
/// (the Engine API's `POST /containers/create` body, API v1.44, with its field names) and, with
/// the image's values merged in, what the record keeps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    /// Hostname in the UTS namespace (empty: the short ID, or the host's with `--network host`).
    pub hostname: String,
    /// `USER[:GROUP]` as given (or the image's).
    pub user: String,
    /// Whether a terminal is allocated (`-t`).
    pub tty: bool,
    /// Whether stdin is kept open (`-i`).
    pub open_stdin: bool,
    /// Environment, `KEY=VALUE`; in a request, a bare `KEY` removes the image's `KEY`.
    pub env: Vec<String>,
    /// Command (after the entrypoint). In a request, none or empty means the image's (unless
    /// an `Entrypoint` is given, which resets it, as in Docker).
    pub cmd: Option<Vec<String>>,
    /// Entrypoint. In a request, none means the image's; `[]` or `[""]` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// The image as the user named it.
    pub image: String,
    /// Anonymous volumes asked for (`-v /path`): path -> `{}`. (The image's `VOLUME`s do not
    /// get volumes made for them.)
    pub volumes: BTreeMap<String, serde_json::Value>,
    /// Working directory.
    pub working_dir: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Signal for `stop` (default SIGTERM).
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10).
    pub stop_timeout: Option<i64>,
    /// Health check. In a request, each zero field (and an empty `Test`) takes the image's
    /// value; the record keeps the merged check with Docker's defaults filled in.
    pub healthcheck: Option<HealthConfig>,
    /// Ports the image exposes (`80/tcp` -> `{}`), what `-P` publishes.
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// `--mac-address` as API versions before 1.44 send it (1.44 has it in the endpoint).
    pub mac_address: String,
}

/// Docker's `Healthcheck` (durations in nanoseconds).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `["CMD-SHELL", "cmd"]`, `["CMD", args...]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Time between checks.
    pub interval: u64,
    /// Time a check may take.
    pub timeout: u64,
    /// Failures in a row before unhealthy.
    pub retries: u32,
    /// Time after start when failures do not count.
    pub start_period: u64,
}

/// Docker's `RestartPolicy`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// When to restart.
    pub name: RestartPolicyName,
    /// For on-failure: most restarts (0 = unlimited).
    pub maximum_retry_count: u32,
}

/// A restart policy's name, as the Engine API spells it (`""` is `no`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicyName {
    /// Never.
    #[default]
    #[serde(rename = "no", alias = "")]
    No,
    /// Always, also after a reboot; a user's stop holds until the next start.
    #[serde(rename = "always")]
    Always,
    /// As `always`, but a container a user stopped stays stopped after a reboot.
    #[serde(rename = "unless-stopped")]
    UnlessStopped,
    /// When it exits non-zero, at most `MaximumRetryCount` times (0: no limit).
    #[serde(rename = "on-failure")]
    OnFailure,
}

impl RestartPolicyName {
    /// The name Docker uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicyName::No => "no",
            RestartPolicyName::Always => "always",
            RestartPolicyName::UnlessStopped => "unless-stopped",
            RestartPolicyName::OnFailure => "on-failure",
        }
    }

    /// Parses a name (`""` is `no`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" | "no" => RestartPolicyName::No,
            "always" => RestartPolicyName::Always,
            "unless-stopped" => RestartPolicyName::UnlessStopped,
            "on-failure" => RestartPolicyName::OnFailure,
            _ => return None,
        })
    }
}

impl std::fmt::Display for RestartPolicyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RestartPolicy {
    /// Whether the monitor starts the container again after it exited with `code`, having
    /// restarted it `restarts` times; never after a user's stop.
    pub fn restarts_after(&self, code: i32, manual_stop: bool, restarts: u32) -> bool {
        !manual_stop
            && match self.name {
                RestartPolicyName::Always | RestartPolicyName::UnlessStopped => true,
                RestartPolicyName::OnFailure => {
                    code != 0
                        && (self.maximum_retry_count == 0 || restarts < self.maximum_retry_count)
                }
                RestartPolicyName::No => false,
            }
    }

    /// Whether `system boot` starts it: `always`, and `unless-stopped` unless a user
    /// stopped it.
    pub fn restarts_at_boot(&self, manual_stop: bool) -> bool {
        match self.name {
            RestartPolicyName::Always => true,
            RestartPolicyName::UnlessStopped => !manual_stop,
            _ => false,
        }
    }
}

/// Docker's `LogConfig`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    /// Always `json-file`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// `max-size`, `max-file`.
    pub config: BTreeMap<String, String>,
}

/// One `--ulimit`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    /// `nofile`, `nproc`, ...
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// Docker's `HostConfig`: how it runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `-v` specs as given.
    pub binds: Vec<String>,
    /// `--mount`s. (Records before this field kept the flags' strings as `MountSpecs`;
    /// what they resolved to is in [`Record::mounts`], so those load without it.)
    pub mounts: Vec<Mount>,
    /// `--tmpfs` path -> options.
    pub tmpfs: BTreeMap<String, String>,
    /// Memory limit in bytes (0 = none).
    pub memory: i64,
    /// Memory + swap limit in bytes (0 = unset, -1 = unlimited).
    pub memory_swap: i64,
    /// Memory soft limit in bytes (0 = none).
    pub memory_reservation: i64,
    /// CPUs in units of 1e-9.
    pub nano_cpus: i64,
    /// CPU shares.
    pub cpu_shares: i64,
    /// CPUs allowed.
    pub cpuset_cpus: String,
    /// Most processes (None or <= 0 = unlimited).
    pub pids_limit: Option<i64>,
    /// Resource limits.
    pub ulimits: Vec<Ulimit>,
    /// All capabilities, devices, no seccomp, no masked paths.
    pub privileged: bool,
    /// Capabilities added.
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// `seccomp=`, `no-new-privileges`, `apparmor=`.
    pub security_opt: Vec<String>,
    /// Read-only root filesystem.
    pub readonly_rootfs: bool,
    /// `bridge` (default), `none`, `host`, `container:<id>` or a user network's name.
    pub network_mode: String,
    /// `-p`: `80/tcp` -> bindings (Docker's `PortBindings`; an empty HostPort is any port).
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`.
    pub publish_all_ports: bool,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--add-host NAME:IP`.
    pub extra_hosts: Vec<String>,
    /// Restart policy.
    pub restart_policy: RestartPolicy,
    /// `--rm`.
    pub auto_remove: bool,
    /// Logging.
    pub log_config: LogConfig,
    /// Run an init (tini/catatonit) as pid 1.
    pub init: bool,
    /// `--shm-size`: bytes of /dev/shm (the record has Docker's 64 MiB when none was asked).
    pub shm_size: i64,
    /// `--device`s.
    pub devices: Vec<DeviceMapping>,
    /// `--ipc`: `private` (the default), `shareable`, `host`, `none` or `container:<id>`.
    pub ipc_mode: String,
    /// `--pid`: empty (its own), `host` or `container:<id>`.
    pub pid_mode: String,
    /// `--cgroupns`: `private` (the default: its own cgroup namespace) or `host`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cgroupns_mode: String,
    /// `--userns`: empty or `host` (the only user namespace berth runs containers in).
    pub userns_mode: String,
    /// `--sysctl`: namespaced kernel parameters.
    pub sysctls: BTreeMap<String, String>,
    /// `--group-add`: group names (in the image's /etc/group) or numbers.
    pub group_add: Vec<String>,
    /// `--gpus`: devices asked for, found as CDI devices on the host.
    pub device_requests: Vec<DeviceRequest>,
}

/// One `--device` (Docker's `DeviceMapping`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    /// The device node (or a directory of them) on the host.
    pub path_on_host: String,
    /// Where it appears in the container (empty: the same path).
    pub path_in_container: String,
    /// What the device cgroup allows: some of `r`, `w`, `m` (empty: `rwm`).
    pub cgroup_permissions: String,
}

/// One `--gpus` request (Docker's `DeviceRequest`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceRequest {
    /// The driver (empty: any).
    pub driver: String,
    /// How many devices (-1: all); ignored when `DeviceIDs` are given.
    pub count: i64,
    /// The devices by ID (CDI device names, or indexes).
    #[serde(rename = "DeviceIDs")]
    pub device_ids: Vec<String>,
    /// Capabilities asked for, any of the lists (`[["gpu"]]`).
    pub capabilities: Vec<Vec<String>>,
    /// Driver options.
    pub options: BTreeMap<String, String>,
}

/// One host side of a published port (Docker's `PortBinding`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    /// Host address (empty: every address).
    pub host_ip: String,
    /// Host port (empty: any free port).
    pub host_port: String,
}

/// One `--mount` (Docker's `Mount` in `HostConfig.Mounts`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Host path (bind), volume name (volume; empty for an anonymous one), nothing (tmpfs).
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// Options of a bind mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    /// Options of a volume mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    /// Options of a tmpfs mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

/// Docker's `BindOptions`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    /// `rprivate` (the default), `private`, `rshared`, `shared`, `rslave`, `slave`.
    pub propagation: String,
}

/// Docker's `VolumeOptions`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    /// Do not copy the image's files into a new volume.
    pub no_copy: bool,
}

/// Docker's `TmpfsOptions`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    /// Size in bytes (0: the kernel's default, half of the RAM).
    pub size_bytes: i64,
    /// Permission bits of the mount's root (0: the kernel's default, 1777).
    pub mode: u32,
}

/// Docker's `NetworkingConfig`: the endpoint asked for on the container's network, keyed by
/// the network's name (`default` is the network mode's).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    /// Network name -> endpoint.
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

impl NetworkingConfig {
    /// The endpoint asked for on `network` (or under `default`), if any.
    pub fn endpoint(&self, network: &str) -> Option<&EndpointSettings> {
        self.endpoints_config
            .get(network)
            .or_else(|| self.endpoints_config.get("default"))
    }
}

/// Docker's `EndpointSettings` as a create request gives them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    /// `--ip`.
    #[serde(rename = "IPAMConfig", skip_serializing_if = "Option::is_none")]
    pub ipam_config: Option<EndpointIpamConfig>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--mac-address`.
    pub mac_address: String,
}

/// Docker's `EndpointIPAMConfig`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamConfig {
    /// `--ip`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// Reads the record's `NetworkingConfig`, or what records before it kept as `Networking`
/// (`{"Aliases": [...], "IPv4Address": "..."}`), as the `default` endpoint.
fn networking_compat<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NetworkingConfig, D::Error> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Old {
        aliases: Vec<String>,
        #[serde(rename = "IPv4Address")]
        ipv4_address: String,
    }
    let v = serde_json::Value::deserialize(d)?;
    if v.get("EndpointsConfig").is_some() || v.as_object().is_some_and(|o| o.is_empty()) {
        return serde_json::from_value(v).map_err(serde::de::Error::custom);
    }
    let old: Old = serde_json::from_value(v).map_err(serde::de::Error::custom)?;
    let mut n = NetworkingConfig::default();
    n.endpoints_config.insert(
        "default".into(),
        EndpointSettings {
            ipam_config: (!old.ipv4_address.is_empty()).then_some(EndpointIpamConfig {
                ipv4_address: old.ipv4_address,
            }),
            aliases: old.aliases,
            mac_address: String::new(),
        },
    );
    Ok(n)
}

/// Docker's `MountPoint` in `Mounts`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Volume name (volumes only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Host path (empty for tmpfs).
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// The volume's driver (`local`; volumes only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Options (tmpfs: size=..., mode=...).
    #[serde(default)]
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
}

/// The engine's own record of a container (`containers/<id>/config.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// argv[0] of the process.
    pub path: String,
    /// The rest of argv.
    pub args: Vec<String>,
    /// Image manifest digest.
    pub image: String,
    /// What runs.
    pub config: Config,
    /// How it runs.
    pub host_config: HostConfig,
    /// Resolved mounts.
    pub mounts: Vec<MountPoint>,
    /// The endpoint asked for (`--ip`, `--network-alias`, `--mac-address`), keyed by the
    /// network's name.
    #[serde(
        default,
        rename = "NetworkingConfig",
        alias = "Networking",
        deserialize_with = "networking_compat"
    )]
    pub networking: NetworkingConfig,
}

/// A container's status, as Docker names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started.
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Exited, waiting for the restart policy's back-off.
    Restarting,
    /// Its process has exited.
    Exited,
    /// Being removed.
    Removing,
    /// Could not be stopped or removed.
    Dead,
}

impl Status {
    /// Whether Docker calls it running (`State.Running`): running, paused or restarting, a
    /// container with a live monitor.
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }

    /// The name Docker prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Removing => "removing",
            Status::Dead => "dead",
        }
    }
}

/// One health check result.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    /// When it started.
    pub start: String,
    /// When it ended.
    pub end: String,
    /// Its exit code (0 healthy, else unhealthy).
    pub exit_code: i32,
    /// Its output (truncated).
    pub output: String,
}

/// A health check's verdict, as Docker names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// In the start period, or no check has passed yet.
    #[default]
    Starting,
    /// The last check passed.
    Healthy,
    /// `Retries` checks in a row failed.
    Unhealthy,
}

impl HealthStatus {
    /// The name Docker prints.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// Docker's `State.Health`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// What the checks say.
    pub status: HealthStatus,
    /// Failures in a row.
    pub failing_streak: u32,
    /// The last results (at most 5).
    pub log: Vec<HealthLog>,
}

/// The state of a container (`containers/<id>/state.json`), Docker's `State` plus what the
/// engine needs to check it (the monitor's identity).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct State {
    /// Status.
    pub status: Status,
    /// Pid of the container's init on the host (0 when not running).
    pub pid: i32,
    /// Exit code of the last run.
    pub exit_code: i32,
    /// Error of the last start, if any.
    pub error: String,
    /// Last start.
    pub started_at: String,
    /// Last exit.
    pub finished_at: String,
    /// Whether the last run ended by the OOM killer.
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Health, when a health check is configured.
    pub health: Option<Health>,
    /// Restarts done by the restart policy.
    pub restart_count: u32,
    /// Set by stop/kill so the restart policy does not restart it.
    pub manual_stop: bool,
    /// Set by `restart` while it stops the container to start it again: the monitor does not
    /// remove an `AutoRemove` (`--rm`) container after that exit, as Docker does not.
    pub manual_restart: bool,
    /// Pid of the monitor.
    pub monitor_pid: i32,
    /// Start time of the monitor (/proc/PID/stat field 22).
    pub monitor_start: u64,
    /// Start time of the init.
    pub pid_start: u64,
    /// While `create` makes the container: the creating process's pid (0 once created). A
    /// container whose creator died before it finished is `dead` (see `Engine::state`), and
    /// `rm` removes whatever had been made for it.
    pub creator_pid: i32,
    /// Start time of the creating process.
    pub creator_start: u64,
    /// While a checkpoint stops the container: its monitor neither restarts nor removes it
    /// (an `AutoRemove` one included) after the exit the checkpoint causes.
    pub checkpointing: bool,
    /// Whether the last run ended in a checkpoint (podman's `State.Checkpointed`).
    pub checkpointed: bool,
    /// CRIU images the next start restores from instead of starting anew (`start
    /// --checkpoint`); the monitor takes it at that start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<RestoreFrom>,
}

/// What `start --checkpoint` asks the monitor to restore.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestoreFrom {
    /// The directory of the CRIU images.
    pub images: PathBuf,
    /// Restore established TCP connections.
    pub tcp_established: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_and_health_are_typed_with_dockers_names() {
        let p: RestartPolicy =
            serde_json::from_str(r#"{"Name":"","MaximumRetryCount":0}"#).unwrap();
        assert_eq!(p.name, RestartPolicyName::No);
        let p: RestartPolicy =
            serde_json::from_str(r#"{"Name":"on-failure","MaximumRetryCount":2}"#).unwrap();
        assert_eq!(p.name, RestartPolicyName::OnFailure);
        assert!(p.restarts_after(1, false, 1) && !p.restarts_after(1, false, 2));
        assert!(
            !p.restarts_after(0, false, 0),
            "on-failure: not after success"
        );
        assert!(!p.restarts_after(1, true, 0), "never after a user's stop");
        assert!(serde_json::from_str::<RestartPolicy>(r#"{"Name":"sometimes"}"#).is_err());
        let u = RestartPolicy {
            name: RestartPolicyName::UnlessStopped,
            maximum_retry_count: 0,
        };
        assert!(u.restarts_at_boot(false) && !u.restarts_at_boot(true));
        assert_eq!(serde_json::to_value(&u).unwrap()["Name"], "unless-stopped");
        let h: Health =
            serde_json::from_str(r#"{"Status":"healthy","FailingStreak":0,"Log":[]}"#).unwrap();
        assert_eq!(h.status, HealthStatus::Healthy);
    }

    /// A config.json written before the typed create request (flag strings under
    /// `MountSpecs`, `Networking` with `Aliases`/`IPv4Address`, `[]` for no entrypoint) loads.
    #[test]
    fn a_record_of_the_older_shape_loads() {
        let old = serde_json::json!({
            "Id": "a".repeat(64), "Name": "old", "Created": "2026-01-01T00:00:00Z",
            "Path": "sh", "Args": [], "Image": "sha256:00",
            "Config": {"Hostname": "h", "Env": [], "Cmd": ["sh"], "Entrypoint": [],
                       "Image": "busybox", "Labels": {}, "ExposedPorts": {}},
            "HostConfig": {"Binds": ["/a:/b"], "MountSpecs": ["type=tmpfs,target=/t"],
                           "NetworkMode": "net1", "PidsLimit": null},
            "Mounts": [],
            "Networking": {"Aliases": ["web"], "IPv4Address": "10.89.7.9"}
        });
        let r: Record = serde_json::from_value(old).unwrap();
        assert_eq!(r.host_config.binds, ["/a:/b"]);
        assert!(r.host_config.mounts.is_empty());
        let ep = r.networking.endpoint("net1").unwrap();
        assert_eq!(ep.aliases, ["web"]);
        assert_eq!(ep.ipam_config.as_ref().unwrap().ipv4_address, "10.89.7.9");
        // And what it is saved as loads back the same.
        let again: Record = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(again.networking.endpoint("net1").unwrap().aliases, ["web"]);
    }

    /// The Engine API's create body deserializes into the request.
    #[test]
    fn an_engine_api_create_body_deserializes() {
        let body = serde_json::json!({
            "Image": "busybox", "Cmd": ["true"], "Env": ["A=1"], "Labels": {"k": "v"},
            "HostConfig": {"Memory": 67108864, "Mounts": [{"Type": "tmpfs", "Target": "/t",
                           "TmpfsOptions": {"SizeBytes": 1024}}],
                           "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}},
            "NetworkingConfig": {"EndpointsConfig": {"n": {"IPAMConfig": {"IPv4Address": "10.0.0.2"},
                                 "Aliases": ["x"], "MacAddress": "02:00:00:00:00:01"}}}
        });
        let r: crate::ContainerCreate = serde_json::from_value(body).unwrap();
        assert_eq!(r.config.image, "busybox");
        assert_eq!(r.config.cmd.as_deref(), Some(&["true".to_string()][..]));
        assert_eq!(r.host_config.memory, 64 << 20);
        assert_eq!(
            r.host_config.mounts[0]
                .tmpfs_options
                .as_ref()
                .unwrap()
                .size_bytes,
            1024
        );
        assert_eq!(r.host_config.restart_policy.maximum_retry_count, 2);
        assert_eq!(
            r.networking.endpoint("n").unwrap().mac_address,
            "02:00:00:00:00:01"
        );
    }
}
