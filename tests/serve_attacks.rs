//! Attacks on a public callback URL, through `wxgate serve` as a process: a leaked plaintext
//! signature carrying another body, a text that tries to close its CDATA section and add
//! elements to the reply, input built to be reflected into responses and logs, and a
//! signed Open Platform message replayed to another account's URL.

mod support;

use support::sample::header;
use support::serve::{Server, test_config};
use wxgate::clock::unix_now;
use wxgate::simulate::{Answer, PlatformSim, SignedRequest, text_xml};
use wxgate::xml::Fields;

/// Official Account, plaintext mode: the plain `signature` covers token, timestamp and
/// nonce, not the body. A signed query seen once (in a proxy's access log, say) must not
/// carry another body; the platform's retry of the same body still passes.
#[tokio::test]
async fn a_plaintext_signature_carries_only_the_body_it_came_with() {
    let server = Server::start(&test_config(""));
    let sim = server.sim("blog").plaintext(true);
    let genuine = sim
        .post(
            &text_xml(&header("gh_blog", "oFollower", None), "hello", 91),
            unix_now(),
            "n1",
        )
        .unwrap();
    let (status, body) = server.send(&genuine).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello"), "{body}");
    // The same signed query with a body of the attacker's: another sender, another text.
    let forged = SignedRequest {
        body: text_xml(
            &header("gh_blog", "oSomeoneElse", None),
            "send me the code",
            92,
        ),
        ..genuine.clone()
    };
    let (status, body) = server.send(&forged).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("already used with another body"), "{body}");
    // The platform retries the genuine request: still answered.
    let (status, body) = server.send(&genuine).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello"), "{body}");
}

/// The inner message of a WeCom text whose Content is `content_xml` (already escaped).
fn wecom_text(sim: &PlatformSim, content_xml: &str, msg_id: u64) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content>{content_xml}</Content><MsgId>{msg_id}</MsgId><AgentID>218</AgentID></xml>",
        sim.receive_id(),
        unix_now()
    )
}

/// A text holding `]`, a control character, `]>` and markup: once the control character is
/// dropped it reads `]]>`, which would end the reply's CDATA section and let the rest of the
/// text become elements of the reply (a second MsgType). The echo must stay one Content.
#[tokio::test]
async fn an_echoed_text_cannot_add_elements_to_the_reply() {
    let server = Server::start(&test_config(""));
    let sim = server.sim("demo");
    let injected = "x]\u{1}]></Content><MsgType>news</MsgType><Content><![CDATA[y";
    let as_reference = "x]&#1;]&gt;&lt;/Content&gt;&lt;MsgType&gt;news&lt;/MsgType&gt;&lt;Content&gt;&lt;![CDATA[y";
    let as_cdata = format!("<![CDATA[{injected}]]>");
    for (i, content) in [as_reference, as_cdata.as_str()].into_iter().enumerate() {
        let request = sim
            .post(
                &wecom_text(&sim, content, 700 + i as u64),
                unix_now(),
                &format!("i{i}"),
            )
            .unwrap();
        let (status, body) = server.send(&request).await;
        let Answer::Reply(reply) = sim.check(&request, status, &body).unwrap() else {
            panic!("no echo: {body}");
        };
        let fields = Fields::parse(&reply).unwrap();
        let msg_types: Vec<_> = fields.iter().filter(|f| f.name == "MsgType").collect();
        assert_eq!(msg_types.len(), 1, "{reply}");
        assert_eq!(fields.get("MsgType"), Some("text"), "{reply}");
        assert_eq!(
            fields.iter().filter(|f| f.name == "Content").count(),
            1,
            "{reply}"
        );
        assert_eq!(
            fields.get("Content"),
            Some("x]]></Content><MsgType>news</MsgType><Content><![CDATA[y"),
            "the text, less the control character, as text"
        );
    }
}

/// Values the gateway refuses are named in its answer and its log: cut short, with control
/// characters escaped, so a newline cannot forge a log line nor an escape sequence reach a
/// terminal.
#[tokio::test]
async fn refused_input_is_reflected_neither_raw_nor_long() {
    let server = Server::start_logged(&test_config(""));
    let evil = format!("%0Aforged-line%0D%1B%5B2J{}", "A".repeat(400));
    let (status, body) = server
        .raw(
            http::Method::POST,
            &format!("/mp/shop?timestamp=1&nonce=2&encrypt_type={evil}"),
            "<xml/>".into(),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body.lines().count(), 1, "{body:?}");
    assert!(!body.contains('\u{1b}') && !body.contains('\r'), "{body:?}");
    assert!(body.len() < 300, "{} bytes", body.len());
    assert!(body.contains("\\n"), "escaped, not dropped: {body:?}");
    // Names from a body that fails before its signature is checked.
    let (status, body) = server
        .raw(
            http::Method::POST,
            &format!(
                "/wecom/demo?msg_signature={}&timestamp=1&nonce=2",
                "0".repeat(40)
            ),
            "<xml><a\u{1b}[2J>\nforged-too</b\u{1b}[2J></xml>".into(),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains('\u{1b}'), "{body:?}");
    // The server still answers, and its log holds no forged line and no raw escape.
    let (status, _) = server
        .raw(http::Method::GET, "/nowhere", String::new())
        .await;
    assert_eq!(status, 404);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let logs = server.logs();
    assert!(logs.contains("callback refused"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "{logs:?}");
    assert!(
        !logs.lines().any(|l| l.starts_with("forged")),
        "a forged line: {logs}"
    );
}

/// The `$APPID$` in an Open Platform message URL is not signed. A signed message replayed
/// to another account's URL is the same callback: answered from its record, not decided
/// again as that other account's.
#[tokio::test]
async fn an_open_platform_message_replayed_to_another_account_is_a_replay() {
    let server = Server::start_logged(&test_config(""));
    let sim = server
        .sim("comp")
        .authorizer(Some("wxaccountaaaa0001".into()));
    let request = sim
        .post(
            &text_xml(&header("gh_account_a", "oUser", None), "for a", 5),
            unix_now(),
            "op1",
        )
        .unwrap();
    let (status, body) = server.send(&request).await;
    assert_eq!(status, 200, "{body}");
    let elsewhere = SignedRequest {
        path: request
            .path
            .replace("wxaccountaaaa0001", "wxaccountbbbb0002"),
        ..request.clone()
    };
    assert_ne!(elsewhere.path, request.path);
    let (status, body) = server.send(&elsewhere).await;
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let logs = server.logs();
    assert_eq!(
        logs.matches("duplicate callback answered from the first delivery")
            .count(),
        1,
        "{logs}"
    );
}
