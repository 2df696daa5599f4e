//! `--format` for every command that takes one, as Docker reads it: a Go `text/template`
//! (executed by the `gotmpl` crate, a port of Go's engine) with Docker's functions (`json`,
//! `join`, `split`, `lower`, `upper`, `title`, `pad`, `truncate`) besides Go's own (`printf`,
//! `index`, `len`, `eq`, ...); or a named format: `json` (one JSON object per line) and
//! `table` (the command's default table), or `table TEMPLATE`: a header row of the columns'
//! titles, then one row per item, aligned as Go's tabwriter aligns Docker's tables.
//!
//! Literal `\t` and `\n` in a format are a tab and a newline, as in Docker.

use std::io::Write;

use anyhow::{Context, Result};
use gotmpl::{Template, TemplateError, Value};

/// A parsed `--format` of a list command (ps, images, stats, network ls).
pub struct ListFormat {
    kind: Kind,
}

enum Kind {
    /// `json`: each item as one line of JSON.
    Json,
    /// A template executed per item, each followed by a newline.
    Lines(Template),
    /// A table: the template's header (executed over the titles) then a row per item.
    Table { header: Template, row: Template },
}

/// Docker's column titles for a command's fields (`ID` -> `CONTAINER ID`); a field not named
/// here is titled by its name in upper case.
pub type Titles = [(&'static str, &'static str)];

impl ListFormat {
    /// Parses `--format`: none or `table` is `default_table` (itself `table ...`), `json` is
    /// JSON lines, `table TEMPLATE` a table of that template, anything else a template.
    pub fn parse(format: Option<&str>, default_table: &str) -> Result<Self> {
        let f = match format.map(str::trim) {
            None | Some("") | Some("table") => default_table,
            Some(f) => f,
        };
        if f == "json" {
            return Ok(ListFormat { kind: Kind::Json });
        }
        if let Some(t) = f.strip_prefix("table") {
            let t = unescape(t.trim_matches(' '));
            return Ok(ListFormat {
                kind: Kind::Table {
                    header: parse(&t, HEADER_FUNCS)?,
                    row: parse(&t, FUNCS)?,
                },
            });
        }
        Ok(ListFormat {
            kind: Kind::Lines(parse(&unescape(f), FUNCS)?),
        })
    }

    /// Whether this is a table (with a header row).
    pub fn is_table(&self) -> bool {
        matches!(self.kind, Kind::Table { .. })
    }

    /// Writes `items` (JSON objects of the command's fields) to `out` in this format.
    pub fn write(
        &self,
        out: &mut impl Write,
        items: &[serde_json::Value],
        titles: &Titles,
    ) -> Result<()> {
        match &self.kind {
            Kind::Json => {
                for i in items {
                    writeln!(out, "{i}")?;
                }
            }
            Kind::Lines(t) => {
                for i in items {
                    writeln!(out, "{}", execute(t, &to_value(i))?)?;
                }
            }
            Kind::Table { header, row } => {
                // Go's tabwriter as Docker sets it up (minwidth 10, padding 3): a cell is
                // as wide as its column's widest cell plus 3, and at least 10. This crate
                // pads after the minimum (max(w, minwidth) + padding), hence 7.
                let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(7).padding(3);
                let names = items.first().and_then(|i| i.as_object());
                writeln!(tw, "{}", execute(header, &header_value(titles, names))?)?;
                for i in items {
                    writeln!(tw, "{}", execute(row, &to_value(i))?)?;
                }
                tw.flush()?;
                out.write_all(&tw.into_inner().context("align the table")?)?;
            }
        }
        Ok(())
    }
}

/// `inspect --format`: none or `json` writes `items` as an indented JSON array (Docker's
/// default), anything else is a template executed per item, each followed by a newline.
pub fn write_inspect(
    out: &mut impl Write,
    format: Option<&str>,
    items: &[serde_json::Value],
) -> Result<()> {
    match format.map(str::trim) {
        None | Some("") | Some("json") => {
            writeln!(out, "{}", serde_json::to_string_pretty(items)?)?;
        }
        Some(f) => {
            let t = parse(&unescape(f), FUNCS)?;
            for i in items {
                writeln!(out, "{}", execute(&t, &to_value(i))?)?;
            }
        }
    }
    Ok(())
}

