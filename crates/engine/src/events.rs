//! The event log: every container transition and image, network and volume operation, in
//! Docker's event shape (the Engine API's `/events` messages), appended to
//! `ROOT/events/events.log` as JSON lines. Any process appends and any process reads, with a
//! follow cursor that survives rotation.
//!
//! ```text
//! ROOT/events/lock          flock: appends and rotation
//! ROOT/events/events.log    the newest events; at MAX_LOG bytes it becomes events.log.1
//! ROOT/events/events.log.1  the previous ones (so the log never holds more than 2 x MAX_LOG)
//! ```
//!
//! Appending never fails the operation it records: a full disk or a broken log loses events,
//! not containers.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::util::Flock;

/// Size at which the log is rotated.
const MAX_LOG: u64 = 1 << 20;

/// Who an event is about: an ID and attributes (`name`, `image`, `exitCode`, labels, ...).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Actor {
    /// The object's ID (container or network ID, image reference or ID, volume name).
    #[serde(rename = "ID")]
    pub id: String,
    /// Its attributes.
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event, as Docker's Engine API sends it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    /// `container`, `image`, `network` or `volume`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// What happened: `create`, `start`, `die`, `pull`, `connect`, ...
    #[serde(rename = "Action")]
    pub action: String,
    /// Who it happened to.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// Always `local`.
    pub scope: String,
    /// Unix seconds.
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// An event of now.
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Event {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            scope: "local".into(),
            time: now.as_secs() as i64,
            time_nano: now.as_nanos() as i64,
        }
    }

    /// When it happened.
    pub fn when(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.time_nano.max(0) as u64)
    }

    /// The message as the Engine API before v1.52 sends it: with the deprecated `status`
    /// (the action), `id` (the actor's ID) for container and image events, and `from` (the
    /// image) for container events.
    pub fn with_legacy_fields(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("an event serialises");
        if self.kind == "container" || self.kind == "image" {
            v["status"] = self.action.clone().into();
            v["id"] = self.actor.id.clone().into();
        }
        if self.kind == "container" {
            v["from"] = self
                .actor
                .attributes
                .get("image")
                .cloned()
                .unwrap_or_default()
                .into();
        }
        v
    }
}

/// Which events [`EventLog::read`] returns.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    /// Only events at or after this time.
    pub since: Option<SystemTime>,
    /// Only events before this time; reading stops there, also when following.
    pub until: Option<SystemTime>,
    /// Wait for new events (until `until`, or until the callback fails).
    pub follow: bool,
    /// Set from another thread to stop following (a server whose client went away).
    pub cancel: Option<Arc<AtomicBool>>,
}

/// The event log of one root.
#[derive(Clone, Debug)]
pub struct EventLog {
    dir: PathBuf,
}

impl EventLog {
    /// The log under `root/events`.
    pub fn new(root: &Path) -> Self {
        EventLog {
            dir: root.join("events"),
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.join("events.log")
    }

    fn old(&self) -> PathBuf {
        self.dir.join("events.log.1")
    }

    /// Appends an event (errors are swallowed: see the module's doc).
    pub fn append(&self, e: &Event) {
        let _ = self.try_append(e);
    }

    fn try_append(&self, e: &Event) -> io::Result<()> {
        if !self.dir.is_dir() {
            crate::util::private_dir(&self.dir)?;
        }
        let _lock = Flock::exclusive(&self.dir.join("lock"))?;
        let log = self.log();
        if fs::metadata(&log).is_ok_and(|m| m.len() >= MAX_LOG) {
            fs::rename(&log, self.old())?;
        }
        let mut line = serde_json::to_vec(e).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log)?;
        f.write_all(&line)
    }

