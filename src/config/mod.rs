//! The configuration file: which apps exist, their secrets, how the gateway behaves.
//!
//! TOML, read from a file (`wxgate serve --config`) or from `WXGATE_CONFIG` (inline TOML, a
//! path, or a reference to AWS) in Lambda. Unknown keys are errors, so a typo never silently
//! disables a setting. Secrets may be written `env:NAME`, `ssm:NAME` or
//! `secretsmanager:ID#key`; they are held in [`SecretString`]s and never printed.

mod api;
pub mod reference;
pub mod reply;
pub mod secret;
mod source;
mod store;
mod toml_error;

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::platform::{DataFormat, Platform};
pub use api::{
    ApiProxy, ApiSettings, COMPONENT_BIND_PAGE, COMPONENT_LOGIN_PAGE, MP_API, PROXY_ENV, WECOM_API,
};
use reference::{Fetched, ReferenceProblem};
use reply::ReplyRules;
pub use source::ConfigSource;
pub use store::{StoreKind, StorePlan, StoreSettings, TABLE_ENV};

/// The environment variable Lambda reads its configuration from.
pub const CONFIG_ENV: &str = "WXGATE_CONFIG";

/// A configuration problem, reported at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or a key of the wrong type or name.
    #[error("invalid config: {0}")]
    Syntax(String),
    /// A gateway-wide setting is out of range.
    #[error("invalid config: {0}")]
    Setting(String),
    /// One app's settings are wrong.
    #[error("invalid config for app \"{app}\": {reason}")]
    App {
        /// The app's name.
        app: String,
        /// What is wrong.
        reason: String,
    },
    /// A value kept in AWS (`ssm:`, `secretsmanager:`) could not be used.
    #[error("{key} = \"{reference}\": {problem}")]
    Reference {
        /// Where it is written: `apps[demo].token`, `api.proxy`, `WXGATE_CONFIG`.
        key: String,
        /// The reference as written.
        reference: String,
        /// Why.
        problem: ReferenceProblem,
    },
    /// No configuration was given.
    #[error(
        "no configuration: pass --config FILE, set {CONFIG_ENV} (inline TOML or a path), or create ./wxgate.toml"
    )]
    Missing,
}

/// The whole configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Gateway-wide behaviour.
    #[serde(default)]
    pub gateway: GatewaySettings,
    /// Where dedup records and tokens are kept.
    #[serde(default)]
    pub store: StoreSettings,
    /// Where the platforms' APIs are called.
    #[serde(default)]
    pub api: ApiSettings,
    /// The apps served.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
}

/// Gateway-wide behaviour (`[gateway]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// How long a callback may take before it is answered empty, in milliseconds. The
    /// platform gives up after 5000 ms and retries; the default leaves a second of margin
    /// for API Gateway, cold starts and the network.
    pub budget_ms: u64,
    /// How far a request's `timestamp` may be from the clock, in seconds; 0 turns the check
    /// off (only for replaying recorded events).
    pub replay_window_secs: u64,
    /// The largest request body accepted, in bytes. Real callbacks are a few KB.
    pub max_body_bytes: usize,
    /// How long a bot that missed the budget may go on before its late reply is given up, in
    /// milliseconds: in the background (`wxgate serve`) or in a reply job (Lambda).
    pub deferred_limit_ms: u64,
    /// How long after a message the WeCom AI bot keeps asking for its stream's content, in
    /// milliseconds: the platform's six minutes. The stream is finished a little before it
    /// and the rest of a slower answer goes through the message's `response_url`. Lower it
    /// only to see that happen sooner (tests, demos).
    pub stream_window_ms: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            budget_ms: 4000,
            replay_window_secs: 300,
            max_body_bytes: 64 * 1024,
            deferred_limit_ms: 60_000,
            stream_window_ms: 360_000,
        }
    }
}

impl GatewaySettings {
    /// The longest budget accepted: anything later than this risks the platform's 5 s cut-off.
    pub const MAX_BUDGET_MS: u64 = 4800;

    /// The budget as a duration.
    pub fn budget(&self) -> Duration {
        Duration::from_millis(self.budget_ms)
    }