/// One item with a `--format` value: `json` (or `{{json .}}`) is the object on one line,
/// anything else a template (`info`, `version`, `history`, `events`, `system df`).
pub fn render(format: &str, v: &serde_json::Value) -> Result<String> {
    match format.trim() {
        "json" => Ok(v.to_string()),
        f => execute(&parse(&unescape(f), FUNCS)?, &to_value(v)),
    }
}

/// Prints rows (the first one the header) aligned as Docker's tables are (Go's tabwriter,
/// minwidth 10, padding 3), for the tables that take no template.
pub fn print_rows(rows: &[Vec<String>]) -> Result<()> {
    let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(7).padding(3);
    for r in rows {
        writeln!(tw, "{}", r.join("\t"))?;
    }
    tw.flush()?;
    let out = tw.into_inner().context("align the table")?;
    // Go's tabwriter leaves no padding after the last column.
    let text = String::from_utf8_lossy(&out);
    let mut stdout = std::io::stdout().lock();
    for line in text.lines() {
        writeln!(stdout, "{}", line.trim_end())?;
    }
    Ok(())
}

fn unescape(t: &str) -> String {
    t.replace("\\t", "\t").replace("\\n", "\n")
}

type Func = fn(&[Value]) -> gotmpl::Result<Value>;

/// Docker's template functions (docker/cli `templates.basicFunctions`).
const FUNCS: &[(&str, Func)] = &[
    ("json", json),
    ("split", split),
    ("join", join),
    ("title", title),
    ("lower", lower),
    ("upper", upper),
    ("pad", pad),
    ("truncate", truncate),
];

/// The same names for a table's header, where each field is its title: they leave the title
/// as it is (Docker's `HeaderFunctions`), so `{{upper .Names}}` is headed `NAMES`.
const HEADER_FUNCS: &[(&str, Func)] = &[
    ("json", first),
    ("split", first),
    ("join", first),
    ("title", first),
    ("lower", first),
    ("upper", first),
    ("pad", first),
    ("truncate", first),
];

fn parse(text: &str, funcs: &[(&str, Func)]) -> Result<Template> {
    let mut t = Template::new("");
    for (name, f) in funcs {
        t = t.func(name, *f);
    }
    t.parse(text)
        .map_err(|e| anyhow::anyhow!("--format: failed to parse template: {e}"))
}

fn execute(t: &Template, v: &Value) -> Result<String> {
    t.execute_to_string(v)
        .map_err(|e| anyhow::anyhow!("--format: executing the template: {e}"))
}

/// What a table's header is executed over: each field of the items titled.
fn header_value(
    titles: &Titles,
    fields: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Value {
    let mut m = std::collections::BTreeMap::new();
    for k in fields.into_iter().flat_map(|f| f.keys()) {
        m.insert(k.clone(), Value::from(k.to_uppercase()));
    }
    for (field, title) in titles {
        m.insert(field.to_string(), Value::from(*title));
    }
    Value::from(m)
}

/// A JSON value as template data: objects are maps (a missing key is `<no value>`, as on a Go
/// map), integers are Go ints.
pub fn to_value(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Uint(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::from(s.as_str()),
        J::Array(a) => Value::from(a.iter().map(to_value).collect::<Vec<_>>()),
        J::Object(o) => Value::from(
            o.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
    }
}

/// Template data back to JSON (for the `json` function).
fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil | Value::Function(_) => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Uint(u) => J::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.to_string()),
        Value::List(l) => J::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
    }
}

