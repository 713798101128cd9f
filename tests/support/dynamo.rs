//! A real DynamoDB-compatible server for integration tests: [dynalite] (Node.js, in-memory),
//! pinned in `tools/dynalite/package-lock.json` and installed on first use with
//! `npm ci --prefix tools/dynalite`.
//!
//! * [`DynamoServer::start`] installs dynalite if needed, runs it on a free loopback port and
//!   waits until it answers; dropping it kills the server. [`DynamoServer::stop`] and
//!   [`DynamoServer::restart`] are for fault tests.
//! * [`client`] / [`config`] build an `aws_sdk_dynamodb` client for an endpoint (the server's,
//!   or a [`super::fault_proxy::FaultProxy`] in front of it) with static test credentials.
//! * [`create_table`] creates a `pk` (S) table and waits until it is ACTIVE;
//!   [`unique_table_name`] names one.
//!
//! Conditional writes, `if_not_exists`, `REMOVE`, `OR`/`AND` conditions, numeric `<`,
//! `ReturnValues` and `ConsistentRead` work (tests/dynamo_tooling.rs). What dynalite 3.2.2
//! does not do (probed with aws-sdk-dynamodb 1.136):
//! * `ReturnValuesOnConditionCheckFailure` is ignored: a `ConditionalCheckFailedException`
//!   never carries the old item (`err.item()` is `None`).
//! * `UpdateTimeToLive` is an `UnknownOperationException`; `DescribeTimeToLive` always says
//!   `DISABLED`; items are never expired.
//!
//! Needs `node` (v18+) and `npm` in `PATH`; without them [`DynamoServer::start`] panics with
//! what to install. Nothing is skipped silently.
//!
//! [dynalite]: https://github.com/mhart/dynalite
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};

/// How long [`DynamoServer::start`] waits for the server to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The region every test client uses; dynalite ignores it but the SDK signs with it.
pub const REGION: &str = "us-east-1";
/// The attribute [`create_table`] uses as partition key (type S).
pub const PARTITION_KEY: &str = "pk";

/// Watches stdin and exits when it closes, then runs dynalite's own `cli.js` (passed as
/// `process.argv[1]`, so the CLI sees the same argv as `node cli.js --port P ...`). The test
/// process holds the other end of the pipe: if it dies without running `Drop` (SIGINT,
/// SIGKILL, abort), the server goes with it instead of lingering in its own process group.
const STDIN_GUARD: &str = "process.stdin.on('end',()=>process.exit(0))\
    .on('error',()=>process.exit(0)).resume();require(process.argv[1])";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool_dir() -> PathBuf {
    root().join("tools/dynalite")
}

fn cli_js() -> PathBuf {
    tool_dir().join("node_modules/dynalite/cli.js")
}

// ------------------------------------------------------------------------------------------
// Installation
// ------------------------------------------------------------------------------------------

/// Runs `program --version`; an error with `install` as advice if that fails.
fn require_program(program: &str, install: &str) -> Result<String, String> {
    match Command::new(program).arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(out) => Err(format!(
            "`{program} --version` failed ({}): {}\n{install}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!(
            "`{program}` is needed to run dynalite (the DynamoDB test server) but could not be \
             started: {e}.\n{install}"
        )),
    }
}

/// The version pinned in tools/dynalite/package.json and the installed one, if any.
fn dynalite_versions() -> Result<(String, Option<String>), String> {
    let read = |path: PathBuf| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    };
    let manifest = tool_dir().join("package.json");
    let wanted = read(manifest.clone())
        .and_then(|v| v["dependencies"]["dynalite"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("{} does not pin dependencies.dynalite", manifest.display()))?;
    let installed = read(tool_dir().join("node_modules/dynalite/package.json"))
        .and_then(|v| v["version"].as_str().map(str::to_owned));
    Ok((wanted, installed))
}

/// Makes sure the pinned dynalite is in tools/dynalite/node_modules, running `npm ci` if it
/// is absent or another version; panics with what went wrong (and what to install) if it
/// cannot. Done once per test binary (a failure fails every test that asks again);
/// concurrent test binaries are serialised on an exclusive lock of
/// `.cache/dynalite-install.lock`, so only one of them installs and none sees a half-written
/// `node_modules`.
pub fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(message) = INSTALLED.get_or_init(install) {
        panic!("{message}");
    }
}

