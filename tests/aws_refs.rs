//! References to AWS (`ssm:`, `secretsmanager:`) when AWS cannot be asked, through the
//! built binary, without any AWS-compatible server: the start fails with an error that says
//! why and names the reference; and a config without references asks nothing at all.
//! (The references read from moto are in tests/aws_refs_moto.rs.)

mod support;

use std::net::{SocketAddr, TcpListener};

use support::aws_params::{AwsProxy, ProxyRules};
use support::cli::{ConfigFile, run, wxgate};
use support::dynamo::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use support::sample::OFFICIAL_SAMPLE_APP;

/// A loopback address nothing listens on.
fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// `wxgate check` on `config` with AWS settings for `endpoint` and no ambient AWS setup
/// (no profile, no instance metadata).
fn check(config: &ConfigFile, endpoint: &str, credentials: bool) -> support::cli::Run {
    let home = std::env::temp_dir();
    let mut command = wxgate(&["check", "--config", config.arg()]);
    command
        .env("HOME", home)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", "/nonexistent/wxgate-test-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/wxgate-test-aws-credentials",
        );
    if credentials {
        command
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
    } else {
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
    }
    run(&mut command)
}

fn with_token(reference: &str) -> String {
    OFFICIAL_SAMPLE_APP.replace("\"QDG6eK\"", &format!("\"{reference}\""))
}

#[test]
fn an_unreachable_endpoint_stops_the_start_naming_the_reference_and_the_endpoint() {
    let endpoint = format!("http://{}", dead_addr());
    let config = ConfigFile::new("aws-unreachable", &with_token("ssm:/wxgate/token"));
    let out = check(&config, &endpoint, true);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let e = &out.stderr;
    assert!(
        e.contains(
            "apps[demo].token = \"ssm:/wxgate/token\": cannot be read: SSM could not be asked"
        ) && e.contains(&format!("region {REGION}"))
            && e.contains(&endpoint)
            && e.contains("AWS_ENDPOINT_URL_SSM"),
        "{e}"
    );
}

#[test]
fn missing_credentials_stop_the_start_and_say_so() {
    // Credentials are resolved before anything is sent: the endpoint is never reached.
    let endpoint = format!("http://{}", dead_addr());
    let config = ConfigFile::new(
        "aws-no-credentials",
        &with_token("secretsmanager:wxgate/demo#token"),
    );
    let out = check(&config, &endpoint, false);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let e = &out.stderr;
    assert!(
        e.contains("apps[demo].token = \"secretsmanager:wxgate/demo#token\": cannot be read")
            && e.contains("credentials"),
        "{e}"
    );
}

#[test]
fn a_config_without_references_makes_no_aws_request() {
    let proxy = AwsProxy::start(dead_addr(), ProxyRules::default());
    let config = ConfigFile::new("aws-none", OFFICIAL_SAMPLE_APP);
    let out = check(&config, &proxy.endpoint(), true);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("config ok: 1 app(s)"), "{}", out.stdout);
    assert!(proxy.counts().is_empty(), "{:?}", proxy.counts());
}

#[test]
fn a_malformed_reference_is_a_config_error_before_any_request() {
    let proxy = AwsProxy::start(dead_addr(), ProxyRules::default());
    let config = ConfigFile::new("aws-malformed", &with_token("secretsmanager:wxgate/demo#"));
    let out = check(&config, &proxy.endpoint(), true);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("apps[demo].token: \"#\" names no JSON key"),
        "{}",
        out.stderr
    );
    assert!(proxy.counts().is_empty(), "{:?}", proxy.counts());
}
