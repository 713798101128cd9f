//! Check 4: the platform's own requests against the deployed URL, signed and encrypted with
//! this config's token and key as the platform signs them ([`PlatformSim`], what `wxgate
//! send` uses): URL verification must echo the plaintext, and a message's reply must
//! decrypt with the app's key and carry a valid signature, all within the platform's 5 s.

use std::time::{Duration, Instant};

use super::reach::{PLATFORM_WAIT, Target, first_line};
use super::report::Line;
use crate::clock::unix_now;
use crate::cli::send_post::nonce;
use crate::config::AppConfig;
use crate::platform::Platform;
use crate::simulate::{self, Answer, AnswerError, Header, PlatformSim, SignedRequest};

/// How long doctor waits for an answer: past the platform's 5 s, so that a slow gateway is
/// told apart from one that never answers.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// The account an Open Platform message is addressed to: no authorization is needed to
/// receive one, so any AppID-shaped id does.
const PROBE_AUTHORIZER: &str = "wx0000000000000000";

/// The sender of doctor's message: a bot that forwards it sees who sent it.
const PROBE_SENDER: &str = "wxgate-doctor";

/// URL verification as the console runs it when the URL is saved; `None` for open apps,
/// whose URLs the Open Platform does not verify with an echo.
pub(super) async fn verification(
    client: &reqwest::Client,
    target: &Target,
    app: &AppConfig,
    sim: &PlatformSim,
) -> Option<Line> {
    if app.platform == Platform::Open {
        return None;
    }
    let what = format!("{}: URL verification", app.name);
    let now = unix_now();
    let echo = format!("doctor{now}");
    let request = match sim.verify_url(&echo, now, &nonce()) {
        Ok(r) => r,
        Err(e) => return Some(unsignable(what, &e)),
    };
    Some(exchange(client, target, app, sim, &request, what).await)
}

/// A text message from [`PROBE_SENDER`] and its answer.
pub(super) async fn round_trip(
    client: &reqwest::Client,
    target: &Target,
    app: &AppConfig,
    sim: &PlatformSim,
) -> Line {
    let what = format!("{}: message round trip", app.name);
    let sim = if app.platform == Platform::Open {
        sim.clone().authorizer(Some(PROBE_AUTHORIZER.to_owned()))
    } else {
        sim.clone()
    };
    let now = unix_now();
    let to = match app.platform {
        Platform::Wecom | Platform::Aibot => sim.receive_id().to_owned(),
        Platform::Mp | Platform::Open => "gh_wxgatedoctor".to_owned(),
    };
    let header = Header {
        to: &to,
        from: PROBE_SENDER,
        create_time: now,
        agent_id: sim.agent_id(),
    };
    let msg_id = simulate::fresh_msg_id(now);
    let message = if app.platform == Platform::Aibot {
        // The AI bot's messages are JSON, keyed by a msgid of the platform's choosing.
        simulate::aibot_text_json(
            &format!("wxgate-doctor-{msg_id}"),
            PROBE_SENDER,
            None,
            "wxgate doctor",
        )
    } else {
        simulate::text_xml(&header, "wxgate doctor", msg_id)
    };
    let request = match sim.post(&message, now, &nonce()) {
        Ok(r) => r,
        Err(e) => return unsignable(what, &e),
    };
    exchange(client, target, app, &sim, &request, what).await
}

fn unsignable(what: String, e: &crate::error::ProtocolError) -> Line {
    Line::fail(
        what,
        format!("cannot sign the request: {e}"),
        "the app's token or key cannot be used",
        "fix the keys check above first",
    )
}

