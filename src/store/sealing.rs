//! Which key seals which item's values in a shared store ([`crate::crypto::at_rest`]).
//!
//! A dedup record's reply and a reply job's message are sealed with its app's key (the app
//! is in the item key, `dedup#{app}…`); a cached token with the key of the credentials that
//! fetched it (`token#{scope}`). Text read back that is not sealed (written before sealing,
//! or for an app without a key here) is taken as it is; sealed text that no key opens is a
//! corrupt item.

use std::collections::HashMap;

use super::StoreError;
use crate::crypto::at_rest::{AtRestKey, is_sealed};

/// The keys of the configured apps and token scopes.
#[derive(Debug, Default)]
pub struct Sealing {
    /// By app name: the key to seal with first, then older keys that still open.
    apps: HashMap<String, Vec<AtRestKey>>,
    /// By token scope (`TokenSource::scope`).
    tokens: HashMap<String, AtRestKey>,
    /// By Open Platform component AppID: its tickets, its authorizations' refresh tokens
    /// and its authorizers' access tokens (whose scopes are made at run time).
    components: HashMap<String, Vec<AtRestKey>>,
}

impl Sealing {
    /// No keys: nothing is sealed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Seals `app`'s records with `keys` (the first seals, all open).
    pub fn add_app(&mut self, app: &str, keys: Vec<AtRestKey>) {
        if !keys.is_empty() {
            self.apps.insert(app.to_owned(), keys);
        }
    }

    /// Seals the token of `scope` with `key`.
    pub fn add_token_scope(&mut self, scope: &str, key: AtRestKey) {
        self.tokens.insert(scope.to_owned(), key);
    }

    /// Seals the Open Platform records of `component_app_id` with `keys` (the first seals,
    /// all open).
    pub fn add_component(&mut self, component_app_id: &str, keys: Vec<AtRestKey>) {
        if !keys.is_empty() {
            self.components.insert(component_app_id.to_owned(), keys);
        }
    }

    /// The keys for the item `key`.
    fn keys(&self, key: &str) -> &[AtRestKey] {
        let component = key
            .strip_prefix("ticket#")
            .or_else(|| key.strip_prefix("authz#"))
            .or_else(|| key.strip_prefix("token#open#"))
            .map(|rest| rest.split('#').next().unwrap_or_default());
        if let Some(component) = component {
            // A component's own token scope is registered too; its keys come first.
            if let Some(scope) = key.strip_prefix("token#")
                && let Some(k) = self.tokens.get(scope)
            {
                return std::slice::from_ref(k);
            }
            return self.components.get(component).map_or(&[], Vec::as_slice);
        }
        if let Some(rest) = key.strip_prefix("dedup#") {
            // App names are URL path segments: no `#` and no `/` in them.
            let app = rest.split(['#', '/']).next().unwrap_or_default();
            return self.apps.get(app).map_or(&[], Vec::as_slice);
        }
        if let Some(scope) = key.strip_prefix("token#") {
            return self.tokens.get(scope).map_or(&[], std::slice::from_ref);
        }
        &[]
    }

    /// `value` of the attribute `field` of the item `key`, as it is to be stored.
    pub fn seal(&self, key: &str, field: &str, value: &str) -> String {
        match self.keys(key).first() {
            Some(k) => k.seal(&aad(key, field), value),
            None => value.to_owned(),
        }
    }

    /// The stored `value` of `field` of the item `key`, opened.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for sealed text no key opens (another item's, altered, or
    /// sealed under a key no longer configured).
    pub fn open(&self, key: &str, field: &str, stored: &str) -> Result<String, StoreError> {
        if !is_sealed(stored) {
            return Ok(stored.to_owned());
        }
        let aad = aad(key, field);
        self.keys(key)
            .iter()
            .find_map(|k| k.open(&aad, stored))
            .ok_or_else(|| StoreError::Corrupt {
                key: key.to_owned(),
                reason: format!("its {field} is sealed under a key this configuration does not have, or was altered"),
            })
    }
}

fn aad(key: &str, field: &str) -> String {
    format!("{key}/{field}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealing() -> Sealing {
        let mut s = Sealing::new();
        s.add_app(
            "demo",
            vec![
                AtRestKey::derive(b"new-key-material", "app:demo"),
                AtRestKey::derive(b"old-key-material", "app:demo"),
            ],
        );
        s.add_token_scope(
            "wecom#ww1#abcd1234",
            AtRestKey::derive(b"corp-secret", "token"),
        );
        s
    }

    #[test]
    fn each_item_is_sealed_with_its_apps_or_scopes_key() {
        let s = sealing();
        for key in [
            "dedup#demo#msg|1",
            "dedup#demo/gh_x#msg|1",
            "token#wecom#ww1#abcd1234",
        ] {
            let sealed = s.seal(key, "f", "secret text");
            assert!(is_sealed(&sealed), "{key}");
            assert_eq!(s.open(key, "f", &sealed).unwrap(), "secret text");
            assert!(
                s.open("dedup#demo#msg|2", "f", &sealed).is_err(),
                "bound to its item"
            );
        }
        // Unknown apps and scopes are not sealed; plain text reads as it is.
        assert_eq!(s.seal("dedup#other#msg|1", "f", "x"), "x");
        assert_eq!(
            s.open("dedup#demo#msg|1", "f", "legacy plain").unwrap(),
            "legacy plain"
        );
    }

    #[test]
    fn values_sealed_under_the_previous_key_still_open() {
        let mut old = Sealing::new();
        old.add_app(
            "demo",
            vec![AtRestKey::derive(b"old-key-material", "app:demo")],
        );
        let sealed = old.seal("dedup#demo#msg|1", "reply", "<xml/>");
        assert_eq!(
            sealing()
                .open("dedup#demo#msg|1", "reply", &sealed)
                .unwrap(),
            "<xml/>"
        );
        let mut other = Sealing::new();
        other.add_app("demo", vec![AtRestKey::derive(b"unrelated", "app:demo")]);
        let e = other
            .open("dedup#demo#msg|1", "reply", &sealed)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sealed under a key") && !e.contains("<xml"),
            "{e}"
        );
    }
}
