//! `wxgate send` for an AI bot app (`platform = "aibot"`): URL verification, a text message
//! or an event as JSON callbacks, and for a message answered with an unfinished stream the
//! platform's refresh loop: a refresh callback for the stream about once a second, its text
//! printed as it grows, until it says `finish` or the platform's window has passed.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::send_post::{Poster, nonce, report_plain};
use super::{EXIT_CONFIG, EXIT_REPLY_FAILED, SendArgs, SendWhat};
use crate::clock::unix_now;
use crate::crypto::fresh_nonce;
use crate::simulate::{
    Answer, AnswerError, PlatformSim, SignedRequest, aibot_event_json, aibot_refresh_json,
    aibot_text_json,
};

/// What the checks of an AI bot's encrypted answer established, for the stderr lines.
const VERIFIED: &str = "encrypted reply, signature verified";

/// Plays the AI bot for `args`; the exit code.
pub(super) fn send(args: &SendArgs, sim: &PlatformSim, poster: &Poster) -> ExitCode {
    let now = args.timestamp.unwrap_or_else(unix_now);
    let msgid = message_id(now);
    let json = match &args.what {
        SendWhat::Verify => {
            let echo = format!("{}{}", now, u32::from_le_bytes(*b"wxgt"));
            let request = match sim.verify_url(&echo, now, &nonce()) {
                Ok(r) => r,
                Err(e) => return unsignable(&e),
            };
            return match poster.deliver(&args.url, &request, true) {
                Ok((status, body)) => report_plain(status, sim.check(&request, status, &body)),
                Err(code) => code,
            };
        }
        SendWhat::Text { text } => aibot_text_json(&msgid, &args.from, args.chat.as_deref(), text),
        SendWhat::Event { key: Some(_), .. } => {
            return usage("--key: an AI bot's events carry no EventKey; leave it out");
        }
        SendWhat::Event { name, key: None } => {
            if args.chat.is_some() {
                return usage("--chat: the AI bot events sent here are one-to-one; leave it out");
            }
            aibot_event_json(&msgid, &args.from, name)
        }
        SendWhat::Location
        | SendWhat::Ticket { .. }
        | SendWhat::Authorized { .. }
        | SendWhat::Updateauthorized { .. }
        | SendWhat::Unauthorized => {
            return usage(
                "an AI bot receives messages and events only: use `send verify`, `send text` or `send event`",
            );
        }
    };
    let request = match sim.post(&json, now, &nonce()) {
        Ok(r) => r,
        Err(e) => return unsignable(&e),
    };
    let started = Instant::now();
    let (status, body) = match poster.deliver(&args.url, &request, true) {
        Ok(answer) => answer,
        Err(code) => return code,
    };
    let reply = match sim.check(&request, status, &body) {
        Ok(Answer::Reply(reply)) => reply,
        other => return report_plain(status, other),
    };
    let Ok(reply) = serde_json::from_str::<Value>(&reply) else {
        eout!("← {status}: the decrypted reply is not JSON");
        return ExitCode::from(EXIT_REPLY_FAILED);
    };
    match reply["msgtype"].as_str() {
        Some("stream") => {}
        Some("text") => {
            eout!("← {status}: text reply ({VERIFIED})");
            out!("{}", reply["text"]["content"].as_str().unwrap_or_default());
            return ExitCode::SUCCESS;
        }
        // A type this command does not show as text: as it came.
        Some(other) => {
            eout!("← {status}: {other} reply ({VERIFIED})");
            out!("{reply}");
            return ExitCode::SUCCESS;
        }
        None => {
            eout!("← {status}: the decrypted reply has no msgtype");
            return ExitCode::from(EXIT_REPLY_FAILED);
        }
    }
    let Some(first) = Snapshot::of(&reply) else {
        eout!("← {status}: a stream reply without its id, finish and content");
        return ExitCode::from(EXIT_REPLY_FAILED);
    };
    let mut shown = Shown::default();
    if first.finish {
        eout!("← {status}: finished stream ({VERIFIED})");
        shown.show(&first.content);
        shown.end();
        return ExitCode::SUCCESS;
    }
    eout!(
        "← {status}: stream opened ({VERIFIED}); refreshing it every {} ms until it finishes",
        args.refresh_ms
    );
    shown.show(&first.content);
    let refresh = Refresh {
        args,
        sim,
        poster,
        stream_id: &first.id,
        msgid: &msgid,
    };
    let window = Duration::from_secs(args.stream_window_secs);
    let mut refreshes = 0u32;
    loop {
        poster.pause(Duration::from_millis(args.refresh_ms));
        if started.elapsed() >= window {
            shown.end();
            eout!(
                "wxgate: the stream did not finish within {} s of the message, after {refreshes} refreshes: the platform stops asking then and shows the text as it stood",
                window.as_secs()
            );
            return ExitCode::from(EXIT_REPLY_FAILED);
        }
        refreshes += 1;
        match refresh.once(refreshes) {
            Ok(Some(snapshot)) => {
                shown.show(&snapshot.content);
                if snapshot.finish {
                    shown.end();
                    eout!(
                        "← stream finished after {refreshes} refreshes, {:.1} s after the message",
                        started.elapsed().as_secs_f64()
                    );
                    return ExitCode::SUCCESS;
                }
            }
            // Missed: the platform asks again at the next tick.
            Ok(None) => {}
            Err(code) => {
                shown.end();
                return code;
            }
        }
    }
}

