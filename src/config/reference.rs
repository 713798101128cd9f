//! Config values kept in AWS: `ssm:NAME` (Parameter Store) and `secretsmanager:ID[#KEY]`
//! (Secrets Manager), written wherever `env:NAME` is allowed.
//!
//! This module does no I/O. It parses the references, lists every one a config holds
//! ([`Config::references`]), and holds the values once something below the adapters has
//! fetched them ([`Fetched`], installed with [`Config::install_fetched`]); the secrets are
//! then read from it like environment variables are ([`super::secret`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::{Config, ConfigError};

/// The prefix of a Parameter Store reference: `ssm:/wxgate/prod/token`.
pub const SSM_PREFIX: &str = "ssm:";
/// The prefix of a Secrets Manager reference: `secretsmanager:wxgate/prod#token`.
pub const SECRETS_MANAGER_PREFIX: &str = "secretsmanager:";

/// A value kept in AWS and read at start-up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RemoteRef {
    /// A Parameter Store parameter (a name, a name with a `:version` or `:label` selector, or
    /// an ARN); a SecureString is decrypted.
    Parameter(String),
    /// A Secrets Manager secret (name or ARN), whole or one string field of its JSON.
    Secret {
        /// The secret's name or ARN.
        id: String,
        /// The JSON key to pick (`#key`), if any.
        json_key: Option<String>,
    },
}

impl RemoteRef {
    /// Reads `raw` as a reference: `None` when it is not one (an inline value or `env:`).
    ///
    /// # Errors
    /// It has a reference prefix but is malformed; the reason names the prefix, never the
    /// text after it (a value mistyped as a reference would otherwise be printed).
    pub fn parse(raw: &str) -> Option<Result<Self, String>> {
        let raw = raw.trim();
        if let Some(name) = raw.strip_prefix(SSM_PREFIX) {
            return Some(parse_parameter(name));
        }
        raw.strip_prefix(SECRETS_MANAGER_PREFIX).map(parse_secret)
    }

    /// The service the value is read from, for messages: `SSM` or `Secrets Manager`.
    pub fn service(&self) -> &'static str {
        match self {
            Self::Parameter(_) => "SSM",
            Self::Secret { .. } => "Secrets Manager",
        }
    }
}

/// Parameter names are letters, digits and `_.-/`; an ARN or a selector adds `:`.
fn parse_parameter(name: &str) -> Result<RemoteRef, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-/:".contains(c);
    if name.is_empty() {
        return Err(format!("\"{SSM_PREFIX}\" names no parameter"));
    }
    if !name.chars().all(allowed) || name.len() > 2048 {
        return Err(format!(
            "a \"{SSM_PREFIX}\" reference is a parameter name of letters, digits and _.-/ (or its ARN)"
        ));
    }
    Ok(RemoteRef::Parameter(name.to_owned()))
}

/// `ID#key`: an ARN has `:` in it, a secret name may too, so the key is split off at the
/// last `#` (names and ARNs never contain one).
fn parse_secret(rest: &str) -> Result<RemoteRef, String> {
    let (id, json_key) = match rest.rsplit_once('#') {
        Some((id, key)) => (id, Some(key)),
        None => (rest, None),
    };
    if id.is_empty() {
        return Err(format!("\"{SECRETS_MANAGER_PREFIX}\" names no secret"));
    }
    if id.chars().any(char::is_whitespace) || id.len() > 2048 {
        return Err(format!(
            "a \"{SECRETS_MANAGER_PREFIX}\" reference is a secret name or ARN, without spaces"
        ));
    }
    if json_key.is_some_and(str::is_empty) {
        return Err("\"#\" names no JSON key; write secretsmanager:NAME#key".into());
    }
    Ok(RemoteRef::Secret {
        id: id.to_owned(),
        json_key: json_key.map(str::to_owned),
    })
}

impl fmt::Display for RemoteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parameter(name) => write!(f, "{SSM_PREFIX}{name}"),
            Self::Secret { id, json_key: None } => write!(f, "{SECRETS_MANAGER_PREFIX}{id}"),
            Self::Secret {
                id,
                json_key: Some(key),
            } => write!(f, "{SECRETS_MANAGER_PREFIX}{id}#{key}"),
        }
    }
}

/// One place a reference is written: the config key (`apps[demo].token`) and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The key, as errors name it: `apps[demo].token`, `api.proxy`, `WXGATE_CONFIG`.
    pub key: String,
    /// The reference written there.
    pub reference: RemoteRef,
}

