//! `-v`, `--mount` and `--tmpfs` parsed into [`MountPoint`]s, and volumes (`volume
//! create|ls|inspect|rm|prune`, Docker's `local` driver):
//!
//! ```text
//! ROOT/volumes/.lock              flock: volume creation, removal, mounts
//! ROOT/volumes/<name>/volume.json Name, CreatedAt, Labels, Options (written atomically)
//! ROOT/volumes/<name>/_data       the data; for a volume with `type`/`device`/`o` options,
//!                                 the mount point of that filesystem while containers run
//! ```
//!
//! A volume is copied up from the image on first use, as Docker does, when it is empty and has
//! no mount options. A volume with options is mounted when the first container using it
//! starts and unmounted when the last one stops (a tmpfs volume's data goes then, as in
//! Docker).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::error::{Error, Result, invalid, io_err};
use crate::lists::Filters;
use crate::record::{Mount, MountPoint, Record};
use crate::rootpath::resolve_in_root;
use crate::util::{Flock, is_mountpoint, rfc3339, write_atomic};

/// A volume as `volume inspect` shows it (Docker's `Volume` object).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// Its name (64 hex digits for an anonymous volume).
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// The host directory containers see.
    pub mountpoint: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// `--label`s.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `--opt`s: `type`, `device`, `o`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
}

impl Volume {
    /// Whether `create` made it for an anonymous `-v /path`.
    pub fn is_anonymous(&self) -> bool {
        is_anonymous(&self.name)
    }
}

/// `volume create`'s arguments.
#[derive(Clone, Debug, Default)]
pub struct VolumeCreate {
    /// The name; none makes an anonymous volume.
    pub name: Option<String>,
    /// `local` (the default) is the only driver.
    pub driver: Option<String>,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
    /// `--opt`s of the local driver: `type` (a filesystem type, or `none` for a bind),
    /// `device` (what to mount), `o` (mount options, `bind` for a bind mount).
    pub options: BTreeMap<String, String>,
}

/// What `volume prune` removed.
#[derive(Clone, Debug, Default)]
pub struct VolumePrune {
    /// The removed volumes' names.
    pub removed: Vec<String>,
    /// Bytes they held.
    pub reclaimed: u64,
}

/// The volumes directory of a root.
pub(crate) fn volume_dir(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name).join("_data")
}

/// Whether a volume name is one `create` made for an anonymous `-v /path` (64 hex digits, as
/// Docker's): those go with their container at `rm -v` and with `--rm` containers.
pub(crate) fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn valid_volume_name(n: &str) -> bool {
    crate::store::valid_name(n)
}

/// Parses one `-v` spec: `HOST:CTR[:OPTS]`, `NAME:CTR[:OPTS]` or `CTR` (anonymous volume).
pub(crate) fn parse_volume(root: &Path, spec: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(invalid("--volume", format!("invalid spec {spec:?}"))),
    };
    if !dst.starts_with('/') {
        return Err(invalid(
            "--volume",
            format!("{spec:?}: the container path must be absolute"),
        ));
    }
    let mut rw = true;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" | "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave"
            | "nocopy" => {}
            _ => {
                return Err(invalid(
                    "--volume",
                    format!("{spec:?}: unknown option {o:?}"),
                ));
            }
        }
    }
    if src.starts_with('/') {
        return Ok(MountPoint {
            kind: "bind".into(),
            name: String::new(),
            source: src.into(),
            destination: dst.into(),
            driver: String::new(),
            mode: opts.into(),
            rw,
        });
    }
    let name = if src.is_empty() {
        crate::util::random_hex(32)
    } else if valid_volume_name(src) {
        src.to_string()
    } else {
        return Err(invalid(
            "--volume",
            format!("{src:?} is not a valid volume name or absolute path"),
        ));
    };
    Ok(MountPoint {
        kind: "volume".into(),
        source: volume_dir(root, &name).display().to_string(),
        name,
        destination: dst.into(),
        driver: "local".into(),
        mode: opts.into(),
        rw,
    })
}

