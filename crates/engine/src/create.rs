//! `create`: the image and the flags become a [`Record`], a mounted snapshot, the files under
//! /etc the container gets, its volumes and the OCI bundle.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_image::{Image, Reference, SnapshotMode, Snapshotter};
use serde_json::Value;

use crate::Engine;
use crate::error::{Error, Result, invalid, io_err};
use crate::options::CreateOptions;
use crate::record::{
    Config, HealthConfig, HostConfig, LogConfig, Record, RestartPolicy, State, Ulimit,
};
use crate::spec::{self, EtcFiles};
use crate::store::{random_name, valid_name};
use crate::util::{parse_bytes, parse_duration, rfc3339};
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

fn merge_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split('=').next().unwrap_or(kv);
    env.retain(|e| e.split('=').next() != Some(key));
    env.push(kv.to_string());
}

fn dur_ns(flag: &str, v: &Option<String>, default: Duration) -> Result<u64> {
    match v {
        None => Ok(default.as_nanos() as u64),
        Some(s) => parse_duration(s)
            .map(|d| d.as_nanos() as u64)
            .ok_or_else(|| invalid(flag, format!("{s:?} is not a duration (e.g. 30s)"))),
    }
}

/// The health check as Docker merges it: `--no-healthcheck` disables it (`["NONE"]`),
/// `--health-cmd` replaces the image's test, and each `--health-*` flag replaces one field of the
/// image's `Healthcheck`; what neither gives takes Docker's defaults (30 s, 30 s, 3, 0).
fn healthcheck(
    image: Option<&serde_json::Value>,
    o: &CreateOptions,
) -> Result<Option<HealthConfig>> {
    if o.no_healthcheck {
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    let base: HealthConfig = image
        .and_then(|h| serde_json::from_value(h.clone()).ok())
        .unwrap_or_default();
    let test = match &o.health_cmd {
        Some(cmd) => vec!["CMD-SHELL".into(), cmd.clone()],
        None => base.test.clone(),
    };
    if test.is_empty() {
        return Ok(None);
    }
    let or = |v: u64, d: Duration| if v > 0 { Duration::from_nanos(v) } else { d };
    Ok(Some(HealthConfig {
        test,
        interval: dur_ns(
            "--health-interval",
            &o.health_interval,
            or(base.interval, Duration::from_secs(30)),
        )?,
        timeout: dur_ns(
            "--health-timeout",
            &o.health_timeout,
            or(base.timeout, Duration::from_secs(30)),
        )?,
        retries: o
            .health_retries
            .or((base.retries > 0).then_some(base.retries))
            .unwrap_or(3),
        start_period: dur_ns(
            "--health-start-period",
            &o.health_start_period,
            or(base.start_period, Duration::ZERO),
        )?,
    }))
}

/// Builds the record (without mounts) from the image config and the options.
fn make_record(
    engine: &Engine,
    id: &str,
    name: &str,
    image: &Image,
    o: &CreateOptions,
) -> Result<Record> {
    let ic = serde_json::to_value(&image.config).unwrap_or_default();
    let ic = &ic["config"];
    let mut c = Config {
        image: o.image.clone(),
        tty: o.tty,
        open_stdin: o.interactive,
        ..Default::default()
    };
    // Entrypoint and Cmd: --entrypoint resets the image's Cmd, as in Docker.
    match &o.entrypoint {
        Some(ep) => {
            c.entrypoint = if ep.is_empty() {
                vec![]
            } else {
                vec![ep.clone()]
            };
            c.cmd = o.cmd.clone();
        }
        None => {
            c.entrypoint = str_list(&ic["Entrypoint"]);
            c.cmd = if o.cmd.is_empty() {
                str_list(&ic["Cmd"])
            } else {
                o.cmd.clone()
            };
        }
    }
    let mut argv: Vec<String> = c.entrypoint.iter().chain(&c.cmd).cloned().collect();
    if argv.is_empty() {
        return Err(invalid("run", "no command specified"));
    }
    let path = argv.remove(0);

    c.hostname = match (&o.hostname, o.network.as_deref()) {
        (Some(h), _) => h.clone(),
        (None, Some("host")) => fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        _ => id[..12].to_string(),
    };
    let mut env = str_list(&ic["Env"]);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    merge_env(&mut env, &format!("HOSTNAME={}", c.hostname));
    if o.tty {
        merge_env(&mut env, "TERM=xterm");
    }
    for f in &o.env_files {
        let s = fs::read_to_string(f).map_err(io_err("read --env-file", f))?;
        for line in s
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            env_flag(&mut env, line);
        }
    }
    for e in &o.env {
        env_flag(&mut env, e);
    }
    c.env = env;
    c.working_dir = o
        .workdir
        .clone()
        .or_else(|| ic["WorkingDir"].as_str().map(str::to_string))
        .unwrap_or_default();
    if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
        return Err(invalid(
            "--workdir",
            "the working directory must be absolute",
        ));
    }
    c.user = o
        .user
        .clone()
        .or_else(|| ic["User"].as_str().map(str::to_string))
        .unwrap_or_default();
    if let Some(l) = ic["Labels"].as_object() {
        for (k, v) in l {
            c.labels
                .insert(k.clone(), v.as_str().unwrap_or("").to_string());
        }
    }
    for l in &o.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        c.labels.insert(k.to_string(), v.to_string());
    }
    c.stop_signal = o
        .stop_signal
        .clone()
        .or_else(|| ic["StopSignal"].as_str().map(str::to_string));
    if let Some(s) = &c.stop_signal
        && crate::util::parse_signal(s).is_none()
    {
        return Err(invalid("--stop-signal", format!("invalid signal {s:?}")));
    }
    c.stop_timeout = o.stop_timeout;
    c.healthcheck = healthcheck(image.healthcheck.as_ref(), o)?;

    let mut hc = HostConfig {
        binds: o.volumes.clone(),
        mount_specs: o.mounts.clone(),
        privileged: o.privileged,
        cap_add: o.cap_add.clone(),
        cap_drop: o.cap_drop.clone(),
        security_opt: o.security_opt.clone(),
        readonly_rootfs: o.read_only,
        auto_remove: o.auto_remove,
        init: o.init,
        cpu_shares: o.cpu_shares.unwrap_or(0),
        cpuset_cpus: o.cpuset_cpus.clone().unwrap_or_default(),
        pids_limit: o.pids_limit,
        ..Default::default()
    };
    let mut networking = crate::record::Networking::default();
    crate::network::fill_record(engine, o, ic, &mut c, &mut hc, &mut networking)?;
    let bytes = |flag: &str, v: &Option<String>| -> Result<i64> {
        match v.as_deref() {
            None => Ok(0),
            Some("-1") => Ok(-1),
            Some(s) => parse_bytes(s).ok_or_else(|| invalid(flag, format!("invalid size {s:?}"))),
        }
    };
    hc.memory = bytes("--memory", &o.memory)?;
    hc.memory_swap = bytes("--memory-swap", &o.memory_swap)?;
    hc.memory_reservation = bytes("--memory-reservation", &o.memory_reservation)?;
    check_memory(hc.memory, hc.memory_swap, hc.memory_reservation)?;
    if let Some(c) = &o.cpus {
        hc.nano_cpus = nano_cpus(c)?;
    }
    for u in &o.ulimits {
        let (name, vals) = u
            .split_once('=')
            .ok_or_else(|| invalid("--ulimit", format!("{u:?}: expected NAME=SOFT[:HARD]")))?;
        let (s, h) = vals.split_once(':').unwrap_or((vals, vals));
        let p = |x: &str| -> Result<i64> {
            x.parse()
                .map_err(|_| invalid("--ulimit", format!("{u:?}: {x:?} is not a number")))
        };
        hc.ulimits.push(Ulimit {
            name: name.to_string(),
            soft: p(s)?,
            hard: p(h)?,
        });
    }
    hc.restart_policy = parse_restart_policy(o.restart.as_deref().unwrap_or(""))?;
    if hc.auto_remove && hc.restart_policy.name != "no" {
        return Err(invalid(
            "--restart",
            "conflicting options: --restart and --rm",
        ));
    }
    let mut log = LogConfig {
        kind: "json-file".into(),
        config: BTreeMap::new(),
    };
    for kv in &o.log_opts {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| invalid("--log-opt", format!("{kv:?}: expected KEY=VALUE")))?;
        match k {
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
        log.config.insert(k.to_string(), v.to_string());
    }
    hc.log_config = log;
    for t in &o.tmpfs {
        let (p, opts) = t.split_once(':').unwrap_or((t, ""));
        hc.tmpfs.insert(p.to_string(), opts.to_string());
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
    if matches!(r, "" | "no") {
        return Ok(RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        });
    }
    let (n, max) = r.split_once(':').unwrap_or((r, ""));
    if !matches!(n, "on-failure" | "always" | "unless-stopped") {
        return Err(invalid(
            "--restart",
            format!("invalid restart policy {r:?} (no, always, unless-stopped, on-failure[:N])"),
        ));
    }
    if !max.is_empty() && n != "on-failure" {
        return Err(invalid(
            "--restart",
            "maximum retry count only works with on-failure",
        ));
    }
    Ok(RestartPolicy {
        name: n.into(),
        maximum_retry_count: if max.is_empty() {
            0
        } else {
            max.parse()
                .map_err(|_| invalid("--restart", format!("invalid count {max:?}")))?
        },
    })
}

