//! Typed instructions, made from the parser's logical lines as BuildKit's `instructions`
//! package does (the same argument counts, flags and messages).
//!
//! Values are raw words as written (quotes and variables included) wherever the builder
//! substitutes variables (see [`super::lex`]); flags are validated here, their values are
//! substituted later too.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::Heredoc;
use super::parser::{self, Node};

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// The keyword as written (`run`, `COPY`).
    pub keyword: String,
    /// First line (1-based) of the instruction.
    pub start_line: usize,
    /// Last line, heredoc bodies included.
    pub end_line: usize,
    /// The logical line as written (continuations joined, comments dropped): what history's
    /// `created_by` and error messages show.
    pub original: String,
    /// What it says.
    pub kind: Kind,
}

impl Instruction {
    /// Whether the builder substitutes variables into this instruction's arguments (see
    /// [`super::lex::EXPANDED_INSTRUCTIONS`]); an `ONBUILD` trigger is not substituted when
    /// it is recorded, only when it runs in a child build.
    pub fn expands_variables(&self) -> bool {
        super::lex::EXPANDED_INSTRUCTIONS.contains(&self.keyword.to_ascii_uppercase().as_str())
    }
}

/// What an instruction says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "lowercase")]
pub enum Kind {
    /// `FROM [--platform=P] image [AS name]`.
    From(FromInstruction),
    /// `ARG name[=default] ...`.
    Arg {
        /// The arguments, in order.
        args: Vec<ArgDef>,
    },
    /// `ENV k=v ...` or `ENV k v`.
    Env {
        /// The pairs, in order; values are raw words.
        pairs: Vec<KeyValue>,
    },
    /// `LABEL k=v ...`.
    Label {
        /// The pairs, in order; keys and values are raw words.
        pairs: Vec<KeyValue>,
    },
    /// `WORKDIR path`.
    Workdir {
        /// The path, a raw word.
        path: String,
    },
    /// `USER user[:group]`.
    User {
        /// The user, a raw word.
        user: String,
    },
    /// `EXPOSE port[/proto] ...`, sorted as BuildKit sorts them.
    Expose {
        /// The ports, raw words (one may expand to several).
        ports: Vec<String>,
    },
    /// `VOLUME ["/a", "/b"]` or `VOLUME /a /b`.
    Volume {
        /// The paths, raw words.
        paths: Vec<String>,
    },
    /// `ENTRYPOINT`.
    Entrypoint {
        /// Exec or shell form.
        command: CommandLine,
    },
    /// `CMD`.
    Cmd {
        /// Exec or shell form.
        command: CommandLine,
    },
    /// `SHELL ["executable", "args"...]` (JSON form only).
    Shell {
        /// The shell and its arguments.
        shell: Vec<String>,
    },
    /// `STOPSIGNAL signal`.
    StopSignal {
        /// The signal, a raw word.
        signal: String,
    },
    /// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`.
    Healthcheck(Healthcheck),
    /// `ONBUILD instruction`.
    Onbuild(OnbuildInstruction),
    /// `MAINTAINER name` (deprecated, sets the image's author).
    Maintainer {
        /// The text.
        name: String,
    },
    /// `COPY`.
    Copy(CopyInstruction),
    /// `ADD`.
    Add(AddInstruction),
    /// `RUN`.
    Run(RunInstruction),
}

/// `FROM`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromInstruction {
    /// The base image reference as written (variables from meta `ARG`s not yet substituted).
    pub image: String,
    /// The stage name after `AS`, lower-cased.
    pub name: Option<String>,
    /// `--platform`, raw.
    pub platform: Option<String>,
}

impl FromInstruction {
    /// `FROM scratch`: an empty base.
    pub fn is_scratch(&self) -> bool {
        self.image.eq_ignore_ascii_case("scratch")
    }
}

/// One `ARG` definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDef {
    /// The name.
    pub name: String,
    /// The default, a raw word; `None` without `=`.
    pub default: Option<String>,
}

/// A key and value of `ENV` or `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value, a raw word.
    pub value: String,
}

