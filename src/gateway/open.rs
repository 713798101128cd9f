//! Opening a request: checks its signature, its timestamp against the replay window, and
//! decrypts it (safe mode) or binds its signature to its body (plaintext mode). Nothing
//! reaches the parser, let alone the bot, before these pass; the cheap checks come first,
//! so junk costs no decryption.

use std::borrow::Cow;

use bytes::Bytes;
use tokio::time::Instant;

use super::request::{CallbackQuery, restore_base64_plus};
use super::response::{CallbackResponse, TEXT_PLAIN};
use super::{App, Gateway, Rejection};
use crate::aibot::JsonEnvelope;
use crate::bot::Bot;
use crate::crypto::{EncryptedEnvelope, MsgCrypt, Opened};
use crate::error::ProtocolError;
use crate::platform::{DataFormat, Platform};
use crate::store::SignatureStore;

/// A callback's plaintext, once every check passed: XML, or JSON for an app with
/// `data_format = "json"`.
pub(super) enum Plaintext<'a> {
    /// Plaintext mode: the body itself; the answer goes back plain.
    Body(&'a str),
    /// Safe mode: decrypted; the answer is sealed with the key that opened it.
    Decrypted { crypt: &'a MsgCrypt, opened: Opened },
}

impl Plaintext<'_> {
    /// The callback's document, as the app's data format writes it.
    pub fn document(&self) -> Result<&str, ProtocolError> {
        match self {
            Self::Body(body) => Ok(body),
            Self::Decrypted { opened, .. } => opened.frame.message_str(),
        }
    }
}

impl<B: Bot> Gateway<B> {
    /// URL verification (a GET when the callback URL is saved in the console): WeCom
    /// encrypts the `echostr` and wants its plaintext back; the Official Account (and the
    /// Open Platform's message URL) signs it plainly, even in safe mode, and wants it back
    /// unchanged.
    pub(super) fn verify_url(
        &self,
        app: &App,
        query: &CallbackQuery<'_>,
    ) -> Result<CallbackResponse, Rejection> {
        let answer = if matches!(app.platform, Platform::Wecom | Platform::Aibot) {
            let crypt = encrypted_crypt(app)?;
            let signature = CallbackQuery::require(&query.msg_signature, "msg_signature")?;
            let (timestamp, nonce) = timestamp_and_nonce(query)?;
            let echostr = restore_base64_plus(CallbackQuery::require(&query.echostr, "echostr")?);
            let verified = crypt.verify(signature, timestamp, nonce, &echostr)?;
            self.check_replay(timestamp)?;
            Bytes::copy_from_slice(verified.decrypt()?.frame.message())
        } else {
            let signature = CallbackQuery::require(&query.signature, "signature")?;
            let (timestamp, nonce) = timestamp_and_nonce(query)?;
            let echostr = CallbackQuery::require(&query.echostr, "echostr")?;
            app.token.verify(signature, timestamp, nonce)?;
            self.check_replay(timestamp)?;
            Bytes::from(echostr.to_owned())
        };
        tracing::info!(app = %app.name, "URL verification answered");
        Ok(CallbackResponse::ok(TEXT_PLAIN, answer))
    }

