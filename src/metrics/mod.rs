//! What the gateway counts and times, kept in memory and handed out in two formats: one
//! CloudWatch Embedded Metric Format line per Lambda invocation ([`emf`]) and the
//! Prometheus text format for `wxgate serve --metrics-addr` ([`prometheus`]).
//!
//! Pure: no I/O here. The adapters print or serve what this module renders. Recording takes
//! one short-held mutex and an ordered-map lookup, next to a callback that costs tens of
//! microseconds (docs/benchmarks.md has the figures).
//!
//! Label values are bounded by construction: every label but the app is a `&'static str`,
//! so only values written in this crate's source can become one; the app label is a
//! configured app's name (callers pass `None` for a name taken from a URL that matches no
//! app: it becomes `unknown`), and at most [`MAX_APPS`] names are kept, any further one
//! counting as `other`. No message content, user id, token or query value can reach a
//! label. docs/metrics.md lists every metric.

pub mod emf;
pub mod prometheus;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Every metric wxgate records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Callbacks by app, platform, kind and outcome.
    Callbacks,
    /// Refused requests by app and official code (-40001 …) or reason.
    Refusals,
    /// Retries answered from the first delivery's recorded reply.
    DedupReplays,
    /// Claims taken over from a delivery whose lease ran out, or lost to one.
    DedupTakeovers,
    /// Callbacks decided without the dedup store because it failed (fail open).
    DedupFailOpens,
    /// How long the bot took to decide a reply.
    BotLatency,
    /// Bots that gave no reply: an error, or past the time limit.
    BotFailures,
    /// How long an upstream bot (`forward`) took to answer.
    UpstreamLatency,
    /// Upstream calls that failed, by reason.
    UpstreamFailures,
    /// Late replies sent as active messages.
    LateRepliesSent,
    /// Late replies that could not be sent.
    LateRepliesFailed,
    /// Access tokens fetched from the platform.
    TokenFetches,
    /// Access token fetches that failed.
    TokenRefreshFailures,
    /// How long store requests took, by operation.
    StoreLatency,
    /// Store requests that failed, by operation.
    StoreErrors,
}

/// What a metric is called, what it holds and which labels it has.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The Prometheus family name (counters end `_total`, histograms `_seconds`).
    pub prometheus: &'static str,
    /// The CloudWatch metric name.
    pub cloudwatch: &'static str,
    /// One line for `# HELP`.
    pub help: &'static str,
    /// A latency histogram (else a counter).
    pub histogram: bool,
    /// Whether the first label is the app.
    pub app: bool,
    /// The other labels, in order.
    pub labels: &'static [&'static str],
    /// Whether the other labels are CloudWatch dimensions too. When not, an invocation's
    /// series are added up over them: the store's operations are many per callback, and
    /// one EMF line holds one value per dimension.
    pub cloudwatch_by_label: bool,
}

impl Metric {
    /// Every metric, in the order they are rendered.
    pub const ALL: [Metric; 15] = [
        Metric::Callbacks,
        Metric::Refusals,
        Metric::DedupReplays,
        Metric::DedupTakeovers,
        Metric::DedupFailOpens,
        Metric::BotLatency,
        Metric::BotFailures,
        Metric::UpstreamLatency,
        Metric::UpstreamFailures,
        Metric::LateRepliesSent,
        Metric::LateRepliesFailed,
        Metric::TokenFetches,
        Metric::TokenRefreshFailures,
        Metric::StoreLatency,
        Metric::StoreErrors,
    ];

