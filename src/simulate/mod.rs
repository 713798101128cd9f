//! Playing the platform: signed (and encrypted) callbacks for a configured app, and a strict
//! check of the gateway's answers, the way WeChat itself would check them.
//!
//! Used by `wxgate send`, by the sample-event generator and by the integration tests, so the
//! requests they make are the ones the platform makes.

use std::fmt::Write as _;

use http::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::secret::expose;
use crate::config::{AppConfig, ConfigError};
use crate::crypto::{KeySlot, MsgCrypt, Token};
use crate::error::ProtocolError;
use crate::message::Callback;
use crate::platform::{DataFormat, Platform};
use crate::xml::{Fields, XmlWriter};

mod mini_program;
pub use mini_program::{enter_tempsession_json, mini_program_text_json};

#[cfg_attr(not(feature = "testing"), allow(dead_code))]
/// The WeCom app of the official sample code's public test values (the WXBizMsgCrypt sample's corp id, token and key) as an
/// `[[apps]]` table named `demo` that echoes text: for tests, benches and demos, never for
/// deployment.
pub const OFFICIAL_SAMPLE_APP: &str = r#"
[[apps]]
name = "demo"
platform = "wecom"
corp_id = "wx5823bf96d3bd56c7"
agent_id = 218
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
[apps.reply]
echo = true
"#;

/// What a query value keeps unescaped: RFC 3986's unreserved characters. `+`, `/` and `=`
/// are escaped, as the platforms do.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A request as the platform would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// GET (URL verification) or POST.
    pub method: Method,
    /// The route, e.g. `/wecom/demo`.
    pub path: String,
    /// The query string, percent-encoded, without `?`.
    pub query: String,
    /// The body (empty for GET).
    pub body: String,
    /// For URL verification: the exact answer expected.
    pub expected_echo: Option<String>,
}

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
impl SignedRequest {
    /// The request as [`Gateway::handle`](crate::gateway::Gateway::handle) takes it, to
    /// drive a gateway in process.
    pub fn to_callback(&self) -> crate::gateway::CallbackRequest<'_> {
        crate::gateway::CallbackRequest {
            method: &self.method,
            path: &self.path,
            query: Some(&self.query),
            body: self.body.as_bytes(),
        }
    }
}

impl SignedRequest {
    /// Path and query, for a URL.
    pub fn path_and_query(&self) -> String {
        format!("{}?{}", self.path, self.query)
    }
}

/// What the gateway answered, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// URL verification answered with exactly the expected echostr.
    Verified(String),
    /// The empty answer (`success` or an empty body).
    Empty,
    /// A passive reply: the inner XML, decrypted and verified if it came encrypted.
    Reply(String),
}

/// Why an answer would be refused by the platform.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// Any status but 200 is a failure to the platform.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status.
        status: u16,
        /// The body, for the reason.
        body: String,
    },
    /// URL verification answered with something other than the plaintext echostr.
    #[error(
        "URL verification answered {got:?}, expected exactly {expected:?} (this is \"token验证失败\")"
    )]
    WrongEcho {
        /// Expected.
        expected: String,
        /// Got.
        got: String,
    },
    /// The reply's envelope, signature, encryption or XML is wrong.
    #[error("the reply does not verify: {0}")]
    Protocol(#[from] ProtocolError),
}

/// Builds callbacks for one app.
#[derive(Debug, Clone)]
pub struct PlatformSim {
    app: String,
    platform: Platform,
    token: Token,
    crypt: Option<MsgCrypt>,
    receive_id: String,
    agent_id: Option<u64>,
    plaintext: bool,
    /// MP: XML, or the Mini Program's JSON push.
    data_format: DataFormat,
    authorizer_app_id: Option<String>,
    /// The AES frame's 16-byte prefix, when it must not be random (reproducible samples).
    fixed_prefix: Option<[u8; 16]>,
}

