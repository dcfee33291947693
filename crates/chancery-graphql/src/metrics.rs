//! Counters the API keeps for `/metrics` (Prometheus text format): appends and their latency,
//! open subscriptions and connections, requests by outcome.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the append latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

const OUTCOMES: [&str; 8] = [
    "ok",
    "VALIDATION",
    "CONFLICT",
    "NOT_FOUND",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "LIMIT",
    "INTERNAL",
];

#[derive(Default)]
pub struct Metrics {
    appends: AtomicU64,
    appended_events: AtomicU64,
    append_failures: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_sum_micros: AtomicU64,
    open_subscriptions: AtomicI64,
    open_connections: AtomicI64,
    subscription_groups: AtomicI64,
    grouped_subscribers: AtomicI64,
    detached_subscribers: AtomicU64,
    requests: [AtomicU64; OUTCOMES.len()],
    answer_hits: AtomicU64,
    answer_misses: AtomicU64,
}

impl Metrics {
    pub fn record_append(&self, events: usize, took: Duration, ok: bool) {
        if !ok {
            self.append_failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.appended_events
            .fetch_add(events as u64, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Counts a request by its outcome: `ok` or the first error's code.
    pub fn record_request(&self, outcome: &str) {
        let i = OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(OUTCOMES.len() - 1);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A read query looked up in the answer cache.
    pub fn record_answer_lookup(&self, hit: bool) {
        let counter = if hit {
            &self.answer_hits
        } else {
            &self.answer_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn subscription_opened(self: &Arc<Self>) -> Gauge {
        self.open_subscriptions.fetch_add(1, Ordering::Relaxed);
        Gauge {
            metrics: Arc::clone(self),
            connections: false,
        }
    }

    pub fn connection_opened(self: &Arc<Self>) -> Gauge {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        Gauge {
            metrics: Arc::clone(self),
            connections: true,
        }
    }

    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    pub fn open_subscriptions(&self) -> i64 {
        self.open_subscriptions.load(Ordering::Relaxed)
    }

    pub fn subscription_groups_changed(&self, by: i64) {
        self.subscription_groups.fetch_add(by, Ordering::Relaxed);
    }

    pub fn grouped_subscribers_changed(&self, by: i64) {
        self.grouped_subscribers.fetch_add(by, Ordering::Relaxed);
    }

    /// A subscriber fell behind its group and went on alone.
    pub fn record_detached(&self) {
        self.detached_subscribers.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics in Prometheus text format, with the gauges the caller measures itself.
    pub fn render(&self, extra_gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            &mut out,
            "chancery_appends_total",
            "Appends acknowledged.",
            self.appends.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "chancery_appended_events_total",
            "Events appended.",
            self.appended_events.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "chancery_append_failures_total",
            "Appends refused or failed.",
            self.append_failures.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP chancery_append_seconds Append latency, until durable.\n# TYPE chancery_append_seconds histogram"
        );
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "chancery_append_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.appends.load(Ordering::Relaxed);
        let _ = writeln!(out, "chancery_append_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "chancery_append_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "chancery_append_seconds_count {count}");
        let gauge = |out: &mut String, name: &str, help: &str, value: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "chancery_open_subscriptions",
            "Subscription executions open: a group of subscribers runs one.",
            self.open_subscriptions.load(Ordering::Relaxed) as f64,
        );
        gauge(
            &mut out,
            "chancery_open_websockets",
            "WebSocket connections open.",
            self.open_connections.load(Ordering::Relaxed) as f64,
        );
        gauge(
            &mut out,
            "chancery_subscription_groups",
            "Subscription groups open: one execution each, its answers encoded once for every member.",
            self.subscription_groups.load(Ordering::Relaxed) as f64,
        );
        gauge(
            &mut out,
            "chancery_grouped_subscribers",
            "Subscribers in subscription groups.",
            self.grouped_subscribers.load(Ordering::Relaxed) as f64,
        );
        counter(
            &mut out,
            "chancery_detached_subscribers_total",
            "Subscribers that fell behind their group and went on alone.",
            self.detached_subscribers.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP chancery_requests_total GraphQL requests by outcome.\n# TYPE chancery_requests_total counter"
        );
        for (outcome, n) in OUTCOMES.iter().zip(&self.requests) {
            let _ = writeln!(
                out,
                "chancery_requests_total{{outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        counter(
            &mut out,
            "chancery_answer_cache_hits_total",
            "Read queries answered from the answer cache.",
            self.answer_hits.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "chancery_answer_cache_misses_total",
            "Read queries that could be cached but were computed.",
            self.answer_misses.load(Ordering::Relaxed),
        );
        for (name, help, value) in extra_gauges {
            gauge(&mut out, name, help, *value);
        }
        out
    }
}

/// Counts one open subscription or connection until dropped.
pub struct Gauge {
    metrics: Arc<Metrics>,
    connections: bool,
}

impl Drop for Gauge {
    fn drop(&mut self) {
        let gauge = if self.connections {
            &self.metrics.open_connections
        } else {
            &self.metrics.open_subscriptions
        };
        gauge.fetch_sub(1, Ordering::Relaxed);
    }
}
