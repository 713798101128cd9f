//! The embedded store's Open Platform records, with the DynamoDB backend's conditions.

use super::MemoryStore;
use crate::clock::EpochMillis;
use crate::store::StoreError;
use crate::store::open::{
    AuthorizationRecord, AuthorizationState, Grant, OpenStore, Ticket, supersedes,
};
use crate::store::{authorization_key, authorization_prefix};

impl MemoryStore {
    /// Applies `change` to an existing authorization; `false` when there is none, else
    /// whether `change` made (or had made) its write.
    fn update(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        change: impl FnOnce(&mut AuthorizationRecord) -> bool,
    ) -> bool {
        let key = authorization_key(component_app_id, authorizer_app_id);
        self.lock().authorizations.get_mut(&key).is_some_and(change)
    }
}

impl OpenStore for MemoryStore {
    async fn put_ticket(
        &self,
        component_app_id: &str,
        ticket: &Ticket,
        _now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        match inner.tickets.get(component_app_id) {
            // This very push again (a retry of the write) counts as stored.
            Some(stored) if stored == ticket => Ok(true),
            Some(stored) if stored.create_time >= ticket.create_time => Ok(false),
            _ => {
                inner
                    .tickets
                    .insert(component_app_id.to_owned(), ticket.clone());
                Ok(true)
            }
        }
    }

    async fn ticket(&self, component_app_id: &str) -> Result<Option<Ticket>, StoreError> {
        Ok(self.lock().tickets.get(component_app_id).cloned())
    }

    async fn authorization(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
    ) -> Result<Option<AuthorizationRecord>, StoreError> {
        let key = authorization_key(component_app_id, authorizer_app_id);
        Ok(self.lock().authorizations.get(&key).cloned())
    }

    async fn grant(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        grant: Grant<'_>,
    ) -> Result<bool, StoreError> {
        let key = authorization_key(component_app_id, authorizer_app_id);
        let mut inner = self.lock();
        let stored = inner.authorizations.get(&key);
        if stored.is_some_and(|r| !supersedes(grant.event_time, r.event_time)) {
            return Ok(false);
        }
        let (nick_name, user_name) = stored
            .map(|r| (r.nick_name.clone(), r.user_name.clone()))
            .unwrap_or_default();
        inner.authorizations.insert(
            key,
            AuthorizationRecord {
                authorizer_app_id: authorizer_app_id.to_owned(),
                state: AuthorizationState::Authorized,
                refresh_token: Some(grant.refresh_token.to_owned()),
                func_info: grant.func_info.to_vec(),
                event_time: grant.event_time,
                updated_at_ms: grant.now_ms,
                nick_name,
                user_name,
                reason: None,
            },
        );
        Ok(true)
    }

    async fn revoke(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        event_time: u64,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        let key = authorization_key(component_app_id, authorizer_app_id);
        let mut inner = self.lock();
        let record = inner
            .authorizations
            .entry(key)
            .or_insert_with(|| AuthorizationRecord {
                authorizer_app_id: authorizer_app_id.to_owned(),
                state: AuthorizationState::Revoked,
                refresh_token: None,
                func_info: Vec::new(),
                event_time,
                updated_at_ms: now_ms,
                nick_name: None,
                user_name: None,
                reason: None,
            });
        if !supersedes(event_time, record.event_time) {
            return Ok(false);
        }
        record.state = AuthorizationState::Revoked;
        record.refresh_token = None;
        record.event_time = event_time;
        record.updated_at_ms = now_ms;
        record.reason = None;
        Ok(true)
    }

    async fn replace_refresh_token(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        previous: &str,
        new: &str,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        Ok(self.update(component_app_id, authorizer_app_id, |record| {
            let current = record.refresh_token.as_deref();
            if current == Some(new) && record.state == AuthorizationState::Authorized {
                return true; // this replacement, made already
            }
            if current != Some(previous) || record.state == AuthorizationState::Revoked {
                return false;
            }
            record.refresh_token = Some(new.to_owned());
            record.state = AuthorizationState::Authorized;
            record.reason = None;
            record.updated_at_ms = now_ms;
            true
        }))
    }

    async fn mark_broken(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        previous: &str,
        reason: &str,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        Ok(self.update(component_app_id, authorizer_app_id, |record| {
            if record.refresh_token.as_deref() != Some(previous)
                || record.state == AuthorizationState::Revoked
            {
                return false;
            }
            record.state = AuthorizationState::Broken;
            record.reason = Some(reason.to_owned());
            record.updated_at_ms = now_ms;
            true
        }))
    }

    async fn set_account(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        nick_name: &str,
        user_name: &str,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        Ok(self.update(component_app_id, authorizer_app_id, |record| {
            record.nick_name = Some(nick_name.to_owned());
            record.user_name = Some(user_name.to_owned());
            record.updated_at_ms = now_ms;
            true
        }))
    }

    async fn authorizations(
        &self,
        component_app_id: &str,
    ) -> Result<Vec<AuthorizationRecord>, StoreError> {
        let prefix = authorization_prefix(component_app_id);
        let inner = self.lock();
        let mut records: Vec<_> = inner
            .authorizations
            .iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .map(|(_, r)| r.clone())
            .collect();
        records.sort_by(|a, b| a.authorizer_app_id.cmp(&b.authorizer_app_id));
        Ok(records)
    }
}
