//! The DynamoDB client: trust roots that cost no cold start, short timeouts, a small
//! retry budget.

use super::*;

/// The roots of Amazon Trust Services, which every AWS endpoint's certificate chains to.
pub(super) const AMAZON_TRUST_SERVICES_ROOTS: &str =
    include_str!("../amazon-trust-services-roots.pem");

/// An HTTPS client that trusts only Amazon's roots when the endpoint is AWS's own.
///
/// The SDK's default client reads and parses every root certificate of the system when it
/// is built, a large part of the function's cold start (docs/benchmarks.md). With an endpoint
/// HTTPS override (`AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL` set to `https://…`: a
/// proxy, another region's gateway) the system roots are kept, since such an endpoint may
/// have any certificate; a plain `http://` override (a local server) needs no roots at all.
pub(super) fn aws_https_client() -> Option<aws_sdk_dynamodb::config::SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let https_override = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .any(|url| url.trim().to_ascii_lowercase().starts_with("https://"));
    if https_override {
        return None;
    }
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS.as_bytes());
    let context = TlsContext::builder().with_trust_store(trust).build().ok()?;
    Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context)
            .build_https(),
    )
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