/// The command of `RUN`, `CMD`, `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandLine {
    /// JSON form: the arguments, run without a shell.
    Exec(Vec<String>),
    /// Shell form: one string for the `SHELL` (default `/bin/sh -c`).
    Shell(String),
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [options] CMD ...`.
    Cmd(HealthcheckCmd),
}

/// A health check command with its options; durations and retries are `None` when not given
/// (or zero), meaning "inherit or default".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthcheckCmd {
    /// The image config's `Test`: `["CMD", args...]` or `["CMD-SHELL", "command"]`.
    pub test: Vec<String>,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--start-period`.
    pub start_period: Option<Duration>,
    /// `--start-interval`.
    pub start_interval: Option<Duration>,
    /// `--retries`.
    pub retries: Option<u32>,
}

/// `ONBUILD`: the trigger, typed, and the text stored in the image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnbuildInstruction {
    /// The trigger as the image's `OnBuild` stores it (heredoc bodies appended).
    pub expression: String,
    /// The trigger instruction.
    pub trigger: Box<Instruction>,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyInstruction {
    /// Source paths (raw words), without heredoc sources.
    pub sources: Vec<String>,
    /// Sources given as heredocs (`COPY <<EOF /file`): file name and content.
    pub heredocs: Vec<Heredoc>,
    /// The destination, a raw word.
    pub dest: String,
    /// `--from`: a stage name or index, or an image.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude`, in order (repeatable).
    pub excludes: Vec<String>,
    /// The arguments were a JSON array.
    pub json: bool,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddInstruction {
    /// Source paths or URLs (raw words), without heredoc sources.
    pub sources: Vec<String>,
    /// Sources given as heredocs.
    pub heredocs: Vec<Heredoc>,
    /// The destination, a raw word.
    pub dest: String,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude`, in order (repeatable).
    pub excludes: Vec<String>,
    /// `--checksum` (for URL sources).
    pub checksum: Option<String>,
    /// `--keep-git-dir`, when given.
    pub keep_git_dir: Option<bool>,
    /// `--unpack`, when given.
    pub unpack: Option<bool>,
    /// The arguments were a JSON array.
    pub json: bool,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunInstruction {
    /// The command. With heredocs, the shell form holds the `<<EOF` words as written.
    pub command: CommandLine,
    /// Heredocs of the command line, in order.
    pub heredocs: Vec<Heredoc>,
    /// `--mount`s, in order.
    pub mounts: Vec<Mount>,
    /// `--network`.
    pub network: Network,
    /// `--security`.
    pub security: Security,
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The build's default network.
    #[default]
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// The default confinement.
    #[default]
    Sandbox,
    /// Privileged (needs the `security.insecure` entitlement).
    Insecure,
}

/// `RUN --mount=type=...`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A directory of the context or of another stage (the default).
    #[default]
    Bind,
    /// A cache directory kept between builds.
    Cache,
    /// A tmpfs.
    Tmpfs,
    /// A secret file (or environment variable).
    Secret,
    /// An SSH agent socket.
    Ssh,
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    /// Used by several builds at once.
    Shared,
    /// A new cache when it is in use.
    Private,
    /// Wait until the other user releases it.
    Locked,
}

/// One `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// The flag's value as written: re-parse it with [`Mount::parse_expanded`] once
    /// variables are known.
    pub spec: String,
    /// `type=`.
    pub kind: MountType,
    /// `target=` / `dst=` / `destination=`.
    pub target: Option<String>,
    /// `source=` / `src=`.
    pub source: Option<String>,
    /// `from=`: a stage or image.
    pub from: Option<String>,
    /// `id=`.
    pub id: Option<String>,
    /// `sharing=` (cache only).
    pub sharing: Option<Sharing>,
    /// `readonly`/`ro`/`rw`; by default bind, secret and ssh mounts are read-only.
    pub readonly: bool,
    /// `mode=` (octal; cache, secret, ssh).
    pub mode: Option<u32>,
    /// `uid=` (cache, secret, ssh).
    pub uid: Option<u32>,
    /// `gid=` (cache, secret, ssh).
    pub gid: Option<u32>,
    /// `size=` in bytes (tmpfs).
    pub size: Option<u64>,
    /// `required` (secret, ssh).
    pub required: bool,
    /// `env=`: expose a secret as this environment variable.
    pub env: Option<String>,
}

const MOUNT_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

impl Mount {
    /// Parses a `--mount` value with its values taken literally. A value with a `$` in it is
    /// not checked (its field keeps the raw text, or its default for typed fields) until the
    /// builder calls [`Mount::parse_expanded`].
    pub fn parse(spec: &str) -> Result<Mount, String> {
        parse_mount(spec, None)
    }

    /// Parses a `--mount` value, passing every value through `expand` first.
    pub fn parse_expanded(
        spec: &str,
        expand: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<Mount, String> {
        parse_mount(spec, Some(expand))
    }
}

/// Splits a CSV record (`a,"b,c",d`; `""` is a quote inside quotes).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut in_quotes = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
                continue;
            }
            '"' if at_start => in_quotes = true,
            c => cur.push(c),
        }
        at_start = false;
    }
    if in_quotes {
        return Err(format!(
            "failed to parse csv mounts: unterminated quote in {s:?}"
        ));
    }
    fields.push(cur);
    Ok(fields)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(format!("invalid value for {key}: {v}")),
    }
}

