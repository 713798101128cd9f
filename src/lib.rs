//! wxgate: a gateway for WeChat Work (WeCom), Official Account and Open Platform callbacks.
//!
//! This crate's protocol core is pure and synchronous: [`crypto`] verifies and decrypts
//! (WXBizMsgCrypt, "safe mode"), [`message`] parses what the platform sent, [`reply`] builds
//! the passive answer, and every failure is a [`ProtocolError`] that maps onto the official
//! error codes -40001 … -40011.
//!
//! ```
//! use wxgate::crypto::MsgCrypt;
//! use wxgate::message::Callback;
//! use wxgate::platform::Platform;
//! use wxgate::reply::Reply;
//!
//! let crypt = MsgCrypt::new("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")?;
//! let body = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>";
//! let opened = crypt.open_envelope("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", body)?;
//! let Callback::Message(msg) = Callback::parse(opened.frame.message_str()?)? else { unreachable!() };
//! assert_eq!(msg.text(), Some("hello"));
//!
//! let reply_xml = Reply::text("hi").render(&msg, Platform::Wecom, 1409659814)?;
//! let envelope = crypt.seal(&reply_xml, opened.key, 1409659814)?;
//! assert!(envelope.starts_with("<xml><Encrypt>"));
//! # Ok::<(), wxgate::ProtocolError>(())
//! ```

// The public surface: what a program embedding wxgate needs.
pub mod aibot;
pub mod aws_refs;
pub mod bot;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod gateway;
pub mod json_push;
pub mod lambda;
pub mod logging;
pub mod message;
pub mod metrics;
pub mod platform;
pub mod reply;
pub mod server;
pub mod store;
pub mod wechat;

/// Declares modules public with the `testing` feature (this crate's tests, benches and fuzz
/// targets), crate-private otherwise.
macro_rules! internal {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[cfg(feature = "testing")]
        pub mod $name;
        #[cfg(not(feature = "testing"))]
        mod $name;
    )*};
}

internal! {
    /// The command line.
    cli,
    /// Plays the platform: signed and encrypted callbacks, strict answer checks.
    simulate,
    /// The bounded XML reader and writer under `message` and `reply`.
    xml,
}

mod escape;
mod http;
mod url_policy;

pub use cli::{lambda_main, main as cli_main};
pub use error::{ErrorCode, ProtocolError};
