//! ISO-8601 UTC timestamps, as every server event carries them.

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats a time as ISO-8601 UTC with millisecond precision, e.g.
/// `2025-01-15T10:00:00.123Z`.
pub fn format(t: SystemTime) -> String {
    let dt = OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("a UTC time always formats")
}

/// Now, formatted.
pub fn now() -> String {
    format(SystemTime::now())
}

/// Formats Unix milliseconds.
pub fn from_unix_ms(ms: i64) -> String {
    let t = if ms >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    };
    format(t)
}

/// Parses an ISO-8601 / RFC 3339 timestamp that is explicitly UTC (`Z` or
/// `+00:00`). Anything else is `None`.
pub fn parse_utc(s: &str) -> Option<SystemTime> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    if dt.offset() != time::UtcOffset::UTC {
        return None;
    }
    Some(dt.into())
}

/// Whether `s` is a UTC timestamp within `max_skew` of `now`.
pub fn is_recent(s: &str, now: SystemTime, max_skew: Duration) -> bool {
    let Some(t) = parse_utc(s) else { return false };
    let skew = match t.duration_since(now) {
        Ok(ahead) => ahead,
        Err(behind) => behind.duration(),
    };
    skew <= max_skew
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_millis() {
        assert_eq!(from_unix_ms(1_736_935_200_123), "2025-01-15T10:00:00.123Z");
        assert_eq!(from_unix_ms(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn parses_protocol_examples() {
        let t = parse_utc("2025-01-15T10:00:00Z").unwrap();
        assert_eq!(format(t), "2025-01-15T10:00:00.000Z");
        assert!(parse_utc("2025-01-15T10:00:00.5+00:00").is_some());
        assert!(parse_utc("2025-01-15T11:00:00+01:00").is_none());
        assert!(parse_utc("2025-01-15 10:00:00").is_none());
        assert!(parse_utc("1736935200").is_none());
    }

    #[test]
    fn recent_window() {
        let now = parse_utc("2025-01-15T10:00:00Z").unwrap();
        let five = Duration::from_secs(300);
        assert!(is_recent("2025-01-15T10:04:59Z", now, five));
        assert!(is_recent("2025-01-15T09:55:00Z", now, five));
        assert!(!is_recent("2025-01-15T09:54:59Z", now, five));
        assert!(!is_recent("garbage", now, five));
    }
}