fn arg<'a>(name: &str, args: &'a [Value], i: usize) -> gotmpl::Result<&'a Value> {
    args.get(i).ok_or_else(|| {
        TemplateError::Exec(format!(
            "{name}: wants {} argument(s), got {}",
            i + 1,
            args.len()
        ))
    })
}

fn string<'a>(name: &str, args: &'a [Value], i: usize) -> gotmpl::Result<&'a str> {
    let v = arg(name, args, i)?;
    v.as_str().ok_or_else(|| {
        TemplateError::Exec(format!(
            "{name}: wrong type for value; expected string; got {}",
            v.type_name()
        ))
    })
}

fn int(name: &str, args: &[Value], i: usize) -> gotmpl::Result<usize> {
    let v = arg(name, args, i)?;
    match v {
        Value::Int(n) if *n >= 0 => Ok(*n as usize),
        Value::Uint(n) => Ok(*n as usize),
        _ => Err(TemplateError::Exec(format!(
            "{name}: wrong type for value; expected a non-negative int; got {v}"
        ))),
    }
}

/// `json VALUE`: compact JSON, HTML characters unescaped (Go's encoder with SetEscapeHTML(false)).
fn json(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(Value::from(to_json(arg("json", args, 0)?).to_string()))
}

/// `split STRING SEP` (Go's strings.Split).
fn split(args: &[Value]) -> gotmpl::Result<Value> {
    let (s, sep) = (string("split", args, 0)?, string("split", args, 1)?);
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::from(c.to_string())).collect()
    } else {
        s.split(sep).map(Value::from).collect()
    };
    Ok(Value::from(parts))
}

/// `join LIST SEP` (Go's strings.Join over a list of strings).
fn join(args: &[Value]) -> gotmpl::Result<Value> {
    let sep = string("join", args, 1)?;
    match arg("join", args, 0)? {
        Value::List(l) => {
            let mut parts = Vec::with_capacity(l.len());
            for v in l.iter() {
                match v.as_str() {
                    Some(s) => parts.push(s.to_string()),
                    None => {
                        return Err(TemplateError::Exec(format!(
                            "join: wrong type for value; expected []string; got a list holding {}",
                            v.type_name()
                        )));
                    }
                }
            }
            Ok(Value::from(parts.join(sep)))
        }
        Value::Nil => Ok(Value::from("")),
        v => Err(TemplateError::Exec(format!(
            "join: wrong type for value; expected []string; got {}",
            v.type_name()
        ))),
    }
}

/// `title STRING`: each word's first letter in upper case, the rest left as it is.
fn title(args: &[Value]) -> gotmpl::Result<Value> {
    let mut out = String::new();
    let mut start = true;
    for c in string("title", args, 0)?.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric() && c != '\'';
    }
    Ok(Value::from(out))
}

fn lower(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(Value::from(string("lower", args, 0)?.to_lowercase()))
}

fn upper(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(Value::from(string("upper", args, 0)?.to_uppercase()))
}

/// `pad STRING BEFORE AFTER`: spaces around a non-empty string.
fn pad(args: &[Value]) -> gotmpl::Result<Value> {
    let s = string("pad", args, 0)?;
    let (before, after) = (int("pad", args, 1)?, int("pad", args, 2)?);
    if s.is_empty() {
        return Ok(Value::from(""));
    }
    Ok(Value::from(format!(
        "{}{s}{}",
        " ".repeat(before),
        " ".repeat(after)
    )))
}

/// `truncate STRING N`: the first N characters.
fn truncate(args: &[Value]) -> gotmpl::Result<Value> {
    let s = string("truncate", args, 0)?;
    let n = int("truncate", args, 1)?;
    Ok(Value::from(s.chars().take(n).collect::<String>()))
}

