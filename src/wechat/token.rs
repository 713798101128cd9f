//! The token as handed out, the provider's settings, and the pure rules that decide when a
//! token is fresh, when to refresh it, and what to do with what the store holds.
//!
//! Everything here is a function of its arguments (times included), so the rules are unit
//! tested without a store, a platform or a clock.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::EpochMillis;
use crate::store::{CachedToken, TokenRecord};

/// How long an instance that lost the refresh lease keeps using the old token before it
/// looks in the store again for the new one. The holder needs one platform round trip.
pub(crate) const LOSER_RECHECK_MS: u64 = 100;
/// First and longest pause between store reads while waiting for another instance's fetch.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(25);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// An access token. Cheap to clone; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    /// Wraps a token value.
    pub fn new(value: &str) -> Self {
        Self(Arc::from(value))
    }

    /// The token itself, to put in a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

/// How [`TokenProvider`](super::TokenProvider) shares and refreshes tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSettings {
    /// Refresh this long before the token expires, so callers never wait on a fetch in
    /// steady state (300 s by default; an Official Account's `stable_token` issues the next
    /// token in the last 5 minutes of the current one).
    pub refresh_ahead: Duration,
    /// How long the refresh lease in the store holds: longer than a fetch can take, short
    /// enough that a crashed holder does not stall the others for long (10 s by default).
    pub lease: Duration,
    /// The longest a caller waits for another instance's fetch (5 s by default).
    pub wait: Duration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            refresh_ahead: Duration::from_secs(300),
            lease: Duration::from_secs(10),
            wait: Duration::from_secs(5),
        }
    }
}

pub(crate) use crate::clock::millis;

/// When a token expires that the platform issued, valid for `expires_in_secs`, in answer
/// to a request sent at `requested_at_ms`. Counting from the request rather than the
/// answer errs on the early side.
pub(crate) fn expires_at(requested_at_ms: EpochMillis, expires_in_secs: u64) -> EpochMillis {
    requested_at_ms.saturating_add(expires_in_secs.saturating_mul(1000))
}

/// When to refresh a token this instance just fetched.
///
/// A new token: `refresh_ahead` before expiry, but never earlier than half its lifetime.
/// The same token handed back again (`renewed` false: WeCom repeats a token until it
/// expires, `stable_token` until its last 5 minutes): at its expiry, since asking earlier
/// would only get the same answer again.
pub(crate) fn refresh_at(
    requested_at_ms: EpochMillis,
    expires_at_ms: EpochMillis,
    refresh_ahead_ms: u64,
    renewed: bool,
) -> EpochMillis {
    if !renewed {
        return expires_at_ms;
    }
    let lifetime = expires_at_ms.saturating_sub(requested_at_ms);
    expires_at_ms.saturating_sub(refresh_ahead_ms.min(lifetime / 2))
}

/// What to do with what the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A fresh token: use it until its refresh point.
    Use {
        token: CachedToken,
        refresh_at_ms: EpochMillis,
    },
    /// A valid but stale token while another instance holds the lease to refresh it: use
    /// it, and look for the new one at `recheck_at_ms`.
    UseWhileRefreshing {
        token: CachedToken,
        recheck_at_ms: EpochMillis,
    },
    /// No fresh token and nobody refreshing: take the lease and fetch. `old` is a valid but
    /// stale token to fall back on.
    Refresh { old: Option<CachedToken> },
    /// No usable token and another instance is fetching one: wait for it.
    Wait,
}

/// Decides on a store read at `now_ms`. A token equal to `refused` (one the platform
/// refused in this instance, whose removal from the store may have failed) counts as absent.
pub(crate) fn decide(record: &TokenRecord, now_ms: EpochMillis, refused: Option<&str>) -> Step {
    let token = record
        .token
        .as_ref()
        .filter(|t| t.expires_at_ms > now_ms && Some(t.value.as_str()) != refused);
    let lease_held = record.lease_until_ms != 0 && record.lease_until_ms >= now_ms;
    match token {
        // The refresh point the fetching instance stored, so every instance agrees on it.
        Some(t) if t.refresh_at_ms > now_ms => Step::Use {
            token: t.clone(),
            refresh_at_ms: t.refresh_at_ms,
        },
        Some(t) if lease_held => Step::UseWhileRefreshing {
            token: t.clone(),
            recheck_at_ms: loser_recheck_at(t.expires_at_ms, record.lease_until_ms, now_ms),
        },
        None if lease_held => Step::Wait,
        old => Step::Refresh { old: old.cloned() },
    }
}

/// When an instance using a stale token while another refreshes it looks again: soon, and
/// no later than the lease or the token runs out.
pub(crate) fn loser_recheck_at(
    expires_at_ms: EpochMillis,
    lease_until_ms: EpochMillis,
    now_ms: EpochMillis,
) -> EpochMillis {
    now_ms
        .saturating_add(LOSER_RECHECK_MS)
        .min(lease_until_ms.saturating_add(1))
        .min(expires_at_ms)
}

