//! A second DynamoDB-compatible server for integration tests: [moto] (Python, in-memory),
//! pinned with every dependency in `tools/moto/requirements.txt` and installed on first use
//! into `.cache/moto-venv` (`python3 -m venv` + `pip install -r`).
//!
//! Unlike dynalite ([`super::dynamo`]), moto 5.2.5 returns the old item with a failed
//! condition (`ReturnValuesOnConditionCheckFailure=ALL_OLD`, PutItem and UpdateItem) and has
//! `UpdateTimeToLive` / `DescribeTimeToLive` (it records the setting; whether it ever deletes
//! expired items was not tried: the store ignores them on read either way).
//! Clients and tables: [`super::dynamo::client`], [`super::dynamo::config`],
//! [`super::dynamo::create_table`] work against [`MotoServer::endpoint`] unchanged.
//!
//! * [`MotoServer::start`] installs moto if needed, runs it on a free loopback port and waits
//!   until it answers a DynamoDB request; dropping it kills the server.
//! * [`MotoServer::shared`] is one server for the whole test binary (started on first use, in
//!   0.5-0.9 s): tests on it must use their own tables ([`super::dynamo::unique_table_name`]).
//!
//! The server is `tools/moto/serve.py`: what `moto_server` runs, except that it serves one
//! request at a time (moto's conditional writes are not atomic under concurrent requests;
//! see that file), binds a port the OS picks and prints it, and exits when its stdin closes.
//! The test process holds that pipe, so no server outlives it (SIGKILL and abort included),
//! the shared one neither.
//!
//! Needs `python3` (3.9+) with the `venv` module and pip access to PyPI for the first
//! install; without them [`MotoServer::start`] panics with what to install. Nothing is
//! skipped silently.
//!
//! [moto]: https://github.com/getmoto/moto
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::loopback::lock;

/// How long [`MotoServer::start`] waits for the server to listen and then to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

const PYTHON_HINT: &str = "Install Python 3.9 or newer with its venv module, e.g. \
    `apt-get install python3 python3-venv`, and make sure `python3` is in PATH.";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool_dir() -> PathBuf {
    root().join("tools/moto")
}

fn venv_dir() -> PathBuf {
    root().join(".cache/moto-venv")
}

fn venv_python() -> PathBuf {
    venv_dir().join("bin/python")
}

/// A copy of the requirements the venv was installed from, written after a full install.
fn installed_stamp() -> PathBuf {
    venv_dir().join("wxgate-requirements.txt")
}

// ------------------------------------------------------------------------------------------
// Installation
// ------------------------------------------------------------------------------------------

/// Makes sure `.cache/moto-venv` holds exactly `tools/moto/requirements.txt`, (re)creating it
/// if it is absent, incomplete or from other requirements; panics with what went wrong (and
/// what to install) if it cannot. Done once per test binary (a failure fails every test that
/// asks again); concurrent test binaries are serialised on an exclusive lock of
/// `.cache/moto-install.lock`, so only one of them installs and none uses a half-built venv.
pub fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(message) = INSTALLED.get_or_init(install) {
        panic!("{message}");
    }
}

fn install() -> Result<(), String> {
    let requirements_path = tool_dir().join("requirements.txt");
    let requirements = std::fs::read_to_string(&requirements_path)
        .map_err(|e| format!("cannot read {}: {e}", requirements_path.display()))?;

    let cache = root().join(".cache");
    std::fs::create_dir_all(&cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let lock_path = cache.join("moto-install.lock");
    // Held until this function returns.
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;

    let installed = std::fs::read_to_string(installed_stamp()).ok();
    if installed.as_deref() == Some(requirements.as_str()) && venv_python().is_file() {
        return Ok(());
    }

    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(format!(
                "`python3 --version` failed ({}): {}\n{PYTHON_HINT}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Err(e) => {
            return Err(format!(
                "`python3` is needed to run moto (a DynamoDB test server) but could not be \
                 started: {e}.\n{PYTHON_HINT}"
            ));
        }
    }
    // `--clear`: a venv left half-installed by an interrupted run starts over.
    run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv_dir()),
        "python3 -m venv --clear .cache/moto-venv",
        PYTHON_HINT,
    )?;
    run(
        Command::new(venv_python())
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--quiet", "-r"])
            .arg(&requirements_path),
        "pip install -r tools/moto/requirements.txt (into .cache/moto-venv)",
        "pip needs to reach PyPI for the first install.",
    )?;
    run(
        Command::new(venv_python()).args([
            "-c",
            "import moto, flask, flask_cors, werkzeug; \
             from moto.moto_server.werkzeug_app import DomainDispatcherApplication",
        ]),
        "importing moto's server from .cache/moto-venv",
        "",
    )?;
    std::fs::write(installed_stamp(), &requirements)
        .map_err(|e| format!("cannot write {}: {e}", installed_stamp().display()))
}

