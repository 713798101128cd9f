//! One full callback, as the gateway does it: parse the envelope, verify msg_signature,
//! decrypt, parse a Chinese+emoji text message, build a text reply, encrypt, sign, render.
//! Also each stage alone, to see where the time goes.
//!
//! `cargo bench --bench callback`; `benches/compare.sh` runs this and two peer implementations.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wxgate::crypto::{EncryptedEnvelope, KeySlot, MsgCrypt};
use wxgate::message::Message;
use wxgate::platform::Platform;
use wxgate::reply::Reply;

const TOKEN: &str = "QDG6eK";
const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP_ID: &str = "wx5823bf96d3bd56c7";
const TIMESTAMP: &str = "1409659813";
const NONCE: &str = "1372623149";
/// The same message the peer benchmarks use.
const MESSAGE_XML: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[mycreate]]></FromUserName><CreateTime>1409659813</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好，wxgate 👋 今天天气怎么样？]]></Content><MsgId>4561255354251345929</MsgId><AgentID>218</AgentID></xml>";

struct Inbound {
    body: String,
    msg_signature: String,
    encrypt: String,
}

fn inbound(crypt: &MsgCrypt) -> Inbound {
    let encrypt = crypt
        .key(KeySlot::Current)
        .encrypt(MESSAGE_XML.as_bytes(), CORP_ID)
        .unwrap();
    let msg_signature = crypt
        .token()
        .sign_encrypted(TIMESTAMP, NONCE, &encrypt)
        .unwrap()
        .to_string();
    let body = format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    );
    Inbound {
        body,
        msg_signature,
        encrypt,
    }
}

/// The whole passive-reply path; returns the reply envelope.
fn full_round_trip(crypt: &MsgCrypt, req: &Inbound) -> String {
    let opened = crypt
        .open_envelope(&req.msg_signature, TIMESTAMP, NONCE, &req.body)
        .unwrap();
    let msg = Message::parse(opened.frame.message_str().unwrap()).unwrap();
    let mut answer = String::with_capacity(64);
    answer.push_str("收到：");
    answer.push_str(msg.text().unwrap());
    let reply = Reply::Text { content: answer }
        .render(&msg, Platform::Wecom, 1409659813)
        .unwrap();
    crypt.seal(&reply, opened.key, 1409659813).unwrap()
}

fn bench(c: &mut Criterion) {
    let crypt = MsgCrypt::new(TOKEN, KEY, CORP_ID).unwrap();
    let req = inbound(&crypt);

    // Prove the benchmarked path is the real one before timing it.
    let envelope = full_round_trip(&crypt, &req);
    let fields = wxgate::xml::Fields::parse(&envelope).unwrap();
    let back = crypt
        .open(
            fields.get("MsgSignature").unwrap(),
            fields.get("TimeStamp").unwrap(),
            fields.get("Nonce").unwrap(),
            fields.get("Encrypt").unwrap(),
        )
        .unwrap();
    assert_eq!(
        Message::parse(back.frame.message_str().unwrap())
            .unwrap()
            .text(),
        Some("收到：你好，wxgate 👋 今天天气怎么样？")
    );

    let mut g = c.benchmark_group("callback");
    g.bench_function("full_round_trip", |b| {
        b.iter(|| full_round_trip(black_box(&crypt), black_box(&req)))
    });
    g.finish();

    let opened = crypt.decrypt(&req.encrypt).unwrap();
    let msg = Message::parse(MESSAGE_XML).unwrap();
    let reply_xml = Reply::text("收到：你好，wxgate 👋 今天天气怎么样？")
        .render(&msg, Platform::Wecom, 1)
        .unwrap();
    let mut g = c.benchmark_group("stage");
    g.bench_function("envelope_parse", |b| {
        b.iter(|| EncryptedEnvelope::parse(black_box(&req.body)).unwrap())
    });
    g.bench_function("verify_signature", |b| {
        b.iter(|| {
            crypt
                .token()
                .verify_encrypted(
                    black_box(&req.msg_signature),
                    TIMESTAMP,
                    NONCE,
                    black_box(&req.encrypt),
                )
                .unwrap()
        })
    });
    g.bench_function("decrypt", |b| {
        b.iter(|| crypt.decrypt(black_box(&req.encrypt)).unwrap())
    });
    g.bench_function("message_parse", |b| {
        b.iter(|| Message::parse(black_box(opened.frame.message_str().unwrap())).unwrap())
    });
    g.bench_function("reply_render", |b| {
        b.iter(|| {
            Reply::text(black_box("收到：你好，wxgate 👋 今天天气怎么样？"))
                .render(black_box(&msg), Platform::Wecom, 1)
                .unwrap()
        })
    });
    g.bench_function("seal", |b| {
        b.iter(|| {
            crypt
                .seal(black_box(&reply_xml), KeySlot::Current, 1)
                .unwrap()
        })
    });
    g.finish();
}

/// Bodies of `len` bytes that anyone may post before a signature can be checked: a plain
/// envelope (its `Encrypt` filled up), two shapes built to make a scanner that names every
/// leaf by its dotted path do the most work (long names nested deep; the longest names the
/// parser accepts, nested as deep as it accepts, over thousands of leaves), and two built
/// of the smallest nodes there are (comments, character references).
fn pre_auth_bodies(len: usize) -> [(&'static str, String); 5] {
    let plain = {
        let encrypt = "A".repeat(len - 120);
        format!(
            "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        )
    };
    let nested = |name_len: usize, depth: usize| {
        let name = "N".repeat(name_len);
        let open = format!("<{name}>").repeat(depth);
        let close = format!("</{name}>").repeat(depth);
        let leaves = (len - 11 - open.len() - close.len()) / 4;
        format!("<xml>{open}{}{close}</xml>", "<a/>".repeat(leaves))
    };
    let filled = |unit: &str| {
        let units = (len - 40) / unit.len();
        format!("<xml><Encrypt>{}</Encrypt></xml>", unit.repeat(units))
    };
    [
        ("plain", plain),
        ("long_names_nested", nested(2000, 15)),
        (
            "longest_accepted_names_nested",
            nested(wxgate::xml::MAX_NAME_LEN, 15),
        ),
        ("comments", filled("<!---->")),
        ("references", filled("&amp;")),
    ]
}

/// What reading an unauthenticated body costs, by its shape: the envelope parse that runs
/// before the signature check (`EncryptedEnvelope::parse`, then the signature check fails
/// or the body is refused).
fn pre_auth(c: &mut Criterion) {
    let mut g = c.benchmark_group("pre_auth_64k");
    for (shape, body) in pre_auth_bodies(64 * 1024) {
        assert!(
            body.len() <= 64 * 1024 && body.len() > 60 * 1024,
            "{shape}: {}",
            body.len()
        );
        g.bench_function(shape, |b| {
            b.iter(|| {
                let _ = EncryptedEnvelope::parse(black_box(&body));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, pre_auth);
criterion_main!(benches);