/// The pause after `current` while polling the store: doubling up to [`MAX_BACKOFF`].
pub(crate) fn next_backoff(current: Duration) -> Duration {
    current.saturating_mul(2).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AHEAD: u64 = 300_000;

    fn tok(value: &str, expires_at_ms: u64) -> CachedToken {
        CachedToken {
            value: value.into(),
            expires_at_ms,
            refresh_at_ms: expires_at_ms.saturating_sub(AHEAD),
        }
    }

    fn record(token: Option<CachedToken>, lease_until_ms: u64) -> TokenRecord {
        TokenRecord {
            token,
            lease_until_ms,
        }
    }

    #[test]
    fn freshness_is_strictly_before_the_stored_refresh_point() {
        let t = tok("T", 1_000_000); // refresh point 700_000
        assert!(matches!(
            decide(&record(Some(t.clone()), 0), 699_999, None),
            Step::Use { .. }
        ));
        assert!(matches!(
            decide(&record(Some(t), 0), 700_000, None),
            Step::Refresh { .. }
        ));
        // A token stored as "not renewed" is used until it expires.
        let repeated = CachedToken {
            refresh_at_ms: 1_000_000,
            ..tok("T", 1_000_000)
        };
        assert!(matches!(
            decide(&record(Some(repeated), 0), 999_999, None),
            Step::Use { .. }
        ));
    }

    #[test]
    fn expiry_counts_from_the_request() {
        assert_eq!(expires_at(1_000, 7200), 7_201_000);
        assert_eq!(expires_at(u64::MAX - 5, 7200), u64::MAX);
        assert_eq!(expires_at(1_000, u64::MAX), u64::MAX);
    }

    #[test]
    fn refresh_point_of_a_fetched_token() {
        // A full lifetime: refresh_ahead before expiry.
        assert_eq!(refresh_at(0, 7_200_000, AHEAD, true), 6_900_000);
        // A short lifetime: at half of it.
        assert_eq!(refresh_at(0, 300_000, AHEAD, true), 150_000);
        assert_eq!(refresh_at(0, 2_000, 1_000, true), 1_000);
        assert_eq!(refresh_at(5, 5, AHEAD, true), 5); // expires_in 0
        // The platform handed back the token it had issued before: use it to the end.
        assert_eq!(refresh_at(0, 300_000, AHEAD, false), 300_000);
    }

    #[test]
    fn fresh_stored_token_is_used() {
        let t = tok("T", 1_000_000);
        let step = decide(&record(Some(t.clone()), 0), 0, None);
        assert_eq!(
            step,
            Step::Use {
                token: t,
                refresh_at_ms: 700_000
            }
        );
    }

    #[test]
    fn stale_token_without_lease_is_refreshed_with_fallback() {
        let t = tok("T", 1_000_000);
        let step = decide(&record(Some(t.clone()), 0), 800_000, None);
        assert_eq!(step, Step::Refresh { old: Some(t) });
        // A lease that ran out is no lease.
        let t = tok("T", 1_000_000);
        let step = decide(&record(Some(t.clone()), 799_999), 800_000, None);
        assert_eq!(step, Step::Refresh { old: Some(t) });
    }

    #[test]
    fn stale_token_under_someone_elses_lease_is_used_meanwhile() {
        let t = tok("T", 1_000_000);
        let step = decide(&record(Some(t.clone()), 810_000), 800_000, None);
        assert_eq!(
            step,
            Step::UseWhileRefreshing {
                token: t,
                recheck_at_ms: 800_000 + LOSER_RECHECK_MS
            }
        );
    }

    #[test]
    fn nothing_stored() {
        assert_eq!(
            decide(&record(None, 0), 5, None),
            Step::Refresh { old: None }
        );
        assert_eq!(decide(&record(None, 5), 5, None), Step::Wait);
        assert_eq!(decide(&record(None, 10), 5, None), Step::Wait);
        assert_eq!(
            decide(&record(None, 4), 5, None),
            Step::Refresh { old: None }
        );
    }

    #[test]
    fn expired_or_refused_tokens_count_as_absent() {
        let expired = record(Some(tok("T", 5)), 0);
        assert_eq!(decide(&expired, 5, None), Step::Refresh { old: None });
        let refused = record(Some(tok("T", 1_000_000)), 0);
        assert_eq!(decide(&refused, 0, Some("T")), Step::Refresh { old: None });
        let refused_leased = record(Some(tok("T", 1_000_000)), 10);
        assert_eq!(decide(&refused_leased, 0, Some("T")), Step::Wait);
        assert!(matches!(
            decide(&refused, 0, Some("other")),
            Step::Use { .. }
        ));
    }

    #[test]
    fn loser_recheck_is_bounded_by_lease_and_expiry() {
        assert_eq!(loser_recheck_at(10_000, 5_000, 0), LOSER_RECHECK_MS);
        assert_eq!(loser_recheck_at(10_000, 20, 0), 21);
        assert_eq!(loser_recheck_at(30, 5_000, 0), 30);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut d = FIRST_BACKOFF;
        let mut seen = vec![d];
        for _ in 0..5 {
            d = next_backoff(d);
            seen.push(d);
        }
        let ms: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [25, 50, 100, 200, 200, 200]);
    }

    #[test]
    fn access_token_debug_is_redacted() {
        let t = AccessToken::new("T0KEN");
        assert_eq!(t.expose(), "T0KEN");
        assert!(!format!("{t:?}").contains("T0KEN"));
    }

    #[test]
    fn millis_saturates() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
