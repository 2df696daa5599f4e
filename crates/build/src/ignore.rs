//! `.dockerignore` with the semantics of moby/patternmatcher (what BuildKit applies to the
//! build context).
//!
//! - Lines starting with `#` are comments; blank lines are skipped; patterns are trimmed,
//!   cleaned as paths (`./a//b/../c` is `a/c`) and a leading `/` is dropped, so patterns are
//!   relative to the context root.
//! - `*` matches any run of characters but `/`, `?` one character but `/`, `[a-z]` / `[^a]`
//!   a class, `\` escapes the next character; `**` matches any number of directories
//!   (`**/*.go`, `a/**/b`, `a/**`).
//! - `!pattern` re-includes what an earlier pattern excluded; the last matching rule wins.
//! - A pattern that matches a directory matches everything below it.
//!
//! A builder walking the context asks [`Matcher::matches`] for each path and may skip a
//! matched directory whole when [`Matcher::may_reinclude_below`] says no `!` rule could
//! bring anything below it back.

use std::fmt;
use std::path::{Path, PathBuf};

/// A bad pattern or an unreadable ignore file.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    /// A pattern that cannot be compiled.
    #[error("invalid .dockerignore pattern {pattern:?}: {message}")]
    Pattern {
        /// The pattern as cleaned.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// The ignore file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One step of a compiled glob.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**/` or `**` inside a pattern: nothing, or anything ending with `/`.
    DirsOrNothing,
    /// `**` at the end: anything.
    Rest,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone)]
enum Kind {
    /// No wildcard: the path equals the pattern.
    Exact,
    /// `foo/**`: the path starts with `foo/`.
    Prefix(String),
    /// `**/foo`: the path ends with `/foo` or is `foo`.
    Suffix(String),
    Glob(Vec<Tok>),
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exclusion: bool,
    kind: Kind,
    /// Per path component, for [`Matcher::may_reinclude_below`]; `None` for a `**` one.
    segments: Vec<Option<Vec<Tok>>>,
}

fn bad(pattern: &str, message: &str) -> IgnoreError {
    IgnoreError::Pattern {
        pattern: pattern.to_string(),
        message: message.to_string(),
    }
}

/// Compiles a glob (a pattern or one of its components).
fn compile(p: &str) -> Result<(Vec<Tok>, bool), IgnoreError> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut wild = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                toks.push(if i == chars.len() {
                    Tok::Rest
                } else {
                    Tok::DirsOrNothing
                });
                wild = true;
            }
            '*' => {
                toks.push(Tok::Star);
                wild = true;
            }
            '?' => {
                toks.push(Tok::One);
                wild = true;
            }
            '\\' => match chars.get(i) {
                Some(&n) => {
                    toks.push(Tok::Lit(n));
                    i += 1;
                    wild = true;
                }
                None => return Err(bad(p, "syntax error in pattern (trailing backslash)")),
            },
            '[' => {
                let mut negated = false;
                if chars.get(i) == Some(&'^') {
                    negated = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                while i < chars.len() {
                    let mut lo = chars[i];
                    i += 1;
                    if lo == ']' && !ranges.is_empty() {
                        closed = true;
                        break;
                    }
                    if lo == '\\' {
                        lo = *chars
                            .get(i)
                            .ok_or_else(|| bad(p, "syntax error in pattern (unclosed [)"))?;
                        i += 1;
                    }
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']') {
                        hi = chars[i + 1];
                        i += 2;
                        if hi == '\\' {
                            hi = *chars
                                .get(i)
                                .ok_or_else(|| bad(p, "syntax error in pattern (unclosed [)"))?;
                            i += 1;
                        }
                        if hi < lo {
                            return Err(bad(p, "syntax error in pattern (bad range)"));
                        }
                    }
                    ranges.push((lo, hi));
                }
                if !closed {
                    return Err(bad(p, "syntax error in pattern (unclosed [)"));
                }
                toks.push(Tok::Class { negated, ranges });
                wild = true;
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok((toks, wild))
}

