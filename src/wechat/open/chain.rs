//! Fetching component and authorizer access tokens: what the token provider does for the
//! two Open Platform sources, on top of the shared-token machinery (single flight, lease,
//! fencing, invalidation), which is the same for every source.
//!
//! * **Component token**: `api_component_token` with the newest ticket in the store. No
//!   valid ticket (none stored, older than 12 hours, or refused with 61005/61006) asks
//!   WeChat to push one (`api_start_push_ticket`), at most once per
//!   [`TICKET_PUSH_INTERVAL_MS`] for the whole fleet: the throttle is a lease in the store.
//! * **Authorizer token**: `api_authorizer_token` with the component's token and the
//!   authorization's refresh token. A refresh token the answer carries is stored
//!   (conditionally on the one it replaces) *before* the access token is handed out: if it
//!   cannot be stored, the access token is not used either, so no refresh token ever lives
//!   only in memory. A refresh token refused with 61023 is looked up in
//!   `api_get_authorizer_list` once (leased fleet-wide); failing that the authorization is
//!   marked broken, with one error line saying the account must authorize again.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::super::answer::FetchedToken;
use super::super::error::{ApiError, TokenError};
use super::super::provider::TokenProvider;
use super::super::source::TokenSource;
use super::api::AUTHORIZER_PAGE;
use crate::store::{
    AuthorizationState, OpenStore, StoreError, TokenStore, new_owner, recovery_key, ticket_push_key,
};

/// How often, at most, WeChat is asked to push a ticket, fleet-wide: it pushes every 10
/// minutes anyway.
pub const TICKET_PUSH_INTERVAL_MS: u64 = 10 * 60 * 1000;
/// How often, at most, one authorizer's refresh token is looked up in the list.
pub const RECOVERY_INTERVAL_MS: u64 = 60 * 1000;
/// Attempts at a store write holding a refresh token (a rotated one, or a new
/// authorization) before giving up on it.
const REFRESH_TOKEN_WRITE_ATTEMPTS: u32 = 3;

/// A boxed fetch: the provider's fetch of an Open Platform token calls the provider again
/// (an authorizer's needs the component's), which a plain `async fn` cannot.
pub(crate) type BoxedFetch<'a> =
    Pin<Box<dyn Future<Output = Result<FetchedToken, ApiError>> + Send + 'a>>;

/// Fetches the token of a component or authorizer source.
pub(crate) fn fetch<'a, S: TokenStore + OpenStore + 'static>(
    tokens: &'a TokenProvider<S>,
    source: &'a TokenSource,
) -> BoxedFetch<'a> {
    Box::pin(async move {
        match source {
            TokenSource::Component { .. } => component_token(tokens, source).await,
            TokenSource::Authorizer { .. } => authorizer_token(tokens, source).await,
            other => tokens.client().fetch_token(other).await,
        }
    })
}

fn store_failed(what: &str, e: &StoreError) -> ApiError {
    ApiError::Precondition(format!("cannot {what}: {e}"))
}

/// The API error behind a failed component-token call.
pub(crate) fn api_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Fetch(e) | TokenError::Api(e) | TokenError::Client(e) => e,
        other => ApiError::Precondition(other.to_string()),
    }
}

async fn component_token<S: TokenStore + OpenStore>(
    tokens: &TokenProvider<S>,
    component: &TokenSource,
) -> Result<FetchedToken, ApiError> {
    let app_id = component.id();
    let now_secs = tokens.now() / 1000;
    let ticket = tokens
        .store()
        .ticket(app_id)
        .await
        .map_err(|e| store_failed("read the component_verify_ticket", &e))?;
    let Some(ticket) = ticket.filter(|t| t.is_valid_at(now_secs)) else {
        request_ticket_push(tokens, component).await;
        return Err(ApiError::Precondition(format!(
            "no valid component_verify_ticket stored for component {app_id}: WeChat pushes one every 10 minutes to the authorization event URL (POST /open/{{app}}) once the console points there; a push has been requested"
        )));
    };
    match tokens
        .client()
        .component_token(component, &ticket.value)
        .await
    {
        Err(e) if matches!(e.errcode(), Some(61005 | 61006)) => {
            request_ticket_push(tokens, component).await;
            Err(e)
        }
        other => other,
    }
}

