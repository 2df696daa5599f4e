//! berth's container engine: turns an image and Docker-like options into a running container
//! (an OCI bundle on an image snapshot, started through the `berth-runtime` binary), with a
//! monitor process per container that owns its stdio, logs and exit status.
//!
//! The key design choice is that there is no daemon: every `berth` command reads and writes
//! the container store under `ROOT/containers` (a flock per container), and the only
//! long-lived process of a container is its monitor (see `monitor.rs`), started by `run` or
//! `start` and gone when the container is. State on disk is never trusted alone: a status of
//! running is checked against the monitor's and the init's pid and start time.
//!
//! What it does not do: parse command lines or print tables (the CLI does), touch the stdio or
//! terminal of the process it runs in (attach and exec take the caller's streams, see
//! `attach.rs` and `exec.rs`), pull images (see
//! `create::pull_missing_image`), make bridges, rules or DNS servers (berth-network does;
//! `network.rs` maps containers onto it).

mod attach;
mod changes;
mod checkpoint;
mod commit;
mod cp;
mod create;
mod devices;
mod disk;
mod error;
mod events;
mod exec;
mod image_list;
mod images;
mod lifecycle;
mod lists;
mod logs;
mod monitor;
mod network;
mod ops;
mod options;
mod record;
mod rootpath;
mod runtime;
mod spec;
mod stats;
mod store;
mod system;
mod units;
mod update;
mod user;
mod util;
mod volumes;
mod wait;

use std::path::{Path, PathBuf};

pub use attach::{
    AttachEnd, AttachIo, AttachWait, Attachment, DEFAULT_DETACH_KEYS, Detacher, Resizer,
    parse_detach_keys,
};
pub use berth_network::{
    CreateOptions as NetworkCreateOptions, DEFAULT_NETWORK, DNS_COMMAND, Endpoint, Network,
    Networks, PortMapping, PortRequest, parse_publish,
};
pub use changes::{Change, ChangeKind};
pub use checkpoint::{Checkpoint, CheckpointOptions, Migrated, MigrationTarget};
pub use commit::{DiffOptions, dir_layer};
pub use cp::{ExtractOptions, PathStat};
pub use create::{check_nano_cpus, nano_cpus, parse_cpus, parse_restart_policy};
pub use disk::{
    API_VERSION, ContainerUsage, DiskUsage, ImagePruneReport, ImageUsage, Info, MIN_API_VERSION,
    SystemPruneReport, UsageSummary, VolumeUsage,
};
pub use error::{Error, Result};
pub use events::{Actor, Event, EventFilter, EventLog, EventQuery};
pub use exec::{ExecConfig, ExecHandle, ExecInspect, ExecIo, ExecProcess, ProcessConfig};
pub use image_list::{
    Descriptor, ImageInspect, ImageInspectConfig, ImageListOptions, ImageMetadata, ImageSummary,
    RootFs,
};
pub use images::{ImageDeleted, LoadedImage};
pub use lists::{
    ContainerSummary, Filters, ListOptions, Port, SummaryEndpoint, SummaryHostConfig,
    SummaryNetworkSettings, human_duration,
};
pub use logs::{LogEntry, LogOptions};
pub use monitor::{EarlyMonitor, Starting, reap_monitors, wait_process_exit};
pub use network::{
    ConfigReference, Ipam, IpamConfig, NetworkContainer, NetworkInspect, PREDEFINED_NETWORKS,
    is_predefined_network,
};
pub use ops::{ContainerInfo, Stats};
pub use options::ContainerCreate;
pub use record::{
    BindOptions, Config, DeviceMapping, DeviceRequest, EndpointIpamConfig, EndpointSettings,
    Health, HealthConfig, HealthLog, HealthStatus, HostConfig, LogConfig, Mount, MountPoint,
    NetworkingConfig, PortBinding, Record, RestartPolicy, RestartPolicyName, State, Status,
    TmpfsOptions, Ulimit, VolumeOptions,
};
pub use runtime::locate_runtime;
pub use stats::{
    BlkioEntry, BlkioStats, ContainerStats, CpuStats, CpuUsage, InterfaceStats, MemoryStats,
    PidsStats, Throttling,
};
pub use system::{BootResult, PruneReport};
pub use units::{bytes_size, human_size, human_size3};
pub use update::UpdateConfig;
pub use util::parse_bytes;
pub use util::{parse_duration, parse_rfc3339, parse_signal, parse_timestamp};
pub use volumes::{Volume, VolumeCreate, VolumePrune};
pub use wait::{ContainerWait, WaitCondition};

/// The hidden subcommand of the `berth` binary that runs a monitor:
/// `berth --root R --runtime RT __monitor [--wait-attach] [--ready-fd N] ID`, or with
/// `--id-fd N` instead of the ID ([`Engine::spawn_monitor_early`]).
pub const MONITOR_COMMAND: &str = "__monitor";

/// A container label naming the process that owns it (a pid): when that process exits, even
/// killed, the container's monitor kills and removes the container (a build's `RUN` step).
pub const OWNER_PID_LABEL: &str = "io.berth.owner.pid";

/// The engine over one root directory.
#[derive(Clone, Debug)]
pub struct Engine {
    root: PathBuf,
    images: berth_image::Store,
    containers: store::Store,
    runtime: runtime::Runtime,
    monitor_exe: PathBuf,
    networks: berth_network::Networks,
    events: events::EventLog,
}

impl Engine {
    /// An engine with its state under `root`, running containers with the OCI runtime binary
    /// `runtime`; monitors are started as `monitor_exe __monitor ...` (the `berth` binary).
    pub fn new(root: &Path, runtime: &Path, monitor_exe: &Path) -> Result<Self> {
        util::private_dir(root)?;
        let root = root
            .canonicalize()
            .map_err(error::io_err("resolve", root))?;
        util::private_dir(&root.join("volumes"))?;
        Ok(Self {
            images: berth_image::Store::new(&root)?,
            containers: store::Store::new(&root)?,
            runtime: runtime::Runtime::new(runtime.to_path_buf(), root.join("runtime")),
            monitor_exe: monitor_exe.to_path_buf(),
            networks: berth_network::Networks::new(&root, monitor_exe),
            events: events::EventLog::new(&root),
            root,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The OCI runtime binary containers are run with (for helper processes of a front end,
    /// such as a build's reaper, that open an engine of their own).
    pub fn runtime_bin(&self) -> &Path {
        &self.runtime.bin
    }

    /// The image store.
    pub fn images(&self) -> &berth_image::Store {
        &self.images
    }

    /// The event log (front ends record their image operations in it too).
    pub fn events(&self) -> &events::EventLog {
        &self.events
    }

    /// Records a container event with Docker's attributes (`image`, `name`, the labels) plus
    /// `extra`.
    pub(crate) fn container_event(&self, r: &Record, action: &str, extra: &[(&str, String)]) {
        tracing::debug!(container = %r.id, name = %r.name, action, "event");
        let mut a = r.config.labels.clone();
        a.insert("image".into(), r.config.image.clone());
        a.insert("name".into(), r.name.clone());
        for (k, v) in extra {
            a.insert(k.to_string(), v.clone());
        }
        self.events
            .append(&events::Event::new("container", action, &r.id, a));
    }
}
