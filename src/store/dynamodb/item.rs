//! Items and attributes: reading records out of them, and telling store failures apart.

use super::*;

pub(super) fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

pub(super) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn backend_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) => StoreError::Backend("timed out".into()),
        SdkError::ServiceError(service) => {
            let e = service.err();
            let text = format!(
                "{}: {}",
                e.code().unwrap_or("unknown error"),
                e.message().unwrap_or("no message")
            );
            if e.code() == Some("ValidationException") {
                StoreError::Rejected(text)
            } else {
                StoreError::Backend(text)
            }
        }
        SdkError::DispatchFailure(d) => StoreError::Backend(if d.is_timeout() {
            "timed out connecting".into()
        } else if d.is_io() {
            "connection failed".into()
        } else {
            "request could not be sent".into()
        }),
        _ => StoreError::Backend(aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string()),
    }
}

/// Whether an error is the failed condition of a conditional write.
pub(super) fn is_condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(err, SdkError::ServiceError(service)
        if service.err().code() == Some("ConditionalCheckFailedException"))
}

/// The outcome of a conditional write: `true` if it was made, `false` if its condition
/// did not hold, or the error.
pub(super) fn condition_held<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failed(&err) => Ok(false),
        Err(err) => Err(backend_error(err)),
    }
}

pub(super) fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

pub(super) fn get_n(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub(super) fn get_s<'i>(item: &'i Item, name: &str) -> Option<&'i str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// Reads a dedup item; `None` when it has expired (TTL deletion lags).
pub(super) fn dedup_from_item(
    key: &str,
    item: &Item,
    now_ms: EpochMillis,
) -> Result<Option<DedupRecord>, StoreError> {
    let expires_at = get_n(item, EXPIRES_AT).ok_or_else(|| corrupt(key, "no expires_at"))?;
    if expires_at < now_ms / 1000 {
        return Ok(None);
    }
    match get_s(item, "st") {
        Some(STATE_DONE) => Ok(Some(DedupRecord::Done {
            reply: get_s(item, "reply").map(str::to_owned),
        })),
        Some(STATE_IN_PROGRESS) => {
            let lease_until_ms = get_n(item, "lease_until")
                .ok_or_else(|| corrupt(key, "in progress without lease_until"))?;
            // A job whose callback's lease ran out was given up by it: answered empty, the
            // reply goes out actively.
            if item.contains_key(JOB) && lease_until_ms < now_ms {
                return Ok(Some(DedupRecord::Done { reply: None }));
            }
            Ok(Some(DedupRecord::InProgress { lease_until_ms }))
        }
        other => Err(corrupt(key, format!("unknown state {other:?}"))),
    }
}

/// Reads the job of a dedup item that has one.
pub(super) fn job_from_item(key: &str, item: &Item) -> Result<JobRecord, StoreError> {
    let text = |name: &str| {
        get_s(item, name)
            .map(str::to_owned)
            .ok_or_else(|| corrupt(key, format!("job without {name}")))
    };
    let state = get_s(item, JOB)
        .and_then(JobState::parse)
        .ok_or_else(|| corrupt(key, "unknown job state"))?;
    Ok(JobRecord {
        state,
        app: text("app")?,
        authorizer_app_id: get_s(item, "authz").map(str::to_owned),
        message: get_s(item, "msg").map(str::to_owned),
        answer_by_ms: get_n(item, "answer_by")
            .ok_or_else(|| corrupt(key, "job without answer_by"))?,
        reason: get_s(item, "reason").map(str::to_owned),
        msgid: get_s(item, "msgid").map(str::to_owned),
    })
}

/// Whether `worker` holds the job of `item` in `state`.
pub(super) fn held_by(item: &Item, worker: &str, state: JobState) -> bool {
    get_s(item, JOB_WORKER) == Some(worker) && get_s(item, JOB) == Some(state.as_str())
}
