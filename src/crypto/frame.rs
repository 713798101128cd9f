//! The encrypted frame: `random(16) ‖ u32_be(len) ‖ msg ‖ receive_id`, PKCS#7-padded to
//! 32-byte blocks, AES-256-CBC with the key's first 16 bytes as IV, then base64.
//!
//! The `cbc` crate's own PKCS#7 assumes 16-byte blocks and rejects pad bytes 17..=32, which
//! half of all real payloads carry; so the cipher runs unpadded and the 32-byte padding is
//! added and checked here.

use std::ops::Range;

use aes::Aes256;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit};
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::key::EncodingAesKey;
use crate::error::ProtocolError;

/// The protocol's PKCS#7 block size: 32, not AES's 16.
pub const PAD_BLOCK: usize = 32;
/// Random prefix length.
const RANDOM_LEN: usize = 16;
/// Random prefix plus the big-endian length.
const HEADER_LEN: usize = RANDOM_LEN + 4;
/// Largest message wxgate frames or accepts, far above anything the platforms send.
pub const MAX_MESSAGE_LEN: usize = 1 << 20;

/// Ciphertext is signed before it is decrypted, so accepting either padding form costs no
/// safety and spares a retry storm over a cosmetic difference.
const CIPHERTEXT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A decrypted frame: owns the plaintext buffer and knows where the message and the
/// receive id lie in it, so decryption copies nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct DecryptedFrame {
    buf: Vec<u8>,
    message: Range<usize>,
    receive_id: Range<usize>,
}

impl DecryptedFrame {
    /// The message bytes (XML for callbacks, the echo string for URL verification).
    pub fn message(&self) -> &[u8] {
        &self.buf[self.message.clone()]
    }

    /// The message as UTF-8.
    ///
    /// # Errors
    /// [`ProtocolError::IllegalBuffer`] (-40008) when it is not UTF-8.
    pub fn message_str(&self) -> Result<&str, ProtocolError> {
        std::str::from_utf8(self.message())
            .map_err(|_| ProtocolError::IllegalBuffer("the decrypted message is not UTF-8"))
    }

    /// The receive id the sender put in the frame.
    pub fn receive_id(&self) -> &[u8] {
        &self.buf[self.receive_id.clone()]
    }

    /// Checks the frame's receive id against the configured one.
    ///
    /// # Errors
    /// [`ProtocolError::ReceiveIdMismatch`] (-40005) when they differ.
    pub fn check_receive_id(&self, expected: &str) -> Result<(), ProtocolError> {
        if self.receive_id() == expected.as_bytes() {
            return Ok(());
        }
        let actual: String = String::from_utf8_lossy(self.receive_id())
            .chars()
            .take(64)
            .collect();
        Err(ProtocolError::ReceiveIdMismatch {
            expected: expected.to_owned(),
            actual,
        })
    }
}

impl std::fmt::Debug for DecryptedFrame {
    // Message contents are private; show only sizes and the (public) receive id.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptedFrame")
            .field("message_len", &self.message.len())
            .field("receive_id", &String::from_utf8_lossy(self.receive_id()))
            .finish()
    }
}

impl EncodingAesKey {
    /// Frames, pads, encrypts and base64-encodes a message, with a fresh random prefix.
    ///
    /// # Errors
    /// [`ProtocolError::EncryptTooLarge`] (-40006) above [`MAX_MESSAGE_LEN`].
    pub fn encrypt(&self, message: &[u8], receive_id: &str) -> Result<String, ProtocolError> {
        let mut random = [0u8; RANDOM_LEN];
        rand::fill(&mut random);
        self.encrypt_with_random(random, message, receive_id)
    }

    /// As [`encrypt`](Self::encrypt) with a given random prefix, for reproducible vectors.
    ///
    /// # Errors
    /// [`ProtocolError::EncryptTooLarge`] (-40006) above [`MAX_MESSAGE_LEN`].
    pub fn encrypt_with_random(
        &self,
        random: [u8; RANDOM_LEN],
        message: &[u8],
        receive_id: &str,
    ) -> Result<String, ProtocolError> {
        let payload = message.len() + receive_id.len();
        if payload > MAX_MESSAGE_LEN {
            return Err(ProtocolError::EncryptTooLarge {
                len: payload,
                max: MAX_MESSAGE_LEN,
            });
        }
        let frame_len = HEADER_LEN + payload;
        let pad = PAD_BLOCK - frame_len % PAD_BLOCK;
        let mut buf = Vec::with_capacity(frame_len + pad);
        buf.extend_from_slice(&random);
        // Fits: bounded by MAX_MESSAGE_LEN above.
        buf.extend_from_slice(&(message.len() as u32).to_be_bytes());
        buf.extend_from_slice(message);
        buf.extend_from_slice(receive_id.as_bytes());
        // `pad` is 1..=32, so it fits a byte.
        buf.resize(frame_len + pad, pad as u8);

        let encryptor =
            cbc::Encryptor::<Aes256>::inner_iv_init(self.cipher().clone(), &self.iv().into());
        let ciphertext = encryptor
            .encrypt_padded::<NoPadding>(&mut buf, frame_len + pad)
            .map_err(|_| ProtocolError::EncryptTooLarge {
                len: payload,
                max: MAX_MESSAGE_LEN,
            })?;
        Ok(CIPHERTEXT_BASE64.encode(ciphertext))
    }

