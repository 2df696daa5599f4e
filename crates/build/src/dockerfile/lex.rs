//! Variable substitution with the semantics of BuildKit's shell-word lexer.
//!
//! The builder substitutes variables (from `ARG` and `ENV`) into the arguments of these
//! instructions, and only these (the Dockerfile reference's list, see
//! [`EXPANDED_INSTRUCTIONS`]): `ADD`, `COPY`, `ENV`, `EXPOSE`, `FROM`, `LABEL`, `STOPSIGNAL`,
//! `USER`, `VOLUME`, `WORKDIR` and `ARG`, plus the values of `RUN --mount` and of the flags of
//! `ADD`/`COPY` (`--chown`, `--chmod`, `--checksum`). `RUN`, `CMD` and `ENTRYPOINT` are left to
//! the shell at run time, and the text of an `ONBUILD` trigger is substituted only when it runs
//! in a child image. The parser does not substitute anything: values in the typed instructions
//! are raw words (quotes included) and the builder runs [`expand`] or [`expand_words`] on them,
//! which also removes the quotes.
//!
//! What is understood, as BuildKit does:
//! - `$name` and `${name}`; `$` followed by no name stays `$`; `$1`, `$@`, ... are looked up
//!   as such (and are normally unset);
//! - `${name:-word}` / `${name-word}`: `word` when unset or empty / unset;
//! - `${name:+word}` / `${name+word}`: `word` when set and not empty / set, else empty;
//! - `${name:?msg}` / `${name?msg}`: an error `name: msg` when unset or empty / unset;
//! - `${name#pat}`, `${name##pat}`, `${name%pat}`, `${name%%pat}`: remove the shortest/longest
//!   prefix/suffix matching the shell pattern `pat` (`*`, `?`, `\` escapes);
//! - `${name/pat/repl}`, `${name//pat/repl}`: replace the first/every match of `pat`;
//! - single quotes are literal, double quotes keep spaces but expand `$`; the escape character
//!   (`\`, or `` ` `` with `# escape=`` ` ``) escapes the next character (inside double quotes
//!   only `"`, `$` and the escape character itself).
//!
//! Every function reports the variables it read (set ones in [`Expanded::used`], referenced
//! but unset ones in [`Expanded::unset`]): the builder keys its cache on them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The instructions whose arguments the builder substitutes variables into (upper case).
pub const EXPANDED_INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "COPY",
    "ENV",
    "EXPOSE",
    "FROM",
    "LABEL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Where variables are looked up.
pub trait Env {
    /// The value of `name`, if it is set.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// A list of `(name, value)` pairs; the last pair for a name wins, as in an environment
/// that `ENV` appends to.
impl Env for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// An environment with nothing set.
pub struct NoEnv;

impl Env for NoEnv {
    fn lookup(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// A substitution that failed: a missing quote or `}`, a bad modifier, or `${name:?msg}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {message}")]
pub struct LexError {
    /// The word that was being processed.
    pub word: String,
    /// What went wrong, in BuildKit's words (`unexpected end of statement while looking for
    /// matching double-quote`, `A: is not allowed to be unset`, ...).
    pub message: String,
}

/// The result of [`expand`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The word with variables substituted and quotes removed.
    pub value: String,
    /// The variables that were read and are set.
    pub used: BTreeSet<String>,
    /// The variables that were referenced but are not set.
    pub unset: BTreeSet<String>,
}

/// The result of [`expand_words`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpandedWords {
    /// The words, split on unquoted white space after substitution.
    pub words: Vec<String>,
    /// The variables that were read and are set.
    pub used: BTreeSet<String>,
    /// The variables that were referenced but are not set.
    pub unset: BTreeSet<String>,
}

/// Substitutes variables into `word` and removes its quotes, keeping white space: what the
/// builder does to an `ENV` value, a `WORKDIR`, a `COPY` source.
pub fn expand(word: &str, env: &dyn Env, escape: char) -> Result<Expanded, LexError> {
    let mut lex = Lexer::new(word, env, escape);
    let (value, _) = lex.run(word)?;
    Ok(Expanded {
        value,
        used: lex.used,
        unset: lex.unset,
    })
}

/// Substitutes variables into `text` and splits it into words on white space that is neither
/// quoted nor escaped (white space inside a substituted value splits too, as in a shell).
pub fn expand_words(text: &str, env: &dyn Env, escape: char) -> Result<ExpandedWords, LexError> {
    let mut lex = Lexer::new(text, env, escape);
    let (_, words) = lex.run(text)?;
    Ok(ExpandedWords {
        words,
        used: lex.used,
        unset: lex.unset,
    })
}

/// The lexer's switches; the parser uses the raw ones to find heredoc words.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as they were written.
    pub skip_unset: bool,
}

