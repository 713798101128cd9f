//! The AI bot's media: a message's image, file or video URL (valid five minutes) serves the
//! file encrypted with the bot's EncodingAESKey; this fetches and decrypts it, for a bot
//! in code that wants the bytes.

use std::time::Duration;

use super::{Bot, Gateway};
use crate::error::ProtocolError;
use crate::http::BodyError;
use crate::platform::Platform;

/// The largest media file fetched: WeCom's own limit for files is 20 MB.
pub const MAX_MEDIA_BYTES: usize = 20 * 1024 * 1024;
/// One download's time limit.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a media file could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// Not a configured AI bot app.
    #[error("`{0}` is not a configured AI bot app")]
    NotAnAibot(String),
    /// The URL is not https (or http on loopback).
    #[error("the media URL is not an https URL")]
    Url,
    /// The download failed.
    #[error("download failed: {0}")]
    Download(String),
    /// The server answered another status.
    #[error("download answered HTTP {0} (the URL lives five minutes)")]
    Status(u16),
    /// Over [`MAX_MEDIA_BYTES`].
    #[error("the file is over {MAX_MEDIA_BYTES} bytes")]
    TooLarge,
    /// Not decryptable with the bot's keys.
    #[error("cannot decrypt the file: {0}")]
    Decrypt(ProtocolError),
}

impl<B: Bot> Gateway<B> {
    /// Downloads an AI bot message's media URL (`image.url`, `file.url`, `video.url`, a
    /// mixed message's image) and decrypts it with `app`'s key (the current one, then the
    /// previous one during a rotation).
    ///
    /// # Errors
    /// [`MediaError`]: not an AI bot app, a URL that is not https, the download, its size,
    /// the decryption.
    pub async fn aibot_media(&self, app: &str, url: &str) -> Result<Vec<u8>, MediaError> {
        let crypt = self
            .apps
            .get(app)
            .filter(|a| a.platform == Platform::Aibot)
            .and_then(|a| a.crypt.as_ref())
            .ok_or_else(|| MediaError::NotAnAibot(app.to_owned()))?;
        let url = crate::url_policy::check(url).map_err(|_| MediaError::Url)?;
        let client = crate::http::client_builder()
            .build()
            .map_err(|e| MediaError::Download(crate::http::error_chain(&e)))?;
        let mut response = client
            .get(url)
            .timeout(MEDIA_TIMEOUT)
            .send()
            .await
            .map_err(|e| MediaError::Download(crate::http::error_chain(&e.without_url())))?;
        if !response.status().is_success() {
            return Err(MediaError::Status(response.status().as_u16()));
        }
        let body = crate::http::read_capped(&mut response, MAX_MEDIA_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => MediaError::TooLarge,
                BodyError::Transfer(e) => {
                    MediaError::Download(crate::http::error_chain(&e.without_url()))
                }
            })?;
        crypt.decrypt_media(body).map_err(MediaError::Decrypt)
    }
}
