//! AI bot streams: the snapshot of a streamed reply, kept on the message's dedup record so
//! a refresh callback on any instance reads the latest text, and written by the one worker
//! producing it, each write conditional on its sequence number.

use std::future::Future;

use super::{DedupTimes, StoreError};
use crate::clock::EpochMillis;

/// A stream's state as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredStream {
    /// How many snapshots were written (0: none yet; the message is claimed).
    pub seq: u64,
    /// The whole text so far.
    pub content: String,
    /// Whether the stream is finished.
    pub finish: bool,
    /// When the worker started producing it (epoch ms), once it has.
    pub started_ms: Option<EpochMillis>,
}

/// One snapshot to write.
#[derive(Debug, Clone, Copy)]
pub struct StreamWrite<'a> {
    /// Who writes: the worker producing the stream.
    pub writer: &'a str,
    /// Greater than every sequence this writer wrote to the stream before.
    pub seq: u64,
    /// The whole text so far.
    pub content: &'a str,
    /// The last snapshot.
    pub finish: bool,
}

/// Stream snapshots on dedup records.
pub trait StreamStore: Send + Sync {
    /// The stream on the dedup record `key`: `None` when there is no such record (an
    /// unknown or long-expired stream); a record claimed but not yet written reads as
    /// sequence 0, empty, unfinished.
    fn stream(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> impl Future<Output = Result<Option<StoredStream>, StoreError>> + Send;

    /// Writes a snapshot, only when `write.writer` holds the record's job (running) and,
    /// when the stored snapshot is its own, `write.seq` is not below the stored sequence
    /// (equal: this write, retried after its answer was lost). A worker that took the job
    /// over writes whatever its predecessor's sequence. `true` when it is stored.
    fn put_stream(
        &self,
        key: &str,
        write: StreamWrite<'_>,
        times: DedupTimes,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
