//! Check 1: the app's keys have the shapes the consoles hand out, and its secrets can be read.
//! The config itself is parsed and the gateway built by what `wxgate check` runs
//! ([`super::super::check::offline_gateway`]); this adds what the consoles require beyond
//! what the gateway needs to start.

use super::report::Line;
use crate::config::AppConfig;
use crate::platform::Platform;
use crate::simulate::PlatformSim;

/// The consoles take a Token of 3 to 32 letters and digits (企业微信 "Token可由英文或数字组成，
/// 长度为3-32", 公众平台 "必须为英文或数字，长度为3-32字符").
const TOKEN_LEN: std::ops::RangeInclusive<usize> = 3..=32;

/// Corp ids and AppIDs are two letters and 16 hex digits: `ww…` or (older corps) `wx…` for
/// a corp, `wx…` for an AppID.
fn id_shape_ok(id: &str, prefixes: &[&str]) -> bool {
    id.len() == 18
        && id.is_ascii()
        && prefixes.iter().any(|p| id.starts_with(p))
        && id[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The app's keys line, and the simulator that plays its platform (for the later checks)
/// when they are usable.
pub(super) fn keys(app: &AppConfig) -> (Line, Option<PlatformSim>) {
    let what = format!("{}: keys", app.name);
    let secrets = match app.secrets() {
        Ok(s) => s,
        Err(e) => {
            return (
                Line::fail(
                    what,
                    e.to_string(),
                    "a secret reference (env:NAME) names a variable that is not set here",
                    "set the variable in this shell (the deployed function has its own environment) or write the value in the config",
                ),
                None,
            );
        }
    };
    let token = crate::config::secret::expose(&secrets.token);
    if !TOKEN_LEN.contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return (
            Line::fail(
                what,
                "token is not 3 to 32 letters and digits",
                "the console accepts only such a Token, so this one cannot be the console's (a paste with spaces, quotes or a different field?)",
                "copy the Token from the console's callback settings (接收消息 → API接收 / 服务器配置) into token",
            ),
            None,
        );
    }
    // The same checks the gateway makes when it starts: 43 base64 characters that decode
    // to a 32-byte AES key, a token it can sign with.
    let sim = match PlatformSim::new(app) {
        Ok(sim) => sim,
        Err(e) => {
            return (
                Line::fail(
                    what,
                    e.to_string(),
                    "the EncodingAESKey is not the 43 characters the console shows",
                    "copy the EncodingAESKey again from the console (all 43 characters, no '=' at the end)",
                ),
                None,
            );
        }
    };
    let (id_name, id, prefixes): (&str, &str, &[&str]) = match app.platform {
        Platform::Wecom => ("corp_id", app.corp_id.as_deref().unwrap_or(""), &["ww", "wx"]),
        Platform::Mp | Platform::Open => ("app_id", app.app_id.as_deref().unwrap_or(""), &["wx"]),
        // No id to check: the receive id is empty.
        Platform::Aibot => ("receive id", "", &[]),
    };
    // An MP app in plaintext mode without a secret needs no AppID.
    if !id.is_empty() && !id_shape_ok(id, prefixes) {
        let looks_like = match app.platform {
            Platform::Wecom => "ww (or wx) and 16 hex digits, as 我的企业 → 企业信息 → 企业ID shows it",
            Platform::Mp => "wx and 16 hex digits, as 设置与开发 → 基本配置 → AppID shows it",
            Platform::Open => "wx and 16 hex digits: the component's AppID (第三方平台 → 基本信息)",
            Platform::Aibot => "nothing: an AI bot has no id to set",
        };
        return (
            Line::fail(
                what,
                format!("{id_name} {id:?} is not an id's shape"),
                "the platform's ids are two letters and 16 hex digits; this looks like another field (the AgentId, a secret, the original id gh_…)",
                format!("set {id_name} to {looks_like}"),
            ),
            None,
        );
    }
    let key = if secrets.encoding_aes_key.is_some() {
        "EncodingAESKey 43 characters → 32-byte key"
    } else {
        "no EncodingAESKey (plaintext mode)"
    };
    let secret = if app.platform == Platform::Aibot {
        "no ids and no secret (an AI bot has none)"
    } else if secrets.secret.is_some() {
        "secret set"
    } else {
        "secret missing"
    };
    let id = if id.is_empty() {
        String::new()
    } else {
        format!(", {id_name} {id}")
    };
    (
        Line::ok(what, format!("token set, {key}{id}, {secret}")),
        Some(sim),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_two_letters_and_16_hex_digits() {
        assert!(id_shape_ok("wx5823bf96d3bd56c7", &["ww", "wx"]));
        assert!(id_shape_ok("ww0123456789ABCDEF", &["ww", "wx"]));
        assert!(!id_shape_ok("ww0123456789abcdef", &["wx"]));
        assert!(!id_shape_ok("1000002", &["ww", "wx"]));
        assert!(!id_shape_ok("wx5823bf96d3bd56c", &["wx"]));
        assert!(!id_shape_ok("wx5823bf96d3bd56cg", &["wx"]));
        assert!(!id_shape_ok("gh_0123456789abcd", &["wx"]));
    }
}
