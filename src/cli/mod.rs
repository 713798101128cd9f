//! The command line: `serve`, `send`, `notify`, `check`, `jobs`, `open` and `doctor`, one
//! module each, and the Lambda entry point (`lambda_main`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser, Subcommand};

use crate::config::{Config, ConfigError, ConfigSource};

/// Exit code for a reply that does not verify (or an HTTP failure), and for a message the
/// platform refused or could not be reached for.
const EXIT_REPLY_FAILED: u8 = 1;
/// Exit code for configuration and usage errors.
const EXIT_CONFIG: u8 = 2;

/// wxgate: a gateway for WeChat Work (WeCom), Official Account and Open Platform callbacks.
/// `println!` that ignores a closed stdout (`wxgate check | head -1`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! eout {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

// After the macros, which they use.
mod check;
mod doctor;
mod jobs;
mod lambda_main;
mod notify;
mod open;
mod send;
mod send_aibot;
mod send_post;
mod send_url;
mod serve;

pub use lambda_main::lambda_main;

#[derive(Debug, Parser)]
#[command(name = "wxgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway locally until Ctrl-C: the embedded store, or DynamoDB when the config's
    /// [store] or $WXGATE_TABLE says so.
    Serve {
        /// The config file [default: $WXGATE_CONFIG, else ./wxgate.toml]
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where to listen; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Serve Prometheus metrics at http://ADDR/metrics, on a listener of their own
        /// [default: $WXGATE_METRICS_ADDR, else off]
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<SocketAddr>,
    },
    /// Play the platform: sign and encrypt a callback for an app, send it, check and print
    /// the answer. Exits 1 when the answer would not pass the platform's checks.
    Send(SendArgs),
    /// Send an active message with an app's credentials: a WeCom app message to members, or
    /// an Official Account customer message to a follower. Prints the msgid. Exits 1 when the
    /// platform refuses it or cannot be reached, 2 for config and usage errors.
    Notify(NotifyArgs),
    /// Check a config file (secrets, keys, replies), say which store it uses, and print the
    /// callback routes.
    Check {
        /// The config file [default: $WXGATE_CONFIG, else ./wxgate.toml]
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Open Platform operations: list authorizations, print an authorization link, ask
    /// for a ticket push, refresh or recover an authorizer's token, show a component's state.
    Open(open::OpenArgs),
    /// List the reply jobs kept in the DynamoDB table (deferred replies in Lambda): state,
    /// when, app, message key, and why a failed one failed. No message contents. Exits 1
    /// when the table cannot be read, 2 for config errors.
    Jobs(jobs::JobsArgs),
    /// Check a setup end to end and print a checklist, each failure with its cause and fix:
    /// the config and keys, the URLs for the console, with --url the deployed URL
    /// (reachability, TLS, URL verification, a message round trip), a token fetch with each
    /// secret, with --to a test message. Exits 1 when a check fails, 2 for usage errors.
    Doctor(doctor::DoctorArgs),
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    /// The config file with the app's token and key [default: $WXGATE_CONFIG, else ./wxgate.toml]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the gateway is: its base URL (`http://127.0.0.1:3000`, or an API Gateway stage
    /// such as `https://abc.execute-api.ap-east-1.amazonaws.com/Prod`), to which the app's
    /// route (`/wecom/demo`) is appended, or the app's callback URL itself (one ending with
    /// `/wecom/demo`), used as it is. Without a scheme, a loopback address
    /// (`127.0.0.1:3000`, `localhost:3000`) means http://; any other host needs http:// or
    /// https:// written out.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// The app to send to.
    #[arg(long)]
    app: String,
    /// The sender (UserID / OpenID).
    #[arg(long, default_value = "wxgate-cli")]
    from: String,
    /// MP: the account's original id (ToUserName) [default: gh_wxgate]. Refused for AI bot
    /// apps, which have no account id.
    #[arg(long)]
    to: Option<String>,
    /// MP: send in plaintext mode even if the app has a key.
    #[arg(long)]
    plaintext: bool,
    /// AI bot apps only: send in this group chat (chattype `group`) instead of a one-to-one
    /// chat.
    #[arg(long, value_name = "CHATID")]
    chat: Option<String>,
    /// AI bot apps: the pause between the refresh callbacks that follow an unfinished
    /// stream, in milliseconds (the platform asks about once a second).
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    refresh_ms: u64,
    /// AI bot apps: how long the refreshes go on, in seconds: the platform's window is six
    /// minutes after the message (shorter for tests).
    #[arg(long, value_name = "SECS", default_value_t = 360, hide = true,
          value_parser = clap::value_parser!(u64).range(1..=360))]
    stream_window_secs: u64,
    /// Open Platform apps only: the authorized account's AppID (the message URL's
    /// `$APPID$`). Refused for WeCom and Official Account apps.
    #[arg(long)]
    authorizer: Option<String>,
    /// The request's timestamp [default: now].
    #[arg(long)]
    timestamp: Option<u64>,
    #[command(subcommand)]
    what: SendWhat,
}

