//! Ingest: Chancery's write path and full read against UmaDB, a Rust event store, in one run.
//! The real `chancery serve` records synthetic events sent by keep-alive HTTP/1.1 writers as
//! GraphQL mutations (`recordEvent`, one event per request, 1, 8 and 64 writers; `recordEvents`,
//! 100 per request), while UmaDB's server (PyPI's `umadb`) appends the same events through its
//! own gRPC client with as many tasks, each awaiting its answer; then both read a store of
//! `--events` events whole (`GET /export`, UmaDB's read stream; Chancery also through paged
//! `events` and the `events` subscription). With `--baseline-bin`, every
//! Chancery figure is also measured with another `chancery` binary, alternating per run.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chancery_domain::NewEvent;
use serde_json::{Map, Value, json};
use umadb_dcb::DcbEvent;

use crate::client::{Http, Server, chancery_bin};
use crate::report::{Figure, Section, machine, med, today};
use crate::servers::Logs;
use crate::synthetic::{Acts, ISSUES, PARTIES, TIMELINES, registrations};
use crate::umadb::{self, UmaDb};

/// The admin token every server of this bench is started with: recording needs a recorder,
/// `/export` an admin.
const TOKEN: &str = "ingest-bench-admin-token-0123456789";

const RECORD: &str = "mutation($t: Slug!, $e: EventInput!) { \
    recordEvent(timeline: $t, event: $e) { firstPosition } }";
const RECORD_MANY: &str = "mutation($t: Slug!, $e: [EventInput!]!) { \
    recordEvents(timeline: $t, events: $e) { firstPosition } }";

/// Events per append when filling the stores of the full read.
const FILL_BATCH: usize = 1_000;

/// The target of the 64-writer figure: so many times UmaDB's rate.
const SIXTY_FOUR_WRITERS_TARGET: f64 = 1.5;
/// The target of the server's CPU per event recorded by 64 writers, in µs.
const CPU_TARGET_US: f64 = 50.0;

/// How much to write and read.
#[derive(Debug, Clone)]
pub struct Scale {
    /// Events in the store read whole.
    pub events: u64,
    /// Events of the one-writer phase; the other phases are sized from it.
    pub appends: usize,
    /// Another `chancery` binary measured beside this build's, alternately.
    pub baseline_bin: Option<PathBuf>,
}

/// The size of `all`'s one-writer phase for a store of `events`: small, like the rest of `all`.
pub fn appends_for_all(events: u64) -> usize {
    usize::try_from(events / 20)
        .unwrap_or(1_000)
        .clamp(50, 1_000)
}

/// One writer phase: concurrent writers, each sending `requests` requests of `per_request`
/// events one after another, each awaiting its answer.
#[derive(Debug, Clone, Copy)]
struct Phase {
    writers: usize,
    per_request: usize,
    requests: usize,
}

impl Phase {
    fn events(self) -> usize {
        self.writers * self.per_request * self.requests
    }

    /// What the report calls the phase on Chancery's side.
    fn name(self) -> String {
        self.described("writer", "request")
    }

    /// The phase in words, its writers called `writer`s and what each sends a `unit`.
    fn described(self, writer: &str, unit: &str) -> String {
        if self.per_request == 1 {
            let s = if self.writers == 1 { "" } else { "s" };
            format!(
                "{} {writer}{s}, one event per {unit}, each awaiting its answer",
                self.writers
            )
        } else {
            format!(
                "{} events per {unit}, {} {writer} awaiting each answer",
                self.per_request, self.writers
            )
        }
    }
}

/// The phases, in the order the report lists them: 1, 8 and 64 writers of single events, then
/// batches of 100.
fn phases(appends: usize) -> [Phase; 4] {
    [
        Phase {
            writers: 1,
            per_request: 1,
            requests: appends.max(2),
        },
        Phase {
            writers: 8,
            per_request: 1,
            requests: (appends / 2).max(2),
        },
        Phase {
            writers: 64,
            per_request: 1,
            requests: (appends / 4).max(2),
        },
        Phase {
            writers: 1,
            per_request: 100,
            requests: (appends / 5).max(2),
        },
    ]
}

