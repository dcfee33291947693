//! Live fan-out: the real `chancery` server with the demo data, many WebSocket subscribers on
//! `events(after: <the demo's last cursor>)` (graphql-transport-ws), and events recorded through
//! GraphQL mutations at a steady rate meanwhile. Measures how long each event takes from its
//! mutation being sent to each subscriber receiving it, and checks that every subscriber saw
//! every recorded position once, in order.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Mutex, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use crate::client::{GraphqlSocket, Http, chancery_bin};
use crate::report::{Figure, Section, machine, med, today};
use crate::servers;

pub const DEFAULT_SUBSCRIBERS: usize = 50;
pub const DEFAULT_RATE: u64 = 50;
pub const DEFAULT_SECONDS: u64 = 3;
pub const DEFAULT_WRITERS: usize = 32;

/// The recorder's token (the server wants at least 16 characters).
const TOKEN: &str = "fanout-bench-recorder-token";

/// How long a step may take on a loaded machine before the run gives up: all subscribers
/// connecting, the warm-up event reaching them all.
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

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// When each event's mutation was sent, by its sequence number, in nanoseconds after `origin`
/// plus one (0: not sent yet). Shared by writers (who fill it) and subscribers (who read it).
struct SendTimes {
    origin: Instant,
    sent: Vec<AtomicU64>,
}

impl SendTimes {
    /// Slots for the sequence numbers `0..count`, none sent yet.
    fn new(count: u64) -> Self {
        SendTimes {
            origin: Instant::now(),
            sent: (0..count).map(|_| AtomicU64::new(0)).collect(),
        }
    }

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

/// What the ids of one run's events are made of: the run's start and its number.
#[derive(Debug, Clone, Copy)]
struct EventIds {
    epoch_ms: u64,
    run: usize,
}

impl EventIds {
    /// The ids of run `run`, starting now.
    fn new(run: usize) -> anyhow::Result<EventIds> {
        let epoch_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
        Ok(EventIds { epoch_ms, run })
    }

    /// The id of the event of mutation `seq`.
    fn id(self, seq: u64) -> String {
        event_id(self.epoch_ms, self.run, seq)
    }
}

fn seq_of(id: &str) -> Option<u64> {
    u64::from_str_radix(id.rsplit('-').next()?, 16).ok()
}

/// What one subscriber saw.
struct Seen {
    latencies: Histogram,
    /// Positions seen, as bits from the first position written.
    positions: Vec<u64>,
    /// The highest position seen so far.
    highest: u64,
    received: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Events whose id named no mutation sent (before the first written position, or unsent).
    foreign: u64,
    /// Why the subscription ended early, if it did.
    ended: Option<String>,
}

impl Seen {
    fn new() -> Self {
        Seen {
            latencies: Histogram::new(),
            positions: Vec::new(),
            highest: 0,
            received: 0,
            duplicates: 0,
            out_of_order: 0,
            foreign: 0,
            ended: None,
        }
    }

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

    /// Notes the event of mutation `seq` at `position`, which arrived at `arrived`: whether it
    /// is new, in order and known, and how long it took; publishes subscriber `index`'s progress.
    fn note(
        &mut self,
        plan: &SubscriberPlan,
        index: usize,
        (position, seq): (u64, u64),
        arrived: Instant,
    ) {
        self.received += 1;
        if position < plan.first {
            self.foreign += 1;
            return;
        }
        if !self.mark(position - plan.first) {
            self.duplicates += 1;
        } else if position < self.highest {
            self.out_of_order += 1;
        }
        if position > self.highest {
            self.highest = position;
            plan.progress[index].store(position, Ordering::Release);
        }
        match plan.sends.sent(seq) {
            Some(sent) if seq != plan.warm_up => {
                let delay = plan.sends.nanos(arrived).saturating_sub(sent);
                self.latencies.record(delay / 1000);
            }
            Some(_) => {}
            None => self.foreign += 1,
        }
    }
}

/// The value after `"key":` in a compact JSON text, up to the next `,`, `}` or `"`.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(key)? + key.len();
    let rest = text[at..].trim_start_matches('"');
    let end = rest.find([',', '}', '"'])?;
    Some(&rest[..end])
}