    /// Calls `out` for each event matching `q` and `filter`, oldest first; with `q.follow`,
    /// then waits for new ones (across rotations) until `q.until` passes or `out` fails.
    pub fn read(
        &self,
        q: &EventQuery,
        filter: &dyn Fn(&Event) -> bool,
        out: &mut dyn FnMut(&Event) -> io::Result<()>,
    ) -> io::Result<()> {
        let wanted = |e: &Event| {
            q.since.is_none_or(|s| e.when() >= s)
                && q.until.is_none_or(|u| e.when() < u)
                && filter(e)
        };
        // Both files are opened under the lock, so no rotation falls between them.
        let (old, cur) = {
            let _lock = if self.dir.is_dir() {
                Some(Flock::exclusive(&self.dir.join("lock"))?)
            } else {
                None
            };
            (File::open(self.old()).ok(), File::open(self.log()).ok())
        };
        if let Some(f) = old {
            for_each_line(&mut BufReader::new(f), &mut |e| {
                if wanted(&e) { out(&e) } else { Ok(()) }
            })?;
        }
        let mut cur = cur.map(BufReader::new);
        if let Some(r) = &mut cur {
            for_each_line(r, &mut |e| if wanted(&e) { out(&e) } else { Ok(()) })?;
        }
        if !q.follow {
            return Ok(());
        }
        loop {
            if q.until.is_some_and(|u| SystemTime::now() >= u)
                || q.cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
            match &mut cur {
                Some(r) => {
                    for_each_line(r, &mut |e| if wanted(&e) { out(&e) } else { Ok(()) })?;
                    // Rotated: what our file still had is read; go on with the new one.
                    let ino = r.get_ref().metadata()?.ino();
                    if fs::metadata(self.log()).is_ok_and(|m| m.ino() != ino) {
                        cur = File::open(self.log()).ok().map(BufReader::new);
                    }
                }
                None => cur = File::open(self.log()).ok().map(BufReader::new),
            }
        }
    }
}

/// Docker's event filters (`--filter KEY=VALUE`, the API's `filters`): values of one key
/// are alternatives, keys must all match. `container`, `image`, `network` and `volume` match
/// an ID (or its prefix, for containers and networks) or a name; `event` the action without
/// its `: detail` suffix (`exec_start: sh` is `exec_start`); `label` `KEY` or `KEY=VALUE`;
/// `type` the kind.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    by: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// Parses `KEY=VALUE` filters; an unknown key or a missing `=` is an error naming it.
    pub fn parse(filters: &[String]) -> crate::Result<Self> {
        const KEYS: [&str; 8] = [
            "container",
            "event",
            "image",
            "label",
            "network",
            "type",
            "volume",
            "scope",
        ];
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in filters {
            let Some((k, v)) = f.split_once('=') else {
                return Err(crate::error::invalid(
                    "--filter",
                    format!("{f:?}: a filter is KEY=VALUE"),
                ));
            };
            if !KEYS.contains(&k) {
                return Err(crate::error::invalid(
                    "--filter",
                    format!("invalid filter {k:?} (filters: {})", KEYS.join(", ")),
                ));
            }
            by.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(EventFilter { by })
    }

    /// Whether `e` passes every filter.
    pub fn matches(&self, e: &Event) -> bool {
        let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str).unwrap_or("");
        let any = |key: &str, f: &dyn Fn(&str) -> bool| {
            self.by.get(key).is_none_or(|vs| vs.iter().any(|v| f(v)))
        };
        let action = e.action.split(':').next().unwrap_or("");
        // A name or (for these kinds) an ID, or a prefix of the ID.
        let named = |kind: &str, v: &str| {
            e.kind == kind && (e.actor.id.starts_with(v) || attr("name") == v)
        };
        let strip_tag = |s: &str| match s.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => name.to_string(),
            _ => s.to_string(),
        };
        let image = |v: &str| {
            let name = if e.kind == "image" {
                attr("name")
            } else {
                attr("image")
            };
            [e.actor.id.as_str(), name].iter().any(|s| {
                !s.is_empty() && (*s == v || strip_tag(s) == v || strip_tag(s) == strip_tag(v))
            })
        };
        let label = |v: &str| match v.split_once('=') {
            Some((k, val)) => e.actor.attributes.get(k).is_some_and(|x| x == val),
            None => e.actor.attributes.contains_key(v),
        };
        any("type", &|v| e.kind == v)
            && any("event", &|v| action == v)
            && any("container", &|v| named("container", v))
            && any("network", &|v| named("network", v))
            && any("volume", &|v| e.kind == "volume" && e.actor.id == v)
            && any("image", &image)
            && any("label", &label)
            && any("scope", &|v| e.scope == v)
    }
}

