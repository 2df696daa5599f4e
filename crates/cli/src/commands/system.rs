//! `system boot` (what a boot unit runs: containers whose restart policy says so come back
//! after a reboot), `system df|prune|info|events`, `info`, `version`, `events`, `history`,
//! and the `container` group (every container verb, `ls`, `prune`).

use std::io::Write;

use clap::{Args, Subcommand};

use super::container::{engine, format::human_size};
use crate::Cli;

/// Commands over the whole of berth and over all containers.
#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Manage berth itself.
    System {
        /// What to do.
        #[command(subcommand)]
        command: System,
    },
    /// Print events (container, image, network, volume) as they happen; with --since, past
    /// ones first.
    Events(EventsArgs),
    /// Show berth's configuration and what it holds (containers, images, kernel, cgroups).
    Info(InfoArgs),
    /// Show the versions of berth, its API and its OCI runtime.
    Version(InfoArgs),
    /// Show the history of an image: the step that made each layer.
    History(HistoryArgs),
    /// Manage containers (group form; each verb is also a top-level command).
    Container {
        /// What to do.
        #[command(subcommand)]
        command: ContainerGroup,
    },
}

/// `system` verbs.
#[derive(Subcommand, Debug)]
pub enum System {
    /// Start the containers whose restart policy is `always`, or `unless-stopped` and not
    /// stopped by a user: run it once at boot (contrib/systemd/berth-boot.service does).
    /// Containers already running are left alone.
    Boot,
    /// Print events (as `berth events`).
    Events(EventsArgs),
    /// Show disk usage: images, containers, local volumes, build cache.
    Df(DfArgs),
    /// Remove stopped containers, unused networks, dangling images (all unused ones with -a)
    /// and, with --volumes, unused anonymous volumes.
    Prune(SystemPruneArgs),
    /// Show berth's configuration (as `berth info`).
    Info(InfoArgs),
}

/// `info` and `version`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Go template (`{{.ServerVersion}}`), or `json`.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Sizes and dates in human form (`-H=false` for bytes and RFC 3339).
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Do not truncate CREATED BY.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Go template per entry (`{{.CreatedBy}}`), or `json`.
    #[arg(long)]
    pub format: Option<String>,
    /// The image.
    pub image: String,
}

/// `system df`.
#[derive(Args, Debug)]
pub struct DfArgs {
    /// Each image, container and volume too.
    #[arg(short, long)]
    pub verbose: bool,
    /// Go template per summary row (`{{.Type}} {{.Size}}`), or `json`.
    #[arg(long)]
    pub format: Option<String>,
}

/// `system prune`.
#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// All unused images, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Unused anonymous volumes too.
    #[arg(long)]
    pub volumes: bool,
    /// Do not prompt for confirmation (berth never prompts).
    #[arg(short, long)]
    pub force: bool,
}

/// `events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Show events since this time: RFC 3339, Unix seconds, or a duration ago (`10m`).
    #[arg(long)]
    pub since: Option<String>,
    /// Stop at this time (same forms as --since); without it, wait for new events.
    #[arg(long)]
    pub until: Option<String>,
    /// Only events matching: container=, event=, image=, label=KEY[=VALUE], network=,
    /// type=container|image|network|volume, volume=.
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Go template per event (`{{.Type}} {{.Action}} {{.Actor.ID}}`), or `json`.
    #[arg(long)]
    pub format: Option<String>,
}

/// `container` verbs: Docker's `container` group, every container command under one name.
#[derive(Subcommand, Debug)]
pub enum ContainerGroup {
    /// Remove all stopped containers (created, exited, dead).
    Prune(PruneArgs),
    /// Every container verb (run, create, start, ps, logs, exec, stop, rm, ...).
    #[command(flatten)]
    Verb(super::container::ContainerCommand),
    /// Checkpoint containers with CRIU (podman's syntax; `--export` writes podman's archive).
    Checkpoint(super::checkpoint::ContainerCheckpointArgs),
    /// Restore checkpointed containers, or a new one from an exported archive (`--import`).
    Restore(super::checkpoint::ContainerRestoreArgs),
    /// Show a container's published ports (as `berth port`).
    Port {
        /// Container.
        container: String,
        /// `PORT[/PROTO]` to show only that one.
        port: Option<String>,
    },
}

