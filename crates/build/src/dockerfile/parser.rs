//! From text to logical instructions: parser directives, comments, line continuations,
//! heredocs, builder flags and the per-instruction argument shapes (JSON array, words,
//! key=value pairs), as BuildKit's `parser` package does. Typing happens in
//! [`super::instruction`].

use super::lex::{self, Options};
use super::{Directives, Heredoc, Warning};

/// An error at a range of lines (1-based), before the file name is attached.
#[derive(Debug)]
pub(crate) struct LineError {
    pub start: usize,
    pub end: usize,
    pub message: String,
}

impl LineError {
    pub(crate) fn new(start: usize, end: usize, message: impl Into<String>) -> Self {
        LineError {
            start,
            end,
            message: message.into(),
        }
    }
}

/// One logical instruction, its arguments shaped as its keyword wants them.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The keyword as written (`from`, `RUN`).
    pub keyword: String,
    /// Builder flags as written, without quotes: `--from=build`.
    pub flags: Vec<String>,
    /// The arguments: JSON array items, words, or the whole rest as one string.
    pub args: Vec<String>,
    /// For ENV and LABEL: (key, raw value, written with `=`).
    pub pairs: Vec<(String, String, bool)>,
    /// The arguments were a JSON array.
    pub json: bool,
    /// ONBUILD's trigger.
    pub sub: Option<Box<Node>>,
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined, comments dropped, heredoc bodies not included).
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
}

/// What the first phase produces.
pub(crate) struct Parsed {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    pub warnings: Vec<Warning>,
}

/// The parser directives seen so far (`# syntax=`, `# escape=`, `# check=`).
struct DirectiveState {
    done: bool,
    seen: Vec<String>,
    directives: Directives,
}

impl DirectiveState {
    /// Looks at one line; `Ok(true)` when it was a directive.
    fn line(&mut self, line: &str) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let rest = rest.trim_start();
        // ^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$
        let name_len = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map_or(rest.len(), |(i, _)| i);
        let (name, after) = rest.split_at(name_len);
        let value = after.trim_start().strip_prefix('=').map(str::trim);
        let (Some(value), false) = (value, name.is_empty()) else {
            self.done = true;
            return Ok(false);
        };
        if value.is_empty() {
            self.done = true;
            return Ok(false);
        }
        let key = name.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                self.directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(format!(
                            "invalid escape token '{other}' does not match ` or \\"
                        ));
                    }
                };
            }
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => self.directives.check = Some(value.to_string()),
        }
        Ok(true)
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing continuation character: `(line, true)` when the line ends the
/// instruction. An escaped escape (`foo \\`) is not a continuation.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let Some(before) = trimmed.strip_suffix(escape) else {
        return (line, true);
    };
    if !before.is_empty() && before.ends_with(escape) {
        return (line, true);
    }
    (before, false)
}

/// Splits a file into logical instructions.
pub(crate) fn parse(src: &str) -> Result<Parsed, LineError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let lines: Vec<&str> = src.split_inclusive('\n').collect();
    let mut state = DirectiveState {
        done: false,
        seen: Vec::new(),
        directives: Directives::default(),
    };
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut idx = 0;
    let mut line_no = 0;

    // Trims the newline (and leading space), feeds the directive parser, drops comments.
    let process = |state: &mut DirectiveState, raw: &str, strip_left: bool, at: usize| {
        let mut t = trim_newline(raw);
        if strip_left {
            t = t.trim_start();
        }
        state.line(t).map_err(|m| LineError::new(at, at, m))?;
        Ok::<String, LineError>(if is_comment(t) {
            String::new()
        } else {
            t.to_string()
        })
    };

    while idx < lines.len() {
        let text = process(&mut state, lines[idx], true, line_no + 1)?;
        idx += 1;
        line_no += 1;
        let start = line_no;
        let escape = state.directives.escape;
        let (first, mut ended) = trim_continuation(&text, escape);
        if ended && first.is_empty() {
            continue;
        }
        let mut buf = first.to_string();
        let mut empty_continuation = false;
        while !ended && idx < lines.len() {
            let raw = lines[idx];
            let text = process(&mut state, raw, false, line_no + 1)?;
            idx += 1;
            line_no += 1;
            if is_comment(raw) {
                continue;
            }
            if text.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, e) = trim_continuation(&text, escape);
            ended = e;
            buf.push_str(part);
        }
        if empty_continuation {
            warnings.push(Warning {
                line: start,
                message: format!("Empty continuation line found in: {buf}"),
            });
        }

        let mut node =
            node_from_line(&buf, escape).map_err(|m| LineError::new(start, line_no, m))?;
        if can_contain_heredoc(&node) && buf.contains("<<") {
            let docs = heredocs_from_line(&buf).map_err(|m| LineError::new(start, line_no, m))?;
            for mut doc in docs {
                let mut content = String::new();
                let mut terminated = false;
                while idx < lines.len() {
                    let raw = lines[idx];
                    idx += 1;
                    line_no += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    return Err(LineError::new(
                        start,
                        line_no,
                        format!("unterminated heredoc: no line {:?} ends it", doc.name),
                    ));
                }
                doc.content = if doc.chomp {
                    content
                        .split_inclusive('\n')
                        .map(|l| l.trim_start_matches('\t'))
                        .collect()
                } else {
                    content
                };
                node.heredocs.push(doc);
            }
        }
        set_lines(&mut node, start, line_no);
        nodes.push(node);
    }

    if nodes.is_empty() {
        return Err(LineError::new(
            line_no,
            line_no,
            "file with no instructions",
        ));
    }
    Ok(Parsed {
        directives: state.directives,
        nodes,
        warnings,
    })
}

