//! One error type for the protocol core, mapped onto the official WXBizMsgCrypt codes.
//!
//! Operators search logs for the numeric codes (-40001 … -40011) because every official
//! SDK prints them; each [`ProtocolError`] therefore carries one through [`ProtocolError::code`],
//! while its message says what was actually wrong and what to check.

use std::fmt;

/// The official WXBizMsgCrypt error codes, as the platforms' sample code numbers them (the
/// README's "Error codes" lists them).
///
/// Two of them are never produced by wxgate because the operation cannot fail here:
/// [`ErrorCode::EncodeBase64`] (base64 encoding is infallible) and nothing else computes a
/// SHA-1 that could fail, so [`ErrorCode::ComputeSignature`] is used only for inputs that
/// cannot be signed at all (an empty token, a malformed timestamp or nonce).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    /// -40001: the signature does not match.
    ValidateSignature = -40001,
    /// -40002: the XML could not be parsed.
    ParseXml = -40002,
    /// -40003: the signature could not be computed.
    ComputeSignature = -40003,
    /// -40004: the EncodingAESKey is illegal.
    IllegalAesKey = -40004,
    /// -40005: the receive id (corp id / AppID) does not match.
    ValidateReceiveId = -40005,
    /// -40006: AES encryption failed.
    EncryptAes = -40006,
    /// -40007: AES decryption failed.
    DecryptAes = -40007,
    /// -40008: the decrypted buffer is illegal (padding, length).
    IllegalBuffer = -40008,
    /// -40009: base64 encoding failed.
    EncodeBase64 = -40009,
    /// -40010: base64 decoding failed.
    DecodeBase64 = -40010,
    /// -40011: building the reply XML failed.
    GenReturnXml = -40011,
}

impl ErrorCode {
    /// The numeric code as the official SDKs print it.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code as text (`"-40001"`), static: a metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::ValidateSignature => "-40001",
            Self::ParseXml => "-40002",
            Self::ComputeSignature => "-40003",
            Self::IllegalAesKey => "-40004",
            Self::ValidateReceiveId => "-40005",
            Self::EncryptAes => "-40006",
            Self::DecryptAes => "-40007",
            Self::IllegalBuffer => "-40008",
            Self::EncodeBase64 => "-40009",
            Self::DecodeBase64 => "-40010",
            Self::GenReturnXml => "-40011",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_i32())
    }
}

