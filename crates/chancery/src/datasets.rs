//! Coded event datasets in and out of the store: `chancery import --format gdelt|icews|polecat`,
//! `POST /import` (the same import for admins, over HTTP) and `chancery export --format
//! gdelt|polecat`.
//!
//! An import reads its files twice. The first pass reads every row, applies the filters, maps
//! each row to its event and checks it, and learns which parties the rows name: a malformed row
//! stops the import there, with nothing written, naming its file, line and column (unless
//! `skip_bad`, which skips and lists every malformed row). Then the timeline, the issue and the
//! parties the store lacks are registered, and the second pass appends the events in batches,
//! skipping those already imported (an event's id comes from the dataset's own id, so a re-run
//! finds them). Memory stays flat whatever the file's size: only the parties and the counts are
//! kept between the passes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::path::PathBuf;

use chancery_datasets::export::{ExportedParty, gdelt_row, polecat_header, polecat_row};
use chancery_datasets::input::decompressed;
use chancery_datasets::{
    DatasetRow, Destination, Format, RowError, RowReader, Unmapped, event_of, parties, parties_of,
};
use chancery_domain::ids::IdSet;
use chancery_domain::payload::{
    IssueRegistered, PartyKind, PartyRegistered, Payload, TimelineRegistered,
};
use chancery_domain::time::ValidTime;
use chancery_domain::{IssueSlug, NewEvent, PartyCode, Position, Registry, TimelineSlug, validate};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion, StoreError};
use futures_util::StreamExt;
use serde::Serialize;

use crate::exchange::{ExchangeError, Progress, timeline_acts};

/// Events per append (the store's largest batch).
const BATCH: usize = chancery_domain::limits::MAX_BATCH_EVENTS;
/// Appends the import keeps waiting on the log at once.
const APPENDS_IN_FLIGHT: usize = 4;
/// Lines of each kind of skipped row the report lists; the rest are counted.
const LISTED_PER_REASON: usize = 20;

/// What to import and how.
#[derive(Debug, Clone)]
pub struct DatasetImport {
    pub format: Format,
    /// The files, read in order (plain, gzip or zip).
    pub files: Vec<InputFile>,
    pub timeline: TimelineSlug,
    /// Only events between these two parties, either way round.
    pub dyad: Option<(PartyCode, PartyCode)>,
    /// Only events on or after this day.
    pub from: Option<ValidTime>,
    /// Only events on or before this day.
    pub to: Option<ValidTime>,
    /// An issue every imported event is tagged with (registered when missing).
    pub issue: Option<IssueSlug>,
    /// Skip malformed rows (and list them) instead of stopping at the first.
    pub skip_bad: bool,
    /// Who the events are recorded by.
    pub recorded_by: String,
}

/// A file to import, and what the report calls it.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    pub name: String,
}

impl InputFile {
    /// A file named by its path.
    pub fn at(path: PathBuf) -> Self {
        let name = path.display().to_string();
        InputFile { path, name }
    }
}

/// A row left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedRow {
    pub file: String,
    pub line: u64,
    pub why: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetReport {
    /// Rows read (header rows not counted).
    pub rows: u64,
    /// Events written.
    pub imported: u64,
    /// Rows whose event the timeline already holds (an earlier import of them).
    pub already_imported: u64,
    /// Rows outside `--dyad`, `--from` or `--to`.
    pub filtered_out: u64,
    /// Malformed rows skipped (with `skip_bad`), every one listed.
    pub malformed: Vec<SkippedRow>,
    /// Rows that read well but make no event, counted by reason.
    pub unmapped: BTreeMap<String, u64>,
    /// Some of the rows counted in `unmapped`, the first of each reason.
    pub unmapped_examples: Vec<SkippedRow>,
    /// Parties registered on first use, by code.
    pub parties_registered: Vec<String>,
    pub timeline_registered: bool,
    pub issue_registered: bool,
    /// The log's head after the import.
    pub head: Position,
}

