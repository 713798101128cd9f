//! The Prometheus text exposition format (version 0.0.4) of the totals: `# HELP` and
//! `# TYPE` for every family, counters as `_total`, latencies as histograms in seconds
//! (`_bucket{le=…}` cumulative up to `+Inf`, `_sum`, `_count`).

use std::fmt::Write as _;

use super::{BUCKETS_SECONDS, Histogram, Metric, Series, Value};

/// The `Content-Type` of the rendering.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The text for `totals` (as [`Registry::totals`](super::Registry::totals) gives them).
pub fn render(totals: &[Series<Value>]) -> String {
    let mut out = String::with_capacity(4096);
    for metric in Metric::ALL {
        let spec = metric.spec();
        let kind = if spec.histogram {
            "histogram"
        } else {
            "counter"
        };
        let _ = writeln!(out, "# HELP {} {}", spec.prometheus, spec.help);
        let _ = writeln!(out, "# TYPE {} {kind}", spec.prometheus);
        for series in totals.iter().filter(|s| s.metric == metric) {
            match &series.value {
                Value::Count(n) => {
                    let _ = writeln!(
                        out,
                        "{}{} {n}",
                        spec.prometheus,
                        labels(&series.labels, None)
                    );
                }
                Value::Histogram(h) => histogram(&mut out, spec.prometheus, &series.labels, h),
            }
        }
    }
    out
}

/// The text for the global registry.
pub fn render_global() -> String {
    render(&super::global().totals())
}

fn histogram(out: &mut String, name: &str, names: &[(&'static str, String)], h: &Histogram) {
    let mut cumulative = 0;
    for (at, count) in h.buckets.iter().enumerate() {
        cumulative += count;
        let le = BUCKETS_SECONDS
            .get(at)
            .map_or_else(|| "+Inf".to_owned(), |bound| bound.to_string());
        let _ = writeln!(
            out,
            "{name}_bucket{} {cumulative}",
            labels(names, Some(&le))
        );
    }
    let sum = h.sum_micros as f64 / 1_000_000.0;
    let _ = writeln!(out, "{name}_sum{} {sum}", labels(names, None));
    let _ = writeln!(out, "{name}_count{} {}", labels(names, None), h.count);
}

/// `{a="x",b="y"}` (with `le` last when given), or nothing without labels.
fn labels(names: &[(&'static str, String)], le: Option<&str>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::metrics::Registry;

    /// One sample line: name, labels, value.
    type Sample = (String, BTreeMap<String, String>, f64);

    /// A strict reader of the format's sample and comment lines; panics on anything else.
    fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
        let mut samples = Vec::new();
        let mut types = BTreeMap::new();
        assert!(text.ends_with('\n'));
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                assert!(["counter", "histogram"].contains(&kind), "{line}");
                assert!(
                    types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "{line}"
                );
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                assert!(
                    rest.split_once(' ').is_some_and(|(_, h)| !h.is_empty()),
                    "{line}"
                );
                continue;
            }
            let (head, value) = line.rsplit_once(' ').expect("name value");
            let value: f64 = value.parse().expect("a number");
            let (name, labels) = match head.split_once('{') {
                None => (head, BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    let mut labels = BTreeMap::new();
                    for pair in body.split(',') {
                        let (k, v) = pair.split_once('=').expect("k=v");
                        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                        labels.insert(k.to_owned(), v.expect("quoted").to_owned());
                    }
                    (name, labels)
                }
            };
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            assert!(
                types.contains_key(family),
                "sample before its # TYPE: {line}"
            );
            samples.push((name.to_owned(), labels, value));
        }
        (samples, types)
    }

    #[test]
    fn every_family_is_declared_and_counters_end_in_total() {
        let (samples, types) = parse(&render(&[]));
        assert!(samples.is_empty());
        assert_eq!(types.len(), Metric::ALL.len());
        for (name, kind) in types {
            assert_eq!(name.ends_with("_total"), kind == "counter", "{name}");
        }
    }

    #[test]
    fn counters_and_histograms_render_as_the_format_says() {
        let registry = Registry::new();
        registry.add(Metric::Refusals, Some("demo"), &["-40001"], 2);
        for ms in [2, 2, 30] {
            registry.observe(
                Metric::StoreLatency,
                None,
                &["claim"],
                Duration::from_millis(ms),
            );
        }
        let (samples, types) = parse(&render(&registry.totals()));
        assert_eq!(types["wxgate_store_seconds"], "histogram");
        let find = |name: &str, le: Option<&str>| {
            samples
                .iter()
                .find(|(n, l, _)| n == name && l.get("le").map(String::as_str) == le)
                .map(|(_, l, v)| (l.clone(), *v))
                .unwrap_or_else(|| panic!("no {name} {le:?}"))
        };
        let (labels, n) = find("wxgate_refusals_total", None);
        assert_eq!(n, 2.0);
        assert_eq!(labels["app"], "demo");
        assert_eq!(labels["code"], "-40001");
        assert_eq!(find("wxgate_store_seconds_bucket", Some("0.001")).1, 0.0);
        assert_eq!(find("wxgate_store_seconds_bucket", Some("0.0025")).1, 2.0);
        assert_eq!(find("wxgate_store_seconds_bucket", Some("0.05")).1, 3.0);
        assert_eq!(find("wxgate_store_seconds_bucket", Some("+Inf")).1, 3.0);
        assert_eq!(find("wxgate_store_seconds_count", None).1, 3.0);
        assert!((find("wxgate_store_seconds_sum", None).1 - 0.034).abs() < 1e-9);
        assert_eq!(find("wxgate_store_seconds_count", None).0["op"], "claim");
        // Buckets never decrease.
        let buckets: Vec<f64> = samples
            .iter()
            .filter(|(n, _, _)| n == "wxgate_store_seconds_bucket")
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(buckets.len(), BUCKETS_SECONDS.len() + 1);
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
