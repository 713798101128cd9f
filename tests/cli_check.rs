//! `wxgate check`: which store a config gets, refusals with exit code 2, and no panic when
//! the reader of its output goes away.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_wxgate");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wxgate.toml");

fn check(table: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--config", EXAMPLE])
        .env_remove("WXGATE_TABLE")
        .env_remove("WXGATE_CONFIG");
    if let Some(table) = table {
        cmd.env("WXGATE_TABLE", table);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_store_follows_the_table_variable() {
    let (code, stdout, _) = check(None);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("config ok: 3 app(s), embedded store"),
        "{stdout}"
    );
    let (code, stdout, _) = check(Some("wxgate-prod"));
    assert_eq!(code, 0);
    assert!(stdout.contains("DynamoDB table wxgate-prod"), "{stdout}");
    let (code, _, stderr) = check(Some("no spaces"));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("WXGATE_TABLE is not a DynamoDB table name"),
        "{stderr}"
    );
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    // What it writes when someone reads it.
    assert!(check(None).1.starts_with("config ok"));
    // Its stdout is a pipe whose read end is closed before the process starts, as under
    // `wxgate check | head -0` once head has exited: every write to it fails (EPIPE), so
    // the outcome does not depend on when the reader goes away.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .args(["check", "--config", EXAMPLE])
        .env_remove("WXGATE_TABLE")
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
    let app = |name: &str, extra: &str| {
        format!(
            "[[apps]]\nname = \"{name}\"\nplatform = \"wecom\"\ncorp_id = \"wx5823bf96d3bd56c7\"\n\
             token = \"QDG6eK\"\nencoding_aes_key = \"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C\"\n{extra}\
             [apps.reply]\nforward = \"https://bot.example.com/hook\"\nforward_secret = \"check-test-secret-0123456789abcdef\"\n"
        )
    };
    let config = format!(
        "{}{}",
        app("sends", "agent_id = 218\nsecret = \"corp-secret\"\n"),
        app("drops", "agent_id = 218\n")
    );
    let dir = std::env::temp_dir().join(format!("wxgate-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("forward.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config", path.to_str().unwrap()])
        .env_remove("WXGATE_TABLE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
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
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_warns_about_plaintext_mode() {
    let dir = std::env::temp_dir().join(format!("wxgate-check-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("plain.toml");
    std::fs::write(
        &path,
        "[[apps]]\nname = \"blog\"\nplatform = \"mp\"\napp_id = \"wx0123456789abcdef\"\ntoken = \"t0ken\"\nsecret = \"s3cret\"\n\
         [apps.reply]\nforward = \"https://bot.example.com/hook\"\nforward_secret = \"check-test-secret-0123456789abcdef\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config", path.to_str().unwrap()])
        .env_remove("WXGATE_TABLE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("warning: app \"blog\" is in plaintext mode")
            && stderr.contains("safe mode"),
        "{stderr}"
    );
    assert!(
        stdout.contains("dropped: plaintext mode signs no body"),
        "late replies are off for it: {stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Settings that would weaken what secrets travel over are start-up errors, said without
/// their values: a short `forward_secret` (an HMAC key), an API host over plain HTTP (the
/// token request carries the app secret in its query).
#[test]
fn check_refuses_weak_secrets_and_plain_http_api_hosts() {
    let dir = std::env::temp_dir().join(format!("wxgate-check-weak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let app = "[[apps]]\nname = \"demo\"\nplatform = \"wecom\"\ncorp_id = \"wx5823bf96d3bd56c7\"\n\
               token = \"QDG6eK\"\nencoding_aes_key = \"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C\"\n";
    for (name, text, said) in [
        (
            "short.toml",
            format!(
                "{app}[apps.reply]\nforward = \"https://bot.example.com/x\"\nforward_secret = \"tooShort123\"\n"
            ),
            "at least 16 characters",
        ),
        (
            "http.toml",
            format!("[api]\nwecom_base_url = \"http://qyapi.example.com\"\n{app}"),
            "api.wecom_base_url: http:// is only accepted for a loopback host",
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, &text).unwrap();
        let out = Command::new(BIN)
            .args(["check", "--config", path.to_str().unwrap()])
            .env_remove("WXGATE_TABLE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(said), "{name}: {stderr}");
        assert!(
            !stderr.contains("tooShort123") && !stderr.contains("qyapi.example.com"),
            "{stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
