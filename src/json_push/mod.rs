//! The Mini Program's message push in JSON (小程序 消息推送, 数据格式: JSON).
//!
//! The platform writes the same fields as its XML, as a flat JSON object:
//! `{"ToUserName":"gh_…","FromUserName":"…","CreateTime":1482048670,"MsgType":"text",…}`.
//! Rather than a second inbound model, the object is converted into the XML document
//! [`Callback::parse`](crate::message::Callback::parse) reads ([`to_xml`]), so rules, dedup,
//! reply jobs and upstream bots see the message they see for an Official Account; the
//! rendered XML reply is converted back ([`reply_to_json`]).
//!
//! Both conversions are pure and bounded: the input is at most the gateway's body limit,
//! nesting stops at [`crate::xml::MAX_DEPTH`] and the leaves at [`crate::xml::MAX_FIELDS`],
//! and every refusal is a [`ProtocolError::Json`](crate::ProtocolError::Json) that quotes
//! no value.

mod inbound;
mod reply;

pub use inbound::{MAX_KEY_LEN, to_xml};
pub use reply::reply_to_json;
