//! SHA-1 signatures over sorted parts: `signature` (token, timestamp, nonce) and
//! `msg_signature` (token, timestamp, nonce, encrypt).

use std::fmt;

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::error::ProtocolError;

/// Longest timestamp accepted: u64 seconds fit in 20 digits.
const MAX_TIMESTAMP_LEN: usize = 20;
/// Platforms send nonces of about ten characters; this bounds junk, not real traffic.
const MAX_NONCE_LEN: usize = 128;
/// Consoles allow 3..=32 characters; a longer one is a paste error.
const MAX_TOKEN_LEN: usize = 128;

/// The callback token configured in the platform console.
///
/// `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token after checking that it can be used to sign.
    ///
    /// # Errors
    /// [`ProtocolError::SignatureInput`] (-40003) for an empty token, one longer than
    /// 128 bytes, or one holding whitespace or control characters (usually a paste error).
    pub fn new(token: &str) -> Result<Self, ProtocolError> {
        if token.is_empty() {
            return Err(ProtocolError::SignatureInput("the token is empty"));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(ProtocolError::SignatureInput(
                "the token is longer than 128 bytes",
            ));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ProtocolError::SignatureInput(
                "the token contains whitespace or control characters",
            ));
        }
        Ok(Self(token.to_owned()))
    }

    /// The token itself, for signing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `signature` as the Official Account sends it: SHA-1 over token, timestamp, nonce.
    ///
    /// # Errors
    /// [`ProtocolError::SignatureInput`] when the timestamp or nonce cannot be signed.
    pub fn sign(&self, timestamp: &str, nonce: &str) -> Result<Signature, ProtocolError> {
        check_timestamp_and_nonce(timestamp, nonce)?;
        Ok(Signature::over([
            self.0.as_bytes(),
            timestamp.as_bytes(),
            nonce.as_bytes(),
        ]))
    }

    /// `msg_signature`: SHA-1 over token, timestamp, nonce and the encrypted payload.
    ///
    /// # Errors
    /// [`ProtocolError::SignatureInput`] when the timestamp or nonce cannot be signed.
    pub fn sign_encrypted(
        &self,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<Signature, ProtocolError> {
        check_timestamp_and_nonce(timestamp, nonce)?;
        Ok(Signature::over([
            self.0.as_bytes(),
            timestamp.as_bytes(),
            nonce.as_bytes(),
            encrypt.as_bytes(),
        ]))
    }

    /// Checks a `signature` query parameter in constant time.
    ///
    /// # Errors
    /// -40001 when it is malformed or does not match, -40003 for unsignable inputs.
    pub fn verify(
        &self,
        provided: &str,
        timestamp: &str,
        nonce: &str,
    ) -> Result<(), ProtocolError> {
        let provided = Signature::parse_hex(provided)?;
        provided.verify(&self.sign(timestamp, nonce)?)
    }

    /// Checks a `msg_signature` query parameter in constant time.
    ///
    /// # Errors
    /// -40001 when it is malformed or does not match, -40003 for unsignable inputs.
    pub fn verify_encrypted(
        &self,
        provided: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<(), ProtocolError> {
        let provided = Signature::parse_hex(provided)?;
        provided.verify(&self.sign_encrypted(timestamp, nonce, encrypt)?)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Timestamps are decimal seconds; nonces are short printable strings. Anything else is
/// junk that is refused before hashing.
fn check_timestamp_and_nonce(timestamp: &str, nonce: &str) -> Result<(), ProtocolError> {
    if timestamp.is_empty()
        || timestamp.len() > MAX_TIMESTAMP_LEN
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ProtocolError::SignatureInput(
            "the timestamp must be 1 to 20 decimal digits",
        ));
    }
    if nonce.is_empty()
        || nonce.len() > MAX_NONCE_LEN
        || !nonce.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ProtocolError::SignatureInput(
            "the nonce must be 1 to 128 printable ASCII characters",
        ));
    }
    Ok(())
}

/// A SHA-1 signature, 20 bytes, shown as 40 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 20]);