/// Docker's RAMInBytes: `64m`, `1.5g`, `512KiB`, `1024` (binary multiples).
fn parse_size(v: &str) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let s = lower.strip_suffix('b').unwrap_or(&lower);
    let s = s.strip_suffix('i').unwrap_or(s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        'p' => (&s[..s.len() - 1], 1 << 50),
        _ => (s, 1),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    Some((n * mult as f64) as u64)
}

/// What [`Mount::parse_expanded`] passes every value through.
type Expander<'a> = &'a mut dyn FnMut(&str) -> Result<String, String>;

fn parse_mount(spec: &str, mut expand: Option<Expander<'_>>) -> Result<Mount, String> {
    let mut m = Mount {
        spec: spec.to_string(),
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: None,
        readonly: false,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        env: None,
    };
    let mut ro_auto = true;
    for field in csv_fields(spec)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true;
                }
                "required" => {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        mount_type_name(m.kind)
                    ));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let value = match expand.as_mut() {
            Some(f) => f(&value)?,
            None => value,
        };
        // Without an expander a value with a variable is checked later.
        let deferred = expand.is_none() && value.contains('$');
        if deferred && key == "from" && value.find('$') != Some(value.len() - 1) {
            return Err(format!(
                "'{key}' doesn't support variable expansion, define alias stage instead"
            ));
        }
        let kind_name = mount_type_name(m.kind);
        match key.as_str() {
            "type" if deferred => {}
            "type" => {
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        let hint = suggest(&value, &["bind", "cache", "tmpfs", "secret", "ssh"]);
                        return Err(format!("unsupported mount type {value:?}{hint}"));
                    }
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" | "readwrite" | "rw" => {
                ro_auto = false;
                if !deferred {
                    let b = parse_bool(&key, &value)?;
                    m.readonly = if matches!(key.as_str(), "readwrite" | "rw") {
                        !b
                    } else {
                        b
                    };
                }
            }
            "required" => {
                if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{kind_name}'"
                    ));
                }
                if !deferred {
                    m.required = parse_bool(&key, &value)?;
                }
            }
            "size" => {
                if m.kind != MountType::Tmpfs {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{kind_name}'"
                    ));
                }
                if !deferred {
                    m.size = Some(
                        parse_size(&value)
                            .ok_or_else(|| format!("invalid value for {key}: {value}"))?,
                    );
                }
            }
            "id" => m.id = Some(value),
            "sharing" if deferred => {}
            "sharing" => {
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => {
                        let hint = suggest(&value, &["shared", "private", "locked"]);
                        return Err(format!("unsupported sharing value {value:?}{hint}"));
                    }
                })
            }
            "mode" | "uid" | "gid" if deferred => {}
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&value, 8)
                        .map_err(|_| format!("invalid value {value} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for gid"))?,
                )
            }
            "env" => m.env = Some(value),
            _ => {
                let hint = suggest(&key, MOUNT_KEYS);
                return Err(format!("unexpected key '{key}' in '{field}'{hint}"));
            }
        }
    }
    let kind_name = mount_type_name(m.kind);
    if !matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    ) {
        for (name, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(format!("{name} not allowed for {kind_name:?} type mounts"));
            }
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!("invalid cache sharing set for {kind_name} mount"));
    }
    Ok(m)
}

