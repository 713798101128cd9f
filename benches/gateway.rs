//! The whole gateway in process, as an adapter calls it: route, query parsing, signature,
//! replay window, decryption, parsing, the config rules, reply rendering and sealing, plus
//! the tracing call sites (no subscriber installed). Compare with `callback/full_round_trip`
//! to see what the gateway layer adds to the protocol core. With the embedded store, a new
//! message also costs its claim and completion; a retry is answered from the record.
//!
//! `cargo bench --bench gateway`

use std::hint::black_box;

use std::cell::Cell;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use wxgate::config::Config;
use wxgate::gateway::Gateway;
use wxgate::simulate::{Header, PlatformSim, SignedRequest, location_xml, text_xml};

use wxgate::simulate::OFFICIAL_SAMPLE_APP as CONFIG;

fn bench(c: &mut Criterion) {
    let config = Config::parse(CONFIG).unwrap();
    let gateway = Gateway::builder(&config).build().unwrap();
    let sim = PlatformSim::new(config.app("demo").unwrap()).unwrap();
    let now = wxgate::clock::unix_now();
    let header = Header {
        to: "wx5823bf96d3bd56c7",
        from: "mycreate",
        create_time: now,
        agent_id: Some(218),
    };
    let text = sim
        .post(
            &text_xml(&header, "你好，wxgate 👋 今天天气怎么样？", 1),
            now,
            "1372623149",
        )
        .unwrap();
    let location = sim
        .post(&location_xml(&header, 23.1, 113.3), now, "1372623149")
        .unwrap();
    let verify = sim
        .verify_url("1616140317555161061", now, "263014780")
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let call = |request: &SignedRequest| {
        let response = runtime.block_on(gateway.handle(request.to_callback()));
        assert_eq!(response.status, 200);
        response
    };
    // Warm the record of `text`, so that every timed call of it below is a retry.
    call(&text);
    let next_msg_id = Cell::new(1_000u64);
    let mut g = c.benchmark_group("gateway");
    g.bench_function("text_echo_encrypted_reply", |b| {
        // A new MsgId every time (built outside the timing): bot, claim and completion.
        b.iter_batched(
            || {
                let id = next_msg_id.get();
                next_msg_id.set(id + 1);
                let xml = text_xml(&header, "你好，wxgate 👋 今天天气怎么样？", id);
                sim.post(&xml, now, "1372623149").unwrap()
            },
            |request| black_box(call(black_box(&request))),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("text_retry_replayed", |b| {
        b.iter(|| black_box(call(black_box(&text))))
    });
    g.bench_function("location_empty_answer", |b| {
        b.iter(|| black_box(call(black_box(&location))))
    });
    g.bench_function("url_verification", |b| {
        b.iter(|| black_box(call(black_box(&verify))))
    });
    g.finish();
    aibot(c);
}

/// The AI bot: a refresh callback of a stream whose snapshot holds 2 KB of text (read it,
/// render it, seal it), and a message a rule answers (a finished stream, no store).
fn aibot(c: &mut Criterion) {
    use wxgate::simulate::{aibot_refresh_json, aibot_text_json};
    use wxgate::store::{
        DedupTimes, JobStore, NewJob, StreamStore, StreamWrite, aibot_key, new_owner,
    };
    let config = Config::parse(
        "[[apps]]\nname = \"helper\"\nplatform = \"aibot\"\ntoken = \"QDG6eK\"\n\
         encoding_aes_key = \"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C\"\n[apps.reply]\n\
         keywords = [{ equals = \"ping\", reply = \"pong\" }]\n",
    )
    .unwrap();
    let gateway = Gateway::builder(&config).build().unwrap();
    let sim = PlatformSim::new(config.app("helper").unwrap()).unwrap();
    let now = wxgate::clock::unix_now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A stream as a worker leaves it mid-answer: claimed, 2 KB of text so far.
    let key = aibot_key("helper", "bench-msg");
    let times = DedupTimes {
        now_ms: wxgate::clock::now_ms(),
        lease_ms: 4_000,
        retention_secs: 86_400,
    };
    let text = "流式回答 streamed answer ".repeat(64);
    runtime.block_on(async {
        let store = gateway.store();
        let job = NewJob {
            app: "helper",
            authorizer_app_id: None,
            message: "{}",
            answer_by_ms: times.now_ms,
        };
        store
            .claim_with_job(&key, &new_owner(), times, job)
            .await
            .unwrap();
        // The worker holding the job writes the stream.
        store
            .take_job(&key, "bench", times.now_ms, 600_000)
            .await
            .unwrap()
            .expect("the job is pending");
        let write = StreamWrite {
            writer: "bench",
            seq: 1,
            content: &text,
            finish: false,
        };
        assert!(store.put_stream(&key, write, times).await.unwrap());
    });
    let stream_id = wxgate::aibot::stream_id_of("bench-msg");
    let refresh = sim
        .post(
            &aibot_refresh_json("r1", "lisi", &stream_id),
            now,
            "1372623149",
        )
        .unwrap();
    let rule = sim
        .post(
            &aibot_text_json("m1", "lisi", None, "ping"),
            now,
            "1372623149",
        )
        .unwrap();
    let call = |request: &SignedRequest| {
        let response = runtime.block_on(gateway.handle(request.to_callback()));
        assert_eq!(response.status, 200);
        response
    };
    let mut g = c.benchmark_group("aibot");
    g.bench_function("refresh_2kb_snapshot", |b| {
        b.iter(|| black_box(call(black_box(&refresh))))
    });
    g.bench_function("message_a_rule_answers", |b| {
        b.iter(|| black_box(call(black_box(&rule))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