    /// The AI bot's stream window as a duration.
    pub fn stream_window(&self) -> Duration {
        Duration::from_millis(self.stream_window_ms)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if !(5_000..=360_000).contains(&self.stream_window_ms) {
            return Err(ConfigError::Setting(format!(
                "gateway.stream_window_ms must be 5000..=360000 (the platform asks for 6 minutes), not {}",
                self.stream_window_ms
            )));
        }
        if self.budget_ms == 0 || self.budget_ms > Self::MAX_BUDGET_MS {
            return Err(ConfigError::Setting(format!(
                "gateway.budget_ms must be 1..={} (the platform waits 5000 ms), not {}",
                Self::MAX_BUDGET_MS,
                self.budget_ms
            )));
        }
        if !(1000..=600_000).contains(&self.deferred_limit_ms) {
            return Err(ConfigError::Setting(format!(
                "gateway.deferred_limit_ms must be 1000..=600000, not {}",
                self.deferred_limit_ms
            )));
        }
        if self.max_body_bytes < 1024 || self.max_body_bytes > crate::xml::MAX_XML_LEN {
            return Err(ConfigError::Setting(format!(
                "gateway.max_body_bytes must be 1024..={}, not {}",
                crate::xml::MAX_XML_LEN,
                self.max_body_bytes
            )));
        }
        Ok(())
    }
}

/// One app as written in the file (`[[apps]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The route segment: `/wecom/{name}`, `/mp/{name}`, `/open/{name}`.
    pub name: String,
    /// Which platform calls this route.
    pub platform: Platform,
    /// WeCom: the corp id (企业ID), which is also the receive id.
    #[serde(default)]
    pub corp_id: Option<String>,
    /// MP / Open Platform: the AppID (component AppID for `open`), the receive id.
    #[serde(default)]
    pub app_id: Option<String>,
    /// WeCom: the app's AgentId.
    #[serde(default)]
    pub agent_id: Option<u64>,
    /// The callback token (`env:NAME` allowed).
    pub token: String,
    /// The 43-character EncodingAESKey (`env:NAME` allowed); optional only for MP
    /// plaintext mode.
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    /// The previous EncodingAESKey, still accepted during a key rotation.
    #[serde(default)]
    pub previous_encoding_aes_key: Option<String>,
    /// The app secret, for calling platform APIs (`env:NAME` allowed).
    #[serde(default)]
    pub secret: Option<String>,
    /// An Official Account in plaintext mode (no `encoding_aes_key`) may send a reply later
    /// than the budget as a customer message. Off by default: a plaintext body is not signed,
    /// so a leaked signed URL would let anyone make the account message any follower.
    #[serde(default)]
    pub plaintext_late_replies: bool,
    /// Open Platform: the gateway's base URL on the component's authorization page domain
    /// (授权发起页域名), e.g. `https://wx.example.com`: the authorization page and WeChat's
    /// redirect back are served there (`/open/{name}/authorize`, `/open/{name}/authorized`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// MP: how callbacks and passive replies are written, `xml` (default) or `json` (a Mini
    /// Program's message push set to 数据格式: JSON).
    #[serde(default)]
    pub data_format: DataFormat,
    /// What to answer.
    #[serde(default)]
    pub reply: ReplyRules,
    /// The values of the references to AWS, once fetched ([`Config::install_fetched`]).
    #[serde(skip)]
    pub fetched: Fetched,
}

/// An app's secrets, resolved (env references read) and redacted.
#[derive(Debug)]
pub struct AppSecrets {
    /// The callback token.
    pub token: SecretString,
    /// The current EncodingAESKey.
    pub encoding_aes_key: Option<SecretString>,
    /// The previous EncodingAESKey.
    pub previous_encoding_aes_key: Option<SecretString>,
    /// The app secret.
    pub secret: Option<SecretString>,
}

impl AppConfig {
    /// The receive id the platform puts in every frame: corp id (WeCom) or AppID.
    pub fn receive_id(&self) -> Option<&str> {
        match self.platform {
            Platform::Wecom => self.corp_id.as_deref(),
            Platform::Mp | Platform::Open => self.app_id.as_deref(),
            // Internal AI bots encrypt with an empty receive id.
            Platform::Aibot => Some(""),
        }
    }

    /// The route path of this app, e.g. `/wecom/demo`.
    pub fn route(&self) -> String {
        format!("/{}/{}", self.platform, self.name)
    }

