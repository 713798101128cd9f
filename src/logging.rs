//! Log output: JSON lines in Lambda (CloudWatch Logs Insights can query fields), readable
//! lines on a terminal. The level comes from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else
//! `info`. Nothing at info or above carries secrets or message contents.

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    let directive = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Structured JSON lines on stdout, for Lambda.
pub fn init_json() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter())
        .with_target(false)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .try_init();
}

/// Human-readable lines on stderr, for `wxgate serve`.
pub fn init_text() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
