//! A bot written in code: answers "time" with the server's clock, counts messages per
//! sender, and falls back to the config's `[apps.reply]` rules for everything else.
//!
//! ```sh
//! cargo run --example custom_bot -- examples/wxgate.toml 127.0.0.1:3000
//! wxgate send --config examples/wxgate.toml --app demo text time
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wxgate::bot::{Bot, BotError, ConfigBot, Inbound};
use wxgate::config::Config;
use wxgate::gateway::Gateway;
use wxgate::reply::Reply;

struct ClockBot {
    rules: ConfigBot,
    seen: Mutex<HashMap<String, u64>>,
}

impl Bot for ClockBot {
    async fn reply(&self, inbound: &Inbound<'_>) -> Result<Option<Reply>, BotError> {
        let message = inbound.message;
        let count = {
            let mut seen = self
                .seen
                .lock()
                .map_err(|_| BotError::new("the counter's lock is poisoned"))?;
            let n = seen.entry(message.from_user_name.clone()).or_default();
            *n += 1;
            *n
        };
        match message.text().map(str::trim) {
            Some("time") => Ok(Some(Reply::text(format!(
                "message #{count} from you; server time {}",
                wxgate::clock::unix_now()
            )))),
            // An await point is fine: the gateway's budget bounds the whole reply.
            _ => self.rules.reply(inbound).await,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    wxgate::logging::init_text();
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "examples/wxgate.toml".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let config = Config::load(path.as_ref())?;
    let bot = ClockBot {
        rules: ConfigBot::from_config(&config)?,
        seen: Mutex::default(),
    };
    let gateway = Arc::new(Gateway::builder(&config).bot(bot).build()?);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("custom bot serving http://{}", listener.local_addr()?);
    wxgate::server::serve(gateway, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