    /// Reads the secrets, following `env:NAME` references and taking those to AWS from the
    /// fetched values.
    ///
    /// # Errors
    /// A referenced variable is unset, a reference to AWS was not fetched, or a value is
    /// empty.
    pub fn secrets(&self) -> Result<AppSecrets, ConfigError> {
        let optional = |field, raw: &Option<String>| {
            raw.as_deref().map(|r| self.resolve(field, r)).transpose()
        };
        Ok(AppSecrets {
            token: self.resolve("token", &self.token)?,
            encoding_aes_key: optional("encoding_aes_key", &self.encoding_aes_key)?,
            previous_encoding_aes_key: optional(
                "previous_encoding_aes_key",
                &self.previous_encoding_aes_key,
            )?,
            secret: optional("secret", &self.secret)?,
        })
    }

    /// Reads one of this app's secret values (`field` names it in errors).
    ///
    /// # Errors
    /// As [`secret::resolve`].
    pub fn resolve(&self, field: &'static str, raw: &str) -> Result<SecretString, ConfigError> {
        secret::resolve(&self.name, field, raw, &self.fetched)
    }

    fn error(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::App {
            app: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Checks what can be checked without reading secrets.
    fn check_shape(&self) -> Result<(), ConfigError> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(self.error(
                "name must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_' (it is a URL path segment)",
            ));
        }
        match self.platform {
            Platform::Wecom => {
                if self.app_id.is_some() {
                    return Err(self.error("wecom apps take corp_id, not app_id"));
                }
                if self.corp_id.as_deref().is_none_or(str::is_empty) {
                    return Err(self.error("wecom apps need corp_id (企业ID)"));
                }
                if self.encoding_aes_key.is_none() {
                    return Err(self.error(
                        "wecom apps need encoding_aes_key: WeCom callbacks are always encrypted",
                    ));
                }
            }
            Platform::Aibot => {
                let other = [
                    ("corp_id", self.corp_id.is_some()),
                    ("app_id", self.app_id.is_some()),
                    ("agent_id", self.agent_id.is_some()),
                    ("secret", self.secret.is_some()),
                    ("public_url", self.public_url.is_some()),
                ];
                if let Some((key, _)) = other.iter().find(|(_, set)| *set) {
                    return Err(self.error(format!(
                        "aibot apps take token and encoding_aes_key only, not {key} (the receive id is empty; replies go back in the callback or through its response_url)"
                    )));
                }
                if self.encoding_aes_key.is_none() {
                    return Err(self.error(
                        "aibot apps need encoding_aes_key: AI bot callbacks are always encrypted",
                    ));
                }
            }
            Platform::Mp | Platform::Open => {
                if self.corp_id.is_some() {
                    return Err(
                        self.error(format!("{} apps take app_id, not corp_id", self.platform))
                    );
                }
                if self.agent_id.is_some() {
                    return Err(self.error("agent_id is a WeCom setting"));
                }
                let needs_app_id =
                    self.platform == Platform::Open || self.encoding_aes_key.is_some();
                if needs_app_id && self.app_id.as_deref().is_none_or(str::is_empty) {
                    return Err(self.error(format!(
                        "{} apps need app_id (the AppID is the receive id of encrypted callbacks)",
                        self.platform
                    )));
                }
                if self.platform == Platform::Open && self.encoding_aes_key.is_none() {
                    return Err(self.error(
                        "open apps need encoding_aes_key: Open Platform callbacks are always encrypted",
                    ));
                }
            }
        }
        if self.secret.is_some()
            && self.platform == Platform::Mp
            && self.app_id.as_deref().is_none_or(str::is_empty)
        {
            return Err(
                self.error("secret needs app_id: access tokens are per AppID and AppSecret")
            );
        }
        if self.plaintext_late_replies
            && (self.platform != Platform::Mp || self.encoding_aes_key.is_some())
        {
            return Err(self.error(
                "plaintext_late_replies is for Official Accounts in plaintext mode (no encoding_aes_key); encrypted apps send late replies anyway",
            ));
        }
        if self.data_format == DataFormat::Json && self.platform != Platform::Mp {
            return Err(self.error(format!(
                "data_format = \"json\" is for mp apps (a Mini Program's message push), not {} apps",
                self.platform
            )));
        }
        if let Some(url) = &self.public_url {
            if self.platform != Platform::Open {
                return Err(
                    self.error("public_url is for open apps (the authorization page's domain)")
                );
            }
            crate::url_policy::check(url)
                .map_err(|why| self.error(format!("public_url: {why}")))?;
        }
        if self.previous_encoding_aes_key.is_some() && self.encoding_aes_key.is_none() {
            return Err(self.error("previous_encoding_aes_key needs encoding_aes_key"));
        }
        self.reply
            .check(self.platform)
            .map_err(|reason| self.error(reason))
    }
}