/// One `--mount` (Docker's typed `Mount`) as a mount point, checked: an absolute target, a
/// bind's existing absolute source, a valid volume name (none: an anonymous volume).
pub(crate) fn mount_point(root: &Path, m: &Mount) -> Result<MountPoint> {
    let dst = &m.target;
    if !dst.starts_with('/') {
        return Err(invalid(
            "--mount",
            format!("target {dst:?} must be an absolute path"),
        ));
    }
    if m.bind_options.is_some() && m.kind != "bind" {
        return Err(invalid(
            "--mount",
            format!("bind options are for bind mounts, not {:?}", m.kind),
        ));
    }
    if m.volume_options.is_some() && m.kind != "volume" {
        return Err(invalid(
            "--mount",
            format!("volume options are for volume mounts, not {:?}", m.kind),
        ));
    }
    if m.tmpfs_options.is_some() && m.kind != "tmpfs" {
        return Err(invalid(
            "--mount",
            format!("tmpfs options are for tmpfs mounts, not {:?}", m.kind),
        ));
    }
    match m.kind.as_str() {
        "bind" => {
            let src = &m.source;
            if !src.starts_with('/') {
                return Err(invalid(
                    "--mount",
                    format!("bind source {src:?} must be an absolute path"),
                ));
            }
            if !Path::new(src).exists() {
                return Err(invalid(
                    "--mount",
                    format!("bind source path does not exist: {src}"),
                ));
            }
            if let Some(b) = &m.bind_options
                && !matches!(
                    b.propagation.as_str(),
                    "" | "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave"
                )
            {
                return Err(invalid(
                    "--mount",
                    format!("invalid bind propagation {:?}", b.propagation),
                ));
            }
            Ok(MountPoint {
                kind: "bind".into(),
                name: String::new(),
                source: src.clone(),
                destination: dst.clone(),
                driver: String::new(),
                mode: String::new(),
                rw: !m.read_only,
            })
        }
        "volume" => {
            let mut mp = if m.source.is_empty() {
                parse_volume(root, dst)?
            } else if m.source.contains(':') || m.source.starts_with('/') {
                return Err(invalid(
                    "--mount",
                    format!("{:?} is not a valid volume name", m.source),
                ));
            } else {
                parse_volume(root, &format!("{}:{dst}", m.source))?
            };
            mp.rw = !m.read_only;
            Ok(mp)
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(invalid("--mount", "a tmpfs mount takes no source"));
            }
            let mut opts = Vec::new();
            if let Some(t) = &m.tmpfs_options {
                if t.size_bytes < 0 {
                    return Err(invalid("--mount", "tmpfs-size must not be negative"));
                }
                if t.size_bytes > 0 {
                    opts.push(format!("size={}", t.size_bytes));
                }
                if t.mode > 0o7777 {
                    return Err(invalid(
                        "--mount",
                        format!("invalid tmpfs-mode {:o}", t.mode),
                    ));
                }
                if t.mode > 0 {
                    opts.push(format!("mode={:o}", t.mode));
                }
            }
            if m.read_only {
                opts.push("ro".into());
            }
            Ok(tmpfs_point(dst, &opts.join(",")))
        }
        k => Err(invalid(
            "--mount",
            format!("unknown type {k:?} (bind, volume or tmpfs)"),
        )),
    }
}

/// A tmpfs mount point.
pub(crate) fn tmpfs_point(dst: &str, opts: &str) -> MountPoint {
    MountPoint {
        kind: "tmpfs".into(),
        name: String::new(),
        source: String::new(),
        destination: dst.into(),
        driver: String::new(),
        mode: opts.into(),
        rw: true,
    }
}

/// Prepares a bind mount's source: created as a directory if missing (as `-v` does).
pub(crate) fn prepare_source(mp: &MountPoint) -> Result<()> {
    if mp.kind == "bind" {
        let p = Path::new(&mp.source);
        if !p.exists() {
            fs::create_dir_all(p).map_err(io_err("create", p))?;
        }
    }
    Ok(())
}

