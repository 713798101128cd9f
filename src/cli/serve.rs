//! `wxgate serve`: the gateway on a local HTTP server until Ctrl-C or SIGTERM, late replies
//! in the background.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::{EXIT_CONFIG, Threads, config_failure, load, runtime};
use crate::gateway::{Gateway, LateReplies};
use crate::platform::Platform;

/// Where `WXGATE_METRICS_ADDR` asks metrics to be served, when `--metrics-addr` does not.
const METRICS_ADDR_VAR: &str = "WXGATE_METRICS_ADDR";

pub(super) fn serve(
    config: Option<PathBuf>,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
) -> ExitCode {
    crate::logging::init_text();
    let metrics_addr = match metrics_addr.map_or_else(metrics_addr_from_env, |a| Ok(Some(a))) {
        Ok(a) => a,
        Err(why) => {
            eout!("wxgate: {why}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
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
        let built = Gateway::builder(&config)
            .late_replies(LateReplies::InBackground)
            .open()
            .await;
        let gateway = match built {
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
        let metrics = match metrics_addr {
            None => None,
            Some(metrics_addr) => match tokio::net::TcpListener::bind(metrics_addr).await {
                Ok(l) => Some(l),
                Err(e) => {
                    eout!("wxgate: cannot listen for metrics on {metrics_addr}: {e}");
                    return ExitCode::FAILURE;
                }
            },
        };
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
        if let Some(metrics) = metrics {
            let at = metrics.local_addr().map_or(String::new(), |a| a.to_string());
            let _ = writeln!(out, "  metrics http://{at}/metrics");
            // Runs until the process ends; nothing to drain.
            tokio::spawn(crate::server::serve_metrics(metrics));
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

/// `WXGATE_METRICS_ADDR`, when set and not empty.
fn metrics_addr_from_env() -> Result<Option<SocketAddr>, String> {
    match std::env::var(METRICS_ADDR_VAR) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{METRICS_ADDR_VAR} is not an address like 127.0.0.1:9464")),
        _ => Ok(None),
    }
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