    /// Its names, help and labels.
    pub const fn spec(self) -> Spec {
        const fn counter(
            prometheus: &'static str,
            cloudwatch: &'static str,
            help: &'static str,
            app: bool,
            labels: &'static [&'static str],
        ) -> Spec {
            Spec {
                prometheus,
                cloudwatch,
                help,
                histogram: false,
                app,
                labels,
                cloudwatch_by_label: true,
            }
        }
        const fn histogram(
            prometheus: &'static str,
            cloudwatch: &'static str,
            help: &'static str,
            app: bool,
            labels: &'static [&'static str],
        ) -> Spec {
            Spec {
                histogram: true,
                ..counter(prometheus, cloudwatch, help, app, labels)
            }
        }
        match self {
            Self::Callbacks => counter(
                "wxgate_callbacks_total",
                "Callbacks",
                "Callbacks by app, platform, kind and outcome.",
                true,
                &["platform", "kind", "outcome"],
            ),
            Self::Refusals => counter(
                "wxgate_refusals_total",
                "Refusals",
                "Refused requests by official code (-40001 ...) or reason.",
                true,
                &["code"],
            ),
            Self::DedupReplays => counter(
                "wxgate_dedup_replays_total",
                "DedupReplays",
                "Retries answered from the first delivery's recorded reply.",
                true,
                &[],
            ),
            Self::DedupTakeovers => counter(
                "wxgate_dedup_takeovers_total",
                "DedupTakeovers",
                "Dedup claims taken over after a lease ran out, or lost to another delivery.",
                true,
                &["event"],
            ),
            Self::DedupFailOpens => counter(
                "wxgate_dedup_fail_opens_total",
                "DedupFailOpens",
                "Callbacks decided without dedup because the store failed.",
                true,
                &[],
            ),
            Self::BotLatency => histogram(
                "wxgate_bot_seconds",
                "BotLatency",
                "How long the bot took to decide a reply.",
                true,
                &[],
            ),
            Self::BotFailures => counter(
                "wxgate_bot_failures_total",
                "BotFailures",
                "Bot decisions that gave no reply: an error, or past the time limit.",
                true,
                &["reason"],
            ),
            Self::UpstreamLatency => histogram(
                "wxgate_upstream_seconds",
                "UpstreamLatency",
                "How long an upstream bot took to answer.",
                true,
                &[],
            ),
            Self::UpstreamFailures => counter(
                "wxgate_upstream_failures_total",
                "UpstreamFailures",
                "Upstream bot calls that failed, by reason.",
                true,
                &["reason"],
            ),
            Self::LateRepliesSent => counter(
                "wxgate_late_replies_sent_total",
                "LateRepliesSent",
                "Late replies sent as active messages.",
                true,
                &[],
            ),
            Self::LateRepliesFailed => counter(
                "wxgate_late_replies_failed_total",
                "LateRepliesFailed",
                "Late replies that could not be sent.",
                true,
                &[],
            ),
            Self::TokenFetches => counter(
                "wxgate_token_fetches_total",
                "TokenFetches",
                "Access tokens fetched from the platform, by credential kind.",
                false,
                &["source"],
            ),
            Self::TokenRefreshFailures => counter(
                "wxgate_token_refresh_failures_total",
                "TokenRefreshFailures",
                "Access token fetches that failed, by credential kind.",
                false,
                &["source"],
            ),
            Self::StoreLatency => Spec {
                cloudwatch_by_label: false,
                ..histogram(
                    "wxgate_store_seconds",
                    "StoreLatency",
                    "How long store requests took, by operation.",
                    false,
                    &["op"],
                )
            },
            Self::StoreErrors => Spec {
                cloudwatch_by_label: false,
                ..counter(
                    "wxgate_store_errors_total",
                    "StoreErrors",
                    "Store requests that failed, by operation.",
                    false,
                    &["op"],
                )
            },
        }
    }
}

/// What kind of callback it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A user's message.
    Message,
    /// An event (subscribe, click, …).
    Event,
    /// A platform notice (Open Platform tickets and authorizations, suite events).
    Notice,
    /// A URL verification (GET with `echostr`).
    Verification,
    /// Refused before its kind was known.
    Unparsed,
}

impl Kind {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Event => "event",
            Self::Notice => "notice",
            Self::Verification => "verification",
            Self::Unparsed => "unparsed",
        }
    }
}

/// How a callback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with a reply.
    Answered,
    /// Answered empty (`success` or an empty body): no reply, or none in time.
    Empty,
    /// A retry, answered from the first delivery.
    Replayed,
    /// A report-only event (LOCATION, VIEW, …): answered empty without the bot.
    ReportOnly,
    /// A URL verification answered with its `echostr`.
    Verified,
    /// Refused (see [`Metric::Refusals`] for why).
    Refused,
}

