//! What `COPY` and `ADD` do to a filesystem, with BuildKit's semantics.
//!
//! The executor mounts a stage's layers as an overlay and hands the merged directory to
//! [`copy_into`] as `rootfs`: that directory is the image's `/`. Sources are read from
//! `source_root` (the build context, or another stage's root for `--from`).
//!
//! # Sources
//! - A source is cleaned as a path below the source root: `../x`, `/x` and `x/` all name `x`
//!   (BuildKit drops the `..` that would leave the context).
//! - A source component may hold wildcards (`*`, `?`, `[a-z]`, `[^a]`, `\` escapes, as Go's
//!   `filepath.Match`, within one component). Only real directories are descended while
//!   matching; what a wildcard matches, in name order, is copied as if named one by one.
//! - Symlinks met while resolving a source, including a top-level source that is itself a
//!   symlink, are followed as if the source root were `/`: they can never lead outside it.
//!   Symlinks inside a copied directory are copied as symlinks.
//! - A directory source copies its contents (not the directory itself) into the destination,
//!   merging with what is there. Any other source goes to `dest/NAME` when `dest` ends with `/`
//!   (or `/.`, or is `.`) or is an existing directory, else to `dest` itself.
//! - More than one source, or a wildcard matching more than one entry, needs a destination that
//!   is a directory (see [`CopyError::DestNotDirectory`]).
//! - A source that does not exist, or that a wildcard matches nothing for, is an error naming
//!   it; the message says "excluded by .dockerignore" only when the ignore rules hid it.
//!
//! # Filters
//! - The `.dockerignore` [`Matcher`] (passed by the executor for context sources only) is
//!   applied to paths relative to the source root: what it ignores does not exist, as in the
//!   context BuildKit transfers (directories it ignores are still entered when a `!` rule could
//!   bring something below back).
//! - `--exclude` patterns (moby/patternmatcher syntax, `!` and `**` included) are applied as
//!   BuildKit does, relative to each copied source: to paths inside a directory source (so
//!   `ADD --exclude=*.mp3 dir3/ /3/` skips `dir3/a.mp3`), and to the name of a file source.
//!   An excluded file source is skipped without error. A directory that is excluded but has
//!   re-included entries below is created to hold them.
//! - `--parents` ([`CopySpec::parents`]): the source is split at its first `/./` (BuildKit's
//!   pivot; without one, at the source root); what is left of the pivot is the base, what is
//!   right of it is a pattern (patternmatcher syntax, `**` allowed). Everything below the base
//!   that the pattern matches is copied with its path relative to the base kept under `dest`:
//!   `COPY --parents a/b/f.txt /d/` writes `/d/a/b/f.txt`, `COPY --parents x/./y/*.txt /d/`
//!   writes `/d/y/…`. The destination is always a directory then.
//!
//! # Destination
//! - A relative `dest` is joined to the stage's `WORKDIR`. It is resolved inside `rootfs`:
//!   symlinks in the image's tree are followed as if `rootfs` were `/`, and can never lead
//!   outside it (every open below is `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` on a
//!   path this module resolved itself, or an `*at` call relative to a directory it opened).
//! - Missing parents of the destination are created with mode 0755 (BuildKit would use the
//!   `--chmod` mode for them; we don't, a `--chmod=644` must not make the parents untraversable)
//!   and the `--chown` owner, else root. A destination directory created for a directory source
//!   takes that directory's mode and times; an existing one keeps its own.
//! - Copied entries get the `--chown` owner, else `0:0` (the context's owners are not kept, as in
//!   Docker) unless [`CopySpec::preserve_owners`] (for `--from` sources, whose owners BuildKit
//!   keeps). Modes are kept unless `--chmod`, which applies to every copied file and directory.
//!   Access and modification times are kept. Existing directories below the destination take
//!   the metadata of the directory copied onto them.
//! - An existing file or symlink where an entry goes is replaced; an existing directory where a
//!   non-directory goes is an error naming it ([`CopyError::IsADirectory`]), and so is an
//!   existing non-directory where a directory goes ([`CopyError::NotADirectory`]).
//! - Hard links inside a copied tree are copied as independent files (BuildKit keeps them
//!   linked; the content is the same, the layer is a little larger). Extended attributes are not
//!   copied.
//!
//! # `ADD` with a local archive
//! When [`CopySpec::add`] is set, a source that is a regular file and, by its content, a tar
//! archive (plain, gzip, bzip2, xz or zstd) is extracted into `dest` (created as a directory)
//! instead of being copied. As in BuildKit (which extracts in a chroot at `dest`), entry names
//! are cleaned inside `dest` (`../x` and `/x` land at `dest/x`), and symlinks the archive
//! creates are resolved inside `dest`, so no entry is written outside it. Entries keep the
//! archive's modes, times and owners (the `--chown` owner replaces the owners; `--chmod` does
//! not apply, as in BuildKit). Whiteout files are not interpreted: they are extracted as
//! they are. An entry where a directory exists replaces it, unless both are directories. The
//! archive's root entry (`./`) does not change `dest`'s own metadata. Remote URLs are the
//! executor's business.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use sha2::{Digest, Sha256};

use crate::ignore::{IgnoreError, Matcher, clean_path};