impl DatasetReport {
    /// Rows skipped for any reason but being imported already.
    pub fn skipped(&self) -> u64 {
        self.filtered_out + self.malformed.len() as u64 + self.unmapped.values().sum::<u64>()
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum DatasetImportError {
    #[error("{file}: {error}; nothing was written")]
    Malformed { file: String, error: RowError },
    #[error("{0}")]
    Read(String),
    #[error("{file} holds no rows")]
    Empty { file: String },
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A party the rows name, as it will be registered if the store lacks it.
#[derive(Debug, Clone)]
struct Named {
    name: String,
    kind: PartyKind,
}

/// The parties of the events the first pass kept, with the names they are registered by.
type Plan = BTreeMap<PartyCode, Named>;

/// The non-empty lines of a file (decompressed), with their line numbers.
fn lines_of(
    input: &InputFile,
) -> Result<impl Iterator<Item = Result<(u64, String), DatasetImportError>>, DatasetImportError> {
    let name = input.name.clone();
    let file = std::fs::File::open(&input.path)
        .map_err(|e| DatasetImportError::Read(format!("cannot read {name}: {e}")))?;
    let reader = decompressed(file, &name).map_err(|e| DatasetImportError::Read(e.to_string()))?;
    let mut number = 0u64;
    Ok(reader.split(b'\n').filter_map(move |line| {
        number += 1;
        let mut bytes = match line {
            Ok(bytes) => bytes,
            Err(e) => {
                return Some(Err(DatasetImportError::Read(format!(
                    "{name}, line {number}: {e}"
                ))));
            }
        };
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        // Datasets are UTF-8; a stray byte becomes U+FFFD rather than stopping a large import.
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|bad| String::from_utf8_lossy(bad.as_bytes()).into_owned());
        Some(Ok((number, text)))
    }))
}

impl DatasetImport {
    fn keeps(&self, row: &DatasetRow, actor: &PartyCode, target: Option<&PartyCode>) -> bool {
        if let Some(from) = &self.from {
            if row.date.earliest() < from.earliest() {
                return false;
            }
        }
        if let Some(to) = &self.to {
            if row.date.earliest() >= to.end_exclusive() {
                return false;
            }
        }
        match (&self.dyad, target) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((a, b)), Some(t)) => (actor == a && t == b) || (actor == b && t == a),
        }
    }

    fn destination(&self) -> Destination {
        Destination {
            timeline: self.timeline.clone(),
            issue: self.issue.clone(),
        }
    }
}

/// What becomes of one row: an event, or why not.
enum Outcome {
    Event(Box<NewEvent>),
    Filtered,
    Unmapped(String),
}

/// Maps a row to its checked event, or says why it makes none.
fn outcome(
    job: &DatasetImport,
    to: &Destination,
    row: &DatasetRow,
    names: &dyn Fn(&PartyCode) -> String,
    check: Check,
) -> Outcome {
    let (actor, target) = match parties_of(row) {
        Ok(p) => p,
        Err(why) => return Outcome::Unmapped(why.to_string()),
    };
    if !job.keeps(row, &actor, target.as_ref()) {
        return Outcome::Filtered;
    }
    let mut event = match event_of(row, to, names) {
        Ok(e) => e,
        Err(
            why @ (Unmapped::NoActor | Unmapped::BadPartyCode(_) | Unmapped::UnknownCountry(_)),
        ) => {
            return Outcome::Unmapped(why.to_string());
        }
    };
    event.recorded_by = Some(job.recorded_by.clone());
    if check == Check::Again {
        return Outcome::Event(Box::new(event));
    }
    match validate(&event) {
        Ok(()) => Outcome::Event(Box::new(event)),
        Err(errors) => Outcome::Unmapped(format!("makes no valid event: {errors}")),
    }
}

/// Whether a row's event is checked here: the first pass does; the second makes the same events
/// again, and the log checks every event it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    First,
    Again,
}

/// The name a party is registered and summarised by: the party table's, else the row's.
fn named(row_party: &chancery_datasets::RowParty) -> Named {
    match parties::by_code(&row_party.code) {
        Some(known) => Named {
            name: known.name.to_owned(),
            kind: known.kind,
        },
        None => Named {
            name: parties::name_from_row(&row_party.name, &row_party.code),
            kind: if row_party.group {
                PartyKind::Organization
            } else {
                PartyKind::State
            },
        },
    }
}

