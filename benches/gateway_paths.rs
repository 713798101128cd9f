//! One gateway path run N times in process, for counting instructions under callgrind
//! (repeatable where timings on a shared 2-core machine are not):
//!
//! ```sh
//! cargo bench --bench gateway_paths --no-run
//! bin=$(ls target/release/deps/gateway_paths-* | grep -v '\.d$')
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null $bin new 200   # and 400
//! ```
//!
//! The difference between the two totals, divided by 200, is one callback. Paths: `new` (a
//! WeCom text message with a new MsgId, answered with an echo; the loop also builds and
//! encrypts each request), `retry` (the same message again, answered from its record),
//! `location` (LOCATION, answered `success`), `verify` (URL verification). Run as
//! `cargo bench --bench gateway_paths`, it runs each path once to show it works.

use wxgate::config::Config;
use wxgate::gateway::Gateway;
use wxgate::simulate::{Header, OFFICIAL_SAMPLE_APP, PlatformSim, location_xml, text_xml};

const TEXT: &str = "你好，wxgate 👋 今天天气怎么样？";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runs: Vec<(&str, u64)> = match args.as_slice() {
        [mode, n] => vec![(mode.as_str(), n.parse().expect("a count"))],
        _ => vec![("new", 1), ("retry", 1), ("location", 1), ("verify", 1)],
    };
    let config = Config::parse(&format!(
        "[gateway]\nreplay_window_secs = 0\n{OFFICIAL_SAMPLE_APP}"
    ))
    .unwrap();
    let sim = PlatformSim::new(config.app("demo").unwrap()).unwrap();
    let gateway = Gateway::builder(&config).build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let header = Header {
        to: sim.receive_id(),
        from: "lisi",
        create_time: 1_700_000_000,
        agent_id: Some(218),
    };
    let location = sim
        .post(&location_xml(&header, 23.1, 113.3), 1_700_000_000, "n1")
        .unwrap();
    let text = sim
        .post(&text_xml(&header, TEXT, 42), 1_700_000_000, "n2")
        .unwrap();
    let verify = sim.verify_url("1234567890", 1_700_000_000, "n3").unwrap();
    rt.block_on(async {
        // The first delivery records the reply; `retry` replays it.
        let first = gateway.handle(text.to_callback()).await;
        assert_eq!(first.status, 200);
        for (mode, n) in runs {
            for i in 0..n {
                let response = match mode {
                    "location" => gateway.handle(location.to_callback()).await,
                    "retry" => gateway.handle(text.to_callback()).await,
                    "verify" => gateway.handle(verify.to_callback()).await,
                    "new" => {
                        let request = sim
                            .post(&text_xml(&header, TEXT, 1000 + i), 1_700_000_000, "n4")
                            .unwrap();
                        gateway.handle(request.to_callback()).await
                    }
                    other => panic!("unknown path {other}: new, retry, location or verify"),
                };
                assert_eq!(response.status, 200, "{mode}");
                std::hint::black_box(response);
            }
            if n == 1 {
                println!("gateway_paths: {mode} answered");
            }
        }
    });
}
