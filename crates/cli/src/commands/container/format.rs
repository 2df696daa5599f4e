//! Presentation as Docker prints it: human durations and sizes, aligned tables, and Go-like
//! `--format` templates (`{{.ID}}`, `{{.State.Status}}`, `{{json .Config}}`, `table ...`).

use std::time::{Duration, SystemTime};

use serde_json::Value;

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if (s as f64 / 3600.0).round() as u64 == 1 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", (s as f64 / 3600.0).round() as u64)
    } else if s < 7 * 24 * 3600 * 2 {
        plural(s / 86400, "day")
    } else if s < 30 * 24 * 3600 * 3 {
        plural(s / (7 * 86400), "week")
    } else if s < 365 * 24 * 3600 * 2 {
        plural(s / (30 * 86400), "month")
    } else {
        plural(s / (365 * 86400), "year")
    }
}

/// Time since an RFC 3339 stamp.
pub fn since(t: &str) -> Duration {
    berth_engine::parse_rfc3339(t)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

fn size(n: f64, base: f64, units: &[&str]) -> String {
    let mut v = n;
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    if i == 0 {
        format!("{v}{}", units[0])
    } else {
        format!("{}{}", trim_float(v), units[i])
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.4}");
    let s: String = s
        .chars()
        .take(if v >= 100.0 { 3 } else { 4 } + s.find('.').map_or(0, |_| 1))
        .collect();
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    if s.is_empty() { "0".into() } else { s }
}

/// Docker's `units.HumanSize` (decimal: kB, MB, GB).
pub fn human_size(n: u64) -> String {
    size(n as f64, 1000.0, &["B", "kB", "MB", "GB", "TB"])
}

/// Docker's `units.BytesSize` (binary: KiB, MiB, GiB).
pub fn bytes_size(n: u64) -> String {
    size(n as f64, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
}

/// Prints rows aligned like Go's tabwriter with Docker's padding (3 spaces).
pub fn print_table(rows: &[Vec<String>]) {
    let _ = write_table(&mut std::io::stdout().lock(), rows);
}

/// [`print_table`] to `out`: each column as wide as its widest cell (in characters) plus 3
/// spaces, the last one unpadded, trailing blanks trimmed.
pub fn write_table(out: &mut impl std::io::Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(width[i] - c.chars().count() + 3));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for k in path.split('.').filter(|k| !k.is_empty()) {
        cur = cur.get(k)?;
    }
    Some(cur)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Renders a Go-like template: `{{.A.B}}`, `{{json .A}}`, `{{json .}}`, `\t`, `\n`.
pub fn render(template: &str, v: &Value) -> String {
    let t = template.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = t.as_str();
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let expr = rest[i + 2..i + j].trim();
        let (json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let path = path.strip_prefix('.').unwrap_or(path);
        let val = lookup(v, path).cloned().unwrap_or(Value::Null);
        out.push_str(&if json { val.to_string() } else { plain(&val) });
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

/// The header of a `table` template: field names turned into Docker's column titles.
pub fn table_header(template: &str, titles: &[(&str, &str)]) -> String {
    let mut h = template.replace("\\t", "\t");
    for (field, title) in titles {
        h = h.replace(&format!("{{{{.{field}}}}}"), title);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(3)), "3 seconds");
        assert_eq!(human_duration(Duration::from_secs(65)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(bytes_size(32 << 20), "32MiB");
    }

    #[test]
    fn templates() {
        let v = json!({"ID": "abc", "State": {"Status": "running"}, "L": ["a", "b"]});
        assert_eq!(render("{{.ID}} {{.State.Status}}", &v), "abc running");
        assert_eq!(render("{{json .L}}", &v), "[\"a\",\"b\"]");
        assert_eq!(render("{{.ID}}\\t{{.Nope}}", &v), "abc\t<no value>");
    }
}