impl Config {
    /// Parses and checks a TOML document.
    ///
    /// # Errors
    /// Syntax errors (with line and column), unknown keys, out-of-range settings, duplicate or
    /// malformed app names, missing platform fields and replies the platform would refuse.
    pub fn parse(toml_text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(toml_text)
            .map_err(|e| ConfigError::Syntax(toml_error::describe(toml_text, &e)))?;
        config.check()?;
        Ok(config)
    }

    /// Reads and checks a file.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), or the file cannot be read.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Reads the config from a `WXGATE_CONFIG` value: inline TOML when it looks like TOML
    /// (it has a `=` or a `[`), otherwise a path. A reference to AWS is an error here: it is
    /// fetched by the adapters ([`ConfigSource`]).
    ///
    /// # Errors
    /// As [`load`](Self::load) or [`parse`](Self::parse).
    pub fn from_env_value(value: &str) -> Result<Self, ConfigError> {
        ConfigSource::from_env_value(value)?.read_local()
    }

    /// Finds the config the way the CLI does: an explicit path, else `WXGATE_CONFIG`, else
    /// `./wxgate.toml`. A reference to AWS is an error here ([`ConfigSource::locate`]).
    ///
    /// # Errors
    /// [`ConfigError::Missing`] when none exists, or as [`load`](Self::load).
    pub fn discover(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        ConfigSource::locate(explicit)?.read_local()
    }

