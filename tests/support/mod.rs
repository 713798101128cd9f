//! Shared helpers for integration tests (`mod support;`). Benches include the files directly
//! with `#[path = "../tests/support/runtime_api.rs"] mod runtime_api;`.
pub mod aibot;
pub mod aws_params;
pub mod calls;
pub mod cli;
pub mod dynamo;
pub mod events;
pub mod fake_llm;
pub mod fake_open;
pub mod fake_platform;
pub mod fake_upstream;
pub mod fault_proxy;
pub mod late_answer;
pub mod loopback;
pub mod moto;
pub mod open_flow;
pub mod request_count;
pub mod runtime_api;
pub mod sample;
pub mod serve;
pub mod stream_record;
pub mod wait;