/// `container prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation (berth never prompts).
    #[arg(short, long)]
    pub force: bool,
    /// Only containers that pass these: `label=KEY[=VALUE]`, `label!=KEY[=VALUE]`,
    /// `until=TIME` (created before it: RFC 3339, Unix seconds or a duration ago).
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// Runs a system or container-group command; returns the exit status.
pub fn run(cli: &Cli, cmd: &SystemCommand) -> anyhow::Result<u8> {
    let e = engine(cli)?;
    match cmd {
        SystemCommand::System {
            command: System::Boot,
        } => {
            let mut failed = 0;
            for b in e.boot()? {
                match b.result {
                    Ok(()) => println!("{}", b.name),
                    Err(err) => {
                        failed += 1;
                        eprintln!("berth: start {}: {}", b.name, crate::error_text(&err));
                    }
                }
            }
            Ok(if failed > 0 { 1 } else { 0 })
        }
        SystemCommand::Events(a)
        | SystemCommand::System {
            command: System::Events(a),
        } => events(&e, a),
        SystemCommand::Info(a)
        | SystemCommand::System {
            command: System::Info(a),
        } => info(&e, a),
        SystemCommand::Version(a) => version(&e, a),
        SystemCommand::History(a) => history(&e, a),
        SystemCommand::System {
            command: System::Df(a),
        } => df(&e, a),
        SystemCommand::System {
            command: System::Prune(a),
        } => system_prune(&e, a),
        SystemCommand::Container {
            command: ContainerGroup::Verb(c),
        } => super::container::run(cli, c),
        SystemCommand::Container {
            command: ContainerGroup::Checkpoint(a),
        } => super::checkpoint::container_checkpoint(cli, a),
        SystemCommand::Container {
            command: ContainerGroup::Restore(a),
        } => super::checkpoint::container_restore(cli, a),
        SystemCommand::Container {
            command: ContainerGroup::Port { container, port },
        } => super::network::port(&e, container, port.as_deref()),
        SystemCommand::Container {
            command: ContainerGroup::Prune(a),
        } => {
            let _ = a.force;
            let filters = berth_engine::Filters::parse(&a.filter)?;
            let report = e.prune_containers(&filters)?;
            if !report.removed.is_empty() {
                println!("Deleted Containers:");
                for id in &report.removed {
                    println!("{id}");
                }
                println!();
            }
            println!("Total reclaimed space: {}", human_size(report.reclaimed));
            Ok(0)
        }
    }
}

fn events(e: &berth_engine::Engine, a: &EventsArgs) -> anyhow::Result<u8> {
    let filter = berth_engine::EventFilter::parse(&a.filter)?;
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                super::container::parse_time(s).map_err(|err| anyhow::anyhow!("{flag}: {err}"))
            })
            .transpose()
    };
    let since = time("--since", &a.since)?;
    let until = time("--until", &a.until)?;
    let q = berth_engine::EventQuery {
        // As Docker: without --since, only what happens from now on.
        since: Some(since.unwrap_or_else(std::time::SystemTime::now)),
        until,
        follow: until.is_none_or(|u| u > std::time::SystemTime::now()),
        cancel: None,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let format = a.format.as_deref().map(str::trim);
    // A template is checked before anything is read.
    let template = match format {
        Some("json") | Some("{{json .}}") | None => None,
        Some(t) => Some(super::template::ListFormat::parse(Some(t), t)?),
    };
    let r = e.events().read(&q, &|ev| filter.matches(ev), &mut |ev| {
        match (&template, format) {
            (Some(t), _) => t
                .write(&mut out, &[template_value(ev)], &[])
                .map_err(std::io::Error::other)?,
            (None, Some(_)) => writeln!(
                out,
                "{}",
                serde_json::to_string(&ev.with_legacy_fields()).expect("an event serialises")
            )?,
            (None, None) => writeln!(out, "{}", default_line(ev))?,
        }
        out.flush()
    });
    match r {
        Ok(()) => Ok(0),
        // The reader went away (`berth events | head`): done.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(err) => Err(anyhow::anyhow!("read the event log: {err}")),
    }
}

