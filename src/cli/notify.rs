//! `wxgate notify`: sends an active message (WeCom app message, Official Account customer
//! message) with the app's shared access token.

use std::io::Write as _;
use std::process::ExitCode;

use super::{
    EXIT_CONFIG, EXIT_REPLY_FAILED, NotifyArgs, Threads, app_named, config_failure, load, runtime,
};
use crate::gateway::Gateway;
use crate::platform::Platform;
use crate::wechat::{
    ApiError, Article, Messenger, MpMessage, SendError, SendReceipt, TextCard, TokenError,
    WecomMessage,
};

/// What `notify` sends, for the app's platform.
enum Outgoing {
    Wecom {
        agent_id: u64,
        message: WecomMessage,
    },
    Mp(MpMessage),
}

impl Outgoing {
    fn msg_type(&self) -> &'static str {
        match self {
            Self::Wecom { message, .. } => message.msg_type(),
            Self::Mp(message) => message.msg_type(),
        }
    }
}

/// The message the arguments describe, for an app of `platform` with `agent_id`.
fn outgoing(
    args: &NotifyArgs,
    app: &str,
    platform: Platform,
    agent_id: Option<u64>,
) -> Result<Outgoing, String> {
    let article = |title: &str| {
        let article = Article::new(title, args.url.clone().unwrap_or_default());
        let article = match args.text.as_str() {
            "" => article,
            text => article.description(text),
        };
        match &args.picurl {
            Some(picurl) => article.pic_url(picurl),
            None => article,
        }
    };
    match platform {
        Platform::Aibot => Err(format!(
            "app \"{app}\" is an AI bot: it has no API to send an active message with (its replies go back through the stream and each message's response_url)"
        )),
        Platform::Wecom => {
            let agent_id = agent_id.ok_or_else(|| {
                format!(
                    "app \"{app}\" has no agent_id: set the app's AgentId (应用管理 → the app) in the config"
                )
            })?;
            let message = if args.markdown {
                WecomMessage::markdown(&args.text)
            } else if let Some(title) = &args.textcard {
                WecomMessage::TextCard(TextCard {
                    title: title.clone(),
                    description: args.text.clone(),
                    url: args.url.clone().unwrap_or_default(),
                    btntxt: args.btntxt.clone(),
                })
            } else if let Some(title) = &args.news {
                WecomMessage::news(vec![article(title)])
            } else {
                WecomMessage::text(&args.text)
            };
            Ok(Outgoing::Wecom { agent_id, message })
        }
        Platform::Mp | Platform::Open => {
            if platform == Platform::Open && args.authorizer.is_none() {
                return Err(format!(
                    "app \"{app}\" is an Open Platform app: name the authorized account with --authorizer APPID"
                ));
            }
            if args.markdown || args.textcard.is_some() {
                return Err(format!(
                    "app \"{app}\" is an Official Account: customer messages are text or --news, not --markdown or --textcard"
                ));
            }
            Ok(Outgoing::Mp(match &args.news {
                Some(title) => MpMessage::news(article(title)),
                None => MpMessage::text(&args.text),
            }))
        }
    }
}

/// A hint for errcodes a person sending by hand is likely to meet: those of sending, then
/// the shared ones of the settings (`ApiError::hint`: caller IP, secret, Open Platform).
fn errcode_hint(error: &ApiError) -> Option<&'static str> {
    Some(match error.errcode()? {
        -1 => "the platform stayed busy through the retries; try again later",
        40001 | 40013 => "check the app's corp_id / app_id and secret",
        45009 => "the API's rate limit is reached (not retried); try again later",
        45015 => "the follower has not messaged the account in the last 48 hours (or unfollowed)",
        45047 => "too many customer messages to this follower since their last message",
        48001 | 48002 => "the account lacks this API's permission",
        81013 => "no valid recipient: not a member, or outside the app's visible range",
        _ => return error.hint(),
    })
}