    /// A POSTed callback's plaintext, after its checks.
    pub(super) async fn open<'a>(
        &self,
        app: &'a App,
        query: &CallbackQuery<'_>,
        body: &'a [u8],
        deadline: Instant,
    ) -> Result<Plaintext<'a>, Rejection> {
        let encrypted = match (app.platform, query.encrypt_type.as_deref()) {
            (Platform::Wecom | Platform::Open | Platform::Aibot, _)
            | (Platform::Mp, Some("aes")) => true,
            (Platform::Mp, None | Some("raw")) => false,
            (Platform::Mp, Some(other)) => {
                return Err(Rejection::bad_request(format!(
                    "unsupported encrypt_type `{}` (expected `aes`, or none for plaintext)",
                    crate::escape::shown(other, 16)
                )));
            }
        };
        // The AI bot speaks JSON only; an MP app as its data_format says.
        let json = app.platform == Platform::Aibot || app.data_format == DataFormat::Json;
        let body = std::str::from_utf8(body).map_err(|_| {
            let reason = "the body is not UTF-8".to_owned();
            if json {
                ProtocolError::Json(reason)
            } else {
                ProtocolError::Xml(reason)
            }
        })?;
        if app.platform == Platform::Mp {
            check_data_format(app.data_format, body)?;
        }
        if encrypted {
            let crypt = encrypted_crypt(app)?;
            let signature = CallbackQuery::require(&query.msg_signature, "msg_signature")?;
            let (timestamp, nonce) = timestamp_and_nonce(query)?;
            // Only the ciphertext is signed; nothing else in either envelope is trusted.
            let encrypt = if json {
                Cow::Owned(JsonEnvelope::parse(body)?.encrypt)
            } else {
                EncryptedEnvelope::parse(body)?.encrypt
            };
            let verified = crypt.verify(signature, timestamp, nonce, &encrypt)?;
            self.check_replay(timestamp)?;
            let opened = verified.decrypt()?;
            return Ok(Plaintext::Decrypted { crypt, opened });
        }
        if app.crypt.is_some() {
            // The plain signature does not cover the body: accepting plaintext here would
            // let anyone holding one signed URL forge messages to a safe-mode app.
            return Err(Rejection::bad_request(
                "plaintext POST to an app configured with encoding_aes_key; set the console to safe mode (安全模式) or remove the key",
            ));
        }
        let signature = CallbackQuery::require(&query.signature, "signature")?;
        let (timestamp, nonce) = timestamp_and_nonce(query)?;
        app.token.verify(signature, timestamp, nonce)?;
        self.check_replay(timestamp)?;
        self.bind_plain_signature(app, signature, body.as_bytes(), deadline)
            .await?;
        Ok(Plaintext::Body(body))
    }

    /// Plaintext mode: the plain `signature` covers token, timestamp and nonce but not the
    /// body. It is bound to the body it first came with (one conditional write), so a signed
    /// query that leaked (a proxy's or an access log) cannot carry another body within the
    /// replay window; the platform's retry of the same body still passes. A store failure
    /// is logged and the request let through, as for dedup.
    async fn bind_plain_signature(
        &self,
        app: &App,
        signature: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<(), Rejection> {
        let digest = crate::store::fingerprint(body);
        let key = crate::store::signature_key(&app.name, signature);
        // As long as the timestamp can pass the replay window, and then some.
        let keep_secs = match self.settings.replay_window_secs {
            0 => self.retention_secs,
            window => window.saturating_mul(2).saturating_add(60),
        };
        let now = crate::clock::now_ms();
        let expires_at_secs = (now / 1000).saturating_add(keep_secs);
        let bind = self
            .store
            .bind_signature(&key, &digest, now, expires_at_secs);
        match tokio::time::timeout_at(deadline, bind).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(Rejection::SignatureReused),
            Ok(Err(e)) => {
                tracing::warn!(app = %app.name, store = self.store.kind(), cause = %e, "signature binding unavailable; accepting this plaintext request without it");
                Ok(())
            }
            Err(_) => {
                tracing::warn!(app = %app.name, store = self.store.kind(), "signature binding timed out; accepting this plaintext request without it");
                Ok(())
            }
        }
    }

    /// Refuses a correctly signed request whose timestamp is too far from the clock.
    fn check_replay(&self, timestamp: &str) -> Result<(), Rejection> {
        let window = self.settings.replay_window_secs;
        if window == 0 {
            return Ok(());
        }
        // The signature check already made this 1 to 20 digits; 20 digits can still
        // overflow, and such a timestamp is as stale as any.
        let timestamp = timestamp.parse::<u64>().unwrap_or(u64::MAX);
        let skew = crate::clock::unix_now().abs_diff(timestamp);
        if skew > window {
            return Err(Rejection::Stale {
                timestamp,
                skew,
                window,
            });
        }
        Ok(())
    }
}

/// Refuses a body written in the other data format than the app's, naming the setting: a
/// Mini Program's push switched to JSON (or back) in its console while the config still
/// says the other is the likeliest cause, and the parser's error would not say so. Only the
/// first character is looked at; the parser checks the rest.
fn check_data_format(format: DataFormat, body: &str) -> Result<(), Rejection> {
    let sent = match body.trim_start().as_bytes().first() {
        Some(b'<') => DataFormat::Xml,
        Some(b'{') => DataFormat::Json,
        _ => return Ok(()),
    };
    if sent == format {
        return Ok(());
    }
    let sent = match sent {
        DataFormat::Xml => "an XML",
        DataFormat::Json => "a JSON",
    };
    Err(Rejection::bad_request(format!(
        "{sent} body, but this app has data_format = \"{format}\"; set data_format to match the console's 数据格式 (message push data format)"
    )))
}

fn encrypted_crypt(app: &App) -> Result<&MsgCrypt, Rejection> {
    app.crypt.as_ref().ok_or_else(|| {
        Rejection::bad_request(
            "an encrypted request, but this app has no encoding_aes_key configured",
        )
    })
}

pub(super) fn timestamp_and_nonce<'q>(
    query: &'q CallbackQuery<'q>,
) -> Result<(&'q str, &'q str), Rejection> {
    Ok((
        CallbackQuery::require(&query.timestamp, "timestamp")?,
        CallbackQuery::require(&query.nonce, "nonce")?,
    ))
}
