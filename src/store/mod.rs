//! Shared state: callback de-duplication records and cached access tokens.
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
pub mod memory;

use std::future::Future;

pub use backend::Backend;
pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;

/// Milliseconds since the Unix epoch.
pub type EpochMillis = u64;

/// The current time as [`EpochMillis`].
pub fn now_ms() -> EpochMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

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
    /// [`Store::complete`] with the same owner.
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
}

/// The store contract. Keys are complete item keys; [`dedup_key`] and [`token_key`] build
/// them, so the two kinds of item never collide.
pub trait Store: Send + Sync {
    /// Claims a dedup key for `owner` with one conditional write. The claim succeeds when the
    /// key is new, its record has expired, or it is in progress under a lease that ran out.
    fn claim(
        &self,
        key: &str,
        owner: &str,
        times: DedupTimes,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Records the decided reply of a claim, if `owner` still holds it. Returns `false` when
    /// the claim was taken over meanwhile (the record is then left to the new holder).
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

/// The item key of a callback's dedup record: per app, then the message's own key.
pub fn dedup_key(app: &str, message_key: &str) -> String {
    format!("dedup#{app}#{message_key}")
}

/// The dedup key of one callback to `app` (an Open Platform callback is scoped by the
/// authorized account it is for): the same for every delivery of it.
pub fn callback_key(
    app: &str,
    authorizer_app_id: Option<&str>,
    message: &crate::message::Message,
) -> String {
    let message_key = message.dedup_key();
    match authorizer_app_id {
        Some(authorizer) => dedup_key(&format!("{app}/{authorizer}"), message_key.as_str()),
        None => dedup_key(app, message_key.as_str()),
    }
}

/// The item key of an access token. `scope` names the credentials it was fetched with
/// (see `wechat::TokenSource::scope`), so apps sharing credentials share one token.
pub fn token_key(scope: &str) -> String {
    format!("token#{scope}")
}
