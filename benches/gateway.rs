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
}

criterion_group!(benches, bench);
criterion_main!(benches);