/// Reads the complete lines available from `r` (a partial last line is left for later: the
/// reader is rewound to its start).
fn for_each_line(
    r: &mut BufReader<File>,
    f: &mut dyn FnMut(Event) -> io::Result<()>,
) -> io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            r.seek(SeekFrom::Current(-(n as i64)))?;
            return Ok(());
        }
        if let Ok(e) = serde_json::from_slice::<Event>(&line) {
            f(e)?;
        }
    }
}

/// Attributes from `(key, value)` pairs.
pub(crate) fn attrs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, String)>,
) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_dockers_rules() {
        let c = Event::new(
            "container",
            "exec_start: sh -c true",
            "abcdef0123",
            attrs([
                ("name", "web".to_string()),
                ("image", "busybox:latest".to_string()),
                ("tier", "front".to_string()),
            ]),
        );
        let f = |fs: &[&str]| {
            EventFilter::parse(&fs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        assert!(f(&[]).matches(&c));
        assert!(f(&["container=web"]).matches(&c));
        assert!(f(&["container=abc"]).matches(&c), "an ID prefix");
        assert!(!f(&["container=other"]).matches(&c));
        assert!(
            f(&["container=other", "container=web"]).matches(&c),
            "one key: any value"
        );
        assert!(
            !f(&["container=web", "type=image"]).matches(&c),
            "keys: all"
        );
        assert!(
            f(&["event=exec_start"]).matches(&c),
            "the action without its detail"
        );
        assert!(f(&["image=busybox"]).matches(&c) && f(&["image=busybox:latest"]).matches(&c));
        assert!(f(&["label=tier"]).matches(&c) && f(&["label=tier=front"]).matches(&c));
        assert!(!f(&["label=tier=back"]).matches(&c));
        let net = Event::new(
            "network",
            "connect",
            "0123net",
            attrs([("name", "web".into())]),
        );
        assert!(
            !f(&["container=web"]).matches(&net),
            "a network is not a container"
        );
        assert!(EventFilter::parse(&["bogus=1".into()]).is_err());
        assert!(EventFilter::parse(&["container".into()]).is_err());
    }

    #[test]
    fn appends_read_back_in_order_across_a_rotation_and_follow_sees_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path());
        // Enough events to rotate at least once.
        let big = "x".repeat(4096);
        let n = (MAX_LOG / 4096) as usize + 50;
        for i in 0..n {
            log.append(&Event::new(
                "container",
                "start",
                &i.to_string(),
                attrs([("pad", big.clone())]),
            ));
        }
        assert!(dir.path().join("events/events.log.1").exists());
        let mut seen = Vec::new();
        log.read(&EventQuery::default(), &|_| true, &mut |e| {
            seen.push(e.actor.id.parse::<usize>().unwrap());
            Ok(())
        })
        .unwrap();
        assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "in order");
        assert_eq!(*seen.last().unwrap(), n - 1);
        // A follower started now sees what another writer appends, and stops at `until`.
        let writer = log.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            writer.append(&Event::new("volume", "create", "late", BTreeMap::new()));
        });
        let q = EventQuery {
            since: Some(SystemTime::now()),
            until: Some(SystemTime::now() + Duration::from_secs(3)),
            follow: true,
            ..Default::default()
        };
        let mut got = Vec::new();
        log.read(&q, &|e| e.kind == "volume", &mut |e| {
            got.push(e.actor.id.clone());
            Ok(())
        })
        .unwrap();
        t.join().unwrap();
        assert_eq!(got, ["late"]);
    }
}
