//! What every upstream call records (the `forward` upstream and the `llm` one): its latency,
//! and when it fails, the failure by reason, turned into the [`BotError`] the gateway logs.

use tokio::time::Instant;

use super::BotError;
use crate::metrics::{self, Metric};

/// An upstream call's error, as the metrics and the log see it.
pub(crate) trait Failure: std::fmt::Display {
    /// The `reason` label of [`Metric::UpstreamFailures`].
    fn metric_label(&self) -> &'static str;
    /// The HTTP status of the answer, when there was one.
    fn status(&self) -> Option<u16>;
}

/// Records a call to `what` (`upstream`, `llm`) that started at `started` and its outcome;
/// a failure says how long the call took, and the HTTP status when there was one.
pub(crate) fn observe<T, E: Failure>(
    app: &str,
    what: &str,
    started: Instant,
    outcome: Result<T, E>,
) -> Result<T, BotError> {
    metrics::latency(Metric::UpstreamLatency, app, started.elapsed());
    outcome.map_err(|error| {
        metrics::count_with(Metric::UpstreamFailures, Some(app), error.metric_label());
        let elapsed_ms = started.elapsed().as_millis();
        let failure = BotError::new(format!("{what}: {error} (after {elapsed_ms} ms)"));
        match error.status() {
            Some(status) => failure.with_status(status),
            None => failure,
        }
    })
}