/// Imports dataset files into a timeline; see the module's documentation.
pub async fn import(
    log: &dyn EventLog,
    job: &DatasetImport,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<DatasetReport, DatasetImportError> {
    let mut report = DatasetReport::default();
    let registry = (*log.registry().await?).clone();
    let to = job.destination();

    // Pass 1: read, filter, map and check every row; learn the parties of the events kept.
    // The rows are checked by worker threads, a chunk each, and merged in the file's order.
    let mut plan = Plan::new();
    for input in &job.files {
        let checked = check_file(job, &to, &registry, input, progress, &mut report)?;
        if checked.read == 0 && !job.skip_bad {
            return Err(DatasetImportError::Empty {
                file: input.name.clone(),
            });
        }
        for (code, named) in checked.parties {
            plan.entry(code).or_insert(named);
        }
    }
    let rows_to_write = report.rows;

    // Registrations the events need, before them.
    register(log, job, &registry, &plan, &mut report).await?;

    // Pass 2: a thread reads the rows again and makes their events into batches while this
    // task appends the batch before, so that reading, mapping and the log's writer run at once.
    let names: HashMap<PartyCode, String> = plan
        .iter()
        .map(|(code, n)| {
            let name = registry
                .parties
                .get(code)
                .map_or_else(|| n.name.clone(), |r| r.name.clone());
            (code.clone(), name)
        })
        .collect();
    let (batches, mut arriving) =
        tokio::sync::mpsc::channel::<Result<Batch, DatasetImportError>>(2);
    let (producer_job, producer_to) = (job.clone(), to.clone());
    let producer = std::thread::Builder::new()
        .name("chancery-import".into())
        .spawn(move || make_batches(&producer_job, &producer_to, &names, &batches))
        .map_err(|e| DatasetImportError::Read(format!("cannot start the import's reader: {e}")))?;
    // Several appends in flight: while the log's writer seals and syncs one batch, this task
    // checks the next ones and hands them over, so the writer does not wait between batches and
    // takes those that queued meanwhile as one group, under one sync.
    let mut in_flight = futures_util::stream::FuturesOrdered::new();
    // The ids of the batches in flight: a row repeated across them is not in the log yet.
    let mut flying: std::collections::VecDeque<IdSet> = std::collections::VecDeque::new();
    let mut reading = true;
    while reading || !in_flight.is_empty() {
        tokio::select! {
            batch = arriving.recv(), if reading && in_flight.len() < APPENDS_IN_FLIGHT => {
                let Some(batch) = batch else {
                    reading = false;
                    continue;
                };
                let Batch { events, rows_read } = batch?;
                let mut fresh = Vec::with_capacity(events.len());
                let mut ids = IdSet::with_capacity_and_hasher(events.len(), Default::default());
                for event in events {
                    // Imported before, twice in these batches, or already in the log: the
                    // dataset's id made the same event id.
                    let repeated = flying.iter().any(|f| f.contains(&event.id)) || !ids.insert(event.id);
                    if repeated || log.event(event.id).await?.is_some() {
                        report.already_imported += 1;
                    } else {
                        fresh.push(event);
                    }
                }
                flying.push_back(ids);
                let timeline = &job.timeline;
                in_flight.push_back(async move {
                    let mut fresh = fresh;
                    append(log, timeline, &mut fresh).await.map(|written| (written, rows_read))
                });
            }
            Some(done) = in_flight.next() => {
                let (written, rows_read) = done?;
                flying.pop_front();
                report.imported += written;
                progress(Progress { phase: "importing", done: rows_read, total: Some(rows_to_write) });
            }
        }
    }
    // The reader has sent its last batch (or failed, and said so above).
    let _ = producer.join();
    report.head = log.head().await?.position;
    Ok(report)
}

/// Lines per chunk of the first pass.
const CHUNK: usize = 4_096;

/// Consecutive lines of one file, with the reader that knows its columns.
struct Chunk {
    rows: RowReader,
    lines: Vec<(u64, String)>,
}

/// What checking a chunk (or a whole file) found.
#[derive(Default)]
struct Checked {
    /// Rows that read well.
    read: u64,
    filtered_out: u64,
    /// The malformed rows, in order (the first only, unless bad rows are skipped).
    malformed: Vec<RowError>,
    /// Rows that make no event, by reason, with the first lines of each.
    unmapped: BTreeMap<String, (u64, Vec<u64>)>,
    /// The parties of the events kept, each with the name of the first row that names it.
    parties: Vec<(PartyCode, Named)>,
}

/// Checks a chunk of rows: reads, filters, maps and validates each, stopping at the first
/// malformed row unless bad rows are skipped.
fn check_chunk(
    job: &DatasetImport,
    to: &Destination,
    registry: &Registry,
    chunk: Chunk,
) -> Checked {
    let Chunk { mut rows, lines } = chunk;
    let mut out = Checked::default();
    for (number, text) in lines {
        let row = match rows.line(number, &text) {
            Ok(Some(row)) => row,
            Ok(None) => continue,
            Err(error) => {
                out.malformed.push(error);
                if job.skip_bad {
                    continue;
                }
                return out;
            }
        };
        out.read += 1;
        // A party's name: the store's, else the party table's or the row's.
        let row_names: Vec<(String, Named)> = [&row.actor, &row.target]
            .into_iter()
            .flatten()
            .map(|p| {
                let known = PartyCode::new(p.code.as_str()).ok().and_then(|code| {
                    registry.parties.get(&code).map(|r| Named {
                        name: r.name.clone(),
                        kind: r.party_kind,
                    })
                });
                (p.code.clone(), known.unwrap_or_else(|| named(p)))
            })
            .collect();
        let names = |code: &PartyCode| name_in(&row_names, code);
        match outcome(job, to, &row, &names, Check::First) {
            Outcome::Event(event) => {
                // Only the parties of events that are written are registered.
                for party in event.parties() {
                    if !out.parties.iter().any(|(c, _)| c == party) {
                        if let Some((_, n)) = row_names.iter().find(|(c, _)| c == party.as_str()) {
                            out.parties.push((party.clone(), n.clone()));
                        }
                    }
                }
            }
            Outcome::Filtered => out.filtered_out += 1,
            Outcome::Unmapped(why) => {
                let (count, lines) = out.unmapped.entry(why).or_default();
                *count += 1;
                if lines.len() < LISTED_PER_REASON {
                    lines.push(row.line);
                }
            }
        }
    }
    out
}

/// The first pass over one file: a reader (this thread) cuts it into chunks that worker threads
/// check; their findings are merged in the file's order, so the report and the parties' names
/// are those of a pass row by row. Stops at the first malformed row unless bad rows are skipped.
fn check_file(
    job: &DatasetImport,
    to: &Destination,
    registry: &Registry,
    input: &InputFile,
    progress: &(dyn Fn(Progress) + Sync),
    report: &mut DatasetReport,
) -> Result<Checked, DatasetImportError> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let file = input.name.clone();
    std::thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(workers);
        let mut from_workers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (chunks, incoming) = std::sync::mpsc::sync_channel::<Chunk>(2);
            let (results, outgoing) = std::sync::mpsc::sync_channel::<Checked>(2);
            scope.spawn(move || {
                for chunk in incoming {
                    if results.send(check_chunk(job, to, registry, chunk)).is_err() {
                        return;
                    }
                }
            });
            to_workers.push(chunks);
            from_workers.push(outgoing);
        }
        let mut whole = Checked::default();
        // Chunks sent and not merged yet, oldest first: their numbers.
        let mut pending = std::collections::VecDeque::new();
        let merge = |whole: &mut Checked,
                     report: &mut DatasetReport,
                     part: Checked|
         -> Result<(), DatasetImportError> {
            report.rows += part.read + part.malformed.len() as u64;
            whole.read += part.read;
            report.filtered_out += part.filtered_out;
            for (why, (count, lines)) in part.unmapped {
                let total = report.unmapped.entry(why.clone()).or_insert(0);
                let listed = (*total as usize).min(LISTED_PER_REASON);
                *total += count;
                for line in lines.into_iter().take(LISTED_PER_REASON - listed) {
                    report.unmapped_examples.push(SkippedRow {
                        file: file.clone(),
                        line,
                        why: why.clone(),
                    });
                }
            }
            for (code, named) in part.parties {
                if !whole.parties.iter().any(|(c, _)| *c == code) {
                    whole.parties.push((code, named));
                }
            }
            for error in part.malformed {
                if !job.skip_bad {
                    return Err(DatasetImportError::Malformed {
                        file: file.clone(),
                        error,
                    });
                }
                report.malformed.push(SkippedRow {
                    file: file.clone(),
                    line: error.line,
                    why: format!("{}: {}", error.field, error.message),
                });
            }
            progress(Progress {
                phase: "checking",
                done: report.rows,
                total: None,
            });
            Ok(())
        };
        let mut rows = job.format.rows();
        let mut lines = Vec::with_capacity(CHUNK);
        let mut sent = 0usize;
        let mut send = |lines: Vec<(u64, String)>,
                        rows: &RowReader,
                        whole: &mut Checked,
                        report: &mut DatasetReport|
         -> Result<(), DatasetImportError> {
            let worker = sent % workers;
            if to_workers[worker]
                .send(Chunk {
                    rows: rows.clone(),
                    lines,
                })
                .is_err()
            {
                return Err(DatasetImportError::Read("a checking thread stopped".into()));
            }
            pending.push_back(worker);
            sent += 1;
            // Each worker holds two chunks at most: merge the oldest before going further.
            while pending.len() > 2 * workers {
                let oldest = pending.pop_front().unwrap_or(0);
                let part = from_workers[oldest]
                    .recv()
                    .map_err(|_| DatasetImportError::Read("a checking thread stopped".into()))?;
                merge(whole, report, part)?;
            }
            Ok(())
        };
        let mut header_read = false;
        for item in lines_of(input)? {
            let (number, text) = item?;
            // A header row is read here, before the rows that need its columns.
            if !header_read && job.format != Format::Gdelt {
                header_read = true;
                match rows.line(number, &text) {
                    Ok(None) => continue,
                    Ok(Some(_)) => {}
                    Err(error) => {
                        return Err(DatasetImportError::Malformed {
                            file: file.clone(),
                            error,
                        });
                    }
                }
            }
            lines.push((number, text));
            if lines.len() == CHUNK {
                send(
                    std::mem::replace(&mut lines, Vec::with_capacity(CHUNK)),
                    &rows,
                    &mut whole,
                    report,
                )?;
            }
        }
        if !lines.is_empty() {
            send(lines, &rows, &mut whole, report)?;
        }
        drop(to_workers);
        while let Some(oldest) = pending.pop_front() {
            let part = from_workers[oldest]
                .recv()
                .map_err(|_| DatasetImportError::Read("a checking thread stopped".into()))?;
            merge(&mut whole, report, part)?;
        }
        Ok(whole)
    })
}