/// Whether a directory has no entries (a missing one counts as empty).
fn is_empty_dir(p: &Path) -> bool {
    fs::read_dir(p).map_or(true, |mut d| d.next().is_none())
}

/// Mount flags and the remaining data string for the local driver's `o` option.
fn mount_flags(o: &str) -> (u64, String) {
    let mut flags = 0u64;
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "bind" => flags |= libc::MS_BIND,
            "rbind" => flags |= libc::MS_BIND | libc::MS_REC,
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => {}
            "nosuid" => flags |= libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "noatime" => flags |= libc::MS_NOATIME,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Checks the local driver's options.
fn check_options(o: &BTreeMap<String, String>) -> Result<()> {
    for k in o.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
            return Err(invalid(
                "--opt",
                format!("invalid option key {k:?} (the local driver takes type, device, o)"),
            ));
        }
    }
    let (ty, dev) = (o.get("type"), o.get("device"));
    if ty.is_some() != dev.is_some() && ty.is_none_or(|t| t != "tmpfs") {
        return Err(invalid(
            "--opt",
            "type and device go together (for example type=tmpfs,device=tmpfs or \
             type=none,device=/path,o=bind)",
        ));
    }
    let (flags, _) = mount_flags(o.get("o").map(String::as_str).unwrap_or(""));
    if flags & libc::MS_BIND != 0 {
        let d = dev.map(String::as_str).unwrap_or("");
        if !Path::new(d).is_dir() {
            return Err(invalid(
                "--opt",
                format!("device {d:?}: a bind mount needs an existing absolute directory"),
            ));
        }
    }
    Ok(())
}