/// A message id of this command's own, unique per run: the gateway keys the stream on it.
fn message_id(now: u64) -> String {
    format!("wxgate-cli-{now}-{}", hex::encode(&fresh_nonce()[..6]))
}

fn usage(why: &str) -> ExitCode {
    eout!("wxgate: {why}");
    ExitCode::from(EXIT_CONFIG)
}

fn unsignable(e: &crate::error::ProtocolError) -> ExitCode {
    eout!("wxgate: {e}");
    ExitCode::from(EXIT_CONFIG)
}

/// One stream answer: `{"msgtype":"stream","stream":{"id","finish","content"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    id: String,
    finish: bool,
    content: String,
}

impl Snapshot {
    fn of(reply: &Value) -> Option<Self> {
        let stream = &reply["stream"];
        Some(Self {
            id: stream["id"].as_str()?.to_owned(),
            finish: stream["finish"].as_bool()?,
            content: stream["content"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// The refresh callbacks of one stream.
struct Refresh<'a> {
    args: &'a SendArgs,
    sim: &'a PlatformSim,
    poster: &'a Poster,
    stream_id: &'a str,
    msgid: &'a str,
}

impl Refresh<'_> {
    /// Refresh number `n`: the stream as the gateway answers it; `None` when the gateway
    /// failed this once (5xx: the platform asks again); the exit code when it cannot go on.
    fn once(&self, n: u32) -> Result<Option<Snapshot>, ExitCode> {
        // Each refresh is a callback of its own, with an id of its own.
        let json = aibot_refresh_json(
            &format!("{}-refresh-{n}", self.msgid),
            &self.args.from,
            self.stream_id,
        );
        let request: SignedRequest = self
            .sim
            .post(&json, unix_now(), &nonce())
            .map_err(|e| unsignable(&e))?;
        let (status, body) = self.poster.deliver(&self.args.url, &request, false)?;
        let reply = match self.sim.check(&request, status, &body) {
            Ok(Answer::Reply(reply)) => reply,
            Ok(Answer::Empty | Answer::Verified(_)) => {
                eout!("← refresh {n}: {status}, but no stream answer");
                return Err(ExitCode::from(EXIT_REPLY_FAILED));
            }
            Err(AnswerError::Status { status, body }) if status >= 500 => {
                eout!("← refresh {n}: HTTP {status}: {body} (the platform asks again)");
                return Ok(None);
            }
            Err(e) => {
                eout!("← refresh {n}: {e}");
                return Err(ExitCode::from(EXIT_REPLY_FAILED));
            }
        };
        let snapshot = serde_json::from_str::<Value>(&reply)
            .ok()
            .and_then(|v| Snapshot::of(&v));
        match snapshot {
            Some(s) if s.id == self.stream_id => Ok(Some(s)),
            Some(_) => {
                eout!("← refresh {n}: the answer is another stream's");
                Err(ExitCode::from(EXIT_REPLY_FAILED))
            }
            None => {
                eout!("← refresh {n}: the answer is not a stream");
                Err(ExitCode::from(EXIT_REPLY_FAILED))
            }
        }
    }
}

/// The stream's text on stdout as it grows: each refresh prints only what was added, so a
/// terminal shows it growing; a text that was replaced rather than extended is printed
/// whole on a new line.
#[derive(Debug, Default)]
struct Shown {
    text: String,
}

impl Shown {
    fn show(&mut self, content: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = self.write(&mut stdout, content);
        let _ = stdout.flush();
    }

    fn write(&mut self, out: &mut impl std::io::Write, content: &str) -> std::io::Result<()> {
        if content == self.text {
            return Ok(());
        }
        match content.strip_prefix(self.text.as_str()) {
            Some(added) => out.write_all(added.as_bytes())?,
            None => {
                if !self.text.is_empty() {
                    out.write_all(b"\n")?;
                }
                out.write_all(content.as_bytes())?;
            }
        }
        content.clone_into(&mut self.text);
        Ok(())
    }

    /// Ends the text's line, if any was printed.
    fn end(&mut self) {
        if !self.text.is_empty() {
            out!();
            self.text.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(steps: &[&str]) -> String {
        let mut shown = Shown::default();
        let mut out = Vec::new();
        for step in steps {
            shown.write(&mut out, step).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_growing_text_prints_only_what_was_added() {
        assert_eq!(printed(&["", "Hel", "Hel", "Hello", "Hello, 世界"]), "Hello, 世界");
    }

    #[test]
    fn a_replaced_text_is_printed_whole_on_a_new_line() {
        assert_eq!(
            printed(&["Hel", "Hello", "Bonjour", "Bonjour!"]),
            "Hello\nBonjour!"
        );
        // Shorter is a replacement too.
        assert_eq!(printed(&["Hello", "Hell"]), "Hello\nHell");
    }

    #[test]
    fn a_stream_answer_is_read_or_refused() {
        let v: Value = serde_json::from_str(
            r#"{"msgtype":"stream","stream":{"id":"wxgAB","finish":false,"content":"hi"}}"#,
        )
        .unwrap();
        assert_eq!(
            Snapshot::of(&v),
            Some(Snapshot {
                id: "wxgAB".into(),
                finish: false,
                content: "hi".into()
            })
        );
        let v: Value = serde_json::from_str(r#"{"msgtype":"stream","stream":{}}"#).unwrap();
        assert_eq!(Snapshot::of(&v), None);
    }

    #[test]
    fn message_ids_differ_between_runs() {
        assert_ne!(message_id(1), message_id(1));
        assert!(message_id(7).starts_with("wxgate-cli-7-"));
    }
}
