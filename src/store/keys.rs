//! The items' partition keys, assembled here only: a callback's dedup key, a plaintext
//! signature's binding, a token's scope, the Open Platform's tickets, authorizations and
//! throttling leases; and the fingerprint that binds a value without storing it.

/// The item key of a callback's dedup record: per app, then the message's own key.
pub fn dedup_key(app: &str, message_key: &str) -> String {
    format!("dedup#{app}#{message_key}")
}

/// The dedup key of an AI bot message: by its `msgid`, the same on every delivery. An AI
/// bot stream's snapshot lives on this record, so a stream id names it.
pub fn aibot_key(app: &str, msgid: &str) -> String {
    bounded(app, dedup_key(app, &format!("aibot|{msgid}")))
}

/// The longest dedup key written as it is; a longer one (a sender, EventKey or account id
/// of abnormal length) is written as its SHA-256, so no key comes near DynamoDB's 2048-byte
/// limit and every callback is de-duplicated, whatever its fields hold.
pub const MAX_DEDUP_KEY_LEN: usize = 512;

/// The dedup key of one callback to `app`: the same for every delivery of it.
///
/// A message to an Open Platform component (`open_platform_message`) is scoped by the
/// authorized account as the signed message names it (`ToUserName`, the account's original
/// id), never by the AppID in the URL, which nothing signs: a signed message replayed to
/// another account's URL is the same callback, answered from its record.
pub fn callback_key(
    app: &str,
    open_platform_message: bool,
    message: &crate::message::Message,
) -> String {
    let message_key = message.dedup_key();
    let key = if open_platform_message {
        dedup_key(
            &format!("{app}/{}", message.to_user_name),
            message_key.as_str(),
        )
    } else {
        dedup_key(app, message_key.as_str())
    };
    bounded(app, key)
}

/// `key` as it is up to [`MAX_DEDUP_KEY_LEN`], else `app`'s key of its SHA-256.
fn bounded(app: &str, key: String) -> String {
    if key.len() <= MAX_DEDUP_KEY_LEN {
        return key;
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    dedup_key(app, &format!("sha256|{}", hex::encode(digest)))
}

/// What identifies a value in the store without holding it (a token, a request body): the
/// first 128 bits of its SHA-256, in hex.
pub fn fingerprint(value: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(value)[..16])
}

/// The item key binding a signature of `app` to the body it was first seen with.
pub fn signature_key(app: &str, signature: &str) -> String {
    format!("sig#{app}#{}", signature.to_ascii_lowercase())
}

/// The item key of an access token. `scope` names the credentials it was fetched with
/// (see `wechat::TokenSource::scope`), so apps sharing credentials share one token.
pub fn token_key(scope: &str) -> String {
    format!("token#{scope}")
}

/// The item key of a component's verify ticket.
pub fn ticket_key(component_app_id: &str) -> String {
    format!("ticket#{component_app_id}")
}

/// The item key of one account's authorization of a component.
pub fn authorization_key(component_app_id: &str, authorizer_app_id: &str) -> String {
    format!("authz#{component_app_id}#{authorizer_app_id}")
}

/// The item key of the lease that throttles a component's ticket push requests for the
/// fleet (a token-lease item that is never released).
pub fn ticket_push_key(component_app_id: &str) -> String {
    format!("push#{component_app_id}")
}

/// The item key of the lease that throttles recovering one authorizer's refresh token.
pub fn recovery_key(component_app_id: &str, authorizer_app_id: &str) -> String {
    format!("recover#{component_app_id}#{authorizer_app_id}")
}

/// What every authorization key of a component starts with.
pub fn authorization_prefix(component_app_id: &str) -> String {
    format!("authz#{component_app_id}#")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn message(to: &str, from: &str, event_key: &str) -> Message {
        Message::parse(&format!(
            "<xml><ToUserName>{to}</ToUserName><FromUserName>{from}</FromUserName>\
             <CreateTime>1</CreateTime><MsgType>event</MsgType><Event>CLICK</Event>\
             <EventKey>{event_key}</EventKey></xml>"
        ))
        .unwrap()
    }

    #[test]
    fn open_platform_messages_are_scoped_by_the_signed_account_not_the_url() {
        let m = message("gh_account", "o1", "K");
        assert_eq!(
            callback_key("comp", true, &m),
            "dedup#comp/gh_account#evt|o1|1|click|K|"
        );
        assert_eq!(
            callback_key("demo", false, &m),
            "dedup#demo#evt|o1|1|click|K|"
        );
    }

    #[test]
    fn long_keys_are_hashed_stably_and_stay_short() {
        let long = message("gh_a", &"o".repeat(300), &"k".repeat(3000));
        let key = callback_key("demo", false, &long);
        assert!(
            key.starts_with("dedup#demo#sha256|") && key.len() < 100,
            "{key}"
        );
        assert_eq!(
            key,
            callback_key("demo", false, &long),
            "the same for every delivery"
        );
        let other = message("gh_a", &"o".repeat(300), &format!("{}x", "k".repeat(2999)));
        assert_ne!(key, callback_key("demo", false, &other));
        let short = message("gh_a", "o1", "k");
        assert!(callback_key("demo", false, &short).len() <= MAX_DEDUP_KEY_LEN);
    }

    #[test]
    fn open_platform_keys_never_collide_with_other_items() {
        assert_eq!(ticket_key("wxc"), "ticket#wxc");
        assert_eq!(authorization_key("wxc", "wxa"), "authz#wxc#wxa");
        assert!(authorization_key("wxc", "wxa").starts_with(&authorization_prefix("wxc")));
    }
}
