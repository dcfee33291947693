//! Counters the API keeps for `/metrics` (Prometheus text format): appends and their latency,
//! open subscriptions and connections, requests by outcome.

use std::fmt::{Display, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Code;

/// Upper bounds of the append latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

/// What a request is counted as: `ok`, or the code of its first error. `INTERNAL` is last: it
/// counts anything else too.
const OUTCOMES: [&str; Code::ALL.len() + 1] = outcomes();

const fn outcomes() -> [&'static str; Code::ALL.len() + 1] {
    let mut outcomes = ["ok"; Code::ALL.len() + 1];
    let mut i = 0;
    while i < Code::ALL.len() {
        outcomes[i + 1] = Code::ALL[i].as_str();
        i += 1;
    }
    outcomes
}

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
    pub(crate) fn record_append(&self, events: usize, took: Duration, ok: bool) {
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
    pub(crate) fn record_request(&self, outcome: &str) {
        let i = OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(OUTCOMES.len() - 1);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A read query looked up in the answer cache.
    pub(crate) fn record_answer_lookup(&self, hit: bool) {
        let counter = if hit {
            &self.answer_hits
        } else {
            &self.answer_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn subscription_opened(self: &Arc<Self>) -> Gauge {
        self.open_subscriptions.fetch_add(1, Ordering::Relaxed);
        Gauge {
            metrics: Arc::clone(self),
            connections: false,
        }
    }

    pub(crate) fn connection_opened(self: &Arc<Self>) -> Gauge {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        Gauge {
            metrics: Arc::clone(self),
            connections: true,
        }
    }

    pub(crate) fn open_connections(&self) -> i64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    pub(crate) fn subscription_groups_changed(&self, by: i64) {
        self.subscription_groups.fetch_add(by, Ordering::Relaxed);
    }

    pub(crate) fn grouped_subscribers_changed(&self, by: i64) {
        self.grouped_subscribers.fetch_add(by, Ordering::Relaxed);
    }

    /// A subscriber fell behind its group and went on alone.
    pub(crate) fn record_detached(&self) {
        self.detached_subscribers.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics in Prometheus text format, with the gauges the caller measures itself.
    pub fn render(&self, extra_gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        self.render_appends(&mut out);
        self.render_subscriptions(&mut out);
        self.render_requests(&mut out);
        for (name, help, value) in extra_gauges {
            gauge(&mut out, name, help, *value);
        }
        out
    }

    /// Appends: how many, how many events, how many failed, and their latency.
    fn render_appends(&self, out: &mut String) {
        counters(
            out,
            &[
                (
                    "chancery_appends_total",
                    "Appends acknowledged.",
                    &self.appends,
                ),
                (
                    "chancery_appended_events_total",
                    "Events appended.",
                    &self.appended_events,
                ),
                (
                    "chancery_append_failures_total",
                    "Appends refused or failed.",
                    &self.append_failures,
                ),
            ],
        );
        header(
            out,
            "chancery_append_seconds",
            "Append latency, until durable.",
            "histogram",
        );
        let buckets = LATENCY_BUCKETS.iter().zip(&self.latency_buckets);
        labelled(out, "chancery_append_seconds_bucket", "le", buckets);
        let count = self.appends.load(Ordering::Relaxed);
        let _ = writeln!(out, "chancery_append_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "chancery_append_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "chancery_append_seconds_count {count}");
    }

    /// Open subscriptions and connections, subscription groups, and members that left them.
    fn render_subscriptions(&self, out: &mut String) {
        for (name, help, value) in [
            (
                "chancery_open_subscriptions",
                "Subscription executions open: a group of subscribers runs one.",
                &self.open_subscriptions,
            ),
            (
                "chancery_open_websockets",
                "WebSocket connections open.",
                &self.open_connections,
            ),
            (
                "chancery_subscription_groups",
                "Subscription groups open: one execution each, its answers encoded once for every member.",
                &self.subscription_groups,
            ),
            (
                "chancery_grouped_subscribers",
                "Subscribers in subscription groups.",
                &self.grouped_subscribers,
            ),
        ] {
            gauge(out, name, help, value.load(Ordering::Relaxed) as f64);
        }
        counter(
            out,
            "chancery_detached_subscribers_total",
            "Subscribers that fell behind their group and went on alone.",
            self.detached_subscribers.load(Ordering::Relaxed),
        );
    }

    /// GraphQL requests by outcome, and the answer cache's hits and misses.
    fn render_requests(&self, out: &mut String) {
        let name = "chancery_requests_total";
        header(out, name, "GraphQL requests by outcome.", "counter");
        labelled(out, name, "outcome", OUTCOMES.iter().zip(&self.requests));
        counters(
            out,
            &[
                (
                    "chancery_answer_cache_hits_total",
                    "Read queries answered from the answer cache.",
                    &self.answer_hits,
                ),
                (
                    "chancery_answer_cache_misses_total",
                    "Read queries that could be cached but were computed.",
                    &self.answer_misses,
                ),
            ],
        );
    }
}

/// Writes the help and type of a metric.
fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes a counter with its help.
fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{name} {value}");
}

/// Writes counters with their help.
fn counters(out: &mut String, list: &[(&str, &str, &AtomicU64)]) {
    for (name, help, value) in list {
        counter(out, name, help, value.load(Ordering::Relaxed));
    }
}

/// Writes a gauge with its help.
fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    header(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// Writes one sample of `name` per value of its `label`.
fn labelled<'a, V: Display>(
    out: &mut String,
    name: &str,
    label: &str,
    samples: impl Iterator<Item = (V, &'a AtomicU64)>,
) {
    for (value, n) in samples {
        let _ = writeln!(
            out,
            "{name}{{{label}=\"{value}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
}

/// Counts one open subscription or connection until dropped.
pub(crate) struct Gauge {
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