/// Asks WeChat to push a `component_verify_ticket` now, unless some instance asked within
/// [`TICKET_PUSH_INTERVAL_MS`]. Returns whether this call asked.
pub async fn request_ticket_push<S: TokenStore>(
    tokens: &TokenProvider<S>,
    component: &TokenSource,
) -> bool {
    let app_id = component.id();
    let key = ticket_push_key(app_id);
    // The lease is never released: it is the throttle.
    match tokens
        .store()
        .take_token_lease(&key, &new_owner(), tokens.now(), TICKET_PUSH_INTERVAL_MS)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(component = app_id, "a ticket push was requested recently");
            return false;
        }
        Err(e) => {
            // Without the store no instance could tell the others: no request (every
            // instance asking at once is what the throttle is for).
            tracing::warn!(component = app_id, cause = %e, "store failed; no ticket push requested");
            return false;
        }
    }
    match tokens.client().start_push_ticket(component).await {
        Ok(()) => {
            tracing::info!(
                component = app_id,
                "asked WeChat to push a component_verify_ticket"
            );
            true
        }
        Err(e) => {
            tracing::warn!(component = app_id, error = %e, "asking WeChat to push a ticket failed");
            false
        }
    }
}

async fn authorizer_token<S: TokenStore + OpenStore + 'static>(
    tokens: &TokenProvider<S>,
    source: &TokenSource,
) -> Result<FetchedToken, ApiError> {
    let (Some(component), authorizer) = (source.component_of(), source.id()) else {
        return Err(ApiError::Precondition("not an authorizer source".into()));
    };
    let component_id = component.id();
    let record = tokens
        .store()
        .authorization(component_id, authorizer)
        .await
        .map_err(|e| store_failed("read the authorization", &e))?;
    let refresh_token = match record {
        Some(r) if r.state == AuthorizationState::Authorized => r.refresh_token,
        Some(r) if r.state == AuthorizationState::Broken => {
            return Err(ApiError::Precondition(format!(
                "the authorization of {authorizer} is broken ({}): the account must authorize the component again",
                r.reason.as_deref().unwrap_or("refresh token refused")
            )));
        }
        _ => None,
    };
    let Some(refresh_token) = refresh_token else {
        return Err(ApiError::Precondition(format!(
            "{authorizer} has not authorized component {component_id} (or withdrew)"
        )));
    };
    match refresh(tokens, &component, authorizer, &refresh_token).await {
        Err(e) if e.errcode() == Some(61023) => {
            recover(tokens, &component, authorizer, &refresh_token).await
        }
        other => other,
    }
}

/// `api_authorizer_token` with `refresh_token`, storing the refresh token it returns.
async fn refresh<S: TokenStore + OpenStore + 'static>(
    tokens: &TokenProvider<S>,
    component: &TokenSource,
    authorizer: &str,
    refresh_token: &str,
) -> Result<FetchedToken, ApiError> {
    let component_id = component.id();
    let client = tokens.client();
    let refreshed = tokens
        .call(component, |token| async move {
            client
                .authorizer_token(component_id, &token, authorizer, refresh_token)
                .await
        })
        .await
        .map_err(api_error)?;
    if let Some(new) = refreshed
        .refresh_token
        .as_deref()
        .filter(|new| *new != refresh_token)
    {
        persist(tokens, component_id, authorizer, refresh_token, new).await?;
    }
    Ok(refreshed.access_token)
}

/// Stores a refresh token the platform rotated, before its access token is used.
async fn persist<S: TokenStore + OpenStore>(
    tokens: &TokenProvider<S>,
    component: &str,
    authorizer: &str,
    previous: &str,
    new: &str,
) -> Result<(), ApiError> {
    let stored = write_refresh_token(
        component,
        authorizer,
        "storing the rotated refresh token",
        || {
            tokens
                .store()
                .replace_refresh_token(component, authorizer, previous, new, tokens.now())
        },
    )
    .await;
    match stored {
        Ok(true) => {
            tracing::info!(
                component,
                authorizer,
                "authorizer refresh token rotated and stored"
            );
            Ok(())
        }
        Ok(false) => {
            // A newer authorization (or another instance's refresh) replaced the one this
            // refresh started from: the stored one is the newer.
            tracing::warn!(
                component,
                authorizer,
                "the stored refresh token changed during the refresh; the newer one is kept"
            );
            Ok(())
        }
        Err(e) => {
            tracing::error!(component, authorizer, cause = %e, "the rotated refresh token could not be stored; its access token is not used (the next refresh recovers it from api_get_authorizer_list)");
            Err(store_failed("store the rotated refresh token", &e))
        }
    }
}

