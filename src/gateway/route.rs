//! Which app and which kind of callback a path names.

use crate::platform::Platform;

/// A parsed callback path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/wecom/{app}`, `/mp/{app}` or `/aibot/{app}`: the app's own callbacks.
    App {
        /// The platform in the path.
        platform: Platform,
        /// The app name.
        app: &'a str,
    },
    /// `/open/{app}`: Open Platform authorization events (授权事件).
    OpenAuthorization {
        /// The component app.
        app: &'a str,
    },
    /// `GET /open/{app}/authorize`: the page sending an administrator to WeChat to
    /// authorize the component (a signed link from `wxgate open link`).
    OpenAuthorizePage {
        /// The component app.
        app: &'a str,
    },
    /// `GET /open/{app}/authorized`: where WeChat sends the administrator back with the
    /// authorization code.
    OpenAuthorized {
        /// The component app.
        app: &'a str,
    },
    /// `/open/{app}/{authorizer_appid}`: messages of an authorized account (the `$APPID$` URL).
    OpenMessage {
        /// The component app.
        app: &'a str,
        /// The authorized account's AppID.
        authorizer_app_id: &'a str,
    },
}

impl<'a> Route<'a> {
    /// Parses a path; `None` for anything that is not a callback route. One trailing slash
    /// is tolerated, because consoles make it easy to paste one.
    pub fn parse(path: &'a str) -> Option<Self> {
        let path = path.strip_prefix('/')?;
        let path = path.strip_suffix('/').unwrap_or(path);
        let mut parts = path.split('/');
        let platform = parts.next()?;
        let app = parts.next().filter(|a| is_segment(a))?;
        let extra = parts.next();
        if parts.next().is_some() {
            return None;
        }
        match (platform, extra) {
            ("wecom", None) => Some(Self::App {
                platform: Platform::Wecom,
                app,
            }),
            ("mp", None) => Some(Self::App {
                platform: Platform::Mp,
                app,
            }),
            ("aibot", None) => Some(Self::App {
                platform: Platform::Aibot,
                app,
            }),
            ("open", None) => Some(Self::OpenAuthorization { app }),
            // AppIDs are `wx` and 16 hex digits: these two words are never one.
            ("open", Some("authorize")) => Some(Self::OpenAuthorizePage { app }),
            ("open", Some("authorized")) => Some(Self::OpenAuthorized { app }),
            ("open", Some(authorizer)) if is_segment(authorizer) => Some(Self::OpenMessage {
                app,
                authorizer_app_id: authorizer,
            }),
            _ => None,
        }
    }

    /// The app name.
    pub fn app(&self) -> &'a str {
        match *self {
            Self::App { app, .. }
            | Self::OpenAuthorization { app }
            | Self::OpenAuthorizePage { app }
            | Self::OpenAuthorized { app }
            | Self::OpenMessage { app, .. } => app,
        }
    }

    /// The platform the app must be configured for.
    pub fn platform(&self) -> Platform {
        match *self {
            Self::App { platform, .. } => platform,
            Self::OpenAuthorization { .. }
            | Self::OpenAuthorizePage { .. }
            | Self::OpenAuthorized { .. }
            | Self::OpenMessage { .. } => Platform::Open,
        }
    }

    /// The methods this route answers, for `Allow`.
    pub fn allowed_methods(&self) -> &'static str {
        match self {
            // Authorization events are only ever POSTed.
            Self::OpenAuthorization { .. } => "POST",
            // Pages a browser opens.
            Self::OpenAuthorizePage { .. } | Self::OpenAuthorized { .. } => "GET",
            _ => "GET, POST",
        }
    }
}

/// App names and AppIDs: ASCII letters, digits, `-` and `_`.
fn is_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_routes_parse() {
        assert_eq!(
            Route::parse("/wecom/demo"),
            Some(Route::App {
                platform: Platform::Wecom,
                app: "demo"
            })
        );
        assert_eq!(
            Route::parse("/mp/shop/").map(|r| r.platform()),
            Some(Platform::Mp)
        );
        assert_eq!(
            Route::parse("/aibot/helper").map(|r| r.platform()),
            Some(Platform::Aibot)
        );
        assert_eq!(
            Route::parse("/open/comp"),
            Some(Route::OpenAuthorization { app: "comp" })
        );
        assert_eq!(
            Route::parse("/open/comp/authorize"),
            Some(Route::OpenAuthorizePage { app: "comp" })
        );
        assert_eq!(
            Route::parse("/open/comp/authorized/"),
            Some(Route::OpenAuthorized { app: "comp" })
        );
        assert_eq!(
            Route::parse("/open/comp/wx0123abcd"),
            Some(Route::OpenMessage {
                app: "comp",
                authorizer_app_id: "wx0123abcd"
            })
        );
    }

    #[test]
    fn everything_else_is_not_a_route() {
        for path in [
            "",
            "/",
            "/wecom",
            "/wecom/",
            "/wecom/demo/extra",
            "/mp/a/b",
            "/aibot/a/b",
            "/open/a/b/c",
            "/open/a/$APPID$",
            "/xx/demo",
            "wecom/demo",
            "/wecom//",
            "/wecom/../etc",
            "/.env",
        ] {
            assert_eq!(Route::parse(path), None, "{path}");
        }
    }
}
