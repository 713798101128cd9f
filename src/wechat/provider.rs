//! One access token per set of credentials, shared by every task of the process and every
//! instance using the same store.
//!
//! The path of a `get`, cheapest first:
//!
//! 1. **Local cache.** A fresh token is returned without any request.
//! 2. **Single flight.** Otherwise one task per scope (a tokio mutex) does the store round;
//!    the others wait for its outcome, or keep using a still valid token meanwhile.
//! 3. **Store.** A fresh token another instance stored is cached and returned.
//! 4. **Lease.** Otherwise the refresh lease is taken with a conditional write; its holder
//!    fetches from the platform and stores the token. Instances that lost the lease keep
//!    using the old token while it is valid, else poll the store until the new one appears
//!    (or the lease runs out and they may take it), for at most `wait`.
//! 5. **Fail open.** A store that errors is logged and bypassed: the token is fetched
//!    directly and cached in this instance.
//!
//! A fetch that made no connection, or that the platform answered with "system busy", is
//! tried again under the sends' [`RetryPolicy`] (within the lease, which outlasts it).
//!
//! Times for expiry and leases come from the [`Clock`] (the store compares them with its
//! items); how long a caller waits is measured with tokio's monotonic clock.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use super::answer::FetchedToken;
use super::client::PlatformClient;
use super::error::{ApiError, TokenError};
use super::retry::{RetryPolicy, jitter};
use super::source::TokenSource;
use super::token::{
    AccessToken, FIRST_BACKOFF, Step, TokenSettings, decide, expires_at, loser_recheck_at, millis,
    next_backoff, refresh_at,
};
use crate::clock::EpochMillis;
use crate::store::{Backend, CachedToken, StoreError, TokenStore, new_owner, token_key};

pub use crate::clock::Clock;

/// Hands out access tokens; see the module documentation for how they are shared.
/// `S` is the store the tokens are shared through: the gateway's, unless a test brings its
/// own.
pub struct TokenProvider<S: TokenStore = Backend> {
    store: Arc<S>,
    client: PlatformClient,
    settings: TokenSettings,
    clock: Clock,
    scopes: Mutex<HashMap<String, Arc<ScopeState>>>,
    /// How component and authorizer tokens are fetched: they need the store's Open
    /// Platform records, which only stores that have them can give.
    open: Option<OpenFetch<S>>,
    /// When a failed token fetch is tried again: the sends' policy, since a fetch that
    /// made no connection or was told "system busy" is as safely repeated as a send.
    fetch_retry: RetryPolicy,
}

/// Fetches a component or authorizer token (`wechat::open::chain`).
type OpenFetch<S> =
    for<'a> fn(&'a TokenProvider<S>, &'a TokenSource) -> super::open::chain::BoxedFetch<'a>;

/// What one process knows about one scope.
#[derive(Default)]
struct ScopeState {
    cache: Mutex<LocalCache>,
    /// Held by the task doing the store round; holds that round's error, so the tasks that
    /// waited for it share the outcome instead of each repeating a failing fetch.
    flight: tokio::sync::Mutex<Option<TokenError>>,
    /// Rounds finished, so a task that waited can tell that one finished meanwhile.
    rounds: AtomicU64,
}

#[derive(Default)]
struct LocalCache {
    entry: Option<Entry>,
    /// The last token the platform refused here: never handed out again, and removed from
    /// the store once per process rather than once per failed call.
    refused: Option<String>,
}

struct Entry {
    token: AccessToken,
    expires_at_ms: EpochMillis,
    /// Until when the token is returned without asking the store.
    refresh_at_ms: EpochMillis,
}

impl LocalCache {
    fn keep(&mut self, token: &CachedToken, refresh_at_ms: EpochMillis) -> AccessToken {
        let access = AccessToken::new(&token.value);
        self.entry = Some(Entry {
            token: access.clone(),
            expires_at_ms: token.expires_at_ms,
            refresh_at_ms: refresh_at_ms.min(token.expires_at_ms),
        });
        access
    }
}