fn mount_type_name(t: MountType) -> &'static str {
    match t {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// ` (did you mean X?)` for the closest option within two edits, as BuildKit's suggestions.
pub(crate) fn suggest(value: &str, options: &[&str]) -> String {
    let mut best: Option<(&str, usize)> = None;
    for opt in options {
        if *opt == value {
            return String::new();
        }
        let d = levenshtein(value, opt);
        if d < 3 && best.is_none_or(|(_, bd)| d < bd) {
            best = Some((opt, d));
        }
    }
    best.map_or(String::new(), |(o, _)| format!(" (did you mean {o}?)"))
}

#[derive(Clone, Copy, PartialEq)]
enum FlagKind {
    Bool,
    String,
    Strings,
}

/// The flags given to one instruction, checked against what it accepts.
struct Flags {
    values: HashMap<&'static str, Vec<String>>,
}

impl Flags {
    fn parse(
        keyword: &str,
        raw: &[String],
        defs: &[(&'static str, FlagKind)],
    ) -> Result<Flags, String> {
        let mut values: HashMap<&'static str, Vec<String>> = HashMap::new();
        for a in raw {
            if a == "--" {
                break;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {a}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(def_name, kind)) = defs.iter().find(|(n, _)| *n == name) else {
                let names: Vec<String> = defs.iter().map(|(n, _)| format!("--{n}")).collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let hint = suggest(&format!("--{name}"), &names);
                return Err(format!("unknown flag for {keyword}: --{name}{hint}"));
            };
            let entry = values.entry(def_name).or_default();
            if !entry.is_empty() && kind != FlagKind::Strings {
                return Err(format!("duplicate flag specified: --{name}"));
            }
            match kind {
                FlagKind::Bool => {
                    let v = match value {
                        None => "true".to_string(),
                        Some("") => return Err(format!("missing a value on flag: --{name}")),
                        Some(v) => match v.to_ascii_lowercase().as_str() {
                            "true" => "true".into(),
                            "false" => "false".into(),
                            _ => {
                                return Err(format!(
                                    "expecting boolean value for flag --{name}, not: {v}"
                                ));
                            }
                        },
                    };
                    entry.push(v);
                }
                FlagKind::String | FlagKind::Strings => match value {
                    None => return Err(format!("missing a value on flag: --{name}")),
                    Some(v) => entry.push(v.to_string()),
                },
            }
        }
        Ok(Flags { values })
    }

    fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(|v| v == "true")
    }

    fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
}

const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn at_least_one(kw: &str) -> String {
    format!("{kw} requires at least one argument")
}

fn exactly_one(kw: &str) -> String {
    format!("{kw} requires exactly one argument")
}

fn no_flags(kw: &str, node: &Node) -> Result<(), String> {
    Flags::parse(kw, &node.flags, &[]).map(|_| ())
}

fn command_line(node: &Node) -> CommandLine {
    if node.json {
        CommandLine::Exec(node.args.clone())
    } else {
        CommandLine::Shell(node.args.join(" "))
    }
}

/// Go's time.ParseDuration: `1h30m`, `1.5s`, `300ms`, `10us`.
pub(crate) fn parse_go_duration(s: &str) -> Option<(bool, Duration)> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some((neg, Duration::ZERO));
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * nanos;
        rest = next;
    }
    Some((neg, Duration::from_nanos(total.round() as u64)))
}

fn interval(flags: &Flags, name: &str) -> Result<Option<Duration>, String> {
    let Some(v) = flags.string(name) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    let (neg, d) =
        parse_go_duration(&v).ok_or_else(|| format!("invalid duration {v:?} for --{name}"))?;
    if d.is_zero() {
        return Ok(None);
    }
    if neg || d < Duration::from_millis(1) {
        return Err(format!("Interval {name:?} cannot be less than 1ms"));
    }
    Ok(Some(d))
}

