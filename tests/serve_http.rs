//! `wxgate serve` over real HTTP: every platform mode, the official vectors, and every
//! refusal status, with the server checked to keep answering after each.

mod support;

use http::Method;
use support::sample::{AGENT_ID, CORP_ID, TOKEN, header};
use support::serve::{Server, test_config};
use wxgate::clock::unix_now;
use wxgate::message::{Callback, Content};
use wxgate::simulate::{Answer, event_xml, location_xml, text_xml, verify_ticket_xml};

/// The official URL-verification vector, exactly as the platform sends it: `+`, `/` and
/// `=` unescaped in the query.
const OFFICIAL_VERIFY: &str = "/wecom/demo?msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
const OFFICIAL_ECHO: &str = "1616140317555161061";
const OFFICIAL_MESSAGE_QUERY: &str = "/wecom/demo?msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149";
const OFFICIAL_MESSAGE_BODY: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>";

/// Who sends the messages: replies go back to them.
const USER: &str = "zhangsan";

fn reply_text(answer: Answer) -> String {
    let Answer::Reply(xml) = answer else {
        panic!("expected a reply, got {answer:?}")
    };
    let Callback::Message(m) = Callback::parse(&xml).unwrap() else {
        panic!("not a message: {xml}")
    };
    assert_eq!(m.to_user_name, USER, "To and From are swapped");
    match m.content {
        Content::Text { content } => content,
        other => panic!("not text: {other:?}"),
    }
}

#[tokio::test]
async fn official_vectors_verify_and_decrypt_over_http() {
    // The vectors are from 2014: replaying them needs the replay window off.
    let server = Server::start(&test_config("replay_window_secs = 0"));
    let (status, body) = server
        .raw(Method::GET, OFFICIAL_VERIFY, String::new())
        .await;
    assert_eq!(
        (status, body.as_str()),
        (200, OFFICIAL_ECHO),
        "exactly, no newline"
    );

    // Escaped the way a browser or SDK would, and with `+` form-decoded to a space.
    let escaped = OFFICIAL_VERIFY
        .replace("/qYX", "%2FqYX")
        .replace('+', "%2B")
        .replace("==", "%3D%3D");
    let spaced = OFFICIAL_VERIFY.replace('+', "%20");
    for path in [escaped, spaced] {
        let (status, body) = server.raw(Method::GET, &path, String::new()).await;
        assert_eq!((status, body.as_str()), (200, OFFICIAL_ECHO), "{path}");
    }

    let (status, body) = server
        .raw(
            Method::POST,
            OFFICIAL_MESSAGE_QUERY,
            OFFICIAL_MESSAGE_BODY.into(),
        )
        .await;
    assert_eq!(status, 200);
    // The echo rule answers "hello"; check the reply the way the platform would.
    let sim = server.sim("demo");
    let probe = sim
        .post(
            &text_xml(&header(CORP_ID, USER, Some(AGENT_ID)), "x", 1),
            1409659813,
            "1",
        )
        .unwrap();
    let Answer::Reply(xml) = sim.check(&probe, status, &body).unwrap() else {
        panic!("no reply: {body}")
    };
    assert!(
        xml.contains("<Content><![CDATA[hello]]></Content>"),
        "{xml}"
    );
    assert!(
        xml.contains("<ToUserName><![CDATA[mycreate]]></ToUserName>"),
        "{xml}"
    );
}

#[tokio::test]
async fn wecom_verification_messages_and_events() {
    let server = Server::start(&test_config(""));
    let sim = server.sim("demo");
    let now = unix_now();

    let request = sim.verify_url("8927365193472", now, "n1").unwrap();
    let (status, body) = server.send(&request).await;
    assert_eq!(
        sim.check(&request, status, &body).unwrap(),
        Answer::Verified("8927365193472".into())
    );

    let h = header(CORP_ID, USER, Some(AGENT_ID));
    let cases = [
        (text_xml(&h, "你好 ]]> 🎉", 42), Some("你好 ]]> 🎉")),
        (event_xml(&h, "subscribe", None), Some("welcome")),
        (event_xml(&h, "enter_agent", Some("")), Some("hello again")),
        (event_xml(&h, "click", Some("V1001")), Some("clicked")),
        (event_xml(&h, "click", Some("UNKNOWN")), None),
        (location_xml(&h, 23.1, 113.3), None),
        (event_xml(&h, "unsubscribe", None), None),
    ];
    for (xml, expected) in cases {
        let request = sim.post(&xml, now, "n2").unwrap();
        let (status, body) = server.send(&request).await;
        let answer = sim.check(&request, status, &body).unwrap();
        match expected {
            Some(text) => assert_eq!(reply_text(answer), text, "{xml}"),
            None => assert_eq!(answer, Answer::Empty, "{xml}"),
        }
    }
}

