//! `wxgate check`: which store a config gets, refusals with exit code 2, and no panic when
//! the reader of its output goes away.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_wxgate");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wxgate.toml");

fn check(table: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--config", EXAMPLE])
        .env_remove("WXGATE_TABLE")
        .env_remove("WXGATE_CONFIG");
    if let Some(table) = table {
        cmd.env("WXGATE_TABLE", table);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_store_follows_the_table_variable() {
    let (code, stdout, _) = check(None);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("config ok: 3 app(s), embedded store"),
        "{stdout}"
    );
    let (code, stdout, _) = check(Some("wxgate-prod"));
    assert_eq!(code, 0);
    assert!(stdout.contains("DynamoDB table wxgate-prod"), "{stdout}");
    let (code, _, stderr) = check(Some("no spaces"));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("WXGATE_TABLE is not a DynamoDB table name"),
        "{stderr}"
    );
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let mut child = Command::new(BIN)
        .args(["check", "--config", EXAMPLE])
        .env_remove("WXGATE_TABLE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before it writes, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
