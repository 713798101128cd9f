//! The WeCom AI bot (`platform = "aibot"`) through the gateway, on the embedded store:
//! URL verification, rules answered as finished streams, the `enter_chat` welcome, and a
//! streamed reply that grows across the platform's refresh callbacks until it finishes,
//! the same stream for every delivery of the message, unknown streams finished.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::aibot::stream_of;
use support::calls::handle;
use support::sample::{KEY, TOKEN};
use wxgate::bot::{Bot, BotError, Inbound, TextSink};
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::Gateway;
use wxgate::message::Content;
use wxgate::reply::Reply;
use wxgate::simulate::{
    Answer, PlatformSim, aibot_event_json, aibot_refresh_json, aibot_text_json,
};

/// Streams "part 1 … part N" with a pause between parts; counts its runs.
struct Streamer {
    parts: usize,
    pause: Duration,
    runs: std::sync::atomic::AtomicUsize,
}

impl Bot for Streamer {
    async fn reply(&self, _: &Inbound<'_>) -> Result<Option<Reply>, BotError> {
        Err(BotError::new("this bot only streams"))
    }

    async fn stream(
        &self,
        inbound: &Inbound<'_>,
        text: &TextSink,
    ) -> Result<Option<String>, BotError> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let Content::Text { content } = &inbound.message.content else {
            return Ok(None);
        };
        for part in 1..=self.parts {
            tokio::time::sleep(self.pause).await;
            text.push(&format!("part {part} of {content}; "));
        }
        Ok(Some(text.text()))
    }
}

fn config(reply: &str) -> Config {
    Config::parse(&format!(
        "[[apps]]\nname = \"helper\"\nplatform = \"aibot\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\n[apps.reply]\n{reply}"
    ))
    .unwrap()
}

fn sim(config: &Config) -> PlatformSim {
    PlatformSim::new(config.app("helper").unwrap()).unwrap()
}

/// Posts `json` as the platform does; the decrypted answer as JSON (`Null` when empty).
async fn post<B: Bot>(gateway: &Gateway<B>, sim: &PlatformSim, json: &str, nonce: &str) -> Value {
    let request = sim.post(json, unix_now(), nonce).unwrap();
    let (status, body) = handle(gateway, &request).await;
    match sim.check(&request, status, &body).unwrap() {
        Answer::Reply(inner) => serde_json::from_str(&inner).unwrap(),
        Answer::Empty => Value::Null,
        Answer::Verified(_) => panic!("a POST answered like a verification"),
    }
}

#[tokio::test]
async fn url_verification_rules_and_the_welcome() {
    let config = config(
        "keywords = [{ contains = \"价格\", reply = \"发送 1 查看\" }]\nenter_chat = \"你好，我是小助手\"",
    );
    let sim = sim(&config);
    let gateway = Gateway::builder(&config).build().unwrap();
    let verify = sim.verify_url("echo-1234", unix_now(), "v1").unwrap();
    let (status, body) = handle(&gateway, &verify).await;
    assert_eq!((status, body.as_str()), (200, "echo-1234"));

    let answer = post(
        &gateway,
        &sim,
        &aibot_text_json("m1", "zhangsan", None, "价格多少"),
        "n1",
    )
    .await;
    let (id, finish, content) = stream_of(&answer);
    assert!(finish, "a rule's answer is a finished stream");
    assert_eq!(content, "发送 1 查看");
    assert!(!id.is_empty());

    let welcome = post(
        &gateway,
        &sim,
        &aibot_event_json("e1", "zhangsan", "enter_chat"),
        "n2",
    )
    .await;
    assert_eq!(
        welcome,
        serde_json::json!({"msgtype":"text","text":{"content":"你好，我是小助手"}})
    );
    let feedback = post(
        &gateway,
        &sim,
        &aibot_event_json("e2", "zhangsan", "feedback_event"),
        "n3",
    )
    .await;
    assert_eq!(feedback, Value::Null, "feedback gets the empty answer");
    // Nothing answers it and there is no upstream: a finished empty stream.
    let other = post(
        &gateway,
        &sim,
        &aibot_text_json("m2", "zhangsan", Some("g1"), "hi"),
        "n4",
    )
    .await;
    assert!(
        stream_of(&other).1,
        "no rule and no upstream: a finished empty stream"
    );
    assert_eq!(stream_of(&other).2, "");
}

