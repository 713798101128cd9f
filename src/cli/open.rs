//! `wxgate open`: operating an Open Platform component — its authorizations, its
//! authorization link, its ticket, its authorizers' tokens — over the configured store
//! (the deployed functions' table with `[store]` or `$WXGATE_TABLE`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_CONFIG, EXIT_REPLY_FAILED, Threads, app_named, config_failure, load, runtime};
use crate::clock::unix_now;
use crate::gateway::{AuthType, Gateway, MAX_LINK_LIFETIME_SECS};
use crate::platform::Platform;
use crate::store::{OpenStore, TokenStore};
use crate::wechat::open::{Recovered, recover_refresh_token, request_ticket_push};
use crate::wechat::{TokenProvider, TokenSource};

/// `wxgate open` options.
#[derive(Debug, clap::Args)]
pub struct OpenArgs {
    /// The config file [default: $WXGATE_CONFIG, else ./wxgate.toml]
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The Open Platform app (component).
    #[arg(long, global = true)]
    app: Option<String>,
    #[command(subcommand)]
    what: OpenWhat,
}

#[derive(Debug, clap::Subcommand)]
enum OpenWhat {
    /// The component's state: ticket age, authorizations by state, what is missing. JSON.
    Status,
    /// The authorizations, one JSON object per line: AppID, state, name, original id,
    /// permission sets, times. No refresh token unless --show-tokens.
    List {
        /// Include each refresh token (a credential: keep the output safe).
        #[arg(long)]
        show_tokens: bool,
    },
    /// Print a signed link to the authorization page (send it to the account's admin).
    Link {
        /// Which accounts the page offers: 1 Official Accounts, 2 Mini Programs, 3 both.
        #[arg(long, default_value = "3")]
        auth_type: String,
        /// Only this account may authorize (its AppID).
        #[arg(long)]
        biz_appid: Option<String>,
        /// How long the link works, in hours (at most 720).
        #[arg(long, default_value_t = 24)]
        valid_hours: u64,
    },
    /// Ask WeChat to push a component_verify_ticket now (at most once per 10 minutes for
    /// the whole fleet).
    PushTicket,
    /// Drop an authorizer's cached access token and fetch a new one with its refresh token.
    Refresh {
        /// The authorizer's AppID.
        #[arg(long)]
        authorizer: String,
    },
    /// Look an authorizer up in api_get_authorizer_list and store its refresh token if the
    /// stored one differs or is missing.
    Recover {
        /// The authorizer's AppID.
        #[arg(long)]
        authorizer: String,
    },
}

/// Runs the subcommand: exit 0, 1 (the platform or the store failed) or 2 (config, usage).
pub fn run(args: &OpenArgs) -> ExitCode {
    let config = match load(args.config.clone()) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let names: Vec<&str> = config
        .apps
        .iter()
        .filter(|a| a.platform == Platform::Open)
        .map(|a| a.name.as_str())
        .collect();
    let name = match (&args.app, names.as_slice()) {
        (Some(name), _) => name.clone(),
        (None, [only]) => (*only).to_owned(),
        (None, _) => {
            eout!(
                "wxgate: name the component with --app (open apps: {})",
                names.join(", ")
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let app = match app_named(&config, &name) {
        Ok(app) if app.platform == Platform::Open => app,
        Ok(_) => {
            eout!("wxgate: app \"{name}\" is not an open app");
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(code) => return code,
    };
    let runtime = match runtime(Threads::One) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let gateway = match Gateway::builder(&config).open().await {
            Ok(g) => g,
            Err(e) => return config_failure(&e),
        };
        let component_id = app.app_id.clone().unwrap_or_default();
        match &args.what {
            OpenWhat::Status => status(&gateway, &app.name, &component_id).await,
            OpenWhat::List { show_tokens } => list(&gateway, &component_id, *show_tokens).await,
            OpenWhat::Link {
                auth_type,
                biz_appid,
                valid_hours,
            } => link(&gateway, &app.name, auth_type, biz_appid.as_deref(), *valid_hours),
            OpenWhat::PushTicket => with_component(&gateway, &app.name, |tokens, component| {
                Box::pin(async move {
                    if request_ticket_push(tokens, component).await {
                        out!("asked WeChat to push a component_verify_ticket");
                        ExitCode::SUCCESS
                    } else {
                        eout!(
                            "wxgate: no push requested: one was requested within the last 10 minutes, or the request failed (see the log with RUST_LOG=info)"
                        );
                        ExitCode::from(EXIT_REPLY_FAILED)
                    }
                })
            })
            .await,
            OpenWhat::Refresh { authorizer } => {
                with_component(&gateway, &app.name, |tokens, component| {
                    Box::pin(async move {
                        let Some(source) = component.authorizer(authorizer.as_str()) else {
                            return ExitCode::from(EXIT_CONFIG);
                        };
                        tokens.forget(&source).await;
                        match tokens.get(&source).await {
                            Ok(_) => {
                                out!("refreshed the access token of {authorizer}");
                                ExitCode::SUCCESS
                            }
                            Err(e) => {
                                eout!("wxgate: {e}");
                                ExitCode::from(EXIT_REPLY_FAILED)
                            }
                        }
                    })
                })
                .await
            }
            OpenWhat::Recover { authorizer } => {
                with_component(&gateway, &app.name, |tokens, component| {
                    Box::pin(async move {
                        match recover_refresh_token(tokens, component, authorizer).await {
                            Ok(outcome) => {
                                out!("{}", recovered(outcome));
                                if outcome == Recovered::NotListed {
                                    ExitCode::from(EXIT_REPLY_FAILED)
                                } else {
                                    ExitCode::SUCCESS
                                }
                            }
                            Err(e) => {
                                eout!("wxgate: {e}");
                                ExitCode::from(EXIT_REPLY_FAILED)
                            }
                        }
                    })
                })
                .await
            }
        }
    })
}

fn recovered(outcome: Recovered) -> &'static str {
    match outcome {
        Recovered::Unchanged => "the stored refresh token is the listed one; nothing changed",
        Recovered::Replaced => "stored the refresh token from api_get_authorizer_list",
        Recovered::Stored => "stored the authorization from api_get_authorizer_list",
        Recovered::NotListed => {
            "the account is not in api_get_authorizer_list: it must authorize again"
        }
        Recovered::Raced => "the stored authorization changed meanwhile; nothing written",
    }
}

type Boxed<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ExitCode> + 'a>>;

/// Runs `f` with the token provider and the component's credentials.
async fn with_component<'g>(
    gateway: &'g Gateway,
    app: &str,
    f: impl FnOnce(&'g TokenProvider, &'g TokenSource) -> Boxed<'g>,
) -> ExitCode {
    let Some(component) = gateway.token_source(app) else {
        eout!("wxgate: app \"{app}\" has no secret: set `secret` (the component AppSecret)");
        return ExitCode::from(EXIT_CONFIG);
    };
    match gateway.tokens() {
        Ok(tokens) => f(tokens, component).await,
        Err(e) => {
            eout!("wxgate: {e}");
            ExitCode::from(EXIT_REPLY_FAILED)
        }
    }
}

