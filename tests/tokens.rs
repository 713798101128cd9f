//! The shared access-token provider against a fake WeChat API, over both stores: the
//! embedded `MemoryStore`, and `DynamoStore` on dynalite (a DynamoDB-compatible server on
//! 127.0.0.1). Every scenario is one generic function run once per store.
//!
//! Several providers over one store stand for several Lambda instances: each has its own
//! local cache and single flight, and they share tokens only through the store.
// Some tests here need a local AWS-compatible server or Python: they are built only with
// `--features external-tests` (scripts/test.sh); the rest run with plain `cargo test`.
#![cfg_attr(not(feature = "external-tests"), allow(dead_code, unused_imports))]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::dynamo::{DynamoServer, client, create_table, unique_table_name};
use support::fake_platform::{self, FakePlatform};
use wxgate::clock::{EpochMillis, now_ms};
use wxgate::store::{
    CachedToken, DynamoStore, MemoryStore, StoreError, TokenRecord, TokenStore, token_key,
};
use wxgate::wechat::{
    AccessToken, ApiError, ClientTimeouts, PlatformClient, TokenError, TokenProvider,
    TokenSettings, TokenSource,
};

// ------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------

/// One dynalite for the whole test binary (starting node takes a while); every test gets its
/// own table and its own client (clients belong to the test's runtime). The server is never
/// dropped: it exits with this process (it watches its stdin).
fn dynamo_server() -> &'static DynamoServer {
    static SERVER: OnceLock<DynamoServer> = OnceLock::new();
    SERVER.get_or_init(DynamoServer::start)
}

async fn dynamo_store() -> Arc<DynamoStore> {
    let server = dynamo_server();
    let client = client(&server.endpoint()).await;
    let table = unique_table_name("tokens");
    create_table(&client, &table).await;
    Arc::new(DynamoStore::new(client, table))
}

fn memory_store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new())
}

/// Counts the requests one provider (one "instance") makes to a store shared with others.
struct Counting<S> {
    inner: Arc<S>,
    requests: AtomicU64,
}

impl<S> Counting<S> {
    fn over(inner: &Arc<S>) -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::clone(inner),
            requests: AtomicU64::new(0),
        })
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }
}

impl<S: TokenStore> TokenStore for Counting<S> {
    async fn token(&self, key: &str, now_ms: EpochMillis) -> Result<TokenRecord, StoreError> {
        self.count();
        self.inner.token(key, now_ms).await
    }

    async fn take_token_lease(
        &self,
        key: &str,
        owner: &str,
        now_ms: EpochMillis,
        lease_ms: u64,
    ) -> Result<bool, StoreError> {
        self.count();
        self.inner
            .take_token_lease(key, owner, now_ms, lease_ms)
            .await
    }

    async fn put_token(
        &self,
        key: &str,
        owner: &str,
        token: &CachedToken,
    ) -> Result<bool, StoreError> {
        self.count();
        self.inner.put_token(key, owner, token).await
    }

    async fn release_token_lease(&self, key: &str, owner: &str) -> Result<bool, StoreError> {
        self.count();
        self.inner.release_token_lease(key, owner).await
    }

    async fn drop_token(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        self.count();
        self.inner.drop_token(key, value).await
    }
}

/// A store that is down: every request fails.
struct BrokenStore;

impl TokenStore for BrokenStore {
    async fn token(&self, _: &str, _: EpochMillis) -> Result<TokenRecord, StoreError> {
        Err(down())
    }
    async fn take_token_lease(
        &self,
        _: &str,
        _: &str,
        _: EpochMillis,
        _: u64,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn put_token(&self, _: &str, _: &str, _: &CachedToken) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn release_token_lease(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn drop_token(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
}

fn down() -> StoreError {
    StoreError::Backend("connection failed".into())
}

type Provider<S> = Arc<TokenProvider<Counting<S>>>;

fn client_for(platform: &FakePlatform, timeouts: ClientTimeouts) -> PlatformClient {
    PlatformClient::new(platform.endpoints(), timeouts).expect("client")
}

/// One "instance": a provider with its own cache over the shared `store`.
fn instance<S: TokenStore>(
    store: &Arc<S>,
    platform: &FakePlatform,
    settings: TokenSettings,
) -> Provider<S> {
    Arc::new(TokenProvider::new(
        Counting::over(store),
        client_for(platform, ClientTimeouts::default()),
        settings,
    ))
}

/// `get_api_domain_ip` through `provider.call`: spends a token on the fake.
async fn domain_ip<S: TokenStore>(
    provider: &TokenProvider<S>,
    source: &TokenSource,
) -> Result<Value, TokenError> {
    let platform = source.platform();
    provider
        .call(source, |token: AccessToken| {
            let client = provider.client().clone();
            async move {
                client
                    .get_json(platform, "/cgi-bin/get_api_domain_ip", &token, &[])
                    .await
            }
        })
        .await
}

/// Runs each scenario once over `MemoryStore` and once over `DynamoStore`.
macro_rules! both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario(super::memory_store()).await;
                }
            )*
        }
        #[cfg(feature = "external-tests")]
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario(super::dynamo_store().await).await;
                }
            )*
        }
    };
}

