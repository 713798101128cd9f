//! Lambda cold start and warm invokes of the real `wxgate` binary, driven through the fake
//! Lambda Runtime API of `tests/support/runtime_api.rs` (issue 4).
//!
//! `cargo bench --bench cold_start` (the binary under test is the bench-profile build, which
//! inherits release: thin LTO, codegen-units = 1, strip). Knobs (environment):
//! * `COLD_START_RUNS` (default 30): cold starts measured, after one discarded spawn that puts
//!   the binary in the page cache;
//! * `WARM_INVOKES` (default 2000): sequential invokes per warm series;
//! * `PEER_PYTHON`: a Python with `awslambdaric` and `wechatpy` for the peer function
//!   (benches/peers/wechatpy_lambda.py); default `.cache/lambda-peer-venv/bin/python`, and the
//!   peer is skipped (with a note) when that Python cannot import them;
//! * `COLD_START_WRAPPER`: run wxgate under a command, e.g.
//!   `COLD_START_WRAPPER="strace -ff -ttt -o /tmp/wx/t" COLD_START_RUNS=1`, to see where the
//!   time goes (the figures then include the wrapper and no targets are judged).
//! * `COLD_START_REFERENCES` (e.g. `2,12`): instead of the rows above, cold starts of the
//!   function whose config is an SSM parameter (`WXGATE_CONFIG=ssm:…`) with that many `ssm:`
//!   references in it, against moto on loopback, next to the same config inline (no AWS
//!   request): what reading the config and secrets from AWS adds to a cold start.
//!
//! What is measured:
//! 1. Cold start: a fresh process per run, with the first event (a signed, encrypted WeCom
//!    text message with a fresh timestamp) queued before the spawn, timed from just before
//!    `spawn` to the `/response` arriving. Every answer is decrypted and must be the echo.
//!    Peak RSS is `VmHWM` read once the process is back in its second `/next` long-poll.
//! 2. Warm invokes: one process per row, `WARM_INVOKES` prebuilt events each, strictly one at
//!    a time (the rows take turns in blocks of 100, so machine drift hits all rows alike). The
//!    time per invoke is the harness's (event handed out on `/next` → `/response` received):
//!    the function's own time plus loopback Runtime API I/O and the harness's JSON work.
//!    For a text message (echo reply), a LOCATION event (`success`) and URL verification, with
//!    the default log level (`info`, as in production), and the text message again with
//!    `RUST_LOG=warn` to show the cost of the per-request log line.
//! 3. The size of the measured binary.

#[path = "../tests/support/aws_params.rs"]
mod aws_params;
#[path = "../tests/support/dynamo.rs"]
#[allow(rustdoc::broken_intra_doc_links)]
mod dynamo;
#[path = "../tests/support/loopback.rs"]
mod loopback;
#[path = "../tests/support/moto.rs"]
mod moto;
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use runtime_api::{FunctionProcess, RuntimeApi, apigw_v2_event};
use serde_json::Value;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::simulate::{
    Answer, Header, OFFICIAL_SAMPLE_APP, PlatformSim, SignedRequest, location_xml, text_xml,
};

const BIN: &str = env!("CARGO_BIN_EXE_wxgate");

/// A realistic production config: the WeCom app under test (public test values of the
/// official sample code) and an MP app, so config parsing and key setup are not trivial.
static CONFIG: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"{OFFICIAL_SAMPLE_APP}
[[apps]]
name = "shop"
platform = "mp"
app_id = "wxshop0000000001"
token = "shoptoken"
encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
reply = {{ echo = true, subscribe = "thanks for following" }}
"#
    )
});

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Location,
    VerifyUrl,
    /// A route no app serves: the floor of one invoke (runtime loop, API Gateway request
    /// conversion, a 404), with no crypto.
    NotFound,
}

/// A Lambda function to measure: the program, its arguments and extra environment (on top
/// of [`RuntimeApi::env`] and `WXGATE_CONFIG`).
struct Function {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Whether the issue's targets apply (they are wxgate's, not the peer's).
    targets: bool,
    /// The median cold start targeted, in milliseconds.
    cold_target_ms: u64,
}

