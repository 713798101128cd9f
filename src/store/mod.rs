//! Shared state: callback de-duplication records, cached access tokens, and the Open
//! Platform's tickets and authorizations.
//!
//! Two backends keep the same contract: [`MemoryStore`] inside one process (`wxgate serve`,
//! tests) and [`DynamoStore`], one DynamoDB table shared by every Lambda instance. Every
//! operation is a single conditional write or a single consistent read, so concurrency is
//! settled by the store and never by a read-then-write in the caller.
//!
//! Time is passed in (`now_ms`, milliseconds since the Unix epoch) rather than read inside,
//! so the contract tests can move the clock. Expired items are treated as absent on every
//! read: DynamoDB's TTL deletion is lazy and may lag by days.

mod backend;
pub mod dynamodb;
mod keys;
pub mod memory;
pub mod open;
pub mod sealing;
mod stream;

use std::future::Future;

use crate::clock::EpochMillis;

pub use backend::Backend;
pub use dynamodb::DynamoStore;
pub use keys::{
    MAX_DEDUP_KEY_LEN, aibot_key, authorization_key, authorization_prefix, callback_key, dedup_key,
    fingerprint, recovery_key, signature_key, ticket_key, ticket_push_key, token_key,
};
pub use memory::MemoryStore;
pub use open::{AuthorizationRecord, AuthorizationState, Grant, OpenStore, Ticket};
pub use stream::{StoredStream, StreamStore, StreamWrite};

/// A random identity for one claim or one lease holder, so a holder can prove a record is
/// still its own when it writes back.
pub fn new_owner() -> String {
    let bytes: [u8; 12] = rand::random();
    hex::encode(bytes)
}

/// What a store failure was. Callers fail open on these: a callback is still answered.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer in time.
    #[error("the store did not answer within {0} ms")]
    Timeout(u64),
    /// The request failed (network, throttling, permissions, missing table…).
    #[error("store request failed: {0}")]
    Backend(String),
    /// The store refused the request as invalid (DynamoDB's `ValidationException`, e.g. an
    /// item over 400 KB): not an outage, a request wxgate should never make.
    #[error("the store refused the request as invalid: {0}")]
    Rejected(String),
    /// An item held something this version cannot read.
    #[error("unreadable store item {key}: {reason}")]
    Corrupt {
        /// The item's key.
        key: String,
        /// What was wrong.
        reason: String,
    },
}

/// The answer to a claim on a dedup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This delivery is the first (or took over a dead holder's claim): run the bot, then
    /// [`DedupStore::complete`] with the same owner.
    Won,
    /// An earlier delivery recorded its answer: send it again (`None` is the empty answer).
    Done {
        /// The plaintext reply XML recorded.
        reply: Option<String>,
    },
    /// An earlier delivery is still deciding; its claim is good until `lease_until_ms`.
    InProgress {
        /// When the holder's lease runs out and the claim may be taken over.
        lease_until_ms: EpochMillis,
    },
}

/// A dedup record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DedupRecord {
    /// Being decided by the holder of a lease.
    InProgress {
        /// When the lease runs out.
        lease_until_ms: EpochMillis,
    },
    /// Decided; the reply to send for every later delivery.
    Done {
        /// The plaintext reply XML, `None` for the empty answer.
        reply: Option<String>,
    },
}

/// The reply job a callback's claim carries when its reply is decided by a worker (Lambda
/// deferred replies, docs/deferred-replies.md): what the worker needs to decide it.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    /// The configured app's name.
    pub app: &'a str,
    /// Open Platform: the authorized account the message is for.
    pub authorizer_app_id: Option<&'a str>,
    /// The decrypted callback XML, parsed again by the worker.
    pub message: &'a str,
    /// Until when the callback waits for a reply to send passively; after it, the worker
    /// sends the reply as an active message.
    pub answer_by_ms: EpochMillis,
}

/// Where a reply job is. Only `Pending` and a `Running` job whose worker's time ran out
/// can be taken by a worker; the last four are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Written by the claim; no worker has it yet.
    Pending,
    /// A worker is deciding the reply.
    Running,
    /// The reply was stored in time and answered passively by the callback.
    Answered,
    /// The reply is being sent as an active message (a crash here is not retried: the
    /// message may have gone out).
    Sending,
    /// The active message was sent.
    Sent,
    /// The bot gave no reply.
    NoReply,
    /// The job failed; `reason` says why. Kept longer, for inspection.
    Failed,
}

impl JobState {
    /// The name stored in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Answered => "answered",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::NoReply => "none",
            Self::Failed => "failed",
        }
    }

    /// The state of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Answered,
            Self::Sending,
            Self::Sent,
            Self::NoReply,
            Self::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

