//! Secrets and message contents never reach the logs, whatever the log level and whatever
//! is wrong with the config: the built binary as a Lambda function (through a runtime API on
//! loopback, with its table on dynalite) and as the command line.
// Some tests here need a local AWS-compatible server or Python: they are built only with
// `--features external-tests` (scripts/test.sh); the rest run with plain `cargo test`.
#![cfg_attr(not(feature = "external-tests"), allow(dead_code, unused_imports))]

mod support;

use support::calls::lambda_answer;
use support::cli::{ConfigFile, run, wxgate};
use support::dynamo::{
    ACCESS_KEY_ID, DynamoServer, SECRET_ACCESS_KEY, client, create_table, unique_table_name,
};
use support::runtime_api::{FunctionProcess, HarnessError, apigw_v2_event};
use support::sample::{KEY, header, sim_of};
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::simulate::{Answer, text_xml};

const TOKEN: &str = "Tok3nInlineSecret";
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
    let file = ConfigFile::new("typo", &typo_config());
    let path = file.arg();
    for args in [
        vec!["check", "--config", path],
        vec!["serve", "--addr", "127.0.0.1:0", "--config", path],
        vec!["send", "--config", path, "--app", "demo", "text", "hi"],
        vec![
            "notify", "--config", path, "--app", "demo", "--to", "lisi", "hi",
        ],
    ] {
        let out = run(wxgate(&args).env("RUST_LOG", "trace"));
        let (stdout, stderr) = (&out.stdout, &out.stderr);
        assert_eq!(out.code, 2, "{args:?}: {stderr}");
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

#[cfg(feature = "external-tests")]
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
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
            ("RUST_LOG", "trace"),
        ],
    )
    .await
    .unwrap();
    let sim = sim_of(&Config::parse(PLAINTEXT_APP).unwrap(), "blog");
    let header = header("gh_blog", "oFollower", None);
    let text = "my bank pin is 4711";
    let request = sim
        .post(&text_xml(&header, text, 31337), unix_now(), "n0nce")
        .unwrap();
    let Answer::Reply(reply) = lambda_answer(&mut function, &sim, &request).await else {
        panic!("no echo");
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