impl PlatformSim {
    /// Plays the platform for `app`, with its own token and key. MP apps without a key are
    /// played in plaintext mode.
    ///
    /// # Errors
    /// The app's secrets cannot be read or are invalid.
    pub fn new(app: &AppConfig) -> Result<Self, ConfigError> {
        let secrets = app.secrets()?;
        let invalid = |e: ProtocolError| ConfigError::App {
            app: app.name.clone(),
            reason: e.to_string(),
        };
        let receive_id = app.receive_id().unwrap_or_default().to_owned();
        let crypt = secrets
            .encoding_aes_key
            .as_ref()
            .map(|key| MsgCrypt::new(expose(&secrets.token), expose(key), &receive_id))
            .transpose()
            .map_err(invalid)?;
        Ok(Self {
            app: app.name.clone(),
            platform: app.platform,
            token: Token::new(expose(&secrets.token)).map_err(invalid)?,
            plaintext: crypt.is_none(),
            data_format: app.data_format,
            crypt,
            receive_id,
            agent_id: app.agent_id,
            authorizer_app_id: None,
            fixed_prefix: None,
        })
    }

    /// Encrypts with this prefix instead of a fresh random one, so the same callback gives
    /// the same ciphertext: for sample files kept in git (`examples/gen_events.rs`), never
    /// for anything sent to a real gateway (the platform's prefixes are random).
    #[must_use]
    pub fn fixed_prefix(mut self, prefix: [u8; 16]) -> Self {
        self.fixed_prefix = Some(prefix);
        self
    }

    /// `plain` framed and encrypted with the current key, for this app's receive id.
    fn encrypt(&self, plain: &[u8]) -> Result<String, ProtocolError> {
        let key = self.crypt()?.key(KeySlot::Current);
        match self.fixed_prefix {
            Some(prefix) => key.encrypt_with_random(prefix, plain, &self.receive_id),
            None => key.encrypt(plain, &self.receive_id),
        }
    }

    /// MP: send in plaintext mode even though a key is configured (the gateway should refuse).
    pub fn plaintext(mut self, plaintext: bool) -> Self {
        self.plaintext = plaintext || self.crypt.is_none();
        self
    }

    /// Open Platform: send to the message URL of this authorized account.
    pub fn authorizer(mut self, app_id: Option<String>) -> Self {
        self.authorizer_app_id = app_id;
        self
    }

    /// The receive id (corp id / AppID): the `ToUserName` of WeCom messages.
    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// The app's agent id (WeCom).
    pub fn agent_id(&self) -> Option<u64> {
        self.agent_id
    }

