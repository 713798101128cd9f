//! The official WeCom sample vectors through the public API, and the
//! MsgCrypt behaviours built on them: envelopes, key rotation, sealing.

mod support;

use support::sample::{AGENT_ID, CORP_ID, KEY, OFFICIAL_SAMPLE_APP, TOKEN};
use wxgate::ProtocolError;
use wxgate::config::Config;
use wxgate::config::secret::expose;
use wxgate::crypto::{EncodingAesKey, KeySlot, MsgCrypt};
use wxgate::message::{Callback, Message};
use wxgate::platform::Platform;
use wxgate::reply::Reply;
use wxgate::xml::Fields;

const OTHER_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

const VERIFY_SIG: &str = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3";
const VERIFY_TS: &str = "1409659589";
const VERIFY_NONCE: &str = "263014780";
const ECHOSTR: &str =
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";

const MSG_SIG: &str = "477715d11cdb4164915debcba66cb864d751f3e6";
const MSG_TS: &str = "1409659813";
const MSG_NONCE: &str = "1372623149";
const MSG_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";

fn crypt() -> MsgCrypt {
    MsgCrypt::new(TOKEN, KEY, CORP_ID).unwrap()
}

/// The values the tests share are the ones the library's sample app is configured with, so
/// a test of either is a test of the vectors' values.
#[test]
fn the_sample_app_holds_the_vectors_values() {
    let config = Config::parse(OFFICIAL_SAMPLE_APP).unwrap();
    let app = config.app("demo").unwrap();
    assert_eq!(app.platform, Platform::Wecom);
    assert_eq!(app.receive_id(), Some(CORP_ID));
    assert_eq!(app.agent_id, Some(AGENT_ID));
    let secrets = app.secrets().unwrap();
    assert_eq!(expose(&secrets.token), TOKEN);
    assert_eq!(secrets.encoding_aes_key.as_ref().map(expose), Some(KEY));
}

fn envelope(encrypt: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    )
}

#[test]
fn url_verification_vector_answers_the_plaintext_exactly() {
    let opened = crypt()
        .open(VERIFY_SIG, VERIFY_TS, VERIFY_NONCE, ECHOSTR)
        .unwrap();
    assert_eq!(opened.frame.message(), b"1616140317555161061");
    assert_eq!(opened.key, KeySlot::Current);
}

#[test]
fn message_vector_opens_and_parses() {
    let opened = crypt()
        .open_envelope(MSG_SIG, MSG_TS, MSG_NONCE, &envelope(MSG_ENCRYPT))
        .unwrap();
    let msg = Message::parse(opened.frame.message_str().unwrap()).unwrap();
    assert_eq!(msg.text(), Some("hello"));
    assert_eq!(msg.msg_id, Some(4561255354251345929));
    assert_eq!(msg.agent_id, Some(218));
    assert_eq!(msg.from_user_name, "mycreate");
    assert_eq!(msg.to_user_name, CORP_ID);
}

#[test]
fn signature_is_checked_before_anything_is_decrypted() {
    // A wrong signature over undecryptable junk reports the signature, not the junk.
    let err = crypt()
        .open(VERIFY_SIG, VERIFY_TS, VERIFY_NONCE, "junk!!")
        .unwrap_err();
    assert_eq!(err, ProtocolError::SignatureMismatch);
    let err = crypt()
        .open("", VERIFY_TS, VERIFY_NONCE, ECHOSTR)
        .unwrap_err();
    assert_eq!(err.code().as_i32(), -40001);
}

#[test]
fn the_outer_to_user_name_is_not_trusted() {
    // Only Encrypt is signed: a forged outer ToUserName does not matter, and the inner
    // receive id is what is checked.
    let body =
        format!("<xml><ToUserName>attacker</ToUserName><Encrypt>{MSG_ENCRYPT}</Encrypt></xml>");
    let opened = crypt()
        .open_envelope(MSG_SIG, MSG_TS, MSG_NONCE, &body)
        .unwrap();
    opened.frame.check_receive_id(CORP_ID).unwrap();
}

#[test]
fn wrong_receive_id_is_40005() {
    let c = MsgCrypt::new(TOKEN, KEY, "wx_other_corp").unwrap();
    let err = c
        .open(VERIFY_SIG, VERIFY_TS, VERIFY_NONCE, ECHOSTR)
        .unwrap_err();
    assert_eq!(err.code().as_i32(), -40005);
    assert!(err.to_string().contains(CORP_ID), "{err}");
}

#[test]
fn wrong_key_is_reported_as_a_key_problem() {
    let c = MsgCrypt::new(TOKEN, OTHER_KEY, CORP_ID).unwrap();
    let err = c
        .open(VERIFY_SIG, VERIFY_TS, VERIFY_NONCE, ECHOSTR)
        .unwrap_err();
    // Garbage after decryption: the padding check catches it and names the likely cause.
    assert_eq!(err.code().as_i32(), -40008, "{err}");
    assert!(err.to_string().contains("EncodingAESKey"), "{err}");
}

#[test]
fn malformed_envelopes_are_40002() {
    for body in [
        "",
        "<xml>",
        "<xml><ToUserName>a</ToUserName></xml>",
        "<!DOCTYPE x><xml/>",
    ] {
        let err = crypt()
            .open_envelope(MSG_SIG, MSG_TS, MSG_NONCE, body)
            .unwrap_err();
        assert_eq!(err.code().as_i32(), -40002, "{body:?}: {err}");
    }
}

