//! Property tests: what is encrypted decrypts, what is signed verifies, what is written parses,
//! and no input panics.
// Some tests here need a local AWS-compatible server or Python: they are built only with
// `--features external-tests` (scripts/test.sh); the rest run with plain `cargo test`.
#![cfg_attr(not(feature = "external-tests"), allow(dead_code, unused_imports))]

mod support;

use proptest::prelude::*;
use support::sample::KEY;
use wxgate::crypto::{EncodingAesKey, KeySlot, MsgCrypt, PAD_BLOCK};
use wxgate::message::{Callback, Message};
use wxgate::platform::Platform;
use wxgate::reply::Reply;
use wxgate::xml::{Fields, written_as};

/// Any 43 characters of the base64 alphabet: canonical or not, every one is a usable key.
fn key_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9+/]{43}"
}

fn receive_id() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_]{0,40}"
}

/// Text like users send: Chinese, emoji, XML-significant characters, CDATA terminators,
/// control characters, up to well past 2 KB.
fn user_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("]]>".to_owned()),
        "[a-z ]{0,64}",
        "[\\u{4e00}-\\u{9fa5}]{1,700}",
        "(\\PC|]]>|&|<|\u{1f600}|\u{0}|\u{1b}){0,200}",
        any::<String>(),
        "[a-zA-Z0-9\u{4e2d}\u{1f600}]{2000,2100}",
    ]
}