    /// The platform.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    fn path(&self, authorization_events: bool) -> String {
        match (&self.authorizer_app_id, authorization_events) {
            (Some(authorizer), false) if self.platform == Platform::Open => {
                format!("/open/{}/{authorizer}", self.app)
            }
            _ => format!("/{}/{}", self.platform, self.app),
        }
    }

    fn crypt(&self) -> Result<&MsgCrypt, ProtocolError> {
        self.crypt.as_ref().ok_or(ProtocolError::IllegalAesKey(
            "the app has no encoding_aes_key",
        ))
    }

    /// URL verification carrying `echo` (WeCom: encrypted; MP and Open: plain).
    ///
    /// # Errors
    /// Signing or encryption failed (no key for WeCom, an unsignable nonce).
    pub fn verify_url(
        &self,
        echo: &str,
        timestamp: u64,
        nonce: &str,
    ) -> Result<SignedRequest, ProtocolError> {
        let ts = timestamp.to_string();
        let mut query = String::new();
        if matches!(self.platform, Platform::Wecom | Platform::Aibot) {
            let echostr = self.encrypt(echo.as_bytes())?;
            let signature = self.token.sign_encrypted(&ts, nonce, &echostr)?;
            push_param(&mut query, "msg_signature", signature.to_hex().as_str());
            push_param(&mut query, "timestamp", &ts);
            push_param(&mut query, "nonce", nonce);
            push_param(&mut query, "echostr", &echostr);
        } else {
            let signature = self.token.sign(&ts, nonce)?;
            push_param(&mut query, "signature", signature.to_hex().as_str());
            push_param(&mut query, "timestamp", &ts);
            push_param(&mut query, "nonce", nonce);
            push_param(&mut query, "echostr", echo);
        }
        Ok(SignedRequest {
            method: Method::GET,
            path: self.path(false),
            query,
            body: String::new(),
            expected_echo: Some(echo.to_owned()),
        })
    }

    /// A POSTed callback carrying `message_xml` (build it with [`text_xml`], [`event_xml`],
    /// [`verify_ticket_xml`]). Authorization events (`InfoType`) of an Open Platform app go
    /// to `/open/{app}`, everything else to the app's message URL. For an app with
    /// `data_format = "json"` the message is JSON ([`mini_program_text_json`],
    /// [`enter_tempsession_json`]), and so is the envelope.
    ///
    /// # Errors
    /// Signing or encryption failed.
    pub fn post(
        &self,
        message_xml: &str,
        timestamp: u64,
        nonce: &str,
    ) -> Result<SignedRequest, ProtocolError> {
        let ts = timestamp.to_string();
        let plain_signature = self.token.sign(&ts, nonce)?;
        let mut query = String::new();
        let body = if self.data_format == DataFormat::Json {
            let (json_query, body) = self.json_push(message_xml, &ts, nonce)?;
            query = json_query;
            body
        } else if self.platform == Platform::Aibot {
            // The AI bot: the message is JSON, and so is the envelope.
            let encrypt = self.encrypt(message_xml.as_bytes())?;
            let signature = self.token.sign_encrypted(&ts, nonce, &encrypt)?;
            push_param(&mut query, "msg_signature", signature.to_hex().as_str());
            push_param(&mut query, "timestamp", &ts);
            push_param(&mut query, "nonce", nonce);
            serde_json::json!({ "encrypt": encrypt }).to_string()
        } else if self.plaintext && self.platform == Platform::Mp {
            push_param(&mut query, "signature", plain_signature.to_hex().as_str());
            push_param(&mut query, "timestamp", &ts);
            push_param(&mut query, "nonce", nonce);
            message_xml.to_owned()
        } else {
            let encrypt = self.encrypt(message_xml.as_bytes())?;
            let signature = self.token.sign_encrypted(&ts, nonce, &encrypt)?;
            if self.platform != Platform::Wecom {
                push_param(&mut query, "signature", plain_signature.to_hex().as_str());
            }
            push_param(&mut query, "timestamp", &ts);
            push_param(&mut query, "nonce", nonce);
            if self.platform != Platform::Wecom {
                push_param(&mut query, "encrypt_type", "aes");
            }
            push_param(&mut query, "msg_signature", signature.to_hex().as_str());
            self.envelope(message_xml, &encrypt)
        };
        let authorization_event = message_xml.contains("<InfoType>");
        Ok(SignedRequest {
            method: Method::POST,
            path: self.path(authorization_event),
            query,
            body,
            expected_echo: None,
        })
    }

    /// The outer document: only `Encrypt` is signed; the rest is what the platforms add.
    fn envelope(&self, message_xml: &str, encrypt: &str) -> String {
        let mut out = String::new();
        let mut w = XmlWriter::new(&mut out);
        w.open("xml");
        match self.platform {
            Platform::Wecom => {
                w.text("ToUserName", &self.receive_id);
                if let Some(agent_id) = self.agent_id {
                    w.number("AgentID", agent_id);
                }
            }
            Platform::Open if message_xml.contains("<InfoType>") => {
                w.text("AppId", &self.receive_id);
            }
            Platform::Aibot => {}
            Platform::Mp | Platform::Open => {
                let to = Fields::parse(message_xml)
                    .ok()
                    .and_then(|f| f.get("ToUserName").map(str::to_owned))
                    .unwrap_or_default();
                w.text("ToUserName", &to);
            }
        }
        w.safe_text("Encrypt", encrypt).close("xml");
        out
    }

    /// Checks an answer as the platform would: status 200; for URL verification exactly the
    /// echostr; for a POST `success`/empty, or a reply whose envelope, signature, encryption,
    /// receive id and XML all verify.
    ///
    /// # Errors
    /// What the platform would object to.
    pub fn check(
        &self,
        request: &SignedRequest,
        status: u16,
        body: &str,
    ) -> Result<Answer, AnswerError> {
        if status != 200 {
            return Err(AnswerError::Status {
                status,
                body: body.trim_end().to_owned(),
            });
        }
        if let Some(expected) = &request.expected_echo {
            return if body == expected {
                Ok(Answer::Verified(body.to_owned()))
            } else {
                Err(AnswerError::WrongEcho {
                    expected: expected.clone(),
                    got: body.to_owned(),
                })
            };
        }
        if body.is_empty() || body == "success" {
            return Ok(Answer::Empty);
        }
        if self.platform == Platform::Aibot {
            return self.open_json_reply(request, body).map(Answer::Reply);
        }
        let encrypted = request.query.contains("msg_signature=");
        if self.data_format == DataFormat::Json {
            return self
                .open_mini_program_reply(encrypted, body)
                .map(Answer::Reply);
        }
        let inner = if encrypted {
            self.open_reply(body)?
        } else {
            body.to_owned()
        };
        Callback::parse(&inner)?;
        Ok(Answer::Reply(inner))
    }

    fn open_reply(&self, body: &str) -> Result<String, ProtocolError> {
        let fields = Fields::parse(body)?;
        let field = |name: &'static str| {
            fields
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or(ProtocolError::XmlMissingField(name))
        };
        let (encrypt, signature) = (field("Encrypt")?, field("MsgSignature")?);
        let (timestamp, nonce) = (field("TimeStamp")?, field("Nonce")?);
        let opened = self.crypt()?.open(signature, timestamp, nonce, encrypt)?;
        Ok(opened.frame.message_str()?.to_owned())
    }
}

