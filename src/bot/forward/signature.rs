//! How requests to an upstream are signed, and how an upstream checks them: HMAC-SHA256
//! over the timestamp and the body, with a freshness window against replays.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header carrying the request's Unix time in seconds, as signed.
pub const TIMESTAMP_HEADER: &str = "x-wxgate-timestamp";
/// The header carrying `sha256=` and the hex HMAC-SHA256 of `timestamp + "." + body`.
pub const SIGNATURE_HEADER: &str = "x-wxgate-signature";
const SIGNATURE_PREFIX: &str = "sha256=";

/// The signature header value of a request: `sha256=` and the lowercase hex
/// HMAC-SHA256 of `timestamp + "." + body`, keyed with `secret`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let tag = keyed(secret, timestamp, body).finalize().into_bytes();
    format!("{SIGNATURE_PREFIX}{}", hex::encode(tag))
}

/// How far from the clock a request's timestamp may be for [`verify_signature`].
pub const MAX_SKEW_SECS: u64 = 300;
/// The shortest `forward_secret` accepted: it is an HMAC key.
pub const MIN_SECRET_LEN: usize = 16;

/// Whether `header` (the [`SIGNATURE_HEADER`] value) signs `timestamp` and `body` with
/// `secret`, and `timestamp` is within [`MAX_SKEW_SECS`] of this machine's clock (so a
/// captured request cannot be replayed later). The comparison is constant-time.
/// `timestamp` must be the decimal digits sent in [`TIMESTAMP_HEADER`].
pub fn verify_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    verify_signature_at(
        secret,
        timestamp,
        body,
        header,
        crate::clock::unix_now(),
        MAX_SKEW_SECS,
    )
}

/// [`verify_signature`] against a given clock (`now`, Unix seconds) and skew.
pub fn verify_signature_at(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
    now: u64,
    max_skew_secs: u64,
) -> bool {
    let fresh = timestamp
        .parse::<u64>()
        .is_ok_and(|t| t.abs_diff(now) <= max_skew_secs);
    fresh && signed(secret, timestamp, body, header)
}

/// Whether `header` signs `timestamp` and `body`, whatever the time.
fn signed(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let valid_timestamp =
        (1..=20).contains(&timestamp.len()) && timestamp.bytes().all(|b| b.is_ascii_digit());
    let Some(hex_tag) = header.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let mut tag = [0u8; 32];
    valid_timestamp
        && hex::decode_to_slice(hex_tag, &mut tag).is_ok()
        && keyed(secret, timestamp, body).verify_slice(&tag).is_ok()
}

fn keyed(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}