impl Function {
    /// The wxgate binary; with `COLD_START_WRAPPER` (e.g. `strace -ff -ttt -o /tmp/wx/t`,
    /// one trace file per process) it runs under that command instead, for finding where the
    /// time goes (the figures then include the wrapper's overhead).
    fn wxgate() -> Self {
        let wrapper: Vec<String> = std::env::var("COLD_START_WRAPPER")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        match wrapper.split_first() {
            None => Function {
                name: "wxgate".into(),
                program: BIN.into(),
                args: Vec::new(),
                env: Vec::new(),
                targets: true,
                cold_target_ms: 10,
            },
            Some((program, args)) => {
                let mut args = args.to_vec();
                args.push(BIN.into());
                Function {
                    name: format!("wxgate under `{}`", wrapper.join(" ")),
                    program: program.into(),
                    args,
                    env: Vec::new(),
                    targets: false,
                    cold_target_ms: 10,
                }
            }
        }
    }

    /// The wechatpy peer (benches/peers/wechatpy_lambda.py) under awslambdaric, if a Python
    /// with both is found: `PEER_PYTHON`, else `.cache/lambda-peer-venv/bin/python`.
    fn wechatpy() -> Option<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = std::env::var_os("PEER_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".cache/lambda-peer-venv/bin/python"));
        let ok = std::process::Command::new(&python)
            .args(["-c", "import awslambdaric, wechatpy, cryptography"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "note: no Python with awslambdaric + wechatpy at {} (set PEER_PYTHON); \
                 skipping the wechatpy peer",
                python.display()
            );
            return None;
        }
        let peers = root.join("benches/peers");
        Some(Function {
            name: "wechatpy 1.8.18 + awslambdaric (Python 3)".into(),
            program: python,
            args: vec![
                "-m".into(),
                "awslambdaric".into(),
                "wechatpy_lambda.handler".into(),
            ],
            env: vec![
                ("PYTHONPATH".into(), peers.display().to_string()),
                ("LAMBDA_TASK_ROOT".into(), peers.display().to_string()),
                // Bytecode caches out of the source tree (still cached, as in a deployment).
                (
                    "PYTHONPYCACHEPREFIX".into(),
                    root.join(".cache/lambda-peer-pycache")
                        .display()
                        .to_string(),
                ),
            ],
            targets: false,
            cold_target_ms: 10,
        })
    }

    /// wxgate as the SAM template deploys it: `WXGATE_TABLE` set, so dedup goes to
    /// DynamoDB (here dynalite on loopback, through `AWS_ENDPOINT_URL_DYNAMODB`). The cold
    /// start then includes building the SDK client and the first callback's claim and
    /// completion requests, on a new connection.
    fn wxgate_dynamodb(endpoint: &str, table: &str) -> Self {
        let env = [
            ("WXGATE_TABLE", table),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
            ("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTESTTEST"),
            ("AWS_SECRET_ACCESS_KEY", "test-secret-access-key"),
            ("AWS_SESSION_TOKEN", "test-session-token"),
        ];
        Function {
            name: "wxgate, DynamoDB store (dynalite on loopback)".into(),
            program: BIN.into(),
            args: Vec::new(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            targets: true,
            cold_target_ms: 25,
        }
    }

    /// wxgate with its config in the SSM parameter `config_parameter` of the moto at
    /// `endpoint`, holding `references` `ssm:` references ([`referencing_config`]): the init
    /// phase reads the config, then its references, before the first callback.
    fn wxgate_references(endpoint: &str, config_parameter: &str, references: usize) -> Self {
        let mut env: Vec<(String, String)> = aws_params::process_env(endpoint)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        env.push(("WXGATE_CONFIG".into(), format!("ssm:{config_parameter}")));
        Function {
            name: format!(
                "wxgate, config in SSM with {references} ssm: references (moto on loopback)"
            ),
            program: BIN.into(),
            args: Vec::new(),
            env,
            targets: false,
            cold_target_ms: 25,
        }
    }

    fn spawn(&self, api: RuntimeApi, extra_env: &[(&str, &str)]) -> FunctionProcess {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut env: Vec<(&str, &str)> = vec![("WXGATE_CONFIG", CONFIG.as_str())];
        env.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        env.extend_from_slice(extra_env);
        FunctionProcess::spawn_with(api, &self.program, &args, &env)
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.name))
    }
}