/// Words of `text` with the given options (the parser's use: heredoc detection).
pub(crate) fn words_with(
    text: &str,
    escape: char,
    options: Options,
) -> Result<Vec<String>, LexError> {
    let mut lex = Lexer::new(text, &NoEnv, escape);
    lex.options = options;
    Ok(lex.run(text)?.1)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    escape: char,
    options: Options,
    used: BTreeSet<String>,
    unset: BTreeSet<String>,
}

/// Words being collected: white space splits, except inside quotes and escapes.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

/// An error message before it is wrapped with the word.
type Msg = String;

impl<'a> Lexer<'a> {
    fn new(text: &str, env: &'a dyn Env, escape: char) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            env,
            escape,
            options: Options::default(),
            used: BTreeSet::new(),
            unset: BTreeSet::new(),
        }
    }

    fn run(&mut self, source: &str) -> Result<(String, Vec<String>), LexError> {
        let raw = self.options.raw_escapes;
        self.stop_on(None, raw).map_err(|message| LexError {
            word: source.to_string(),
            message,
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(v) => {
                self.used.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unset.insert(name.to_string());
                None
            }
        }
    }

    /// Processes up to `stop` (consumed) or the end; returns the text and its words.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), Msg> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_string(&s);
                }
                '<' => {
                    let s = self.possible_heredoc();
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '\'' => {
                    let s = self.single_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' => {
                    let s = self.double_quote(raw_escapes)?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                _ => {
                    self.next();
                    if ch == self.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, Msg> {
        let mut out = String::new();
        let open = self.next().unwrap_or('\'');
        if self.options.raw_quotes {
            out.push(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => {
                    if self.options.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self, raw_escapes: bool) -> Result<String, Msg> {
        let mut out = String::new();
        let open = self.next().unwrap_or('"');
        if self.options.raw_quotes {
            out.push(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.next();
                    if self.options.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let s = self.dollar()?;
                    out.push_str(&s);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == self.escape {
                        if raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, ' ' | '\t' | '\r')) {
            out.push(c);
            self.next();
        }
        out
    }

    fn dollar(&mut self) -> Result<String, Msg> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.options.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.name();
        let Some(mut ch) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut modifier = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.options.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                if ch == ':' {
                    null_is_unset = true;
                    let Some(c) = self.next() else {
                        return Err("syntax error: missing '}'".into());
                    };
                    ch = c;
                    modifier.push(ch);
                }
                let raw = ch == '#' || ch == '%';
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({modifier}) in substitution"));
                }
                let word = match self.stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '}'".into());
                    }
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name);
                if value.is_none() && self.options.skip_unset {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let empty = value
                    .as_deref()
                    .is_none_or(|v| null_is_unset && v.is_empty());
                match ch {
                    '-' => Ok(if empty {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if empty { String::new() } else { word }),
                    '?' => match value {
                        None => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be unset"
                            } else {
                                &word
                            }
                        )),
                        Some(v) if null_is_unset && v.is_empty() => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be empty"
                            } else {
                                &word
                            }
                        )),
                        Some(v) => Ok(v),
                    },
                    '#' | '%' => {
                        let value = value.unwrap_or_default();
                        let (greedy, pattern) = match word.strip_prefix(ch) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let pat = Pattern::parse(&pattern)?;
                        Ok(if ch == '#' {
                            pat.trim_prefix(&value, greedy)
                        } else {
                            pat.trim_suffix(&value, greedy)
                        })
                    }
                    _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = match self.stop_on(Some('/'), true) {
                    Ok((p, _)) => p,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '/' in ${}".into());
                    }
                    Err(e) => return Err(e),
                };
                let replacement = match self.stop_on(Some('}'), true) {
                    Ok((r, _)) => r,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '}'".into());
                    }
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name);
                let Some(value) = value else {
                    if self.options.skip_unset {
                        return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let pat = Pattern::parse(&pattern)?;
                Ok(pat.replace(&value, &replacement, all))
            }
            _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }
}

