//! The DynamoDB stream record Lambda hands the reply-job worker for an item: dynalite has
//! no streams, so the tests are the event source mapping (`INSERT`, `NEW_IMAGE`, the item in
//! DynamoDB JSON), as Lambda delivers it after the mapping's filter.
#![allow(dead_code)]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value, json};
use wxgate::clock::unix_now;

/// DynamoDB JSON of an attribute value, as streams carry it.
pub fn dynamodb_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        other => panic!("no stream JSON for {other:?} in this test"),
    }
}

/// The event Lambda hands the function for one stream record of `item`, with its
/// `SequenceNumber` (the identifier Lambda retries by) and `eventID`.
pub fn stream_event(
    item: &HashMap<String, AttributeValue>,
    sequence_number: &str,
    event_id: &str,
) -> Value {
    let image: Map<String, Value> = item
        .iter()
        .map(|(name, value)| (name.clone(), dynamodb_json(value)))
        .collect();
    json!({"Records": [{
        "eventID": event_id,
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": unix_now(),
            "Keys": {"pk": image["pk"].clone()},
            "NewImage": image,
            "SequenceNumber": sequence_number,
            "SizeBytes": 512,
            "StreamViewType": "NEW_IMAGE"
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/wxgate/stream/2026-11-25T00:00:00.000"
    }]})
}
