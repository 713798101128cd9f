//! Open Platform records: each component's newest `component_verify_ticket`, and the
//! authorizations of the accounts that authorized it.
//!
//! An authorization holds the authorizer's refresh token, the only way to get its access
//! tokens: lost, the account must authorize again. So these items never expire, every write
//! of a refresh token is conditional on the value it replaces (or, for a grant, on the event
//! time it supersedes), and a revoked authorization stays as a tombstone. As everywhere in
//! the store, each write recognises its own earlier write (a retried attempt whose answer
//! came late), by the fingerprint of the value it writes.

use std::future::Future;

use super::StoreError;
use crate::clock::EpochMillis;

/// How long WeChat says a `component_verify_ticket` is valid: 12 hours from its push.
pub const TICKET_LIFETIME_SECS: u64 = 12 * 3600;

/// A stored `component_verify_ticket`. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The ticket.
    pub value: String,
    /// The push's `CreateTime` (unix seconds).
    pub create_time: u64,
}

impl Ticket {
    /// Whether WeChat still accepts it at `now_secs` (12 hours from its push).
    pub fn is_valid_at(&self, now_secs: u64) -> bool {
        self.create_time.saturating_add(TICKET_LIFETIME_SECS) > now_secs
    }

    /// Its age at `now_secs`, in seconds.
    pub fn age_secs(&self, now_secs: u64) -> u64 {
        now_secs.saturating_sub(self.create_time)
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("value", &"[redacted]")
            .field("create_time", &self.create_time)
            .finish()
    }
}

/// Where an authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationState {
    /// Authorized, with a refresh token.
    Authorized,
    /// The account withdrew (`unauthorized`): a tombstone without a refresh token.
    Revoked,
    /// The refresh token stopped working (61023) and could not be recovered: the account
    /// must authorize again.
    Broken,
}

impl AuthorizationState {
    /// The name stored in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::Revoked => "revoked",
            Self::Broken => "broken",
        }
    }

    /// The state of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Authorized, Self::Revoked, Self::Broken]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One account's authorization of a component, as read back. `Debug` never shows the
/// refresh token.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationRecord {
    /// The authorizer's AppID.
    pub authorizer_app_id: String,
    /// Where it stands.
    pub state: AuthorizationState,
    /// The refresh token (`Authorized`, and `Broken` as the one that stopped working).
    pub refresh_token: Option<String>,
    /// The permission sets granted (`funcscope_category` ids).
    pub func_info: Vec<u32>,
    /// The time of the event (or redirect) the state comes from, unix seconds: an event
    /// older than this is not applied.
    pub event_time: u64,
    /// When the record was last written (ms).
    pub updated_at_ms: EpochMillis,
    /// The account's nick name, once fetched.
    pub nick_name: Option<String>,
    /// The account's original id (`gh_…`), once fetched: the `ToUserName` of its messages.
    pub user_name: Option<String>,
    /// Why it is broken.
    pub reason: Option<String>,
}

impl std::fmt::Debug for AuthorizationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRecord")
            .field("authorizer_app_id", &self.authorizer_app_id)
            .field("state", &self.state)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("func_info", &self.func_info)
            .field("event_time", &self.event_time)
            .field("updated_at_ms", &self.updated_at_ms)
            .field("nick_name", &self.nick_name)
            .field("user_name", &self.user_name)
            .field("reason", &self.reason)
            .finish()
    }
}

/// An authorization as granted (`api_query_auth`), to store.
#[derive(Clone, Copy)]
pub struct Grant<'a> {
    /// The authorizer's refresh token.
    pub refresh_token: &'a str,
    /// The permission sets granted.
    pub func_info: &'a [u32],
    /// The event's `CreateTime`, or the time of the redirect that carried the code.
    pub event_time: u64,
    /// Now (ms).
    pub now_ms: EpochMillis,
}

impl std::fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("refresh_token", &"[redacted]")
            .field("func_info", &self.func_info)
            .field("event_time", &self.event_time)
            .finish_non_exhaustive()
    }
}

