//! One configured app, ready to serve: its crypto state built once at start-up.

use crate::config::secret::expose;
use crate::config::{AppConfig, AppSecrets, ConfigError};
use crate::crypto::at_rest::AtRestKey;
use crate::crypto::{MsgCrypt, Token};
use crate::platform::{DataFormat, Platform};
use crate::wechat::TokenSource;

/// A served app.
#[derive(Debug)]
pub(crate) struct App {
    pub name: String,
    pub platform: Platform,
    /// WeCom: the AgentId active messages are sent with.
    pub agent_id: Option<u64>,
    /// The access-token credentials, when the app has a secret.
    pub token_source: Option<TokenSource>,
    /// For plain `signature` checks (MP verification and plaintext mode).
    pub token: Token,
    /// Token, keys and receive id, when the app has an EncodingAESKey.
    pub crypt: Option<MsgCrypt>,
    /// Plaintext mode may still send late replies actively (`plaintext_late_replies`).
    pub plaintext_late_replies: bool,
    /// Open Platform: the base URL on the authorization page domain.
    pub public_url: Option<String>,
    /// MP: XML, or a Mini Program's JSON push (`data_format`).
    pub data_format: DataFormat,
}

impl App {
    /// Builds the crypto state: keys are parsed and their AES schedules computed here, so a
    /// bad key is a start-up error, not a failure on the first callback.
    pub fn from_config(config: &AppConfig) -> Result<Self, ConfigError> {
        let secrets = config.secrets()?;
        let invalid = |e: crate::ProtocolError| ConfigError::App {
            app: config.name.clone(),
            reason: e.to_string(),
        };
        let token = Token::new(expose(&secrets.token)).map_err(invalid)?;
        let crypt = match &secrets.encoding_aes_key {
            None => None,
            Some(key) => {
                let receive_id = config.receive_id().unwrap_or_default();
                let crypt = MsgCrypt::new(expose(&secrets.token), expose(key), receive_id)
                    .map_err(invalid)?;
                Some(match &secrets.previous_encoding_aes_key {
                    Some(previous) => crypt.with_previous_key(expose(previous)).map_err(invalid)?,
                    None => crypt,
                })
            }
        };
        Ok(Self {
            name: config.name.clone(),
            platform: config.platform,
            agent_id: config.agent_id,
            token_source: token_source(config, &secrets),
            token,
            crypt,
            plaintext_late_replies: config.plaintext_late_replies,
            public_url: config
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            data_format: config.data_format,
        })
    }
}

impl App {
    /// Whether a late reply can go out as an active message: a secret for the token, and on
    /// WeCom the agent id to send with. Open Platform apps send with the authorizer's token,
    /// which their component secret gets. An app in plaintext mode needs `plaintext_late_replies`: its
    /// bodies are not signed.
    pub fn can_send_actively(&self) -> bool {
        self.active_sending().is_ok()
    }

    /// As [`can_send_actively`](Self::can_send_actively), with why not.
    pub fn active_sending(&self) -> Result<(), &'static str> {
        if self.crypt.is_none() && !self.plaintext_late_replies {
            return Err(
                "plaintext mode signs no body (plaintext_late_replies = true sends it anyway)",
            );
        }
        match (
            self.platform,
            self.token_source.is_some(),
            self.agent_id.is_some(),
        ) {
            (Platform::Wecom, true, true) | (Platform::Mp | Platform::Open, true, _) => Ok(()),
            (Platform::Wecom, _, _) => Err("sending it actively needs secret and agent_id"),
            (Platform::Mp, false, _) => Err("sending it actively needs secret"),
            (Platform::Open, false, _) => {
                Err("sending it actively needs secret (the component AppSecret)")
            }
            // A stream's text goes back through the refresh callbacks, and what does not fit
            // through the message's response_url; there is no access token to send with.
            (Platform::Aibot, _, _) => {
                Err("an AI bot answers through its stream and the message's response_url")
            }
        }
    }

    /// The keys sealing this app's values in a shared store (its replies, its reply jobs'
    /// messages): derived from the EncodingAESKey (current, then previous), which protects
    /// the same messages on the wire; for a plaintext-mode app from its secret, else its
    /// token.
    pub fn store_keys(&self) -> Vec<AtRestKey> {
        let label = format!("app:{}", self.name);
        match (&self.crypt, &self.token_source) {
            (Some(crypt), _) => crypt.at_rest_keys(&label),
            (None, Some(source)) => {
                vec![AtRestKey::derive(
                    expose(source.secret()).as_bytes(),
                    &label,
                )]
            }
            (None, None) => vec![AtRestKey::derive(self.token.expose().as_bytes(), &label)],
        }
    }

    /// The component AppID of an Open Platform app.
    pub fn component_app_id(&self) -> Option<&str> {
        match &self.token_source {
            Some(TokenSource::Component { app_id, .. }) => Some(app_id),
            _ => self
                .crypt
                .as_ref()
                .map(MsgCrypt::receive_id)
                .filter(|_| self.platform == Platform::Open),
        }
    }

    /// The scope of this app's access token and the key sealing it: derived from the secret
    /// that fetches it.
    pub fn token_store_key(&self) -> Option<(String, AtRestKey)> {
        let source = self.token_source.as_ref()?;
        let scope = source.scope();
        let key = AtRestKey::derive(
            expose(source.secret()).as_bytes(),
            &format!("token:{scope}"),
        );
        Some((scope, key))
    }
}

/// The credentials for an app's access token: WeCom corp id, MP AppID or component AppID
/// with the app secret, as resolved in `secrets`. `None` without a secret (the app only
/// answers callbacks).
fn token_source(config: &AppConfig, secrets: &AppSecrets) -> Option<TokenSource> {
    let secret = expose(secrets.secret.as_ref()?);
    match (
        config.platform,
        config.corp_id.as_deref(),
        config.app_id.as_deref(),
    ) {
        (Platform::Wecom, Some(corp_id), _) => Some(TokenSource::wecom(corp_id, secret)),
        (Platform::Mp, _, Some(app_id)) => Some(TokenSource::mp(app_id, secret)),
        (Platform::Open, _, Some(app_id)) => Some(TokenSource::component(app_id, secret)),
        _ => None,
    }
}
