//! Where the config comes from: a file, inline TOML in `WXGATE_CONFIG`, or a parameter or
//! secret in AWS that holds the whole TOML (`WXGATE_CONFIG=ssm:/wxgate/prod/config`), so a
//! deployment with many apps is not bound by the 4 KB of Lambda's environment.

use std::path::{Path, PathBuf};

use super::reference::RemoteRef;
use super::{CONFIG_ENV, Config, ConfigError};

/// Where the config is read from; the adapters fetch a [`Remote`](Self::Remote) one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A TOML file.
    File(PathBuf),
    /// TOML written in `WXGATE_CONFIG` itself.
    Inline(String),
    /// A parameter or secret holding the TOML.
    Remote(RemoteRef),
}

impl ConfigSource {
    /// Reads a `WXGATE_CONFIG` value: a reference to AWS (`ssm:`, `secretsmanager:`), inline
    /// TOML when it looks like TOML (it has a `=`, a `[` or a line break), otherwise a path.
    ///
    /// # Errors
    /// A malformed reference.
    pub fn from_env_value(value: &str) -> Result<Self, ConfigError> {
        if let Some(reference) = RemoteRef::parse(value) {
            return reference
                .map(Self::Remote)
                .map_err(|why| ConfigError::Setting(format!("{CONFIG_ENV}: {why}")));
        }
        Ok(
            if value.contains('=') || value.contains('[') || value.contains('\n') {
                Self::Inline(value.to_owned())
            } else {
                Self::File(PathBuf::from(value.trim()))
            },
        )
    }

    /// Finds the config the way the CLI does: an explicit path, else `WXGATE_CONFIG`, else
    /// `./wxgate.toml`.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] when there is none, or a malformed reference.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        if let Some(path) = explicit {
            return Ok(Self::File(path.to_owned()));
        }
        if let Ok(value) = std::env::var(CONFIG_ENV) {
            return Self::from_env_value(&value);
        }
        let default = Path::new("wxgate.toml");
        if default.exists() {
            return Ok(Self::File(default.to_owned()));
        }
        Err(ConfigError::Missing)
    }

    /// Reads and checks a file or inline config.
    ///
    /// # Errors
    /// As [`Config::load`] and [`Config::parse`]; a remote source is an error, since reading
    /// it is I/O this layer does not do.
    pub fn read_local(self) -> Result<Config, ConfigError> {
        match self {
            Self::File(path) => Config::load(&path),
            Self::Inline(text) => Config::parse(&text),
            Self::Remote(reference) => Err(ConfigError::Setting(format!(
                "{CONFIG_ENV} = \"{reference}\" is fetched from {} when the gateway starts, not here",
                reference.service()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_value_is_a_reference_inline_toml_or_a_path() {
        assert_eq!(
            ConfigSource::from_env_value("ssm:/wxgate/prod/config").unwrap(),
            ConfigSource::Remote(RemoteRef::Parameter("/wxgate/prod/config".into()))
        );
        assert!(matches!(
            ConfigSource::from_env_value("secretsmanager:wxgate/config#toml").unwrap(),
            ConfigSource::Remote(RemoteRef::Secret { .. })
        ));
        assert!(matches!(
            ConfigSource::from_env_value("[[apps]]").unwrap(),
            ConfigSource::Inline(_)
        ));
        assert_eq!(
            ConfigSource::from_env_value(" /etc/wxgate.toml\n").unwrap(),
            ConfigSource::Inline(" /etc/wxgate.toml\n".into()),
            "a line break makes it TOML, as before"
        );
        assert_eq!(
            ConfigSource::from_env_value(" /etc/wxgate.toml ").unwrap(),
            ConfigSource::File("/etc/wxgate.toml".into())
        );
        let e = ConfigSource::from_env_value("ssm:")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("WXGATE_CONFIG") && e.contains("names no parameter"),
            "{e}"
        );
        let e = ConfigSource::from_env_value("ssm:/wxgate/config")
            .unwrap()
            .read_local()
            .unwrap_err()
            .to_string();
        assert!(e.contains("fetched from SSM"), "{e}");
    }
}
