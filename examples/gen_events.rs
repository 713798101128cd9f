//! Writes the sample API Gateway events in `events/` (run `scripts/gen-events.sh`).
//!
//! The WeCom verification and text events are the official test vectors verbatim; the others
//! are signed and encrypted for `events/wxgate.toml` at the official vectors' timestamp.
//! Nothing depends on when or how often it runs: timestamps and nonces are fixed, the AES
//! prefix is fixed per app ([`PlatformSim::fixed_prefix`]), and the API Gateway request
//! times are the callbacks' timestamp, so regenerating unchanged samples leaves git clean.
//! `events/expected.json` records what the gateway must answer to each, and the test
//! `tests/lambda_events.rs` invokes every event through the Lambda runtime API and checks it.

#[path = "../tests/support/runtime_api.rs"]
#[allow(unused_imports)]
mod runtime_api;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use wxgate::config::Config;
use wxgate::simulate::{
    Header, PlatformSim, SignedRequest, aibot_event_json, aibot_refresh_json, aibot_text_json,
    authorized_xml, event_xml, location_xml, text_xml, unauthorized_xml, verify_ticket_xml,
};

/// The official vectors' message timestamp; every generated event uses it.
const TIMESTAMP: u64 = 1_409_659_813;

const OFFICIAL_VERIFY_QUERY: &str = "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D";
const OFFICIAL_MESSAGE_QUERY: &str =
    "msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149";
const OFFICIAL_MESSAGE_BODY: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>";

/// The AES frame prefix of every generated event (random in real traffic).
const SAMPLE_PREFIX: &[u8; 16] = b"wxgate-sample-iv";

/// The API Gateway request time of every event: the callbacks' timestamp, in milliseconds.
const REQUEST_EPOCH_MS: u64 = TIMESTAMP * 1000;
/// The same instant as API Gateway writes it.
const REQUEST_TIME: &str = "02/Sep/2014:12:10:13 +0000";

struct Sample {
    file: &'static str,
    about: &'static str,
    event: Value,
    /// `echo:<text>`, `empty`, `text:<reply content>`, or (AI bot) `stream:<content>` for
    /// a finished stream.
    expect: String,
    /// The app whose keys check the answer.
    app: &'static str,
}

fn v2(method: &str, path: &str, query: &str, body: Option<&str>) -> Value {
    runtime_api::apigw_v2_event(method, path, query, body, false)
}