/// `wxgate notify`: sends, prints the msgid, and exits 0, 1 (platform or network) or 2
/// (config or usage).
pub(super) fn notify(args: &NotifyArgs) -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        crate::logging::init_text();
    }
    let config = match load(args.config.clone()) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let app = match app_named(&config, &args.app) {
        Ok(app) => app,
        Err(code) => return code,
    };
    let outgoing = match outgoing(args, &app.name, app.platform, app.agent_id) {
        Ok(o) => o,
        Err(e) => {
            eout!("wxgate: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match runtime(Threads::One) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        // The configured store: with [store] or WXGATE_TABLE pointing at DynamoDB, the token
        // is the one the deployed functions share.
        let gateway = match Gateway::builder(&config).open().await {
            Ok(g) => g,
            Err(e) => return config_failure(&e),
        };
        let source = match (gateway.token_source(&app.name), &args.authorizer) {
            (Some(component), Some(authorizer)) if app.platform == Platform::Open => {
                component.authorizer(authorizer.as_str())
            }
            (Some(_), Some(_)) => {
                eout!("wxgate: --authorizer is for Open Platform apps");
                return ExitCode::from(EXIT_CONFIG);
            }
            (source, _) => source.cloned(),
        };
        let Some(source) = source.as_ref() else {
            eout!(
                "wxgate: app \"{}\" has no secret: set `secret` (the app's Secret / AppSecret) to call platform APIs",
                app.name
            );
            return ExitCode::from(EXIT_CONFIG);
        };
        let tokens = match gateway.tokens() {
            Ok(t) => t,
            Err(e) => return send_failure(&SendError::Token(e)),
        };
        let messenger = Messenger::new(tokens);
        let result = match &outgoing {
            Outgoing::Wecom { agent_id, message } => {
                messenger
                    .send_wecom(source, *agent_id, &args.to, message)
                    .await
            }
            Outgoing::Mp(message) => messenger.send_mp(source, &args.to, message).await,
        };
        match result {
            Ok(receipt) => {
                sent(&receipt, &outgoing, &app.name, app.platform);
                ExitCode::SUCCESS
            }
            Err(e) => {
                let code = send_failure(&e);
                if matches!(e.api_error(), Some(ApiError::Connect(_))) {
                    let (key, base) = match app.platform {
                        Platform::Wecom | Platform::Aibot => {
                            ("wecom_base_url", &config.api.wecom_base_url)
                        }
                        Platform::Mp | Platform::Open => ("mp_base_url", &config.api.mp_base_url),
                    };
                    eout!(
                        "  nothing answered at {base} (retried): check the network, [api] {key}, and [api] proxy or HTTPS_PROXY when the API is reached through a proxy"
                    );
                }
                code
            }
        }
    })
}

/// The msgid on stdout, a summary on stderr.
fn sent(receipt: &SendReceipt, outgoing: &Outgoing, app: &str, platform: Platform) {
    if let Some(msgid) = &receipt.msgid {
        out!("{msgid}");
    }
    let retries = match receipt.attempts {
        0 | 1 => String::new(),
        n => format!(", {n} attempts"),
    };
    let msgid = receipt
        .msgid
        .as_deref()
        .map_or(String::new(), |id| format!(", msgid {id}"));
    eout!(
        "sent {} with {platform} app \"{app}\"{msgid}{retries}",
        outgoing.msg_type()
    );
    if !receipt.invalid_users.is_empty() {
        eout!(
            "not delivered to {} invalid recipient(s): {}",
            receipt.invalid_users.len(),
            receipt.invalid_users.join("|")
        );
    }
}

/// Reports a failed send; exit 2 for what the config or the arguments must fix, else 1.
fn send_failure(err: &SendError) -> ExitCode {
    let code = match err {
        SendError::Invalid(_) | SendError::Token(TokenError::NoCredentials(_)) => EXIT_CONFIG,
        SendError::Api(_) | SendError::Token(_) => EXIT_REPLY_FAILED,
    };
    match err.api_error() {
        Some(api @ ApiError::Platform { errcode, errmsg }) => {
            let during = match err {
                SendError::Token(_) => "fetching the access token: ",
                _ => "",
            };
            eout!("wxgate: message not sent: {during}errcode {errcode}, errmsg \"{errmsg}\"");
            if let Some(hint) = errcode_hint(api) {
                eout!("  {hint}");
            }
        }
        _ => eout!("wxgate: {err}"),
    }
    ExitCode::from(code)
}
