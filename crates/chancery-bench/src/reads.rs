//! Reads: what serving a large store costs, measured on the real `chancery` binary over a
//! generated store: time from spawn to ready (first start, then a restart from the projections'
//! checkpoint), GraphQL reads under concurrent keep-alive clients against a bare axum handler
//! answering the very same bytes, the server's memory after that load, and bytes on disk per
//! byte of canonical event.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use chancery_domain::verify_record_hash;
use chancery_projections::Projections;
use chancery_store::{EventLog, ReadRequest};
use chancery_store_sled::{SledConfig, SledLog, keys};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::client::{Server, chancery_bin};
use crate::report::{Figure, MB, Section, figure, machine, med, today};
use crate::servers::Logs;
use crate::synthetic::{ISSUES, PARTIES, TIMELINES};

/// Seconds of load per query and target when no `--seconds` is given: enough for a smoke run.
pub const DEFAULT_SECONDS: f64 = 1.0;
/// Concurrent clients of every load.
pub const CLIENTS: usize = 32;
/// A stored record is its canonical body with `,"hash":"<64 hex>"}` (75 bytes) in place of the
/// closing brace (1 byte): see `chancery_domain::record::encode_record`.
const HASH_SUFFIX_GROWTH: u64 = 74;
/// Stores above this many events report in a section of their own.
const SEPARATE_SECTION_EVENTS: u64 = 2_000_000;

/// The timeline every read asks about.
const TIMELINE: &str = "dossier-0";

/// The timeline page's script, whose `EVENT_FIELDS` fragment the page reads measure: the same
/// fields the page asks of an event, so the benchmark cannot drift from the page.
const PAGE_QUERIES: &str = include_str!("../../chancery/assets/ui/gql.js");

/// The page's `fragment Ev on Event { ... }`, cut from its script.
fn event_fields() -> anyhow::Result<&'static str> {
    let start = PAGE_QUERIES
        .find("fragment Ev on Event {")
        .context("gql.js has no `fragment Ev on Event`")?;
    let length = PAGE_QUERIES[start..]
        .find('`')
        .context("gql.js's event fragment has no closing backtick")?;
    Ok(PAGE_QUERIES[start..start + length].trim_end())
}

/// One read under load: its GraphQL requests (one, or several asked in turn), where its answer's
/// list is, and the p99 latency its computation (asked afresh) must stay under.
struct ReadQuery {
    name: &'static str,
    requests: Vec<Value>,
    /// JSON pointer to the list the answer must not leave empty.
    list: &'static str,
    afresh_p99_ms: f64,
}

/// Days the timeline page's slider moves over, one request per day.
const SLIDER_DAYS: i64 = 100;

/// The reads measured. `events` sets the slider's dates: the generator's valid time advances a
/// day every 300 events, so the slider runs over the 100 days in the middle of history.
fn read_queries(events: u64) -> anyhow::Result<Vec<ReadQuery>> {
    let history_days = i64::try_from(events / 300).unwrap_or(i64::MAX);
    // A short history (the smoke pass's) starts the slider in its middle: days past its end ask
    // about the present, which is never empty, where its first days might be.
    let first_day = if history_days >= 2 * SLIDER_DAYS {
        history_days / 2 - SLIDER_DAYS / 2
    } else {
        history_days / 2
    };
    let epoch = time::Date::from_calendar_date(2000, time::Month::January, 1)?;
    let event_fields = event_fields()?;
    let slider = (0..SLIDER_DAYS)
        .map(|step| {
            let day = epoch + time::Duration::days(first_day + step);
            json!({
                "query": "query Slider($timeline: Slug, $asOf: AsOfInput) { standoffs(timeline: $timeline, asOf: $asOf) { \
                    issue { slug title } status sides { party { code } stance event } } }",
                "variables": {
                    "timeline": TIMELINE,
                    "asOf": { "validAt": format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day()) },
                },
            })
        })
        .collect();
    // Most reads are one request.
    let one = |name, afresh_p99_ms, request, list| ReadQuery {
        name,
        requests: vec![request],
        list,
        afresh_p99_ms,
    };
    Ok(vec![
        one(
            "positions of one timeline",
            25.0,
            json!({
                "query": "query Positions($timeline: Slug) { positions(timeline: $timeline) { \
                    party { code name } issue { slug title } stance event { id kind content { summary } } \
                    firstStated lastReaffirmed reaffirmed conditions attribution confidence } }",
                "variables": { "timeline": TIMELINE },
            }),
            "/data/positions",
        ),
        one(
            "standoffs of one timeline",
            10.0,
            json!({
                "query": "query Standoffs($timeline: Slug) { standoffs(timeline: $timeline) { \
                    issue { slug title } status sides { party { code } stance event } } }",
                "variables": { "timeline": TIMELINE },
            }),
            "/data/standoffs",
        ),
        one(
            "a 50-event timeline page",
            5.0,
            json!({
                "query": format!("query Page($filter: EventFilterInput) {{ \
                    events(filter: $filter, order: LOG, first: 50) {{ \
                    edges {{ node {{ ...Ev }} }} pageInfo {{ hasNextPage endCursor }} }} }}\n{event_fields}"),
                "variables": { "filter": { "timelines": [TIMELINE] } },
            }),
            "/data/events/edges",
        ),
        ReadQuery {
            name: "the slider: standoffs of one timeline as of 100 successive days",
            afresh_p99_ms: 10.0,
            requests: slider,
            list: "/data/standoffs",
        },
    ])
}