/// The events of one phase: per writer, per request, the events. Writer `w` writes to timeline
/// `w % TIMELINES`, as synthetic acts of that timeline.
fn phase_events(phase: Phase, seed: u64) -> Vec<Vec<Vec<NewEvent>>> {
    (0..phase.writers)
        .map(|w| {
            let mut acts = Acts::new(seed + w as u64, w % TIMELINES);
            (0..phase.requests)
                .map(|r| {
                    (0..phase.per_request)
                        .map(|i| acts.next_act((r * phase.per_request + i) as u64))
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The GraphQL `EventInput` of an event: its JSON form without `timeline` (an argument of the
/// mutation), with its `kind` and `payload` as the one field of `act` named after the kind.
fn event_input(e: &NewEvent) -> anyhow::Result<Value> {
    let mut value: Value = serde_json::from_slice(&e.to_canonical_json())?;
    let object = value
        .as_object_mut()
        .context("an event's JSON is not an object")?;
    object.remove("timeline");
    let kind = object
        .remove("kind")
        .and_then(|k| k.as_str().map(str::to_lowercase))
        .context("an event's JSON has no kind")?;
    let payload = object
        .remove("payload")
        .context("an event's JSON has no payload")?;
    let mut act = Map::new();
    act.insert(kind, payload);
    object.insert("act".into(), Value::Object(act));
    Ok(value)
}

/// The body of the GraphQL request that records `events` (all of one timeline): `recordEvent`
/// for one, `recordEvents` for more.
fn request_body(events: &[NewEvent]) -> anyhow::Result<Vec<u8>> {
    let first = events.first().context("a request without events")?;
    let (query, input) = if events.len() == 1 {
        (RECORD, event_input(first)?)
    } else {
        let inputs = events
            .iter()
            .map(event_input)
            .collect::<anyhow::Result<Vec<_>>>()?;
        (RECORD_MANY, Value::Array(inputs))
    };
    Ok(json!({
        "query": query,
        "variables": { "t": first.timeline.to_string(), "e": input },
    })
    .to_string()
    .into_bytes())
}

/// Fails unless a mutation's answer is a 200 with a position and no error.
fn check_recorded(status: u16, reply: &[u8]) -> anyhow::Result<()> {
    let answer: Value = serde_json::from_slice(reply).with_context(|| {
        format!(
            "HTTP {status} without JSON: {}",
            String::from_utf8_lossy(reply)
        )
    })?;
    let data = &answer["data"];
    let position = data["recordEvent"]["firstPosition"]
        .as_u64()
        .or_else(|| data["recordEvents"]["firstPosition"].as_u64());
    if status != 200 || !answer["errors"].is_null() || position.is_none() {
        bail!("a mutation failed: HTTP {status}: {answer}");
    }
    Ok(())
}

/// The registrations every store starts with (timelines, parties, issues), as an NDJSON file for
/// `chancery import`.
fn write_registrations(path: &Path) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let mut count = 0;
    for t in 0..TIMELINES {
        for e in registrations(t) {
            out.write_all(&e.to_canonical_json())?;
            out.write_all(b"\n")?;
            count += 1;
        }
    }
    out.flush()?;
    Ok(count)
}

/// `chancery import` of `file` into the data directory `data`, with binary `bin`.
fn import(bin: &Path, data: &Path, file: &Path) -> anyhow::Result<()> {
    let out = std::process::Command::new(bin)
        .arg("--data")
        .arg(data)
        .arg("import")
        .arg(file)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} import", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} import {} failed ({}): {}{}",
            bin.display(),
            file.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// What one writer phase measured on one side.
#[derive(Debug, Clone, Copy)]
struct Measured {
    per_second: f64,
    /// Server CPU time (user + system) per event recorded, in µs.
    cpu_us: f64,
}

/// Runs `writers` (a task each) together to their end: answers the phase's rate over its
/// `events`, and the server's CPU time per event (read with `cpu_seconds` before and after).
async fn time_writers<W>(
    writers: Vec<W>,
    events: usize,
    cpu_seconds: impl Fn() -> anyhow::Result<f64>,
) -> anyhow::Result<Measured>
where
    W: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    let tasks: Vec<_> = writers.into_iter().map(tokio::spawn).collect();
    for task in tasks {
        task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    Ok(Measured {
        per_second: events as f64 / seconds,
        cpu_us: cpu * 1e6 / events as f64,
    })
}

/// `chancery serve` of `bin` on `data`, with this bench's admin token.
async fn serve(bin: &Path, data: &Path, log: PathBuf) -> anyhow::Result<Server> {
    let admin = format!("admin:{TOKEN}");
    let (server, _) = Server::start(bin, data, log, &["--token", &admin]).await?;
    Ok(server)
}

/// One phase through Chancery: a fresh data directory holding the registrations (imported with
/// `bin` itself), `chancery serve` on it, one keep-alive connection per writer, all connected
/// before the clock starts; every request's answer is checked.
async fn chancery_phase(
    bin: &Path,
    registrations: &Path,
    logs: &mut Logs,
    bodies: &Arc<Vec<Vec<Vec<u8>>>>,
    events: usize,
) -> anyhow::Result<Measured> {
    let data = tempfile::Builder::new()
        .prefix("chancery-bench-ingest-")
        .tempdir()?;
    import(bin, data.path(), registrations)?;
    let server = serve(bin, data.path(), logs.next("chancery")).await?;
    let address = server.address.to_string();
    let mut writers = Vec::new();
    for w in 0..bodies.len() {
        let mut http = Http::connect(&address, TOKEN).await?;
        let bodies = Arc::clone(bodies);
        writers.push(async move {
            for body in &bodies[w] {
                let (status, reply) = http.request("POST", "/graphql", Some(body)).await?;
                check_recorded(status, &reply)?;
            }
            anyhow::Ok(())
        });
    }
    let measured = time_writers(writers, events, || server.cpu_seconds()).await?;
    server.stop().await?;
    Ok(measured)
}

/// One phase through UmaDB: a fresh server and database, one client (so one HTTP/2 connection)
/// per writer, all connected before the clock starts.
async fn umadb_phase(
    bin: &Path,
    logs: &mut Logs,
    work: Vec<Vec<Vec<DcbEvent>>>,
    events: usize,
) -> anyhow::Result<Measured> {
    let db = tempfile::Builder::new()
        .prefix("chancery-bench-umadb-")
        .tempdir()?;
    let server = UmaDb::start(bin, db.path(), logs.next("umadb")).await?;
    let mut writers = Vec::new();
    for requests in work {
        let client = server.connect().await?;
        writers.push(async move {
            for events in requests {
                umadb::append(&client, events).await?;
            }
            anyhow::Ok(())
        });
    }
    let measured = time_writers(writers, events, || server.cpu_seconds()).await?;
    server.stop().await?;
    Ok(measured)
}

/// What a full read measured.
#[derive(Debug, Clone, Copy)]
struct FullRead {
    per_second: f64,
    records: u64,
    bytes: u64,
    /// Chancery only: the whole log through paged `events(first: 500)` and through the `events`
    /// subscription from the start, in events per second.
    paged_per_second: Option<f64>,
    subscribed_per_second: Option<f64>,
}

const PAGED_EVENTS: &str = "query($after: String) { events(first: 500, after: $after) { \
    edges { node { position kind } } pageInfo { hasNextPage endCursor } } }";

const SUBSCRIBED_EVENTS: &str = "subscription { events { position kind } }";

/// Reads the whole log through `events(first: 500)` pages over one keep-alive connection,
/// following each page's end cursor; answers the events read and their last position.
async fn paged_read(http: &mut Http) -> anyhow::Result<(u64, u64)> {
    let (mut read, mut last, mut after) = (0u64, 0u64, Value::Null);
    loop {
        let data = http
            .graphql_data(PAGED_EVENTS, json!({ "after": after }))
            .await?;
        let edges = data["events"]["edges"]
            .as_array()
            .context("a page without edges")?;
        read += edges.len() as u64;
        if let Some(position) = edges.last().and_then(|e| e["node"]["position"].as_u64()) {
            last = position;
        }
        let info = &data["events"]["pageInfo"];
        if info["hasNextPage"] != Value::Bool(true) || edges.is_empty() {
            return Ok((read, last));
        }
        after = info["endCursor"].clone();
    }
}

/// Subscribes to `events` from the start (graphql-transport-ws) and reads until `records` events
/// have come; answers the position of the last. Frames are counted, not parsed, but the last is
/// parsed and must carry the position the log ends at.
async fn subscribed_read(address: std::net::SocketAddr, records: u64) -> anyhow::Result<u64> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let mut socket = crate::client::open_graphql_ws(&address.to_string(), TOKEN).await?;
    let subscribe =
        json!({ "type": "subscribe", "id": "1", "payload": { "query": SUBSCRIBED_EVENTS } });
    socket.send(Message::text(subscribe.to_string())).await?;
    let mut received = 0u64;
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        if text.contains("\"connection_ack\"") {
            continue;
        }
        if !text.starts_with("{\"type\":\"next\"") && !text.contains("\"type\":\"next\"") {
            bail!("the subscription answered {}", &text[..text.len().min(300)]);
        }
        received += 1;
        if received == records {
            let frame: Value = serde_json::from_str(&text)?;
            let last = frame["payload"]["data"]["events"]["position"]
                .as_u64()
                .context("an event without a position")?;
            return Ok(last);
        }
    }
    bail!("the subscription ended after {received} of {records} events")
}

/// `GET /export` of the whole log from a server on `data`, counting the records (the lines after
/// the header) as they stream in.
async fn chancery_full_read(bin: &Path, data: &Path, logs: &mut Logs) -> anyhow::Result<FullRead> {
    let server = serve(bin, data, logs.next("chancery-export")).await?;
    let mut http = Http::connect(&server.address.to_string(), TOKEN).await?;
    let (mut lines, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    let status = http
        .request_streamed("GET", "/export", None, |piece| {
            lines += piece.iter().filter(|&&b| b == b'\n').count() as u64;
            bytes += piece.len() as u64;
            Ok(())
        })
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    if status != 200 {
        bail!("GET /export answered {status}");
    }
    let records = lines.saturating_sub(1);

    let started = Instant::now();
    let (paged, paged_last) = paged_read(&mut http).await?;
    let paged_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let subscribed_last = subscribed_read(server.address, records).await?;
    let subscribed_seconds = started.elapsed().as_secs_f64();
    server.stop().await?;
    if paged != records || subscribed_last != paged_last {
        bail!(
            "the paged read gave {paged} events ending at {paged_last}, the subscription ended at \
             {subscribed_last}; the export holds {records}"
        );
    }
    Ok(FullRead {
        per_second: records as f64 / seconds,
        records,
        bytes,
        paged_per_second: Some(records as f64 / paged_seconds),
        subscribed_per_second: Some(records as f64 / subscribed_seconds),
    })
}

/// UmaDB's read of every event of the database in `db`, through its read stream.
async fn umadb_full_read(bin: &Path, db: &Path, logs: &mut Logs) -> anyhow::Result<FullRead> {
    let server = UmaDb::start(bin, db, logs.next("umadb-read")).await?;
    let client = server.connect().await?;
    let started = Instant::now();
    let (records, bytes) = umadb::read_all(&client).await?;
    let seconds = started.elapsed().as_secs_f64();
    drop(client);
    server.stop().await?;
    Ok(FullRead {
        per_second: records as f64 / seconds,
        records,
        bytes,
        paged_per_second: None,
        subscribed_per_second: None,
    })
}

/// Generates the store of the full read: the registrations, then `events` synthetic events
/// (acts, late reports, retractions, corrections) in batches of `FILL_BATCH` per timeline in
/// turn, as `replay` generates its logs. Writes them to `ndjson` for `chancery import` and, when
/// there is an UmaDB, appends each batch to it. Answers how many records, and the seconds the
/// UmaDB appends took.
async fn generate_store(
    events: u64,
    ndjson: &Path,
    umadb: Option<&UmaDb>,
) -> anyhow::Result<(u64, f64)> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(ndjson)
            .with_context(|| format!("cannot create {}", ndjson.display()))?,
    );
    let client = match umadb {
        Some(server) => Some(server.connect().await?),
        None => None,
    };
    let mut umadb_seconds = 0.0;
    let mut generators: Vec<Acts> = (0..TIMELINES)
        .map(|t| Acts::new(0x1_96e5 + t as u64, t))
        .collect();
    let mut batch: Vec<NewEvent> = (0..TIMELINES).flat_map(registrations).collect();
    let (mut records, mut written) = (0u64, 0u64);
    loop {
        for e in &batch {
            out.write_all(&e.to_canonical_json())?;
            out.write_all(b"\n")?;
        }
        records += batch.len() as u64;
        if let Some(client) = &client {
            let appending = Instant::now();
            umadb::append(client, batch.iter().map(umadb::event).collect()).await?;
            umadb_seconds += appending.elapsed().as_secs_f64();
        }
        if written >= events {
            break;
        }
        let t = usize::try_from(written / FILL_BATCH as u64).unwrap_or(0) % TIMELINES;
        let n = (events - written).min(FILL_BATCH as u64);
        batch = (0..n)
            .map(|i| generators[t].next_event(written + i))
            .collect();
        written += n;
    }
    out.flush()?;
    Ok((records, umadb_seconds))
}

/// Who is measured: this build's `chancery`, the baseline build's, or UmaDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    New,
    Old,
    UmaDb,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::New => "chancery",
            Side::Old => "baseline build",
            Side::UmaDb => "umadb",
        }
    }
}

