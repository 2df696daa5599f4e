//! `create`: the image and the flags become a [`Record`], a mounted snapshot, the files under
//! /etc the container gets, its volumes and the OCI bundle.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_image::{Image, Reference, SnapshotMode, Snapshotter};
use serde_json::Value;

use crate::Engine;
use crate::error::{Error, Result, invalid, io_err};
use crate::options::ContainerCreate;
use crate::record::{
    Config, HealthConfig, HostConfig, LogConfig, NetworkingConfig, Record, RestartPolicy,
    RestartPolicyName, State, Status,
};
use crate::spec::{self, EtcFiles};
use crate::store::{random_name, valid_name};
use crate::util::{parse_bytes, rfc3339};
use crate::volumes;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// PULL HOOK: where a missing image would be pulled. The engine never touches the network:
/// it fails with [`Error::ImageNotFound`] ("image not found: X (try `berth pull X`)"), and
/// the CLI (`create_pulling` in commands/container.rs, `--pull missing|always|never`) pulls
/// with berth-image's registry client, showing progress, and creates again.
fn pull_missing_image(_engine: &Engine, name: &str) -> Result<Image> {
    Err(Error::ImageNotFound(name.to_string()))
}

/// Loads the image `name` names (a name, a full or short image ID, or a manifest digest:
/// [`berth_image::Store::find_image`], the look-up `rmi` and `inspect` use too), or fails with
/// "image not found".
pub(crate) fn find_image(engine: &Engine, name: &str) -> Result<Image> {
    match engine.images.find_image_loaded(name) {
        Ok(i) => Ok(i),
        Err(berth_image::Error::ImageNotFound(_)) => {
            // A name that is not even a valid reference says so.
            Reference::parse(name)?;
            pull_missing_image(engine, name)
        }
        Err(e) => Err(e.into()),
    }
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `kv` (`KEY=VALUE`) in `env`, replacing the key's earlier value; a bare `KEY` removes
/// it (Docker's rule for a request's `Env`).
fn merge_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split('=').next().unwrap_or(kv);
    env.retain(|e| e.split('=').next() != Some(key));
    if kv.contains('=') {
        env.push(kv.to_string());
    }
}

/// The health check as Docker merges it: a `Test` of `["NONE"]` disables it, a non-empty
/// `Test` replaces the image's, and each non-zero field replaces one field of the image's
/// `Healthcheck`; what neither gives takes Docker's defaults (30 s, 30 s, 3, 0).
fn healthcheck(image: Option<&Value>, user: Option<&HealthConfig>) -> Result<Option<HealthConfig>> {
    let u = user.cloned().unwrap_or_default();
    for (flag, v) in [
        ("--health-interval", u.interval),
        ("--health-timeout", u.timeout),
        ("--health-start-period", u.start_period),
    ] {
        if v > 0 && v < 1_000_000 {
            return Err(invalid(flag, "must be at least 1ms (or 0 for the default)"));
        }
    }
    let base: HealthConfig = image
        .and_then(|h| serde_json::from_value(h.clone()).ok())
        .unwrap_or_default();
    let test = if u.test.is_empty() {
        base.test.clone()
    } else {
        u.test
    };
    match test.first().map(String::as_str) {
        None => return Ok(None),
        Some("NONE") => {
            return Ok(Some(HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            }));
        }
        Some("CMD" | "CMD-SHELL") if test.len() > 1 => {}
        Some(_) => {
            return Err(invalid(
                "--health-cmd",
                format!(
                    "Healthcheck.Test {test:?} must be [\"NONE\"], [\"CMD\", args...] or \
                     [\"CMD-SHELL\", command]"
                ),
            ));
        }
    }
    let pick = |u: u64, b: u64, d: Duration| {
        if u > 0 {
            u
        } else if b > 0 {
            b
        } else {
            d.as_nanos() as u64
        }
    };
    Ok(Some(HealthConfig {
        test,
        interval: pick(u.interval, base.interval, Duration::from_secs(30)),
        timeout: pick(u.timeout, base.timeout, Duration::from_secs(30)),
        retries: if u.retries > 0 {
            u.retries
        } else if base.retries > 0 {
            base.retries
        } else {
            3
        },
        start_period: pick(u.start_period, base.start_period, Duration::ZERO),
    }))
}

