//! Logs in Docker's json-file format: one JSON object per line,
//! `{"log":"hi\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}`, in
//! `<id>-json.log`, rotated by size to `<id>-json.log.1` .. `.N-1` (`max-size`, `max-file`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::util::rfc3339;

/// One log entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogEntry {
    /// The line, with its `\n` (the last one of a stream may lack it).
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
}

/// The log file of a container.
pub(crate) fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

/// Appends entries to the log, rotating by size.
pub(crate) struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
}

impl LogWriter {
    pub(crate) fn open(path: PathBuf, max_size: u64, max_files: u32) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            file,
            size,
            max_size,
            max_files: max_files.max(1),
        })
    }

    /// Writes one entry per line of `data` (a trailing part without `\n` is its own entry).
    pub(crate) fn write(&mut self, stream: &str, data: &[u8]) -> io::Result<()> {
        let time = rfc3339(SystemTime::now());
        for line in data.split_inclusive(|b| *b == b'\n') {
            let e = LogEntry {
                log: String::from_utf8_lossy(line).into_owned(),
                stream: stream.to_string(),
                time: time.clone(),
            };
            let mut buf = serde_json::to_vec(&e).expect("an entry serialises");
            buf.push(b'\n');
            if self.max_size > 0 && self.size + buf.len() as u64 > self.max_size && self.size > 0 {
                self.rotate()?;
            }
            self.file.write_all(&buf)?;
            self.size += buf.len() as u64;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files <= 1 {
            self.file.set_len(0)?;
            self.file.seek(SeekFrom::Start(0))?;
            self.size = 0;
            return Ok(());
        }
        let name = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = fs::remove_file(name(self.max_files - 1));
        for n in (1..self.max_files - 1).rev() {
            let _ = fs::rename(name(n), name(n + 1));
        }
        fs::rename(&self.path, name(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// What `logs` shows.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Keep reading new entries while the container runs (`-f`).
    pub follow: bool,
    /// Only the last N entries (`--tail`).
    pub tail: Option<usize>,
    /// Only entries at or after this time (`--since`).
    pub since: Option<SystemTime>,
    /// Only entries before this time (`--until`); following stops once it has passed.
    pub until: Option<SystemTime>,
    /// Set from another thread to stop following (a server whose client went away).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl LogOptions {
    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
            || self.until.is_some_and(|u| SystemTime::now() >= u)
    }
}

fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for n in (1..100).rev() {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
        if p.exists() {
            out.push(p);
        }
    }
    out.push(path.to_path_buf());
    out
}

fn parse_line(line: &str, opts: &LogOptions) -> Option<LogEntry> {
    let e: LogEntry = serde_json::from_str(line).ok()?;
    if opts.since.is_some() || opts.until.is_some() {
        let t = crate::util::parse_rfc3339(&e.time);
        if let (Some(s), Some(t)) = (opts.since, t)
            && t < s
        {
            return None;
        }
        if let (Some(u), Some(t)) = (opts.until, t)
            && t >= u
        {
            return None;
        }
    }
    Some(e)
}

/// Reads the log at `path`, calling `out` per entry; with `follow`, keeps reading until
/// `running()` is false and the file has no more data.
pub(crate) fn read(
    path: &Path,
    opts: &LogOptions,
    running: &dyn Fn() -> bool,
    out: &mut dyn FnMut(&LogEntry) -> io::Result<()>,
) -> io::Result<()> {
    let mut entries = Vec::new();
    for f in files(path) {
        let Ok(file) = File::open(&f) else { continue };
        for line in BufReader::new(file).lines() {
            if let Some(e) = parse_line(&line?, opts) {
                entries.push(e);
            }
        }
    }
    let skip = opts.tail.map_or(0, |t| entries.len().saturating_sub(t));
    for e in &entries[skip..] {
        out(e)?;
    }
    if !opts.follow || opts.cancelled() {
        return Ok(());
    }
    // Follow: from the end of the current file; reopen when it is rotated.
    let mut file = File::open(path)?;
    let mut ino = file_ino(&file);
    let mut pos = file.seek(SeekFrom::End(0))?;
    let mut partial = String::new();
    loop {
        let mut reader = BufReader::new(&file);
        reader.seek(SeekFrom::Start(pos))?;
        let mut got = false;
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line)?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            got = true;
            partial.push_str(&line);
            if partial.ends_with('\n') {
                if let Some(e) = parse_line(partial.trim_end(), opts) {
                    out(&e)?;
                }
                partial.clear();
            }
        }
        if got && !opts.cancelled() {
            continue;
        }
        if got {
            return Ok(());
        }
        if let Ok(f) = File::open(path)
            && file_ino(&f) != ino
        {
            file = f;
            ino = file_ino(&file);
            pos = 0;
            continue;
        }
        if !running() || opts.cancelled() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn file_ino(f: &File) -> u64 {
    use std::os::unix::fs::MetadataExt;
    f.metadata().map(|m| m.ino()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_rotates_reads() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x-json.log");
        let mut w = LogWriter::open(p.clone(), 200, 3).unwrap();
        for i in 0..10 {
            w.write("stdout", format!("line {i}\n").as_bytes()).unwrap();
        }
        w.write("stderr", b"a\nb").unwrap();
        assert!(d.path().join("x-json.log.1").exists());
        assert!(!d.path().join("x-json.log.3").exists());
        let mut got = Vec::new();
        read(&p, &LogOptions::default(), &|| false, &mut |e| {
            got.push(e.log.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(got.last().unwrap(), "b");
        assert!(got.len() < 12, "rotation dropped the oldest: {got:?}");
        let mut tail = Vec::new();
        let opts = LogOptions {
            tail: Some(2),
            ..Default::default()
        };
        read(&p, &opts, &|| false, &mut |e| {
            tail.push(e.log.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(tail, vec!["a\n", "b"]);
    }
}
