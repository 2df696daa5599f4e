//! Applying a layer tar to a directory, safely.
//!
//! Every entry is created with `*at` system calls relative to a directory descriptor that was
//! reached from the layer root one component at a time with `openat2(RESOLVE_NO_SYMLINKS |
//! RESOLVE_BENEATH | RESOLVE_NO_XDEV)`. So an entry can never be written outside the layer
//! directory or through a symlink: `../x` and `/x` are refused before any lookup, and a
//! symlink planted by an earlier entry makes the lookup of `link/x` fail with ELOOP, which is
//! refused. Hardlink targets outside the layer are refused as well. Symlink targets are kept
//! as they are, absolute or climbing (`linuxrc -> ../bin/busybox` in busybox images): in the
//! container they resolve inside its root, where `..` stops at `/`, and neither unpacking nor
//! anything else in berth follows a symlink of a layer on the host.
//!
//! Whiteouts become overlayfs whiteouts: `.wh.NAME` a character device 0/0 named NAME,
//! `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result, io_err};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Size of the chunks of uncompressed tar handed from the decompressing thread to the writer.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the two threads.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Unpacks one layer (tar, tar+gzip or tar+zstd; the compression is detected from the first
/// bytes) into the existing directory `dest` and returns the layer's diff ID, the sha256 of the
/// uncompressed tar.
///
/// Two threads: one reads `reader`, decompresses and hashes, the calling one parses the tar and
/// writes the files, so decompression and file system work overlap.
///
/// A hostile entry stops the unpack with [`Error::UnsafeEntry`] naming it. What was written
/// before stays in `dest`, which is why the store unpacks into a temp directory and renames it
/// into place only when the whole layer was applied and its diff ID checked.
pub fn unpack_layer(reader: impl Read + Send, dest: &Path) -> Result<Digest> {
    unpack_sized(reader, dest).map(|u| u.diff_id)
}

/// What [`unpack_sized`] found.
pub(crate) struct Unpacked {
    /// The sha256 of the uncompressed tar.
    pub(crate) diff_id: Digest,
    /// The layer's size as Docker counts it: the bytes of its regular files and symlink targets.
    pub(crate) size: u64,
    /// Whether the tar had an entry for the layer root (`./`), which set its owner and mode.
    pub(crate) root_entry: bool,
}

/// [`unpack_layer`], also returning the layer's size and whether it set the root's metadata.
pub(crate) fn unpack_sized(reader: impl Read + Send, dest: &Path) -> Result<Unpacked> {
    let mut size = 0u64;
    let root = open_dir_path(dest)?;
    let mut unpacker = Unpacker {
        dest,
        root,
        dir_times: Vec::new(),
        root_entry: false,
    };
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|s| {
        let producer = s.spawn(move || decompress(reader, dest, &tx));
        let mut chunks = ChunkReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        };
        let applied = (|| {
            {
                let mut archive = tar::Archive::new(&mut chunks);
                let entries = archive.entries().map_err(bad_tar)?;
                for entry in entries {
                    let entry = entry.map_err(bad_tar)?;
                    size += match entry.header().entry_type() {
                        tar::EntryType::Regular | tar::EntryType::Continuous => entry.size(),
                        tar::EntryType::Symlink => {
                            entry.link_name_bytes().map_or(0, |l| l.len() as u64)
                        }
                        _ => 0,
                    };
                    unpacker.apply(entry)?;
                }
            }
            // The rest (the tar's trailing padding) counts for the diff ID too.
            io::copy(&mut chunks, &mut io::sink()).map_err(bad_tar)?;
            unpacker.set_dir_times()
        })();
        // On error, dropping the receiver stops the producer at its next send.
        drop(chunks);
        let produced = producer.join().unwrap_or_else(|_| {
            Err(Error::Invalid {
                what: format!("unpack into {}", dest.display()),
                reason: "decompression thread panicked".into(),
            })
        });
        applied?;
        Ok(Unpacked {
            diff_id: produced?,
            size,
            root_entry: unpacker.root_entry,
        })
    })
}

