//! What telling the function's two kinds of event apart costs per callback: reading the
//! sample WeCom text event (`events/wecom-text.json`) the way `lambda_http::run` did before
//! the function took stream batches, the way it does now, and through a `serde_json::Value`
//! (the first version, replaced).
//!
//! `cargo bench --bench lambda_dispatch`. lambda_runtime reads every payload through
//! `serde_path_to_error`, so each variant starts there as the runtime does.

use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::request::LambdaRequest;
use serde_json::Value;
use serde_json::value::RawValue;
use std::hint::black_box;

fn via_runtime<T: serde::de::DeserializeOwned>(body: &[u8]) -> T {
    let mut jd = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut jd).expect("the sample event")
}

fn bench(c: &mut Criterion) {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/wecom-text.json"
    ))
    .expect("events/wecom-text.json");
    let mut group = c.benchmark_group("lambda_dispatch");
    group.bench_function("before: the runtime reads LambdaRequest", |b| {
        b.iter(|| black_box(via_runtime::<LambdaRequest>(black_box(&body))))
    });
    group.bench_function("now: raw, probe for Records, then LambdaRequest", |b| {
        b.iter(|| {
            let raw: Box<RawValue> = via_runtime(black_box(&body));
            assert!(!wxgate::lambda::is_stream_batch(raw.get()).unwrap());
            black_box(serde_json::from_str::<LambdaRequest>(raw.get()).unwrap())
        })
    });
    group.bench_function("first version: Value, then LambdaRequest", |b| {
        b.iter(|| {
            let value: Value = via_runtime(black_box(&body));
            assert!(value.get("Records").is_none());
            black_box(serde_json::from_value::<LambdaRequest>(value).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