fn glob_match(toks: &[Tok], s: &[char]) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match first {
        Tok::Lit(c) => s.first() == Some(c) && glob_match(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|&c| c != '/') && glob_match(rest, &s[1..]),
        Tok::Class { negated, ranges } => {
            s.first()
                .is_some_and(|&c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated)
                && glob_match(rest, &s[1..])
        }
        Tok::Star => {
            let mut i = 0;
            loop {
                if glob_match(rest, &s[i..]) {
                    return true;
                }
                if i == s.len() || s[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Tok::Rest => true,
        Tok::DirsOrNothing => {
            glob_match(rest, s)
                || (0..s.len()).any(|i| s[i] == '/' && glob_match(rest, &s[i + 1..]))
        }
    }
}

impl Pattern {
    fn new(text: &str, exclusion: bool) -> Result<Pattern, IgnoreError> {
        let (toks, wild) = compile(text)?;
        let kind = if !wild {
            Kind::Exact
        } else if let Some(prefix) = text
            .strip_suffix("**")
            .filter(|p| matches!(compile(p), Ok((_, false))))
        {
            Kind::Prefix(prefix.to_string())
        } else if let Some(suffix) = text
            .strip_prefix("**")
            .filter(|s| !s.is_empty() && matches!(compile(s), Ok((_, false))))
        {
            Kind::Suffix(suffix.to_string())
        } else {
            Kind::Glob(toks)
        };
        let segments = text
            .split('/')
            .map(|seg| {
                if seg.contains("**") {
                    Ok(None)
                } else {
                    compile(seg).map(|(t, _)| Some(t))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Pattern {
            text: text.to_string(),
            exclusion,
            kind,
            segments,
        })
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Glob(toks) => glob_match(toks, &path.chars().collect::<Vec<_>>()),
        }
    }
}

/// Go's `filepath.Clean` on a slash path: no empty, `.` or resolvable `..` components.
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Compiled ignore rules.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Reads the text of a `.dockerignore` file (comments, blank lines, `!`, cleaning).
    pub fn parse(text: &str) -> Result<Matcher, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            // As moby's ignorefile: a comment starts the line, before any trimming.
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let invert = p.starts_with('!');
            if invert {
                p = p[1..].trim();
            }
            let mut p = if p.is_empty() {
                String::new()
            } else {
                clean_path(p)
            };
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
            patterns.push(if invert { format!("!{p}") } else { p });
        }
        Matcher::new(patterns.iter().map(String::as_str))
    }

    /// Compiles patterns as written in an ignore file's lines (already without comments).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Matcher, IgnoreError> {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let (exclusion, body) = match p.strip_prefix('!') {
                Some("") => return Err(bad("!", "illegal exclusion pattern: \"!\"")),
                Some(b) => (true, clean_path(b)),
                None => (false, clean_path(p)),
            };
            out.push(Pattern::new(&body, exclusion)?);
        }
        Ok(Matcher { patterns: out })
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any rule is a `!` exception.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative to the context, `/`-separated) is ignored: the last rule that
    /// matches it or one of its parent directories decides. The context root itself is never
    /// ignored.
    pub fn matches(&self, path: &str) -> bool {
        let path = clean_path(path.trim_start_matches('/'));
        if path == "." {
            return false;
        }
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(&path);
            if !m {
                m = (1..=parents.len()).any(|n| p.matches(&parents[..n].join("/")));
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether some `!` rule could re-include a path below the directory `dir` (or `dir`
    /// itself). When this is false and [`Matcher::matches`] says `dir` is ignored, a walk can
    /// skip the whole directory. Errs on the side of `true`.
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        let dir = clean_path(dir.trim_start_matches('/'));
        let comps: Vec<Vec<char>> = if dir == "." {
            Vec::new()
        } else {
            dir.split('/').map(|c| c.chars().collect()).collect()
        };
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            for (i, comp) in comps.iter().enumerate() {
                match p.segments.get(i) {
                    // The pattern names an ancestor of `dir`, which re-includes all below.
                    None => return true,
                    Some(None) => return true,
                    Some(Some(seg)) if !glob_match(seg, comp) => return false,
                    Some(Some(_)) => {}
                }
            }
            true
        })
    }

    /// The rules as cleaned, `!` included.
    pub fn patterns(&self) -> impl Iterator<Item = String> + '_ {
        self.patterns.iter().map(|p| {
            if p.exclusion {
                format!("!{}", p.text)
            } else {
                p.text.clone()
            }
        })
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.patterns() {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

/// The ignore file that applies to a build: `<Dockerfile>.dockerignore` next to the
/// Dockerfile (`app.Dockerfile.dockerignore`), else `.dockerignore` at the context root, else
/// none. A relative `dockerfile` is taken relative to `context`.
pub fn find_ignore_file(context: &Path, dockerfile: &Path) -> Option<PathBuf> {
    let dockerfile = if dockerfile.is_absolute() {
        dockerfile.to_path_buf()
    } else {
        context.join(dockerfile)
    };
    if let Some(name) = dockerfile.file_name() {
        let mut specific = name.to_os_string();
        specific.push(".dockerignore");
        let candidate = dockerfile.with_file_name(specific);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    let root = context.join(".dockerignore");
    root.is_file().then_some(root)
}

/// Reads the ignore file [`find_ignore_file`] finds; no file means no rules.
pub fn load(context: &Path, dockerfile: &Path) -> Result<Matcher, IgnoreError> {
    let Some(path) = find_ignore_file(context, dockerfile) else {
        return Ok(Matcher::default());
    };
    let text = std::fs::read_to_string(&path).map_err(|source| IgnoreError::Io { path, source })?;
    Matcher::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    #[test]
    fn clean_paths_as_go() {
        assert_eq!(clean_path("./a//b/../c/"), "a/c");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path("../x"), "../x");
        assert_eq!(clean_path("./"), ".");
        assert_eq!(clean_path(""), ".");
    }

    #[test]
    fn file_syntax_comments_blank_lines_and_cleaning() {
        let mt =
            m("\u{feff}# comment\n\n   \n  node_modules  \n/build/\n./tmp/../cache\n!  /keep\n");
        assert_eq!(
            mt.patterns().collect::<Vec<_>>(),
            ["node_modules", "build", "cache", "!keep"]
        );
        // A '#' after leading space is a pattern, as in moby's ignorefile.
        let mt = m("  #notacomment\n");
        assert_eq!(mt.patterns().collect::<Vec<_>>(), ["#notacomment"]);
        assert!(mt.matches("#notacomment"));
    }

    #[test]
    fn star_question_and_classes_stay_within_a_component() {
        let mt = m("*.log\nfile?.txt\n[ab]c\n[^x]y\n");
        assert!(mt.matches("error.log"));
        assert!(!mt.matches("logs/error.log"), "* does not cross /");
        assert!(mt.matches("file1.txt"));
        assert!(!mt.matches("file10.txt"));
        assert!(mt.matches("ac") && mt.matches("bc") && !mt.matches("cc"));
        assert!(mt.matches("zy") && !mt.matches("xy"));
        let mt = m("a*/b\n");
        assert!(mt.matches("abc/b"));
        assert!(!mt.matches("a/x/b"));
        let mt = m("[a-c]?/*.md\n");
        assert!(mt.matches("b1/README.md"));
        assert!(!mt.matches("d1/README.md"));
    }

    #[test]
    fn double_star_crosses_directories() {
        let mt = m("**/*.go\n");
        assert!(mt.matches("main.go"));
        assert!(mt.matches("cmd/tool/main.go"));
        assert!(!mt.matches("main.rs"));
        let mt = m("a/**/z\n");
        assert!(mt.matches("a/z"));
        assert!(mt.matches("a/b/c/z"));
        assert!(!mt.matches("b/z"));
        let mt = m("docs/**\n");
        assert!(mt.matches("docs/x/y.md"));
        let mt = m("**/node_modules\n");
        assert!(mt.matches("node_modules/x/index.js"));
        assert!(mt.matches("packages/a/node_modules/y"));
    }

    #[test]
    fn a_matching_directory_ignores_everything_below() {
        let mt = m("build\n");
        assert!(mt.matches("build"));
        assert!(mt.matches("build/out/app.o"));
        assert!(
            !mt.matches("src/build"),
            "patterns are anchored at the context root"
        );
        assert!(!mt.matches("builds"));
        assert!(!mt.matches("."), "the root is never ignored");
    }

    #[test]
    fn exceptions_and_the_last_rule_wins() {
        let mt = m("*.md\n!README.md\n");
        assert!(mt.matches("CHANGES.md"));
        assert!(!mt.matches("README.md"));
        let mt = m("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(!mt.matches("README.md"));
        assert!(mt.matches("README-secret.md"));
        // Exception inside an ignored directory.
        let mt = m("docs\n!docs/keep.txt\n");
        assert!(mt.matches("docs/other.txt"));
        assert!(!mt.matches("docs/keep.txt"));
        assert!(mt.matches("docs"));
        // Everything but a few.
        let mt = m("*\n!src\n!Cargo.toml\n");
        assert!(mt.matches("target"));
        assert!(!mt.matches("src/main.rs"));
        assert!(!mt.matches("Cargo.toml"));
    }

    #[test]
    fn pruning_knows_when_exceptions_reach_below() {
        let mt = m("docs\n!docs/keep.txt\nnode_modules\n");
        assert!(mt.may_reinclude_below("docs"));
        assert!(!mt.may_reinclude_below("node_modules"));
        assert!(
            !mt.may_reinclude_below("docs/sub"),
            "docs/keep.txt is not below docs/sub"
        );
        let mt = m("vendor\n!**/LICENSE\n");
        assert!(mt.may_reinclude_below("vendor/a/b"));
        let mt = m("a\n!a/*/keep\n");
        assert!(mt.may_reinclude_below("a/x"));
        assert!(!mt.may_reinclude_below("b"));
        let mt = m("*\n!src\n");
        assert!(
            mt.may_reinclude_below("src/deep/er"),
            "src re-includes all below it"
        );
        assert!(!m("x\n").may_reinclude_below("x"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        let e = Matcher::parse("!\n").unwrap_err().to_string();
        assert_eq!(
            e,
            r#"invalid .dockerignore pattern "!": illegal exclusion pattern: "!""#
        );
        let e = Matcher::parse("[abc\n").unwrap_err().to_string();
        assert!(
            e.contains("\"[abc\"") && e.contains("syntax error in pattern"),
            "{e}"
        );
        assert!(Matcher::parse("a\\\n").is_err());
    }

    #[test]
    fn escapes_are_literal() {
        let mt = m("\\*.txt\n");
        assert!(mt.matches("*.txt"));
        assert!(!mt.matches("a.txt"));
    }

    #[test]
    fn the_dockerfile_specific_ignore_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        assert_eq!(find_ignore_file(ctx, Path::new("Dockerfile")), None);
        assert!(load(ctx, Path::new("Dockerfile")).unwrap().is_empty());

        std::fs::write(ctx.join(".dockerignore"), "root-rule\n").unwrap();
        assert_eq!(
            find_ignore_file(ctx, Path::new("Dockerfile")),
            Some(ctx.join(".dockerignore"))
        );

        std::fs::create_dir(ctx.join("docker")).unwrap();
        std::fs::write(ctx.join("docker/app.Dockerfile.dockerignore"), "app-rule\n").unwrap();
        let found = find_ignore_file(ctx, Path::new("docker/app.Dockerfile")).unwrap();
        assert_eq!(found, ctx.join("docker/app.Dockerfile.dockerignore"));
        let mt = load(ctx, &ctx.join("docker/app.Dockerfile")).unwrap();
        assert_eq!(mt.patterns().collect::<Vec<_>>(), ["app-rule"]);
        // Another Dockerfile in that directory falls back to the root file.
        let mt = load(ctx, Path::new("docker/other.Dockerfile")).unwrap();
        assert_eq!(mt.patterns().collect::<Vec<_>>(), ["root-rule"]);
    }
}
