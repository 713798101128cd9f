//! `wxgate send`: signs a message as the platform would and posts it to a gateway, then
//! verifies and prints the answer.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use super::{EXIT_CONFIG, EXIT_REPLY_FAILED, SendArgs, SendWhat, app_named, config_failure, load};
use crate::clock::unix_now;
use crate::crypto::fresh_nonce;
use crate::platform::Platform;
use crate::simulate::{self, Answer, Header, PlatformSim, SignedRequest};

fn nonce() -> String {
    String::from_utf8_lossy(&fresh_nonce()[..10]).into_owned()
}

fn build_request(args: &SendArgs, sim: &PlatformSim) -> Result<SignedRequest, String> {
    let now = args.timestamp.unwrap_or_else(unix_now);
    let to = match sim.platform() {
        Platform::Wecom => sim.receive_id(),
        Platform::Mp | Platform::Open => args.to.as_str(),
    };
    let header = Header {
        to,
        from: &args.from,
        create_time: now,
        agent_id: sim.agent_id(),
    };
    let msg_id = now * 1000 + u64::from(fresh_nonce()[0]);
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
    let sim = match PlatformSim::new(app) {
        Ok(sim) => sim
            .plaintext(args.plaintext)
            .authorizer(args.authorizer.clone()),
        Err(e) => return config_failure(&e),
    };
    let request = match build_request(args, &sim) {
        Ok(r) => r,
        Err(e) => {
            eout!("wxgate: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let url = format!(
        "{}{}",
        args.url.trim_end_matches('/'),
        request.path_and_query()
    );
    eout!("→ {} {}", request.method, url);
    let (status, body) = match post(&request, &url) {
        Ok(answer) => answer,
        Err(e) => {
            eout!("wxgate: request failed: {e}");
            return ExitCode::from(EXIT_REPLY_FAILED);
        }
    };
    match sim.check(&request, status, &body) {
        Ok(Answer::Verified(echo)) => {
            eout!("← {status}: URL verification passed");
            out!("{echo}");
            ExitCode::SUCCESS
        }
        Ok(Answer::Empty) => {
            eout!("← {status}: empty answer (no reply)");
            ExitCode::SUCCESS
        }
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
        Err(e) => {
            eout!("← {e}");
            ExitCode::from(EXIT_REPLY_FAILED)
        }
    }
}

/// Sends the request; the status and body.
fn post(request: &SignedRequest, url: &str) -> Result<(u16, String), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result: Result<_, reqwest::Error> = runtime.block_on(async {
        let client = crate::http::client_builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let builder = if request.method == http::Method::GET {
            client.get(url)
        } else {
            client
                .post(url)
                .header(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(request.body.clone())
        };
        let response = builder.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    });
    result.map_err(|e| crate::http::error_chain(&e.without_url()))
}
