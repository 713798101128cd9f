//! What the gateway and the operator's commands do with the chain: exchange an
//! authorization code and store the authorization; store the refresh token the platform's
//! list holds.

use super::super::error::ApiError;
use super::super::provider::TokenProvider;
use super::super::source::TokenSource;
use super::api::{AuthorizerInfo, QueryAuth};
use super::chain::{self, api_error};
use crate::store::{Grant, OpenStore, TokenStore};

/// An authorization code exchanged and stored.
#[derive(Debug, Clone)]
pub struct Exchanged {
    /// What `api_query_auth` answered (with the authorizer's first access token).
    pub query: QueryAuth,
    /// Whether it was stored: `false` when the stored authorization comes from a later
    /// event (this one arrived out of order).
    pub applied: bool,
    /// The account's name and original id, when `api_get_authorizer_info` answered.
    pub account: Option<AuthorizerInfo>,
}

/// Exchanges `code` (from the redirect, an `authorized`/`updateauthorized` event or a
/// release-test message) with `api_query_auth`, stores the authorization as of
/// `event_time` (unix seconds) unless a later one is stored, forgets the authorizer's
/// cached token (it may come from the previous authorization), and records the account's
/// name and original id.
///
/// # Errors
/// The exchange failed ([`ApiError`], e.g. 61009/61010 for a used or expired code), or the
/// authorization could not be stored (then the refresh token is recoverable from
/// `api_get_authorizer_list`).
pub async fn exchange_code<S: TokenStore + OpenStore + 'static>(
    tokens: &TokenProvider<S>,
    component: &TokenSource,
    code: &str,
    event_time: u64,
) -> Result<Exchanged, ApiError> {
    let component_id = component.id();
    let client = tokens.client();
    let query = tokens
        .call(component, |token| async move {
            client.query_auth(component_id, &token, code).await
        })
        .await
        .map_err(api_error)?;
    let authorizer = query.authorizer_app_id.as_str();
    let grant = Grant {
        refresh_token: &query.refresh_token,
        func_info: &query.func_info,
        event_time,
        now_ms: tokens.now(),
    };
    let stored = chain::write_refresh_token(
        component_id,
        authorizer,
        "storing the authorization",
        || tokens.store().grant(component_id, authorizer, grant),
    )
    .await;
    let applied = match stored {
        Ok(applied) => applied,
        Err(e) => {
            tracing::error!(component = component_id, authorizer, cause = %e, "the authorization could not be stored; its refresh token will be recovered from api_get_authorizer_list when first needed");
            return Err(ApiError::Precondition(format!(
                "cannot store the authorization of {authorizer}: {e}"
            )));
        }
    };
    if applied {
        if let Some(source) = component.authorizer(authorizer) {
            tokens.forget(&source).await;
        }
        tracing::info!(
            component = component_id,
            authorizer,
            permissions = ?query.func_info,
            "authorization stored"
        );
    } else {
        tracing::info!(
            component = component_id,
            authorizer,
            "a later authorization is stored already; this older one is not applied"
        );
    }
    let account = match tokens
        .call(component, |token| async move {
            client
                .authorizer_info(component_id, &token, authorizer)
                .await
        })
        .await
    {
        Ok(info) => {
            if let Err(e) = tokens
                .store()
                .set_account(
                    component_id,
                    authorizer,
                    &info.nick_name,
                    &info.user_name,
                    tokens.now(),
                )
                .await
            {
                tracing::warn!(component = component_id, authorizer, cause = %e, "could not store the account's name");
            }
            Some(info)
        }
        Err(e) => {
            tracing::warn!(component = component_id, authorizer, error = %e, "api_get_authorizer_info failed; the account's name is not recorded");
            None
        }
    };
    Ok(Exchanged {
        query,
        applied,
        account,
    })
}

/// What [`recover_refresh_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// The list holds the stored refresh token: nothing to do.
    Unchanged,
    /// The stored refresh token was replaced with the listed one.
    Replaced,
    /// No authorization was stored; the listed one now is.
    Stored,
    /// The list does not hold the account: it must authorize again.
    NotListed,
    /// The stored record changed meanwhile (another instance); nothing written.
    Raced,
}

/// Looks `authorizer` up in `api_get_authorizer_list` and stores its refresh token when the
/// stored one differs or is missing (an operator's `wxgate open recover`). Unlike the
/// automatic recovery it is not throttled.
///
/// # Errors
/// The list could not be read, or the store failed.
pub async fn recover_refresh_token<S: TokenStore + OpenStore + 'static>(
    tokens: &TokenProvider<S>,
    component: &TokenSource,
    authorizer: &str,
) -> Result<Recovered, ApiError> {
    let component_id = component.id();
    let Some(listed) = chain::listed_refresh_token(tokens, component, authorizer).await? else {
        return Ok(Recovered::NotListed);
    };
    let store = tokens.store();
    let failed = |e: crate::store::StoreError| ApiError::Precondition(format!("store: {e}"));
    let stored = store
        .authorization(component_id, authorizer)
        .await
        .map_err(failed)?;
    let written = match stored.as_ref().and_then(|r| {
        r.refresh_token
            .as_deref()
            .filter(|_| r.state != crate::store::AuthorizationState::Revoked)
    }) {
        Some(current) if current == listed => return Ok(Recovered::Unchanged),
        Some(current) => store
            .replace_refresh_token(component_id, authorizer, current, &listed, tokens.now())
            .await
            .map_err(failed)?
            .then_some(Recovered::Replaced),
        None => {
            let event_time = stored.as_ref().map_or(0, |r| r.event_time);
            let grant = Grant {
                refresh_token: &listed,
                func_info: &[],
                event_time: event_time.max(tokens.now() / 1000),
                now_ms: tokens.now(),
            };
            store
                .grant(component_id, authorizer, grant)
                .await
                .map_err(failed)?
                .then_some(Recovered::Stored)
        }
    };
    if let Some(source) = component.authorizer(authorizer) {
        tokens.forget(&source).await;
    }
    Ok(written.unwrap_or(Recovered::Raced))
}
