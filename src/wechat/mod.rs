//! The platform's server API: fetching access tokens and calling the API with them.
//!
//! Every outgoing call (active messages, menus, media…) needs an access token, and the
//! platform limits how often one may be fetched: WeCom intercepts frequent `gettoken` calls,
//! and an Official Account's token is one per account, so instances that each fetched their
//! own would keep replacing each other's. So tokens are fetched once and shared:
//!
//! * [`PlatformClient`] speaks HTTP to the platform: [`PlatformClient::fetch_token`] for
//!   both platforms' token endpoints, [`PlatformClient::get_json`] /
//!   [`PlatformClient::post_json`] for any later API call. Failures are typed
//!   ([`ApiError`]) and never carry a secret or a token.
//! * [`TokenProvider`] hands out tokens: from a process-local cache while fresh, else from
//!   the shared [`Store`](crate::store::Store), else from the platform under a refresh lease
//!   taken in the store, so one fetch serves every instance for a token's lifetime.
//!   [`TokenProvider::call`] runs an API call and, when the platform says the token is no
//!   longer valid, fetches a new one once and retries once.
//! * [`TokenSource`] names the credentials; its [`scope`](TokenSource::scope) keys the
//!   shared token.
//! * [`Messenger`] sends active messages with those tokens: WeCom app messages
//!   ([`WecomMessage`]) and Official Account customer messages ([`MpMessage`]), checked
//!   against the platform's limits first and retried on transient failures
//!   ([`RetryPolicy`]).

mod answer;
mod client;
mod endpoints;
mod error;
mod hints;
pub mod open;
mod provider;
mod retry;
pub mod send;
mod source;
mod token;

pub use answer::FetchedToken;
pub use client::{ClientTimeouts, PlatformClient};
pub use endpoints::ApiEndpoints;
pub use error::{ApiError, TokenError};
pub use provider::{Clock, TokenProvider};
pub use send::{
    Article, InvalidMessage, Messenger, MpMessage, RetryPolicy, SendError, SendReceipt, TextCard,
    WecomMessage, is_retryable, is_retryable_deduplicated, validate_wecom_recipients,
};
pub use source::TokenSource;
pub use token::{AccessToken, TokenSettings};