/// Per side, every run's value.
#[derive(Default, Clone)]
struct Runs {
    new: Vec<f64>,
    old: Vec<f64>,
    umadb: Vec<f64>,
}

impl Runs {
    fn push(&mut self, side: Side, value: f64) {
        match side {
            Side::New => self.new.push(value),
            Side::Old => self.old.push(value),
            Side::UmaDb => self.umadb.push(value),
        }
    }
}

/// What every measurement of a run of this bench shares.
struct Bench {
    new: PathBuf,
    old: Option<PathBuf>,
    /// UmaDB's server, and what its `--version` says.
    umadb: Option<(PathBuf, String)>,
    scratch: tempfile::TempDir,
    logs: Logs,
    /// The registrations every Chancery store starts with, as an NDJSON file.
    registrations: PathBuf,
    registered: u64,
}

impl Bench {
    fn new(scale: &Scale) -> anyhow::Result<Bench> {
        let new = chancery_bin()?;
        if let Some(old) = &scale.baseline_bin {
            if !old.is_file() {
                bail!("--baseline-bin {} is not a file", old.display());
            }
        }
        let umadb = match umadb::umadb_bin()? {
            Some(bin) => {
                let version = umadb::version(&bin)?;
                Some((bin, version))
            }
            None if std::env::var("CI").is_ok_and(|v| v == "true") => bail!(
                "UmaDB's server is not installed: set CHANCERY_UMADB or put `umadb` on PATH \
                 (pip install umadb=={}; tools/test installs it under target/tools/umadb)",
                umadb::VERSION
            ),
            None => {
                eprintln!(
                    "ingest: UmaDB's server is not installed (CHANCERY_UMADB, or `umadb` on PATH; pip install umadb=={}): its figures are not measured",
                    umadb::VERSION
                );
                None
            }
        };
        let scratch = tempfile::Builder::new()
            .prefix("chancery-bench-ingest-")
            .tempdir()?;
        let logs = Logs::new("chancery-bench-ingest-logs-")?;
        let registrations = scratch.path().join("registrations.ndjson");
        let registered = write_registrations(&registrations)?;
        Ok(Bench {
            new,
            old: scale.baseline_bin.clone(),
            umadb,
            scratch,
            logs,
            registrations,
            registered,
        })
    }