/// A header's function: the title it is given.
fn first(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(args.first().cloned().unwrap_or(Value::Nil))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(format: &str, items: &[serde_json::Value]) -> String {
        let mut out = Vec::new();
        ListFormat::parse(Some(format), "table {{.ID}}")
            .unwrap()
            .write(&mut out, items, &[("ID", "CONTAINER ID")])
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn go_templates_with_dockers_functions() {
        let v = json!({"ID": "abc", "N": 3, "L": ["a", "b"], "M": {"k": "v", "a": "<b>"},
                       "S": "one two", "E": ""});
        let one = |f: &str| lines(f, std::slice::from_ref(&v));
        assert_eq!(one("{{.ID}} {{.Nope}}"), "abc <no value>\n");
        assert_eq!(one("{{.L}} {{.M}}"), "[a b] map[a:<b> k:v]\n");
        assert_eq!(
            one("{{json .L}} {{json .M}}"),
            "[\"a\",\"b\"] {\"a\":\"<b>\",\"k\":\"v\"}\n"
        );
        assert_eq!(one("{{range .L}}<{{.}}>{{end}}"), "<a><b>\n");
        assert_eq!(
            one("{{range $k, $v := .M}}{{$k}}={{$v}};{{end}}"),
            "a=<b>;k=v;\n"
        );
        assert_eq!(one("{{if eq .N 3}}three{{else}}other{{end}}"), "three\n");
        assert_eq!(one("{{if .E}}set{{else}}empty{{end}}"), "empty\n");
        assert_eq!(one("{{index .L 1}} {{index .M \"k\"}}"), "b v\n");
        assert_eq!(
            one("{{join .L \",\"}} {{split .S \" \"}}"),
            "a,b [one two]\n"
        );
        assert_eq!(
            one("{{upper .ID}} {{lower \"AB\"}} {{title .S}}"),
            "ABC ab One Two\n"
        );
        assert_eq!(one("{{printf \"%-5s|%03d\" .ID .N}}"), "abc  |003\n");
        assert_eq!(one("{{println .ID}}"), "abc\n\n");
        assert_eq!(
            one("[{{pad .ID 1 2}}] {{truncate .S 3}} {{len .L}}"),
            "[ abc  ] one 2\n"
        );
        assert_eq!(one("{{.ID}}\\t{{.N}}"), "abc\t3\n");
        assert_eq!(one("json"), format!("{v}\n"));
        assert!(
            ListFormat::parse(Some("{{.ID"), "")
                .err()
                .unwrap()
                .to_string()
                .contains("failed to parse template")
        );
        let mut out = Vec::new();
        let err = ListFormat::parse(Some("{{upper .N}}"), "")
            .unwrap()
            .write(&mut out, std::slice::from_ref(&v), &[])
            .unwrap_err();
        assert!(err.to_string().contains("expected string"), "{err}");
    }

    #[test]
    fn tables_align_as_dockers() {
        let items = [
            json!({"ID": "abcdef", "Names": "web", "Ports": ""}),
            json!({"ID": "a", "Names": "database", "Ports": ""}),
        ];
        // Columns as wide as their widest cell plus 3, at least 10; the last one unpadded.
        assert_eq!(
            lines("table {{.ID}}\\t{{upper .Names}}\\t{{.Names}}", &items),
            "CONTAINER ID   NAMES      NAMES\n\
             abcdef         WEB        web\n\
             a              DATABASE   database\n"
        );
        // The default table; a field without a title is titled in upper case.
        assert_eq!(lines("table", &items[..1]), "CONTAINER ID\nabcdef\n");
        assert_eq!(
            lines("table {{.Names}}:{{.Ports}}", &items[..1]),
            "NAMES:PORTS\nweb:\n"
        );
        // No items: the header alone.
        assert_eq!(lines("table {{.ID}}", &[]), "CONTAINER ID\n");
    }

    #[test]
    fn inspect_formats() {
        let items = [json!({"Id": "x", "State": {"Running": true, "Pid": 42}})];
        let mut out = Vec::new();
        write_inspect(&mut out, Some("{{.State.Pid}} {{.State.Running}}"), &items).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "42 true\n");
        let mut out = Vec::new();
        write_inspect(&mut out, Some("json"), &items).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
            json!(items)
        );
    }
}
