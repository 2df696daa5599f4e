//! RFC 3339 time stamps in UTC, as Docker and the OCI state print them.

use std::time::SystemTime;

/// The zero time as Docker prints it for times that never happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `t` as RFC 3339 with nanoseconds, in UTC (Go's `time.RFC3339Nano` as Docker writes it,
/// but always nine digits): `2023-11-14T22:13:20.123456789Z`.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// `t` as RFC 3339 in whole seconds, in UTC: `2023-11-14T22:13:20Z`.
pub fn rfc3339_seconds(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Now, as [`rfc3339_nanos`].
pub fn now_rfc3339_nanos() -> String {
    rfc3339_nanos(SystemTime::now())
}

/// Parses a UTC RFC 3339 time as [`rfc3339_nanos`] and [`rfc3339_seconds`] write it (with or
/// without a fraction; `Z` only, no offsets). `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.strip_suffix('Z')?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_and_parses_back() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let s = rfc3339_nanos(t);
        assert_eq!(s, "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(rfc3339_seconds(t), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(rfc3339_seconds(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        let now = now_rfc3339_nanos();
        assert_eq!(now.len(), 30, "{now}");
    }

    #[test]
    fn refuses_offsets_and_garbage() {
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20+01:00"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339(""), None);
    }
}