/// [`CONFIG`] with `references` of its values in Parameter Store under `prefix`: the demo
/// app's token and key, then the tokens of further Official Accounts (plaintext, echo) up to
/// `references` (at least 2).
fn referencing_config(prefix: &str, references: usize) -> (String, Vec<(String, String)>) {
    let token = "QDG6eK";
    let key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    let mut values = vec![
        (format!("{prefix}/demo/token"), token.to_owned()),
        (format!("{prefix}/demo/key"), key.to_owned()),
    ];
    let mut text = CONFIG
        .replacen(
            &format!("\"{token}\""),
            &format!("\"ssm:{prefix}/demo/token\""),
            1,
        )
        .replacen(
            &format!("\"{key}\""),
            &format!("\"ssm:{prefix}/demo/key\""),
            1,
        );
    for i in 0..references.saturating_sub(2) {
        let name = format!("{prefix}/blog{i}/token");
        text.push_str(&format!(
            "\n[[apps]]\nname = \"blog{i}\"\nplatform = \"mp\"\ntoken = \"ssm:{name}\"\n"
        ));
        values.push((name, format!("blogtoken{i}")));
    }
    (text, values)
}

/// The cold starts of `COLD_START_REFERENCES`: the config inline, then in SSM with each
/// number of references, all while moto runs.
async fn reference_cold_starts(sim: &PlatformSim, counts: &[usize], runs: usize) {
    let moto = moto::MotoServer::start();
    let endpoint = moto.endpoint();
    cold_starts(sim, &Function::wxgate(), runs).await;
    for &references in counts {
        let prefix = format!("/wxgate-bench/refs{references}");
        let (text, values) = referencing_config(&prefix, references.max(2));
        for (name, value) in &values {
            aws_params::put_secure(&endpoint, name, value).await;
        }
        let config_parameter = format!("{prefix}/config");
        aws_params::put_secure(&endpoint, &config_parameter, &text).await;
        let func = Function::wxgate_references(&endpoint, &config_parameter, values.len());
        cold_starts(sim, &func, runs).await;
    }
}

/// One prepared callback: the API Gateway v2 event and what the platform will check.
struct Prepared {
    request: SignedRequest,
    event: Value,
    expect: String,
}

static NEXT_MSG_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000_000);

fn prepare(sim: &PlatformSim, kind: Kind, n: u64) -> Prepared {
    let now = unix_now();
    let header = Header {
        to: sim.receive_id(),
        from: "lisi",
        create_time: now,
        agent_id: sim.agent_id(),
    };
    let nonce = format!("n{n}");
    let (request, expect) = match kind {
        Kind::Text => {
            let content = format!("hello {n}");
            // A new MsgId every time, so that with a store every callback is a first delivery.
            let msg_id = NEXT_MSG_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let request = sim.post(&text_xml(&header, &content, msg_id), now, &nonce);
            (request, content)
        }
        Kind::Location => {
            let request = sim.post(&location_xml(&header, 23.137466, 113.352425), now, &nonce);
            (request, String::new())
        }
        Kind::VerifyUrl => {
            let echo = format!("echo-{n}-1616140317555161061");
            (sim.verify_url(&echo, now, &nonce), echo)
        }
        Kind::NotFound => {
            let mut request = sim.post(&text_xml(&header, "x", n), now, &nonce);
            if let Ok(r) = &mut request {
                r.path = "/wecom/nobody".into();
            }
            (request, String::new())
        }
    };
    let request = request.expect("sign and encrypt");
    let body = (!request.body.is_empty()).then_some(request.body.as_str());
    let event = apigw_v2_event(
        request.method.as_str(),
        &request.path,
        &request.query,
        body,
        false,
    );
    Prepared {
        request,
        event,
        expect,
    }
}

