//! apply() and stats() against the real cgroup filesystem (needs root).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_cgroups::{Error, Layout};
use common::Guard;
use oci_spec::runtime::LinuxResources;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("resources json")
}

/// The directory of `g` for `controller` (v1), or the unified one (v2 / hybrid "unified").
fn dir(g: &Guard, controller: &str) -> PathBuf {
    let rel = g.path.trim_start_matches('/');
    match Layout::detect().unwrap() {
        Layout::V2 { root } => root.join(rel),
        Layout::V1 {
            hierarchies,
            unified,
        } => {
            if controller == "unified" {
                return unified.expect("hybrid").join(rel);
            }
            hierarchies
                .iter()
                .find(|h| h.has(controller))
                .expect("controller mounted")
                .mount_point
                .join(rel)
        }
    }
}

fn v2() -> bool {
    matches!(Layout::detect().unwrap(), Layout::V2 { .. })
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Poll `f` every 20 ms until it is true or `limit` has passed; whether it became true.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Generous: an emulated (TCG) machine forks and execs slowly.
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn memory_limit_bites() {
    let mut g = Guard::new("memory");
    g.m.apply(&res(r#"{"memory":{"limit":52428800,"swap":52428800}}"#))
        .expect("apply memory");
    if v2() {
        assert_eq!(read(dir(&g, "memory").join("memory.max")), "52428800");
        let swap = dir(&g, "memory").join("memory.swap.max");
        if swap.exists() {
            assert_eq!(read(swap), "0");
        }
    } else {
        assert_eq!(
            read(dir(&g, "memory").join("memory.limit_in_bytes")),
            "52428800"
        );
        assert_eq!(
            read(dir(&g, "memory").join("memory.memsw.limit_in_bytes")),
            "52428800"
        );
    }
    assert_eq!(g.m.oom_kills().unwrap(), 0);
    let pid = g.spawn_inside(
        "exec python3 -c 'b = bytearray(200 * 1024 * 1024); b[::4096] = b\"x\" * len(b[::4096])'",
    );
    let st = g.wait(pid, Duration::from_secs(60)).expect("exits");
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");
    assert!(g.m.oom_kills().unwrap() >= 1);
    let s = g.m.stats().unwrap();
    assert_eq!(s.memory.usage.limit, 52_428_800);
    // the peak reached the limit (failcnt is not reliably bumped by every kernel)
    assert!(s.memory.usage.max >= 50 * 1024 * 1024 - 4096 * 64, "{s:?}");
}

#[test]
fn pids_limit_bites() {
    let mut g = Guard::new("pids");
    g.m.apply(&res(r#"{"pids":{"limit":5}}"#))
        .expect("apply pids");
    assert_eq!(read(dir(&g, "pids").join("pids.max")), "5");
    // The sleeps outlast the test (the guard kills them), so the limit stays reached.
    g.spawn_inside("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 600 & done; sleep 600");
    let events_file = dir(&g, "pids").join("pids.events");
    let max = || -> u64 {
        read(events_file.clone())
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .unwrap()
            .parse()
            .unwrap()
    };
    // A fork refused by the limit counts in pids.events.
    assert!(
        wait_until(DEADLINE, || max() >= 1),
        "no fork hit the limit: {}",
        read(events_file.clone())
    );
    let n = g.m.pids().unwrap().len();
    assert!(n <= 5, "{n} tasks");
    let s = g.m.stats().unwrap();
    assert_eq!(s.pids.limit, 5);
    // pids.current also counts exiting (zombie) tasks that cgroup.procs no longer lists
    assert!((n..=5).contains(&(s.pids.current as usize)), "{s:?}");
    // -1 and 0 mean unlimited
    g.m.apply(&res(r#"{"pids":{"limit":-1}}"#)).unwrap();
    assert_eq!(read(dir(&g, "pids").join("pids.max")), "max");
}

#[test]
fn cpu_limits() {
    let g = Guard::new("cpu");
    g.m.apply(&res(
        r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0","mems":"0"}}"#,
    ))
    .expect("apply cpu");
    if v2() {
        let d = dir(&g, "cpu");
        assert_eq!(read(d.join("cpu.weight")), "20");
        assert_eq!(read(d.join("cpu.max")), "50000 100000");
        assert_eq!(read(d.join("cpuset.cpus")), "0");
    } else {
        let d = dir(&g, "cpu");
        assert_eq!(read(d.join("cpu.shares")), "512");
        assert_eq!(read(d.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(d.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(dir(&g, "cpuset").join("cpuset.cpus")), "0");
        assert_eq!(read(dir(&g, "cpuset").join("cpuset.mems")), "0");
    }
    // a smaller period with a quota: runc's retry order
    g.m.apply(&res(r#"{"cpu":{"quota":20000,"period":50000}}"#))
        .expect("apply cpu again");
}

#[test]
fn cpu_stats_and_json() {
    let mut g = Guard::new("stats");
    g.spawn_inside("i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; sleep 100");
    // The shell is in the cgroup (spawn_inside) and spins: its CPU time shows up.
    let mut s = g.m.stats().expect("stats");
    assert!(
        wait_until(DEADLINE, || {
            s = g.m.stats().expect("stats");
            s.cpu.usage.total > 0 && s.memory.usage.usage > 0
        }),
        "{s:?}"
    );
    assert!(s.cpu.usage.total > 0, "{s:?}");
    assert!(s.memory.usage.usage > 0);
    assert!(!s.memory.raw.is_empty());
    assert!(s.pids.current >= 1, "{s:?}");
    let j = serde_json::to_value(&s).unwrap();
    assert!(j["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert!(j["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(j["memory"]["raw"].is_object());
}

#[test]
fn unsupported_and_invalid() {
    let g = Guard::new("unsupported");
    // net_cls/net_prio are not mounted here (and do not exist on v2)
    let has_net_cls = match Layout::detect().unwrap() {
        Layout::V1 { hierarchies, .. } => hierarchies.iter().any(|h| h.has("net_cls")),
        Layout::V2 { .. } => false,
    };
    if !has_net_cls {
        let e = g.m.apply(&res(r#"{"network":{"classID":1048577}}"#));
        assert!(matches!(e, Err(Error::Unsupported(_))), "{e:?}");
    }
    let e = g.m.apply(&res(r#"{"memory":{"limit":-5}}"#));
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let e = g.m.apply(&res(r#"{"unified":{"../../x.y":"1"}}"#));
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    let e =
        g.m.apply(&res(r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#));
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    // unified memory.max: fine on v2, unsupported on v1 (the unified hierarchy has no memory)
    let e = g.m.apply(&res(r#"{"unified":{"memory.max":"104857600"}}"#));
    if v2() {
        e.expect("unified on v2");
        assert_eq!(read(dir(&g, "memory").join("memory.max")), "104857600");
    } else {
        assert!(matches!(e, Err(Error::Unsupported(_))), "{e:?}");
    }
    // an empty resources object is a no-op
    g.m.apply(&LinuxResources::default()).expect("empty");
}

#[test]
fn devices_v1() {
    if v2() {
        return; // see devices_v2
    }
    let g = Guard::new("devices");
    g.m.apply(&res(
        r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#,
    ))
    .expect("apply devices");
    assert_eq!(read(dir(&g, "devices").join("devices.list")), "c 1:3 rwm");
}

/// On v2 the rules are an eBPF program: a process in the cgroup may open /dev/null (1:3) but
/// not /dev/zero (1:5); a second apply replaces the program rather than adding to it.
#[test]
fn devices_v2() {
    if !v2() {
        return;
    }
    let mut g = Guard::new("devices-v2");
    let rules = |minor: u32| {
        res(&format!(
            r#"{{"devices":[{{"allow":false,"access":"rwm"}},{{"allow":true,"type":"c","major":1,"minor":{minor},"access":"rwm"}}]}}"#
        ))
    };
    let out = std::env::temp_dir().join(format!("berth-devices-v2-{}", std::process::id()));
    // output goes to a regular file: /dev/null itself is denied by the second rule set
    let junk = out.with_extension("junk");
    let try_open = |g: &mut Guard| {
        let _ = std::fs::remove_file(&out);
        let pid = g.spawn_inside(&format!(
            "r=''; for d in null zero; do head -c 1 /dev/$d >{junk} 2>&1; r=\"$r$d=$? \"; done; \
             echo \"$r\" > {}",
            out.display(),
            junk = junk.display()
        ));
        g.wait(pid, Duration::from_secs(60)).expect("exits");
        read(out.clone())
    };
    g.m.apply(&rules(3)).expect("apply devices");
    assert_eq!(try_open(&mut g), "null=0 zero=1");
    g.m.apply(&rules(5)).expect("apply devices again");
    assert_eq!(try_open(&mut g), "null=1 zero=0");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&junk);
}

#[test]
fn hugetlb_limit() {
    if !std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        return;
    }
    let g = Guard::new("hugetlb");
    g.m.apply(&res(
        r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#,
    ))
    .expect("apply hugetlb");
    assert_eq!(read(dir(&g, "unified").join("hugetlb.2MB.max")), "4194304");
    assert!(g.m.stats().unwrap().hugetlb.contains_key("2MB"));
}
