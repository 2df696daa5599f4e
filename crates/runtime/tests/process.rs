//! The container's process as `run` starts it: pid, hostname, identity, environment, working
//! directory, exit status, rlimits and preserved descriptors.

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{Bundle, WAIT, exit_code, have_cap_sys_resource, wait_until};
use serde_json::json;

#[test]
fn process_is_pid_1() {
    let mut b = Bundle::new("pid1");
    b.sh("echo $$");
    let out = b.run().ok();
    assert_eq!(out.stdout, "1\n");
}

#[test]
fn stdout_and_stderr_are_the_runtimes() {
    let mut b = Bundle::new("stdio");
    b.sh("echo to-out; echo to-err >&2");
    let out = b.run().ok();
    assert_eq!(out.stdout, "to-out\n");
    assert_eq!(out.stderr, "to-err\n");
}

#[test]
fn hostname_comes_from_config() {
    let mut b = Bundle::new("hostname");
    b.cfg["hostname"] = json!("berth-test-host");
    b.args(&["hostname"]);
    let out = b.run().ok();
    assert_eq!(out.stdout, "berth-test-host\n");
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let mut b = Bundle::new("user");
    b.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 2000]});
    b.sh("id -u; id -g; id -G");
    let out = b.run().ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1000", "{out:?}");
    assert_eq!(lines[1], "1001", "{out:?}");
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["1001", "2000", "5"], "{out:?}");
}

#[test]
fn root_by_default_without_supplementary_groups() {
    let mut b = Bundle::new("root-groups");
    b.sh("id -u; id -g; id -G");
    let out = b.run().ok();
    assert_eq!(out.stdout, "0\n0\n0\n");
}

#[test]
fn env_is_passed_and_home_comes_from_passwd() {
    let mut b = Bundle::new("env");
    b.cfg["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("GREETING=hello world"));
    b.sh(r#"echo "$GREETING"; echo "$HOME"; echo "$PATH""#);
    let out = b.run().ok();
    assert_eq!(
        out.stdout,
        "hello world\n/root\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );

    // Another user gets its own home; no host variable leaks in.
    b.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh(r#"echo "$HOME"; env | grep -c CARGO_ || true"#);
    let out = b.run().ok();
    assert_eq!(out.stdout, "/home/user\n0\n");
}

#[test]
fn home_from_env_is_kept() {
    let mut b = Bundle::new("home-env");
    b.cfg["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("HOME=/somewhere"));
    b.sh(r#"echo "$HOME""#);
    assert_eq!(b.run().ok().stdout, "/somewhere\n");
}

#[test]
fn cwd_is_set() {
    let mut b = Bundle::new("cwd");
    b.cfg["process"]["cwd"] = json!("/etc");
    b.args(&["pwd"]);
    assert_eq!(b.run().ok().stdout, "/etc\n");
}

#[test]
fn missing_cwd_is_created() {
    // As runc: the cwd is created (even with root.readonly, which the default spec sets).
    let mut b = Bundle::new("cwd-missing");
    b.cfg["process"]["cwd"] = json!("/work/new/dir");
    b.sh("pwd; stat -c %F .");
    let out = b.run();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "/work/new/dir\ndirectory\n");
}

#[test]
fn missing_cwd_is_created_on_a_writable_root() {
    let mut b = Bundle::new("cwd-missing-rw");
    b.cfg["root"]["readonly"] = json!(false);
    b.cfg["process"]["cwd"] = json!("/work/new/dir");
    b.args(&["pwd"]);
    assert_eq!(b.run().ok().stdout, "/work/new/dir\n");
}

#[test]
fn exit_code_is_the_containers() {
    let mut b = Bundle::new("exit3");
    b.sh("exit 3");
    let out = b.run();
    assert_eq!(out.code, 3, "{out:?}");
    b.args(&["false"]);
    assert_eq!(b.run().code, 1);
    // The state is gone after a foreground run.
    assert!(!b.state_dir_exists(&b.id));
}

#[test]
fn killed_by_a_signal_is_128_plus_n() {
    // Without a pid namespace the shell is not an init and can kill itself.
    let mut b = Bundle::new("sigkill-self");
    b.without_ns("pid");
    b.sh("kill -9 $$; echo survived");
    let out = b.run();
    assert_eq!(out.code, 128 + 9, "{out:?}");
    assert_eq!(out.stdout, "");
}

#[test]
fn killed_from_the_host_while_run_waits() {
    let mut b = Bundle::new("sigkill-host");
    b.args(&["sleep", "100"]);
    b.save();
    let mut child = Command::new(*common::BIN)
        .args(b.verb_args("run"))
        .arg(&b.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    b.wait_status(&b.id, "running");
    b.rt(&["kill", &b.id, "KILL"]).ok();
    let mut status = None;
    wait_until(WAIT, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        panic!("run did not return after the container was killed");
    };
    assert_eq!(exit_code(status), 137);
}

#[test]
fn rlimit_nofile_can_be_lowered() {
    let mut b = Bundle::new("rlimit-low");
    b.cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100}]);
    b.sh("ulimit -n; ulimit -Hn");
    assert_eq!(b.run().ok().stdout, "100\n100\n");

    b.cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 50, "hard": 100}]);
    assert_eq!(b.run().ok().stdout, "50\n100\n");
}