/// `reader` decompressed: gzip and zstd are recognised by their magic numbers, anything else
/// is read as it is.
pub fn decompressed<'a, R: BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(reader))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
    } else {
        Box::new(reader)
    })
}

/// Reads `reader`, decompresses it, hashes the tar and sends it in chunks; returns the diff ID.
/// A read error is sent on (the tar reader reports it) and returned.
fn decompress(
    reader: impl Read,
    dest: &Path,
    tx: &mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> Result<Digest> {
    let res = (|| {
        let decompressed = decompressed(BufReader::with_capacity(CHUNK, reader))?;
        let mut hashing = HashingReader::new(decompressed);
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match hashing.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if filled == 0 {
                return Ok(Some(hashing.finish_now().0));
            }
            chunk.truncate(filled);
            if tx.send(Ok(chunk)).is_err() {
                return Ok(None); // the tar side stopped (its error is reported)
            }
        }
    })();
    match res {
        Ok(Some(diff_id)) => Ok(diff_id),
        Ok(None) => Err(Error::Invalid {
            what: format!("unpack into {}", dest.display()),
            reason: "stopped".into(),
        }),
        Err(e) => {
            let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
            Err(io_err("read layer for", dest)(e))
        }
    }
}

/// The tar side of [`unpack_layer`]: chunks from the decompressing thread as a `Read`.
struct ChunkReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the producer finished
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct Unpacker<'a> {
    dest: &'a Path,
    root: OwnedFd,
    /// Directories whose mtime is set at the end, once nothing is created in them any more.
    dir_times: Vec<(Vec<Vec<u8>>, i64)>,
    /// Whether an entry for the layer root set its metadata.
    root_entry: bool,
}

/// Metadata of an entry, read before its data.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// A read error of the layer stream (the tar, its decompression, or the blob under them).
fn bad_tar(error: io::Error) -> Error {
    Error::Tar { error }
}

/// Copies an entry's data into the file made for it: read errors are the layer's
/// ([`Error::Tar`]), write errors the file's.
fn copy_data(entry: &mut impl Read, file: &mut File, path: &Path) -> Result<()> {
    let mut buf = [0u8; 32 << 10];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad_tar(e)),
        };
        file.write_all(&buf[..n]).map_err(io_err("write", path))?;
    }
}

