//! WXBizMsgCrypt: signatures, the AES frame, and the envelopes, with key rotation.
//!
//! [`MsgCrypt`] is what the gateway holds per app: the token, the current EncodingAESKey (and
//! optionally the previous one, during a rotation) and the receive id to expect.

pub mod at_rest;
mod envelope;
mod frame;
mod key;
mod media;
mod signature;

pub use envelope::EncryptedEnvelope;
use envelope::render_reply_envelope;
pub use frame::{DecryptedFrame, MAX_MESSAGE_LEN, PAD_BLOCK};
pub use key::{ENCODING_AES_KEY_LEN, EncodingAesKey};
pub use signature::{HexSignature, Signature, Token};

use crate::error::ProtocolError;

/// Which configured key decrypted a request; the reply must use the same one, because the
/// platform side may not have switched yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySlot {
    /// The current key.
    Current,
    /// The previous key, accepted during a rotation.
    Previous,
}

/// The result of opening a callback or an echostr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The decrypted frame, its receive id already checked.
    pub frame: DecryptedFrame,
    /// The key that worked.
    pub key: KeySlot,
}

/// Crypto settings of one app: token, keys and receive id.
/// A ciphertext whose signature [`MsgCrypt::verify`] accepted, ready to decrypt.
#[derive(Debug, Clone, Copy)]
#[must_use = "a verified ciphertext is only useful decrypted"]
pub struct Verified<'a> {
    crypt: &'a MsgCrypt,
    encrypt: &'a str,
}

impl Verified<'_> {
    /// Decrypts with the current key, then the previous one; checks the receive id.
    ///
    /// # Errors
    /// As [`MsgCrypt::decrypt`].
    pub fn decrypt(self) -> Result<Opened, ProtocolError> {
        self.crypt.decrypt(self.encrypt)
    }
}

#[derive(Debug, Clone)]
pub struct MsgCrypt {
    token: Token,
    current: EncodingAesKey,
    previous: Option<EncodingAesKey>,
    receive_id: String,
}

/// Characters a generated nonce is drawn from; digits and letters survive every layer
/// (query strings, XML, the official SDKs' own parsers).
const NONCE_ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Generated nonce length; the official SDKs use 10 to 16.
pub const NONCE_LEN: usize = 16;

/// A fresh random nonce for a reply.
pub fn fresh_nonce() -> [u8; NONCE_LEN] {
    let mut raw = [0u8; NONCE_LEN];
    rand::fill(&mut raw);
    // 256 % 62 leaves a small bias; a nonce needs uniqueness, not uniformity.
    raw.map(|b| NONCE_ALPHABET[usize::from(b) % NONCE_ALPHABET.len()])
}

impl MsgCrypt {
    /// Builds the settings from the console values.
    ///
    /// # Errors
    /// -40003 for an unusable token, -40004 for an illegal EncodingAESKey.
    pub fn new(
        token: &str,
        encoding_aes_key: &str,
        receive_id: &str,
    ) -> Result<Self, ProtocolError> {
        Ok(Self {
            token: Token::new(token)?,
            current: EncodingAesKey::parse(encoding_aes_key)?,
            previous: None,
            receive_id: receive_id.to_owned(),
        })
    }

    /// Also accepts `previous` during a key rotation; the current key is always tried first.
    ///
    /// # Errors
    /// -40004 for an illegal EncodingAESKey.
    pub fn with_previous_key(mut self, previous: &str) -> Result<Self, ProtocolError> {
        self.previous = Some(EncodingAesKey::parse(previous)?);
        Ok(self)
    }

