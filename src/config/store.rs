//! `[store]`: where dedup records and access tokens live.

use serde::Deserialize;

use super::ConfigError;

/// The environment variable naming the DynamoDB table; the SAM template sets it, so a
/// deployed function uses its table without a `[store]` section.
pub const TABLE_ENV: &str = "WXGATE_TABLE";

/// Which store backs dedup and token caching (`[store]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `memory` or `dynamodb`. Unset: `dynamodb` when `WXGATE_TABLE` is set, else `memory`.
    pub kind: Option<StoreKind>,
    /// The DynamoDB table; `WXGATE_TABLE` when unset.
    pub table: Option<String>,
    /// How long a callback's record is kept, in seconds. The platform retries within about
    /// 15 seconds; the default day also absorbs late manual replays.
    pub retention_secs: u64,
    /// How long one store request attempt may take, in milliseconds. A request is tried at
    /// most twice; a store slower than that is bypassed for the callback.
    pub timeout_ms: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            kind: None,
            table: None,
            retention_secs: 24 * 60 * 60,
            timeout_ms: 250,
        }
    }
}

/// The store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In-process, for `wxgate serve` and single-instance use.
    Memory,
    /// One DynamoDB table shared by every instance.
    Dynamodb,
}

/// The store to open, with the environment taken into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorePlan {
    /// The embedded store.
    Memory,
    /// A DynamoDB table.
    Dynamodb {
        /// Its name.
        table: String,
    },
}

impl StoreSettings {
    /// Checks the ranges.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !(60..=30 * 24 * 60 * 60).contains(&self.retention_secs) {
            return Err(ConfigError::Setting(format!(
                "store.retention_secs must be 60..=2592000 (1 minute to 30 days), not {}",
                self.retention_secs
            )));
        }
        if !(10..=2000).contains(&self.timeout_ms) {
            return Err(ConfigError::Setting(format!(
                "store.timeout_ms must be 10..=2000, not {}",
                self.timeout_ms
            )));
        }
        if self.table.as_deref().is_some_and(|t| !valid_table_name(t)) {
            return Err(ConfigError::Setting(
                "store.table must be 3 to 255 characters of A-Z, a-z, 0-9, '_', '-' and '.'".into(),
            ));
        }
        Ok(())
    }

    /// Decides the store from the settings and the value of `WXGATE_TABLE`.
    ///
    /// # Errors
    /// `kind = "dynamodb"` with no table anywhere, or an invalid table name in the variable.
    pub fn plan(&self, env_table: Option<&str>) -> Result<StorePlan, ConfigError> {
        let env_table = env_table.map(str::trim).filter(|t| !t.is_empty());
        let table = self.table.as_deref().or(env_table);
        match (self.kind, table) {
            (Some(StoreKind::Memory), _) | (None, None) => Ok(StorePlan::Memory),
            (Some(StoreKind::Dynamodb), None) => Err(ConfigError::Setting(format!(
                "store.kind = \"dynamodb\" needs store.table or the {TABLE_ENV} variable"
            ))),
            (_, Some(table)) if !valid_table_name(table) => Err(ConfigError::Setting(format!(
                "{TABLE_ENV} is not a DynamoDB table name: 3 to 255 characters of A-Z, a-z, 0-9, '_', '-' and '.'"
            ))),
            (_, Some(table)) => Ok(StorePlan::Dynamodb {
                table: table.to_owned(),
            }),
        }
    }

    /// [`plan`](Self::plan) with the process environment.
    ///
    /// # Errors
    /// As [`plan`](Self::plan).
    pub fn plan_from_env(&self) -> Result<StorePlan, ConfigError> {
        self.plan(std::env::var(TABLE_ENV).ok().as_deref())
    }
}

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kind: Option<StoreKind>, table: Option<&str>) -> StoreSettings {
        StoreSettings {
            kind,
            table: table.map(str::to_owned),
            ..StoreSettings::default()
        }
    }

    #[test]
    fn memory_unless_a_table_is_named() {
        assert_eq!(settings(None, None).plan(None).unwrap(), StorePlan::Memory);
        assert_eq!(
            settings(None, None).plan(Some("  ")).unwrap(),
            StorePlan::Memory
        );
        let from_env = StorePlan::Dynamodb {
            table: "wxgate-prod".into(),
        };
        assert_eq!(
            settings(None, None).plan(Some("wxgate-prod")).unwrap(),
            from_env
        );
        assert_eq!(
            settings(Some(StoreKind::Dynamodb), None)
                .plan(Some("wxgate-prod"))
                .unwrap(),
            from_env
        );
    }

    #[test]
    fn explicit_settings_win_over_the_environment() {
        assert_eq!(
            settings(Some(StoreKind::Memory), Some("t1x"))
                .plan(Some("env-table"))
                .unwrap(),
            StorePlan::Memory
        );
        assert_eq!(
            settings(None, Some("configured"))
                .plan(Some("env-table"))
                .unwrap(),
            StorePlan::Dynamodb {
                table: "configured".into()
            }
        );
    }

    #[test]
    fn dynamodb_without_a_table_or_with_a_bad_name_is_refused() {
        let e = settings(Some(StoreKind::Dynamodb), None)
            .plan(None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("WXGATE_TABLE"), "{e}");
        let e = settings(None, None)
            .plan(Some("no spaces allowed"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("table name"), "{e}");
    }

    #[test]
    fn ranges_are_checked() {
        let mut s = StoreSettings::default();
        assert!(s.check().is_ok());
        s.retention_secs = 10;
        assert!(
            s.check()
                .unwrap_err()
                .to_string()
                .contains("retention_secs")
        );
        s.retention_secs = 3600;
        s.timeout_ms = 0;
        assert!(s.check().unwrap_err().to_string().contains("timeout_ms"));
        s.timeout_ms = 100;
        s.table = Some("x".into());
        assert!(s.check().unwrap_err().to_string().contains("store.table"));
    }
}
