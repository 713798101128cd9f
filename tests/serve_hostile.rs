//! `wxgate serve` as a process against clients that hold its connections: half-sent heads,
//! half-sent bodies, idle keep-alive connections, hundreds of connections under a low
//! file-descriptor limit, and a limit so low that accepting fails. Real callbacks, sent by
//! `wxgate send` as the platform would, keep being answered throughout.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::fake_platform::FakePlatform;
use support::fake_upstream::{Behavior, FakeUpstream};
use support::serve::TempDir;

/// The official sample app, answering with echo.
const CONFIG: &str = wxgate::simulate::OFFICIAL_SAMPLE_APP;

/// A running `wxgate serve` under a descriptor limit, its stderr collected; killed on drop.
struct Serve {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
    config: std::path::PathBuf,
    _dir: TempDir,
}

impl Serve {
    fn start(fd_limit: u32) -> Serve {
        Self::start_with(fd_limit, CONFIG)
    }

    fn start_with(fd_limit: u32, config_text: &str) -> Serve {
        let dir = TempDir::new("hostile");
        let config = dir.0.join("wxgate.toml");
        std::fs::write(&config, config_text).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {fd_limit} && exec \"$0\" serve --addr 127.0.0.1:0 --config \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_wxgate"))
            .arg(&config)
            .env("RUST_LOG", "info")
            .env_remove("WXGATE_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let addr = first
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}: {}", stderr.lock().unwrap()))
            .to_owned();
        Serve {
            child,
            addr,
            stderr,
            config,
            _dir: dir,
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stream
    }

    /// Runs `wxgate send … text TEXT` against this server.
    fn send_text(&self, text: &str) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_wxgate"))
            .args([
                "send",
                "--url",
                &format!("http://{}", self.addr),
                "--app",
                "demo",
            ])
            .arg("--config")
            .arg(&self.config)
            .args(["text", text])
            .output()
            .unwrap()
    }

    /// `wxgate send … text TEXT` against this server: whether the echo came back verified.
    fn callback(&self, text: &str) -> bool {
        let out = self.send_text(text);
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(text)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until the server closes the connection; what it sent and when it closed.
fn read_until_closed(mut stream: TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn slow_and_idle_clients_are_closed_within_seconds_while_callbacks_are_answered() {
    let serve = Serve::start(4096);
    // Half a request head, never finished.
    let mut half_head = serve.connect();
    half_head
        .write_all(b"POST /wecom/demo?timestamp=1 HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // A whole head promising 100 bytes of body, and 10 of them.
    let mut half_body = serve.connect();
    half_body
        .write_all(b"POST /wecom/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .unwrap();
    // One request answered, then nothing more on the kept-alive connection.
    let mut idle = serve.connect();
    idle.write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let handles =
        [half_head, half_body, idle].map(|s| std::thread::spawn(move || read_until_closed(s)));
    // Meanwhile the platform's callbacks are answered as usual.
    for i in 0..3 {
        assert!(
            serve.callback(&format!("still here {i}")),
            "{}",
            serve.stderr()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let [half_head, half_body, idle] = handles.map(|h| h.join().unwrap());
    let within = Duration::from_secs(8);
    assert!(
        half_head.1 < within,
        "a half-sent head held {:?}",
        half_head.1
    );
    assert!(half_head.0.is_empty(), "{}", half_head.0);
    assert!(
        half_body.1 < within,
        "a half-sent body held {:?}",
        half_body.1
    );
    assert!(half_body.0.starts_with("HTTP/1.1 408"), "{}", half_body.0);
    assert!(idle.1 < within, "an idle connection held {:?}", idle.1);
    assert!(idle.0.starts_with("HTTP/1.1 404"), "{}", idle.0);
    assert!(serve.callback("after them"));
}

#[test]
fn held_connections_under_a_low_descriptor_limit_leave_room_for_a_callback() {
    // 256 descriptors: at most 192 client connections. 300 clients each send half a head
    // and hold on.
    let serve = Serve::start(256);
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut stream = serve.connect();
        let _ = stream.write_all(b"POST /wecom/demo HTTP/1.1\r\nHost: x\r\n");
        held.push(stream);
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert!(serve.callback("made room"), "{}", serve.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the callback waited {:?}",
        started.elapsed()
    );
    drop(held);
}

#[test]
fn failing_accepts_are_logged_at_most_once_a_second() {
    // So few descriptors that accepting fails once a handful of connections are open.
    let serve = Serve::start(16);
    let mut held = Vec::new();
    for _ in 0..40 {
        if let Ok(stream) = TcpStream::connect(&serve.addr) {
            held.push(stream);
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    let logs = serve.stderr();
    let failures = logs.matches("accept failed").count();
    assert!(failures >= 1, "accepting never failed: {logs}");
    assert!(failures <= 5, "{failures} lines in 3 s: {logs}");
    drop(held);
    // Once the held connections time out, the server accepts again.
    std::thread::sleep(Duration::from_secs(6));
    assert!(serve.callback("recovered"), "{}", serve.stderr());
}

/// A late reply still running when the server is told to stop: its callback was answered
/// empty (and recorded so), so the reply is owed. The server waits for it before exiting.
#[test]
fn a_late_reply_running_at_shutdown_is_sent_before_the_server_exits() {
    let platform = FakePlatform::start();
    let secret = "serve-shutdown-test-secret-0123456789";
    let upstream = FakeUpstream::start(
        secret,
        Behavior::text("worth the wait").after(Duration::from_millis(3000)),
    );
    let config = support::fake_platform::forward_app_config(
        "budget_ms = 500",
        &platform.url(),
        &upstream.url(),
        secret,
        5000,
        "",
    );
    let mut serve = Serve::start_with(4096, &config);
    let out = serve.send_text("take your time");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty answer"));
    assert_eq!(platform.delivered(), 0, "not yet: the upstream takes 3 s");
    let stopped = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let started = Instant::now();
    let status = serve.child.wait().unwrap();
    assert!(status.success(), "{status:?}: {}", serve.stderr());
    assert!(started.elapsed() < Duration::from_secs(10));
    let sent = platform.sent();
    assert_eq!(
        sent.len(),
        1,
        "the late reply went out before the exit: {}",
        serve.stderr()
    );
    assert_eq!(sent[0].content, "worth the wait");
}
