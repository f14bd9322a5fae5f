//! Prometheus text metrics: HTTP requests by route and status, their latency histogram, and
//! (read from the store at scrape time) records by status and outbox messages by state.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// A gauge read at scrape time: name, help, label name, values by label.
pub type Gauge<'a> = (&'a str, &'a str, &'a str, Vec<(String, i64)>);

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    /// Counts one answered request. `route` is the matched route template (`/v1/authorizations/{id}`),
    /// never the raw path, so ids do not become label values.
    pub fn observe(&self, method: &str, route: &str, status: u16, took: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(route.to_owned()).or_default();
            let s = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += s;
        }
    }

    /// The Prometheus text exposition (version 0.0.4), with gauges read from the store.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        out.push_str("# HELP priorauth_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE priorauth_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "priorauth_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP priorauth_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE priorauth_http_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                let route = escape(route);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "priorauth_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "priorauth_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "priorauth_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "priorauth_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        for (name, help, label, values) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (v, n) in values {
                let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape(v));
            }
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.observe("POST", "/v1/authorizations", 201, Duration::from_millis(3));
        m.observe("POST", "/v1/authorizations", 201, Duration::from_millis(30));
        let text = m.render(&[(
            "priorauth_records",
            "Records by status.",
            "status",
            vec![("approved".into(), 4)],
        )]);
        assert!(text.contains(
            "priorauth_http_requests_total{method=\"POST\",route=\"/v1/authorizations\",status=\"201\"} 2"
        ));
        assert!(text.contains(
            "priorauth_http_request_duration_seconds_bucket{route=\"/v1/authorizations\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "priorauth_http_request_duration_seconds_bucket{route=\"/v1/authorizations\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("priorauth_records{status=\"approved\"} 4"));
    }
}
