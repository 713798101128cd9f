//! `wxgate check`: loads the config, builds the gateway without serving, and says what it
//! would serve; warnings for settings that work but weaken it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{config_failure, load};
use crate::config::{Config, ConfigError, StorePlan};
use crate::gateway::Gateway;
use crate::platform::Platform;

pub(super) fn check(config: Option<PathBuf>) -> ExitCode {
    let config = match load(config) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let (plan, gateway) = match offline_gateway(&config) {
        Ok(built) => built,
        Err(e) => return config_failure(&e),
    };
    out!(
        "config ok: {} app(s), {}",
        config.apps.len(),
        describe(&plan)
    );
    for app in &config.apps {
        let answers = if app.platform == Platform::Aibot {
            aibot_answers(&gateway, app)
        } else {
            app.reply.forward.as_deref().map_or(String::new(), |url| {
                format!(
                    "  (forward → {}; {})",
                    host_of(url),
                    late_replies(&gateway, &app.name)
                )
            })
        };
        out!(
            "  {:<6} {:<16} {}{answers}",
            app.platform.as_str(),
            app.name,
            app.route()
        );
    }
    for app in config.apps.iter().filter(|a| a.platform == Platform::Open) {
        component(&gateway, app, &plan);
    }
    if let Some(proxy) = gateway.api_proxy() {
        // Where it was configured, never the URL: it may carry a password.
        out!(
            "  platform API calls go through a proxy ({})",
            proxy.origin()
        );
    }
    for app in config
        .apps
        .iter()
        .filter(|a| a.platform == Platform::Mp && a.encoding_aes_key.is_none())
    {
        eout!(
            "warning: app \"{}\" is in plaintext mode: its messages are not encrypted and their bodies not signed, so a signed URL that leaks (a proxy's or an access log) lets anyone post messages as any follower within gateway.replay_window_secs (each signature is bound to its first body). Set the account to safe mode (安全模式) and configure encoding_aes_key.",
            app.name
        );
    }
    ExitCode::SUCCESS
}

/// The store the config plans and the gateway it builds, over the embedded store: checking
/// makes no request to a table. What `check` and `doctor` accept as a valid config.
pub(super) fn offline_gateway(config: &Config) -> Result<(StorePlan, Gateway), ConfigError> {
    let plan = config.store.plan_from_env()?;
    let gateway = Gateway::builder(config)
        .store(std::sync::Arc::default())
        .build()?;
    Ok((plan, gateway))
}

/// How the store is described to a person.
pub(super) fn describe(plan: &StorePlan) -> String {
    match plan {
        StorePlan::Memory => crate::store::describe_memory(),
        StorePlan::Dynamodb { table } => crate::store::describe_table(table),
    }
}

/// The host of an upstream's URL: its path or query may carry a key.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// What an AI bot app answers: its rules (as finished streams), then the bot its messages
/// stream from, and whether `enter_chat` is welcomed.
fn aibot_answers(gateway: &Gateway, app: &crate::config::AppConfig) -> String {
    let bot = gateway.bot();
    let reply = &app.reply;
    let streams = match (bot.upstream(&app.name), bot.llm(&app.name)) {
        (Some(_), _) => format!(
            "rules; forward → {}, streamed",
            host_of(reply.forward.as_deref().unwrap_or_default())
        ),
        (None, Some(_)) => format!(
            "rules; llm → {}, {}, streamed",
            host_of(reply.llm.as_deref().unwrap_or_default()),
            reply.llm_model.as_deref().unwrap_or_default()
        ),
        (None, None) => {
            "rules only: a message no rule answers gets a finished empty stream".to_owned()
        }
    };
    let welcome = if reply.enter_chat.is_some() {
        "; enter_chat welcomed"
    } else {
        ""
    };
    format!("  ({streams}{welcome})")
}

/// What becomes of an upstream's reply that misses the budget, for `check`.
fn late_replies(gateway: &Gateway, app: &str) -> String {
    match gateway.late_reply_route(app) {
        Some(Ok(())) => "a reply later than the budget is sent as an active message".into(),
        Some(Err(why)) => format!("a reply later than the budget is dropped: {why}"),
        None => "a reply later than the budget is dropped".into(),
    }
}

/// What an Open Platform component has and lacks: its secret (every API call), its
/// authorization page domain, and where its ticket comes from.
fn component(gateway: &Gateway, app: &crate::config::AppConfig, plan: &StorePlan) {
    let name = &app.name;
    out!("  {:<6} {:<16} /{}/{name}/$APPID$ (messages of authorized accounts)", "", "", "open");
    match &app.public_url {
        Some(url) => out!(
            "  {:<6} {:<16} {}/open/{name}/authorize (authorization page; `wxgate open link` signs links to it)",
            "", "", url.trim_end_matches('/')
        ),
        None => eout!(
            "warning: open app \"{name}\" has no public_url: the authorization page (/open/{name}/authorize) needs the gateway's URL on the 授权发起页域名"
        ),
    }
    if gateway.token_source(name).is_none() {
        eout!(
            "warning: open app \"{name}\" has no secret (the component AppSecret): tickets are stored, but no component token, no authorization, no authorizer token and no active message is possible"
        );
    }
    let ticket = match plan {
        StorePlan::Memory => "its component_verify_ticket arrives every 10 minutes at POST /open/{name} and is kept in the embedded store (lost on restart; a push is requested when needed)".replace("{name}", name),
        StorePlan::Dynamodb { .. } => format!("its ticket age and authorizations: `wxgate open status --app {name}`"),
    };
    out!("  {:<6} {:<16} {ticket}", "", "");
    eout!(
        "note: open app \"{name}\": the component APIs answer 61004 to callers outside the component's IP whitelist (白名单IP地址列表); a Lambda function needs a fixed egress for them (docs/fixed-egress.md)"
    );
}