/// One HTTP/1.1 keep-alive connection: sends prepared requests and reads whole answers (which
/// carry a `Content-Length`, as both servers measured here send).
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(address: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("cannot connect to {address}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(64 * 1024),
        })
    }

    async fn read_more(&mut self) -> anyhow::Result<()> {
        self.buffer.reserve(64 * 1024);
        if self.stream.read_buf(&mut self.buffer).await? == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    /// Sends `request` and answers the status and body of the response.
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<(u16, &[u8])> {
        self.stream.write_all(request).await?;
        self.buffer.clear();
        let body_start = loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            self.read_more().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..body_start])
            .context("the response head is not text")?;
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("a malformed status line: {head:?}"))?;
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .with_context(|| format!("a response without Content-Length: {head:?}"))?;
        while self.buffer.len() < body_start + length {
            self.read_more().await?;
        }
        if self.buffer.len() > body_start + length {
            bail!("the server sent more than one response");
        }
        Ok((status, &self.buffer[body_start..]))
    }
}

fn post(address: SocketAddr, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// A bare axum handler answering every `POST /graphql` with `answer`: what serving these bytes
/// costs without GraphQL, projections or the store.
async fn bare_handler(answer: Bytes) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let router = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |_request: Bytes| {
            let answer = answer.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/json; charset=utf-8",
                    )],
                    answer,
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("reads: the bare handler stopped: {e}");
        }
    });
    Ok((address, task))
}

/// What one load measured.
struct Loaded {
    p50_ms: f64,
    p99_ms: f64,
    per_second: f64,
    requests: usize,
}

/// Whether every request is the same, or each differs by a comment at the end of its document:
/// the answer is the same, but Chancery's answer cache cannot serve it, so each is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asking {
    Same,
    Afresh,
}

/// The request body with a comment ending its document: another question to a cache, the same
/// to GraphQL.
fn with_comment(body: &Value, comment: &str) -> anyhow::Result<Vec<u8>> {
    let mut body = body.clone();
    if let Some(Value::String(query)) = body.get_mut("query") {
        query.push_str("\n# ");
        query.push_str(comment);
    }
    Ok(serde_json::to_vec(&body)?)
}

/// One request of a read and the answer it must get.
struct Asked {
    body: Vec<u8>,
    answer: Bytes,
}

/// `CLIENTS` clients, each on its own keep-alive connection, ask `asked` in turn (each client
/// starting at its own place) one request after another for `seconds`; every answer must be 200
/// with exactly the answer captured for its request.
async fn load(
    address: SocketAddr,
    asked: &Arc<Vec<Asked>>,
    seconds: f64,
    asking: Asking,
) -> anyhow::Result<Loaded> {
    let requests: Arc<Vec<(Vec<u8>, Value)>> = Arc::new(
        asked
            .iter()
            .map(|a| Ok((post(address, &a.body), serde_json::from_slice(&a.body)?)))
            .collect::<anyhow::Result<_>>()?,
    );
    let duration = Duration::from_secs_f64(seconds);
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let mut connection = Connection::open(address).await?;
        let requests = Arc::clone(&requests);
        let asked = Arc::clone(asked);
        let barrier = Arc::clone(&barrier);
        clients.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u32> = Vec::with_capacity(1 << 14);
            barrier.wait().await;
            let started = Instant::now();
            let mut turn = 0usize;
            while started.elapsed() < duration {
                let which = (client + turn) % requests.len();
                turn += 1;
                let (same, parsed) = &requests[which];
                let fresh;
                let request: &[u8] = match asking {
                    Asking::Same => same,
                    Asking::Afresh => {
                        fresh = post(address, &with_comment(parsed, &format!("{client}.{turn}"))?);
                        &fresh
                    }
                };
                let sent = Instant::now();
                let (status, answer) = connection.exchange(request).await?;
                let took = sent.elapsed();
                if status != 200 || answer != &asked[which].answer[..] {
                    bail!(
                        "an answer under load differs from the one captured (status {status}, {} bytes): {}",
                        answer.len(),
                        String::from_utf8_lossy(&answer[..answer.len().min(300)])
                    );
                }
                latencies_us.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            }
            anyhow::Ok((latencies_us, started.elapsed().as_secs_f64()))
        }));
    }
    let mut all = Vec::new();
    let mut elapsed: f64 = 0.0;
    for client in clients {
        let (latencies, seconds) = client.await??;
        all.extend(latencies);
        elapsed = elapsed.max(seconds);
    }
    if all.is_empty() {
        bail!("no request completed");
    }
    all.sort_unstable();
    let quantile = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    Ok(Loaded {
        p50_ms: quantile(0.50),
        p99_ms: quantile(0.99),
        per_second: all.len() as f64 / elapsed,
        requests: all.len(),
    })
}

