//! The one way wxgate builds an outbound HTTP client (platform API, upstream bots, `wxgate
//! send`) and the HTTPS client of its AWS clients, and how a failed request is told in one
//! line.

use std::error::Error;
use std::time::Duration;

/// A client builder with wxgate's policy; callers add their timeouts and build it:
/// redirects are not followed (one would re-send a secret, a token or a user's message to
/// another place; the APIs and upstreams never redirect), the user agent names wxgate, and
/// idle keep-alive connections are dropped after 30 s (servers close them after a while, and
/// reusing one just as it closes fails the request).
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("wxgate/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(30))
}

/// Why a response body was not read whole.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the limit (by its `Content-Length`, or as it came).
    TooLarge,
    /// The transfer broke off.
    Transfer(reqwest::Error),
}

/// Reads a response body of at most `limit` bytes, refusing a longer one as soon as it
/// shows (its `Content-Length`, or the bytes as they come) instead of holding it: every
/// body wxgate reads comes from a server it does not control.
pub async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transfer)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The roots of Amazon Trust Services, which every AWS endpoint's certificate chains to.
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("amazon-trust-services-roots.pem");

/// The HTTPS client of an AWS SDK client (DynamoDB, SSM, Secrets Manager): it trusts only
/// Amazon's roots when the endpoint is AWS's own.
///
/// The SDK's default client reads and parses every root certificate of the system when it
/// is built, a large part of the function's cold start (docs/benchmarks.md). With an endpoint
/// HTTPS override (one of `endpoint_variables`, e.g. `AWS_ENDPOINT_URL_DYNAMODB` or
/// `AWS_ENDPOINT_URL`, set to `https://…`: a proxy, another region's gateway) the system roots
/// are kept (`None`: the SDK's default client), since such an endpoint may have any
/// certificate; a plain `http://` override (a local server) needs no roots at all.
pub fn aws_https_client(
    endpoint_variables: &[&str],
) -> Option<aws_sdk_dynamodb::config::SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let https_override = endpoint_variables
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

/// An error and its sources on one line (`a: b: c`), a text repeated by its source once.
/// Strip the URL from a reqwest error first ([`reqwest::Error::without_url`]): its query
/// may hold a secret or a token.
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        current = error.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(&'static str, #[source] Option<Box<Layer>>);

    #[test]
    fn chains_are_one_line_without_repeats() {
        let inner = Layer("connection refused", None);
        let middle = Layer("tcp connect error", Some(Box::new(inner)));
        let outer = Layer("error sending request", Some(Box::new(middle)));
        assert_eq!(
            error_chain(&outer),
            "error sending request: tcp connect error: connection refused"
        );
        let repeated = Layer("timed out", Some(Box::new(Layer("timed out", None))));
        assert_eq!(error_chain(&repeated), "timed out");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let answer = "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            socket.write_all(answer.as_bytes()).await.unwrap();
        });
        let client = client_builder().build().unwrap();
        let response = client.get(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(response.status(), 302);
    }
}