/// The position and the mutation's sequence number of an event in a `next` message's text.
fn event_of(text: &str) -> Option<(u64, u64)> {
    let position = field(text, "\"pos\":").and_then(|p| p.parse::<u64>().ok())?;
    let seq = field(text, "\"eventId\":").and_then(seq_of)?;
    Some((position, seq))
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
    stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::new();
    match subscribe(index, &plan).await {
        Ok(socket) => {
            let _ = ready.send(Ok(())).await;
            follow(index, &plan, socket, stop, &mut seen).await;
        }
        Err(e) => {
            let _ = ready
                .send(Err(e.context(format!("subscriber {index}"))))
                .await;
            seen.ended = Some("could not connect".into());
        }
    }
    seen
}

/// Connects subscriber `index` (no more than [`CONNECTING_AT_ONCE`] handshakes at a time),
/// awaits the server's `connection_ack`, and subscribes to the events after the demo's.
async fn subscribe(index: usize, plan: &SubscriberPlan) -> anyhow::Result<GraphqlSocket> {
    let _permit = plan.gate.acquire().await?;
    let mut socket = crate::client::open_graphql_ws(&plan.address, TOKEN).await?;
    let ack = tokio::time::timeout(PATIENCE, socket.next())
        .await
        .context("no connection_ack in time")?
        .context("the socket closed before connection_ack")??;
    if !ack.to_text().is_ok_and(|t| t.contains("connection_ack")) {
        bail!("expected connection_ack, got {ack:?}");
    }
    let subscribe = json!({ "type": "subscribe", "id": "1", "payload": { "query": selection(index, plan.selections), "variables": { "after": plan.after } } });
    socket.send(Message::text(subscribe.to_string())).await?;
    Ok(socket)
}

/// Notes every event subscriber `index` receives until told to stop; says in `seen.ended` why
/// the subscription ended if it ended first.
async fn follow(
    index: usize,
    plan: &SubscriberPlan,
    mut socket: GraphqlSocket,
    mut stop: watch::Receiver<bool>,
    seen: &mut Seen,
) {
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.changed() => break,
            message = socket.next() => message,
        };
        let arrived = Instant::now();
        let text = match text_of(message) {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(why) => {
                seen.ended = Some(why);
                break;
            }
        };
        let text = text.as_str();
        match event_of(text) {
            Some(event) => seen.note(plan, index, event, arrived),
            None if text.contains("\"ping\"") => {
                let _ = socket
                    .send(Message::text(json!({ "type": "pong" }).to_string()))
                    .await;
            }
            None => {
                seen.ended = Some(format!("unexpected message: {text}"));
                break;
            }
        }
    }
}

/// The text of a subscriber's next message: `None` for a frame it passes over, or why the
/// subscription ended.
fn text_of(
    message: Option<Result<Message, tungstenite::Error>>,
) -> Result<Option<Utf8Bytes>, String> {
    match message {
        Some(Ok(Message::Text(text))) => Ok(Some(text)),
        Some(Ok(Message::Close(frame))) => Err(format!("closed by the server: {frame:?}")),
        Some(Ok(_)) => Ok(None),
        Some(Err(e)) => Err(format!("socket error: {e}")),
        None => Err("the socket ended".into()),
    }
}

/// What the writers did.
#[derive(Default)]
struct Written {
    /// Acknowledged positions.
    positions: Vec<u64>,
    /// Send to acknowledgement.
    round_trips: Histogram,
    failures: Vec<String>,
    last_ack: Option<Instant>,
}

impl Written {
    /// Adds what another writer did.
    fn merge(&mut self, other: Written) {
        self.positions.extend(other.positions);
        self.failures.extend(other.failures);
        self.round_trips.merge(&other.round_trips);
        self.last_ack = self.last_ack.max(other.last_ack);
    }
}

