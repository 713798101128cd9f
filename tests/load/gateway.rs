//! `wxgate serve` as the process under load: the real binary with the DynamoDB store on a
//! local server, logging at info into memory (the runs count its warnings), killable with
//! SIGKILL and restartable on the same address. Killed on drop, also when a test panics.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::dynamo::process_env;
use crate::support::loopback::lock;
use crate::support::serve::TempDir;

/// How long the process may take to print its address.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// The binary under test: `$WXGATE_LOAD_BIN` (a release build, for figures), else the one
/// cargo built for these tests.
pub fn binary() -> PathBuf {
    std::env::var_os("WXGATE_LOAD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_wxgate")))
}

/// The running gateway.
pub struct GatewayProcess {
    child: Option<Child>,
    /// `127.0.0.1:port`, kept across restarts.
    addr: String,
    config_path: PathBuf,
    endpoint: String,
    /// Everything every incarnation logged.
    logs: Arc<Mutex<String>>,
    _dir: TempDir,
}

impl GatewayProcess {
    /// Starts `wxgate serve` with `config` against the DynamoDB at `endpoint`.
    pub fn start(config: &str, endpoint: &str) -> GatewayProcess {
        let dir = TempDir::new("load");
        let config_path = dir.0.join("wxgate.toml");
        std::fs::write(&config_path, config).expect("write the config");
        let mut gateway = GatewayProcess {
            child: None,
            addr: "127.0.0.1:0".to_owned(),
            config_path,
            endpoint: endpoint.to_owned(),
            logs: Arc::new(Mutex::new(String::new())),
            _dir: dir,
        };
        gateway.spawn();
        gateway
    }

    /// `http://127.0.0.1:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL, as a crash or an OOM kill would end it: nothing is finished or flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same address with the same config.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Everything logged so far, by every incarnation.
    pub fn logs(&self) -> String {
        lock(&self.logs).clone()
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        lock(&self.logs)
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn spawn(&mut self) {
        let started = Instant::now();
        loop {
            match self.try_spawn() {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                // The port of a killed process can take a moment to be free again.
                Err(e) if started.elapsed() < START_DEADLINE => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("wxgate serve did not start: {e}"),
            }
        }
    }

    fn try_spawn(&mut self) -> Result<Child, String> {
        let mut child = Command::new(binary())
            .args(["serve", "--addr", &self.addr, "--config"])
            .arg(&self.config_path)
            .env("RUST_LOG", "info")
            .env_remove("WXGATE_CONFIG")
            .env_remove("WXGATE_TABLE")
            .env_remove("WXGATE_API_PROXY")
            .envs(process_env(&self.endpoint))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary().display()))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&self.logs);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                lock(&sink).push_str(&line);
                line.clear();
            }
        });
        // The address line, read on a thread so the wait has a deadline.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first);
            // Keep draining, so the server never writes into a closed pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let first = rx.recv_timeout(START_DEADLINE).unwrap_or_default();
        let address = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(|url| url.trim_start_matches("http://").trim_end_matches('/'));
        match address {
            Some(address) => {
                self.addr = address.to_owned();
                Ok(child)
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "no address line (exit: {:?}); last log lines:\n{}",
                    first,
                    tail(&self.logs(), 10)
                ))
            }
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