fn sources_and_dest(kw: &str, node: &Node) -> Result<(Vec<String>, Vec<Heredoc>, String), String> {
    if node.args.len() < 2 {
        return Err(format!(
            "{kw} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    let (dest, srcs) = node.args.split_last().expect("two arguments");
    if !node.json && parser::parse_heredoc(dest)?.is_some() {
        return Err(format!("{kw} cannot accept a heredoc as a destination"));
    }
    let mut sources = Vec::new();
    let mut docs = Vec::new();
    for src in srcs {
        match (node.json, parser::parse_heredoc(src)?) {
            (false, Some(word)) => {
                let body = node.heredocs.iter().find(|h| h.name == word.name);
                docs.push(Heredoc {
                    content: body.map(|h| h.content.clone()).unwrap_or_default(),
                    ..word
                });
            }
            _ => sources.push(src.clone()),
        }
    }
    Ok((sources, docs, dest.clone()))
}

/// Types one logical instruction.
pub(crate) fn from_node(node: &Node) -> Result<Instruction, String> {
    let kw = node.keyword.to_ascii_uppercase();
    let args = &node.args;
    let kind = match kw.as_str() {
        "FROM" => {
            let name = match args.as_slice() {
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                    let lower = name.to_ascii_lowercase();
                    let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
                        && lower.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c)
                        });
                    if !valid {
                        return Err(format!(
                            "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                        ));
                    }
                    Some(lower)
                }
                [_] => None,
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            let flags = Flags::parse(&kw, &node.flags, &[("platform", FlagKind::String)])?;
            Kind::From(FromInstruction {
                image: args[0].clone(),
                name,
                platform: flags.string("platform"),
            })
        }
        "ARG" => {
            if args.is_empty() {
                return Err(at_least_one(&kw));
            }
            no_flags(&kw, node)?;
            let args = args
                .iter()
                .map(|a| match a.split_once('=') {
                    Some(("", _)) => Err("ARG names can not be blank".to_string()),
                    Some((k, v)) => Ok(ArgDef {
                        name: k.to_string(),
                        default: Some(v.to_string()),
                    }),
                    None => Ok(ArgDef {
                        name: a.clone(),
                        default: None,
                    }),
                })
                .collect::<Result<_, _>>()?;
            Kind::Arg { args }
        }
        "ENV" | "LABEL" => {
            no_flags(&kw, node)?;
            if node.pairs.is_empty() {
                return Err(at_least_one(&kw));
            }
            let mut pairs = Vec::new();
            for (k, v, _) in &node.pairs {
                if k.is_empty() {
                    return Err(format!("{kw} names can not be blank"));
                }
                pairs.push(KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                });
            }
            if kw == "ENV" {
                Kind::Env { pairs }
            } else {
                Kind::Label { pairs }
            }
        }
        "MAINTAINER" | "WORKDIR" | "USER" | "STOPSIGNAL" => {
            if args.len() != 1 {
                return Err(exactly_one(&kw));
            }
            no_flags(&kw, node)?;
            let v = args[0].clone();
            match kw.as_str() {
                "MAINTAINER" => Kind::Maintainer { name: v },
                "WORKDIR" => Kind::Workdir { path: v },
                "USER" => Kind::User { user: v },
                _ => Kind::StopSignal { signal: v },
            }
        }
        "EXPOSE" => {
            if args.is_empty() {
                return Err(at_least_one(&kw));
            }
            no_flags(&kw, node)?;
            let mut ports = args.clone();
            ports.sort();
            Kind::Expose { ports }
        }
        "VOLUME" => {
            if args.is_empty() {
                return Err(at_least_one(&kw));
            }
            no_flags(&kw, node)?;
            let mut paths = Vec::new();
            for v in args {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                paths.push(v.to_string());
            }
            Kind::Volume { paths }
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags(&kw, node)?;
            let command = command_line(node);
            if kw == "CMD" {
                Kind::Cmd { command }
            } else {
                Kind::Entrypoint { command }
            }
        }
        "SHELL" => {
            no_flags(&kw, node)?;
            if args.is_empty() {
                return Err(at_least_one(&kw));
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            Kind::Shell {
                shell: args.clone(),
            }
        }
        "HEALTHCHECK" => {
            let Some(typ) = args.first() else {
                return Err(at_least_one(&kw));
            };
            let typ = typ.to_ascii_uppercase();
            let rest = &args[1..];
            if typ == "NONE" {
                if !rest.is_empty() {
                    return Err("HEALTHCHECK NONE takes no arguments".into());
                }
                if !node.flags.is_empty() {
                    return Err("HEALTHCHECK NONE takes no flags".into());
                }
                Kind::Healthcheck(Healthcheck::None)
            } else {
                let flags = Flags::parse(
                    &kw,
                    &node.flags,
                    &[
                        ("interval", FlagKind::String),
                        ("timeout", FlagKind::String),
                        ("start-period", FlagKind::String),
                        ("start-interval", FlagKind::String),
                        ("retries", FlagKind::String),
                    ],
                )?;
                if typ != "CMD" {
                    return Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"));
                }
                if rest.is_empty() {
                    return Err("Missing command after HEALTHCHECK CMD".into());
                }
                let test = if node.json {
                    std::iter::once("CMD".to_string())
                        .chain(rest.iter().cloned())
                        .collect()
                } else {
                    vec!["CMD-SHELL".to_string(), rest.join(" ")]
                };
                let retries = match flags.string("retries").filter(|r| !r.is_empty()) {
                    None => None,
                    Some(r) => {
                        let n: i64 = r
                            .parse()
                            .map_err(|_| format!("invalid value for --retries: {r}"))?;
                        if n < 0 {
                            return Err(format!("--retries cannot be negative ({n})"));
                        }
                        let n = u32::try_from(n)
                            .map_err(|_| format!("invalid value for --retries: {r}"))?;
                        (n != 0).then_some(n)
                    }
                };
                Kind::Healthcheck(Healthcheck::Cmd(HealthcheckCmd {
                    test,
                    interval: interval(&flags, "interval")?,
                    timeout: interval(&flags, "timeout")?,
                    start_period: interval(&flags, "start-period")?,
                    start_interval: interval(&flags, "start-interval")?,
                    retries,
                }))
            }
        }
        "ONBUILD" => {
            let Some(sub) = node.sub.as_deref() else {
                return Err(at_least_one(&kw));
            };
            no_flags(&kw, node)?;
            let trigger_kw = sub.keyword.to_ascii_uppercase();
            match trigger_kw.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger_kw} isn't allowed as an ONBUILD trigger"));
                }
                _ => {}
            }
            let mut sub = sub.clone();
            sub.heredocs = node.heredocs.clone();
            let trigger = from_node(&sub)?;
            let mut expression = node.original.trim_start()[node.keyword.len()..]
                .trim_start()
                .to_string();
            for h in &node.heredocs {
                expression.push('\n');
                expression.push_str(&h.content);
                expression.push_str(&h.name);
            }
            Kind::Onbuild(OnbuildInstruction {
                expression,
                trigger: Box::new(trigger),
            })
        }
        "COPY" => {
            let flags = Flags::parse(
                &kw,
                &node.flags,
                &[
                    ("chown", FlagKind::String),
                    ("from", FlagKind::String),
                    ("chmod", FlagKind::String),
                    ("link", FlagKind::Bool),
                    ("exclude", FlagKind::Strings),
                    ("parents", FlagKind::Bool),
                ],
            );
            let (sources, heredocs, dest) = sources_and_dest(&kw, node)?;
            let flags = flags?;
            Kind::Copy(CopyInstruction {
                sources,
                heredocs,
                dest,
                from: flags.string("from"),
                chown: flags.string("chown"),
                chmod: flags.string("chmod"),
                link: flags.bool("link").unwrap_or(false),
                parents: flags.bool("parents").unwrap_or(false),
                excludes: flags.strings("exclude"),
                json: node.json,
            })
        }
        "ADD" => {
            let flags = Flags::parse(
                &kw,
                &node.flags,
                &[
                    ("chown", FlagKind::String),
                    ("chmod", FlagKind::String),
                    ("link", FlagKind::Bool),
                    ("keep-git-dir", FlagKind::Bool),
                    ("checksum", FlagKind::String),
                    ("unpack", FlagKind::Bool),
                    ("exclude", FlagKind::Strings),
                ],
            );
            let (sources, heredocs, dest) = sources_and_dest(&kw, node)?;
            let flags = flags?;
            Kind::Add(AddInstruction {
                sources,
                heredocs,
                dest,
                chown: flags.string("chown"),
                chmod: flags.string("chmod"),
                link: flags.bool("link").unwrap_or(false),
                excludes: flags.strings("exclude"),
                checksum: flags.string("checksum"),
                keep_git_dir: flags.bool("keep-git-dir"),
                unpack: flags.bool("unpack"),
                json: node.json,
            })
        }
        "RUN" => {
            let flags = Flags::parse(
                &kw,
                &node.flags,
                &[
                    ("mount", FlagKind::Strings),
                    ("network", FlagKind::String),
                    ("security", FlagKind::String),
                ],
            )?;
            if args.is_empty() {
                return Err(at_least_one(&kw));
            }
            let mounts = flags
                .strings("mount")
                .iter()
                .map(|s| Mount::parse(s))
                .collect::<Result<_, _>>()?;
            let network = match flags.string("network").as_deref() {
                None | Some("default") => Network::Default,
                Some("none") => Network::None,
                Some("host") => Network::Host,
                Some(other) => return Err(format!("invalid network mode {other:?}")),
            };
            let security = match flags.string("security").as_deref() {
                None | Some("sandbox") => Security::Sandbox,
                Some("insecure") => Security::Insecure,
                Some(other) => return Err(format!("security {other:?} is not valid")),
            };
            Kind::Run(RunInstruction {
                command: command_line(node),
                heredocs: node.heredocs.clone(),
                mounts,
                network,
                security,
            })
        }
        _ => {
            let hint = suggest_instruction(&node.keyword);
            return Err(format!("unknown instruction: {}{hint}", node.keyword));
        }
    };
    Ok(Instruction {
        keyword: node.keyword.clone(),
        start_line: node.start_line,
        end_line: node.end_line,
        original: node.original.clone(),
        kind,
    })
}

