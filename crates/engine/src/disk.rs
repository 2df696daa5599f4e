//! What berth holds and what it can give back: `system df` (the Engine API's `/system/df`),
//! image prune, `system prune`, and `info`/`version` (`/info`, `/version`).

use std::collections::{BTreeMap, HashMap, HashSet};

use berth_image::{Digest, Image, Reference, SnapshotMode, Snapshotter};
use serde::Serialize;

use crate::Engine;
use crate::error::Result;
use crate::lists::Filters;
use crate::record::Status;

/// The API version berth's Engine API speaks.
pub const API_VERSION: &str = "1.44";
/// The oldest API version it accepts.
pub const MIN_API_VERSION: &str = "1.24";

/// One image in [`DiskUsage`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageUsage {
    /// Its ID (config digest).
    pub id: String,
    /// Its names (`repo:tag`).
    pub repo_tags: Vec<String>,
    /// Creation time (RFC 3339), if the config has one.
    pub created: Option<String>,
    /// Bytes of its layers.
    pub size: u64,
    /// Bytes of its layers that other images share.
    pub shared_size: u64,
    /// Containers made from it.
    pub containers: u64,
}

/// One container in [`DiskUsage`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerUsage {
    /// Its ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The image as named at create.
    pub image: String,
    /// Its command line.
    pub command: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// `running`, `exited`, ...
    pub state: String,
    /// Bytes of its writable layer.
    pub size_rw: u64,
    /// Volumes it mounts.
    pub local_volumes: u64,
}

/// One volume in [`DiskUsage`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeUsage {
    /// Its name.
    pub name: String,
    /// Containers using it.
    pub links: u64,
    /// Bytes of its data.
    pub size: u64,
}

/// `system df`: what images, containers and volumes hold.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    /// Bytes of every unpacked layer (shared ones once).
    pub layers_size: u64,
    /// Images, newest first.
    pub images: Vec<ImageUsage>,
    /// Containers.
    pub containers: Vec<ContainerUsage>,
    /// Volumes.
    pub volumes: Vec<VolumeUsage>,
}

/// One row of `system df`'s summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageSummary {
    /// How many there are.
    pub total: u64,
    /// How many are in use.
    pub active: u64,
    /// Bytes they hold.
    pub size: u64,
    /// Bytes a prune would free.
    pub reclaimable: u64,
}

impl DiskUsage {
    /// Images: in use when a container was made from them; reclaimable are the layers that
    /// no image in use holds.
    pub fn images_summary(&self) -> UsageSummary {
        let active: Vec<&ImageUsage> = self.images.iter().filter(|i| i.containers > 0).collect();
        let active_unique: u64 = active.iter().map(|i| i.size - i.shared_size).sum();
        let active_shared = active.iter().map(|i| i.shared_size).max().unwrap_or(0);
        UsageSummary {
            total: self.images.len() as u64,
            active: active.len() as u64,
            size: self.layers_size,
            reclaimable: self
                .layers_size
                .saturating_sub(active_unique + active_shared),
        }
    }

    /// Containers: running ones are active; the others' writable layers are reclaimable.
    pub fn containers_summary(&self) -> UsageSummary {
        let running = |c: &&ContainerUsage| matches!(c.state.as_str(), "running" | "paused");
        UsageSummary {
            total: self.containers.len() as u64,
            active: self.containers.iter().filter(running).count() as u64,
            size: self.containers.iter().map(|c| c.size_rw).sum(),
            reclaimable: self
                .containers
                .iter()
                .filter(|c| !running(c))
                .map(|c| c.size_rw)
                .sum(),
        }
    }

    /// Volumes: used by a container is active; unused ones are reclaimable.
    pub fn volumes_summary(&self) -> UsageSummary {
        UsageSummary {
            total: self.volumes.len() as u64,
            active: self.volumes.iter().filter(|v| v.links > 0).count() as u64,
            size: self.volumes.iter().map(|v| v.size).sum(),
            reclaimable: self
                .volumes
                .iter()
                .filter(|v| v.links == 0)
                .map(|v| v.size)
                .sum(),
        }
    }
}

