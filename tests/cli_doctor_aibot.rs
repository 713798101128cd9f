//! `wxgate doctor` for a WeCom AI bot app against a running `wxgate serve`: the keys' shape
//! (no ids, no secret), the console field, URL verification and a message round trip
//! signed as the AI bot signs (a finished or an opened stream both pass), refusals mapped
//! to their causes as for WeCom, and the token and test-message checks skipped with the
//! reason. Nothing printed holds the token or the key.

mod support;

use std::time::Duration;

use serde_json::json;
use support::cli::{Run, doctor_check as check};
use support::fake_upstream::{Behavior, FakeUpstream};
use support::sample::{KEY, TOKEN};
use support::serve::Server;

/// Another valid EncodingAESKey (43 base64 characters), not the gateway's.
const OTHER_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const SECRET: &str = "doctor-aibot-secret-0123456789";

/// An AI bot `helper` with `token` and `key`, answering by `reply`.
fn aibot_config(token: &str, key: &str, reply: &str) -> String {
    format!(
        "[[apps]]\nname = \"helper\"\nplatform = \"aibot\"\ntoken = \"{token}\"\n\
         encoding_aes_key = \"{key}\"\n[apps.reply]\n{reply}\n"
    )
}

const RULES: &str = "echo = true\nenter_chat = \"hi\"";

/// `wxgate doctor --config (text) extra…`, checked to print no token or key.
fn doctor(text: &str, extra: &[&str]) -> Run {
    support::cli::doctor(
        "doctor-aibot",
        text,
        extra,
        &[TOKEN, KEY, OTHER_KEY, SECRET],
    )
}

fn assert_line(out: &Run, what: &str, outcome: &str, words: &[&str]) {
    let line = check(out, what);
    assert!(line.starts_with(outcome), "{line}\n---\n{}", out.stdout);
    for word in words {
        assert!(line.contains(word), "{word:?} missing from\n{line}");
    }
}

#[test]
fn a_good_ai_bot_passes_and_the_checks_it_has_no_use_for_are_skipped() {
    let text = aibot_config(TOKEN, KEY, RULES);
    let server = Server::start(&text);
    let out = doctor(
        &text,
        &["--url", &server.base, "--app", "helper", "--to", "zhangsan"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_line(
        &out,
        "helper: keys",
        "ok",
        &["EncodingAESKey 43 characters", "no ids and no secret"],
    );
    assert_line(
        &out,
        "helper: console URL",
        "ok",
        &[&format!(
            "智能机器人 → API模式 → URL: {}/aibot/helper",
            server.base
        )],
    );
    assert_line(&out, "helper: route", "ok", &["400 from wxgate"]);
    assert_line(
        &out,
        "helper: URL verification",
        "ok",
        &["plaintext echo came back"],
    );
    assert_line(
        &out,
        "helper: message round trip",
        "ok",
        &["signature verified", "a finished stream"],
    );
    assert_line(
        &out,
        "helper: token fetch",
        "skipped",
        &["an AI bot has no secret"],
    );
    assert_line(
        &out,
        "helper: test message",
        "skipped",
        &["no API", "--to does not apply"],
    );
    assert!(
        out.stdout.trim_end().ends_with("ok, 0 failed, 2 skipped"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_message_answered_by_an_opened_stream_passes_the_round_trip() {
    let upstream = FakeUpstream::start(
        SECRET,
        Behavior::ndjson(&[json!({"delta": "slowly"})], Duration::from_secs(2)),
    );
    let text = aibot_config(
        TOKEN,
        KEY,
        &format!(
            "forward = \"{}\"\nforward_secret = \"{SECRET}\"",
            upstream.url()
        ),
    );
    let server = Server::start(&text);
    let out = doctor(&text, &["--url", &server.base]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_line(
        &out,
        "helper: message round trip",
        "ok",
        &["signature verified", "a stream opened"],
    );
    assert_line(&out, "helper: test message", "skipped", &["no API"]);
    assert!(
        !check(&out, "helper: test message").contains("--to"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_wrong_token_or_key_is_named_as_for_wecom() {
    let server = Server::start(&aibot_config(TOKEN, KEY, RULES));
    let out = doctor(
        &aibot_config("Wr0ngToken", KEY, RULES),
        &["--url", &server.base],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_line(
        &out,
        "helper: URL verification",
        "FAIL",
        &["401", "-40001", "token验证失败", "cause: ", "fix: "],
    );
    assert_line(
        &out,
        "helper: message round trip",
        "skipped",
        &["URL verification failed"],
    );

    let out = doctor(
        &aibot_config(TOKEN, OTHER_KEY, RULES),
        &["--url", &server.base],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_line(
        &out,
        "helper: URL verification",
        "FAIL",
        &["HTTP 400", "decryption failed", "EncodingAESKey"],
    );
}
