//! `wxgate open`, `notify --authorizer`, `send` of authorization pushes and `check` for a
//! component, run as an operator runs them: over a DynamoDB table (dynalite on 127.0.0.1)
//! that a gateway filled the way the deployed function does, against the fake Open
//! Platform.
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::sync::Arc;

use serde_json::Value;
use support::calls::handle;
use support::cli::{ConfigFile, Run, run, wxgate};
use support::dynamo::{DynamoServer, client, create_table, process_env, unique_table_name};
use support::fake_open::FakeOpen;
use support::open_flow::*;
use support::sample::sim_of;
use support::serve::Server;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::Gateway;
use wxgate::store::{Backend, DynamoStore};

struct Setup {
    _server: DynamoServer,
    endpoint: String,
    table: String,
    file: ConfigFile,
    fake: FakeOpen,
}

impl Setup {
    fn open(&self, args: &[&str]) -> Run {
        let mut cmd = wxgate(&["open"]);
        cmd.args(args)
            .args(["--config", self.file.arg(), "--app", "comp"])
            .envs(process_env(&self.endpoint))
            .env("WXGATE_TABLE", &self.table);
        run(&mut cmd)
    }
}

/// A table holding a ticket and one authorization, written by a gateway over it.
async fn setup() -> Setup {
    let server = DynamoServer::start();
    let endpoint = server.endpoint();
    let db = client(&endpoint).await;
    let table = unique_table_name("open-cli");
    create_table(&db, &table).await;
    let fake = FakeOpen::start();
    let text = component_config(&fake, "https://wx.example.com", "", "echo = true");
    let config = Config::parse(&text).unwrap();
    let store = Arc::new(Backend::Dynamo(DynamoStore::new(db, &table)));
    let gateway = Gateway::builder(&config).store(store).build().unwrap();
    let sim = sim_of(&config, "comp");
    let push = ticket_push(&sim, &fake.issue_ticket(), unix_now());
    assert_eq!(handle(&gateway, &push).await.1, "success");
    let code = fake.authorize(AUTHORIZER, &[1, 2]);
    let event = authorized_push(&sim, "authorized", AUTHORIZER, &code, unix_now());
    assert_eq!(handle(&gateway, &event).await.1, "success");
    Setup {
        _server: server,
        endpoint,
        table,
        file: ConfigFile::new("open-cli", &text),
        fake,
    }
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_list_refresh_recover_and_push() {
    let s = setup().await;
    let refresh_token = s.fake.current_refresh_token(AUTHORIZER).unwrap();

    let out = s.open(&["status"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let status: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(status["ticket"]["valid"], true, "{status}");
    assert_eq!(status["authorizations"]["authorized"], 1, "{status}");
    assert_eq!(status["secret"], true);

    let out = s.open(&["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let list = json_lines(&out.stdout);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["authorizer_appid"], AUTHORIZER);
    assert_eq!(list[0]["state"], "authorized");
    assert_eq!(list[0]["user_name"], AUTHORIZER_GH);
    assert_eq!(list[0]["func_info"], serde_json::json!([1, 2]));
    assert!(list[0].get("refresh_token").is_none());
    assert!(
        !out.stdout.contains("refreshtoken@@@"),
        "no token unless asked"
    );
    let out = s.open(&["list", "--show-tokens"]);
    assert_eq!(
        json_lines(&out.stdout)[0]["refresh_token"],
        refresh_token.as_str()
    );

    // Refresh: a new authorizer token through the stored refresh token.
    let before = s.fake.authorizer_refreshes(AUTHORIZER);
    let out = s.open(&["refresh", "--authorizer", AUTHORIZER]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(s.fake.authorizer_refreshes(AUTHORIZER), before + 1);

    // Recover: the platform's current refresh token replaces a stale stored one.
    s.fake.invalidate_refresh_token_only(AUTHORIZER);
    let current = s.fake.current_refresh_token(AUTHORIZER).unwrap();
    assert_ne!(current, refresh_token);
    let out = s.open(&["recover", "--authorizer", AUTHORIZER]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("stored the refresh token"),
        "{}",
        out.stdout
    );
    let out = s.open(&["list", "--show-tokens"]);
    assert_eq!(
        json_lines(&out.stdout)[0]["refresh_token"],
        current.as_str()
    );
    let out = s.open(&["recover", "--authorizer", "wxnotauthorized01"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("must authorize again"),
        "{}",
        out.stdout
    );

    // A ticket push request, throttled for the fleet.
    let out = s.open(&["push-ticket"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = s.open(&["push-ticket"]);
    assert_eq!(out.code, 1);
    assert_eq!(s.fake.push_ticket_requests(), 1);

    // notify as the authorized account, with its token.
    let mut cmd = wxgate(&[
        "notify",
        "--config",
        s.file.arg(),
        "--app",
        "comp",
        "--authorizer",
        AUTHORIZER,
        "--to",
        "oFollower9",
        "构建完成",
    ]);
    cmd.envs(process_env(&s.endpoint))
        .env("WXGATE_TABLE", &s.table);
    let out = run(&mut cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sent = s.fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].authorizer_appid.as_str(), sent[0].content.as_str()),
        (AUTHORIZER, "构建完成")
    );
    let mut cmd = wxgate(&[
        "notify",
        "--config",
        s.file.arg(),
        "--app",
        "comp",
        "--to",
        "o",
        "x",
    ]);
    let out = run(&mut cmd);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--authorizer"), "{}", out.stderr);
}

#[test]
fn link_needs_public_url_and_secret_and_check_says_so() {
    let fake = FakeOpen::start();
    let text = component_config(&fake, "https://wx.example.com", "", "echo = true");
    let file = ConfigFile::new("open-link", &text);
    let out = run(&mut wxgate(&[
        "open",
        "link",
        "--config",
        file.arg(),
        "--auth-type",
        "2",
        "--biz-appid",
        "wx0123456789abcdef",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let link = out.stdout.trim();
    assert!(
        link.starts_with("https://wx.example.com/open/comp/authorize?expires="),
        "{link}"
    );
    assert!(
        link.contains("&auth_type=2&biz_appid=wx0123456789abcdef&sig="),
        "{link}"
    );
    let out = run(&mut wxgate(&[
        "open",
        "link",
        "--config",
        file.arg(),
        "--auth-type",
        "4",
    ]));
    assert_eq!(out.code, 2);

    let bare = text.replace("public_url = \"https://wx.example.com\"\n", "");
    let file = ConfigFile::new("open-link-bare", &bare);
    let out = run(&mut wxgate(&["open", "link", "--config", file.arg()]));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("public_url"), "{}", out.stderr);
    let out = run(&mut wxgate(&["check", "--config", file.arg()]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("/open/comp/$APPID$"), "{}", out.stdout);
    assert!(out.stderr.contains("no public_url"), "{}", out.stderr);
    assert!(out.stderr.contains("61004"), "{}", out.stderr);
    let secretless = bare.replace(
        &format!("secret = \"{}\"\n", support::fake_open::COMPONENT_SECRET),
        "",
    );
    let file = ConfigFile::new("open-link-secretless", &secretless);
    let out = run(&mut wxgate(&["check", "--config", file.arg()]));
    assert!(out.stderr.contains("has no secret"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_plays_every_push_of_the_flow() {
    let fake = FakeOpen::start();
    let addr = support::serve::free_addr();
    let text = component_config(&fake, &format!("http://{addr}"), "", "echo = true");
    let server = Server::start_logged_on(&text, &addr);
    let file = ConfigFile::new("open-send", &text);
    let send = |args: &[&str]| {
        let mut cmd = wxgate(&[
            "send",
            "--config",
            file.arg(),
            "--url",
            &server.base,
            "--app",
            "comp",
        ]);
        cmd.args(args);
        run(&mut cmd)
    };
    let ticket = fake.issue_ticket();
    let out = send(&["ticket", &ticket]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let code = fake.authorize(AUTHORIZER, &[1]);
    for what in ["authorized", "updateauthorized"] {
        let out = send(&["--authorizer", AUTHORIZER, what, &code]);
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
    }
    let out = send(&["--authorizer", AUTHORIZER, "unauthorized"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = send(&["authorized", &code]);
    assert_eq!(out.code, 2, "needs --authorizer");
    // The release test's probes.
    let out = send(&[
        "--authorizer",
        "wx570bc396a51b8ff8",
        "--to",
        "gh_3c884a361561",
        "text",
        "TESTCOMPONENT_MSG_TYPE_TEXT",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("TESTCOMPONENT_MSG_TYPE_TEXT_callback"),
        "{}",
        out.stdout
    );
    let out = send(&[
        "--authorizer",
        "wx570bc396a51b8ff8",
        "--to",
        "gh_3c884a361561",
        "location",
    ]);
    assert!(
        out.stdout.contains("LOCATIONfrom_callback"),
        "{}",
        out.stdout
    );
    let logs = server.logs();
    assert!(logs.contains("component_verify_ticket stored"), "{logs}");
    assert_eq!(logs.matches("authorization stored").count(), 2, "{logs}");
    assert!(logs.contains("authorization withdrawn"), "{logs}");
}
