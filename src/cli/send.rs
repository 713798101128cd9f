//! `wxgate send`: signs a message as the platform would and posts it to a gateway, then
//! verifies and prints the answer. An AI bot app's callbacks and its stream refreshes are
//! played by [`super::send_aibot`].

use std::io::Write as _;
use std::process::ExitCode;

use super::send_post::{Poster, nonce, report_plain};
use super::{EXIT_CONFIG, EXIT_REPLY_FAILED, SendArgs, SendWhat, app_named, config_failure, load};
use crate::clock::unix_now;
use crate::config::AppConfig;
use crate::platform::Platform;
use crate::simulate::{self, Answer, Header, PlatformSim, SignedRequest};

/// The `ToUserName` of an Official Account or Open Platform message without `--to`.
const DEFAULT_ACCOUNT: &str = "gh_wxgate";


fn build_request(args: &SendArgs, sim: &PlatformSim) -> Result<SignedRequest, String> {
    let now = args.timestamp.unwrap_or_else(unix_now);
    let to = match sim.platform() {
        Platform::Wecom | Platform::Aibot => sim.receive_id(),
        Platform::Mp | Platform::Open => args.to.as_deref().unwrap_or(DEFAULT_ACCOUNT),
    };
    let header = Header {
        to,
        from: &args.from,
        create_time: now,
        agent_id: sim.agent_id(),
    };
    let msg_id = simulate::fresh_msg_id(now);
    let result = match &args.what {
        SendWhat::Verify => {
            let echo = format!("{}{}", now, u32::from_le_bytes(*b"wxgt"));
            sim.verify_url(&echo, now, &nonce())
        }
        SendWhat::Text { text } => {
            sim.post(&simulate::text_xml(&header, text, msg_id), now, &nonce())
        }
        SendWhat::Event { name, key } => sim.post(
            &simulate::event_xml(&header, name, key.as_deref()),
            now,
            &nonce(),
        ),
        SendWhat::Location => sim.post(
            &simulate::location_xml(&header, 23.137_466, 113.352_425),
            now,
            &nonce(),
        ),
        SendWhat::Ticket { ticket } => {
            if sim.platform() != Platform::Open {
                return Err("`ticket` is for Open Platform apps".into());
            }
            sim.post(
                &simulate::verify_ticket_xml(sim.receive_id(), now, ticket),
                now,
                &nonce(),
            )
        }
        SendWhat::Authorized { code } | SendWhat::Updateauthorized { code } => {
            let info_type = if matches!(args.what, SendWhat::Authorized { .. }) {
                "authorized"
            } else {
                "updateauthorized"
            };
            let authorizer = open_push_authorizer(args, sim)?;
            sim.post(
                &simulate::authorized_xml(sim.receive_id(), now, info_type, authorizer, code),
                now,
                &nonce(),
            )
        }
        SendWhat::Unauthorized => {
            let authorizer = open_push_authorizer(args, sim)?;
            sim.post(
                &simulate::unauthorized_xml(sim.receive_id(), now, authorizer),
                now,
                &nonce(),
            )
        }
    };
    result.map_err(|e| e.to_string())
}

/// The account an authorization push is about: `--authorizer`, for Open Platform apps.
fn open_push_authorizer<'a>(args: &'a SendArgs, sim: &PlatformSim) -> Result<&'a str, String> {
    if sim.platform() != Platform::Open {
        return Err("authorization pushes are for Open Platform apps".into());
    }
    args.authorizer
        .as_deref()
        .ok_or_else(|| "name the authorizing account with --authorizer APPID".into())
}

pub(super) fn send(args: &SendArgs) -> ExitCode {
    let config = match load(args.config.clone()) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let app = match app_named(&config, &args.app) {
        Ok(app) => app,
        Err(code) => return code,
    };
    // An option that does not apply is refused: dropped silently, the callback would be
    // sent as something other than what was asked for.
    if let Err(why) = refuse_options(args, app) {
        eout!("wxgate: {why}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let sim = match PlatformSim::new(app) {
        Ok(sim) => sim
            .plaintext(args.plaintext)
            .authorizer(args.authorizer.clone()),
        Err(e) => return config_failure(&e),
    };
    let poster = match Poster::new() {
        Ok(p) => p,
        Err(e) => {
            eout!("wxgate: {e}");
            return ExitCode::from(EXIT_REPLY_FAILED);
        }
    };
    if app.platform == Platform::Aibot {
        return super::send_aibot::send(args, &sim, &poster);
    }
    let request = match build_request(args, &sim) {
        Ok(r) => r,
        Err(e) => {
            eout!("wxgate: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (status, body) = match poster.deliver(&args.url, &request, true) {
        Ok(answer) => answer,
        Err(code) => return code,
    };
    match sim.check(&request, status, &body) {
        Ok(Answer::Reply(xml)) => {
            let how = if request.query.contains("msg_signature=") {
                "encrypted reply, signature and receive id verified"
            } else {
                "plaintext reply"
            };
            eout!("← {status}: {how}");
            out!("{xml}");
            ExitCode::SUCCESS
        }
        other => report_plain(status, other),
    }
}

/// The options the app's platform has no use for, refused before anything is sent.
fn refuse_options(args: &SendArgs, app: &AppConfig) -> Result<(), String> {
    let (name, platform) = (&app.name, app.platform);
    // Only an Open Platform app has accounts to speak for.
    if args.authorizer.is_some() && platform != Platform::Open {
        return Err(format!(
            "--authorizer is only for Open Platform apps (platform = \"open\"); app \"{name}\" has platform = \"{platform}\": leave --authorizer out"
        ));
    }
    if platform == Platform::Aibot {
        let refused = if args.to.is_some() {
            Some("--to: an AI bot's callbacks carry no account id")
        } else if args.plaintext {
            Some("--plaintext: an AI bot's callbacks are always encrypted")
        } else {
            None
        };
        if let Some(refused) = refused {
            return Err(format!(
                "{refused}; app \"{name}\" is an AI bot (platform = \"aibot\"): leave it out"
            ));
        }
    } else if args.chat.is_some() {
        return Err(format!(
            "--chat is only for AI bot apps (platform = \"aibot\"); app \"{name}\" has platform = \"{platform}\": leave --chat out"
        ));
    }
    Ok(())
}