    /// Decodes, decrypts and unframes a base64 ciphertext. The receive id is returned, not
    /// checked: see [`DecryptedFrame::check_receive_id`].
    ///
    /// # Errors
    /// -40010 for bad base64, -40007 for a length that is not a positive multiple of 32,
    /// -40008 for bad padding or a declared length beyond the frame.
    pub fn decrypt(&self, ciphertext_b64: &str) -> Result<DecryptedFrame, ProtocolError> {
        // Base64 of MAX_MESSAGE_LEN plus framing; refuse before allocating.
        let max_b64 = (MAX_MESSAGE_LEN + HEADER_LEN + PAD_BLOCK) / 3 * 4 + 4;
        if ciphertext_b64.len() > max_b64 {
            return Err(ProtocolError::CiphertextLength(
                ciphertext_b64.len() / 4 * 3,
            ));
        }
        let mut buf = Vec::with_capacity(ciphertext_b64.len() / 4 * 3 + 3);
        CIPHERTEXT_BASE64
            .decode_vec(ciphertext_b64, &mut buf)
            .map_err(|e| ProtocolError::Base64Decode(e.to_string()))?;
        if buf.is_empty() || buf.len() % PAD_BLOCK != 0 {
            return Err(ProtocolError::CiphertextLength(buf.len()));
        }
        let ciphertext_len = buf.len();
        let decryptor =
            cbc::Decryptor::<Aes256>::inner_iv_init(self.cipher().clone(), &self.iv().into());
        // Cannot fail after the length check above; mapped rather than unwrapped all the same.
        let plain_len = decryptor
            .decrypt_padded::<NoPadding>(&mut buf)
            .map_err(|_| ProtocolError::CiphertextLength(ciphertext_len))?
            .len();
        let (message, receive_id) = unframe(&buf[..plain_len])?;
        Ok(DecryptedFrame {
            buf,
            message,
            receive_id,
        })
    }
}

