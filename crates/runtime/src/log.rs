//! Error and debug lines: to stderr, and to `--log FILE` in text or json (the json format is the
//! one containerd's shim reads back from runc: `{"level","msg","time"}`).

use std::io::Write;
use std::path::PathBuf;

/// Where log lines go.
pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
    debug: bool,
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

/// Install the process's logger (once, from main).
pub fn init(logger: Logger) -> &'static Logger {
    LOGGER.get_or_init(|| logger)
}

/// A debug line (only with `--debug`): to stderr, or to `--log` when given.
pub fn debug(msg: impl FnOnce() -> String) {
    if let Some(l) = LOGGER.get()
        && l.debug
    {
        let msg = msg();
        if l.file.is_some() {
            l.append("debug", &msg);
        } else {
            eprintln!("berth-runtime: debug: {msg}");
        }
    }
}

/// An error line that does not end the command (e.g. from a cleanup).
pub fn error(msg: &str) {
    if let Some(l) = LOGGER.get() {
        l.error(msg);
    } else {
        eprintln!("berth-runtime: {msg}");
    }
}

impl Logger {
    /// A logger for `--log`, `--log-format`, `--debug`.
    pub fn new(file: Option<PathBuf>, format: &str, debug: bool) -> Logger {
        Logger {
            file,
            json: format == "json",
            debug,
        }
    }

    fn line(&self, level: &str, msg: &str) -> String {
        let time = berth_sys::time::now_rfc3339_nanos();
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string() + "\n"
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}\n")
        }
    }

    /// Report an error to stderr and the log file.
    pub fn error(&self, msg: &str) {
        eprintln!("berth-runtime: {msg}");
        self.append("error", msg);
    }

    fn append(&self, level: &str, msg: &str) {
        if let Some(path) = &self.file
            && let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        {
            let _ = f.write_all(self.line(level, msg).as_bytes());
        }
    }
}