/// A shell pattern of `${name#pat}` and friends: `*`, `?` and literal characters.
#[derive(Debug)]
struct Pattern(Vec<PatTok>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum PatTok {
    Star,
    Any,
    Lit(char),
}

impl Pattern {
    fn parse(p: &str) -> Result<Pattern, Msg> {
        let mut toks = Vec::new();
        let mut it = p.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '*' => toks.push(PatTok::Star),
                '?' => toks.push(PatTok::Any),
                '\\' => match it.peek().copied() {
                    // `\}` and `\/` escape the ${} syntax, not the pattern.
                    Some('}' | '/') => {}
                    Some(n @ ('*' | '?' | '\\')) => {
                        it.next();
                        toks.push(PatTok::Lit(n));
                    }
                    Some(n) => {
                        return Err(format!(
                            "invalid pattern ({p}) in substitution: invalid escape '\\{n}'"
                        ));
                    }
                    None => {
                        return Err(format!(
                            "invalid pattern ({p}) in substitution: trailing backslash"
                        ));
                    }
                },
                c => toks.push(PatTok::Lit(c)),
            }
        }
        Ok(Pattern(toks))
    }

    /// Whether the whole of `s` matches.
    fn matches(&self, s: &[char]) -> bool {
        fn go(p: &[PatTok], s: &[char]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some((PatTok::Star, rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
                Some((PatTok::Any, rest)) => !s.is_empty() && go(rest, &s[1..]),
                Some((PatTok::Lit(c), rest)) => s.first() == Some(c) && go(rest, &s[1..]),
            }
        }
        go(&self.0, s)
    }

    fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut ends: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new((0..=v.len()).rev())
        } else {
            Box::new(0..=v.len())
        };
        match ends.find(|&end| self.matches(&v[..end])) {
            Some(end) => v[end..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut starts: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new(0..=v.len())
        } else {
            Box::new((0..=v.len()).rev())
        };
        match starts.find(|&start| self.matches(&v[start..])) {
            Some(start) => v[..start].iter().collect(),
            None => value.to_string(),
        }
    }

    /// Replaces the leftmost-longest match (or every one, left to right).
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= v.len() {
            let found = if replaced && !all {
                None
            } else {
                (i..=v.len()).rev().find(|&end| self.matches(&v[i..end]))
            };
            match found {
                Some(end) if end > i || !self.0.is_empty() => {
                    out.push_str(replacement);
                    replaced = true;
                    if end == i {
                        if let Some(c) = v.get(i) {
                            out.push(*c);
                        }
                        i += 1;
                    } else {
                        i = end;
                    }
                }
                _ => {
                    if let Some(c) = v.get(i) {
                        out.push(*c);
                    }
                    i += 1;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn x(word: &str, e: &HashMap<String, String>) -> String {
        expand(word, e, '\\').unwrap().value
    }

    fn err(word: &str, e: &HashMap<String, String>) -> String {
        expand(word, e, '\\').unwrap_err().to_string()
    }

    #[test]
    fn plain_and_braced_variables() {
        let e = env(&[("A", "alpha"), ("B_2", "two"), ("EMPTY", "")]);
        assert_eq!(x("$A", &e), "alpha");
        assert_eq!(x("${A}", &e), "alpha");
        assert_eq!(x("pre-${A}-post", &e), "pre-alpha-post");
        assert_eq!(x("$A.txt", &e), "alpha.txt");
        assert_eq!(x("$B_2/x", &e), "two/x");
        assert_eq!(x("$UNSET", &e), "");
        assert_eq!(x("a$", &e), "a$");
        assert_eq!(x("$ x", &e), "$ x");
        assert_eq!(x("${EMPTY}z", &e), "z");
    }

    #[test]
    fn default_and_alternative_values() {
        let e = env(&[("SET", "v"), ("EMPTY", "")]);
        assert_eq!(x("${SET:-d}", &e), "v");
        assert_eq!(x("${EMPTY:-d}", &e), "d");
        assert_eq!(x("${UNSET:-d}", &e), "d");
        assert_eq!(x("${EMPTY-d}", &e), "");
        assert_eq!(x("${UNSET-d}", &e), "d");
        assert_eq!(x("${SET:+alt}", &e), "alt");
        assert_eq!(x("${EMPTY:+alt}", &e), "");
        assert_eq!(x("${EMPTY+alt}", &e), "alt");
        assert_eq!(x("${UNSET+alt}", &e), "");
        // The default itself is expanded.
        assert_eq!(x("${UNSET:-$SET/bin}", &e), "v/bin");
        assert_eq!(x("${UNSET:-${ALSO:-deep}}", &e), "deep");
    }

    #[test]
    fn required_values_fail_with_the_message() {
        let e = env(&[("SET", "v"), ("EMPTY", "")]);
        assert_eq!(x("${SET:?no}", &e), "v");
        assert_eq!(
            err("${UNSET:?need it}", &e),
            r#"failed to process "${UNSET:?need it}": UNSET: need it"#
        );
        assert_eq!(
            err("${EMPTY:?}", &e),
            r#"failed to process "${EMPTY:?}": EMPTY: is not allowed to be empty"#
        );
        assert_eq!(
            err("${UNSET?}", &e),
            r#"failed to process "${UNSET?}": UNSET: is not allowed to be unset"#
        );
        assert_eq!(x("${EMPTY?}", &e), "");
    }

    #[test]
    fn quotes_and_escapes() {
        let e = env(&[("A", "alpha")]);
        assert_eq!(x("'$A'", &e), "$A");
        assert_eq!(x("\"$A\"", &e), "alpha");
        assert_eq!(x("\"a  b\"", &e), "a  b");
        assert_eq!(x("\\$A", &e), "$A");
        assert_eq!(x("a\\ b", &e), "a b");
        assert_eq!(x(r#""say \"hi\"""#, &e), r#"say "hi""#);
        // Inside double quotes a backslash before another character stays.
        assert_eq!(x(r#""a\nb""#, &e), r"a\nb");
        assert_eq!(x(r#""\$A""#, &e), "$A");
        assert_eq!(x("'a\\b'", &e), "a\\b");
        assert_eq!(x("it's\\ ok'", &e), "its\\ ok");
    }

    #[test]
    fn backtick_escape_for_windows_dockerfiles() {
        let e = env(&[("A", "alpha")]);
        assert_eq!(expand("`$A", &e, '`').unwrap().value, "$A");
        assert_eq!(
            expand(r"C:\path\$A", &e, '`').unwrap().value,
            r"C:\path\alpha"
        );
        assert_eq!(expand("\"a`\"b\"", &e, '`').unwrap().value, "a\"b");
    }

    #[test]
    fn unterminated_constructs_are_errors() {
        let e = env(&[]);
        assert_eq!(
            err("'abc", &e),
            r#"failed to process "'abc": unexpected end of statement while looking for matching single-quote"#
        );
        assert_eq!(
            err("\"abc", &e),
            r#"failed to process "\"abc": unexpected end of statement while looking for matching double-quote"#
        );
        assert!(err("${abc", &e).ends_with("syntax error: missing '}'"));
        assert!(err("${A:-x", &e).ends_with("syntax error: missing '}'"));
        assert!(err("${}", &e).ends_with("syntax error: bad substitution"));
        assert!(err("${:a}", &e).ends_with("syntax error: bad substitution"));
        assert!(err("${A:x}", &e).ends_with("unsupported modifier (:x) in substitution"));
        assert!(err("${A:#x}", &e).ends_with("unsupported modifier (:#) in substitution"));
        assert!(err("${A^x}", &e).ends_with("unsupported modifier (^) in substitution"));
    }

    #[test]
    fn prefix_suffix_and_replacement() {
        let e = env(&[("P", "/usr/local/bin/tool.tar.gz")]);
        assert_eq!(x("${P#*/}", &e), "usr/local/bin/tool.tar.gz");
        assert_eq!(x("${P##*/}", &e), "tool.tar.gz");
        assert_eq!(x("${P%.*}", &e), "/usr/local/bin/tool.tar");
        assert_eq!(x("${P%%.*}", &e), "/usr/local/bin/tool");
        assert_eq!(x("${P#nomatch}", &e), "/usr/local/bin/tool.tar.gz");
        assert_eq!(x("${P/local/opt}", &e), "/usr/opt/bin/tool.tar.gz");
        assert_eq!(x("${P//\\//_}", &e), "_usr_local_bin_tool.tar.gz");
        assert_eq!(x("${P/t??l/X}", &e), "/usr/local/bin/X.tar.gz");
        assert_eq!(
            x("${P/o*./X}", &e),
            "/usr/lXgz",
            "the longest match at the leftmost start"
        );
        assert_eq!(x("${UNSET#x}", &e), "");
    }

    #[test]
    fn used_and_unset_names_are_reported() {
        let e = env(&[("A", "1"), ("B", "2")]);
        let r = expand("$A ${B:-x} ${C:-y} '$D'", &e, '\\').unwrap();
        assert_eq!(r.value, "1 2 y $D");
        assert_eq!(r.used.iter().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(r.unset.iter().collect::<Vec<_>>(), ["C"]);
    }

    #[test]
    fn words_split_on_unquoted_space_and_in_values() {
        let e = env(&[("PORTS", "80/tcp 443/tcp"), ("S", "a b")]);
        let w = expand_words("$PORTS 53/udp", &e, '\\').unwrap();
        assert_eq!(w.words, ["80/tcp", "443/tcp", "53/udp"]);
        assert_eq!(w.used.iter().collect::<Vec<_>>(), ["PORTS"]);
        let w = expand_words("\"$S\" 'c d' e\\ f  g", &e, '\\').unwrap();
        assert_eq!(w.words, ["a b", "c d", "e f", "g"]);
        let w = expand_words("  ", &e, '\\').unwrap();
        assert!(w.words.is_empty());
    }

    #[test]
    fn env_lists_use_the_last_value() {
        let list = vec![
            ("A".to_string(), "first".to_string()),
            ("A".to_string(), "second".to_string()),
        ];
        assert_eq!(expand("$A", &list, '\\').unwrap().value, "second");
        assert_eq!(expand("${A:-x}", &NoEnv, '\\').unwrap().value, "x");
    }

    #[test]
    fn raw_options_keep_what_heredoc_detection_needs() {
        let raw = Options {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
        };
        let w = words_with("cat <<\"EOF\" > $OUT ${X:-y} a\\ b", '\\', raw).unwrap();
        assert_eq!(w, ["cat", "<<\"EOF\"", ">", "$OUT", "${X:-y}", "a\\ b"]);
        // `<< EOF` stays one word.
        let w = words_with("cat << EOF", '\\', raw).unwrap();
        assert_eq!(w, ["cat", "<< EOF"]);
    }
}