/// Runs `command` to completion; an error with its output (and `hint`) if it fails.
fn run(command: &mut Command, what: &str, hint: &str) -> Result<(), String> {
    let out = command
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{what}`: {e}\n{hint}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{what}` failed ({}):\n{}\n{}\n{hint}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

// ------------------------------------------------------------------------------------------
// The server
// ------------------------------------------------------------------------------------------

/// A running moto (in-memory) on `127.0.0.1:port`, in its own process group; killed and
/// reaped on drop (and, through its stdin guard, when the test process dies without dropping
/// it).
pub struct MotoServer {
    port: u16,
    process: Option<Process>,
}

struct Process {
    child: Child,
    /// Held open so the server's stdin guard keeps it alive; closed when dropped.
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
}

impl MotoServer {
    /// Installs moto if needed, starts it on a free port and waits until it answers a
    /// DynamoDB `ListTables`. Panics (with the server's stderr) if it does not come up within
    /// [`START_TIMEOUT`].
    pub fn start() -> MotoServer {
        ensure_installed();
        match Process::spawn() {
            Ok((port, process)) => MotoServer {
                port,
                process: Some(process),
            },
            Err(message) => panic!("{message}"),
        }
    }

    /// One server for every test of this binary, started by the first caller. It is never
    /// dropped: it exits with the test process, when its stdin closes.
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(MotoServer::start)
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server wrote to stderr so far (its request log).
    pub fn stderr(&self) -> String {
        self.process
            .as_ref()
            .map(|p| lock(&p.stderr).clone())
            .unwrap_or_default()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }
}

impl Process {
    /// Starts `serve.py` on port 0 and returns the port it bound once it answers.
    fn spawn() -> Result<(u16, Process), String> {
        let mut child = Command::new(venv_python())
            .arg(tool_dir().join("serve.py"))
            .args(["127.0.0.1", "0"])
            .current_dir(tool_dir())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} for moto: {e}; delete .cache/moto-venv to reinstall",
                    venv_python().display()
                )
            })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stderr = super::dynamo::capture_stderr(&mut child);
        // serve.py prints `moto listening on 127.0.0.1:PORT` once its socket listens.
        let (port_tx, port_rx) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(port) = line
                    .strip_prefix("moto listening on 127.0.0.1:")
                    .and_then(|p| p.trim().parse::<u16>().ok())
                {
                    let _ = port_tx.send(port);
                }
            }
        });
        let mut process = Process {
            child,
            _stdin: stdin,
            stderr,
        };
        let fail = |process: Process, message: String| -> Result<(u16, Process), String> {
            let stderr = lock(&process.stderr).clone();
            process.kill();
            Err(format!("{message}; stderr:\n{stderr}"))
        };

        let started = Instant::now();
        let port = loop {
            match port_rx.recv_timeout(Duration::from_millis(20)) {
                Ok(port) => break port,
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
                return fail(process, format!("moto exited during startup ({status})"));
            }
            if started.elapsed() > START_TIMEOUT {
                return fail(
                    process,
                    format!("moto did not start listening within {START_TIMEOUT:?}"),
                );
            }
        };
        // Listening; the first DynamoDB request also loads moto's DynamoDB backend.
        loop {
            if answers_dynamodb(port) {
                return Ok((port, process));
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                return fail(process, format!("moto exited after binding ({status})"));
            }
            if started.elapsed() > START_TIMEOUT {
                return fail(
                    process,
                    format!(
                        "moto listens on 127.0.0.1:{port} but did not answer DynamoDB \
                         ListTables within {START_TIMEOUT:?}"
                    ),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL to the whole process group, then reap the child.
    fn kill(mut self) {
        super::dynamo::kill_process_group(&mut self.child);
    }
}

/// Whether `POST /` with a DynamoDB `ListTables` gets a `200` with `TableNames`. moto routes
/// by the credential scope of `Authorization` and does not check the signature.
fn answers_dynamodb(port: u16) -> bool {
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/x-amz-json-1.0\r\n\
         X-Amz-Target: DynamoDB_20120810.ListTables\r\n\
         Authorization: AWS4-HMAC-SHA256 \
         Credential={key}/20260101/{region}/dynamodb/aws4_request, \
         SignedHeaders=host, Signature=0\r\n\
         Content-Length: 2\r\n\r\n{{}}",
        key = super::dynamo::ACCESS_KEY_ID,
        region = super::dynamo::REGION
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    response
        .lines()
        .next()
        .is_some_and(|status| status.contains(" 200 "))
        && response.contains("TableNames")
}
