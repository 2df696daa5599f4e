//! Which cgroup filesystems are mounted where: detected from `/proc/self/mountinfo`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fsutil::{io_err, normalize};
use crate::{Error, Result};

/// One mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The controllers bound to it (`cpu`, `memory`, ...), plus `name=NAME` for named
    /// hierarchies such as `name=systemd`.
    pub subsystems: Vec<String>,
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point (the mountinfo root field, usually `/`).
    pub root: PathBuf,
}

impl Hierarchy {
    /// Whether `subsystem` is bound to this hierarchy.
    pub fn has(&self, subsystem: &str) -> bool {
        self.subsystems.iter().any(|s| s == subsystem)
    }
}

/// The cgroup layout of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1: one hierarchy per mount, plus on hybrid hosts a cgroup2 mount.
    V1 {
        /// Every mounted v1 hierarchy (one entry per distinct mount; co-mounted controllers such
        /// as `cpu,cpuacct` share an entry).
        hierarchies: Vec<Hierarchy>,
        /// Mount point of the cgroup2 hierarchy on hybrid hosts.
        unified: Option<PathBuf>,
    },
    /// Pure cgroup v2.
    V2 {
        /// Mount point of the cgroup2 filesystem, e.g. `/sys/fs/cgroup`.
        root: PathBuf,
    },
}

/// One cgroup mount parsed from mountinfo.
#[derive(Debug)]
struct CgMount {
    v2: bool,
    root: PathBuf,
    mount_point: PathBuf,
    subsystems: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<CgMount> {
    berth_sys::mountinfo::parse(text)
        .into_iter()
        .filter_map(|m| {
            let v2 = match m.fs_type.as_str() {
                "cgroup" => false,
                "cgroup2" => true,
                _ => return None,
            };
            let subsystems = if v2 {
                Vec::new()
            } else {
                m.super_options
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro"
                                | "xattr"
                                | "noprefix"
                                | "clone_children"
                                | "cpuset_v2_mode"
                        ) && (!o.contains('=') || o.starts_with("name="))
                    })
                    .map(str::to_string)
                    .collect()
            };
            Some(CgMount {
                v2,
                root: m.root,
                mount_point: m.mount_point,
                subsystems,
            })
        })
        .collect()
}

fn layout_from(mounts: Vec<CgMount>) -> Result<Layout> {
    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    let mut unified = None;
    for m in mounts {
        if m.v2 {
            unified.get_or_insert(m.mount_point);
        } else if m.subsystems.is_empty()
            || hierarchies.iter().any(|h| h.subsystems == m.subsystems)
        {
            // bind mount of a hierarchy already seen: keep the first
            continue;
        } else {
            hierarchies.push(Hierarchy {
                subsystems: m.subsystems,
                mount_point: m.mount_point,
                root: m.root,
            });
        }
    }
    // only named v1 hierarchies (a leftover `name=systemd` mount) next to cgroup2: every
    // controller lives in cgroup2, so the host is effectively v2
    let real_v1 = hierarchies
        .iter()
        .any(|h| h.subsystems.iter().any(|s| !s.starts_with("name=")));
    if !real_v1 && let Some(root) = unified.clone() {
        return Ok(Layout::V2 { root });
    }
    if !hierarchies.is_empty() {
        Ok(Layout::V1 {
            hierarchies,
            unified,
        })
    } else if let Some(root) = unified {
        Ok(Layout::V2 { root })
    } else {
        Err(Error::NoCgroupFs)
    }
}

impl Layout {
    /// Detect the layout from `/proc/self/mountinfo`: v1 (possibly hybrid) if any v1 hierarchy
    /// is mounted, else v2 if cgroup2 is, else [`Error::NoCgroupFs`].
    pub fn detect() -> Result<Layout> {
        let p = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(p).map_err(|e| io_err("read", p, e))?;
        layout_from(parse_mountinfo(&text))
    }

    /// Whether the host is hybrid (v1 hierarchies plus a cgroup2 mount).
    pub fn is_hybrid(&self) -> bool {
        matches!(
            self,
            Layout::V1 {
                unified: Some(_),
                ..
            }
        )
    }
}

/// The calling process's cgroups from `/proc/self/cgroup`: (`subsystems` as listed, path).
/// The v2 entry has an empty subsystem list.
pub(crate) fn self_cgroups() -> Result<Vec<(Vec<String>, PathBuf)>> {
    let p = Path::new("/proc/self/cgroup");
    let text = fs::read_to_string(p).map_err(|e| io_err("read", p, e))?;
    Ok(parse_proc_cgroup(&text))
}

fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, PathBuf)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let subs = it.next()?;
            let path = it.next()?;
            let subs = if subs.is_empty() {
                Vec::new()
            } else {
                subs.split(',').map(str::to_string).collect()
            };
            Some((subs, PathBuf::from(path)))
        })
        .collect()
}

/// Resolve `cgroups_path` to a directory of one hierarchy (runc's cgroupfs driver semantics).
///
/// `own` is the calling process's cgroup in that hierarchy (for relative paths), `root` the
/// mountinfo root of the mount.
pub(crate) fn resolve_dir(
    mount_point: &Path,
    root: &Path,
    own: Option<&Path>,
    path: &Path,
) -> PathBuf {
    if path.is_absolute() {
        crate::fsutil::join_below(mount_point, path)
    } else {
        let own = own.unwrap_or(Path::new("/"));
        // own path is relative to the cgroup namespace root; strip the mount's root if present
        let own = own.strip_prefix(root).unwrap_or(own);
        let base = crate::fsutil::join_below(mount_point, own);
        crate::fsutil::join_below(&base, path)
    }
}

/// Normalize `linux.cgroupsPath` (default `/berth/<id>`); returns the path and whether it is the
/// default.
pub(crate) fn cgroup_path(cgroups_path: Option<&str>, id: &str) -> Result<(PathBuf, bool)> {
    match cgroups_path {
        Some(p) if !p.is_empty() => {
            let n = normalize(p)?;
            if n.as_os_str().is_empty() || n == Path::new("/") {
                return Err(Error::Invalid {
                    field: "cgroupsPath",
                    reason: format!("{p:?} names the hierarchy root"),
                });
            }
            Ok((n, false))
        }
        _ => {
            if id.is_empty() || id.contains('/') || id == "." || id == ".." {
                return Err(Error::Invalid {
                    field: "cgroupsPath",
                    reason: format!("container id {id:?} cannot name a cgroup"),
                });
            }
            Ok((PathBuf::from("/berth").join(id), true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
42 31 0:39 / /sys/fs/cgroup/net_cls,net_prio rw shared:1 - cgroup cgroup rw,net_cls,net_prio
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_mountinfo() {
        let l = layout_from(parse_mountinfo(HYBRID)).unwrap();
        let Layout::V1 {
            hierarchies,
            unified,
        } = l
        else {
            panic!("not v1")
        };
        assert_eq!(unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(hierarchies.len(), 5);
        assert_eq!(hierarchies[0].subsystems, vec!["cpu"]);
        assert_eq!(hierarchies[1].subsystems, vec!["cpuacct"]);
        assert_eq!(hierarchies[3].subsystems, vec!["name=systemd"]);
        assert_eq!(hierarchies[4].subsystems, vec!["net_cls", "net_prio"]);
        assert!(hierarchies[4].has("net_prio"));
    }

    #[test]
    fn named_only_v1_is_v2() {
        let l = layout_from(parse_mountinfo(
            "25 1 0:22 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             26 1 0:23 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n",
        ))
        .unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                root: "/sys/fs/cgroup/unified".into()
            }
        );
    }

    #[test]
    fn pure_v2() {
        let l = layout_from(parse_mountinfo(
            "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
        ))
        .unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
        assert!(matches!(
            layout_from(parse_mountinfo("1 1 0:1 / / rw - ext4 /dev/sda rw\n")),
            Err(Error::NoCgroupFs)
        ));
    }

    #[test]
    fn paths() {
        assert_eq!(
            cgroup_path(None, "abc").unwrap(),
            ("/berth/abc".into(), true)
        );
        assert!(cgroup_path(Some("/a/../../b"), "x").is_err());
        assert!(cgroup_path(Some("/"), "x").is_err());
        assert_eq!(
            resolve_dir(
                Path::new("/sys/fs/cgroup/memory"),
                Path::new("/"),
                Some(Path::new("/process_api/h")),
                Path::new("foo/bar")
            ),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/h/foo/bar")
        );
        assert_eq!(
            resolve_dir(
                Path::new("/sys/fs/cgroup/memory"),
                Path::new("/"),
                Some(Path::new("/process_api/h")),
                Path::new("/berth/x")
            ),
            PathBuf::from("/sys/fs/cgroup/memory/berth/x")
        );
        let pc = parse_proc_cgroup("9:name=systemd:/\n4:memory:/p/h\n0::/\n");
        assert_eq!(pc[1], (vec!["memory".to_string()], PathBuf::from("/p/h")));
        assert_eq!(pc[2], (vec![], PathBuf::from("/")));
    }
}
