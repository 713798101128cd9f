//! Everything a callback's bytes go through before a reply: envelope parse, signature,
//! decryption, frame checks and message parse. The fuzzer's bytes enter at three depths so
//! that each stage sees inputs the earlier ones would normally filter out:
//! 1. as the raw POST body (envelope XML), signed by us so the signature passes;
//! 2. as raw ciphertext bytes (base64-encoded by us), reaching padding and frame checks;
//! 3. as the plaintext of a well-formed frame, reaching the message parser and reply writer.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use wxgate::crypto::{EncryptedEnvelope, KeySlot, MsgCrypt};
use wxgate::message::Callback;
use wxgate::platform::Platform;
use wxgate::reply::Reply;

const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const RID: &str = "wx5823bf96d3bd56c7";

fn parse_and_answer(crypt: &MsgCrypt, plaintext: &str) {
    if let Ok(Callback::Message(msg)) = Callback::parse(plaintext) {
        let reply = Reply::text(msg.text().unwrap_or("x"));
        for platform in [Platform::Wecom, Platform::Mp] {
            if let Ok(xml) = reply.render(&msg, platform, msg.create_time) {
                let sealed = crypt
                    .seal(&xml, KeySlot::Current, 1)
                    .expect("a rendered reply seals");
                assert!(sealed.starts_with("<xml><Encrypt>"));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let crypt = MsgCrypt::new("QDG6eK", KEY, RID).expect("the sample settings are valid");
    let text = String::from_utf8_lossy(data);

    // 1. The body as sent.
    if let Ok(envelope) = EncryptedEnvelope::parse(&text) {
        let sig = crypt
            .token()
            .sign_encrypted("1409659813", "1372623149", &envelope.encrypt)
            .expect("fixed inputs sign");
        if let Ok(opened) = crypt.open_envelope(&sig.to_string(), "1409659813", "1372623149", &text)
        {
            if let Ok(plain) = opened.frame.message_str() {
                parse_and_answer(&crypt, plain);
            }
        }
    }
    let _ = Callback::parse(&text);

    // 2. The bytes as ciphertext.
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    if let Ok(opened) = crypt.decrypt(&b64) {
        if let Ok(plain) = opened.frame.message_str() {
            parse_and_answer(&crypt, plain);
        }
    }

    // 3. The bytes as a well-formed frame's message.
    let ct = crypt
        .key(KeySlot::Current)
        .encrypt(data, RID)
        .expect("fuzz inputs are small");
    let opened = crypt.decrypt(&ct).expect("our own frame decrypts");
    assert_eq!(opened.frame.message(), data);
    if let Ok(plain) = opened.frame.message_str() {
        parse_and_answer(&crypt, plain);
    }
});
