//! A Mini Program's message push in JSON (`data_format = "json"`), through `wxgate serve`
//! as a process: safe mode and plaintext, keyword and transfer replies in JSON, the
//! enter-tempsession event, dedup, and every refusal a 400/401 that leaves the server up.

mod support;

use http::Method;
use serde_json::{Value, json};
use support::sample::header;
use support::serve::Server;
use wxgate::clock::unix_now;
use wxgate::simulate::{
    Answer, PlatformSim, SignedRequest, enter_tempsession_json, mini_program_text_json, text_xml,
};

/// The Mini Program's original id and a user's OpenID.
const GH: &str = "gh_mini0000001";
const USER: &str = "o_user_openid";

fn config() -> String {
    r#"
[[apps]]
name = "mini"
platform = "mp"
app_id = "wxmini0000000001"
token = "minitoken"
encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
data_format = "json"
[apps.reply]
keywords = [
  { equals = "help", reply = "发送 人工 转客服" },
  { equals = "人工", reply = { type = "transfer_customer_service" } },
]
default = "got it"

[[apps]]
name = "minip"
platform = "mp"
token = "miniptoken"
data_format = "json"
[apps.reply]
echo = true

[[apps]]
name = "shop"
platform = "mp"
app_id = "wxshop0000000001"
token = "shoptoken"
encoding_aes_key = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlk0"
[apps.reply]
echo = true
"#
    .to_owned()
}

fn text(sim: &PlatformSim, content: &str, msg_id: u64, nonce: &str) -> SignedRequest {
    sim.post(
        &mini_program_text_json(&header(GH, USER, None), content, msg_id),
        unix_now(),
        nonce,
    )
    .unwrap()
}

/// The reply JSON, checked as the platform checks it.
async fn reply_of(server: &Server, sim: &PlatformSim, request: &SignedRequest) -> Value {
    let (status, body) = server.send(request).await;
    match sim.check(request, status, &body) {
        Ok(Answer::Reply(json)) => serde_json::from_str(&json).unwrap(),
        other => panic!("expected a reply, got {other:?} ({status} {body})"),
    }
}