/// Asks the server each of a read's requests once and checks every answer is a real one: no
/// errors, a non-empty list. Gives the requests with their answers, and the items of the first.
async fn capture(
    address: SocketAddr,
    query: &ReadQuery,
) -> anyhow::Result<(Arc<Vec<Asked>>, usize)> {
    let mut connection = Connection::open(address).await?;
    let mut asked = Vec::with_capacity(query.requests.len());
    let mut first_items = 0;
    for request in &query.requests {
        let body = serde_json::to_vec(request)?;
        let (status, answer) = connection.exchange(&post(address, &body)).await?;
        let answer = Bytes::copy_from_slice(answer);
        let parsed: Value = serde_json::from_slice(&answer)
            .with_context(|| format!("{}: the answer is not JSON", query.name))?;
        let items = parsed
            .pointer(query.list)
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if status != 200 || parsed.get("errors").is_some() || items == 0 {
            bail!(
                "{}: the server answered {status} with no {}: {}",
                query.name,
                query.list,
                String::from_utf8_lossy(&answer[..answer.len().min(500)])
            );
        }
        if asked.is_empty() {
            first_items = items;
        }
        asked.push(Asked { body, answer });
    }
    Ok((Arc::new(asked), first_items))
}

/// Bytes a directory takes: allocated on disk (blocks) and apparent (lengths).
pub fn disk_usage(path: &Path) -> anyhow::Result<(u64, u64)> {
    disk_usage_of(path, &|_| true)
}

/// Like [`disk_usage`], counting only the files whose names `counted` accepts.
pub fn disk_usage_of(path: &Path, counted: &dyn Fn(&str) -> bool) -> anyhow::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut allocated = 0;
    let mut apparent = 0;
    for entry in
        std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?
    {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (a, b) = disk_usage_of(&entry.path(), counted)?;
            allocated += a;
            apparent += b;
        } else if counted(&entry.file_name().to_string_lossy()) {
            allocated += meta.blocks() * 512;
            apparent += meta.len();
        }
    }
    Ok((allocated, apparent))
}

/// Opens a sled database the server (or a copy) has let go of, with flushing off.
pub fn open_sled(
    db_dir: &Path,
    segment_size: Option<usize>,
    compressed: bool,
) -> anyhow::Result<sled::Db> {
    let mut config = sled::Config::new()
        .path(db_dir)
        .flush_every_ms(None)
        .use_compression(compressed);
    if let Some(size) = segment_size {
        config = config.segment_size(size);
    }
    // sled lets go of its lock from a background thread shortly after the last handle drops.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match config.open() {
            Err(e) if Instant::now() < deadline && e.to_string().contains("lock") => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => {
                return other.with_context(|| format!("cannot open {}", db_dir.display()));
            }
        }
    }
}

/// Bytes of keys and values in one sled tree, by the first byte of the key (its keyspace): what
/// sled's files hold, to set against their size.
fn stored_bytes(
    db_dir: &Path,
    tree: &str,
    segment_size: Option<usize>,
) -> anyhow::Result<std::collections::BTreeMap<u8, u64>> {
    let db = open_sled(db_dir, segment_size, false)?;
    let mut by_keyspace = std::collections::BTreeMap::new();
    for kv in db.open_tree(tree)?.iter() {
        let (k, v) = kv?;
        *by_keyspace
            .entry(k.first().copied().unwrap_or(0))
            .or_default() += (k.len() + v.len()) as u64;
    }
    Ok(by_keyspace)
}

/// Events in the log and the sum of their canonical encodings (the bodies the hash chain
/// covers), read from the stored records, each checked against its hash.
async fn canonical_bytes(log_dir: &Path) -> anyhow::Result<(u64, u64)> {
    let log = SledLog::open(log_dir, SledConfig::default())?;
    let mut events = 0u64;
    let mut bytes = 0u64;
    let mut from = 1;
    loop {
        let records = log.read(ReadRequest::forward(from, 10_000)).await?;
        let Some(last) = records.last() else { break };
        from = last.position() + 1;
        for record in &records {
            let line = record
                .canonical_json()
                .with_context(|| format!("the record at {} is damaged", record.position()))?;
            verify_record_hash(&line)
                .with_context(|| format!("the record at {} is damaged", record.position()))?;
            bytes += line.len() as u64 - HASH_SUFFIX_GROWTH;
            events += 1;
        }
    }
    Ok((events, bytes))
}

/// Per query: runs of p50, p99 and throughput, for the server and for the bare handler.
#[derive(Default)]
struct QueryRuns {
    /// By target (see [`TARGETS`]).
    p50: [Vec<f64>; 3],
    p99: [Vec<f64>; 3],
    per_second: [Vec<f64>; 3],
    /// Server CPU time per request (user + system), in ms: asked the same, and afresh.
    server_cpu_ms: [Vec<f64>; 2],
    /// Answers the server computed per second while asked the same (its answer cache's misses).
    computed_per_second: Vec<f64>,
}

