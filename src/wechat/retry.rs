//! When a failed send or token fetch is tried again, and when it must not be: only what
//! cannot have taken effect, unless the platform drops repeats itself. Its own module, as
//! both the sends ([`Messenger`](super::Messenger)) and the token fetches
//! ([`TokenProvider`](super::TokenProvider)) follow it.

use std::time::Duration;

use super::error::ApiError;

/// errcode -1: system busy, try again later.
pub const ERRCODE_SYSTEM_BUSY: i64 = -1;

/// When a failed send, or a failed access token fetch ([`TokenProvider::with_fetch_retry`](super::TokenProvider::with_fetch_retry)),
/// is tried again: after `first_delay`, then twice as long each time
/// (200 ms, 400 ms, 800 ms by default), each delay jittered to between half and one and a
/// half times itself; at most `max_attempts` requests, and no retry that would start later
/// than `total` after the first request. A request already under way is bounded by the
/// client's own timeout (`[api] timeout_ms`), so a send takes at most about `total` plus one
/// request timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests in all, the first included (4 by default); 1 turns retries off.
    pub max_attempts: u32,
    /// The delay before the first retry (200 ms by default).
    pub first_delay: Duration,
    /// No retry starts later than this after the first request (5 s by default).
    pub total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            first_delay: Duration::from_millis(200),
            total: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries: one request.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// How long to wait before trying again, or `None` to give up: a pure function of the
    /// error, the number of requests made so far (`attempts` ≥ 1), the time since the first
    /// one, and `jitter` (uniform in `[0, 1)`; out-of-range values are clamped). Only errors
    /// that show the message was not delivered are retried ([`is_retryable`]).
    pub fn delay(
        &self,
        error: &ApiError,
        attempts: u32,
        elapsed: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        if !is_retryable(error) {
            return None;
        }
        self.backoff(attempts, elapsed, jitter)
    }

    /// The wait before another try of a request that may be repeated, as [`delay`](Self::delay)
    /// gives it, or `None` once the attempts or the time are spent.
    pub fn backoff(&self, attempts: u32, elapsed: Duration, jitter: f64) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(16);
        let base = self.first_delay.saturating_mul(1 << doublings);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let delay = base.mul_f64(0.5 + jitter);
        (elapsed.saturating_add(delay) <= self.total).then_some(delay)
    }
}

/// Whether a failed send may be tried again without delivering the message twice: the
/// platform said it was too busy to take it (errcode -1), or no connection was made, so
/// the request was never sent. A timeout, a broken connection or an HTTP 5xx may come after
/// the platform took the message: those are retried only where the platform drops
/// duplicates itself ([`is_retryable_deduplicated`]). Never a rate limit (45009) nor any
/// other errcode, a 4xx, or an unreadable answer.
pub fn is_retryable(error: &ApiError) -> bool {
    match error {
        ApiError::Platform { errcode, .. } => *errcode == ERRCODE_SYSTEM_BUSY,
        ApiError::Connect(_) => true,
        ApiError::Http { .. }
        | ApiError::Timeout
        | ApiError::Transport(_)
        | ApiError::Decode(_)
        | ApiError::Precondition(_) => false,
    }
}

/// Whether a failed send may be tried again when the platform drops a repeated request
/// itself (WeCom's `enable_duplicate_check`): also a timeout, a broken connection and an
/// HTTP 5xx ([`ApiError::may_have_taken_effect`]).
pub fn is_retryable_deduplicated(error: &ApiError) -> bool {
    is_retryable(error) || error.may_have_taken_effect()
}

/// Uniform in `[0, 1)`.
pub(in crate::wechat) fn jitter() -> f64 {
    f64::from(rand::random::<u32>()) / (f64::from(u32::MAX) + 1.0)
}
