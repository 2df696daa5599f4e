//! `/proc/self/mountinfo` (proc(5)): one line per mount,
//! `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`,
//! with space, tab, newline and backslash in paths escaped as `\040`, `\011`, `\012`, `\134`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::{PathError, Result};

/// Where the kernel lists the mounts of our mount namespace.
pub const SELF: &str = "/proc/self/mountinfo";

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount ID (unique while mounted; reused after).
    pub id: u64,
    /// The parent mount's ID.
    pub parent: u64,
    /// The directory of the file system shown at the mount point (`/` for a whole one; a bind
    /// mount's source directory), unescaped.
    pub root: PathBuf,
    /// Where it is mounted, unescaped.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub options: String,
    /// The optional fields (`shared:N`, `master:N`, `propagate_from:N`, `unbindable`).
    pub optional: Vec<String>,
    /// The file system type (`ext4`, `overlay`, `cgroup2`).
    pub fs_type: String,
    /// The mount source (a device, or what was passed to mount(2)), unescaped.
    pub source: String,
    /// The super block's options (for cgroup v1: the controllers).
    pub super_options: String,
}

impl Mount {
    /// Whether the mount propagates to and from a peer group (`shared:N`).
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }
}

/// Undoes mountinfo's octal escapes (`\040` is a space), byte for byte.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(v) = b
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn path(s: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(s)))
}

/// Parses one line; `None` if it is not a well-formed mountinfo line.
pub fn parse_line(line: &str) -> Option<Mount> {
    let (pre, post) = line.split_once(" - ")?;
    let mut pre = pre.split(' ');
    let id = pre.next()?.parse().ok()?;
    let parent = pre.next()?.parse().ok()?;
    let _dev = pre.next()?;
    let root = path(pre.next()?);
    let mount_point = path(pre.next()?);
    let options = pre.next()?.to_string();
    let optional = pre.filter(|o| !o.is_empty()).map(str::to_string).collect();
    let mut post = post.splitn(3, ' ');
    let fs_type = post.next()?.to_string();
    let source = String::from_utf8_lossy(&unescape(post.next()?)).into_owned();
    let super_options = post.next().unwrap_or("").to_string();
    Some(Mount {
        id,
        parent,
        root,
        mount_point,
        options,
        optional,
        fs_type,
        source,
        super_options,
    })
}

/// Parses mountinfo text, in its order (parents before children), skipping malformed lines.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// The mounts of our mount namespace, from [`SELF`]; fails with `read /proc/self/mountinfo`.
pub fn read() -> Result<Vec<Mount>> {
    std::fs::read_to_string(SELF)
        .map(|t| parse(&t))
        .map_err(PathError::map("read", SELF))
}

/// Whether something is mounted exactly at `path` (a symlink at `path` is not followed).
/// Asked of the kernel with one `statx` (STATX_ATTR_MOUNT_ROOT, Linux 5.8), else read from
/// mountinfo, compared as given (pass a canonical path); `false` if neither can tell.
pub fn is_mountpoint(path: &Path) -> bool {
    if let Some(root) = statx_mount_root(path) {
        return root;
    }
    read().is_ok_and(|m| m.iter().any(|m| m.mount_point == path))
}

/// Whether `path` is the root of a mount, if the kernel reports it (`None` where statx or
/// the attribute is missing); a path that does not exist is no mount point.
fn statx_mount_root(path: &Path) -> Option<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statx is plain data; the kernel fills it.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and out-pointer; mask 0 asks for no fields, only attributes.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
            0,
            &mut st,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error().raw_os_error();
        return matches!(e, Some(libc::ENOENT) | Some(libc::ENOTDIR)).then_some(false);
    }
    let attr = libc::STATX_ATTR_MOUNT_ROOT as u64;
    (st.stx_attributes_mask & attr != 0).then_some(st.stx_attributes & attr != 0)
}

/// The mounts at or below `dir` (compared as given: pass a canonical path), in mountinfo order.
pub fn mounted_below(dir: &Path) -> Result<Vec<Mount>> {
    Ok(read()?
        .into_iter()
        .filter(|m| m.mount_point.starts_with(dir))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
35 22 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
40 22 0:31 /data/a\\040b /mnt/with\\040space\\011tab\\134slash\\303\\251 rw master:3 propagate_from:2 - overlay over\\040lay rw,lowerdir=/l
41 22 0:32 / /mnt/x rw - tmpfs tmpfs rw
garbage line
";

    #[test]
    fn parses_fields_and_unescapes_paths() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 4, "{m:#?}");
        assert_eq!(m[0].id, 22);
        assert_eq!(m[0].parent, 1);
        assert_eq!(m[0].mount_point, Path::new("/"));
        assert_eq!(m[0].fs_type, "ext4");
        assert_eq!(m[0].source, "/dev/sda1");
        assert_eq!(m[0].super_options, "rw,errors=remount-ro");
        assert!(m[0].is_shared());
        assert_eq!(m[1].super_options, "rw,memory");
        // Non-ASCII (UTF-8 é as the kernel escapes nothing but these four) stays bytes.
        assert_eq!(
            m[2].mount_point,
            Path::new("/mnt/with space\ttab\\slash\u{e9}")
        );
        assert_eq!(m[2].root, Path::new("/data/a b"));
        assert_eq!(m[2].optional, ["master:3", "propagate_from:2"]);
        assert!(!m[2].is_shared());
        assert_eq!(m[2].source, "over lay");
        assert_eq!(m[2].options, "rw");
        assert!(m[3].optional.is_empty());
    }

    #[test]
    fn unescape_leaves_what_is_no_escape() {
        assert_eq!(unescape("a\\04"), b"a\\04");
        assert_eq!(unescape("a\\x41b"), b"a\\x41b");
        assert_eq!(unescape("\\303\\251"), "é".as_bytes());
    }

    #[test]
    fn our_own_mounts_are_found() {
        let all = read().unwrap();
        assert!(all.iter().any(|m| m.mount_point == Path::new("/")));
        assert!(is_mountpoint(Path::new("/")));
        assert!(is_mountpoint(Path::new("/proc")));
        assert!(!is_mountpoint(Path::new("/proc/self")));
        assert!(!is_mountpoint(Path::new("/no/such/berth/path")));
        // statx agrees with mountinfo on every mount point it lists (and on their parents'
        // plain subdirectories: /proc/self above).
        for m in &all {
            if m.mount_point.exists() {
                assert_eq!(statx_mount_root(&m.mount_point), Some(true), "{m:?}");
            }
        }
        let below = mounted_below(Path::new("/proc")).unwrap();
        assert!(below.iter().all(|m| m.mount_point.starts_with("/proc")));
        assert!(below.iter().any(|m| m.fs_type == "proc"));
    }
}
