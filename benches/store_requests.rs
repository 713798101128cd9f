//! DynamoDB requests per callback, counted on the wire (an SDK interceptor sees every
//! attempt) while the gateway handles a scripted mix against dynalite on loopback.
//!
//! `cargo bench --bench store_requests` prints a Markdown table for docs/benchmarks.md.
//! dynalite does not return the item of a failed conditional write
//! (`ReturnValuesOnConditionCheckFailure`), so a duplicate costs one `GetItem` more here
//! than on DynamoDB itself; the table says which requests those are.

#[path = "../tests/support/dynamo.rs"]
#[allow(rustdoc::broken_intra_doc_links)]
mod dynamo;
#[path = "../tests/support/fake_upstream.rs"]
mod fake_upstream;
#[path = "../tests/support/loopback.rs"]
mod loopback;
#[path = "../tests/support/request_count.rs"]
mod request_count;

use std::collections::BTreeMap;
use std::sync::Arc;

use request_count::RequestCount;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::{Gateway, JobOutcome, LateReplies};
use wxgate::simulate::{
    Header, OFFICIAL_SAMPLE_APP, PlatformSim, SignedRequest, location_xml, text_xml,
};
use wxgate::store::{Backend, DynamoStore};

const N: u64 = 100;

async fn handle(gateway: &Gateway, request: &SignedRequest) {
    let response = gateway.handle(request.to_callback()).await;
    assert_eq!(response.status.as_u16(), 200, "{:?}", response.body);
}