/// Why a reference could not be read. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceProblem {
    /// The parameter or secret does not exist (in this region).
    NotFound,
    /// The service refused the caller; what the role needs.
    NotPermitted {
        /// The grant that would allow it, e.g. `ssm:GetParameters on arn:aws:ssm:…`.
        grant: String,
    },
    /// `#key` picks a field the secret's JSON does not have.
    NoJsonKey(String),
    /// `#key` picks a field of a secret that is not a JSON object.
    NotJsonObject,
    /// `#key` picks a field that is not a string.
    JsonKeyNotString(String),
    /// The secret holds binary data (`SecretBinary`), not a string.
    Binary,
    /// The value is empty.
    Empty,
    /// The service could not be asked: no region, no credentials, an unreachable endpoint.
    Unreachable(String),
    /// The service answered with another error (its code and message).
    Refused(String),
    /// The command reading the config did not fetch references (a library caller that
    /// skipped [`Config::install_fetched`]).
    NotFetched,
}

impl fmt::Display for ReferenceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::NotPermitted { grant } => write!(f, "not permitted: the role needs {grant}"),
            Self::NoJsonKey(key) => write!(f, "secret has no JSON key \"{key}\""),
            Self::NotJsonObject => {
                f.write_str("secret is not a JSON object, so #key cannot pick a field of it")
            }
            Self::JsonKeyNotString(key) => {
                write!(f, "the secret's JSON key \"{key}\" is not a string")
            }
            Self::Binary => f.write_str("secret is binary; only a SecretString can be used"),
            Self::Empty => f.write_str("the value is empty"),
            Self::Unreachable(why) => write!(f, "cannot be read: {why}"),
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::NotFetched => f.write_str(
                "not read: references are fetched from AWS when a command starts, and this one did not",
            ),
        }
    }
}

/// The values fetched for a config's references, for the life of the process. Shared by
/// clones; `Debug` shows how many, never a value.
#[derive(Clone, Default)]
pub struct Fetched {
    values: Arc<BTreeMap<RemoteRef, SecretString>>,
}

impl Fetched {
    /// The values, by reference.
    pub fn new(values: BTreeMap<RemoteRef, SecretString>) -> Self {
        Self {
            values: Arc::new(values),
        }
    }

    /// The value of `reference`, if it was fetched.
    pub fn get(&self, reference: &RemoteRef) -> Option<&str> {
        self.values.get(reference).map(ExposeSecret::expose_secret)
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fetched({} values)", self.values.len())
    }
}

impl Config {
    /// Every reference the config holds, where it is written, in file order.
    ///
    /// # Errors
    /// A reference is malformed (also found by [`Config::parse`]).
    pub fn references(&self) -> Result<Vec<Usage>, ConfigError> {
        let mut usages = Vec::new();
        let mut add = |key: String, raw: Option<&str>| -> Result<(), ConfigError> {
            match raw.and_then(RemoteRef::parse) {
                Some(Ok(reference)) => usages.push(Usage { key, reference }),
                Some(Err(why)) => return Err(ConfigError::Setting(format!("{key}: {why}"))),
                None => {}
            }
            Ok(())
        };
        add("api.proxy".into(), self.api.proxy.as_deref())?;
        for app in &self.apps {
            let key = |field: &str| format!("apps[{}].{field}", app.name);
            add(key("token"), Some(&app.token))?;
            add(key("encoding_aes_key"), app.encoding_aes_key.as_deref())?;
            add(
                key("previous_encoding_aes_key"),
                app.previous_encoding_aes_key.as_deref(),
            )?;
            add(key("secret"), app.secret.as_deref())?;
            add(
                key("reply.forward_secret"),
                app.reply.forward_secret.as_deref(),
            )?;
            add(key("reply.llm_api_key"), app.reply.llm_api_key.as_deref())?;
        }
        Ok(usages)
    }

    /// Installs the fetched values of [`references`](Self::references): the secrets and the
    /// proxy are read from them from now on.
    pub fn install_fetched(&mut self, fetched: &Fetched) {
        self.api.fetched = fetched.clone();
        for app in &mut self.apps {
            app.fetched = fetched.clone();
        }
    }
}