/// What each query is loaded on, by index: Chancery, the bare handler, and Chancery asked
/// afresh each time.
const TARGETS: [&str; 3] = ["chancery", "bare axum", "chancery asked afresh"];
/// The index of the bare handler in [`TARGETS`].
const BARE: usize = 1;
/// The index of Chancery asked afresh in [`TARGETS`].
const AFRESH: usize = 2;

/// What the reads are measured on.
pub struct Scale {
    /// Events of the generated store.
    pub events: u64,
    /// Seconds of load per query and target in each run.
    pub seconds: f64,
    /// Where the generated store is kept between runs of the bench.
    pub keep: Option<PathBuf>,
    /// An older build whose reads asked afresh are measured beside this one's.
    pub baseline_bin: Option<PathBuf>,
}

pub async fn run(scale: &Scale, runs: usize, out: &Path, command: &str) -> anyhow::Result<()> {
    let Scale {
        events,
        seconds,
        ref keep,
        ref baseline_bin,
    } = *scale;
    if runs == 0 || seconds <= 0.0 {
        bail!("reads needs at least one run of more than 0 seconds");
    }
    let bin = chancery_bin()?;
    if let Some(old) = baseline_bin
        && !old.is_file()
    {
        bail!("--baseline-bin {}: no such file", old.display());
    }
    let temp = tempfile::tempdir()?;
    let dir = keep.as_deref().unwrap_or(temp.path()).to_path_buf();
    let generated = match crate::replay::generate_unless_kept(&dir, events, "reads").await? {
        None => format!(
            "The store was generated before this run (`--keep {}`).",
            dir.display()
        ),
        Some(took) => format!(
            "Generating the store ({events} events, appended in batches through `SledLog`) took {took:.0} s ({:.0} events/s).",
            events as f64 / took
        ),
    };
    let mut logs = Logs::new("chancery-bench-reads-logs-")?;
    let empty = measure_empty_store(&bin, &mut logs, runs).await?;
    let queries = read_queries(events)?;
    let served = measure_serving(
        (&bin, baseline_bin.as_deref()),
        &dir,
        &mut logs,
        &queries,
        (runs, seconds),
    )
    .await?;
    let disk = measure_disk(&dir).await?;
    // A store larger than the usual 1M gets a section of its own, so that both scales stand in
    // the report and the growth from one to the other can be read off.
    let millions = (disk.events > SEPARATE_SECTION_EVENTS).then_some(disk.events / 1_000_000);
    let mut figures = start_figures(&served, &empty);
    for (i, (query, m)) in queries.iter().zip(&served.queries).enumerate() {
        figures.extend(query_figures(query, m));
        if let (Some(old), Some(b)) = (baseline_bin, served.baseline.get(i)) {
            figures.extend(baseline_figures(query, m, old, b));
        }
    }
    figures.extend(memory_figures(&served, &empty));
    figures.extend(disk_figures(&disk));
    let total_events = disk.events;
    let mut section = Section {
        title: match millions {
            Some(m) => format!("Reads from a generated store of {m}M events"),
            None => "Reads from a generated store".into(),
        },
        command: command.into(),
        machine: machine(),
        date: today(),
        scale: format!(
            "{total_events} events in the log ({TIMELINES} timelines, {PARTIES} parties, {ISSUES} issues); reads of timeline `{TIMELINE}`; {CLIENTS} keep-alive HTTP/1.1 clients for {seconds} s per query and target; {runs} runs"
        ),
        figures,
        notes: notes(&queries, &served, disk, generated),
    };
    if let Some(old) = baseline_bin {
        section.notes.push(format!(
            "Against the baseline build `{}`: in each run that build is started on the same store (from the projections' checkpoint) and every query is asked afresh on it, after the same warm-up and for as long, by the same clients; its answers are checked byte-identical to this build's. It runs after this build's loads in even runs and before them in odd ones.",
            old.display()
        ));
    }
    let key = match millions {
        Some(m) => format!("reads-{m}m"),
        None => "reads".to_owned(),
    };
    crate::report::write(out, &key, section)
}

/// The same binary on an empty store: what a start and an idle server cost without data.
#[derive(Default)]
struct EmptyStore {
    /// Seconds from spawn to ready, per run.
    ready: Vec<f64>,
    rss: Vec<f64>,
    hwm: Vec<f64>,
}

/// The fixed cost of a start: the same binary restarting on an empty store (created by a first
/// start that is not measured, as creating a store is no part of a restart), `runs` times.
async fn measure_empty_store(
    bin: &Path,
    logs: &mut Logs,
    runs: usize,
) -> anyhow::Result<EmptyStore> {
    let empty = tempfile::tempdir()?;
    let (server, _) = Server::start(bin, empty.path(), logs.next("server"), &[]).await?;
    server.stop().await?;
    let mut measured = EmptyStore::default();
    for _ in 0..runs {
        let (server, started) = Server::start(bin, empty.path(), logs.next("server"), &[]).await?;
        let (rss, hwm) = server.memory()?;
        server.stop().await?;
        measured.ready.push(started.ready);
        measured.rss.push(rss);
        measured.hwm.push(hwm);
    }
    Ok(measured)
}