/// Builds the record (without mounts) from the image config and the request, checking the
/// request as Docker's daemon does.
fn make_record(
    engine: &Engine,
    id: &str,
    name: &str,
    image: &Image,
    req: &ContainerCreate,
) -> Result<Record> {
    let ic = serde_json::to_value(&image.config).unwrap_or_default();
    let ic = &ic["config"];
    let u = &req.config;
    let mut c = Config {
        image: u.image.clone(),
        tty: u.tty,
        open_stdin: u.open_stdin,
        mac_address: u.mac_address.clone(),
        ..Default::default()
    };
    // Entrypoint and Cmd: an Entrypoint resets the image's Cmd, as in Docker.
    let user_cmd = u.cmd.clone().unwrap_or_default();
    let (entrypoint, cmd) = match &u.entrypoint {
        Some(ep) => {
            let ep: Vec<String> = if ep.len() == 1 && ep[0].is_empty() {
                vec![]
            } else {
                ep.clone()
            };
            (ep, user_cmd)
        }
        None => (
            str_list(&ic["Entrypoint"]),
            if user_cmd.is_empty() {
                str_list(&ic["Cmd"])
            } else {
                user_cmd
            },
        ),
    };
    let mut argv: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
    if argv.is_empty() {
        return Err(invalid("run", "no command specified"));
    }
    let path = argv.remove(0);
    c.entrypoint = (!entrypoint.is_empty()).then_some(entrypoint);
    c.cmd = (!cmd.is_empty()).then_some(cmd);

    let host_network = req.host_config.network_mode == "host";
    c.hostname = if !u.hostname.is_empty() {
        u.hostname.clone()
    } else if host_network {
        fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    } else {
        id[..12].to_string()
    };
    let mut env = str_list(&ic["Env"]);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    merge_env(&mut env, &format!("HOSTNAME={}", c.hostname));
    if u.tty {
        merge_env(&mut env, "TERM=xterm");
    }
    for e in &u.env {
        if e.is_empty() || e.starts_with('=') {
            return Err(invalid(
                "--env",
                format!("invalid environment variable {e:?}"),
            ));
        }
        merge_env(&mut env, e);
    }
    c.env = env;
    c.working_dir = if u.working_dir.is_empty() {
        ic["WorkingDir"].as_str().unwrap_or("").to_string()
    } else {
        u.working_dir.clone()
    };
    if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
        return Err(invalid(
            "--workdir",
            "the working directory must be absolute",
        ));
    }
    c.user = if u.user.is_empty() {
        ic["User"].as_str().unwrap_or("").to_string()
    } else {
        u.user.clone()
    };
    if let Some(l) = ic["Labels"].as_object() {
        for (k, v) in l {
            c.labels
                .insert(k.clone(), v.as_str().unwrap_or("").to_string());
        }
    }
    c.labels
        .extend(u.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    c.stop_signal = u
        .stop_signal
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| ic["StopSignal"].as_str().map(str::to_string));
    if let Some(s) = &c.stop_signal
        && crate::util::parse_signal(s).is_none()
    {
        return Err(invalid("--stop-signal", format!("invalid signal {s:?}")));
    }
    c.stop_timeout = u.stop_timeout;
    c.healthcheck = healthcheck(image.healthcheck.as_ref(), u.healthcheck.as_ref())?;
    for v in u.volumes.keys() {
        if !v.starts_with('/') {
            return Err(invalid(
                "--volume",
                format!("{v:?}: the container path must be absolute"),
            ));
        }
    }
    // The image's VOLUMEs are the container's too (each an anonymous volume, filled from the
    // image at create, unless something else is mounted there), as Docker does.
    c.volumes = u.volumes.clone();
    if let Some(iv) = ic["Volumes"]
        .as_object()
        .filter(|_| !req.skip_image_volumes)
    {
        for k in iv.keys() {
            c.volumes
                .entry(k.clone())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
        }
    }

    let mut hc = req.host_config.clone();
    let mut networking = NetworkingConfig::default();
    crate::network::fill_record(engine, req, ic, &mut c, &mut hc, &mut networking)?;
    check_memory(hc.memory, hc.memory_swap, hc.memory_reservation)?;
    check_nano_cpus(hc.nano_cpus)?;
    if hc.cpu_shares < 0 {
        return Err(invalid("--cpu-shares", "must not be negative"));
    }
    for u in &hc.ulimits {
        spec::rlimit_type(&u.name)?;
        if u.soft > u.hard {
            return Err(invalid(
                "--ulimit",
                format!(
                    "{}: the soft limit {} must be less than or equal to the hard limit {}",
                    u.name, u.soft, u.hard
                ),
            ));
        }
    }
    hc.restart_policy = check_restart_policy(&hc.restart_policy)?;
    if hc.auto_remove && hc.restart_policy.name != RestartPolicyName::No {
        return Err(invalid(
            "--restart",
            "conflicting options: --restart and --rm",
        ));
    }
    hc.log_config = check_log_config(&hc.log_config)?;
    for p in hc.tmpfs.keys() {
        if !p.starts_with('/') {
            return Err(invalid(
                "--tmpfs",
                format!("{p:?}: the path must be absolute"),
            ));
        }
    }
    check_namespaces(engine, &mut hc)?;
    if hc.shm_size < 0 {
        return Err(invalid("--shm-size", "must not be negative"));
    }
    if hc.shm_size == 0 {
        hc.shm_size = DEFAULT_SHM_SIZE;
    }
    for (k, v) in &hc.sysctls {
        check_sysctl(k, v, &hc)?;
    }
    hc.devices = hc
        .devices
        .iter()
        .map(crate::devices::check_mapping)
        .collect::<Result<_>>()?;
    // The CDI devices must be there now, so `create` fails as `start` would.
    crate::devices::gpu_edits(&hc.device_requests)?;
    if let Some(want) = &req.platform {
        check_platform(image, &req.config.image, want)?;
    }
    Ok(Record {
        id: id.to_string(),
        name: name.to_string(),
        created: rfc3339(SystemTime::now()),
        path,
        args: argv,
        image: image.manifest_digest.to_string(),
        config: c,
        host_config: hc,
        mounts: Vec::new(),
        networking,
    })
}

