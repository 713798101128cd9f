//! `wxgate jobs`: the reply jobs kept in the DynamoDB table (Lambda deferred replies), for an
//! operator looking into a reply that never came. Message contents are never printed: the
//! message key says which callback it was.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use super::{EXIT_CONFIG, EXIT_REPLY_FAILED, Threads, config_failure, load, runtime};
use crate::clock::now_ms;
use crate::config::{ConfigError, StorePlan, StoreSettings};
use crate::store::{DynamoStore, JobRecord, JobState, dynamodb::DynamoTimeouts};

/// `wxgate jobs` options.
#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    /// The config file naming the store [default: $WXGATE_CONFIG, else ./wxgate.toml]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only failed jobs (the same as `--state failed`).
    #[arg(long, conflicts_with = "state")]
    failed: bool,
    /// Only jobs in this state: pending, running, answered, sending, sent, none, failed.
    #[arg(long, value_parser = parse_state)]
    state: Option<JobState>,
    /// Only this app's jobs.
    #[arg(long)]
    app: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_state(name: &str) -> Result<JobState, String> {
    JobState::parse(name).ok_or_else(|| {
        "expected pending, running, answered, sending, sent, none or failed".to_owned()
    })
}

/// Lists the jobs. Exits 2 for config errors (and the embedded store, which only the
/// process serving it can see), 1 when the table cannot be read.
pub fn run(args: &JobsArgs) -> ExitCode {
    // Only the store is read from a config, so none is needed when $WXGATE_TABLE names the
    // table (the README's `WXGATE_TABLE=… wxgate jobs`, run where no config lives).
    let (store, configured) = match load(args.config.clone()) {
        Ok(c) => (c.store, true),
        Err(ConfigError::Missing) => (StoreSettings::default(), false),
        Err(e) => return config_failure(&e),
    };
    let table = match store.plan_from_env() {
        Ok(StorePlan::Dynamodb { table }) => table,
        Ok(StorePlan::Memory) if configured => {
            eout!(
                "wxgate: jobs are listed from a DynamoDB table; this config uses the embedded store, which only the process serving it can see (set [store] table or $WXGATE_TABLE)"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        Ok(StorePlan::Memory) => {
            eout!(
                "wxgate: jobs are listed from a DynamoDB table: name it with $WXGATE_TABLE (the stack's TableName output), or pass --config FILE whose [store] names it"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => return config_failure(&e),
    };
    let runtime = match runtime(Threads::One) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let state = if args.failed {
        Some(JobState::Failed)
    } else {
        args.state
    };
    let (listed, region) = runtime.block_on(async {
        // An operator's command may wait for a large table page by page.
        let timeouts = DynamoTimeouts::per_attempt(Duration::from_secs(10));
        let store = DynamoStore::from_env(table.clone(), timeouts).await;
        let region = store.client().config().region().map(ToString::to_string);
        (store.list_jobs(state, now_ms()).await, region)
    });
    let mut jobs = match listed {
        Ok(jobs) => jobs,
        Err(e) => {
            eout!("wxgate: cannot read the jobs of DynamoDB table {table}: {e}");
            eout!("{}", unreadable_hint(&table, region.as_deref()));
            return ExitCode::from(EXIT_REPLY_FAILED);
        }
    };
    if let Some(app) = &args.app {
        jobs.retain(|(_, job)| &job.app == app);
    }
    // Newest first: the one being looked for is usually recent.
    jobs.sort_by_key(|(_, job)| std::cmp::Reverse(job.answer_by_ms));
    for (key, job) in &jobs {
        if args.json {
            out!("{}", json_line(key, job));
        } else {
            out!("{}", text_line(key, job));
        }
    }
    if !args.json {
        eout!("{} job(s) in DynamoDB table {table}", jobs.len());
    }
    ExitCode::SUCCESS
}

/// What to check when the table cannot be read: the settings the AWS SDK took it from.
/// Names of variables and the region only, never a credential.
fn unreadable_hint(table: &str, region: Option<&str>) -> String {
    let region = match region {
        Some(region) => format!("the region is {region}: the table's region? (AWS_REGION)"),
        None => "no region is set: AWS_REGION=<the stack's region>".to_owned(),
    };
    format!(
        "  check: {region}; the credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) may Scan the table; the table name {table} ($WXGATE_TABLE or [store] table) is the stack's TableName output; AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL, when set, point at a DynamoDB-compatible server that is running"
    )
}

/// When the callback was answered (its deadline), as an HTTP date.
fn when(job: &JobRecord) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(job.answer_by_ms))
}

fn text_line(key: &str, job: &JobRecord) -> String {
    let mut line = format!(
        "{:<8}  {}  {:<12}  {}",
        job.state.as_str(),
        when(job),
        job.app,
        key
    );
    if let Some(msgid) = &job.msgid {
        line.push_str(&format!("  msgid={msgid}"));
    }
    if let Some(reason) = &job.reason {
        line.push_str(&format!("  reason: {reason}"));
    }
    line
}

fn json_line(key: &str, job: &JobRecord) -> String {
    serde_json::json!({
        "key": key,
        "state": job.state.as_str(),
        "app": job.app,
        "authorizer_app_id": job.authorizer_app_id,
        "answer_by_ms": job.answer_by_ms,
        "msgid": job.msgid,
        "reason": job.reason,
    })
    .to_string()
}