/// What the runs on the generated store measured.
#[derive(Default)]
struct Served {
    /// Seconds from spawn to ready and to the listening line, of the first start and of the
    /// restart, per run.
    first_ready: Vec<f64>,
    first_listening: Vec<f64>,
    restart_ready: Vec<f64>,
    restart_listening: Vec<f64>,
    /// The server's VmRSS at ready after the restart, and its VmRSS and VmHWM after the load.
    ready_rss: Vec<f64>,
    rss: Vec<f64>,
    hwm: Vec<f64>,
    /// Per query: its requests with the answers captured, and the first answer's items.
    captured: Vec<(Arc<Vec<Asked>>, usize)>,
    queries: Vec<QueryRuns>,
    /// Per query, with a baseline build: its reads asked afresh on that build.
    baseline: Vec<AfreshRuns>,
}

/// A query asked afresh on the baseline build, per run.
#[derive(Default)]
struct AfreshRuns {
    p99: Vec<f64>,
    /// Server CPU time per request (user + system), in ms.
    server_cpu_ms: Vec<f64>,
}

/// A bare handler answering a read's first request, and that request.
struct Bare {
    address: SocketAddr,
    task: JoinHandle<()>,
    asked: Arc<Vec<Asked>>,
}

/// Per run: a first start on the generated store (projections from scratch), a restart from
/// the checkpoint, every query loaded on every target, the server's memory after. The answers
/// are captured in the first run. With a baseline build, each run also loads every query asked
/// afresh on it (after this build's loads in even runs, before them in odd ones).
async fn measure_serving(
    (bin, baseline): (&Path, Option<&Path>),
    dir: &Path,
    logs: &mut Logs,
    queries: &[ReadQuery],
    (runs, seconds): (usize, f64),
) -> anyhow::Result<Served> {
    let mut served = Served {
        queries: queries.iter().map(|_| QueryRuns::default()).collect(),
        baseline: match baseline {
            Some(_) => queries.iter().map(|_| AfreshRuns::default()).collect(),
            None => Vec::new(),
        },
        ..Served::default()
    };
    let mut bare = Vec::new();
    for run in 0..runs {
        // The answers to check the baseline's against are captured in the first run.
        let baseline_first = run % 2 == 1;
        if let Some(old) = baseline.filter(|_| baseline_first) {
            served
                .load_baseline(old, dir, logs, queries, (run, seconds))
                .await?;
        }
        let server = served.start_twice(bin, dir, logs, run).await?;
        if served.captured.is_empty() {
            bare = served.capture(&server, queries).await?;
        }
        for (i, query) in queries.iter().enumerate() {
            let asked = (&served.captured[i].0, &bare[i]);
            load_query(
                &server,
                query,
                asked,
                (run, seconds),
                &mut served.queries[i],
            )
            .await?;
        }
        let (r, h) = server.memory()?;
        served.rss.push(r);
        served.hwm.push(h);
        server.stop().await?;
        if let Some(old) = baseline.filter(|_| !baseline_first) {
            served
                .load_baseline(old, dir, logs, queries, (run, seconds))
                .await?;
        }
    }
    for handler in &bare {
        handler.task.abort();
    }
    Ok(served)
}

impl Served {
    /// Starts the baseline build `old` on `dir` (from the checkpoint this build left) and loads
    /// every query on it asked afresh, each answer checked against this build's; notes the p99
    /// and the server CPU per request.
    async fn load_baseline(
        &mut self,
        old: &Path,
        dir: &Path,
        logs: &mut Logs,
        queries: &[ReadQuery],
        (run, seconds): (usize, f64),
    ) -> anyhow::Result<()> {
        let (server, _) = Server::start(old, dir, logs.next("baseline"), &[]).await?;
        for (i, query) in queries.iter().enumerate() {
            let asked = &self.captured[i].0;
            load(
                server.address,
                asked,
                (seconds / 5.0).min(0.5),
                Asking::Afresh,
            )
            .await?;
            let cpu_before = server.cpu_seconds()?;
            let m = load(server.address, asked, seconds, Asking::Afresh).await?;
            let cpu_ms = (server.cpu_seconds()? - cpu_before) * 1000.0 / m.requests as f64;
            eprintln!(
                "reads run {run}: {} on the baseline build asked afresh: p50 {:.3} ms, p99 {:.3} ms, {:.0} requests/s, {cpu_ms:.3} ms of server CPU per request",
                query.name, m.p50_ms, m.p99_ms, m.per_second
            );
            self.baseline[i].p99.push(m.p99_ms);
            self.baseline[i].server_cpu_ms.push(cpu_ms);
        }
        server.stop().await
    }

