//! Live fan-out: the real `chancery` server with the demo data, many WebSocket subscribers on
//! `events(after: <the demo's last cursor>)` (graphql-transport-ws), and events recorded through
//! GraphQL mutations at a steady rate meanwhile. Measures how long each event takes from its
//! mutation being sent to each subscriber receiving it, and checks that every subscriber saw
//! every recorded position once, in order.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Http, chancery_bin};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Mutex, Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::report::{Figure, Section, machine, median, today};

pub const DEFAULT_SUBSCRIBERS: usize = 50;
pub const DEFAULT_RATE: u64 = 50;
pub const DEFAULT_SECONDS: u64 = 3;
pub const DEFAULT_WRITERS: usize = 32;

/// The recorder's token (the server wants at least 16 characters).
const TOKEN: &str = "fanout-bench-recorder-token";

/// How long a step may take on a loaded machine before the run gives up: the server starting,
/// all subscribers connecting, a stalled delivery.
const PATIENCE: Duration = Duration::from_secs(120);

/// How long deliveries may make no progress at all, once writing ended, before the subscribers
/// still behind are counted as missing what they lack.
const STALL: Duration = Duration::from_secs(30);

/// WebSocket handshakes in flight at once: a thousand at a time would only queue in the backlog.
const CONNECTING_AT_ONCE: usize = 64;

/// A statement by the USA on tariffs in the demo's timeline (as in tests/it/nats.rs): every write.
const STATEMENT: &str = r#"mutation($id: ID, $summary: String!) {
  recordEvent(timeline: "us-china-trade", event: {
    id: $id,
    occurred: { start: "2018-05-05" },
    actors: [{ party: "USA" }], targets: [{ party: "CHN" }], issues: ["tariffs"],
    summary: $summary,
    sources: [{ publication: "Bench Wire", attribution: OFFICIAL }],
    act: { statement: { claim: "talks were constructive", tone: OPTIMISTIC } }
  }) { firstPosition }
}"#;

/// Aliased fields, so that a subscriber finds them in the text without parsing the JSON.
const SUBSCRIPTION: &str =
    "subscription($after: String) { events(after: $after) { eventId: id pos: position } }";

/// The selection of subscriber `index` when they are spread over `selections`: one more field
/// under an alias of its own makes each a different document.
fn selection(index: usize, selections: usize) -> String {
    if selections <= 1 {
        return SUBSCRIPTION.to_owned();
    }
    format!(
        "subscription($after: String) {{ events(after: $after) {{ eventId: id pos: position k{}: kind }} }}",
        index % selections
    )
}

#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub subscribers: usize,
    /// Events per second requested.
    pub rate: u64,
    pub seconds: u64,
    /// HTTP connections sending mutations (each awaits its answer before the next).
    pub writers: usize,
    /// Distinct selections the subscribers are spread over.
    pub selections: usize,
}

impl Default for Scale {
    fn default() -> Self {
        Scale {
            subscribers: DEFAULT_SUBSCRIBERS,
            rate: DEFAULT_RATE,
            seconds: DEFAULT_SECONDS,
            writers: DEFAULT_WRITERS,
            selections: 1,
        }
    }
}

/// Makes sure this process (and the server it starts, which inherits the limit) may open
/// `needed` files: raises the soft RLIMIT_NOFILE up to the hard one with `prlimit` (the
/// workspace forbids the unsafe `setrlimit`). Says what it did, for the report.
fn ensure_open_files(needed: u64) -> anyhow::Result<String> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let (soft, hard) = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| {
            let mut values = l["Max open files".len()..].split_whitespace().map(|v| {
                if v == "unlimited" {
                    Some(u64::MAX)
                } else {
                    v.parse().ok()
                }
            });
            Some((values.next()??, values.next()??))
        })
        .context("no open-file limit in /proc/self/limits")?;
    if soft >= needed {
        return Ok(format!(
            "The open-file limit ({soft}) was enough; not raised."
        ));
    }
    if hard < needed {
        bail!(
            "{needed} open files are needed but the hard limit is {hard}: raise it (ulimit -Hn) or use fewer subscribers"
        );
    }
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={hard}:"))
        .status()
        .context("cannot run prlimit to raise the open-file limit")?;
    if !status.success() {
        bail!("prlimit could not raise the open-file limit from {soft} to {hard}");
    }
    Ok(format!(
        "The open-file limit was raised from {soft} to {hard} (prlimit) for the bench and the server."
    ))
}

