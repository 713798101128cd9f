//! `wxgate doctor` as an operator runs it, against a running `wxgate serve` and the fake
//! platform API: one case per cause, each asserting the failed check, its cause and its
//! fix, the exit code, and that no secret or token is printed.

mod support;

use support::cli::{Run, doctor_check as check, run, wxgate};
use support::fake_platform::{APP_ID, APP_SECRET, CORP_ID, CORP_SECRET, FakePlatform, SendFault};
use support::sample::{AGENT_ID, KEY, TOKEN};
use support::serve::{Server, free_addr};

/// Another valid EncodingAESKey (43 base64 characters), not the gateway's.
const OTHER_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// A corp id of the right shape that neither the gateway nor the fake knows.
const OTHER_CORP_ID: &str = "ww00000000000000ff";

/// A WeCom app `name` on the fake platform's corp, with `token`, `key`, `corp_id` and
/// `secret`, its API on `platform`.
fn wecom_config(
    platform: &str,
    name: &str,
    token: &str,
    key: &str,
    corp_id: &str,
    secret: &str,
) -> String {
    format!(
        r#"
[api]
wecom_base_url = "{platform}"
mp_base_url = "{platform}"
[[apps]]
name = "{name}"
platform = "wecom"
corp_id = "{corp_id}"
agent_id = {AGENT_ID}
token = "{token}"
encoding_aes_key = "{key}"
secret = "{secret}"
[apps.reply]
echo = true
"#
    )
}

/// The gateway's own config: the right values.
fn good_wecom(platform: &str) -> String {
    wecom_config(platform, "demo", TOKEN, KEY, CORP_ID, CORP_SECRET)
}

/// An Official Account `shop` in safe mode, its API on `platform`.
fn mp_config(platform: &str, secret: &str) -> String {
    format!(
        r#"
[api]
mp_base_url = "{platform}"
[[apps]]
name = "shop"
platform = "mp"
app_id = "{APP_ID}"
token = "{TOKEN}"
encoding_aes_key = "{KEY}"
secret = "{secret}"
"#
    )
}

/// `wxgate doctor --config (text) extra…`, checked to print no secret.
fn doctor(text: &str, extra: &[&str]) -> Run {
    support::cli::doctor(
        "doctor",
        text,
        extra,
        &[
            CORP_SECRET,
            APP_SECRET,
            "fake-token-",
            TOKEN,
            KEY,
            OTHER_KEY,
        ],
    )
}

/// Asserts that `what` failed and its text holds every one of `words`.
fn assert_failed(out: &Run, what: &str, words: &[&str]) {
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let line = check(out, what);
    assert!(line.starts_with("FAIL"), "{line}\n---\n{}", out.stdout);
    for word in words {
        assert!(line.contains(word), "{word:?} missing from\n{line}");
    }
    assert!(line.contains("cause: ") && line.contains("fix: "), "{line}");
}

