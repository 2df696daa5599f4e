//! The container store on disk.
//!
//! ```text
//! ROOT/containers/.lock                  flock: names are unique (create, rename, rm)
//! ROOT/containers/<id>/config.json       Record (written atomically)
//! ROOT/containers/<id>/state.json        State (read-modify-write under <id>/lock)
//! ROOT/containers/<id>/bundle/config.json  the OCI config given to berth-runtime
//! ROOT/containers/<id>/rootfs            the snapshot is mounted here
//! ROOT/containers/<id>/hosts, hostname, resolv.conf   bind-mounted into the container
//! ROOT/containers/<id>/<id>-json.log     logs (json-file, rotated to .1, .2, ...)
//! ROOT/containers/<id>/attach.sock       the monitor's attach socket
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io_err};
use crate::record::{Record, State};
use crate::util::{Flock, private_dir, write_atomic};

/// The containers directory of a root.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    pub(crate) fn new(root: &Path) -> Result<Self> {
        let dir = root.join("containers");
        private_dir(&dir)?;
        Ok(Self { dir })
    }

    /// Records a new container before anything is made for it: `config.json` and
    /// `state.json` are written into `.new-<id>`, which is then renamed to `<id>`, so a crash
    /// leaves either no container or one that lists (its state says who is creating it) and
    /// that `rm` removes. With `durable`, the files and both directories are fsynced before
    /// and after the rename (a power loss keeps the container); without (a `--rm` container,
    /// gone after its run anyway), a kill still leaves no half-made entry. The caller holds
    /// [`Store::lock_all`].
    pub(crate) fn create_entry(&self, r: &Record, s: &State, durable: bool) -> Result<()> {
        let tmp = self.dir.join(format!(".new-{}", r.id));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).map_err(io_err("create", &tmp))?;
        let res = (|| {
            for (name, data) in [
                (
                    "config.json",
                    serde_json::to_vec_pretty(r).expect("a record serialises"),
                ),
                (
                    "state.json",
                    serde_json::to_vec_pretty(s).expect("a state serialises"),
                ),
            ] {
                // Plain new files: the directory becomes visible only by the rename below.
                let p = tmp.join(name);
                if durable {
                    berth_sys::write_new_durable(&p, &data, 0o644)?;
                } else {
                    fs::write(&p, &data).map_err(io_err("write", &p))?;
                }
            }
            if durable {
                berth_sys::sync_dir(&tmp)?;
            }
            let dir = self.dir(&r.id);
            fs::rename(&tmp, &dir).map_err(io_err("rename", &tmp))?;
            if durable {
                berth_sys::sync_dir(&self.dir)?;
            }
            Ok(())
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res
    }

    /// Removes what interrupted creations and removals left: `.new-<id>` (a record not yet
    /// in place: nothing was made for it) and `.rm-<id>` (a container already unmounted and
    /// released, renamed away before its files were deleted). The caller holds
    /// [`Store::lock_all`], which every creation and removal holds, so these have no owner.
    pub(crate) fn clean_debris(&self) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".new-") || name.starts_with(".rm-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The store-wide lock (names).
    pub(crate) fn lock_all(&self) -> Result<Flock> {
        let p = self.dir.join(".lock");
        Ok(Flock::exclusive(&p)?)
    }

    /// The lock of one container (its state).
    pub(crate) fn lock(&self, id: &str) -> Result<Flock> {
        let p = self.dir(id).join("lock");
        if !self.dir(id).is_dir() {
            return Err(Error::NoSuchContainer(id.to_string()));
        }
        Ok(Flock::exclusive(&p)?)
    }

    /// IDs of all containers (complete ones: with a config.json).
    pub(crate) fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io_err("read", &self.dir))? {
            let e = e.map_err(io_err("read", &self.dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && e.path().join("config.json").is_file() {
                ids.push(name);
            }
        }
        Ok(ids)
    }

    pub(crate) fn record(&self, id: &str) -> Result<Record> {
        let p = self.dir(id).join("config.json");
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSuchContainer(id.to_string()));
            }
            Err(e) => return Err(io_err("read", p)(e)),
        };
        serde_json::from_slice(&data).map_err(|error| Error::Json {
            what: p.display().to_string(),
            error,
        })
    }

    /// Writes the record durably, unless it is already on disk as it is (a create writes it
    /// at each step that may change it; most change nothing, and each write costs two fsyncs).
    pub(crate) fn save_record(&self, r: &Record) -> Result<()> {
        let p = self.dir(&r.id).join("config.json");
        let data = serde_json::to_vec_pretty(r).expect("a record serialises");
        if fs::read(&p).is_ok_and(|old| old == data) {
            return Ok(());
        }
        write_atomic(&p, &data)
    }

    /// The recorded state (not checked against the processes; see `Engine::state`).
    pub(crate) fn state(&self, id: &str) -> Result<State> {
        let p = self.dir(id).join("state.json");
        match fs::read(&p) {
            Ok(d) => serde_json::from_slice(&d).map_err(|error| Error::Json {
                what: p.display().to_string(),
                error,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.dir(id).is_dir() {
                    Ok(State::default())
                } else {
                    Err(Error::NoSuchContainer(id.to_string()))
                }
            }
            Err(e) => Err(io_err("read", p)(e)),
        }
    }

    /// Writes the state; the caller holds the container's lock.
    ///
    /// Atomic (readers and a killed writer see the old state or the new) but not fsynced:
    /// state.json is the last observed state of processes (monitor, init), none of which
    /// outlives the machine, and replacing it by rename keeps the old content or the new
    /// across a power loss (ext4's auto_da_alloc, as every journaled file system here). A
    /// transition lost that way is one [`Engine::state`](crate::Engine::state) recomputes:
    /// the monitor is gone, so the container reads as exited. Only the states that outlive
    /// the processes are written durably ([`Store::save_state_durable`]).
    pub(crate) fn save_state(&self, id: &str, s: &State) -> Result<()> {
        let p = self.dir(id).join("state.json");
        let data = serde_json::to_vec_pretty(s).expect("a state serialises");
        Ok(berth_sys::write_atomic_nosync(&p, &data, 0o644)?)
    }

    /// [`Store::save_state`], fsynced: the end of a creation (the creator's mark cleared,
    /// else a power loss would leave a finished container `dead`).
    pub(crate) fn save_state_durable(&self, id: &str, s: &State) -> Result<()> {
        let p = self.dir(id).join("state.json");
        let data = serde_json::to_vec_pretty(s).expect("a state serialises");
        write_atomic(&p, &data)
    }

    /// Changes the state under the container's lock (no write when nothing changed).
    pub(crate) fn update_state<T>(&self, id: &str, f: impl FnOnce(&mut State) -> T) -> Result<T> {
        let _lock = self.lock(id)?;
        let mut s = self.state(id)?;
        let before = serde_json::to_vec(&s).expect("a state serialises");
        let out = f(&mut s);
        if serde_json::to_vec(&s).expect("a state serialises") != before {
            self.save_state(id, &s)?;
        }
        Ok(out)
    }

    /// Finds a container by full ID, name (with or without `/`), or unique ID prefix.
    pub(crate) fn lookup(&self, key: &str) -> Result<String> {
        let ids = self.ids()?;
        if ids.iter().any(|i| i == key) {
            return Ok(key.to_string());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        for id in &ids {
            if self.record(id).is_ok_and(|r| r.name == name) {
                return Ok(id.clone());
            }
        }
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_hexdigit()) {
            let m: Vec<&String> = ids.iter().filter(|i| i.starts_with(key)).collect();
            match m.len() {
                1 => return Ok(m[0].clone()),
                0 => {}
                _ => return Err(Error::Ambiguous(key.to_string())),
            }
        }
        Err(Error::NoSuchContainer(key.to_string()))
    }

    /// The ID of the container named `name`, if any.
    pub(crate) fn by_name(&self, name: &str) -> Result<Option<String>> {
        for id in self.ids()? {
            if self.record(&id).is_ok_and(|r| r.name == name) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const NOUNS: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "almeida",
    "archimedes",
    "ardinghelli",
    "aryabhata",
    "austin",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bassi",
    "bell",
    "benz",
    "bhabha",
    "black",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "boyd",
    "brahmagupta",
    "brattain",
    "brown",
    "carson",
    "chandrasekhar",
    "clarke",
    "colden",
    "cori",
    "cray",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dubinsky",
    "easley",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gates",
    "goldberg",
    "goldstine",
    "goldwasser",
    "golick",
    "goodall",
    "haibt",
    "hamilton",
    "hawking",
    "heisenberg",
    "hermann",
    "hodgkin",
    "hoover",
    "hopper",
    "hugle",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "jepsen",
    "johnson",
    "joliot",
    "jones",
    "kalam",
    "kare",
    "keller",
    "kepler",
    "khorana",
    "kilby",
    "kirch",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lewin",
    "lichterman",
    "liskov",
    "lovelace",
    "lumiere",
    "mahavira",
    "mayer",
    "mccarthy",
    "mcclintock",
    "mclean",
    "mcnulty",
    "meitner",
    "meninsky",
    "mestorf",
    "minsky",
    "mirzakhani",
    "morse",
    "murdock",
    "napier",
    "nash",
    "neumann",
    "newton",
    "nightingale",
    "nobel",
    "noether",
    "northcutt",
    "noyce",
    "panini",
    "pare",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "poitras",
    "ptolemy",
    "raman",
    "ramanujan",
    "ride",
    "ritchie",
    "roentgen",
    "rosalind",
    "saha",
    "sammet",
    "shannon",
    "shaw",
    "shirley",
    "shockley",
    "sinoussi",
    "snyder",
    "spence",
    "stallman",
    "stonebraker",
    "swanson",
    "swartz",
    "swirles",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// A Docker-style random name, `adjective_noun` (Docker never makes `boring_wozniak`).
pub(crate) fn random_name() -> String {
    loop {
        let a = ADJECTIVES[crate::util::random_below(ADJECTIVES.len())];
        let n = NOUNS[crate::util::random_below(NOUNS.len())];
        if !(a == "boring" && n == "wozniak") {
            return format!("{a}_{n}");
        }
    }
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = random_name();
        assert!(valid_name(&n), "{n}");
        assert!(n.contains('_'));
        assert!(!valid_name("-x") && !valid_name("a") && !valid_name("a/b"));
        assert!(valid_name("web-1.x_y"));
    }
}