    /// Who is measured in run `run`, in order: this build, the baseline build, UmaDB in even
    /// runs, the other way round in odd ones, so that none always follows another.
    fn sides(&self, run: usize) -> Vec<Side> {
        let mut sides = vec![Side::New];
        if self.old.is_some() {
            sides.push(Side::Old);
        }
        if self.umadb.is_some() {
            sides.push(Side::UmaDb);
        }
        if run % 2 == 1 {
            sides.reverse();
        }
        sides
    }

    /// The `chancery` binary of a side (this build's for UmaDB's, which has none).
    fn chancery(&self, side: Side) -> &Path {
        match (side, &self.old) {
            (Side::Old, Some(old)) => old,
            _ => &self.new,
        }
    }

    fn umadb_bin(&self) -> anyhow::Result<&Path> {
        self.umadb
            .as_ref()
            .map(|(bin, _)| bin.as_path())
            .context("UmaDB is not installed")
    }
}

/// What the writer phases measured, per phase.
struct Writes {
    phases: [Phase; 4],
    rates: Vec<Runs>,
    cpu: Vec<Runs>,
    /// The disk's fdatasync loop, once per run.
    disk: Vec<f64>,
}

async fn measure_writes(bench: &mut Bench, runs: usize, appends: usize) -> anyhow::Result<Writes> {
    let phases = phases(appends);
    let mut rates: Vec<Runs> = vec![Runs::default(); phases.len()];
    let mut cpu: Vec<Runs> = vec![Runs::default(); phases.len()];
    let mut disk = Vec::new();
    for run in 0..runs {
        disk.push(crate::appends::disk_loop(
            bench.scratch.path(),
            phases[0].events(),
        )?);
        for (p, &phase) in phases.iter().enumerate() {
            // The same events for every side, prepared before any clock starts.
            let events = phase_events(phase, 0x1_5eed + (run * 1_000 + p * 100) as u64);
            let bodies = events
                .iter()
                .map(|requests| requests.iter().map(|e| request_body(e)).collect())
                .collect::<anyhow::Result<Vec<Vec<Vec<u8>>>>>()?;
            let bodies = Arc::new(bodies);
            let mut umadb_work = Some(
                events
                    .iter()
                    .map(|requests| {
                        requests
                            .iter()
                            .map(|e| e.iter().map(umadb::event).collect())
                            .collect()
                    })
                    .collect::<Vec<Vec<Vec<DcbEvent>>>>(),
            );
            let count = phase.events();
            let mut said = Vec::new();
            for side in bench.sides(run) {
                let m = match side {
                    Side::UmaDb => {
                        let work = umadb_work.take().context("UmaDB measured twice")?;
                        let bin = bench.umadb_bin()?.to_owned();
                        umadb_phase(&bin, &mut bench.logs, work, count).await?
                    }
                    _ => {
                        let bin = bench.chancery(side).to_owned();
                        let registrations = bench.registrations.clone();
                        chancery_phase(&bin, &registrations, &mut bench.logs, &bodies, count)
                            .await?
                    }
                };
                rates[p].push(side, m.per_second);
                cpu[p].push(side, m.cpu_us);
                said.push(format!(
                    "{} {:.0} events/s ({:.1} µs server CPU/event)",
                    side.label(),
                    m.per_second,
                    m.cpu_us
                ));
            }
            eprintln!(
                "ingest run {run}: {} ({count} events): {}",
                phase.name(),
                said.join(", ")
            );
        }
    }
    Ok(Writes {
        phases,
        rates,
        cpu,
        disk,
    })
}