#[tokio::test]
async fn official_account_plain_verification_safe_compatible_and_plaintext_modes() {
    let server = Server::start(&test_config(""));
    let now = unix_now();

    // Verification is plain even for a safe-mode account, and echostr comes back unchanged.
    for app in ["shop", "blog"] {
        let sim = server.sim(app);
        let request = sim.verify_url("abc+/=123", now, "n").unwrap();
        let (status, body) = server.send(&request).await;
        assert_eq!(status, 200, "{app}: {body}");
        assert_eq!(body, "abc+/=123", "{app}");
    }

    let shop = server.sim("shop");
    let h = header("gh_shop", USER, None);
    let request = shop.post(&text_xml(&h, "safe mode", 7), now, "n").unwrap();
    let (status, body) = server.send(&request).await;
    assert_eq!(
        reply_text(shop.check(&request, status, &body).unwrap()),
        "safe mode"
    );

    // Compatible mode: the plaintext fields beside Encrypt are ignored (not signed); the
    // encrypted message is what counts, and the reply is encrypted.
    let mut compat = shop
        .post(&text_xml(&h, "the real one", 8), now, "n")
        .unwrap();
    compat.body = compat.body.replace(
        "<Encrypt>",
        "<FromUserName><![CDATA[forged]]></FromUserName><MsgType>text</MsgType><Content>forged</Content><Encrypt>",
    );
    let (status, body) = server.send(&compat).await;
    assert_eq!(
        reply_text(shop.check(&compat, status, &body).unwrap()),
        "the real one"
    );

    let request = shop
        .post(&event_xml(&h, "subscribe", Some("qrscene_7")), now, "n")
        .unwrap();
    let (status, body) = server.send(&request).await;
    assert_eq!(
        reply_text(shop.check(&request, status, &body).unwrap()),
        "thanks for following"
    );

    let blog = server.sim("blog");
    let request = blog
        .post(&text_xml(&h, "plain <&> text", 9), now, "n")
        .unwrap();
    let (status, body) = server.send(&request).await;
    assert!(
        body.starts_with("<xml><ToUserName>"),
        "plaintext reply: {body}"
    );
    assert_eq!(
        reply_text(blog.check(&request, status, &body).unwrap()),
        "plain <&> text"
    );
}

#[tokio::test]
async fn open_platform_authorization_events_and_authorized_account_messages() {
    let server = Server::start(&test_config(""));
    let now = unix_now();
    let sim = server.sim("comp");

    let request = sim
        .post(
            &verify_ticket_xml("wxcomponent00001", now, "ticket@@@x"),
            now,
            "n",
        )
        .unwrap();
    assert_eq!(request.path, "/open/comp");
    let (status, body) = server.send(&request).await;
    assert_eq!((status, body.as_str()), (200, "success"));

    let sim = sim.authorizer(Some("wxauthorized0001".into()));
    let request = sim
        .post(
            &text_xml(
                &header("gh_authorized", USER, None),
                "to an authorized account",
                3,
            ),
            now,
            "n",
        )
        .unwrap();
    assert_eq!(request.path, "/open/comp/wxauthorized0001");
    let (status, body) = server.send(&request).await;
    assert_eq!(
        reply_text(sim.check(&request, status, &body).unwrap()),
        "to an authorized account"
    );
}

/// A request that must succeed, sent after every refusal to show the server still serves.
async fn still_serving(server: &mut Server) {
    assert!(server.alive(), "the server process died");
    let sim = server.sim("demo");
    let request = sim
        .post(
            &text_xml(&header(CORP_ID, USER, Some(AGENT_ID)), "ping", 1),
            unix_now(),
            "n",
        )
        .unwrap();
    let (status, body) = server.send(&request).await;
    assert_eq!(
        reply_text(sim.check(&request, status, &body).unwrap()),
        "ping"
    );
}