/// Status, content type and body of a request sent as is.
async fn exchange(server: &Server, request: &SignedRequest) -> (u16, String, String) {
    let response = reqwest::Client::new()
        .post(format!("{}{}", server.base, request.path_and_query()))
        .body(request.body.clone())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()[http::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

/// What the server logged, once `needle` is among it (a line may follow the response by a
/// moment), or after 5 s.
async fn logs_with(server: &Server, needle: &str) -> String {
    for _ in 0..50 {
        let logs = server.logs();
        if logs.contains(needle) {
            return logs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.logs()
}

#[tokio::test]
async fn safe_mode_text_is_answered_by_a_keyword_rule_in_json() {
    let server = Server::start(&config());
    let sim = server.sim("mini");

    // URL verification: the plain signature, echostr back as is.
    let verify = sim.verify_url("echo-1234", unix_now(), "v1").unwrap();
    let (status, body) = server.send(&verify).await;
    assert_eq!((status, body.as_str()), (200, "echo-1234"));

    let request = text(&sim, "help", 1001, "n1");
    assert!(request.body.starts_with('{') && request.body.contains("\"Encrypt\""));
    let (status, content_type, body) = exchange(&server, &request).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let envelope: Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<&str> = envelope
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{body}");
    for key in ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"] {
        assert!(envelope.get(key).is_some(), "{key} in {body}");
    }
    assert!(envelope["TimeStamp"].is_u64(), "{body}");
    assert!(!body.contains("发送"), "the reply is encrypted");
    let Answer::Reply(json) = sim.check(&request, status, &body).unwrap() else {
        panic!("no reply in {body}")
    };
    let reply: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(reply["ToUserName"], USER, "To and From are swapped");
    assert_eq!(reply["FromUserName"], GH);
    assert_eq!(reply["MsgType"], "text");
    assert_eq!(reply["Content"], "发送 人工 转客服");
    assert!(reply["CreateTime"].as_u64().unwrap() >= unix_now() - 60);

    let transfer = reply_of(&server, &sim, &text(&sim, "人工", 1002, "n2")).await;
    assert_eq!(
        transfer,
        json!({"ToUserName": USER, "FromUserName": GH, "CreateTime": transfer["CreateTime"], "MsgType": "transfer_customer_service"})
    );
    let other = reply_of(&server, &sim, &text(&sim, "anything", 1003, "n3")).await;
    assert_eq!(other["Content"], "got it");
}

#[tokio::test]
async fn plaintext_json_is_answered_in_plain_json() {
    let server = Server::start(&config());
    let sim = server.sim("minip");
    let request = text(&sim, "你好 \"quoted\" ]]>", 2001, "p1");
    assert!(
        !request.query.contains("msg_signature"),
        "{}",
        request.query
    );
    let (status, content_type, body) = exchange(&server, &request).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["Content"], "你好 \"quoted\" ]]>");
    assert_eq!(reply["ToUserName"], USER);
    assert!(matches!(
        sim.check(&request, status, &body),
        Ok(Answer::Reply(_))
    ));

    // The plain signature is bound to its body: the same query cannot carry another one.
    let mut forged = request.clone();
    forged.body = mini_program_text_json(&header(GH, USER, None), "forged", 2002);
    let (status, _) = server.send(&forged).await;
    assert_eq!(status, 403, "a signed query reused with another body");
}

#[tokio::test]
async fn the_enter_tempsession_event_is_read_and_answered_empty() {
    let server = Server::start_logged(&config());
    let sim = server.sim("mini");
    let event = enter_tempsession_json(&header(GH, USER, None), "card-42");
    let request = sim.post(&event, unix_now(), "e1").unwrap();
    let (status, body) = server.send(&request).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(sim.check(&request, status, &body).unwrap(), Answer::Empty);
    // Read as an event (not refused, not a text message) by the XML model.
    let logs = logs_with(&server, "callback answered").await;
    assert!(
        logs.lines()
            .any(|l| l.contains("callback answered") && l.contains("event")),
        "{logs}"
    );
    assert!(!logs.contains("card-42"), "contents stay out of the logs");
}

#[tokio::test]
async fn a_retried_message_is_answered_once_from_the_first_delivery() {
    let server = Server::start_logged(&config());
    let sim = server.sim("minip");
    let first = reply_of(&server, &sim, &text(&sim, "first", 3001, "d1")).await;
    assert_eq!(first["Content"], "first");
    // The platform's retry carries the same MsgId; even with other text (which echo would
    // repeat) it gets the first delivery's reply.
    let retry = reply_of(&server, &sim, &text(&sim, "second", 3001, "d2")).await;
    assert_eq!(retry, first);
    let logs = logs_with(&server, "duplicate callback answered").await;
    let count = |what: &str| logs.lines().filter(|l| l.contains(what)).count();
    assert_eq!(count("duplicate callback answered"), 1, "{logs}");
    let answered = logs
        .lines()
        .filter(|l| l.contains("callback answered") && !l.contains("duplicate"))
        .count();
    assert_eq!(answered, 1, "{logs}");
    // Another MsgId is another message.
    let next = reply_of(&server, &sim, &text(&sim, "third", 3002, "d3")).await;
    assert_eq!(next["Content"], "third");
}

#[tokio::test]
async fn a_wrong_signature_is_401() {
    let server = Server::start(&config());
    for app in ["mini", "minip"] {
        let sim = server.sim(app);
        let mut request = text(&sim, "help", 4001, "s1");
        let field = if app == "mini" {
            "msg_signature="
        } else {
            "signature="
        };
        let at = request.query.find(field).unwrap() + field.len();
        let flipped = if &request.query[at..=at] == "0" {
            "1"
        } else {
            "0"
        };
        request.query.replace_range(at..=at, flipped);
        let (status, body) = server.send(&request).await;
        assert_eq!(status, 401, "{app}: {body}");
        assert!(body.contains("-40001"), "{body}");
    }
    // Signed over another ciphertext: the envelope's Encrypt swapped.
    let sim = server.sim("mini");
    let one = text(&sim, "help", 4002, "s2");
    let mut other = text(&sim, "help", 4003, "s3");
    other.body = one.body.clone();
    let (status, _) = server.send(&other).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_other_data_format_is_a_400_naming_the_setting() {
    let mut server = Server::start(&config());
    // XML to the JSON app, signed correctly for what it carries.
    let mini = server.sim("mini");
    let xml = text_xml(&header(GH, USER, None), "help", 5001);
    let shop = server.sim("shop");
    let mut request = shop.post(&xml, unix_now(), "f1").unwrap();
    request.path = "/mp/mini".into();
    let (status, body) = server.send(&request).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("data_format = \"json\"") && body.contains("XML body"),
        "{body}"
    );
    // Plaintext XML to the plaintext JSON app.
    let minip = server.sim("minip");
    let plain = text(&minip, "x", 5002, "f2");
    let (status, body) = server
        .raw(
            Method::POST,
            &format!("{}?{}", plain.path, plain.query),
            xml.clone(),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("data_format"), "{body}");
    // JSON to the XML app.
    let mut request = text(&mini, "help", 5003, "f3");
    request.path = "/mp/shop".into();
    let (status, body) = server.send(&request).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("data_format = \"xml\"") && body.contains("JSON body"),
        "{body}"
    );
    assert!(server.alive());
}

#[tokio::test]
async fn crafted_json_is_a_400_never_a_crash() {
    let mut server = Server::start(&config());
    let deep = format!(
        "{}1{}",
        r#"{"MsgType":"text","A":"#.repeat(1000),
        "}".repeat(1000)
    );
    let arrays = format!(
        r#"{{"MsgType":"text","A":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let fields = r#""ToUserName":"gh_mini0000001","FromUserName":"o","CreateTime":1,"MsgType":"text","Content":"x""#;
    let crafted = [
        deep,
        arrays,
        format!(r#"{{{fields},"MsgId":123456789012345678901234567890}}"#),
        format!(r#"{{{fields},"MsgId":1e400}}"#),
        format!(r#"{{{fields},"MsgId":1,"MsgId":2}}"#),
        format!(r#"{{{fields},"Content":"y"}}"#),
        format!(r#"{{{fields},"Bad Key":1}}"#),
        format!(r#"{{{fields},"Nul":"\u0000"}}"#),
        r#"[{"MsgType":"text"}]"#.to_owned(),
        r#"{"MsgType":"text""#.to_owned(),
        "{}".to_owned(),
    ];
    for (i, plaintext) in crafted.iter().enumerate() {
        // Encrypted and signed correctly: only the conversion can refuse it.
        let sim = server.sim("mini");
        let request = sim.post(plaintext, unix_now(), &format!("c{i}")).unwrap();
        let (status, body) = server.send(&request).await;
        assert_eq!(status, 400, "safe mode, crafted #{i}: {body}");
        assert!(body.contains("-40002"), "{body}");
        // And as a plaintext body, signed.
        let sim = server.sim("minip");
        let request = sim.post(plaintext, unix_now(), &format!("p{i}")).unwrap();
        let (status, body) = server.send(&request).await;
        assert_eq!(status, 400, "plaintext, crafted #{i}: {body}");
        assert!(server.alive(), "crafted #{i}");
    }
    // A crafted envelope: Encrypt twice (which one was signed?), or not a string.
    let sim = server.sim("mini");
    let good = text(&sim, "help", 6001, "c-env");
    let encrypt = serde_json::from_str::<Value>(&good.body).unwrap()["Encrypt"].clone();
    for body in [
        format!(r#"{{"ToUserName":"{GH}","Encrypt":{encrypt},"Encrypt":"QUJD"}}"#),
        r#"{"ToUserName":"gh","Encrypt":12}"#.to_owned(),
    ] {
        let (status, answer) = server.raw(Method::POST, &good.path_and_query(), body).await;
        assert_eq!(status, 400, "{answer}");
    }
    // Still answering.
    let reply = reply_of(&server, &sim, &text(&sim, "help", 6002, "after")).await;
    assert_eq!(reply["MsgType"], "text");
    assert!(server.alive());
}
