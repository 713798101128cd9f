//! Which credentials a token is fetched with, and the scope that names its shared copy.

use secrecy::{ExposeSecret, SecretString};
use sha1::{Digest, Sha1};

use crate::platform::Platform;

/// The credentials an access token is fetched with.
///
/// `Debug` shows the id but never the secret.
#[derive(Clone)]
pub enum TokenSource {
    /// A WeCom app: `gettoken` with the corp id and the app's secret.
    Wecom {
        /// The corp id (`ww…`).
        corp_id: String,
        /// The app's secret (each app of a corp has its own).
        secret: SecretString,
    },
    /// An Official Account: `stable_token` with the AppID and AppSecret.
    Mp {
        /// The AppID (`wx…`).
        app_id: String,
        /// The AppSecret.
        secret: SecretString,
    },
}

impl TokenSource {
    /// A WeCom app's credentials.
    pub fn wecom(corp_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::Wecom {
            corp_id: corp_id.into(),
            secret: SecretString::from(secret.into()),
        }
    }

    /// An Official Account's credentials.
    pub fn mp(app_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::Mp {
            app_id: app_id.into(),
            secret: SecretString::from(secret.into()),
        }
    }

    /// The platform whose API issues the token.
    pub fn platform(&self) -> Platform {
        match self {
            Self::Wecom { .. } => Platform::Wecom,
            Self::Mp { .. } => Platform::Mp,
        }
    }

    /// The corp id or AppID.
    pub fn id(&self) -> &str {
        match self {
            Self::Wecom { corp_id: id, .. } | Self::Mp { app_id: id, .. } => id,
        }
    }

    pub(crate) fn secret(&self) -> &SecretString {
        match self {
            Self::Wecom { secret, .. } | Self::Mp { secret, .. } => secret,
        }
    }

    /// What the token is shared by: `wecom#{corp_id}#{fp}` or `mp#{app_id}#{fp}`, where `fp`
    /// is the first 8 hex digits of the secret's SHA-1.
    ///
    /// A WeCom token belongs to one corp id *and* secret (every app of a corp has its own
    /// secret and its own token), so apps configured with the same credentials share one
    /// token and apps with different secrets never do. The fingerprint also makes a rotated
    /// secret start a new token item instead of reusing one fetched with the old secret. 32
    /// bits of a hash reveal nothing usable about a secret of 32+ random characters.
    pub fn scope(&self) -> String {
        format!(
            "{}#{}#{}",
            self.platform().as_str(),
            self.id(),
            fingerprint(self.secret().expose_secret())
        )
    }
}

/// The first 8 hex digits of SHA-1 over `secret`.
fn fingerprint(secret: &str) -> String {
    let digest = Sha1::digest(secret.as_bytes());
    hex::encode(&digest[..4])
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, field) = match self {
            Self::Wecom { .. } => ("Wecom", "corp_id"),
            Self::Mp { .. } => ("Mp", "app_id"),
        };
        f.debug_struct(name)
            .field(field, &self.id())
            .field("secret", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_platform_id_and_secret_fingerprint() {
        let s = TokenSource::wecom("ww0123", "secret-a");
        let scope = s.scope();
        let fp = scope.rsplit('#').next().unwrap_or_default();
        assert!(scope.starts_with("wecom#ww0123#"), "{scope}");
        assert_eq!(fp.len(), 8);
        assert!(fp.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(TokenSource::mp("wx01", "s").scope().starts_with("mp#wx01#"));
    }

    #[test]
    fn scope_is_the_sha1_prefix_of_the_secret() {
        // sha1("abc") = a9993e36…
        assert_eq!(TokenSource::mp("wx1", "abc").scope(), "mp#wx1#a9993e36");
    }

    #[test]
    fn same_credentials_share_different_secrets_do_not() {
        let a = TokenSource::wecom("ww1", "secret-a");
        assert_eq!(a.scope(), TokenSource::wecom("ww1", "secret-a").scope());
        assert_ne!(a.scope(), TokenSource::wecom("ww1", "secret-b").scope());
        assert_ne!(a.scope(), TokenSource::wecom("ww2", "secret-a").scope());
        assert_ne!(a.scope(), TokenSource::mp("ww1", "secret-a").scope());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = TokenSource::mp("wx1", "very-secret-value");
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("wx1"));
    }
}
