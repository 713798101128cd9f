//! `wxgate doctor`: runs, in order, every check a newcomer's setup fails at and prints a
//! checklist, each failure with its cause and its fix (docs/doctor.md lists them all).
//!
//! 1. the config and the apps' keys ([`shape`]);
//! 2. the URLs for the console ([`routes`]);
//! 3. the deployed URL's reachability and TLS ([`reach`]);
//! 4. URL verification and a message round trip against it ([`callback`]);
//! 5. a token fetch with each secret, and 6. with `--to` a test message whose refusal is
//!    explained ([`api`]); both skipped for an AI bot, which has no secret and no API.
//!
//! Exit 0 when no check failed, 1 when one did, 2 for usage errors (an unknown app, a
//! `--url` that is no URL, no config file). Nothing printed holds a secret or a token.

mod api;
mod callback;
mod reach;
mod report;
mod routes;
mod shape;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_CONFIG, EXIT_REPLY_FAILED, Threads, app_named, config_failure, load, runtime};
use crate::config::{AppConfig, ConfigError};
use report::{Checklist, Line};

/// `wxgate doctor` options.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The config file [default: $WXGATE_CONFIG, else ./wxgate.toml]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Check only this app [default: every app].
    #[arg(long)]
    app: Option<String>,
    /// The deployed gateway's base URL (e.g. https://abc.execute-api.ap-east-1.amazonaws.com,
    /// or http://127.0.0.1:3000 for `wxgate serve`): reachability, TLS, URL verification and
    /// a message round trip are checked against it; without it they are skipped.
    #[arg(long)]
    url: Option<String>,
    /// Send a test message to this WeCom UserID or Official Account OpenID (needs --app when
    /// the config has several apps); a refusal is explained with the app's visible range or
    /// the 48-hour window.
    #[arg(long, requires = "app")]
    to: Option<String>,
}

/// Runs the checks; the exit code.
pub fn run(args: &DoctorArgs) -> ExitCode {
    let mut checks = Checklist::default();
    let config = match load(args.config.clone()) {
        Ok(c) => c,
        Err(e @ (ConfigError::Read { .. } | ConfigError::Missing)) => return config_failure(&e),
        Err(e) => {
            checks.push(Line::fail(
                "config",
                e.to_string(),
                "the file is not a config wxgate accepts (the deployed gateway would not start with it)",
                "fix what the message names; `wxgate check` reports the same",
            ));
            return finish(&checks);
        }
    };
    let apps: Vec<&AppConfig> = match &args.app {
        Some(name) => match app_named(&config, name) {
            Ok(app) => vec![app],
            Err(code) => return code,
        },
        None => config.apps.iter().collect(),
    };
    let target = match args.url.as_deref().map(|u| reach::Target::parse(u, &config.apps)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(why)) => {
            eout!("wxgate: {why}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let client = match crate::http::client_builder()
        .connect_timeout(reach::PLATFORM_WAIT)
        .timeout(std::time::Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eout!("wxgate: cannot build an HTTP client: {}", crate::http::error_chain(&e));
            return ExitCode::from(EXIT_REPLY_FAILED);
        }
    };
    let runtime = match runtime(Threads::One) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        // 1. Keys first: a bad one also stops the gateway from building, and this names it.
        let sims: Vec<_> = apps
            .iter()
            .map(|app| {
                let (line, sim) = shape::keys(app);
                checks.push(line);
                sim
            })
            .collect();
        if sims.iter().any(Option::is_none) {
            return;
        }
        let (plan, gateway) = match super::check::offline_gateway(&config) {
            Ok(built) => built,
            Err(e) => {
                checks.push(Line::fail(
                    "config",
                    e.to_string(),
                    "the gateway would not start with this config",
                    "fix what the message names; `wxgate check` reports the same",
                ));
                return;
            }
        };
        checks.push(Line::ok(
            "config",
            format!(
                "parses and builds the gateway, as `wxgate check` does: {} app(s), {}",
                config.apps.len(),
                super::check::describe(&plan)
            ),
        ));
        // 3. The host once, for every app.
        if let Some(target) = &target {
            checks.push(reach::host(&client, target).await);
            checks.push(reach::scheme(target, &apps));
        }
        let reachable = checks.passed(reach::HOST_CHECK);
        for (app, sim) in apps.iter().zip(sims.iter().flatten()) {
            checks.push(routes::console_urls(app, target.as_ref().map(|t| t.base.as_str())));
            match &target {
                None => checks.push(Line::skipped(
                    format!("{}: callbacks", app.name),
                    "pass --url to check reachability, URL verification and a message round trip",
                )),
                Some(_) if !reachable => checks.push(Line::skipped(
                    format!("{}: callbacks", app.name),
                    "the URL is not reachable (see above)",
                )),
                Some(target) => {
                    let route = reach::route(&client, target, app).await;
                    let route_ok = route.outcome == report::Outcome::Ok;
                    checks.push(route);
                    if route_ok {
                        let verified = match callback::verification(&client, target, app, sim).await {
                            Some(line) => {
                                let ok = line.outcome == report::Outcome::Ok;
                                checks.push(line);
                                ok
                            }
                            None => true,
                        };
                        if verified {
                            checks.push(callback::round_trip(&client, target, app, sim).await);
                        } else {
                            checks.push(Line::skipped(
                                format!("{}: message round trip", app.name),
                                "URL verification failed (see above)",
                            ));
                        }
                    }
                }
            }
            if app.platform == crate::platform::Platform::Aibot {
                // Its answers are the callbacks' own (streams, response_url): no secret, no API.
                checks.push(Line::skipped(
                    format!("{}: token fetch", app.name),
                    "an AI bot has no secret and calls no API: there is no token to fetch",
                ));
                let to = if args.to.is_some() { "; --to does not apply" } else { "" };
                checks.push(Line::skipped(
                    format!("{}: test message", app.name),
                    format!("an AI bot has no API to send an active message with{to}"),
                ));
                continue;
            }
            let token = api::token(&config, &gateway, &plan, app).await;
            let token_ok = token.outcome == report::Outcome::Ok;
            checks.push(token);
            if token_ok || args.to.is_none() {
                checks.push(api::test_send(&gateway, app, args.to.as_deref()).await);
            } else {
                checks.push(Line::skipped(
                    format!("{}: test message", app.name),
                    "no token (see above)",
                ));
            }
        }
    });
    finish(&checks)
}

/// The summary line and the exit code.
fn finish(checks: &Checklist) -> ExitCode {
    out!("{}", checks.summary());
    if checks.failed() > 0 {
        ExitCode::from(EXIT_REPLY_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
