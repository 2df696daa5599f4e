//! Devices in containers: `--device HOST[:CONTAINER[:PERMS]]` (the node, or every node under a
//! directory, with a device cgroup rule) and `--gpus` as CDI devices (the Container Device
//! Interface: vendors' JSON specs in `/etc/cdi` and `/var/run/cdi`, each naming devices of a
//! kind such as `nvidia.com/gpu` with the edits that give a container one: device nodes,
//! environment, mounts, hooks). Both are applied to the OCI spec at each start, as Docker
//! resolves them when it starts a container.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Hook, Hooks, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, Mount, Spec,
};
use serde::Deserialize;

use crate::error::{Error, Result, invalid};
use crate::record::{DeviceMapping, DeviceRequest, HostConfig};

/// Where CDI specs are looked for (`BERTH_CDI_SPEC_DIRS`, colon-separated, replaces them; as
/// Docker's `cdi-spec-dirs`).
pub(crate) const CDI_SPEC_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];

fn cdi_dirs() -> Vec<PathBuf> {
    match std::env::var("BERTH_CDI_SPEC_DIRS") {
        Ok(v) if !v.is_empty() => v.split(':').map(PathBuf::from).collect(),
        _ => CDI_SPEC_DIRS.iter().map(PathBuf::from).collect(),
    }
}

/// A `--device` checked and completed: the host path exists and is a device node or a
/// directory, the container path is absolute (default: the host's), the permissions are some
/// of `rwm` (default: all).
pub(crate) fn check_mapping(d: &DeviceMapping) -> Result<DeviceMapping> {
    let host = &d.path_on_host;
    if !host.starts_with('/') {
        return Err(invalid(
            "--device",
            format!("{host:?}: the host path must be absolute"),
        ));
    }
    let m = fs::metadata(host).map_err(|e| {
        invalid(
            "--device",
            format!("error gathering device information while adding device {host:?}: {e}"),
        )
    })?;
    let ft = m.file_type();
    if !(ft.is_char_device() || ft.is_block_device() || ft.is_dir()) {
        return Err(invalid(
            "--device",
            format!("{host:?} is not a device node (nor a directory of them)"),
        ));
    }
    let ctr = if d.path_in_container.is_empty() {
        host.clone()
    } else {
        d.path_in_container.clone()
    };
    if !ctr.starts_with('/') {
        return Err(invalid(
            "--device",
            format!("{ctr:?}: the container path must be absolute"),
        ));
    }
    let perms = if d.cgroup_permissions.is_empty() {
        "rwm".to_string()
    } else {
        d.cgroup_permissions.clone()
    };
    if !valid_perms(&perms) {
        return Err(invalid(
            "--device",
            format!("invalid permissions {perms:?}: some of r, w, m (read, write, mknod)"),
        ));
    }
    Ok(DeviceMapping {
        path_on_host: host.clone(),
        path_in_container: ctr,
        cgroup_permissions: perms,
    })
}

/// Whether `p` is some of `r`, `w`, `m`, each at most once.
pub(crate) fn valid_perms(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 3
        && p.chars().all(|c| "rwm".contains(c))
        && p.chars().enumerate().all(|(i, c)| !p[..i].contains(c))
}

/// The device node at `host` as `path` in the container, with an allow rule for `access`.
fn node(
    host: &Path,
    path: &Path,
    access: &str,
) -> Result<Option<(LinuxDevice, LinuxDeviceCgroup)>> {
    let m = fs::metadata(host).map_err(|e| {
        invalid(
            "--device",
            format!(
                "error gathering device information for {}: {e}",
                host.display()
            ),
        )
    })?;
    let typ = if m.file_type().is_char_device() {
        LinuxDeviceType::C
    } else if m.file_type().is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let (major, minor) = (libc::major(m.rdev()) as i64, libc::minor(m.rdev()) as i64);
    let mut d = LinuxDevice::default();
    d.set_path(path.to_path_buf());
    d.set_typ(typ);
    d.set_major(major);
    d.set_minor(minor);
    d.set_file_mode(Some(m.mode() & 0o777));
    d.set_uid(Some(m.uid()));
    d.set_gid(Some(m.gid()));
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(true);
    rule.set_typ(Some(typ));
    rule.set_major(Some(major));
    rule.set_minor(Some(minor));
    rule.set_access(Some(access.to_string()));
    Ok(Some((d, rule)))
}

/// The nodes a `--device` gives: the node itself, or every node below a directory (at the same
/// relative paths below the container path).
fn mapping_nodes(d: &DeviceMapping) -> Result<Vec<(LinuxDevice, LinuxDeviceCgroup)>> {
    let host = Path::new(&d.path_on_host);
    let ctr = Path::new(&d.path_in_container);
    if !host.is_dir() {
        return Ok(node(host, ctr, &d.cgroup_permissions)?
            .into_iter()
            .collect());
    }
    let mut out = Vec::new();
    let mut stack = vec![host.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_char_device() || ft.is_block_device() {
                let rel = p.strip_prefix(host).unwrap_or(&p);
                out.extend(node(&p, &ctr.join(rel), &d.cgroup_permissions)?);
            }
        }
    }
    Ok(out)
}