    /// Resets the projections, starts the server on `dir` (projections from scratch), stops it,
    /// and starts it again (from the checkpoint); notes both starts. Answers the running server.
    async fn start_twice(
        &mut self,
        bin: &Path,
        dir: &Path,
        logs: &mut Logs,
        run: usize,
    ) -> anyhow::Result<Server> {
        Projections::reset(&dir.join("projections"))?;
        let (server, first) = Server::start(bin, dir, logs.next("server"), &[]).await?;
        server.stop().await?;
        let (server, restart) = Server::start(bin, dir, logs.next("server"), &[]).await?;
        eprintln!(
            "reads run {run}: first start ready in {:.3} s (listening at {:.3} s), restart ready in {:.3} s (listening at {:.3} s)",
            first.ready, first.listening, restart.ready, restart.listening
        );
        self.ready_rss.push(server.memory()?.0);
        self.first_ready.push(first.ready);
        self.first_listening.push(first.listening);
        self.restart_ready.push(restart.ready);
        self.restart_listening.push(restart.listening);
        Ok(server)
    }

    /// Captures every query's answers from `server`, and starts a bare handler per query
    /// answering its first request (asked by every client).
    async fn capture(
        &mut self,
        server: &Server,
        queries: &[ReadQuery],
    ) -> anyhow::Result<Vec<Bare>> {
        let mut bare = Vec::new();
        for query in queries {
            let (asked, items) = capture(server.address, query).await?;
            let first = Arc::new(vec![Asked {
                body: asked[0].body.clone(),
                answer: asked[0].answer.clone(),
            }]);
            let (address, task) = bare_handler(first[0].answer.clone()).await?;
            bare.push(Bare {
                address,
                task,
                asked: first,
            });
            self.captured.push((asked, items));
        }
        Ok(bare)
    }
}

/// Loads `query` on each target in turn (Chancery with `asked`, the bare handler, Chancery
/// asked afresh), the order alternating between runs so that none always follows another's
/// load; notes each load's figures, and the server's CPU time per request, in `measured`.
async fn load_query(
    server: &Server,
    query: &ReadQuery,
    (asked, bare): (&Arc<Vec<Asked>>, &Bare),
    (run, seconds): (usize, f64),
    measured: &mut QueryRuns,
) -> anyhow::Result<()> {
    let targets = if run % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
    for target in targets {
        let (address, asked) = if target == BARE {
            (bare.address, &bare.asked)
        } else {
            (server.address, asked)
        };
        let asking = if target == AFRESH {
            Asking::Afresh
        } else {
            Asking::Same
        };
        // A short warm-up: connections, caches and allocator pools, not measured.
        load(address, asked, (seconds / 5.0).min(0.5), asking).await?;
        let misses = "chancery_answer_cache_misses_total";
        let misses_before = if target == 0 {
            server.metric(misses).await?
        } else {
            0.0
        };
        let cpu_before = server.cpu_seconds()?;
        let m = load(address, asked, seconds, asking).await?;
        if target != BARE {
            let cpu = server.cpu_seconds()? - cpu_before;
            measured.server_cpu_ms[target / 2].push(cpu * 1000.0 / m.requests as f64);
        }
        let computed = if target == 0 {
            let computed = server.metric(misses).await? - misses_before;
            measured.computed_per_second.push(computed / seconds);
            format!(", {computed} answers computed")
        } else {
            String::new()
        };
        eprintln!(
            "reads run {run}: {} on {}: p50 {:.3} ms, p99 {:.3} ms, {:.0} requests/s{computed}",
            query.name, TARGETS[target], m.p50_ms, m.p99_ms, m.per_second
        );
        measured.p50[target].push(m.p50_ms);
        measured.p99[target].push(m.p99_ms);
        measured.per_second[target].push(m.per_second);
    }
    Ok(())
}

/// What the store takes on disk after a graceful stop, against its events' canonical bytes.
struct Disk {
    events: u64,
    canonical_mb: f64,
    /// Allocated and apparent bytes of the log and of the projections.
    log: (u64, u64),
    projections: (u64, u64),
    /// What the bytes on disk hold, in words, for the report.
    breakdown: String,
}

/// Measures the store in `dir` on disk, and reads every record back for its canonical bytes.
async fn measure_disk(dir: &Path) -> anyhow::Result<Disk> {
    let log = disk_usage(&dir.join("log"))?;
    let projections = disk_usage(&dir.join("projections"))?;
    let (events, canonical) = canonical_bytes(&dir.join("log")).await?;
    let canonical_mb = canonical as f64 / MB;
    let breakdown = disk_breakdown(dir, canonical_mb, log.0, projections.0)?;
    eprintln!("reads: {breakdown}");
    eprintln!(
        "reads: {events} events, {canonical_mb:.1} MB canonical; log {:.1} MB, projections {:.1} MB on disk",
        log.0 as f64 / MB,
        projections.0 as f64 / MB
    );
    Ok(Disk {
        events,
        canonical_mb,
        log,
        projections,
        breakdown,
    })
}