async fn status(gateway: &Gateway, app: &str, component: &str) -> ExitCode {
    let store = gateway.store();
    let now = unix_now();
    let ticket = match store.ticket(component).await {
        Ok(t) => t,
        Err(e) => {
            eout!("wxgate: cannot read the store: {e}");
            return ExitCode::from(EXIT_REPLY_FAILED);
        }
    };
    let authorizations = match store.authorizations(component).await {
        Ok(list) => list,
        Err(e) => {
            eout!("wxgate: cannot read the store: {e}");
            return ExitCode::from(EXIT_REPLY_FAILED);
        }
    };
    let count = |state| {
        authorizations
            .iter()
            .filter(|a| a.state == state)
            .count()
    };
    let push = store
        .token(&crate::store::ticket_push_key(component), crate::clock::now_ms())
        .await
        .ok()
        .map(|r| r.lease_until_ms)
        .filter(|&until| until != 0);
    let status = serde_json::json!({
        "app": app,
        "component_appid": component,
        "store": store.describe(),
        "secret": gateway.token_source(app).is_some(),
        "ticket": ticket.as_ref().map(|t| serde_json::json!({
            "create_time": t.create_time,
            "age_secs": t.age_secs(now),
            "valid": t.is_valid_at(now),
        })),
        "ticket_push_throttled_until_ms": push,
        "authorizations": {
            "authorized": count(crate::store::AuthorizationState::Authorized),
            "revoked": count(crate::store::AuthorizationState::Revoked),
            "broken": count(crate::store::AuthorizationState::Broken),
        },
    });
    out!("{status}");
    ExitCode::SUCCESS
}

async fn list(gateway: &Gateway, component: &str, show_tokens: bool) -> ExitCode {
    match gateway.store().authorizations(component).await {
        Ok(list) => {
            for a in list {
                let mut line = serde_json::json!({
                    "authorizer_appid": a.authorizer_app_id,
                    "state": a.state,
                    "nick_name": a.nick_name,
                    "user_name": a.user_name,
                    "func_info": a.func_info,
                    "event_time": a.event_time,
                    "updated_at_ms": a.updated_at_ms,
                    "reason": a.reason,
                });
                if show_tokens {
                    line["refresh_token"] = serde_json::json!(a.refresh_token);
                }
                out!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eout!("wxgate: cannot read the store: {e}");
            ExitCode::from(EXIT_REPLY_FAILED)
        }
    }
}

fn link(
    gateway: &Gateway,
    app: &str,
    auth_type: &str,
    biz_appid: Option<&str>,
    valid_hours: u64,
) -> ExitCode {
    let Some(auth_type) = AuthType::from_code(auth_type) else {
        eout!("wxgate: --auth-type must be 1 (Official Accounts), 2 (Mini Programs) or 3 (both)");
        return ExitCode::from(EXIT_CONFIG);
    };
    let valid = valid_hours.saturating_mul(3600);
    if valid == 0 || valid > MAX_LINK_LIFETIME_SECS {
        eout!("wxgate: --valid-hours must be 1..=720");
        return ExitCode::from(EXIT_CONFIG);
    }
    match gateway.authorize_link(app, auth_type, biz_appid, unix_now() + valid) {
        Ok(link) => {
            out!("{link}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eout!("wxgate: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
