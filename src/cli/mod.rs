//! The command line: `serve`, `send`, `notify`, `check`, `jobs`, and the Lambda entry point.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, Parser, Subcommand};

use crate::bot::ConfigBot;
use crate::clock::unix_now;
use crate::config::{CONFIG_ENV, Config, ConfigError, StorePlan};
use crate::crypto::fresh_nonce;
use crate::gateway::Gateway;
use crate::platform::Platform;
use crate::simulate::{self, Answer, Header, PlatformSim, SignedRequest};
use crate::store::Backend;
use crate::wechat::{
    ApiError, Article, Messenger, MpMessage, SendError, SendReceipt, TextCard, TokenError,
    WecomMessage,
};

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

// After the macros, which it uses.
mod jobs;

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
    /// List the reply jobs kept in the DynamoDB table (deferred replies in Lambda): state,
    /// when, app, message key, and why a failed one failed. No message contents. Exits 1
    /// when the table cannot be read, 2 for config errors.
    Jobs(jobs::JobsArgs),
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    /// The config file with the app's token and key [default: $WXGATE_CONFIG, else ./wxgate.toml]
    #[arg(long)]
    config: Option<PathBuf>,
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// The app to send to.
    #[arg(long)]
    app: String,
    /// The sender (UserID / OpenID).
    #[arg(long, default_value = "wxgate-cli")]
    from: String,
    /// MP: the account's original id (ToUserName).
    #[arg(long, default_value = "gh_wxgate")]
    to: String,
    /// MP: send in plaintext mode even if the app has a key.
    #[arg(long)]
    plaintext: bool,
    /// Open Platform: the authorized account's AppID (the message URL's `$APPID$`).
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
    /// The text (the description of a text card or news article).
    text: String,
}

#[derive(Debug, Subcommand)]
enum SendWhat {
    /// URL verification (what the console does when the callback URL is saved).
    Verify,
    /// A text message.
    Text {
        /// The text.
        text: String,
    },
    /// An event (subscribe, CLICK, enter_agent, …).
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
}

/// Runs the command line; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, addr } => serve(config, addr),
        Command::Send(args) => send(&args),
        Command::Notify(args) => notify(&args),
        Command::Check { config } => check(config),
        Command::Jobs(args) => jobs::run(&args),
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

fn load(config: Option<PathBuf>) -> Result<Config, ConfigError> {
    Config::discover(config.as_deref())
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

fn check(config: Option<PathBuf>) -> ExitCode {
    let config = match load(config) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let plan = match config.store.plan_from_env() {
        Ok(plan) => plan,
        Err(e) => return config_failure(&e),
    };
    let built = ConfigBot::from_config(&config)
        .and_then(|rules| Gateway::with_store(&config, rules, Arc::new(Backend::default())));
    if let Err(e) = built {
        return config_failure(&e);
    }
    out!(
        "config ok: {} app(s), {}",
        config.apps.len(),
        describe(&plan)
    );
    for app in &config.apps {
        // The upstream's host only: its path may carry a key.
        let forward = app.reply.forward.as_deref().map_or(String::new(), |url| {
            let host = url.split("://").nth(1).unwrap_or(url).split('/').next();
            format!(
                "  (forward → {}; {})",
                host.unwrap_or_default(),
                late_replies(app)
            )
        });
        out!(
            "  {:<6} {:<16} {}{forward}",
            app.platform.as_str(),
            app.name,
            app.route()
        );
    }
    for app in config
        .apps
        .iter()
        .filter(|a| a.platform == Platform::Mp && a.encoding_aes_key.is_none())
    {
        eout!(
            "warning: app \"{}\" is in plaintext mode: its messages are not encrypted and their bodies not signed, so a signed URL that leaks (a proxy's or an access log) lets anyone post messages as any follower within gateway.replay_window_secs (each signature is bound to its first body). Set the account to safe mode (安全模式) and configure encoding_aes_key.",
            app.name
        );
    }
    ExitCode::SUCCESS
}

/// How the store is described to a person.
fn describe(plan: &StorePlan) -> String {
    match plan {
        StorePlan::Memory => crate::store::describe_memory(),
        StorePlan::Dynamodb { table } => crate::store::describe_table(table),
    }
}

/// What becomes of an upstream's reply that misses the budget, for `check`.
fn late_replies(app: &crate::config::AppConfig) -> &'static str {
    let plaintext = app.platform == Platform::Mp && app.encoding_aes_key.is_none();
    if plaintext && !app.plaintext_late_replies {
        return "a reply later than the budget is dropped: plaintext mode signs no body (plaintext_late_replies = true sends it anyway)";
    }
    match (app.platform, app.secret.is_some(), app.agent_id.is_some()) {
        (Platform::Wecom, true, true) | (Platform::Mp, true, _) => {
            "a reply later than the budget is sent as an active message"
        }
        (Platform::Wecom, _, _) => {
            "a reply later than the budget is dropped: sending it actively needs secret and agent_id"
        }
        (Platform::Mp, false, _) => {
            "a reply later than the budget is dropped: sending it actively needs secret"
        }
        (Platform::Open, _, _) => "a reply later than the budget is dropped",
    }
}

