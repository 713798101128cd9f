//! The DynamoDB client: trust roots that cost no cold start (shared with the other AWS
//! clients, in [`crate::http`]), short timeouts, a small retry budget.

use super::*;

/// The HTTPS client of the DynamoDB client ([`crate::http::aws_https_client`]).
pub(super) fn aws_https_client() -> Option<aws_sdk_dynamodb::config::SharedHttpClient> {
    crate::http::aws_https_client(&["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"])
}

/// Applies the short timeouts and the small retry budget to a client configuration.
pub fn with_timeouts(
    builder: aws_sdk_dynamodb::config::Builder,
    timeouts: DynamoTimeouts,
) -> aws_sdk_dynamodb::Config {
    builder
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeouts.attempt)
                .operation_attempt_timeout(timeouts.attempt)
                .operation_timeout(timeouts.operation)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(timeouts.max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(40)),
        )
        .build()
}
