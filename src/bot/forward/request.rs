//! The JSON body sent to an upstream.

use serde::Serialize;

use crate::bot::Inbound;
use crate::message::Message;
use crate::platform::Platform;

/// The JSON body sent to the upstream.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamRequest<'a> {
    /// The app's name.
    pub app: &'a str,
    /// `wecom`, `mp` or `open`.
    pub platform: Platform,
    /// Open Platform: the authorized account the message is for.
    pub authorizer_app_id: Option<&'a str>,
    /// The message or event.
    pub message: &'a Message,
    /// The same for every delivery of this callback (the platform retries), different for
    /// every other callback: the gateway's dedup key.
    pub id: String,
    /// `true` when the answer may be streamed ([`Upstream::ask_streaming`]); absent
    /// otherwise, so the body of a plain call is as it always was.
    ///
    /// [`Upstream::ask_streaming`]: super::Upstream::ask_streaming
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

impl<'a> UpstreamRequest<'a> {
    /// The request for one inbound message.
    pub fn new(inbound: &Inbound<'a>) -> Self {
        Self {
            app: inbound.app,
            platform: inbound.platform,
            authorizer_app_id: inbound.authorizer_app_id,
            message: inbound.message,
            id: inbound.id.to_owned(),
            stream: false,
        }
    }
}
