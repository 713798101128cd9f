//! `wxgate send` as a newcomer runs it against `wxgate serve`: the `--url` may be the base
//! URL, the app's full callback URL, or a loopback address without a scheme; a URL that
//! cannot be used, a server that is not running and `--authorizer` on an app that is not
//! an Open Platform app are each refused with a message saying what to do.

mod support;

use support::cli::{ConfigFile, Run, run, wxgate};
use support::serve::{Server, test_config};

/// `wxgate send --config CONFIG --url URL --app APP ARGS…`.
fn send(config: &ConfigFile, url: &str, app: &str, args: &[&str]) -> Run {
    let mut cmd = wxgate(&["send", "--config", config.arg(), "--url", url, "--app", app]);
    cmd.args(args);
    run(&mut cmd)
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn the_base_url_the_callback_url_and_a_bare_loopback_address_all_reach_the_app() {
    let text = test_config("");
    let server = Server::start(&text);
    let config = ConfigFile::new("send-urls", &text);
    let hostport = server.base.trim_start_matches("http://").to_owned();
    let urls = [
        server.base.clone(),
        format!("{}/", server.base),
        format!("{}/wecom/demo", server.base),
        format!("{}/wecom/demo/", server.base),
        hostport.clone(),
        format!("{hostport}/wecom/demo"),
    ];
    for url in &urls {
        let out = send(&config, url, "demo", &["text", "hello"]);
        assert_eq!(out.code, 0, "--url {url}: {}", out.stderr);
        assert!(out.stdout.contains("hello"), "--url {url}: {}", out.stdout);
        assert!(
            out.stderr.contains(&format!("{}/wecom/demo?", server.base)),
            "--url {url} posted elsewhere: {}",
            out.stderr
        );
    }
    // URL verification (a GET) and an MP app's route take the same path.
    let out = send(
        &config,
        &format!("{}/wecom/demo", server.base),
        "demo",
        &["verify"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = send(
        &config,
        &format!("{}/mp/shop", server.base),
        "shop",
        &["text", "hi"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_url_that_cannot_be_used_is_a_usage_error_saying_what_to_pass() {
    let config = ConfigFile::new("send-bad-url", &test_config(""));
    let out = send(&config, "gw.example.com:8080", "demo", &["text", "hi"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("has no scheme"), "{}", out.stderr);
    assert!(
        out.stderr.contains("https://gw.example.com:8080"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("builder error"), "{}", out.stderr);

    let out = send(&config, "ftp://127.0.0.1/", "demo", &["text", "hi"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("only http:// and https://"),
        "{}",
        out.stderr
    );

    let out = send(
        &config,
        "http://127.0.0.1:3000/?x=1",
        "demo",
        &["text", "hi"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("query"), "{}", out.stderr);

    // Credentials in the URL: refused, and not repeated.
    let out = send(
        &config,
        "http://admin:hunter2-secret@127.0.0.1:3000",
        "demo",
        &["text", "hi"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("credentials"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2-secret"), "{}", out.stderr);
}

#[test]
fn a_gateway_that_is_not_running_is_named_with_a_hint() {
    let config = ConfigFile::new("send-down", &test_config(""));
    let port = closed_port();
    let out = send(
        &config,
        &format!("http://127.0.0.1:{port}"),
        "demo",
        &["text", "hi"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "nothing answered at http://127.0.0.1:{port}/wecom/demo"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "is `wxgate serve` running at http://127.0.0.1:{port}?"
        )),
        "{}",
        out.stderr
    );
    // The message's contents are not echoed with the failure.
    assert!(!out.stderr.contains("Encrypt"), "{}", out.stderr);
}

#[test]
fn authorizer_on_an_app_that_is_not_an_open_platform_app_is_refused() {
    let text = test_config("");
    let server = Server::start(&text);
    let config = ConfigFile::new("send-authorizer", &text);
    for app in ["demo", "shop"] {
        let out = send(
            &config,
            &server.base,
            app,
            &["--authorizer", "wxaccount0000001", "text", "hi"],
        );
        assert_eq!(out.code, 2, "{app}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("--authorizer is only for Open Platform apps"),
            "{app}: {}",
            out.stderr
        );
        // Refused before anything was sent.
        assert!(!out.stderr.contains('→'), "{app}: {}", out.stderr);
    }
    // The Open Platform app takes it: its account's message URL answers.
    let out = send(
        &config,
        &server.base,
        "comp",
        &["--authorizer", "wxaccount0000001", "text", "hi"],
    );
    assert!(
        out.stderr.contains("/open/comp/wxaccount0000001?"),
        "{}",
        out.stderr
    );
}