/// Events of consecutive rows, and how many rows the reader has read so far.
struct Batch {
    events: Vec<NewEvent>,
    rows_read: u64,
}

/// The second pass's reader: the files' events in batches of [`BATCH`], sent on `out` (which
/// holds two at most); stops at the first error, sent too, or when the receiver is gone.
fn make_batches(
    job: &DatasetImport,
    to: &Destination,
    names: &HashMap<PartyCode, String>,
    out: &tokio::sync::mpsc::Sender<Result<Batch, DatasetImportError>>,
) {
    let names = |code: &PartyCode| names.get(code).cloned().unwrap_or_else(|| code.to_string());
    let mut events = Vec::with_capacity(BATCH);
    let mut rows_read = 0u64;
    let send = |events: Vec<NewEvent>, rows_read: u64| {
        out.blocking_send(Ok(Batch { events, rows_read })).is_ok()
    };
    for input in &job.files {
        let mut rows = job.format.rows();
        let lines = match lines_of(input) {
            Ok(lines) => lines,
            Err(e) => {
                let _ = out.blocking_send(Err(e));
                return;
            }
        };
        for item in lines {
            let (number, text) = match item {
                Ok(line) => line,
                Err(e) => {
                    let _ = out.blocking_send(Err(e));
                    return;
                }
            };
            rows_read += 1;
            // The first pass read every line: one that does not read now was skipped then.
            let Ok(Some(row)) = rows.line(number, &text) else {
                continue;
            };
            if let Outcome::Event(event) = outcome(job, to, &row, &names, Check::Again) {
                events.push(*event);
                if events.len() == BATCH
                    && !send(
                        std::mem::replace(&mut events, Vec::with_capacity(BATCH)),
                        rows_read,
                    )
                {
                    return;
                }
            }
        }
    }
    if !events.is_empty() {
        send(events, rows_read);
    }
}

