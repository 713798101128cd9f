//! Counts the DynamoDB requests a client sends (every attempt, by operation), with an SDK
//! interceptor: the real requests on the wire, not calls to a wrapper.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

/// Shared counts; clone it into the client config with [`RequestCount::interceptor`].
#[derive(Debug, Clone, Default)]
pub struct RequestCount {
    by_operation: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RequestCount {
    /// The interceptor to add to a client config builder.
    pub fn interceptor(&self) -> Counter {
        Counter(self.clone())
    }

    /// Requests per operation (`PutItem`, `UpdateItem`, `GetItem`, …).
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.by_operation.lock().unwrap().clone()
    }

    /// All requests.
    pub fn total(&self) -> u64 {
        self.by_operation.lock().unwrap().values().sum()
    }
}

/// The interceptor half of [`RequestCount`].
#[derive(Debug)]
pub struct Counter(RequestCount);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "wxgate-test-request-count"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // DynamoDB's JSON protocol names the operation in `X-Amz-Target`.
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        *self
            .0
            .by_operation
            .lock()
            .unwrap()
            .entry(operation)
            .or_default() += 1;
        Ok(())
    }
}
