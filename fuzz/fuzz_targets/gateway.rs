//! The whole gateway as an adapter calls it. The first byte picks a mode:
//! - even: the rest is `method NUL path NUL query NUL body`, all hostile;
//! - odd: the rest is a body POSTed to the plaintext Official Account app with a valid
//!   `signature`, so arbitrary XML reaches the message parser, the config rules (echo,
//!   keywords, click) and the reply writer.
//! Whatever comes in, the gateway must answer with a documented status and never panic.
#![no_main]

use std::sync::OnceLock;

use http::Method;
use libfuzzer_sys::fuzz_target;
use wxgate::config::Config;
use wxgate::crypto::Token;
use wxgate::gateway::{CallbackRequest, Gateway};

const CONFIG: &str = r#"
[gateway]
replay_window_secs = 0
[[apps]]
name = "demo"
platform = "wecom"
corp_id = "wx5823bf96d3bd56c7"
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
[apps.reply]
echo = true
[[apps]]
name = "blog"
platform = "mp"
token = "QDG6eK"
[apps.reply]
echo = true
subscribe = "hi"
default = "d"
keywords = [{ contains = "a", reply = { type = "news", articles = [{ title = "t" }] } }]
[apps.reply.click]
K = "k"
"#;

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::builder(&Config::parse(CONFIG).unwrap()).build().unwrap())
}

fn run(method: &Method, path: &str, query: Option<&str>, body: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let response = runtime.block_on(gateway().handle(CallbackRequest {
        method,
        path,
        query,
        body,
    }));
    let status = response.status.as_u16();
    assert!(
        [200, 400, 401, 403, 404, 405, 413].contains(&status),
        "undocumented status {status}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        let signature = Token::new("QDG6eK").unwrap().sign("1409659813", "77").unwrap();
        let query = format!(
            "signature={}&timestamp=1409659813&nonce=77",
            signature.to_hex().as_str()
        );
        run(&Method::POST, "/mp/blog", Some(&query), rest);
        return;
    }
    let mut parts = rest.splitn(4, |&b| b == 0);
    let method = match parts.next().unwrap_or_default() {
        b"GET" | b"" => Method::GET,
        b"POST" => Method::POST,
        other => Method::from_bytes(other).unwrap_or(Method::PUT),
    };
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let query = parts.next().map(String::from_utf8_lossy);
    let body = parts.next().unwrap_or_default();
    run(&method, &path, query.as_deref(), body);
});
