//! The framework-neutral request the adapters translate to, and its query parameters.

use std::borrow::Cow;

use http::Method;
use percent_encoding::percent_decode_str;

use super::rejection::Rejection;

/// One HTTP request, as any adapter (Lambda, the local server, a test) sees it.
#[derive(Debug, Clone, Copy)]
pub struct CallbackRequest<'a> {
    /// GET or POST; anything else is refused with 405.
    pub method: &'a Method,
    /// The path, without the API Gateway stage: `/wecom/demo`.
    pub path: &'a str,
    /// The raw query string, still percent-encoded, without `?`.
    pub query: Option<&'a str>,
    /// The body, already base64-decoded if the adapter received it encoded.
    pub body: &'a [u8],
}

/// The query parameters the platforms send, percent-decoded once.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CallbackQuery<'a> {
    pub msg_signature: Option<Cow<'a, str>>,
    pub signature: Option<Cow<'a, str>>,
    pub timestamp: Option<Cow<'a, str>>,
    pub nonce: Option<Cow<'a, str>>,
    pub echostr: Option<Cow<'a, str>>,
    pub encrypt_type: Option<Cow<'a, str>>,
}

/// The longest query string looked at; real ones are under 300 bytes.
const MAX_QUERY_LEN: usize = 4096;

impl<'a> CallbackQuery<'a> {
    /// Parses a raw query string.
    ///
    /// Percent-decodes exactly once and never turns `+` into a space: this is not an HTML
    /// form, and `echostr` is base64, where `+` is data. Unknown parameters (`openid`,
    /// `corpid`, API Gateway additions) are ignored; a known one given twice is refused,
    /// since which copy was signed cannot be known.
    pub fn parse(raw: Option<&'a str>) -> Result<Self, Rejection> {
        let mut query = Self::default();
        let Some(raw) = raw else {
            return Ok(query);
        };
        if raw.len() > MAX_QUERY_LEN {
            return Err(Rejection::bad_request(format!(
                "query string of {} bytes is over the {MAX_QUERY_LEN}-byte limit",
                raw.len()
            )));
        }
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "msg_signature" => &mut query.msg_signature,
                "signature" => &mut query.signature,
                "timestamp" => &mut query.timestamp,
                "nonce" => &mut query.nonce,
                "echostr" => &mut query.echostr,
                "encrypt_type" => &mut query.encrypt_type,
                _ => continue,
            };
            if slot.is_some() {
                return Err(Rejection::bad_request(format!(
                    "query parameter `{name}` given twice"
                )));
            }
            let decoded = percent_decode_str(value).decode_utf8().map_err(|_| {
                Rejection::bad_request(format!(
                    "query parameter `{name}` is not UTF-8 after percent-decoding"
                ))
            })?;
            *slot = Some(decoded);
        }
        Ok(query)
    }

    /// A required parameter, or a 400 naming it.
    pub fn require(
        field: &'a Option<Cow<'a, str>>,
        name: &'static str,
    ) -> Result<&'a str, Rejection> {
        match field.as_deref() {
            Some(v) if !v.is_empty() => Ok(v),
            Some(_) => Err(Rejection::bad_request(format!(
                "query parameter `{name}` is empty"
            ))),
            None => Err(Rejection::bad_request(format!(
                "query parameter `{name}` is missing"
            ))),
        }
    }
}

/// `echostr` for WeCom is base64. Some HTTP layers form-decode the query and turn its `+`
/// into spaces; a space is never valid base64, so mapping it back is lossless.
pub(crate) fn restore_base64_plus(value: &str) -> Cow<'_, str> {
    if value.contains(' ') {
        Cow::Owned(value.replace(' ', "+"))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_slash_and_equals_survive_and_percent_escapes_decode_once() {
        let q = CallbackQuery::parse(Some(
            "msg_signature=ab&timestamp=1&nonce=2&echostr=P9n%2BzC/q+X3%3D%3D&openid=o",
        ))
        .unwrap();
        assert_eq!(q.echostr.as_deref(), Some("P9n+zC/q+X3=="));
        // %252B is a literal "%2B" after one decode, not "+".
        let q = CallbackQuery::parse(Some("echostr=a%252Bb")).unwrap();
        assert_eq!(q.echostr.as_deref(), Some("a%2Bb"));
    }

    #[test]
    fn duplicates_and_bad_utf8_are_refused_unknown_names_ignored() {
        assert!(CallbackQuery::parse(Some("nonce=1&nonce=2")).is_err());
        assert!(CallbackQuery::parse(Some("nonce=%FF")).is_err());
        let q = CallbackQuery::parse(Some("x=1&&nonce&y")).unwrap();
        assert_eq!(q.nonce.as_deref(), Some(""));
        assert!(CallbackQuery::parse(Some(&"a".repeat(5000))).is_err());
    }

    #[test]
    fn required_parameters_name_themselves_when_missing_or_empty() {
        let q = CallbackQuery::parse(Some("nonce=")).unwrap();
        let e = CallbackQuery::require(&q.nonce, "nonce").unwrap_err();
        assert!(e.to_string().contains("`nonce` is empty"), "{e}");
        let e = CallbackQuery::require(&q.timestamp, "timestamp").unwrap_err();
        assert!(e.to_string().contains("`timestamp` is missing"), "{e}");
    }

    #[test]
    fn stray_spaces_in_base64_become_plus_again() {
        assert_eq!(restore_base64_plus("a b+c"), "a+b+c");
        assert!(matches!(restore_base64_plus("abc"), Cow::Borrowed(_)));
    }
}