impl ScopeState {
    fn lock(&self) -> MutexGuard<'_, LocalCache> {
        // Every update is a single assignment: a poisoned lock holds consistent data.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached token while it is fresh.
    fn fresh(&self, now: EpochMillis) -> Option<AccessToken> {
        self.lock()
            .entry
            .as_ref()
            .filter(|e| e.refresh_at_ms > now && e.expires_at_ms > now)
            .map(|e| e.token.clone())
    }

    /// The cached token while it is valid at all.
    fn valid(&self, now: EpochMillis) -> Option<AccessToken> {
        self.lock()
            .entry
            .as_ref()
            .filter(|e| e.expires_at_ms > now)
            .map(|e| e.token.clone())
    }

    fn refused(&self) -> Option<String> {
        self.lock().refused.clone()
    }

    /// Caches a token read from the store until `refresh_at_ms` and returns it. One this
    /// process saw refused is returned but not cached: it can only come from a store read
    /// that raced with [`TokenProvider::invalidate`].
    fn keep_stored(&self, token: &CachedToken, refresh_at_ms: EpochMillis) -> AccessToken {
        let mut cache = self.lock();
        if cache.refused.as_deref() == Some(token.value.as_str()) {
            return AccessToken::new(&token.value);
        }
        cache.keep(token, refresh_at_ms)
    }

    /// Caches a token the platform just issued until `refresh_at_ms` and returns it.
    fn keep_fetched(&self, token: &CachedToken, refresh_at_ms: EpochMillis) -> AccessToken {
        let mut cache = self.lock();
        if cache.refused.as_deref() == Some(token.value.as_str()) {
            // The platform issued it again: it is valid after all.
            cache.refused = None;
        }
        cache.keep(token, refresh_at_ms)
    }

    /// The cached token if it is still valid, to be served until `retry_at_ms` (a failed
    /// refresh is not retried on every call).
    fn fall_back(&self, now: EpochMillis, retry_at_ms: EpochMillis) -> Option<AccessToken> {
        let mut cache = self.lock();
        let entry = cache.entry.as_mut().filter(|e| e.expires_at_ms > now)?;
        entry.refresh_at_ms = retry_at_ms.min(entry.expires_at_ms);
        Some(entry.token.clone())
    }

    /// Marks `failed` refused. Returns whether it is news to this process.
    fn refuse(&self, failed: &str) -> bool {
        let mut cache = self.lock();
        if cache
            .entry
            .as_ref()
            .is_some_and(|e| e.token.expose() == failed)
        {
            cache.entry = None;
        }
        if cache.refused.as_deref() == Some(failed) {
            return false;
        }
        cache.refused = Some(failed.to_owned());
        true
    }
}

impl<S: TokenStore> TokenProvider<S> {
    /// A provider over `store`, fetching with `client`, on the system clock.
    pub fn new(store: Arc<S>, client: PlatformClient, settings: TokenSettings) -> Self {
        Self {
            store,
            client,
            settings,
            clock: crate::clock::system(),
            scopes: Mutex::new(HashMap::new()),
            open: None,
            fetch_retry: RetryPolicy::default(),
        }
    }

    /// Retries failed token fetches under `retry` instead of [`RetryPolicy::default`]
    /// ([`RetryPolicy::never`] turns it off). Only what [`is_retryable`](super::is_retryable) allows is retried:
    /// no connection made, or errcode -1.
    #[must_use]
    pub fn with_fetch_retry(mut self, retry: RetryPolicy) -> Self {
        self.fetch_retry = retry;
        self
    }

    /// Replaces the clock (tests move time without sleeping).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The client, to make API calls with the tokens.
    pub fn client(&self) -> &PlatformClient {
        &self.client
    }

