//! What can go wrong talking to the platform, and getting a token.
//!
//! No message here ever holds a secret or a token: request URLs are stripped from
//! transport errors (WeCom's `gettoken` carries the secret in its query string, every API
//! call carries the token) and the client scrubs both out of anything the platform echoes.

/// Errcodes meaning "this access token is not (or no longer) valid": 40001 invalid
/// credential, 40014 invalid access_token, 42001 access_token expired.
const TOKEN_INVALID: [i64; 3] = [40001, 40014, 42001];

/// A failed API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The platform answered with a non-zero `errcode`.
    #[error("platform error {errcode}: {errmsg}{}", super::hints::suffix(*errcode))]
    Platform {
        /// The platform's error code.
        errcode: i64,
        /// The platform's message (it often ends with a request id worth quoting to support).
        errmsg: String,
    },
    /// The platform (or something in front of it) answered with an HTTP error status.
    #[error("the platform answered HTTP {status}")]
    Http {
        /// The status code.
        status: u16,
    },
    /// No answer within the client's request timeout. The request was sent: the platform may
    /// have acted on it.
    #[error("the platform did not answer in time")]
    Timeout,
    /// No connection could be made (DNS, refused, TLS, connect timeout): the request was
    /// never sent.
    #[error("cannot connect to the platform: {0}")]
    Connect(String),
    /// The exchange failed after the connection was made: the platform may have acted on it.
    #[error("request to the platform failed: {0}")]
    Transport(String),
    /// The answer was not what the API documents.
    #[error("unreadable answer from the platform: {0}")]
    Decode(String),
    /// Nothing was sent: something the call needs is missing (no ticket pushed yet, no
    /// authorization stored, the store unreachable). The message says what.
    #[error("{0}")]
    Precondition(String),
}

impl ApiError {
    /// Whether the platform refused the access token itself (40001, 40014, 42001), so a
    /// fresh token may succeed where this one failed.
    pub fn is_token_invalid(&self) -> bool {
        matches!(self, Self::Platform { errcode, .. } if TOKEN_INVALID.contains(errcode))
    }

    /// Whether the platform may have acted on the request although this error came back:
    /// no answer in time, a connection broken after the request went out, an HTTP 5xx.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            Self::Timeout | Self::Transport(_) => true,
            Self::Http { status } => (500..=599).contains(status),
            Self::Platform { .. } | Self::Connect(_) | Self::Decode(_) | Self::Precondition(_) => {
                false
            }
        }
    }

    /// What to do about it, for the errcodes whose cause is a setting (the component's and
    /// the caller IP's); `None` for the others.
    pub fn hint(&self) -> Option<&'static str> {
        super::hints::hint(self.errcode()?)
    }

    /// The platform's errcode, if it sent one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::Platform { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }
}

/// Why [`TokenProvider`](super::TokenProvider) could not give a token or finish a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Fetching the token from the platform failed. Nothing was cached.
    #[error("fetching the access token failed: {0}")]
    Fetch(ApiError),
    /// The API call made with the token failed (after the one retry, if the token was
    /// refused).
    #[error("API call failed: {0}")]
    Api(ApiError),
    /// Another instance holds the refresh lease and no token appeared within the provider's
    /// `wait`.
    #[error("no access token in time: another instance is still fetching it")]
    Timeout,
    /// The app has no credentials for platform APIs (no `secret`, or an Open Platform app),
    /// or no such app is configured.
    #[error("app `{0}` has no API credentials: set `secret` (and corp_id / app_id)")]
    NoCredentials(String),
    /// The HTTP client for the platform APIs could not be built.
    #[error("the platform API client could not be built: {0}")]
    Client(ApiError),
}

impl TokenError {
    /// The underlying API error, if any.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Fetch(e) | Self::Api(e) | Self::Client(e) => Some(e),
            Self::Timeout | Self::NoCredentials(_) => None,
        }
    }

    /// Whether this is a timeout: the platform's, or the wait for another instance.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Fetch(ApiError::Timeout) | Self::Api(ApiError::Timeout)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(errcode: i64) -> ApiError {
        ApiError::Platform {
            errcode,
            errmsg: "x".into(),
        }
    }

    #[test]
    fn token_invalid_codes() {
        for code in [40001, 40014, 42001] {
            assert!(platform(code).is_token_invalid(), "{code}");
        }
        for code in [0, -1, 40013, 40125, 45009, 48001, 60020] {
            assert!(!platform(code).is_token_invalid(), "{code}");
        }
        assert!(!ApiError::Timeout.is_token_invalid());
        assert!(!ApiError::Http { status: 401 }.is_token_invalid());
    }

    #[test]
    fn timeouts_are_recognised_at_every_level() {
        assert!(TokenError::Timeout.is_timeout());
        assert!(TokenError::Fetch(ApiError::Timeout).is_timeout());
        assert!(!TokenError::Fetch(platform(40013)).is_timeout());
        assert_eq!(TokenError::Api(platform(1)).api_error(), Some(&platform(1)));
    }
}