impl PlatformSim {
    /// An AI bot's reply: `{"encrypt","msgsignature","timestamp","nonce"}` (the timestamp a
    /// number or a string), the nonce the callback's own, signed, decrypting to a JSON
    /// object with a `msgtype`. The plaintext JSON.
    fn open_json_reply(&self, request: &SignedRequest, body: &str) -> Result<String, AnswerError> {
        let bad = |reason: &str| AnswerError::from(ProtocolError::Json(reason.to_owned()));
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|_| bad("the reply envelope is not JSON"))?;
        let field = |name: &'static str| match value.get(name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            _ => Err(AnswerError::from(ProtocolError::JsonMissingField(name))),
        };
        let (encrypt, signature) = (field("encrypt")?, field("msgsignature")?);
        let (timestamp, nonce) = (field("timestamp")?, field("nonce")?);
        let sent_nonce = request
            .query
            .split('&')
            .find_map(|p| p.strip_prefix("nonce="))
            .unwrap_or_default();
        if nonce != sent_nonce {
            return Err(bad("the reply's nonce is not the callback's"));
        }
        let opened = self.crypt()?.open(&signature, &timestamp, &nonce, &encrypt)?;
        let inner = opened.frame.message_str()?.to_owned();
        let reply: serde_json::Value =
            serde_json::from_str(&inner).map_err(|_| bad("the decrypted reply is not JSON"))?;
        if reply.get("msgtype").and_then(serde_json::Value::as_str).is_none() {
            return Err(AnswerError::from(ProtocolError::JsonMissingField("msgtype")));
        }
        Ok(inner)
    }
}

/// An AI bot text message from `userid` (a single chat, or a group when `chatid` is given).
pub fn aibot_text_json(msgid: &str, userid: &str, chatid: Option<&str>, content: &str) -> String {
    aibot_json(msgid, userid, chatid, "text", serde_json::json!({ "content": content }))
}

/// An AI bot event (`enter_chat`, `feedback_event`, …) from `userid`.
pub fn aibot_event_json(msgid: &str, userid: &str, eventtype: &str) -> String {
    aibot_json(msgid, userid, None, "event", serde_json::json!({ "eventtype": eventtype }))
}