/// One `COPY` or `ADD` of local sources, as the executor resolved it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySpec {
    /// The sources, variable-expanded, as written; relative to the source root (a leading `/`
    /// is the source root too).
    pub sources: Vec<String>,
    /// The destination, variable-expanded; a relative one is joined to [`CopySpec::workdir`].
    pub dest: String,
    /// The stage's `WORKDIR` (`/` when unset).
    pub workdir: String,
    /// `--chown`, resolved to ids.
    pub chown: Option<(u32, u32)>,
    /// `--chmod`, see [`parse_chmod`].
    pub chmod: Option<u32>,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--parents`.
    pub parents: bool,
    /// `ADD`: local archives are extracted.
    pub add: bool,
    /// Keep the sources' owners when there is no `--chown` (BuildKit does for `--from`
    /// sources); otherwise copied entries belong to `0:0`.
    pub preserve_owners: bool,
}

/// Why a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source that does not exist, or that nothing matches.
    #[error(
        "{verb} failed: file not found in build context{}: stat {name}: file does not exist",
        if *ignored { " or excluded by .dockerignore" } else { "" }
    )]
    NotFound {
        /// `COPY` or `ADD`.
        verb: &'static str,
        /// The source as written.
        name: String,
        /// The `.dockerignore` rules hid it (it exists on disk).
        ignored: bool,
    },
    /// Several sources into something that is not a directory.
    #[error(
        "When using {verb} with more than one source file, the destination must be a directory and end with a /"
    )]
    DestNotDirectory {
        /// `COPY` or `ADD`.
        verb: &'static str,
    },
    /// A bad `--chmod` value.
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    Chmod(String),
    /// A source with a malformed wildcard.
    #[error("invalid source {source_path:?}: syntax error in pattern")]
    Pattern {
        /// The source as written.
        source_path: String,
    },
    /// A bad `--exclude` (or `--parents`) pattern.
    #[error("invalid pattern: {0}")]
    BadPattern(#[from] IgnoreError),
    /// A directory would go where a non-directory is.
    #[error("cannot copy to non-directory: {0}")]
    NotADirectory(String),
    /// A non-directory would go where a directory is.
    #[error("cannot replace directory {0} with a file")]
    IsADirectory(String),
    /// A path with too many symlinks.
    #[error("{0}: too many levels of symbolic links")]
    Loop(String),
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what (a path in the image starts with `/`, a source path is relative).
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A bad archive.
    #[error("ADD {archive}: {message}")]
    Archive {
        /// The source.
        archive: String,
        /// What is wrong.
        message: String,
    },
}

fn io_err(op: &'static str, path: impl Into<String>) -> impl FnOnce(Errno) -> CopyError {
    let path = path.into();
    move |e| CopyError::Io {
        op,
        path,
        source: io::Error::from(e),
    }
}

/// Parses `--chmod`: an octal mode up to `07777` (`755`, `0644`). Symbolic modes (`u+x`),
/// which BuildKit accepts only in its labs channel, are an error.
pub fn parse_chmod(s: &str) -> Result<u32, CopyError> {
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(CopyError::Chmod(s.to_string()));
    }
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(CopyError::Chmod(s.to_string())),
    }
}

// ---------------------------------------------------------------------------------------------
// Paths resolved inside a root.

type Comps = Vec<OsString>;

fn rel_display(comps: &[OsString]) -> String {
    let parts: Vec<_> = comps.iter().map(|c| c.to_string_lossy()).collect();
    parts.join("/")
}

fn image_display(comps: &[OsString]) -> String {
    format!("/{}", rel_display(comps))
}

fn join_os(comps: &[OsString]) -> OsString {
    let mut out = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    OsString::from_vec(out)
}

/// Components of a path, lexically: no empty or `.` parts; `..` is kept for the resolver.
fn split_bytes(p: &[u8]) -> VecDeque<OsString> {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsString::from_vec(c.to_vec()))
        .collect()
}

/// `..`-free components, as `clean("/" + p)`.
fn clean_comps(p: &[u8]) -> Comps {
    let mut out: Comps = Vec::new();
    for c in split_bytes(p) {
        if c == ".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out
}

/// A directory treated as `/`.
struct Root {
    fd: OwnedFd,
}

/// A path resolved inside a [`Root`]: no symlink, no `..`.
struct Resolved {
    comps: Comps,
    /// Every component exists (the last may be of any type).
    exists: bool,
}

enum ResolveError {
    /// A non-directory where a directory was needed, at this path.
    NotDir(Comps),
    Loop,
    Io(Errno, Comps),
}

const MAX_LINKS: usize = 255;

fn stat_at(dir: impl AsFd, name: &OsStr) -> nix::Result<Option<FileStat>> {
    match nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn is_dir(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFDIR
}

fn open_subdir(dir: impl AsFd, name: &OsStr) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

impl Root {
    fn open(path: &Path) -> Result<Root, CopyError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err("opening", path.display().to_string()))?;
        Ok(Root { fd })
    }

    /// Opens a path this module resolved (no symlink, no `..`), refusing any symlink met.
    fn open_resolved(&self, comps: &[OsString], flags: OFlag) -> nix::Result<OwnedFd> {
        let path = if comps.is_empty() {
            OsString::from(".")
        } else {
            join_os(comps)
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        nix::fcntl::openat2(&self.fd, path.as_os_str(), how)
    }

    fn dir(&self, comps: &[OsString]) -> nix::Result<OwnedFd> {
        self.open_resolved(comps, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
    }

    fn file(&self, comps: &[OsString]) -> nix::Result<File> {
        self.open_resolved(comps, OFlag::O_RDONLY).map(File::from)
    }

    /// Resolves `path` as if this root were `/`: `..` stops at the root, symlinks (the last
    /// component's too when `follow_final`) are followed, absolute targets from the root.
    /// Components past the first missing one are taken lexically.
    fn resolve(&self, path: &[u8], follow_final: bool) -> Result<Resolved, ResolveError> {
        let mut queue = split_bytes(path);
        let mut out: Comps = Vec::new();
        let mut missing_from: Option<usize> = None;
        let mut links = 0;
        while let Some(c) = queue.pop_front() {
            if c == ".." {
                out.pop();
                if missing_from.is_some_and(|i| out.len() <= i) {
                    missing_from = None;
                }
                continue;
            }
            if missing_from.is_some() {
                out.push(c);
                continue;
            }
            let parent = self
                .dir(&out)
                .map_err(|e| ResolveError::Io(e, out.clone()))?;
            let st = stat_at(&parent, &c).map_err(|e| {
                let mut p = out.clone();
                p.push(c.clone());
                ResolveError::Io(e, p)
            })?;
            let last = queue.is_empty();
            match st {
                None => {
                    missing_from = Some(out.len());
                    out.push(c);
                }
                Some(st) if file_type(&st) == SFlag::S_IFLNK && (!last || follow_final) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(ResolveError::Loop);
                    }
                    let target = nix::fcntl::readlinkat(&parent, c.as_os_str()).map_err(|e| {
                        let mut p = out.clone();
                        p.push(c.clone());
                        ResolveError::Io(e, p)
                    })?;
                    let target = target.as_bytes();
                    if target.starts_with(b"/") {
                        out.clear();
                    }
                    for t in split_bytes(target).into_iter().rev() {
                        queue.push_front(t);
                    }
                }
                Some(st) if !last && !is_dir(&st) => {
                    out.push(c);
                    return Err(ResolveError::NotDir(out));
                }
                Some(_) => out.push(c),
            }
        }
        Ok(Resolved {
            comps: out,
            exists: missing_from.is_none(),
        })
    }

    fn lstat(&self, comps: &[OsString]) -> nix::Result<Option<FileStat>> {
        match comps.split_last() {
            None => nix::sys::stat::fstat(&self.fd).map(Some),
            Some((name, parent)) => stat_at(self.dir(parent)?, name),
        }
    }
}

/// Maps a destination-side resolution failure to an error naming the image path.
fn dest_resolve_err(e: ResolveError, what: &str) -> CopyError {
    match e {
        ResolveError::NotDir(p) => CopyError::NotADirectory(image_display(&p)),
        ResolveError::Loop => CopyError::Loop(what.to_string()),
        ResolveError::Io(e, p) => CopyError::Io {
            op: "resolving",
            path: image_display(&p),
            source: e.into(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Wildcards (Go's filepath.Match, one component).

fn has_wildcards(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Whether `name` matches `pat`; `Err` for a malformed pattern.
fn wild_match(pat: &[u8], name: &[u8]) -> Result<bool, ()> {
    let Some((&p, rest)) = pat.split_first() else {
        return Ok(name.is_empty());
    };
    match p {
        b'*' => {
            // Validate the rest even when the star can swallow everything.
            for i in 0..=name.len() {
                if wild_match(rest, &name[i..])? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        b'?' => match name.split_first() {
            Some((_, n)) => wild_match(rest, n),
            None => check_pattern(rest).map(|_| false),
        },
        b'[' => {
            let (negated, mut i) = if rest.first() == Some(&b'^') {
                (true, 1)
            } else {
                (false, 0)
            };
            let mut matched = false;
            let mut n = 0;
            let c = name.first().copied();
            loop {
                if rest.get(i) == Some(&b']') && n > 0 {
                    i += 1;
                    break;
                }
                let (lo, ni) = class_char(rest, i)?;
                i = ni;
                let mut hi = lo;
                if rest.get(i) == Some(&b'-') {
                    let (h, ni) = class_char(rest, i + 1)?;
                    hi = h;
                    i = ni;
                }
                if c.is_some_and(|c| lo <= c && c <= hi) {
                    matched = true;
                }
                n += 1;
            }
            match name.split_first() {
                Some((_, tail)) if matched != negated => wild_match(&rest[i..], tail),
                _ => check_pattern(&rest[i..]).map(|_| false),
            }
        }
        b'\\' => {
            let (&lit, rest) = rest.split_first().ok_or(())?;
            match name.split_first() {
                Some((&c, n)) if c == lit => wild_match(rest, n),
                _ => check_pattern(rest).map(|_| false),
            }
        }
        lit => match name.split_first() {
            Some((&c, n)) if c == lit => wild_match(rest, n),
            _ => check_pattern(rest).map(|_| false),
        },
    }
}

fn class_char(p: &[u8], i: usize) -> Result<(u8, usize), ()> {
    match p.get(i) {
        None | Some(b'-') | Some(b']') => Err(()),
        Some(b'\\') => p.get(i + 1).map(|&c| (c, i + 2)).ok_or(()),
        Some(&c) => Ok((c, i + 1)),
    }
}

fn check_pattern(p: &[u8]) -> Result<(), ()> {
    // Matching against an impossible name walks the whole pattern's syntax.
    wild_match_syntax(p)
}

fn wild_match_syntax(p: &[u8]) -> Result<(), ()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' => {
                if i + 1 >= p.len() {
                    return Err(());
                }
                i += 2;
            }
            b'[' => {
                i += 1;
                if p.get(i) == Some(&b'^') {
                    i += 1;
                }
                let mut n = 0;
                loop {
                    if p.get(i) == Some(&b']') && n > 0 {
                        i += 1;
                        break;
                    }
                    let (_, ni) = class_char(p, i)?;
                    i = ni;
                    if p.get(i) == Some(&b'-') {
                        let (_, ni) = class_char(p, i + 1)?;
                        i = ni;
                    }
                    n += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The plan: what would be copied, read from the source tree.

#[derive(Debug, Clone)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: (i64, i64),
    mtime: (i64, i64),
    rdev: u64,
}

impl Meta {
    /// A copied directory's metadata; the source root's own mode and owner are not the
    /// context's business (BuildKit's context root is a fresh snapshot directory): it reads as
    /// a 0755 directory of root's.
    fn of_top_dir(st: &FileStat, comps: &[OsString]) -> Meta {
        let mut m = Meta::of(st);
        if comps.is_empty() {
            m.mode = SFlag::S_IFDIR.bits() | 0o755;
            (m.uid, m.gid) = (0, 0);
        }
        m
    }

    fn of(st: &FileStat) -> Meta {
        Meta {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            rdev: st.st_rdev,
        }
    }
}

#[derive(Debug)]
enum Kind {
    Dir(Vec<Node>),
    File,
    Symlink(OsString),
    /// FIFO, socket, character or block device.
    Special,
}

#[derive(Debug)]
struct Node {
    name: OsString,
    /// Path relative to the source root, resolved.
    src: Comps,
    meta: Meta,
    kind: Kind,
}

#[derive(Debug)]
enum Placement {
    /// A directory whose contents go into the destination.
    Contents,
    /// A non-directory, named so when the destination is a directory.
    Named(OsString),
}

#[derive(Debug)]
struct Planned {
    written: String,
    placement: Placement,
    top: Node,
}

struct Filters<'a> {
    ignore: Option<&'a Matcher>,
    exclude: Option<Matcher>,
    /// `--parents`: the pattern, and the same as a `!` rule to know which directories could
    /// hold a match.
    include: Option<(Matcher, Matcher)>,
}

fn verb(spec: &CopySpec) -> &'static str {
    if spec.add { "ADD" } else { "COPY" }
}

fn source_err(e: Errno, comps: &[OsString]) -> CopyError {
    CopyError::Io {
        op: "reading",
        path: rel_display(comps),
        source: e.into(),
    }
}

fn list_dir(dir: &OwnedFd, comps: &[OsString]) -> Result<Vec<OsString>, CopyError> {
    let fd = nix::fcntl::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| source_err(e, comps))?;
    let mut d = nix::dir::Dir::from_fd(fd).map_err(|e| source_err(e, comps))?;
    let mut names = Vec::new();
    for ent in d.iter() {
        let ent = ent.map_err(|e| source_err(e, comps))?;
        let name = ent.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name.to_vec()));
        }
    }
    names.sort();
    Ok(names)
}

fn leaf(name: OsString, src: Comps, st: &FileStat, dir: &OwnedFd) -> Result<Node, CopyError> {
    let kind = match file_type(st) {
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFLNK => Kind::Symlink(
            nix::fcntl::readlinkat(dir, name.as_os_str()).map_err(|e| source_err(e, &src))?,
        ),
        _ => Kind::Special,
    };
    Ok(Node {
        name,
        src,
        meta: Meta::of(st),
        kind,
    })
}

impl Filters<'_> {
    /// The entries of a source directory, filtered. `rel` is the directory's path relative to
    /// the copied source (for `--exclude` and `--parents`), `src` relative to the source root.
    fn walk(&self, dir: &OwnedFd, src: &[OsString], rel: &str) -> Result<Vec<Node>, CopyError> {
        let mut out = Vec::new();
        for name in list_dir(dir, src)? {
            let mut child_src = src.to_vec();
            child_src.push(name.clone());
            let Some(st) = stat_at(dir, &name).map_err(|e| source_err(e, &child_src))? else {
                continue;
            };
            let src_rel = rel_display(&child_src);
            let name_s = name.to_string_lossy();
            let child_rel = if rel.is_empty() {
                name_s.to_string()
            } else {
                format!("{rel}/{name_s}")
            };
            let ignored = self.ignore.is_some_and(|m| m.matches(&src_rel));
            let excluded = self.exclude.as_ref().is_some_and(|m| m.matches(&child_rel));
            let included = self
                .include
                .as_ref()
                .is_none_or(|(m, _)| m.matches(&child_rel));
            let keep = !ignored && !excluded && included;
            if !is_dir(&st) {
                if keep {
                    out.push(leaf(name, child_src, &st, dir)?);
                }
                continue;
            }
            let descend = keep
                || ((!ignored || self.ignore.is_some_and(|m| m.may_reinclude_below(&src_rel)))
                    && (!excluded
                        || self
                            .exclude
                            .as_ref()
                            .is_some_and(|m| m.may_reinclude_below(&child_rel)))
                    && (included
                        || self
                            .include
                            .as_ref()
                            .is_some_and(|(_, r)| r.may_reinclude_below(&child_rel))));
            if !descend {
                continue;
            }
            let sub = open_subdir(dir, &name).map_err(|e| source_err(e, &child_src))?;
            let children = self.walk(&sub, &child_src, &child_rel)?;
            if keep || !children.is_empty() {
                out.push(Node {
                    name,
                    src: child_src,
                    meta: Meta::of(&st),
                    kind: Kind::Dir(children),
                });
            }
        }
        Ok(out)
    }
}

/// Expands the wildcard components `pat` below the directory `base` (resolved): the matched
/// paths, lexically (a matched symlink is not followed here).
fn expand(
    root: &Root,
    base: &[OsString],
    pat: &[OsString],
    written: &str,
    out: &mut Vec<Comps>,
) -> Result<(), CopyError> {
    let dir = match root.dir(base) {
        Ok(d) => d,
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(()),
        Err(e) => return Err(source_err(e, base)),
    };
    let (first, rest) = pat.split_first().expect("a pattern component");
    for name in list_dir(&dir, base)? {
        let m = wild_match(first.as_bytes(), name.as_bytes()).map_err(|_| CopyError::Pattern {
            source_path: written.to_string(),
        })?;
        if !m {
            continue;
        }
        let mut p = base.to_vec();
        p.push(name.clone());
        if rest.is_empty() {
            out.push(p);
        } else if stat_at(&dir, &name)
            .map_err(|e| source_err(e, &p))?
            .is_some_and(|st| is_dir(&st))
        {
            expand(root, &p, rest, written, out)?;
        }
    }
    Ok(())
}

/// Reads what `spec` copies from `source_root`. Returns the plans and how many entries the
/// sources named before `--exclude` (for the several-sources rule).
fn plan(
    source_root: &Path,
    spec: &CopySpec,
    ignore: Option<&Matcher>,
) -> Result<(Root, Vec<Planned>, usize), CopyError> {
    let root = Root::open(source_root)?;
    let exclude = if spec.excludes.is_empty() {
        None
    } else {
        Some(Matcher::new(spec.excludes.iter().map(String::as_str))?)
    };
    let ignore = ignore.filter(|m| !m.is_empty());
    let mut plans = Vec::new();
    let mut named = 0;
    for written in &spec.sources {
        let not_found = |ignored| CopyError::NotFound {
            verb: verb(spec),
            name: written.clone(),
            ignored,
        };
        if spec.parents {
            let before = plans.len();
            let ignored = plan_parents(&root, written, ignore, exclude.clone(), &mut plans)?;
            if plans.len() == before {
                return Err(not_found(ignored));
            }
            named += 1;
            continue;
        }
        let filters = Filters {
            ignore,
            exclude: exclude.clone(),
            include: None,
        };
        let comps = clean_comps(written.as_bytes());
        let mut matches = Vec::new();
        match comps.iter().position(|c| has_wildcards(c.as_bytes())) {
            None => matches.push(comps.clone()),
            Some(k) => {
                let base = match root.resolve(&join_os(&comps[..k]).into_vec(), true) {
                    Ok(r) if r.exists => Some(r.comps),
                    Ok(_) | Err(ResolveError::NotDir(_)) => None,
                    Err(ResolveError::Loop) => return Err(CopyError::Loop(written.clone())),
                    Err(ResolveError::Io(e, p)) => return Err(source_err(e, &p)),
                };
                if let Some(base) = base {
                    expand(&root, &base, &comps[k..], written, &mut matches)?;
                }
            }
        }
        let mut found = 0;
        let mut any_ignored = false;
        for m in matches {
            let res = match root.resolve(&join_os(&m).into_vec(), true) {
                Ok(r) if r.exists => r,
                Ok(_) | Err(ResolveError::NotDir(_)) => continue,
                Err(ResolveError::Loop) => return Err(CopyError::Loop(written.clone())),
                Err(ResolveError::Io(e, p)) => return Err(source_err(e, &p)),
            };
            let (lex, real) = (rel_display(&m), rel_display(&res.comps));
            let ignored = ignore.is_some_and(|i| i.matches(&lex) || i.matches(&real));
            let Some(st) = root
                .lstat(&res.comps)
                .map_err(|e| source_err(e, &res.comps))?
            else {
                continue;
            };
            if is_dir(&st) {
                if ignored
                    && !ignore.is_some_and(|i| {
                        i.may_reinclude_below(&lex) && i.may_reinclude_below(&real)
                    })
                {
                    any_ignored = true;
                    continue;
                }
                let dir = root
                    .dir(&res.comps)
                    .map_err(|e| source_err(e, &res.comps))?;
                let children = filters.walk(&dir, &res.comps, "")?;
                if ignored && children.is_empty() {
                    any_ignored = true;
                    continue;
                }
                found += 1;
                plans.push(Planned {
                    written: written.clone(),
                    placement: Placement::Contents,
                    top: Node {
                        name: m.last().cloned().unwrap_or_default(),
                        meta: Meta::of_top_dir(&st, &res.comps),
                        src: res.comps,
                        kind: Kind::Dir(children),
                    },
                });
            } else {
                if ignored {
                    any_ignored = true;
                    continue;
                }
                found += 1;
                let name = m.last().cloned().unwrap_or_default();
                if filters
                    .exclude
                    .as_ref()
                    .is_some_and(|x| x.matches(&name.to_string_lossy()))
                {
                    continue;
                }
                let (_, parent) = res.comps.split_last().expect("a file is below the root");
                let dir = root.dir(parent).map_err(|e| source_err(e, parent))?;
                let mut top = leaf(
                    res.comps.last().cloned().unwrap(),
                    res.comps.clone(),
                    &st,
                    &dir,
                )?;
                top.name = name.clone();
                plans.push(Planned {
                    written: written.clone(),
                    placement: Placement::Named(name),
                    top,
                });
            }
        }
        if found == 0 {
            return Err(not_found(any_ignored));
        }
        named += found;
    }
    Ok((root, plans, named))
}

/// `--parents` for one source; pushes at most one plan. Returns whether the ignore rules hid
/// what the source names (for the error when nothing is found).
fn plan_parents(
    root: &Root,
    written: &str,
    ignore: Option<&Matcher>,
    exclude: Option<Matcher>,
    plans: &mut Vec<Planned>,
) -> Result<bool, CopyError> {
    let (base_s, pattern) = match written.split_once("/./") {
        Some((b, p)) => (b, p),
        None => ("/", written),
    };
    let pattern = clean_path(&format!("/{pattern}"))
        .trim_start_matches('/')
        .to_string();
    let base = match root.resolve(base_s.as_bytes(), true) {
        Ok(r) if r.exists => r.comps,
        Ok(_) | Err(ResolveError::NotDir(_)) => return Ok(false),
        Err(ResolveError::Loop) => return Err(CopyError::Loop(written.to_string())),
        Err(ResolveError::Io(e, p)) => return Err(source_err(e, &p)),
    };
    let Some(st) = root.lstat(&base).map_err(|e| source_err(e, &base))? else {
        return Ok(false);
    };
    if !is_dir(&st) {
        return Ok(false);
    }
    let include = if pattern.is_empty() {
        None
    } else {
        Some((
            Matcher::new([pattern.as_str()])?,
            Matcher::new([format!("!{pattern}").as_str()])?,
        ))
    };
    let dir = root.dir(&base).map_err(|e| source_err(e, &base))?;
    let filters = Filters {
        ignore,
        exclude,
        include,
    };
    let children = filters.walk(&dir, &base, "")?;
    if children.is_empty() && filters.include.is_some() {
        // Was it the ignore rules? Look again without them.
        let ignored = ignore.is_some()
            && !Filters {
                ignore: None,
                ..filters
            }
            .walk(&dir, &base, "")?
            .is_empty();
        return Ok(ignored);
    }
    plans.push(Planned {
        written: written.to_string(),
        placement: Placement::Contents,
        top: Node {
            name: base.last().cloned().unwrap_or_default(),
            meta: Meta::of_top_dir(&st, &base),
            src: base,
            kind: Kind::Dir(children),
        },
    });
    Ok(false)
}

// ---------------------------------------------------------------------------------------------
// The digest.

fn field(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

fn hash_node(
    h: &mut Sha256,
    root: &Root,
    node: &Node,
    path: &[u8],
    owners: bool,
) -> Result<(), CopyError> {
    let m = &node.meta;
    let kind: &[u8] = match &node.kind {
        Kind::Dir(_) => b"dir",
        Kind::File => b"file",
        Kind::Symlink(_) => b"symlink",
        Kind::Special => b"special",
    };
    field(h, kind);
    field(h, path);
    // The file type bits too: a FIFO and a socket differ.
    field(h, &m.mode.to_le_bytes());
    if owners {
        field(h, &m.uid.to_le_bytes());
        field(h, &m.gid.to_le_bytes());
    }
    match &node.kind {
        Kind::Dir(children) => {
            field(h, &(children.len() as u64).to_le_bytes());
            for c in children {
                let mut p = path.to_vec();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(c.name.as_bytes());
                hash_node(h, root, c, &p, owners)?;
            }
        }
        Kind::File => {
            let mut f = root.file(&node.src).map_err(|e| source_err(e, &node.src))?;
            let mut fh = Sha256::new();
            let n = io::copy(&mut f, &mut fh).map_err(|e| CopyError::Io {
                op: "reading",
                path: rel_display(&node.src),
                source: e,
            })?;
            field(h, &n.to_le_bytes());
            field(h, &fh.finalize());
        }
        Kind::Symlink(t) => field(h, t.as_bytes()),
        Kind::Special => field(h, &m.rdev.to_le_bytes()),
    }
    Ok(())
}

/// A digest (`sha256:…`) of what `spec` would copy from `source_root`, for the build cache:
/// for every entry copied (after wildcards, `.dockerignore` and `--exclude`), where it goes
/// relative to its source, its type, mode, size, symlink target, device number and the
/// sha256 of its content; owners only with [`CopySpec::preserve_owners`]. Times are not part
/// of it (as in BuildKit), so touching a file keeps the digest; editing it or changing its
/// mode changes it. The destination and flags are the executor's part of the cache key.
/// Fails as [`copy_into`] would for missing sources.
pub fn sources_digest(
    source_root: &Path,
    spec: &CopySpec,
    ignore: Option<&Matcher>,
) -> Result<String, CopyError> {
    let (root, plans, _) = plan(source_root, spec, ignore)?;
    let mut h = Sha256::new();
    field(&mut h, b"berth-copy-sources-v1");
    for p in &plans {
        field(&mut h, p.written.as_bytes());
        match &p.placement {
            Placement::Contents => field(&mut h, b"contents"),
            Placement::Named(n) => {
                field(&mut h, b"named");
                field(&mut h, n.as_bytes());
            }
        }
        hash_node(&mut h, &root, &p.top, b"", spec.preserve_owners)?;
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

// ---------------------------------------------------------------------------------------------
// Writing.

struct Writer<'a> {
    src: &'a Root,
    dest: &'a Root,
    spec: &'a CopySpec,
}

fn times(atime: (i64, i64), mtime: (i64, i64)) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(atime.0, atime.1 as _),
        TimeSpec::new(mtime.0, mtime.1 as _),
    )
}

fn child_display(parent: &str, name: &OsStr) -> String {
    let name = name.to_string_lossy();
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Creates the directories `comps` inside `root` as needed (0755, `owner`) and opens the last.
fn mkdir_all(root: &Root, comps: &[OsString], owner: (u32, u32)) -> Result<OwnedFd, CopyError> {
    let mut cur = root.dir(&[]).map_err(io_err("opening", "/"))?;
    for (i, c) in comps.iter().enumerate() {
        let shown = || image_display(&comps[..=i]);
        cur = match open_subdir(&cur, c) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                match nix::sys::stat::mkdirat(&cur, c.as_os_str(), Mode::from_bits_truncate(0o700))
                {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(io_err("creating", shown())(e)),
                }
                let fd = open_subdir(&cur, c).map_err(io_err("opening", shown()))?;
                set_owner_mode(&fd, owner, 0o755).map_err(io_err("setting owner of", shown()))?;
                fd
            }
            Err(Errno::ENOTDIR | Errno::ELOOP) => return Err(CopyError::NotADirectory(shown())),
            Err(e) => return Err(io_err("opening", shown())(e)),
        };
    }
    Ok(cur)
}

fn set_owner_mode(fd: &OwnedFd, owner: (u32, u32), mode: u32) -> nix::Result<()> {
    nix::unistd::fchown(
        fd,
        Some(Uid::from_raw(owner.0)),
        Some(Gid::from_raw(owner.1)),
    )?;
    // After chown, which clears set-id bits.
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode))
}

/// Removes a non-directory where a non-directory goes; a directory there is an error.
fn clear_for_file(dir: &OwnedFd, name: &OsStr, shown: &str) -> Result<(), CopyError> {
    match stat_at(dir, name).map_err(io_err("inspecting", shown))? {
        None => Ok(()),
        Some(st) if is_dir(&st) => Err(CopyError::IsADirectory(shown.to_string())),
        Some(_) => nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            .map_err(io_err("removing", shown)),
    }
}

impl Writer<'_> {
    fn owner(&self, m: &Meta) -> (u32, u32) {
        self.spec.chown.unwrap_or(if self.spec.preserve_owners {
            (m.uid, m.gid)
        } else {
            (0, 0)
        })
    }

    fn mode(&self, m: &Meta) -> u32 {
        self.spec.chmod.unwrap_or(m.mode & 0o7777)
    }

    fn apply_meta(&self, fd: &OwnedFd, m: &Meta, shown: &str) -> Result<(), CopyError> {
        set_owner_mode(fd, self.owner(m), self.mode(m))
            .map_err(io_err("setting owner and mode of", shown))?;
        let (a, t) = times(m.atime, m.mtime);
        nix::sys::stat::futimens(fd, &a, &t).map_err(io_err("setting times of", shown))
    }

    /// Writes `node` as `name` in the directory `dir` (shown as `parent`).
    fn write(
        &self,
        dir: &OwnedFd,
        parent: &str,
        name: &OsStr,
        node: &Node,
    ) -> Result<(), CopyError> {
        let shown = child_display(parent, name);
        let m = &node.meta;
        match &node.kind {
            Kind::Dir(children) => {
                let fd = match stat_at(dir, name).map_err(io_err("inspecting", &*shown))? {
                    Some(st) if is_dir(&st) => {
                        open_subdir(dir, name).map_err(io_err("opening", &*shown))?
                    }
                    Some(_) => return Err(CopyError::NotADirectory(shown)),
                    None => {
                        nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                            .map_err(io_err("creating", &*shown))?;
                        open_subdir(dir, name).map_err(io_err("opening", &*shown))?
                    }
                };
                for c in children {
                    self.write(&fd, &shown, &c.name, c)?;
                }
                self.apply_meta(&fd, m, &shown)
            }
            Kind::File => {
                clear_for_file(dir, name, &shown)?;
                let mut src = self
                    .src
                    .file(&node.src)
                    .map_err(|e| source_err(e, &node.src))?;
                let fd = nix::fcntl::openat(
                    dir,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(io_err("creating", &*shown))?;
                let mut out = File::from(fd);
                io::copy(&mut src, &mut out).map_err(|e| CopyError::Io {
                    op: "writing",
                    path: shown.clone(),
                    source: e,
                })?;
                self.apply_meta(&OwnedFd::from(out), m, &shown)
            }
            Kind::Symlink(target) => {
                clear_for_file(dir, name, &shown)?;
                nix::unistd::symlinkat(target.as_os_str(), dir, name)
                    .map_err(io_err("creating", &*shown))?;
                self.link_meta(dir, name, m, &shown)
            }
            Kind::Special => {
                clear_for_file(dir, name, &shown)?;
                let kind = SFlag::from_bits_truncate(m.mode & SFlag::S_IFMT.bits());
                nix::sys::stat::mknodat(dir, name, kind, Mode::from_bits_truncate(0o600), m.rdev)
                    .map_err(io_err("creating", &*shown))?;
                let (uid, gid) = self.owner(m);
                nix::unistd::fchownat(
                    dir,
                    name,
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(io_err("setting owner of", &*shown))?;
                nix::sys::stat::fchmodat(
                    dir,
                    name,
                    Mode::from_bits_truncate(self.mode(m)),
                    nix::sys::stat::FchmodatFlags::NoFollowSymlink,
                )
                .or_else(|e| {
                    // Linux refuses the no-follow flag on older kernels; the entry is ours and
                    // not a symlink.
                    if e == Errno::EOPNOTSUPP || e == Errno::ENOTSUP {
                        nix::sys::stat::fchmodat(
                            dir,
                            name,
                            Mode::from_bits_truncate(self.mode(m)),
                            nix::sys::stat::FchmodatFlags::FollowSymlink,
                        )
                    } else {
                        Err(e)
                    }
                })
                .map_err(io_err("setting mode of", &*shown))?;
                let (a, t) = times(m.atime, m.mtime);
                nix::sys::stat::utimensat(
                    dir,
                    name,
                    &a,
                    &t,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(io_err("setting times of", &*shown))
            }
        }
    }

    fn link_meta(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        m: &Meta,
        shown: &str,
    ) -> Result<(), CopyError> {
        let (uid, gid) = self.owner(m);
        nix::unistd::fchownat(
            dir,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io_err("setting owner of", shown))?;
        let (a, t) = times(m.atime, m.mtime);
        nix::sys::stat::utimensat(
            dir,
            name,
            &a,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(io_err("setting times of", shown))
    }

    /// A directory source: its contents into `dest` (resolved).
    fn contents(&self, dest: &[OsString], top: &Node) -> Result<(), CopyError> {
        let Kind::Dir(children) = &top.kind else {
            unreachable!("contents of a directory");
        };
        let default_owner = self.spec.chown.unwrap_or((0, 0));
        let (fd, created) = match dest.split_last() {
            None => (self.dest.dir(&[]).map_err(io_err("opening", "/"))?, false),
            Some((name, parent)) => {
                let pfd = mkdir_all(self.dest, parent, default_owner)?;
                let shown = image_display(dest);
                match stat_at(&pfd, name).map_err(io_err("inspecting", &*shown))? {
                    Some(st) if is_dir(&st) => (
                        open_subdir(&pfd, name).map_err(io_err("opening", &*shown))?,
                        false,
                    ),
                    Some(_) => return Err(CopyError::NotADirectory(shown)),
                    None => {
                        nix::sys::stat::mkdirat(
                            &pfd,
                            name.as_os_str(),
                            Mode::from_bits_truncate(0o700),
                        )
                        .map_err(io_err("creating", &*shown))?;
                        (
                            open_subdir(&pfd, name).map_err(io_err("opening", &*shown))?,
                            true,
                        )
                    }
                }
            }
        };
        let shown = image_display(dest);
        for c in children {
            self.write(&fd, &shown, &c.name, c)?;
        }
        if created {
            self.apply_meta(&fd, &top.meta, &shown)?;
        }
        Ok(())
    }
}

/// Copies what `spec` names from `source_root` into `rootfs` (the image's `/`), with the
/// semantics in the [module docs](self). `ignore` is the build context's `.dockerignore`
/// (`None` for other sources).
pub fn copy_into(
    source_root: &Path,
    rootfs: &Path,
    spec: &CopySpec,
    ignore: Option<&Matcher>,
) -> Result<(), CopyError> {
    let (src, plans, named) = plan(source_root, spec, ignore)?;
    let dest = Root::open(rootfs)?;
    let (dest_path, dir_syntax) = destination(spec);
    let resolved = dest
        .resolve(dest_path.as_bytes(), true)
        .map_err(|e| dest_resolve_err(e, &dest_path))?;
    let dest_is_dir = |r: &Resolved| -> Result<bool, CopyError> {
        Ok(r.exists
            && dest
                .lstat(&r.comps)
                .map_err(io_err("inspecting", image_display(&r.comps)))?
                .is_some_and(|st| is_dir(&st)))
    };
    if !spec.parents && named > 1 && !dir_syntax && !dest_is_dir(&resolved)? {
        return Err(CopyError::DestNotDirectory { verb: verb(spec) });
    }
    let w = Writer {
        src: &src,
        dest: &dest,
        spec,
    };
    let default_owner = spec.chown.unwrap_or((0, 0));
    for p in &plans {
        match &p.placement {
            Placement::Contents => w.contents(&resolved.comps, &p.top)?,
            Placement::Named(name) => {
                if spec.add && matches!(p.top.kind, Kind::File) && is_archive(&src, &p.top.src)? {
                    extract(&src, &p.top.src, &dest, &resolved.comps, spec, &p.written)?;
                    continue;
                }
                let into = dir_syntax || dest_is_dir(&resolved)?;
                let mut target = resolved.comps.clone();
                if into {
                    target.push(name.clone());
                }
                let (last, parent) = target
                    .split_last()
                    .ok_or_else(|| CopyError::IsADirectory("/".to_string()))?;
                let pfd = mkdir_all(&dest, parent, default_owner)?;
                w.write(&pfd, &image_display(parent), last, &p.top)?;
            }
        }
    }
    Ok(())
}

/// The destination as an image path, and whether it is written as a directory.
fn destination(spec: &CopySpec) -> (String, bool) {
    let d = spec.dest.as_str();
    let dir_syntax = d.ends_with('/') || d.ends_with("/.") || d == "." || d.is_empty();
    let full = if d.starts_with('/') {
        d.to_string()
    } else {
        let wd = if spec.workdir.is_empty() {
            "/"
        } else {
            spec.workdir.as_str()
        };
        format!("{wd}/{d}")
    };
    (clean_path(&format!("/{full}")), dir_syntax)
}

// ---------------------------------------------------------------------------------------------
// Archives.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// The file's content, decompressed as its first bytes say.
fn decoder(file: File) -> io::Result<Box<dyn Read>> {
    let mut r = BufReader::with_capacity(64 * 1024, file);
    let head = r.fill_buf()?;
    let kind = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let out: Box<dyn Read> = match kind {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    };
    Ok(out)
}

/// Whether the file is a tar archive (its first header reads), as BuildKit decides.
fn is_archive(src: &Root, comps: &[OsString]) -> Result<bool, CopyError> {
    let f = src.file(comps).map_err(|e| source_err(e, comps))?;
    let Ok(r) = decoder(f) else {
        return Ok(false);
    };
    let mut ar = tar::Archive::new(r);
    let first = match ar.entries() {
        Ok(mut e) => e.next(),
        Err(_) => None,
    };
    Ok(matches!(first, Some(Ok(_))))
}

fn remove_all(dir: &OwnedFd, name: &OsStr, shown: &str) -> Result<(), CopyError> {
    let Some(st) = stat_at(dir, name).map_err(io_err("inspecting", shown))? else {
        return Ok(());
    };
    if is_dir(&st) {
        let sub = open_subdir(dir, name).map_err(io_err("opening", shown))?;
        for child in list_dir(&sub, &[])? {
            remove_all(&sub, &child, &child_display(shown, &child))?;
        }
        nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::RemoveDir)
            .map_err(io_err("removing", shown))
    } else {
        nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            .map_err(io_err("removing", shown))
    }
}

fn extract(
    src: &Root,
    archive: &[OsString],
    dest: &Root,
    dest_comps: &[OsString],
    spec: &CopySpec,
    written: &str,
) -> Result<(), CopyError> {
    let bad = |message: String| CopyError::Archive {
        archive: written.to_string(),
        message,
    };
    let default_owner = spec.chown.unwrap_or((0, 0));
    let top = Root {
        fd: mkdir_all(dest, dest_comps, default_owner)?,
    };
    let base = image_display(dest_comps);
    let shown_at = |comps: &[OsString]| -> String {
        if comps.is_empty() {
            base.clone()
        } else if base == "/" {
            image_display(comps)
        } else {
            format!("{base}{}", image_display(comps))
        }
    };
    let f = src.file(archive).map_err(|e| source_err(e, archive))?;
    let r = decoder(f).map_err(|e| bad(e.to_string()))?;
    let mut ar = tar::Archive::new(r);
    let mut dirs: Vec<(Comps, i64)> = Vec::new();
    for entry in ar.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let comps = clean_comps(&entry.path_bytes());
        let Some((name, parent)) = comps.split_last() else {
            continue;
        };
        let entry_name = rel_display(&comps);
        let header = entry.header();
        let etype = header.entry_type();
        let field_err = |e: io::Error| bad(format!("entry {entry_name}: {e}"));
        let old = header.as_old();
        let mode =
            numeric(header.mode().map(u64::from), &old.mode).map_err(field_err)? as u32 & 0o7777;
        let mtime = numeric(header.mtime(), &old.mtime).map_err(field_err)? as i64;
        let owner = match spec.chown {
            Some(o) => o,
            None => (
                numeric(header.uid(), &old.uid).map_err(field_err)? as u32,
                numeric(header.gid(), &old.gid).map_err(field_err)? as u32,
            ),
        };
        let pres = top
            .resolve(&join_os(parent).into_vec(), true)
            .map_err(|e| match e {
                ResolveError::NotDir(p) => CopyError::NotADirectory(shown_at(&p)),
                ResolveError::Loop => CopyError::Loop(shown_at(parent)),
                ResolveError::Io(e, p) => io_err("resolving", shown_at(&p))(e),
            })?;
        let pfd = mkdir_all_in(&top, &pres.comps, default_owner, &shown_at)?;
        let mut at = pres.comps.clone();
        at.push(name.clone());
        let shown = shown_at(&at);
        let existing = stat_at(&pfd, name).map_err(io_err("inspecting", &*shown))?;
        let keep_dir = etype.is_dir() && existing.as_ref().is_some_and(is_dir);
        if existing.is_some() && !keep_dir {
            remove_all(&pfd, name, &shown)?;
        }
        let set_link_meta = |pfd: &OwnedFd| -> Result<(), CopyError> {
            nix::unistd::fchownat(
                pfd,
                name.as_os_str(),
                Some(Uid::from_raw(owner.0)),
                Some(Gid::from_raw(owner.1)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(io_err("setting owner of", &*shown))?;
            let t = TimeSpec::new(mtime, 0);
            nix::sys::stat::utimensat(
                pfd,
                name.as_os_str(),
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .map_err(io_err("setting times of", &*shown))
        };
        if etype.is_file() || etype.is_contiguous() || etype.is_gnu_sparse() {
            let fd = nix::fcntl::openat(
                &pfd,
                name.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(io_err("creating", &*shown))?;
            let mut out = File::from(fd);
            io::copy(&mut entry, &mut out).map_err(|e| bad(format!("entry {entry_name}: {e}")))?;
            let fd = OwnedFd::from(out);
            set_owner_mode(&fd, owner, mode)
                .map_err(io_err("setting owner and mode of", &*shown))?;
            let t = TimeSpec::new(mtime, 0);
            nix::sys::stat::futimens(&fd, &t, &t).map_err(io_err("setting times of", &*shown))?;
        } else if etype.is_dir() {
            if !keep_dir {
                nix::sys::stat::mkdirat(&pfd, name.as_os_str(), Mode::from_bits_truncate(0o700))
                    .map_err(io_err("creating", &*shown))?;
            }
            let fd = open_subdir(&pfd, name).map_err(io_err("opening", &*shown))?;
            set_owner_mode(&fd, owner, mode)
                .map_err(io_err("setting owner and mode of", &*shown))?;
            dirs.push((at, mtime));
        } else if etype.is_symlink() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| bad(format!("entry {entry_name}: symlink without a target")))?;
            nix::unistd::symlinkat(OsStr::from_bytes(&target), &pfd, name.as_os_str())
                .map_err(io_err("creating", &*shown))?;
            set_link_meta(&pfd)?;
        } else if etype.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| bad(format!("entry {entry_name}: hard link without a target")))?;
            let tcomps = clean_comps(&target);
            let Some((tname, tparent)) = tcomps.split_last() else {
                return Err(bad(format!(
                    "entry {entry_name}: hard link to the archive root"
                )));
            };
            let tres = top
                .resolve(&join_os(tparent).into_vec(), true)
                .ok()
                .filter(|r| r.exists)
                .ok_or_else(|| {
                    bad(format!(
                        "entry {entry_name}: hard link target {} not found",
                        rel_display(&tcomps)
                    ))
                })?;
            let tdir = top
                .dir(&tres.comps)
                .map_err(io_err("opening", shown_at(&tres.comps)))?;
            nix::unistd::linkat(
                &tdir,
                tname.as_os_str(),
                &pfd,
                name.as_os_str(),
                nix::fcntl::AtFlags::empty(),
            )
            .map_err(|e| {
                let target = rel_display(&tcomps);
                bad(if e == Errno::ENOENT {
                    format!("entry {entry_name}: hard link target {target} not found")
                } else {
                    format!(
                        "entry {entry_name}: linking to {target}: {}",
                        io::Error::from(e)
                    )
                })
            })?;
        } else if etype.is_character_special() || etype.is_block_special() || etype.is_fifo() {
            let kind = if etype.is_fifo() {
                SFlag::S_IFIFO
            } else if etype.is_block_special() {
                SFlag::S_IFBLK
            } else {
                SFlag::S_IFCHR
            };
            let major = header.device_major().map_err(field_err)?.unwrap_or(0);
            let minor = header.device_minor().map_err(field_err)?.unwrap_or(0);
            nix::sys::stat::mknodat(
                &pfd,
                name.as_os_str(),
                kind,
                Mode::from_bits_truncate(0o600),
                nix::sys::stat::makedev(major.into(), minor.into()),
            )
            .map_err(io_err("creating", &*shown))?;
            nix::sys::stat::fchmodat(
                &pfd,
                name.as_os_str(),
                Mode::from_bits_truncate(mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(io_err("setting mode of", &*shown))?;
            set_link_meta(&pfd)?;
        } else if etype.is_pax_global_extensions() {
            continue;
        } else {
            return Err(bad(format!(
                "entry {entry_name}: unsupported entry type {:?}",
                etype
            )));
        }
    }
    // Directory times last, deepest first, once nothing more is written into them.
    for (comps, mtime) in dirs.iter().rev() {
        if let Ok(fd) = top.dir(comps) {
            let t = TimeSpec::new(*mtime, 0);
            nix::sys::stat::futimens(&fd, &t, &t)
                .map_err(io_err("setting times of", shown_at(comps)))?;
        }
    }
    Ok(())
}

/// A numeric header field; an empty one (all NULs or spaces) is 0, as Go's archive/tar reads
/// it (the tar crate refuses it).
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        r => r,
    }
}

/// [`mkdir_all`] inside an extraction root, with its paths shown under the destination.
fn mkdir_all_in(
    root: &Root,
    comps: &[OsString],
    owner: (u32, u32),
    shown_at: &dyn Fn(&[OsString]) -> String,
) -> Result<OwnedFd, CopyError> {
    mkdir_all(root, comps, owner).map_err(|e| match e {
        CopyError::NotADirectory(_) => CopyError::NotADirectory(shown_at(comps)),
        e => e,
    })
}

#[cfg(test)]
mod tests;
