//! The Open Platform (third-party platform, 开放平台) chain: the component's API, its token
//! and its authorizers' tokens, and the authorization records they rest on.
//!
//! ```text
//! component_verify_ticket (pushed every 10 min, stored)  ─┐
//! component AppID + AppSecret ────────────────────────────┴→ component_access_token
//! component_access_token → pre_auth_code → (admin authorizes) → auth_code
//! auth_code → api_query_auth → refresh token (stored, never lost) → authorizer tokens
//! ```
//!
//! Both tokens are shared by every instance through the [`TokenProvider`]
//! (super::TokenProvider) like any other; [`chain`] is what fetching them means.

mod api;
pub(crate) mod chain;
mod flows;

pub use api::{
    AUTHORIZER_PAGE, AuthorizerInfo, AuthorizerPage, ListedAuthorizer, PreAuthCode, QueryAuth,
    RefreshedToken,
};
pub use chain::{RECOVERY_INTERVAL_MS, TICKET_PUSH_INTERVAL_MS, request_ticket_push};
pub use flows::{Exchanged, Recovered, exchange_code, recover_refresh_token};
