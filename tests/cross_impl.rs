//! Cross-implementation test: what wxgate encrypts and signs, Tencent's @wecom/crypto (npm)
//! and wechatpy (PyPI) verify and decrypt, and the other way round.
//!
//! The peers are installed into `.cache/peers` by `scripts/peers.sh` (run here, idempotent)
//! and driven through small JSON Lines drivers in `tests/peers/`.
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};
use support::sample::{CORP_ID, KEY, TOKEN};
use wxgate::crypto::{KeySlot, MsgCrypt};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Installs both peers once per test binary; a failure fails every test that needs them.
fn install_peers() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("scripts/peers.sh"))
            .arg("all")
            .output()
            .map_err(|e| format!("cannot run scripts/peers.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/peers.sh all failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// One running peer driver.
struct Peer {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(name: &'static str, program: PathBuf, script: &str) -> Self {
        install_peers();
        let mut child = Command::new(&program)
            .arg(root().join(script))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            name,
            child,
            stdin,
            stdout,
        }
    }

    fn node() -> Self {
        Self::start(
            "@wecom/crypto",
            PathBuf::from("node"),
            "tests/peers/wecom_crypto_peer.js",
        )
    }

    fn wechatpy() -> Self {
        Self::start(
            "wechatpy",
            root().join(".cache/peers/venv/bin/python"),
            "tests/peers/wechatpy_peer.py",
        )
    }

    fn call(&mut self, request: Value) -> Value {
        writeln!(self.stdin, "{request}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: bad answer {line:?}: {e}", self.name))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Messages chosen for the edges: empty, Chinese, emoji, CDATA terminators, 2 KB, and
/// lengths whose frame (20 + message + 18-byte corp id) falls exactly on 32-byte blocks.
fn messages() -> Vec<String> {
    let mut out = vec![
        String::new(),
        "hello".to_owned(),
        "你好，世界".to_owned(),
        "emoji 😀👍🏽 and ]]> and <xml>&amp;".to_owned(),
        format!(
            "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Content><![CDATA[a]]]]><![CDATA[>b]]></Content></xml>"
        ),
        "中".repeat(700),
        "x".repeat(2048),
    ];
    for total in [64usize, 96, 128, 2048] {
        out.push("a".repeat(total - 20 - CORP_ID.len()));
    }
    // Every pad byte value 1..=32 once.
    for len in 0..32 {
        out.push("p".repeat(100 + len));
    }
    out
}

fn wxgate_encrypts_peer_decrypts(peer: &mut Peer) {
    let crypt = MsgCrypt::new(TOKEN, KEY, CORP_ID).unwrap();
    for (i, message) in messages().into_iter().enumerate() {
        let (ts, nonce) = (format!("{}", 1409659813 + i), format!("n{i}x"));
        let encrypt = crypt
            .key(KeySlot::Current)
            .encrypt(message.as_bytes(), CORP_ID)
            .unwrap();
        let sig = crypt
            .token()
            .sign_encrypted(&ts, &nonce, &encrypt)
            .unwrap()
            .to_string();
        let answer = peer.call(json!({
            "op": "decrypt", "token": TOKEN, "key": KEY, "receive_id": CORP_ID,
            "encrypt": encrypt, "timestamp": ts, "nonce": nonce, "msg_signature": sig,
        }));
        assert_eq!(
            answer["message"],
            json!(message),
            "{} on message {i}: {answer}",
            peer.name
        );
        assert_eq!(
            answer["receive_id"],
            json!(CORP_ID),
            "{} on message {i}",
            peer.name
        );
    }
}

fn peer_encrypts_wxgate_decrypts(peer: &mut Peer) {
    let crypt = MsgCrypt::new(TOKEN, KEY, CORP_ID).unwrap();
    for (i, message) in messages().into_iter().enumerate() {
        let (ts, nonce) = (format!("{}", 1409659813 + i), format!("{}", 1372623149 + i));
        let answer = peer.call(json!({
            "op": "encrypt", "token": TOKEN, "key": KEY, "receive_id": CORP_ID,
            "message": message, "timestamp": ts, "nonce": nonce,
        }));
        let encrypt = answer["encrypt"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: {answer}", peer.name));
        let sig = answer["msg_signature"].as_str().unwrap();
        let opened = crypt
            .open(sig, &ts, &nonce, encrypt)
            .unwrap_or_else(|e| panic!("{} message {i}: {e}", peer.name));
        assert_eq!(
            opened.frame.message(),
            message.as_bytes(),
            "{} message {i}",
            peer.name
        );
        assert_eq!(opened.frame.receive_id(), CORP_ID.as_bytes());
    }
}

fn peer_refuses_a_tampered_signature(peer: &mut Peer) {
    let crypt = MsgCrypt::new(TOKEN, KEY, CORP_ID).unwrap();
    let encrypt = crypt.key(KeySlot::Current).encrypt(b"m", CORP_ID).unwrap();
    let sig = crypt
        .token()
        .sign_encrypted("1", "2", &encrypt)
        .unwrap()
        .to_string();
    let answer = peer.call(json!({
        "op": "decrypt", "token": TOKEN, "key": KEY, "receive_id": CORP_ID,
        "encrypt": encrypt, "timestamp": "1", "nonce": "3", "msg_signature": sig,
    }));
    assert!(answer["error"].is_string(), "{}: {answer}", peer.name);
}

#[test]
fn wecom_crypto_decrypts_what_wxgate_encrypts() {
    wxgate_encrypts_peer_decrypts(&mut Peer::node());
}

#[test]
fn wxgate_decrypts_what_wecom_crypto_encrypts() {
    peer_encrypts_wxgate_decrypts(&mut Peer::node());
}

#[test]
fn wechatpy_decrypts_what_wxgate_encrypts() {
    wxgate_encrypts_peer_decrypts(&mut Peer::wechatpy());
}

#[test]
fn wxgate_decrypts_what_wechatpy_encrypts() {
    peer_encrypts_wxgate_decrypts(&mut Peer::wechatpy());
}

#[test]
fn both_peers_check_the_signature_wxgate_makes() {
    peer_refuses_a_tampered_signature(&mut Peer::node());
    peer_refuses_a_tampered_signature(&mut Peer::wechatpy());
}

#[test]
fn peers_agree_with_the_official_url_vector() {
    let echostr =
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
    for mut peer in [Peer::node(), Peer::wechatpy()] {
        let answer = peer.call(json!({
            "op": "decrypt", "token": TOKEN, "key": KEY, "receive_id": CORP_ID, "encrypt": echostr,
            "timestamp": "1409659589", "nonce": "263014780", "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        }));
        assert_eq!(answer["message"], "1616140317555161061", "{}", peer.name);
    }
}