fn install() -> Result<(), String> {
    const NODE_HINT: &str = "Install Node.js 18 or newer (which ships npm), e.g. \
        `apt-get install nodejs npm` or from https://nodejs.org, and make sure `node` and \
        `npm` are in PATH.";
    require_program("node", NODE_HINT)?;

    let cache = root().join(".cache");
    std::fs::create_dir_all(&cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let lock_path = cache.join("dynalite-install.lock");
    // Held until this function returns.
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;

    let (wanted, installed) = dynalite_versions()?;
    if installed.as_deref() == Some(wanted.as_str()) && cli_js().is_file() {
        return Ok(());
    }
    require_program("npm", NODE_HINT)?;
    let out = Command::new("npm")
        .arg("ci")
        .arg("--prefix")
        .arg(tool_dir())
        .args(["--no-audit", "--no-fund"])
        .current_dir(tool_dir())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`npm ci --prefix tools/dynalite` failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    match dynalite_versions()? {
        (_, Some(installed)) if installed == wanted && cli_js().is_file() => Ok(()),
        (_, installed) => Err(format!(
            "npm ci finished but tools/dynalite/node_modules has dynalite {installed:?}, \
             not {wanted}"
        )),
    }
}

// ------------------------------------------------------------------------------------------
// The server
// ------------------------------------------------------------------------------------------

/// A running dynalite (in-memory) on `127.0.0.1:port`, in its own process group; killed and
/// reaped on drop (and, through its stdin guard, when the test process dies without dropping
/// it). Tables become ACTIVE at once (`--createTableMs 0`, likewise delete and update).
/// dynalite listens on all interfaces (its CLI takes no host); the endpoint is loopback.
pub struct DynamoServer {
    port: u16,
    /// Where the data lives on disk ([`DynamoServer::start_on_disk`]); `None`: in memory.
    path: Option<PathBuf>,
    process: Option<Process>,
}

struct Process {
    child: Child,
    /// Held open so the server's stdin guard keeps it alive; closed when dropped.
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
}

impl DynamoServer {
    /// Installs dynalite if needed, starts it on a free port and waits until it answers.
    /// Panics (with the server's stderr) if it does not come up within [`START_TIMEOUT`].
    pub fn start() -> DynamoServer {
        Self::start_with(None)
    }

    /// As [`start`](Self::start), keeping the data in a LevelDB store under `dir` (dynalite's
    /// `--path`), so a [`restart`](Self::restart) after [`stop`](Self::stop) finds the tables
    /// and items the killed server had written, as DynamoDB keeps them through an outage.
    pub fn start_on_disk(dir: &Path) -> DynamoServer {
        Self::start_with(Some(dir.to_owned()))
    }

    fn start_with(path: Option<PathBuf>) -> DynamoServer {
        ensure_installed();
        let mut last_error = String::new();
        // A port picked free can be taken before node binds it; try a few.
        for _ in 0..5 {
            let port = free_port();
            match Process::spawn(port, path.as_deref()) {
                Ok(process) => {
                    return DynamoServer {
                        port,
                        path,
                        process: Some(process),
                    };
                }
                Err(SpawnError::AddrInUse(stderr)) => last_error = stderr,
                Err(SpawnError::Failed(message)) => panic!("{message}"),
            }
        }
        panic!("dynalite could not bind a free port after 5 attempts; last stderr:\n{last_error}")
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:port`, e.g. as a [`super::fault_proxy::FaultProxy`] upstream.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running (not stopped, not exited).
    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|p| matches!(p.child.try_wait(), Ok(None)))
    }

    /// Kills the server now (SIGKILL to its process group) and reaps it: connections are
    /// reset and new ones refused. All data is lost unless it is kept on disk
    /// ([`start_on_disk`](Self::start_on_disk)). Idempotent.
    pub fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }

    /// Stops the server if running and starts it again on the same port: empty, or with the
    /// data on disk when started with [`start_on_disk`](Self::start_on_disk).
    pub fn restart(&mut self) {
        self.stop();
        match Process::spawn(self.port, self.path.as_deref()) {
            Ok(process) => self.process = Some(process),
            Err(SpawnError::AddrInUse(stderr)) => panic!(
                "dynalite cannot restart: port {} was taken meanwhile:\n{stderr}",
                self.port
            ),
            Err(SpawnError::Failed(message)) => panic!("{message}"),
        }
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.process
            .as_ref()
            .map(|p| lock(&p.stderr).clone())
            .unwrap_or_default()
    }
}

impl Drop for DynamoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

enum SpawnError {
    AddrInUse(String),
    Failed(String),
}

impl Process {
    fn spawn(port: u16, path: Option<&Path>) -> Result<Process, SpawnError> {
        let port_arg = port.to_string();
        let mut command = Command::new("node");
        command
            .arg("-e")
            .arg(STDIN_GUARD)
            .arg(cli_js())
            .args(["--port", &port_arg])
            .args(["--createTableMs", "0", "--deleteTableMs", "0"])
            .args(["--updateTableMs", "0"]);
        if let Some(path) = path {
            command.arg("--path").arg(path);
        }
        let mut child = command
            .current_dir(tool_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                SpawnError::Failed(format!(
                    "cannot start `node` for dynalite: {e}; install Node.js 18 or newer"
                ))
            })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stderr = capture_stderr(&mut child);
        // cli.js prints `Listening at http://:::PORT` once *its* listen succeeded. Waiting for
        // that line (rather than for the port to answer) cannot be fooled by another server
        // that won a race for the same port.
        let (listening_tx, listening) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if line.starts_with("Listening at") {
                    let _ = listening_tx.send(());
                }
            }
        });
        let mut process = Process {
            child,
            _stdin: stdin,
            stderr,
        };

        let started = Instant::now();
        loop {
            match listening.recv_timeout(Duration::from_millis(20)) {
                Ok(()) if healthy(port) => return Ok(process),
                Ok(()) => {
                    let stderr = lock(&process.stderr).clone();
                    process.kill();
                    return Err(SpawnError::Failed(format!(
                        "dynalite says it listens on port {port} but does not answer \
                         `GET /` on 127.0.0.1:{port}; stderr:\n{stderr}"
                    )));
                }
                Err(RecvTimeoutError::Timeout) => {}
                // stdout closed without the line: the process is exiting, `try_wait` below
                // sees it within a few rounds.
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                // Give the reader thread a moment to collect the last words.
                std::thread::sleep(Duration::from_millis(50));
                let stderr = lock(&process.stderr).clone();
                process.kill();
                return Err(if stderr.contains("EADDRINUSE") {
                    SpawnError::AddrInUse(stderr)
                } else {
                    SpawnError::Failed(format!(
                        "dynalite exited during startup ({status}); stderr:\n{stderr}"
                    ))
                });
            }
            if started.elapsed() > START_TIMEOUT {
                let stderr = lock(&process.stderr).clone();
                process.kill();
                return Err(SpawnError::Failed(format!(
                    "dynalite did not start listening on port {port} within \
                     {START_TIMEOUT:?}; stderr:\n{stderr}"
                )));
            }
        }
    }

    /// SIGKILL to the whole process group, then reap the child.
    fn kill(mut self) {
        kill_process_group(&mut self.child);
    }
}

