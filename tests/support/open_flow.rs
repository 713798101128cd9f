//! An Open Platform component configured against the fake Open Platform ([`FakeOpen`]),
//! and the pushes and messages WeChat sends it.
#![allow(dead_code)]

use wxgate::clock::unix_now;
use wxgate::simulate::{self, Header, PlatformSim, SignedRequest};

use super::fake_open::{COMPONENT_APP_ID, COMPONENT_SECRET, FakeOpen};

/// The component's callback token.
pub const COMPONENT_TOKEN: &str = "componenttoken";
/// The component's EncodingAESKey.
pub const COMPONENT_KEY: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlk0";
/// An account that authorizes the component in the tests (not a release-test account).
pub const AUTHORIZER: &str = "wxauthorizer00001";
/// Its original id, as the fake names it by default.
pub const AUTHORIZER_GH: &str = "gh_authorizer00";
/// The upstream's signing secret.
pub const FORWARD_SECRET: &str = "open-forward-secret-0123";

/// A config with the component `comp` on the fake (`[api]` and its login pages), served at
/// `public_url`; `gateway` is the `[gateway]` body, `reply` the `[apps.reply]` body.
pub fn component_config(fake: &FakeOpen, public_url: &str, gateway: &str, reply: &str) -> String {
    let api = fake.url();
    format!(
        r#"
[gateway]
{gateway}

[api]
mp_base_url = "{api}"
wecom_base_url = "{api}"
component_login_page = "{api}/cgi-bin/componentloginpage"
component_bind_page = "{api}/wxaopen/safe/bindcomponent"

[[apps]]
name = "comp"
platform = "open"
app_id = "{COMPONENT_APP_ID}"
token = "{COMPONENT_TOKEN}"
encoding_aes_key = "{COMPONENT_KEY}"
secret = "{COMPONENT_SECRET}"
public_url = "{public_url}"
[apps.reply]
{reply}
"#
    )
}

/// The ticket push WeChat sends every ten minutes.
pub fn ticket_push(sim: &PlatformSim, ticket: &str, create_time: u64) -> SignedRequest {
    let xml = simulate::verify_ticket_xml(COMPONENT_APP_ID, create_time, ticket);
    sim.post(&xml, unix_now(), &nonce()).unwrap()
}

/// An `authorized` (or `updateauthorized`) push.
pub fn authorized_push(
    sim: &PlatformSim,
    info_type: &str,
    authorizer: &str,
    code: &str,
    create_time: u64,
) -> SignedRequest {
    let xml = simulate::authorized_xml(COMPONENT_APP_ID, create_time, info_type, authorizer, code);
    sim.post(&xml, unix_now(), &nonce()).unwrap()
}

/// An `unauthorized` push.
pub fn unauthorized_push(sim: &PlatformSim, authorizer: &str, create_time: u64) -> SignedRequest {
    let xml = simulate::unauthorized_xml(COMPONENT_APP_ID, create_time, authorizer);
    sim.post(&xml, unix_now(), &nonce()).unwrap()
}

/// A text from `from` to the account `to_gh`, posted to the account's message URL.
pub fn text_to(
    sim: &PlatformSim,
    to_gh: &str,
    from: &str,
    text: &str,
    msg_id: u64,
) -> SignedRequest {
    let header = Header {
        to: to_gh,
        from,
        create_time: unix_now(),
        agent_id: None,
    };
    sim.post(
        &simulate::text_xml(&header, text, msg_id),
        unix_now(),
        &nonce(),
    )
    .unwrap()
}

/// An event from `from` to the account `to_gh`.
pub fn event_to(sim: &PlatformSim, to_gh: &str, from: &str, event: &str) -> SignedRequest {
    let header = Header {
        to: to_gh,
        from,
        create_time: unix_now(),
        agent_id: None,
    };
    sim.post(
        &simulate::event_xml(&header, event, None),
        unix_now(),
        &nonce(),
    )
    .unwrap()
}

/// A fresh nonce.
pub fn nonce() -> String {
    format!("{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    n ^ u64::from(std::process::id()) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
}

/// `&amp;` and friends back to characters (the page's links are HTML-escaped).
pub fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `href` of the element with `id` in a page.
pub fn href_of(page: &str, id: &str) -> Option<String> {
    let pattern = format!("id=\"{id}\" href=\"");
    let start = page.find(&pattern)? + pattern.len();
    let end = start + page[start..].find('"')?;
    Some(unescape(&page[start..end]))
}
