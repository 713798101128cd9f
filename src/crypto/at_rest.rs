//! Sealing values the gateway keeps in a shared store: a recorded reply, a reply job's
//! decrypted message, a cached access token.
//!
//! A DynamoDB table is read by more than the function: anyone with `dynamodb:GetItem`, a
//! point-in-time-recovery restore (35 days) or the table's stream (24 hours of every
//! write's image). Those values are sealed with AES-256-GCM under a key derived from a secret
//! the gateway already holds for the same data (an app's EncodingAESKey, which protects the
//! same messages on the wire; a token's app secret, which fetched it), so reading them takes
//! what reading the traffic takes. Associated data binds each value to its item key and
//! attribute, so a sealed value moved to another item does not open.
//!
//! Sealed text is `v1:` and base64 of the 12-byte nonce, the ciphertext and the tag.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of sealed text.
pub const SEALED_PREFIX: &str = "v1:";

const NONCE_LEN: usize = 12;

/// A key for sealing stored values.
#[derive(Clone)]
pub struct AtRestKey(Aes256Gcm);

impl std::fmt::Debug for AtRestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtRestKey(<redacted>)")
    }
}

impl AtRestKey {
    /// The key for `label` derived from `material` (a secret of at least 128 bits of
    /// entropy in practice): HMAC-SHA256 keyed with the material over the label, a PRF, so
    /// keys for different labels are independent and none reveals the material.
    pub fn derive(material: &[u8], label: &str) -> Self {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(material)
            .expect("HMAC accepts keys of any length");
        mac.update(b"wxgate at-rest v1\0");
        mac.update(label.as_bytes());
        let derived = mac.finalize().into_bytes();
        let key = Key::<Aes256Gcm>::try_from(&derived[..]).expect("32 bytes");
        Self(Aes256Gcm::new(&key))
    }

    /// `plain` sealed, bound to `aad` (the item key and attribute).
    pub fn seal(&self, aad: &str, plain: &str) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: aad.as_bytes(),
        };
        // Encryption cannot fail for inputs under GCM's 64 GiB bound.
        let sealed = self.0.encrypt(&nonce, payload).unwrap_or_default();
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(&nonce_bytes);
        raw.extend_from_slice(&sealed);
        let mut out = String::with_capacity(SEALED_PREFIX.len() + raw.len() * 4 / 3 + 4);
        out.push_str(SEALED_PREFIX);
        STANDARD.encode_string(&raw, &mut out);
        out
    }

    /// The plain text of `sealed` (from [`seal`](Self::seal) with the same `aad`), or `None`
    /// when it was sealed under another key or for another item, or was altered.
    pub fn open(&self, aad: &str, sealed: &str) -> Option<String> {
        let raw = STANDARD.decode(sealed.strip_prefix(SEALED_PREFIX)?).ok()?;
        if raw.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).ok()?;
        let payload = Payload {
            msg: ciphertext,
            aad: aad.as_bytes(),
        };
        let plain = self.0.decrypt(&nonce, payload).ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Whether stored text is sealed (else it was written before sealing, or by a store that
/// does not seal).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_key_and_item() {
        let key = AtRestKey::derive(b"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "app:demo");
        let sealed = key.seal("dedup#demo#msg|1/reply", "<xml>你好</xml>");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("你好"));
        assert_eq!(
            key.open("dedup#demo#msg|1/reply", &sealed).as_deref(),
            Some("<xml>你好</xml>")
        );
        // Another item, another label, another secret, an altered byte: nothing.
        assert_eq!(key.open("dedup#demo#msg|2/reply", &sealed), None);
        let other_label =
            AtRestKey::derive(b"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "app:shop");
        assert_eq!(other_label.open("dedup#demo#msg|1/reply", &sealed), None);
        let mut altered = sealed.clone().into_bytes();
        let at = altered.len() - 3;
        altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(key.open("dedup#demo#msg|1/reply", &altered), None);
        assert_eq!(key.open("dedup#demo#msg|1/reply", "v1:!!"), None);
        assert_eq!(key.open("dedup#demo#msg|1/reply", "plain"), None);
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let key = AtRestKey::derive(b"secret", "scope");
        assert_ne!(key.seal("k", "same"), key.seal("k", "same"));
        assert!(!format!("{key:?}").contains("secret"));
    }
}