/// Checks the answer the way the platform would, and that it is the one expected.
fn verify(sim: &PlatformSim, kind: Kind, p: &Prepared, inv: &runtime_api::Invocation) {
    let r = inv.response().expect("an API Gateway response");
    if let Kind::NotFound = kind {
        assert_eq!(r.status, 404, "{}", r.text());
        return;
    }
    let answer = sim
        .check(&p.request, r.status, &r.text())
        .unwrap_or_else(|e| panic!("the platform would refuse the answer: {e}"));
    let ok = match (kind, &answer) {
        (Kind::Text, Answer::Reply(xml)) => {
            xml.contains(&format!("<Content><![CDATA[{}]]></Content>", p.expect))
        }
        (Kind::Location, Answer::Empty) => true,
        (Kind::VerifyUrl, Answer::Verified(echo)) => *echo == p.expect,
        _ => false,
    };
    assert!(ok, "unexpected answer {answer:?}");
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nearest-rank percentile of sorted data.
fn pct<T: Copy>(sorted: &[T], p: f64) -> T {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn mib(kib: u64) -> String {
    format!("{:.2} MiB", kib as f64 / 1024.0)
}

/// Reads one duration out of a cold run.
type Metric = fn(&ColdRun) -> Duration;
/// Extra environment variables of a function process.
type Env<'a> = &'a [(&'a str, &'a str)];

struct ColdRun {
    total: Duration,
    spawn_returned: Duration,
    to_first_next: Duration,
    first_handling: Duration,
    peak_rss_kib: u64,
    /// CPU time of the process up to its second `/next` poll (`/proc/<pid>/schedstat`).
    cpu: Option<Duration>,
    /// Page faults (minor, major) of the process up to then (`/proc/<pid>/stat`).
    faults: Option<(u64, u64)>,
}

/// On-CPU time of a live process, from the first field of `/proc/<pid>/schedstat` (ns).
fn cpu_time(pid: u32) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Minor and major page faults of a live process, from `/proc/<pid>/stat`.
fn page_faults(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state ppid pgrp session tty tpgid flags minflt cminflt majflt
    let rest: Vec<&str> = s.get(s.rfind(')')? + 2..)?.split(' ').collect();
    Some((rest.get(7)?.parse().ok()?, rest.get(9)?.parse().ok()?))
}

async fn cold_run(sim: &PlatformSim, func: &Function, n: u64) -> ColdRun {
    let p = prepare(sim, Kind::Text, n);
    let api = RuntimeApi::start().await;
    let pending = api.submit(p.event.clone());
    let mut f = func.spawn(api, &[]);
    let spawn_returned = f.spawned_at().elapsed();
    let inv = f.wait(pending).await.expect("the first invoke");
    let total = inv.completed_at - f.spawned_at();
    verify(sim, Kind::Text, &p, &inv);
    let cold = f.cold_start();
    // Let the function get back into its next long-poll, so VmHWM covers a whole cycle.
    for _ in 0..4000 {
        if f.api().next_polls() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_micros(250)).await;
    }
    assert!(f.api().surprises().is_empty(), "{:?}", f.api().surprises());
    let cpu = cpu_time(f.pid());
    let faults = page_faults(f.pid());
    let stopped = f.stop();
    ColdRun {
        cpu,
        faults,
        total,
        spawn_returned,
        to_first_next: cold.to_first_next.expect("a /next poll"),
        first_handling: inv.elapsed,
        peak_rss_kib: stopped.peak_rss_kib.expect("VmHWM"),
    }
}

async fn cold_starts(sim: &PlatformSim, func: &Function, runs: usize) {
    // One discarded run: the binary into the page cache, the bench's own paths warmed up.
    let _ = cold_run(sim, func, 0).await;
    let mut all = Vec::with_capacity(runs);
    for i in 0..runs {
        all.push(cold_run(sim, func, 1 + i as u64).await);
        // Let the killed process be torn down before the next spawn.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sorted = |f: fn(&ColdRun) -> Duration| {
        let mut v: Vec<Duration> = all.iter().map(f).collect();
        v.sort();
        v
    };
    let total = sorted(|r| r.total);
    let mut rss: Vec<u64> = all.iter().map(|r| r.peak_rss_kib).collect();
    rss.sort();
    println!(
        "## {}: cold start ({runs} runs, first event queued before spawn, echo reply verified)",
        func.name
    );
    println!();
    println!("| | min | median | p90 | max |");
    println!("|---|---|---|---|---|");
    println!(
        "| spawn → first /response (cold start) | {} | **{}** | {} | {} |",
        ms(total[0]),
        ms(pct(&total, 50.0)),
        ms(pct(&total, 90.0)),
        ms(total[total.len() - 1])
    );
    let phases: [(&str, Metric); 3] = [
        ("phase: spawn() returned (fork + exec)", |r| {
            r.spawn_returned
        }),
        ("phase: spawn → first GET /next (init)", |r| {
            r.to_first_next
        }),
        (
            "phase: event handed out → /response (1st handling)",
            |r| r.first_handling,
        ),
    ];
    for (name, f) in phases {
        let v = sorted(f);
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms(v[0]),
            ms(pct(&v, 50.0)),
            ms(pct(&v, 90.0)),
            ms(v[v.len() - 1])
        );
    }
    println!(
        "| peak RSS (VmHWM) | {} | **{}** | {} | {} |",
        mib(rss[0]),
        mib(pct(&rss, 50.0)),
        mib(pct(&rss, 90.0)),
        mib(rss[rss.len() - 1])
    );
    let mut cpu: Vec<Duration> = all.iter().filter_map(|r| r.cpu).collect();
    cpu.sort();
    if !cpu.is_empty() {
        println!(
            "| process CPU time to the 2nd /next (schedstat) | {} | {} | {} | {} |",
            ms(cpu[0]),
            ms(pct(&cpu, 50.0)),
            ms(pct(&cpu, 90.0)),
            ms(cpu[cpu.len() - 1])
        );
    }
    let mut minflt: Vec<u64> = all.iter().filter_map(|r| r.faults.map(|f| f.0)).collect();
    minflt.sort();
    let majflt: u64 = all.iter().filter_map(|r| r.faults.map(|f| f.1)).sum();
    if !minflt.is_empty() {
        println!(
            "| minor page faults (major: {majflt} in all runs) | {} | {} | {} | {} |",
            minflt[0],
            pct(&minflt, 50.0),
            pct(&minflt, 90.0),
            minflt[minflt.len() - 1]
        );
    }
    println!();
    if !func.targets {
        return;
    }
    let median = pct(&total, 50.0);
    let rss_max = rss[rss.len() - 1];
    println!(
        "targets: median cold start ≤ {} ms: {} ({}); peak RSS ≤ 16 MiB: {} (median {}, max {})",
        func.cold_target_ms,
        if median <= Duration::from_millis(func.cold_target_ms) {
            "met"
        } else {
            "MISSED"
        },
        ms(median),
        if rss_max <= 16 * 1024 {
            "met"
        } else {
            "MISSED"
        },
        mib(pct(&rss, 50.0)),
        mib(rss_max),
    );
    println!();
}

