//! Checkpoint and restore of containers (CRIU through the runtime's `checkpoint` and
//! `restore`), their export to and import from podman's archive layout, and migration to
//! another berth root.
//!
//! A checkpoint is a directory of CRIU images under the container's
//! `checkpoints/NAME/` (Docker's place for them); `start --checkpoint NAME` has the monitor
//! restore from it instead of running the container anew. The container's rootfs and volumes
//! stay where they are, so a checkpoint restores in the same root as it was made.
//!
//! An exported checkpoint is a tar in podman's layout (`checkpoint/` with the images,
//! `config.dump`, `spec.dump`, `network.status`, `rootfs-diff.tar` and `deleted.files` with the
//! container's changes to its image, `volumes/NAME.tar`), so it can be imported into another
//! root (or, as far as the formats allow, read from podman's). `config.dump` has podman's field
//! names and berth's whole record beside them.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Engine;
use crate::error::{Error, Result, invalid, io_err};
use crate::options::ContainerCreate;
use crate::record::{Record, RestoreFrom, Status};
use crate::util::rfc3339;

/// Flags of a checkpoint.
#[derive(Clone, Debug, Default)]
pub struct CheckpointOptions {
    /// Keep the container running (`--leave-running`).
    pub leave_running: bool,
    /// Checkpoint established TCP connections (`--tcp-established`).
    pub tcp_established: bool,
    /// Checkpoint file locks (`--file-locks`).
    pub file_locks: bool,
}

/// A checkpoint of a container (`checkpoint ls`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Checkpoint {
    /// Its name.
    pub name: String,
    /// When it was made, RFC 3339.
    pub created: String,
    /// Whether it holds established TCP connections (restore them with --tcp-established).
    #[serde(default)]
    pub tcp_established: bool,
}

/// What [`Engine::migrate`] did.
#[derive(Clone, Debug)]
pub struct Migrated {
    /// The container's ID in the destination root.
    pub id: String,
    /// How long the container was frozen: from the pause at the source to its processes
    /// running at the destination.
    pub frozen: Duration,
}

const META: &str = "berth-checkpoint.json";

