//! How `wxgate send` reaches the gateway: the signed request posted to the URL `--url`
//! names, a failure to get an answer said with what to do, and the answers every platform
//! prints alike.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use super::send_url::{self, request_url};
use super::{EXIT_CONFIG, EXIT_REPLY_FAILED};
use crate::crypto::fresh_nonce;
use crate::simulate::{Answer, AnswerError, SignedRequest};

/// A fresh nonce for a callback's signature.
pub(super) fn nonce() -> String {
    String::from_utf8_lossy(&fresh_nonce()[..10]).into_owned()
}

/// Prints an answer that needs no platform-specific reading (a verification, an empty
/// answer, a refusal); the exit code.
pub(super) fn report_plain(status: u16, answer: Result<Answer, AnswerError>) -> ExitCode {
    match answer {
        Ok(Answer::Verified(echo)) => {
            eout!("← {status}: URL verification passed");
            out!("{echo}");
            ExitCode::SUCCESS
        }
        Ok(Answer::Empty) => {
            eout!("← {status}: empty answer (no reply)");
            ExitCode::SUCCESS
        }
        Ok(Answer::Reply(reply)) => {
            eout!("← {status}: reply");
            out!("{reply}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eout!("← {e}");
            ExitCode::from(EXIT_REPLY_FAILED)
        }
    }
}

/// Why no answer came.
enum PostError {
    /// No connection could be made: nothing listens there.
    NothingAnswered,
    /// Anything else, as one line without the URL.
    Failed(String),
}

/// Sends requests to the gateway: one client and runtime for every request of a command
/// (an AI bot's refreshes are many).
pub(super) struct Poster {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Poster {
    pub(super) fn new() -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let client = crate::http::client_builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {}", crate::http::error_chain(&e)))?;
        Ok(Self { runtime, client })
    }

    /// Sends `request` to the gateway at `given` (`--url`), saying where on stderr when
    /// `announce`; the status and body, or the exit code after saying why none came.
    pub(super) fn deliver(
        &self,
        given: &str,
        request: &SignedRequest,
        announce: bool,
    ) -> Result<(u16, String), ExitCode> {
        let url = request_url(given, &request.path_and_query()).map_err(|e| {
            eout!("wxgate: {e}");
            ExitCode::from(EXIT_CONFIG)
        })?;
        if announce {
            eout!("→ {} {}", request.method, url);
        }
        match self.post(request, url.clone()) {
            Ok(answer) => Ok(answer),
            Err(PostError::NothingAnswered) => {
                eout!(
                    "wxgate: nothing answered at {} — is `wxgate serve` running at {}? (start it in another terminal, or pass --url with the gateway's address)",
                    send_url::shown(&url),
                    send_url::origin(&url)
                );
                Err(ExitCode::from(EXIT_REPLY_FAILED))
            }
            Err(PostError::Failed(e)) => {
                eout!("wxgate: request failed: {e}");
                Err(ExitCode::from(EXIT_REPLY_FAILED))
            }
        }
    }

    /// Sends the request; the status and body.
    fn post(&self, request: &SignedRequest, url: reqwest::Url) -> Result<(u16, String), PostError> {
        let result: Result<_, reqwest::Error> = self.runtime.block_on(async {
            let builder = if request.method == http::Method::GET {
                self.client.get(url)
            } else {
                // The AI bot's envelopes are JSON; every other platform's are XML.
                let content_type = if request.body.starts_with('{') {
                    "application/json"
                } else {
                    "text/xml; charset=utf-8"
                };
                self.client
                    .post(url)
                    .header(http::header::CONTENT_TYPE, content_type)
                    .body(request.body.clone())
            };
            let response = builder.send().await?;
            let status = response.status().as_u16();
            Ok((status, response.text().await?))
        });
        result.map_err(|e| {
            if e.is_connect() {
                PostError::NothingAnswered
            } else {
                PostError::Failed(crate::http::error_chain(&e.without_url()))
            }
        })
    }

    /// Waits `pause` (between an AI bot's refreshes).
    pub(super) fn pause(&self, pause: Duration) {
        self.runtime.block_on(async { tokio::time::sleep(pause).await });
    }
}
