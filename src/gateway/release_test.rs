//! The Open Platform's release test (全网发布): before a component goes live, WeChat sends
//! messages to one of its test accounts and checks three answers. Only for those accounts,
//! and before anything else (the report-only shortcut, dedup, the bot):
//!
//! 1. any event → the passive text `<Event>from_callback` (the event name as sent);
//! 2. the text `TESTCOMPONENT_MSG_TYPE_TEXT` → `TESTCOMPONENT_MSG_TYPE_TEXT_callback`;
//! 3. the text `QUERY_AUTH_CODE:$code` → the empty answer, and a customer message
//!    `$code_from_api` to the sender, sent with the authorizer token `api_query_auth` gives
//!    for `$code`. Some report the code refused (61009): then with the account's stored
//!    token. The message is sent before the callback is answered, within the budget: a
//!    Lambda function is frozen once it answers.
//!
//! An account is a test account when the URL's AppID or the signed `ToUserName` is one of
//! the five groups' (Official Account and Mini Program): the AppID alone is not signed, the
//! original id is, and WeChat may use either form.

use tokio::time::Instant;

use super::{App, Gateway};
use crate::bot::Bot;
use crate::clock::unix_now;
use crate::message::Message;
use crate::reply::Reply;
use crate::wechat::open::exchange_code;
use crate::wechat::{MpMessage, TokenSource};

/// The release test's accounts: (AppID, original id), Official Accounts then Mini Programs.
pub const TEST_ACCOUNTS: [(&str, &str); 10] = [
    ("wx570bc396a51b8ff8", "gh_3c884a361561"),
    ("wx9252c5e0bb1836fc", "gh_c0f28a78b318"),
    ("wx8e1097c5bc82cde9", "gh_3f222ed8d140"),
    ("wx14550af28c71a144", "gh_26128078e9ab"),
    ("wxa35b9c23cfe664eb", "gh_2b3713f184a6"),
    ("wxd101a85aa106f53e", "gh_8dad206e9538"),
    ("wxc39235c15087f6f3", "gh_905ae9d01059"),
    ("wx7720d01d4b2a4500", "gh_393666f1fdf4"),
    ("wx05d483572dcd5d8b", "gh_39abb5d4e1b7"),
    ("wx5910277cae6fd970", "gh_7818dcb60240"),
];

const TEXT_PROBE: &str = "TESTCOMPONENT_MSG_TYPE_TEXT";
const CODE_PROBE: &str = "QUERY_AUTH_CODE:";

/// Whether a message to `authorizer` (the URL's AppID) addressed to `to_user_name` is for
/// a release-test account.
pub fn is_test_account(authorizer: &str, to_user_name: &str) -> bool {
    TEST_ACCOUNTS
        .iter()
        .any(|(app_id, gh)| *app_id == authorizer || *gh == to_user_name)
}

/// What the release test wants for a message, decided from the message alone.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Probe<'m> {
    /// Answer this text passively.
    Answer(String),
    /// Exchange this code and send `{code}_from_api`; answer empty.
    QueryAuthCode(&'m str),
}

/// The probe in `message`, if it is one. `raw_event` is the `Event` field as sent (the
/// parsed name is lowercased; the test wants it as sent).
pub(super) fn probe<'m>(message: &'m Message, raw_event: Option<&str>) -> Option<Probe<'m>> {
    if message.event().is_some() {
        let name = raw_event
            .map(str::to_owned)
            .unwrap_or_else(|| message.msg_type().into_owned());
        return Some(Probe::Answer(format!("{name}from_callback")));
    }
    let text = message.text()?;
    if text == TEXT_PROBE {
        return Some(Probe::Answer(format!("{TEXT_PROBE}_callback")));
    }
    text.strip_prefix(CODE_PROBE)
        .filter(|code| !code.is_empty())
        .map(Probe::QueryAuthCode)
}

/// The `Event` field of a callback as sent.
pub(super) fn raw_event(xml: &str) -> Option<String> {
    let fields = crate::xml::Fields::parse(xml).ok()?;
    fields.get("Event").map(str::to_owned)
}