#[tokio::test]
async fn a_streamed_reply_grows_across_refreshes_and_finishes_once() {
    let config = config("");
    let sim = sim(&config);
    let bot = Streamer {
        parts: 4,
        pause: Duration::from_millis(300),
        runs: 0.into(),
    };
    let gateway = Gateway::builder(&config).bot(bot).build().unwrap();
    let first = post(
        &gateway,
        &sim,
        &aibot_text_json("m-stream", "lisi", None, "q"),
        "n1",
    )
    .await;
    let (id, finish, content) = stream_of(&first);
    assert!(!finish);
    assert_eq!(content, "");
    let id = id.to_owned();
    // The platform delivers the message again: the same stream.
    let again = post(
        &gateway,
        &sim,
        &aibot_text_json("m-stream", "lisi", None, "q"),
        "n2",
    )
    .await;
    assert_eq!(stream_of(&again).0, id);

    let mut seen = Vec::new();
    let mut finished = 0;
    for poll in 0..40 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let refresh = aibot_refresh_json(&format!("r{poll}"), "lisi", &id);
        let answer = post(&gateway, &sim, &refresh, &format!("p{poll}")).await;
        let (got_id, finish, content) = stream_of(&answer);
        assert_eq!(got_id, id);
        if seen.last() != Some(&content) {
            seen.push(content);
        }
        if finish {
            finished += 1;
            break;
        }
    }
    assert_eq!(finished, 1, "the stream never finished: {seen:?}");
    let last = seen.last().unwrap();
    assert_eq!(last, "part 1 of q; part 2 of q; part 3 of q; part 4 of q; ");
    assert!(
        seen.len() >= 3,
        "the text did not grow across refreshes: {seen:?}"
    );
    for pair in seen.windows(2) {
        assert!(pair[1].starts_with(&pair[0]), "{seen:?}");
    }
    assert_eq!(
        gateway.bot().runs.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // After it finished, a refresh still says finished.
    let after = post(
        &gateway,
        &sim,
        &aibot_refresh_json("r-late", "lisi", &id),
        "late",
    )
    .await;
    assert!(stream_of(&after).1, "a finished stream stays finished");
}

#[tokio::test]
async fn unknown_streams_are_finished_and_bad_requests_refused() {
    let config = config("");
    let sim = sim(&config);
    let gateway = Gateway::builder(&config).build().unwrap();
    for id in ["not-ours", "wxgbm9uZQ"] {
        let answer = post(&gateway, &sim, &aibot_refresh_json("r", "u", id), "n").await;
        let (got, finish, content) = stream_of(&answer);
        assert_eq!((got.as_str(), finish, content.as_str()), (id, true, ""));
    }
    // A signature over another body.
    let mut request = sim
        .post(&aibot_text_json("m", "u", None, "x"), unix_now(), "n9")
        .unwrap();
    request.body = request.body.replace("\"}", "A\"}");
    let (status, _) = handle(&gateway, &request).await;
    assert_eq!(status, 401);
    // Not a JSON envelope, signed.
    let mut request = sim
        .post(&aibot_text_json("m", "u", None, "x"), unix_now(), "n8")
        .unwrap();
    request.body = "<xml><Encrypt>abc</Encrypt></xml>".into();
    let (status, body) = handle(&gateway, &request).await;
    assert!(status == 400 || status == 401, "{status} {body}");
}

/// Serves `body` once at `http://127.0.0.1:{port}/media` (then 404s), on a thread.
fn serve_once(body: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut body = Some(body);
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let answer = match body.take() {
                Some(b) => {
                    let mut head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        b.len()
                    )
                    .into_bytes();
                    head.extend_from_slice(&b);
                    head
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&answer);
        }
    });
    format!("http://{addr}/media")
}

#[tokio::test]
async fn a_media_url_is_downloaded_and_decrypted_with_the_bots_key() {
    let config = config("");
    let gateway = Gateway::builder(&config).build().unwrap();
    let picture: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let key = wxgate::crypto::EncodingAesKey::parse(KEY).unwrap();
    let url = serve_once(key.encrypt_media(&picture));
    assert_eq!(gateway.aibot_media("helper", &url).await.unwrap(), picture);
    // The URL is used up (it lives five minutes on the platform); a status is an error.
    let e = gateway.aibot_media("helper", &url).await.unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
    // Bytes that are not the bot's encryption.
    let url = serve_once(vec![7u8; 64]);
    assert!(matches!(
        gateway.aibot_media("helper", &url).await,
        Err(wxgate::gateway::MediaError::Decrypt(_))
    ));
    assert!(matches!(
        gateway.aibot_media("helper", "http://example.com/x").await,
        Err(wxgate::gateway::MediaError::Url)
    ));
    assert!(matches!(
        gateway.aibot_media("nobody", &url).await,
        Err(wxgate::gateway::MediaError::NotAnAibot(_))
    ));
}
