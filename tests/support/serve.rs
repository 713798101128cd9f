//! `wxgate serve` as a child process on a free loopback port, and the platform played
//! against it over real HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wxgate::config::Config;
use wxgate::simulate::{PlatformSim, SignedRequest};

use super::sample::{CORP_ID, KEY, TOKEN, sim_of};

/// One app per platform mode, `demo` on the official sample's values.
pub fn test_config(gateway_table: &str) -> String {
    format!(
        r#"
[gateway]
{gateway_table}

[[apps]]
name = "demo"
platform = "wecom"
corp_id = "{CORP_ID}"
agent_id = 218
token = "{TOKEN}"
encoding_aes_key = "{KEY}"
[apps.reply]
echo = true
subscribe = "welcome"
enter_agent = "hello again"
[apps.reply.click]
V1001 = "clicked"

[[apps]]
name = "shop"
platform = "mp"
app_id = "wxshop0000000001"
token = "shoptoken"
encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
[apps.reply]
echo = true
subscribe = "thanks for following"

[[apps]]
name = "blog"
platform = "mp"
token = "blogtoken"
[apps.reply]
echo = true

[[apps]]
name = "comp"
platform = "open"
app_id = "wxcomponent00001"
token = "comptoken"
encoding_aes_key = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlk0"
[apps.reply]
echo = true
"#
    )
}

/// A running `wxgate serve`; killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    pub config: Config,
    /// What it wrote to stderr, when started with [`Server::start_logged`].
    logs: Option<std::sync::Arc<std::sync::Mutex<String>>>,
    _dir: TempDir,
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "wxgate-test-{tag}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Apart between two directories made at once by one process: a counter, and the clock
/// for directories left behind by earlier runs of the same pid.
fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static MADE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}-{nanos}", MADE.fetch_add(1, Ordering::Relaxed))
}

impl Server {
    /// Starts `wxgate serve` with this config text and waits for its address line.
    pub fn start(config_text: &str) -> Self {
        Self::spawn(config_text, "warn", false, "127.0.0.1:0", &[])
    }

    /// As [`start`](Self::start), with more arguments to `wxgate serve` (`--metrics-addr …`).
    pub fn start_with_args(config_text: &str, args: &[&str]) -> Self {
        Self::spawn(config_text, "warn", false, "127.0.0.1:0", args)
    }

    /// As [`start_logged`](Self::start_logged), listening on `addr` (a config that names
    /// its own URL, like an Open Platform app's `public_url`, needs it known beforehand).
    pub fn start_logged_on(config_text: &str, addr: &str) -> Self {
        Self::spawn(config_text, "info", true, addr, &[])
    }

    /// As [`start`](Self::start), logging at info and keeping what it logs ([`logs`](Self::logs)).
    pub fn start_logged(config_text: &str) -> Self {
        Self::spawn(config_text, "info", true, "127.0.0.1:0", &[])
    }

    /// Everything it logged so far (started with [`start_logged`](Self::start_logged)).
    pub fn logs(&self) -> String {
        self.logs
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Starts `wxgate serve` without `--config`, with `env` added (`WXGATE_CONFIG`, AWS
    /// settings), logging at `level` and keeping what it logs. `sim_config` is the config with
    /// its values written inline, for playing the platform.
    pub fn start_from_env(sim_config: &str, level: &str, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wxgate"));
        command
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("RUST_LOG", level)
            .env_remove("WXGATE_METRICS_ADDR")
            .envs(env.iter().map(|(k, v)| (k, v)));
        Self::launch(command, sim_config, true, TempDir::new("serve"))
    }

    fn spawn(config_text: &str, level: &str, keep_logs: bool, addr: &str, args: &[&str]) -> Self {
        let dir = TempDir::new("serve");
        let path = dir.0.join("wxgate.toml");
        std::fs::write(&path, config_text).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_wxgate"));
        command
            .args(["serve", "--addr", addr, "--config"])
            .arg(&path)
            .args(args)
            .env("RUST_LOG", level)
            .env_remove("WXGATE_CONFIG")
            .env_remove("WXGATE_METRICS_ADDR");
        Self::launch(command, config_text, keep_logs, dir)
    }

    fn launch(mut command: Command, config_text: &str, keep_logs: bool, dir: TempDir) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(if keep_logs {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("wxgate serve starts");
        let logs = child.stderr.take().map(|stderr| {
            let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let sink = std::sync::Arc::clone(&logs);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stderr);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    sink.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push_str(&line);
                    line.clear();
                }
            });
            logs
        });
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        // Keep draining, so the server never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| {
                let _ = child.wait();
                // The reader thread takes what the exited process wrote.
                std::thread::sleep(std::time::Duration::from_millis(200));
                let said = logs
                    .as_ref()
                    .map(|l| l.lock().unwrap().clone())
                    .unwrap_or_default();
                panic!("wxgate serve printed no address (first line {first:?}); it said:\n{said}")
            })
            .to_owned();
        Self {
            child,
            base,
            config: Config::parse(config_text).unwrap(),
            logs,
            _dir: dir,
        }
    }

    /// The platform, played for one of the configured apps.
    pub fn sim(&self, app: &str) -> PlatformSim {
        sim_of(&self.config, app)
    }

    /// Sends a signed request; status and body.
    pub async fn send(&self, request: &SignedRequest) -> (u16, String) {
        self.raw(
            request.method.clone(),
            &request.path_and_query(),
            request.body.clone(),
        )
        .await
    }

    /// Sends anything; status and body.
    pub async fn raw(
        &self,
        method: http::Method,
        path_and_query: &str,
        body: String,
    ) -> (u16, String) {
        let response = client()
            .request(method, format!("{}{path_and_query}", self.base))
            .body(body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nothing listens on now (bound, then released), for a server that must
/// know its URL before it starts.
///
/// The port is drawn below Linux's ephemeral range (32768–60999), which is where every
/// `bind(…:0)` of the other tests running at the same time gets its port: a port from that
/// range, released, could be handed to one of them before this server binds it.
pub fn free_addr() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id().rotate_left(16);
    let mut state = u64::from(seed) | 1;
    for _ in 0..200 {
        // xorshift: enough to spread concurrent callers over the range.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = 20_000 + (state % 12_000) as u16;
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return listener.local_addr().unwrap().to_string();
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}