/// Collects what a server child writes to stderr (its first 64 KiB), on a thread of its own,
/// so a failed start can say why.
pub fn capture_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().expect("piped stderr");
    let sink = Arc::clone(&stderr);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            let mut s = lock(&sink);
            if s.len() < 64 * 1024 {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    stderr
}

/// SIGKILL to `child`'s whole process group (it was started as a group leader), then reap
/// it; a plain kill of the child if the group cannot be signalled.
pub fn kill_process_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// `GET /` answers `healthy: dynamodb...` once dynalite is listening.
fn healthy(port: u16) -> bool {
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).contains("healthy")
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ------------------------------------------------------------------------------------------
// Clients and tables
// ------------------------------------------------------------------------------------------

/// The static test credentials every client of the local servers uses.
pub const ACCESS_KEY_ID: &str = "AKIDTESTTESTTESTTEST";
/// See [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "test-secret-access-key";

/// The environment a child process (the `wxgate` binary, a test worker) needs to use the
/// DynamoDB at `endpoint` with the static test credentials, in [`REGION`].
pub fn process_env(endpoint: &str) -> [(&'static str, String); 4] {
    [
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
    ]
}

/// The environment of the `wxgate` Lambda function as template.yaml deploys it with reply
/// jobs: `config`, the table `table` on the DynamoDB at `endpoint`, and the credentials as
/// Lambda hands a role's over (static test keys with a session token).
pub fn reply_jobs_env<'a>(
    config: &'a str,
    table: &'a str,
    endpoint: &'a str,
) -> [(&'static str, &'a str); 8] {
    [
        ("WXGATE_CONFIG", config),
        ("WXGATE_TABLE", table),
        ("WXGATE_REPLY_JOBS", "stream"),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", "test-session-token"),
        ("RUST_LOG", "info"),
    ]
}

/// A client config builder for `endpoint`: static test credentials, [`REGION`], no retries
/// (a test sees the first failure as it is), 1 s connect and 10 s operation timeouts. Adjust
/// with `.timeout_config(...)` / `.retry_config(...)` before `.build()`.
pub fn config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
    aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "wxgate-tests",
        ))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
}

/// A client for `endpoint` built from [`config`].
pub async fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(config(endpoint).build())
}

/// Creates table `name` with partition key [`PARTITION_KEY`] (S), on-demand billing, and
/// waits (up to 10 s) until it is ACTIVE. Panics with the SDK error if anything fails.
/// No TTL is configured: dynalite has no `UpdateTimeToLive`.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(PARTITION_KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(PARTITION_KEY)
                .key_type(KeyType::Hash)
                .build()
                .expect("key schema"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {:?}", e.into_service_error()));

    let started = Instant::now();
    loop {
        let table = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeTable {name}: {:?}", e.into_service_error()));
        let status = table.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "table {name} still {status:?} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `{prefix}-{pid}-{nanos}-{n}`: unique within and across test processes, and a valid table
/// name (`[a-zA-Z0-9_.-]`, 3..=255) if `prefix` is.
pub fn unique_table_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