fn serve(config: Option<PathBuf>, addr: SocketAddr) -> ExitCode {
    crate::logging::init_text();
    let config = match load(config) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let runtime = match runtime(Threads::All) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        // A server keeps running after it answers, so a bot slower than the budget can
        // finish and have its reply sent as an active message.
        let gateway = match Gateway::open_config(&config).await {
            Ok(g) => g.with_deferred_replies(),
            Err(e) => return config_failure(&e),
        };
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eout!("wxgate: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let bound = listener.local_addr().unwrap_or(addr);
        // The first stdout line is the base URL; scripts and tests read it. Write errors
        // (a reader that went away) must not stop the server.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "wxgate serving http://{bound} ({})",
            gateway.store().describe()
        );
        for app in &config.apps {
            let suffix = if app.platform == Platform::Open {
                "  (+ /{authorizer_appid} for messages)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {:<6} {:<16} http://{bound}{}{suffix}",
                app.platform.as_str(),
                app.name,
                app.route()
            );
        }
        let _ = out.flush();
        drop(out);
        match crate::server::serve(Arc::new(gateway), listener, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eout!("wxgate: server failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}

fn nonce() -> String {
    String::from_utf8_lossy(&fresh_nonce()[..10]).into_owned()
}

fn build_request(args: &SendArgs, sim: &PlatformSim) -> Result<SignedRequest, String> {
    let now = args.timestamp.unwrap_or_else(unix_now);
    let to = match sim.platform() {
        Platform::Wecom => sim.receive_id(),
        Platform::Mp | Platform::Open => args.to.as_str(),
    };
    let header = Header {
        to,
        from: &args.from,
        create_time: now,
        agent_id: sim.agent_id(),
    };
    let msg_id = now * 1000 + u64::from(fresh_nonce()[0]);
    let result = match &args.what {
        SendWhat::Verify => {
            let echo = format!("{}{}", now, u32::from_le_bytes(*b"wxgt"));
            sim.verify_url(&echo, now, &nonce())
        }
        SendWhat::Text { text } => {
            sim.post(&simulate::text_xml(&header, text, msg_id), now, &nonce())
        }
        SendWhat::Event { name, key } => sim.post(
            &simulate::event_xml(&header, name, key.as_deref()),
            now,
            &nonce(),
        ),
        SendWhat::Location => sim.post(
            &simulate::location_xml(&header, 23.137_466, 113.352_425),
            now,
            &nonce(),
        ),
        SendWhat::Ticket { ticket } => {
            if sim.platform() != Platform::Open {
                return Err("`ticket` is for Open Platform apps".into());
            }
            sim.post(
                &simulate::verify_ticket_xml(sim.receive_id(), now, ticket),
                now,
                &nonce(),
            )
        }
    };
    result.map_err(|e| e.to_string())
}

fn send(args: &SendArgs) -> ExitCode {
    let config = match load(args.config.clone()) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let app = match app_named(&config, &args.app) {
        Ok(app) => app,
        Err(code) => return code,
    };
    let sim = match PlatformSim::new(app) {
        Ok(sim) => sim
            .plaintext(args.plaintext)
            .authorizer(args.authorizer.clone()),
        Err(e) => return config_failure(&e),
    };
    let request = match build_request(args, &sim) {
        Ok(r) => r,
        Err(e) => {
            eout!("wxgate: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let url = format!(
        "{}{}",
        args.url.trim_end_matches('/'),
        request.path_and_query()
    );
    eout!("→ {} {}", request.method, url);
    let (status, body) = match post(&request, &url) {
        Ok(answer) => answer,
        Err(e) => {
            eout!("wxgate: request failed: {e}");
            return ExitCode::from(EXIT_REPLY_FAILED);
        }
    };
    match sim.check(&request, status, &body) {
        Ok(Answer::Verified(echo)) => {
            eout!("← {status}: URL verification passed");
            out!("{echo}");
            ExitCode::SUCCESS
        }
        Ok(Answer::Empty) => {
            eout!("← {status}: empty answer (no reply)");
            ExitCode::SUCCESS
        }
        Ok(Answer::Reply(xml)) => {
            let how = if request.query.contains("msg_signature=") {
                "encrypted reply, signature and receive id verified"
            } else {
                "plaintext reply"
            };
            eout!("← {status}: {how}");
            out!("{xml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eout!("← {e}");
            ExitCode::from(EXIT_REPLY_FAILED)
        }
    }
}

/// Sends the request; the status and body.
fn post(request: &SignedRequest, url: &str) -> Result<(u16, String), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result: Result<_, reqwest::Error> = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let builder = if request.method == http::Method::GET {
            client.get(url)
        } else {
            client
                .post(url)
                .header(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(request.body.clone())
        };
        let response = builder.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    });
    result.map_err(|e| {
        format!(
            "{e} ({})",
            std::error::Error::source(&e).map_or(String::new(), |s| s.to_string())
        )
    })
}

/// What `notify` sends, for the app's platform.
enum Outgoing {
    Wecom {
        agent_id: u64,
        message: WecomMessage,
    },
    Mp(MpMessage),
}

impl Outgoing {
    fn msg_type(&self) -> &'static str {
        match self {
            Self::Wecom { message, .. } => message.msg_type(),
            Self::Mp(message) => message.msg_type(),
        }
    }
}

/// The message the arguments describe, for an app of `platform` with `agent_id`.
fn outgoing(
    args: &NotifyArgs,
    app: &str,
    platform: Platform,
    agent_id: Option<u64>,
) -> Result<Outgoing, String> {
    let article = |title: &str| {
        let article = Article::new(title, args.url.clone().unwrap_or_default());
        let article = match args.text.as_str() {
            "" => article,
            text => article.description(text),
        };
        match &args.picurl {
            Some(picurl) => article.picurl(picurl),
            None => article,
        }
    };
    match platform {
        Platform::Wecom => {
            let agent_id = agent_id.ok_or_else(|| {
                format!(
                    "app \"{app}\" has no agent_id: set the app's AgentId (应用管理 → the app) in the config"
                )
            })?;
            let message = if args.markdown {
                WecomMessage::markdown(&args.text)
            } else if let Some(title) = &args.textcard {
                WecomMessage::TextCard(TextCard {
                    title: title.clone(),
                    description: args.text.clone(),
                    url: args.url.clone().unwrap_or_default(),
                    btntxt: args.btntxt.clone(),
                })
            } else if let Some(title) = &args.news {
                WecomMessage::news(vec![article(title)])
            } else {
                WecomMessage::text(&args.text)
            };
            Ok(Outgoing::Wecom { agent_id, message })
        }
        Platform::Mp => {
            if args.markdown || args.textcard.is_some() {
                return Err(format!(
                    "app \"{app}\" is an Official Account: customer messages are text or --news, not --markdown or --textcard"
                ));
            }
            Ok(Outgoing::Mp(match &args.news {
                Some(title) => MpMessage::news(article(title)),
                None => MpMessage::text(&args.text),
            }))
        }
        Platform::Open => Err(format!(
            "app \"{app}\" is an Open Platform app: notify sends with WeCom or Official Account credentials"
        )),
    }
}

/// A hint for errcodes a person sending by hand is likely to meet.
fn errcode_hint(errcode: i64) -> Option<&'static str> {
    Some(match errcode {
        -1 => "the platform stayed busy through the retries; try again later",
        40001 | 40013 | 40125 => "check the app's corp_id / app_id and secret",
        45009 => "the API's rate limit is reached (not retried); try again later",
        45015 => "the follower has not messaged the account in the last 48 hours (or unfollowed)",
        45047 => "too many customer messages to this follower since their last message",
        48001 | 48002 => "the account lacks this API's permission",
        60020 => "this machine's IP is not in the app's trusted IPs (企业可信IP)",
        81013 => "no valid recipient: not a member, or outside the app's visible range",
        _ => return None,
    })
}

/// `wxgate notify`: sends, prints the msgid, and exits 0, 1 (platform or network) or 2
/// (config or usage).
fn notify(args: &NotifyArgs) -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        crate::logging::init_text();
    }
    let config = match load(args.config.clone()) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let app = match app_named(&config, &args.app) {
        Ok(app) => app,
        Err(code) => return code,
    };
    let outgoing = match outgoing(args, &app.name, app.platform, app.agent_id) {
        Ok(o) => o,
        Err(e) => {
            eout!("wxgate: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match runtime(Threads::One) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        // The configured store: with [store] or WXGATE_TABLE pointing at DynamoDB, the token
        // is the one the deployed functions share.
        let gateway = match Gateway::open_config(&config).await {
            Ok(g) => g,
            Err(e) => return config_failure(&e),
        };
        let Some(source) = gateway.token_source(&app.name) else {
            eout!(
                "wxgate: app \"{}\" has no secret: set `secret` (the app's Secret / AppSecret) to call platform APIs",
                app.name
            );
            return ExitCode::from(EXIT_CONFIG);
        };
        let tokens = match gateway.tokens() {
            Ok(t) => t,
            Err(e) => return send_failure(&SendError::Token(e)),
        };
        let messenger = Messenger::new(tokens);
        let result = match &outgoing {
            Outgoing::Wecom { agent_id, message } => {
                messenger
                    .send_wecom(source, *agent_id, &args.to, message)
                    .await
            }
            Outgoing::Mp(message) => messenger.send_mp(source, &args.to, message).await,
        };
        match result {
            Ok(receipt) => {
                sent(&receipt, &outgoing, &app.name, app.platform);
                ExitCode::SUCCESS
            }
            Err(e) => send_failure(&e),
        }
    })
}

/// The msgid on stdout, a summary on stderr.
fn sent(receipt: &SendReceipt, outgoing: &Outgoing, app: &str, platform: Platform) {
    if let Some(msgid) = &receipt.msgid {
        out!("{msgid}");
    }
    let retries = match receipt.attempts {
        0 | 1 => String::new(),
        n => format!(", {n} attempts"),
    };
    let msgid = receipt
        .msgid
        .as_deref()
        .map_or(String::new(), |id| format!(", msgid {id}"));
    eout!(
        "sent {} with {platform} app \"{app}\"{msgid}{retries}",
        outgoing.msg_type()
    );
    if !receipt.invalid_users.is_empty() {
        eout!(
            "not delivered to {} invalid recipient(s): {}",
            receipt.invalid_users.len(),
            receipt.invalid_users.join("|")
        );
    }
}

/// Reports a failed send; exit 2 for what the config or the arguments must fix, else 1.
fn send_failure(err: &SendError) -> ExitCode {
    let code = match err {
        SendError::Invalid(_) | SendError::Token(TokenError::NoCredentials(_)) => EXIT_CONFIG,
        SendError::Api(_) | SendError::Token(_) => EXIT_REPLY_FAILED,
    };
    match err.api_error() {
        Some(ApiError::Platform { errcode, errmsg }) => {
            let during = match err {
                SendError::Token(_) => "fetching the access token: ",
                _ => "",
            };
            eout!("wxgate: message not sent: {during}errcode {errcode}, errmsg \"{errmsg}\"");
            if let Some(hint) = errcode_hint(*errcode) {
                eout!("  {hint}");
            }
        }
        _ => eout!("wxgate: {err}"),
    }
    ExitCode::from(code)
}

/// The environment variable that turns reply jobs on in the Lambda function. template.yaml
/// sets it to `stream` together with the stream mapping that runs the jobs; without the
/// mapping a job would never run, so it is off unless set.
pub const REPLY_JOBS_ENV: &str = "WXGATE_REPLY_JOBS";

/// Turns reply jobs on when [`REPLY_JOBS_ENV`] is `stream` and the store is DynamoDB (the
/// table whose stream runs them).
fn with_reply_jobs_from_env(gateway: Gateway) -> Gateway {
    match std::env::var(REPLY_JOBS_ENV).ok().as_deref() {
        None | Some("" | "off") => gateway,
        Some("stream") if gateway.store().kind() == "dynamodb" => {
            tracing::info!("slow replies run as jobs from the table's stream");
            gateway.with_reply_jobs()
        }
        Some("stream") => {
            tracing::warn!(
                "{REPLY_JOBS_ENV}=stream needs the DynamoDB store; slow replies are answered within the budget or not at all"
            );
            gateway
        }
        Some(other) => {
            tracing::warn!(
                value = other,
                "{REPLY_JOBS_ENV} is `stream` or `off`; reply jobs stay off"
            );
            gateway
        }
    }
}

/// The Lambda entry point: config from `WXGATE_CONFIG`, JSON logs, one event at a time
/// (a callback, or a batch of reply jobs from the table's stream).
pub fn lambda_main() -> ExitCode {
    crate::logging::init_json();
    let config = match std::env::var(CONFIG_ENV)
        .map_err(|_| ConfigError::Missing)
        .and_then(|value| Config::from_env_value(&value))
    {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(cause = %e, "cannot start: bad configuration");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Lambda sends one request at a time to an instance: one thread is enough and starts
    // fastest.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(cause = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    // The store client is built here, in the init phase, without a request: the first
    // callback opens the connection it needs.
    let gateway = match runtime.block_on(Gateway::open_config(&config)) {
        Ok(gateway) => gateway,
        Err(e) => {
            tracing::error!(cause = %e, "cannot start: bad configuration");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let gateway = with_reply_jobs_from_env(gateway);
    match runtime.block_on(crate::lambda::run(Arc::new(gateway))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(cause = %e, "the Lambda runtime loop stopped");
            ExitCode::FAILURE
        }
    }
}