/// What the full read measured.
struct Reads {
    records: u64,
    rates: Runs,
    /// Chancery's paged `events(first: 500)` and `events` subscription reads of the same store.
    paged: Runs,
    subscribed: Runs,
    export_bytes: u64,
    umadb_bytes: u64,
    /// Records per second of `chancery import`, per build.
    imports: Vec<(Side, f64)>,
    /// Events per second of the 1,000-event appends that filled UmaDB.
    umadb_fill: Option<f64>,
}

/// The full read: one generated store, imported by each build into a data directory of its own
/// and appended to one UmaDB database; each then read whole once per run.
async fn measure_full_read(bench: &mut Bench, runs: usize, events: u64) -> anyhow::Result<Reads> {
    let store_file = bench.scratch.path().join("store.ndjson");
    let umadb_db = tempfile::Builder::new()
        .prefix("chancery-bench-umadb-store-")
        .tempdir()?;
    let (records, umadb_fill) = fill_store(bench, events, &store_file, umadb_db.path()).await?;
    let (data_dirs, imports) = import_stores(bench, &store_file, records).await?;
    let mut reads = Reads {
        records,
        rates: Runs::default(),
        paged: Runs::default(),
        subscribed: Runs::default(),
        export_bytes: 0,
        umadb_bytes: 0,
        imports,
        umadb_fill,
    };
    for run in 0..runs {
        let mut said = Vec::new();
        for side in bench.sides(run) {
            let read = if side == Side::UmaDb {
                let bin = bench.umadb_bin()?.to_owned();
                let read = umadb_full_read(&bin, umadb_db.path(), &mut bench.logs).await?;
                reads.umadb_bytes = read.bytes;
                read
            } else {
                let bin = bench.chancery(side).to_owned();
                let data = data_dirs
                    .iter()
                    .find(|(s, _)| *s == side)
                    .map(|(_, d)| d.clone())
                    .context("a build without its store")?;
                let read = chancery_full_read(&bin, &data, &mut bench.logs).await?;
                reads.export_bytes = read.bytes;
                read
            };
            said.extend(reads.add(side, &read)?);
        }
        eprintln!(
            "ingest run {run}: full read of {records} records: {}",
            said.join(", ")
        );
    }
    Ok(reads)
}

impl Reads {
    /// Adds `side`'s full read, which must have read every record; answers what to say of it.
    fn add(&mut self, side: Side, read: &FullRead) -> anyhow::Result<Vec<String>> {
        if read.records != self.records {
            bail!(
                "{}'s full read gave {} records, but the store holds {}",
                side.label(),
                read.records,
                self.records
            );
        }
        self.rates.push(side, read.per_second);
        let mut said = vec![format!("{} {:.0} events/s", side.label(), read.per_second)];
        if let (Some(p), Some(q)) = (read.paged_per_second, read.subscribed_per_second) {
            self.paged.push(side, p);
            self.subscribed.push(side, q);
            said.push(format!(
                "{} paged {p:.0} events/s, subscription {q:.0} events/s",
                side.label()
            ));
        }
        Ok(said)
    }
}