    /// The store tokens are shared through.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> TokenSettings {
        self.settings
    }

    /// A token for `source`.
    ///
    /// # Errors
    /// [`TokenError::Fetch`] when the platform refused or failed to issue one (nothing is
    /// cached then), [`TokenError::Timeout`] when another instance's fetch did not finish
    /// within `wait`.
    pub async fn get(&self, source: &TokenSource) -> Result<AccessToken, TokenError> {
        let scope = source.scope();
        let state = self.state(&scope);
        if let Some(token) = state.fresh(self.now()) {
            tracing::debug!(platform = %source.platform(), "access token cache hit");
            return Ok(token);
        }

        let deadline = Instant::now() + self.settings.wait;
        let seen = state.rounds.load(Ordering::Acquire);
        let mut flight = match state.flight.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Another task is refreshing: a still valid token serves meanwhile.
                if let Some(token) = state.valid(self.now()) {
                    return Ok(token);
                }
                tokio::time::timeout_at(deadline, state.flight.lock())
                    .await
                    .map_err(|_| TokenError::Timeout)?
            }
        };
        if state.rounds.load(Ordering::Acquire) != seen {
            // A round finished while this task waited: share its outcome.
            if let Some(token) = state.valid(self.now()) {
                return Ok(token);
            }
            if let Some(err) = flight.as_ref() {
                return Err(err.clone());
            }
        } else if let Some(token) = state.fresh(self.now()) {
            return Ok(token);
        }

        let result = self.round(source, &scope, &state, deadline).await;
        *flight = result.as_ref().err().cloned();
        state.rounds.fetch_add(1, Ordering::Release);
        result
    }

    /// Forgets `failed`, a token the platform refused: from the local cache if it is still
    /// the cached one, and from the store if it is still the stored one (so a token another
    /// instance already replaced is left alone). The next `get` then fetches a new token.
    pub async fn invalidate(&self, source: &TokenSource, failed: &str) {
        let scope = source.scope();
        if !self.state(&scope).refuse(failed) {
            return; // this process already removed it
        }
        match self.store.drop_token(&token_key(&scope), failed).await {
            Ok(dropped) => tracing::debug!(
                platform = %source.platform(),
                dropped,
                "refused access token removed"
            ),
            Err(err) => tracing::warn!(
                platform = %source.platform(),
                error = %err,
                "could not remove a refused access token from the store"
            ),
        }
    }

    /// Runs `f` with a token. When the platform refuses the token (40001, 40014, 42001),
    /// forgets exactly that token, gets another (one fetch serves every concurrent caller)
    /// and runs `f` again. A second refusal of a *different* token (this instance's cached
    /// one and the store's both died, e.g. an Open Platform account authorized anew) is
    /// handled the same way once more; a token refused twice is an error.
    ///
    /// # Errors
    /// What [`get`](Self::get) returns, or [`TokenError::Api`] with `f`'s error.
    pub async fn call<T, F, Fut>(&self, source: &TokenSource, f: F) -> Result<T, TokenError>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        /// Tokens refused before the call gives up.
        const MAX_REFUSED: usize = 2;
        let mut refused: Vec<AccessToken> = Vec::new();
        let mut token = self.get(source).await?;
        loop {
            match f(token.clone()).await {
                Ok(value) => return Ok(value),
                Err(err)
                    if err.is_token_invalid()
                        && refused.len() < MAX_REFUSED
                        && !refused.contains(&token) =>
                {
                    tracing::info!(
                        platform = %source.platform(),
                        errcode = err.errcode(),
                        "access token refused; getting a new one"
                    );
                    self.invalidate(source, token.expose()).await;
                    refused.push(token);
                    token = self.get(source).await?;
                }
                Err(err) => return Err(TokenError::Api(err)),
            }
        }
    }

    /// Now, on the provider's clock.
    pub(crate) fn now(&self) -> EpochMillis {
        (self.clock)()
    }

    /// Forgets the token of `source` entirely, here and in the store: an Open Platform
    /// account that withdrew or authorized anew. Other instances drop their copy when the
    /// platform refuses it.
    pub async fn forget(&self, source: &TokenSource) {
        let scope = source.scope();
        let state = self.state(&scope);
        let cached = state.lock().entry.take().map(|e| e.token);
        let key = token_key(&scope);
        let stored = match self.store.token(&key, self.now()).await {
            Ok(record) => record.token.map(|t| t.value),
            Err(err) => {
                tracing::warn!(source = source.kind(), error = %err, "could not read the token to forget");
                None
            }
        };
        for value in stored
            .into_iter()
            .chain(cached.map(|t| t.expose().to_owned()))
        {
            if let Err(err) = self.store.drop_token(&key, &value).await {
                tracing::warn!(source = source.kind(), error = %err, "could not remove the token from the store");
            }
        }
    }

    fn state(&self, scope: &str) -> Arc<ScopeState> {
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = scopes.get(scope) {
            return Arc::clone(state);
        }
        let state = Arc::new(ScopeState::default());
        scopes.insert(scope.to_owned(), Arc::clone(&state));
        state
    }

    /// The store round, done by one task per scope at a time.
    async fn round(
        &self,
        source: &TokenSource,
        scope: &str,
        state: &ScopeState,
        deadline: Instant,
    ) -> Result<AccessToken, TokenError> {
        let key = token_key(scope);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let now = self.now();
            let record = match self.store.token(&key, now).await {
                Ok(record) => record,
                Err(err) => return self.fail_open(source, state, &err).await,
            };
            match decide(&record, now, state.refused().as_deref()) {
                Step::Use {
                    token,
                    refresh_at_ms,
                } => return Ok(state.keep_stored(&token, refresh_at_ms)),
                Step::UseWhileRefreshing {
                    token,
                    recheck_at_ms,
                } => return Ok(state.keep_stored(&token, recheck_at_ms)),
                Step::Refresh { old } => {
                    let owner = new_owner();
                    let lease_ms = millis(self.settings.lease);
                    match self
                        .store
                        .take_token_lease(&key, &owner, now, lease_ms)
                        .await
                    {
                        Ok(true) => {
                            if let Some(token) =
                                self.stored_meanwhile(source, state, &key, &owner).await
                            {
                                return Ok(token);
                            }
                            return self.refresh(source, state, &key, &owner, old).await;
                        }
                        // Another instance took it first: its fetch is under way.
                        Ok(false) => {
                            if let Some(token) = old {
                                let recheck = loser_recheck_at(
                                    token.expires_at_ms,
                                    now.saturating_add(lease_ms),
                                    now,
                                );
                                return Ok(state.keep_stored(&token, recheck));
                            }
                        }
                        Err(err) => return self.fail_open(source, state, &err).await,
                    }
                }
                Step::Wait => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    platform = %source.platform(),
                    "gave up waiting for another instance to fetch the access token"
                );
                return Err(TokenError::Timeout);
            }
            tokio::time::sleep(backoff.min(left)).await;
            backoff = next_backoff(backoff);
        }
    }

    /// Reads the store again once the lease is taken. The decision to take it rests on an
    /// earlier read: another instance may have fetched, stored and released in between
    /// (the store's latency makes that window real), and fetching again would waste a
    /// fetch. A fresh token found now is used and the lease given back.
    async fn stored_meanwhile(
        &self,
        source: &TokenSource,
        state: &ScopeState,
        key: &str,
        owner: &str,
    ) -> Option<AccessToken> {
        let now = self.now();
        // A failed read is no reason not to fetch: the lease is ours.
        let record = self.store.token(key, now).await.ok()?;
        let Step::Use {
            token,
            refresh_at_ms,
        } = decide(&record, now, state.refused().as_deref())
        else {
            return None;
        };
        if let Err(err) = self.store.release_token_lease(key, owner).await {
            tracing::warn!(
                platform = %source.platform(),
                error = %err,
                "could not release the token refresh lease"
            );
        }
        Some(state.keep_stored(&token, refresh_at_ms))
    }

    /// Fetches under the lease `owner` holds, stores the token and releases the lease.
    async fn refresh(
        &self,
        source: &TokenSource,
        state: &ScopeState,
        key: &str,
        owner: &str,
        old: Option<CachedToken>,
    ) -> Result<AccessToken, TokenError> {
        let previous = old.as_ref().map(|t| t.value.as_str());
        let (token, refresh_at_ms) = match self.fetch(source, previous).await {
            Ok(fetched) => fetched,
            Err(err) => {
                // Release the lease at once, so the next caller retries instead of
                // every instance waiting out the lease.
                if let Err(store_err) = self.store.release_token_lease(key, owner).await {
                    tracing::warn!(
                        platform = %source.platform(),
                        error = %store_err,
                        "could not release the token refresh lease"
                    );
                }
                return self.fetch_failed(source, state, err);
            }
        };
        match self.store.put_token(key, owner, &token).await {
            Ok(true) => {}
            Ok(false) => tracing::debug!(
                platform = %source.platform(),
                "token refresh lease ran out during the fetch; token kept locally only"
            ),
            Err(err) => tracing::warn!(
                platform = %source.platform(),
                error = %err,
                "could not store the access token; kept locally only"
            ),
        }
        Ok(state.keep_fetched(&token, refresh_at_ms))
    }

    /// The store failed: fetch directly and keep the token in this instance only.
    async fn fail_open(
        &self,
        source: &TokenSource,
        state: &ScopeState,
        store_err: &StoreError,
    ) -> Result<AccessToken, TokenError> {
        tracing::warn!(
            platform = %source.platform(),
            error = %store_err,
            "token store failed; fetching the access token directly"
        );
        let previous = state.valid(self.now()).map(|t| t.expose().to_owned());
        match self.fetch(source, previous.as_deref()).await {
            Ok((token, refresh_at_ms)) => Ok(state.keep_fetched(&token, refresh_at_ms)),
            Err(err) => self.fetch_failed(source, state, err),
        }
    }

    /// Fetches from the platform: the token with its expiry, and when to refresh it.
    /// `previous` is the token being replaced: the platform may hand the same one back.
    async fn fetch(
        &self,
        source: &TokenSource,
        previous: Option<&str>,
    ) -> Result<(CachedToken, EpochMillis), ApiError> {
        let requested_at = self.now();
        let fetched = match (source, self.open) {
            // Its component token is fetched, with retries, by that token's own round; the
            // refresh call itself is left to the caller, as a rotated refresh token is at stake.
            (TokenSource::Authorizer { .. }, Some(open)) => open(self, source).await?,
            (TokenSource::Component { .. }, Some(open)) => {
                self.retried(source, || open(self, source)).await?
            }
            _ => {
                self.retried(source, || self.client.fetch_token(source))
                    .await?
            }
        };
        tracing::info!(
            platform = %source.platform(),
            expires_in = fetched.expires_in_secs,
            "access token fetched"
        );
        crate::metrics::token_fetch(source.kind(), false);
        let expires_at_ms = expires_at(requested_at, fetched.expires_in_secs);
        let renewed = previous != Some(fetched.value.as_str());
        let refresh_at_ms = refresh_at(
            requested_at,
            expires_at_ms,
            millis(self.settings.refresh_ahead),
            renewed,
        );
        let token = CachedToken {
            value: fetched.value,
            expires_at_ms,
            refresh_at_ms,
        };
        Ok((token, refresh_at_ms))
    }

    /// Runs `fetch` until it succeeds or [`fetch_retry`](Self::with_fetch_retry) gives up:
    /// a refused connection (the platform or the proxy restarting) or "system busy" is tried
    /// again after a jittered backoff, as a send would be.
    async fn retried<F, Fut>(
        &self,
        source: &TokenSource,
        fetch: F,
    ) -> Result<FetchedToken, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<FetchedToken, ApiError>>,
    {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match fetch().await {
                Ok(fetched) => return Ok(fetched),
                Err(err) => err,
            };
            let Some(delay) = self
                .fetch_retry
                .delay(&err, attempt, started.elapsed(), jitter())
            else {
                return Err(err);
            };
            tracing::warn!(
                platform = %source.platform(),
                attempt,
                delay_ms = millis(delay),
                error = %err,
                "access token fetch failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// A failed fetch: a token that is stale but still valid (the fetch was a refresh ahead
    /// of expiry) is better than an error, and is retried no sooner than one lease later.
    fn fetch_failed(
        &self,
        source: &TokenSource,
        state: &ScopeState,
        err: ApiError,
    ) -> Result<AccessToken, TokenError> {
        tracing::warn!(platform = %source.platform(), error = %err, "access token fetch failed");
        crate::metrics::token_fetch(source.kind(), true);
        let now = self.now();
        state
            .fall_back(now, now.saturating_add(millis(self.settings.lease)))
            .ok_or(TokenError::Fetch(err))
    }
}

impl<S: TokenStore + crate::store::OpenStore + 'static> TokenProvider<S> {
    /// Fetches Open Platform tokens too (component and authorizer sources), with the
    /// tickets and authorizations in the store.
    #[must_use]
    pub fn with_open_platform(mut self) -> Self {
        self.open = Some(super::open::chain::fetch::<S>);
        self
    }
}