/// Whether XML 1.0 can hold `c` in a document (its `Char` production, §2.2).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text XML holds as it is: characters of its `Char` production but CR (which parsers
/// report as LF), including everything that is markup or ends a CDATA section.
fn holdable_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("]".to_owned()),
        Just("]]>".to_owned()),
        Just("]]".to_owned()),
        Just(">".to_owned()),
        Just("<".to_owned()),
        Just("&".to_owned()),
        Just("&amp;".to_owned()),
        Just("<![CDATA[".to_owned()),
        Just("<MsgType>".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just("中".to_owned()),
        Just("\u{1f600}".to_owned()),
        Just("\u{FFFD}".to_owned()),
        any::<char>()
            .prop_filter("held as it is", |&c| xml_char(c) && c != '\r')
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Strings made of what can break a CDATA writer: brackets, markup, ampersands, every C0
/// control character, CR, the two non-characters XML forbids, and multibyte text.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("]".to_owned()),
        Just(">".to_owned()),
        Just("<".to_owned()),
        Just("&".to_owned()),
        Just("\r".to_owned()),
        Just("中".to_owned()),
        Just("\u{1f600}".to_owned()),
        Just("\u{FFFE}".to_owned()),
        Just("\u{FFFF}".to_owned()),
        Just("<MsgType>".to_owned()),
        (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap().to_string()),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Text XML can hold is written and read back unchanged, as exactly one field: no
    /// character sequence ends the CDATA section early or adds an element.
    #[test]
    fn holdable_text_is_read_back_unchanged_as_one_field(text in holdable_text()) {
        let mut out = String::new();
        wxgate::xml::XmlWriter::new(&mut out).open("xml").text("C", &text).close("xml");
        let fields = Fields::parse(&out).unwrap();
        prop_assert_eq!(fields.len(), 1, "{}", out);
        prop_assert_eq!(fields.get("C").unwrap(), text.as_str(), "{}", out);
        prop_assert_eq!(written_as(&text), text.as_str());
    }

    /// Any text is read back as exactly one field holding `written_as` of it, and
    /// `written_as` changes only what XML cannot hold: the characters outside XML 1.0's
    /// `Char` production are gone, line ends are LF, and everything else is there in order.
    #[test]
    fn any_text_loses_only_what_xml_cannot_hold(text in hostile_text()) {
        let mut out = String::new();
        wxgate::xml::XmlWriter::new(&mut out).open("xml").text("C", &text).close("xml");
        let fields = Fields::parse(&out).unwrap();
        prop_assert_eq!(fields.len(), 1, "{}", out);
        let written = written_as(&text);
        prop_assert_eq!(fields.get("C").unwrap(), &*written, "{}", out);

        prop_assert!(written.chars().all(|c| xml_char(c) && c != '\r'), "{:?}", written);
        let kept = |s: &str| -> String {
            s.chars().filter(|&c| xml_char(c) && c != '\r' && c != '\n').collect()
        };
        prop_assert_eq!(kept(&written), kept(&text));
        let count = |s: &str, c: char| s.chars().filter(|&x| x == c).count();
        let line_feeds = count(&written, '\n');
        prop_assert!(
            count(&text, '\n') <= line_feeds && line_feeds <= count(&text, '\n') + count(&text, '\r'),
            "{:?} → {:?}", text, written
        );
        prop_assert_eq!(written_as(&written), written.clone());
    }

    /// A text reply to any text renders one MsgType and one Content.
    #[test]
    fn a_reply_carries_exactly_its_own_elements(text in hostile_text()) {
        let inbound = Message::parse(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>\
             <CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>",
        ).unwrap();
        let xml = Reply::text(text.clone()).render(&inbound, Platform::Mp, 2).unwrap();
        let fields = Fields::parse(&xml).unwrap();
        prop_assert_eq!(fields.iter().filter(|f| f.name == "MsgType").count(), 1, "{}", xml);
        prop_assert_eq!(fields.iter().filter(|f| f.name == "Content").count(), 1, "{}", xml);
        prop_assert_eq!(fields.get("MsgType"), Some("text"));
    }

    #[test]
    fn encrypt_then_decrypt_returns_message_and_receive_id(
        key in key_text(), rid in receive_id(), text in user_text()
    ) {
        let key = EncodingAesKey::parse(&key).unwrap();
        let ct = key.encrypt(text.as_bytes(), &rid).unwrap();
        let frame = key.decrypt(&ct).unwrap();
        prop_assert_eq!(frame.message(), text.as_bytes());
        prop_assert_eq!(frame.receive_id(), rid.as_bytes());
        frame.check_receive_id(&rid).unwrap();
    }

    #[test]
    fn frames_ending_exactly_on_a_32_byte_boundary_get_a_full_pad_block(
        key in key_text(), rid in receive_id(), blocks in 1usize..70
    ) {
        let total = blocks * PAD_BLOCK;
        prop_assume!(total >= 20 + rid.len());
        let msg = "x".repeat(total - 20 - rid.len());
        let key = EncodingAesKey::parse(&key).unwrap();
        let ct = key.encrypt(msg.as_bytes(), &rid).unwrap();
        // A full extra block of padding: 32 bytes more than the frame.
        let raw_len = ct.len() / 4 * 3 - ct.bytes().rev().take_while(|&b| b == b'=').count();
        prop_assert_eq!(raw_len, total + PAD_BLOCK);
        let frame = key.decrypt(&ct).unwrap();
        prop_assert_eq!(frame.message(), msg.as_bytes());
    }

    #[test]
    fn signatures_verify_and_any_change_breaks_them(
        token in "[A-Za-z0-9]{3,32}", ts in "[0-9]{1,12}", nonce in "[0-9a-zA-Z]{1,16}",
        encrypt in "[A-Za-z0-9+/=]{1,300}", flip in any::<prop::sample::Index>()
    ) {
        let crypt = MsgCrypt::new(&token, KEY, "r").unwrap();
        let sig = crypt.token().sign_encrypted(&ts, &nonce, &encrypt).unwrap().to_string();
        crypt.token().verify_encrypted(&sig, &ts, &nonce, &encrypt).unwrap();
        let mut tampered = encrypt.clone().into_bytes();
        let i = flip.index(tampered.len());
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        prop_assert!(crypt.token().verify_encrypted(&sig, &ts, &nonce, &tampered).is_err());
    }

    #[test]
    fn a_text_reply_survives_the_whole_trip(
        key in key_text(), rid in "[a-z0-9]{1,20}", text in user_text(), ts in 0u64..4_000_000_000
    ) {
        let crypt = MsgCrypt::new("Tok3n", &key, &rid).unwrap();
        let inbound = Message::parse("<xml><ToUserName>me</ToUserName><FromUserName>you</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>q</Content><MsgId>1</MsgId></xml>").unwrap();
        let xml = Reply::text(text.clone()).render(&inbound, Platform::Mp, ts).unwrap();
        let sealed = crypt.seal(&xml, KeySlot::Current, ts).unwrap();
        let f = Fields::parse(&sealed).unwrap();
        let opened = crypt.open(f.get("MsgSignature").unwrap(), f.get("TimeStamp").unwrap(), f.get("Nonce").unwrap(), f.get("Encrypt").unwrap()).unwrap();
        let Callback::Message(back) = Callback::parse(opened.frame.message_str().unwrap()).unwrap() else { panic!() };
        prop_assert_eq!(back.text().unwrap(), written_as(&text));
        prop_assert_eq!(back.create_time, ts);
        prop_assert_eq!(back.to_user_name, "you");
    }

    #[test]
    fn arbitrary_ciphertext_never_panics(key in key_text(), junk in any::<String>()) {
        let key = EncodingAesKey::parse(&key).unwrap();
        let _ = key.decrypt(&junk);
    }

    #[test]
    fn arbitrary_ciphertext_bytes_never_panic(key in key_text(), raw in prop::collection::vec(any::<u8>(), 0..200)) {
        use base64::Engine;
        let key = EncodingAesKey::parse(&key).unwrap();
        let _ = key.decrypt(&base64::engine::general_purpose::STANDARD.encode(raw));
    }

    #[test]
    fn arbitrary_xml_never_panics(xml in any::<String>()) {
        let _ = Callback::parse(&xml);
    }

    #[test]
    fn xml_shaped_input_never_panics(
        xml in "<xml>(<[A-Za-z]{1,3}>|</[A-Za-z]{1,3}>|<!\\[CDATA\\[|\\]\\]>|&[a-z#0-9x]{0,5};|<[A-Za-z]{1,3}/>|[a-z0-9 ]{0,5}){0,30}</xml>"
    ) {
        let _ = Callback::parse(&xml);
    }
}