/// A reply job as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Where it is.
    pub state: JobState,
    /// The app it is for.
    pub app: String,
    /// Open Platform: the authorized account.
    pub authorizer_app_id: Option<String>,
    /// The decrypted callback XML, until the job is answered, sent or found without a reply
    /// (then removed: message contents are not kept longer than the job needs them). A
    /// failed job keeps it, for inspection, as long as its record.
    pub message: Option<String>,
    /// Until when the callback waits for a passive reply.
    pub answer_by_ms: EpochMillis,
    /// Why it failed (`Failed`).
    pub reason: Option<String>,
    /// The platform's id of the active message (`Sent`, when the platform gave one).
    pub msgid: Option<String>,
}

/// How a job that was not answered passively ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd<'a> {
    /// The active message went out.
    Sent {
        /// The platform's message id, if any.
        msgid: Option<&'a str>,
    },
    /// The bot gave no reply: nothing to send.
    NoReply,
    /// The bot, the upstream or the send failed.
    Failed {
        /// Why, for whoever inspects the record (no message contents, no secrets).
        reason: &'a str,
    },
}

impl JobEnd<'_> {
    /// The state the job ends in.
    pub fn state(&self) -> JobState {
        match self {
            Self::Sent { .. } => JobState::Sent,
            Self::NoReply => JobState::NoReply,
            Self::Failed { .. } => JobState::Failed,
        }
    }
}

/// The largest decrypted message a reply job carries on its record. With the largest reply
/// a record holds ([`crate::reply::MAX_REPLY_XML_BYTES`]) it keeps every item well under
/// DynamoDB's 400 KB.
pub const MAX_JOB_MESSAGE_BYTES: usize = 128 * 1024;

/// How long a failed job's record is kept at least, so it can be inspected.
pub const FAILED_JOB_RETENTION_SECS: u64 = 7 * 86_400;

/// The state of one cached access token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token and when it expires, if one is stored.
    pub token: Option<CachedToken>,
    /// When the current refresh lease runs out (0 when nobody holds one).
    pub lease_until_ms: EpochMillis,
}

/// An access token, its expiry, and when it should be refreshed.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedToken {
    /// The access token itself.
    pub value: String,
    /// When the platform stops accepting it.
    pub expires_at_ms: EpochMillis,
    /// From when an instance should fetch a new one. The instance that fetched the token
    /// decides it (it knows the lifetime the platform granted and whether the platform
    /// renewed the token), and every instance reading it from the store follows it.
    pub refresh_at_ms: EpochMillis,
}

impl std::fmt::Debug for CachedToken {
    // Tokens are credentials: never in logs or panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("value", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("refresh_at_ms", &self.refresh_at_ms)
            .finish()
    }
}

/// How long a dedup claim holds and how long its record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupTimes {
    /// The current time.
    pub now_ms: EpochMillis,
    /// How long the claim holds before another delivery may take it over.
    pub lease_ms: u64,
    /// How long the record is kept after its last write, in seconds.
    pub retention_secs: u64,
}

impl DedupTimes {
    /// When the lease of a claim made now runs out.
    pub fn lease_until_ms(&self) -> EpochMillis {
        self.now_ms.saturating_add(self.lease_ms)
    }

    /// The TTL (epoch seconds) of a record written now.
    pub fn expires_at_secs(&self) -> u64 {
        (self.now_ms / 1000).saturating_add(self.retention_secs)
    }

    /// The TTL of a record ending as `end`: a failed job is kept longer, for inspection.
    pub fn job_expires_at_secs(&self, end: JobEnd<'_>) -> u64 {
        match end {
            JobEnd::Failed { .. } => (self.now_ms / 1000)
                .saturating_add(self.retention_secs.max(FAILED_JOB_RETENTION_SECS)),
            _ => self.expires_at_secs(),
        }
    }
}

/// The whole store contract: dedup records (with their reply jobs) and cached tokens.
/// Keys are complete item keys; [`dedup_key`] and [`token_key`] build them, so the two
/// kinds of item never collide.
pub trait Store:
    DedupStore + JobStore + SignatureStore + TokenStore + OpenStore + StreamStore
{
}

impl<S: DedupStore + JobStore + SignatureStore + TokenStore + OpenStore + StreamStore> Store for S {}