/// Generates the store of the full read into `store_file`, appending it to a fresh UmaDB
/// database in `umadb_db` meanwhile when there is an UmaDB. Answers how many records, and the
/// rate of UmaDB's appends.
async fn fill_store(
    bench: &mut Bench,
    events: u64,
    store_file: &Path,
    umadb_db: &Path,
) -> anyhow::Result<(u64, Option<f64>)> {
    let filling = match &bench.umadb {
        Some((bin, _)) => Some(UmaDb::start(bin, umadb_db, bench.logs.next("umadb-fill")).await?),
        None => None,
    };
    let generating = Instant::now();
    let (records, umadb_seconds) = generate_store(events, store_file, filling.as_ref()).await?;
    eprintln!(
        "ingest: generated {records} records in {:.1} s ({umadb_seconds:.1} s of it appending to UmaDB, {FILL_BATCH} events per append)",
        generating.elapsed().as_secs_f64(),
    );
    let umadb_fill = match filling {
        Some(server) => {
            server.stop().await?;
            Some(records as f64 / umadb_seconds.max(f64::MIN_POSITIVE))
        }
        None => None,
    };
    Ok((records, umadb_fill))
}

/// A Chancery build's data directory for the full read.
type DataDir = (Side, PathBuf);

/// Imports the store in `store_file` (`records` records) with each build into a data directory
/// of its own, and starts each once, off the clock, so that every measured start is a restart
/// from the projections' checkpoint. Answers the data directories and each import's rate.
async fn import_stores(
    bench: &mut Bench,
    store_file: &Path,
    records: u64,
) -> anyhow::Result<(Vec<DataDir>, Vec<(Side, f64)>)> {
    let mut data_dirs = Vec::new();
    let mut imports = Vec::new();
    for side in bench.sides(0) {
        if side == Side::UmaDb {
            continue;
        }
        let bin = bench.chancery(side).to_owned();
        let data = bench.scratch.path().join(format!("data-{}", side.label()));
        let importing = Instant::now();
        import(&bin, &data, store_file)?;
        let imported = importing.elapsed().as_secs_f64();
        let building = Instant::now();
        let (server, _) =
            Server::start(&bin, &data, bench.logs.next("chancery-first"), &[]).await?;
        server.stop().await?;
        eprintln!(
            "ingest: {} imported {records} records in {imported:.1} s; its first start took {:.1} s",
            bin.display(),
            building.elapsed().as_secs_f64()
        );
        imports.push((side, records as f64 / imported));
        data_dirs.push((side, data));
    }
    Ok((data_dirs, imports))
}