/// The line ends the properties above leave open, as XML 1.0 §2.11 reports them, and the
/// writer's order for a forbidden character inside one (dropped first, then the line end).
#[test]
fn line_ends_are_written_as_a_parser_reports_them() {
    for (text, read) in [
        ("a\r\nb", "a\nb"),
        ("a\rb", "a\nb"),
        ("\r\r\n", "\n\n"),
        ("\n\r", "\n\n"),
        ("a\r\u{1}\nb", "a\nb"),
        ("x\u{FFFE}\u{FFFF}\u{0}\u{1f}y", "xy"),
        ("tab\tand\u{FFFD}stay", "tab\tand\u{FFFD}stay"),
    ] {
        assert_eq!(written_as(text), read, "{text:?}");
    }
}

/// Python's XML parser (expat, through xml.etree), which is not wxgate's, reads what the
/// writer writes for any text as one element holding `written_as` of it. wxgate's own
/// reader drops forbidden characters itself, so this is what shows the writer's output is
/// well-formed XML and says what any parser reads.
#[cfg(feature = "external-tests")]
#[test]
fn another_xml_parser_reads_what_the_writer_writes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::io::Write;
    use std::process::{Command, Stdio};

    const READER: &str = r#"
import json, sys
import xml.etree.ElementTree as ET
for line in sys.stdin:
    try:
        root = ET.fromstring(json.loads(line))
        out = {"children": [[child.tag, child.text or ""] for child in root]}
    except ET.ParseError as e:
        out = {"error": str(e)}
    print(json.dumps(out))
"#;
    let mut runner = TestRunner::deterministic();
    let mut texts: Vec<String> = Vec::new();
    for _ in 0..400 {
        texts.push(hostile_text().new_tree(&mut runner).unwrap().current());
        texts.push(user_text().new_tree(&mut runner).unwrap().current());
    }
    let documents: Vec<String> = texts
        .iter()
        .map(|text| {
            let mut out = String::new();
            wxgate::xml::XmlWriter::new(&mut out)
                .open("xml")
                .text("C", text)
                .close("xml");
            out
        })
        .collect();
    let mut child = Command::new("python3")
        .args(["-c", READER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs python3 (its standard library) in PATH: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input: String = documents
        .iter()
        .map(|d| serde_json::to_string(d).unwrap() + "\n")
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "python3 failed");
    let answers: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), documents.len());
    for ((text, document), answer) in texts.iter().zip(&documents).zip(&answers) {
        let expected = serde_json::json!({"children": [["C", written_as(text)]]});
        assert_eq!(answer, &expected, "{text:?} written as {document:?}");
    }
}
