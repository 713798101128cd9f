//! DynamoDB stream batches: the worker half of Lambda deferred replies.
//!
//! The table's stream (`NEW_IMAGE`) reaches the function through an event source mapping
//! whose filter passes only records written with `job = "pending"` (template.yaml); each is
//! the claim of a callback whose reply the bot decides slowly. The records of a batch run
//! concurrently, each as [`Gateway::run_job`]. The answer lists the records to retry
//! (`ReportBatchItemFailures`): those the store failed on, and jobs still held by another
//! worker (one that crashed). A job that fails otherwise is recorded as failed on its item,
//! so retrying it would change nothing.
//!
//! Only the fields used are read, so any stream view type that carries the keys and the new
//! image works; a record without them is logged and skipped, never retried.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::bot::Bot;
use crate::gateway::{Gateway, JobOutcome};

/// The records of one stream batch that carry a pending job.
#[derive(Debug, Default)]
pub struct Batch {
    /// Each job's dedup key and the record's sequence number.
    pub jobs: Vec<JobRecordRef>,
}

/// One stream record's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecordRef {
    /// The item key (`pk`) of the dedup record.
    pub key: String,
    /// The record's `SequenceNumber`, the identifier Lambda retries by.
    pub sequence_number: String,
}

/// The answer to a batch: the records Lambda should deliver again.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BatchResponse {
    /// Records whose job the store failed on.
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

/// One record to retry.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ItemFailure {
    /// The record's sequence number.
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl Batch {
    /// The batch an event is, if it is a DynamoDB stream event (`Records` from
    /// `aws:dynamodb`). Records without a pending job are left out (a mapping without the
    /// filter still works); malformed ones are logged.
    pub fn from_event(event: &Value) -> Option<Self> {
        let records = event.get("Records")?.as_array()?;
        let from_dynamodb = records
            .iter()
            .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:dynamodb"));
        if !from_dynamodb {
            return None;
        }
        let jobs = records.iter().filter_map(job_of).collect();
        Some(Self { jobs })
    }
}

/// The pending job a stream record carries, if any.
fn job_of(record: &Value) -> Option<JobRecordRef> {
    let event_name = record.get("eventName").and_then(Value::as_str);
    if !matches!(event_name, Some("INSERT" | "MODIFY")) {
        return None; // a REMOVE (TTL deletion), or not a table record at all
    }
    let change = record.get("dynamodb")?;
    let string = |image: &str, name: &str| {
        change
            .get(image)?
            .get(name)?
            .get("S")?
            .as_str()
            .map(str::to_owned)
    };
    if string("NewImage", "job").as_deref() != Some("pending") {
        return None;
    }
    let key = string("Keys", "pk");
    let sequence_number = change
        .get("SequenceNumber")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (key, sequence_number) {
        (Some(key), Some(sequence_number)) => Some(JobRecordRef {
            key,
            sequence_number,
        }),
        _ => {
            tracing::error!(
                "a stream record with a pending job but no key or sequence number; skipped"
            );
            None
        }
    }
}

