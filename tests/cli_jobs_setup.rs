//! `wxgate jobs` as the README's Troubleshooting runs it, in a directory without a config:
//! `$WXGATE_TABLE` alone names the table; without it the command says what it needs; a
//! table it cannot reach is reported with what to check (region, credentials, table name,
//! endpoint), never with a credential's value. Nothing here needs a DynamoDB server: the
//! endpoint is a loopback port nothing listens on.

mod support;

use std::process::Command;

use support::cli::{Run, run, wxgate};
use support::serve::TempDir;

const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI-not-a-real-key";

/// `wxgate jobs ARGS…` in an empty directory, with no AWS settings from the test's
/// environment or files, and no instance metadata to wait for.
fn jobs_in_empty_dir(dir: &TempDir, args: &[&str]) -> Command {
    let mut cmd = wxgate(&["jobs"]);
    cmd.args(args).current_dir(&dir.0);
    for name in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
    ] {
        cmd.env_remove(name);
    }
    let missing = dir.0.join("no-such-aws-file");
    cmd.env("AWS_CONFIG_FILE", &missing)
        .env("AWS_SHARED_CREDENTIALS_FILE", &missing)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

#[test]
fn without_a_config_or_a_table_it_says_what_it_needs() {
    let dir = TempDir::new("jobs-no-config");
    let out = run(&mut jobs_in_empty_dir(&dir, &["--failed"]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("$WXGATE_TABLE"), "{}", out.stderr);
    assert!(out.stderr.contains("--config FILE"), "{}", out.stderr);
    assert!(!out.stderr.contains("no configuration"), "{}", out.stderr);
}

#[test]
fn the_table_alone_is_enough_and_an_unreachable_one_gets_a_hint() {
    let dir = TempDir::new("jobs-table-only");
    let endpoint = dead_endpoint();
    let Run { code, stderr, .. } = run(jobs_in_empty_dir(&dir, &["--failed"])
        .env("WXGATE_TABLE", "wxgate-Table-1")
        .env("AWS_REGION", "ap-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &endpoint));
    // Not the missing-config error: the table was tried.
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot read the jobs of DynamoDB table wxgate-Table-1"),
        "{stderr}"
    );
    for hint in [
        "the region is ap-east-1",
        "AWS_REGION",
        "AWS_PROFILE",
        "$WXGATE_TABLE or [store] table",
        "TableName output",
        "AWS_ENDPOINT_URL_DYNAMODB",
    ] {
        assert!(stderr.contains(hint), "no {hint:?} in {stderr}");
    }
    assert!(!stderr.contains(SECRET_ACCESS_KEY), "{stderr}");
}

#[test]
fn a_missing_region_is_named() {
    let dir = TempDir::new("jobs-no-region");
    let Run { code, stderr, .. } = run(jobs_in_empty_dir(&dir, &[])
        .env("WXGATE_TABLE", "wxgate-Table-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_ENDPOINT_URL_DYNAMODB", dead_endpoint()));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no region is set"), "{stderr}");
    assert!(!stderr.contains(SECRET_ACCESS_KEY), "{stderr}");
}