#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("kind").args(["markdown", "textcard", "news"])))]
#[command(group(ArgGroup::new("linked").args(["textcard", "news"])))]
struct NotifyArgs {
    /// The config file with the app's credentials [default: $WXGATE_CONFIG, else ./wxgate.toml]
    #[arg(long)]
    config: Option<PathBuf>,
    /// The app whose credentials send (a WeCom app needs `secret` and `agent_id`, an
    /// Official Account `secret` and `app_id`).
    #[arg(long)]
    app: String,
    /// WeCom: the member's UserID, several as `a|b|c`, or `@all`. Official Account: the
    /// follower's OpenID (who messaged the account within the last 48 hours).
    #[arg(long)]
    to: String,
    /// WeCom: send TEXT as markdown.
    #[arg(long)]
    markdown: bool,
    /// WeCom: a text card titled TITLE, with TEXT as its description; needs --url.
    #[arg(long, value_name = "TITLE", requires = "url")]
    textcard: Option<String>,
    /// A news article titled TITLE, with TEXT as its description (may be ""); needs --url.
    #[arg(long, value_name = "TITLE", requires = "url")]
    news: Option<String>,
    /// Where the text card or news article leads.
    #[arg(long, requires = "linked")]
    url: Option<String>,
    /// The text card's button text (4 characters at most).
    #[arg(long, requires = "textcard")]
    btntxt: Option<String>,
    /// The news article's picture.
    #[arg(long, requires = "news")]
    picurl: Option<String>,
    /// Open Platform: the authorized account to send as (its AppID); the message goes out
    /// as its customer message, with its authorizer token.
    #[arg(long)]
    authorizer: Option<String>,
    /// The text (the description of a text card or news article).
    text: String,
}

#[derive(Debug, Subcommand)]
enum SendWhat {
    /// URL verification (what the console does when the callback URL is saved).
    Verify,
    /// A text message. To an AI bot: the answer's stream is refreshed as the platform
    /// does, its text printed as it grows, until it finishes.
    Text {
        /// The text.
        text: String,
    },
    /// An event (subscribe, CLICK, enter_agent; for an AI bot enter_chat, feedback_event, …).
    Event {
        /// The event name.
        name: String,
        /// Its EventKey (menu key, QR scene).
        #[arg(long)]
        key: Option<String>,
    },
    /// A LOCATION report.
    Location,
    /// Open Platform: a component_verify_ticket push.
    Ticket {
        /// The ticket.
        #[arg(default_value = "ticket@@@wxgate-cli")]
        ticket: String,
    },
    /// Open Platform: an `authorized` push for the account --authorizer, with its code.
    Authorized {
        /// The authorization code (from the fake or a real authorization).
        code: String,
    },
    /// Open Platform: an `updateauthorized` push for the account --authorizer.
    Updateauthorized {
        /// The authorization code.
        code: String,
    },
    /// Open Platform: an `unauthorized` push (the account --authorizer withdrew).
    Unauthorized,
}

/// Runs the command line; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            addr,
            metrics_addr,
        } => serve::serve(config, addr, metrics_addr),
        Command::Send(args) => send::send(&args),
        Command::Notify(args) => notify::notify(&args),
        Command::Check { config } => check::check(config),
        Command::Jobs(args) => jobs::run(&args),
        Command::Open(args) => open::run(&args),
        Command::Doctor(args) => doctor::run(&args),
    }
}

/// The async runtime of a command: one thread for a one-shot command (starts fastest),
/// all cores for `serve`. A failure is said on stderr and is the command's exit.
fn runtime(threads: Threads) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        Threads::All => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build().map_err(|e| {
        eout!("wxgate: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}

/// How many threads a command's runtime has.
#[derive(Debug, Clone, Copy)]
enum Threads {
    One,
    All,
}

/// The config of a command: located as [`ConfigSource::locate`] says, with its references
/// to AWS read (no request when it has none).
fn load(config: Option<PathBuf>) -> Result<Config, ConfigError> {
    crate::aws_refs::load_blocking(ConfigSource::locate(config.as_deref())?)
}

/// The app called `name`, or the config-error exit after saying which apps there are.
fn app_named<'c>(config: &'c Config, name: &str) -> Result<&'c crate::config::AppConfig, ExitCode> {
    config.app(name).ok_or_else(|| {
        let names: Vec<&str> = config.apps.iter().map(|a| a.name.as_str()).collect();
        eout!(
            "wxgate: no app named \"{name}\" in the config (apps: {})",
            names.join(", ")
        );
        ExitCode::from(EXIT_CONFIG)
    })
}

fn config_failure(e: &ConfigError) -> ExitCode {
    eout!("wxgate: {e}");
    ExitCode::from(EXIT_CONFIG)
}
