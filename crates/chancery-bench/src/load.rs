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
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::client::{Http, chancery_bin};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

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

/// The server under load, killed if the run ends early.
struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(binary: &Path, data: &Path, log: &Path) -> anyhow::Result<Server> {
        let mut child = Command::new(binary)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0", "--demo", "--token"])
            .arg(format!("recorder:{TOKEN}"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("the server's standard output")?;
        let mut server = Server {
            child,
            address: String::new(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads standard output for as long as the server runs, so that it never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("chancery: listening on http://") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        server.address = rx
            .recv_timeout(PATIENCE)
            .context("the server did not say it was listening")?;
        Ok(server)
    }

    async fn ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = match Http::connect(&self.address, TOKEN).await {
                Ok(mut http) => http.request("GET", "/readyz", None).await.map(|r| r.0).ok(),
                Err(_) => None,
            };
            if status == Some(200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("/readyz was not 200 within {PATIENCE:?} (last: {status:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's peak resident set (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }

    /// Stops the server as an operator would (SIGTERM), so that it shuts down cleanly.
    fn stop(mut self) -> anyhow::Result<()> {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !terminated {
            self.child.kill()?;
        }
        self.child.wait()?;
        Ok(())
    }
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

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// The next text message, as JSON; `None` if `target` changed first.
async fn next_text(
    socket: &mut Socket,
    target: &mut tokio::sync::watch::Receiver<u64>,
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
    mut target: tokio::sync::watch::Receiver<u64>,
    subscribed: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<Subscription> {
    let mut socket = crate::client::open_graphql_ws(&address, TOKEN).await?;
    let ack = next_text(&mut socket, &mut target).await?;
    if ack.as_ref().is_none_or(|a| a["type"] != "connection_ack") {
        bail!("expected connection_ack, got {ack:?}");
    }
    let subscribe = json!({ "type": "subscribe", "id": "1", "payload": { "query": "subscription { events { position } }" } });
    socket.send(Message::text(subscribe.to_string())).await?;
    let _ = subscribed.send(()).await;
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
    let server = Server::start(&binary, &data, &server_log)?;
    server.ready().await?;
    let address = server.address.clone();
    let mut http = Http::connect(&address, TOKEN).await?;
    let (_, head) = http.graphql("{ head { position } }", json!({})).await?;
    let demo_head = head["data"]["head"]["position"]
        .as_u64()
        .with_context(|| format!("no head: {head}"))?;

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

    // Subscribers first, each acknowledged and subscribed before the load starts.
    let (target, target_rx) = tokio::sync::watch::channel(0u64);
    let (subscribed_tx, mut subscribed_rx) = tokio::sync::mpsc::channel(scale.subscribers.max(1));
    let subscribers: Vec<_> = (0..scale.subscribers)
        .map(|_| {
            tokio::spawn(subscriber(
                address.clone(),
                target_rx.clone(),
                subscribed_tx.clone(),
            ))
        })
        .collect();
    drop(subscribed_tx);
    for _ in 0..scale.subscribers {
        tokio::time::timeout(PATIENCE, subscribed_rx.recv())
            .await
            .context("the subscribers did not all subscribe")?;
    }

    let epoch_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(scale.seconds);
    let writers: Vec<_> = (0..scale.writers + scale.racers)
        .map(|i| {
            tokio::spawn(writer(
                address.clone(),
                i,
                i >= scale.writers,
                epoch_ms,
                deadline,
            ))
        })
        .collect();
    let readers: Vec<_> = (0..scale.readers)
        .map(|i| tokio::spawn(reader(address.clone(), i, deadline)))
        .collect();

    let mut written = WriterOutcome::default();
    for task in writers {
        let out = task.await??;
        written.tally.add(out.tally);
        written.acked.extend(out.acked);
        written.conflicts += out.conflicts;
    }
    let mut read = Tally::default();
    for task in readers {
        read.add(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();

    let (_, head) = http.graphql("{ head { position } }", json!({})).await?;
    let final_head = head["data"]["head"]["position"]
        .as_u64()
        .with_context(|| format!("no head: {head}"))?;
    target.send_replace(final_head);
    let mut seen = Vec::new();
    for task in subscribers {
        seen.push(
            tokio::time::timeout(PATIENCE, task)
                .await
                .context("a subscriber is stuck")???,
        );
    }
    let peak_rss = server.peak_rss_mib();
    drop(http);
    server.stop()?;

    // The log as the server left it, read without it.
    let export = dir.path().join("export.ndjson");
    let status = Command::new(&binary)
        .arg("--data")
        .arg(&data)
        .args(["export", "--out"])
        .arg(&export)
        .status()?;
    if !status.success() {
        bail!("chancery export failed ({status})");
    }
    let mut in_log: HashMap<String, Vec<u64>> = HashMap::new();
    let mut records = 0u64;
    for line in std::fs::read_to_string(&export)?.lines().skip(1) {
        let record: Value = serde_json::from_str(line)?;
        records += 1;
        let position = record["position"].as_u64().unwrap_or(0);
        if position > demo_head {
            let id = record["event"]["id"].as_str().unwrap_or("").to_owned();
            in_log.entry(id).or_default().push(position);
        }
    }

    // The checks.
    let mut problems = Vec::new();
    let failures = written.tally.failed + read.failed;
    if failures > 0 {
        let shown: Vec<&String> = written
            .tally
            .examples
            .iter()
            .chain(&read.examples)
            .collect();
        problems.push(format!("{failures} failed requests, e.g. {shown:#?}"));
    }
    let mut acked_ok = 0u64;
    for (id, position) in &written.acked {
        match in_log.remove(id).as_deref() {
            Some([p]) if p == position => acked_ok += 1,
            other => problems.push(format!(
                "event {id}, acknowledged at {position}, is in the log at {other:?}"
            )),
        }
    }
    if !in_log.is_empty() {
        problems.push(format!(
            "{} events in the log were never acknowledged (e.g. {:?})",
            in_log.len(),
            in_log.iter().next()
        ));
    }
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
        "load: subscribers: {} each received {} positions; log: {records} records ({acked_ok} acknowledged events found once at their position); failed requests: {failures}; server peak RSS (VmHWM): {}",
        seen.len(),
        seen.first().map_or(0, |s| s.received),
        peak_rss.map_or("unknown".into(), |m| format!("{m:.1} MiB"))
    );
    if problems.is_empty() {
        println!("load: every check passed");
        Ok(())
    } else {
        let log = std::fs::read_to_string(&server_log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        bail!(
            "{} checks failed:\n- {}\nthe server log's last lines:\n{}",
            problems.len(),
            problems.join("\n- "),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}
