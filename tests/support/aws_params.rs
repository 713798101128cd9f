//! Parameters and secrets on moto ([`super::moto`]) for the `ssm:` / `secretsmanager:`
//! references, and [`AwsProxy`]: an HTTP proxy in front of moto that counts the requests by
//! operation and can refuse one operation the way IAM does (moto does not enforce IAM).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ssm::config::{Credentials, Region};

use super::dynamo::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use super::loopback::lock;

/// A prefix no other test uses, for the names of one test's parameters and secrets on the
/// shared moto.
pub fn unique_prefix(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "wxgate-test/{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The environment a `wxgate` process needs to read references from `endpoint` with the
/// static test credentials, in [`REGION`].
pub fn process_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
    ]
}

fn credentials() -> Credentials {
    Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "wxgate-tests")
}

/// An SSM client for `endpoint`.
pub fn ssm(endpoint: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::Config::builder()
            .behavior_version_latest()
            .endpoint_url(endpoint)
            .region(Region::new(REGION))
            .credentials_provider(credentials())
            .build(),
    )
}

/// A Secrets Manager client for `endpoint`.
pub fn secrets_manager(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version_latest()
            .endpoint_url(endpoint)
            .region(aws_sdk_secretsmanager::config::Region::new(REGION))
            .credentials_provider(credentials())
            .build(),
    )
}

/// Puts a SecureString parameter (encrypted with moto's `alias/aws/ssm`).
pub async fn put_secure(endpoint: &str, name: &str, value: &str) {
    ssm(endpoint)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

/// Creates a secret holding `value` as its SecretString.
pub async fn create_secret(endpoint: &str, name: &str, value: &str) {
    secrets_manager(endpoint)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap();
}

/// Creates a secret holding `bytes` as its SecretBinary.
pub async fn create_binary_secret(endpoint: &str, name: &str, bytes: &[u8]) {
    secrets_manager(endpoint)
        .create_secret()
        .name(name)
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(bytes))
        .send()
        .await
        .unwrap();
}

/// What [`AwsProxy`] does with requests.
#[derive(Debug, Clone, Default)]
pub struct ProxyRules {
    /// Operations (`GetParameters`, `BatchGetSecretValue`, …) answered with a 400
    /// `AccessDeniedException` instead of being passed on.
    pub deny: Vec<&'static str>,
}

/// An HTTP/1.1 proxy on loopback in front of an AWS-compatible server: one request per
/// connection (it answers `Connection: close`), counted by the operation its
/// `X-Amz-Target` names.
pub struct AwsProxy {
    addr: SocketAddr,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl AwsProxy {
    /// Starts the proxy in front of `upstream` (`127.0.0.1:port`).
    pub fn start(upstream: SocketAddr, rules: ProxyRules) -> AwsProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let shared = Arc::clone(&counts);
        let rules = Arc::new(rules);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let counts = Arc::clone(&shared);
                let rules = Arc::clone(&rules);
                std::thread::spawn(move || {
                    let _ = serve_one(stream, upstream, &counts, &rules);
                });
            }
        });
        AwsProxy { addr, counts }
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests so far, by operation.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }

    /// Requests so far of `operation`.
    pub fn count(&self, operation: &str) -> u64 {
        self.counts().get(operation).copied().unwrap_or(0)
    }
}

fn serve_one(
    client: TcpStream,
    upstream: SocketAddr,
    counts: &Mutex<BTreeMap<String, u64>>,
    rules: &ProxyRules,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut operation = String::from("unknown");
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("x-amz-target:") {
            operation = line
                .rsplit('.')
                .next()
                .unwrap_or("unknown")
                .trim()
                .to_owned();
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    *lock(counts).entry(operation.clone()).or_default() += 1;
    let mut client = client;
    if rules.deny.contains(&operation.as_str()) {
        let body = format!(
            r#"{{"__type":"AccessDeniedException","message":"User: arn:aws:sts::123456789012:assumed-role/wxgate/fn is not authorized to perform: {operation}"}}"#
        );
        write!(
            client,
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
             x-amzn-ErrorType: AccessDeniedException\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(&head)?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    // The client must not reuse the connection: say it is closed.
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    let (head, rest) = answer.split_at(end);
    let head = String::from_utf8_lossy(head);
    let head: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    client.write_all(head.join("\r\n").as_bytes())?;
    client.write_all(b"\r\nConnection: close")?;
    client.write_all(rest)?;
    Ok(())
}
