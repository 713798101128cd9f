//! The scripts a newcomer runs first, as processes: `scripts/demo.sh` plays the demo against
//! the server it started (never another one holding its port) and prints follow-up commands
//! that work as printed; `scripts/heartbeat.sh` (sam-check's `sam build`) says every so often
//! that a quiet command is still running, and passes its exit status on. They need bash
//! only; demo.sh is given the test's binary (`WXGATE_BIN`) instead of building one.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::cli::{BIN, Run, run};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn demo(addr: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(format!("{ROOT}/scripts/demo.sh"))
        .arg("--once")
        .env("WXGATE_BIN", BIN)
        .env("ADDR", addr)
        .env_remove("WXGATE_CONFIG")
        .env_remove("WXGATE_TABLE")
        .stdin(Stdio::null());
    cmd
}

/// The words of the printed line that starts with `{BIN} {verb}`.
fn printed_command(stdout: &str, verb: &str) -> Vec<String> {
    let prefix = format!("{BIN} {verb} ");
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `wxgate {verb}` line in {stdout}"));
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn the_demo_runs_and_its_follow_up_commands_work_as_printed() {
    // Port 0: the server picks a free one and the demo reads which from its first line.
    let Run {
        code,
        stdout,
        stderr,
    } = run(&mut demo("127.0.0.1:0"));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("$ wxgate send").count(), 8, "{stdout}");
    assert!(stdout.contains("demo done"), "{stdout}");

    let serve = printed_command(&stdout, "serve");
    let send = printed_command(&stdout, "send");
    assert!(send.iter().any(|w| w == "--url"), "{send:?}");
    let mut server = Command::new(&serve[0])
        .args(&serve[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let sent = run(Command::new(&send[0]).args(&send[1..]));
    let _ = server.kill();
    let _ = server.wait();
    assert!(first.starts_with("wxgate serving"), "{first}");
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    assert!(sent.stdout.contains("<![CDATA[hi]]>"), "{}", sent.stdout);
}

#[test]
fn a_taken_address_is_refused_before_any_callback_goes_to_it() {
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = other.local_addr().unwrap().to_string();
    let Run {
        code,
        stdout,
        stderr,
    } = run(&mut demo(&addr));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("something already listens on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("ADDR=127.0.0.1:3001"), "{stderr}");
    assert!(!stdout.contains("$ wxgate send"), "{stdout}");
}

fn heartbeat(every: &str, command: &str) -> Run {
    run(Command::new("bash").arg("-c").arg(format!(
        "source {ROOT}/scripts/heartbeat.sh && with_heartbeat {every} 'slow step' {command}"
    )))
}

#[test]
fn a_quiet_command_gets_progress_lines_and_keeps_its_exit_status() {
    let out = heartbeat("1", "sh -c 'echo working; sleep 2.5; exit 3'");
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stdout.starts_with("working\n"), "{}", out.stdout);
    let beats: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("slow step: still running after"))
        .collect();
    // One a second: at 1 s and 2 s (a loaded machine may lose or gain one).
    assert!((1..=3).contains(&beats.len()), "{}", out.stdout);
    assert!(beats[0].ends_with(" s"), "{beats:?}");

    // A command done before the first beat prints nothing more, succeeds, and leaves no
    // sleep behind holding the output open (a CI log would wait for it).
    let started = std::time::Instant::now();
    let out = heartbeat("30", "true");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