/// Callback dedup records and the reply jobs they may carry.
pub trait DedupStore: Send + Sync {
    /// Claims a dedup key for `owner` with one conditional write. The claim succeeds when the
    /// key is new, its record has expired, or it is in progress under a lease that ran out.
    fn claim(
        &self,
        key: &str,
        owner: &str,
        times: DedupTimes,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Claims `key` and records `reply` in the same conditional write, for a reply decided
    /// before the claim: one a local rule gives, whose deciding had no side effects, so a
    /// delivery that loses the race just answers the recorded reply instead of its own.
    /// Succeeds ([`Claim::Won`], the record then done) where [`claim`](Self::claim) would;
    /// otherwise says what holds the key, as `claim` does. A retried write that had landed
    /// is recognised as this owner's.
    ///
    /// The default claims and then completes (two writes); the crate's stores make one.
    fn claim_decided(
        &self,
        key: &str,
        owner: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        async move {
            let claim = self.claim(key, owner, times).await?;
            if matches!(claim, Claim::Won) && !self.complete(key, owner, reply, times).await? {
                // Taken over between the two writes: what the new holder does is the record.
                return Ok(Claim::InProgress {
                    lease_until_ms: times.lease_until_ms(),
                });
            }
            Ok(claim)
        }
    }

    /// Records the decided reply of a claim, if `owner` still holds it in progress. Returns
    /// `false` when the claim was taken over meanwhile (the record is then left to the new
    /// holder) or a job's worker stored the reply first (read it with
    /// [`dedup_record`](Self::dedup_record)).
    fn complete(
        &self,
        key: &str,
        owner: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Reads a dedup record; an expired one reads as `None`.
    fn dedup_record(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> impl Future<Output = Result<Option<DedupRecord>, StoreError>> + Send;
}

/// Reply jobs, carried on the dedup records of the callbacks they answer.
pub trait JobStore: Send + Sync {
    /// As [`claim`](Self::claim), but a won claim also records a reply job (state
    /// `Pending`) for a worker to decide. A record carrying a job is never taken over: its
    /// worker decides it; once the callback's lease has run out it reads as done with the
    /// empty answer (the reply then goes out actively).
    fn claim_with_job(
        &self,
        key: &str,
        owner: &str,
        times: DedupTimes,
        job: NewJob<'_>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Gives a job to `worker` until `now_ms + limit_ms`: a pending one, or a running one
    /// whose worker's time ran out (it crashed). Returns the job as taken (in the same
    /// request), or `None` when it could not be taken.
    fn take_job(
        &self,
        key: &str,
        worker: &str,
        now_ms: EpochMillis,
        limit_ms: u64,
    ) -> impl Future<Output = Result<Option<JobRecord>, StoreError>> + Send;

    /// Stores the reply `worker` decided for the callback to answer passively: only while
    /// the callback is still waiting (record in progress, `answer_by` not passed). Returns
    /// `false` when it is too late; the reply must then be sent actively.
    fn answer_job(
        &self,
        key: &str,
        worker: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks the job as being sent actively (and the callback as answered empty, for its
    /// retries), if `worker` still holds it running. Recorded before the send, so a
    /// redelivered job never sends twice. Returns whether it was marked.
    fn start_sending(
        &self,
        key: &str,
        worker: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends a job `worker` holds (running or sending) that was not answered passively; the
    /// callback then answers empty. A failed job is kept at least
    /// [`FAILED_JOB_RETENTION_SECS`]. Returns whether `worker` still held it.
    fn end_job(
        &self,
        key: &str,
        worker: &str,
        end: JobEnd<'_>,
        times: DedupTimes,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Reads the job of a dedup record; `None` when there is none or it expired.
    fn job(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> impl Future<Output = Result<Option<JobRecord>, StoreError>> + Send;
}

/// Plaintext mode: each signature bound to the body it first came with.
pub trait SignatureStore: Send + Sync {
    /// Binds a signed request's signature to its body (`body_hash`, a digest) until
    /// `expires_at_secs`, with one conditional write: `true` when the signature is new, its
    /// earlier binding expired, or it is bound to this same body (a retry); `false` when it
    /// is bound to another body. For requests whose signature does not cover the body (an
    /// Official Account in plaintext mode), so one signed query cannot carry other bodies.
    fn bind_signature(
        &self,
        key: &str,
        body_hash: &str,
        now_ms: EpochMillis,
        expires_at_secs: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Cached access tokens and their refresh lease.
pub trait TokenStore: Send + Sync {
    /// Reads a token item. A token past its expiry reads as no token.
    fn token(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> impl Future<Output = Result<TokenRecord, StoreError>> + Send;

    /// Takes the refresh lease of a token item for `owner` until `now_ms + lease_ms`, unless
    /// someone else holds an unexpired one. Returns whether it was taken.
    fn take_token_lease(
        &self,
        key: &str,
        owner: &str,
        now_ms: EpochMillis,
        lease_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a fetched token and releases the lease, if `owner` still holds it. Returns
    /// `false` when the lease was lost (the token is then not stored).
    fn put_token(
        &self,
        key: &str,
        owner: &str,
        token: &CachedToken,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the refresh lease up without storing a token (the fetch failed, or another
    /// instance stored one meanwhile), if `owner` still holds it, so others need not wait
    /// for it to run out. Returns whether it was released.
    fn release_token_lease(
        &self,
        key: &str,
        owner: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes the stored token if it is still `value` (the one the platform refused), so a
    /// token another instance already replaced is left alone. Returns whether it was removed.
    fn drop_token(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// How the embedded store is named to people (`wxgate serve`, `check`).
pub fn describe_memory() -> String {
    "embedded store".into()
}

/// How a DynamoDB table is named to people.
pub fn describe_table(table: &str) -> String {
    format!("DynamoDB table {table}")
}