/// BuildKit suggests in the case the keyword was written in.
fn suggest_instruction(keyword: &str) -> String {
    let hint = suggest(&keyword.to_ascii_uppercase(), INSTRUCTIONS);
    if keyword.chars().any(|c| c.is_ascii_lowercase()) {
        hint.to_ascii_lowercase()
    } else {
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_parses_them() {
        let d = |s| parse_go_duration(s).map(|(_, d)| d);
        assert_eq!(d("30s"), Some(Duration::from_secs(30)));
        assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(d("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(d("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(d("10us"), Some(Duration::from_micros(10)));
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("5"), None);
        assert_eq!(d("5x"), None);
        assert_eq!(d(""), None);
        assert_eq!(
            parse_go_duration("-1s"),
            Some((true, Duration::from_secs(1)))
        );
    }

    #[test]
    fn sizes_as_docker_parses_them() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn csv_fields_with_quotes() {
        assert_eq!(csv_fields("a,b=c").unwrap(), ["a", "b=c"]);
        assert_eq!(
            csv_fields(r#"type=bind,"target=/a,b""#).unwrap(),
            ["type=bind", "target=/a,b"]
        );
        assert_eq!(csv_fields(r#""x""y""#).unwrap(), [r#"x"y"#]);
        assert!(csv_fields(r#""open"#).is_err());
    }

    #[test]
    fn suggestions_within_two_edits() {
        assert_eq!(suggest("FROOM", INSTRUCTIONS), " (did you mean FROM?)");
        assert_eq!(suggest("COPPY", INSTRUCTIONS), " (did you mean COPY?)");
        assert_eq!(suggest("XYZZY", INSTRUCTIONS), "");
        assert_eq!(suggest_instruction("froom"), " (did you mean from?)");
    }
}