impl Engine {
    fn volumes_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }

    fn volume_lock(&self) -> Result<Flock> {
        let p = self.volumes_dir().join(".lock");
        Ok(Flock::exclusive(&p)?)
    }

    fn volume_event(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        let mut a = crate::events::attrs([("driver", "local".to_string())]);
        for (k, v) in extra {
            a.insert(k.to_string(), v.clone());
        }
        self.events
            .append(&crate::events::Event::new("volume", action, name, a));
    }

    /// Reads a volume (one made before volume.json existed gets defaults from its directory).
    fn read_volume(&self, name: &str) -> Result<Volume> {
        let dir = self.volumes_dir().join(name);
        if !valid_volume_name(name) || !dir.join("_data").is_dir() {
            return Err(Error::NoSuchVolume(name.to_string()));
        }
        let meta = dir.join("volume.json");
        match fs::read(&meta) {
            Ok(b) => serde_json::from_slice(&b).map_err(|error| Error::Json {
                what: meta.display().to_string(),
                error,
            }),
            Err(_) => Ok(Volume {
                name: name.to_string(),
                driver: "local".into(),
                mountpoint: volume_dir(&self.root, name).display().to_string(),
                created_at: fs::metadata(&dir)
                    .and_then(|m| m.modified())
                    .map(rfc3339)
                    .unwrap_or_default(),
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                scope: "local".into(),
            }),
        }
    }

    /// Makes a volume's directory and metadata unless it exists; returns it and whether it
    /// is new. The caller holds the volume lock.
    fn make_volume(&self, o: &VolumeCreate) -> Result<(Volume, bool)> {
        let name = match &o.name {
            Some(n) if valid_volume_name(n) => n.clone(),
            Some(n) => {
                return Err(invalid(
                    "volume create",
                    format!(
                        "{n:?} is not a valid volume name: [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed"
                    ),
                ));
            }
            None => crate::util::random_hex(32),
        };
        if let Some(d) = o.driver.as_deref().filter(|d| *d != "local") {
            return Err(invalid(
                "--driver",
                format!("{d:?}: only the local driver is available"),
            ));
        }
        if let Ok(v) = self.read_volume(&name) {
            return Ok((v, false));
        }
        check_options(&o.options)?;
        let dir = self.volumes_dir().join(&name);
        let v = Volume {
            name: name.clone(),
            driver: "local".into(),
            mountpoint: volume_dir(&self.root, &name).display().to_string(),
            created_at: rfc3339(std::time::SystemTime::now()),
            labels: o.labels.clone(),
            options: o.options.clone(),
            scope: "local".into(),
        };
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let meta = dir.join("volume.json");
        write_atomic(
            &meta,
            &serde_json::to_vec_pretty(&v).expect("a volume serialises"),
        )?;
        // `_data` last: a volume exists once it has one.
        let data = dir.join("_data");
        if let Err(e) = fs::create_dir(&data)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(io_err("create", &data)(e));
        }
        self.volume_event("create", &name, &[]);
        Ok((v, true))
    }

    /// `volume create`: an existing volume of that name is returned as it is (as Docker).
    pub fn volume_create(&self, o: &VolumeCreate) -> Result<Volume> {
        let _l = self.volume_lock()?;
        Ok(self.make_volume(o)?.0)
    }

    /// `volume inspect`.
    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.read_volume(name)
    }

    /// `volume ls`: every volume, by name.
    pub fn volumes(&self) -> Result<Vec<Volume>> {
        let dir = self.volumes_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err("read", &dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(v) = self.read_volume(&name) {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The containers (any state) whose mounts use the volume.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        let mut users = Vec::new();
        for id in self.containers.ids()? {
            if let Ok(r) = self.containers.record(&id)
                && uses(&r, name)
            {
                users.push(id);
            }
        }
        Ok(users)
    }

    /// `volume rm [-f]`: refused while a container uses it (also with `force`, as Docker;
    /// `force` only makes a missing volume no error).
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let _l = self.volume_lock()?;
        match self.read_volume(name) {
            Ok(_) => {}
            Err(Error::NoSuchVolume(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        }
        let users = self.volume_users(name)?;
        if !users.is_empty() {
            return Err(Error::VolumeInUse {
                name: name.to_string(),
                containers: users,
            });
        }
        self.destroy_volume(name)
    }

    /// Removes a volume no container uses (the caller holds the volume lock): unmounted,
    /// renamed away (so it stops listing at once), then deleted.
    fn destroy_volume(&self, name: &str) -> Result<()> {
        let dir = self.volumes_dir().join(name);
        let data = dir.join("_data");
        for _ in 0..10 {
            if !is_mountpoint(&data) {
                break;
            }
            crate::util::umount(&data).map_err(io_err("unmount", &data))?;
        }
        let gone = self.volumes_dir().join(format!(".rm-{name}"));
        fs::rename(&dir, &gone).map_err(io_err("rename", &dir))?;
        fs::remove_dir_all(&gone).map_err(io_err("remove", &gone))?;
        self.volume_event("destroy", name, &[]);
        Ok(())
    }

    /// `volume prune [-a] [--filter ...]` (`POST /volumes/prune`): removes the volumes no
    /// container uses that pass Docker's prune filters: `all=true` (named volumes too; else
    /// only anonymous ones, as Docker 23+), `label=K[=V]`, `label!=K[=V]`.
    pub fn volume_prune(&self, filters: &Filters) -> Result<VolumePrune> {
        filters.check(&["all", "label", "label!"])?;
        let mut all = false;
        for v in filters.values("all") {
            all = match v.as_str() {
                "1" | "true" | "True" => true,
                "0" | "false" | "False" => false,
                _ => return Err(Filters::bad_value("all", v, "true or false")),
            };
        }
        let _l = self.volume_lock()?;
        let mut report = VolumePrune::default();
        for v in self.volumes()? {
            if !(all || v.is_anonymous())
                || !filters
                    .values("label")
                    .iter()
                    .all(|l| has_label(&v.labels, l))
                || filters
                    .values("label!")
                    .iter()
                    .any(|l| has_label(&v.labels, l))
            {
                continue;
            }
            if !self.volume_users(&v.name)?.is_empty() {
                continue;
            }
            let size = crate::system::tree_size(&self.volumes_dir().join(&v.name));
            self.destroy_volume(&v.name)?;
            report.removed.push(v.name);
            report.reclaimed += size;
        }
        Ok(report)
    }

    /// `volume ls [--filter ...]` (`GET /volumes`): the volumes, by name, that pass Docker's
    /// filters: `name` (part of it), `driver`, `label` (`K` or `K=V`), `dangling` (`true`:
    /// used by no container, `false`: used by one).
    pub fn volume_list(&self, filters: &Filters) -> Result<Vec<Volume>> {
        filters.check(&["dangling", "driver", "label", "name"])?;
        let mut dangling = None;
        for v in filters.values("dangling") {
            dangling = Some(match v.as_str() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => return Err(Filters::bad_value("dangling", v, "true or false")),
            });
        }
        let mut out = Vec::new();
        for v in self.volumes()? {
            let keep = filters.any("name", |n| v.name.contains(n))
                && filters.any("driver", |d| d == v.driver)
                && filters
                    .values("label")
                    .iter()
                    .all(|l| has_label(&v.labels, l));
            if !keep {
                continue;
            }
            if let Some(d) = dangling
                && self.volume_users(&v.name)?.is_empty() != d
            {
                continue;
            }
            out.push(v);
        }
        Ok(out)
    }

    /// At container create: the volumes among `mounts` exist (named ones are made on first
    /// use, as Docker does) and are filled from the image when new or empty.
    pub(crate) fn prepare_volumes(&self, r: &Record, rootfs: &Path) -> Result<()> {
        for mp in &r.mounts {
            if mp.kind != "volume" {
                prepare_source(mp)?;
                continue;
            }
            let _l = self.volume_lock()?;
            let (v, _) = self.make_volume(&VolumeCreate {
                name: Some(mp.name.clone()),
                ..Default::default()
            })?;
            let data = Path::new(&mp.source);
            if !v.options.is_empty() || !is_empty_dir(data) {
                continue;
            }
            let from = resolve_in_root(rootfs, Path::new(&mp.destination))
                .map_err(io_err("resolve", &mp.destination))?;
            if !from.is_dir() || is_empty_dir(&from) {
                continue;
            }
            // Copied beside it, then renamed over the empty directory: a crash leaves the
            // volume empty (and copied again next time), never half-filled.
            let tmp = data.with_file_name("_data.tmp");
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
            copy_tree(&from, &tmp)?;
            let m = fs::metadata(&from).map_err(io_err("stat", &from))?;
            let _ = std::os::unix::fs::lchown(&tmp, Some(m.uid()), Some(m.gid()));
            let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(m.mode()));
            fs::rename(&tmp, data).map_err(io_err("rename", data))?;
        }
        Ok(())
    }

    /// At `rm -v` (and for `--rm` containers): the container's anonymous volumes that no
    /// other container uses go.
    pub(crate) fn remove_anonymous_volumes(&self, r: &Record) -> Result<()> {
        for mp in r
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" && is_anonymous(&m.name))
        {
            let _l = self.volume_lock()?;
            // Also one whose making was interrupted (no `_data` yet).
            if !self.volumes_dir().join(&mp.name).exists() {
                continue;
            }
            if self.volume_users(&mp.name)?.iter().any(|id| *id != r.id) {
                continue;
            }
            self.destroy_volume(&mp.name)?;
        }
        Ok(())
    }

    /// Before a container runs: its volumes with mount options are mounted unless they are.
    pub(crate) fn mount_volumes(&self, r: &Record) -> Result<()> {
        for mp in r.mounts.iter().filter(|m| m.kind == "volume") {
            let _l = self.volume_lock()?;
            let v = self.read_volume(&mp.name)?;
            let data = Path::new(&mp.source);
            if !v.options.is_empty() && !is_mountpoint(data) {
                let ty = v.options.get("type").map(String::as_str).unwrap_or("tmpfs");
                let dev = v.options.get("device").map(String::as_str).unwrap_or(ty);
                let (flags, mut opts) =
                    mount_flags(v.options.get("o").map(String::as_str).unwrap_or(""));
                if let Some(size) = v.options.get("size") {
                    opts = [opts, format!("size={size}")]
                        .join(",")
                        .trim_start_matches(',')
                        .to_string();
                }
                let fstype = if flags & libc::MS_BIND != 0 { "" } else { ty };
                crate::util::mount(dev, data, fstype, flags, &opts).map_err(|e| {
                    Error::Other(format!(
                        "mount volume {}: mount {dev} (type {ty}, options {opts:?}) on {}: {e}",
                        v.name,
                        data.display()
                    ))
                })?;
            }
            self.volume_event(
                "mount",
                &mp.name,
                &[
                    ("container", r.id.clone()),
                    ("destination", mp.destination.clone()),
                    ("propagation", String::new()),
                    ("read/write", mp.rw.to_string()),
                ],
            );
        }
        Ok(())
    }

    /// After a container stopped: its volumes with mount options that no other running
    /// container uses are unmounted.
    pub(crate) fn unmount_volumes(&self, r: &Record) {
        for mp in r.mounts.iter().filter(|m| m.kind == "volume") {
            let Ok(_l) = self.volume_lock() else { continue };
            self.volume_event("unmount", &mp.name, &[("container", r.id.clone())]);
            let Ok(v) = self.read_volume(&mp.name) else {
                continue;
            };
            let data = Path::new(&mp.source);
            if v.options.is_empty() || !is_mountpoint(data) {
                continue;
            }
            let others = self.volume_users(&mp.name).unwrap_or_default();
            let busy = others
                .iter()
                .filter(|id| **id != r.id)
                .any(|id| self.state(id).is_ok_and(|s| s.status.is_running()));
            if !busy {
                let _ = crate::util::umount(data);
            }
        }
    }
}