    /// The app with this name.
    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.name == name)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.gateway.check()?;
        self.store.check()?;
        self.api.check()?;
        self.references()?;
        if self.apps.is_empty() {
            return Err(ConfigError::Setting(
                "no [[apps]]: configure at least one app".into(),
            ));
        }
        for (i, app) in self.apps.iter().enumerate() {
            app.check_shape()?;
            // Longer than the budget only helps with deferred replies, whose own limit
            // bounds it.
            if let Some(ms) = app.reply.forward_timeout_ms
                && ms > self.gateway.deferred_limit_ms
            {
                return Err(app.error(format!(
                    "reply.forward_timeout_ms = {ms} is longer than gateway.deferred_limit_ms = {}",
                    self.gateway.deferred_limit_ms
                )));
            }
            if self.apps[..i].iter().any(|a| a.name == app.name) {
                return Err(app.error("two apps have this name; names must be unique"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::simulate::OFFICIAL_SAMPLE_APP as DEMO;

    #[test]
    fn the_design_example_parses_with_defaults() {
        let c = Config::parse(DEMO).unwrap();
        assert_eq!(c.gateway.budget_ms, 4000);
        assert_eq!(c.gateway.replay_window_secs, 300);
        assert_eq!(c.store.plan(None).unwrap(), StorePlan::Memory);
        let app = c.app("demo").unwrap();
        assert_eq!(app.receive_id(), Some("wx5823bf96d3bd56c7"));
        assert_eq!(app.route(), "/wecom/demo");
        assert!(app.reply.echo);
    }

    #[test]
    fn one_line_toml_from_the_environment_parses() {
        let c = Config::from_env_value(r#"apps = [{ name = "m", platform = "mp", token = "t" }]"#)
            .unwrap();
        assert_eq!(c.apps[0].platform, Platform::Mp);
    }

    fn error_of(toml_text: &str) -> String {
        Config::parse(toml_text).unwrap_err().to_string()
    }

    #[test]
    fn typos_are_errors_not_silently_ignored() {
        let e = error_of(&DEMO.replace("echo = true", "ecko = true"));
        assert!(e.contains("ecko"), "{e}");
    }

    #[test]
    fn platform_fields_are_checked() {
        let e = error_of(&DEMO.replace("corp_id", "app_id"));
        assert!(e.contains("corp_id, not app_id"), "{e}");
        let e =
            error_of(r#"apps = [{ name = "o", platform = "open", app_id = "wx1", token = "t" }]"#);
        assert!(e.contains("encoding_aes_key"), "{e}");
        let e = error_of(
            r#"apps = [{ name = "m", platform = "mp", token = "t", encoding_aes_key = "k" }]"#,
        );
        assert!(e.contains("app_id"), "{e}");
    }

    #[test]
    fn names_must_be_path_segments_and_unique() {
        assert!(error_of(&DEMO.replace("\"demo\"", "\"a/b\"")).contains("URL path segment"));
        let twice = format!("{DEMO}\n{DEMO}");
        assert!(error_of(&twice).contains("unique"));
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let e = error_of(&format!("[gateway]\nbudget_ms = 5000\n{DEMO}"));
        assert!(e.contains("budget_ms"), "{e}");
        for limit in [999, 600_001] {
            let e = error_of(&format!("[gateway]\ndeferred_limit_ms = {limit}\n{DEMO}"));
            assert!(e.contains("gateway.deferred_limit_ms"), "{e}");
        }
        let e = error_of("apps = []");
        assert!(e.contains("at least one app"), "{e}");
        let e = error_of(&format!("[store]\nretention_secs = 1\n{DEMO}"));
        assert!(e.contains("store.retention_secs"), "{e}");
    }

    const FORWARD: &str = "echo = false\nforward = \"http://127.0.0.1:9/bot\"\nforward_secret = ";

    #[test]
    fn the_forward_timeout_is_checked_against_the_budget() {
        let forward = DEMO.replace("echo = true", &format!("{FORWARD}\"s\""));
        let c = Config::parse(&forward).unwrap();
        let app = c.app("demo").unwrap();
        assert_eq!(
            app.reply.forward_timeout(c.gateway.budget()),
            Duration::from_millis(3500)
        );
        let e = error_of(&format!(
            "[gateway]\ndeferred_limit_ms = 5000\n{}",
            forward.replace("forward = ", "forward_timeout_ms = 5001\nforward = ")
        ));
        assert!(
            e.contains("\"demo\"") && e.contains("forward_timeout_ms = 5001"),
            "{e}"
        );
        let e = error_of(&DEMO.replace("echo = true", "forward = \"https://e.x\""));
        assert!(e.contains("forward_secret"), "{e}");
    }

    #[test]
    fn a_short_forward_secret_stops_the_start() {
        let config =
            Config::parse(&DEMO.replace("echo = true", &format!("{FORWARD}\"only-14-chars!\"")))
                .unwrap();
        let e = crate::bot::ConfigBot::from_config(&config)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 16 characters"), "{e}");
        assert!(!e.contains("only-14"), "the value is not repeated: {e}");
    }

    #[test]
    fn plaintext_late_replies_only_for_plaintext_official_accounts() {
        let mp = r#"[[apps]]
name = "blog"
platform = "mp"
app_id = "wx0123456789abcdef"
token = "t0ken"
secret = "s"
plaintext_late_replies = true
"#;
        assert!(Config::parse(mp).is_ok());
        let e = error_of(&mp.replace(
            "plaintext_late_replies",
            "encoding_aes_key = \"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C\"\nplaintext_late_replies",
        ));
        assert!(e.contains("plaintext_late_replies is for"), "{e}");
        let e = error_of(&DEMO.replace(
            "[apps.reply]",
            "plaintext_late_replies = true\n[apps.reply]",
        ));
        assert!(e.contains("plaintext_late_replies is for"), "{e}");
    }

    #[test]
    fn data_format_json_only_for_mp_apps() {
        let mp = r#"[[apps]]
name = "mini"
platform = "mp"
app_id = "wx0123456789abcdef"
token = "t0ken"
data_format = "json"
"#;
        let config = Config::parse(mp).unwrap();
        assert_eq!(config.app("mini").unwrap().data_format, DataFormat::Json);
        let default = Config::parse(&mp.replace("data_format = \"json\"\n", "")).unwrap();
        assert_eq!(default.app("mini").unwrap().data_format, DataFormat::Xml);
        let e = error_of(&DEMO.replace("[apps.reply]", "data_format = \"json\"\n[apps.reply]"));
        assert!(
            e.contains("data_format = \"json\" is for mp apps") && e.contains("not wecom apps"),
            "{e}"
        );
        let e = error_of(&mp.replace("\"json\"", "\"yaml\""));
        assert!(e.contains("data_format") || e.contains("yaml"), "{e}");
    }

    const LLM: &str = "echo = false\nllm = \"http://127.0.0.1:9/v1\"\nllm_model = \"m\"\n";

    #[test]
    fn llm_rules_are_checked_like_forward() {
        let with = |extra: &str| DEMO.replace("echo = true", &format!("{LLM}{extra}"));
        let c = Config::parse(&with("")).unwrap();
        assert_eq!(
            c.app("demo").unwrap().reply.stream_timeout(),
            Duration::from_millis(300_000)
        );
        let c = Config::parse(&with(
            "stream_timeout_ms = 60000\nllm_max_tokens = 500\nllm_system_prompt = \"be brief\"",
        ))
        .unwrap();
        assert_eq!(
            c.app("demo").unwrap().reply.stream_timeout(),
            Duration::from_secs(60)
        );
        for (extra, expected) in [
            (
                "stream_timeout_ms = 999",
                "reply.stream_timeout_ms must be 1000..=360000, not 999",
            ),
            ("stream_timeout_ms = 360001", "must be 1000..=360000"),
            (
                "llm_max_tokens = 0",
                "reply.llm_max_tokens must be positive",
            ),
            ("llm_api_key = \" \"", "reply.llm_api_key is empty"),
            (
                "default = \"x\"",
                "reply.default cannot be set with reply.llm",
            ),
            (
                "forward = \"https://e.x\"\nforward_secret = \"0123456789abcdef\"",
                "reply.llm cannot be set with reply.forward",
            ),
        ] {
            let e = error_of(&with(extra));
            assert!(
                e.contains("\"demo\"") && e.contains(expected),
                "{extra}: {e}"
            );
        }
        let e = error_of(&with("").replace("echo = false", "echo = true"));
        assert!(e.contains("reply.echo cannot be set with reply.llm"), "{e}");
        let e = error_of(&with("").replace("llm_model = \"m\"\n", ""));
        assert!(e.contains("reply.llm needs llm_model"), "{e}");
        let e = error_of(&with("").replace("http://127.0.0.1:9/v1", "http://llm.example.com/v1"));
        assert!(
            e.contains("reply.llm: http:// is only accepted for a loopback host"),
            "{e}"
        );
        let e = error_of(&with("").replace("http://127.0.0.1:9/v1", "https://u:sk-pass@e.x/v1"));
        assert!(e.contains("llm_api_key") && !e.contains("sk-pass"), "{e}");
        let e = error_of(&with("").replace("/v1", "/v1?key=1"));
        assert!(e.contains("no ?query"), "{e}");
        // The keys of `llm` need it; `stream_timeout_ms` needs an upstream.
        for lonely in [
            "llm_model = \"m\"",
            "llm_api_key = \"k\"",
            "stream_timeout_ms = 5000",
        ] {
            let e = error_of(&DEMO.replace("echo = true", lonely));
            assert!(e.contains("need"), "{lonely}: {e}");
        }
    }

    #[test]
    fn an_llm_api_key_is_a_secret_reference() {
        let text = DEMO.replace(
            "echo = true",
            &format!("{LLM}llm_api_key = \"ssm:/wxgate/openai\""),
        );
        let config = Config::parse(&text).unwrap();
        let listed: Vec<String> = config
            .references()
            .unwrap()
            .iter()
            .map(|usage| usage.key.clone())
            .collect();
        assert!(
            listed.contains(&"apps[demo].reply.llm_api_key".to_owned()),
            "{listed:?}"
        );
        let unset = DEMO.replace(
            "echo = true",
            &format!("{LLM}llm_api_key = \"env:WXGATE_TEST_UNSET_LLM_KEY\""),
        );
        let e = crate::bot::ConfigBot::from_config(&Config::parse(&unset).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("reply.llm_api_key") && e.contains("$WXGATE_TEST_UNSET_LLM_KEY"),
            "{e}"
        );
        let inline = DEMO.replace("echo = true", &format!("{LLM}llm_api_key = \"sk-inline\""));
        let bot = crate::bot::ConfigBot::from_config(&Config::parse(&inline).unwrap()).unwrap();
        assert!(bot.llm("demo").is_some());
    }

    #[test]
    fn an_unreadable_forward_secret_stops_the_start() {
        let config = Config::parse(&DEMO.replace(
            "echo = true",
            &format!("{FORWARD}\"env:WXGATE_TEST_UNSET_FORWARD_SECRET\""),
        ))
        .unwrap();
        let e = crate::bot::ConfigBot::from_config(&config)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("reply.forward_secret") && e.contains("$WXGATE_TEST_UNSET_FORWARD_SECRET"),
            "{e}"
        );
        let e = crate::gateway::Gateway::builder(&config)
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("$WXGATE_TEST_UNSET_FORWARD_SECRET"), "{e}");
        // The secret is the bot's: a gateway with a bot of its own starts without it.
        let own_bot = crate::bot::ConfigBot::default();
        let own = crate::gateway::Gateway::builder(&config).bot(own_bot);
        assert!(own.build().is_ok());
    }

    #[test]
    fn a_bad_api_proxy_is_refused_without_quoting_it() {
        let e = error_of(&format!(
            "[api]\nproxy = \"socks5://wx:hunter2@proxy.example:1080\"\n{DEMO}"
        ));
        assert!(e.contains("api.proxy") && e.contains("scheme"), "{e}");
        assert!(
            !e.contains("hunter2") && !e.contains("proxy.example"),
            "{e}"
        );
        let c = Config::parse(&format!("[api]\nproxy = \"http://10.0.0.5:3128\"\n{DEMO}")).unwrap();
        let proxy = c.api.proxy_with(|_| None).unwrap().unwrap();
        assert_eq!(proxy.origin(), "api.proxy");
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = error_of("[[apps]\nname = 1");
        assert!(e.contains("line 1"), "{e}");
        let e = error_of(r#"apps = [{ name = "d", platform = "wecom", agent_id = "218" }]"#);
        assert!(
            e.contains("line 1, column 54 (agent_id): invalid type: a string, expected u64"),
            "{e}"
        );
    }

    /// The broken configs a secret is embedded in: wrong types next to it, the secret's own
    /// value of a wrong type, unknown keys and syntax errors on its line, an unknown variant.
    const BROKEN: [&str; 10] = [
        r#"apps = [{ name = "d", platform = "wecom", corp_id = "ww1", token = "{S}", agent_id = "218" }]"#,
        r#"apps = [{ name = "d", platform = "wecom", corp_id = "ww1", token = {N} }]"#,
        r#"apps = [{ name = "d", platform = "{S}", token = "t" }]"#,
        r#"apps = [{ name = "d", platform = "wecom", token = "{S}", tokne = "x" }]"#,
        r#"apps = [{ name = "d", platform = "wecom", token = "{S} }]"#,
        r#"apps = [{ name = "d", platform = "wecom", token = {S} }]"#,
        r#"apps = [{ name = "d", platform = "wecom", secret = ["{S}"], token = "t" }]"#,
        "[[apps]]\nname = \"d\"\nplatform = \"mp\"\ntoken = \"{S}\"\nagent_id = -1\n",
        r#"[gateway]
budget_ms = "{S}"
"#,
        "[api]\nproxy = [\"https://wx:{S}@proxy.example\"]\n",
    ];

    proptest::proptest! {
        /// A config error never repeats a value written in the config: not the source line
        /// (toml's own report quotes it), not the value itself (serde's messages quote it).
        #[test]
        fn config_errors_never_quote_a_secret(
            secret in "[A-Za-z][A-Za-z0-9]{11,39}",
            number in 10_000_000u64..u64::MAX,
            which in 0..BROKEN.len(),
        ) {
            let text = BROKEN[which].replace("{S}", &secret).replace("{N}", &number.to_string());
            let e = error_of(&text);
            proptest::prop_assert!(!e.contains(&secret), "{e}");
            proptest::prop_assert!(!e.contains(&number.to_string()), "{e}");
            proptest::prop_assert!(e.contains("line "), "{e}");
        }
    }
}
