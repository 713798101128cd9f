//! `wxgate check`: which store a config gets, refusals with exit code 2, and no panic when
//! the reader of its output goes away.

mod support;

use std::process::Stdio;

use support::cli::{ConfigFile, EXAMPLE, Run, run, wxgate};
use support::sample::wecom_app;

/// `wxgate check` of the example config, with `WXGATE_TABLE` set to `table` if given.
fn check(table: Option<&str>) -> Run {
    let mut cmd = wxgate(&["check", "--config", EXAMPLE]);
    if let Some(table) = table {
        cmd.env("WXGATE_TABLE", table);
    }
    run(&mut cmd)
}

/// `wxgate check` of a config file holding `text`.
fn check_text(text: &str) -> Run {
    let file = ConfigFile::new("check", text);
    run(&mut wxgate(&["check", "--config", file.arg()]))
}

#[test]
fn the_store_follows_the_table_variable() {
    let out = check(None);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout
            .starts_with("config ok: 3 app(s), embedded store"),
        "{}",
        out.stdout
    );
    let out = check(Some("wxgate-prod"));
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("DynamoDB table wxgate-prod"),
        "{}",
        out.stdout
    );
    let out = check(Some("no spaces"));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("WXGATE_TABLE is not a DynamoDB table name"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    // What it writes when someone reads it.
    assert!(check(None).stdout.starts_with("config ok"));
    // Its stdout is a pipe whose read end is closed before the process starts, as under
    // `wxgate check | head -0` once head has exited: every write to it fails (EPIPE), so
    // the outcome does not depend on when the reader goes away.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = wxgate(&["check", "--config", EXAMPLE])
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn check_says_what_becomes_of_an_upstreams_late_reply() {
    let forward = "[apps.reply]\nforward = \"https://bot.example.com/hook\"\n\
                   forward_secret = \"check-test-secret-0123456789abcdef\"\n";
    let config = format!(
        "{}{}",
        wecom_app(
            "sends",
            &format!("agent_id = 218\nsecret = \"corp-secret\"\n{forward}")
        ),
        wecom_app("drops", &format!("agent_id = 218\n{forward}"))
    );
    let out = check_text(&config);
    let stdout = &out.stdout;
    assert_eq!(out.code, 0, "{stdout}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"))
            .to_owned()
    };
    assert!(
        line("sends").contains(
            "forward → bot.example.com; a reply later than the budget is sent as an active message"
        ),
        "{stdout}"
    );
    assert!(
        line("drops").contains("dropped: sending it actively needs secret and agent_id"),
        "{stdout}"
    );
}

#[test]
fn check_warns_about_plaintext_mode() {
    let out = check_text(
        "[[apps]]\nname = \"blog\"\nplatform = \"mp\"\napp_id = \"wx0123456789abcdef\"\ntoken = \"t0ken\"\nsecret = \"s3cret\"\n\
         [apps.reply]\nforward = \"https://bot.example.com/hook\"\nforward_secret = \"check-test-secret-0123456789abcdef\"\n",
    );
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(out.code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("warning: app \"blog\" is in plaintext mode")
            && stderr.contains("safe mode"),
        "{stderr}"
    );
    assert!(
        stdout.contains("dropped: plaintext mode signs no body"),
        "late replies are off for it: {stdout}"
    );
}

/// Settings that would weaken what secrets travel over are start-up errors, said without
/// their values: a short `forward_secret` (an HMAC key), an API host over plain HTTP (the
/// token request carries the app secret in its query).
#[test]
fn check_refuses_weak_secrets_and_plain_http_api_hosts() {
    let app = wecom_app("demo", "");
    for (name, text, said) in [
        (
            "short",
            format!(
                "{app}[apps.reply]\nforward = \"https://bot.example.com/x\"\nforward_secret = \"tooShort123\"\n"
            ),
            "at least 16 characters",
        ),
        (
            "http",
            format!("[api]\nwecom_base_url = \"http://qyapi.example.com\"\n{app}"),
            "api.wecom_base_url: http:// is only accepted for a loopback host",
        ),
    ] {
        let out = check_text(&text);
        let stderr = &out.stderr;
        assert_eq!(out.code, 2, "{name}: {stderr}");
        assert!(stderr.contains(said), "{name}: {stderr}");
        assert!(
            !stderr.contains("tooShort123") && !stderr.contains("qyapi.example.com"),
            "{stderr}"
        );
    }
}

#[test]
fn check_says_what_an_ai_bot_answers() {
    let aibot = |name: &str, reply: &str| {
        format!(
            "[[apps]]\nname = \"{name}\"\nplatform = \"aibot\"\ntoken = \"QDG6eK\"\n\
             encoding_aes_key = \"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C\"\n[apps.reply]\n{reply}\n"
        )
    };
    let config = [
        aibot("ruled", "enter_chat = \"hi\"\nkeywords = [{ contains = \"a\", reply = \"b\" }]"),
        aibot(
            "forwarded",
            "forward = \"https://bot.example.com/hook?key=k1\"\n\
             forward_secret = \"check-test-secret-0123456789abcdef\"",
        ),
        aibot(
            "modelled",
            "llm = \"https://llm.example.com/v1\"\nllm_model = \"qwen-plus\"\nllm_api_key = \"sk-check-test-key\"",
        ),
    ]
    .concat();
    let out = check_text(&config);
    let stdout = &out.stdout;
    assert_eq!(out.code, 0, "{stdout}{}", out.stderr);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"))
            .to_owned()
    };
    assert!(line("ruled").contains("aibot  ruled"), "{stdout}");
    assert!(line("ruled").contains("/aibot/ruled"), "{stdout}");
    assert!(
        line("ruled").contains("(rules only: a message no rule answers gets a finished empty stream; enter_chat welcomed)"),
        "{stdout}"
    );
    assert!(
        line("forwarded")
            .contains("/aibot/forwarded  (rules; forward → bot.example.com, streamed)"),
        "{stdout}"
    );
    assert!(
        line("modelled").contains("(rules; llm → llm.example.com, qwen-plus, streamed)"),
        "{stdout}"
    );
    // Hosts only: a key in the URL's query, and the API key, are not printed.
    assert!(
        !stdout.contains("k1") && !stdout.contains("sk-check"),
        "{stdout}"
    );
    // Nothing about late replies: an AI bot's answer is its stream.
    assert!(!line("forwarded").contains("budget"), "{stdout}");
}
