//! `-u USER[:GROUP]` resolved against the image's /etc/passwd and /etc/group, as Docker does:
//! names must exist there, numbers need not (a uid not in passwd gets gid 0).

use std::fs;
use std::path::Path;

use crate::error::{Result, invalid};
use crate::rootpath::resolve_in_root;

/// A resolved user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) additional_gids: Vec<u32>,
    pub(crate) home: String,
}

fn read_db(rootfs: &Path, file: &str) -> Vec<Vec<String>> {
    let Ok(p) = resolve_in_root(rootfs, Path::new(file)) else {
        return Vec::new();
    };
    let Ok(s) = fs::read_to_string(p) else {
        return Vec::new();
    };
    s.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`) in `rootfs`.
pub(crate) fn resolve(rootfs: &Path, spec: &str) -> Result<ExecUser> {
    let passwd = read_db(rootfs, "/etc/passwd");
    let groups = read_db(rootfs, "/etc/group");
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entry = passwd
        .iter()
        .find(|e| e.len() >= 4 && (e[0] == user || (user.parse::<u32>().is_ok() && e[2] == user)));
    let (uid, mut gid, name, home) = match (entry, user.parse::<u32>()) {
        (Some(e), _) => (
            e[2].parse().unwrap_or(0),
            e[3].parse().unwrap_or(0),
            e[0].clone(),
            e.get(5).cloned().unwrap_or_else(|| "/".into()),
        ),
        (None, Ok(uid)) => (uid, 0, String::new(), "/".into()),
        (None, Err(_)) => {
            return Err(invalid(
                "--user",
                format!("unable to find user {user}: no matching entries in passwd file"),
            ));
        }
    };
    let mut additional = Vec::new();
    match group {
        Some(g) if !g.is_empty() => {
            gid = match groups.iter().find(|e| e.len() >= 3 && e[0] == g) {
                Some(e) => e[2].parse().unwrap_or(0),
                None => g.parse().map_err(|_| {
                    invalid(
                        "--user",
                        format!("unable to find group {g}: no matching entries in group file"),
                    )
                })?,
            };
        }
        _ => {
            if !name.is_empty() {
                for e in &groups {
                    if e.len() >= 4
                        && e[3].split(',').any(|m| m == name)
                        && let Ok(g) = e[2].parse::<u32>()
                        && g != gid
                        && !additional.contains(&g)
                    {
                        additional.push(g);
                    }
                }
            }
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids: additional,
        home,
    })
}

/// `--group-add`s as gids: names looked up in the image's /etc/group, or numbers.
pub(crate) fn group_ids(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let db = read_db(rootfs, "/etc/group");
    groups
        .iter()
        .map(|g| match db.iter().find(|e| e.len() >= 3 && e[0] == *g) {
            Some(e) => e[2].parse().map_err(|_| {
                invalid(
                    "--group-add",
                    format!(
                        "group {g} has an invalid gid {:?} in the image's /etc/group",
                        e[2]
                    ),
                )
            }),
            None => g.parse().map_err(|_| {
                invalid(
                    "--group-add",
                    format!(
                        "unable to find group {g}: no matching entries in the image's \
                         /etc/group (give a name it has, or a number)"
                    ),
                )
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nadm:x:4:web\n",
        )
        .unwrap();
        let u = resolve(d.path(), "web").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.clone()), (33, 33, vec![4]));
        assert_eq!(u.home, "/var/www");
        assert_eq!(resolve(d.path(), "1000:1000").unwrap().gid, 1000);
        assert_eq!(resolve(d.path(), "1000").unwrap().gid, 0);
        assert_eq!(resolve(d.path(), "web:adm").unwrap().gid, 4);
        assert!(resolve(d.path(), "nobody").is_err());
        assert_eq!(resolve(d.path(), "").unwrap().uid, 0);
    }
}
