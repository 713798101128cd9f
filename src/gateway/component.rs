//! Open Platform notices on the authorization event URL (`POST /open/{app}`): the ticket
//! pushed every ten minutes, and authorizations given, changed and withdrawn. Each is
//! applied to the store here, before the bot hears of it; the platform wants `success`
//! whatever happens, so failures are logged, never answered.

use tokio::time::Instant;

use super::{App, Gateway};
use crate::bot::Bot;
use crate::clock::now_ms;
use crate::message::{Info, InfoEvent};
use crate::platform::Platform;
use crate::store::{OpenStore, Ticket};
use crate::wechat::open::exchange_code;

impl<B: Bot> Gateway<B> {
    /// Applies an Open Platform notice to the store, within the budget.
    pub(super) async fn component_notice(&self, app: &App, info: &InfoEvent, deadline: Instant) {
        if app.platform != Platform::Open {
            return;
        }
        let applied = tokio::time::timeout_at(deadline, self.apply_notice(app, info)).await;
        if applied.is_err() {
            tracing::warn!(app = %app.name, info_type = %info.info_type(), "applying the notice took past the time budget; answering success (a retry will apply it)");
        }
    }

    async fn apply_notice(&self, app: &App, info: &InfoEvent) {
        // The records are the configured component's (its keys seal them). The envelope was
        // opened with its receive id, so the signed `AppId` can only differ by a
        // misconfiguration worth a line.
        let Some(component) = app.component_app_id() else {
            return;
        };
        if info.app_id != component {
            tracing::warn!(app = %app.name, "the push's AppId is not the configured app_id; stored under the configured one");
        }
        match &info.info {
            Info::ComponentVerifyTicket { ticket } => {
                let ticket = Ticket {
                    value: ticket.clone(),
                    create_time: info.create_time,
                };
                match self.store.put_ticket(component, &ticket, now_ms()).await {
                    Ok(true) => {
                        tracing::info!(app = %app.name, component, create_time = info.create_time, "component_verify_ticket stored");
                    }
                    Ok(false) => {
                        tracing::info!(app = %app.name, component, create_time = info.create_time, "an older component_verify_ticket push; the newer stored one is kept");
                    }
                    Err(e) => {
                        tracing::error!(app = %app.name, component, cause = %e, "cannot store the component_verify_ticket; answering success (the next push comes in 10 minutes)");
                    }
                }
            }
            Info::Authorized(grant) | Info::UpdateAuthorized(grant) => {
                let (Some(source), Ok(tokens)) = (&app.token_source, self.tokens()) else {
                    tracing::warn!(app = %app.name, authorizer = %grant.authorizer_appid, "an authorization arrived but the app has no secret to exchange its code with: set secret (the component AppSecret)");
                    return;
                };
                if let Err(e) =
                    exchange_code(tokens, source, &grant.authorization_code, info.create_time).await
                {
                    // The redirect may have exchanged the same code already (codes may be
                    // single use); the record then exists.
                    tracing::warn!(app = %app.name, authorizer = %grant.authorizer_appid, error = %e, "could not exchange the authorization code of the event");
                }
            }
            Info::Unauthorized { authorizer_appid } => {
                match self
                    .store
                    .revoke(component, authorizer_appid, info.create_time, now_ms())
                    .await
                {
                    Ok(true) => {
                        tracing::info!(app = %app.name, authorizer = %authorizer_appid, "authorization withdrawn; kept as a tombstone");
                    }
                    Ok(false) => {
                        tracing::info!(app = %app.name, authorizer = %authorizer_appid, "an older unauthorized event; the later authorization is kept");
                        return;
                    }
                    Err(e) => {
                        tracing::error!(app = %app.name, authorizer = %authorizer_appid, cause = %e, "cannot record the withdrawal; answering success (WeChat retries)");
                        return;
                    }
                }
                if let (Some(source), Ok(tokens)) = (&app.token_source, self.tokens())
                    && let Some(authorizer) = source.authorizer(authorizer_appid.as_str())
                {
                    tokens.forget(&authorizer).await;
                }
            }
            _ => {}
        }
    }
}
