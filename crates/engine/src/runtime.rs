//! Driving `berth-runtime` through its command line, as containerd drives runc.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The OCI runtime binary and its state directory.
#[derive(Clone, Debug)]
pub(crate) struct Runtime {
    pub(crate) bin: PathBuf,
    pub(crate) root: PathBuf,
}

impl Runtime {
    /// A command `berth-runtime --root ROOT <args>`.
    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
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

    /// `delete --force ID`; a container the runtime does not know is fine.
    pub(crate) fn delete(&self, id: &str) -> Result<()> {
        if !self.root.join(id).exists() {
            return Ok(());
        }
        self.run("delete", &["--force", id]).map(drop)
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