both_stores!(
    cold_cache_fetches_once_wecom,
    cold_cache_fetches_once_mp,
    cold_instances_fetch_once,
    fresh_tokens_cost_no_store_requests,
    instances_share_one_fetch_per_lifetime,
    revoked_token_is_refetched_once,
    two_dead_tokens_are_both_forgotten,
    platform_errors_are_typed_and_not_cached,
    hanging_platform_times_out,
    moved_clock_drives_refresh_and_fallback,
);

// ------------------------------------------------------------------------------------------
// Scenarios
// ------------------------------------------------------------------------------------------

async fn cold_cache_fetches_once_wecom<S: TokenStore + 'static>(store: Arc<S>) {
    cold_cache_fetches_once(store, FakePlatform::wecom_source()).await;
}

async fn cold_cache_fetches_once_mp<S: TokenStore + 'static>(store: Arc<S>) {
    cold_cache_fetches_once(store, FakePlatform::mp_source()).await;
}

/// 50 concurrent `get`s on a cold cache: one store round, one fetch, one token for all.
async fn cold_cache_fetches_once<S: TokenStore + 'static>(store: Arc<S>, source: TokenSource) {
    let fake = FakePlatform::start();
    // A little latency, so the callers really overlap the fetch.
    fake.set_delay(Duration::from_millis(50));
    let provider = instance(&store, &fake, TokenSettings::default());

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (provider, source) = (Arc::clone(&provider), source.clone());
            tokio::spawn(async move { provider.get(&source).await })
        })
        .collect();
    let mut tokens = HashSet::new();
    for task in tasks {
        let token = task.await.expect("task").expect("token");
        tokens.insert(token.expose().to_owned());
    }

    assert_eq!(fake.fetches(), 1, "{:?}", fake.fetch_log());
    assert_eq!(tokens.len(), 1, "all callers got the same token");
    assert!(tokens.contains("fake-token-1"));
    // One round: read, take the lease, read again (nobody stored one meanwhile), store.
    assert_eq!(provider.store().requests(), 4);

    // The token is in the store for other instances, under the scope's key.
    let stored = store
        .token(&token_key(&source.scope()), wxgate::clock::now_ms())
        .await
        .expect("store read");
    assert_eq!(
        stored.token.map(|t| t.value).as_deref(),
        Some("fake-token-1")
    );
    assert_eq!(stored.lease_until_ms, 0, "the lease was released");
}

/// Four instances start cold at once, while the platform is slow: the refresh lease lets
/// one of them fetch; the others wait for the token it stores.
async fn cold_instances_fetch_once<S: TokenStore + 'static>(store: Arc<S>) {
    let fake = FakePlatform::start();
    fake.set_delay(Duration::from_millis(100));
    let source = FakePlatform::mp_source();
    let instances: Vec<_> = (0..4)
        .map(|_| instance(&store, &fake, TokenSettings::default()))
        .collect();
    let mut tasks = Vec::new();
    for provider in &instances {
        for _ in 0..25 {
            let (provider, source) = (Arc::clone(provider), source.clone());
            tasks.push(tokio::spawn(async move { provider.get(&source).await }));
        }
    }
    for task in tasks {
        let token = task.await.expect("task").expect("token");
        assert_eq!(token.expose(), "fake-token-1");
    }
    assert_eq!(fake.fetches(), 1, "{:?}", fake.fetch_log());
}

/// A fresh token is served from the local cache: no store request, no fetch.
async fn fresh_tokens_cost_no_store_requests<S: TokenStore + 'static>(store: Arc<S>) {
    let fake = FakePlatform::start();
    let source = FakePlatform::wecom_source();
    let a = instance(&store, &fake, TokenSettings::default());
    let b = instance(&store, &fake, TokenSettings::default());
    let first = a.get(&source).await.expect("a");
    assert_eq!(
        b.get(&source).await.expect("b"),
        first,
        "b takes a's token from the store"
    );
    let (a_before, b_before) = (a.store().requests(), b.store().requests());
    assert_eq!(b_before, 1, "b needed one store read, no fetch");

    for _ in 0..500 {
        assert_eq!(a.get(&source).await.expect("a"), first);
        assert_eq!(b.get(&source).await.expect("b"), first);
    }
    assert_eq!(a.store().requests(), a_before);
    assert_eq!(b.store().requests(), b_before);
    assert_eq!(fake.fetches(), 1);
}

