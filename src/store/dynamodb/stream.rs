//! AI bot stream snapshots on the dedup item: `sseq` (its sequence), `stext` (the text so
//! far, sealed), `sfin` (finished), `sw` (the writer), `sat` (when the worker started, ms).

use super::*;
use crate::store::{JobState, StoredStream, StreamStore, StreamWrite};

impl StreamStore for DynamoStore {
    async fn stream(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> Result<Option<StoredStream>, StoreError> {
        let Some(item) = self.get(key).await? else {
            return Ok(None);
        };
        // TTL deletion lags: an expired item is gone.
        if get_n(&item, EXPIRES_AT).is_some_and(|exp| exp < now_ms / 1000) {
            return Ok(None);
        }
        let content = match get_s(&item, "stext") {
            Some(stored) => self.opened(key, "stext", stored)?,
            None => String::new(),
        };
        Ok(Some(StoredStream {
            seq: get_n(&item, "sseq").unwrap_or(0),
            content,
            finish: matches!(item.get("sfin"), Some(AttributeValue::Bool(true))),
            started_ms: get_n(&item, "sat"),
        }))
    }

    async fn put_stream(
        &self,
        key: &str,
        write: StreamWrite<'_>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        // Only the worker holding the job writes, as for every other write of a job's worker:
        // a worker that lost the job cannot, and one that took it over can, whatever its
        // predecessor's sequence. Within one writer the sequence keeps order (an attempt
        // that arrives late cannot overwrite a later snapshot); the same sequence by the same
        // writer is this write retried, which sets the same values again, so the condition
        // lets it through rather than refusing its own write.
        let request = self
            .update(key)
            .condition_expression(
                "job = :running AND job_worker = :w AND (attribute_not_exists(sw) OR sw <> :w OR sseq <= :seq)",
            )
            .expression_attribute_values(":running", s(JobState::Running.as_str()))
            .update_expression(
                "SET sseq = :seq, stext = :t, sfin = :f, sw = :w, sat = if_not_exists(sat, :now)",
            )
            .expression_attribute_values(":seq", n(write.seq))
            .expression_attribute_values(":t", self.sealed(key, "stext", write.content))
            .expression_attribute_values(":f", AttributeValue::Bool(write.finish))
            .expression_attribute_values(":w", s(write.writer))
            .expression_attribute_values(":now", n(times.now_ms));
        self.made_or_own(key, request, |_| false).await
    }
}
