//! The parsed EncodingAESKey: 43 base64 characters that become a 32-byte AES-256 key.

use std::fmt;

use aes::Aes256;
use aes::cipher::KeyInit;
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroize;

use crate::error::ProtocolError;

/// Length of the EncodingAESKey as the consoles show it.
pub const ENCODING_AES_KEY_LEN: usize = 43;

/// Real keys, the official sample key among them, end in a character whose low bits are not
/// zero, so a strict decoder would refuse them; the official SDKs ignore those bits.
const LENIENT_KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// An EncodingAESKey, parsed once: the key bytes, the IV derived from them and the AES key
/// schedule, so that no callback pays for key expansion.
///
/// `Debug` never prints the key.
#[derive(Clone)]
pub struct EncodingAesKey {
    key: [u8; 32],
    cipher: Aes256,
}

impl EncodingAesKey {
    /// Parses the 43-character key as shown in the platform console.
    ///
    /// # Errors
    /// [`ProtocolError::IllegalAesKey`] (-40004) when the key is not 43 characters of the
    /// standard base64 alphabet.
    pub fn parse(encoded: &str) -> Result<Self, ProtocolError> {
        if encoded.len() != ENCODING_AES_KEY_LEN {
            return Err(ProtocolError::IllegalAesKey(
                "it must be exactly 43 characters (copy it again from the console)",
            ));
        }
        if !encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        {
            return Err(ProtocolError::IllegalAesKey(
                "it may contain only letters, digits, '+' and '/'",
            ));
        }
        let mut padded = [0u8; ENCODING_AES_KEY_LEN + 1];
        padded[..ENCODING_AES_KEY_LEN].copy_from_slice(encoded.as_bytes());
        padded[ENCODING_AES_KEY_LEN] = b'=';
        let mut key = [0u8; 32];
        let decoded = LENIENT_KEY_BASE64.decode_slice(padded, &mut key);
        if decoded != Ok(32) {
            key.zeroize();
            return Err(ProtocolError::IllegalAesKey("it is not valid base64"));
        }
        let cipher = Aes256::new(&key.into());
        Ok(Self { key, cipher })
    }

    /// The 32 key bytes; crate-private so key material does not leak into callers' code.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The CBC initialisation vector: the first 16 bytes of the key, by the protocol.
    pub(crate) fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }

    /// The expanded AES key schedule.
    pub(crate) fn cipher(&self) -> &Aes256 {
        &self.cipher
    }

    /// A key for sealing stored values of what this key protects on the wire, for `label`
    /// ([`super::at_rest`]); the key bytes themselves never leave this type.
    pub(crate) fn at_rest_key(&self, label: &str) -> super::at_rest::AtRestKey {
        super::at_rest::AtRestKey::derive(&self.key, label)
    }
}

impl Drop for EncodingAesKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for EncodingAesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncodingAesKey(<redacted>)")
    }
}

impl std::str::FromStr for EncodingAesKey {
    type Err = ProtocolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

    #[test]
    fn official_sample_key_parses_despite_nonzero_trailing_bits() {
        let key = EncodingAesKey::parse(SAMPLE).unwrap();
        assert_eq!(key.bytes()[0], 0x8d);
        assert_eq!(&key.iv()[..], &key.bytes()[..16]);
    }

    #[test]
    fn wrong_length_is_40004() {
        for bad in ["", "abc", &SAMPLE[..42], &format!("{SAMPLE}A")] {
            let err = EncodingAesKey::parse(bad).unwrap_err();
            assert_eq!(err.code().as_i32(), -40004, "{bad:?}");
        }
    }

    #[test]
    fn non_base64_characters_are_40004() {
        let bad = format!("{}-", &SAMPLE[..42]);
        let err = EncodingAesKey::parse(&bad).unwrap_err();
        assert!(matches!(err, ProtocolError::IllegalAesKey(m) if m.contains("letters")));
        let with_pad = format!("{}=", &SAMPLE[..42]);
        assert_eq!(
            EncodingAesKey::parse(&with_pad)
                .unwrap_err()
                .code()
                .as_i32(),
            -40004
        );
    }

    #[test]
    fn debug_does_not_leak_the_key() {
        let key = EncodingAesKey::parse(SAMPLE).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(SAMPLE) && shown.contains("redacted"));
    }
}