fn valid_checkpoint_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Engine {
    /// `checkpoints/` of a container, or the directory given by `--checkpoint-dir`.
    fn checkpoints_dir(&self, id: &str, dir: Option<&Path>) -> PathBuf {
        match dir {
            Some(d) => d.join(id),
            None => self.containers.dir(id).join("checkpoints"),
        }
    }

    /// Checkpoints a running container into checkpoint `name` (`checkpoint create`): stopped
    /// afterwards (its restart policy does not start it again), or kept running with
    /// `leave_running`. A failure leaves it running as it was. Returns the images' directory.
    pub fn checkpoint_create(
        &self,
        key: &str,
        name: &str,
        dir: Option<&Path>,
        o: &CheckpointOptions,
    ) -> Result<PathBuf> {
        let id = self.lookup(key)?;
        if !valid_checkpoint_name(name) {
            return Err(invalid(
                "checkpoint name",
                format!(
                    "{name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
                ),
            ));
        }
        let r = self.containers.record(&id)?;
        let s = self.state(&id)?;
        if !matches!(s.status, Status::Running | Status::Paused) {
            return Err(Error::WrongState {
                id: id.clone(),
                status: s.status.as_str().into(),
                what: "only a running container can be checkpointed".into(),
            });
        }
        let parent = self.checkpoints_dir(&id, dir);
        crate::util::private_dir(&parent)?;
        let images = parent.join(name);
        if images.exists() {
            return Err(Error::Conflict(format!(
                "container {id} already has a checkpoint named {name:?}: remove it with `berth checkpoint rm {key} {name}` or choose another name"
            )));
        }
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        if !o.leave_running {
            self.containers.update_state(&id, |s| {
                s.checkpointing = true;
                s.manual_stop = true;
            })?;
        }
        let res = self.runtime_checkpoint(&id, &tmp, o);
        if let Err(e) = res {
            let _ = fs::remove_dir_all(&tmp);
            if !o.leave_running {
                let _ = self.containers.update_state(&id, |s| {
                    s.checkpointing = false;
                    s.manual_stop = false;
                });
            }
            return Err(e);
        }
        let meta = Checkpoint {
            name: name.to_string(),
            created: rfc3339(SystemTime::now()),
            tcp_established: o.tcp_established,
        };
        crate::util::write_atomic(
            &tmp.join(META),
            &serde_json::to_vec(&meta).unwrap_or_default(),
        )?;
        fs::rename(&tmp, &images).map_err(io_err("rename", &tmp))?;
        if !o.leave_running {
            // The monitor records the exit the checkpoint caused.
            let _ = self.wait_not_running(&id, Duration::from_secs(30));
            self.containers.update_state(&id, |s| {
                s.checkpointing = false;
                s.checkpointed = true;
            })?;
        }
        self.container_event(&r, "checkpoint", &[("checkpoint", name.to_string())]);
        Ok(images)
    }

    fn runtime_checkpoint(&self, id: &str, images: &Path, o: &CheckpointOptions) -> Result<()> {
        let img = images.display().to_string();
        let mut args = vec!["--image-path", &img, "--work-path", &img];
        if o.leave_running {
            args.push("--leave-running");
        }
        if o.tcp_established {
            args.push("--tcp-established");
        }
        if o.file_locks {
            args.push("--file-locks");
        }
        args.push(id);
        self.runtime.run("checkpoint", &args).map(drop)
    }

    fn wait_not_running(&self, id: &str, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            match self.containers.state(id) {
                Ok(s) if s.status.is_running() => {}
                _ => return true,
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// The checkpoints of a container, by name (`checkpoint ls`).
    pub fn checkpoint_list(&self, key: &str, dir: Option<&Path>) -> Result<Vec<Checkpoint>> {
        let id = self.lookup(key)?;
        let parent = self.checkpoints_dir(&id, dir);
        let mut out = Vec::new();
        let rd = match fs::read_dir(&parent) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("read", &parent)(e)),
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let meta = fs::read(e.path().join(META))
                .ok()
                .and_then(|d| serde_json::from_slice::<Checkpoint>(&d).ok())
                .unwrap_or(Checkpoint {
                    name: name.clone(),
                    created: String::new(),
                    tcp_established: false,
                });
            out.push(Checkpoint { name, ..meta });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a checkpoint (`checkpoint rm`).
    pub fn checkpoint_remove(&self, key: &str, name: &str, dir: Option<&Path>) -> Result<()> {
        let id = self.lookup(key)?;
        let p = self.checkpoints_dir(&id, dir).join(name);
        if !valid_checkpoint_name(name) || !p.is_dir() {
            return Err(Error::NotFound(format!(
                "container {key} has no checkpoint named {name:?} (`berth checkpoint ls {key}` lists them)"
            )));
        }
        fs::remove_dir_all(&p).map_err(io_err("remove", &p))
    }

    /// Starts a stopped container from checkpoint `name` (`start --checkpoint`): its
    /// processes resume where the checkpoint left them.
    pub fn start_checkpoint(&self, key: &str, name: &str, dir: Option<&Path>) -> Result<()> {
        let id = self.lookup(key)?;
        let images = self.checkpoints_dir(&id, dir).join(name);
        if !valid_checkpoint_name(name) || !images.join("inventory.img").exists() {
            return Err(Error::NotFound(format!(
                "container {key} has no checkpoint named {name:?} (`berth checkpoint ls {key}` lists them)"
            )));
        }
        let tcp = fs::read(images.join(META))
            .ok()
            .and_then(|d| serde_json::from_slice::<Checkpoint>(&d).ok())
            .is_some_and(|m| m.tcp_established);
        self.restore_images(&id, &images, tcp)
    }

    /// Starts container `id` restoring from `images` (see [`Engine::start_checkpoint`]).
    pub(crate) fn restore_images(&self, id: &str, images: &Path, tcp: bool) -> Result<()> {
        self.prepare_start(id)?;
        self.containers.update_state(id, |s| {
            s.restore_from = Some(RestoreFrom {
                images: images.to_path_buf(),
                tcp_established: tcp,
            });
        })?;
        let res = self
            .start_monitor(id, false)
            .and_then(|starting| starting.wait_started().map(drop));
        if res.is_err() {
            let _ = self.containers.update_state(id, |s| s.restore_from = None);
        } else if let Ok(r) = self.containers.record(id) {
            self.container_event(&r, "restore", &[]);
        }
        res
    }

    /// Writes checkpoint `name` of a container, with the container's configuration, its
    /// changes to its image and its volumes, as a tar in podman's layout (`container
    /// checkpoint --export`).
    pub fn checkpoint_export(
        &self,
        key: &str,
        name: &str,
        dir: Option<&Path>,
        out: &mut dyn Write,
    ) -> Result<()> {
        let id = self.lookup(key)?;
        let images = self.checkpoints_dir(&id, dir).join(name);
        if !images.join("inventory.img").exists() {
            return Err(Error::NotFound(format!(
                "container {key} has no checkpoint named {name:?}"
            )));
        }
        let r = self.containers.record(&id)?;
        let dir = self.containers.dir(&id);
        let spec = fs::read(dir.join("bundle/config.json"))
            .map_err(io_err("read", dir.join("bundle/config.json")))?;
        let (diff, deleted) = self.rootfs_diff(&id)?;
        // The image ID podman knows it by: its config's digest.
        let image_id = self
            .images
            .find_image_loaded(&r.image)
            .map(|i| i.config_digest.to_string())
            .unwrap_or_else(|_| r.image.clone());
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        let add = |b: &mut tar::Builder<&mut dyn Write>, name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_mtime(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            );
            h.set_cksum();
            b.append_data(&mut h, name, data)
                .map_err(io_err("archive", name))
        };
        b.append_dir_all("checkpoint", &images)
            .map_err(io_err("archive", &images))?;
        add(
            &mut b,
            "config.dump",
            &serde_json::to_vec_pretty(&podman_config(&r, &image_id, &self.runtime.bin))
                .unwrap_or_default(),
        )?;
        add(&mut b, "spec.dump", &spec)?;
        add(
            &mut b,
            "network.status",
            &serde_json::to_vec_pretty(&self.network_status(&id)).unwrap_or_default(),
        )?;
        add(&mut b, "rootfs-diff.tar", &diff)?;
        if !deleted.is_empty() {
            add(
                &mut b,
                "deleted.files",
                &serde_json::to_vec(&deleted).unwrap_or_default(),
            )?;
        }
        for m in r.mounts.iter().filter(|m| m.kind == "volume") {
            let mut vt = tar::Builder::new(Vec::new());
            vt.follow_symlinks(false);
            vt.append_dir_all(".", &m.source)
                .map_err(io_err("archive", &m.source))?;
            let data = vt.into_inner().map_err(io_err("archive", &m.source))?;
            add(&mut b, &format!("volumes/{}.tar", m.name), &data)?;
        }
        b.finish().map_err(io_err("archive", "checkpoint"))?;
        Ok(())
    }

    /// The container's addresses as podman's `network.status`: per network, its interface's
    /// address, gateway and MAC, which an import asks for again.
    fn network_status(&self, id: &str) -> Value {
        let Ok(eps) = self.networks.endpoints(id) else {
            return Value::Null;
        };
        let mut out = serde_json::Map::new();
        for (n, e) in eps {
            out.insert(
                n.name.clone(),
                json!({"interfaces": {e.ifname.clone(): {
                    "subnets": [{"ipnet": format!("{}/{}", e.ip, n.subnet.prefix),
                                 "gateway": n.gateway.to_string()}],
                    "mac_address": e.mac,
                }}}),
            );
        }
        Value::Object(out)
    }

    /// The container's changes to its image: a tar of what was added or changed (no
    /// whiteouts) and the paths that were deleted, as podman's `rootfs-diff.tar` and
    /// `deleted.files`.
    fn rootfs_diff(&self, id: &str) -> Result<(Vec<u8>, Vec<String>)> {
        let layer = self.diff_layer(id, &Default::default())?;
        let mut out = tar::Builder::new(Vec::new());
        let mut deleted = Vec::new();
        let mut a = tar::Archive::new(&layer[..]);
        for e in a.entries().map_err(io_err("read", "diff"))? {
            let mut e = e.map_err(io_err("read", "diff"))?;
            let path = e.path().map_err(io_err("read", "diff"))?.into_owned();
            let base = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if base == ".wh..wh..opq" {
                continue;
            }
            if let Some(gone) = base.strip_prefix(".wh.") {
                let parent = path.parent().unwrap_or(Path::new(""));
                deleted.push(format!("/{}", parent.join(gone).display()));
                continue;
            }
            let mut h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).map_err(io_err("read", "diff"))?;
            out.append_data(&mut h, &path, &data[..])
                .map_err(io_err("archive", &path))?;
        }
        Ok((
            out.into_inner().map_err(io_err("archive", "diff"))?,
            deleted,
        ))
    }

    /// Creates a container from an exported checkpoint and restores it (`container restore
    /// --import`); `name` replaces the one in the archive. Returns the new container's ID.
    /// Nothing is left behind when it fails.
    pub fn checkpoint_import(
        &self,
        archive: &mut dyn Read,
        name: Option<&str>,
        tcp_established: bool,
    ) -> Result<String> {
        let tmp = self.root.join("tmp").join(format!(
            "import-{}-{}",
            std::process::id(),
            crate::util::random_hex(6)
        ));
        crate::util::private_dir(&tmp)?;
        let res = self.import_unpacked(archive, &tmp, name, tcp_established);
        let _ = fs::remove_dir_all(&tmp);
        res
    }

    fn import_unpacked(
        &self,
        archive: &mut dyn Read,
        tmp: &Path,
        name: Option<&str>,
        tcp: bool,
    ) -> Result<String> {
        // podman compresses its exports (gzip, or zstd with --compress zstd).
        let archive = berth_image::decompressed(std::io::BufReader::new(archive))
            .map_err(|e| invalid("--import", format!("cannot read the archive: {e}")))?;
        let mut a = tar::Archive::new(archive);
        a.set_preserve_permissions(true);
        a.unpack(tmp)
            .map_err(|e| invalid("--import", format!("not a checkpoint archive: {e}")))?;
        for f in ["checkpoint/inventory.img", "config.dump"] {
            if !tmp.join(f).exists() {
                return Err(invalid(
                    "--import",
                    format!("not a checkpoint archive: it has no {f}"),
                ));
            }
        }
        let cfg: Value = serde_json::from_slice(
            &fs::read(tmp.join("config.dump")).map_err(io_err("read", "config.dump"))?,
        )
        .map_err(|e| invalid("--import", format!("config.dump: {e}")))?;
        let spec: Value = fs::read(tmp.join("spec.dump"))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or(Value::Null);
        let mut req = import_request(&cfg, &spec, &self.containerenv()?)?;
        if let Some(n) = name {
            req.name = Some(n.to_string());
        }
        let tcp = tcp || old_tcp(&tmp.join("checkpoint"));
        let (id, lost) = self.create_keeping_address(req, tmp)?;
        let res = (|| {
            let old: Option<Record> = cfg
                .get("berthRecord")
                .and_then(|v| serde_json::from_value(v.clone()).ok());
            self.apply_import(&id, tmp, old.as_ref())?;
            let images = self.checkpoints_dir(&id, None).join("imported");
            crate::util::private_dir(&self.checkpoints_dir(&id, None))?;
            fs::rename(tmp.join("checkpoint"), &images).map_err(io_err("move", &images))?;
            let restored = self.restore_images(&id, &images, tcp);
            // Restored (or not): the images were only the way in.
            let _ = fs::remove_dir_all(&images);
            restored
        })();
        if let Err(e) = res {
            // CRIU's log outlives the container it is about, for the error to point at.
            let log = self.containers.dir(&id).join("restore/restore.log");
            let kept = self.root.join("tmp").join(format!("restore-{id}.log"));
            let kept_ok = fs::copy(&log, &kept).is_ok();
            let _ = self.remove(&id, true, true);
            let mut msg = e
                .to_string()
                .replace(&log.display().to_string(), &kept.display().to_string());
            if let Some(ip) = lost.filter(|_| tcp) {
                msg += &format!(
                    " (its established TCP connections need its address {ip}, which is taken \
                     or outside the network here)"
                );
            }
            return Err(if kept_ok { Error::Other(msg) } else { e });
        }
        Ok(id)
    }

    /// Creates the imported container with the address and MAC its `network.status` names
    /// on its network, where this root's network allows (the address is in its subnet and
    /// free); else with new ones.
    /// Returns the ID, and the address it could not keep.
    fn create_keeping_address(
        &self,
        mut req: ContainerCreate,
        tmp: &Path,
    ) -> Result<(String, Option<String>)> {
        let net = req.host_config.network_mode.clone();
        let status: Value = fs::read(tmp.join("network.status"))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or(Value::Null);
        let iface = status
            .get(&net)
            .or_else(|| (net == "default").then(|| status.get("bridge")).flatten())
            .and_then(|n| n["interfaces"].as_object())
            .and_then(|i| i.values().next());
        let Some(iface) = iface else {
            return Ok((self.create(&req)?, None));
        };
        let ip = iface["subnets"][0]["ipnet"]
            .as_str()
            .and_then(|s| s.split('/').next())
            .unwrap_or("");
        let mac = iface["mac_address"].as_str().unwrap_or("");
        // The one endpoint a create attaches, whatever key the request gave it.
        let key = match req.networking.endpoints_config.keys().next() {
            Some(k) if req.networking.endpoints_config.len() == 1 => k.clone(),
            _ => net,
        };
        let mut plain = req.clone();
        if let Some(ep) = plain.networking.endpoints_config.get_mut(&key) {
            ep.ipam_config = None;
            ep.mac_address.clear();
        }
        plain.config.mac_address.clear();
        let ep = req.networking.endpoints_config.entry(key).or_default();
        if ep.ipam_config.is_none() && !ip.is_empty() {
            ep.ipam_config = Some(crate::record::EndpointIpamConfig {
                ipv4_address: ip.to_string(),
            });
        }
        if ep.mac_address.is_empty() {
            ep.mac_address = mac.to_string();
        }
        match self.create(&req) {
            Ok(id) => Ok((id, None)),
            Err(e) => {
                tracing::info!(error = %e, ip, mac, "the imported container's address is not free here: a new one");
                Ok((self.create(&plain)?, Some(ip.to_string())))
            }
        }
    }

    /// The archive's rootfs changes and volumes into a new container.
    fn apply_import(&self, id: &str, tmp: &Path, old: Option<&Record>) -> Result<()> {
        let r = self.containers.record(id)?;
        self.mount_rootfs(id)?;
        let rootfs = self.containers.dir(id).join("rootfs");
        if let Ok(f) = fs::File::open(tmp.join("rootfs-diff.tar")) {
            let mut a = tar::Archive::new(f);
            a.set_preserve_permissions(true);
            a.set_overwrite(true);
            a.unpack(&rootfs)
                .map_err(|e| invalid("--import", format!("rootfs-diff.tar: {e}")))?;
        }
        if let Ok(d) = fs::read(tmp.join("deleted.files")) {
            let gone: Vec<String> = serde_json::from_slice(&d)
                .map_err(|e| invalid("--import", format!("deleted.files: {e}")))?;
            for g in gone {
                // The parent is resolved inside the rootfs; the deleted entry itself is not
                // followed (a deleted symlink must not take its target with it).
                let g = Path::new(&g);
                let (Some(parent), Some(name)) = (g.parent(), g.file_name()) else {
                    continue;
                };
                let Ok(dir) = crate::rootpath::resolve_in_root(&rootfs, parent) else {
                    continue;
                };
                let p = dir.join(name);
                match fs::symlink_metadata(&p) {
                    Ok(m) if m.is_dir() => fs::remove_dir_all(&p).map_err(io_err("remove", &p))?,
                    Ok(_) => fs::remove_file(&p).map_err(io_err("remove", &p))?,
                    Err(_) => {}
                }
            }
        }
        // Volumes, matched by their mount point: an anonymous volume has a new name here.
        for m in r.mounts.iter().filter(|m| m.kind == "volume") {
            let old_name = old
                .and_then(|o| {
                    o.mounts
                        .iter()
                        .find(|om| om.kind == "volume" && om.destination == m.destination)
                })
                .map(|om| om.name.clone())
                .unwrap_or_else(|| m.name.clone());
            let t = tmp.join("volumes").join(format!("{old_name}.tar"));
            let Ok(f) = fs::File::open(&t) else { continue };
            let mut a = tar::Archive::new(f);
            a.set_preserve_permissions(true);
            a.set_overwrite(true);
            a.unpack(&m.source)
                .map_err(|e| invalid("--import", format!("volumes/{old_name}.tar: {e}")))?;
        }
        Ok(())
    }

    /// Moves a running container to the berth root of `dest` (`migrate`): the container is
    /// frozen, checkpointed (left frozen), exported and imported and restored there under its
    /// name; only once it runs there is the source removed. On a failure the source is thawed
    /// and runs on, and the destination keeps nothing.
    pub fn migrate(
        &self,
        key: &str,
        dest: &dyn MigrationTarget,
        tcp_established: bool,
    ) -> Result<Migrated> {
        let id = self.lookup(key)?;
        let r = self.containers.record(&id)?;
        if self.state(&id)?.status != Status::Running {
            return Err(Error::WrongState {
                id: id.clone(),
                status: self.state(&id)?.status.as_str().into(),
                what: "only a running container can be migrated".into(),
            });
        }
        if dest.is_root(&self.root) {
            return Err(invalid("DEST", "the destination is this root".to_string()));
        }
        // The image first (the destination may not have it), while the container runs.
        if !dest.has_image(&r.image)? {
            let reference = berth_image::Reference::parse(&r.config.image)?;
            let mut buf = Vec::new();
            berth_image::archive::save(&self.images, &[reference], &mut buf)?;
            dest.load_image(&buf)?;
        }
        let began = Instant::now();
        self.runtime.run("pause", &[&id])?;
        let name = format!("migrate-{}", crate::util::random_hex(4));
        let res = (|| {
            self.checkpoint_create(
                &id,
                &name,
                None,
                &CheckpointOptions {
                    leave_running: true,
                    tcp_established,
                    file_locks: false,
                },
            )?;
            let mut buf = Vec::new();
            self.checkpoint_export(&id, &name, None, &mut buf)?;
            dest.import(&buf, &r.name, tcp_established)
        })();
        let _ = self.checkpoint_remove(&id, &name, None);
        match res {
            Ok(new_id) => {
                let frozen = began.elapsed();
                let _ = self.containers.update_state(&id, |s| s.manual_stop = true);
                let _ = self.runtime.kill(&id, libc::SIGKILL, true);
                let _ = self.runtime.run("resume", &[&id]);
                self.wait_not_running(&id, Duration::from_secs(10));
                self.remove(&id, true, true)?;
                Ok(Migrated { id: new_id, frozen })
            }
            Err(e) => {
                let _ = self.runtime.run("resume", &[&id]);
                Err(e)
            }
        }
    }
}