async fn exchange(
    client: &reqwest::Client,
    target: &Target,
    app: &AppConfig,
    sim: &PlatformSim,
    request: &SignedRequest,
    what: String,
) -> Line {
    let url = format!("{}{}", target.base, request.path_and_query());
    let builder = if request.method == http::Method::GET {
        client.get(&url)
    } else {
        let content_type = if app.platform == Platform::Aibot {
            "application/json"
        } else {
            "text/xml; charset=utf-8"
        };
        client
            .post(&url)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(request.body.clone())
    };
    let started = Instant::now();
    let sent = async {
        let response = builder.send().await?;
        let status = response.status().as_u16();
        Ok::<_, reqwest::Error>((status, response.text().await?))
    };
    let (status, body) = match sent.await {
        Ok(answer) => answer,
        Err(e) if e.is_timeout() => {
            return Line::fail(
                what,
                format!("no answer within {} s", ANSWER_WAIT.as_secs()),
                "the gateway (or something in front of it) holds the request; the platform gives up after 5 s and retries",
                "read the gateway's logs; lower gateway.budget_ms or reply.forward_timeout_ms if a bot is slow",
            );
        }
        Err(e) => {
            return Line::fail(
                what,
                format!("request failed: {}", crate::http::error_chain(&e.without_url())),
                "the connection broke before an answer came",
                "read the gateway's logs",
            );
        }
    };
    let took = started.elapsed();
    let outcome = sim.check(request, status, &body);
    if took > PLATFORM_WAIT && outcome.is_ok() {
        return Line::fail(
            what,
            format!("answered in {} ms", took.as_millis()),
            "the platform waits 5 s: a slower answer counts as none, and the message is sent again",
            "keep gateway.budget_ms at 4000 or less (the default); on Lambda, raise the memory size to shorten cold starts",
        );
    }
    let ms = took.as_millis();
    match outcome {
        Ok(Answer::Verified(_)) => Line::ok(what, format!("the plaintext echo came back in {ms} ms")),
        Ok(Answer::Empty) => Line::ok(
            what,
            format!("accepted in {ms} ms, no reply (nothing to verify; the rules or the bot chose none)"),
        ),
        Ok(Answer::Reply(reply)) if app.platform == Platform::Aibot => {
            Line::ok(what, format!("the reply decrypted with this key and its signature verified: {}, in {ms} ms", aibot_answer(&reply)))
        }
        Ok(Answer::Reply(_)) => {
            let how = if request.query.contains("msg_signature=") {
                "the reply decrypted with this key and its signature verified"
            } else {
                "a plaintext reply"
            };
            Line::ok(what, format!("{how}, in {ms} ms"))
        }
        Err(e) => refusal(what, app, status, &body, &e),
    }
}

/// What an AI bot's answer to a message was: a stream, finished (a rule answered) or opened
/// (the bot is answering; the platform would refresh it), both as the platform expects.
fn aibot_answer(reply: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(reply).unwrap_or_default();
    match (value["msgtype"].as_str(), value["stream"]["finish"].as_bool()) {
        (Some("stream"), Some(true)) => "a finished stream (a rule answered)".into(),
        (Some("stream"), Some(false)) => {
            "a stream opened (the bot answers it; the platform refreshes it)".into()
        }
        (Some(other), _) => format!("a {other} reply"),
        (None, _) => "a reply".into(),
    }
}

/// What the platform would make of a refused or wrong answer, by the official error code
/// wxgate puts in its refusals.
fn refusal(what: String, app: &AppConfig, status: u16, body: &str, error: &AnswerError) -> Line {
    let first = first_line(body);
    let id_field = match app.platform {
        Platform::Wecom => "corp_id",
        Platform::Mp | Platform::Open => "app_id",
        Platform::Aibot => "receive id",
    };
    let redeploy = "then make the deployed config (WXGATE_CONFIG) the same and redeploy";
    let code = ["-40001", "-40005", "-40007", "-40008", "-40010", "-40004"]
        .into_iter()
        .find(|c| body.contains(c));
    match (status, code) {
        (401, Some("-40001")) => Line::fail(
            what,
            format!("HTTP 401: {first}"),
            "signature mismatch: the gateway's token differs from this config's — the console shows \"token验证失败\" (token verification failed) for this",
            format!("copy the Token from the console into token here, {redeploy}"),
        ),
        (400, Some("-40005")) => Line::fail(
            what,
            format!("HTTP 400: {first}"),
            format!("receive id mismatch: the gateway's {id_field} differs from this config's"),
            format!("set {id_field} to the console's value here, {redeploy}"),
        ),
        (400, Some("-40007" | "-40008" | "-40010")) => Line::fail(
            what,
            format!("HTTP 400: {first}"),
            "decryption failed: the gateway's EncodingAESKey differs from this config's (the console's key was regenerated, or the wrong app's key was copied)",
            format!("copy the EncodingAESKey from the console into encoding_aes_key here, {redeploy}"),
        ),
        (400, Some("-40004")) => Line::fail(
            what,
            format!("HTTP 400: {first}"),
            "the gateway holds an EncodingAESKey that is not 43 base64 characters",
            format!("fix encoding_aes_key in the deployed config, {redeploy}"),
        ),
        (403, _) if body.contains("replay window") => Line::fail(
            what,
            format!("HTTP 403: {first}"),
            "the timestamp is outside the gateway's replay window: this machine's clock or the gateway's is off",
            "synchronise the clocks (NTP); the platform's timestamps are exact",
        ),
        (404, _) => Line::fail(
            what,
            format!("HTTP 404: {first}"),
            "no app of this name is served at this URL",
            "fix the app name or the URL's path (see the route check)",
        ),
        (200, _) => Line::fail(
            what,
            format!("{error}"),
            "something answered 200 but not as wxgate does: another server at this URL, or a proxy that rewrites bodies",
            "point the URL at the gateway itself",
        ),
        _ => Line::fail(
            what,
            format!("HTTP {status}: {first}"),
            "the platform counts any answer but 200 as a failure",
            "read the gateway's logs for this request",
        ),
    }
}
