//! OCI hooks: run each hook with the container's state JSON on stdin, its args and env, and
//! kill it when its `timeout` expires.
//!
//! Where each kind runs (runtime spec, config.md "POSIX-platform Hooks"):
//! - `prestart`, `createRuntime`: by the parent, in the runtime's namespaces, once the
//!   container's mounts are made and before pivot_root.
//! - `createContainer`: by the init, in the container's namespaces, before pivot_root.
//! - `startContainer`: by the init, in the container, after `start` and before the exec.
//! - `poststart`: by `start`, after the user process has started (failures are only logged).
//! - `poststop`: by `delete`, after the container is gone (failures are only logged).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use oci_spec::runtime::Hook;

use crate::state::OCI_VERSION;

/// The state JSON given to hooks on stdin.
pub fn state_json(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &std::path::Path,
    annotations: &std::collections::HashMap<String, String>,
) -> String {
    serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": annotations,
    })
    .to_string()
}

/// Run hooks in order; the first failure stops and is returned, naming the hook.
pub fn run(kind: &str, hooks: &[Hook], state: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state).with_context(|| format!("hooks.{kind}[{i}] ({})", h.path().display()))?;
    }
    Ok(())
}

/// Run every hook even when some fail (poststart, poststop: the spec says failures are
/// only logged); each failure is a warning on stderr naming the hook.
pub fn run_all(kind: &str, hooks: &[Hook], state: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state) {
            eprintln!(
                "berth-runtime: warning: hooks.{kind}[{i}] ({}): {e:#}",
                h.path().display()
            );
        }
    }
}

fn run_one(h: &Hook, state: &str) -> Result<()> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(a0) = args.first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, a0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    for e in h.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().context("start")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("failed: {status}");
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {}s", h.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
