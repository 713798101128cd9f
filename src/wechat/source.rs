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
    /// An Open Platform component (third-party platform): `api_component_token` with its
    /// AppID, AppSecret and the newest `component_verify_ticket` WeChat pushed.
    Component {
        /// The component AppID.
        app_id: String,
        /// The component AppSecret.
        secret: SecretString,
    },
    /// An account that authorized a component: `api_authorizer_token` with the component's
    /// token and the authorization's refresh token. Its tokens call the Official Account
    /// (or Mini Program) API on the account's behalf.
    Authorizer {
        /// The component AppID.
        component_app_id: String,
        /// The component AppSecret.
        component_secret: SecretString,
        /// The authorizer's AppID.
        authorizer_app_id: String,
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

    /// A component's credentials.
    pub fn component(app_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::Component {
            app_id: app_id.into(),
            secret: SecretString::from(secret.into()),
        }
    }

    /// The token source of `authorizer_app_id` under this component; `None` unless this is
    /// a component.
    pub fn authorizer(&self, authorizer_app_id: impl Into<String>) -> Option<Self> {
        match self {
            Self::Component { app_id, secret } => Some(Self::Authorizer {
                component_app_id: app_id.clone(),
                component_secret: secret.clone(),
                authorizer_app_id: authorizer_app_id.into(),
            }),
            _ => None,
        }
    }

    /// The component an authorizer's token comes through; `None` for other sources.
    pub fn component_of(&self) -> Option<Self> {
        match self {
            Self::Authorizer {
                component_app_id,
                component_secret,
                ..
            } => Some(Self::Component {
                app_id: component_app_id.clone(),
                secret: component_secret.clone(),
            }),
            _ => None,
        }
    }

    /// The platform whose API the token calls: an authorizer's token calls the Official
    /// Account API, a component's the Open Platform's.
    pub fn platform(&self) -> Platform {
        match self {
            Self::Wecom { .. } => Platform::Wecom,
            Self::Mp { .. } | Self::Authorizer { .. } => Platform::Mp,
            Self::Component { .. } => Platform::Open,
        }
    }

    /// The corp id or AppID (an authorizer's own AppID).
    pub fn id(&self) -> &str {
        match self {
            Self::Wecom { corp_id: id, .. }
            | Self::Mp { app_id: id, .. }
            | Self::Component { app_id: id, .. }
            | Self::Authorizer {
                authorizer_app_id: id,
                ..
            } => id,
        }
    }

    /// The secret the token is fetched with (for an authorizer, its component's).
    pub(crate) fn secret(&self) -> &SecretString {
        match self {
            Self::Wecom { secret, .. }
            | Self::Mp { secret, .. }
            | Self::Component { secret, .. }
            | Self::Authorizer {
                component_secret: secret,
                ..
            } => secret,
        }
    }

    /// What kind of source this is, for logs: `wecom`, `mp`, `component`, `authorizer`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Wecom { .. } => "wecom",
            Self::Mp { .. } => "mp",
            Self::Component { .. } => "component",
            Self::Authorizer { .. } => "authorizer",
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
    ///
    /// A component's token is `open#{component}#{fp}`, an authorizer's
    /// `open#{component}#{fp}#{authorizer}`: both start with the component, whose keys seal
    /// them in the store.
    pub fn scope(&self) -> String {
        let fp = fingerprint(self.secret().expose_secret());
        match self {
            Self::Component { app_id, .. } => format!("open#{app_id}#{fp}"),
            Self::Authorizer {
                component_app_id,
                authorizer_app_id,
                ..
            } => format!("open#{component_app_id}#{fp}#{authorizer_app_id}"),
            _ => format!("{}#{}#{fp}", self.platform().as_str(), self.id()),
        }
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
            Self::Component { .. } => ("Component", "app_id"),
            Self::Authorizer {
                component_app_id, ..
            } => {
                return f
                    .debug_struct("Authorizer")
                    .field("component_app_id", component_app_id)
                    .field("authorizer_app_id", &self.id())
                    .field("component_secret", &"[redacted]")
                    .finish();
            }
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
    fn open_platform_scopes_start_with_the_component() {
        let component = TokenSource::component("wxcomp", "abc");
        assert_eq!(component.scope(), "open#wxcomp#a9993e36");
        let authorizer = component.authorizer("wxacct").unwrap();
        assert_eq!(authorizer.scope(), "open#wxcomp#a9993e36#wxacct");
        assert_eq!(authorizer.platform(), Platform::Mp);
        assert_eq!(authorizer.id(), "wxacct");
        assert_eq!(
            authorizer.component_of().unwrap().scope(),
            component.scope()
        );
        assert!(TokenSource::mp("wx1", "s").authorizer("wxa").is_none());
        let shown = format!("{authorizer:?}");
        assert!(
            shown.contains("wxacct") && !shown.contains("abc"),
            "{shown}"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = TokenSource::mp("wx1", "very-secret-value");
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("wx1"));
    }
}