fn old_tcp(images: &Path) -> bool {
    fs::read(images.join(META))
        .ok()
        .and_then(|d| serde_json::from_slice::<Checkpoint>(&d).ok())
        .is_some_and(|m| m.tcp_established)
}

/// Where [`Engine::migrate`] sends a container: another root on this machine (an
/// [`Engine`]), or a remote `berth serve` (the CLI's client of its API).
pub trait MigrationTarget {
    /// Whether this is the engine whose root is `root` (a migration to itself is refused).
    fn is_root(&self, root: &Path) -> bool {
        let _ = root;
        false
    }
    /// Whether the destination has the image with this ID.
    fn has_image(&self, id: &str) -> Result<bool>;
    /// Loads an image archive (`save`'s).
    fn load_image(&self, archive: &[u8]) -> Result<()>;
    /// Creates and restores a container from an exported checkpoint; its new ID.
    fn import(&self, archive: &[u8], name: &str, tcp_established: bool) -> Result<String>;
}

impl MigrationTarget for Engine {
    fn is_root(&self, root: &Path) -> bool {
        self.root == root
    }
    fn has_image(&self, id: &str) -> Result<bool> {
        Ok(self.images.find_image_loaded(id).is_ok())
    }
    fn load_image(&self, archive: &[u8]) -> Result<()> {
        berth_image::archive::load(&self.images, archive, &berth_image::Platform::host())?;
        Ok(())
    }
    fn import(&self, archive: &[u8], name: &str, tcp_established: bool) -> Result<String> {
        self.checkpoint_import(&mut &archive[..], Some(name), tcp_established)
    }
}