/// A CDI spec file.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CdiSpec {
    kind: String,
    #[serde(default)]
    devices: Vec<CdiDevice>,
    #[serde(default)]
    container_edits: ContainerEdits,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CdiDevice {
    name: String,
    #[serde(default)]
    container_edits: ContainerEdits,
}

/// CDI's `containerEdits`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ContainerEdits {
    env: Vec<String>,
    device_nodes: Vec<CdiDeviceNode>,
    mounts: Vec<CdiMount>,
    hooks: Vec<CdiHook>,
    additional_gids: Vec<u32>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CdiDeviceNode {
    path: String,
    host_path: String,
    permissions: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CdiMount {
    host_path: String,
    container_path: String,
    #[serde(rename = "type")]
    kind: String,
    options: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CdiHook {
    hook_name: String,
    path: String,
    args: Vec<String>,
    env: Vec<String>,
    timeout: Option<i64>,
}

/// Every CDI spec in the spec directories, with its file.
fn cdi_specs(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, CdiSpec)>> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(rd) = fs::read_dir(dir) else { continue };
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            match f.extension().and_then(|e| e.to_str()) {
                Some("json") => {
                    let data = fs::read(&f).map_err(crate::error::io_err("read CDI spec", &f))?;
                    let spec: CdiSpec =
                        serde_json::from_slice(&data).map_err(|error| Error::Json {
                            what: format!("CDI spec {}", f.display()),
                            error,
                        })?;
                    out.push((f, spec));
                }
                Some("yaml" | "yml") => {
                    return Err(invalid(
                        "--gpus",
                        format!(
                            "CDI spec {} is YAML: berth reads CDI specs in JSON (write one \
                             with `nvidia-ctk cdi generate --format=json`)",
                            f.display()
                        ),
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The CDI edits the `--gpus` requests select: devices of class `gpu` (kind `VENDOR/gpu`)
/// in the CDI specs, all of them, the first N, or those named; with each used spec's own
/// edits once. Fails when the host has none (or too few, or not the ones named).
pub(crate) fn gpu_edits(reqs: &[DeviceRequest]) -> Result<Vec<ContainerEdits>> {
    if reqs.is_empty() {
        return Ok(Vec::new());
    }
    let dirs = cdi_dirs();
    let looked = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let specs = cdi_specs(&dirs)?;
    // (spec index, device index) of every GPU, in the specs' order.
    let gpus: Vec<(usize, usize)> = specs
        .iter()
        .enumerate()
        .filter(|(_, (_, s))| s.kind.rsplit('/').next() == Some("gpu"))
        .flat_map(|(i, (_, s))| (0..s.devices.len()).map(move |j| (i, j)))
        .collect();
    let mut chosen: Vec<(usize, usize)> = Vec::new();
    for r in reqs {
        if !matches!(r.driver.as_str(), "" | "cdi" | "nvidia") {
            return Err(invalid(
                "--gpus",
                format!(
                    "unknown device driver {:?} (berth uses CDI devices)",
                    r.driver
                ),
            ));
        }
        if !r.capabilities.is_empty()
            && !r.capabilities.iter().any(|c| c.iter().any(|c| c == "gpu"))
        {
            return Err(invalid(
                "--gpus",
                format!(
                    "no device driver for capabilities {:?}: berth gives GPUs (capability gpu)",
                    r.capabilities
                ),
            ));
        }
        if gpus.is_empty() {
            return Err(invalid(
                "--gpus",
                format!(
                    "no CDI device of class gpu found: no CDI spec in {looked} names one \
                     (install the GPU vendor's CDI spec, e.g. `nvidia-ctk cdi generate \
                     --format=json --output=/etc/cdi/nvidia.json`)"
                ),
            ));
        }
        let picked: Vec<(usize, usize)> = if !r.device_ids.is_empty() {
            r.device_ids
                .iter()
                .map(|id| {
                    gpus.iter()
                        .copied()
                        .find(|&(i, j)| {
                            let (kind, name) = (&specs[i].1.kind, &specs[i].1.devices[j].name);
                            id == name || *id == format!("{kind}={name}")
                        })
                        .ok_or_else(|| {
                            invalid(
                                "--gpus",
                                format!("no CDI device {id:?} of class gpu found in {looked}"),
                            )
                        })
                })
                .collect::<Result<_>>()?
        } else if r.count < 0 {
            gpus.clone()
        } else {
            let n = r.count.max(1) as usize;
            if n > gpus.len() {
                return Err(invalid(
                    "--gpus",
                    format!(
                        "{n} GPUs asked for, but the CDI specs in {looked} have {}",
                        gpus.len()
                    ),
                ));
            }
            gpus[..n].to_vec()
        };
        for p in picked {
            if !chosen.contains(&p) {
                chosen.push(p);
            }
        }
    }
    let mut out = Vec::new();
    let mut specs_used: Vec<usize> = Vec::new();
    for &(i, j) in &chosen {
        if !specs_used.contains(&i) {
            specs_used.push(i);
            out.push(specs[i].1.container_edits.clone());
        }
        out.push(specs[i].1.devices[j].container_edits.clone());
    }
    Ok(out)
}

/// Applies `--device`s and the `--gpus` CDI edits to the spec.
pub(crate) fn apply(spec: &mut Spec, hc: &HostConfig) -> Result<()> {
    let edits = gpu_edits(&hc.device_requests)?;
    if hc.devices.is_empty() && edits.is_empty() {
        return Ok(());
    }
    let mut nodes = Vec::new();
    for d in &hc.devices {
        nodes.extend(mapping_nodes(&check_mapping(d)?)?);
    }
    let mut env: Vec<String> = Vec::new();
    let mut mounts: Vec<Mount> = Vec::new();
    let mut hooks: BTreeMap<String, Vec<Hook>> = BTreeMap::new();
    let mut gids: Vec<u32> = Vec::new();
    for e in &edits {
        for n in &e.device_nodes {
            let host = if n.host_path.is_empty() {
                &n.path
            } else {
                &n.host_path
            };
            let access = if n.permissions.is_empty() {
                "rwm"
            } else {
                &n.permissions
            };
            if !valid_perms(access) {
                return Err(invalid(
                    "--gpus",
                    format!("CDI device node {}: invalid permissions {access:?}", n.path),
                ));
            }
            let found = node(Path::new(host), Path::new(&n.path), access)?;
            nodes.extend(found);
        }
        env.extend(e.env.iter().cloned());
        for m in &e.mounts {
            let kind = if m.kind.is_empty() { "bind" } else { &m.kind };
            let mut opts: Vec<&str> = m.options.iter().map(String::as_str).collect();
            if opts.is_empty() && kind == "bind" {
                opts = vec!["rbind", "rprivate"];
            }
            mounts.push(crate::spec::mount(
                &m.container_path,
                kind,
                &m.host_path,
                &opts,
            ));
        }
        for h in &e.hooks {
            let mut hook = Hook::default();
            hook.set_path(PathBuf::from(&h.path));
            hook.set_args((!h.args.is_empty()).then(|| h.args.clone()));
            hook.set_env((!h.env.is_empty()).then(|| h.env.clone()));
            hook.set_timeout(h.timeout);
            hooks.entry(h.hook_name.clone()).or_default().push(hook);
        }
        gids.extend(&e.additional_gids);
    }

    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut devices = linux.devices().clone().unwrap_or_default();
    let mut res = linux.resources().clone().unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    for (d, rule) in nodes {
        devices.retain(|x| x.path() != d.path());
        devices.push(d);
        rules.push(rule);
    }
    linux.set_devices(Some(devices));
    res.set_devices(Some(rules));
    linux.set_resources(Some(res));
    spec.set_linux(Some(linux));

    let mut p = spec.process().clone().unwrap_or_default();
    let mut penv = p.env().clone().unwrap_or_default();
    for kv in env {
        let key = kv.split('=').next().unwrap_or(&kv).to_string();
        penv.retain(|e| e.split('=').next() != Some(key.as_str()));
        penv.push(kv);
    }
    p.set_env(Some(penv));
    if !gids.is_empty() {
        let mut u = p.user().clone();
        let mut g = u.additional_gids().clone().unwrap_or_default();
        g.extend(
            gids.iter()
                .filter(|x| !g.contains(x))
                .copied()
                .collect::<Vec<_>>(),
        );
        u.set_additional_gids(Some(g));
        p.set_user(u);
    }
    spec.set_process(Some(p));

    let mut all = spec.mounts().clone().unwrap_or_default();
    for m in mounts {
        crate::spec::push_mount(&mut all, m);
    }
    spec.set_mounts(Some(all));

    if !hooks.is_empty() {
        let mut h: Hooks = spec.hooks().clone().unwrap_or_default();
        for (name, list) in hooks {
            let slot = match name.as_str() {
                "prestart" => h.prestart_mut(),
                "createRuntime" => h.create_runtime_mut(),
                "createContainer" => h.create_container_mut(),
                "startContainer" => h.start_container_mut(),
                "poststart" => h.poststart_mut(),
                "poststop" => h.poststop_mut(),
                other => {
                    return Err(invalid(
                        "--gpus",
                        format!("CDI hook {other:?} is not an OCI hook"),
                    ));
                }
            };
            slot.get_or_insert_with(Vec::new).extend(list);
        }
        spec.set_hooks(Some(h));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_permissions() {
        for ok in ["r", "rw", "rwm", "mw"] {
            assert!(valid_perms(ok), "{ok}");
        }
        for bad in ["", "rr", "x", "rwmr"] {
            assert!(!valid_perms(bad), "{bad}");
        }
    }
}
