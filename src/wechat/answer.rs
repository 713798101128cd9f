//! Reading the platform's JSON answers: the `errcode` convention and both token answers.
//!
//! Pure functions over `serde_json::Value`, so every shape the platform may send is unit
//! tested without a network. Fields are read by hand rather than through a derived struct:
//! serde's messages quote the offending value, and a value here may be a token.

use serde_json::Value;

use super::error::ApiError;

/// Longest `errmsg` kept; the platform's are short, this bounds what a proxy might send.
const MAX_ERRMSG_CHARS: usize = 256;

/// A token as the platform issued it.
#[derive(Clone, PartialEq, Eq)]
pub struct FetchedToken {
    /// The access token.
    pub value: String,
    /// How long the platform said it stays valid, from when it answered.
    pub expires_in_secs: u64,
}

impl std::fmt::Debug for FetchedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchedToken")
            .field("value", &"[redacted]")
            .field("expires_in_secs", &self.expires_in_secs)
            .finish()
    }
}

/// Parses an answer body as a JSON object.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    // serde_json's syntax errors give a position, never the input.
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::Decode(format!("not JSON: {e}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(ApiError::Decode("not a JSON object".into()))
    }
}

/// The platform's convention on every API: `errcode` 0 or absent means success, anything
/// else is an error described by `errmsg`.
pub(crate) fn check_errcode(answer: &Value) -> Result<(), ApiError> {
    let errcode = match answer.get("errcode") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| ApiError::Decode("errcode is not an integer".into()))?,
        // Seen from some gateways in front of the API.
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::Decode("errcode is not an integer".into()))?,
        Some(_) => return Err(ApiError::Decode("errcode is not an integer".into())),
    };
    if errcode == 0 {
        return Ok(());
    }
    let errmsg = answer
        .get("errmsg")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(MAX_ERRMSG_CHARS)
        .collect();
    Err(ApiError::Platform { errcode, errmsg })
}

/// Reads a token answer, the same for WeCom `gettoken` (`errcode`, `errmsg`,
/// `access_token`, `expires_in`) and Official Account `stable_token` (`access_token`,
/// `expires_in`, or `errcode` and `errmsg` alone).
pub(crate) fn token_answer(answer: &Value) -> Result<FetchedToken, ApiError> {
    check_errcode(answer)?;
    token_in(answer, "access_token")
}

/// The token in the field `name` of an answer (`access_token`, `component_access_token`,
/// `authorizer_access_token`), with its `expires_in`.
pub(crate) fn token_in(answer: &Value, name: &str) -> Result<FetchedToken, ApiError> {
    let value = match answer.get(name) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(ApiError::Decode(format!("no {name} in the answer"))),
    };
    let expires_in_secs = answer
        .get("expires_in")
        .and_then(unsigned)
        .ok_or_else(|| ApiError::Decode("no valid expires_in in the answer".into()))?;
    Ok(FetchedToken {
        value,
        expires_in_secs,
    })
}