/// Runs every job of a batch at once and answers the records to retry.
/// `deadline` is the invocation's (epoch ms): every job ends before it.
pub async fn run_batch<B: Bot>(
    gateway: &Arc<Gateway<B>>,
    batch: Batch,
    deadline: Option<u64>,
) -> BatchResponse {
    let mut tasks = tokio::task::JoinSet::new();
    let mut sequence_numbers = std::collections::HashMap::new();
    for job in batch.jobs {
        let gateway = Arc::clone(gateway);
        let task = tasks.spawn(async move { gateway.run_job(&job.key, deadline).await });
        sequence_numbers.insert(task.id(), job.sequence_number);
    }
    let mut response = BatchResponse::default();
    while let Some(done) = tasks.join_next_with_id().await {
        let (id, retry) = match done {
            Ok((id, outcome)) => (
                id,
                matches!(outcome, JobOutcome::StoreUnavailable(_) | JobOutcome::Busy),
            ),
            Err(e) => {
                tracing::error!(cause = %e, "a reply job panicked; its record will be retried");
                (e.id(), true)
            }
        };
        if let Some(item_identifier) = sequence_numbers.remove(&id).filter(|_| retry) {
            response
                .batch_item_failures
                .push(ItemFailure { item_identifier });
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Any JSON value, a few levels deep, with the field names a stream record has.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                Just("aws:dynamodb".to_owned()),
                Just("INSERT".to_owned()),
                Just("pending".to_owned()),
                ".{0,8}"
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("Records".to_owned()),
                        Just("eventSource".to_owned()),
                        Just("eventName".to_owned()),
                        Just("dynamodb".to_owned()),
                        Just("Keys".to_owned()),
                        Just("NewImage".to_owned()),
                        Just("pk".to_owned()),
                        Just("job".to_owned()),
                        Just("S".to_owned()),
                        Just("SequenceNumber".to_owned()),
                    ],
                    inner,
                    0..5,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever shape an event has, reading it as a batch never panics, and every job it
        /// finds is a record's key whose new image says `job = pending`.
        #[test]
        fn any_event_is_read_without_panic(event in any_json()) {
            if let Some(batch) = Batch::from_event(&event) {
                let records = event["Records"].as_array().cloned().unwrap_or_default();
                for job in batch.jobs {
                    let found = records.iter().any(|r| {
                        r["dynamodb"]["Keys"]["pk"]["S"] == job.key.as_str()
                            && r["dynamodb"]["NewImage"]["job"]["S"] == "pending"
                            && r["dynamodb"]["SequenceNumber"] == job.sequence_number.as_str()
                    });
                    prop_assert!(found, "{} is not a pending job of {}", job.key, event);
                }
            }
        }
    }

    fn record(event_name: &str, job: Option<&str>, key: &str, seq: &str) -> Value {
        let mut image = json!({"pk": {"S": key}, "st": {"S": "p"}});
        if let Some(job) = job {
            image["job"] = json!({"S": job});
        }
        json!({
            "eventID": "1", "eventName": event_name, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"pk": {"S": key}}, "NewImage": image,
                         "SequenceNumber": seq, "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"},
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026"
        })
    }

    #[test]
    fn only_pending_jobs_are_taken_from_a_batch() {
        let event = json!({"Records": [
            record("INSERT", Some("pending"), "dedup#a#1", "100"),
            record("MODIFY", Some("running"), "dedup#a#2", "101"),
            record("INSERT", None, "dedup#a#3", "102"),
            record("REMOVE", Some("pending"), "dedup#a#4", "103"),
            record("MODIFY", Some("pending"), "dedup#a#5", "104"),
        ]});
        let batch = Batch::from_event(&event).expect("a stream batch");
        let keys: Vec<_> = batch.jobs.iter().map(|j| j.key.as_str()).collect();
        assert_eq!(keys, ["dedup#a#1", "dedup#a#5"]);
        assert_eq!(batch.jobs[1].sequence_number, "104");
    }

    #[test]
    fn api_gateway_events_are_not_batches() {
        let v2 = json!({"version": "2.0", "routeKey": "$default", "rawPath": "/wecom/demo",
                        "requestContext": {"http": {"method": "POST"}}});
        assert!(Batch::from_event(&v2).is_none());
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        assert!(Batch::from_event(&sqs).is_none());
    }

    #[test]
    fn a_record_without_a_key_is_skipped() {
        let mut bad = record("INSERT", Some("pending"), "k", "1");
        bad["dynamodb"]["Keys"] = json!({});
        let batch = Batch::from_event(&json!({"Records": [bad]})).unwrap();
        assert!(batch.jobs.is_empty());
    }

    #[test]
    fn the_response_names_records_to_retry_as_lambda_expects() {
        let response = BatchResponse {
            batch_item_failures: vec![ItemFailure {
                item_identifier: "104".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "104"}]})
        );
    }
}
