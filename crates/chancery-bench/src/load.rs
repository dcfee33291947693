//! A bounded load test of the real server: the `chancery` binary (beside this executable, or
//! `$CHANCERY_BIN`) on a fresh data directory with the demo, for `--seconds`, under writers
//! (some racing on `expectedVersion`, their conflicts counted apart), readers (positions,
//! standoffs, pages of events) and WebSocket subscribers (graphql-transport-ws, `events` from the
//! start). Then it checks what must hold whatever the load: no failed request but the
//! conflicts, every acknowledged event in the log exactly once at its acknowledged position and
//! nothing else written (read back with `chancery export` after the server stopped), every
//! subscriber saw every position once and in order; and it reports the server's peak RSS. It
//! prints a summary and fails (a non-zero exit) when a check does not hold.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{GraphqlSocket, Http, chancery_bin, tail};
use crate::servers;

const TOKEN: &str = "load-recorder-token-0123456789";
const TIMELINE: &str = "us-china-trade";
/// How long anything may take on a loaded machine before the run is declared stuck.
const PATIENCE: Duration = Duration::from_secs(120);

/// How much load, for how long.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub seconds: u64,
    /// Writers appending with any version.
    pub writers: usize,
    /// Writers appending with `expectedVersion: { exact }`, racing each other and the others.
    pub racers: usize,
    pub readers: usize,
    pub subscribers: usize,
}

/// A UUID v7 for an event this run writes: the run's start in milliseconds, then the writer
/// and its sequence number, so ids are unique and sort by writer.
fn event_id(epoch_ms: u64, writer: usize, seq: u64) -> String {
    format!(
        "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
        epoch_ms >> 16,
        epoch_ms & 0xffff,
        writer & 0xfff,
        (seq >> 48) & 0xfff,
        seq & 0xffff_ffff_ffff
    )
}

const RECORD: &str = "mutation($e: EventInput!, $v: ExpectedVersionInput) { \
    recordEvent(timeline: \"us-china-trade\", event: $e, expectedVersion: $v) { \
    firstPosition timelineVersion } }";

fn statement(id: &str, writer: usize, seq: u64) -> Value {
    let (actor, target) = if writer % 2 == 0 {
        ("USA", "CHN")
    } else {
        ("CHN", "USA")
    };
    json!({
        "id": id,
        "occurred": { "start": "2018-05-04" },
        "actors": [{ "party": actor }],
        "targets": [{ "party": target }],
        "issues": ["tariffs"],
        "summary": format!("Load test statement {seq} of writer {writer}."),
        "sources": [{ "publication": "chancery-bench load", "attribution": "NAMED" }],
        "act": { "statement": { "claim": "Talks continue.", "tone": "NEUTRAL" } }
    })
}

/// The code of an answer's first error, if it has errors.
fn error_code(reply: &Value) -> Option<String> {
    let error = reply["errors"].get(0)?;
    Some(
        error["extensions"]["code"]
            .as_str()
            .unwrap_or("<no code>")
            .to_owned(),
    )
}

#[derive(Default)]
struct Tally {
    requests: u64,
    failed: u64,
    /// The first few failures, for the summary.
    examples: Vec<String>,
    latencies_us: Vec<u64>,
}

impl Tally {
    fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }

    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.examples.extend(other.examples);
        self.latencies_us.extend(other.latencies_us);
    }
}

#[derive(Default)]
struct WriterOutcome {
    tally: Tally,
    /// Acknowledged events: id and position.
    acked: Vec<(String, u64)>,
    conflicts: u64,
}

impl WriterOutcome {
    /// Adds what another writer did.
    fn add(&mut self, other: WriterOutcome) {
        self.tally.add(other.tally);
        self.acked.extend(other.acked);
        self.conflicts += other.conflicts;
    }
}