/// Strips the 32-byte PKCS#7 padding and splits the frame; returns the message and receive
/// id ranges.
fn unframe(plain: &[u8]) -> Result<(Range<usize>, Range<usize>), ProtocolError> {
    let pad = usize::from(
        *plain
            .last()
            .ok_or(ProtocolError::IllegalBuffer("the frame is empty"))?,
    );
    if pad == 0 || pad > PAD_BLOCK {
        return Err(ProtocolError::IllegalBuffer(
            "the padding byte is outside 1..=32",
        ));
    }
    let unpadded = plain.len() - pad;
    if plain[unpadded..].iter().any(|&b| usize::from(b) != pad) {
        return Err(ProtocolError::IllegalBuffer("the padding bytes differ"));
    }
    if unpadded < HEADER_LEN {
        return Err(ProtocolError::IllegalBuffer(
            "the frame is shorter than its 20-byte header",
        ));
    }
    let mut len_bytes = [0u8; 4];
    len_bytes.copy_from_slice(&plain[RANDOM_LEN..HEADER_LEN]);
    let declared = u32::from_be_bytes(len_bytes) as usize;
    let message_end = HEADER_LEN
        .checked_add(declared)
        .filter(|&end| end <= unpadded)
        .ok_or(ProtocolError::IllegalBuffer(
            "the declared message length exceeds the frame",
        ))?;
    Ok((HEADER_LEN..message_end, message_end..unpadded))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

    fn key() -> EncodingAesKey {
        EncodingAesKey::parse(KEY).unwrap()
    }

    /// Encrypts an arbitrary already-padded plaintext, to build malformed frames.
    fn encrypt_raw(plain: &[u8]) -> String {
        let k = key();
        let mut buf = plain.to_vec();
        let enc = cbc::Encryptor::<Aes256>::inner_iv_init(k.cipher().clone(), &k.iv().into());
        let len = buf.len();
        let ct = enc
            .encrypt_padded::<NoPadding>(&mut buf, len)
            .unwrap()
            .to_vec();
        CIPHERTEXT_BASE64.encode(ct)
    }

    #[test]
    fn official_echostr_decrypts() {
        let echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
        let frame = key().decrypt(echostr).unwrap();
        assert_eq!(frame.message(), b"1616140317555161061");
        assert_eq!(frame.receive_id(), b"wx5823bf96d3bd56c7");
        frame.check_receive_id("wx5823bf96d3bd56c7").unwrap();
    }

    #[test]
    fn every_pad_length_round_trips() {
        let k = key();
        // Frame length 20 + msg + 3; msg lengths 0..64 cover pad bytes 1..=32 twice.
        for len in 0..64 {
            let msg = vec![b'x'; len];
            let ct = k.encrypt(&msg, "rid").unwrap();
            let frame = k.decrypt(&ct).unwrap();
            assert_eq!(frame.message(), &msg[..]);
            assert_eq!(frame.receive_id(), b"rid");
        }
    }

    #[test]
    fn fixed_random_is_deterministic_and_fresh_random_is_not() {
        let k = key();
        let a = k.encrypt_with_random([7; 16], b"hi", "r").unwrap();
        assert_eq!(a, k.encrypt_with_random([7; 16], b"hi", "r").unwrap());
        assert_ne!(
            k.encrypt(b"hi", "r").unwrap(),
            k.encrypt(b"hi", "r").unwrap()
        );
    }

    #[test]
    fn wrong_receive_id_is_40005() {
        let k = key();
        let frame = k.decrypt(&k.encrypt(b"m", "wxother").unwrap()).unwrap();
        let err = frame.check_receive_id("wx5823bf96d3bd56c7").unwrap_err();
        assert_eq!(err.code().as_i32(), -40005);
        assert!(err.to_string().contains("wxother"));
    }

    #[test]
    fn bad_base64_is_40010() {
        let err = key().decrypt("not base64!").unwrap_err();
        assert_eq!(err.code().as_i32(), -40010);
        // A form-decoded '+' arrives as a space: still refused, never panics.
        assert_eq!(key().decrypt("ab c").unwrap_err().code().as_i32(), -40010);
    }

    #[test]
    fn lengths_off_the_32_byte_grid_are_40007() {
        for n in [0usize, 16, 31, 48] {
            let err = key()
                .decrypt(&CIPHERTEXT_BASE64.encode(vec![0u8; n]))
                .unwrap_err();
            assert_eq!(err, ProtocolError::CiphertextLength(n));
            assert_eq!(err.code().as_i32(), -40007);
        }
    }

    #[test]
    fn bad_padding_bytes_are_40008() {
        let refused = |plain: &[u8]| key().decrypt(&encrypt_raw(plain)).unwrap_err();
        let mut plain = vec![0u8; 64];
        plain[63] = 0;
        assert_eq!(
            refused(&plain),
            ProtocolError::IllegalBuffer("the padding byte is outside 1..=32")
        );
        plain[63] = 33;
        assert_eq!(
            refused(&plain),
            ProtocolError::IllegalBuffer("the padding byte is outside 1..=32")
        );
        plain[62] = 1;
        plain[63] = 2;
        let err = refused(&plain);
        assert_eq!(
            err,
            ProtocolError::IllegalBuffer("the padding bytes differ")
        );
        assert_eq!(err.code().as_i32(), -40008);
    }

    #[test]
    fn truncated_and_overlong_frames_are_40008() {
        // 32 bytes of padding only: no header.
        let only_pad = vec![32u8; 32];
        let err = key().decrypt(&encrypt_raw(&only_pad)).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::IllegalBuffer("the frame is shorter than its 20-byte header")
        );
        // Header declares 1000 bytes but the frame holds 12.
        let mut plain = vec![0u8; 64];
        plain[16..20].copy_from_slice(&1000u32.to_be_bytes());
        plain[32..].fill(32);
        let err = key().decrypt(&encrypt_raw(&plain)).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::IllegalBuffer("the declared message length exceeds the frame")
        );
        // u32::MAX must not overflow the bound check.
        plain[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            key()
                .decrypt(&encrypt_raw(&plain))
                .unwrap_err()
                .code()
                .as_i32(),
            -40008
        );
    }

    #[test]
    fn tampered_ciphertext_never_panics_and_never_yields_the_original() {
        let k = key();
        let ct = k
            .encrypt(b"<xml>secret</xml>", "wx5823bf96d3bd56c7")
            .unwrap();
        let mut raw = CIPHERTEXT_BASE64.decode(&ct).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 0x5a;
            let result = k.decrypt(&CIPHERTEXT_BASE64.encode(&raw));
            // CBC has no integrity of its own (the signature provides it): a flipped byte
            // may still decrypt, but never to the original message and receive id.
            if let Ok(frame) = result {
                assert!(
                    frame.message() != b"<xml>secret</xml>"
                        || frame.receive_id() != b"wx5823bf96d3bd56c7",
                    "byte {i}"
                );
            }
            raw[i] ^= 0x5a;
        }
    }

    #[test]
    fn oversized_messages_are_40006() {
        let err = key()
            .encrypt(&vec![0u8; MAX_MESSAGE_LEN + 1], "")
            .unwrap_err();
        assert_eq!(err.code().as_i32(), -40006);
    }

    #[test]
    fn non_utf8_message_is_reported_not_panicked() {
        let k = key();
        let frame = k.decrypt(&k.encrypt(&[0xff, 0xfe], "r").unwrap()).unwrap();
        assert_eq!(frame.message_str().unwrap_err().code().as_i32(), -40008);
    }

    #[test]
    fn debug_hides_the_message() {
        let k = key();
        let frame = k
            .decrypt(&k.encrypt(b"private words", "r").unwrap())
            .unwrap();
        assert!(!format!("{frame:?}").contains("private"));
    }
}
