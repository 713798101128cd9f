//! Wall-clock time, the one place wxgate reads it. Times stored or compared with the store
//! are [`EpochMillis`]; the protocols' `timestamp`s are whole seconds ([`unix_now`], the
//! same clock truncated). Waiting is measured with tokio's monotonic clock instead, so
//! tests can pause it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type EpochMillis = u64;

/// A time source, replaceable where tests move time without sleeping (token expiry).
pub type Clock = Arc<dyn Fn() -> EpochMillis + Send + Sync>;

/// The system clock as a [`Clock`].
pub fn system() -> Clock {
    Arc::new(now_ms)
}

/// The current time as [`EpochMillis`]; 0 before 1970, saturating far in the future.
pub fn now_ms() -> EpochMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// A duration in whole milliseconds, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Seconds since the Unix epoch: [`now_ms`] truncated to whole seconds.
pub fn unix_now() -> u64 {
    now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_the_milliseconds_truncated() {
        let (before, secs, after) = (now_ms(), unix_now(), now_ms());
        assert!(before / 1000 <= secs && secs <= after / 1000);
        assert!(secs > 1_700_000_000, "a clock before 2023: {secs}");
        assert!((system())() >= after);
    }
}