#[test]
fn raising_the_hard_rlimit_without_cap_sys_resource_fails_at_create() {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) }, 0);
    let hard = cur.rlim_max + 1;
    let mut b = Bundle::new("rlimit-raise");
    b.cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": hard, "hard": hard}]);
    b.sh("ulimit -Hn");
    if have_cap_sys_resource() {
        // Allowed up to fs.nr_open when the runtime holds CAP_SYS_RESOURCE.
        assert_eq!(b.run().ok().stdout, format!("{hard}\n"));
        return;
    }
    let out = b.create(&b.id).failed();
    assert!(
        out.stderr.contains("rlimit") && out.stderr.contains("RLIMIT_NOFILE")
            || out.stderr.contains("Nofile"),
        "error should name the rlimit: {out:?}"
    );
    assert!(out.stderr.contains(&hard.to_string()), "{out:?}");
    assert!(!b.state_dir_exists(&b.id));
}

/// A pipe whose ends are close-on-exec in this process.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: a valid out-array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two new descriptors nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// `run --preserve-fds N` with `fds[i]` at descriptor 3+i; returns the run and what each pipe
/// received.
fn run_with_fds(b: &Bundle, preserve: u32, nfds: usize) -> (common::Out, Vec<String>) {
    b.save();
    let pipes: Vec<(OwnedFd, OwnedFd)> = (0..nfds).map(|_| pipe()).collect();
    let writers: Vec<i32> = pipes.iter().map(|(_, w)| w.as_raw_fd()).collect();
    let mut cmd = Command::new(*common::BIN);
    cmd.args(b.verb_args("run"))
        .arg("--preserve-fds")
        .arg(preserve.to_string())
        .arg(&b.id);
    // SAFETY: the closure only calls dup2 and fcntl, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // First move every writer above the target range, then into place, so a writer
            // that already sits at 3.. is not clobbered.
            let mut high = Vec::new();
            for &w in &writers {
                let h = libc::fcntl(w, libc::F_DUPFD_CLOEXEC, 100);
                if h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push(h);
            }
            for (i, &h) in high.iter().enumerate() {
                if libc::dup2(h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let out = common::run_cmd(&mut cmd);
    let mut got = Vec::new();
    for (r, w) in pipes {
        drop(w);
        let mut s = String::new();
        std::fs::File::from(r).read_to_string(&mut s).unwrap();
        got.push(s);
    }
    (out, got)
}

#[test]
fn preserve_fds_passes_descriptor_3() {
    let mut b = Bundle::new("preserve-fds");
    b.sh("echo via-proc > /proc/self/fd/3; echo via-redirect >&3");
    let (out, got) = run_with_fds(&b, 1, 1);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(got[0], "via-proc\nvia-redirect\n");
}

#[test]
fn only_the_preserved_descriptors_are_passed() {
    let mut b = Bundle::new("preserve-fds-only");
    // fd 3 and 4 are open in the runtime; only 3 is preserved.
    b.sh("echo three >&3; if echo four >&4; then echo fd4-open; else echo fd4-closed; fi");
    let (out, got) = run_with_fds(&b, 1, 2);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(got[0], "three\n");
    assert_eq!(got[1], "");
    assert_eq!(out.stdout, "fd4-closed\n", "{out:?}");
}

#[test]
fn init_leads_its_own_session_and_sees_the_containers_dev_null() {
    // As runc's init: a session of its own (CRIU refuses to checkpoint a tree whose session
    // leader is outside), and a /dev/null stdin (run_cmd gives the host's) reopened from the
    // container's /dev, so /proc/self/fd/0 names a file inside the container.
    let mut b = Bundle::new("session");
    b.sh("set -- $(cat /proc/self/stat); echo sid=$6; \
          echo in=$(stat -L -c %d:%i /proc/self/fd/0) null=$(stat -c %d:%i /dev/null)");
    let out = b.run().ok();
    assert!(out.stdout.contains("sid=1\n"), "{}", out.stdout);
    let line = out.stdout.lines().find(|l| l.starts_with("in=")).unwrap();
    let (stdin, null) = line.split_once(' ').unwrap();
    assert_eq!(
        stdin.trim_start_matches("in="),
        null.trim_start_matches("null="),
        "{line}"
    );
}