/// What [`Engine::prune_images`] did.
#[derive(Clone, Debug, Default)]
pub struct ImagePruneReport {
    /// Names removed (`repo:tag`, familiar form).
    pub untagged: Vec<String>,
    /// Blobs removed.
    pub deleted: Vec<String>,
    /// Bytes freed.
    pub reclaimed: u64,
}

/// What [`Engine::prune_system`] did.
#[derive(Clone, Debug, Default)]
pub struct SystemPruneReport {
    /// Containers removed.
    pub containers: Vec<String>,
    /// Networks removed.
    pub networks: Vec<String>,
    /// Volumes removed (with `volumes`).
    pub volumes: Vec<String>,
    /// Images untagged and blobs deleted.
    pub images: ImagePruneReport,
    /// Bytes freed in all.
    pub reclaimed: u64,
}

/// `info`: the Engine API's `/info` object (the fields berth knows).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    /// A stable ID of this root.
    #[serde(rename = "ID")]
    pub id: String,
    /// Containers in all.
    pub containers: u64,
    /// Running ones.
    pub containers_running: u64,
    /// Paused ones.
    pub containers_paused: u64,
    /// The others.
    pub containers_stopped: u64,
    /// Images (distinct).
    pub images: u64,
    /// The snapshot driver: `overlay` or `copy`.
    pub driver: String,
    /// `json-file`.
    pub logging_driver: String,
    /// `cgroupfs`.
    pub cgroup_driver: String,
    /// `1` or `2`.
    pub cgroup_version: String,
    /// `uname -r`.
    pub kernel_version: String,
    /// PRETTY_NAME of /etc/os-release.
    pub operating_system: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// `uname -m`.
    pub architecture: String,
    /// Online CPUs.
    #[serde(rename = "NCPU")]
    pub ncpu: u64,
    /// Bytes of RAM.
    pub mem_total: u64,
    /// Where berth keeps its state.
    pub docker_root_dir: String,
    /// The host name.
    pub name: String,
    /// berth's version.
    pub server_version: String,
    /// The OCI runtime's path.
    pub default_runtime: String,
    /// `name=seccomp,profile=builtin`, ...
    pub security_options: Vec<String>,
    /// Networks.
    pub networks: u64,
    /// Volumes.
    pub volumes: u64,
}