fn set_lines(node: &mut Node, start: usize, end: usize) {
    node.start_line = start;
    node.end_line = end;
    if let Some(sub) = node.sub.as_deref_mut() {
        set_lines(sub, start, end);
    }
}

fn can_contain_heredoc(node: &Node) -> bool {
    let node = match (&node.sub, node.keyword.eq_ignore_ascii_case("onbuild")) {
        (Some(sub), true) => sub,
        _ => node,
    };
    let kw = node.keyword.to_ascii_lowercase();
    matches!(kw.as_str(), "run" | "copy" | "add") && !node.json
}

/// A heredoc word (`<<EOF`, `<<-EOF`, `3<<"EOF"`), without its content.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (fd, rest) = word.split_at(digits);
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches([' ', '\t', '\n', '\r', '\x0c']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let plain = Options {
        skip_unset: true,
        ..Options::default()
    };
    let words = lex::words_with(rest, '\\', plain).map_err(|e| e.to_string())?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = Options {
        raw_quotes: true,
        ..plain
    };
    let raw_words = lex::words_with(rest, '\\', raw).map_err(|e| e.to_string())?;
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = raw_words.len() == 1 && quotes(&words[0]) == quotes(&raw_words[0]);
    Ok(Some(Heredoc {
        name: words[0].clone(),
        fd: fd.parse().unwrap_or(0),
        expand,
        chomp,
        content: String::new(),
    }))
}

fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let raw = Options {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
    };
    let words = lex::words_with(line, '\\', raw).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(doc) = parse_heredoc(&w)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// `[\t\v\f\r ]`, the separator between a keyword and its arguments.
fn is_sep(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

fn node_from_line(line: &str, escape: char) -> Result<Node, String> {
    let line = line.trim();
    let (keyword, rest) = match line.find(is_sep) {
        Some(i) => (&line[..i], line[i..].trim_start_matches(is_sep)),
        None => (line, ""),
    };
    let (rest, flags) = extract_flags(rest, escape);
    let rest = rest.trim();
    let mut node = Node {
        keyword: keyword.to_string(),
        flags,
        args: Vec::new(),
        pairs: Vec::new(),
        json: false,
        sub: None,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
    };
    match keyword.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => match parse_json(rest)? {
            Some(items) => {
                node.args = items;
                node.json = true;
            }
            None => node.args = split_whitespace(rest),
        },
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest, &mut node)?,
        "arg" => node.args = parse_words(rest, escape),
        "env" | "label" => {
            node.pairs = parse_name_val(rest, &keyword.to_ascii_uppercase(), escape)?
        }
        "expose" | "from" => node.args = split_whitespace(rest),
        "healthcheck" => {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if end > 0 {
                node.args.push(rest[..end].to_string());
                let mut cmd = node.clone();
                cmd.args.clear();
                maybe_json(rest[end..].trim_start(), &mut cmd)?;
                node.args.extend(cmd.args);
                node.json = cmd.json;
            }
        }
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => {
            node.args.push(rest.to_string());
        }
        "onbuild" if !rest.is_empty() => {
            node.sub = Some(Box::new(node_from_line(rest, escape)?));
        }
        _ => {}
    }
    Ok(node)
}

fn maybe_json(rest: &str, node: &mut Node) -> Result<(), String> {
    if rest.is_empty() {
        return Ok(());
    }
    match parse_json(rest)? {
        Some(items) => {
            node.args = items;
            node.json = true;
        }
        None => node.args = vec![rest.to_string()],
    }
    Ok(())
}