/// Runs `write`, a store write holding a refresh token (which exists nowhere else), up to
/// [`REFRESH_TOKEN_WRITE_ATTEMPTS`] times while the store fails, pausing 100 ms, then
/// 200 ms; each failure but the last is logged as `what` failing.
pub(crate) async fn write_refresh_token<T, F, Fut>(
    component: &str,
    authorizer: &str,
    what: &str,
    write: F,
) -> Result<T, StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut pause = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match write().await {
            Err(e) if attempt < REFRESH_TOKEN_WRITE_ATTEMPTS => {
                tracing::warn!(component, authorizer, attempt, cause = %e, "{what} failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// 61023: the stored refresh token is refused. Looks the authorizer up in
/// `api_get_authorizer_list` (once per [`RECOVERY_INTERVAL_MS`] fleet-wide) and refreshes
/// with the token found there; else marks the authorization broken.
async fn recover<S: TokenStore + OpenStore + 'static>(
    tokens: &TokenProvider<S>,
    component: &TokenSource,
    authorizer: &str,
    refused: &str,
) -> Result<FetchedToken, ApiError> {
    let component_id = component.id();
    let store = tokens.store();
    let lease = recovery_key(component_id, authorizer);
    match store
        .take_token_lease(&lease, &new_owner(), tokens.now(), RECOVERY_INTERVAL_MS)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::Precondition(format!(
                "the refresh token of {authorizer} was refused (61023) and its recovery was tried within the last minute"
            )));
        }
        Err(e) => return Err(store_failed("take the recovery lease", &e)),
    }
    tracing::warn!(
        component = component_id,
        authorizer,
        "refresh token refused (61023); looking it up in api_get_authorizer_list"
    );
    let found = listed_refresh_token(tokens, component, authorizer).await?;
    if let Some(found) = found.filter(|f| f != refused) {
        if let Err(e) = store
            .replace_refresh_token(component_id, authorizer, refused, &found, tokens.now())
            .await
        {
            return Err(store_failed("store the recovered refresh token", &e));
        }
        match refresh(tokens, component, authorizer, &found).await {
            // Refused too: broken, below.
            Err(e) if e.errcode() == Some(61023) => {}
            other => {
                if other.is_ok() {
                    tracing::info!(
                        component = component_id,
                        authorizer,
                        "refresh token recovered from api_get_authorizer_list"
                    );
                }
                return other;
            }
        }
    }
    let reason = "refresh token refused (61023) and not recoverable from api_get_authorizer_list";
    let stored = store
        .authorization(component_id, authorizer)
        .await
        .ok()
        .flatten()
        .and_then(|r| r.refresh_token);
    let previous = stored.as_deref().unwrap_or(refused);
    if let Err(e) = store
        .mark_broken(component_id, authorizer, previous, reason, tokens.now())
        .await
    {
        tracing::warn!(component = component_id, authorizer, cause = %e, "could not mark the authorization broken");
    }
    tracing::error!(
        component = component_id,
        authorizer,
        "authorization broken: {reason}; the account must authorize the component again"
    );
    Err(ApiError::Platform {
        errcode: 61023,
        errmsg: format!("authorization of {authorizer} is broken: {reason}"),
    })
}

/// The refresh token `api_get_authorizer_list` holds for `authorizer`, paging through.
pub(crate) async fn listed_refresh_token<S: TokenStore + OpenStore + 'static>(
    tokens: &TokenProvider<S>,
    component: &TokenSource,
    authorizer: &str,
) -> Result<Option<String>, ApiError> {
    let component_id = component.id();
    let client = tokens.client();
    let mut offset = 0;
    loop {
        let page = tokens
            .call(component, |token| async move {
                client
                    .authorizer_list(component_id, &token, offset, AUTHORIZER_PAGE)
                    .await
            })
            .await
            .map_err(api_error)?;
        let seen = page.list.len() as u64;
        if let Some(entry) = page
            .list
            .into_iter()
            .find(|e| e.authorizer_app_id == authorizer)
        {
            return Ok(Some(entry.refresh_token));
        }
        offset += seen;
        if seen == 0 || offset >= page.total_count {
            return Ok(None);
        }
    }
}
