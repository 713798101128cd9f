//! `wxgate serve --metrics-addr` as a process: signed callbacks over HTTP (answered, a
//! duplicate, a bad signature, a replayed old request, an unknown app, a URL verification),
//! then a scrape of `/metrics` on its own listener, parsed, with the counts each should
//! have made; the callback port serves no metrics; nothing secret or personal is in them.

mod support;

use std::collections::BTreeMap;

use support::sample::{AGENT_ID, KEY, TOKEN, header, sample_config_text};
use support::serve::{Server, free_addr};
use wxgate::clock::unix_now;
use wxgate::simulate::{SignedRequest, text_xml};

/// A sample line's name and labels, e.g. `wxgate_refusals_total{app="demo",code="-40001"}`
/// with the labels sorted, mapped to its value. Panics on a line that breaks the format.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut declared = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(kind == "counter" || kind == "histogram", "{line}");
            declared.push(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (head, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        let (name, labels) = match head.split_once('{') {
            None => (head.to_owned(), Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels: Vec<String> = body.split(',').map(str::to_owned).collect();
                for pair in &labels {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    assert!(
                        v.starts_with('"') && v.ends_with('"') && v.len() >= 2,
                        "{line}"
                    );
                }
                labels.sort();
                (name.to_owned(), labels)
            }
        };
        assert!(
            declared.iter().any(|d| name.starts_with(d.as_str())),
            "{name} has no # TYPE before it"
        );
        samples.insert(format!("{name}{{{}}}", labels.join(",")), value);
    }
    samples
}

/// The key [`parse`] gives a sample.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

fn with_signature(request: &SignedRequest, signature: &str) -> SignedRequest {
    let query = request
        .query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("msg_signature", _)) => format!("msg_signature={signature}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    SignedRequest {
        query,
        ..request.clone()
    }
}

async fn scrape(metrics: &str) -> (u16, Option<String>, String) {
    let response = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .expect("the metrics listener answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn signed_callbacks_are_counted_and_scraped_from_their_own_listener() {
    const USER: &str = "user-zqx-417";
    const TEXT: &str = "content-plm-993";
    let metrics = free_addr();
    let server = Server::start_with_args(&sample_config_text(""), &["--metrics-addr", &metrics]);
    let sim = server.sim("demo");
    let message = text_xml(&header(sim.receive_id(), USER, Some(AGENT_ID)), TEXT, 4242);

    // Answered, then its retry answered from the first delivery.
    let valid = sim.post(&message, unix_now(), "nonce-valid-1").unwrap();
    let (status, first) = server.send(&valid).await;
    assert_eq!(status, 200, "{first}");
    // The recorded reply, sealed afresh (a new nonce), so only its status is compared.
    let (status, retry) = server.send(&valid).await;
    assert_eq!(status, 200, "{retry}");
    assert!(first.starts_with("<xml><Encrypt>") && retry.starts_with("<xml><Encrypt>"));
    // A forged signature, and a correctly signed request an hour old (a replay).
    let forged = with_signature(&valid, &"0".repeat(40));
    assert_eq!(server.send(&forged).await.0, 401);
    let old = sim
        .post(&message, unix_now() - 3600, "nonce-old-1")
        .unwrap();
    assert_eq!(server.send(&old).await.0, 403);
    // A URL naming no configured app, and a URL verification.
    let (status, _) = server
        .raw(http::Method::POST, "/wecom/nosuchapp?x=1", String::new())
        .await;
    assert_eq!(status, 404);
    let verify = sim
        .verify_url("echo-1", unix_now(), "nonce-verify")
        .unwrap();
    assert_eq!(server.send(&verify).await.0, 200);

    let (status, content_type, text) = scrape(&metrics).await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let samples = parse(&text);
    let count = |name: &str, labels: &[(&str, &str)]| {
        samples
            .get(&key(name, labels))
            .copied()
            .unwrap_or_else(|| panic!("no {}\n{text}", key(name, labels)))
    };
    let callbacks = "wxgate_callbacks_total";
    let demo = |kind, outcome| {
        [
            ("app", "demo"),
            ("platform", "wecom"),
            ("kind", kind),
            ("outcome", outcome),
        ]
    };
    assert_eq!(count(callbacks, &demo("message", "answered")), 1.0);
    assert_eq!(count(callbacks, &demo("message", "replayed")), 1.0);
    assert_eq!(count(callbacks, &demo("verification", "verified")), 1.0);
    assert_eq!(count(callbacks, &demo("unparsed", "refused")), 2.0);
    let refusals = "wxgate_refusals_total";
    assert_eq!(count(refusals, &[("app", "demo"), ("code", "-40001")]), 1.0);
    assert_eq!(count(refusals, &[("app", "demo"), ("code", "stale")]), 1.0);
    assert_eq!(
        count(refusals, &[("app", "unknown"), ("code", "not_found")]),
        1.0
    );
    assert_eq!(count("wxgate_dedup_replays_total", &[("app", "demo")]), 1.0);
    // The echo rule decides before the claim: the bot is not asked, and each delivery makes
    // one claim that carries the reply (the retry's fails and returns the first's), no
    // completion.
    assert!(
        !samples
            .keys()
            .any(|k| k.starts_with("wxgate_bot_seconds_count"))
    );
    assert_eq!(
        count("wxgate_store_seconds_count", &[("op", "claim_decided")]),
        2.0
    );
    assert!(
        !samples
            .keys()
            .any(|k| k.contains("op=\"claim\"") || k.contains("op=\"complete\""))
    );
    assert_eq!(
        count(
            "wxgate_store_seconds_bucket",
            &[("op", "claim_decided"), ("le", "+Inf")]
        ),
        2.0
    );
    assert!(
        !samples
            .keys()
            .any(|k| k.starts_with("wxgate_store_errors_total"))
    );
    assert!(!samples.keys().any(|k| k.contains("nosuchapp")));

    // Nothing secret or personal: not the token, the key, the sender, the text, a nonce or
    // a signature.
    let signature = valid
        .query
        .split('&')
        .find_map(|p| p.strip_prefix("msg_signature="))
        .unwrap();
    for secret in [TOKEN, KEY, USER, TEXT, "nonce-valid-1", "echo-1", signature] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }

    // The callback port serves no metrics; the metrics port serves nothing else.
    let (status, _) = server
        .raw(http::Method::GET, "/metrics", String::new())
        .await;
    assert_eq!(status, 404);
    let client = reqwest::Client::new();
    let other = client
        .get(format!("http://{metrics}/wecom/demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    let post = client
        .post(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
    assert_eq!(
        post.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
}

#[tokio::test]
async fn metrics_are_off_unless_asked_for_and_a_bad_address_is_refused() {
    let server = Server::start(&sample_config_text(""));
    let (status, _) = server
        .raw(http::Method::GET, "/metrics", String::new())
        .await;
    assert_eq!(status, 404);
    drop(server);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("WXGATE_METRICS_ADDR", "not-an-address")
        .env("WXGATE_CONFIG", sample_config_text(""))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WXGATE_METRICS_ADDR"), "{stderr}");
    assert!(!stderr.contains("not-an-address"), "{stderr}");
}
