//! The configured store, chosen at start-up: one type for the gateway to hold, dispatching
//! to the backend without boxing every future.

use super::open::{AuthorizationRecord, Grant, OpenStore, Ticket};
use super::{
    CachedToken, Claim, DedupRecord, DedupStore, DedupTimes, DynamoStore, JobEnd, JobRecord,
    JobStore, MemoryStore, NewJob, SignatureStore, StoreError, StoredStream, StreamStore,
    StreamWrite, TokenRecord, TokenStore,
};
use crate::clock::EpochMillis;

/// Either backend.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per gateway, held in an Arc: boxing the embedded store would save nothing"
)]
pub enum Backend {
    /// The embedded store.
    Memory(MemoryStore),
    /// A DynamoDB table.
    Dynamo(DynamoStore),
}

impl Backend {
    /// What it is, for people: `embedded store` or `DynamoDB table NAME`.
    pub fn describe(&self) -> String {
        match self {
            Self::Memory(_) => super::describe_memory(),
            Self::Dynamo(store) => super::describe_table(store.table()),
        }
    }

    /// The longest one request may take, retries included, after which a write the caller
    /// gave up on can no longer take effect. Zero for the embedded store.
    pub fn longest_request(&self) -> std::time::Duration {
        match self {
            Self::Memory(_) => std::time::Duration::ZERO,
            Self::Dynamo(store) => store.longest_request(),
        }
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Dynamo(_) => "dynamodb",
        }
    }
}

impl Default for Backend {
    fn default() -> Self {
        Self::Memory(MemoryStore::new())
    }
}

/// Awaits the call on whichever backend this is, timing it for the store metrics (the method
/// name is the `op` label). The DynamoDB futures (the SDK's request
/// orchestration, several KB each) are boxed: held inline, every future built on a store call
/// would be as large as the largest of them whichever backend runs, and moving it into a
/// timeout or an await copies all of it, also for the embedded store. One allocation next to
/// a network round trip costs nothing.
macro_rules! dispatch {
    ($self:ident, $store:ident => $store2:ident . $method:ident ( $($arg:expr),* $(,)? )) => {{
        let started = std::time::Instant::now();
        let result = match $self {
            Backend::Memory($store) => $store2.$method($($arg),*).await,
            Backend::Dynamo($store) => Box::pin($store2.$method($($arg),*)).await,
        };
        crate::metrics::store_request(stringify!($method), started.elapsed(), result.is_err());
        result
    }};
}

impl StreamStore for Backend {
    async fn stream(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> Result<Option<StoredStream>, StoreError> {
        dispatch!(self, s => s.stream(key, now_ms))
    }

    async fn put_stream(
        &self,
        key: &str,
        write: StreamWrite<'_>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.put_stream(key, write, times))
    }
}

impl DedupStore for Backend {
    async fn claim(&self, key: &str, owner: &str, times: DedupTimes) -> Result<Claim, StoreError> {
        dispatch!(self, s => s.claim(key, owner, times))
    }

    async fn claim_decided(
        &self,
        key: &str,
        owner: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> Result<Claim, StoreError> {
        dispatch!(self, s => s.claim_decided(key, owner, reply, times))
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.complete(key, owner, reply, times))
    }

    async fn dedup_record(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> Result<Option<DedupRecord>, StoreError> {
        dispatch!(self, s => s.dedup_record(key, now_ms))
    }
}

impl JobStore for Backend {
    async fn claim_with_job(
        &self,
        key: &str,
        owner: &str,
        times: DedupTimes,
        job: NewJob<'_>,
    ) -> Result<Claim, StoreError> {
        dispatch!(self, s => s.claim_with_job(key, owner, times, job))
    }

    async fn take_job(
        &self,
        key: &str,
        worker: &str,
        now_ms: EpochMillis,
        limit_ms: u64,
    ) -> Result<Option<JobRecord>, StoreError> {
        dispatch!(self, s => s.take_job(key, worker, now_ms, limit_ms))
    }

    async fn answer_job(
        &self,
        key: &str,
        worker: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.answer_job(key, worker, reply, times))
    }

    async fn start_sending(&self, key: &str, worker: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.start_sending(key, worker))
    }

    async fn end_job(
        &self,
        key: &str,
        worker: &str,
        end: JobEnd<'_>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.end_job(key, worker, end, times))
    }

    async fn job(&self, key: &str, now_ms: EpochMillis) -> Result<Option<JobRecord>, StoreError> {
        dispatch!(self, s => s.job(key, now_ms))
    }
}

impl SignatureStore for Backend {
    async fn bind_signature(
        &self,
        key: &str,
        body_hash: &str,
        now_ms: EpochMillis,
        expires_at_secs: u64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.bind_signature(key, body_hash, now_ms, expires_at_secs))
    }
}

impl TokenStore for Backend {
    async fn token(&self, key: &str, now_ms: EpochMillis) -> Result<TokenRecord, StoreError> {
        dispatch!(self, s => s.token(key, now_ms))
    }

    async fn take_token_lease(
        &self,
        key: &str,
        owner: &str,
        now_ms: EpochMillis,
        lease_ms: u64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.take_token_lease(key, owner, now_ms, lease_ms))
    }

    async fn put_token(
        &self,
        key: &str,
        owner: &str,
        token: &CachedToken,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.put_token(key, owner, token))
    }

    async fn release_token_lease(&self, key: &str, owner: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.release_token_lease(key, owner))
    }

    async fn drop_token(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.drop_token(key, value))
    }
}

impl OpenStore for Backend {
    async fn put_ticket(
        &self,
        component_app_id: &str,
        ticket: &Ticket,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.put_ticket(component_app_id, ticket, now_ms))
    }

    async fn ticket(&self, component_app_id: &str) -> Result<Option<Ticket>, StoreError> {
        dispatch!(self, s => s.ticket(component_app_id))
    }

    async fn authorization(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
    ) -> Result<Option<AuthorizationRecord>, StoreError> {
        dispatch!(self, s => s.authorization(component_app_id, authorizer_app_id))
    }

    async fn grant(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        grant: Grant<'_>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.grant(component_app_id, authorizer_app_id, grant))
    }

    async fn revoke(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        event_time: u64,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.revoke(component_app_id, authorizer_app_id, event_time, now_ms))
    }

    async fn replace_refresh_token(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        previous: &str,
        new: &str,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.replace_refresh_token(component_app_id, authorizer_app_id, previous, new, now_ms))
    }

    async fn mark_broken(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        previous: &str,
        reason: &str,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.mark_broken(component_app_id, authorizer_app_id, previous, reason, now_ms))
    }

    async fn set_account(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        nick_name: &str,
        user_name: &str,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.set_account(component_app_id, authorizer_app_id, nick_name, user_name, now_ms))
    }

    async fn authorizations(
        &self,
        component_app_id: &str,
    ) -> Result<Vec<AuthorizationRecord>, StoreError> {
        dispatch!(self, s => s.authorizations(component_app_id))
    }
}
