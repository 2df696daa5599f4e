//! Small helpers over cgroup files: read, write, parse, create and remove directories.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Wrap an [`std::io::Error`] with the operation and path.
pub(crate) fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Read a whole cgroup file.
pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| io_err("read", path, e))
}

/// Read a file, `None` if it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path, e)),
    }
}

/// Write `value` to an existing cgroup file in a single `write(2)`.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err("open", path, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| io_err("write", path, e))
}

/// Write `value` if the file exists; `Ok(false)` if it does not.
pub(crate) fn write_if_exists(path: &Path, value: &str) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    write(path, value).map(|()| true)
}

/// Write a requested limit: a missing file means the host cannot do it.
pub(crate) fn write_required(path: &Path, value: &str, what: &str) -> Result<()> {
    if !path.exists() {
        return Err(Error::Unsupported(format!(
            "{what} requested but {} does not exist on this host",
            path.display()
        )));
    }
    write(path, value)
}

/// Parse a single-number file; `max` reads as `u64::MAX`.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// Read a single-number file; `None` if missing or unparsable.
pub(crate) fn read_u64(path: &Path) -> Result<Option<u64>> {
    Ok(read_opt(path)?.and_then(|s| parse_u64(&s)))
}

/// Parse a flat-keyed file (`key value` per line).
pub(crate) fn parse_flat(s: &str) -> Vec<(String, u64)> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = parse_u64(it.next()?)?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Value of `key` in a flat-keyed file, if present.
pub(crate) fn flat_get(s: &str, key: &str) -> Option<u64> {
    parse_flat(s)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Lexically normalize a cgroups path. Absolute stays absolute; `..` may not climb above the
/// start.
pub(crate) fn normalize(path: &str) -> Result<PathBuf> {
    let mut out: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(Error::Invalid {
                        field: "cgroupsPath",
                        reason: format!("{path:?} escapes its hierarchy with `..`"),
                    });
                }
            }
            Component::Normal(s) => out.push(s.to_str().ok_or_else(|| Error::Invalid {
                field: "cgroupsPath",
                reason: format!("{path:?} is not UTF-8"),
            })?),
            Component::Prefix(_) => unreachable!("no prefixes on unix"),
        }
    }
    let mut p = PathBuf::from(if path.starts_with('/') { "/" } else { "" });
    for s in out {
        p.push(s);
    }
    Ok(p)
}

/// Join a cgroup path (absolute or relative) below `base` without leaving `base`.
pub(crate) fn join_below(base: &Path, rel: &Path) -> PathBuf {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    if rel.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// Create `dir` and its missing parents below `mount`; returns the directories created,
/// top-down.
///
/// A parent removed concurrently (another manager destroying an empty shared parent) is
/// retried a few times.
pub(crate) fn mkdir_below(mount: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut created = Vec::new();
    let mut attempt = 0;
    'again: loop {
        let mut cur = mount.to_path_buf();
        for c in rel.components() {
            cur.push(c);
            match fs::create_dir(&cur) {
                Ok(()) => created.push(cur.clone()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == ErrorKind::NotFound && attempt < 5 => {
                    attempt += 1;
                    continue 'again;
                }
                Err(e) => return Err(io_err("mkdir", &cur, e)),
            }
        }
        return Ok(created);
    }
}

/// Every directory from just below `mount` down to `dir`, top-down.
pub(crate) fn levels_below(mount: &Path, dir: &Path) -> Vec<PathBuf> {
    let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut cur = mount.to_path_buf();
    rel.components()
        .map(|c| {
            cur.push(c);
            cur.clone()
        })
        .collect()
}

/// Remove a cgroup directory and its child cgroups, leaf-first. A missing directory is fine;
/// `EBUSY` is retried for a short while (processes that are just exiting).
pub(crate) fn remove_tree(dir: &Path) -> Result<()> {
    // The common case first: a leaf cgroup whose processes are gone (saves a readdir per
    // hierarchy, 11 of them on a v1 host).
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("readdir", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_err("readdir", dir, e))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path())?;
        }
    }
    rmdir_retry(dir, Duration::from_millis(500))
}

/// `rmdir` with retries on `EBUSY`; missing is success.
pub(crate) fn rmdir_retry(dir: &Path, patience: Duration) -> Result<()> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(2);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < patience => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(io_err("rmdir", dir, e)),
        }
    }
}

/// Wait up to a second for `pids` to report an empty cgroup (processes that were just killed);
/// an `EBUSY` error naming `dir` if they do not go.
pub(crate) fn wait_empty(dir: &Path, pids: impl Fn() -> Result<Vec<i32>>) -> Result<()> {
    let start = Instant::now();
    loop {
        let left = pids()?;
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(1) {
            return Err(io_err(
                "rmdir",
                dir,
                std::io::Error::new(
                    ErrorKind::ResourceBusy,
                    format!("processes still in the cgroup: {left:?}"),
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Remove an empty directory, ignoring every error (used for the default `/berth` parent).
pub(crate) fn rmdir_quiet(dir: &Path) {
    let _ = fs::remove_dir(dir);
}

/// Every pid in `cgroup.procs` of `dir` and its descendants (missing directory: none).
pub(crate) fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let Some(s) = read_opt(&dir.join("cgroup.procs"))? else {
        return Ok(());
    };
    out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("readdir", dir, e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            procs_recursive(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// The hugepage sizes of this host as cgroup file names use them (`2MB`, `1GB`, `64KB`).
pub(crate) fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(hugepage_name(kb))
        })
        .collect();
    v.sort();
    v
}

fn hugepage_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb & ((1 << 20) - 1) == 0 {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb & ((1 << 10) - 1) == 0 {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("/a/b/../c").unwrap(), PathBuf::from("/a/c"));
        assert_eq!(normalize("a/./b").unwrap(), PathBuf::from("a/b"));
        assert!(normalize("/a/../../etc").is_err());
        assert!(normalize("../x").is_err());
        assert_eq!(normalize("/").unwrap(), PathBuf::from("/"));
    }

    #[test]
    fn hugepage_names() {
        assert_eq!(hugepage_name(2048), "2MB");
        assert_eq!(hugepage_name(1048576), "1GB");
        assert_eq!(hugepage_name(64), "64KB");
    }

    #[test]
    fn flat() {
        assert_eq!(flat_get("a 1\noom_kill 3\n", "oom_kill"), Some(3));
        assert_eq!(parse_u64("max\n"), Some(u64::MAX));
    }
}
