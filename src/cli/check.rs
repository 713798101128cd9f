//! `wxgate check`: loads the config, builds the gateway without serving, and says what it
//! would serve; warnings for settings that work but weaken it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{config_failure, load};
use crate::config::StorePlan;
use crate::gateway::Gateway;
use crate::platform::Platform;

pub(super) fn check(config: Option<PathBuf>) -> ExitCode {
    let config = match load(config) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let plan = match config.store.plan_from_env() {
        Ok(plan) => plan,
        Err(e) => return config_failure(&e),
    };
    // Over the embedded store: checking makes no request to a table.
    let gateway = match Gateway::builder(&config)
        .store(std::sync::Arc::default())
        .build()
    {
        Ok(gateway) => gateway,
        Err(e) => return config_failure(&e),
    };
    out!(
        "config ok: {} app(s), {}",
        config.apps.len(),
        describe(&plan)
    );
    for app in &config.apps {
        // The upstream's host only: its path may carry a key.
        let forward = app.reply.forward.as_deref().map_or(String::new(), |url| {
            let host = url.split("://").nth(1).unwrap_or(url).split('/').next();
            format!(
                "  (forward → {}; {})",
                host.unwrap_or_default(),
                late_replies(&gateway, &app.name)
            )
        });
        out!(
            "  {:<6} {:<16} {}{forward}",
            app.platform.as_str(),
            app.name,
            app.route()
        );
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

/// How the store is described to a person.
fn describe(plan: &StorePlan) -> String {
    match plan {
        StorePlan::Memory => crate::store::describe_memory(),
        StorePlan::Dynamodb { table } => crate::store::describe_table(table),
    }
}

/// What becomes of an upstream's reply that misses the budget, for `check`.
fn late_replies(gateway: &Gateway, app: &str) -> String {
    match gateway.late_reply_route(app) {
        Some(Ok(())) => "a reply later than the budget is sent as an active message".into(),
        Some(Err(why)) => format!("a reply later than the budget is dropped: {why}"),
        None => "a reply later than the budget is dropped".into(),
    }
}