/// A `chancery serve --demo` on a loopback port and a fresh data directory, killed when dropped.
struct Server {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(binary: &Path) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("chancery-bench-fanout-")
            .tempdir()?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut child = Command::new(binary)
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0", "--demo", "--token"])
            .arg(format!("recorder:{TOKEN}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("the server's standard output")?;
        let mut server = Server {
            child,
            address: String::new(),
            dir,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads standard output for as long as the server runs, so that it never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        server.address = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("chancery: listening on http://") {
                        break rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                    }
                }
                Err(_) => bail!(
                    "the server printed no `chancery: listening on` line within {PATIENCE:?}; its log:\n{}",
                    server.log_tail()
                ),
            }
        };
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits for /readyz to answer 200: the demo is loaded and projected.
    async fn ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let answer = async {
                let mut http = Http::connect(&self.address, TOKEN).await?;
                http.request("GET", "/readyz", None).await
            }
            .await;
            if let Ok((200, _)) = answer {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("/readyz was not 200 within {PATIENCE:?} (last: {answer:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Latencies in microseconds, in buckets 1/64 of a power of two wide (so within 1.6 %), small
/// enough for every subscriber to keep its own and merge them at the end.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    const SUB: u64 = 64;

    fn new() -> Self {
        Histogram {
            counts: vec![0; 64 * 60],
            total: 0,
            max: 0,
        }
    }

    fn bucket(micros: u64) -> usize {
        if micros < Self::SUB {
            return micros as usize;
        }
        let power = 63 - u64::from(micros.leading_zeros()); // >= 6
        let sub = (micros >> (power - 6)) - Self::SUB;
        (Self::SUB + (power - 6) * Self::SUB + sub) as usize
    }

    /// The largest value that falls in `bucket`.
    fn upper(bucket: usize) -> u64 {
        let b = bucket as u64;
        if b < Self::SUB {
            return b;
        }
        let power = (b - Self::SUB) / Self::SUB + 6;
        let sub = (b - Self::SUB) % Self::SUB;
        ((Self::SUB + sub + 1) << (power - 6)) - 1
    }

    fn record(&mut self, micros: u64) {
        let bucket = Self::bucket(micros).min(self.counts.len() - 1);
        self.counts[bucket] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The `q` quantile in milliseconds (the upper edge of its bucket, so never flattering).
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::upper(bucket).min(self.max) as f64 / 1000.0;
            }
        }
        self.max as f64 / 1000.0
    }
}

/// When each event's mutation was sent, by its sequence number, in nanoseconds after `origin`
/// plus one (0: not sent yet). Shared by writers (who fill it) and subscribers (who read it).
struct SendTimes {
    origin: Instant,
    sent: Vec<AtomicU64>,
}

impl SendTimes {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    fn mark(&self, seq: u64) {
        if let Some(slot) = self.sent.get(seq as usize) {
            slot.store(self.nanos(Instant::now()) + 1, Ordering::Release);
        }
    }

    fn sent(&self, seq: u64) -> Option<u64> {
        match self.sent.get(seq as usize)?.load(Ordering::Acquire) {
            0 => None,
            n => Some(n - 1),
        }
    }
}

/// A UUID v7 whose last field is the event's sequence number, so a subscriber finds which
/// mutation an event came from in the event itself.
fn event_id(epoch_ms: u64, run: usize, seq: u64) -> String {
    format!(
        "{:08x}-{:04x}-7{:03x}-8000-{:012x}",
        epoch_ms >> 16,
        epoch_ms & 0xffff,
        run & 0xfff,
        seq
    )
}

fn seq_of(id: &str) -> Option<u64> {
    u64::from_str_radix(id.rsplit('-').next()?, 16).ok()
}

/// What one subscriber saw.
struct Seen {
    latencies: Histogram,
    /// Positions seen, as bits from the first position written.
    positions: Vec<u64>,
    received: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Events whose id named no mutation sent (before the first written position, or unsent).
    foreign: u64,
    /// Why the subscription ended early, if it did.
    ended: Option<String>,
}

impl Seen {
    fn has(&self, index: u64) -> bool {
        self.positions
            .get((index / 64) as usize)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// Marks `index`; false if it was already marked.
    fn mark(&mut self, index: u64) -> bool {
        let word = (index / 64) as usize;
        if self.positions.len() <= word {
            self.positions.resize(word + 1, 0);
        }
        let bit = 1 << (index % 64);
        let fresh = self.positions[word] & bit == 0;
        self.positions[word] |= bit;
        fresh
    }
}

/// The value after `"key":` in a compact JSON text, up to the next `,`, `}` or `"`.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(key)? + key.len();
    let rest = text[at..].trim_start_matches('"');
    let end = rest.find([',', '}', '"'])?;
    Some(&rest[..end])
}

struct SubscriberPlan {
    address: String,
    after: String,
    /// The first position the run writes (the warm-up event's).
    first: u64,
    /// The warm-up event's sequence number: seen, but not timed.
    warm_up: u64,
    sends: Arc<SendTimes>,
    /// Each subscriber's highest position so far, for the main task to see when all caught up.
    progress: Arc<Vec<AtomicU64>>,
    gate: Arc<Semaphore>,
    selections: usize,
}