/// Docker's line: `TIME TYPE ACTION ID (k=v, ...)`.
fn default_line(ev: &berth_engine::Event) -> String {
    let attrs: Vec<String> = ev
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut line = format!(
        "{} {} {} {}",
        humantime::format_rfc3339_nanos(ev.when()),
        ev.kind,
        ev.action,
        ev.actor.id
    );
    if !attrs.is_empty() {
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

/// The fields a template sees, by their Go names (`.Type`, `.Action`, `.Actor.ID`,
/// `.Actor.Attributes`, `.Scope`, `.Time`, `.TimeNano`, and the deprecated `.Status`, `.ID`,
/// `.From`).
fn template_value(ev: &berth_engine::Event) -> serde_json::Value {
    serde_json::json!({
        "Type": ev.kind,
        "Action": ev.action,
        "Actor": {"ID": ev.actor.id, "Attributes": ev.actor.attributes},
        "Scope": ev.scope,
        "Time": ev.time,
        "TimeNano": ev.time_nano,
        "Status": ev.action,
        "ID": ev.actor.id,
        "From": ev.actor.attributes.get("image").cloned().unwrap_or_default(),
    })
}

/// Renders `v` with a `--format` value: `json` is the object on one line, else a template.
fn formatted(format: &str, v: &serde_json::Value) -> anyhow::Result<String> {
    super::template::render(format, v)
}

fn info(e: &berth_engine::Engine, a: &InfoArgs) -> anyhow::Result<u8> {
    let i = e.system_info()?;
    if let Some(f) = &a.format {
        println!("{}", formatted(f, &serde_json::to_value(&i)?)?);
        return Ok(0);
    }
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(
        " Context:    default (daemonless: every command reads {})",
        i.docker_root_dir
    );
    println!();
    println!("Server:");
    println!(" Containers: {}", i.containers);
    println!("  Running: {}", i.containers_running);
    println!("  Paused: {}", i.containers_paused);
    println!("  Stopped: {}", i.containers_stopped);
    println!(" Images: {}", i.images);
    println!(" Server Version: {}", i.server_version);
    println!(" Storage Driver: {}", i.driver);
    println!(" Logging Driver: {}", i.logging_driver);
    println!(" Cgroup Driver: {}", i.cgroup_driver);
    println!(" Cgroup Version: {}", i.cgroup_version);
    println!(" Plugins:");
    println!("  Volume: local");
    println!("  Network: bridge host null");
    println!("  Log: json-file");
    println!(" Default Runtime: {}", i.default_runtime);
    println!(" Security Options:");
    for s in &i.security_options {
        let mut parts = s.split(',');
        if let Some(name) = parts.next() {
            println!("  {}", name.trim_start_matches("name="));
        }
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let mut k = k.to_string();
            if let Some(c) = k.get_mut(0..1) {
                c.make_ascii_uppercase();
            }
            println!("   {k}: {v}");
        }
    }
    println!(" Kernel Version: {}", i.kernel_version);
    println!(" Operating System: {}", i.operating_system);
    println!(" OSType: {}", i.os_type);
    println!(" Architecture: {}", i.architecture);
    println!(" CPUs: {}", i.ncpu);
    println!(
        " Total Memory: {}",
        super::container::format::bytes_size(i.mem_total)
    );
    println!(" Name: {}", i.name);
    println!(" ID: {}", i.id);
    println!(" Docker Root Dir: {}", i.docker_root_dir);
    println!(" Networks: {}", i.networks);
    println!(" Volumes: {}", i.volumes);
    Ok(0)
}

fn version(e: &berth_engine::Engine, a: &InfoArgs) -> anyhow::Result<u8> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let os_arch = format!("linux/{arch}");
    let v = serde_json::json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": berth_engine::API_VERSION,
            "Os": "linux",
            "Arch": arch,
        },
        "Server": {
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": berth_engine::API_VERSION,
            "MinAPIVersion": berth_engine::MIN_API_VERSION,
            "Os": "linux",
            "Arch": arch,
            "Components": [
                {"Name": "Engine", "Version": env!("CARGO_PKG_VERSION")},
                {"Name": "berth-runtime", "Version": e.runtime_version()},
            ],
        },
    });
    if let Some(f) = &a.format {
        println!("{}", formatted(f, &v)?);
        return Ok(0);
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", berth_engine::API_VERSION);
    println!(" OS/Arch:           {os_arch}");
    println!();
    println!("Server:");
    println!(" Engine:");
    println!("  Version:          {}", env!("CARGO_PKG_VERSION"));
    println!(
        "  API version:      {} (minimum version {})",
        berth_engine::API_VERSION,
        berth_engine::MIN_API_VERSION
    );
    println!("  OS/Arch:          {os_arch}");
    println!(" berth-runtime:");
    println!("  Version:          {}", e.runtime_version());
    Ok(0)
}