fn uname() -> (String, String, String) {
    // SAFETY: uname fills the struct it is given.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Default::default();
    }
    let s = |f: &[libc::c_char]| {
        // SAFETY: uname's fields are NUL-terminated.
        unsafe { std::ffi::CStr::from_ptr(f.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    (s(&u.release), s(&u.machine), s(&u.nodename))
}

fn os_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

impl Engine {
    fn snapshotter(&self) -> Snapshotter {
        Snapshotter::new(&self.images, SnapshotMode::detect())
    }

    /// `system df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let snap = self.snapshotter();
        let containers = self.list()?;
        let mut uses: HashMap<String, u64> = HashMap::new();
        for c in &containers {
            *uses.entry(c.record.image.clone()).or_default() += 1;
        }
        // Distinct images by manifest, with their names.
        let mut by_manifest: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for (name, manifest) in self.images.names()? {
            let n = Reference::parse(&name)
                .map(|r| berth_image::archive::familiar_name(&r))
                .unwrap_or(name);
            by_manifest.entry(manifest).or_default().push(n);
        }
        let mut loaded = Vec::new();
        let mut holders: HashMap<Digest, u64> = HashMap::new();
        for (manifest, names) in by_manifest {
            let Ok(image) = Image::load(&self.images, &manifest) else {
                continue;
            };
            for l in &image.layers {
                *holders.entry(l.chain_id.clone()).or_default() += 1;
            }
            loaded.push((image, names));
        }
        let mut seen: HashSet<Digest> = HashSet::new();
        let mut usage = DiskUsage::default();
        for (image, names) in loaded {
            let mut shared = 0;
            for l in &image.layers {
                let size = snap.layer_size_or_compressed(l);
                if holders.get(&l.chain_id).copied().unwrap_or(0) > 1 {
                    shared += size;
                }
                if seen.insert(l.chain_id.clone()) {
                    usage.layers_size += size;
                }
            }
            usage.images.push(ImageUsage {
                id: image.config_digest.to_string(),
                repo_tags: names,
                created: image.config.created().clone(),
                size: snap.image_size(&image),
                shared_size: shared,
                containers: uses
                    .get(&image.manifest_digest.to_string())
                    .copied()
                    .unwrap_or(0),
            });
        }
        usage
            .images
            .sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        for c in &containers {
            let r = &c.record;
            let mut command = vec![r.path.clone()];
            command.extend(r.args.iter().cloned());
            usage.containers.push(ContainerUsage {
                id: r.id.clone(),
                name: r.name.clone(),
                image: r.config.image.clone(),
                command: command.join(" "),
                created: r.created.clone(),
                state: c.state.status.as_str().to_string(),
                size_rw: self.rw_size(&r.id),
                local_volumes: r.mounts.iter().filter(|m| m.kind == "volume").count() as u64,
            });
        }
        for v in self.volumes()? {
            usage.volumes.push(VolumeUsage {
                links: self.volume_users(&v.name)?.len() as u64,
                size: crate::system::tree_size(&self.root.join("volumes").join(&v.name)),
                name: v.name,
            });
        }
        Ok(usage)
    }

    /// `image prune [-a]`: with `all`, untags the images no container uses; then removes every
    /// blob and layer no name or container holds.
    pub fn prune_images(&self, all: bool) -> Result<ImagePruneReport> {
        let dangling = if all { "false" } else { "true" };
        self.prune_images_filtered(&Filters::parse(&[format!("dangling={dangling}")])?)
    }

    /// `image prune --filter ...` (`POST /images/prune`): `dangling=false` is `-a` (the
    /// images no container uses lose their names); `until` (RFC 3339, Unix seconds, or a
    /// duration ago: `24h`) spares images created at or after it; `label` and `label!`
    /// (`KEY` or `KEY=VALUE`) pick the images by their labels. Then every blob and layer no
    /// name or container holds is removed. berth keeps no unnamed images, so with the default
    /// `dangling=true` only that unreferenced content goes. An unknown filter or a bad value
    /// is an error naming it.
    pub fn prune_images_filtered(&self, filters: &Filters) -> Result<ImagePruneReport> {
        filters.check(&["dangling", "until", "label", "label!"])?;
        let mut all = false;
        for v in filters.values("dangling") {
            all = match v.as_str() {
                "true" | "1" => false,
                "false" | "0" => true,
                _ => return Err(Filters::bad_value("dangling", v, "true or false")),
            };
        }
        let mut until = None;
        for v in filters.values("until") {
            let t = prune_time(v)
                .ok_or_else(|| Filters::bad_value("until", v, "a timestamp or a duration"))?;
            until = Some(t);
        }
        let mut report = ImagePruneReport::default();
        if all {
            let in_use = self.images.images_in_use()?;
            for (name, manifest) in self.images.names()? {
                if in_use.contains(&manifest) {
                    continue;
                }
                let Ok(r) = Reference::parse(&name) else {
                    continue;
                };
                if until.is_some() || filters.has("label") || filters.has("label!") {
                    let Ok(image) = Image::load(&self.images, &manifest) else {
                        continue;
                    };
                    if until.is_some_and(|u| crate::image_list::created_of(&image) >= u) {
                        continue;
                    }
                    let labels = crate::image_list::labels_of(&image);
                    if !filters
                        .values("label")
                        .iter()
                        .all(|l| crate::lists::label_matches(&labels, l))
                        || filters
                            .values("label!")
                            .iter()
                            .any(|l| crate::lists::label_matches(&labels, l))
                    {
                        continue;
                    }
                }
                self.images.untag(&r)?;
                report
                    .untagged
                    .push(berth_image::archive::familiar_name(&r));
                self.events.append(&crate::events::Event::new(
                    "image",
                    "untag",
                    &manifest.to_string(),
                    crate::events::attrs([("name", name.clone())]),
                ));
            }
        }
        let pruned = self.images.prune()?;
        for d in &pruned.blobs {
            report.deleted.push(d.to_string());
        }
        report.reclaimed = pruned.reclaimed;
        if !report.deleted.is_empty() {
            self.events.append(&crate::events::Event::new(
                "image",
                "prune",
                "",
                crate::events::attrs([("reclaimed", report.reclaimed.to_string())]),
            ));
        }
        Ok(report)
    }

    /// `system prune [-a] [--volumes]`: stopped containers, unused networks, then images
    /// (dangling, or all unused with `all`), and with `volumes` the unused anonymous volumes.
    pub fn prune_system(&self, all: bool, volumes: bool) -> Result<SystemPruneReport> {
        let mut r = SystemPruneReport::default();
        let c = self.prune_containers(&crate::Filters::default())?;
        r.reclaimed += c.reclaimed;
        r.containers = c.removed;
        r.networks = self.network_prune(&crate::Filters::default())?;
        if volumes {
            let v = self.volume_prune(&crate::Filters::default())?;
            r.reclaimed += v.reclaimed;
            r.volumes = v.removed;
        }
        r.images = self.prune_images(all)?;
        r.reclaimed += r.images.reclaimed;
        Ok(r)
    }

    /// `info`.
    pub fn system_info(&self) -> Result<Info> {
        let list = self.list()?;
        let count = |f: &dyn Fn(Status) -> bool| list.iter().filter(|c| f(c.state.status)).count();
        let running = count(&|s| matches!(s, Status::Running | Status::Restarting));
        let paused = count(&|s| s == Status::Paused);
        let (kernel, arch, host) = uname();
        let images: HashSet<Digest> = self.images.names()?.into_values().collect();
        let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        // A stable ID of this root: derived from its path and creation time.
        let created = std::fs::metadata(&self.root)
            .and_then(|m| m.created().or_else(|_| m.modified()))
            .map(crate::util::rfc3339)
            .unwrap_or_default();
        let id = Digest::of(format!("{}\n{created}", self.root.display()).as_bytes());
        // SAFETY: sysconf has no memory arguments.
        let ncpu = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u64;
        let mut security = vec!["name=seccomp,profile=builtin".to_string()];
        if std::path::Path::new("/sys/kernel/security/apparmor").exists() {
            security.push("name=apparmor".into());
        }
        security.push("name=cgroupns".into());
        Ok(Info {
            id: id.hex()[..12].to_uppercase(),
            containers: list.len() as u64,
            containers_running: running as u64,
            containers_paused: paused as u64,
            containers_stopped: (list.len() - running - paused) as u64,
            images: images.len() as u64,
            driver: match SnapshotMode::detect() {
                SnapshotMode::Overlay => "overlay".into(),
                SnapshotMode::Copy => "copy".into(),
            },
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: if v2 { "2" } else { "1" }.into(),
            kernel_version: kernel,
            operating_system: os_pretty_name(),
            os_type: "linux".into(),
            architecture: arch,
            ncpu,
            mem_total: mem_total(),
            docker_root_dir: self.root.display().to_string(),
            name: host,
            server_version: env!("CARGO_PKG_VERSION").into(),
            default_runtime: self.runtime.bin.display().to_string(),
            security_options: security,
            networks: self.networks.list()?.len() as u64,
            volumes: self.volumes()?.len() as u64,
        })
    }

    /// The OCI runtime's `--version` output (first line), for `version`.
    pub fn runtime_version(&self) -> String {
        std::process::Command::new(&self.runtime.bin)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }
}

/// A prune filter's `until`: RFC 3339, Unix seconds, or a Go duration before now; as Unix
/// seconds.
fn prune_time(v: &str) -> Option<i64> {
    use std::time::{SystemTime, UNIX_EPOCH};
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    };
    if let Some(t) = crate::util::parse_rfc3339(v) {
        return Some(secs(t));
    }
    if let Ok(n) = v.parse::<f64>() {
        return Some(n as i64);
    }
    let d = crate::util::parse_duration(v)?;
    Some(secs(SystemTime::now().checked_sub(d)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_until_times() {
        assert_eq!(prune_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(prune_time("1700000000"), Some(1_700_000_000));
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        };
        let before = now();
        let ago = prune_time("1h").unwrap();
        let after = now();
        assert!(before - 3600 <= ago && ago <= after - 3600, "{ago}");
        assert_eq!(prune_time("soon"), None);
    }
}