/// Appends until `deadline`, one event per request. A racer sends the timeline version it last
/// saw, so it conflicts whenever another writer got in first; then it reads the version again.
async fn writer(
    address: String,
    index: usize,
    racer: bool,
    epoch_ms: u64,
    deadline: Instant,
) -> anyhow::Result<WriterOutcome> {
    let mut http = Http::connect(&address, TOKEN).await?;
    let mut out = WriterOutcome::default();
    let mut version: Option<u64> = None;
    let mut seq = 0u64;
    while Instant::now() < deadline {
        if racer && version.is_none() {
            let (_, reply) = http
                .graphql(
                    "query($t: Slug!) { timeline(slug: $t) { version } }",
                    json!({ "t": TIMELINE }),
                )
                .await?;
            version = reply["data"]["timeline"]["version"].as_u64();
        }
        seq += 1;
        let id = event_id(epoch_ms, index, seq);
        let expected = match (racer, version) {
            (true, Some(v)) => json!({ "exact": v }),
            _ => Value::Null,
        };
        let started = Instant::now();
        let sent = http
            .graphql(
                RECORD,
                json!({ "e": statement(&id, index, seq), "v": expected }),
            )
            .await;
        out.tally.requests += 1;
        out.tally
            .latencies_us
            .push(started.elapsed().as_micros() as u64);
        let (status, reply) = match sent {
            Ok(answer) => answer,
            Err(e) => {
                out.tally.fail(format!("writer {index}: {e:#}"));
                http = Http::connect(&address, TOKEN).await?;
                continue;
            }
        };
        match error_code(&reply) {
            None => {
                let data = &reply["data"]["recordEvent"];
                match data["firstPosition"].as_u64() {
                    Some(position) => out.acked.push((id, position)),
                    None => out
                        .tally
                        .fail(format!("writer {index}: HTTP {status}: {reply}")),
                }
                version = data["timelineVersion"].as_u64();
            }
            Some(code) if racer && code == "CONFLICT" => {
                out.conflicts += 1;
                version = None;
            }
            Some(_) => out
                .tally
                .fail(format!("writer {index}: HTTP {status}: {reply}")),
        }
    }
    Ok(out)
}

const POSITIONS: &str =
    "query { positions(timeline: \"us-china-trade\") { party { code } issue { slug } stance } }";
const STANDOFFS: &str =
    "query { standoffs(timeline: \"us-china-trade\") { issue { slug } status } }";
const PAGE: &str = "query($after: String) { events(first: 100, after: $after) { \
    edges { cursor node { position kind } } pageInfo { hasNextPage endCursor } } }";

/// Reads until `deadline`: positions, standoffs, and the log page by page (from the start again
/// at its end).
async fn reader(address: String, index: usize, deadline: Instant) -> anyhow::Result<Tally> {
    let mut http = Http::connect(&address, TOKEN).await?;
    let mut tally = Tally::default();
    let mut after = Value::Null;
    let mut turn = index;
    while Instant::now() < deadline {
        turn += 1;
        let (query, variables) = match turn % 3 {
            0 => (POSITIONS, json!({})),
            1 => (STANDOFFS, json!({})),
            _ => (PAGE, json!({ "after": after })),
        };
        let started = Instant::now();
        let answer = http.graphql(query, variables).await;
        tally.requests += 1;
        tally
            .latencies_us
            .push(started.elapsed().as_micros() as u64);
        match answer {
            Ok((200, reply)) if reply["errors"].is_null() => {
                if query == PAGE {
                    let page = &reply["data"]["events"]["pageInfo"];
                    after = if page["hasNextPage"] == Value::Bool(true) {
                        page["endCursor"].clone()
                    } else {
                        Value::Null
                    };
                }
            }
            Ok((status, reply)) => tally.fail(format!("reader {index}: HTTP {status}: {reply}")),
            Err(e) => {
                tally.fail(format!("reader {index}: {e:#}"));
                http = Http::connect(&address, TOKEN).await?;
            }
        }
    }
    Ok(tally)
}