impl Outcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Empty => "empty",
            Self::Replayed => "replayed",
            Self::ReportOnly => "report_only",
            Self::Verified => "verified",
            Self::Refused => "refused",
        }
    }
}

/// The most distinct app names kept as label values; more count as `other`.
pub const MAX_APPS: usize = 64;
/// The app label of a name that matches no configured app.
pub const UNKNOWN_APP: &str = "unknown";
/// The app label of the names past [`MAX_APPS`].
pub const OTHER_APP: &str = "other";

/// The upper bounds of the latency buckets, in seconds (and `+Inf` after the last).
pub const BUCKETS_SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// The same bounds in microseconds, for recording without floating point.
const BUCKETS_MICROS: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000,
];
/// The most latency values one EMF metric may carry (the specification's limit for an
/// array of values).
pub const MAX_SAMPLES: usize = 100;

/// An app label as stored: an index into the registry's names, or one of the fixed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum AppId {
    /// The metric has no app label.
    None,
    Unknown,
    Other,
    Named(u16),
}

/// One series: a metric and its label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    metric: Metric,
    app: AppId,
    labels: [&'static str; 3],
}

/// A histogram of latencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations at or under each bound of [`BUCKETS_SECONDS`] (not cumulative), and
    /// over the last one.
    pub buckets: [u64; BUCKETS_SECONDS.len() + 1],
    /// Observations.
    pub count: u64,
    /// Their sum, in microseconds.
    pub sum_micros: u64,
}

impl Histogram {
    fn observe(&mut self, micros: u64) {
        let at = BUCKETS_MICROS
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(BUCKETS_MICROS.len());
        self.buckets[at] += 1;
        self.count += 1;
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }
}

/// A series' value since the process started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A counter.
    Count(u64),
    /// A latency histogram.
    Histogram(Box<Histogram>),
}

/// What changed since the last [`Registry::take_changes`]: a count, or latencies in
/// milliseconds (at most [`MAX_SAMPLES`]; more are counted in `count` only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// The counter's increase, or how many latencies were observed.
    pub count: u64,
    /// The latencies, in milliseconds.
    pub millis: Vec<f64>,
}

/// One series, for rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<T> {
    /// The metric.
    pub metric: Metric,
    /// The label names and values, the app first when the metric has one.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: T,
}

#[derive(Debug, Default)]
struct State {
    apps: Vec<Box<str>>,
    totals: BTreeMap<Key, Value>,
    /// Collected only once [`Registry::track_changes`] is called (the Lambda adapter).
    changes: Option<BTreeMap<Key, Change>>,
}