struct Series {
    label: String,
    sorted: Vec<Duration>,
    peak_rss_kib: Option<u64>,
    /// The function process's CPU time per invoke over the timed series (schedstat).
    cpu_per_invoke: Option<Duration>,
}

/// One warm series in the making: its own process and its prebuilt events.
struct Warm {
    kind: Kind,
    label: &'static str,
    f: FunctionProcess,
    prepared: Vec<Prepared>,
    invocations: Vec<runtime_api::Invocation>,
    /// The process's CPU time before the timed series.
    cpu_before: Option<Duration>,
}

/// Invokes per block: the series take turns in blocks of this many sequential invokes, so a
/// drift of the machine (this is a shared 2-vCPU VM) spreads over all rows alike.
const BLOCK: usize = 100;

async fn warm_invokes(sim: &PlatformSim, func: &Function, invokes: usize, full: bool) {
    let mut specs: Vec<(Kind, &'static str, Env)> =
        vec![(Kind::Text, "text message → encrypted echo reply", &[])];
    if full {
        specs.extend([
            (Kind::Location, "LOCATION event → `success`", &[][..]),
            (Kind::VerifyUrl, "URL verification (GET, echostr)", &[]),
            (
                Kind::Text,
                "text message, `RUST_LOG=warn`",
                &[("RUST_LOG", "warn")],
            ),
            (Kind::NotFound, "unknown route → 404 (loop floor)", &[]),
        ]);
    }
    let mut all = Vec::new();
    for (kind, label, env) in specs {
        let mut f = func.spawn(RuntimeApi::start().await, env);
        // Warm-up, untimed: first-use paths, allocator arenas, the runtime API connection.
        for i in 0..50 {
            let p = prepare(sim, kind, 10_000_000 + i);
            let inv = f.invoke(p.event.clone()).await.expect("warm-up invoke");
            verify(sim, kind, &p, &inv);
        }
        // Every event is built and signed before anything is timed.
        let prepared = (0..invokes as u64).map(|i| prepare(sim, kind, i)).collect();
        all.push(Warm {
            kind,
            label,
            cpu_before: cpu_time(f.pid()),
            f,
            prepared,
            invocations: Vec::with_capacity(invokes),
        });
    }
    for start in (0..invokes).step_by(BLOCK) {
        for w in &mut all {
            for p in &w.prepared[start..(start + BLOCK).min(invokes)] {
                let inv = w.f.invoke(p.event.clone()).await.expect("warm invoke");
                w.invocations.push(inv);
            }
        }
    }
    let mut series = Vec::new();
    for w in all {
        // Checked after the series, so decrypting does not sit between invokes.
        for (p, inv) in w.prepared.iter().zip(&w.invocations) {
            verify(sim, w.kind, p, inv);
        }
        assert!(
            w.f.api().surprises().is_empty(),
            "{:?}",
            w.f.api().surprises()
        );
        // The processes sit in their /next long-poll (no CPU) while others are verified.
        let cpu_per_invoke = w
            .cpu_before
            .zip(cpu_time(w.f.pid()))
            .map(|(before, after)| (after - before) / invokes as u32);
        let stopped = w.f.stop();
        let mut times: Vec<Duration> = w.invocations.iter().map(|i| i.elapsed).collect();
        times.sort();
        series.push(Series {
            label: w.label.to_owned(),
            sorted: times,
            peak_rss_kib: stopped.peak_rss_kib,
            cpu_per_invoke,
        });
    }
    println!(
        "## {}: warm invokes ({invokes} sequential per row, one process per row, rows taking turns in blocks of {BLOCK})",
        func.name
    );
    println!();
    println!("Time from the event handed out on /next to its /response received.");
    println!();
    println!(
        "| callback | p50 | p90 | p99 | max | function CPU per invoke | peak RSS at the end |"
    );
    println!("|---|---|---|---|---|---|---|");
    for s in &series {
        let v = &s.sorted;
        println!(
            "| {} | **{}** | {} | {} | {} | {} | {} |",
            s.label,
            us(pct(v, 50.0)),
            us(pct(v, 90.0)),
            us(pct(v, 99.0)),
            us(v[v.len() - 1]),
            s.cpu_per_invoke.map_or_else(|| "?".into(), us),
            s.peak_rss_kib.map_or_else(|| "?".into(), mib),
        );
    }
    println!();
    let p50 = pct(&series[0].sorted, 50.0);
    // The warm target is for the embedded store; with DynamoDB two store round trips are
    // part of every new message.
    if !func.targets || func.cold_target_ms != 10 {
        return;
    }
    println!(
        "target: warm p50 ≤ 0.3 ms (text message): {} ({})",
        if p50 <= Duration::from_micros(300) {
            "met"
        } else {
            "MISSED"
        },
        us(p50)
    );
    println!();
}

/// Spawn → exit of a trivial binary: the OS floor under any cold start on this machine.
fn spawn_floor(runs: usize) -> Option<Duration> {
    let bin = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let mut v: Vec<Duration> = (0..runs)
        .filter_map(|_| {
            let t = Instant::now();
            std::process::Command::new(bin)
                .env_clear()
                .status()
                .ok()
                .map(|_| t.elapsed())
        })
        .collect();
    v.sort();
    (!v.is_empty()).then(|| pct(&v, 50.0))
}

fn main() {
    // `cargo bench` passes `--bench`; this bench takes no filter.
    let runs = env_usize("COLD_START_RUNS", 30).max(1);
    let invokes = env_usize("WARM_INVOKES", 2000).max(1);

    let config = Config::parse(&CONFIG).expect("the bench config parses");
    let sim = PlatformSim::new(config.app("demo").expect("app demo")).expect("sim");

    let size = std::fs::metadata(BIN).map(|m| m.len()).unwrap_or(0);
    println!("# wxgate Lambda cold start / warm invokes");
    println!();
    println!("binary: {BIN}");
    println!(
        "binary size: {size} bytes ({:.2} MiB){}",
        size as f64 / (1024.0 * 1024.0),
        if has_symtab(BIN) {
            ", NOT stripped (.symtab present)"
        } else {
            ", stripped"
        }
    );
    if let Some(floor) = spawn_floor(30) {
        println!(
            "OS floor: spawn → exit of /usr/bin/true, median of 30: {}",
            ms(floor)
        );
    }
    println!();

    // The harness side runs on one thread, leaving the other core to the function.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let wxgate = Function::wxgate();
    let peer = Function::wechatpy();
    if let Ok(counts) = std::env::var("COLD_START_REFERENCES") {
        let counts: Vec<usize> = counts
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        rt.block_on(reference_cold_starts(&sim, &counts, runs));
        return;
    }
    rt.block_on(async {
        cold_starts(&sim, &wxgate, runs).await;
        warm_invokes(&sim, &wxgate, invokes, true).await;
        if std::env::var_os("COLD_START_NO_DYNAMODB").is_none() {
            let server = dynamo::DynamoServer::start();
            let db = dynamo::client(&server.endpoint()).await;
            let table = dynamo::unique_table_name("coldstart");
            dynamo::create_table(&db, &table).await;
            let with_store = Function::wxgate_dynamodb(&server.endpoint(), &table);
            cold_starts(&sim, &with_store, runs).await;
            warm_invokes(&sim, &with_store, invokes, false).await;
        }
        if let Some(peer) = &peer {
            cold_starts(&sim, peer, runs).await;
            warm_invokes(&sim, peer, invokes, false).await;
        }
    });
}

/// Whether the ELF file has a `.symtab` section (i.e. is not stripped). 64-bit LE only.
fn has_symtab(path: &str) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    let rd = |at: usize, n: usize| -> Option<u64> {
        let s = b.get(at..at + n)?;
        Some(s.iter().rev().fold(0u64, |acc, &x| acc << 8 | x as u64))
    };
    let parse = || -> Option<bool> {
        if b.get(..4)? != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
            return None;
        }
        let shoff = rd(0x28, 8)? as usize;
        let shentsize = rd(0x3a, 2)? as usize;
        let shnum = rd(0x3c, 2)? as usize;
        let shstrndx = rd(0x3e, 2)? as usize;
        let strtab_off = rd(shoff + shstrndx * shentsize + 0x18, 8)? as usize;
        for i in 0..shnum {
            let name = rd(shoff + i * shentsize, 4)? as usize;
            let start = strtab_off + name;
            let end = start + b.get(start..)?.iter().position(|&c| c == 0)?;
            if &b[start..end] == b".symtab" {
                return Some(true);
            }
        }
        Some(false)
    };
    parse().unwrap_or(false)
}