/// The name of one of a row's parties, for its summary.
fn name_in(row_names: &[(String, Named)], code: &PartyCode) -> String {
    row_names
        .iter()
        .find(|(c, _)| c == code.as_str())
        .map_or_else(|| code.to_string(), |(_, n)| n.name.clone())
}

async fn append(
    log: &dyn EventLog,
    timeline: &TimelineSlug,
    batch: &mut Vec<NewEvent>,
) -> Result<u64, StoreError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let events = std::mem::take(batch);
    let count = events.len() as u64;
    log.append(AppendRequest {
        refers_within: None,
        timeline: timeline.clone(),
        expected: ExpectedVersion::Any,
        events,
    })
    .await?;
    Ok(count)
}

/// Registers the timeline, the issue and the parties the store lacks, in one append.
async fn register(
    log: &dyn EventLog,
    job: &DatasetImport,
    registry: &Registry,
    plan: &Plan,
    report: &mut DatasetReport,
) -> Result<(), DatasetImportError> {
    let mut events = Vec::new();
    let registration = |payload: Payload| {
        let mut e = NewEvent::new(job.timeline.clone(), payload);
        e.recorded_by = Some(job.recorded_by.clone());
        e
    };
    let new_timeline = !registry.timelines.contains_key(&job.timeline);
    if new_timeline {
        events.push(registration(Payload::TimelineRegistered(
            TimelineRegistered {
                slug: job.timeline.clone(),
                title: title_of(job.timeline.as_str()),
                description: Some(format!("Imported from {}.", dataset_name(job.format))),
            },
        )));
    }
    if let Some(issue) = job
        .issue
        .as_ref()
        .filter(|i| !registry.issues.contains_key(*i))
    {
        events.push(registration(Payload::IssueRegistered(IssueRegistered {
            slug: issue.clone(),
            title: title_of(issue.as_str()),
            description: None,
        })));
        report.issue_registered = true;
    }
    let mut registered = BTreeSet::new();
    for (code, named) in plan {
        if !registry.parties.contains_key(code) {
            events.push(registration(Payload::PartyRegistered(PartyRegistered {
                code: code.clone(),
                name: named.name.clone(),
                party_kind: named.kind,
            })));
            registered.insert(code.to_string());
        }
    }
    if events.is_empty() {
        return Ok(());
    }
    for chunk in events.chunks(BATCH) {
        let expected = if new_timeline
            && report.parties_registered.is_empty()
            && !report.timeline_registered
        {
            ExpectedVersion::NoTimeline
        } else {
            ExpectedVersion::Any
        };
        log.append(AppendRequest {
            refers_within: None,
            timeline: job.timeline.clone(),
            expected,
            events: chunk.to_vec(),
        })
        .await?;
        report.timeline_registered = new_timeline;
    }
    report.parties_registered = registered.into_iter().collect();
    Ok(())
}