/// A non-negative integer as the platforms write them: a JSON number or a decimal string.
pub(crate) fn unsigned(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Replaces every occurrence of `secret` in `text` (a secret or token the platform or a
/// transport error might echo) with `[redacted]`.
pub(crate) fn scrub(text: String, secret: &str) -> String {
    if secret.is_empty() || !text.contains(secret) {
        text
    } else {
        text.replace(secret, "[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        /// Whatever an API (or a proxy in front of it) answers, reading it is an answer or
        /// a typed error, never a panic, and the error never carries the body.
        #[test]
        fn any_body_is_read_without_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(value) = parse_body(&body) {
                let _ = token_answer(&value);
            }
        }

        #[test]
        fn any_token_answer_shape_is_read_without_panic(
            errcode in prop_oneof![
                Just(json!(null)), any::<i64>().prop_map(|n| json!(n)),
                any::<f64>().prop_map(|f| json!(f)), ".{0,12}".prop_map(|s| json!(s)),
                Just(json!([1])),
            ],
            token in prop_oneof![Just(json!(null)), "[A-Za-z0-9_-]{0,40}".prop_map(|s| json!(s)), any::<u64>().prop_map(|n| json!(n))],
            expires in prop_oneof![Just(json!(null)), any::<i64>().prop_map(|n| json!(n)), any::<f64>().prop_map(|f| json!(f)), ".{0,8}".prop_map(|s| json!(s))],
        ) {
            let answer = json!({ "errcode": errcode, "errmsg": "m", "access_token": token, "expires_in": expires });
            if let Err(e) = token_answer(&answer) {
                let secret = answer["access_token"].as_str().unwrap_or("");
                prop_assert!(secret.len() < 8 || !e.to_string().contains(secret));
            }
        }
    }

    #[test]
    fn wecom_token_answer() {
        let t = token_answer(&json!({
            "errcode": 0, "errmsg": "ok", "access_token": "accesstoken000001", "expires_in": 7200
        }))
        .unwrap();
        assert_eq!(t.value, "accesstoken000001");
        assert_eq!(t.expires_in_secs, 7200);
    }

    #[test]
    fn mp_stable_token_answer() {
        let t = token_answer(&json!({"access_token": "ACCESS_TOKEN", "expires_in": 7200})).unwrap();
        assert_eq!(t.value, "ACCESS_TOKEN");
        assert_eq!(t.expires_in_secs, 7200);
        let t = token_answer(&json!({"access_token": "T", "expires_in": "300"})).unwrap();
        assert_eq!(t.expires_in_secs, 300);
    }

    #[test]
    fn error_answers_map_to_platform_errors() {
        let e = token_answer(&json!({"errcode": 40013, "errmsg": "invalid appid"})).unwrap_err();
        assert_eq!(
            e,
            ApiError::Platform {
                errcode: 40013,
                errmsg: "invalid appid".into()
            }
        );
        let e =
            token_answer(&json!({"errcode": 40001, "errmsg": "invalid credential"})).unwrap_err();
        assert!(e.is_token_invalid());
        let e = check_errcode(&json!({"errcode": "42001"})).unwrap_err();
        assert_eq!(e.errcode(), Some(42001));
        // An error wins over a token in the same answer.
        assert!(
            token_answer(&json!({"errcode": 1, "access_token": "T", "expires_in": 1})).is_err()
        );
    }

    #[test]
    fn absent_or_zero_errcode_is_success() {
        assert!(check_errcode(&json!({"ip_list": []})).is_ok());
        assert!(check_errcode(&json!({"errcode": 0, "errmsg": "ok"})).is_ok());
        assert!(check_errcode(&json!({"errcode": null})).is_ok());
    }

    #[test]
    fn malformed_answers_are_decode_errors() {
        for answer in [
            json!({}),
            json!({"access_token": "", "expires_in": 7200}),
            json!({"access_token": 5, "expires_in": 7200}),
            json!({"access_token": "T"}),
            json!({"access_token": "T", "expires_in": -1}),
            json!({"access_token": "T", "expires_in": 1.5}),
            json!({"access_token": "T", "expires_in": "soon"}),
            json!({"errcode": "x"}),
            json!({"errcode": [1]}),
            json!({"errcode": 1.5}),
        ] {
            assert!(
                matches!(token_answer(&answer), Err(ApiError::Decode(_))),
                "{answer}"
            );
        }
    }

    #[test]
    fn decode_errors_never_quote_the_answer() {
        let e = token_answer(&json!({"access_token": "T0KEN-VALUE", "expires_in": "T0KEN"}))
            .unwrap_err();
        assert!(!e.to_string().contains("T0KEN"), "{e}");
        let e = parse_body(b"{\"access_token\": \"T0KEN-VALUE\" oops").unwrap_err();
        assert!(!e.to_string().contains("T0KEN"), "{e}");
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert!(parse_body(b"{\"errcode\":0}").is_ok());
        assert!(matches!(parse_body(b"[]"), Err(ApiError::Decode(_))));
        assert!(matches!(parse_body(b"<html>"), Err(ApiError::Decode(_))));
        assert!(matches!(parse_body(b""), Err(ApiError::Decode(_))));
    }

    #[test]
    fn long_errmsg_is_truncated() {
        let long = "错".repeat(1000);
        let e = check_errcode(&json!({"errcode": 1, "errmsg": long})).unwrap_err();
        let ApiError::Platform { errmsg, .. } = e else {
            panic!("not a platform error")
        };
        assert_eq!(errmsg.chars().count(), MAX_ERRMSG_CHARS);
    }

    #[test]
    fn scrub_removes_secrets() {
        assert_eq!(
            scrub("a s3cret b s3cret".into(), "s3cret"),
            "a [redacted] b [redacted]"
        );
        assert_eq!(scrub("nothing".into(), ""), "nothing");
    }

    #[test]
    fn fetched_token_debug_is_redacted() {
        let t = FetchedToken {
            value: "T0KEN".into(),
            expires_in_secs: 1,
        };
        assert!(!format!("{t:?}").contains("T0KEN"));
    }
}
