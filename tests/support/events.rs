//! The sample events in `events/` (what `scripts/gen-events.sh` writes for `sam local
//! invoke`), the manifest of what each is answered, and the check of an answer against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use http::Method;
use serde_json::Value;
use wxgate::config::Config;
use wxgate::platform::Platform;
use wxgate::simulate::{Answer, PlatformSim, SignedRequest};

use super::calls::text_of;

/// `events/`.
pub fn events_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/events"))
}

/// The config the sample events are signed for (`events/wxgate.toml`).
pub fn config_path() -> PathBuf {
    events_dir().join("wxgate.toml")
}

/// [`config_path`], loaded.
pub fn config() -> Config {
    Config::load(&config_path()).unwrap()
}

/// One file of `events/` as JSON.
pub fn read_json(name: &str) -> Value {
    let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// One sample of the manifest (`events/expected.json`).
pub struct Sample {
    /// The event's file name.
    pub file: String,
    /// The app it is for.
    pub app: String,
    /// What it is answered: `echo:…`, `text:…`, `empty`, or (AI bot) `stream:…`, a
    /// finished stream with that content.
    pub expect: String,
    /// The event.
    pub event: Value,
}

/// Every sample the manifest lists, with its event read.
pub fn samples() -> Vec<Sample> {
    let manifest = read_json("expected.json");
    let samples: Vec<Sample> = manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|sample| {
            let field = |name: &str| sample[name].as_str().unwrap().to_owned();
            Sample {
                event: read_json(&field("file")),
                file: field("file"),
                app: field("app"),
                expect: field("expect"),
            }
        })
        .collect();
    assert!(samples.len() >= 8, "the manifest lists the samples");
    samples
}

/// An AI bot's decrypted answer, as JSON.
fn aibot_reply(answer: Answer, file: &str) -> Value {
    let Answer::Reply(json) = answer else {
        panic!("{file}: expected a reply, got {answer:?}")
    };
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{file}: {e}: {json}"))
}

/// What the platform would need to check an answer to `event`: its mode and, for URL
/// verification, the echo expected.
fn request_of(event: &Value, expected_echo: Option<String>) -> SignedRequest {
    let query = match event["rawQueryString"].as_str() {
        Some(raw) => raw.to_owned(),
        None => event["queryStringParameters"]
            .as_object()
            .map(|m| {
                m.keys()
                    .map(|k| format!("{k}="))
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .unwrap_or_default(),
    };
    SignedRequest {
        method: Method::POST,
        path: String::new(),
        query,
        body: String::new(),
        expected_echo,
    }
}

/// Checks the answer (`status`, `body`) to `sample`'s event as the platform would, and
/// that it is the one the manifest expects.
pub fn check(sim: &PlatformSim, sample: &Sample, status: u16, body: &str) {
    let expect = sample.expect.as_str();
    let echo = expect.strip_prefix("echo:").map(str::to_owned);
    let answer = sim
        .check(&request_of(&sample.event, echo), status, body)
        .unwrap_or_else(|e| panic!("{}: {expect}: {e}", sample.file));
    match expect.split_once(':') {
        Some(("echo", text)) => {
            assert_eq!(answer, Answer::Verified(text.into()), "{}", sample.file)
        }
        Some(("text", text)) if sim.platform() == Platform::Aibot => {
            let reply = aibot_reply(answer, &sample.file);
            assert_eq!(reply["msgtype"], "text", "{}: {reply}", sample.file);
            assert_eq!(reply["text"]["content"], text, "{}", sample.file);
        }
        Some(("text", text)) => assert_eq!(text_of(answer), text, "{}", sample.file),
        Some(("stream", text)) => {
            let reply = aibot_reply(answer, &sample.file);
            assert_eq!(reply["msgtype"], "stream", "{}: {reply}", sample.file);
            assert_eq!(reply["stream"]["finish"], true, "{}: {reply}", sample.file);
            assert_eq!(reply["stream"]["content"], text, "{}", sample.file);
        }
        _ if expect == "empty" => assert_eq!(answer, Answer::Empty, "{}", sample.file),
        _ => panic!("unknown expectation {expect}"),
    }
}