/// One writer: takes sequence numbers as the pacer hands them out, and records each as a
/// statement, awaiting its answer.
async fn writer(
    address: String,
    tickets: Arc<Mutex<mpsc::Receiver<u64>>>,
    deadline: Instant,
    sends: Arc<SendTimes>,
    ids: EventIds,
) -> anyhow::Result<Written> {
    let mut http = Http::connect(&address, TOKEN).await?;
    let mut written = Written::default();
    loop {
        let Some(seq) = tickets.lock().await.recv().await else {
            break;
        };
        // A server that cannot keep up leaves tickets queued: the run writes for its seconds, and
        // the rate achieved says how far it fell short.
        if Instant::now() > deadline {
            continue;
        }
        let variables = json!({ "id": ids.id(seq), "summary": format!("fan-out event {seq}") });
        let sent = Instant::now();
        sends.mark(seq);
        match http.graphql_data(STATEMENT, variables).await {
            Ok(data) => match data["recordEvent"]["firstPosition"].as_u64() {
                Some(position) => {
                    let acked = Instant::now();
                    written.positions.push(position);
                    written
                        .round_trips
                        .record(acked.duration_since(sent).as_micros() as u64);
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
        http.metric("chancery_append_seconds_count").await?,
        http.metric("chancery_append_seconds_sum").await?,
    ))
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Readings of CPU time and of the server's appends, taken before and after the write phase.
struct Usage {
    /// This process's (user, system) CPU seconds.
    client: Option<(f64, f64)>,
    /// The server's (user, system) CPU seconds.
    server: Option<(f64, f64)>,
    /// The server's count and total seconds of appends.
    appends: (f64, f64),
}

impl Usage {
    /// Reads this process's CPU time, then the server's (process `pid`), then its appends.
    async fn read(pid: &str, ticks: f64, http: &mut Http) -> anyhow::Result<Usage> {
        Ok(Usage {
            client: cpu_seconds("self", ticks),
            server: cpu_seconds(pid, ticks),
            appends: server_appends(http).await?,
        })
    }
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
    /// What each subscriber's connection added to the server's resident memory, in KiB: the
    /// growth of its VmRSS from before the first connection to once every subscriber was live
    /// and idle (initialised, one subscription, the warm-up event delivered), over the
    /// subscribers.
    idle_socket_kib: f64,
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

impl Measurement {
    /// The figures of the write phase; what the subscribers saw is added by [`Self::tally`].
    fn of_writes(
        phase: &WritePhase,
        groups: (f64, f64),
        rss_mib: f64,
        idle_socket_kib: f64,
    ) -> Measurement {
        let written = &phase.written;
        let busy = phase.drained.duration_since(phase.started).as_secs_f64();
        let (client_user, client_system) = cores(phase.before.client, phase.after.client, busy);
        let (appends_before, append_seconds_before) = phase.before.appends;
        let (appends_after, append_seconds_after) = phase.after.appends;
        let write_seconds = phase.last_ack.duration_since(phase.started).as_secs_f64();
        Measurement {
            achieved_rate: written.positions.len() as f64 / write_seconds,
            written: written.positions.len() as u64,
            deliveries: 0,
            delivery: Histogram::new(),
            round_trips: written.round_trips.clone(),
            missing: 0,
            duplicates: 0,
            out_of_order: 0,
            foreign: 0,
            write_failures: written.failures.len(),
            rss_mib,
            idle_socket_kib,
            client_cores: client_user + client_system,
            server_cores: cores(phase.before.server, phase.after.server, busy),
            server_append_ms: 1000.0 * (append_seconds_after - append_seconds_before)
                / (appends_after - appends_before).max(1.0),
            drain_seconds: phase.drained.duration_since(phase.last_ack).as_secs_f64(),
            groups,
            ended_early: Vec::new(),
        }
    }

    /// Adds what every subscriber saw: every position in `acked` must have reached each of
    /// them, once and in order.
    async fn tally(
        &mut self,
        subscribers: Vec<JoinHandle<Seen>>,
        acked: &[u64],
        first: u64,
    ) -> anyhow::Result<()> {
        for (i, task) in subscribers.into_iter().enumerate() {
            let seen = task.await?;
            self.delivery.merge(&seen.latencies);
            self.missing += acked.iter().filter(|p| !seen.has(**p - first)).count() as u64;
            self.duplicates += seen.duplicates;
            self.out_of_order += seen.out_of_order;
            self.foreign += seen.foreign;
            if let Some(why) = seen.ended {
                self.ended_early.push(format!("subscriber {i}: {why}"));
            }
            self.deliveries += seen.received;
        }
        Ok(())
    }

    /// Deliveries that broke the invariant: missing, duplicated, out of order or unknown.
    fn bad_deliveries(&self) -> u64 {
        self.missing + self.duplicates + self.out_of_order + self.foreign
    }

    /// The run in one line, for the bench's standard error.
    fn summary(&self) -> String {
        format!(
            "{} events at {:.0}/s, {} deliveries, delivery p50 {:.2} ms p99 {:.2} ms max {:.2} ms, mutation p50 {:.2} ms p99 {:.2} ms, missing {} duplicates {} out of order {} foreign {}, write failures {}, drain {:.2} s, client {:.2} cores, server {:.2} user + {:.2} system cores, server's own append {:.1} ms, server peak RSS {:.0} MiB{}",
            self.written,
            self.achieved_rate,
            self.deliveries,
            self.delivery.quantile_ms(0.5),
            self.delivery.quantile_ms(0.99),
            self.delivery.max as f64 / 1000.0,
            self.round_trips.quantile_ms(0.5),
            self.round_trips.quantile_ms(0.99),
            self.missing,
            self.duplicates,
            self.out_of_order,
            self.foreign,
            self.write_failures,
            self.drain_seconds,
            self.client_cores,
            self.server_cores.0,
            self.server_cores.1,
            self.server_append_ms,
            self.rss_mib,
            self.ended_early
                .first()
                .map_or(String::new(), |e| format!("; ended early: {e}")),
        )
    }
}

/// One run: a fresh demo server, every subscriber live, then the paced writes and what every
/// subscriber saw of them.
async fn measure(binary: &Path, scale: Scale, run: usize) -> anyhow::Result<Measurement> {
    let dir = tempfile::Builder::new()
        .prefix("chancery-bench-fanout-")
        .tempdir()?;
    let data = dir.path().join("data");
    let server = servers::start_demo(binary, &data, dir.path().join("server.log"), TOKEN).await?;
    let address = server.address.to_string();
    let mut http = Http::connect(&address, TOKEN).await?;
    let (demo_head, after) = demo_tail(&mut http).await?;
    // The sequence numbers 0..total are the measured events; the warm-up's is the next.
    let total = scale.rate * scale.seconds;
    let plan = Arc::new(SubscriberPlan {
        address: address.clone(),
        after,
        first: demo_head + 1,
        warm_up: total,
        sends: Arc::new(SendTimes::new(total + 1)),
        progress: Arc::new((0..scale.subscribers).map(|_| AtomicU64::new(0)).collect()),
        gate: Arc::new(Semaphore::new(CONNECTING_AT_ONCE)),
        selections: scale.selections,
    });
    let (rss_before_mb, _) = server.memory()?;
    let subscribers = start_subscribers(&plan, scale.subscribers).await?;
    let ids = EventIds::new(run)?;
    let warm_position = warm_up(&mut http, &plan, ids).await?;
    let (rss_idle_mb, _) = server.memory()?;
    let idle_socket_kib =
        (rss_idle_mb - rss_before_mb) * 1e6 / 1024.0 / scale.subscribers.max(1) as f64;
    let groups = (
        http.metric("chancery_subscription_groups").await?,
        http.metric("chancery_subscription_largest_group").await?,
    );
    let pid = server.pid()?.to_string();
    let phase = write_and_drain(&pid, &mut http, &plan, scale, ids, warm_position).await?;
    let rss_mib = servers::peak_rss_mib(&server).unwrap_or(f64::NAN);
    let _ = subscribers.stop.send(true);

    let mut m = Measurement::of_writes(&phase, groups, rss_mib, idle_socket_kib);
    let mut acked: Vec<u64> = phase.written.positions.clone();
    acked.push(warm_position);
    m.tally(subscribers.tasks, &acked, plan.first).await?;
    if let Err(e) = phase.caught_up {
        m.ended_early.push(format!("{e:#}"));
    }
    if let Some(first) = phase.written.failures.first() {
        eprintln!(
            "fanout: {} mutations failed; the first: {first}",
            phase.written.failures.len()
        );
    }
    Ok(m)
}

/// The demo's last event: its position, and its cursor, after which the subscribers start.
async fn demo_tail(http: &mut Http) -> anyhow::Result<(u64, String)> {
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
    Ok((demo_head, after.to_owned()))
}

/// A run's subscriber tasks, and the switch that tells them to stop.
struct Subscribers {
    tasks: Vec<JoinHandle<Seen>>,
    stop: watch::Sender<bool>,
}

/// Starts `count` subscribers and waits until every one has subscribed.
async fn start_subscribers(
    plan: &Arc<SubscriberPlan>,
    count: usize,
) -> anyhow::Result<Subscribers> {
    let (stop, stop_rx) = watch::channel(false);
    let tasks = servers::spawn_subscribers(count, PATIENCE, |i, ready| {
        tokio::spawn(subscriber(i, Arc::clone(plan), ready, stop_rx.clone()))
    })
    .await?;
    Ok(Subscribers { tasks, stop })
}

/// Records the warm-up event and waits until every subscriber has it: then every subscription
/// is live. Answers its position.
async fn warm_up(http: &mut Http, plan: &SubscriberPlan, ids: EventIds) -> anyhow::Result<u64> {
    plan.sends.mark(plan.warm_up);
    let data = http
        .graphql_data(
            STATEMENT,
            json!({ "id": ids.id(plan.warm_up), "summary": "fan-out warm-up" }),
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
    Ok(warm_position)
}

/// The write phase as it went: what the writers did and when, and the readings around it.
struct WritePhase {
    written: Written,
    started: Instant,
    last_ack: Instant,
    /// When every subscriber had every acknowledged event, or the wait gave up.
    drained: Instant,
    /// Whether every subscriber caught up.
    caught_up: anyhow::Result<()>,
    before: Usage,
    after: Usage,
}

/// Writes at the paced rate, then waits until every subscriber has every acknowledged event;
/// reads the CPU and append counters of this process and the server (`pid`) around it all.
async fn write_and_drain(
    pid: &str,
    http: &mut Http,
    plan: &SubscriberPlan,
    scale: Scale,
    ids: EventIds,
    warm_position: u64,
) -> anyhow::Result<WritePhase> {
    let ticks = ticks_per_second();
    let before = Usage::read(pid, ticks, http).await?;
    let (written, started) = write_paced(&plan.address, scale, &plan.sends, ids).await?;
    let last_ack = written.last_ack.context("no mutation was acknowledged")?;
    let head = written
        .positions
        .iter()
        .copied()
        .max()
        .unwrap_or(warm_position);
    let caught_up = wait_for_all(&plan.progress, head, STALL).await;
    let drained = Instant::now();
    let after = Usage::read(pid, ticks, http).await?;
    Ok(WritePhase {
        written,
        started,
        last_ack,
        drained,
        caught_up,
        before,
        after,
    })
}

/// Hands out the run's sequence numbers at the requested rate to several writers (each awaits
/// its answer, so one alone could not keep the pace) until the run's seconds are up. Answers
/// what they did, and when the pacing started.
async fn write_paced(
    address: &str,
    scale: Scale,
    sends: &Arc<SendTimes>,
    ids: EventIds,
) -> anyhow::Result<(Written, Instant)> {
    let total = scale.rate * scale.seconds;
    let (ticket_tx, ticket_rx) = mpsc::channel(total.max(1) as usize);
    let tickets = Arc::new(Mutex::new(ticket_rx));
    let deadline = Instant::now() + Duration::from_secs(scale.seconds);
    let writers: Vec<_> = (0..scale.writers.max(1))
        .map(|_| {
            tokio::spawn(writer(
                address.to_owned(),
                Arc::clone(&tickets),
                deadline,
                Arc::clone(sends),
                ids,
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
    for w in writers {
        written.merge(w.await??);
    }
    Ok((written, started))
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
    // Each process holds its own end of every connection: the bench its clients, the server
    // their peers, each with a few hundred files of its own besides.
    let open_files = ensure_open_files((scale.subscribers + scale.writers) as u64 + 512)?;
    let mut measured = Vec::new();
    for run in 0..runs.max(1) {
        let m = measure(&binary, scale, run).await?;
        eprintln!("fanout run {run}: {}", m.summary());
        measured.push(m);
    }
    let target = Target::of(scale);
    let section = Section {
        title: target.title.into(),
        command: command.into(),
        machine: machine(),
        date: today(),
        scale: format!(
            "{} subscribers over {} selection(s), {} events/s requested for {} s ({} events), {} writers, {} runs",
            scale.subscribers,
            scale.selections,
            scale.rate,
            scale.seconds,
            scale.rate * scale.seconds,
            scale.writers,
            runs.max(1)
        ),
        figures: figures(scale, &target, &measured),
        notes: notes(scale, &target, &measured, open_files),
    };
    crate::report::write(out, target.key, section)?;
    let total_misses: u64 = measured.iter().map(Measurement::bad_deliveries).sum();
    let failures: usize = measured.iter().map(|x| x.write_failures).sum();
    let ended = measured.iter().flat_map(|x| &x.ended_early).count();
    if total_misses > 0 || ended > 0 {
        bail!(
            "fan-out broke the subscription invariant (every position once, in order): {total_misses} bad deliveries, {ended} subscriptions ended early or fell behind"
        );
    }
    if failures > 0 {
        bail!("{failures} mutations failed");
    }
    Ok(())
}

/// One value of every run.
fn each(measured: &[Measurement], value: impl Fn(&Measurement) -> f64) -> Vec<f64> {
    measured.iter().map(value).collect()
}

/// Server CPU time (user and system) per delivery of a run, in µs, over the write phase and the
/// drain after it.
fn cpu_per_delivery_us(m: &Measurement, scale: Scale) -> f64 {
    let deliveries = m.achieved_rate * scale.subscribers as f64;
    (m.server_cores.0 + m.server_cores.1) * (scale.seconds as f64 + m.drain_seconds)
        / scale.seconds as f64
        / deliveries
        * 1e6
}

/// The report's figures: medians over the runs.
fn figures(scale: Scale, target: &Target, measured: &[Measurement]) -> Vec<Figure> {
    let n = scale.subscribers;
    let requested = scale.rate as f64;
    let p99 = each(measured, |x| x.delivery.quantile_ms(0.99));
    let p99_met = target.p99_ms.map(|limit| med(&p99) <= limit);
    let misses = each(measured, |x| x.bad_deliveries() as f64);
    let total_misses: f64 = misses.iter().sum();
    vec![
        Figure::of_runs(
            "events recorded through GraphQL mutations",
            each(measured, |x| x.achieved_rate),
            "events/s",
        )
        .against("the requested rate", requested)
        .target("≥ 0.95 × requested", |f| f.value >= 0.95 * requested),
        Figure::of_runs(
            format!("delivery latency p50, {n} subscribers"),
            each(measured, |x| x.delivery.quantile_ms(0.5)),
            "ms",
        )
        .against(
            "the mutation's own round trip, p50",
            med(&each(measured, |x| x.round_trips.quantile_ms(0.5))),
        ),
        Figure::of_runs(format!("delivery latency p99, {n} subscribers"), p99, "ms")
            .against(
                "the mutation's own round trip, p99",
                med(&each(measured, |x| x.round_trips.quantile_ms(0.99))),
            )
            .with_target(target.p99_text(), p99_met),
        Figure::of_runs(
            format!("delivery latency max, {n} subscribers"),
            each(measured, |x| x.delivery.max as f64 / 1000.0),
            "ms",
        ),
        Figure {
            value: total_misses,
            ..Figure::of_runs(
                "deliveries missing, duplicated, out of order or unknown (all runs)",
                misses,
                "deliveries",
            )
        }
        .target("0", |f| f.value == 0.0),
        Figure::of_runs(
            "server CPU per delivery (user and system)",
            each(measured, |x| cpu_per_delivery_us(x, scale)),
            "µs",
        )
        .target("≤ 0.3 µs", |f| f.value <= 0.3),
        Figure::of_runs(
            "server peak resident memory (VmHWM)",
            each(measured, |x| x.rss_mib),
            "MiB",
        ),
        Figure::of_runs(
            format!("server memory per idle WebSocket ({n} connections, initialised, one subscription each)"),
            each(measured, |x| x.idle_socket_kib),
            "KiB",
        )
        .target("≤ 16 KB", |f| f.value * 1024.0 <= 16_000.0),
    ]
}

/// The report's notes: how the runs were made (`open_files`: what was done about the open-file
/// limit), where the time went, and what failed.
fn notes(
    scale: Scale,
    target: &Target,
    measured: &[Measurement],
    open_files: String,
) -> Vec<String> {
    let n = scale.subscribers;
    let m = |value: fn(&Measurement) -> f64| med(&each(measured, value));
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let mut notes = vec![
        format!(
            "The real `chancery serve --demo` (sled store) on loopback; {n} WebSocket subscribers (graphql-transport-ws) on `events(after: <the demo's last cursor>)`; {} writers, each a keep-alive HTTP connection awaiting each `recordEvent` before taking the next, paced together by one tokio interval at {} events/s for {} s. A warm-up event, received by every subscriber before the clock starts, makes sure every subscription is live.",
            scale.writers, scale.rate, scale.seconds
        ),
        "Delivery latency runs from the instant a mutation is sent (just before its request is written to the socket) to the instant a subscriber's socket yields the event, both on one monotonic clock in the bench's process, over every (subscriber, event) pair. It therefore includes the durable commit (the mutation's round trip is the baseline) and any time the event waits for the bench's own tasks to be scheduled. Percentiles are the upper edges of histogram buckets 1/64 of a power of two wide (within 1.6 %); the maximum is exact.".into(),
        format!(
            "Where the time goes (medians over runs, from the write phase's start until every subscriber had everything): the bench used {:.2} cores, the server {:.2} cores of user time and {:.2} of system time, on a machine with {} (shared with other work); an append spent {:.1} ms on average inside the server (its `chancery_append_seconds`); the last subscriber caught up {:.2} s after the last acknowledgement. The client parses no JSON per event (it finds two aliased fields in the text), but still reads up to {} WebSocket frames per second. The writers stop taking tickets after {} s, so a server that cannot keep up shows as a lower achieved rate.",
            m(|x| x.client_cores),
            m(|x| x.server_cores.0),
            m(|x| x.server_cores.1),
            cores,
            m(|x| x.server_append_ms),
            m(|x| x.drain_seconds),
            n as u64 * scale.rate,
            scale.seconds
        ),
        open_files,
        format!(
            "Subscription groups on the server once every subscriber was live (its /metrics): {:.0}, the largest with {:.0} members. Subscribers asking the same document with the same variables and grants share one execution; each answer is encoded once and each connection writes the frame around it.",
            m(|x| x.groups.0),
            m(|x| x.groups.1),
        ),
        format!(
            "Memory per idle WebSocket: the growth of the server's VmRSS from before the first subscriber connected to once all {n} were live and idle (initialised, one subscription each, the warm-up event delivered, before the writes), over {n}: {:.1} KiB (median). The kernel's socket buffers are not in a process's RSS: this is the server's own memory per connection (its tasks, its queue of frames, its subscription's state).",
            m(|x| x.idle_socket_kib),
        ),
    ];
    let (p50, rt50) = (
        m(|x| x.delivery.quantile_ms(0.5)),
        m(|x| x.round_trips.quantile_ms(0.5)),
    );
    if m(|x| x.delivery.quantile_ms(0.99)) > target.p99_ms.unwrap_or(f64::INFINITY) && p50 <= rt50 {
        notes.push(format!(
            "Subscribers received events before the writers had their answers (delivery p50 {p50:.1} ms against a mutation round trip of {rt50:.1} ms): what misses the target is the write's latency under fan-out, not delivery lagging behind the log. The mutations are answered on the same two tokio workers that write every connection's frames."
        ));
    }
    // The CPU window runs over the write phase and the drain after it.
    let deliveries_per_second = m(|x| x.achieved_rate) * n as f64;
    if deliveries_per_second > 0.0 {
        let window = (scale.seconds as f64 + m(|x| x.drain_seconds)) / scale.seconds as f64;
        let per_delivery_us = |cores: f64| cores * window / deliveries_per_second * 1e6;
        let (user_us, system_us) = (
            per_delivery_us(m(|x| x.server_cores.0)),
            per_delivery_us(m(|x| x.server_cores.1)),
        );
        let requested = scale.rate as f64 * n as f64;
        notes.push(format!(
            "Server CPU per delivery: {user_us:.2} µs of user time and {system_us:.2} µs of system time (the cores above over the {deliveries_per_second:.0} deliveries per second made). At that cost, {} events/s to {n} subscribers takes {:.2} cores of the server, {:.2} of them in the kernel's sends (a `sendto` per connection per flush), on a machine with {cores}.",
            scale.rate,
            (user_us + system_us) * requested / 1e6,
            system_us * requested / 1e6,
        ));
    }
    let failures: usize = measured.iter().map(|x| x.write_failures).sum();
    if failures > 0 {
        notes.push(format!(
            "{failures} mutations failed over all runs (their events are not counted as written)."
        ));
    }
    let ended: Vec<&String> = measured.iter().flat_map(|x| &x.ended_early).collect();
    if let Some(first) = ended.first() {
        notes.push(format!(
            "Subscriptions that ended early or fell behind: {} (first: {first}).",
            ended.len()
        ));
    }
    notes
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
        let mut seen = Seen::new();
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
