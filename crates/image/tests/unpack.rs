//! Layer unpack: faithful metadata, whiteouts, compression, and hostile tars.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_image::{Digest, Error, unpack_layer};
use common::{LayerTar, MTIME, ls, require_root};
use tar::EntryType;

fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and a buffer of the size passed.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

#[test]
fn unpacks_every_kind_of_entry_faithfully() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    fs::create_dir(&dest).unwrap();
    let tar = LayerTar::new()
        .entry("./", EntryType::Directory, 0o755, None, b"")
        .entry_owned("d/", EntryType::Directory, 0o750, None, b"", 1000, 1001)
        .entry_owned("d/f", EntryType::Regular, 0o4755, None, b"data", 1000, 1001)
        .symlink("d/abs", "/etc/passwd")
        .symlink("d/rel", "../d/f")
        .hardlink("d/hard", "d/f")
        .entry("dev/", EntryType::Directory, 0o755, None, b"")
        .entry("dev/null", EntryType::Char, 0o666, None, b"")
        .entry("fifo", EntryType::Fifo, 0o600, None, b"")
        .xattrs(&[("user.berth", b"yes")])
        .file("x", b"with xattr")
        .file("implicit/parent/file", b"parents made on the way")
        .finish();
    let diff_id = unpack_layer(&tar[..], &dest).unwrap();
    assert_eq!(diff_id, Digest::of(&tar));

    let m = fs::metadata(dest.join("d/f")).unwrap();
    assert_eq!(fs::read(dest.join("d/f")).unwrap(), b"data");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1001, 0o4755));
    assert_eq!(m.mtime(), MTIME as i64);
    assert_eq!(m.nlink(), 2, "hardlink shares the inode");
    let d = fs::metadata(dest.join("d")).unwrap();
    assert_eq!(
        (d.uid(), d.mode() & 0o7777, d.mtime()),
        (1000, 0o750, MTIME as i64)
    );
    assert_eq!(
        fs::read_link(dest.join("d/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read_link(dest.join("d/rel")).unwrap(),
        Path::new("../d/f")
    );
    assert_eq!(
        fs::symlink_metadata(dest.join("d/abs")).unwrap().mtime(),
        MTIME as i64
    );
    assert!(
        fs::metadata(dest.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let null = fs::metadata(dest.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        getxattr(&dest.join("x"), "user.berth").as_deref(),
        Some(&b"yes"[..])
    );
    assert_eq!(
        fs::read(dest.join("implicit/parent/file")).unwrap(),
        b"parents made on the way"
    );
    assert_eq!(ls(tmp.path()), ["layer"]);
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let tar = common::upper_layer();
    unpack_layer(&tar[..], tmp.path()).unwrap();
    let wh = fs::symlink_metadata(tmp.path().join("etc/hidden")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!tmp.path().join("etc/.wh.hidden").exists());
    assert!(!tmp.path().join("opq/.wh..wh..opq").exists());
    assert_eq!(
        getxattr(&tmp.path().join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
}

#[test]
fn gzip_and_zstd_layers_give_the_uncompressed_diff_id() {
    require_root();
    let tar = LayerTar::new().file("a", b"compressed").finish();
    for blob in [common::gzip(&tar), common::zstd(&tar)] {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(
            unpack_layer(&blob[..], tmp.path()).unwrap(),
            Digest::of(&tar)
        );
        assert_eq!(fs::read(tmp.path().join("a")).unwrap(), b"compressed");
    }
}

/// Unpacks a hostile layer into `<tmp>/layer` and checks the refusal names the entry and
/// nothing appeared next to the layer directory.
fn refused(tar: Vec<u8>, entry: &str) -> tempfile::TempDir {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    fs::create_dir(&dest).unwrap();
    match unpack_layer(&tar[..], &dest) {
        Err(e @ Error::UnsafeEntry { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(entry), "{msg:?} does not name {entry:?}");
        }
        other => panic!("hostile layer not refused: {other:?}"),
    }
    assert_eq!(
        ls(tmp.path()),
        ["layer"],
        "something was written outside the layer"
    );
    tmp
}

#[test]
fn refuses_dot_dot() {
    refused(LayerTar::new().file("../evil", b"x").finish(), "../evil");
    refused(
        LayerTar::new().file("a/../../evil", b"x").finish(),
        "a/../../evil",
    );
}

#[test]
fn refuses_absolute_paths() {
    refused(LayerTar::new().file("/abs", b"x").finish(), "/abs");
}

#[test]
fn refuses_writing_through_a_symlink() {
    // A real target outside: the write must not land there.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().display().to_string();
    refused(
        LayerTar::new()
            .symlink("link", &target)
            .file("link/passwd", b"owned")
            .finish(),
        "link/passwd",
    );
    assert!(ls(outside.path()).is_empty());
    // The classic: link -> /etc, then link/<file>.
    refused(
        LayerTar::new()
            .symlink("link", "/etc")
            .file("link/berth-test-must-not-exist", b"owned")
            .finish(),
        "link/berth-test-must-not-exist",
    );
    assert!(!Path::new("/etc/berth-test-must-not-exist").exists());
    // Directory entries and hardlinks through a symlinked parent, too.
    refused(
        LayerTar::new().symlink("l", "/").dir("l/tmp/").finish(),
        "l/tmp/",
    );
    refused(
        LayerTar::new()
            .file("f", b"x")
            .symlink("l", "/tmp")
            .hardlink("l/x", "f")
            .finish(),
        "l/x",
    );
}

#[test]
fn refuses_links_pointing_out() {
    refused(LayerTar::new().hardlink("h", "../../x").finish(), "h");
    refused(LayerTar::new().hardlink("h", "/etc/passwd").finish(), "h");
    // A hardlink whose target path goes through a symlink.
    refused(
        LayerTar::new()
            .symlink("l", "/etc")
            .hardlink("h", "l/passwd")
            .finish(),
        "h",
    );
}

#[test]
fn refuses_a_truncated_layer() {
    require_root();
    let tar = LayerTar::new().file("a", &[7u8; 4096]).finish();
    let tmp = tempfile::tempdir().unwrap();
    assert!(unpack_layer(&tar[..1000], tmp.path()).is_err());
}

#[test]
fn climbing_symlinks_are_kept_but_never_followed() {
    // busybox images have `linuxrc -> ../bin/busybox`: in the container `..` stops at `/`.
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    fs::create_dir(&layer).unwrap();
    let tar = LayerTar::new()
        .symlink("linuxrc", "../bin/busybox")
        .dir("a/")
        .symlink("a/up", "../../../..")
        .finish();
    unpack_layer(&tar[..], &layer).unwrap();
    assert_eq!(
        fs::read_link(layer.join("linuxrc")).unwrap(),
        Path::new("../bin/busybox")
    );
    // Writing through such a link is still refused.
    refused(
        LayerTar::new()
            .symlink("up", "../../../../tmp")
            .file("up/berth-test-must-not-exist", b"owned")
            .finish(),
        "up/berth-test-must-not-exist",
    );
    assert!(!Path::new("/tmp/berth-test-must-not-exist").exists());
}
