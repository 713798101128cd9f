//! What becomes of a reply the bot gives after the time budget: one strategy per gateway,
//! chosen when it is built.
//!
//! Whatever the strategy, the callback is answered within the budget, and a reply that
//! comes later can only follow as an active message: for apps that can send one (a
//! `secret`, on WeCom an `agent_id`, and a signed body or `plaintext_late_replies`).
//! docs/deferred-replies.md says what each strategy guarantees.

mod background;
mod jobs;
mod send;

pub use jobs::JobOutcome;

pub(super) use background::{InFlight, OwnedInbound, deliver_late};
pub(super) use send::Delivery;

/// What becomes of a reply the bot gives after the time budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LateReplies {
    /// The callback is answered empty at the budget and the late bot abandoned: a late
    /// answer is worse than none (the platform retries it and shows the user an error).
    #[default]
    Dropped,
    /// The bot goes on in the background (up to `gateway.deferred_limit_ms`) and its reply
    /// is sent as an active message. For a process that keeps running after it answers:
    /// `wxgate serve`, or a gateway embedded in a server.
    InBackground,
    /// The bot triages each message: slow replies become reply jobs on the callback's store
    /// record, decided by [`Gateway::run_job`](super::Gateway::run_job) in a worker that the
    /// table's stream starts; the callback waits for the job within the budget, and a later
    /// reply is sent actively. What the Lambda function does over DynamoDB; over another
    /// store, the code embedding the gateway runs the jobs.
    AsJobs,
}

/// The failure of a bot that missed `gateway.deferred_limit_ms`.
pub(super) fn missed_limit(limit: std::time::Duration) -> crate::bot::BotError {
    crate::bot::BotError::new(format!(
        "the bot missed the deferred-reply limit of {} ms",
        limit.as_millis()
    ))
}

/// Time kept before an invocation's deadline to record how a job ended.
const END_MARGIN_MS: u64 = 1_500;

/// `limit`, shortened to end [`END_MARGIN_MS`] before `end_by` (epoch ms; a Lambda
/// invocation's deadline), so a job cut short is recorded rather than killed.
pub(crate) fn within_invocation(
    limit: std::time::Duration,
    end_by: Option<crate::clock::EpochMillis>,
) -> std::time::Duration {
    match end_by {
        Some(end_by) => limit.min(std::time::Duration::from_millis(
            end_by
                .saturating_sub(crate::clock::now_ms())
                .saturating_sub(END_MARGIN_MS),
        )),
        None => limit,
    }
}

/// Late replies running in the background, at most this many; beyond it a late bot is
/// abandoned (its callback was answered empty) with a warning.
pub(super) const MAX_IN_BACKGROUND: u32 = 256;
