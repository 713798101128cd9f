//! `wxgate jobs`: the reply jobs of a DynamoDB table (dynalite on 127.0.0.1), listed by the
//! binary as an operator runs it, filtered by state and app, as text or JSON, never with
//! the message's contents; the embedded store and an unreachable table are refused clearly.
// Some tests here need a local AWS-compatible server or Python: they are built only with
// `--features external-tests` (scripts/test.sh); the rest run with plain `cargo test`.
#![cfg_attr(not(feature = "external-tests"), allow(dead_code, unused_imports))]

mod support;

use serde_json::Value;
use support::cli::{EXAMPLE, Run, run, wxgate};
use support::dynamo::{DynamoServer, client, create_table, process_env, unique_table_name};
use wxgate::clock::now_ms;
use wxgate::store::{DedupStore, DedupTimes, DynamoStore, JobEnd, JobStore, NewJob, dedup_key};

const SECRET_WORDS: &str = "my card number is 4111";

fn times(now_ms: u64) -> DedupTimes {
    DedupTimes {
        now_ms,
        lease_ms: 6_000,
        retention_secs: 86_400,
    }
}

/// A job claimed for `app`/`id`, taken by a worker, then ended as `end` (or left running).
async fn job(store: &DynamoStore, app: &str, id: &str, end: Option<JobEnd<'_>>) -> String {
    let key = dedup_key(app, &format!("msg|{id}"));
    let now = now_ms();
    let message = format!("<xml><Content><![CDATA[{SECRET_WORDS}]]></Content></xml>");
    let new = NewJob {
        app,
        authorizer_app_id: None,
        message: &message,
        answer_by_ms: now + 4_000,
    };
    store
        .claim_with_job(&key, "cb", times(now), new)
        .await
        .unwrap();
    store
        .take_job(&key, "w", now, 60_000)
        .await
        .unwrap()
        .expect("taken");
    if let Some(end) = end {
        if matches!(end, JobEnd::Sent { .. }) {
            assert!(store.start_sending(&key, "w").await.unwrap());
        }
        assert!(store.end_job(&key, "w", end, times(now)).await.unwrap());
    }
    key
}

fn jobs(endpoint: &str, table: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = wxgate(&["jobs", "--config", EXAMPLE]);
    cmd.args(args).envs(process_env(endpoint));
    if let Some(table) = table {
        cmd.env("WXGATE_TABLE", table);
    }
    let Run {
        code,
        stdout,
        stderr,
    } = run(&mut cmd);
    (code, stdout, stderr)
}

#[cfg(feature = "external-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_by_state_and_app_without_message_contents() {
    let server = DynamoServer::start();
    let endpoint = server.endpoint();
    let db = client(&endpoint).await;
    let table = unique_table_name("jobs-cli");
    create_table(&db, &table).await;
    let store = DynamoStore::new(db, &table);
    let failed = job(
        &store,
        "demo",
        "1",
        Some(JobEnd::Failed {
            reason: "upstream: HTTP status 500",
        }),
    )
    .await;
    let sent = job(
        &store,
        "demo",
        "2",
        Some(JobEnd::Sent {
            msgid: Some("m-42"),
        }),
    )
    .await;
    let running = job(&store, "shop", "3", None).await;
    // A plain dedup record (no job) and a token are not jobs.
    store
        .claim(&dedup_key("demo", "msg|4"), "cb", times(now_ms()))
        .await
        .unwrap();

    let (code, stdout, stderr) = jobs(&endpoint, Some(&table), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stderr.contains("3 job(s)"), "{stderr}");
    for key in [&failed, &sent, &running] {
        assert!(stdout.contains(key.as_str()), "{stdout}");
    }
    assert!(
        stdout.contains("reason: upstream: HTTP status 500"),
        "{stdout}"
    );
    assert!(stdout.contains("msgid=m-42"), "{stdout}");
    assert!(!stdout.contains(SECRET_WORDS) && !stderr.contains(SECRET_WORDS));

    let (code, stdout, _) = jobs(&endpoint, Some(&table), &["--failed"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("failed") && stdout.contains(&failed),
        "{stdout}"
    );

    let (code, stdout, _) = jobs(&endpoint, Some(&table), &["--app", "shop", "--json"]);
    assert_eq!(code, 0);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["key"], running.as_str());
    assert_eq!(lines[0]["state"], "running");
    assert_eq!(lines[0]["app"], "shop");
    assert!(lines[0].get("message").is_none());

    let (code, _, stderr) = jobs(&endpoint, Some(&table), &["--state", "stuck"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("expected pending, running"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_and_an_unreachable_table_are_refused_clearly() {
    let (code, _, stderr) = jobs("http://127.0.0.1:9", None, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("embedded store"), "{stderr}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (code, _, stderr) = jobs(&dead, Some("wxgate-missing"), &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot read the jobs of DynamoDB table wxgate-missing"),
        "{stderr}"
    );
}