/// podman's `config.dump`: the fields podman's import reads, and berth's record beside them.
fn podman_config(r: &Record, image_id: &str, runtime: &Path) -> Value {
    json!({
        // podman restores only with the runtime that dumped: podman --runtime PATH names it
        // by its path.
        "runtime": runtime,
        "id": r.id,
        "name": r.name,
        "rootfsImageID": image_id.trim_start_matches("sha256:"),
        "rootfsImageName": r.config.image,
        "RawImageName": r.config.image,
        "command": r.args.iter().cloned().chain(std::iter::once(r.path.clone())).collect::<Vec<_>>(),
        "createdTime": r.created,
        "stopSignal": 15,
        "createNetNS": r.host_config.network_mode != "none",
        "berthRecord": r,
    })
}

impl Engine {
    /// An empty, read-only file that stands in for podman's `/run/.containerenv` in
    /// containers imported from podman (their checkpoint has a mount there to restore).
    fn containerenv(&self) -> Result<PathBuf> {
        let p = self.root.join("containerenv");
        if !p.exists() {
            berth_sys::write_atomic(&p, b"", 0o644)?;
        }
        Ok(p)
    }
}

/// The create request for an imported container: berth's record when the archive is
/// berth's, else (podman's) the image, process, mounts and network of podman's config and
/// spec, so that the mounts CRIU's images name exist again: /dev/shm a bind (a shareable
/// IPC), `/run/.containerenv` a bind of `containerenv`, podman's binds and named volumes.
fn import_request(cfg: &Value, spec: &Value, containerenv: &Path) -> Result<ContainerCreate> {
    if let Some(rec) = cfg.get("berthRecord") {
        let r: Record = serde_json::from_value(rec.clone())
            .map_err(|e| invalid("--import", format!("config.dump: berthRecord: {e}")))?;
        let mut config = r.config.clone();
        config.image = r.image.clone();
        return Ok(ContainerCreate {
            name: Some(r.name.clone()),
            config,
            host_config: r.host_config.clone(),
            networking: r.networking.clone(),
            ..Default::default()
        });
    }
    let image = cfg
        .get("rootfsImageID")
        .or_else(|| cfg.get("rootfsImageName"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("--import", "config.dump names no image".to_string()))?;
    let p = &spec["process"];
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut req = ContainerCreate {
        name: cfg.get("name").and_then(Value::as_str).map(String::from),
        ..Default::default()
    };
    req.config.image = if image.len() == 64 {
        format!("sha256:{image}")
    } else {
        image.to_string()
    };
    req.config.entrypoint = Some(strs(&p["args"]));
    req.config.cmd = Some(Vec::new());
    req.config.env = strs(&p["env"]);
    req.config.working_dir = p["cwd"].as_str().unwrap_or("/").to_string();
    req.config.tty = p["terminal"].as_bool().unwrap_or(false);
    req.config.hostname = spec["hostname"].as_str().unwrap_or("").to_string();
    let netns = cfg["createNetNS"].as_bool().unwrap_or(false)
        && cfg["networks"].as_object().is_some_and(|n| !n.is_empty());
    req.host_config.network_mode = if netns { "default" } else { "none" }.into();
    let has_ns = |t: &str| {
        spec["linux"]["namespaces"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n["type"] == t))
    };
    if !has_ns("cgroup") {
        req.host_config.cgroupns_mode = "host".into();
    }
    let own = [
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/dev/shm",
    ];
    for m in spec["mounts"].as_array().into_iter().flatten() {
        let (Some(dest), Some(src)) = (m["destination"].as_str(), m["source"].as_str()) else {
            continue;
        };
        if m["type"].as_str() != Some("bind") {
            continue;
        }
        let ro = m["options"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x == "ro"));
        if dest == "/dev/shm" {
            req.host_config.ipc_mode = "shareable".into();
            req.host_config.shm_size = cfg["shmSize"].as_i64().unwrap_or(0);
        } else if dest == "/run/.containerenv" {
            req.host_config
                .binds
                .push(format!("{}:{dest}:ro", containerenv.display()));
        } else if !own.contains(&dest) && Path::new(src).is_absolute() {
            let named = cfg["namedVolumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["dest"].as_str() == Some(dest));
            let from = match named.and_then(|v| v["volumeName"].as_str()) {
                Some(name) => name.to_string(),
                None if Path::new(src).exists() => src.to_string(),
                None => {
                    return Err(invalid(
                        "--import",
                        format!(
                            "the container binds {src} at {dest}, and {src} does not exist here"
                        ),
                    ));
                }
            };
            req.host_config
                .binds
                .push(format!("{from}:{dest}{}", if ro { ":ro" } else { "" }));
        }
    }
    Ok(req)
}
