//! `wxgate send` playing the WeCom AI bot against `wxgate serve` as a process: a message
//! whose upstream streams slowly is refreshed as the platform does and its text printed as
//! it grows; a rule's finished stream, the `enter_chat` welcome and URL verification; the
//! platform's six-minute window (shortened); and the options an AI bot has no use for,
//! refused before anything is sent.

mod support;

use std::io::Read as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::cli::{ConfigFile, Run, run, wxgate};
use support::fake_upstream::{Behavior, FakeUpstream};
use support::sample::{KEY, TOKEN};
use support::serve::{Server, test_config};

const SECRET: &str = "aibot-send-test-secret-0123456789";
const WELCOME: &str = "你好，我是小助手";

/// An AI bot `helper` whose rules answer 价格 and whose other messages stream from
/// `forward`; with the other platforms' apps of [`test_config`] beside it.
fn config(forward: &str) -> String {
    config_with(TOKEN, forward)
}

/// [`config`] with another token for `helper`.
fn config_with(token: &str, forward: &str) -> String {
    format!(
        r#"{}
[[apps]]
name = "helper"
platform = "aibot"
token = "{token}"
encoding_aes_key = "{KEY}"
[apps.reply]
forward = "{forward}"
forward_secret = "{SECRET}"
enter_chat = "{WELCOME}"
keywords = [{{ contains = "价格", reply = "发送 1 查看" }}]
"#,
        test_config("")
    )
}

/// `wxgate send --config CONFIG --url URL --app APP ARGS…`.
fn send(config: &ConfigFile, url: &str, app: &str, args: &[&str]) -> Run {
    let mut cmd = wxgate(&["send", "--config", config.arg(), "--url", url, "--app", app]);
    cmd.args(args);
    run(&mut cmd)
}

/// What a command wrote to stdout, read by read as it came, with when; its exit code and
/// stderr.
fn send_watched(
    config: &ConfigFile,
    url: &str,
    args: &[&str],
) -> (i32, Vec<(Instant, String)>, String) {
    let mut cmd = wxgate(&[
        "send",
        "--config",
        config.arg(),
        "--url",
        url,
        "--app",
        "helper",
    ]);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("wxgate send starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut chunks = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        chunks.push((
            Instant::now(),
            String::from_utf8_lossy(&buf[..n]).into_owned(),
        ));
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, chunks, err.join().unwrap())
}

#[test]
fn a_slow_stream_is_refreshed_and_its_text_printed_as_it_grows() {
    let pause = Duration::from_millis(700);
    let upstream = FakeUpstream::start(
        SECRET,
        Behavior::ndjson(
            &[
                json!({"delta": "第一段；"}),
                json!({"delta": "第二段；"}),
                json!({"delta": "第三段。", "done": true}),
            ],
            pause,
        ),
    );
    let text = config(&upstream.url());
    let server = Server::start(&text);
    let file = ConfigFile::new("send-aibot-stream", &text);
    let (code, chunks, stderr) = send_watched(
        &file,
        &server.base,
        &["--refresh-ms", "100", "text", "讲个故事"],
    );
    assert_eq!(code, 0, "{stderr}");
    let printed: String = chunks.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(printed, "第一段；第二段；第三段。\n", "{stderr}");
    // It came in pieces, as the upstream wrote them, not at once at the end.
    let pieces: Vec<&str> = chunks
        .iter()
        .map(|(_, c)| c.trim_end_matches('\n'))
        .filter(|c| !c.is_empty())
        .collect();
    assert!(pieces.len() >= 2, "printed at once: {chunks:?}");
    assert_eq!(pieces[0], "第一段；", "{chunks:?}");
    let spread = chunks.last().unwrap().0 - chunks[0].0;
    assert!(
        spread >= pause,
        "the pieces came {spread:?} apart, the upstream paused {pause:?}: {chunks:?}"
    );
    assert!(stderr.contains("/aibot/helper?"), "{stderr}");
    assert!(stderr.contains("stream opened"), "{stderr}");
    assert!(stderr.contains("signature verified"), "{stderr}");
    assert!(stderr.contains("stream finished after"), "{stderr}");
    // The refreshes read the stream: the upstream was asked once.
    assert_eq!(upstream.requests().len(), 1);
    let asked = upstream.requests()[0].json();
    assert!(asked.to_string().contains("讲个故事"), "{asked}");
}