/// One subscriber: connects, subscribes, then notes each event's arrival until told to stop.
async fn subscriber(
    index: usize,
    plan: Arc<SubscriberPlan>,
    ready: mpsc::Sender<anyhow::Result<()>>,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen {
        latencies: Histogram::new(),
        positions: Vec::new(),
        received: 0,
        duplicates: 0,
        out_of_order: 0,
        foreign: 0,
        ended: None,
    };
    let connected = async {
        let _permit = plan.gate.acquire().await?;
        let mut socket = crate::client::open_graphql_ws(&plan.address.to_string(), TOKEN).await?;
        let ack = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .context("no connection_ack in time")?
            .context("the socket closed before connection_ack")??;
        if !ack.to_text().is_ok_and(|t| t.contains("connection_ack")) {
            bail!("expected connection_ack, got {ack:?}");
        }
        let subscribe = json!({ "type": "subscribe", "id": "1", "payload": { "query": selection(index, plan.selections), "variables": { "after": plan.after } } });
        socket.send(Message::text(subscribe.to_string())).await?;
        anyhow::Ok(socket)
    }
    .await;
    let mut socket = match connected {
        Ok(socket) => {
            let _ = ready.send(Ok(())).await;
            socket
        }
        Err(e) => {
            let _ = ready
                .send(Err(e.context(format!("subscriber {index}"))))
                .await;
            seen.ended = Some("could not connect".into());
            return seen;
        }
    };
    let mut last = 0;
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.changed() => break,
            message = socket.next() => message,
        };
        let arrived = Instant::now();
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                seen.ended = Some(format!("closed by the server: {frame:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                seen.ended = Some(format!("socket error: {e}"));
                break;
            }
            None => {
                seen.ended = Some("the socket ended".into());
                break;
            }
        };
        let text = text.as_str();
        let (Some(position), Some(seq)) = (
            field(text, "\"pos\":").and_then(|p| p.parse::<u64>().ok()),
            field(text, "\"eventId\":").and_then(seq_of),
        ) else {
            if text.contains("\"ping\"") {
                let _ = socket
                    .send(Message::text(json!({ "type": "pong" }).to_string()))
                    .await;
                continue;
            }
            seen.ended = Some(format!("unexpected message: {text}"));
            break;
        };
        seen.received += 1;
        if position < plan.first {
            seen.foreign += 1;
            continue;
        }
        if !seen.mark(position - plan.first) {
            seen.duplicates += 1;
        } else if position < last {
            seen.out_of_order += 1;
        }
        if position > last {
            last = position;
            plan.progress[index].store(position, Ordering::Release);
        }
        match plan.sends.sent(seq) {
            Some(sent) if seq != plan.warm_up => {
                let delay = plan.sends.nanos(arrived).saturating_sub(sent);
                seen.latencies.record(delay / 1000);
            }
            Some(_) => {}
            None => seen.foreign += 1,
        }
    }
    seen
}

/// What the writers did.
#[derive(Default)]
struct Written {
    /// Acknowledged positions.
    positions: Vec<u64>,
    /// Send to acknowledgement.
    round_trips: Option<Histogram>,
    failures: Vec<String>,
    last_ack: Option<Instant>,
}

/// One writer: takes sequence numbers as the pacer hands them out, and records each as a
/// statement, awaiting its answer.
async fn writer(
    address: String,
    tickets: Arc<Mutex<mpsc::Receiver<u64>>>,
    deadline: Instant,
    sends: Arc<SendTimes>,
    epoch_ms: u64,
    run: usize,
) -> anyhow::Result<Written> {
    let mut http = Http::connect(&address, TOKEN).await?;
    let mut written = Written {
        round_trips: Some(Histogram::new()),
        ..Written::default()
    };
    loop {
        let Some(seq) = tickets.lock().await.recv().await else {
            break;
        };
        // A server that cannot keep up leaves tickets queued: the run writes for its seconds, and
        // the rate achieved says how far it fell short.
        if Instant::now() > deadline {
            continue;
        }
        let variables = json!({ "id": event_id(epoch_ms, run, seq), "summary": format!("fan-out event {seq}") });
        let sent = Instant::now();
        sends.mark(seq);
        match http.graphql_data(STATEMENT, variables).await {
            Ok(data) => match data["recordEvent"]["firstPosition"].as_u64() {
                Some(position) => {
                    let acked = Instant::now();
                    written.positions.push(position);
                    if let Some(h) = written.round_trips.as_mut() {
                        h.record(acked.duration_since(sent).as_micros() as u64);
                    }
                    written.last_ack = Some(acked);
                }
                None => written.failures.push(format!("no position in {data}")),
            },
            Err(e) => {
                written.failures.push(format!("{e:#}"));
                // The connection may be in any state after an error: start afresh.
                http = Http::connect(&address, TOKEN).await?;
            }
        }
    }
    Ok(written)
}

