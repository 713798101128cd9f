//! The whole gateway in process, as an adapter calls it: route, query parsing, signature,
//! replay window, decryption, parsing, the config rules, reply rendering and sealing, plus
//! the tracing call sites (no subscriber installed). Compare with `callback/full_round_trip`
//! to see what the gateway layer adds to the protocol core.
//!
//! `cargo bench --bench gateway`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wxgate::config::Config;
use wxgate::gateway::Gateway;
use wxgate::simulate::{Header, PlatformSim, SignedRequest, location_xml, text_xml};

use wxgate::simulate::OFFICIAL_SAMPLE_APP as CONFIG;

fn bench(c: &mut Criterion) {
    let config = Config::parse(CONFIG).unwrap();
    let gateway = Gateway::from_config(&config).unwrap();
    let sim = PlatformSim::new(config.app("demo").unwrap()).unwrap();
    let now = wxgate::gateway::unix_now();
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
    let mut g = c.benchmark_group("gateway");
    g.bench_function("text_echo_encrypted_reply", |b| {
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
