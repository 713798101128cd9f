//! The access token fetch follows the sends' retry policy: a platform that refuses the first
//! connection(s) (it comes up late on its port) or answers "system busy" is asked again,
//! in process and through `wxgate notify`; what may not be repeated is not.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::cli::{ConfigFile, wxgate};
use support::fake_platform::{CORP_ID, CORP_SECRET, FakePlatform};
use support::sample::KEY;
use wxgate::store::MemoryStore;
use wxgate::wechat::{
    ClientTimeouts, PlatformClient, RetryPolicy, TokenError, TokenProvider, TokenSettings,
};

/// A loopback address nothing listens on yet (bound, then released).
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn provider(base: &str, retry: RetryPolicy) -> TokenProvider<MemoryStore> {
    let client = PlatformClient::new(
        wxgate::wechat::ApiEndpoints::both(base),
        ClientTimeouts::default(),
    )
    .unwrap();
    TokenProvider::new(
        Arc::new(MemoryStore::new()),
        client,
        TokenSettings::default(),
    )
    .with_fetch_retry(retry)
}

/// Many short retries, so a platform that comes up within a second is reached.
fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 20,
        first_delay: Duration::from_millis(50),
        total: Duration::from_secs(4),
    }
}

#[tokio::test]
async fn a_refused_connection_during_the_fetch_is_retried() {
    let addr = free_addr();
    let tokens = provider(&format!("http://{addr}"), patient());
    // The platform comes up 300 ms after the first fetch, which is refused.
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        FakePlatform::start_on(addr)
    });
    let started = Instant::now();
    let token = tokens.get(&FakePlatform::wecom_source()).await;
    let fake = late.join().unwrap();
    assert!(token.is_ok(), "{token:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        fake.fetches(),
        1,
        "only the retry that connected reached it"
    );
}

#[tokio::test]
async fn system_busy_is_retried_and_other_errcodes_are_not() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake.url(), patient());
    fake.fail_next_fetches(2, -1);
    let token = tokens.get(&FakePlatform::wecom_source()).await;
    assert!(token.is_ok(), "{token:?}");
    assert_eq!(fake.fetches(), 3);

    let fake = FakePlatform::start();
    let tokens = provider(&fake.url(), patient());
    fake.fail_next_fetches(1, 45009);
    let err = tokens
        .get(&FakePlatform::mp_source())
        .await
        .expect_err("the rate limit is not retried");
    assert!(matches!(err, TokenError::Fetch(_)), "{err:?}");
    assert_eq!(fake.fetches(), 1);
}

#[tokio::test]
async fn a_platform_that_stays_down_fails_within_the_policy() {
    let addr = free_addr();
    let retry = RetryPolicy {
        max_attempts: 3,
        first_delay: Duration::from_millis(20),
        total: Duration::from_secs(2),
    };
    let started = Instant::now();
    let err = provider(&format!("http://{addr}"), retry)
        .get(&FakePlatform::wecom_source())
        .await
        .expect_err("nothing listens");
    assert!(err.to_string().contains("connect"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // RetryPolicy::never() turns the retries off: one refused attempt, at once.
    let started = Instant::now();
    provider(&format!("http://{addr}"), RetryPolicy::never())
        .get(&FakePlatform::wecom_source())
        .await
        .expect_err("nothing listens");
    assert!(started.elapsed() < Duration::from_millis(500));
}

/// A WeCom app `ops` whose platform API is at `addr`.
fn ops_config(addr: SocketAddr) -> String {
    format!(
        r#"
[api]
wecom_base_url = "http://{addr}"
mp_base_url = "http://{addr}"

[[apps]]
name = "ops"
platform = "wecom"
corp_id = "{CORP_ID}"
agent_id = 1000002
token = "opstoken"
encoding_aes_key = "{KEY}"
secret = "{CORP_SECRET}"
"#
    )
}

/// `wxgate notify` whose platform is not up yet: the process logs the refused token fetch
/// and retries; the platform started only after that log line is reached and the message
/// is sent once.
#[test]
fn notify_retries_a_token_fetch_whose_connection_was_refused() {
    let addr = free_addr();
    let config = ConfigFile::new("notify-late-platform", &ops_config(addr));
    let mut child = wxgate(&[
        "notify",
        "--config",
        config.arg(),
        "--app",
        "ops",
        "--to",
        "zhangsan",
        "构建完成",
    ])
    .env("RUST_LOG", "warn")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while !seen.contains("access token fetch failed; retrying") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "notify ended without retrying the fetch: {seen}"
        );
        seen.push_str(&line);
    }
    // Only now does the platform come up: the fetch that succeeds is a retry.
    let fake = FakePlatform::start_on(addr);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    let seen = seen + &rest;
    assert_eq!(output.status.code(), Some(0), "{seen}");
    let sent = fake.sent();
    assert_eq!(sent.len(), 1, "{seen}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        sent[0].msgid.as_deref().unwrap()
    );
    assert_eq!(fake.fetches(), 1);
    // The warning names neither the secret nor the message.
    assert!(
        !seen.contains(CORP_SECRET) && !seen.contains("构建完成"),
        "{seen}"
    );
}

/// A platform that never comes up: after the retries, `wxgate notify` exits 1 naming the
/// API address nothing answered at and the settings that decide it.
#[test]
fn notify_names_where_nothing_answered() {
    let addr = free_addr();
    let config = ConfigFile::new("notify-down-platform", &ops_config(addr));
    let out = support::cli::run(
        wxgate(&[
            "notify",
            "--config",
            config.arg(),
            "--app",
            "ops",
            "--to",
            "zhangsan",
            "hi",
        ])
        .stdin(Stdio::null()),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("nothing answered at http://{addr} (retried)")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("[api] wecom_base_url"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(CORP_SECRET), "{}", out.stderr);
}