/// The metrics of one process. [`global`] is the one wxgate records into.
#[derive(Debug)]
pub struct Registry {
    state: Mutex<State>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub const fn new() -> Self {
        Self {
            state: Mutex::new(State {
                apps: Vec::new(),
                totals: BTreeMap::new(),
                changes: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts, never a broken invariant.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps what changes between [`take_changes`](Self::take_changes) calls too, for a
    /// process that reports per invocation.
    pub fn track_changes(&self) {
        let mut state = self.lock();
        if state.changes.is_none() {
            state.changes = Some(BTreeMap::new());
        }
    }

    /// Adds `n` to a counter. `app`: a configured app's name, `None` for `unknown`
    /// (ignored by metrics without an app label); `labels`: the metric's other labels in
    /// order. A histogram metric is not changed.
    pub fn add(&self, metric: Metric, app: Option<&str>, labels: &[&'static str], n: u64) {
        if metric.spec().histogram {
            return;
        }
        let mut state = self.lock();
        let key = state.key(metric, app, labels);
        match state.totals.entry(key).or_insert(Value::Count(0)) {
            Value::Count(total) => *total = total.saturating_add(n),
            Value::Histogram(_) => {}
        }
        if let Some(changes) = &mut state.changes {
            let change = changes.entry(key).or_default();
            change.count = change.count.saturating_add(n);
        }
    }

    /// Records one latency. As [`add`](Self::add); a counter metric is not changed.
    pub fn observe(
        &self,
        metric: Metric,
        app: Option<&str>,
        labels: &[&'static str],
        took: Duration,
    ) {
        if !metric.spec().histogram {
            return;
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let mut state = self.lock();
        let key = state.key(metric, app, labels);
        let value = state
            .totals
            .entry(key)
            .or_insert_with(|| Value::Histogram(Box::default()));
        if let Value::Histogram(histogram) = value {
            histogram.observe(micros);
        }
        if let Some(changes) = &mut state.changes {
            let change = changes.entry(key).or_default();
            change.count = change.count.saturating_add(1);
            if change.millis.len() < MAX_SAMPLES {
                change.millis.push(micros as f64 / 1000.0);
            }
        }
    }

    /// Every series since the process started, in a stable order.
    pub fn totals(&self) -> Vec<Series<Value>> {
        let state = self.lock();
        state
            .totals
            .iter()
            .map(|(key, value)| Series {
                metric: key.metric,
                labels: state.labels(key),
                value: value.clone(),
            })
            .collect()
    }

    /// What changed since the last call (nothing unless
    /// [`track_changes`](Self::track_changes) was called), and starts over.
    pub fn take_changes(&self) -> Vec<Series<Change>> {
        let mut state = self.lock();
        let Some(changes) = state.changes.as_mut().map(std::mem::take) else {
            return Vec::new();
        };
        changes
            .into_iter()
            .map(|(key, change)| Series {
                metric: key.metric,
                labels: state.labels(&key),
                value: change,
            })
            .collect()
    }
}

impl State {
    fn key(&mut self, metric: Metric, app: Option<&str>, labels: &[&'static str]) -> Key {
        let spec = metric.spec();
        let app = match (spec.app, app) {
            (false, _) => AppId::None,
            (true, None) => AppId::Unknown,
            (true, Some(name)) => self.app_id(name),
        };
        let mut values = [""; 3];
        for (slot, value) in values.iter_mut().zip(labels).take(spec.labels.len()) {
            *slot = value;
        }
        Key {
            metric,
            app,
            labels: values,
        }
    }

    fn app_id(&mut self, name: &str) -> AppId {
        if let Some(at) = self.apps.iter().position(|known| &**known == name) {
            return AppId::Named(at as u16);
        }
        if self.apps.len() >= MAX_APPS {
            return AppId::Other;
        }
        self.apps.push(name.into());
        AppId::Named((self.apps.len() - 1) as u16)
    }

    fn labels(&self, key: &Key) -> Vec<(&'static str, String)> {
        let spec = key.metric.spec();
        let app = match key.app {
            AppId::None => None,
            AppId::Unknown => Some(UNKNOWN_APP.to_owned()),
            AppId::Other => Some(OTHER_APP.to_owned()),
            AppId::Named(at) => Some(self.apps[usize::from(at)].to_string()),
        };
        app.map(|app| ("app", app))
            .into_iter()
            .chain(
                spec.labels
                    .iter()
                    .zip(key.labels)
                    .map(|(name, value)| (*name, value.to_owned())),
            )
            .collect()
    }
}

static GLOBAL: Registry = Registry::new();

/// The registry wxgate records into.
pub fn global() -> &'static Registry {
    &GLOBAL
}

// One-line recording for the places that count; each names a configured app or none.

/// A callback ended: `app` is a configured app (`None`: the URL named none), `platform`
/// its platform's name.
pub fn callback(app: Option<&str>, platform: &'static str, kind: Kind, outcome: Outcome) {
    GLOBAL.add(
        Metric::Callbacks,
        app,
        &[platform, kind.as_str(), outcome.as_str()],
        1,
    );
}

/// A request was refused: the official code's label ([`code_label`]) or a reason.
pub fn refusal(app: Option<&str>, platform: &'static str, code: &'static str) {
    callback(app, platform, Kind::Unparsed, Outcome::Refused);
    GLOBAL.add(Metric::Refusals, app, &[code], 1);
}

/// Adds one to a counter with only the app label.
pub fn count(metric: Metric, app: &str) {
    GLOBAL.add(metric, Some(app), &[], 1);
}

/// Adds one to a counter with the app and one more label.
pub fn count_with(metric: Metric, app: Option<&str>, label: &'static str) {
    GLOBAL.add(metric, app, &[label], 1);
}

/// Records a latency with only the app label.
pub fn latency(metric: Metric, app: &str, took: Duration) {
    GLOBAL.observe(metric, Some(app), &[], took);
}

/// A store request: its operation, how long it took, whether it failed.
pub fn store_request(op: &'static str, took: Duration, failed: bool) {
    GLOBAL.observe(Metric::StoreLatency, None, &[op], took);
    if failed {
        GLOBAL.add(Metric::StoreErrors, None, &[op], 1);
    }
}

/// An access token fetch for a credential kind (`wecom`, `mp`, …).
pub fn token_fetch(source: &'static str, failed: bool) {
    let metric = if failed {
        Metric::TokenRefreshFailures
    } else {
        Metric::TokenFetches
    };
    GLOBAL.add(metric, None, &[source], 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_by_labels() {
        let registry = Registry::new();
        registry.add(Metric::Refusals, Some("demo"), &["-40001"], 1);
        registry.add(Metric::Refusals, Some("demo"), &["-40001"], 2);
        registry.add(Metric::Refusals, None, &["not_found"], 1);
        let totals = registry.totals();
        assert_eq!(totals.len(), 2);
        assert_eq!(
            totals[0].labels,
            vec![
                ("app", "unknown".to_owned()),
                ("code", "not_found".to_owned())
            ]
        );
        assert_eq!(totals[1].value, Value::Count(3));
        assert_eq!(totals[1].labels[0], ("app", "demo".to_owned()));
    }

    #[test]
    fn histograms_bucket_latencies_and_counters_ignore_them() {
        let registry = Registry::new();
        for ms in [0, 3, 3, 40, 9000] {
            registry.observe(
                Metric::StoreLatency,
                None,
                &["claim"],
                Duration::from_millis(ms),
            );
        }
        registry.observe(Metric::Refusals, None, &["x"], Duration::from_millis(1));
        registry.add(Metric::StoreLatency, None, &["claim"], 1);
        let totals = registry.totals();
        assert_eq!(totals.len(), 1);
        let Value::Histogram(h) = &totals[0].value else {
            panic!("not a histogram");
        };
        assert_eq!(h.count, 5);
        assert_eq!(h.sum_micros, 9_046_000);
        assert_eq!(h.buckets[0], 1); // ≤ 1 ms
        assert_eq!(h.buckets[2], 2); // ≤ 5 ms
        assert_eq!(h.buckets[5], 1); // ≤ 50 ms
        assert_eq!(h.buckets[12], 1); // over 5 s
    }

    #[test]
    fn app_names_are_bounded() {
        let registry = Registry::new();
        for n in 0..MAX_APPS + 5 {
            registry.add(Metric::DedupReplays, Some(&format!("app{n}")), &[], 1);
        }
        let totals = registry.totals();
        assert_eq!(totals.len(), MAX_APPS + 1);
        let other = totals
            .iter()
            .find(|s| s.labels[0].1 == OTHER_APP)
            .expect("an `other` series");
        assert_eq!(other.value, Value::Count(5));
    }

    #[test]
    fn changes_are_kept_only_when_tracked_and_start_over() {
        let registry = Registry::new();
        registry.add(Metric::DedupFailOpens, Some("demo"), &[], 1);
        assert!(registry.take_changes().is_empty());
        registry.track_changes();
        registry.add(Metric::DedupFailOpens, Some("demo"), &[], 1);
        for _ in 0..MAX_SAMPLES + 3 {
            registry.observe(
                Metric::BotLatency,
                Some("demo"),
                &[],
                Duration::from_micros(1500),
            );
        }
        let changes = registry.take_changes();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].value.count, 1);
        assert_eq!(changes[1].value.count, MAX_SAMPLES as u64 + 3);
        assert_eq!(changes[1].value.millis.len(), MAX_SAMPLES);
        assert_eq!(changes[1].value.millis[0], 1.5);
        assert!(registry.take_changes().is_empty());
        assert_eq!(registry.totals()[0].value, Value::Count(2));
    }
}
