//! Secrets and message contents never reach the logs, whatever the log level and whatever
//! is wrong with the config: the built binary as a Lambda function (through a runtime API on
//! loopback, with its table on dynalite) and as the command line.

mod support;

use std::process::Command;

use support::dynamo::{DynamoServer, client, create_table, unique_table_name};
use support::runtime_api::{FunctionProcess, HarnessError, apigw_v2_event};
use support::serve::TempDir;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::simulate::{Answer, Header, PlatformSim, text_xml};

const TOKEN: &str = "Tok3nInlineSecret";
const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const APP_SECRET: &str = "AppS3cretInlineValue0123";
const BOT_SECRET: &str = "BotS3cretInlineValue456789";

/// One line, as `WXGATE_CONFIG` is in the template, with every secret inline and a typo
/// (`agent_id` as a string) on that same line.
fn typo_config() -> String {
    format!(
        r#"apps = [{{ name = "demo", platform = "wecom", corp_id = "ww0123456789abcdef", agent_id = "218", token = "{TOKEN}", encoding_aes_key = "{KEY}", secret = "{APP_SECRET}", reply = {{ forward = "https://bot.example.com/x", forward_secret = "{BOT_SECRET}" }} }}]"#
    )
}

fn assert_no_secrets(what: &str, text: &str) {
    for secret in [TOKEN, KEY, APP_SECRET, BOT_SECRET] {
        assert!(!text.contains(secret), "{what} quotes a secret: {text}");
    }
}

#[tokio::test]
async fn a_config_typo_in_lambda_names_the_place_but_no_secret() {
    let mut function = FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_wxgate"),
        &[],
        &[("WXGATE_CONFIG", &typo_config()), ("RUST_LOG", "trace")],
    )
    .await
    .unwrap();
    let event = apigw_v2_event("GET", "/wecom/demo", "", None, false);
    match function.invoke(event).await {
        Err(HarnessError::ProcessExited { .. }) => {}
        other => panic!("expected the process to exit: {other:?}"),
    }
    let logs = function.logs();
    assert!(
        logs.contains("line 1") && logs.contains("agent_id") && logs.contains("expected u64"),
        "the error says where and what: {logs}"
    );
    assert_no_secrets("the Lambda init error", &logs);
}

#[test]
fn a_config_typo_on_the_command_line_names_the_place_but_no_secret() {
    let dir = TempDir::new("typo");
    let path = dir.0.join("wxgate.toml");
    std::fs::write(&path, typo_config()).unwrap();
    let path = path.to_str().unwrap();
    for args in [
        vec!["check", "--config", path],
        vec!["serve", "--addr", "127.0.0.1:0", "--config", path],
        vec!["send", "--config", path, "--app", "demo", "text", "hi"],
        vec![
            "notify", "--config", path, "--app", "demo", "--to", "lisi", "hi",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wxgate"))
            .args(&args)
            .env("RUST_LOG", "trace")
            .env_remove("WXGATE_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("line 1, column") && stderr.contains("(agent_id)"),
            "{args:?}: {stderr}"
        );
        assert_no_secrets(args[0], &format!("{stdout}{stderr}"));
    }
}

/// An Official Account in plaintext mode: the raw event carries the message in clear, and
/// the store requests carry the recorded echo.
const PLAINTEXT_APP: &str = r#"
[[apps]]
name = "blog"
platform = "mp"
token = "blogTokenValue42"
[apps.reply]
echo = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_level_prints_neither_raw_events_nor_store_requests() {
    let server = DynamoServer::start();
    let table = unique_table_name("tracelogs");
    create_table(&client(&server.endpoint()).await, &table).await;
    let mut function = FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_wxgate"),
        &[],
        &[
            ("WXGATE_CONFIG", PLAINTEXT_APP),
            ("WXGATE_TABLE", &table),
            ("AWS_ENDPOINT_URL_DYNAMODB", &server.endpoint()),
            ("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTESTTEST"),
            ("AWS_SECRET_ACCESS_KEY", "test-secret-access-key"),
            ("RUST_LOG", "trace"),
        ],
    )
    .await
    .unwrap();
    let sim = PlatformSim::new(Config::parse(PLAINTEXT_APP).unwrap().app("blog").unwrap()).unwrap();
    let header = Header {
        to: "gh_blog",
        from: "oFollower",
        create_time: unix_now(),
        agent_id: None,
    };
    let text = "my bank pin is 4711";
    let request = sim
        .post(&text_xml(&header, text, 31337), unix_now(), "n0nce")
        .unwrap();
    let event = apigw_v2_event(
        "POST",
        &request.path,
        &request.query,
        Some(&request.body),
        false,
    );
    let response = function.invoke(event).await.unwrap().response().unwrap();
    let body = String::from_utf8(response.body.clone()).unwrap();
    let Answer::Reply(reply) = sim.check(&request, response.status, &body).unwrap() else {
        panic!("no echo: {body}");
    };
    assert!(reply.contains(text));
    let logs = function.stop().logs;
    assert!(
        logs.contains("callback answered"),
        "wxgate's own lines are there: {logs}"
    );
    assert!(!logs.contains(text), "the message text leaked: {logs}");
    assert!(
        !logs.contains("blogTokenValue42"),
        "the token leaked: {logs}"
    );
    let signature = request
        .query
        .split('&')
        .find(|p| p.starts_with("signature="))
        .unwrap();
    assert!(!logs.contains(signature), "the signed query leaked: {logs}");
}
