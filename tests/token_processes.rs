//! Two gateway processes share one access token through one DynamoDB table (dynalite on
//! loopback), under concurrent load against one fake platform: one fetch per token
//! lifetime between them, and a refused token re-fetched exactly once.
//!
//! The processes are this test binary run again as `worker` (an ignored test that does
//! nothing unless `WXGATE_TOKEN_WORKER` is set), each building its gateway with
//! `Gateway::builder(..).open()` from the environment exactly as the Lambda function does.
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::dynamo::{DynamoServer, client, create_table, process_env, unique_table_name};
use support::fake_platform::{FakePlatform, shop_app};
use wxgate::config::Config;
use wxgate::gateway::Gateway;
use wxgate::platform::Platform;

const WORKER_ENV: &str = "WXGATE_TOKEN_WORKER";

fn config(fake_url: &str) -> String {
    format!(
        r#"
[api]
wecom_base_url = "{fake_url}"
mp_base_url = "{fake_url}"
# Four busy processes and dynalite share two cores: a store call past the production 250 ms
# would make a worker fall back to fetching directly, which is not what this file tests.
[store]
timeout_ms = 2000
{}"#,
        shop_app()
    )
}

/// Starts `n` worker processes that call an API with the shared token for `run`.
fn spawn_workers(
    n: usize,
    fake: &FakePlatform,
    dynamo: &DynamoServer,
    table: &str,
    run: Duration,
) -> Vec<std::process::Child> {
    (0..n)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "worker",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER_ENV, "1")
                .env("WORKER_MILLIS", run.as_millis().to_string())
                .env("WXGATE_CONFIG", config(&fake.url()))
                .env("WXGATE_TABLE", table)
                .envs(process_env(&dynamo.endpoint()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

/// A worker's report: the JSON line it printed.
fn report(output: Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "worker failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("WORKER-REPORT ").map(|(_, json)| json))
        .unwrap_or_else(|| panic!("no report in: {stdout}"));
    serde_json::from_str(line).unwrap()
}

async fn table(dynamo: &DynamoServer) -> String {
    let name = unique_table_name("tokens");
    create_table(&client(&dynamo.endpoint()).await, &name).await;
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_fetch_once_per_token_lifetime() {
    let dynamo = DynamoServer::start();
    let table = table(&dynamo).await;
    let fake = FakePlatform::start();
    // Two-second tokens, renewed by the platform in their last second (as stable_token
    // does in the last five minutes): the gateway refreshes one second ahead.
    fake.set_expires_in(2);
    fake.set_renew_ahead(Duration::from_secs(1));
    let run = Duration::from_millis(4500);
    let started = Instant::now();
    let workers = spawn_workers(2, &fake, &dynamo, &table, run);
    let reports: Vec<Value> = workers
        .into_iter()
        .map(|w| report(w.wait_with_output().unwrap()))
        .collect();
    let elapsed = started.elapsed();

    for r in &reports {
        assert_eq!(r["failed"], 0, "{r}");
        assert!(r["ok"].as_u64().unwrap() > 100, "too little load: {r}");
    }
    let log = fake.fetch_log();
    let issued: Vec<&str> = log.iter().filter_map(|f| f.token.as_deref()).collect();
    // Every fetch brought a token no one had fetched before: no instance fetched while
    // another's fresh token was in the table.
    let mut unique = issued.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        issued.len(),
        "a token was fetched twice: {log:?}"
    );
    for pair in log.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(800),
            "two fetches {gap:?} apart: {log:?}"
        );
    }
    // One fetch per second of refresh period, give or take the start and the end.
    let periods = elapsed.as_secs_f64();
    assert!(
        (log.len() as f64) <= periods + 1.0 && log.len() >= 3,
        "{} fetches in {elapsed:?}: {log:?}",
        log.len()
    );
    assert_eq!(fake.api_refused(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_fetched_again_once_across_processes() {
    let dynamo = DynamoServer::start();
    let table = table(&dynamo).await;
    let fake = FakePlatform::start();
    let workers = spawn_workers(2, &fake, &dynamo, &table, Duration::from_millis(2500));
    // Let both run on the first token, then have the platform refuse it (40001).
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.api_calls() < 50 {
        assert!(Instant::now() < deadline, "the workers made no API calls");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fake.revoke_current();
    let reports: Vec<Value> = workers
        .into_iter()
        .map(|w| report(w.wait_with_output().unwrap()))
        .collect();
    for r in &reports {
        assert_eq!(
            r["failed"], 0,
            "every call succeeds, retried once if refused: {r}"
        );
    }
    assert!(fake.api_refused() > 0, "the revocation was not noticed");
    assert_eq!(fake.fetches(), 2, "{:?}", fake.fetch_log());
}

/// The worker process (see the module comment). Runs 8 concurrent callers of
/// `get_api_domain_ip` with the shared token until `WORKER_MILLIS` have passed.
#[test]
#[ignore = "a worker process started by the other tests in this file"]
fn worker() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let run = Duration::from_millis(std::env::var("WORKER_MILLIS").unwrap().parse().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async move {
        let config = Config::from_env_value(&std::env::var("WXGATE_CONFIG").unwrap()).unwrap();
        let gateway = std::sync::Arc::new(Gateway::builder(&config).open().await.unwrap());
        assert_eq!(gateway.store().kind(), "dynamodb");
        let until = Instant::now() + run;
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let gateway = std::sync::Arc::clone(&gateway);
                tokio::spawn(async move {
                    let (mut ok, mut failed, mut errors) = (0u64, 0u64, Vec::new());
                    let source = gateway.token_source("shop").unwrap().clone();
                    let tokens = gateway.tokens().unwrap();
                    while Instant::now() < until {
                        let result = tokens
                            .call(&source, |token| {
                                let client = tokens.client().clone();
                                async move {
                                    client
                                        .get_json(
                                            Platform::Mp,
                                            "/cgi-bin/get_api_domain_ip",
                                            &token,
                                            &[],
                                        )
                                        .await
                                }
                            })
                            .await;
                        match result {
                            Ok(_) => ok += 1,
                            Err(e) => {
                                failed += 1;
                                errors.push(e.to_string());
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    (ok, failed, errors)
                })
            })
            .collect();
        let (mut ok, mut failed, mut errors) = (0, 0, Vec::new());
        for caller in callers {
            let (o, f, e) = caller.await.unwrap();
            ok += o;
            failed += f;
            errors.extend(e.into_iter().take(3));
        }
        json!({ "ok": ok, "failed": failed, "errors": errors })
    });
    println!("WORKER-REPORT {report}");
}
