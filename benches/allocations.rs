//! Counts heap allocations and bytes for one full callback (the same path as
//! `benches/callback.rs`), with a counting global allocator; kept out of the timing bench so
//! the counter does not skew it. `cargo bench --bench allocations`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use wxgate::crypto::{KeySlot, MsgCrypt};
use wxgate::message::Message;
use wxgate::platform::Platform;
use wxgate::reply::Reply;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size(), Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CORP_ID: &str = "wx5823bf96d3bd56c7";
const MESSAGE_XML: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[mycreate]]></FromUserName><CreateTime>1409659813</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好，wxgate 👋 今天天气怎么样？]]></Content><MsgId>4561255354251345929</MsgId><AgentID>218</AgentID></xml>";

fn measure(label: &str, f: impl Fn()) {
    f(); // warm: thread-local RNG and the like are set up once per thread
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    const N: usize = 1000;
    for _ in 0..N {
        f();
    }
    let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    println!(
        "{label:<20} {:>5.1} allocations, {:>6.0} bytes per call",
        (a1 - a0) as f64 / N as f64,
        (b1 - b0) as f64 / N as f64
    );
}

fn main() {
    let crypt = MsgCrypt::new(
        "QDG6eK",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        CORP_ID,
    )
    .unwrap();
    let encrypt = crypt
        .key(KeySlot::Current)
        .encrypt(MESSAGE_XML.as_bytes(), CORP_ID)
        .unwrap();
    let sig = crypt
        .token()
        .sign_encrypted("1409659813", "1372623149", &encrypt)
        .unwrap()
        .to_string();
    let body = format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    );

    measure("full_round_trip", || {
        let opened = crypt
            .open_envelope(&sig, "1409659813", "1372623149", &body)
            .unwrap();
        let msg = Message::parse(opened.frame.message_str().unwrap()).unwrap();
        let reply = Reply::text(format!("收到：{}", msg.text().unwrap()))
            .render(&msg, Platform::Wecom, 1409659813)
            .unwrap();
        std::hint::black_box(crypt.seal(&reply, opened.key, 1409659813).unwrap());
    });
    measure("open_envelope", || {
        std::hint::black_box(
            crypt
                .open_envelope(&sig, "1409659813", "1372623149", &body)
                .unwrap(),
        );
    });
    measure("message_parse", || {
        std::hint::black_box(Message::parse(MESSAGE_XML).unwrap());
    });
    let msg = Message::parse(MESSAGE_XML).unwrap();
    let reply = Reply::text("收到")
        .render(&msg, Platform::Wecom, 1)
        .unwrap();
    measure("seal", || {
        std::hint::black_box(crypt.seal(&reply, KeySlot::Current, 1).unwrap());
    });
}