#[test]
fn key_rotation_accepts_the_previous_key_and_replies_with_it() {
    // The platform still encrypts with the old key (the sample key); we rotated to OTHER_KEY.
    let rotated = MsgCrypt::new(TOKEN, OTHER_KEY, CORP_ID)
        .unwrap()
        .with_previous_key(KEY)
        .unwrap();
    let opened = rotated
        .open(VERIFY_SIG, VERIFY_TS, VERIFY_NONCE, ECHOSTR)
        .unwrap();
    assert_eq!(opened.frame.message(), b"1616140317555161061");
    assert_eq!(opened.key, KeySlot::Previous);

    let sealed = rotated.seal("<xml>r</xml>", opened.key, 1).unwrap();
    let fields = Fields::parse(&sealed).unwrap();
    let encrypt = fields.get("Encrypt").unwrap();
    // The old key opens the reply; the new one does not.
    let old = EncodingAesKey::parse(KEY).unwrap();
    assert_eq!(old.decrypt(encrypt).unwrap().message(), b"<xml>r</xml>");
    let new = EncodingAesKey::parse(OTHER_KEY).unwrap();
    assert!(
        new.decrypt(encrypt)
            .and_then(|f| f.check_receive_id(CORP_ID))
            .is_err()
    );

    // Once the platform switches, the current key is used and tried first.
    let fresh = rotated
        .key(KeySlot::Current)
        .encrypt(b"now new", CORP_ID)
        .unwrap();
    assert_eq!(rotated.decrypt(&fresh).unwrap().key, KeySlot::Current);
}

#[test]
fn rotation_failure_reports_the_current_keys_error() {
    let rotated = MsgCrypt::new(TOKEN, OTHER_KEY, CORP_ID)
        .unwrap()
        .with_previous_key(OTHER_KEY)
        .unwrap();
    let direct = MsgCrypt::new(TOKEN, OTHER_KEY, CORP_ID).unwrap();
    assert_eq!(
        rotated.decrypt(ECHOSTR).unwrap_err(),
        direct.decrypt(ECHOSTR).unwrap_err()
    );
    // Errors that come before any key is used are reported as they are.
    assert_eq!(
        rotated.decrypt("AAAA").unwrap_err(),
        ProtocolError::CiphertextLength(3)
    );
    assert_eq!(
        rotated.decrypt("not base64!").unwrap_err().code().as_i32(),
        -40010
    );
}

#[test]
fn sealed_reply_verifies_decrypts_and_parses() {
    let c = crypt();
    let opened = c
        .open_envelope(MSG_SIG, MSG_TS, MSG_NONCE, &envelope(MSG_ENCRYPT))
        .unwrap();
    let msg = Message::parse(opened.frame.message_str().unwrap()).unwrap();
    let reply = Reply::text("收到 hello ]]> 😀")
        .render(&msg, Platform::Wecom, 1409659814)
        .unwrap();
    let sealed = c.seal(&reply, opened.key, 1409659814).unwrap();

    let fields = Fields::parse(&sealed).unwrap();
    let (encrypt, sig, ts, nonce) = (
        fields.get("Encrypt").unwrap(),
        fields.get("MsgSignature").unwrap(),
        fields.get("TimeStamp").unwrap(),
        fields.get("Nonce").unwrap(),
    );
    assert_eq!(ts, "1409659814");
    assert!(!nonce.is_empty());
    // Play the platform: verify our signature, decrypt, parse.
    let back = c.open(sig, ts, nonce, encrypt).unwrap();
    let Callback::Message(answer) = Callback::parse(back.frame.message_str().unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!(answer.to_user_name, "mycreate");
    assert_eq!(answer.from_user_name, CORP_ID);
    assert_eq!(answer.text(), Some("收到 hello ]]> 😀"));
}

#[test]
fn every_seal_uses_a_fresh_nonce_and_random_prefix() {
    let c = crypt();
    let a = c.seal("<xml/>", KeySlot::Current, 1).unwrap();
    let b = c.seal("<xml/>", KeySlot::Current, 1).unwrap();
    let (fa, fb) = (Fields::parse(&a).unwrap(), Fields::parse(&b).unwrap());
    assert_ne!(fa.get("Nonce"), fb.get("Nonce"));
    assert_ne!(fa.get("Encrypt"), fb.get("Encrypt"));
}

#[test]
fn seal_with_a_given_nonce_is_reproducible_in_signature() {
    let c = crypt();
    let sealed = c.seal_with("<xml/>", KeySlot::Current, 7, "n0nce").unwrap();
    let f = Fields::parse(&sealed).unwrap();
    assert_eq!(f.get("Nonce"), Some("n0nce"));
    let expected = c
        .token()
        .sign_encrypted("7", "n0nce", f.get("Encrypt").unwrap())
        .unwrap();
    assert_eq!(f.get("MsgSignature"), Some(expected.to_hex().as_str()));
    assert_eq!(
        c.seal_with("<xml/>", KeySlot::Current, 7, "")
            .unwrap_err()
            .code()
            .as_i32(),
        -40003
    );
}
