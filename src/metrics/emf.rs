//! CloudWatch Embedded Metric Format: what changed in one Lambda invocation as JSON lines
//! that CloudWatch Logs turns into metrics, with no API call.
//!
//! A line's dimension values are members of its root object, so one line holds one value
//! per dimension name: a series whose label values clash with those already in the line
//! (a second app, a second store operation) goes to the next line. An invocation that
//! answers one callback fits in one line; one that changed nothing prints none.
//!
//! Every metric is published twice: with all its labels as dimensions (`Service` first)
//! and with `Service` alone, the total the template's alarms watch. Counters have the unit
//! `Count`; latencies `Milliseconds`, one value per observation (at most 100).

use serde_json::{Map, Value, json};

use super::{Change, MAX_SAMPLES, Series};

/// The CloudWatch namespace.
pub const NAMESPACE: &str = "wxgate";
/// The dimension every metric carries, and its value: the totals over the other labels.
pub const SERVICE_DIMENSION: &str = "Service";
/// The value of [`SERVICE_DIMENSION`].
pub const SERVICE: &str = "wxgate";
/// The most metric definitions in one directive, and dimensions in one set (specification
/// limits).
pub const MAX_METRICS: usize = 100;
/// The most dimension keys in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;

/// One line being assembled: the dimension values taken, the metrics in it.
#[derive(Default)]
struct Line<'a> {
    dimensions: Map<String, Value>,
    series: Vec<&'a Series<Change>>,
}

impl<'a> Line<'a> {
    /// Whether `series` can join: its metric is not in the line yet, and its label
    /// values agree with those already there.
    fn fits(&self, series: &Series<Change>) -> bool {
        self.series.len() < MAX_METRICS
            && self.series.iter().all(|s| s.metric != series.metric)
            && series.labels.iter().all(|(name, value)| {
                self.dimensions
                    .get(*name)
                    .is_none_or(|taken| taken.as_str() == Some(value.as_str()))
            })
    }

    fn take(&mut self, series: &'a Series<Change>) {
        for (name, value) in &series.labels {
            self.dimensions
                .insert((*name).to_owned(), Value::String(value.clone()));
        }
        self.series.push(series);
    }

    fn render(&self, timestamp_ms: u64) -> String {
        // Metrics with the same labels share one directive.
        let mut directives: Vec<(Vec<&str>, Vec<Value>)> = Vec::new();
        let mut root = self.dimensions.clone();
        root.insert(SERVICE_DIMENSION.to_owned(), json!(SERVICE));
        for series in &self.series {
            let spec = series.metric.spec();
            let mut names = vec![SERVICE_DIMENSION];
            names.extend(series.labels.iter().map(|(name, _)| *name));
            names.truncate(MAX_DIMENSIONS);
            let unit = if spec.histogram {
                "Milliseconds"
            } else {
                "Count"
            };
            let definition = json!({ "Name": spec.cloudwatch, "Unit": unit });
            match directives.iter_mut().find(|(taken, _)| *taken == names) {
                Some((_, metrics)) => metrics.push(definition),
                None => directives.push((names, vec![definition])),
            }
            let value = if spec.histogram {
                json!(series.value.millis)
            } else {
                json!(series.value.count)
            };
            root.insert(spec.cloudwatch.to_owned(), value);
        }
        let directives: Vec<Value> = directives
            .into_iter()
            .map(|(names, metrics)| {
                let mut sets = vec![json!(names)];
                if names.len() > 1 {
                    sets.push(json!([SERVICE_DIMENSION]));
                }
                json!({ "Namespace": NAMESPACE, "Dimensions": sets, "Metrics": metrics })
            })
            .collect();
        root.insert(
            "_aws".to_owned(),
            json!({ "Timestamp": timestamp_ms, "CloudWatchMetrics": directives }),
        );
        Value::Object(root).to_string()
    }
}

/// The EMF lines for `changes` at `timestamp_ms`: none when nothing changed.
pub fn render(changes: &[Series<Change>], timestamp_ms: u64) -> Vec<String> {
    let changes = as_dimensioned(changes);
    let mut lines: Vec<Line<'_>> = Vec::new();
    for series in changes.iter().filter(|s| has_value(s)) {
        match lines.iter_mut().find(|line| line.fits(series)) {
            Some(line) => line.take(series),
            None => {
                let mut line = Line::default();
                line.take(series);
                lines.push(line);
            }
        }
    }
    lines.iter().map(|line| line.render(timestamp_ms)).collect()
}

/// The series with only the labels that are CloudWatch dimensions, those that became equal
/// added up (their latencies joined, up to [`MAX_SAMPLES`]).
fn as_dimensioned(changes: &[Series<Change>]) -> Vec<Series<Change>> {
    let mut merged: Vec<Series<Change>> = Vec::with_capacity(changes.len());
    for series in changes {
        let spec = series.metric.spec();
        let labels: Vec<(&'static str, String)> = if spec.cloudwatch_by_label {
            series.labels.clone()
        } else {
            series
                .labels
                .iter()
                .filter(|(name, _)| spec.app && *name == "app")
                .cloned()
                .collect()
        };
        match merged
            .iter_mut()
            .find(|m| m.metric == series.metric && m.labels == labels)
        {
            Some(into) => {
                into.value.count = into.value.count.saturating_add(series.value.count);
                let room = MAX_SAMPLES.saturating_sub(into.value.millis.len());
                into.value
                    .millis
                    .extend(series.value.millis.iter().take(room));
            }
            None => merged.push(Series {
                metric: series.metric,
                labels,
                value: series.value.clone(),
            }),
        }
    }
    merged
}