impl<S: TokenStore> std::fmt::Debug for TokenProvider<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("settings", &self.settings)
            .field("endpoints", self.client.endpoints())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: &str, expires_at_ms: u64, refresh_at_ms: u64) -> Entry {
        Entry {
            token: AccessToken::new(value),
            expires_at_ms,
            refresh_at_ms,
        }
    }

    #[test]
    fn local_cache_serves_until_the_refresh_point_then_while_valid() {
        let state = ScopeState::default();
        state.lock().entry = Some(entry("T", 1_000, 700));
        assert_eq!(
            state.fresh(699).map(|t| t.expose().to_owned()).as_deref(),
            Some("T")
        );
        assert!(state.fresh(700).is_none());
        assert!(state.valid(999).is_some());
        assert!(state.valid(1_000).is_none());
    }

    #[test]
    fn refusing_removes_only_that_token_and_only_once() {
        let state = ScopeState::default();
        state.lock().entry = Some(entry("NEW", 1_000, 700));
        assert!(state.refuse("OLD"));
        assert!(state.valid(0).is_some(), "a newer token stays");
        assert!(!state.refuse("OLD"), "the second refusal is not news");
        assert!(state.refuse("NEW"));
        assert!(state.valid(0).is_none());
        assert_eq!(state.refused().as_deref(), Some("NEW"));
    }

    #[test]
    fn keeping_a_reissued_token_clears_the_refusal() {
        let state = ScopeState::default();
        assert!(state.refuse("T"));
        let kept = state.keep_fetched(
            &CachedToken {
                value: "T".into(),
                expires_at_ms: 1_000,
                refresh_at_ms: 1_000,
            },
            2_000,
        );
        assert_eq!(kept.expose(), "T");
        assert!(state.refused().is_none());
        // The refresh point never lies past expiry.
        assert!(state.fresh(999).is_some());
        assert!(state.fresh(1_000).is_none());
    }

    #[test]
    fn a_refused_token_read_from_the_store_is_not_cached() {
        let state = ScopeState::default();
        assert!(state.refuse("T"));
        let token = CachedToken {
            value: "T".into(),
            expires_at_ms: 1_000,
            refresh_at_ms: 500,
        };
        assert_eq!(state.keep_stored(&token, 500).expose(), "T");
        assert!(state.valid(0).is_none());
        assert_eq!(state.refused().as_deref(), Some("T"));
    }

    #[test]
    fn fall_back_serves_a_valid_token_until_the_retry_point() {
        let state = ScopeState::default();
        assert!(state.fall_back(0, 10).is_none(), "nothing cached");
        state.lock().entry = Some(entry("T", 1_000, 700));
        assert!(state.fall_back(1_000, 1_010).is_none(), "expired");
        assert_eq!(
            state
                .fall_back(800, 900)
                .map(|t| t.expose().to_owned())
                .as_deref(),
            Some("T")
        );
        assert!(state.fresh(899).is_some() && state.fresh(900).is_none());
        state.fall_back(800, 5_000);
        assert!(
            state.fresh(999).is_some() && state.fresh(1_000).is_none(),
            "capped by expiry"
        );
    }
}