/// The platform's refresh callback for a stream we opened.
pub fn aibot_refresh_json(msgid: &str, userid: &str, stream_id: &str) -> String {
    aibot_json(msgid, userid, None, "stream", serde_json::json!({ "id": stream_id }))
}

/// `json` (an AI bot message) with its `response_url` pointing at `url`: a fake platform's
/// `/cgi-bin/aibot/response?response_code=…`, where a test sees what was sent there.
pub fn with_response_url(json: &str, url: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    value["response_url"] = url.into();
    value.to_string()
}

fn aibot_json(
    msgid: &str,
    userid: &str,
    chatid: Option<&str>,
    msgtype: &str,
    payload: serde_json::Value,
) -> String {
    let mut value = serde_json::json!({
        "msgid": msgid,
        "aibotid": "AIBOTID",
        "chattype": if chatid.is_some() { "group" } else { "single" },
        "from": { "userid": userid },
        "msgtype": msgtype,
        msgtype: payload,
    });
    if let Some(chatid) = chatid {
        value["chatid"] = chatid.into();
    }
    if msgtype != "stream" {
        value["response_url"] =
            format!("https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code={msgid}").into();
    }
    value.to_string()
}

fn push_param(query: &mut String, name: &str, value: &str) {
    if !query.is_empty() {
        query.push('&');
    }
    let _ = write!(query, "{name}={}", utf8_percent_encode(value, QUERY_VALUE));
}

/// Common header fields of a user message or event.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// Our account: corp id (WeCom) or the original id `gh_…` (MP).
    pub to: &'a str,
    /// The sender: UserID or OpenID.
    pub from: &'a str,
    /// Unix seconds.
    pub create_time: u64,
    /// WeCom: the app's agent id.
    pub agent_id: Option<u64>,
}

impl Header<'_> {
    fn write<'o, 'b>(&self, w: &'o mut XmlWriter<'b>, msg_type: &str) -> &'o mut XmlWriter<'b> {
        w.open("xml")
            .text("ToUserName", self.to)
            .text("FromUserName", self.from)
            .number("CreateTime", self.create_time)
            .text("MsgType", msg_type)
    }

    fn finish(&self, w: &mut XmlWriter<'_>) {
        if let Some(agent_id) = self.agent_id {
            w.number("AgentID", agent_id);
        }
        w.close("xml");
    }
}

/// A MsgId for a message sent at `now`, as the platform's are: a 64-bit number. Six random
/// digits under the second keep two messages sent within one second apart (one in a million
/// per pair); a single random character here once let two `wxgate send` runs in the same
/// second share an id, and the second was answered as a duplicate of the first.
pub fn fresh_msg_id(now: u64) -> u64 {
    now.saturating_mul(1_000_000) + u64::from(rand::random::<u32>() % 1_000_000)
}

/// A text message.
pub fn text_xml(header: &Header<'_>, content: &str, msg_id: u64) -> String {
    let mut out = String::new();
    let mut w = XmlWriter::new(&mut out);
    header
        .write(&mut w, "text")
        .text("Content", content)
        .number("MsgId", msg_id);
    header.finish(&mut w);
    out
}

/// An event, with an optional EventKey.
pub fn event_xml(header: &Header<'_>, event: &str, event_key: Option<&str>) -> String {
    let mut out = String::new();
    let mut w = XmlWriter::new(&mut out);
    header.write(&mut w, "event").text("Event", event);
    if let Some(key) = event_key {
        w.text("EventKey", key);
    }
    header.finish(&mut w);
    out
}

/// A LOCATION report.
pub fn location_xml(header: &Header<'_>, latitude: f64, longitude: f64) -> String {
    let mut out = String::new();
    let mut w = XmlWriter::new(&mut out);
    header.write(&mut w, "event").text("Event", "LOCATION");
    w.decimal("Latitude", latitude)
        .decimal("Longitude", longitude)
        .decimal("Precision", 30.0);
    header.finish(&mut w);
    out
}

