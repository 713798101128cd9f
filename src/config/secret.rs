//! Secret values in the config: written inline, as `env:NAME`, or as a reference to AWS
//! (`ssm:NAME`, `secretsmanager:ID#key`, see [`super::reference`]); held redacted.

use secrecy::{ExposeSecret, SecretString};

use super::ConfigError;
use super::reference::{Fetched, RemoteRef, fetched_value};

/// The prefix that makes a config value an environment variable reference.
pub const ENV_PREFIX: &str = "env:";

/// Resolves a config value of an app that may be an `env:NAME` reference or a reference to
/// AWS, whose value is taken from `fetched`.
///
/// `field` names the key for error messages; the value itself never appears in one.
///
/// # Errors
/// The variable is unset, not UTF-8, or empty; the reference was not fetched or is empty.
pub fn resolve(
    app: &str,
    field: &'static str,
    raw: &str,
    fetched: &Fetched,
) -> Result<SecretString, ConfigError> {
    resolve_with(app, field, raw, |name| std::env::var(name).ok(), fetched)
}

/// [`resolve`] with the environment lookup injected, so the rule is tested without touching
/// the process environment.
pub fn resolve_with(
    app: &str,
    field: &'static str,
    raw: &str,
    lookup: impl Fn(&str) -> Option<String>,
    fetched: &Fetched,
) -> Result<SecretString, ConfigError> {
    let error = |reason: String| ConfigError::App {
        app: app.to_owned(),
        reason,
    };
    if let Some(reference) = RemoteRef::parse(raw) {
        // Config::parse has refused a malformed one already.
        let reference = reference.map_err(error)?;
        let value = fetched_value(format!("apps[{app}].{field}"), reference, fetched)?;
        return Ok(SecretString::from(value.trim().to_owned()));
    }
    let value = match raw.strip_prefix(ENV_PREFIX) {
        Some(name) => {
            let value = lookup(name.trim()).ok_or_else(|| {
                error(format!("{field} = \"env:{name}\", but ${name} is not set"))
            })?;
            if value.trim().is_empty() {
                // A SAM parameter left at its "" default ends up here.
                return Err(error(format!(
                    "{field} = \"env:{name}\", but ${name} is empty"
                )));
            }
            value
        }
        None => raw.to_owned(),
    };
    if value.trim().is_empty() {
        return Err(error(format!("{field} is empty")));
    }
    // Console values are often pasted with a stray newline or space; none of them can
    // legitimately contain one.
    Ok(SecretString::from(value.trim().to_owned()))
}

/// Exposes a secret for building the crypto state; kept in one place so a search finds
/// every use.
pub fn expose(secret: &SecretString) -> &str {
    secret.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_references_are_read_from_the_fetched_values_not_the_environment() {
        let mut values = std::collections::BTreeMap::new();
        let reference = RemoteRef::Parameter("/wxgate/token".into());
        values.insert(reference, SecretString::from(" from-ssm\n"));
        let fetched = Fetched::new(values);
        let s = resolve_with("demo", "token", "ssm:/wxgate/token", env, &fetched).unwrap();
        assert_eq!(expose(&s), "from-ssm");
        let e = resolve_with("demo", "token", "ssm:/wxgate/other", env, &fetched)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("apps[demo].token = \"ssm:/wxgate/other\": not read"),
            "{e}"
        );
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some(" value-from-env\n".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn inline_values_are_taken_as_written_but_trimmed() {
        let none = Fetched::default();
        let s = resolve_with("demo", "token", " QDG6eK ", env, &none).unwrap();
        assert_eq!(expose(&s), "QDG6eK");
    }

    #[test]
    fn env_references_read_the_variable() {
        let none = Fetched::default();
        let s = resolve_with("demo", "token", "env:SET", env, &none).unwrap();
        assert_eq!(expose(&s), "value-from-env");
    }

    #[test]
    fn a_missing_variable_names_the_key_and_the_variable() {
        let none = Fetched::default();
        let e = resolve_with("demo", "secret", "env:UNSET", env, &none)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("secret") && e.contains("$UNSET") && e.contains("demo"),
            "{e}"
        );
    }

    #[test]
    fn empty_values_are_refused_without_echoing_them() {
        let none = Fetched::default();
        let e = resolve_with("demo", "token", "  ", env, &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("token is empty"), "{e}");
        let e = resolve_with("demo", "token", "env:EMPTY", env, &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("$EMPTY is empty"), "{e}");
    }
}