#[tokio::test]
async fn every_refusal_gets_its_status_and_the_server_keeps_serving() {
    let mut server = Server::start(&test_config("max_body_bytes = 4096"));
    let sim = server.sim("demo");
    let now = unix_now();
    let good = sim
        .post(
            &text_xml(&header(CORP_ID, USER, Some(AGENT_ID)), "hi", 1),
            now,
            "n",
        )
        .unwrap();
    let signed_query = good.query.clone();
    // Correctly signed, but the ciphertext is not a multiple of 32 bytes.
    let garbage_encrypt = {
        let encrypt = "AAAAAAAAAAAAAAAAAAAAAA==";
        let token = wxgate::crypto::Token::new(TOKEN).unwrap();
        let signature = token
            .sign_encrypted(&now.to_string(), "n", encrypt)
            .unwrap();
        (
            format!(
                "msg_signature={}&timestamp={now}&nonce=n",
                signature.to_hex().as_str()
            ),
            format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"),
        )
    };
    let stale = sim
        .post(
            &text_xml(&header(CORP_ID, USER, Some(AGENT_ID)), "old", 1),
            now - 3600,
            "n",
        )
        .unwrap();
    let wrong_sig_query = {
        // Same length, one digit changed.
        let at = signed_query.find("msg_signature=").unwrap() + "msg_signature=".len();
        let mut q = signed_query.clone();
        let flipped = if &q[at..=at] == "0" { "1" } else { "0" };
        q.replace_range(at..=at, flipped);
        q
    };

    let cases: Vec<(&str, Method, String, String, u16, &str)> = vec![
        (
            "unknown app",
            Method::POST,
            "/wecom/nobody".into(),
            good.body.clone(),
            404,
            "",
        ),
        (
            "unknown platform",
            Method::GET,
            "/wp-login.php".into(),
            String::new(),
            404,
            "",
        ),
        (
            "app on another platform",
            Method::POST,
            format!("/mp/demo?{signed_query}"),
            good.body.clone(),
            404,
            "",
        ),
        (
            "wrong method",
            Method::PUT,
            format!("/wecom/demo?{signed_query}"),
            good.body.clone(),
            405,
            "",
        ),
        (
            "GET on the authorization URL",
            Method::GET,
            "/open/comp".into(),
            String::new(),
            405,
            "",
        ),
        (
            "missing parameters",
            Method::POST,
            "/wecom/demo".into(),
            good.body.clone(),
            400,
            "msg_signature",
        ),
        (
            "missing nonce",
            Method::GET,
            "/wecom/demo?msg_signature=ab&timestamp=1&echostr=x".into(),
            String::new(),
            400,
            "nonce",
        ),
        (
            "malformed signature",
            Method::POST,
            format!(
                "/wecom/demo?{}",
                signed_query.replace("msg_signature=", "msg_signature=zz")
            ),
            good.body.clone(),
            400,
            "-40001",
        ),
        (
            "wrong signature",
            Method::POST,
            format!("/wecom/demo?{wrong_sig_query}"),
            good.body.clone(),
            401,
            "-40001",
        ),
        (
            "unsigned junk is refused before decryption",
            Method::POST,
            format!("/wecom/demo?{wrong_sig_query}"),
            "<xml><Encrypt>!!not base64!!</Encrypt></xml>".into(),
            401,
            "-40001",
        ),
        (
            "stale timestamp",
            Method::POST,
            format!("/wecom/demo?{}", stale.query),
            stale.body.clone(),
            403,
            "replay window",
        ),
        (
            "body over the limit",
            Method::POST,
            format!("/wecom/demo?{signed_query}"),
            "x".repeat(5000),
            413,
            "limit",
        ),
        (
            "undecryptable",
            Method::POST,
            format!("/wecom/demo?{}", garbage_encrypt.0),
            garbage_encrypt.1.clone(),
            400,
            "-40007",
        ),
        (
            "not XML",
            Method::POST,
            format!("/wecom/demo?{signed_query}"),
            "{\"json\": true}".into(),
            400,
            "-40002",
        ),
        (
            "duplicate parameter",
            Method::POST,
            format!("/wecom/demo?{signed_query}&nonce=m"),
            good.body.clone(),
            400,
            "twice",
        ),
        (
            "plaintext to a safe-mode account",
            Method::POST,
            "/mp/shop?signature=0000000000000000000000000000000000000000&timestamp=1&nonce=1"
                .into(),
            "<xml/>".into(),
            400,
            "safe mode",
        ),
    ];
    for (name, method, path, body, status, needle) in cases {
        let (got, text) = server.raw(method, &path, body).await;
        assert_eq!(got, status, "{name}: {text}");
        assert!(text.contains(needle), "{name}: {text:?} lacks {needle:?}");
        still_serving(&mut server).await;
    }
}

#[tokio::test]
async fn a_receive_id_mismatch_is_refused_with_its_code() {
    // The platform encrypts for another corp: signature fine, receive id wrong.
    let other = test_config("").replace(
        &format!("corp_id = \"{CORP_ID}\""),
        "corp_id = \"wwanothercorp0001\"",
    );
    let server = Server::start(&test_config(""));
    let other_config = wxgate::config::Config::parse(&other).unwrap();
    let sim = wxgate::simulate::PlatformSim::new(other_config.app("demo").unwrap()).unwrap();
    let request = sim
        .post(
            &text_xml(&header("wwanothercorp0001", USER, Some(AGENT_ID)), "x", 1),
            unix_now(),
            "n",
        )
        .unwrap();
    let (status, body) = server.send(&request).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("-40005"), "{body}");
}