/// Two instances under steady load for several token lifetimes: one fetch per lifetime in
/// all, never the same token twice, every API call accepted.
async fn instances_share_one_fetch_per_lifetime<S: TokenStore + 'static>(store: Arc<S>) {
    const LIFETIME: Duration = Duration::from_secs(1);
    const AHEAD: Duration = Duration::from_millis(500);
    const RUN: Duration = Duration::from_millis(2_300);
    let fake = FakePlatform::start();
    fake.set_expires_in(LIFETIME.as_secs());
    // Like stable_token: a fetch late in a token's life gets the next token.
    fake.set_renew_ahead(Duration::from_millis(750));
    let settings = TokenSettings {
        refresh_ahead: AHEAD,
        lease: Duration::from_secs(1),
        wait: Duration::from_secs(2),
    };
    let source = FakePlatform::wecom_source();
    let instances = [
        instance(&store, &fake, settings),
        instance(&store, &fake, settings),
    ];

    let started = Instant::now();
    let mut tasks = Vec::new();
    for provider in &instances {
        for _ in 0..6 {
            let (provider, source) = (Arc::clone(provider), source.clone());
            tasks.push(tokio::spawn(async move {
                let mut calls = 0u64;
                while started.elapsed() < RUN {
                    domain_ip(&provider, &source).await.expect("API call");
                    calls += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                calls
            }));
        }
    }
    let mut calls = 0;
    for task in tasks {
        calls += task.await.expect("task");
    }
    let ended = Instant::now();

    let log = fake.fetch_log();
    assert!(!log.is_empty());
    let shown: Vec<_> = log
        .iter()
        .map(|f| {
            (
                f.at.duration_since(log[0].at).as_millis(),
                f.token.clone(),
                f.issued,
            )
        })
        .collect();
    // Every fetch issued a new token: no instance fetched one another had already fetched.
    assert!(log.iter().all(|f| f.issued), "{shown:?}");
    let distinct: HashSet<_> = log.iter().map(|f| f.token.clone()).collect();
    assert_eq!(distinct.len(), log.len(), "{shown:?}");
    // One fetch per period (lifetime - refresh_ahead): never much sooner, and no later than
    // the load's pace and a round trip allow. The gaps are taken where the fake platform
    // sees the fetches, while a token's expiry counts from when its fetch was sent: a slow
    // first fetch (a new connection, a loaded machine) makes the next gap look shorter by
    // its delay, hence the early slack.
    let period = LIFETIME - AHEAD;
    let (early, late) = (Duration::from_millis(100), Duration::from_millis(400));
    for pair in log.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap + early >= period && gap <= period + late,
            "fetches {gap:?} apart: {shown:?}"
        );
    }
    // And as many as the elapsed time calls for: none was due when the load stopped.
    let since_last = ended.duration_since(log[log.len() - 1].at);
    assert!(
        since_last <= period + late,
        "no fetch for the last {since_last:?}: {shown:?}"
    );
    let elapsed = ended.duration_since(log[0].at).as_secs_f64();
    let expected = 1.0 + elapsed / period.as_secs_f64();
    assert!(
        (log.len() as f64 - expected).abs() <= 1.0,
        "{} fetches in {elapsed:.3} s: {shown:?}",
        log.len()
    );
    assert_eq!(fake.api_refused(), 0);
    assert_eq!(fake.api_calls(), calls);
    // The store is consulted around refreshes, not per call.
    for provider in &instances {
        let requests = provider.store().requests();
        assert!(
            requests <= 8 * log.len() as u64,
            "{requests} store requests for {} fetches and {calls} calls",
            log.len()
        );
    }
}

