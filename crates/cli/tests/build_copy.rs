//! `berth build` with COPY and ADD end to end (the copy module through the executor). Needs
//! root.

mod common;

use std::fs;

use common::{Berth, IMAGE};

#[test]
fn copy_and_add_through_the_builder() {
    let b = Berth::new();
    let ctx = tempfile::tempdir().unwrap();
    let p = ctx.path();
    fs::write(
        p.join("Dockerfile"),
        format!(
            "FROM {IMAGE} AS base\n\
             RUN mkdir -p /home/u && echo mine > /home/u/f && chown -R 1000:1000 /home/u\n\
             FROM {IMAGE}\n\
             WORKDIR /app\n\
             COPY app.conf ./\n\
             COPY --chmod=600 --chown=12:34 src/ /srv/\n\
             COPY --exclude=*.log src /nolog/\n\
             ADD pkg.tar.gz /opt/\n\
             COPY --from=base /home/u /home/u\n"
        ),
    )
    .unwrap();
    fs::write(p.join(".dockerignore"), "secret\n").unwrap();
    fs::write(p.join("secret"), "s").unwrap();
    fs::write(p.join("app.conf"), "conf\n").unwrap();
    fs::create_dir(p.join("src")).unwrap();
    fs::write(p.join("src/main"), "main\n").unwrap();
    fs::write(p.join("src/debug.log"), "log\n").unwrap();
    let mut tb = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o755);
    tb.append_data(&mut h, "pkg/tool", &b"tool"[..]).unwrap();
    // Named as if compressed: ADD goes by the content.
    fs::write(p.join("pkg.tar.gz"), tb.into_inner().unwrap()).unwrap();

    let o = b.run(&["build", "-t", "copied:1", &p.display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "build failed:\n{err}");
    let sh = |cmd: &str| b.ok(&["run", "--rm", "copied:1", "sh", "-c", cmd]);
    assert_eq!(sh("cat /app/app.conf"), "conf\n");
    assert_eq!(sh("stat -c '%a %u:%g' /srv/main"), "600 12:34\n");
    assert_eq!(sh("ls /nolog"), "main\n");
    assert_eq!(
        sh("cat /opt/pkg/tool; stat -c %a /opt/pkg/tool"),
        "tool755\n"
    );
    assert_eq!(
        sh("stat -c %u:%g /home/u/f; cat /home/u/f"),
        "1000:1000\nmine\n"
    );

    // A second build is cached; an edited source is not.
    let o = b.run(&["build", "-t", "copied:2", &p.display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let steps: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("] COPY ") || l.contains("] ADD "))
        .collect();
    assert_eq!(steps.len(), 5, "{err}");
    for l in steps {
        let num = l.split(' ').next().unwrap();
        assert!(
            err.contains(&format!("{num} CACHED")),
            "{l} not cached:\n{err}"
        );
    }
    fs::write(p.join("secret"), "changed, but ignored").unwrap();
    fs::write(p.join("src/main"), "edited\n").unwrap();
    let o = b.run(&["build", "-t", "copied:3", &p.display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let srv = err
        .lines()
        .find(|l| l.contains("] COPY") && l.contains(" src/ /srv/"))
        .unwrap();
    let num = srv.split(' ').next().unwrap();
    assert!(
        err.contains(&format!("{num} DONE")),
        "the edited source is copied again:\n{err}"
    );
    let conf = err
        .lines()
        .find(|l| l.contains("] COPY") && l.contains("app.conf"))
        .unwrap();
    let num = conf.split(' ').next().unwrap();
    assert!(
        err.contains(&format!("{num} CACHED")),
        "an ignored file changes nothing:\n{err}"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "copied:3", "cat", "/srv/main"]),
        "edited\n"
    );

    // A missing source names it.
    fs::write(
        p.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY secret /\n"),
    )
    .unwrap();
    let o = b.run(&["build", &p.display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("file not found in build context or excluded by .dockerignore: stat secret"),
        "{err}"
    );
}
