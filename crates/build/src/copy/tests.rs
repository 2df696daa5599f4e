use super::*;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::PathBuf;

use tempfile::TempDir;

/// A source tree and an image root.
struct Fx {
    src: TempDir,
    root: TempDir,
}

impl Fx {
    fn new() -> Fx {
        Fx {
            src: tempfile::tempdir().unwrap(),
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn s(&self, rel: &str) -> PathBuf {
        self.src.path().join(rel)
    }

    fn r(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel.trim_start_matches('/'))
    }

    /// Writes a source file (parents created) with a mode.
    fn file(&self, rel: &str, content: &str, mode: u32) -> &Fx {
        let p = self.s(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    fn dir(&self, rel: &str, mode: u32) -> &Fx {
        let p = self.s(rel);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    fn copy(&self, spec: &CopySpec) -> Result<(), CopyError> {
        copy_into(self.src.path(), self.root.path(), spec, None)
    }

    fn copy_ignoring(&self, spec: &CopySpec, ignore: &str) -> Result<(), CopyError> {
        let m = Matcher::parse(ignore).unwrap();
        copy_into(self.src.path(), self.root.path(), spec, Some(&m))
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.r(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.r(rel)).is_ok()
    }

    fn meta(&self, rel: &str) -> fs::Metadata {
        fs::symlink_metadata(self.r(rel)).unwrap_or_else(|e| panic!("stat {rel}: {e}"))
    }

    fn digest(&self, spec: &CopySpec) -> String {
        sources_digest(self.src.path(), spec, None).unwrap()
    }
}

fn spec(sources: &[&str], dest: &str) -> CopySpec {
    CopySpec {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        dest: dest.to_string(),
        workdir: "/".to_string(),
        ..CopySpec::default()
    }
}

fn mode(m: &fs::Metadata) -> u32 {
    m.permissions().mode() & 0o7777
}

fn set_mtime(p: &Path, secs: i64) {
    let t = TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

#[test]
fn chmod_values_are_octal_up_to_07777() {
    assert_eq!(parse_chmod("755").unwrap(), 0o755);
    assert_eq!(parse_chmod("0644").unwrap(), 0o644);
    assert_eq!(parse_chmod("4755").unwrap(), 0o4755);
    assert_eq!(parse_chmod("0").unwrap(), 0);
    for bad in ["", "u+x", "789", "17777", "-1", "0x1ff", " 755"] {
        let e = parse_chmod(bad).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "invalid chmod parameter: '{bad}'. it should be octal string and between 0 and 07777"
            )
        );
    }
}

#[test]
fn a_file_goes_to_dest_as_its_name_and_parents_are_created() {
    let fx = Fx::new();
    fx.file("app.conf", "conf", 0o640);
    set_mtime(&fx.s("app.conf"), 1_000_000);
    fx.copy(&spec(&["app.conf"], "/etc/myapp/settings"))
        .unwrap();
    assert_eq!(fx.read("/etc/myapp/settings"), "conf");
    let m = fx.meta("/etc/myapp/settings");
    assert_eq!(mode(&m), 0o640, "the mode is kept");
    assert_eq!(m.mtime(), 1_000_000, "the mtime is kept");
    assert_eq!((m.uid(), m.gid()), (0, 0));
    for d in ["/etc", "/etc/myapp"] {
        let m = fx.meta(d);
        assert!(m.is_dir());
        assert_eq!(mode(&m), 0o755, "{d}");
        assert_eq!((m.uid(), m.gid()), (0, 0));
    }
}

#[test]
fn a_file_goes_into_a_dest_with_a_slash_or_an_existing_directory() {
    let fx = Fx::new();
    fx.file("a.txt", "A", 0o644);
    fx.copy(&spec(&["a.txt"], "/new/")).unwrap();
    assert_eq!(fx.read("/new/a.txt"), "A");
    fs::create_dir(fx.r("/existing")).unwrap();
    fx.copy(&spec(&["a.txt"], "/existing")).unwrap();
    assert_eq!(fx.read("/existing/a.txt"), "A");
    // `.` and a relative dest are the workdir.
    fs::create_dir_all(fx.r("/work/dir")).unwrap();
    let mut s = spec(&["a.txt"], ".");
    s.workdir = "/work/dir".into();
    fx.copy(&s).unwrap();
    assert_eq!(fx.read("/work/dir/a.txt"), "A");
    let mut s = spec(&["a.txt"], "sub/b.txt");
    s.workdir = "/work".into();
    fx.copy(&s).unwrap();
    assert_eq!(fx.read("/work/sub/b.txt"), "A");
}

#[test]
fn a_directory_source_copies_its_contents_with_metadata() {
    let fx = Fx::new();
    fx.dir("src", 0o750);
    fx.file("src/top.txt", "top", 0o600);
    fx.file("src/sub/deep.txt", "deep", 0o755);
    fs::set_permissions(fx.s("src/sub"), fs::Permissions::from_mode(0o711)).unwrap();
    symlink("../top.txt", fx.s("src/sub/link")).unwrap();
    set_mtime(&fx.s("src/sub"), 2_000_000);
    set_mtime(&fx.s("src"), 3_000_000);
    fx.copy(&spec(&["src"], "/app")).unwrap();
    assert!(!fx.exists("/app/src"), "the directory itself is not copied");
    assert_eq!(fx.read("/app/top.txt"), "top");
    assert_eq!(fx.read("/app/sub/deep.txt"), "deep");
    assert_eq!(mode(&fx.meta("/app/sub/deep.txt")), 0o755);
    assert_eq!(mode(&fx.meta("/app/sub")), 0o711);
    assert_eq!(fx.meta("/app/sub").mtime(), 2_000_000, "dir times set last");
    // The created destination takes the source directory's metadata.
    assert_eq!(mode(&fx.meta("/app")), 0o750);
    assert_eq!(fx.meta("/app").mtime(), 3_000_000);
    // Symlinks inside are copied as symlinks.
    assert!(fx.meta("/app/sub/link").file_type().is_symlink());
    assert_eq!(
        fs::read_link(fx.r("/app/sub/link")).unwrap(),
        Path::new("../top.txt")
    );
    // An existing destination keeps its own metadata, its contents merge.
    fs::create_dir(fx.r("/opt")).unwrap();
    fs::set_permissions(fx.r("/opt"), fs::Permissions::from_mode(0o705)).unwrap();
    fs::write(fx.r("/opt/keep"), "k").unwrap();
    fx.copy(&spec(&["src/"], "/opt")).unwrap();
    assert_eq!(mode(&fx.meta("/opt")), 0o705);
    assert_eq!(fx.read("/opt/keep"), "k");
    assert_eq!(fx.read("/opt/top.txt"), "top");
}

#[test]
fn the_context_root_is_copied_whole() {
    let fx = Fx::new();
    fx.file("a", "1", 0o644).file("d/b", "2", 0o644);
    fs::set_permissions(fx.src.path(), fs::Permissions::from_mode(0o700)).unwrap();
    fx.copy(&spec(&["."], "/app/")).unwrap();
    assert_eq!(fx.read("/app/a"), "1");
    assert_eq!(fx.read("/app/d/b"), "2");
    assert_eq!(
        mode(&fx.meta("/app")),
        0o755,
        "not the mode of the context directory on the host"
    );
    let mut s = spec(&["./d/b"], "/p/");
    s.parents = true;
    fx.copy(&s).unwrap();
    assert_eq!(mode(&fx.meta("/p")), 0o755);
    assert_eq!(fx.read("/p/d/b"), "2");
}

#[test]
fn wildcards_match_per_component_like_go() {
    let fx = Fx::new();
    fx.file("a.txt", "a", 0o644)
        .file("b.txt", "b", 0o644)
        .file("c.md", "c", 0o644)
        .file("file1", "1", 0o644)
        .file("file22", "22", 0o644)
        .file("docs/x.md", "x", 0o644)
        .file("docs2/y.md", "y", 0o644)
        .file("docs3/z.txt", "z", 0o644)
        .file("star*", "literal", 0o644);
    fx.copy(&spec(&["*.txt"], "/t/")).unwrap();
    assert!(fx.exists("/t/a.txt") && fx.exists("/t/b.txt"));
    assert!(!fx.exists("/t/c.md"));
    fx.copy(&spec(&["file?"], "/q/")).unwrap();
    assert!(fx.exists("/q/file1") && !fx.exists("/q/file22"));
    fx.copy(&spec(&["[ab].*"], "/c/")).unwrap();
    assert!(fx.exists("/c/a.txt") && fx.exists("/c/b.txt") && !fx.exists("/c/c.md"));
    fx.copy(&spec(&["[^ab].*"], "/n/")).unwrap();
    assert!(fx.exists("/n/c.md") && !fx.exists("/n/a.txt"));
    // A wildcard in a directory component; files land flat in dest.
    fx.copy(&spec(&["docs*/*.md"], "/m/")).unwrap();
    assert_eq!(fx.read("/m/x.md"), "x");
    assert_eq!(fx.read("/m/y.md"), "y");
    assert!(!fx.exists("/m/z.txt"));
    // A wildcard matching directories copies their contents.
    fx.copy(&spec(&["docs?"], "/dd/")).unwrap();
    assert!(fx.exists("/dd/y.md") && fx.exists("/dd/z.txt") && !fx.exists("/dd/x.md"));
    // In a wildcard component an escaped star is literal; special characters in a name are
    // escaped with a class, as the Dockerfile reference says (`arr[[]0].txt`).
    fx.file("starry", "no", 0o644)
        .file("arr[0].txt", "arr", 0o644);
    fx.copy(&spec(&["star\\**"], "/e/")).unwrap();
    assert_eq!(fx.read("/e/star*"), "literal");
    assert!(!fx.exists("/e/starry"));
    fx.copy(&spec(&["arr[[]0].txt"], "/e/")).unwrap();
    assert_eq!(fx.read("/e/arr[0].txt"), "arr");
    // One match into a file name is fine.
    fx.copy(&spec(&["c.*"], "/single")).unwrap();
    assert_eq!(fx.read("/single"), "c");
    // Malformed.
    let e = fx.copy(&spec(&["[a"], "/x/")).unwrap_err().to_string();
    assert_eq!(e, "invalid source \"[a\": syntax error in pattern");
}

#[test]
fn several_sources_need_a_directory_destination() {
    let fx = Fx::new();
    fx.file("a", "a", 0o644).file("b", "b", 0o644);
    let msg = "When using COPY with more than one source file, the destination must be a directory and end with a /";
    assert_eq!(
        fx.copy(&spec(&["a", "b"], "/dest"))
            .unwrap_err()
            .to_string(),
        msg
    );
    assert_eq!(
        fx.copy(&spec(&["*"], "/dest")).unwrap_err().to_string(),
        msg
    );
    let mut add = spec(&["a", "b"], "/dest");
    add.add = true;
    assert!(
        fx.copy(&add)
            .unwrap_err()
            .to_string()
            .starts_with("When using ADD with")
    );
    assert!(!fx.exists("/dest"), "nothing was written");
    fx.copy(&spec(&["a", "b"], "/dest/")).unwrap();
    assert_eq!(fx.read("/dest/a") + &fx.read("/dest/b"), "ab");
    fs::create_dir(fx.r("/isdir")).unwrap();
    fx.copy(&spec(&["a", "b"], "/isdir")).unwrap();
    assert!(fx.exists("/isdir/b"));
}

#[test]
fn missing_sources_are_named_and_ignore_is_only_blamed_when_it_hid_them() {
    let fx = Fx::new();
    fx.file("present.txt", "p", 0o644)
        .file("secret.env", "s", 0o600);
    let e = fx
        .copy(&spec(&["missing.txt"], "/x/"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "COPY failed: file not found in build context: stat missing.txt: file does not exist"
    );
    let e = fx
        .copy_ignoring(&spec(&["missing.txt"], "/x/"), "*.env\n")
        .unwrap_err()
        .to_string();
    assert!(!e.contains(".dockerignore"), "{e}");
    let e = fx
        .copy_ignoring(&spec(&["secret.env"], "/x/"), "*.env\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "COPY failed: file not found in build context or excluded by .dockerignore: stat secret.env: file does not exist"
    );
    let e = fx
        .copy_ignoring(&spec(&["*.env"], "/x/"), "*.env\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("excluded by .dockerignore: stat *.env:"), "{e}");
    let e = fx
        .copy(&spec(&["*.nothing"], "/x/"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "COPY failed: file not found in build context: stat *.nothing: file does not exist"
    );
    // A file below a file.
    assert!(matches!(
        fx.copy(&spec(&["present.txt/x"], "/x/")),
        Err(CopyError::NotFound { ignored: false, .. })
    ));
    assert!(!fx.exists("/x"));
}

#[test]
fn dockerignore_hides_entries_of_copied_directories() {
    let fx = Fx::new();
    fx.file("app/main.rs", "m", 0o644)
        .file("app/target/big", "b", 0o644)
        .file("app/notes.md", "n", 0o644)
        .file("app/README.md", "r", 0o644)
        .file("docs/keep.txt", "k", 0o644)
        .file("docs/drop.txt", "d", 0o644);
    fx.copy_ignoring(
        &spec(&["."], "/c/"),
        "app/target\n*/*.md\n!app/README.md\ndocs\n!docs/keep.txt\n",
    )
    .unwrap();
    assert!(fx.exists("/c/app/main.rs"));
    assert!(!fx.exists("/c/app/target"));
    assert!(!fx.exists("/c/app/notes.md"));
    assert!(fx.exists("/c/app/README.md"));
    assert!(fx.exists("/c/docs/keep.txt"));
    assert!(!fx.exists("/c/docs/drop.txt"));
    // An ignored directory with a re-included entry is still a source.
    fx.copy_ignoring(&spec(&["docs"], "/d/"), "docs\n!docs/keep.txt\n")
        .unwrap();
    assert!(fx.exists("/d/keep.txt") && !fx.exists("/d/drop.txt"));
}

#[test]
fn exclude_applies_relative_to_each_source() {
    let fx = Fx::new();
    fx.file("dir3/a.mp3", "a", 0o644)
        .file("dir3/b.mpeg", "b", 0o644)
        .file("dir3/sub/c.mp3", "c", 0o644)
        .file("dir3/sub/keep.mp3", "k", 0o644)
        .file("one.mp3", "o", 0o644)
        .file("two.txt", "t", 0o644);
    let mut s = spec(&["dir3/"], "/3/");
    s.excludes = vec!["*.mp3".into(), "sub/*.mp3".into(), "!sub/keep.mp3".into()];
    fx.copy(&s).unwrap();
    assert!(!fx.exists("/3/a.mp3"));
    assert_eq!(fx.read("/3/b.mpeg"), "b");
    assert!(!fx.exists("/3/sub/c.mp3"));
    assert_eq!(fx.read("/3/sub/keep.mp3"), "k");
    // File sources are matched by name; an excluded one is skipped, not an error.
    let mut s = spec(&["one.mp3", "two.txt"], "/f/");
    s.excludes = vec!["*.mp3".into()];
    fx.copy(&s).unwrap();
    assert!(!fx.exists("/f/one.mp3"));
    assert!(fx.exists("/f/two.txt"));
    // Everything excluded: the destination directory exists, empty.
    let mut s = spec(&["dir*"], "/6");
    s.excludes = vec!["*".into()];
    fx.copy(&s).unwrap();
    assert_eq!(fs::read_dir(fx.r("/6")).unwrap().count(), 0);
    // An excluded directory whose entry is re-included is created for it.
    let mut s = spec(&["dir3"], "/r/");
    s.excludes = vec!["sub".into(), "!sub/keep.mp3".into()];
    fx.copy(&s).unwrap();
    assert!(fx.exists("/r/sub/keep.mp3") && !fx.exists("/r/sub/c.mp3"));
    let mut s = spec(&["dir3"], "/r/");
    s.excludes = vec!["[".into()];
    assert!(matches!(fx.copy(&s), Err(CopyError::BadPattern(_))));
}

#[test]
fn chown_and_chmod_apply_to_copied_and_created_entries() {
    let fx = Fx::new();
    fx.file("d/f", "f", 0o600).file("g", "g", 0o644);
    nix::unistd::chown(
        &fx.s("d/f"),
        Some(Uid::from_raw(1000)),
        Some(Gid::from_raw(1000)),
    )
    .unwrap();
    // Without --chown the context's owners are not kept.
    fx.copy(&spec(&["d"], "/plain/")).unwrap();
    let m = fx.meta("/plain/f");
    assert_eq!((m.uid(), m.gid()), (0, 0));
    // preserve_owners keeps them (for --from).
    let mut s = spec(&["d"], "/kept/");
    s.preserve_owners = true;
    fx.copy(&s).unwrap();
    let m = fx.meta("/kept/f");
    assert_eq!((m.uid(), m.gid()), (1000, 1000));

    let mut s = spec(&["d", "g"], "/a/b/");
    s.chown = Some((1234, 5678));
    s.chmod = Some(0o751);
    fx.copy(&s).unwrap();
    for p in ["/a/b/f", "/a/b/g"] {
        let m = fx.meta(p);
        assert_eq!((m.uid(), m.gid()), (1234, 5678), "{p}");
        assert_eq!(mode(&m), 0o751, "{p}");
    }
    for p in ["/a", "/a/b"] {
        let m = fx.meta(p);
        assert_eq!((m.uid(), m.gid()), (1234, 5678), "{p}");
    }
    // The copied directory (the created destination) takes the --chmod mode, created parents
    // stay 0755.
    assert_eq!(mode(&fx.meta("/a/b")), 0o751);
    assert_eq!(mode(&fx.meta("/a")), 0o755);
    // Set-id bits survive chown.
    fx.file("suid", "s", 0o4755);
    let mut s = spec(&["suid"], "/bin/");
    s.chown = Some((0, 0));
    fx.copy(&s).unwrap();
    assert_eq!(mode(&fx.meta("/bin/suid")), 0o4755);
}

#[test]
fn sources_cannot_escape_the_source_root() {
    let outer = tempfile::tempdir().unwrap();
    let fx = Fx {
        src: tempfile::tempdir_in(outer.path()).unwrap(),
        root: tempfile::tempdir().unwrap(),
    };
    fs::write(outer.path().join("outside.txt"), "outside").unwrap();
    fx.file("outside.txt", "inside", 0o644);
    fx.file("etc/passwd", "context passwd", 0o644);
    // `..` is clamped at the root.
    fx.copy(&spec(&["../outside.txt"], "/a/")).unwrap();
    assert_eq!(fx.read("/a/outside.txt"), "inside");
    fx.copy(&spec(&["/../../outside.txt"], "/b/")).unwrap();
    assert_eq!(fx.read("/b/outside.txt"), "inside");
    // A top-level symlink is followed inside the source root, named by the link.
    symlink("../../../outside.txt", fx.s("up")).unwrap();
    fx.copy(&spec(&["up"], "/c/")).unwrap();
    assert_eq!(fx.read("/c/up"), "inside");
    assert!(!fx.meta("/c/up").file_type().is_symlink());
    symlink("/etc/passwd", fx.s("abs")).unwrap();
    fx.copy(&spec(&["abs"], "/d/x")).unwrap();
    assert_eq!(fx.read("/d/x"), "context passwd");
    // A symlinked directory in the middle of a source.
    symlink("/etc", fx.s("etclink")).unwrap();
    fx.copy(&spec(&["etclink/passwd"], "/e/")).unwrap();
    assert_eq!(fx.read("/e/passwd"), "context passwd");
    // A link loop is an error, not a hang.
    symlink("loop", fx.s("loop")).unwrap();
    assert!(matches!(
        fx.copy(&spec(&["loop"], "/f/")),
        Err(CopyError::Loop(_))
    ));
}

#[test]
fn the_destination_resolves_inside_rootfs() {
    let fx = Fx::new();
    fx.file("evil", "payload", 0o644);
    // /etc in the image points at itself through `..` past the root: a loop, not the host's.
    symlink("/../../../../../../etc", fx.r("/etc")).unwrap();
    assert!(matches!(
        fx.copy(&spec(&["evil"], "/etc/passwd")),
        Err(CopyError::Loop(_))
    ));
    drop(fx);

    let fx = Fx::new();
    fx.file("evil", "payload", 0o644);
    fs::create_dir(fx.r("/real")).unwrap();
    symlink("../../../../real", fx.r("/link")).unwrap();
    fx.copy(&spec(&["evil"], "/link/file")).unwrap();
    assert_eq!(fx.read("/real/file"), "payload");
    // An absolute link whose target is missing: created inside the root.
    symlink(format!("{}/escape", host_etc_path()), fx.r("/abs")).unwrap();
    fx.copy(&spec(&["evil"], "/abs/")).unwrap();
    assert_eq!(
        fx.read(&format!("{}/escape/evil", host_etc_path())),
        "payload"
    );
    assert!(!Path::new(&format!("{}/escape", host_etc_path())).exists());
    // A symlink as the file destination: its target (inside) is replaced.
    fs::write(fx.r("/real/target"), "old").unwrap();
    symlink("/real/target", fx.r("/flink")).unwrap();
    fx.copy(&spec(&["evil"], "/flink")).unwrap();
    assert_eq!(fx.read("/real/target"), "payload");
}

/// A directory outside every fixture, as a symlink target that must not be reached.
fn host_etc_path() -> String {
    let d = std::env::temp_dir().join("berth-copy-test-outside");
    fs::create_dir_all(&d).unwrap();
    d.to_string_lossy().into_owned()
}

#[test]
fn a_dest_symlink_to_dotdot_etc_stays_in_rootfs() {
    let fx = Fx::new();
    fx.file("conf", "payload", 0o644);
    fs::create_dir(fx.r("/etc")).unwrap();
    fs::write(fx.r("/etc/hosts"), "image hosts").unwrap();
    symlink("/../../etc", fx.r("/escape")).unwrap();
    fx.copy(&spec(&["conf"], "/escape/hosts")).unwrap();
    assert_eq!(fx.read("/etc/hosts"), "payload");
    assert_ne!(
        fs::read_to_string("/etc/hosts").unwrap_or_default(),
        "payload"
    );
}

#[test]
fn existing_entries_are_replaced_but_directories_are_not_clobbered() {
    let fx = Fx::new();
    fx.file("f", "new", 0o644).file("d/x", "x", 0o644);
    fs::write(fx.r("/f"), "old").unwrap();
    fx.copy(&spec(&["f"], "/f")).unwrap();
    assert_eq!(fx.read("/f"), "new");
    // A symlink where a file goes is replaced, its target untouched.
    fs::write(fx.r("/other"), "other").unwrap();
    fs::create_dir(fx.r("/dir")).unwrap();
    symlink("/other", fx.r("/dir/f")).unwrap();
    fx.copy(&spec(&["f"], "/dir/")).unwrap();
    assert_eq!(fx.read("/dir/f"), "new");
    assert!(!fx.meta("/dir/f").file_type().is_symlink());
    assert_eq!(fx.read("/other"), "other");
    // A directory where a file goes.
    fs::create_dir_all(fx.r("/into/f")).unwrap();
    let e = fx.copy(&spec(&["f"], "/into/")).unwrap_err().to_string();
    assert_eq!(e, "cannot replace directory /into/f with a file");
    // A file where a directory goes.
    fs::create_dir(fx.r("/app")).unwrap();
    fs::write(fx.r("/app/x"), "file").unwrap();
    fx.file("d2/x/inner", "i", 0o644);
    let e = fx.copy(&spec(&["d2"], "/app")).unwrap_err().to_string();
    assert_eq!(e, "cannot copy to non-directory: /app/x");
    let e = fx.copy(&spec(&["d"], "/f")).unwrap_err().to_string();
    assert_eq!(e, "cannot copy to non-directory: /f");
    let e = fx.copy(&spec(&["f"], "/f/sub/")).unwrap_err().to_string();
    assert_eq!(e, "cannot copy to non-directory: /f");
}

#[test]
fn parents_keep_the_source_path() {
    let fx = Fx::new();
    fx.file("x/a.txt", "xa", 0o644)
        .file("y/a.txt", "ya", 0o644)
        .file("x/y/z/deep.txt", "deep", 0o644)
        .file("x/y/z/other.md", "md", 0o644)
        .file("src/pkg/one.go", "1", 0o644)
        .file("src/pkg/sub/two.go", "2", 0o644)
        .file("src/pkg/readme", "r", 0o644);
    fs::set_permissions(fx.s("x"), fs::Permissions::from_mode(0o701)).unwrap();
    let mut s = spec(&["./x/a.txt", "./y/a.txt"], "/p/");
    s.parents = true;
    fx.copy(&s).unwrap();
    assert_eq!(fx.read("/p/x/a.txt"), "xa");
    assert_eq!(fx.read("/p/y/a.txt"), "ya");
    assert_eq!(
        mode(&fx.meta("/p/x")),
        0o701,
        "parents take the source's mode"
    );
    assert!(!fx.exists("/p/x/y"), "only what was named");
    // The /./ pivot.
    let mut s = spec(&["./x/./y/z/*.txt"], "/v");
    s.parents = true;
    fx.copy(&s).unwrap();
    assert_eq!(fx.read("/v/y/z/deep.txt"), "deep");
    assert!(!fx.exists("/v/y/z/other.md") && !fx.exists("/v/x"));
    // ** and a directory match.
    let mut s = spec(&["src/**/*.go"], "/g/");
    s.parents = true;
    fx.copy(&s).unwrap();
    assert!(fx.exists("/g/src/pkg/one.go") && fx.exists("/g/src/pkg/sub/two.go"));
    assert!(!fx.exists("/g/src/pkg/readme"));
    let mut s = spec(&["x/y"], "/w/");
    s.parents = true;
    fx.copy(&s).unwrap();
    assert!(fx.exists("/w/x/y/z/other.md"));
    // Missing.
    let mut s = spec(&["x/nope.txt"], "/w/");
    s.parents = true;
    let e = fx.copy(&s).unwrap_err().to_string();
    assert_eq!(
        e,
        "COPY failed: file not found in build context: stat x/nope.txt: file does not exist"
    );
    let mut s = spec(&["x/a.txt"], "/w/");
    s.parents = true;
    let e = fx.copy_ignoring(&s, "x/a.txt\n").unwrap_err().to_string();
    assert!(e.contains("excluded by .dockerignore"), "{e}");
}

fn tar_bytes(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

/// Appends an entry with a raw name (the tar crate refuses `..` through its setters).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
    mode: u32,
    owner: (u64, u64),
) {
    let mut h = tar::Header::new_gnu();
    let raw = &mut h.as_old_mut().name;
    raw.fill(0);
    raw[..name.len()].copy_from_slice(name.as_bytes());
    if !link.is_empty() {
        let l = &mut h.as_old_mut().linkname;
        l.fill(0);
        l[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(owner.0);
    h.set_gid(owner.1);
    h.set_mtime(1_500_000_000);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn sample_tar() -> Vec<u8> {
    tar_bytes(|b| {
        raw_entry(b, "pkg/", tar::EntryType::Directory, "", b"", 0o750, (7, 8));
        raw_entry(
            b,
            "pkg/bin",
            tar::EntryType::Regular,
            "",
            b"#!bin",
            0o755,
            (7, 8),
        );
        raw_entry(
            b,
            "pkg/.wh.gone",
            tar::EntryType::Regular,
            "",
            b"",
            0o644,
            (0, 0),
        );
        raw_entry(
            b,
            "pkg/link",
            tar::EntryType::Symlink,
            "bin",
            b"",
            0o777,
            (7, 8),
        );
        raw_entry(
            b,
            "pkg/hard",
            tar::EntryType::Link,
            "pkg/bin",
            b"",
            0o755,
            (7, 8),
        );
    })
}

fn check_sample(fx: &Fx, dir: &str) {
    assert_eq!(fx.read(&format!("{dir}/pkg/bin")), "#!bin");
    let m = fx.meta(&format!("{dir}/pkg/bin"));
    assert_eq!(mode(&m), 0o755);
    assert_eq!((m.uid(), m.gid()), (7, 8), "the archive's owners");
    assert_eq!(m.mtime(), 1_500_000_000);
    assert_eq!(mode(&fx.meta(&format!("{dir}/pkg"))), 0o750);
    assert_eq!(fx.meta(&format!("{dir}/pkg")).mtime(), 1_500_000_000);
    assert!(
        fx.exists(&format!("{dir}/pkg/.wh.gone")),
        "whiteouts are plain files"
    );
    assert_eq!(
        fs::read_link(fx.r(&format!("{dir}/pkg/link"))).unwrap(),
        Path::new("bin")
    );
    assert_eq!(fx.meta(&format!("{dir}/pkg/hard")).ino(), m.ino());
}

#[test]
fn add_extracts_local_archives_of_every_compression() {
    let fx = Fx::new();
    let plain = sample_tar();
    fs::write(fx.s("plain.tar"), &plain).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    // Named without an extension: detection is by content.
    fs::write(fx.s("gzipped"), gz.finish().unwrap()).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&plain).unwrap();
    fs::write(fx.s("a.tar.bz2"), bz.finish().unwrap()).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&plain).unwrap();
    fs::write(fx.s("a.tar.xz"), xz.finish().unwrap()).unwrap();
    fs::write(fx.s("a.tar.zst"), zstd::encode_all(&plain[..], 3).unwrap()).unwrap();
    for (name, dir) in [
        ("plain.tar", "/plain"),
        ("gzipped", "/gz"),
        ("a.tar.bz2", "/bz2"),
        ("a.tar.xz", "/xz"),
        ("a.tar.zst", "/zst"),
    ] {
        let mut s = spec(&[name], dir);
        s.add = true;
        fx.copy(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_sample(&fx, dir);
    }
    // COPY copies the archive as it is.
    fx.copy(&spec(&["plain.tar"], "/copied.tar")).unwrap();
    assert_eq!(fs::read(fx.r("/copied.tar")).unwrap(), plain);
    // --chown replaces the archive's owners.
    let mut s = spec(&["plain.tar"], "/owned/");
    s.add = true;
    s.chown = Some((42, 43));
    fx.copy(&s).unwrap();
    let m = fx.meta("/owned/pkg/bin");
    assert_eq!((m.uid(), m.gid()), (42, 43));
}

#[test]
fn add_copies_files_that_are_not_archives() {
    let fx = Fx::new();
    fx.file("notes.tar.gz", "just text", 0o644);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"compressed text, not a tar").unwrap();
    fs::write(fx.s("data.gz"), gz.finish().unwrap()).unwrap();
    fx.file("empty", "", 0o644);
    let mut s = spec(&["notes.tar.gz", "data.gz", "empty"], "/d/");
    s.add = true;
    fx.copy(&s).unwrap();
    assert_eq!(fx.read("/d/notes.tar.gz"), "just text");
    assert!(fx.meta("/d/data.gz").is_file());
    assert!(fx.meta("/d/empty").is_file());
}

#[test]
fn hostile_archives_stay_inside_dest() {
    let fx = Fx::new();
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().to_string_lossy().into_owned();
    let t = tar_bytes(|b| {
        raw_entry(
            b,
            "../../../../escape1",
            tar::EntryType::Regular,
            "",
            b"1",
            0o644,
            (0, 0),
        );
        raw_entry(
            b,
            "/abs/escape2",
            tar::EntryType::Regular,
            "",
            b"2",
            0o644,
            (0, 0),
        );
        raw_entry(
            b,
            "up",
            tar::EntryType::Symlink,
            "../../../../../..",
            b"",
            0o777,
            (0, 0),
        );
        raw_entry(
            b,
            "up/escape3",
            tar::EntryType::Regular,
            "",
            b"3",
            0o644,
            (0, 0),
        );
        raw_entry(b, "host", tar::EntryType::Symlink, &out, b"", 0o777, (0, 0));
        raw_entry(
            b,
            "host/escape4",
            tar::EntryType::Regular,
            "",
            b"4",
            0o644,
            (0, 0),
        );
        raw_entry(b, "root", tar::EntryType::Symlink, "/", b"", 0o777, (0, 0));
        raw_entry(
            b,
            "root/etc/escape5",
            tar::EntryType::Regular,
            "",
            b"5",
            0o644,
            (0, 0),
        );
        raw_entry(
            b,
            "hl",
            tar::EntryType::Link,
            "../../../etc/passwd",
            b"",
            0o644,
            (0, 0),
        );
    });
    fs::write(fx.s("evil.tar"), &t).unwrap();
    fs::create_dir_all(fx.r("/srv")).unwrap();
    let mut s = spec(&["evil.tar"], "/srv/app");
    s.add = true;
    let r = fx.copy(&s);
    // The hard link's target (etc/passwd inside dest) does not exist: a clear error.
    let e = r.unwrap_err().to_string();
    assert!(
        e == "ADD evil.tar: entry hl: hard link target etc/passwd not found",
        "{e}"
    );
    assert_eq!(fx.read("/srv/app/escape1"), "1");
    assert_eq!(fx.read("/srv/app/abs/escape2"), "2");
    assert_eq!(fx.read("/srv/app/escape3"), "3");
    assert_eq!(fx.read(&format!("/srv/app{out}/escape4")), "4");
    assert_eq!(fx.read("/srv/app/etc/escape5"), "5");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(!fx.exists("/escape1") && !fx.exists("/srv/escape1"));
    assert!(!fx.exists("/etc"));
}

#[test]
fn digest_follows_content_and_mode_not_mtime() {
    let fx = Fx::new();
    fx.file("app/a.txt", "one", 0o644)
        .file("app/b/c", "c", 0o644);
    let s = spec(&["app"], "/app/");
    let d0 = fx.digest(&s);
    assert!(d0.starts_with("sha256:") && d0.len() == 71, "{d0}");
    assert_eq!(fx.digest(&s), d0, "stable");
    set_mtime(&fx.s("app/a.txt"), 12345);
    set_mtime(&fx.s("app/b"), 12345);
    assert_eq!(fx.digest(&s), d0, "mtime is not content");
    nix::unistd::chown(&fx.s("app/a.txt"), Some(Uid::from_raw(5)), None).unwrap();
    assert_eq!(fx.digest(&s), d0, "context owners are not copied");
    let mut kept = s.clone();
    kept.preserve_owners = true;
    assert_ne!(fx.digest(&kept), d0, "unless they are");
    fs::write(fx.s("app/a.txt"), "two").unwrap();
    let d1 = fx.digest(&s);
    assert_ne!(d1, d0, "content");
    fs::set_permissions(fx.s("app/a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    let d2 = fx.digest(&s);
    assert_ne!(d2, d1, "mode");
    fs::rename(fx.s("app/a.txt"), fx.s("app/z.txt")).unwrap();
    assert_ne!(fx.digest(&s), d2, "name");
    symlink("z.txt", fx.s("app/l")).unwrap();
    let d3 = fx.digest(&s);
    fs::remove_file(fx.s("app/l")).unwrap();
    symlink("c", fx.s("app/l")).unwrap();
    assert_ne!(fx.digest(&s), d3, "symlink target");
    // Ignored and excluded files are not part of it.
    let ign = Matcher::parse("app/secret\n").unwrap();
    let before = sources_digest(fx.src.path(), &s, Some(&ign)).unwrap();
    fx.file("app/secret", "s", 0o600);
    assert_eq!(
        sources_digest(fx.src.path(), &s, Some(&ign)).unwrap(),
        before
    );
    assert_ne!(fx.digest(&s), before);
    let mut ex = s.clone();
    ex.excludes = vec!["secret".into()];
    assert_eq!(fx.digest(&ex), before);
    // Missing sources fail the same way.
    assert!(matches!(
        sources_digest(fx.src.path(), &spec(&["nope"], "/"), None),
        Err(CopyError::NotFound { .. })
    ));
}

#[test]
fn special_files_are_recreated() {
    let fx = Fx::new();
    fx.dir("d", 0o755);
    nix::unistd::mkfifo(&fx.s("d/fifo"), Mode::from_bits_truncate(0o640)).unwrap();
    fx.copy(&spec(&["d"], "/x/")).unwrap();
    let m = fx.meta("/x/fifo");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
    assert_eq!(mode(&m), 0o640);
}

#[test]
fn go_match_syntax() {
    let m = |p: &str, n: &str| wild_match(p.as_bytes(), n.as_bytes());
    assert_eq!(m("*", ".hidden"), Ok(true), "Go's * matches a leading dot");
    assert_eq!(m("a*b*c", "axxbyyc"), Ok(true));
    assert_eq!(m("a*b*c", "axxbyy"), Ok(false));
    assert_eq!(m("[a-c]x", "bx"), Ok(true));
    assert_eq!(m("[^a-c]x", "bx"), Ok(false));
    assert_eq!(m("[\\]]", "]"), Ok(true));
    assert_eq!(m("\\?", "?"), Ok(true));
    assert_eq!(m("\\?", "a"), Ok(false));
    for bad in ["[", "[]", "[a-]", "a\\", "[z-", "x[-a]"] {
        assert_eq!(m(bad, "a"), Err(()), "{bad}");
    }
}

#[test]
fn wildcard_matches_hidden_by_dockerignore_are_skipped() {
    let fx = Fx::new();
    fx.file("a.txt", "a", 0o644).file("b.txt", "b", 0o644);
    fx.copy_ignoring(&spec(&["*.txt"], "/w"), "a.txt\n")
        .unwrap();
    assert_eq!(
        fx.read("/w"),
        "b",
        "one match left: copied as the file name, no several-sources error"
    );
}

#[test]
fn empty_numeric_archive_fields_read_as_zero() {
    let fx = Fx::new();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o640);
    // uid, gid and mtime left as NULs, as some writers do.
    b.append_data(&mut h, "f", &b"hi"[..]).unwrap();
    fs::write(fx.s("t.tar"), b.into_inner().unwrap()).unwrap();
    let mut s = spec(&["t.tar"], "/x/");
    s.add = true;
    fx.copy(&s).unwrap();
    let m = fx.meta("/x/f");
    assert_eq!((m.uid(), m.gid(), m.mtime(), mode(&m)), (0, 0, 0, 0o640));
}

#[test]
fn archive_entries_replace_what_is_in_their_way() {
    let fx = Fx::new();
    let t = tar_bytes(|b| {
        raw_entry(
            b,
            "x",
            tar::EntryType::Regular,
            "",
            b"file now",
            0o644,
            (0, 0),
        );
        raw_entry(
            b,
            "keep/",
            tar::EntryType::Directory,
            "",
            b"",
            0o700,
            (0, 0),
        );
        raw_entry(b, "./", tar::EntryType::Directory, "", b"", 0o777, (0, 0));
    });
    fs::write(fx.s("t.tar"), &t).unwrap();
    fs::create_dir_all(fx.r("/d/x/inner")).unwrap();
    fs::create_dir_all(fx.r("/d/keep")).unwrap();
    fs::write(fx.r("/d/keep/old"), "old").unwrap();
    fs::set_permissions(fx.r("/d"), fs::Permissions::from_mode(0o751)).unwrap();
    let mut s = spec(&["t.tar"], "/d");
    s.add = true;
    fx.copy(&s).unwrap();
    assert_eq!(fx.read("/d/x"), "file now");
    assert_eq!(fx.read("/d/keep/old"), "old", "directories merge");
    assert_eq!(mode(&fx.meta("/d/keep")), 0o700);
    assert_eq!(
        mode(&fx.meta("/d")),
        0o751,
        "the root entry leaves dest alone"
    );
}