/// Whether the container's mounts use the volume.
fn uses(r: &Record, name: &str) -> bool {
    r.mounts
        .iter()
        .any(|m| m.kind == "volume" && m.name == name)
}

/// Docker's `label=KEY` / `label=KEY=VALUE` test.
pub(crate) fn has_label(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// Copies a directory tree (files, dirs, symlinks; owners and modes kept; no hard links).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for e in fs::read_dir(from).map_err(io_err("read", from))? {
        let e = e.map_err(io_err("read", from))?;
        let src = e.path();
        let dst = to.join(e.file_name());
        let m = fs::symlink_metadata(&src).map_err(io_err("stat", &src))?;
        let ft = m.file_type();
        if ft.is_dir() {
            fs::create_dir(&dst).map_err(io_err("create", &dst))?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            let t = fs::read_link(&src).map_err(io_err("readlink", &src))?;
            std::os::unix::fs::symlink(t, &dst).map_err(io_err("symlink", &dst))?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).map_err(io_err("copy", &src))?;
        } else {
            continue;
        }
        let _ = std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid()));
        if !ft.is_symlink() {
            let _ = fs::set_permissions(&dst, fs::Permissions::from_mode(m.mode()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let r = Path::new("/r");
        let b = parse_volume(r, "/h:/c:ro").unwrap();
        assert_eq!((b.kind.as_str(), b.rw), ("bind", false));
        let v = parse_volume(r, "data:/d").unwrap();
        assert_eq!(v.source, "/r/volumes/data/_data");
        let a = parse_volume(r, "/anon").unwrap();
        assert_eq!(a.kind, "volume");
        assert!(parse_volume(r, "x:rel").is_err());
        let mount = |kind: &str, source: &str, target: &str| Mount {
            kind: kind.into(),
            source: source.into(),
            target: target.into(),
            ..Default::default()
        };
        let mut t = mount("tmpfs", "", "/t");
        t.tmpfs_options = Some(crate::record::TmpfsOptions {
            size_bytes: 1 << 20,
            mode: 0o1770,
        });
        assert_eq!(mount_point(r, &t).unwrap().mode, "size=1048576,mode=1770");
        let mut m = mount("volume", "v1", "/v");
        m.read_only = true;
        let m = mount_point(r, &m).unwrap();
        assert_eq!((m.name.as_str(), m.rw), ("v1", false));
        assert!(mount_point(r, &mount("volume", "v1", "rel")).is_err());
        assert!(mount_point(r, &mount("bind", "/nonexistent-berth", "/b")).is_err());
        assert!(mount_point(r, &mount("nfs", "", "/b")).is_err());
    }
}