/// CPU time of a process so far, in seconds, from /proc: (user, system). The system part is
/// mostly the kernel's TCP work on the server's many small sends.
fn cpu_seconds(pid: &str, ticks_per_second: f64) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user / ticks_per_second, system / ticks_per_second))
}

/// Cores busy between two readings of [`cpu_seconds`]: (user, system).
fn cores(before: Option<(f64, f64)>, after: Option<(f64, f64)>, seconds: f64) -> (f64, f64) {
    match (before, after) {
        (Some(b), Some(a)) => ((a.0 - b.0) / seconds, (a.1 - b.1) / seconds),
        _ => (f64::NAN, f64::NAN),
    }
}

/// The server's own count and total seconds of appends (`chancery_append_seconds` in
/// /metrics): how long a write waits inside the server, apart from the HTTP round trip.
async fn server_appends(http: &mut Http) -> anyhow::Result<(f64, f64)> {
    Ok((
        metric(http, "chancery_append_seconds_count").await?,
        metric(http, "chancery_append_seconds_sum").await?,
    ))
}

/// One value from the server's /metrics.
async fn metric(http: &mut Http, name: &str) -> anyhow::Result<f64> {
    let (status, body) = http.request("GET", "/metrics", None).await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .with_context(|| format!("no {name} in /metrics"))
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The server's peak resident memory (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// One run's figures.
struct Measurement {
    achieved_rate: f64,
    written: u64,
    /// Events received, over all subscribers.
    deliveries: u64,
    delivery: Histogram,
    round_trips: Histogram,
    missing: u64,
    duplicates: u64,
    out_of_order: u64,
    foreign: u64,
    write_failures: usize,
    rss_mib: f64,
    /// Cores busy while writing and delivering (CPU seconds over wall seconds).
    client_cores: f64,
    /// The server's (user, system) cores.
    server_cores: (f64, f64),
    /// The mean time an append spent inside the server while writing, in milliseconds.
    server_append_ms: f64,
    /// Seconds from the last acknowledgement until every subscriber had everything.
    drain_seconds: f64,
    /// Subscription groups on the server once every subscriber was live, and the largest's members.
    groups: (f64, f64),
    ended_early: Vec<String>,
}

async fn measure(binary: &Path, scale: Scale, run: usize) -> anyhow::Result<Measurement> {
    let server = Server::start(binary)?;
    server.ready().await?;
    let address = server.address.clone();
    let mut http = Http::connect(&address, TOKEN).await?;
    let last = http
        .graphql_data(
            "{ events(last: 1) { edges { node { position cursor } } } }",
            json!({}),
        )
        .await?;
    let node = &last["events"]["edges"][0]["node"];
    let (Some(demo_head), Some(after)) = (node["position"].as_u64(), node["cursor"].as_str())
    else {
        bail!("the demo has no last event: {last}");
    };

    let total = scale.rate * scale.seconds;
    let warm_up = total; // the sequence numbers 0..total are the measured events
    let sends = Arc::new(SendTimes {
        origin: Instant::now(),
        sent: (0..=total).map(|_| AtomicU64::new(0)).collect(),
    });
    let plan = Arc::new(SubscriberPlan {
        address: address.clone(),
        after: after.to_owned(),
        first: demo_head + 1,
        warm_up,
        sends: Arc::clone(&sends),
        progress: Arc::new((0..scale.subscribers).map(|_| AtomicU64::new(0)).collect()),
        gate: Arc::new(Semaphore::new(CONNECTING_AT_ONCE)),
        selections: scale.selections,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel(scale.subscribers.max(1));
    let subscribers: Vec<_> = (0..scale.subscribers)
        .map(|i| {
            tokio::spawn(subscriber(
                i,
                Arc::clone(&plan),
                ready_tx.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    drop(ready_tx);
    for _ in 0..scale.subscribers {
        tokio::time::timeout(PATIENCE, ready_rx.recv())
            .await
            .context("subscribers did not all connect in time")?
            .context("a subscriber task ended before connecting")??;
    }

    // The warm-up event: once every subscriber has it, every subscription is live.
    let epoch_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    sends.mark(warm_up);
    let data = http
        .graphql_data(
            STATEMENT,
            json!({ "id": event_id(epoch_ms, run, warm_up), "summary": "fan-out warm-up" }),
        )
        .await?;
    let warm_position = data["recordEvent"]["firstPosition"]
        .as_u64()
        .with_context(|| format!("the warm-up event has no position: {data}"))?;
    if warm_position != plan.first {
        bail!(
            "the warm-up event went to position {warm_position}, not {}: is something else writing?",
            plan.first
        );
    }
    wait_for_all(&plan.progress, warm_position, PATIENCE)
        .await
        .context("not every subscriber received the warm-up event")?;
    let groups = (
        metric(&mut http, "chancery_subscription_groups").await?,
        metric(&mut http, "chancery_subscription_largest_group").await?,
    );

    // Writing, paced by the interval; several writers, since each awaits its answer.
    let ticks = ticks_per_second();
    let pid = server.pid().to_string();
    let client_cpu_before = cpu_seconds("self", ticks);
    let server_cpu_before = cpu_seconds(&pid, ticks);
    let (appends_before, append_seconds_before) = server_appends(&mut http).await?;
    let (ticket_tx, ticket_rx) = mpsc::channel(total.max(1) as usize);
    let tickets = Arc::new(Mutex::new(ticket_rx));
    let deadline = Instant::now() + Duration::from_secs(scale.seconds);
    let writers: Vec<_> = (0..scale.writers.max(1))
        .map(|_| {
            tokio::spawn(writer(
                address.clone(),
                Arc::clone(&tickets),
                deadline,
                Arc::clone(&sends),
                epoch_ms,
                run,
            ))
        })
        .collect();
    let started = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / scale.rate as f64));
    for seq in 0..total {
        interval.tick().await;
        if Instant::now() > deadline {
            break;
        }
        ticket_tx.send(seq).await?;
    }
    drop(ticket_tx);
    let mut written = Written::default();
    let mut round_trips = Histogram::new();
    for w in writers {
        let w = w.await??;
        written.positions.extend(w.positions);
        written.failures.extend(w.failures);
        if let Some(h) = &w.round_trips {
            round_trips.merge(h);
        }
        written.last_ack = written.last_ack.max(w.last_ack);
    }
    let last_ack = written.last_ack.context("no mutation was acknowledged")?;
    let write_seconds = last_ack.duration_since(started).as_secs_f64();
    let head = written
        .positions
        .iter()
        .copied()
        .max()
        .unwrap_or(warm_position);
    let caught_up = wait_for_all(&plan.progress, head, STALL).await;
    let drained = Instant::now();
    let busy = drained.duration_since(started).as_secs_f64();
    let (client_user, client_system) = cores(client_cpu_before, cpu_seconds("self", ticks), busy);
    let server_cores = cores(server_cpu_before, cpu_seconds(&pid, ticks), busy);
    let (appends_after, append_seconds_after) = server_appends(&mut http).await?;
    let server_append_ms = 1000.0 * (append_seconds_after - append_seconds_before)
        / (appends_after - appends_before).max(1.0);
    let rss_mib = peak_rss_mib(server.pid()).unwrap_or(f64::NAN);
    let _ = stop_tx.send(true);

    // Every acknowledged position (and the warm-up's) must have reached every subscriber.
    let mut acked: Vec<u64> = written.positions.clone();
    acked.push(warm_position);
    let mut delivery = Histogram::new();
    let mut m = Measurement {
        achieved_rate: written.positions.len() as f64 / write_seconds,
        written: written.positions.len() as u64,
        deliveries: 0,
        delivery: Histogram::new(),
        round_trips,
        missing: 0,
        duplicates: 0,
        out_of_order: 0,
        foreign: 0,
        write_failures: written.failures.len(),
        rss_mib,
        client_cores: client_user + client_system,
        server_cores,
        server_append_ms,
        drain_seconds: drained.duration_since(last_ack).as_secs_f64(),
        groups,
        ended_early: Vec::new(),
    };
    for (i, task) in subscribers.into_iter().enumerate() {
        let seen = task.await?;
        delivery.merge(&seen.latencies);
        m.missing += acked.iter().filter(|p| !seen.has(**p - plan.first)).count() as u64;
        m.duplicates += seen.duplicates;
        m.out_of_order += seen.out_of_order;
        m.foreign += seen.foreign;
        if let Some(why) = seen.ended {
            m.ended_early.push(format!("subscriber {i}: {why}"));
        }
        m.deliveries += seen.received;
    }
    m.delivery = delivery;
    if let Err(e) = caught_up {
        m.ended_early.push(format!("{e:#}"));
    }
    if let Some(first) = written.failures.first() {
        eprintln!(
            "fanout: {} mutations failed; the first: {first}",
            written.failures.len()
        );
    }
    Ok(m)
}

/// Waits until every subscriber's highest position is at least `position`, giving up once
/// deliveries as a whole made no progress for `stall`.
async fn wait_for_all(
    progress: &[AtomicU64],
    position: u64,
    stall: Duration,
) -> anyhow::Result<()> {
    let mut last_sum = 0u64;
    let mut last_change = Instant::now();
    loop {
        let mut behind = 0;
        let mut sum = 0u64;
        for p in progress {
            let p = p.load(Ordering::Acquire);
            sum = sum.wrapping_add(p);
            if p < position {
                behind += 1;
            }
        }
        if behind == 0 {
            return Ok(());
        }
        if sum != last_sum {
            last_sum = sum;
            last_change = Instant::now();
        } else if last_change.elapsed() > stall {
            bail!(
                "{behind} subscribers had not reached position {position} after {stall:?} without progress"
            );
        }
        // Checking the counters is cheap; the subscribers do the waiting on their sockets.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn run(scale: Scale, runs: usize, out: &Path, command: &str) -> anyhow::Result<()> {
    if scale.rate == 0 || scale.seconds == 0 {
        bail!("--rate and --seconds must be at least 1");
    }
    let binary = chancery_bin()?;
    let open_files = ensure_open_files((scale.subscribers + scale.writers) as u64 * 2 + 256)?;
    let mut measured = Vec::new();
    for run in 0..runs.max(1) {
        let m = measure(&binary, scale, run).await?;
        eprintln!(
            "fanout run {run}: {} events at {:.0}/s, {} deliveries, delivery p50 {:.2} ms p99 {:.2} ms max {:.2} ms, mutation p50 {:.2} ms p99 {:.2} ms, missing {} duplicates {} out of order {} foreign {}, write failures {}, drain {:.2} s, client {:.2} cores, server {:.2} user + {:.2} system cores, server's own append {:.1} ms, server peak RSS {:.0} MiB{}",
            m.written,
            m.achieved_rate,
            m.deliveries,
            m.delivery.quantile_ms(0.5),
            m.delivery.quantile_ms(0.99),
            m.delivery.max as f64 / 1000.0,
            m.round_trips.quantile_ms(0.5),
            m.round_trips.quantile_ms(0.99),
            m.missing,
            m.duplicates,
            m.out_of_order,
            m.foreign,
            m.write_failures,
            m.drain_seconds,
            m.client_cores,
            m.server_cores.0,
            m.server_cores.1,
            m.server_append_ms,
            m.rss_mib,
            m.ended_early
                .first()
                .map_or(String::new(), |e| format!("; ended early: {e}")),
        );
        measured.push(m);
    }
    let values = |f: &dyn Fn(&Measurement) -> f64| -> Vec<f64> { measured.iter().map(f).collect() };
    let m = |v: &Vec<f64>| median(&mut v.clone());
    let rate = values(&|x| x.achieved_rate);
    let p50 = values(&|x| x.delivery.quantile_ms(0.5));
    let p99 = values(&|x| x.delivery.quantile_ms(0.99));
    let max = values(&|x| x.delivery.max as f64 / 1000.0);
    let rt50 = values(&|x| x.round_trips.quantile_ms(0.5));
    let rt99 = values(&|x| x.round_trips.quantile_ms(0.99));
    let misses = values(&|x| (x.missing + x.duplicates + x.out_of_order + x.foreign) as f64);
    let rss = values(&|x| x.rss_mib);
    let client = values(&|x| x.client_cores);
    let server_user = values(&|x| x.server_cores.0);
    let server_system = values(&|x| x.server_cores.1);
    let append_ms = values(&|x| x.server_append_ms);
    let drain = values(&|x| x.drain_seconds);
    let failures: usize = measured.iter().map(|x| x.write_failures).sum();
    let total_misses: f64 = misses.iter().sum();
    let n = scale.subscribers;
    let target = Target::of(scale);
    // The CPU window runs over the write phase and the drain after it.
    let deliveries_per_second = m(&rate) * n as f64;
    let window = (scale.seconds as f64 + m(&drain)) / scale.seconds as f64;
    let per_delivery_us = |cores: f64| cores * window / deliveries_per_second * 1e6;
    let cpu_per_delivery: Vec<f64> = measured
        .iter()
        .map(|x| {
            let deliveries = x.achieved_rate * n as f64;
            (x.server_cores.0 + x.server_cores.1) * (scale.seconds as f64 + x.drain_seconds)
                / scale.seconds as f64
                / deliveries
                * 1e6
        })
        .collect();
    let figures = vec![
        Figure {
            name: "events recorded through GraphQL mutations".into(),
            value: m(&rate),
            unit: "events/s".into(),
            baseline_name: Some("the requested rate".into()),
            baseline: Some(scale.rate as f64),
            target: Some("≥ 0.95 × requested".into()),
            met: Some(m(&rate) >= 0.95 * scale.rate as f64),
            runs: rate.clone(),
            note: None,
        },
        Figure {
            name: format!("delivery latency p50, {n} subscribers"),
            value: m(&p50),
            unit: "ms".into(),
            baseline_name: Some("the mutation's own round trip, p50".into()),
            baseline: Some(m(&rt50)),
            target: None,
            met: None,
            runs: p50.clone(),
            note: None,
        },
        Figure {
            name: format!("delivery latency p99, {n} subscribers"),
            value: m(&p99),
            unit: "ms".into(),
            baseline_name: Some("the mutation's own round trip, p99".into()),
            baseline: Some(m(&rt99)),
            target: Some(target.p99_text()),
            met: target.p99_ms.map(|limit| m(&p99) <= limit),
            runs: p99.clone(),
            note: None,
        },
        Figure {
            name: format!("delivery latency max, {n} subscribers"),
            value: m(&max),
            unit: "ms".into(),
            baseline_name: None,
            baseline: None,
            target: None,
            met: None,
            runs: max.clone(),
            note: None,
        },
        Figure {
            name: "deliveries missing, duplicated, out of order or unknown (all runs)".into(),
            value: total_misses,
            unit: "deliveries".into(),
            baseline_name: None,
            baseline: None,
            target: Some("0".into()),
            met: Some(total_misses == 0.0),
            runs: misses.clone(),
            note: None,
        },
        Figure {
            name: "server CPU per delivery (user and system)".into(),
            value: m(&cpu_per_delivery),
            unit: "µs".into(),
            baseline_name: None,
            baseline: None,
            target: Some("≤ 0.3 µs".into()),
            met: Some(m(&cpu_per_delivery) <= 0.3),
            runs: cpu_per_delivery.clone(),
            note: None,
        },
        Figure {
            name: "server peak resident memory (VmHWM)".into(),
            value: m(&rss),
            unit: "MiB".into(),
            baseline_name: None,
            baseline: None,
            target: None,
            met: None,
            runs: rss.clone(),
            note: None,
        },
    ];
    let mut notes = vec![
        format!(
            "The real `chancery serve --demo` (sled store) on loopback; {n} WebSocket subscribers (graphql-transport-ws) on `events(after: <the demo's last cursor>)`; {} writers, each a keep-alive HTTP connection awaiting each `recordEvent` before taking the next, paced together by one tokio interval at {} events/s for {} s. A warm-up event, received by every subscriber before the clock starts, makes sure every subscription is live.",
            scale.writers, scale.rate, scale.seconds
        ),
        "Delivery latency runs from the instant a mutation is sent (just before its request is written to the socket) to the instant a subscriber's socket yields the event, both on one monotonic clock in the bench's process, over every (subscriber, event) pair. It therefore includes the durable commit (the mutation's round trip is the baseline) and any time the event waits for the bench's own tasks to be scheduled. Percentiles are the upper edges of histogram buckets 1/64 of a power of two wide (within 1.6 %); the maximum is exact.".into(),
        format!(
            "Where the time goes (medians over runs, from the write phase's start until every subscriber had everything): the bench used {:.2} cores, the server {:.2} cores of user time and {:.2} of system time, on a machine with {} (shared with other work); an append spent {:.1} ms on average inside the server (its `chancery_append_seconds`); the last subscriber caught up {:.2} s after the last acknowledgement. The client parses no JSON per event (it finds two aliased fields in the text), but still reads up to {} WebSocket frames per second. The writers stop taking tickets after {} s, so a server that cannot keep up shows as a lower achieved rate.",
            m(&client),
            m(&server_user),
            m(&server_system),
            std::thread::available_parallelism().map_or(1, |c| c.get()),
            m(&append_ms),
            m(&drain),
            n as u64 * scale.rate,
            scale.seconds
        ),
        open_files,
        format!(
            "Subscription groups on the server once every subscriber was live (its /metrics): {:.0}, the largest with {:.0} members. Subscribers asking the same document with the same variables and grants share one execution; each answer is encoded once and each connection writes the frame around it.",
            m(&values(&|x| x.groups.0)),
            m(&values(&|x| x.groups.1)),
        ),
    ];
    if m(&p99) > target.p99_ms.unwrap_or(f64::INFINITY) && m(&p50) <= m(&rt50) {
        notes.push(format!(
            "Subscribers received events before the writers had their answers (delivery p50 {:.1} ms against a mutation round trip of {:.1} ms): what misses the target is the write's latency under fan-out, not delivery lagging behind the log. The mutations are answered on the same two tokio workers that write every connection's frames.",
            m(&p50),
            m(&rt50)
        ));
    }
    if deliveries_per_second > 0.0 {
        let (user_us, system_us) = (
            per_delivery_us(m(&server_user)),
            per_delivery_us(m(&server_system)),
        );
        let requested = scale.rate as f64 * n as f64;
        notes.push(format!(
            "Server CPU per delivery: {user_us:.2} µs of user time and {system_us:.2} µs of system time (the cores above over the {deliveries_per_second:.0} deliveries per second made). At that cost, {} events/s to {n} subscribers takes {:.2} cores of the server, {:.2} of them in the kernel's sends (a `sendto` per connection per flush), on a machine with {}.",
            scale.rate,
            (user_us + system_us) * requested / 1e6,
            system_us * requested / 1e6,
            std::thread::available_parallelism().map_or(1, |c| c.get()),
        ));
    }
    if failures > 0 {
        notes.push(format!(
            "{failures} mutations failed over all runs (their events are not counted as written)."
        ));
    }
    let ended: Vec<&String> = measured.iter().flat_map(|x| &x.ended_early).collect();
    if !ended.is_empty() {
        notes.push(format!(
            "Subscriptions that ended early or fell behind: {} (first: {}).",
            ended.len(),
            ended[0]
        ));
    }
    let section = Section {
        title: target.title.into(),
        command: command.into(),
        machine: machine(),
        date: today(),
        scale: format!(
            "{n} subscribers over {} selection(s), {} events/s requested for {} s ({} events), {} writers, {} runs",
            scale.selections,
            scale.rate,
            scale.seconds,
            scale.rate * scale.seconds,
            scale.writers,
            runs.max(1)
        ),
        figures,
        notes,
    };
    crate::report::write(out, target.key, section)?;
    if total_misses > 0.0 || !ended.is_empty() {
        bail!(
            "fan-out broke the subscription invariant (every position once, in order): {total_misses} bad deliveries, {} subscriptions ended early or fell behind",
            ended.len()
        );
    }
    if failures > 0 {
        bail!("{failures} mutations failed");
    }
    Ok(())
}

/// The issue's targets at the scales they are set for; each scale reports in a section of its own.
struct Target {
    key: &'static str,
    title: &'static str,
    /// The delivery p99 limit at this scale, if one is set.
    p99_ms: Option<f64>,
}

impl Target {
    fn of(scale: Scale) -> Target {
        if scale.selections >= 100 {
            Target {
                key: "fanout-selections",
                title: "Live fan-out over distinct selections",
                p99_ms: (scale.subscribers >= 1000 && scale.rate >= 500).then_some(100.0),
            }
        } else if scale.subscribers >= 10_000 {
            Target {
                key: "fanout-10k",
                title: "Live fan-out to 10,000 subscribers",
                p99_ms: (scale.rate >= 100).then_some(100.0),
            }
        } else {
            Target {
                key: "fanout",
                title: "Live fan-out",
                p99_ms: (scale.subscribers >= 1000 && scale.rate >= 1000).then_some(50.0),
            }
        }
    }

    fn p99_text(&self) -> String {
        match self.p99_ms {
            Some(limit) => format!("≤ {limit:.0} ms"),
            None => "set at 1,000 subscribers and 1,000 events/s, 10,000 at 100/s, or 1,000 over 100 selections at 500/s (not this scale)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_hold_their_values_within_their_edges() {
        for v in [
            0, 1, 63, 64, 65, 127, 128, 1000, 50_000, 1_234_567, 99_999_999,
        ] {
            let b = Histogram::bucket(v);
            assert!(Histogram::upper(b) >= v, "{v} above its bucket {b}");
            assert!(
                b == 0 || Histogram::upper(b - 1) < v,
                "{v} belongs in an earlier bucket than {b}"
            );
            assert!(Histogram::upper(b) as f64 <= v as f64 * 1.016 + 1.0);
        }
    }

    #[test]
    fn quantiles_come_from_the_right_rank() {
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record(v * 1000);
        }
        let p50 = h.quantile_ms(0.5);
        let p99 = h.quantile_ms(0.99);
        assert!((500.0..=508.0).contains(&p50), "{p50}");
        assert!((990.0..=1000.0).contains(&p99), "{p99}");
        assert_eq!(h.max, 1_000_000);
    }

    #[test]
    fn a_position_seen_twice_is_a_duplicate_and_an_unseen_one_is_missing() {
        let mut seen = Seen {
            latencies: Histogram::new(),
            positions: Vec::new(),
            received: 0,
            duplicates: 0,
            out_of_order: 0,
            foreign: 0,
            ended: None,
        };
        assert!(seen.mark(0));
        assert!(seen.mark(130));
        assert!(!seen.mark(130));
        assert!(seen.has(0) && seen.has(130));
        assert!(!seen.has(1) && !seen.has(129) && !seen.has(100_000));
    }

    #[test]
    fn a_subscriber_finds_its_fields_in_the_server_s_text() {
        let text = r#"{"type":"next","id":"1","payload":{"data":{"events":{"eventId":"0197a3b4-5c6d-7001-8000-00000000002a","pos":131}}}}"#;
        assert_eq!(field(text, "\"pos\":"), Some("131"));
        assert_eq!(field(text, "\"eventId\":").and_then(seq_of), Some(42));
        assert_eq!(seq_of(&event_id(1_700_000_000_000, 3, 42)), Some(42));
    }
}