/// What the bytes on disk of the store in `dir` hold, in words: the records' segments, the
/// log's index and the projections, each against what its sled tree holds.
fn disk_breakdown(
    dir: &Path,
    canonical_mb: f64,
    log_disk: u64,
    projections_disk: u64,
) -> anyhow::Result<String> {
    let log_held = stored_bytes(&dir.join("log"), "index", Some(8 * 1024 * 1024))?;
    let projections_held = stored_bytes(&dir.join("projections"), "projections", None)?;
    let records = dir.join("log").join("records");
    let is_id_index = |name: &str| name.ends_with(".ids") || name.ends_with(".run");
    let (segments_disk, segments_apparent) = disk_usage_of(&records, &|n| !is_id_index(n))?;
    let (ids_disk, _) = disk_usage_of(&records, &is_id_index)?;
    let held = |map: &std::collections::BTreeMap<u8, u64>, keyspaces: &[u8]| {
        keyspaces.iter().filter_map(|k| map.get(k)).sum::<u64>() as f64 / MB
    };
    let index_total = log_held.values().sum::<u64>() as f64 / MB;
    let projections_total = projections_held.values().sum::<u64>() as f64 / MB;
    let index_disk = log_disk.saturating_sub(segments_disk + ids_disk) as f64 / MB;
    let (values_disk, _) = disk_usage(&dir.join("projections").join("values"))?;
    let values_live = live_value_bytes(&dir.join("projections"))? as f64 / MB;
    let projections_tree_disk = projections_disk.saturating_sub(values_disk) as f64 / MB;
    Ok(format!(
        "Disk, by what it holds: the records' segments take {:.1} MB ({:.2} × the canonical bytes; {:.1} MB apparent, the records in their stored form with their frames and offsets). The id index beside them (a sorted run per closed segment, the open segment's ids) takes {:.1} MB. The index's sled tree holds {index_total:.1} MB (keys and values read back after the stop: the posting lists of timelines, parties, issues and kinds {:.1} MB, retraction marks {:.1} MB) in files of {index_disk:.1} MB, {:.2} × that. The projections' pages and blocks take {:.1} MB of value files, of which their checkpoint locates {values_live:.1} MB (a closed file under half live is compacted); their sled tree (locations and the checkpoint's own values) holds {projections_total:.1} MB, and the directory's other files (sled's, and the 4 MiB reserve) take {projections_tree_disk:.1} MB. sled is log-structured: a change rewrites the tree node it falls in, and a segment is reclaimed only once most of it is dead, so its files run well above what they hold.",
        segments_disk as f64 / MB,
        segments_disk as f64 / MB / canonical_mb,
        segments_apparent as f64 / MB,
        ids_disk as f64 / MB,
        held(&log_held, &[keys::POSTINGS]),
        held(&log_held, &[keys::RETRACTION]),
        index_disk / index_total.max(f64::MIN_POSITIVE),
        values_disk as f64 / MB,
    ))
}

/// The bytes of the projections' value files that their checkpoint locates, from its accounts
/// (`m:live`: a file number and a byte count per file, little-endian).
fn live_value_bytes(db_dir: &Path) -> anyhow::Result<u64> {
    let db = open_sled(db_dir, None, false)?;
    let accounts = db.open_tree("projections")?.get(b"m:live")?;
    Ok(accounts
        .as_deref()
        .unwrap_or_default()
        .chunks_exact(12)
        .filter_map(|entry| entry[4..].try_into().ok().map(u64::from_le_bytes))
        .sum())
}

/// Seconds, as milliseconds.
fn ms(seconds: &[f64]) -> Vec<f64> {
    seconds.iter().map(|s| s * 1000.0).collect()
}

/// What the baselines of the start and memory figures are.
const EMPTY_NAME: &str = "the same binary restarting on an empty store";

/// A first start and a restart, against a restart on an empty store.
fn start_figures(served: &Served, empty: &EmptyStore) -> Vec<Figure> {
    let against_empty = |name: &str, seconds: &[f64]| {
        figure(name, &ms(seconds), "ms", EMPTY_NAME, &ms(&empty.ready))
    };
    vec![
        against_empty(
            "first start: spawn to /readyz 200, projections from scratch",
            &served.first_ready,
        ),
        against_empty(
            "restart after SIGTERM: spawn to /readyz 200, from the checkpoint",
            &served.restart_ready,
        )
        .target("≤ 1,000 ms", |f| f.value <= 1000.0),
    ]
}

/// A query's latencies and throughput, asked the same and afresh, against the bare handler.
fn query_figures(query: &ReadQuery, m: &QueryRuns) -> Vec<Figure> {
    let bare_name = "bare axum handler, same bytes";
    let afresh = format!("{}, asked afresh (no answer-cache hit)", query.name);
    let afresh_p99_ms = query.afresh_p99_ms;
    let against_bare = |name: String, runs: &[Vec<f64>; 3], target: usize, unit: &str| {
        figure(name, &runs[target], unit, bare_name, &runs[BARE])
    };
    vec![
        against_bare(format!("{}: p50 latency", query.name), &m.p50, 0, "ms"),
        against_bare(format!("{}: p99 latency", query.name), &m.p99, 0, "ms")
            .target("≤ 5 ms", |f| f.value <= 5.0),
        against_bare(
            format!("{}: throughput", query.name),
            &m.per_second,
            0,
            "requests/s",
        )
        .target("≥ 0.5 × baseline", |f| {
            f.ratio().is_some_and(|r| r >= 0.5)
        }),
        against_bare(format!("{afresh}: p99 latency"), &m.p99, AFRESH, "ms")
            .target(format!("≤ {afresh_p99_ms} ms"), |f| {
                f.value <= afresh_p99_ms
            }),
        against_bare(
            format!("{afresh}: throughput"),
            &m.per_second,
            AFRESH,
            "requests/s",
        ),
    ]
}