/// An Open Platform notice: the head every push shares (`AppId`, `CreateTime`, `InfoType`),
/// then what `fields` writes.
fn open_notice_xml(
    component_app_id: &str,
    create_time: u64,
    info_type: &str,
    fields: impl FnOnce(&mut XmlWriter<'_>),
) -> String {
    let mut out = String::new();
    let mut w = XmlWriter::new(&mut out);
    w.open("xml")
        .text("AppId", component_app_id)
        .number("CreateTime", create_time)
        .text("InfoType", info_type);
    fields(&mut w);
    w.close("xml");
    out
}

/// An Open Platform `component_verify_ticket` push.
pub fn verify_ticket_xml(component_app_id: &str, create_time: u64, ticket: &str) -> String {
    open_notice_xml(component_app_id, create_time, "component_verify_ticket", |w| {
        w.text("ComponentVerifyTicket", ticket);
    })
}

/// An Open Platform `authorized` or `updateauthorized` push (`info_type`): the account
/// `authorizer` authorized with `code`, valid 10 minutes from `create_time`.
pub fn authorized_xml(
    component_app_id: &str,
    create_time: u64,
    info_type: &str,
    authorizer: &str,
    code: &str,
) -> String {
    open_notice_xml(component_app_id, create_time, info_type, |w| {
        w.text("AuthorizerAppid", authorizer)
            .text("AuthorizationCode", code)
            .number("AuthorizationCodeExpiredTime", create_time + 600)
            .text("PreAuthCode", "");
    })
}

/// An Open Platform `unauthorized` push: `authorizer` withdrew.
pub fn unauthorized_xml(component_app_id: &str, create_time: u64, authorizer: &str) -> String {
    open_notice_xml(component_app_id, create_time, "unauthorized", |w| {
        w.text("AuthorizerAppid", authorizer);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const CONFIG: &str = r#"
[[apps]]
name = "demo"
platform = "wecom"
corp_id = "wx5823bf96d3bd56c7"
agent_id = 218
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
"#;

    fn sim() -> PlatformSim {
        let config = Config::parse(CONFIG).unwrap();
        PlatformSim::new(config.app("demo").unwrap()).unwrap()
    }

    #[test]
    fn a_fixed_prefix_makes_the_ciphertext_reproducible_and_still_valid() {
        let xml = "<xml><Content><![CDATA[hi]]></Content></xml>";
        let fixed = || sim().fixed_prefix(*b"0123456789abcdef");
        let first = fixed().post(xml, 1_409_659_813, "n1").unwrap();
        let again = fixed().post(xml, 1_409_659_813, "n1").unwrap();
        assert_eq!((&first.query, &first.body), (&again.query, &again.body));
        let verify = fixed().verify_url("echo", 1_409_659_813, "n2").unwrap();
        assert_eq!(
            verify.query,
            fixed().verify_url("echo", 1_409_659_813, "n2").unwrap().query
        );
        // Random prefixes differ from run to run.
        let random = sim().post(xml, 1_409_659_813, "n1").unwrap();
        assert_ne!(random.body, sim().post(xml, 1_409_659_813, "n1").unwrap().body);
        // The fixed ciphertext is an ordinary one: the app's key opens it.
        let crypt = sim().crypt.unwrap();
        let envelope = crate::crypto::EncryptedEnvelope::parse(&first.body).unwrap();
        let opened = crypt.decrypt(&envelope.encrypt).unwrap();
        assert_eq!(opened.frame.message(), xml.as_bytes());
    }

    #[test]
    fn message_ids_sent_within_one_second_are_apart() {
        let now = 1_764_633_600;
        let ids: std::collections::HashSet<u64> = (0..50).map(|_| fresh_msg_id(now)).collect();
        // One random character per id (the old scheme) gives about 35 distinct ids of 50.
        assert!(ids.len() >= 48, "{} distinct of 50", ids.len());
        assert!(ids.iter().all(|id| id / 1_000_000 == now));
    }
}