impl Signature {
    /// SHA-1 over the parts sorted as byte strings and concatenated, as the protocol says.
    pub fn over<const N: usize>(mut parts: [&[u8]; N]) -> Self {
        parts.sort_unstable();
        let mut hasher = Sha1::new();
        for part in parts {
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    /// Parses 40 hex digits (either case).
    ///
    /// # Errors
    /// [`ProtocolError::SignatureMalformed`] (-40001) for anything else.
    pub fn parse_hex(hex: &str) -> Result<Self, ProtocolError> {
        if hex.is_empty() {
            return Err(ProtocolError::SignatureMalformed("nothing"));
        }
        if hex.len() != 40 {
            return Err(ProtocolError::SignatureMalformed(
                "a value of another length",
            ));
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(hex, &mut bytes)
            .map_err(|_| ProtocolError::SignatureMalformed("non-hex characters"))?;
        Ok(Self(bytes))
    }

    /// Compares with the expected signature in constant time.
    ///
    /// # Errors
    /// [`ProtocolError::SignatureMismatch`] (-40001) when they differ.
    pub fn verify(&self, expected: &Signature) -> Result<(), ProtocolError> {
        if bool::from(self.0.ct_eq(&expected.0)) {
            Ok(())
        } else {
            Err(ProtocolError::SignatureMismatch)
        }
    }

    /// The 20 digest bytes.
    pub fn bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// 40 lowercase hex digits, without allocating.
    pub fn to_hex(&self) -> HexSignature {
        let mut out = [0u8; 40];
        // Cannot fail: the output is exactly twice the input.
        let _ = hex::encode_to_slice(self.0, &mut out);
        HexSignature(out)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex().as_str())
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

/// A signature as 40 lowercase hex digits, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexSignature([u8; 40]);

impl HexSignature {
    /// The digits as a string slice.
    pub fn as_str(&self) -> &str {
        // Hex digits are ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for HexSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token::new("QDG6eK").unwrap()
    }

    const ECHOSTR: &str =
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";

    #[test]
    fn official_url_verification_vector() {
        let sig = token()
            .sign_encrypted("1409659589", "263014780", ECHOSTR)
            .unwrap();
        assert_eq!(
            sig.to_hex().as_str(),
            "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
        );
        token()
            .verify_encrypted(
                "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
                "1409659589",
                "263014780",
                ECHOSTR,
            )
            .unwrap();
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        token()
            .verify_encrypted(
                "5C45FF5E21C57E6AD56BAC8758B79B1D9AC89FD3",
                "1409659589",
                "263014780",
                ECHOSTR,
            )
            .unwrap();
    }

    #[test]
    fn plain_signature_sorts_its_three_parts() {
        // sha1("1409659589" + "263014780" + "QDG6eK"): digits sort before letters.
        let mut h = Sha1::new();
        h.update(b"1409659589263014780QDG6eK");
        let expected = Signature(h.finalize().into());
        assert_eq!(token().sign("1409659589", "263014780").unwrap(), expected);
        token()
            .verify(&expected.to_string(), "1409659589", "263014780")
            .unwrap();
    }

    #[test]
    fn a_changed_part_is_a_mismatch() {
        let err = token()
            .verify_encrypted(
                "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
                "1409659590",
                "263014780",
                ECHOSTR,
            )
            .unwrap_err();
        assert_eq!(err, ProtocolError::SignatureMismatch);
        assert_eq!(err.code().as_i32(), -40001);
    }

    #[test]
    fn malformed_signatures_are_typed_errors() {
        for bad in [
            "",
            "abc",
            "zz45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
            "é5ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        ] {
            let err = token().verify(bad, "1", "2").unwrap_err();
            assert!(
                matches!(err, ProtocolError::SignatureMalformed(_)),
                "{bad:?}: {err}"
            );
            assert_eq!(err.code().as_i32(), -40001);
        }
    }

    #[test]
    fn unsignable_inputs_are_40003() {
        let t = token();
        for (ts, nonce) in [
            ("", "1"),
            ("12a", "1"),
            ("123456789012345678901", "1"),
            ("1", ""),
            ("1", "a b"),
            ("1", "\u{7f}"),
        ] {
            let err = t.sign(ts, nonce).unwrap_err();
            assert_eq!(err.code().as_i32(), -40003, "{ts:?} {nonce:?}");
        }
        for bad in ["", "a b", "tab\there", &"x".repeat(129)] {
            assert_eq!(Token::new(bad).unwrap_err().code().as_i32(), -40003);
        }
    }

    #[test]
    fn token_debug_is_redacted() {
        assert!(!format!("{:?}", token()).contains("QDG6eK"));
    }
}