/// A target against UmaDB: in words, and as a test of the value against UmaDB's.
type Target = (&'static str, fn(f64, f64) -> bool);

/// A figure of this build against UmaDB (when it was measured), with its target.
fn against_umadb(
    name: String,
    unit: &str,
    runs: &Runs,
    umadb_name: String,
    target: Option<Target>,
) -> Figure {
    let mut figure = Figure::of_runs(name, runs.new.clone(), unit);
    let baseline = (!runs.umadb.is_empty()).then(|| med(&runs.umadb));
    if let Some(baseline) = baseline {
        figure = figure.against(umadb_name, baseline);
    }
    match target {
        Some((words, met)) => {
            let met = baseline.map(|b| met(figure.value, b));
            figure.with_target(words, met)
        }
        None => figure,
    }
}

/// A figure of this build against the baseline build, if one was measured.
fn against_old(name: String, unit: &str, runs: &Runs, old_bin: &Path) -> Option<Figure> {
    if runs.old.is_empty() {
        return None;
    }
    let old_runs: Vec<String> = runs
        .old
        .iter()
        .map(|v| {
            if *v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        })
        .collect();
    let figure = Figure::of_runs(
        format!("{name}: this build against the baseline build"),
        runs.new.clone(),
        unit,
    );
    Some(
        figure
            .against(
                format!("baseline build {}", old_bin.display()),
                med(&runs.old),
            )
            .noted(format!(
                "{name}, the baseline build's runs: {}.",
                old_runs.join(", ")
            )),
    )
}

/// What UmaDB's side of a phase is called in the report.
fn umadb_name(phase: Phase) -> String {
    format!("UmaDB, {}", phase.described("task", "append"))
}

/// The report's figures: the writes, the full read, and, with a baseline build, this build
/// against it.
fn figures(bench: &Bench, writes: &Writes, reads: &Reads) -> Vec<Figure> {
    let mut figures = write_figures(writes);
    figures.extend(read_figures(reads));
    if let Some(old) = &bench.old {
        figures.extend(old_build_figures(old, writes, reads));
    }
    figures
}

/// The writer phases' figures against UmaDB (and the first against the disk), and the server's
/// CPU per event.
fn write_figures(writes: &Writes) -> Vec<Figure> {
    let [one, eight, sixty_four, hundred] = writes.phases;
    let rates = &writes.rates;
    let single = |phase: Phase| format!("recordEvent over GraphQL, {}", phase.name());
    let disk = med(&writes.disk);
    vec![
        against_umadb(
            single(one),
            "events/s",
            &rates[0],
            umadb_name(one),
            Some(("≥ 1.0 × UmaDB", |v, b| v >= b)),
        ),
        Figure::of_runs(
            format!("{} (against the disk)", single(one)),
            rates[0].new.clone(),
            "events/s",
        )
        .against(
            "the disk's fdatasync loop (300-byte appends, in process)",
            disk,
        )
        .target("≥ 0.8 × baseline", |f| f.value >= 0.8 * disk),
        against_umadb(
            single(eight),
            "events/s",
            &rates[1],
            umadb_name(eight),
            None,
        ),
        against_umadb(
            single(sixty_four),
            "events/s",
            &rates[2],
            umadb_name(sixty_four),
            Some(("≥ 1.5 × UmaDB", |v, b| {
                v >= SIXTY_FOUR_WRITERS_TARGET * b
            })),
        ),
        against_umadb(
            format!("recordEvents over GraphQL, {}", hundred.name()),
            "events/s",
            &rates[3],
            umadb_name(hundred),
            Some(("≥ 1.0 × UmaDB", |v, b| v >= b)),
        ),
        against_umadb(
            format!("server CPU per event recorded, {}", sixty_four.name()),
            "µs",
            &writes.cpu[2],
            format!("UmaDB's server, {}", umadb_name(sixty_four)),
            None,
        )
        .target(format!("≤ {CPU_TARGET_US:.0} µs"), |f| {
            f.value <= CPU_TARGET_US
        }),
    ]
}

/// The full read's figures: the export against UmaDB's read stream, and Chancery's paged and
/// subscribed reads against their floors.
fn read_figures(reads: &Reads) -> Vec<Figure> {
    let mut figures = vec![against_umadb(
        "full read: GET /export of the whole log over HTTP".into(),
        "events/s",
        &reads.rates,
        "UmaDB, every event through its gRPC read stream".into(),
        Some(("≥ 1.0 × UmaDB", |v, b| v >= b)),
    )];
    for (name, runs, floor) in [
        (
            "full read: paged events(first: 500) { position kind } over HTTP",
            &reads.paged,
            300_000.0,
        ),
        (
            "full read: the events subscription from the start, { position kind }",
            &reads.subscribed,
            500_000.0,
        ),
    ] {
        let figure = against_umadb(name.into(), "events/s", runs, String::new(), None);
        figures.push(figure.target(format!("≥ {floor:.0} events/s"), |f| f.value >= floor));
    }
    figures
}

/// This build against the baseline build `old`, figure by figure.
fn old_build_figures(old: &Path, writes: &Writes, reads: &Reads) -> Vec<Figure> {
    let mut compared: Vec<(String, &Runs, &str)> = writes
        .phases
        .iter()
        .zip(&writes.rates)
        .map(|(phase, runs)| {
            let mutation = if phase.per_request == 1 {
                "recordEvent"
            } else {
                "recordEvents"
            };
            (format!("{mutation}, {}", phase.name()), runs, "events/s")
        })
        .collect();
    let sixty_four = writes.phases[2];
    compared.push((
        format!("server CPU per event, {}", sixty_four.name()),
        &writes.cpu[2],
        "µs",
    ));
    for (name, runs) in [
        ("full read: GET /export", &reads.rates),
        ("full read: paged events(first: 500)", &reads.paged),
        ("full read: the events subscription", &reads.subscribed),
    ] {
        compared.push((name.to_owned(), runs, "events/s"));
    }
    compared
        .into_iter()
        .filter_map(|(name, runs, unit)| against_old(name, unit, runs, old))
        .collect()
}

fn notes(bench: &Bench, writes: &Writes, reads: &Reads) -> Vec<String> {
    let records = reads.records;
    let imports: Vec<String> = reads
        .imports
        .iter()
        .map(|(side, rate)| {
            let build = if *side == Side::Old {
                "the baseline build"
            } else {
                "this build"
            };
            format!("{build} {rate:.0} records/s")
        })
        .collect();
    let umadb_version = bench
        .umadb
        .as_ref()
        .map_or("(not installed)", |(_, version)| version.as_str());
    let mut notes = vec![
        format!(
            "Chancery: the real `chancery serve` (sled store) on a fresh data directory per phase, which `chancery import` gave the registrations first ({} events: {TIMELINES} timelines, {PARTIES} parties, {ISSUES} issues). It acknowledges an append once its commit group is in the write-ahead log and the log is fdatasynced (ARCHITECTURE.md), after validating each event (structure, then references against the registry), encoding and hashing its record and indexing it. Each writer is a keep-alive HTTP/1.1 connection in the bench's tokio runtime that sends one GraphQL mutation and awaits its answer (checked: 200, a position, no error) before the next; writer w writes synthetic acts (`synthetic.rs`) to timeline `dossier-{{w mod {TIMELINES}}}`; request bodies are built before the clock starts, and every connection is open before it starts.",
            bench.registered
        ),
        format!(
            "UmaDB ({umadb_version}): its server from PyPI's `umadb` (a Python entry point that runs UmaDB's Rust server in process) on a fresh database per phase, driven by its Rust gRPC client (`umadb-client` {}) in the same runtime, one client, so one HTTP/2 connection, per task, each task awaiting each append's answer. Each append carries the same events as Chancery's request: data = the event's canonical JSON (what Chancery records of it), type = its kind, its id, and a tag per timeline, party and issue; appends are unconditional (no consistency boundary to check). UmaDB's writer thread takes every append waiting into one commit, writes the commit's pages, fdatasyncs, writes the header page and fdatasyncs again, then answers (`umadb-core`'s `Mvcc::commit`; `umadb --help` offers no switch to turn syncing off): both sides are durable when they answer, UmaDB with two syncs per commit where Chancery has one.",
            umadb::VERSION
        ),
        format!(
            "The full read: one generated store of {records} records (the registrations, then synthetic events with late reports, retractions and corrections, in batches of {FILL_BATCH} per timeline in turn), imported into each build's data directory with `chancery import` ({}) and appended to UmaDB {FILL_BATCH} events per append ({}); each server is restarted for each run (Chancery from its projections' checkpoint, after a first start off the clock). Chancery streams `GET /export` (an admin's online backup: a header line, then each record's stored bytes, {:.1} MB) and the bench counts its lines; UmaDB streams every event through its read stream in batches of the server's default size (1,024), which its client decodes ({:.1} MB of event data). Both count every record against the store's. On the same Chancery server after the export: every event through paged `events(first: 500)` over the same keep-alive connection, following each page's end cursor (the client parses each page), then the `events` subscription from the start over WebSocket (graphql-transport-ws), whose frames the client counts without parsing until it has as many as the store holds; the last frame's position must be the last page's.",
            imports.join(", "),
            reads
                .umadb_fill
                .map_or("not measured".into(), |r| format!("{r:.0} events/s")),
            reads.export_bytes as f64 / 1e6,
            reads.umadb_bytes as f64 / 1e6,
        ),
    ];
    let cpu: Vec<String> = writes
        .phases
        .iter()
        .zip(&writes.cpu)
        .map(|(phase, c)| {
            let mut said = format!("{}: {:.1} µs", phase.name(), med(&c.new));
            if !c.old.is_empty() {
                said.push_str(&format!(" (the baseline build {:.1} µs)", med(&c.old)));
            }
            if !c.umadb.is_empty() {
                said.push_str(&format!(" (UmaDB's server {:.1} µs)", med(&c.umadb)));
            }
            said
        })
        .collect();
    notes.push(format!(
        "Server CPU per event recorded (user + system of the server process from /proc/PID/stat over each measured phase, divided by its events; medians): {}. Both servers share the machine's cores with the bench's clients.",
        cpu.join("; ")
    ));
    if bench.umadb.is_none() {
        notes.push(format!(
            "UmaDB was not installed on this machine (CHANCERY_UMADB, or `umadb` on PATH; `pip install umadb=={}`): its figures were not measured in this run.",
            umadb::VERSION
        ));
    }
    notes
}

pub async fn run(scale: Scale, runs: usize, out: &Path, command: &str) -> anyhow::Result<()> {
    if runs == 0 || scale.appends == 0 {
        bail!("ingest needs at least one run and one append");
    }
    let mut bench = Bench::new(&scale)?;
    let writes = measure_writes(&mut bench, runs, scale.appends).await?;
    let reads = measure_full_read(&mut bench, runs, scale.events).await?;
    let [one, eight, sixty_four, hundred] = writes.phases;
    let section = Section {
        title: "Ingest and full read against UmaDB".into(),
        command: command.into(),
        machine: machine(),
        date: today(),
        scale: format!(
            "{} events with 1 writer, {} with 8 writers ({} each), {} with 64 writers ({} each), {} in {} requests of 100; a full read of {} records; {runs} runs{}",
            one.events(),
            eight.events(),
            eight.requests,
            sixty_four.events(),
            sixty_four.requests,
            hundred.events(),
            hundred.requests,
            reads.records,
            bench.old.as_ref().map_or(String::new(), |b| format!(
                ", this build and the baseline build {} in turn",
                b.display()
            )),
        ),
        figures: figures(&bench, &writes, &reads),
        notes: notes(&bench, &writes, &reads),
    };
    crate::report::write(out, "ingest", section)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_input_is_the_event_s_json_with_its_payload_as_its_act() -> anyhow::Result<()> {
        let e = Acts::new(7, 0).next_act(1);
        let input = event_input(&e)?;
        let json: Value = serde_json::from_slice(&e.to_canonical_json())?;
        let kind = e.kind().name().to_lowercase();
        assert_eq!(input["act"][&kind], json["payload"]);
        assert_eq!(input["id"], json["id"]);
        assert!(input.get("timeline").is_none() && input.get("kind").is_none());
        Ok(())
    }

    #[test]
    fn phases_write_what_they_say() {
        for phase in phases(100) {
            let events = phase_events(phase, 1);
            let total: usize = events.iter().flatten().map(Vec::len).sum();
            assert_eq!(total, phase.events());
            for (w, requests) in events.iter().enumerate() {
                for request in requests {
                    assert!(
                        request
                            .iter()
                            .all(|e| e.timeline.to_string() == format!("dossier-{}", w % TIMELINES))
                    );
                }
            }
        }
    }
}