/// The platform revokes the token: many concurrent calls on both instances all succeed,
/// after exactly one new fetch.
async fn revoked_token_is_refetched_once<S: TokenStore + 'static>(store: Arc<S>) {
    let fake = FakePlatform::start();
    let source = FakePlatform::wecom_source();
    let instances = [
        instance(&store, &fake, TokenSettings::default()),
        instance(&store, &fake, TokenSettings::default()),
    ];
    for provider in &instances {
        domain_ip(provider, &source).await.expect("warm-up call");
    }
    assert_eq!(fake.fetches(), 1);

    fake.revoke_current();
    fake.set_delay(Duration::from_millis(20));
    let mut tasks = Vec::new();
    for provider in &instances {
        for _ in 0..25 {
            let (provider, source) = (Arc::clone(provider), source.clone());
            tasks.push(tokio::spawn(
                async move { domain_ip(&provider, &source).await },
            ));
        }
    }
    for task in tasks {
        task.await.expect("task").expect("every call succeeds");
    }
    assert_eq!(fake.fetches(), 2, "{:?}", fake.fetch_log());
    assert!(fake.api_refused() >= 1);
    for provider in &instances {
        assert_eq!(
            provider.get(&source).await.expect("token").expose(),
            "fake-token-2"
        );
    }
}

/// This instance's cached token and the one another instance stored both die: the call
/// forgets the first, is refused the second, forgets it too, and succeeds with a fetched
/// one (three tries, two refusals), instead of failing after the store's token.
async fn two_dead_tokens_are_both_forgotten<S: TokenStore + 'static>(store: Arc<S>) {
    let fake = FakePlatform::start();
    let source = FakePlatform::wecom_source();
    let provider = instance(&store, &fake, TokenSettings::default());
    domain_ip(&provider, &source).await.expect("warm-up call");
    // Another instance stored a token the platform no longer takes.
    let key = token_key(&source.scope());
    assert!(
        store
            .take_token_lease(&key, "other", now_ms(), 10_000)
            .await
            .unwrap()
    );
    let dead = CachedToken {
        value: "dead-token-from-elsewhere".into(),
        expires_at_ms: now_ms() + 3_600_000,
        refresh_at_ms: now_ms() + 3_000_000,
    };
    assert!(store.put_token(&key, "other", &dead).await.unwrap());
    fake.revoke_current();
    domain_ip(&provider, &source)
        .await
        .expect("the call succeeds after two refusals");
    assert_eq!(
        fake.api_refused(),
        2,
        "the cached token, then the stored one"
    );
    assert_eq!(fake.fetches(), 2);
}

/// A platform error comes back typed, leaves nothing cached or leased, and the next `get`
/// fetches again at once.
async fn platform_errors_are_typed_and_not_cached<S: TokenStore + 'static>(store: Arc<S>) {
    let fake = FakePlatform::start();
    let source = FakePlatform::mp_source();
    let provider = instance(&store, &fake, TokenSettings::default());

    fake.fail_next_fetches(1, 45009);
    let err = provider.get(&source).await.expect_err("injected failure");
    assert!(
        matches!(
            &err,
            TokenError::Fetch(ApiError::Platform { errcode: 45009, .. })
        ),
        "{err:?}"
    );
    let record = store
        .token(&token_key(&source.scope()), wxgate::clock::now_ms())
        .await
        .expect("store read");
    assert_eq!(
        record,
        TokenRecord::default(),
        "no token stored, lease released"
    );

    let started = Instant::now();
    let token = provider
        .get(&source)
        .await
        .expect("second get fetches again");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(token.expose(), "fake-token-1");
    assert_eq!(fake.fetches(), 2);

    // Wrong credentials: the platform's errcode, and the secret nowhere in the error.
    let wrong = TokenSource::wecom(fake_platform::CORP_ID, "wrong-secret-value");
    let err = provider.get(&wrong).await.expect_err("wrong secret");
    assert_eq!(err.api_error().and_then(ApiError::errcode), Some(40001));
    assert!(!format!("{err} {err:?}").contains("wrong-secret-value"));
    let wrong = TokenSource::mp("wxnotthisapp0000", fake_platform::APP_SECRET);
    let err = provider.get(&wrong).await.expect_err("wrong appid");
    assert_eq!(err.api_error().and_then(ApiError::errcode), Some(40013));
}

/// A platform that does not answer: a timeout error within the client's timeout; the next
/// `get` succeeds once it answers again.
async fn hanging_platform_times_out<S: TokenStore + 'static>(store: Arc<S>) {
    let fake = FakePlatform::start();
    let source = FakePlatform::wecom_source();
    let timeouts = ClientTimeouts {
        connect: Duration::from_millis(200),
        request: Duration::from_millis(300),
    };
    let provider = TokenProvider::new(
        Arc::clone(&store),
        client_for(&fake, timeouts),
        TokenSettings::default(),
    );

    fake.set_delay(Duration::from_secs(3));
    let started = Instant::now();
    let err = provider.get(&source).await.expect_err("timeout");
    let took = started.elapsed();
    assert_eq!(err, TokenError::Fetch(ApiError::Timeout));
    assert!(err.is_timeout());
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(1),
        "{took:?}"
    );

    fake.set_delay(Duration::ZERO);
    let started = Instant::now();
    provider.get(&source).await.expect("platform is back");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// With the clock moved by hand: a token is served locally until `refresh_ahead` before its
