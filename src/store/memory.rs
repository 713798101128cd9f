//! The embedded store: one process's map behind a mutex, with the DynamoDB backend's
//! semantics (conditional writes, expiry checked on read).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    CachedToken, Claim, DedupRecord, DedupTimes, EpochMillis, Store, StoreError, TokenRecord,
};

/// How often expired records are swept out, so a long-running `serve` does not grow
/// without bound. By time, not by write count: a sweep walks every record, and doing that
/// every N writes would make each write cost O(records / N).
const SWEEP_INTERVAL_MS: u64 = 60_000;

#[derive(Debug, Default)]
struct Inner {
    dedup: HashMap<String, DedupItem>,
    tokens: HashMap<String, TokenItem>,
    last_sweep_ms: EpochMillis,
}

#[derive(Debug, Clone)]
struct DedupItem {
    owner: String,
    record: DedupRecord,
    expires_at_secs: u64,
}

#[derive(Debug, Clone, Default)]
struct TokenItem {
    token: Option<CachedToken>,
    lease_owner: Option<String>,
    lease_until_ms: EpochMillis,
}

/// The in-process store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many dedup records are held (expired ones included until the next sweep).
    pub fn dedup_len(&self) -> usize {
        self.lock().dedup.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written item (every write is
        // one insert), so a poisoned lock is safe to keep using.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    fn after_write(&mut self, now_ms: EpochMillis) {
        if now_ms.saturating_sub(self.last_sweep_ms) >= SWEEP_INTERVAL_MS {
            self.last_sweep_ms = now_ms;
            let now_secs = now_ms / 1000;
            self.dedup
                .retain(|_, item| item.expires_at_secs >= now_secs);
        }
    }
}

fn live(item: &DedupItem, now_ms: EpochMillis) -> bool {
    item.expires_at_secs >= now_ms / 1000
}

impl Store for MemoryStore {
    async fn claim(&self, key: &str, owner: &str, times: DedupTimes) -> Result<Claim, StoreError> {
        let mut inner = self.lock();
        if let Some(item) = inner.dedup.get(key).filter(|i| live(i, times.now_ms)) {
            match &item.record {
                DedupRecord::Done { reply } => {
                    return Ok(Claim::Done {
                        reply: reply.clone(),
                    });
                }
                DedupRecord::InProgress { lease_until_ms } if *lease_until_ms >= times.now_ms => {
                    return Ok(Claim::InProgress {
                        lease_until_ms: *lease_until_ms,
                    });
                }
                DedupRecord::InProgress { .. } => {} // the holder's lease ran out: take over
            }
        }
        inner.dedup.insert(
            key.to_owned(),
            DedupItem {
                owner: owner.to_owned(),
                record: DedupRecord::InProgress {
                    lease_until_ms: times.lease_until_ms(),
                },
                expires_at_secs: times.expires_at_secs(),
            },
        );
        inner.after_write(times.now_ms);
        Ok(Claim::Won)
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(item) = inner.dedup.get_mut(key).filter(|i| i.owner == owner) else {
            return Ok(false);
        };
        item.record = DedupRecord::Done {
            reply: reply.map(str::to_owned),
        };
        item.expires_at_secs = times.expires_at_secs();
        inner.after_write(times.now_ms);
        Ok(true)
    }

    async fn dedup_record(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> Result<Option<DedupRecord>, StoreError> {
        Ok(self
            .lock()
            .dedup
            .get(key)
            .filter(|i| live(i, now_ms))
            .map(|i| i.record.clone()))
    }

    async fn token(&self, key: &str, now_ms: EpochMillis) -> Result<TokenRecord, StoreError> {
        let inner = self.lock();
        let Some(item) = inner.tokens.get(key) else {
            return Ok(TokenRecord::default());
        };
        Ok(TokenRecord {
            token: item.token.clone().filter(|t| t.expires_at_ms > now_ms),
            lease_until_ms: if item.lease_owner.is_some() {
                item.lease_until_ms
            } else {
                0
            },
        })
    }

    async fn take_token_lease(
        &self,
        key: &str,
        owner: &str,
        now_ms: EpochMillis,
        lease_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let item = inner.tokens.entry(key.to_owned()).or_default();
        if item.lease_owner.is_some() && item.lease_until_ms >= now_ms {
            return Ok(false);
        }
        item.lease_owner = Some(owner.to_owned());
        item.lease_until_ms = now_ms.saturating_add(lease_ms);
        Ok(true)
    }

    async fn put_token(
        &self,
        key: &str,
        owner: &str,
        token: &CachedToken,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(item) = inner
            .tokens
            .get_mut(key)
            .filter(|i| i.lease_owner.as_deref() == Some(owner))
        else {
            return Ok(false);
        };
        item.token = Some(token.clone());
        item.lease_owner = None;
        item.lease_until_ms = 0;
        Ok(true)
    }

    async fn release_token_lease(&self, key: &str, owner: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(item) = inner
            .tokens
            .get_mut(key)
            .filter(|i| i.lease_owner.as_deref() == Some(owner))
        else {
            return Ok(false);
        };
        item.lease_owner = None;
        item.lease_until_ms = 0;
        Ok(true)
    }

    async fn drop_token(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(item) = inner
            .tokens
            .get_mut(key)
            .filter(|i| i.token.as_ref().is_some_and(|t| t.value == value))
        else {
            return Ok(false);
        };
        item.token = None;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(now_ms: EpochMillis) -> DedupTimes {
        DedupTimes {
            now_ms,
            lease_ms: 1_000,
            retention_secs: 60,
        }
    }

    #[tokio::test]
    async fn expired_records_are_swept_out_once_a_minute() {
        let store = MemoryStore::new();
        let t0 = 1_800_000_000_000;
        store.claim("a", "o", times(t0)).await.unwrap(); // the first write sweeps: nothing
        store.claim("b", "o", times(t0 + 1_000)).await.unwrap();
        assert_eq!(store.dedup_len(), 2);
        // "a" expires at t0 + 60 s; the next sweep is due from t0 + 60 s.
        store.claim("c", "o", times(t0 + 61_000)).await.unwrap();
        assert_eq!(store.dedup_len(), 2, "a swept, b and c kept");
        // No sweep within the minute after it, even with expired records about.
        store.claim("d", "o", times(t0 + 62_500)).await.unwrap();
        assert_eq!(store.dedup_len(), 3);
    }
}