    /// The token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The expected receive id.
    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// Keys sealing stored values of this app for `label`: the current key's first, then
    /// the previous key's during a rotation (values sealed before it still open).
    pub fn at_rest_keys(&self, label: &str) -> Vec<at_rest::AtRestKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|key| key.at_rest_key(label))
            .collect()
    }

    /// Decrypts a downloaded media file (an AI bot's image, file, video) with the current
    /// key, then, during a rotation, the previous one, as [`decrypt`](Self::decrypt) does
    /// for messages.
    ///
    /// # Errors
    /// As [`EncodingAesKey::decrypt_media`], what the current key said.
    pub fn decrypt_media(&self, encrypted: Vec<u8>) -> Result<Vec<u8>, ProtocolError> {
        let Some(previous) = &self.previous else {
            return self.current.decrypt_media(encrypted);
        };
        // Decrypting works in place, so the previous key gets a copy.
        self.current
            .decrypt_media(encrypted.clone())
            .or_else(|first| previous.decrypt_media(encrypted).map_err(|_| first))
    }

    /// The key in a slot; the current key when there is no previous one.
    pub fn key(&self, slot: KeySlot) -> &EncodingAesKey {
        match (slot, &self.previous) {
            (KeySlot::Previous, Some(previous)) => previous,
            _ => &self.current,
        }
    }

    /// Checks `msg_signature` over `encrypt`, then decrypts it and checks the receive id,
    /// trying the previous key when the current one does not fit.
    ///
    /// # Errors
    /// -40001/-40003 for the signature (checked first, so junk costs no decryption), then
    /// the decryption errors of the current key if no key fits.
    pub fn open(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<Opened, ProtocolError> {
        self.verify(msg_signature, timestamp, nonce, encrypt)?
            .decrypt()
    }

    /// The first half of [`open`](Self::open): checks `msg_signature` over the ciphertext
    /// and hands back the ciphertext, [`Verified`], to decrypt. A caller with a check to
    /// make between the two (the gateway's replay window) makes it here, before any
    /// decryption.
    ///
    /// # Errors
    /// -40001/-40003 for the signature.
    pub fn verify<'a>(
        &'a self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &'a str,
    ) -> Result<Verified<'a>, ProtocolError> {
        self.token
            .verify_encrypted(msg_signature, timestamp, nonce, encrypt)?;
        Ok(Verified {
            crypt: self,
            encrypt,
        })
    }

    pub fn open_envelope(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        body: &str,
    ) -> Result<Opened, ProtocolError> {
        let envelope = EncryptedEnvelope::parse(body)?;
        self.open(msg_signature, timestamp, nonce, &envelope.encrypt)
    }

    /// Decrypts without a signature check (callers must have checked it) and checks the
    /// receive id.
    ///
    /// # Errors
    /// As [`EncodingAesKey::decrypt`], or -40005 for another receive id.
    pub fn decrypt(&self, encrypt: &str) -> Result<Opened, ProtocolError> {
        let first = self.decrypt_with(&self.current, encrypt);
        match (&first, &self.previous) {
            (Err(e), Some(previous)) if e.is_wrong_key_symptom() => {
                match self.decrypt_with(previous, encrypt) {
                    Ok(frame) => Ok(Opened {
                        frame,
                        key: KeySlot::Previous,
                    }),
                    // Report what the current key said: that is the configuration to fix.
                    Err(_) => first.map(|frame| Opened {
                        frame,
                        key: KeySlot::Current,
                    }),
                }
            }
            _ => first.map(|frame| Opened {
                frame,
                key: KeySlot::Current,
            }),
        }
    }

    fn decrypt_with(
        &self,
        key: &EncodingAesKey,
        encrypt: &str,
    ) -> Result<DecryptedFrame, ProtocolError> {
        let frame = key.decrypt(encrypt)?;
        frame.check_receive_id(&self.receive_id)?;
        Ok(frame)
    }

    /// Encrypts a reply with the key in `slot`, signs it, and renders the reply envelope.
    ///
    /// # Errors
    /// -40006 for a reply over [`MAX_MESSAGE_LEN`].
    pub fn seal(
        &self,
        reply_xml: &str,
        slot: KeySlot,
        timestamp: u64,
    ) -> Result<String, ProtocolError> {
        let nonce = fresh_nonce();
        // The alphabet is ASCII.
        let nonce = std::str::from_utf8(&nonce).unwrap_or("0");
        self.seal_with(reply_xml, slot, timestamp, nonce)
    }

    /// As [`seal`](Self::seal) with a given nonce.
    ///
    /// # Errors
    /// -40006 for a reply over [`MAX_MESSAGE_LEN`], -40003 for an unsignable nonce.
    pub fn seal_with(
        &self,
        reply_xml: &str,
        slot: KeySlot,
        timestamp: u64,
        nonce: &str,
    ) -> Result<String, ProtocolError> {
        let (encrypt, signature) = self.encrypt_and_sign(reply_xml, slot, timestamp, nonce)?;
        let mut out = String::new();
        render_reply_envelope(&mut out, &encrypt, &signature, timestamp, nonce);
        Ok(out)
    }

    /// Encrypts `plaintext` with the key in `slot` and signs the ciphertext: the base64
    /// ciphertext and the hex signature, for a caller rendering its own envelope (the JSON
    /// ones of the AI bot and the Mini Program).
    ///
    /// # Errors
    /// -40006 for a plaintext over [`MAX_MESSAGE_LEN`], -40003 for an unsignable nonce.
    pub fn encrypt_and_sign(
        &self,
        plaintext: &str,
        slot: KeySlot,
        timestamp: u64,
        nonce: &str,
    ) -> Result<(String, String), ProtocolError> {
        let encrypt = self
            .key(slot)
            .encrypt(plaintext.as_bytes(), &self.receive_id)?;
        let signature =
            self.token
                .sign_encrypted(itoa::Buffer::new().format(timestamp), nonce, &encrypt)?;
        Ok((encrypt, signature.to_hex().as_str().to_owned()))
    }
}