#[test]
fn a_good_setup_passes_every_check_and_exits_0() {
    let fake = FakePlatform::start();
    let server = Server::start(&good_wecom(&fake.url()));
    let out = doctor(
        &good_wecom(&fake.url()),
        &["--url", &server.base, "--app", "demo", "--to", "zhangsan"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let (summary, checks) = lines.split_last().unwrap();
    for line in checks {
        assert!(line.starts_with("ok "), "{line}\n---\n{}", out.stdout);
    }
    assert_eq!(*summary, "10 ok, 0 failed, 0 skipped", "{}", out.stdout);
    for what in [
        "demo: keys",
        "config",
        "URL: reachable",
        "demo: route",
        "demo: URL verification",
        "demo: message round trip",
        "demo: token fetch",
        "demo: test message",
    ] {
        check(&out, what);
    }
    assert!(
        check(&out, "demo: message round trip").contains("signature verified"),
        "{}",
        out.stdout
    );
    assert!(
        check(&out, "demo: console URL").contains(&format!("{}/wecom/demo", server.base)),
        "{}",
        out.stdout
    );
    // The test message really went out, to the member named.
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(fake.sent()[0].touser, "zhangsan");
}

#[test]
fn a_full_callback_url_is_cut_back_to_the_gateway() {
    let fake = FakePlatform::start();
    let server = Server::start(&good_wecom(&fake.url()));
    let full = format!("{}/wecom/demo", server.base);
    let out = doctor(&good_wecom(&fake.url()), &["--url", &full]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        check(&out, "demo: route").contains(&format!("GET {full} → 400")),
        "{}",
        out.stdout
    );
}

#[test]
fn a_wrong_token_is_a_signature_refusal() {
    let fake = FakePlatform::start();
    let server = Server::start(&good_wecom(&fake.url()));
    let mine = wecom_config(&fake.url(), "demo", "Wr0ngToken", KEY, CORP_ID, CORP_SECRET);
    let out = doctor(&mine, &["--url", &server.base]);
    assert_failed(
        &out,
        "demo: URL verification",
        &["401", "-40001", "token验证失败", "Token"],
    );
    assert!(check(&out, "demo: message round trip").starts_with("skipped"));
}

#[test]
fn a_wrong_aes_key_is_a_decryption_failure() {
    let fake = FakePlatform::start();
    let server = Server::start(&good_wecom(&fake.url()));
    let mine = wecom_config(&fake.url(), "demo", TOKEN, OTHER_KEY, CORP_ID, CORP_SECRET);
    let out = doctor(&mine, &["--url", &server.base]);
    assert_failed(
        &out,
        "demo: URL verification",
        &["HTTP 400", "decryption failed", "EncodingAESKey"],
    );
}

#[test]
fn a_wrong_corp_id_is_a_receive_id_mismatch_and_40013() {
    let fake = FakePlatform::start();
    let server = Server::start(&good_wecom(&fake.url()));
    let mine = wecom_config(&fake.url(), "demo", TOKEN, KEY, OTHER_CORP_ID, CORP_SECRET);
    let out = doctor(&mine, &["--url", &server.base]);
    assert_failed(
        &out,
        "demo: URL verification",
        &["-40005", "receive id mismatch", "corp_id"],
    );
    assert_failed(
        &out,
        "demo: token fetch",
        &["40013", "does not know this corp_id", "企业ID"],
    );
}

#[test]
fn a_url_nothing_listens_on_is_connection_refused() {
    let fake = FakePlatform::start();
    let down = format!("http://{}", free_addr());
    let out = doctor(&good_wecom(&fake.url()), &["--url", &down]);
    assert_failed(
        &out,
        "URL: reachable",
        &["connection refused", "nothing listens"],
    );
    assert!(check(&out, "demo: callbacks").starts_with("skipped"));
}

#[test]
fn a_wrong_app_name_is_a_404_on_the_route() {
    let fake = FakePlatform::start();
    let server = Server::start(&good_wecom(&fake.url()));
    let mine = wecom_config(&fake.url(), "demo2", TOKEN, KEY, CORP_ID, CORP_SECRET);
    let out = doctor(&mine, &["--url", &server.base]);
    assert_failed(
        &out,
        "demo2: route",
        &["404", "serves no app of this name", "/wecom/demo2"],
    );
}

#[test]
fn https_to_a_plain_http_server_is_a_tls_failure() {
    let fake = FakePlatform::start();
    let server = Server::start(&good_wecom(&fake.url()));
    let https = server.base.replace("http://", "https://");
    let out = doctor(&good_wecom(&fake.url()), &["--url", &https]);
    assert_failed(&out, "URL: reachable", &["TLS", "does not speak TLS"]);
}

#[test]
fn official_accounts_need_the_standard_ports() {
    let fake = FakePlatform::start();
    let server = Server::start(&mp_config(&fake.url(), APP_SECRET));
    let out = doctor(
        &mp_config(&fake.url(), APP_SECRET),
        &["--url", &server.base],
    );
    assert_failed(&out, "URL: scheme and port", &["port", "80", "443", "shop"]);
    // The callbacks themselves work.
    assert!(
        check(&out, "shop: URL verification").starts_with("ok"),
        "{}",
        out.stdout
    );
    assert!(
        check(&out, "shop: message round trip").starts_with("ok"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_wrong_wecom_secret_is_40001() {
    let fake = FakePlatform::start();
    let mine = wecom_config(&fake.url(), "demo", TOKEN, KEY, CORP_ID, "not-the-secret");
    let out = doctor(&mine, &[]);
    assert_failed(
        &out,
        "demo: token fetch",
        &["40001", "secret is wrong", "Secret"],
    );
}

#[test]
fn a_wrong_official_account_secret_is_40125() {
    let fake = FakePlatform::start();
    let out = doctor(&mp_config(&fake.url(), "not-the-secret"), &[]);
    assert_failed(
        &out,
        "shop: token fetch",
        &["40125", "secret is wrong", "AppSecret"],
    );
}

#[test]
fn an_untrusted_caller_ip_names_the_fixed_egress() {
    let fake = FakePlatform::start();
    fake.fail_next_fetches(1, 60020);
    let out = doctor(&good_wecom(&fake.url()), &[]);
    assert_failed(
        &out,
        "demo: token fetch",
        &["60020", "IP", "企业可信IP", "docs/fixed-egress.md"],
    );
    let fake = FakePlatform::start();
    fake.fail_next_fetches(1, 40164);
    let out = doctor(&mp_config(&fake.url(), APP_SECRET), &[]);
    assert_failed(
        &out,
        "shop: token fetch",
        &["40164", "IP", "whitelist", "docs/fixed-egress.md"],
    );
}

#[test]
fn an_api_not_granted_is_48002() {
    let fake = FakePlatform::start();
    fake.fail_next_sends(1, SendFault::Errcode(48002));
    let out = doctor(
        &good_wecom(&fake.url()),
        &["--app", "demo", "--to", "zhangsan"],
    );
    assert!(
        check(&out, "demo: token fetch").starts_with("ok"),
        "{}",
        out.stdout
    );
    assert_failed(&out, "demo: test message", &["48002", "not been granted"]);
}

#[test]
fn an_unreachable_platform_api_suggests_the_proxy() {
    let closed = format!("http://{}", free_addr());
    let out = doctor(&good_wecom(&closed), &[]);
    assert_failed(
        &out,
        "demo: token fetch",
        &["cannot be reached", "[api] proxy"],
    );
}

#[test]
fn a_member_outside_the_visible_range_is_explained_with_agent_get() {
    let fake = FakePlatform::start();
    fake.set_unknown_users(&["wangwu"]);
    fake.set_visible_range(&["zhangsan", "lisi"], &[2]);
    let out = doctor(
        &good_wecom(&fake.url()),
        &["--app", "demo", "--to", "wangwu"],
    );
    assert_failed(
        &out,
        "demo: test message",
        &[
            "81013",
            "2 member(s), 1 department(s)",
            "wangwu is not among the members",
            "可见范围",
        ],
    );
    // 60011 (no privilege for this member) is explained the same way.
    let fake = FakePlatform::start();
    fake.fail_next_sends(1, SendFault::Errcode(60011));
    let out = doctor(
        &good_wecom(&fake.url()),
        &["--app", "demo", "--to", "zhangsan"],
    );
    assert_failed(&out, "demo: test message", &["60011", "visible range"]);
}

#[test]
fn a_follower_outside_the_48_hour_window_is_45015() {
    let fake = FakePlatform::start();
    fake.fail_next_sends(1, SendFault::Errcode(45015));
    let out = doctor(
        &mp_config(&fake.url(), APP_SECRET),
        &["--app", "shop", "--to", "oFollower1"],
    );
    assert_failed(
        &out,
        "shop: test message",
        &["45015", "48 hours", "send the account a message"],
    );
}

#[test]
fn keys_of_the_wrong_shape_name_the_field() {
    let fake = FakePlatform::start();
    let spaced = wecom_config(&fake.url(), "demo", "has-dash", KEY, CORP_ID, CORP_SECRET);
    let out = doctor(&spaced, &[]);
    assert_failed(&out, "demo: keys", &["3 to 32 letters and digits"]);
    let agent = wecom_config(&fake.url(), "demo", TOKEN, KEY, "1000002", CORP_SECRET);
    let out = doctor(&agent, &[]);
    assert_failed(
        &out,
        "demo: keys",
        &["corp_id \"1000002\"", "16 hex digits"],
    );
    let short = wecom_config(&fake.url(), "demo", TOKEN, &KEY[..42], CORP_ID, CORP_SECRET);
    let out = doctor(&short, &[]);
    assert_failed(&out, "demo: keys", &["-40004", "43 characters"]);
}

#[test]
fn usage_errors_exit_2() {
    let fake = FakePlatform::start();
    let out = doctor(&good_wecom(&fake.url()), &["--app", "nope"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("no app named \"nope\""),
        "{}",
        out.stderr
    );
    let out = doctor(&good_wecom(&fake.url()), &["--url", "ftp://example.com"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = doctor(
        &good_wecom(&fake.url()),
        &["--url", "https://admin:hunter2-secret@wx.example.com"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("credentials") && !out.stderr.contains("hunter2-secret"),
        "{}",
        out.stderr
    );
    let out = doctor(&good_wecom(&fake.url()), &["--to", "zhangsan"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = run(&mut wxgate(&[
        "doctor",
        "--config",
        "/nonexistent/wxgate.toml",
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn an_invalid_config_is_a_failed_check() {
    let out = doctor(
        "[[apps]]\nname = \"demo\"\nplatform = \"wecom\"\ntoken = \"t0ken\"\n",
        &[],
    );
    assert_failed(&out, "config", &["corp_id"]);
}