/// Everything that can go wrong between the platform's bytes and ours.
///
/// Messages never contain secrets or message contents; a receive id is printed because it
/// is public (corp ids and AppIDs appear in URLs) and is the first thing to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The signature is well-formed but does not match (-40001).
    #[error(
        "signature mismatch (-40001): the token configured here differs from the one saved in \
         the platform console, or the request was not sent by the platform"
    )]
    SignatureMismatch,

    /// The signature parameter is missing, has the wrong length or is not hex (-40001).
    #[error("malformed signature (-40001): expected 40 hex digits, got {0}")]
    SignatureMalformed(&'static str),

    /// An input to the signature cannot be signed (-40003).
    #[error("cannot compute the signature (-40003): {0}")]
    SignatureInput(&'static str),

    /// The XML is not well-formed, or breaks a structural rule (-40002).
    #[error("malformed XML (-40002): {0}")]
    Xml(String),

    /// The XML declares a DOCTYPE; entity declarations are never accepted (-40002).
    #[error("XML with a DOCTYPE or entity declaration is refused (-40002)")]
    XmlDoctype,

    /// The XML input exceeds the size bound (-40002).
    #[error("XML input of {len} bytes exceeds the limit of {max} bytes (-40002)")]
    XmlTooLarge {
        /// Bytes received.
        len: usize,
        /// The bound.
        max: usize,
    },

    /// A JSON body (the AI bot's and the Mini Program's JSON envelopes, the AI bot's
    /// decrypted callbacks) is not well-formed or breaks its shape (-40002, the code the
    /// official JSON samples give a JSON parse error too).
    #[error("malformed JSON (-40002): {0}")]
    Json(String),

    /// A required JSON field is absent or empty (-40002).
    #[error("JSON lacks the required field `{0}` (-40002)")]
    JsonMissingField(&'static str),

    /// A required element is absent (-40002).
    #[error("XML lacks the required element <{0}> (-40002)")]
    XmlMissingField(&'static str),

    /// An element holds a value of the wrong form, e.g. a non-numeric CreateTime (-40002).
    #[error("XML element <{field}> has an invalid value: {reason} (-40002)")]
    XmlInvalidField {
        /// The element name.
        field: &'static str,
        /// What was expected.
        reason: &'static str,
    },

    /// The EncodingAESKey is not 43 base64 characters (-40004).
    #[error("illegal EncodingAESKey (-40004): {0}")]
    IllegalAesKey(&'static str),

    /// The decrypted frame names another receiver (-40005).
    #[error(
        "receive id mismatch (-40005): the message is for {actual:?} but this app is configured \
         with {expected:?}; check corp_id / app_id"
    )]
    ReceiveIdMismatch {
        /// The configured receive id.
        expected: String,
        /// What the frame carried (lossy UTF-8, at most 64 characters).
        actual: String,
    },

    /// The plaintext is too large to frame (-40006).
    #[error("AES encrypt failed (-40006): a {len}-byte message exceeds the limit of {max} bytes")]
    EncryptTooLarge {
        /// Bytes offered.
        len: usize,
        /// The bound.
        max: usize,
    },

    /// The ciphertext cannot be AES-CBC decrypted with 32-byte framing (-40007).
    #[error(
        "AES decrypt failed (-40007): ciphertext of {0} bytes is not a positive multiple of 32"
    )]
    CiphertextLength(usize),

    /// The decrypted buffer breaks the frame rules (-40008); usually a wrong EncodingAESKey.
    #[error("decrypted buffer is illegal (-40008): {0}; is the EncodingAESKey the current one?")]
    IllegalBuffer(&'static str),

    /// The ciphertext or echostr is not base64 (-40010).
    #[error("base64 decode failed (-40010): {0}")]
    Base64Decode(String),

    /// A reply cannot be rendered for this platform (-40011).
    #[error("cannot build the reply XML (-40011): {0}")]
    Reply(String),
}

impl ProtocolError {
    /// The official code this error maps onto.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::SignatureMismatch | Self::SignatureMalformed(_) => ErrorCode::ValidateSignature,
            Self::SignatureInput(_) => ErrorCode::ComputeSignature,
            Self::Xml(_)
            | Self::XmlDoctype
            | Self::XmlTooLarge { .. }
            | Self::XmlMissingField(_)
            | Self::XmlInvalidField { .. }
            | Self::Json(_)
            | Self::JsonMissingField(_) => ErrorCode::ParseXml,
            Self::IllegalAesKey(_) => ErrorCode::IllegalAesKey,
            Self::ReceiveIdMismatch { .. } => ErrorCode::ValidateReceiveId,
            Self::EncryptTooLarge { .. } => ErrorCode::EncryptAes,
            Self::CiphertextLength(_) => ErrorCode::DecryptAes,
            Self::IllegalBuffer(_) => ErrorCode::IllegalBuffer,
            Self::Base64Decode(_) => ErrorCode::DecodeBase64,
            Self::Reply(_) => ErrorCode::GenReturnXml,
        }
    }

    /// True when the error says the key did not fit the ciphertext, so an older key may.
    /// Base64 and length errors come before any key is used: another key fails the same way.
    pub(crate) fn is_wrong_key_symptom(&self) -> bool {
        matches!(
            self,
            Self::IllegalBuffer(_) | Self::ReceiveIdMismatch { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_official_code_in_its_message() {
        let all = [
            ProtocolError::SignatureMismatch,
            ProtocolError::SignatureMalformed("nothing"),
            ProtocolError::SignatureInput("x"),
            ProtocolError::Xml("x".into()),
            ProtocolError::XmlDoctype,
            ProtocolError::XmlTooLarge { len: 2, max: 1 },
            ProtocolError::XmlMissingField("Encrypt"),
            ProtocolError::XmlInvalidField {
                field: "CreateTime",
                reason: "x",
            },
            ProtocolError::IllegalAesKey("x"),
            ProtocolError::ReceiveIdMismatch {
                expected: "a".into(),
                actual: "b".into(),
            },
            ProtocolError::EncryptTooLarge { len: 2, max: 1 },
            ProtocolError::CiphertextLength(3),
            ProtocolError::IllegalBuffer("x"),
            ProtocolError::Base64Decode("x".into()),
            ProtocolError::Reply("x".into()),
        ];
        for e in all {
            let code = e.code().to_string();
            assert!(e.to_string().contains(&code), "{e} does not mention {code}");
        }
    }

    #[test]
    fn codes_are_the_official_numbers() {
        assert_eq!(ErrorCode::ValidateSignature.as_i32(), -40001);
        assert_eq!(ErrorCode::GenReturnXml.as_i32(), -40011);
        assert_eq!(ProtocolError::CiphertextLength(1).code().as_i32(), -40007);
    }

    #[test]
    fn every_label_is_its_code() {
        use ErrorCode::*;
        let all = [
            ValidateSignature,
            ParseXml,
            ComputeSignature,
            IllegalAesKey,
            ValidateReceiveId,
            EncryptAes,
            DecryptAes,
            IllegalBuffer,
            EncodeBase64,
            DecodeBase64,
            GenReturnXml,
        ];
        for code in all {
            assert_eq!(code.label(), code.as_i32().to_string());
        }
    }
}