/// The next text message, as JSON; `None` if `target` changed first.
async fn next_text(
    socket: &mut GraphqlSocket,
    target: &mut watch::Receiver<u64>,
) -> anyhow::Result<Option<Value>> {
    loop {
        let message = tokio::select! {
            changed = target.changed() => {
                changed.context("the run ended without a target")?;
                return Ok(None);
            }
            message = tokio::time::timeout(PATIENCE, socket.next()) => message,
        };
        match message
            .context("no message within the patience")?
            .context("the WebSocket closed")??
        {
            Message::Text(text) => return Ok(Some(serde_json::from_str(text.as_str())?)),
            Message::Close(frame) => bail!("the server closed the WebSocket: {frame:?}"),
            _ => {}
        }
    }
}

/// What one subscriber saw.
struct Subscription {
    /// How many events it received.
    received: u64,
    /// The first position out of sequence (expected, got), if any.
    out_of_order: Option<(u64, u64)>,
    last: u64,
}

/// Subscribes to every event from the start and follows until it has seen `target` (known
/// only once the writers stopped) or something goes wrong.
async fn subscriber(
    address: String,
    mut target: watch::Receiver<u64>,
    subscribed: mpsc::Sender<anyhow::Result<()>>,
) -> anyhow::Result<Subscription> {
    let mut socket = crate::client::open_graphql_ws(&address, TOKEN).await?;
    let ack = next_text(&mut socket, &mut target).await?;
    if ack.as_ref().is_none_or(|a| a["type"] != "connection_ack") {
        bail!("expected connection_ack, got {ack:?}");
    }
    let subscribe = json!({ "type": "subscribe", "id": "1", "payload": { "query": "subscription { events { position } }" } });
    socket.send(Message::text(subscribe.to_string())).await?;
    let _ = subscribed.send(Ok(())).await;
    let mut seen = Subscription {
        received: 0,
        out_of_order: None,
        last: 0,
    };
    loop {
        let end = *target.borrow_and_update();
        if end != 0 && seen.last >= end {
            break;
        }
        let Some(message) = next_text(&mut socket, &mut target).await? else {
            continue;
        };
        if message["type"] != "next" {
            bail!("a subscriber got {message}");
        }
        let position = message["payload"]["data"]["events"]["position"]
            .as_u64()
            .with_context(|| format!("an event without a position: {message}"))?;
        seen.received += 1;
        if position != seen.last + 1 && seen.out_of_order.is_none() {
            seen.out_of_order = Some((seen.last + 1, position));
        }
        seen.last = position;
    }
    let _ = socket.close(None).await;
    Ok(seen)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Runs the load and its checks. Errors when the run could not be made or a check failed.
pub async fn run(scale: Scale) -> anyhow::Result<()> {
    let binary = chancery_bin()?;
    let dir = tempfile::Builder::new()
        .prefix("chancery-bench-load-")
        .tempdir()?;
    let data = dir.path().join("data");
    let server_log = dir.path().join("server.log");
    let server = servers::start_demo(&binary, &data, server_log.clone(), TOKEN).await?;
    let address = server.address.to_string();
    let mut http = Http::connect(&address, TOKEN).await?;
    let demo_head = head(&mut http).await?;
    announce(&binary, scale);

    // Subscribers first, each acknowledged and subscribed before the load starts.
    let (target, subscribers) = start_subscribers(&address, scale.subscribers).await?;
    let mut load = apply_load(&address, scale).await?;
    let final_head = head(&mut http).await?;
    target.send_replace(final_head);
    let mut seen = Vec::new();
    for task in subscribers {
        seen.push(
            tokio::time::timeout(PATIENCE, task)
                .await
                .context("a subscriber is stuck")???,
        );
    }
    let peak_rss = servers::peak_rss_mib(&server).ok();
    drop(http);
    server.stop().await?;

    let log = read_log(&binary, &data, &dir.path().join("export.ndjson"), demo_head)?;
    let records = log.records;
    let (problems, acked_ok) = check(scale, &load, log, &seen, (demo_head, final_head));
    print_summary(&mut load, (records, acked_ok), &seen, peak_rss);
    if problems.is_empty() {
        println!("load: every check passed");
        Ok(())
    } else {
        bail!(
            "{} checks failed:\n- {}\nthe server log's last lines:\n{}",
            problems.len(),
            problems.join("\n- "),
            tail(&server_log)
        )
    }
}

/// The log's head position, as the server says.
async fn head(http: &mut Http) -> anyhow::Result<u64> {
    let (_, head) = http.graphql("{ head { position } }", json!({})).await?;
    head["data"]["head"]["position"]
        .as_u64()
        .with_context(|| format!("no head: {head}"))
}

/// Says what is about to run, and in which profile.
fn announce(binary: &Path, scale: Scale) {
    println!(
        "load: {} ({}), {} s, {} writers + {} racing on expectedVersion, {} readers, {} subscribers",
        binary.display(),
        if cfg!(debug_assertions) {
            "bench in dev profile"
        } else {
            "release"
        },
        scale.seconds,
        scale.writers,
        scale.racers,
        scale.readers,
        scale.subscribers
    );
}

/// A subscriber's task.
type SubscriberTask = JoinHandle<anyhow::Result<Subscription>>;

/// Starts `count` subscribers and waits until each has subscribed. Answers where to tell them
/// the position to follow up to (known once the writers stopped), and their tasks.
async fn start_subscribers(
    address: &str,
    count: usize,
) -> anyhow::Result<(watch::Sender<u64>, Vec<SubscriberTask>)> {
    let (target, target_rx) = watch::channel(0u64);
    let subscribers = servers::spawn_subscribers(count, PATIENCE, |_, subscribed| {
        tokio::spawn(subscriber(
            address.to_owned(),
            target_rx.clone(),
            subscribed,
        ))
    })
    .await?;
    Ok((target, subscribers))
}

/// What the writers and readers did, and for how long.
struct Load {
    written: WriterOutcome,
    read: Tally,
    elapsed: f64,
}

/// Runs the writers (the racers among them) and the readers for the scale's seconds.
async fn apply_load(address: &str, scale: Scale) -> anyhow::Result<Load> {
    let epoch_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(scale.seconds);
    let writers: Vec<_> = (0..scale.writers + scale.racers)
        .map(|i| {
            tokio::spawn(writer(
                address.to_owned(),
                i,
                i >= scale.writers,
                epoch_ms,
                deadline,
            ))
        })
        .collect();
    let readers: Vec<_> = (0..scale.readers)
        .map(|i| tokio::spawn(reader(address.to_owned(), i, deadline)))
        .collect();
    let mut written = WriterOutcome::default();
    for task in writers {
        written.add(task.await??);
    }
    let mut read = Tally::default();
    for task in readers {
        read.add(task.await??);
    }
    Ok(Load {
        written,
        read,
        elapsed: started.elapsed().as_secs_f64(),
    })
}

/// The log as the server left it: how many records, and where each event this run wrote is.
struct Log {
    records: u64,
    /// The positions of each event after the demo's, by id.
    written: HashMap<String, Vec<u64>>,
}

/// Reads the log of the stopped server's `data` with `chancery export` (to `export`); the
/// events after `demo_head` are this run's.
fn read_log(binary: &Path, data: &Path, export: &Path, demo_head: u64) -> anyhow::Result<Log> {
    let status = Command::new(binary)
        .arg("--data")
        .arg(data)
        .args(["export", "--out"])
        .arg(export)
        .status()?;
    if !status.success() {
        bail!("chancery export failed ({status})");
    }
    let mut log = Log {
        records: 0,
        written: HashMap::new(),
    };
    for line in std::fs::read_to_string(export)?.lines().skip(1) {
        let record: Value = serde_json::from_str(line)?;
        log.records += 1;
        let position = record["position"].as_u64().unwrap_or(0);
        if position > demo_head {
            let id = record["event"]["id"].as_str().unwrap_or("").to_owned();
            log.written.entry(id).or_default().push(position);
        }
    }
    Ok(log)
}

/// What must hold whatever the load: no failed request but the conflicts, the log holding
/// exactly the acknowledged events, every subscriber having seen every position once, in
/// order. Answers the problems found, and how many acknowledged events are in the log once at
/// their position.
fn check(
    scale: Scale,
    load: &Load,
    log: Log,
    seen: &[Subscription],
    (demo_head, final_head): (u64, u64),
) -> (Vec<String>, u64) {
    let written = &load.written;
    let mut problems = Vec::new();
    let failures = written.tally.failed + load.read.failed;
    if failures > 0 {
        let shown: Vec<&String> = written
            .tally
            .examples
            .iter()
            .chain(&load.read.examples)
            .collect();
        problems.push(format!("{failures} failed requests, e.g. {shown:#?}"));
    }
    let records = log.records;
    let acked_ok = check_acknowledged(&written.acked, log, &mut problems);
    if records != final_head || final_head != demo_head + written.acked.len() as u64 {
        problems.push(format!(
            "the log holds {records} records, the head said {final_head}, and {} + {} were expected",
            demo_head,
            written.acked.len()
        ));
    }
    for (i, s) in seen.iter().enumerate() {
        if s.out_of_order.is_some() || s.received != final_head || s.last != final_head {
            problems.push(format!(
                "subscriber {i} received {} events up to {} of {final_head}; first out of order: {:?}",
                s.received, s.last, s.out_of_order
            ));
        }
    }
    if scale.writers + scale.racers > 0 && written.acked.is_empty() {
        problems.push("no event was acknowledged: the load did not run".into());
    }
    (problems, acked_ok)
}

/// Every acknowledged event must be in the log once, at its acknowledged position, and nothing
/// else written: adds what is not to `problems`; answers how many are as they must be.
fn check_acknowledged(acked: &[(String, u64)], mut log: Log, problems: &mut Vec<String>) -> u64 {
    let mut acked_ok = 0u64;
    for (id, position) in acked {
        match log.written.remove(id).as_deref() {
            Some([p]) if p == position => acked_ok += 1,
            other => problems.push(format!(
                "event {id}, acknowledged at {position}, is in the log at {other:?}"
            )),
        }
    }
    if !log.written.is_empty() {
        problems.push(format!(
            "{} events in the log were never acknowledged (e.g. {:?})",
            log.written.len(),
            log.written.iter().next()
        ));
    }
    acked_ok
}

/// Prints what the load did: requests, rates and latencies of the writers and readers, what
/// the subscribers and the log hold (`records`, `acked_ok` of them found as acknowledged), and
/// the server's peak memory.
fn print_summary(
    load: &mut Load,
    (records, acked_ok): (u64, u64),
    seen: &[Subscription],
    peak_rss: Option<f64>,
) {
    let (written, read, elapsed) = (&mut load.written, &mut load.read, load.elapsed);
    written.tally.latencies_us.sort_unstable();
    read.latencies_us.sort_unstable();
    let w = &written.tally.latencies_us;
    let r = &read.latencies_us;
    println!(
        "load: {:.1} s; writes: {} requests, {} acknowledged ({:.0} events/s), {} expectedVersion conflicts, latency p50 {:.1} ms p99 {:.1} ms",
        elapsed,
        written.tally.requests,
        written.acked.len(),
        written.acked.len() as f64 / elapsed,
        written.conflicts,
        percentile(w, 0.5),
        percentile(w, 0.99)
    );
    println!(
        "load: reads: {} requests ({:.0}/s), latency p50 {:.1} ms p99 {:.1} ms",
        read.requests,
        read.requests as f64 / elapsed,
        percentile(r, 0.5),
        percentile(r, 0.99)
    );
    println!(
        "load: subscribers: {} each received {} positions; log: {records} records ({acked_ok} acknowledged events found once at their position); failed requests: {}; server peak RSS (VmHWM): {}",
        seen.len(),
        seen.first().map_or(0, |s| s.received),
        written.tally.failed + read.failed,
        peak_rss.map_or("unknown".into(), |m| format!("{m:.1} MiB"))
    );
}