fn refuse(entry: &str, reason: impl Into<String>) -> Error {
    Error::UnsafeEntry {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

/// Splits an archive path into components, refusing absolute paths and `..`.
fn split_path(raw: &[u8], entry: &str) -> Result<Vec<Vec<u8>>> {
    if raw.starts_with(b"/") {
        return Err(refuse(entry, "absolute path"));
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(refuse(entry, "path contains `..`")),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn cstr(name: &[u8], entry: &str) -> Result<CString> {
    CString::new(name).map_err(|_| refuse(entry, "NUL byte in name"))
}

fn last_err() -> io::Error {
    io::Error::last_os_error()
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 { Err(last_err()) } else { Ok(()) }
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `name` (one component) below `dir` as a directory, never following a symlink nor
/// leaving `dir`.
fn open_dir_at(dir: RawFd, name: &CString) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64,
        mode: 0,
        resolve: libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_BENEATH | libc::RESOLVE_NO_XDEV,
    };
    // SAFETY: `name` is a valid C string and `how` a valid open_how of the size we pass; the
    // kernel only reads them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            name.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(last_err());
    }
    // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn open_dir_path(path: &Path) -> Result<OwnedFd> {
    let f = File::open(path).map_err(io_err("open", path))?;
    if !f.metadata().map_err(io_err("stat", path))?.is_dir() {
        return Err(io_err("open", path)(io::Error::from_raw_os_error(
            libc::ENOTDIR,
        )));
    }
    Ok(f.into())
}

fn fstatat(dir: RawFd, name: &CString) -> io::Result<Option<libc::stat>> {
    // SAFETY: an all-zero stat is a valid value for this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and a stat buffer we own.
    let rc = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if rc == 0 {
        Ok(Some(st))
    } else {
        let e = last_err();
        if e.raw_os_error() == Some(libc::ENOENT) {
            Ok(None)
        } else {
            Err(e)
        }
    }
}

fn set_xattr(fd: RawFd, name: &CString, value: &[u8]) -> io::Result<()> {
    // SAFETY: valid C string and a byte buffer of the given length.
    check(unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
}

fn times(mtime: i64) -> [libc::timespec; 2] {
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    [ts, ts]
}

impl Unpacker<'_> {
    fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            return Ok(());
        }
        let comps = split_path(&raw_path, &shown)?;
        let meta = self.meta(&mut entry, &shown)?;
        let Some((name, parents)) = comps.split_last() else {
            // The layer root itself ("./"): only a directory entry makes sense.
            if kind.is_dir() {
                let root = self.root.as_raw_fd();
                self.root_entry = true;
                return self.set_meta(root, &meta, &shown);
            }
            return Err(refuse(&shown, "non-directory entry for the layer root"));
        };
        let parent = self.open_parent(parents, &shown)?;
        let pfd = parent.as_raw_fd();
        let name_str = String::from_utf8_lossy(name);

        if name_str == OPAQUE {
            return set_xattr(pfd, &c"trusted.overlay.opaque".into(), b"y")
                .map_err(io_err("set opaque xattr on", self.dest.join(&shown)));
        }
        if name_str.starts_with(".wh..wh.") {
            return Ok(()); // aufs bookkeeping (.wh..wh.plnk and such)
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(refuse(&shown, "whiteout of nothing"));
            }
            let hidden = cstr(hidden, &shown)?;
            self.remove_existing(pfd, &hidden, false, &shown)?;
            // SAFETY: valid C string; mknodat creates a node, nothing else.
            return check(unsafe { libc::mknodat(pfd, hidden.as_ptr(), libc::S_IFCHR, 0) })
                .map_err(io_err("create whiteout", self.dest.join(&shown)));
        }

        let cname = cstr(name, &shown)?;
        let path = self.dest.join(OsStr::from_bytes(&raw_path));
        self.remove_existing(pfd, &cname, kind.is_dir(), &shown)?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                // SAFETY: valid C string; O_EXCL|O_NOFOLLOW create a new file in `pfd` only.
                let fd = unsafe {
                    libc::openat(
                        pfd,
                        cname.as_ptr(),
                        libc::O_WRONLY
                            | libc::O_CREAT
                            | libc::O_EXCL
                            | libc::O_NOFOLLOW
                            | libc::O_CLOEXEC,
                        0o600 as libc::c_uint,
                    )
                };
                if fd < 0 {
                    return Err(io_err("create", &path)(last_err()));
                }
                // SAFETY: a descriptor the kernel just gave us.
                let mut file = unsafe { File::from_raw_fd(fd) };
                copy_data(&mut entry, &mut file, &path)?;
                self.set_meta(file.as_raw_fd(), &meta, &shown)?;
                // SAFETY: our descriptor and a valid timespec pair.
                check(unsafe { libc::futimens(file.as_raw_fd(), times(meta.mtime).as_ptr()) })
                    .map_err(io_err("set mtime of", &path))
            }
            tar::EntryType::Directory => {
                // SAFETY: valid C string.
                let rc = unsafe { libc::mkdirat(pfd, cname.as_ptr(), 0o700) };
                if rc < 0 && last_err().raw_os_error() != Some(libc::EEXIST) {
                    return Err(io_err("mkdir", &path)(last_err()));
                }
                let dir = open_dir_at(pfd, &cname).map_err(|e| self.lookup_err(e, &shown))?;
                self.set_meta(dir.as_raw_fd(), &meta, &shown)?;
                self.dir_times.push((comps.clone(), meta.mtime));
                Ok(())
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse(&shown, "symlink without target"))?
                    .into_owned();
                if target.is_empty() {
                    return Err(refuse(&shown, "symlink without target"));
                }
                let ctarget = cstr(&target, &shown)?;
                // SAFETY: valid C strings.
                check(unsafe { libc::symlinkat(ctarget.as_ptr(), pfd, cname.as_ptr()) })
                    .map_err(io_err("symlink", &path))?;
                self.chown_at(pfd, &cname, &meta, &path)?;
                // SAFETY: valid C string and timespec pair; the link itself is changed.
                check(unsafe {
                    libc::utimensat(
                        pfd,
                        cname.as_ptr(),
                        times(meta.mtime).as_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                })
                .map_err(io_err("set mtime of", &path))
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse(&shown, "hardlink without target"))?
                    .into_owned();
                let tcomps = split_path(&target, &shown).map_err(|_| {
                    refuse(
                        &shown,
                        format!(
                            "hardlink target {:?} is outside the layer",
                            String::from_utf8_lossy(&target)
                        ),
                    )
                })?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(refuse(&shown, "hardlink to the layer root"));
                };
                let tparent = self.open_existing(tparents, &shown)?;
                let tname = cstr(tname, &shown)?;
                // SAFETY: valid C strings; flags 0 never follows a symlink target.
                check(unsafe {
                    libc::linkat(tparent.as_raw_fd(), tname.as_ptr(), pfd, cname.as_ptr(), 0)
                })
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ENOENT) => refuse(&shown, "hardlink target is not in this layer"),
                    _ => io_err("hardlink", &path)(e),
                })
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let fmt = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let dev = libc::makedev(major, minor);
                // SAFETY: valid C string; mknodat only creates the node.
                check(unsafe { libc::mknodat(pfd, cname.as_ptr(), fmt | 0o600, dev) })
                    .map_err(io_err("mknod", &path))?;
                self.chown_at(pfd, &cname, &meta, &path)?;
                // SAFETY: valid C string; the node was just created by us and is no symlink.
                check(unsafe { libc::fchmodat(pfd, cname.as_ptr(), meta.mode, 0) })
                    .map_err(io_err("chmod", &path))?;
                // SAFETY: valid C string and timespec pair.
                check(unsafe {
                    libc::utimensat(
                        pfd,
                        cname.as_ptr(),
                        times(meta.mtime).as_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                })
                .map_err(io_err("set mtime of", &path))
            }
            other => Err(refuse(&shown, format!("unsupported entry type {other:?}"))),
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, shown: &str) -> Result<Meta> {
        let h = entry.header();
        let bad = |what: &str| refuse(shown, format!("bad {what} in header"));
        let mut meta = Meta {
            mode: h.mode().map_err(|_| bad("mode"))? & 0o7777,
            uid: h.uid().map_err(|_| bad("uid"))? as u32,
            gid: h.gid().map_err(|_| bad("gid"))? as u32,
            mtime: h.mtime().map_err(|_| bad("mtime"))? as i64,
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(|_| bad("pax header"))? {
            for ext in pax {
                let ext = ext.map_err(|_| bad("pax header"))?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
                };
                match key {
                    b"uid" => meta.uid = num().ok_or_else(|| bad("pax uid"))? as u32,
                    b"gid" => meta.gid = num().ok_or_else(|| bad("pax gid"))? as u32,
                    b"mtime" => meta.mtime = num().ok_or_else(|| bad("pax mtime"))?,
                    _ => {
                        if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                            meta.xattrs.push((cstr(name, shown)?, value.to_vec()));
                        }
                    }
                }
            }
        }
        Ok(meta)
    }

    /// Owner, then mode (chown clears set-id bits), then xattrs (chown clears file caps).
    fn set_meta(&self, fd: RawFd, meta: &Meta, shown: &str) -> Result<()> {
        let path = self.dest.join(shown);
        // SAFETY: fchown/fchmod on a descriptor we own.
        check(unsafe { libc::fchown(fd, meta.uid, meta.gid) }).map_err(io_err("chown", &path))?;
        // SAFETY: as above.
        check(unsafe { libc::fchmod(fd, meta.mode) }).map_err(io_err("chmod", &path))?;
        for (name, value) in &meta.xattrs {
            set_xattr(fd, name, value).map_err(io_err("set xattr on", &path))?;
        }
        Ok(())
    }

    fn chown_at(&self, dir: RawFd, name: &CString, meta: &Meta, path: &Path) -> Result<()> {
        // SAFETY: valid C string; AT_SYMLINK_NOFOLLOW changes the node itself.
        check(unsafe {
            libc::fchownat(
                dir,
                name.as_ptr(),
                meta.uid,
                meta.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
        .map_err(io_err("chown", path))
    }

    fn lookup_err(&self, e: io::Error, shown: &str) -> Error {
        match e.raw_os_error() {
            Some(libc::ELOOP) => refuse(shown, "path goes through a symlink"),
            Some(libc::ENOTDIR) => refuse(shown, "path goes through a non-directory"),
            Some(libc::EXDEV) => refuse(shown, "path leaves the layer directory"),
            _ => io_err("open", self.dest.join(shown))(e),
        }
    }

    /// Opens the parent directories of an entry, creating missing ones (mode 0755, as tar does).
    fn open_parent(&self, parents: &[Vec<u8>], shown: &str) -> Result<OwnedFd> {
        let mut cur = self.root.try_clone().map_err(io_err("dup", self.dest))?;
        for c in parents {
            let c = cstr(c, shown)?;
            let next = match open_dir_at(cur.as_raw_fd(), &c) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    // SAFETY: valid C string.
                    let rc = unsafe { libc::mkdirat(cur.as_raw_fd(), c.as_ptr(), 0o755) };
                    if rc < 0 && last_err().raw_os_error() != Some(libc::EEXIST) {
                        return Err(io_err("mkdir", self.dest.join(shown))(last_err()));
                    }
                    open_dir_at(cur.as_raw_fd(), &c)
                }
                r => r,
            };
            cur = next.map_err(|e| self.lookup_err(e, shown))?;
        }
        Ok(cur)
    }

    /// Opens existing directories (for hardlink targets), creating nothing.
    fn open_existing(&self, comps: &[Vec<u8>], shown: &str) -> Result<OwnedFd> {
        let mut cur = self.root.try_clone().map_err(io_err("dup", self.dest))?;
        for c in comps {
            let c = cstr(c, shown)?;
            cur = open_dir_at(cur.as_raw_fd(), &c).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => refuse(shown, "hardlink target is not in this layer"),
                _ => self.lookup_err(e, shown),
            })?;
        }
        Ok(cur)
    }

    /// Makes room for a new entry: an existing non-directory is replaced, an existing directory
    /// is kept for a directory entry and removed (when empty) otherwise.
    fn remove_existing(
        &self,
        dir: RawFd,
        name: &CString,
        keep_dir: bool,
        shown: &str,
    ) -> Result<()> {
        let path = self.dest.join(shown);
        let Some(st) = fstatat(dir, name).map_err(io_err("stat", &path))? else {
            return Ok(());
        };
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir && keep_dir {
            return Ok(());
        }
        let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: valid C string; unlinkat removes the name only.
        check(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map_err(io_err("remove", &path))
    }

    fn set_dir_times(&mut self) -> Result<()> {
        for (comps, mtime) in std::mem::take(&mut self.dir_times) {
            let shown = String::from_utf8_lossy(&comps.join(&b'/')).into_owned();
            let dir = self.open_existing(&comps, &shown)?;
            // SAFETY: our descriptor and a valid timespec pair.
            check(unsafe { libc::futimens(dir.as_raw_fd(), times(mtime).as_ptr()) })
                .map_err(io_err("set mtime of", self.dest.join(&shown)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths() {
        assert_eq!(
            split_path(b"./a//b/", "e").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert!(split_path(b"./", "e").unwrap().is_empty());
        assert!(split_path(b"/etc/passwd", "e").is_err());
        assert!(split_path(b"a/../../b", "e").is_err());
    }
}
