//! The command line: `serve`, `send`, `check`, and the Lambda entry point.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::bot::ConfigBot;
use crate::config::{CONFIG_ENV, Config, ConfigError, StorePlan};
use crate::crypto::fresh_nonce;
use crate::gateway::{Gateway, unix_now};
use crate::platform::Platform;
use crate::simulate::{self, Answer, Header, PlatformSim, SignedRequest};
use crate::store::Backend;

/// Exit code for a reply that does not verify (or an HTTP failure).
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
    /// Check a config file (secrets, keys, replies), say which store it uses, and print the
    /// callback routes.
    Check {
        /// The config file [default: $WXGATE_CONFIG, else ./wxgate.toml]
        #[arg(long)]
        config: Option<PathBuf>,
    },
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
        Command::Check { config } => check(config),
    }
}

fn load(config: Option<PathBuf>) -> Result<Config, ConfigError> {
    Config::discover(config.as_deref())
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
    let rules = ConfigBot::from_config(&config);
    if let Err(e) = Gateway::with_store(&config, rules, Arc::new(Backend::default())) {
        return config_failure(&e);
    }
    out!(
        "config ok: {} app(s), {}",
        config.apps.len(),
        describe(&plan)
    );
    for app in &config.apps {
        out!(
            "  {:<6} {:<16} {}",
            app.platform.as_str(),
            app.name,
            app.route()
        );
    }
    ExitCode::SUCCESS
}

/// How the store is described to a person.
fn describe(plan: &StorePlan) -> String {
    match plan {
        StorePlan::Memory => "embedded store".into(),
        StorePlan::Dynamodb { table } => format!("DynamoDB table {table}"),
    }
}

fn serve(config: Option<PathBuf>, addr: SocketAddr) -> ExitCode {
    crate::logging::init_text();
    let config = match load(config) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let plan = match config.store.plan_from_env() {
        Ok(plan) => plan,
        Err(e) => return config_failure(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eout!("wxgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let gateway = match Gateway::open_config(&config).await {
            Ok(g) => g,
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
        let _ = writeln!(out, "wxgate serving http://{bound} ({})", describe(&plan));
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
    let Some(app) = config.app(&args.app) else {
        eout!(
            "wxgate: no app named \"{}\" in the config (apps: {})",
            args.app,
            config
                .apps
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::from(EXIT_CONFIG);
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

/// The Lambda entry point: config from `WXGATE_CONFIG`, JSON logs, one request at a time.
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
    match runtime.block_on(crate::lambda::run(Arc::new(gateway))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(cause = %e, "the Lambda runtime loop stopped");
            ExitCode::FAILURE
        }
    }
}