/// The value of a reference written at `key`, from `fetched`.
///
/// # Errors
/// [`ConfigError::Reference`]: it was not fetched, or it is empty.
pub fn fetched_value(
    key: String,
    reference: RemoteRef,
    fetched: &Fetched,
) -> Result<String, ConfigError> {
    let problem = match fetched.get(&reference) {
        Some(value) if !value.trim().is_empty() => return Ok(value.to_owned()),
        Some(_) => ReferenceProblem::Empty,
        None => ReferenceProblem::NotFetched,
    };
    Err(ConfigError::Reference {
        key,
        reference: reference.to_string(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> RemoteRef {
        RemoteRef::parse(raw).unwrap().unwrap()
    }

    #[test]
    fn parameter_references_keep_the_name_as_written() {
        assert_eq!(
            parsed("ssm:/wxgate/prod/token"),
            RemoteRef::Parameter("/wxgate/prod/token".into())
        );
        assert_eq!(
            parsed(" ssm:/wxgate/t:3 ").to_string(),
            "ssm:/wxgate/t:3",
            "a version selector is part of the name GetParameters takes"
        );
        assert!(RemoteRef::parse("env:TOKEN").is_none());
        assert!(RemoteRef::parse("QDG6eK").is_none());
    }

    #[test]
    fn secret_references_split_the_json_key_at_the_last_hash() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wxgate/prod-AbCdEf";
        assert_eq!(
            parsed(&format!("secretsmanager:{arn}#aes_key")),
            RemoteRef::Secret {
                id: arn.into(),
                json_key: Some("aes_key".into())
            }
        );
        assert_eq!(
            parsed("secretsmanager:wxgate/prod"),
            RemoteRef::Secret {
                id: "wxgate/prod".into(),
                json_key: None
            }
        );
        assert_eq!(
            parsed("secretsmanager:a#b#c"),
            RemoteRef::Secret {
                id: "a#b".into(),
                json_key: Some("c".into())
            }
        );
        let written = format!("secretsmanager:{arn}#aes_key");
        assert_eq!(parsed(&written).to_string(), written);
    }

    #[test]
    fn malformed_references_are_refused_without_quoting_them() {
        for (raw, says) in [
            ("ssm:", "names no parameter"),
            ("ssm:/wx gate/hunter2", "parameter name"),
            ("secretsmanager:", "names no secret"),
            ("secretsmanager:#key", "names no secret"),
            ("secretsmanager:wx#", "names no JSON key"),
            ("secretsmanager:hunter2 x", "without spaces"),
        ] {
            let e = RemoteRef::parse(raw).unwrap().unwrap_err();
            assert!(e.contains(says), "{raw}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    const APPS: &str = r#"
[api]
proxy = "secretsmanager:wxgate/egress#url"
[[apps]]
name = "demo"
platform = "wecom"
corp_id = "ww1"
token = "ssm:/wxgate/demo/token"
encoding_aes_key = "secretsmanager:wxgate/demo#aes_key"
[apps.reply]
echo = false
forward = "https://bot.example/wx"
forward_secret = "secretsmanager:wxgate/demo#forward"
[[apps]]
name = "blog"
platform = "mp"
token = "env:BLOG_TOKEN"
"#;

    #[test]
    fn a_config_lists_every_reference_with_its_key() {
        let config = Config::parse(APPS).unwrap();
        let keys: Vec<String> = config
            .references()
            .unwrap()
            .into_iter()
            .map(|u| format!("{} = {}", u.key, u.reference))
            .collect();
        assert_eq!(
            keys,
            [
                "api.proxy = secretsmanager:wxgate/egress#url",
                "apps[demo].token = ssm:/wxgate/demo/token",
                "apps[demo].encoding_aes_key = secretsmanager:wxgate/demo#aes_key",
                "apps[demo].reply.forward_secret = secretsmanager:wxgate/demo#forward",
            ]
        );
        let plain = Config::parse(crate::simulate::OFFICIAL_SAMPLE_APP).unwrap();
        assert!(plain.references().unwrap().is_empty());
    }

    #[test]
    fn a_malformed_reference_fails_the_parse_naming_its_key() {
        let e = Config::parse(&APPS.replace("ssm:/wxgate/demo/token", "ssm:"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("apps[demo].token") && e.contains("names no parameter"),
            "{e}"
        );
    }

    #[test]
    fn secrets_are_read_from_the_fetched_values() {
        let mut config = Config::parse(APPS).unwrap();
        let demo = config.app("demo").unwrap();
        let e = demo.secrets().unwrap_err().to_string();
        assert!(
            e.contains("apps[demo].token = \"ssm:/wxgate/demo/token\": not read"),
            "{e}"
        );
        let mut values = BTreeMap::new();
        values.insert(parsed("ssm:/wxgate/demo/token"), " t0ken\n".into());
        values.insert(
            parsed("secretsmanager:wxgate/demo#aes_key"),
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C".into(),
        );
        values.insert(parsed("secretsmanager:wxgate/demo#forward"), "".into());
        config.install_fetched(&Fetched::new(values));
        let secrets = config.app("demo").unwrap().secrets().unwrap();
        assert_eq!(secrets.token.expose_secret(), "t0ken");
        let e = crate::bot::ConfigBot::from_config(&config)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("apps[demo].reply.forward_secret") && e.contains("the value is empty"),
            "{e}"
        );
        let e = config.api.proxy_with(|_| None).unwrap_err().to_string();
        assert!(e.contains("api.proxy") && e.contains("not read"), "{e}");
    }
}