/// A component's tickets and authorizations.
pub trait OpenStore: Send + Sync {
    /// Stores a pushed ticket unless one with the same or a later `CreateTime` is stored
    /// (a retried older push never overwrites a newer one). Returns whether it was stored
    /// (this very push stored before counts as stored).
    fn put_ticket(
        &self,
        component_app_id: &str,
        ticket: &Ticket,
        now_ms: EpochMillis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The newest stored ticket, valid or not.
    fn ticket(
        &self,
        component_app_id: &str,
    ) -> impl Future<Output = Result<Option<Ticket>, StoreError>> + Send;

    /// One authorization.
    fn authorization(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
    ) -> impl Future<Output = Result<Option<AuthorizationRecord>, StoreError>> + Send;

    /// Stores an authorization as granted (state `Authorized`, this refresh token and
    /// these permissions, the account info kept), unless the stored record comes from a
    /// later event. Returns whether it was applied.
    fn grant(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        grant: Grant<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks an authorization revoked (`unauthorized`) and removes its refresh token,
    /// keeping the record as a tombstone, unless the stored record comes from a later event.
    /// Returns whether it was applied.
    fn revoke(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        event_time: u64,
        now_ms: EpochMillis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Replaces the refresh token, only while the stored one is still `previous` (and the
    /// authorization is not revoked); the state becomes `Authorized`. Returns whether it was
    /// replaced: `false` means another instance replaced it first or the account withdrew.
    fn replace_refresh_token(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        previous: &str,
        new: &str,
        now_ms: EpochMillis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks an authorization broken for `reason`, only while its refresh token is still
    /// `previous` (a newer authorization is never marked broken). Returns whether it was.
    fn mark_broken(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        previous: &str,
        reason: &str,
        now_ms: EpochMillis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records the account's nick name and original id on an existing authorization.
    /// Returns whether there was one.
    fn set_account(
        &self,
        component_app_id: &str,
        authorizer_app_id: &str,
        nick_name: &str,
        user_name: &str,
        now_ms: EpochMillis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every authorization of a component, tombstones included, by authorizer AppID. An
    /// operator's listing: on DynamoDB a Scan, never on a callback's path.
    fn authorizations(
        &self,
        component_app_id: &str,
    ) -> impl Future<Output = Result<Vec<AuthorizationRecord>, StoreError>> + Send;
}

/// Whether an event at `event_time` may change a record that came from `stored_event_time`:
/// not if it is older (events are retried and arrive out of order).
pub fn supersedes(event_time: u64, stored_event_time: u64) -> bool {
    event_time >= stored_event_time
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_live_twelve_hours_from_their_push() {
        let t = Ticket {
            value: "ticket@@@1".into(),
            create_time: 1_000,
        };
        assert!(t.is_valid_at(1_000 + TICKET_LIFETIME_SECS - 1));
        assert!(!t.is_valid_at(1_000 + TICKET_LIFETIME_SECS));
        assert_eq!(t.age_secs(1_600), 600);
        assert!(!format!("{t:?}").contains("ticket@@@"));
    }

    #[test]
    fn an_older_event_never_supersedes() {
        assert!(supersedes(10, 10));
        assert!(supersedes(11, 10));
        assert!(!supersedes(9, 10));
    }

    #[test]
    fn states_round_trip_and_refresh_tokens_stay_hidden() {
        for s in [
            AuthorizationState::Authorized,
            AuthorizationState::Revoked,
            AuthorizationState::Broken,
        ] {
            assert_eq!(AuthorizationState::parse(s.as_str()), Some(s));
        }
        let r = AuthorizationRecord {
            authorizer_app_id: "wxa".into(),
            state: AuthorizationState::Authorized,
            refresh_token: Some("refreshtoken@@@secret".into()),
            func_info: vec![1],
            event_time: 1,
            updated_at_ms: 1,
            nick_name: None,
            user_name: None,
            reason: None,
        };
        assert!(!format!("{r:?}").contains("refreshtoken@@@"));
    }
}
