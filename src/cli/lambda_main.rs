//! The Lambda entry point: config from `WXGATE_CONFIG`, JSON logs, one event at a time (a
//! callback, or a batch of reply jobs from the table's stream).

use std::process::ExitCode;
use std::sync::Arc;

use super::EXIT_CONFIG;
use crate::config::{CONFIG_ENV, Config, ConfigError, ConfigSource, StorePlan};
use crate::gateway::{Gateway, LateReplies};

/// The environment variable that turns reply jobs on in the Lambda function. template.yaml
/// sets it to `stream` together with the stream mapping that runs the jobs; without the
/// mapping a job would never run, so it is off unless set.
pub const REPLY_JOBS_ENV: &str = "WXGATE_REPLY_JOBS";

/// The late-reply strategy [`REPLY_JOBS_ENV`] asks for: jobs when it is `stream` and the
/// store is DynamoDB (the table whose stream runs them), else late replies are dropped.
fn late_replies_from_env(config: &Config) -> LateReplies {
    match std::env::var(REPLY_JOBS_ENV).ok().as_deref() {
        None | Some("" | "off") => LateReplies::Dropped,
        Some("stream")
            if matches!(config.store.plan_from_env(), Ok(StorePlan::Dynamodb { .. })) =>
        {
            tracing::info!("slow replies run as jobs from the table's stream");
            LateReplies::AsJobs
        }
        Some("stream") => {
            tracing::warn!(
                "{REPLY_JOBS_ENV}=stream needs the DynamoDB store; slow replies are answered within the budget or not at all"
            );
            LateReplies::Dropped
        }
        Some(other) => {
            tracing::warn!(
                value = other,
                "{REPLY_JOBS_ENV} is `stream` or `off`; reply jobs stay off"
            );
            LateReplies::Dropped
        }
    }
}

/// The Lambda entry point: config from `WXGATE_CONFIG`, JSON logs, one event at a time
/// (a callback, or a batch of reply jobs from the table's stream).
pub fn lambda_main() -> ExitCode {
    crate::logging::init_json();
    // Lambda sends one request at a time to an instance: one thread is enough and starts
    // fastest.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(cause = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    // References to AWS (the whole config, secrets) are read here, once per instance.
    let config = match std::env::var(CONFIG_ENV)
        .map_err(|_| ConfigError::Missing)
        .and_then(|value| ConfigSource::from_env_value(&value))
        .map(|source| runtime.block_on(crate::aws_refs::load(source)))
    {
        Ok(Ok(config)) => config,
        Ok(Err(e)) | Err(e) => {
            tracing::error!(cause = %e, "cannot start: bad configuration");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // The store client is built here, in the init phase, without a request: the first
    // callback opens the connection it needs.
    let late = late_replies_from_env(&config);
    let has_aibot = config
        .apps
        .iter()
        .any(|app| app.platform == crate::platform::Platform::Aibot);
    if has_aibot && late != LateReplies::AsJobs {
        // A stream is produced by a reply job; a task of a frozen instance makes no progress.
        tracing::warn!(
            "AI bot streams need reply jobs ({REPLY_JOBS_ENV}=stream and the DynamoDB store, as template.yaml sets them); without them an AI bot's upstream answers are not streamed"
        );
    }
    let gateway = match runtime.block_on(Gateway::builder(&config).late_replies(late).open()) {
        Ok(gateway) => gateway,
        Err(e) => {
            tracing::error!(cause = %e, "cannot start: bad configuration");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match runtime.block_on(crate::lambda::run(Arc::new(gateway))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(cause = %e, "the Lambda runtime loop stopped");
            ExitCode::FAILURE
        }
    }
}