fn per_callback(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> String {
    let mut parts = Vec::new();
    let mut total = 0;
    for (op, n) in after {
        let d = n - before.get(op).copied().unwrap_or(0);
        if d > 0 {
            total += d;
            parts.push(format!("{op} {:.2}", d as f64 / N as f64));
        }
    }
    if parts.is_empty() {
        return "**0**".into();
    }
    format!("**{:.2}** ({})", total as f64 / N as f64, parts.join(", "))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = dynamo::DynamoServer::start();
        let table = dynamo::unique_table_name("requests");
        dynamo::create_table(&dynamo::client(&server.endpoint()).await, &table).await;
        let count = RequestCount::default();
        let conf = dynamo::config(&server.endpoint())
            .interceptor(count.interceptor())
            .build();
        let store = Arc::new(Backend::Dynamo(DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(conf),
            table,
        )));
        let config = Config::parse(OFFICIAL_SAMPLE_APP).unwrap();
        let sim = PlatformSim::new(config.app("demo").unwrap()).unwrap();
        let gateway = Arc::new(
            Gateway::builder(&config).bot(wxgate::bot::ConfigBot::from_config(&config).expect("config")).store(Arc::clone(&store)).build()
            .unwrap(),
        );
        let header = Header {
            to: sim.receive_id(),
            from: "lisi",
            create_time: unix_now(),
            agent_id: Some(218),
        };
        let message = |id: u64, nonce: &str| {
            sim.post(&text_xml(&header, "hello", id), unix_now(), nonce)
                .unwrap()
        };

        println!("| callback ({N} of each) | DynamoDB requests per callback |");
        println!("|---|---|");
        let row = |label: &str, before: BTreeMap<String, u64>| {
            println!("| {label} | {} |", per_callback(&before, &count.snapshot()));
        };

        let before = count.snapshot();
        for id in 0..N {
            handle(&gateway, &message(id, "first")).await;
        }
        row("new message a rule answers (claim carrying the reply)", before);

        let before = count.snapshot();
        for id in 0..N {
            handle(&gateway, &message(id, "retry")).await;
        }
        row("retry after the reply was recorded", before);

        let before = count.snapshot();
        let copies: Vec<_> = (0..N)
            .map(|i| {
                let gateway = Arc::clone(&gateway);
                let request = message(1_000_000, &format!("copy{i}"));
                tokio::spawn(async move { handle(&gateway, &request).await })
            })
            .collect();
        for copy in copies {
            copy.await.unwrap();
        }
        row("one rule-answered message delivered 100 times at once", before);

        let before = count.snapshot();
        for i in 0..N {
            let location = sim
                .post(
                    &location_xml(&header, 39.9, 116.4),
                    unix_now(),
                    &format!("l{i}"),
                )
                .unwrap();
            handle(&gateway, &location).await;
        }
        row("LOCATION event", before);

        let before = count.snapshot();
        for i in 0..N {
            let verify = sim
                .verify_url("echo", unix_now(), &format!("v{i}"))
                .unwrap();
            handle(&gateway, &verify).await;
        }
        row("URL verification", before);

        // A reply job: the same app with its reply from an upstream (answering at once) and a
        // gateway handing it to a worker, run here as the stream would run it.
        let upstream =
            fake_upstream::FakeUpstream::start("bench-secret-0123456789abcdef", fake_upstream::Behavior::text("ok"));
        let forward = OFFICIAL_SAMPLE_APP.replace(
            "[apps.reply]\necho = true",
            &format!(
                "secret = \"s\"\n[apps.reply]\nforward = \"{}\"\nforward_secret = \"bench-secret-0123456789abcdef\"",
                upstream.url()
            ),
        );
        assert_ne!(forward, OFFICIAL_SAMPLE_APP, "the sample app's reply line moved");
        let forward = Config::parse(&forward).unwrap();
        let jobs = Arc::new(
            Gateway::builder(&forward)
                .store(Arc::clone(&store))
                .late_replies(LateReplies::AsJobs)
                .build()
                .unwrap(),
        );
        let mut worker_window_requests = 0;
        let before = count.snapshot();
        for id in 0..N {
            let request = message(2_000_000 + id, "job");
            let callback = {
                let jobs = Arc::clone(&jobs);
                tokio::spawn(async move { handle(&jobs, &request).await })
            };
            // The stream's delay, shortened: the claim is written well within it.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let worker_before: u64 = count.snapshot().values().sum();
            let key = wxgate::store::dedup_key("demo", &format!("msg|{}", 2_000_000 + id));
            assert_eq!(jobs.run_job(&key, None).await, JobOutcome::Answered);
            let worker_after: u64 = count.snapshot().values().sum();
            callback.await.unwrap();
            worker_window_requests += worker_after - worker_before;
        }
        row("upstream reply by a reply job, answered in time (callback and worker)", before);
        println!(
            "| of which while the worker ran (take, answer; a callback read may fall in it) | **{:.2}** |",
            worker_window_requests as f64 / N as f64
        );

        // The WeCom AI bot: a streaming upstream (six NDJSON deltas 150 ms apart).
        let deltas: Vec<serde_json::Value> = (0..6)
            .map(|i| serde_json::json!({ "delta": format!("part {i}; ") }))
            .chain([serde_json::json!({ "done": true })])
            .collect();
        let streaming = fake_upstream::FakeUpstream::start(
            "bench-secret-0123456789abcdef",
            fake_upstream::Behavior::ndjson(&deltas, std::time::Duration::from_millis(150)),
        );
        let aibot = Config::parse(&format!(
            "[[apps]]\nname = \"helper\"\nplatform = \"aibot\"\ntoken = \"QDG6eK\"\n\
             encoding_aes_key = \"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C\"\n[apps.reply]\n\
             keywords = [{{ equals = \"ping\", reply = \"pong\" }}]\n\
             forward = \"{}\"\nforward_secret = \"bench-secret-0123456789abcdef\"\n",
            streaming.url()
        ))
        .unwrap();
        let aibot_sim = PlatformSim::new(aibot.app("helper").unwrap()).unwrap();
        let bots = Arc::new(
            Gateway::builder(&aibot)
                .store(Arc::clone(&store))
                .late_replies(LateReplies::AsJobs)
                .build()
                .unwrap(),
        );
        let post = |json: String, nonce: String| aibot_sim.post(&json, unix_now(), &nonce).unwrap();
        let before = count.snapshot();
        for id in 0..N {
            let json = wxgate::simulate::aibot_text_json(&format!("rule-{id}"), "lisi", None, "ping");
            handle(&bots, &post(json, format!("r{id}"))).await;
        }
        row("AI bot message a rule answers (a finished stream)", before);
        let before = count.snapshot();
        for id in 0..N {
            let json = wxgate::simulate::aibot_text_json(&format!("ask-{id}"), "lisi", None, "hi");
            handle(&bots, &post(json, format!("a{id}"))).await;
        }
        row("AI bot message opening a stream (the claim carries its job)", before);
        const STREAMS: u64 = 10;
        let before: u64 = count.snapshot().values().sum();
        for id in 0..STREAMS {
            let key = wxgate::store::aibot_key("helper", &format!("ask-{id}"));
            assert_eq!(bots.run_job(&key, None).await, JobOutcome::Answered);
        }
        let after: u64 = count.snapshot().values().sum();
        println!(
            "| AI bot stream job, 6 deltas over 0.9 s ({STREAMS} streams: take, snapshots at most every 500 ms, finish, end) | **{:.2}** per stream |",
            (after - before) as f64 / STREAMS as f64
        );
        let before = count.snapshot();
        let stream_id = |id: u64| wxgate::aibot::stream_id_of(&format!("ask-{}", id % STREAMS));
        for id in 0..N {
            let json = wxgate::simulate::aibot_refresh_json(&format!("f{id}"), "lisi", &stream_id(id));
            handle(&bots, &post(json, format!("f{id}"))).await;
        }
        row("AI bot refresh callback (read only)", before);
    });
}
