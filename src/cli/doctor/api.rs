//! Checks 5 and 6: an access token fetched with the app's secret, and, with `--to`, a test
//! message that explains the refusals only the platform knows about: a WeCom member outside
//! the app's visible range, an Official Account follower outside the 48-hour window.

use serde_json::Value;

use super::report::Line;
use crate::config::{AppConfig, Config, StorePlan};
use crate::gateway::Gateway;
use crate::platform::Platform;
use crate::wechat::{
    ApiError, Messenger, MpMessage, PlatformClient, RetryPolicy, SendError, TokenError,
    TokenSource, WecomMessage,
};

/// The text of the test message.
const TEST_TEXT: &str = "wxgate doctor: test message";

/// What the platform's answer to a token fetch means, and what to do.
fn token_failure(what: String, app: &AppConfig, error: &ApiError) -> Line {
    let id_field = match app.platform {
        Platform::Wecom => "corp_id",
        Platform::Mp | Platform::Open => "app_id",
        Platform::Aibot => "receive id",
    };
    let detail = error.to_string();
    let (cause, fix): (String, String) = match error {
        ApiError::Platform { errcode, .. } => match errcode {
            40013 => (
                format!("the platform does not know this {id_field}"),
                format!("copy {id_field} from the console (WeCom: 我的企业 → 企业ID; Official Account: 基本配置 → AppID)"),
            ),
            40001 | 40125 | 41004 => (
                "the secret is wrong (WeCom: each app has its own Secret; an AppSecret that was reset is invalid)".into(),
                "copy the app's Secret from the console again (WeCom: 应用管理 → the app → Secret; Official Account: 基本配置 → AppSecret) into secret".into(),
            ),
            60020 | 61004 | 40164 => (
                "the platform refuses calls from this machine's IP (its errmsg names the IP it saw)".into(),
                error.hint().unwrap_or("add the caller's IP to the trusted IPs").to_owned()
                    + "; a Lambda function needs a fixed egress for this",
            ),
            48002 | 61007 => (
                "the app has not been granted this API".into(),
                error.hint().unwrap_or("grant the API's permission in the console").to_owned(),
            ),
            _ => (
                "the platform refused the request".into(),
                error.hint().unwrap_or("look the errcode up in the platform's error code list").to_owned(),
            ),
        },
        ApiError::Connect(_) | ApiError::Timeout | ApiError::Transport(_) => (
            "the platform's API cannot be reached from here".into(),
            "if this network needs a proxy for the internet, set [api] proxy (or WXGATE_API_PROXY); check DNS and the firewall otherwise".into(),
        ),
        ApiError::Http { .. } | ApiError::Decode(_) => (
            "something other than the platform answered: [api] wecom_base_url / mp_base_url, or a proxy in between".into(),
            "remove the [api] base URL overrides unless they point at a faithful relay".into(),
        ),
        ApiError::Precondition(_) => (
            "the token cannot be fetched yet".into(),
            "see the message".into(),
        ),
    };
    Line::fail(what, detail, cause, fix)
}

/// Check 5: fetches a token directly from the platform (no cache, nothing stored).
pub(super) async fn token(config: &Config, gateway: &Gateway, plan: &StorePlan, app: &AppConfig) -> Line {
    let what = format!("{}: token fetch", app.name);
    let Some(source) = gateway.token_source(&app.name) else {
        return Line::skipped(
            what,
            "no secret: active messages and replies later than the budget are not possible (set secret to have them)",
        );
    };
    if matches!(source, TokenSource::Component { .. }) {
        return component_token(what, config, plan, app, source).await;
    }
    let client = match PlatformClient::from_settings(&config.api, gateway.api_proxy()) {
        Ok(c) => c,
        Err(e) => return token_failure(what, app, &e),
    };
    let via = if client.is_proxied() { " through the proxy" } else { "" };
    match client.fetch_token(source).await {
        Ok(_) => Line::ok(
            what,
            format!("{} answered a token{via} (not shown)", match app.platform {
                Platform::Wecom | Platform::Aibot => "gettoken",
                Platform::Mp | Platform::Open => "stable_token",
            }),
        ),
        Err(e) => token_failure(what, app, &e),
    }
}

/// An Open Platform component's token needs the component_verify_ticket WeChat pushed to
/// the deployed gateway, which only its table holds.
async fn component_token(
    what: String,
    config: &Config,
    plan: &StorePlan,
    app: &AppConfig,
    source: &TokenSource,
) -> Line {
    if *plan == StorePlan::Memory {
        return Line::skipped(
            what,
            "the component token needs the component_verify_ticket kept in the deployed gateway's store; run doctor with WXGATE_TABLE (or [store]) naming its table",
        );
    }
    let gateway = match Gateway::builder(config).open().await {
        Ok(g) => g,
        Err(e) => {
            return Line::fail(
                what,
                e.to_string(),
                "the store cannot be opened",
                "check the AWS credentials and region",
            );
        }
    };
    let result = match gateway.tokens() {
        Ok(tokens) => tokens.get(source).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Line::ok(what, "api_component_token answered a token (not shown)"),
        Err(e) => match e.api_error() {
            Some(api) => token_failure(what, app, api),
            None => Line::fail(
                what,
                e.to_string(),
                "no component token could be had",
                "`wxgate open status` shows the ticket's age; `wxgate open push-ticket` asks for one",
            ),
        },
    }
}