/// A query asked afresh on this build against the baseline build: server CPU per request and
/// p99 latency.
fn baseline_figures(query: &ReadQuery, m: &QueryRuns, old: &Path, b: &AfreshRuns) -> Vec<Figure> {
    let afresh = format!("{}, asked afresh", query.name);
    let baseline_name = format!("the baseline build `{}`", old.display());
    vec![
        figure(
            format!("{afresh}: server CPU per request"),
            &m.server_cpu_ms[1],
            "ms",
            &baseline_name,
            &b.server_cpu_ms,
        ),
        figure(
            format!("{afresh}: p99 latency, against the baseline build"),
            &m.p99[AFRESH],
            "ms",
            &baseline_name,
            &b.p99,
        ),
    ]
}

/// The server's memory after the load and at ready, against an idle server on an empty store.
fn memory_figures(served: &Served, empty: &EmptyStore) -> Vec<Figure> {
    let idle = format!("{EMPTY_NAME}, idle");
    vec![
        figure(
            "server VmRSS after the load",
            &served.rss,
            "MB",
            &idle,
            &empty.rss,
        )
        .target("≤ 300 MB", |f| f.value <= 300.0),
        figure(
            "server VmRSS at ready after the restart, before the load",
            &served.ready_rss,
            "MB",
            &idle,
            &empty.rss,
        ),
        figure(
            "server VmHWM (peak RSS) after the load",
            &served.hwm,
            "MB",
            &idle,
            &empty.hwm,
        ),
    ]
}

/// Bytes on disk against the events' canonical encodings.
fn disk_figures(disk: &Disk) -> Vec<Figure> {
    let on_disk = |name: &str, bytes: u64| {
        figure(
            name,
            &[bytes as f64 / MB],
            "MB",
            "canonical encodings of the events",
            &[disk.canonical_mb],
        )
    };
    vec![
        on_disk(
            "data directory on disk (log + projections)",
            disk.log.0 + disk.projections.0,
        )
        .target("≤ 1.5 × baseline", |f| {
            f.ratio().is_some_and(|r| r <= 1.5)
        }),
        on_disk("log on disk", disk.log.0),
        on_disk("projections on disk", disk.projections.0),
    ]
}

/// The report's notes: how reads, starts and the disk were measured, and how the store came to
/// be (`generated`).
fn notes(queries: &[ReadQuery], served: &Served, disk: Disk, generated: String) -> Vec<String> {
    let sizes: Vec<String> = queries
        .iter()
        .zip(&served.captured)
        .zip(&served.queries)
        .map(|((q, (asked, items)), m)| {
            format!(
                "{}: {items} items, {} bytes{}, {:.3} ms of server CPU per request and {:.1} answers computed per second ({:.2} ms asked afresh)",
                q.name,
                asked[0].answer.len(),
                if asked.len() > 1 { " (the first day's answer)" } else { "" },
                med(&m.server_cpu_ms[0]),
                med(&m.computed_per_second),
                med(&m.server_cpu_ms[1])
            )
        })
        .collect();
    vec![
        format!(
            "The real `chancery serve` in a process of its own on loopback; the clients and the bare axum baseline share the benchmark's process (and the machine's cores with the server). Every answer under load is checked to be 200 and byte-identical to the one captured first. Chancery answers repeated read queries from its answer cache (valid while the log and the projections are unchanged, and the present second too for an answer that read the present; \"answers computed\" counts the cache's misses, from /metrics, under the load of the same questions); each query is also measured \"asked afresh\", every request's document ending in a different comment, so that every answer is computed. Answers (server CPU from /proc/PID/stat over the measured load, medians): {}.",
            sizes.join("; ")
        ),
        format!(
            "Starts are timed from spawn to the first `/readyz` 200 (polled every 2 ms); the \"listening\" line came after {:.0} ms (first start) and {:.0} ms (restart), medians: the rest is catching up. Each run resets the projections before its first start.",
            med(&ms(&served.first_listening)),
            med(&ms(&served.restart_listening)),
        ),
        format!(
            "Disk: allocated blocks after a graceful stop (apparent sizes: log {:.1} MB, projections {:.1} MB). Canonical bytes: each record's hashed body (`encode_record`), summed over the {} records read back from the log.",
            disk.log.1 as f64 / MB,
            disk.projections.1 as f64 / MB,
            disk.events,
        ),
        disk.breakdown,
        generated,
    ]
}
