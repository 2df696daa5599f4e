//! create, add_task, pids, freeze, destroy against the real cgroup filesystem (needs root).

mod common;

use std::process::Command;

use berth_cgroups::{FreezerState, Layout};
use common::{Guard, proc_state};

#[test]
fn detect_finds_a_layout() {
    let l = Layout::detect().expect("detect");
    match l {
        Layout::V1 { hierarchies, .. } => assert!(!hierarchies.is_empty()),
        Layout::V2 { root } => assert!(root.join("cgroup.controllers").exists()),
    }
}

#[test]
fn lifecycle() {
    let mut g = Guard::new("lifecycle");
    assert_eq!(g.m.path().to_str(), Some(g.path.as_str()));
    g.m.create().expect("create is idempotent");
    for d in g.dirs() {
        assert!(d.is_dir(), "{} missing", d.display());
    }

    let pid = g.spawn(Command::new("sleep").arg("100"));
    g.m.add_task(pid).expect("add_task");
    assert_eq!(g.m.pids().expect("pids"), vec![pid]);
    for d in g.dirs() {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{}",
            d.display()
        );
    }

    assert_eq!(g.m.freezer_state().unwrap(), FreezerState::Thawed);
    g.m.freeze(FreezerState::Frozen).expect("freeze");
    assert_eq!(g.m.freezer_state().unwrap(), FreezerState::Frozen);
    // a frozen task sleeps in the freezer (D on v1 / S on v2, never R)
    let st = proc_state(pid);
    assert!(st == 'D' || st == 'S', "state {st}");
    g.m.freeze(FreezerState::Frozen).expect("freeze twice");
    g.m.freeze(FreezerState::Thawed).expect("thaw");
    assert_eq!(g.m.freezer_state().unwrap(), FreezerState::Thawed);

    // destroy refuses while a process is inside
    assert!(g.m.destroy().is_err());
    g.kill_all();
    assert!(g.m.pids().unwrap().is_empty());
    g.m.destroy().expect("destroy");
    for d in g.dirs() {
        assert!(!d.exists(), "{} still there", d.display());
    }
    g.m.destroy().expect("destroy is idempotent");
}

#[test]
fn pids_are_recursive() {
    let mut g = Guard::new("recursive");
    // child cgroups below ours (as a nested runtime would create); on v2 the processes must sit
    // in leaves, so both go into children
    let mut want = Vec::new();
    for name in ["sub1", "sub2"] {
        let sub = berth_cgroups::manager(Some(&format!("{}/{name}", g.path)), "x").unwrap();
        sub.create().unwrap();
        let pid = g.spawn(Command::new("sleep").arg("100"));
        sub.add_task(pid).unwrap();
        assert_eq!(sub.pids().unwrap(), vec![pid]);
        want.push(pid);
    }
    want.sort();
    assert_eq!(g.m.pids().unwrap(), want);
    g.kill_all();
    // destroy removes the child cgroups too
    g.m.destroy().unwrap();
    for d in g.dirs() {
        assert!(!d.exists());
    }
}

#[test]
fn default_path_and_relative_paths() {
    let m = berth_cgroups::manager(None, "abc").unwrap();
    assert_eq!(m.path().to_str(), Some("/berth/abc"));
    assert!(berth_cgroups::manager(Some("/a/../../x"), "abc").is_err());
    assert!(berth_cgroups::manager(None, "../x").is_err());
    let r = berth_cgroups::manager(Some("rel/x"), "abc").unwrap();
    assert_eq!(r.path().to_str(), Some("rel/x"));
}