/// `image history` (the image group's spelling of `history`).
pub fn history_command(cli: &Cli, a: &HistoryArgs) -> anyhow::Result<u8> {
    history(&engine(cli)?, a)
}

fn history(e: &berth_engine::Engine, a: &HistoryArgs) -> anyhow::Result<u8> {
    use super::container::format::{human_duration, human_size3, since};
    use super::template::print_rows as print_table;
    let store = e.images();
    let image = match store.find_image_loaded(&a.image) {
        Ok(i) => i,
        Err(berth_image::Error::ImageNotFound(_)) => {
            anyhow::bail!("No such image: {}", a.image)
        }
        Err(err) => return Err(err.into()),
    };
    let snap = berth_image::Snapshotter::new(store, berth_image::SnapshotMode::detect());
    let entries = snap.history(&image);
    let id = |i: usize| {
        if i == 0 {
            let hex = image.config_digest.hex();
            if a.no_trunc {
                image.config_digest.to_string()
            } else {
                hex[..12].to_string()
            }
        } else {
            "<missing>".to_string()
        }
    };
    if a.quiet {
        for i in 0..entries.len() {
            println!("{}", id(i));
        }
        return Ok(0);
    }
    let created = |c: &Option<String>| match c {
        Some(t) if a.human => format!("{} ago", human_duration(since(t))),
        Some(t) => t.clone(),
        None => "N/A".into(),
    };
    let created_by = |s: &str| {
        let s = s.replace('\t', " ");
        if a.no_trunc || s.chars().count() <= 45 {
            s
        } else {
            format!("{}…", s.chars().take(44).collect::<String>())
        }
    };
    let size = |n: u64| {
        if a.human {
            human_size3(n)
        } else {
            n.to_string()
        }
    };
    if let Some(f) = &a.format {
        for (i, h) in entries.iter().enumerate() {
            let v = serde_json::json!({
                "ID": id(i),
                "CreatedSince": created(&h.created),
                "CreatedAt": h.created.clone().unwrap_or_default(),
                "CreatedBy": created_by(&h.created_by),
                "Size": size(h.size),
                "Comment": h.comment,
            });
            println!("{}", formatted(f, &v)?);
        }
        return Ok(0);
    }
    let mut rows = vec![vec![
        "IMAGE".to_string(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMMENT".into(),
    ]];
    for (i, h) in entries.iter().enumerate() {
        rows.push(vec![
            id(i),
            created(&h.created),
            created_by(&h.created_by),
            size(h.size),
            h.comment.clone(),
        ]);
    }
    print_table(&rows)?;
    Ok(0)
}

fn percent(part: u64, whole: u64) -> String {
    match (part * 100).checked_div(whole) {
        Some(p) => format!("{p}%"),
        None => "0%".into(),
    }
}

fn df(e: &berth_engine::Engine, a: &DfArgs) -> anyhow::Result<u8> {
    use super::container::format::{human_duration, human_size, human_size3, since};
    use super::template::print_rows as print_table;
    let u = e.disk_usage()?;
    let kinds = [
        ("Images", u.images_summary()),
        ("Containers", u.containers_summary()),
        ("Local Volumes", u.volumes_summary()),
        (
            "Build Cache",
            berth_engine::UsageSummary {
                total: 0,
                active: 0,
                size: 0,
                reclaimable: 0,
            },
        ),
    ];
    if let Some(f) = &a.format {
        for (kind, s) in &kinds {
            let v = serde_json::json!({
                "Type": kind,
                "TotalCount": s.total.to_string(),
                "Active": s.active.to_string(),
                "Size": human_size(s.size),
                "Reclaimable": format!("{} ({})", human_size(s.reclaimable), percent(s.reclaimable, s.size)),
            });
            println!("{}", formatted(f, &v)?);
        }
        return Ok(0);
    }
    if !a.verbose {
        let mut rows = vec![vec![
            "TYPE".to_string(),
            "TOTAL".into(),
            "ACTIVE".into(),
            "SIZE".into(),
            "RECLAIMABLE".into(),
        ]];
        for (kind, s) in &kinds {
            let reclaim = if *kind == "Build Cache" {
                human_size(0)
            } else {
                format!(
                    "{} ({})",
                    human_size(s.reclaimable),
                    percent(s.reclaimable, s.size)
                )
            };
            rows.push(vec![
                kind.to_string(),
                s.total.to_string(),
                s.active.to_string(),
                human_size(s.size),
                reclaim,
            ]);
        }
        print_table(&rows)?;
        return Ok(0);
    }
    println!("Images space usage:\n");
    let mut rows = vec![vec![
        "REPOSITORY".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
        "SHARED SIZE".into(),
        "UNIQUE SIZE".into(),
        "CONTAINERS".into(),
    ]];
    for i in &u.images {
        let created = i
            .created
            .as_deref()
            .map(|t| format!("{} ago", human_duration(since(t))))
            .unwrap_or_else(|| "N/A".into());
        let short = i.id.trim_start_matches("sha256:")[..12].to_string();
        let names = if i.repo_tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            i.repo_tags.clone()
        };
        for n in names {
            let (repo, tag) = match n.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
                _ => (n.clone(), "<none>".to_string()),
            };
            rows.push(vec![
                repo,
                tag,
                short.clone(),
                created.clone(),
                human_size3(i.size),
                human_size3(i.shared_size),
                human_size3(i.size - i.shared_size),
                i.containers.to_string(),
            ]);
        }
    }
    print_table(&rows)?;
    println!("\nContainers space usage:\n");
    let mut rows = vec![vec![
        "CONTAINER ID".to_string(),
        "IMAGE".into(),
        "COMMAND".into(),
        "LOCAL VOLUMES".into(),
        "SIZE".into(),
        "CREATED".into(),
        "STATUS".into(),
        "NAMES".into(),
    ]];
    for c in &u.containers {
        let cmd = if c.command.chars().count() > 20 {
            format!("\"{}…\"", c.command.chars().take(19).collect::<String>())
        } else {
            format!("\"{}\"", c.command)
        };
        rows.push(vec![
            c.id[..12].to_string(),
            c.image.clone(),
            cmd,
            c.local_volumes.to_string(),
            human_size3(c.size_rw),
            format!("{} ago", human_duration(since(&c.created))),
            c.state.clone(),
            c.name.clone(),
        ]);
    }
    print_table(&rows)?;
    println!("\nLocal Volumes space usage:\n");
    let mut rows = vec![vec![
        "VOLUME NAME".to_string(),
        "LINKS".into(),
        "SIZE".into(),
    ]];
    for v in &u.volumes {
        rows.push(vec![
            v.name.clone(),
            v.links.to_string(),
            human_size(v.size),
        ]);
    }
    print_table(&rows)?;
    println!("\nBuild cache usage: 0B");
    Ok(0)
}

fn system_prune(e: &berth_engine::Engine, a: &SystemPruneArgs) -> anyhow::Result<u8> {
    let _ = a.force;
    let r = e.prune_system(a.all, a.volumes)?;
    let section = |title: &str, items: &[String]| {
        if !items.is_empty() {
            println!("{title}:");
            for i in items {
                println!("{i}");
            }
            println!();
        }
    };
    section("Deleted Containers", &r.containers);
    section("Deleted Networks", &r.networks);
    section("Deleted Volumes", &r.volumes);
    let mut images: Vec<String> = r
        .images
        .untagged
        .iter()
        .map(|n| format!("untagged: {n}"))
        .collect();
    images.extend(r.images.deleted.iter().map(|d| format!("deleted: {d}")));
    section("Deleted Images", &images);
    println!(
        "Total reclaimed space: {}",
        super::container::format::human_size(r.reclaimed)
    );
    Ok(0)
}