/// `us-china-trade` reads as `Us china trade`: a title for what an import opens.
fn title_of(slug: &str) -> String {
    let words = slug.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

fn dataset_name(format: Format) -> &'static str {
    match format {
        Format::Gdelt => "GDELT 2.0",
        Format::Icews => "ICEWS",
        Format::Polecat => "POLECAT",
    }
}

/// The formats `chancery export` writes rows of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    Gdelt,
    Polecat,
}

/// Writes a timeline's acts (retracted ones left out, corrections applied) as dataset rows;
/// answers how many rows were written.
pub async fn export(
    log: &dyn EventLog,
    timeline: &TimelineSlug,
    format: RowFormat,
    out: &mut dyn std::io::Write,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<u64, ExchangeError> {
    let acts = timeline_acts(log, timeline, progress).await?;
    let registry = log.registry().await?;
    let party = |code: &PartyCode| match registry.parties.get(code) {
        Some(p) => ExportedParty {
            name: p.name.clone(),
            kind: p.party_kind,
        },
        None => ExportedParty {
            name: code.to_string(),
            kind: PartyKind::Other,
        },
    };
    let write = |out: &mut dyn std::io::Write, line: &str| {
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(ExchangeError::Write)
    };
    if format == RowFormat::Polecat {
        write(out, &polecat_header())?;
    }
    let mut written = 0;
    for (position, act) in &acts.acts {
        let row = match format {
            RowFormat::Gdelt => gdelt_row(act, *position, &party),
            RowFormat::Polecat => polecat_row(act, *position, &party),
        };
        if let Some(row) = row {
            write(out, &row)?;
            written += 1;
        }
    }
    Ok(written)
}