fn has_value(series: &Series<Change>) -> bool {
    if series.metric.spec().histogram {
        !series.value.millis.is_empty()
    } else {
        series.value.count > 0
    }
}

/// The lines for what changed in the global registry since the last call.
pub fn take_lines() -> Vec<String> {
    render(&super::global().take_changes(), crate::clock::now_ms())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::{Metric, Registry};

    /// Checks a line against the specification's rules and returns it parsed.
    fn valid(line: &str) -> Value {
        let doc: Value = serde_json::from_str(line).expect("a JSON object");
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_u64().is_some(), "{line}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert!(!directives.is_empty());
        for directive in directives {
            assert_eq!(directive["Namespace"], NAMESPACE);
            for set in directive["Dimensions"].as_array().expect("dimension sets") {
                let set = set.as_array().expect("a dimension set");
                assert!(!set.is_empty() && set.len() <= MAX_DIMENSIONS);
                for name in set {
                    let name = name.as_str().expect("a dimension name");
                    assert!(doc[name].is_string(), "dimension {name} not a root string");
                }
            }
            let metrics = directive["Metrics"].as_array().expect("metrics");
            assert!(!metrics.is_empty() && metrics.len() <= MAX_METRICS);
            for metric in metrics {
                let name = metric["Name"].as_str().expect("a name");
                assert!(["Count", "Milliseconds"].contains(&metric["Unit"].as_str().unwrap()));
                let value = &doc[name];
                let numbers = value
                    .as_array()
                    .cloned()
                    .unwrap_or_else(|| vec![value.clone()]);
                assert!(!numbers.is_empty() && numbers.len() <= 100, "{name}");
                assert!(numbers.iter().all(Value::is_number), "{name}: {value}");
            }
        }
        doc
    }

    #[test]
    fn nothing_changed_prints_nothing() {
        assert!(render(&[], 1).is_empty());
        let registry = Registry::new();
        registry.track_changes();
        assert!(render(&registry.take_changes(), 1).is_empty());
    }

    #[test]
    fn one_callback_is_one_valid_line() {
        let registry = Registry::new();
        registry.track_changes();
        registry.add(
            Metric::Callbacks,
            Some("demo"),
            &["wecom", "message", "answered"],
            1,
        );
        registry.observe(
            Metric::BotLatency,
            Some("demo"),
            &[],
            Duration::from_millis(12),
        );
        registry.observe(
            Metric::StoreLatency,
            None,
            &["claim"],
            Duration::from_micros(2500),
        );
        let lines = render(&registry.take_changes(), 1_700_000_000_000);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let doc = valid(&lines[0]);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(doc["Callbacks"], 1);
        assert_eq!(doc["BotLatency"], json!([12.0]));
        assert_eq!(doc["StoreLatency"], json!([2.5]));
        assert_eq!(doc["app"], "demo");
        assert_eq!(doc["outcome"], "answered");
        assert!(doc.get("op").is_none(), "the store's op is no dimension");
        assert_eq!(doc[SERVICE_DIMENSION], SERVICE);
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        // Callbacks {app, platform, kind, outcome}; BotLatency {app}; StoreLatency {}.
        assert_eq!(directives.len(), 3);
        assert_eq!(directives[2]["Dimensions"], json!([["Service"]]));
        assert_eq!(
            directives[0]["Dimensions"],
            json!([
                ["Service", "app", "platform", "kind", "outcome"],
                ["Service"]
            ])
        );
        assert_eq!(
            directives[0]["Metrics"],
            json!([{ "Name": "Callbacks", "Unit": "Count" }])
        );
    }

    #[test]
    fn store_operations_add_up_in_one_line() {
        let registry = Registry::new();
        registry.track_changes();
        for (op, ms) in [("claim", 3), ("complete", 4), ("claim", 5)] {
            registry.observe(Metric::StoreLatency, None, &[op], Duration::from_millis(ms));
        }
        registry.add(Metric::StoreErrors, None, &["complete"], 1);
        registry.add(Metric::StoreErrors, None, &["claim"], 2);
        let lines = render(&registry.take_changes(), 5);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let doc = valid(&lines[0]);
        assert_eq!(doc["StoreLatency"], json!([3.0, 5.0, 4.0]));
        assert_eq!(doc["StoreErrors"], 3);
    }

    #[test]
    fn clashing_label_values_go_to_another_line() {
        let registry = Registry::new();
        registry.track_changes();
        for app in ["demo", "shop"] {
            registry.add(Metric::LateRepliesSent, Some(app), &[], 1);
            registry.observe(Metric::BotLatency, Some(app), &[], Duration::from_millis(7));
        }
        let lines = render(&registry.take_changes(), 5);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let docs: Vec<Value> = lines.iter().map(|l| valid(l)).collect();
        assert_eq!(docs[0]["app"], "demo");
        assert_eq!(docs[0]["LateRepliesSent"], 1);
        assert_eq!(docs[0]["BotLatency"], json!([7.0]));
        assert_eq!(docs[1]["app"], "shop");
        assert_eq!(docs[1]["LateRepliesSent"], 1);
    }

    #[test]
    fn every_metric_has_a_distinct_cloudwatch_name() {
        for metric in Metric::ALL {
            let name = metric.spec().cloudwatch;
            let same = Metric::ALL.iter().filter(|m| m.spec().cloudwatch == name);
            assert_eq!(same.count(), 1, "{name}");
        }
    }
}
