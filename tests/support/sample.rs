//! The official sample code's public test values, the app the library
//! configures with them ([`OFFICIAL_SAMPLE_APP`], `demo`), and the messages the tests send:
//! one place for the values, so no test spells them out again.
#![allow(dead_code)]

use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::message::Callback;
use wxgate::simulate::{Header, PlatformSim, SignedRequest, text_xml};
use wxgate::store::dedup_key;

pub use wxgate::simulate::OFFICIAL_SAMPLE_APP;

/// The sample's callback token.
pub const TOKEN: &str = "QDG6eK";
/// The sample's EncodingAESKey.
pub const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
/// The sample's corp id, the receive id of its frames.
pub const CORP_ID: &str = "wx5823bf96d3bd56c7";
/// The sample app's AgentId.
pub const AGENT_ID: u64 = 218;

/// [`OFFICIAL_SAMPLE_APP`] with `gateway` as the body of its `[gateway]` table
/// (`"budget_ms = 300"`, or `""` for the defaults).
pub fn sample_config_text(gateway: &str) -> String {
    format!("[gateway]\n{gateway}\n{OFFICIAL_SAMPLE_APP}")
}

/// [`sample_config_text`], parsed.
pub fn sample_config(gateway: &str) -> Config {
    Config::parse(&sample_config_text(gateway)).unwrap()
}

/// The platform, played for the `demo` app of [`OFFICIAL_SAMPLE_APP`].
pub fn sample_sim() -> PlatformSim {
    sim_of(&sample_config(""), "demo")
}

/// The platform, played for `app` of `config`.
pub fn sim_of(config: &Config, app: &str) -> PlatformSim {
    PlatformSim::new(
        config
            .app(app)
            .unwrap_or_else(|| panic!("no app {app:?} in the config")),
    )
    .unwrap()
}

/// An `[[apps]]` table of a WeCom app `name` on the sample's corp id, token and key, with
/// `extra` lines (`agent_id = 218`, `[apps.reply]` …) after them.
pub fn wecom_app(name: &str, extra: &str) -> String {
    format!(
        "[[apps]]\nname = \"{name}\"\nplatform = \"wecom\"\ncorp_id = \"{CORP_ID}\"\n\
         token = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\n{extra}"
    )
}

/// The header of a message to `to` (a corp id, or an account's `gh_…` id) from `from`,
/// created now.
pub fn header<'a>(to: &'a str, from: &'a str, agent_id: Option<u64>) -> Header<'a> {
    Header {
        to,
        from,
        create_time: unix_now(),
        agent_id,
    }
}

/// The header of a message from `from` to the WeCom app `sim` plays (its corp id and
/// AgentId), created now.
pub fn wecom_header<'a>(sim: &'a PlatformSim, from: &'a str) -> Header<'a> {
    header(sim.receive_id(), from, sim.agent_id())
}

/// A text message from `lisi` to the WeCom app `sim` plays, signed and encrypted now with
/// `nonce`.
pub fn text_request(sim: &PlatformSim, text: &str, msg_id: u64, nonce: &str) -> SignedRequest {
    sim.post(
        &text_xml(&wecom_header(sim, "lisi"), text, msg_id),
        unix_now(),
        nonce,
    )
    .unwrap()
}

/// The dedup record key of message `xml` to `app`: the same for every delivery of it.
pub fn key_of(app: &str, xml: &str) -> String {
    dedup_key(app, Callback::parse(xml).unwrap().dedup_key().as_str())
}