impl<B: Bot> Gateway<B> {
    /// The release test's answer to a message for a test account: `Some(reply XML or the
    /// empty answer)`; `None` when it is not one (or not a probe), and the callback goes on.
    pub(super) async fn release_test(
        &self,
        app: &App,
        authorizer: &str,
        message: &Message,
        xml: &str,
        deadline: Instant,
    ) -> Option<Option<String>> {
        if !is_test_account(authorizer, &message.to_user_name) {
            return None;
        }
        let raw = message.event().and_then(|_| raw_event(xml));
        match probe(message, raw.as_deref())? {
            Probe::Answer(text) => {
                tracing::info!(app = %app.name, authorizer, "release test: answering the probe");
                let reply = Reply::text(text)
                    .render(message, app.platform, unix_now())
                    .map_err(|e| tracing::error!(app = %app.name, cause = %e, "release test: the answer cannot be rendered"))
                    .ok();
                Some(reply)
            }
            Probe::QueryAuthCode(code) => {
                let sent = tokio::time::timeout_at(
                    deadline,
                    self.answer_code_probe(app, authorizer, message, code),
                )
                .await;
                match sent {
                    Ok(Ok(())) => {
                        tracing::info!(app = %app.name, authorizer, "release test: customer message sent");
                    }
                    Ok(Err(e)) => {
                        tracing::error!(app = %app.name, authorizer, error = %e, "release test: the customer message could not be sent");
                    }
                    Err(_) => {
                        tracing::error!(app = %app.name, authorizer, "release test: the customer message took past the time budget");
                    }
                }
                Some(None)
            }
        }
    }

    async fn answer_code_probe(
        &self,
        app: &App,
        authorizer: &str,
        message: &Message,
        code: &str,
    ) -> Result<(), String> {
        let component = app
            .token_source
            .as_ref()
            .ok_or("the app has no secret (the component AppSecret)")?;
        let tokens = self.tokens().map_err(|e| e.to_string())?;
        let content = format!("{code}_from_api");
        let body = MpMessage::text(content).body(&message.from_user_name);
        let token = match exchange_code(tokens, component, code, unix_now()).await {
            Ok(exchanged) => exchanged.query.access_token.value,
            Err(e) => {
                tracing::warn!(app = %app.name, authorizer, error = %e, "release test: the code was refused; sending with the stored authorizer token");
                let source: TokenSource =
                    component.authorizer(authorizer).ok_or("not a component")?;
                tokens
                    .get(&source)
                    .await
                    .map_err(|e| e.to_string())?
                    .expose()
                    .to_owned()
            }
        };
        let token = crate::wechat::AccessToken::new(&token);
        tokens
            .client()
            .post_json(
                crate::platform::Platform::Mp,
                crate::wechat::send::MP_SEND_PATH,
                &token,
                &[],
                &body,
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(xml_body: &str) -> Message {
        Message::parse(&format!(
            "<xml><ToUserName>gh_3c884a361561</ToUserName><FromUserName>ozy4qt1eDxSxzCr0aNT0mXCWfrDE</FromUserName><CreateTime>1</CreateTime>{xml_body}</xml>"
        ))
        .unwrap()
    }

    #[test]
    fn the_three_probes() {
        let event = message(
            "<MsgType>event</MsgType><Event>LOCATION</Event><Latitude>1</Latitude><Longitude>2</Longitude><Precision>3</Precision>",
        );
        assert_eq!(
            probe(&event, Some("LOCATION")),
            Some(Probe::Answer("LOCATIONfrom_callback".into()))
        );
        let text = message(
            "<MsgType>text</MsgType><Content>TESTCOMPONENT_MSG_TYPE_TEXT</Content><MsgId>1</MsgId>",
        );
        assert_eq!(
            probe(&text, None),
            Some(Probe::Answer("TESTCOMPONENT_MSG_TYPE_TEXT_callback".into()))
        );
        let code = message(
            "<MsgType>text</MsgType><Content>QUERY_AUTH_CODE:queryauthcode@@@abc</Content><MsgId>2</MsgId>",
        );
        assert_eq!(
            probe(&code, None),
            Some(Probe::QueryAuthCode("queryauthcode@@@abc"))
        );
        let other = message("<MsgType>text</MsgType><Content>hello</Content><MsgId>3</MsgId>");
        assert_eq!(probe(&other, None), None);
        let empty =
            message("<MsgType>text</MsgType><Content>QUERY_AUTH_CODE:</Content><MsgId>4</MsgId>");
        assert_eq!(probe(&empty, None), None);
    }

    #[test]
    fn test_accounts_by_appid_or_original_id_only() {
        for (app_id, gh) in TEST_ACCOUNTS {
            assert!(is_test_account(app_id, "gh_other"));
            assert!(is_test_account("wxother", gh));
        }
        assert!(!is_test_account("wx0123456789abcdef", "gh_0123456789ab"));
    }

    #[test]
    fn the_event_name_is_read_as_sent() {
        assert_eq!(
            raw_event("<xml><MsgType>event</MsgType><Event>subscribe</Event></xml>").as_deref(),
            Some("subscribe")
        );
        assert_eq!(raw_event("<xml><MsgType>text</MsgType></xml>"), None);
    }
}
