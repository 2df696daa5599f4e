//! Driving `berth-runtime` through its command line, as containerd drives runc.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};

/// The OCI runtime binary and its state directory.
#[derive(Clone, Debug)]
pub(crate) struct Runtime {
    pub(crate) bin: PathBuf,
    pub(crate) root: PathBuf,
    /// A read-only detached clone of `bin`, made at the first command: the runtime exec'd
    /// from it finds itself protected (CVE-2019-5736) and skips re-executing itself from a
    /// copy before `create` and `exec` (one exec less per container start). `None` where it
    /// cannot be made (no CAP_SYS_ADMIN, old kernel): the runtime protects itself.
    pub(crate) protected: Arc<OnceLock<Option<OwnedFd>>>,
}

impl Runtime {
    pub(crate) fn new(bin: PathBuf, root: PathBuf) -> Self {
        Runtime {
            bin,
            root,
            protected: Arc::new(OnceLock::new()),
        }
    }

    /// A command `berth-runtime --root ROOT <args>`.
    pub(crate) fn command(&self) -> Command {
        let protected = self.protected.get_or_init(|| {
            let c = std::ffi::CString::new(self.bin.as_os_str().as_bytes()).ok()?;
            berth_sys::exe::readonly_clone(&c).ok()
        });
        let mut c = match protected {
            Some(fd) => {
                // The child resolves the path in its own (inherited) descriptor table before
                // exec closes the descriptor; argv[0] stays the binary's path.
                let mut c = Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                c.arg0(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        c.arg("--root").arg(&self.root);
        c
    }

    /// Runs a verb with stdio closed, returning stdout; a failure carries its stderr.
    pub(crate) fn run(&self, verb: &str, args: &[&str]) -> Result<String> {
        let began = std::time::Instant::now();
        let out = self
            .command()
            .arg(verb)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Runtime {
                verb: verb.to_string(),
                message: format!("run {}: {e}", self.bin.display()),
            })?;
        tracing::debug!(
            runtime = %self.bin.display(),
            verb,
            ?args,
            status = out.status.code(),
            elapsed_ms = began.elapsed().as_secs_f64() * 1e3,
            "berth-runtime"
        );
        if !out.status.success() {
            return Err(runtime_error(verb, &String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kill ID SIG`.
    pub(crate) fn kill(&self, id: &str, sig: i32, all: bool) -> Result<()> {
        let s = sig.to_string();
        if all {
            self.run("kill", &["--all", id, &s]).map(drop)
        } else {
            self.run("kill", &[id, &s]).map(drop)
        }
    }

    /// `delete --force ID` started, not waited for (see [`Deleting::wait`]), so that the
    /// caller's own cleanup runs meanwhile; `None` when the runtime does not know `id`.
    pub(crate) fn spawn_delete(&self, id: &str) -> Result<Option<Deleting>> {
        if !self.root.join(id).exists() {
            return Ok(None);
        }
        let child = self
            .command()
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Runtime {
                verb: "delete".into(),
                message: format!("run {}: {e}", self.bin.display()),
            })?;
        Ok(Some(Deleting(child)))
    }

    /// `delete --force ID`; a container the runtime does not know is fine.
    pub(crate) fn delete(&self, id: &str) -> Result<()> {
        if !self.root.join(id).exists() {
            return Ok(());
        }
        self.run("delete", &["--force", id]).map(drop)
    }
}

/// A `berth-runtime delete` under way.
pub(crate) struct Deleting(std::process::Child);

impl Deleting {
    /// Waits for it; its failure carries its stderr.
    pub(crate) fn wait(self) -> Result<()> {
        let out = self.0.wait_with_output().map_err(|e| Error::Runtime {
            verb: "delete".into(),
            message: e.to_string(),
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(runtime_error(
                "delete",
                &String::from_utf8_lossy(&out.stderr),
            ))
        }
    }
}

/// Turns the runtime's stderr into an error: exec failures become 126/127 as in Docker.
pub(crate) fn runtime_error(verb: &str, stderr: &str) -> Error {
    let message = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("failed")
        .trim()
        .trim_start_matches("berth-runtime: ")
        .to_string();
    if message.contains("exec: ") {
        if message.contains("not found in $PATH") || message.contains("no such file or directory") {
            return Error::Command { code: 127, message };
        }
        if message.contains("permission denied") || message.contains("is a directory") {
            return Error::Command { code: 126, message };
        }
    }
    Error::Runtime {
        verb: verb.to_string(),
        message,
    }
}

/// Finds the runtime: the given path, else `berth-runtime` next to the running binary, else
/// on PATH.
pub fn locate_runtime(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(Error::Other(format!(
                "--runtime {}: no such file",
                p.display()
            )))
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        let p = exe.with_file_name("berth-runtime");
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("berth-runtime");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::Other(
        "berth-runtime not found next to berth or on PATH (use --runtime)".into(),
    ))
}
