//! Presentation as Docker prints it: human durations and sizes (tables and `--format` are
//! `commands::template`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Docker's `units.HumanDuration` (the engine's, which writes `Status` with it).
pub use berth_engine::human_duration;

/// Go's `time.Time.String()` of a unix time, in UTC (`2024-01-02 03:04:05 +0000 UTC`), as
/// Docker's `CreatedAt`.
pub fn go_time(unix: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} +0000 UTC", s.trim_end_matches('Z').replace('T', " "))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
