//! Links, addresses and routes through iproute2's `ip -batch -`: one process per namespace
//! per operation (see ARCHITECTURE.md, crates/network, for why not netlink directly).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Runs `tool args` with `input` on stdin, in the namespace of `netns` if given.
pub(crate) fn run(tool: &str, args: &[&str], input: &str, netns: Option<&File>) -> Result<String> {
    let mut c = Command::new(tool);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(f) = netns {
        let fd = f.as_raw_fd();
        // SAFETY: setns is async-signal-safe and touches no memory of the parent.
        unsafe {
            c.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let err = |msg: String| Error::Tool {
        tool: format!("{tool} {}", args.join(" ")),
        msg,
    };
    let mut child = c.spawn().map_err(|e| {
        err(if e.kind() == std::io::ErrorKind::NotFound {
            format!("{tool} not found: install {}", package_of(tool))
        } else {
            e.to_string()
        })
    })?;
    let mut stdin = child.stdin.take().expect("piped");
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            if input.is_empty() {
                String::new()
            } else {
                format!(" (input: {})", input.trim().replace('\n', "; "))
            }
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn package_of(tool: &str) -> &'static str {
    match tool {
        "nft" => "nftables",
        "ip" => "iproute2",
        _ => "iptables",
    }
}

/// `ip -batch -` with `cmds` (one command a line).
pub(crate) fn ip_batch(cmds: &str, netns: Option<&File>) -> Result<()> {
    run("ip", &["-batch", "-"], cmds, netns).map(drop)
}

/// Whether a host interface exists.
pub(crate) fn exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// The alias of a link (`ip link set NAME alias A`), if it has one.
pub(crate) fn alias(name: &str) -> Option<String> {
    let a = std::fs::read_to_string(
        std::path::Path::new("/sys/class/net")
            .join(name)
            .join("ifalias"),
    )
    .ok()?;
    let a = a.trim_end_matches('\n');
    (!a.is_empty()).then(|| a.to_string())
}

/// Writes a sysctl under /proc/sys.
pub(crate) fn sysctl(key: &str, value: &str) -> Result<()> {
    let p = std::path::Path::new("/proc/sys").join(key.replace('.', "/"));
    if std::fs::read_to_string(&p).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&p, value).map_err(crate::error::io_err("write", p))
}
