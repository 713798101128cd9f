//! Log output: JSON lines in Lambda (CloudWatch Logs Insights can query fields), readable
//! lines on a terminal.
//!
//! The level comes from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`, and applies to
//! wxgate's own lines only. Every other crate logs at `warn` at most, whatever the variable
//! says: at debug and trace the Lambda runtime prints each raw event (a plaintext message's
//! text, signed query strings) and the AWS SDK each request and response (recorded replies,
//! stored messages, tokens). wxgate's own lines never carry secrets or message contents at
//! any level.
//!
//! Text lines escape control characters in every field, so a value an attacker chose (a
//! query parameter, an element name) cannot start a forged log line or steer a terminal.
//! JSON lines are escaped by the JSON encoder.

use std::str::FromStr;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::debug_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// wxgate's own log target (and the prefix of its modules' targets).
const OWN_TARGET: &str = "wxgate";
/// The most any other crate may log.
const DEPENDENCY_MAX: LevelFilter = LevelFilter::WARN;
/// hyper warns once per connection that a client was too slow to send its headers, which
/// is `wxgate serve` closing slow or idle connections as it should.
const QUIET_DEPENDENCIES: [(&str, LevelFilter); 1] = [("hyper", LevelFilter::ERROR)];

/// The filter for a `RUST_LOG`-style value: a level (`info`, `debug`, …), or directives
/// (`wxgate=debug,warn`). wxgate's targets get what is asked; every other target is capped
/// at `warn`. `Err` says why the value was not understood (the default `info` is used then).
pub fn filter_for(value: Option<&str>) -> (Targets, Result<(), String>) {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    let (asked, understood) = match value.map(parse_directives) {
        None => (Targets::new().with_default(LevelFilter::INFO), Ok(())),
        Some(Ok(asked)) => (asked, Ok(())),
        Some(Err(why)) => (Targets::new().with_default(LevelFilter::INFO), Err(why)),
    };
    (capped(&asked), understood)
}

fn parse_directives(value: &str) -> Result<Targets, String> {
    // A bare level is the usual case; it names wxgate's level.
    if let Ok(level) = LevelFilter::from_str(value) {
        return Ok(Targets::new().with_default(level));
    }
    Targets::from_str(value).map_err(|_| {
        "expected a level (error, warn, info, debug, trace) or directives like wxgate=debug"
            .to_owned()
    })
}

/// `asked` with wxgate's targets as asked and everything else capped.
fn capped(asked: &Targets) -> Targets {
    let own_default = asked.default_level().unwrap_or(LevelFilter::OFF);
    let mut filter = Targets::new()
        .with_default(own_default.min(DEPENDENCY_MAX))
        .with_target(OWN_TARGET, own_default);
    for (target, level) in QUIET_DEPENDENCIES {
        filter = filter.with_target(target, level.min(own_default));
    }
    for (target, level) in asked.iter() {
        let own = target == OWN_TARGET || target.starts_with("wxgate::");
        filter = filter.with_target(
            target,
            if own {
                level
            } else {
                level.min(DEPENDENCY_MAX)
            },
        );
    }
    filter
}

/// The filter from the environment, and why its value was not understood, if it was not.
fn filter() -> (Targets, Result<(), String>) {
    let value = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .ok();
    filter_for(value.as_deref())
}

/// Said once the subscriber is up; the value itself is not repeated.
fn say_if_not_understood(understood: Result<(), String>) {
    if let Err(why) = understood {
        tracing::warn!(cause = %why, "RUST_LOG not understood; logging at info");
    }
}

/// Structured JSON lines on stdout, for Lambda.
pub fn init_json() {
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_target(false)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false);
    let (filter, understood) = filter();
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
    say_if_not_understood(understood);
}

/// Human-readable lines on stderr, for `wxgate serve` and the other commands.
pub fn init_text() {
    let fields = debug_fn(|writer, field, value| {
        let raw = format!("{value:?}");
        let shown = crate::escape::escape_controls(&raw);
        if field.name() == "message" {
            writer.write_str(&shown)
        } else {
            write!(writer, "{field}={shown}")
        }
    })
    .delimited(" ");
    let layer = tracing_subscriber::fmt::layer()
        .fmt_fields(fields)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let (filter, understood) = filter();
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
    say_if_not_understood(understood);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(filter: &Targets, target: &str, at: tracing::Level) -> bool {
        filter.would_enable(target, &at)
    }

    #[test]
    fn a_bare_level_is_wxgate_s_and_dependencies_stay_at_warn() {
        let (f, ok) = filter_for(Some("trace"));
        assert!(ok.is_ok());
        assert!(enabled(&f, "wxgate::gateway", tracing::Level::TRACE));
        for dependency in [
            "lambda_runtime",
            "aws_smithy_runtime::client",
            "hyper",
            "reqwest",
        ] {
            assert!(
                !enabled(&f, dependency, tracing::Level::INFO),
                "{dependency}"
            );
        }
        assert!(enabled(&f, "lambda_runtime", tracing::Level::WARN));
        assert!(!enabled(&f, "hyper::proto", tracing::Level::WARN));
    }

    #[test]
    fn directives_for_dependencies_are_capped_and_wxgate_s_kept() {
        let (f, ok) = filter_for(Some(
            "aws_smithy_runtime=trace,lambda_runtime=debug,wxgate::store=trace,info",
        ));
        assert!(ok.is_ok());
        assert!(!enabled(&f, "aws_smithy_runtime", tracing::Level::DEBUG));
        assert!(!enabled(
            &f,
            "lambda_runtime::layers",
            tracing::Level::DEBUG
        ));
        assert!(enabled(&f, "aws_smithy_runtime", tracing::Level::WARN));
        assert!(enabled(
            &f,
            "wxgate::store::dynamodb",
            tracing::Level::TRACE
        ));
        assert!(enabled(&f, "wxgate::gateway", tracing::Level::INFO));
        assert!(!enabled(&f, "wxgate::gateway", tracing::Level::DEBUG));
    }

    #[test]
    fn error_and_off_lower_everything() {
        let (f, _) = filter_for(Some("error"));
        assert!(!enabled(&f, "lambda_runtime", tracing::Level::WARN));
        assert!(!enabled(&f, "wxgate", tracing::Level::WARN));
        let (f, _) = filter_for(Some("off"));
        assert!(!enabled(&f, "wxgate", tracing::Level::ERROR));
        assert!(!enabled(&f, "hyper", tracing::Level::ERROR));
    }

    #[test]
    fn nonsense_falls_back_to_info_and_says_so() {
        let (f, ok) = filter_for(Some("loud=very"));
        assert!(ok.is_err());
        assert!(enabled(&f, "wxgate", tracing::Level::INFO));
        assert!(!enabled(&f, "wxgate", tracing::Level::DEBUG));
        let (f, ok) = filter_for(None);
        assert!(ok.is_ok() && enabled(&f, "wxgate", tracing::Level::INFO));
    }
}