#[test]
fn a_rule_answers_at_once_and_enter_chat_gets_the_welcome() {
    let upstream = FakeUpstream::start(SECRET, Behavior::none());
    let text = config(&upstream.url());
    let server = Server::start(&text);
    let file = ConfigFile::new("send-aibot-rules", &text);

    let out = send(&file, &server.base, "helper", &["text", "价格多少"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "发送 1 查看\n");
    assert!(out.stderr.contains("finished stream"), "{}", out.stderr);
    // In a group chat too.
    let out = send(
        &file,
        &server.base,
        "helper",
        &[
            "--chat",
            "wrkSFfCgAAtMQKg4xqDatM5C9IFE",
            "text",
            "@小助手 价格",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "发送 1 查看\n");

    let out = send(&file, &server.base, "helper", &["event", "enter_chat"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{WELCOME}\n"));
    assert!(out.stderr.contains("text reply"), "{}", out.stderr);
    // An event nothing answers: the empty answer.
    let out = send(&file, &server.base, "helper", &["event", "feedback_event"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("empty answer"), "{}", out.stderr);

    let out = send(&file, &server.base, "helper", &["verify"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("URL verification passed"),
        "{}",
        out.stderr
    );
    assert!(
        upstream.requests().is_empty(),
        "rules and events ask no upstream"
    );
}

#[test]
fn a_stream_unfinished_when_the_window_closes_is_reported_and_exits_1() {
    // The upstream's first words come long after the (shortened) window.
    let upstream = FakeUpstream::start(
        SECRET,
        Behavior::ndjson(&[json!({"delta": "too late"})], Duration::from_secs(30)),
    );
    let text = config(&upstream.url());
    let server = Server::start(&text);
    let file = ConfigFile::new("send-aibot-window", &text);
    let started = Instant::now();
    let out = send(
        &file,
        &server.base,
        "helper",
        &[
            "--refresh-ms",
            "200",
            "--stream-window-secs",
            "1",
            "text",
            "hi",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("did not finish within 1 s"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_wrong_token_is_refused_with_the_check_that_failed() {
    let upstream = FakeUpstream::start(SECRET, Behavior::none());
    let text = config(&upstream.url());
    let server = Server::start(&text);
    let mine = ConfigFile::new(
        "send-aibot-token",
        &config_with("Wr0ngToken", &upstream.url()),
    );
    let out = send(&mine, &server.base, "helper", &["text", "hi"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);
    assert!(out.stderr.contains("-40001"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn options_an_ai_bot_has_no_use_for_are_refused_before_sending() {
    let upstream = FakeUpstream::start(SECRET, Behavior::none());
    let text = config(&upstream.url());
    let server = Server::start(&text);
    let file = ConfigFile::new("send-aibot-options", &text);
    for (args, says) in [
        (&["--to", "x", "text", "hi"][..], "--to"),
        (
            &["--authorizer", "wxaccount0000001", "text", "hi"],
            "--authorizer is only for Open Platform apps",
        ),
        (&["--plaintext", "text", "hi"], "--plaintext"),
        (&["event", "enter_chat", "--key", "K"], "--key"),
        (&["location"], "messages and events only"),
        (&["ticket"], "messages and events only"),
    ] {
        let out = send(&file, &server.base, "helper", args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains('→'), "{args:?} sent: {}", out.stderr);
    }
    let out = send(&file, &server.base, "helper", &["--to", "x", "text", "hi"]);
    assert!(out.stderr.contains("AI bot"), "{}", out.stderr);
    // --chat is the AI bot's: refused for the other platforms.
    for app in ["demo", "shop"] {
        let out = send(&file, &server.base, app, &["--chat", "g1", "text", "hi"]);
        assert_eq!(out.code, 2, "{app}: {}", out.stderr);
        assert!(
            out.stderr.contains("--chat is only for AI bot apps"),
            "{app}: {}",
            out.stderr
        );
    }
    // --to still works where it means something.
    let out = send(
        &file,
        &server.base,
        "shop",
        &["--to", "gh_other", "text", "hi"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("gh_other"), "{}", out.stdout);
}