/// `Ok(None)` when `rest` is not a JSON array (shell form); an error when it is an array of
/// something else than strings, as BuildKit.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(rest) else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => {
                Err("when using JSON array syntax, arrays must be comprised of strings only".into())
            }
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Some)
}

fn split_whitespace(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_sep)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Builder flags (`--from=x --link`) at the start of the arguments: the rest and the flags.
fn extract_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let cs: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let at_end = i == cs.len();
        let mut ch = cs.get(i).map_or('\0', |c| c.1);
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            if ch != '-' || cs.get(i + 1).map(|c| c.1) != Some('-') {
                return (&line[cs[i].0..], words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (&line[cs[i].0..], words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                i += 1;
                continue;
            }
        } else if ch == quote {
            phase = Phase::Word;
            i += 1;
            continue;
        }
        if ch == escape {
            if i + 1 == cs.len() {
                if phase == Phase::Quote {
                    phase = Phase::Word;
                }
                i += 1;
                continue;
            }
            i += 1;
            ch = cs[i].1;
        }
        word.push(ch);
        i += 1;
    }
    ("", words)
}

/// Words separated by white space, quotes and escapes kept (they are removed when the
/// builder expands the word).
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let cs: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut i = 0;
    loop {
        let at_end = i == cs.len();
        let mut ch = cs.get(i).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if i + 1 == cs.len() {
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
                ch = cs[i];
            }
            word.push(ch);
            i += 1;
            continue;
        }
        // In quotes.
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if i + 1 == cs.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            ch = cs[i];
        }
        word.push(ch);
        i += 1;
    }
    words
}

/// ENV and LABEL: `k=v k2="v 2"` or the legacy `k v with spaces`.
fn parse_name_val(
    rest: &str,
    keyword: &str,
    escape: char,
) -> Result<Vec<(String, String, bool)>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let Some(i) = rest.find(is_sep) else {
            return Err(format!("{keyword} must have two arguments"));
        };
        let value = rest[i..].trim_start_matches(is_sep);
        return Ok(vec![(rest[..i].to_string(), value.to_string(), false)]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string(), true)),
            None => Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_detection() {
        assert_eq!(trim_continuation("RUN a \\", '\\'), ("RUN a ", false));
        assert_eq!(trim_continuation("RUN a \\  \t", '\\'), ("RUN a ", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("RUN a \\\\", '\\'), ("RUN a \\\\", true));
        assert_eq!(trim_continuation("RUN a", '\\'), ("RUN a", true));
        assert_eq!(trim_continuation("RUN a `", '`'), ("RUN a ", false));
        assert_eq!(trim_continuation("RUN c:\\", '`'), ("RUN c:\\", true));
    }

    #[test]
    fn builder_flags_are_split_off() {
        let (rest, flags) = extract_flags("--from=build --chown=1:1 src dst", '\\');
        assert_eq!(flags, ["--from=build", "--chown=1:1"]);
        assert_eq!(rest, "src dst");
        let (rest, flags) = extract_flags("--mount=type=cache,target=\"/a b\" echo", '\\');
        assert_eq!(flags, ["--mount=type=cache,target=/a b"]);
        assert_eq!(rest, "echo");
        let (rest, flags) = extract_flags("--link -- --notaflag x", '\\');
        assert_eq!(flags, ["--link"]);
        assert_eq!(rest.trim(), "--notaflag x");
        let (rest, flags) = extract_flags("-x --y", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest, "-x --y");
        let (rest, flags) = extract_flags("--link", '\\');
        assert_eq!((rest, flags), ("", vec!["--link".to_string()]));
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(
            parse_words(r#"A="a b" B=c\ d C='e'"#, '\\'),
            [r#"A="a b""#, r"B=c\ d", "C='e'"]
        );
        assert_eq!(parse_words("  x   y ", '\\'), ["x", "y"]);
        assert_eq!(parse_words(r#"E="" F"#, '\\'), [r#"E="""#, "F"]);
    }

    #[test]
    fn heredoc_words() {
        let h = parse_heredoc("<<EOF").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.fd, h.expand, h.chomp),
            ("EOF", 0, true, false)
        );
        let h = parse_heredoc("<<-'END'").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.chomp), ("END", false, true));
        let h = parse_heredoc("3<<\"X\"").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.fd, h.expand), ("X", 3, false));
        assert!(parse_heredoc("a<<EOF").unwrap().is_none());
        assert!(parse_heredoc("<<").unwrap().is_none());
        assert!(parse_heredoc("<<<x").unwrap().is_none());
    }
}