/// expiry, then refreshed; a refresh the platform fails falls back on the still valid
/// token, retried one lease later.
async fn moved_clock_drives_refresh_and_fallback<S: TokenStore + 'static>(store: Arc<S>) {
    const SECOND: u64 = 1_000;
    let fake = FakePlatform::start();
    // Every fetch issues a new token, so each fetch shows in the token's name.
    fake.set_renew_ahead(Duration::from_secs(7_200));
    let now = Arc::new(AtomicU64::new(1_800_000_000_000));
    let clock = {
        let now = Arc::clone(&now);
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let advance = |ms: u64| now.fetch_add(ms, Ordering::SeqCst);
    let source = FakePlatform::wecom_source();
    let provider = TokenProvider::new(
        Counting::over(&store),
        client_for(&fake, ClientTimeouts::default()),
        TokenSettings::default(), // refresh 300 s ahead, 10 s lease
    )
    .with_clock(clock);
    let get = || async {
        provider
            .get(&source)
            .await
            .expect("token")
            .expose()
            .to_owned()
    };

    assert_eq!(get().await, "fake-token-1");
    let requests = provider.store().requests();
    advance(6_899 * SECOND); // 301 s left
    assert_eq!(get().await, "fake-token-1");
    assert_eq!(
        provider.store().requests(),
        requests,
        "fresh: no store request"
    );
    advance(2 * SECOND); // 299 s left
    assert_eq!(get().await, "fake-token-2");
    assert_eq!(fake.fetches(), 2);

    advance(6_901 * SECOND);
    // A failure that is not retried (-1, system busy, would be tried again at once).
    fake.fail_next_fetches(1, 45009);
    assert_eq!(get().await, "fake-token-2", "the failed refresh falls back");
    assert_eq!(fake.fetches(), 3);
    advance(9 * SECOND);
    assert_eq!(get().await, "fake-token-2", "not retried within the lease");
    assert_eq!(fake.fetches(), 3);
    advance(2 * SECOND);
    assert_eq!(get().await, "fake-token-3");
    assert_eq!(fake.fetches(), 4);
}

// ------------------------------------------------------------------------------------------
// Without a working store
// ------------------------------------------------------------------------------------------

/// A store that fails is bypassed: the token is fetched directly and cached locally.
#[tokio::test]
async fn broken_store_fails_open() {
    let fake = FakePlatform::start();
    let source = FakePlatform::wecom_source();
    let provider = TokenProvider::new(
        Arc::new(BrokenStore),
        client_for(&fake, ClientTimeouts::default()),
        TokenSettings::default(),
    );
    let token = provider
        .get(&source)
        .await
        .expect("token despite the store");
    assert_eq!(provider.get(&source).await.expect("cached"), token);
    assert_eq!(fake.fetches(), 1);
    domain_ip(&provider, &source).await.expect("call");

    // Invalidation still works locally.
    fake.revoke_current();
    domain_ip(&provider, &source)
        .await
        .expect("call after revocation");
    assert_eq!(fake.fetches(), 2);
}

/// An API call that fails for another reason is not retried and keeps the token.
#[tokio::test]
async fn other_api_errors_are_not_retried() {
    let fake = FakePlatform::start();
    let source = FakePlatform::mp_source();
    let provider = TokenProvider::new(
        memory_store(),
        client_for(&fake, ClientTimeouts::default()),
        TokenSettings::default(),
    );
    let runs = AtomicU64::new(0);
    let err = provider
        .call(&source, |_token| {
            runs.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<(), _>(ApiError::Platform {
                    errcode: 45009,
                    errmsg: "reach max api daily quota limit".into(),
                })
            }
        })
        .await
        .expect_err("platform error");
    assert_eq!(err.api_error().and_then(ApiError::errcode), Some(45009));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(fake.fetches(), 1);

    // A refused token is retried exactly once, with a new token.
    let seen = std::sync::Mutex::new(Vec::new());
    let err = provider
        .call(&source, |token| {
            seen.lock().unwrap().push(token.expose().to_owned());
            async {
                Err::<(), _>(ApiError::Platform {
                    errcode: 42001,
                    errmsg: "access_token expired".into(),
                })
            }
        })
        .await
        .expect_err("still refused");
    assert!(matches!(err, TokenError::Api(ref e) if e.is_token_invalid()));
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2);
    // The fake still considers the first token valid, so it hands it out again.
    assert_eq!(fake.fetches(), 2);
}