/// Check 6: a test message to `to`, and on a refusal the reason the platform will not say.
pub(super) async fn test_send(gateway: &Gateway, app: &AppConfig, to: Option<&str>) -> Line {
    let what = format!("{}: test message", app.name);
    let Some(source) = gateway.token_source(&app.name) else {
        return Line::skipped(what, "no secret");
    };
    let Some(to) = to else {
        return Line::skipped(what, "pass --to USERID (WeCom) or --to OPENID (Official Account) to send one");
    };
    let tokens = match gateway.tokens() {
        Ok(t) => t,
        Err(e) => return Line::fail(what, e.to_string(), "the API client cannot be built", "see the message"),
    };
    // One attempt: a doctor reports what the platform says, it does not wait it out.
    let messenger = Messenger::new(tokens).with_retry(RetryPolicy::never());
    match app.platform {
        Platform::Aibot => Line::skipped(what, "an AI bot cannot send an active message"),
        Platform::Wecom => {
            let Some(agent_id) = app.agent_id else {
                return Line::fail(
                    what,
                    "no agent_id",
                    "a WeCom app message names the app by its AgentId",
                    "set agent_id to the app's AgentId (应用管理 → the app)",
                );
            };
            let sent = messenger
                .send_wecom(source, agent_id, to, &WecomMessage::text(TEST_TEXT))
                .await;
            match sent {
                Ok(receipt) if receipt.invalid_users.is_empty() => {
                    Line::ok(what, format!("delivered to {to} (msgid {})", receipt.msgid.unwrap_or_default()))
                }
                Ok(_) => visible_range(what, tokens, source, agent_id, to, "came back in invaliduser").await,
                Err(e) => match e.errcode() {
                    Some(code @ (81013 | 60011 | 60111)) => {
                        visible_range(what, tokens, source, agent_id, to, &format!("was refused with {code}")).await
                    }
                    _ => send_failure(what, app, &e),
                },
            }
        }
        Platform::Mp => match messenger.send_mp(source, to, &MpMessage::text(TEST_TEXT)).await {
            Ok(_) => Line::ok(what, format!("delivered to {to}")),
            Err(e) if e.errcode() == Some(45015) => Line::fail(
                what,
                "refused with 45015",
                "customer messages reach a follower only within 48 hours of their last message to the account (or they unfollowed)",
                "have the follower send the account a message, then run doctor again within 48 hours; replies later than that are not possible",
            ),
            Err(e) => send_failure(what, app, &e),
        },
        Platform::Open => Line::skipped(what, "Open Platform apps send as an authorizer: use `wxgate notify --authorizer`"),
    }
}

/// A refused test message: a setting's errcode is explained as for the token fetch (the
/// send fetched the token), any other with what the platform said.
fn send_failure(what: String, app: &AppConfig, error: &SendError) -> Line {
    match (error, error.api_error()) {
        (SendError::Token(_), Some(api)) => token_failure(what, app, api),
        (_, Some(api @ ApiError::Platform { errcode, .. })) if api.hint().is_some() || *errcode == 48002 => {
            token_failure(what, app, api)
        }
        (_, Some(api @ ApiError::Platform { .. })) => Line::fail(
            what,
            api.to_string(),
            "the platform refused the test message",
            "look the errcode up in the platform's error code list; the callbacks themselves do not depend on it",
        ),
        _ => Line::fail(
            what,
            error.to_string(),
            "the message could not be sent",
            "check --to and the network (see the token fetch above)",
        ),
    }
}

/// Explains a refused WeCom send with the app's visible range (agent/get).
async fn visible_range(
    what: String,
    tokens: &crate::wechat::TokenProvider,
    source: &TokenSource,
    agent_id: u64,
    to: &str,
    refused: &str,
) -> Line {
    let agent = agent_id.to_string();
    let answer: Result<Value, TokenError> = tokens
        .call(source, |token| {
            let client = tokens.client().clone();
            let agent = agent.clone();
            async move {
                client
                    .get_json(Platform::Wecom, "/cgi-bin/agent/get", &token, &[("agentid", agent.as_str())])
                    .await
            }
        })
        .await;
    let fix = "add the member (or their department) to the app's visible range (应用管理 → the app → 可见范围), or check the UserID (通讯录 → the member → 账号)";
    let Ok(answer) = answer else {
        return Line::fail(
            what,
            format!("the message to {to} {refused}"),
            "the member does not exist or is outside the app's visible range (agent/get could not be read to tell which)",
            fix,
        );
    };
    let ids = |pointer: &str, field: &str| -> Vec<String> {
        answer
            .pointer(pointer)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| match (field, i) {
                        ("", v) => Some(v.to_string()),
                        (f, v) => v.get(f).and_then(Value::as_str).map(str::to_owned),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let users = ids("/allow_userinfos/user", "userid");
    let parties = ids("/allow_partys/partyid", "");
    let tags = ids("/allow_tags/tagid", "");
    let listed = users.iter().any(|u| u.eq_ignore_ascii_case(to));
    let range = format!(
        "the visible range holds {} member(s), {} department(s), {} tag(s)",
        users.len(),
        parties.len(),
        tags.len()
    );
    let cause = if listed {
        format!("{range}, {to} among the members: the UserID may be disabled or not activated")
    } else {
        format!("{range}, and {to} is not among the members: they are outside the app's visible range (unless a listed department holds them), or no member has this UserID")
    };
    Line::fail(what, format!("the message to {to} {refused}"), cause, fix)
}