/// Docker's default size of /dev/shm: 64 MiB.
pub(crate) const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// The sysctls that live in a container's IPC namespace, as Docker lists them (plus
/// `fs.mqueue.*`).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// A `--sysctl` as Docker checks it: only namespaced ones (the IPC namespace's and `net.*`),
/// and only when the container has that namespace of its own.
fn check_sysctl(k: &str, v: &str, hc: &HostConfig) -> Result<()> {
    let flag = "--sysctl";
    if k.is_empty() || v.is_empty() {
        return Err(invalid(flag, format!("{k}={v}: expected KEY=VALUE")));
    }
    let shared = |mode: &str| mode == "host" || mode.starts_with("container:");
    if IPC_SYSCTLS.contains(&k) || k.starts_with("fs.mqueue.") {
        if shared(&hc.ipc_mode) {
            return Err(invalid(
                flag,
                format!(
                    "{k} is not allowed with --ipc {}: it would change an IPC namespace the \
                     container does not own",
                    hc.ipc_mode
                ),
            ));
        }
    } else if k.starts_with("net.") {
        if shared(&hc.network_mode) {
            return Err(invalid(
                flag,
                format!(
                    "{k} is not allowed with --network {}: it would change a network \
                     namespace the container does not own",
                    hc.network_mode
                ),
            ));
        }
    } else {
        return Err(invalid(
            flag,
            format!(
                "{k} is not a namespaced kernel parameter: a container can set only {}, \
                 fs.mqueue.* and net.*",
                IPC_SYSCTLS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// `--ipc`, `--pid` and `--userns` checked; `container:NAME` becomes `container:<id>`.
fn check_namespaces(engine: &Engine, hc: &mut HostConfig) -> Result<()> {
    hc.ipc_mode = match hc.ipc_mode.as_str() {
        "" | "private" => "private".into(),
        m @ ("shareable" | "host" | "none") => m.into(),
        m if m.starts_with("container:") => {
            let name = &m["container:".len()..];
            let other = engine.lookup(name)?;
            let o = engine.containers.record(&other)?;
            if !matches!(o.host_config.ipc_mode.as_str(), "shareable" | "host") {
                return Err(invalid(
                    "--ipc",
                    format!(
                        "container {name} has a non-shareable IPC namespace (--ipc {}): create \
                         it with --ipc shareable",
                        if o.host_config.ipc_mode.is_empty() {
                            "private"
                        } else {
                            &o.host_config.ipc_mode
                        }
                    ),
                ));
            }
            format!("container:{other}")
        }
        m => {
            return Err(invalid(
                "--ipc",
                format!("invalid mode {m:?} (private, shareable, host, none or container:NAME)"),
            ));
        }
    };
    if !matches!(hc.cgroupns_mode.as_str(), "" | "private" | "host") {
        return Err(invalid(
            "--cgroupns",
            format!("invalid mode {:?} (private or host)", hc.cgroupns_mode),
        ));
    }
    hc.pid_mode = match hc.pid_mode.as_str() {
        "" => String::new(),
        "host" => "host".into(),
        m if m.starts_with("container:") => {
            format!("container:{}", engine.lookup(&m["container:".len()..])?)
        }
        m => {
            return Err(invalid(
                "--pid",
                format!("invalid mode {m:?} (host or container:NAME)"),
            ));
        }
    };
    if !matches!(hc.userns_mode.as_str(), "" | "host") {
        return Err(invalid(
            "--userns",
            format!(
                "{:?} is not supported: berth runs containers in the host's user namespace \
                 (no user remapping), so only --userns=host is accepted",
                hc.userns_mode
            ),
        ));
    }
    Ok(())
}

/// `--platform` against the image's: the same OS and architecture (and variant, when both
/// name one).
fn check_platform(image: &Image, name: &str, want: &str) -> Result<()> {
    let w = berth_image::Platform::parse(want).ok_or_else(|| {
        invalid(
            "--platform",
            format!("{want:?} is not a platform (os/arch[/variant], e.g. linux/arm64)"),
        )
    })?;
    let c = &image.config;
    let have = berth_image::Platform {
        os: c.os().to_string(),
        architecture: c.architecture().to_string(),
        variant: c.variant().clone(),
    };
    let variant_ok = match (&w.variant, &have.variant) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    if w.os != have.os || w.architecture != have.architecture || !variant_ok {
        return Err(invalid(
            "--platform",
            format!(
                "image {name} is {have}, not the requested {w}: pull that platform \
                 (--pull always --platform {w}) or drop --platform"
            ),
        ));
    }
    Ok(())
}

/// The log configuration: only the `json-file` driver (an empty type is it), with its
/// `max-size` and `max-file` options.
fn check_log_config(l: &LogConfig) -> Result<LogConfig> {
    if !matches!(l.kind.as_str(), "" | "json-file") {
        return Err(invalid(
            "--log-driver",
            format!("{:?}: only json-file is supported", l.kind),
        ));
    }
    for (k, v) in &l.config {
        match k.as_str() {
            "max-size" => {
                parse_bytes(v)
                    .ok_or_else(|| invalid("--log-opt", format!("invalid max-size {v:?}")))?;
            }
            "max-file" => {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| invalid("--log-opt", format!("invalid max-file {v:?}")))?;
            }
            _ => return Err(invalid("--log-opt", format!("unknown log option {k:?}"))),
        }
    }
    Ok(LogConfig {
        kind: "json-file".into(),
        config: l.config.clone(),
    })
}

/// A typed restart policy checked: a known name (empty is `no`), a retry count only with
/// `on-failure`.
fn check_restart_policy(p: &RestartPolicy) -> Result<RestartPolicy> {
    if p.maximum_retry_count > 0 && p.name != RestartPolicyName::OnFailure {
        return Err(invalid(
            "--restart",
            "maximum retry count only works with on-failure",
        ));
    }
    Ok(p.clone())
}

/// Memory limits as Docker checks them (bytes; 0 unset, -1 unlimited swap): at least 6 MB, and
/// swap (memory plus swap) at least the memory limit; a reservation below the limit.
pub(crate) fn check_memory(memory: i64, swap: i64, reservation: i64) -> Result<()> {
    if memory > 0 && memory < 6 << 20 {
        return Err(invalid("--memory", "minimum memory limit allowed is 6MB"));
    }
    if swap > 0 {
        if memory <= 0 {
            return Err(invalid(
                "--memory-swap",
                "a swap limit needs a memory limit: set --memory (-m) too",
            ));
        }
        if swap < memory {
            return Err(invalid(
                "--memory-swap",
                format!(
                    "{swap} is less than the memory limit {memory}: --memory-swap is memory \
                     plus swap, so it must be at least --memory (or -1 for unlimited swap)"
                ),
            ));
        }
    } else if swap < -1 {
        return Err(invalid("--memory-swap", "must be a size or -1 (unlimited)"));
    }
    if reservation < 0 {
        return Err(invalid("--memory-reservation", "must be a size"));
    }
    if reservation > 0 && memory > 0 && reservation > memory {
        return Err(invalid(
            "--memory-reservation",
            "minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    Ok(())
}

/// A `--restart` value: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse_restart_policy(r: &str) -> Result<RestartPolicy> {
    let (n, max) = r.split_once(':').unwrap_or((r, ""));
    let name = RestartPolicyName::parse(n).ok_or_else(|| {
        invalid(
            "--restart",
            format!("invalid restart policy {r:?} (no, always, unless-stopped, on-failure[:N])"),
        )
    })?;
    if !max.is_empty() && name != RestartPolicyName::OnFailure {
        return Err(invalid(
            "--restart",
            "maximum retry count only works with on-failure",
        ));
    }
    Ok(RestartPolicy {
        name,
        maximum_retry_count: if max.is_empty() {
            0
        } else {
            max.parse()
                .map_err(|_| invalid("--restart", format!("invalid count {max:?}")))?
        },
    })
}

/// `--cpus` parsed (a decimal number of CPUs) into units of 1e-9 CPUs, without the range
/// check (the engine checks it at create and update).
pub fn parse_cpus(v: &str) -> Result<i64> {
    let n: f64 = v
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| {
            invalid(
                "--cpus",
                format!("{v:?} is not a number of CPUs (e.g. 1.5)"),
            )
        })?;
    Ok((n * 1e9).round() as i64)
}

/// `NanoCpus` as Docker checks it: from 0.01 CPUs up to the CPUs this host has (0 means no
/// limit).
pub fn check_nano_cpus(nano: i64) -> Result<()> {
    // SAFETY: sysconf has no memory arguments.
    let host = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1);
    if nano != 0 && (nano < 10_000_000 || nano > host * 1_000_000_000) {
        return Err(invalid(
            "--cpus",
            format!(
                "{} is out of range: CPUs range from 0.01 to {host}.00, as there are only \
                 {host} CPUs available",
                nano as f64 / 1e9
            ),
        ));
    }
    Ok(())
}

/// `--cpus` as Docker checks it: [`parse_cpus`] and [`check_nano_cpus`].
pub fn nano_cpus(v: &str) -> Result<i64> {
    let n = parse_cpus(v)?;
    check_nano_cpus(n)?;
    Ok(n)
}

impl Engine {
    /// Creates a container (`berth create`): returns its ID. Nothing runs yet.
    pub fn create(&self, req: &ContainerCreate) -> Result<String> {
        let image = find_image(self, &req.config.image)?;
        let id = crate::util::random_hex(32);
        let _all = self.containers.lock_all()?;
        let name = match &req.name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !valid_name(n) {
                    return Err(invalid(
                        "--name",
                        format!(
                            "invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                        ),
                    ));
                }
                if let Some(other) = self.containers.by_name(n)? {
                    return Err(Error::NameInUse {
                        name: n.to_string(),
                        id: other,
                    });
                }
                n.to_string()
            }
            None => loop {
                let n = random_name();
                if self.containers.by_name(&n)?.is_none() {
                    break n;
                }
            },
        };
        let mut record = make_record(self, &id, &name, &image, req)?;
        self.containers.clean_debris();
        // The container is recorded before anything is made for it, with this process as its
        // creator: if we are killed at any point below, it lists as `dead` and `rm` removes
        // what was made (snapshot, mount, volumes, network), so nothing is left unowned.
        let me = std::process::id() as i32;
        let creating = State {
            creator_pid: me,
            creator_start: crate::util::pid_start_time(me).unwrap_or(0),
            ..Default::default()
        };
        // A `--rm` container is not kept past its run, so not past a power loss either: its
        // files are written atomically (a kill leaves the old or the new) but not fsynced.
        let durable = !record.host_config.auto_remove;
        self.containers.create_entry(&record, &creating, durable)?;
        let dir = self.containers.dir(&id);
        if let Err(e) = self.create_in(&dir, &mut record, &image) {
            // If undoing fails too, the container stays listed, `dead` once we exit, and
            // `rm` retries; the error that matters to the caller is the first.
            let _ = self.remove_made(&record, true);
            return Err(e);
        }
        self.container_event(&record, "create", &[]);
        Ok(id)
    }

    fn create_in(&self, dir: &Path, r: &mut Record, image: &Image) -> Result<()> {
        let snap = Snapshotter::new(&self.images, SnapshotMode::detect());
        let mounts = snap.prepare(&r.id, image)?;
        let rootfs = dir.join("rootfs");
        fs::create_dir(&rootfs).map_err(io_err("create", &rootfs))?;
        fs::write(
            dir.join("snapshot.json"),
            serde_json::to_vec(&mounts).unwrap_or_default(),
        )
        .map_err(io_err("write", dir.join("snapshot.json")))?;
        self.mount_rootfs(&r.id)?;

        // Mounts: -v, --mount, --tmpfs.
        let mut points = Vec::new();
        for v in &r.host_config.binds {
            points.push(volumes::parse_volume(&self.root, v)?);
        }
        for m in &r.host_config.mounts {
            points.push(volumes::mount_point(&self.root, m)?);
        }
        for (p, opts) in &r.host_config.tmpfs {
            points.push(volumes::tmpfs_point(p, opts));
        }
        // Config.Volumes (`-v /path`): anonymous volumes where nothing else is mounted.
        for v in r.config.volumes.keys() {
            if !points.iter().any(|p| p.destination == *v) {
                points.push(volumes::parse_volume(&self.root, v)?);
            }
        }
        // Recorded before they are made, so that `rm -v` after a crash finds new volumes.
        r.mounts = points;
        self.containers.save_record(r)?;
        self.prepare_volumes(r, &rootfs)?;

        // The user and groups must resolve now, so `create` fails as Docker's `start` would.
        crate::user::resolve(&rootfs, &r.config.user)?;
        crate::user::group_ids(&rootfs, &r.host_config.group_add)?;
        if !r.config.working_dir.is_empty() {
            let _ = crate::rootpath::mkdir_in_root(&rootfs, Path::new(&r.config.working_dir));
        }

        // The network namespace and its attachment, then /etc/hosts, /etc/hostname,
        // /etc/resolv.conf.
        self.setup_network(r)?;
        let (hosts, resolv) = if r.host_config.network_mode == "host" {
            let mut h = fs::read_to_string("/etc/hosts").unwrap_or_default();
            for e in &r.host_config.extra_hosts {
                let (name, ip) = e.split_once([':', '=']).unwrap_or((e, ""));
                h += &format!("{ip}\t{name}\n");
            }
            (
                h,
                fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            )
        } else {
            self.etc_network_files(r)?
        };
        for (f, data) in [
            ("hosts", hosts),
            ("hostname", format!("{}\n", r.config.hostname)),
            ("resolv.conf", resolv),
        ] {
            fs::write(dir.join(f), data).map_err(io_err("write", dir.join(f)))?;
        }
        self.containers.save_record(r)?;
        self.write_bundle(r, None)?;
        if r.host_config.auto_remove {
            self.containers.save_state(&r.id, &State::default())?;
        } else {
            self.containers
                .save_state_durable(&r.id, &State::default())?;
        }
        Ok(())
    }

    /// Writes `bundle/config.json` from the record (at create, and again at each start so a
    /// renamed or updated record takes effect).
    /// Writes the container's bundle (`config.json`). `size` is the terminal's (rows, cols)
    /// a client asked for: the runtime gives it to the terminal before the process runs.
    pub(crate) fn write_bundle(&self, r: &Record, size: Option<libc::winsize>) -> Result<()> {
        let dir = self.containers.dir(&r.id);
        let bundle = dir.join("bundle");
        let mut base = spec::base_spec(&self.runtime, &bundle, None)?;
        if let Some(caps) = spec::changed_caps(&base, r)? {
            base = spec::base_spec(&self.runtime, &bundle, Some(&caps))?;
        }
        let rootfs = dir.join("rootfs");
        let user = crate::user::resolve(&rootfs, &r.config.user)?;
        let init = if r.host_config.init {
            Some(spec::find_init()?)
        } else {
            None
        };
        let hosts = dir.join("hosts");
        let hostname = dir.join("hostname");
        let resolv = if r.host_config.network_mode == "host" {
            Path::new("/etc/resolv.conf").to_path_buf()
        } else {
            dir.join("resolv.conf")
        };
        let etc = EtcFiles {
            hosts: &hosts,
            hostname: &hostname,
            resolv: &resolv,
        };
        let mut r = r.clone();
        if user.home != "/" && !r.config.env.iter().any(|e| e.starts_with("HOME=")) {
            r.config.env.push(format!("HOME={}", user.home));
        } else if !r.config.env.iter().any(|e| e.starts_with("HOME=")) {
            r.config.env.push(if user.uid == 0 {
                "HOME=/root".into()
            } else {
                "HOME=/".into()
            });
        }
        let mut user = user;
        for g in crate::user::group_ids(&rootfs, &r.host_config.group_add)? {
            if g != user.gid && !user.additional_gids.contains(&g) {
                user.additional_gids.push(g);
            }
        }
        let mut spec = spec::build(base, &r, &user, &rootfs, &etc, init)?;
        self.set_netns(&r, &mut spec)?;
        self.set_ipc_pid(&r, &mut spec)?;
        crate::devices::apply(&mut spec, &r.host_config)?;
        if let (Some(ws), Some(process)) = (size.filter(|_| r.config.tty), spec.process_mut())
            && ws.ws_row > 0
            && ws.ws_col > 0
        {
            let b = oci_spec::runtime::BoxBuilder::default()
                .height(u64::from(ws.ws_row))
                .width(u64::from(ws.ws_col))
                .build()
                .map_err(|e| Error::Other(format!("console size: {e}")))?;
            process.set_console_size(Some(b));
        }
        // Made again at each start from the record, so not fsynced (and not rewritten when
        // it is already as it would be); compact, the runtime parses it at every command.
        let p = bundle.join("config.json");
        let data = serde_json::to_vec(&spec).expect("spec serialises");
        if fs::read(&p).is_ok_and(|old| old == data) {
            return Ok(());
        }
        Ok(berth_sys::write_atomic_nosync(&p, &data, 0o644)?)
    }

    /// The running init of the container whose namespace `what` (`--ipc`, `--pid`) shares.
    fn donor_pid(&self, what: &str, id: &str) -> Result<i32> {
        let s = self.state(id)?;
        if s.pid <= 0 || !matches!(s.status, Status::Running | Status::Paused) {
            return Err(invalid(
                what,
                format!("container {id} whose namespace is shared is not running: start it first"),
            ));
        }
        Ok(s.pid)
    }

    /// The IPC namespace and /dev/shm (`--ipc`, `--shm-size`) and the PID namespace (`--pid`):
    /// a private /dev/shm of `ShmSize`; a shareable one is a tmpfs the engine mounts at
    /// `<id>/shm` on the host (as Docker does), so that `container:` joiners bind the same
    /// one; `host` takes the host's namespace and /dev/shm; `none` has no /dev/shm.
    fn set_ipc_pid(&self, r: &Record, spec: &mut oci_spec::runtime::Spec) -> Result<()> {
        use oci_spec::runtime::LinuxNamespaceType as Ns;
        let hc = &r.host_config;
        let size = if hc.shm_size > 0 {
            hc.shm_size
        } else {
            DEFAULT_SHM_SIZE
        };
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        let shm = Path::new("/dev/shm");
        let bind = |src: &Path| {
            spec::mount(
                "/dev/shm",
                "bind",
                &src.display().to_string(),
                &["rbind", "rprivate", "nosuid", "nodev", "noexec"],
            )
        };
        // None: the host's; Some(None): a new one; Some(Some(path)): that one.
        let mut ipc_ns: Option<Option<String>> = Some(None);
        match hc.ipc_mode.as_str() {
            "host" => {
                ipc_ns = None;
                spec::push_mount(&mut mounts, bind(shm));
            }
            "none" => mounts.retain(|m| m.destination() != shm),
            "shareable" => {
                let dir = self.containers.dir(&r.id).join("shm");
                self.mount_shm(&dir, size)?;
                spec::push_mount(&mut mounts, bind(&dir));
            }
            m if m.starts_with("container:") => {
                let other = &m["container:".len()..];
                let o = self.containers.record(other)?;
                if o.host_config.ipc_mode == "host" {
                    ipc_ns = None;
                    spec::push_mount(&mut mounts, bind(shm));
                } else {
                    let pid = self.donor_pid("--ipc", other)?;
                    ipc_ns = Some(Some(format!("/proc/{pid}/ns/ipc")));
                    let dir = self.containers.dir(other).join("shm");
                    spec::push_mount(&mut mounts, bind(&dir));
                }
            }
            _ => {
                for m in mounts.iter_mut().filter(|m| m.destination() == shm) {
                    let mut o: Vec<String> = m.options().clone().unwrap_or_default();
                    o.retain(|x| !x.starts_with("size="));
                    o.push(format!("size={size}"));
                    m.set_options(Some(o));
                }
            }
        }
        spec.set_mounts(Some(mounts));
        match ipc_ns {
            None => spec::set_namespace(spec, Ns::Ipc, None, false),
            Some(path) => spec::set_namespace(spec, Ns::Ipc, path.as_deref(), true),
        }
        match hc.pid_mode.as_str() {
            "host" => spec::set_namespace(spec, Ns::Pid, None, false),
            m if m.starts_with("container:") => {
                let pid = self.donor_pid("--pid", &m["container:".len()..])?;
                spec::set_namespace(spec, Ns::Pid, Some(&format!("/proc/{pid}/ns/pid")), true);
            }
            _ => {}
        }
        if !hc.sysctls.is_empty() {
            let mut linux = spec.linux().clone().unwrap_or_default();
            linux.set_sysctl(Some(
                hc.sysctls
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ));
            spec.set_linux(Some(linux));
        }
        Ok(())
    }

    /// Mounts the tmpfs of a shareable /dev/shm at `dir` unless it is mounted.
    fn mount_shm(&self, dir: &Path, size: i64) -> Result<()> {
        if crate::util::is_mountpoint(dir) {
            return Ok(());
        }
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        crate::util::mount(
            "shm",
            dir,
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            &format!("mode=1777,size={size}"),
        )
        .map_err(io_err("mount /dev/shm tmpfs on", dir))
    }

    /// Mounts the container's snapshot at `containers/<id>/rootfs` unless it is mounted.
    pub(crate) fn mount_rootfs(&self, id: &str) -> Result<()> {
        let dir = self.containers.dir(id);
        let rootfs = dir.join("rootfs");
        if crate::util::is_mountpoint(&rootfs) {
            return Ok(());
        }
        let mounts: Vec<berth_image::Mount> = match fs::read(dir.join("snapshot.json")) {
            Ok(d) => serde_json::from_slice(&d).unwrap_or_default(),
            Err(_) => Snapshotter::new(&self.images, SnapshotMode::detect()).mounts(id)?,
        };
        for m in mounts {
            let res = if m.kind == "bind" {
                crate::util::mount(
                    &m.source.display().to_string(),
                    &rootfs,
                    "",
                    libc::MS_BIND | libc::MS_REC,
                    "",
                )
            } else {
                crate::util::mount("overlay", &rootfs, &m.kind, 0, &m.options.join(","))
            };
            res.map_err(io_err("mount snapshot on", &rootfs))?;
        }
        Ok(())
    }
}