fn signed_v2(request: &SignedRequest) -> Value {
    let body = (!request.body.is_empty()).then_some(request.body.as_str());
    v2(request.method.as_str(), &request.path, &request.query, body)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("events"), PathBuf::from);
    let config = Config::load(&out.join("wxgate.toml"))?;
    let sim = |app: &str| {
        PlatformSim::new(config.app(app).expect("app in events/wxgate.toml"))
            .map(|sim| sim.fixed_prefix(*SAMPLE_PREFIX))
    };
    let (demo, shop, blog, comp) = (sim("demo")?, sim("shop")?, sim("blog")?, sim("comp")?);
    let helper = sim("helper")?;
    // The AI bot's message ids are the platform's: opaque base64 strings.
    let aibot_msgid = "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=";
    // The component's AppID, and an account of the release test (全网发布) and one other.
    let component = "wx5823bf96d3bd56c7";
    let release = comp.clone().authorizer(Some("wx570bc396a51b8ff8".into()));
    let account = comp.clone().authorizer(Some("wxd2c4e6f8a0b2c4e6".into()));
    let release_header = Header {
        to: "gh_3c884a361561",
        from: "ozy4qt1eDxSxzCr0aNT0mXCWfrDE",
        create_time: TIMESTAMP,
        agent_id: None,
    };
    let account_header = Header {
        to: "gh_d2c4e6f8a0b2",
        ..release_header.clone()
    };
    let wecom = Header {
        to: "wx5823bf96d3bd56c7",
        from: "zhangsan",
        create_time: TIMESTAMP,
        agent_id: Some(218),
    };
    let mp = Header {
        to: "gh_7f083739789a",
        from: "oia2TjjewbmiOUlr6X-1crbLOvLw",
        create_time: TIMESTAMP,
        agent_id: None,
    };

    let samples = vec![
        Sample {
            file: "wecom-verify.json",
            about: "WeCom URL verification: the official vector, echostr percent-encoded",
            event: v2("GET", "/wecom/demo", OFFICIAL_VERIFY_QUERY, None),
            expect: "echo:1616140317555161061".into(),
            app: "demo",
        },
        Sample {
            file: "wecom-text.json",
            about: "WeCom text message: the official vector (Content hello)",
            event: v2(
                "POST",
                "/wecom/demo",
                OFFICIAL_MESSAGE_QUERY,
                Some(OFFICIAL_MESSAGE_BODY),
            ),
            expect: "text:hello".into(),
            app: "demo",
        },
        Sample {
            file: "wecom-text-rest-v1.json",
            about: "The official WeCom text message as a REST API (payload v1) event with a base64 body",
            event: runtime_api::apigw_v1_event(
                "POST",
                "/wecom/demo",
                OFFICIAL_MESSAGE_QUERY,
                Some(OFFICIAL_MESSAGE_BODY),
                true,
            ),
            expect: "text:hello".into(),
            app: "demo",
        },
        Sample {
            file: "wecom-subscribe.json",
            about: "WeCom subscribe event, answered with the configured welcome",
            event: signed_v2(&demo.post(
                &event_xml(&wecom, "subscribe", None),
                TIMESTAMP,
                "1372623150",
            )?),
            expect: "text:欢迎使用 wxgate".into(),
            app: "demo",
        },
        Sample {
            file: "wecom-location.json",
            about: "WeCom LOCATION report: answered empty, no bot",
            event: signed_v2(&demo.post(
                &location_xml(&wecom, 23.137466, 113.352425),
                TIMESTAMP,
                "1372623151",
            )?),
            expect: "empty".into(),
            app: "demo",
        },
        Sample {
            file: "mp-verify.json",
            about: "Official Account URL verification: plain signature, echostr returned as is",
            event: signed_v2(&shop.verify_url("5837397520665436492", TIMESTAMP, "1372623152")?),
            expect: "echo:5837397520665436492".into(),
            app: "shop",
        },
        Sample {
            file: "mp-safe-text.json",
            about: "Official Account text message in safe mode (encrypt_type=aes)",
            event: signed_v2(&shop.post(
                &text_xml(&mp, "你好，安全模式", 6_054_768_590_064_713_728),
                TIMESTAMP,
                "1372623153",
            )?),
            expect: "text:你好，安全模式".into(),
            app: "shop",
        },
        Sample {
            file: "mp-plaintext-text.json",
            about: "Official Account text message in plaintext mode",
            event: signed_v2(&blog.post(
                &text_xml(&mp, "hello, plaintext", 6_054_768_590_064_713_729),
                TIMESTAMP,
                "1372623154",
            )?),
            expect: "text:hello, plaintext".into(),
            app: "blog",
        },
        Sample {
            file: "open-ticket.json",
            about: "Open Platform component_verify_ticket push (every 10 minutes): stored, answered success",
            event: signed_v2(&comp.post(
                &verify_ticket_xml(component, TIMESTAMP, "ticket@@@sample-ticket-value"),
                TIMESTAMP,
                "1372623160",
            )?),
            expect: "empty".into(),
            app: "comp",
        },
        Sample {
            file: "open-authorized.json",
            about: "Open Platform authorized push: its code is exchanged when the app has its secret; answered success",
            event: signed_v2(&comp.post(
                &authorized_xml(
                    component,
                    TIMESTAMP,
                    "authorized",
                    "wxd2c4e6f8a0b2c4e6",
                    "queryauthcode@@@sample",
                ),
                TIMESTAMP,
                "1372623161",
            )?),
            expect: "empty".into(),
            app: "comp",
        },
        Sample {
            file: "open-updateauthorized.json",
            about: "Open Platform updateauthorized push: answered success",
            event: signed_v2(&comp.post(
                &authorized_xml(
                    component,
                    TIMESTAMP,
                    "updateauthorized",
                    "wxd2c4e6f8a0b2c4e6",
                    "queryauthcode@@@sample2",
                ),
                TIMESTAMP,
                "1372623162",
            )?),
            expect: "empty".into(),
            app: "comp",
        },
        Sample {
            file: "open-unauthorized.json",
            about: "Open Platform unauthorized push: the authorization becomes a tombstone; answered success",
            event: signed_v2(&comp.post(
                &unauthorized_xml(component, TIMESTAMP, "wxd2c4e6f8a0b2c4e6"),
                TIMESTAMP,
                "1372623163",
            )?),
            expect: "empty".into(),
            app: "comp",
        },
        Sample {
            file: "open-message.json",
            about: "A text to an authorized account's message URL (/open/comp/$APPID$), answered by the rules",
            event: signed_v2(&account.post(
                &text_xml(
                    &account_header,
                    "你好，第三方平台",
                    6_054_768_590_064_713_730,
                ),
                TIMESTAMP,
                "1372623164",
            )?),
            expect: "text:你好，第三方平台".into(),
            app: "comp",
        },
        Sample {
            file: "open-release-test-text.json",
            about: "The release test (全网发布) text probe to a test account",
            event: signed_v2(&release.post(
                &text_xml(
                    &release_header,
                    "TESTCOMPONENT_MSG_TYPE_TEXT",
                    6_054_768_590_064_713_731,
                ),
                TIMESTAMP,
                "1372623165",
            )?),
            expect: "text:TESTCOMPONENT_MSG_TYPE_TEXT_callback".into(),
            app: "comp",
        },
        Sample {
            file: "open-release-test-event.json",
            about: "The release test's event probe: even a LOCATION report is answered <Event>from_callback",
            event: signed_v2(&release.post(
                &location_xml(&release_header, 23.137466, 113.352425),
                TIMESTAMP,
                "1372623166",
            )?),
            expect: "text:LOCATIONfrom_callback".into(),
            app: "comp",
        },
        Sample {
            file: "aibot-verify.json",
            about: "AI bot (智能机器人) URL verification: encrypted echostr, as WeCom's",
            event: signed_v2(&helper.verify_url("7386512029468251017", TIMESTAMP, "1372623170")?),
            expect: "echo:7386512029468251017".into(),
            app: "helper",
        },
        Sample {
            file: "aibot-text.json",
            about: "AI bot text message (JSON envelope): a rule answers it as a finished stream",
            event: signed_v2(&helper.post(
                &aibot_text_json(aibot_msgid, "zhangsan", None, "你好，智能机器人"),
                TIMESTAMP,
                "1372623171",
            )?),
            expect: "stream:你好，智能机器人".into(),
            app: "helper",
        },
        Sample {
            file: "aibot-refresh.json",
            about: "AI bot stream refresh (msgtype stream): a stream the store does not hold is answered finished and empty",
            event: signed_v2(&helper.post(
                &aibot_refresh_json(
                    "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AM=",
                    "zhangsan",
                    "wxgQ0FJUTE2SE1qUVlZL05HYWdJT0FnQU1ncTRLTTBBST0",
                ),
                TIMESTAMP,
                "1372623172",
            )?),
            expect: "stream:".into(),
            app: "helper",
        },
        Sample {
            file: "aibot-enter-chat.json",
            about: "AI bot enter_chat event: answered with the enter_chat welcome text",
            event: signed_v2(&helper.post(
                &aibot_event_json("CAIQ16HMjQYY/NGagIOAgAMgq4KM0AQ=", "zhangsan", "enter_chat"),
                TIMESTAMP,
                "1372623173",
            )?),
            expect: "text:你好，我是 wxgate 小助手".into(),
            app: "helper",
        },
    ];

    let mut manifest = Vec::new();
    for sample in &samples {
        write_json(&out.join(sample.file), &pinned_times(sample.event.clone()))?;
        manifest.push(json!({
            "file": sample.file,
            "about": sample.about,
            "app": sample.app,
            "expect": sample.expect,
        }));
    }
    write_json(&out.join("expected.json"), &Value::Array(manifest))?;
    // `sam local invoke --env-vars events/env.json`: the config above, inline.
    let config_text = std::fs::read_to_string(out.join("wxgate.toml"))?;
    write_json(
        &out.join("env.json"),
        &json!({ "Function": { "WXGATE_CONFIG": config_text } }),
    )?;
    println!("wrote {} events to {}", samples.len(), out.display());
    Ok(())
}

/// `event` with the request times the harness takes from the clock replaced by
/// [`REQUEST_EPOCH_MS`] (payload 2.0 `timeEpoch`, 1.0 `requestTimeEpoch` and the request id
/// derived from it).
fn pinned_times(mut event: Value) -> Value {
    let context = &mut event["requestContext"];
    if context.get("timeEpoch").is_some() {
        context["timeEpoch"] = json!(REQUEST_EPOCH_MS);
        context["time"] = json!(REQUEST_TIME);
    }
    if context.get("requestTimeEpoch").is_some() {
        context["requestTimeEpoch"] = json!(REQUEST_EPOCH_MS);
        context["requestTime"] = json!(REQUEST_TIME);
        context["requestId"] = json!(format!("c6af9ac6-7b61-11e6-9a41-{REQUEST_EPOCH_MS:012x}"));
    }
    event
}

fn write_json(path: &Path, value: &Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    text.push('\n');
    std::fs::write(path, text)
}
