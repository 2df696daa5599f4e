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

/// Docker's `units.HumanSize`, `HumanSizeWithPrecision(n, 3)` and `BytesSize` (the
/// engine's: the API server prints sizes too).
pub use berth_engine::{bytes_size, human_size, human_size3};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(3)), "3 seconds");
        assert_eq!(human_duration(Duration::from_secs(65)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
    }
}
