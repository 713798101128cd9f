//! The built `wxgate` binary as an operator runs it: commands with a clean environment,
//! their exit code and output, and config files that are removed afterwards.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

/// The binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_wxgate");
/// The example config shipped in `examples/`.
pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wxgate.toml");

/// `wxgate` with `args`, taking neither a config, a table nor an API proxy from the test
/// run's environment.
pub fn wxgate(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("WXGATE_CONFIG")
        .env_remove("WXGATE_TABLE")
        .env_remove("WXGATE_API_PROXY");
    cmd
}

/// How a command ended: its exit code (-1 when killed by a signal) and what it wrote.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `cmd` to its end.
pub fn run(cmd: &mut Command) -> Run {
    cmd.output().expect("the command starts").into()
}

/// A config file in the test target's temporary directory, removed on drop.
pub struct ConfigFile(PathBuf);

impl ConfigFile {
    /// Writes `text` to a file of its own, named after `tag`.
    pub fn new(tag: &str, text: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{tag}-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    /// The path, as a command-line argument.
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl AsRef<Path> for ConfigFile {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for ConfigFile {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `wxgate doctor --config (text) extra…`, checked to print none of `secrets`.
pub fn doctor(tag: &str, text: &str, extra: &[&str], secrets: &[&str]) -> Run {
    let file = ConfigFile::new(tag, text);
    let mut args = vec!["doctor", "--config", file.arg()];
    args.extend_from_slice(extra);
    let out = run(&mut wxgate(&args));
    for secret in secrets {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "a secret is printed:\n{}{}",
            out.stdout,
            out.stderr
        );
    }
    out
}

/// The line of doctor's check `what` and the two lines after it (cause and fix of a
/// failure).
pub fn doctor_check<'a>(out: &'a Run, what: &str) -> &'a str {
    let needle = format!(" {what}: ");
    let start = out
        .stdout
        .find(&needle)
        .unwrap_or_else(|| panic!("no line for {what:?} in\n{}", out.stdout));
    let start = out.stdout[..start].rfind('\n').map_or(0, |i| i + 1);
    let rest = &out.stdout[start..];
    let end = rest
        .match_indices('\n')
        .nth(2)
        .map_or(rest.len(), |(i, _)| i);
    &rest[..end]
}