/// `--cpus` as Docker checks it: a decimal number of CPUs from 0.01 up to the CPUs this host
/// has (0 means no limit).
pub fn nano_cpus(v: &str) -> Result<i64> {
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
    // SAFETY: sysconf has no memory arguments.
    let host = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1);
    let nano = (n * 1e9).round() as i64;
    if nano == 0 {
        return Ok(0);
    }
    if nano < 10_000_000 || n > host as f64 {
        return Err(invalid(
            "--cpus",
            format!(
                "{v} is out of range: CPUs range from 0.01 to {host}.00, as there are only \
                 {host} CPUs available"
            ),
        ));
    }
    Ok(nano)
}

fn env_flag(env: &mut Vec<String>, e: &str) {
    if e.contains('=') {
        merge_env(env, e);
    } else if let Ok(v) = std::env::var(e) {
        merge_env(env, &format!("{e}={v}"));
    }
}

impl Engine {
    /// Creates a container (`berth create`): returns its ID. Nothing runs yet.
    pub fn create(&self, o: &CreateOptions) -> Result<String> {
        let image = find_image(self, &o.image)?;
        let id = crate::util::random_hex(32);
        let _all = self.containers.lock_all()?;
        let name = match &o.name {
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
        let mut record = make_record(self, &id, &name, &image, o)?;
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
        self.containers.create_entry(&record, &creating)?;
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
        for m in &r.host_config.mount_specs {
            points.push(volumes::parse_mount(&self.root, m)?);
        }
        for (p, opts) in &r.host_config.tmpfs {
            points.push(volumes::tmpfs_point(p, opts));
        }
        // Recorded before they are made, so that `rm -v` after a crash finds new volumes.
        r.mounts = points;
        self.containers.save_record(r)?;
        self.prepare_volumes(r, &rootfs)?;

        // The user must resolve now, so `create` fails as Docker's `start` would.
        crate::user::resolve(&rootfs, &r.config.user)?;
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
        self.write_bundle(r)?;
        self.containers.save_state(&r.id, &State::default())?;
        Ok(())
    }

    /// Writes `bundle/config.json` from the record (at create, and again at each start so a
    /// renamed or updated record takes effect).
    pub(crate) fn write_bundle(&self, r: &Record) -> Result<()> {
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
        let mut spec = spec::build(base, &r, &user, &rootfs, &etc, init)?;
        self.set_netns(&r, &mut spec)?;
        let p = bundle.join("config.json");
        crate::util::write_atomic(
            &p,
            &serde_json::to_vec_pretty(&spec).expect("spec serialises"),
        )
        .map_err(io_err("write", p))
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
