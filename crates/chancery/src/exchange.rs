//! Import and export: the NDJSON formats that move events in and out of a log.
//!
//! - **Event files** hold one event per line, as a client would submit it (no position, no
//!   hash). Import checks the whole file first and writes nothing if any line is bad; it then
//!   appends in batches, skipping events already recorded with the same content, so it can be
//!   re-run safely. Its events are recorded by the name the import is given (the operator's),
//!   whatever a line says of who recorded it.
//! - **Exports** (format `chancery-export`, version 1) start with a header line, then hold every
//!   record's canonical JSON (the bytes its hash covers, with the hash), one per line, in
//!   position order. Importing an export into an empty store restores it exactly: same ids,
//!   positions, times and hashes, and exporting it again gives the same bytes. Export and import
//!   thus double as backup and restore, and `verify` can check an export on its own. A record
//!   keeps who recorded it, or that this is unknown (records of before names were kept).

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chancery_domain::codes::codes;
use chancery_domain::{
    EventId, EventRef, Hash, NewEvent, Payload, Position, RecordError, RecordedEvent, References,
    Registry, ValidationErrors, validate, validate_recorded_by, validate_references,
};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion, ReadRequest, StoreError};
use serde::{Deserialize, Serialize};

/// The name in every export's header line.
pub const EXPORT_FORMAT: &str = "chancery-export";
/// The version of the export format written by this build.
pub const EXPORT_VERSION: u32 = 1;
/// Events per append during an import.
const IMPORT_BATCH: usize = 500;
/// Records per read or restore during export, verify and restore.
const RECORD_CHUNK: usize = 1_000;

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExportHeader {
    pub format: String,
    pub version: u32,
    /// How many records follow (the head position at the time of the export).
    pub events: Position,
    /// The hash of the last record.
    pub head_hash: Hash,
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("lines {first}-{last} were not imported: {source}")]
    Batch {
        first: u64,
        last: u64,
        source: StoreError,
    },
    #[error("{0}")]
    Io(String),
    #[error("events cannot be recorded by {name:?}: {errors}")]
    RecordedBy {
        name: String,
        errors: ValidationErrors,
    },
    #[error("the store holds no timeline {0}")]
    UnknownTimeline(chancery_domain::TimelineSlug),
    #[error("cannot write the export: {0}")]
    Write(#[source] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn line_error(line: u64, message: impl Into<String>) -> ExchangeError {
    ExchangeError::Line {
        line,
        message: message.into(),
    }
}

/// How far a long operation has come, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: &'static str,
    pub done: u64,
    pub total: Option<u64>,
}

/// Where lines come from: read twice by an import (check, then write).
pub enum Source {
    File(PathBuf),
    Text(&'static str),
}

impl Source {
    fn open(&self) -> Result<Box<dyn BufRead + Send>, ExchangeError> {
        match self {
            Source::File(path) => std::fs::File::open(path)
                .map(|f| {
                    Box::new(io::BufReader::with_capacity(1 << 20, f)) as Box<dyn BufRead + Send>
                })
                .map_err(|e| ExchangeError::Io(format!("cannot read {}: {e}", path.display()))),
            Source::Text(text) => Ok(Box::new(io::Cursor::new(text.as_bytes()))),
        }
    }

    fn size(&self) -> Option<u64> {
        match self {
            Source::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Source::Text(text) => Some(text.len() as u64),
        }
    }

    fn name(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Text(_) => "the built-in text".into(),
        }
    }
}

/// Numbered non-empty lines of a source, each with its byte offset after it.
fn lines(
    reader: Box<dyn BufRead + Send>,
) -> impl Iterator<Item = Result<(u64, String, u64), ExchangeError>> {
    let mut number = 0u64;
    let mut offset = 0u64;
    reader.split(b'\n').filter_map(move |line| {
        number += 1;
        match line {
            Err(e) => Some(Err(ExchangeError::Io(format!("line {number}: {e}")))),
            Ok(mut bytes) => {
                offset += bytes.len() as u64 + 1;
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                match String::from_utf8(bytes) {
                    Ok(text) => Some(Ok((number, text, offset))),
                    Err(_) => Some(Err(line_error(number, "is not valid UTF-8"))),
                }
            }
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportSummary {
    /// Events (or records) read from the file.
    pub read: u64,
    /// Newly written.
    pub written: u64,
    /// Already in the store with the same content, skipped.
    pub already_present: u64,
    /// Whether the file was an export, restored verbatim.
    pub restored: bool,
    pub head: Position,
}

/// Imports an event file or an export, detected from its first line. The events of an event
/// file are recorded by `recorded_by` (a name, like a token's); an export's records keep who
/// recorded them.
pub async fn import(
    log: &dyn EventLog,
    source: &Source,
    recorded_by: &str,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ImportSummary, ExchangeError> {
    validate_recorded_by(recorded_by).map_err(|errors| ExchangeError::RecordedBy {
        name: recorded_by.to_owned(),
        errors,
    })?;
    let first = lines(source.open()?).next().transpose()?;
    let Some((number, first, _)) = first else {
        return Err(ExchangeError::Io(format!(
            "{} holds no events",
            source.name()
        )));
    };
    let looks_like_header = serde_json::from_str::<serde_json::Value>(&first)
        .ok()
        .and_then(|v| {
            v.get("format")
                .and_then(|f| f.as_str().map(|f| f == EXPORT_FORMAT))
        })
        .unwrap_or(false);
    if looks_like_header {
        let header: ExportHeader = serde_json::from_str(&first)
            .map_err(|e| line_error(number, format!("a bad export header: {e}")))?;
        if header.version != EXPORT_VERSION {
            return Err(line_error(
                number,
                format!(
                    "export format version {} is not supported (this build reads {EXPORT_VERSION})",
                    header.version
                ),
            ));
        }
        restore(log, source, &header, progress).await
    } else {
        import_events(log, source, recorded_by, progress).await
    }
}

/// Answers reference checks from the store (looked up ahead) and from the file so far.
struct FileRefs<'a> {
    registry: &'a Registry,
    events: &'a HashMap<EventId, EventRef>,
}

impl References for FileRefs<'_> {
    fn registry(&self) -> &Registry {
        self.registry
    }
    fn event(&self, id: &EventId) -> Option<EventRef> {
        self.events.get(id).cloned()
    }
}

/// An event's entry in the reference checks, as recorded (not yet retracted).
fn event_ref(event: &NewEvent) -> EventRef {
    EventRef {
        kind: event.kind(),
        timeline: event.timeline.clone(),
        retracted: false,
    }
}

/// Imports an event file: checks every line first, then appends what the store lacks.
async fn import_events(
    log: &dyn EventLog,
    source: &Source,
    recorded_by: &str,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ImportSummary, ExchangeError> {
    let total = source.size();
    let mut check = EventCheck {
        log,
        recorded_by,
        registry: (*log.registry().await?).clone(),
        known: HashMap::new(),
        first_seen: HashMap::new(),
        present: HashSet::new(),
    };
    let mut summary = ImportSummary::default();

    // Pass 1: check every line; nothing is written if one is bad.
    for item in lines(source.open()?) {
        let (number, text, offset) = item?;
        check.line(number, &text).await?;
        summary.read += 1;
        progress(Progress {
            phase: "checking",
            done: offset,
            total,
        });
    }
    let present = check.into_present();

    // Pass 2: append in batches of consecutive events of one timeline.
    append_events(
        log,
        source,
        recorded_by,
        &present,
        total,
        &mut summary,
        progress,
    )
    .await?;
    summary.head = log.head().await?.position;
    Ok(summary)
}

/// The first pass of an event import: what it has learned from the store and the lines so far.
struct EventCheck<'a> {
    log: &'a dyn EventLog,
    /// Who the events are recorded by.
    recorded_by: &'a str,
    /// The store's registry with the file's registrations so far applied.
    registry: Registry,
    /// Events a line may refer to: those of the file so far and those looked up in the store.
    known: HashMap<EventId, EventRef>,
    /// The line each id of the file first stands on.
    first_seen: HashMap<EventId, u64>,
    /// Events of the file the store already holds with the same content.
    present: HashSet<EventId>,
}

impl EventCheck<'_> {
    /// The events the store already holds, once every line is checked (the rest is dropped:
    /// the second pass needs only these).
    fn into_present(self) -> HashSet<EventId> {
        self.present
    }

    /// Checks one line: its schema, its id, and what it refers to, then records what it adds.
    async fn line(&mut self, number: u64, text: &str) -> Result<(), ExchangeError> {
        let event = event_of_line(number, text, self.recorded_by)?;
        validate(&event).map_err(|e| line_error(number, e.to_string()))?;
        if let Some(first) = self.first_seen.insert(event.id, number) {
            return Err(line_error(
                number,
                format!("id: {} is already used on line {first}", event.id),
            ));
        }
        if self.already_recorded(number, &event).await? {
            self.present.insert(event.id);
            self.known.insert(event.id, event_ref(&event));
            return Ok(());
        }
        self.look_up_references(&event).await?;
        validate_references(
            &event,
            &FileRefs {
                registry: &self.registry,
                events: &self.known,
            },
        )
        .map_err(|e| line_error(number, e.to_string()))?;
        self.registry.apply(&event);
        if let Payload::Retraction(r) = &event.payload {
            if let Some(target) = self.known.get_mut(&r.retracts) {
                target.retracted = true;
            }
        }
        self.known.insert(event.id, event_ref(&event));
        Ok(())
    }

    /// Whether the store already holds this event; an error if it holds other content under its id.
    async fn already_recorded(&self, number: u64, event: &NewEvent) -> Result<bool, ExchangeError> {
        let Some(stored) = self.log.event(event.id).await? else {
            return Ok(false);
        };
        // Whoever recorded it: an import re-run by another operator skips what is there, and
        // the record keeps the name of the first.
        let recorded = stored
            .event()
            .map_err(|e| unreadable(stored.position(), &e))?;
        if !recorded.same_content(event) {
            return Err(line_error(
                number,
                format!(
                    "id: {} is already recorded at position {} with other content",
                    event.id,
                    stored.position()
                ),
            ));
        }
        Ok(true)
    }

    /// Looks up in the store the events a line refers to that the file has not introduced.
    async fn look_up_references(&mut self, event: &NewEvent) -> Result<(), ExchangeError> {
        for id in event.referenced_events() {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.known.entry(id) {
                if let Some(stored) = self.log.event(id).await? {
                    let event = stored
                        .event()
                        .map_err(|e| unreadable(stored.position(), &e))?;
                    slot.insert(event_ref(event));
                }
            }
        }
        Ok(())
    }
}

/// An event line, parsed, recorded by `recorded_by`.
fn event_of_line(number: u64, text: &str, recorded_by: &str) -> Result<NewEvent, ExchangeError> {
    let mut event: NewEvent =
        serde_json::from_str(text).map_err(|e| line_error(number, e.to_string()))?;
    event.recorded_by = Some(recorded_by.to_owned());
    Ok(event)
}

/// The second pass of an event import: appends the events not `present`, recorded by
/// `recorded_by`, in batches of consecutive events of one timeline.
async fn append_events(
    log: &dyn EventLog,
    source: &Source,
    recorded_by: &str,
    present: &HashSet<EventId>,
    total: Option<u64>,
    summary: &mut ImportSummary,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(), ExchangeError> {
    let mut batch: Vec<NewEvent> = Vec::with_capacity(IMPORT_BATCH);
    let mut batch_lines = (0u64, 0u64);
    for item in lines(source.open()?) {
        let (number, text, offset) = item?;
        let event = event_of_line(number, &text, recorded_by)?;
        if present.contains(&event.id) {
            summary.already_present += 1;
            continue;
        }
        if batch.len() == IMPORT_BATCH
            || batch.first().is_some_and(|b| b.timeline != event.timeline)
        {
            summary.written += append_batch(log, &mut batch, batch_lines).await?;
        }
        if batch.is_empty() {
            batch_lines.0 = number;
        }
        batch_lines.1 = number;
        batch.push(event);
        progress(Progress {
            phase: "importing",
            done: offset,
            total,
        });
    }
    summary.written += append_batch(log, &mut batch, batch_lines).await?;
    Ok(())
}

async fn append_batch(
    log: &dyn EventLog,
    batch: &mut Vec<NewEvent>,
    (first, last): (u64, u64),
) -> Result<u64, ExchangeError> {
    let Some(timeline) = batch.first().map(|e| e.timeline.clone()) else {
        return Ok(0);
    };
    let events = std::mem::take(batch);
    let count = events.len() as u64;
    log.append(AppendRequest {
        refers_within: None,
        timeline,
        expected: ExpectedVersion::Any,
        events,
    })
    .await
    .map_err(batch_error(first, last))?;
    Ok(count)
}

async fn restore(
    log: &dyn EventLog,
    source: &Source,
    header: &ExportHeader,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ImportSummary, ExchangeError> {
    let head = log.head().await?;
    let total = Some(header.events);
    let mut summary = ImportSummary {
        restored: true,
        ..ImportSummary::default()
    };

    // Pass 1: every record verifies, the chain holds, and what the store already has matches.
    let mut prev = Hash::GENESIS;
    for (expected_position, item) in (1..).zip(lines(source.open()?).skip(1)) {
        let (number, text, _) = item?;
        let record = check_line(number, text.as_bytes(), expected_position, prev)?;
        let position = record.position();
        if position <= head.position {
            let stored = log.read(ReadRequest::forward(position, 1)).await?;
            let same = stored
                .first()
                .is_some_and(|r| r.position() == position && r.hash() == record.hash());
            if !same {
                return Err(line_error(
                    number,
                    format!(
                        "position {position} differs from what this store holds: restore into an empty store"
                    ),
                ));
            }
        }
        prev = record.hash();
        summary.read += 1;
        progress(Progress {
            phase: "checking",
            done: summary.read,
            total,
        });
    }
    if summary.read != header.events || prev != header.head_hash {
        return Err(ExchangeError::Io(format!(
            "{} is incomplete: its header announces {} records ending in hash {}, but it holds {} ending in {prev}",
            source.name(),
            header.events,
            header.head_hash,
            summary.read
        )));
    }
    if head.position > header.events {
        return Err(ExchangeError::Io(format!(
            "the store already holds {} events, more than the export's {}: restore into an empty store",
            head.position, header.events
        )));
    }

    // Pass 2: restore what the store does not have yet.
    let mut chunk = Vec::with_capacity(RECORD_CHUNK);
    for item in lines(source.open()?).skip(1) {
        let (number, text, _) = item?;
        if summary.already_present < head.position {
            summary.already_present += 1;
            continue;
        }
        chunk.push((number, text.into_bytes()));
        if chunk.len() == RECORD_CHUNK {
            summary.written += restore_chunk(log, &mut chunk).await?;
            progress(Progress {
                phase: "restoring",
                done: summary.already_present + summary.written,
                total,
            });
        }
    }
    summary.written += restore_chunk(log, &mut chunk).await?;
    summary.head = log.head().await?.position;
    Ok(summary)
}

async fn restore_chunk(
    log: &dyn EventLog,
    chunk: &mut Vec<(u64, Vec<u8>)>,
) -> Result<u64, ExchangeError> {
    let (Some(first), Some(last)) = (chunk.first().map(|c| c.0), chunk.last().map(|c| c.0)) else {
        return Ok(0);
    };
    let records: Vec<Vec<u8>> = std::mem::take(chunk)
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect();
    let out = log
        .restore(records)
        .await
        .map_err(batch_error(first, last))?;
    Ok(out.restored)
}

/// The error of a batch of lines `first..=last` that the store refused.
fn batch_error(first: u64, last: u64) -> impl FnOnce(StoreError) -> ExchangeError {
    move |source| ExchangeError::Batch {
        first,
        last,
        source,
    }
}

/// Checks one export line: its hash, its canonical form, its schema, its place in the chain.
fn check_line(
    line: u64,
    bytes: &[u8],
    position: Position,
    prev: Hash,
) -> Result<RecordedEvent, ExchangeError> {
    let at = |m: String| line_error(line, format!("position {position}: {m}"));
    let record = RecordedEvent::from_canonical_json(bytes).map_err(|e| at(e.to_string()))?;
    check_chain(&record, position, prev).map_err(at)?;
    Ok(record)
}

/// Checks a record's place in the chain: its position, and the hash it chains to.
fn check_chain(record: &RecordedEvent, position: Position, prev: Hash) -> Result<(), String> {
    if record.position() != position {
        return Err(format!(
            "the record says position {}, out of order",
            record.position()
        ));
    }
    if record.prev_hash() != prev {
        return Err(format!(
            "the chain is broken: prevHash is {} but the record before hashes to {prev}",
            record.prev_hash()
        ));
    }
    Ok(())
}

pub(crate) fn unreadable(position: Position, e: &RecordError) -> ExchangeError {
    StoreError::Corrupt {
        position: Some(position),
        detail: e.to_string(),
    }
    .into()
}

/// Records `next..=last` of the log, at most a chunk, in order.
async fn read_chunk(
    log: &dyn EventLog,
    next: Position,
    last: Position,
) -> Result<Vec<RecordedEvent>, ExchangeError> {
    let limit = usize::try_from((last - next + 1).min(RECORD_CHUNK as u64)).unwrap_or(RECORD_CHUNK);
    let records = log.read(ReadRequest::forward(next, limit)).await?;
    if records.first().map(RecordedEvent::position) != Some(next) {
        return Err(StoreError::Corrupt {
            position: Some(next),
            detail: "missing below the head".into(),
        }
        .into());
    }
    Ok(records)
}

/// Appends a record's export line (its canonical JSON and a newline).
fn export_line(record: &RecordedEvent, out: &mut Vec<u8>) -> Result<(), ExchangeError> {
    let start = out.len();
    if let Err(e) = record.write_canonical_json(out) {
        // No part of a line that could not be made stays in the output.
        out.truncate(start);
        return Err(unreadable(record.position(), &e));
    }
    out.push(b'\n');
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

/// The first line of an NDJSON export of a log at `head`.
fn header_line(head: &chancery_store::Head) -> Result<Vec<u8>, ExchangeError> {
    let header = ExportHeader {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
        events: head.position,
        head_hash: head.hash,
    };
    let mut line = serde_json::to_vec(&header).map_err(|e| ExchangeError::Io(e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}

/// Chunks of an online backup being read and encoded at once, besides the one being sent.
const EXPORT_CHUNKS_AHEAD: usize = 3;

/// The NDJSON export of the log up to its head when the stream starts, in chunks (the header
/// line, then a chunk of records at a time): what the server sends for an online backup. The log
/// is append-only, so the prefix read is a consistent snapshot, however long the transfer takes
/// and whatever is appended meanwhile.
///
/// Turning records into their canonical JSON lines is most of a backup's work, so several chunks
/// are read and encoded at once, each on a blocking thread, and sent in order: the transfer uses
/// the machine's cores rather than one.
pub fn export_stream(
    log: Arc<dyn EventLog>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, ExchangeError>> + Send {
    use futures_util::stream::{self, StreamExt, TryStreamExt};

    stream::once(async move {
        let head = log.head().await?;
        let header = header_line(&head)?;
        let last = head.position;
        let chunks = stream::iter((1..=last).step_by(RECORD_CHUNK))
            .map(move |from| {
                let to = (from + RECORD_CHUNK as Position - 1).min(last);
                export_chunk(Arc::clone(&log), from, to)
            })
            .buffered(EXPORT_CHUNKS_AHEAD);
        Ok::<_, ExchangeError>(stream::once(async { Ok(header) }).chain(chunks))
    })
    .try_flatten()
    // Nothing is sent after an error: the body ends short of the header's count, which the
    // reader can tell.
    .scan(false, |failed, item| {
        let next = (!*failed).then(|| {
            *failed = item.is_err();
            item
        });
        async move { next }
    })
}

/// The export lines of records `from..=to`: read, then encoded on a blocking thread.
async fn export_chunk(
    log: Arc<dyn EventLog>,
    from: Position,
    to: Position,
) -> Result<Vec<u8>, ExchangeError> {
    let records = read_chunk(log.as_ref(), from, to).await?;
    if records.last().map(RecordedEvent::position) != Some(to) {
        return Err(StoreError::Corrupt {
            position: Some(to),
            detail: "missing below the head".into(),
        }
        .into());
    }
    let encoded = tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(records.len() * 1024);
        for record in &records {
            export_line(record, &mut chunk)?;
        }
        Ok(chunk)
    })
    .await;
    encoded.unwrap_or_else(|e| {
        Err(ExchangeError::Io(format!(
            "a backup's encoding stopped: {e}"
        )))
    })
}

/// Writes the log up to its current head. Returns how many records were written.
pub async fn export(
    log: &dyn EventLog,
    format: ExportFormat,
    out: &mut dyn Write,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<u64, ExchangeError> {
    let head = log.head().await?;
    let io = ExchangeError::Write;
    match format {
        ExportFormat::Ndjson => out.write_all(&header_line(&head)?).map_err(io)?,
        ExportFormat::Csv => out.write_all(CSV_HEADER.as_bytes()).map_err(io)?,
    }
    let mut next = 1;
    let mut lines = Vec::new();
    while next <= head.position {
        let records = read_chunk(log, next, head.position).await?;
        lines.clear();
        for record in &records {
            match format {
                ExportFormat::Ndjson => export_line(record, &mut lines)?,
                ExportFormat::Csv => lines.extend_from_slice(csv_row(record)?.as_bytes()),
            }
            next = record.position() + 1;
        }
        out.write_all(&lines).map_err(io)?;
        progress(Progress {
            phase: "exporting",
            done: next - 1,
            total: Some(head.position),
        });
    }
    out.flush().map_err(io)?;
    Ok(head.position)
}

const CSV_HEADER: &str = "position,version,recordedAt,timeline,id,kind,start,end,precision,modality,actors,targets,issues,amounts,summary,cameo,ploverType,quadClass,goldstein,hash\n";

fn csv_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
    out.push(',');
}

fn csv_row(r: &RecordedEvent) -> Result<String, ExchangeError> {
    let e = r.event().map_err(|err| unreadable(r.position(), &err))?;
    let join = |parts: Vec<String>| parts.join(";");
    let participants = |list: &[chancery_domain::Participant]| {
        join(
            list.iter()
                .map(|p| match &p.actor {
                    Some(a) => format!("{}/{a}", p.party),
                    None => p.party.to_string(),
                })
                .collect(),
        )
    };
    let codes = codes(e);
    let mut row = String::new();
    for value in [
        r.position().to_string(),
        r.version().to_string(),
        r.recorded_at().to_string(),
        e.timeline.to_string(),
        e.id.to_string(),
        e.kind().to_string(),
        e.occurred
            .as_ref()
            .map(|o| o.start.to_string())
            .unwrap_or_default(),
        e.occurred
            .as_ref()
            .and_then(|o| o.end.map(|t| t.to_string()))
            .unwrap_or_default(),
        e.occurred
            .as_ref()
            .map(|o| format!("{:?}", o.precision()).to_uppercase())
            .unwrap_or_default(),
        e.occurred
            .as_ref()
            .map(|o| format!("{:?}", o.modality).to_uppercase())
            .unwrap_or_default(),
        participants(&e.actors),
        participants(&e.targets),
        join(e.issues.iter().map(ToString::to_string).collect()),
        join(
            e.amounts
                .iter()
                .map(|a| format!("{} {} ({})", a.value, a.unit, a.measures))
                .collect(),
        ),
        e.summary.clone(),
        codes.map(|c| c.cameo.to_owned()).unwrap_or_default(),
        codes
            .and_then(|c| c.plover_type.map(str::to_owned))
            .unwrap_or_default(),
        codes
            .map(|c| c.quad_class.number().to_string())
            .unwrap_or_default(),
        codes.map(|c| c.goldstein.to_string()).unwrap_or_default(),
        r.hash().to_string(),
    ] {
        csv_field(&mut row, &value);
    }
    row.pop();
    row.push('\n');
    Ok(row)
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub records: u64,
    pub head_hash: Hash,
    /// The first broken position and why, if any.
    pub broken: Option<(Position, String)>,
}

/// Walks the chain of a log from position 1.
pub async fn verify_log(
    log: &dyn EventLog,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Verification, ExchangeError> {
    let head = log.head().await?;
    let mut prev = Hash::GENESIS;
    let mut next = 1;
    while next <= head.position {
        let records = match read_chunk(log, next, head.position).await {
            Ok(records) => records,
            Err(ExchangeError::Store(StoreError::Corrupt { detail, .. })) => {
                return Ok(Verification {
                    records: next - 1,
                    head_hash: prev,
                    broken: Some((next, detail)),
                });
            }
            Err(other) => return Err(other),
        };
        for record in records {
            let checked = check_chain(&record, next, prev)
                .and_then(|()| record.verify().map_err(|e| e.to_string()))
                .map_err(|m| format!("position {next}: {m}"));
            match checked {
                Ok(hash) => prev = hash,
                Err(message) => {
                    return Ok(Verification {
                        records: next - 1,
                        head_hash: prev,
                        broken: Some((next, message)),
                    });
                }
            }
            next += 1;
        }
        progress(Progress {
            phase: "verifying",
            done: next - 1,
            total: Some(head.position),
        });
    }
    if prev != head.hash {
        return Ok(Verification {
            records: next - 1,
            head_hash: prev,
            broken: Some((
                head.position,
                "the head hash differs from the last record's".into(),
            )),
        });
    }
    Ok(Verification {
        records: head.position,
        head_hash: prev,
        broken: None,
    })
}

/// Walks the chain of an export file.
pub fn verify_export(
    path: &Path,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Verification, ExchangeError> {
    let source = Source::File(path.to_owned());
    let mut items = lines(source.open()?);
    let Some((number, first, _)) = items.next().transpose()? else {
        return Err(ExchangeError::Io(format!("{} is empty", path.display())));
    };
    let header: ExportHeader = serde_json::from_str(&first)
        .map_err(|e| line_error(number, format!("not a Chancery export header: {e}")))?;
    if header.format != EXPORT_FORMAT || header.version != EXPORT_VERSION {
        return Err(line_error(
            number,
            format!(
                "format {} version {} is not a {EXPORT_FORMAT} version {EXPORT_VERSION}",
                header.format, header.version
            ),
        ));
    }
    let mut prev = Hash::GENESIS;
    let mut count = 0;
    for item in items {
        let (number, text, _) = item?;
        match check_line(number, text.as_bytes(), count + 1, prev) {
            Ok(record) => prev = record.hash(),
            Err(ExchangeError::Line { message, .. }) => {
                return Ok(Verification {
                    records: count,
                    head_hash: prev,
                    broken: Some((count + 1, format!("line {number}: {message}"))),
                });
            }
            Err(other) => return Err(other),
        }
        count += 1;
        progress(Progress {
            phase: "verifying",
            done: count,
            total: Some(header.events),
        });
    }
    if count != header.events || prev != header.head_hash {
        return Ok(Verification {
            records: count,
            head_hash: prev,
            broken: Some((
                count + 1,
                format!(
                    "the header announces {} records ending in {}: the file is truncated or altered",
                    header.events, header.head_hash
                ),
            )),
        });
    }
    Ok(Verification {
        records: count,
        head_hash: prev,
        broken: None,
    })
}

/// Records per read of one timeline.
const TIMELINE_READ: usize = 1_000;

/// A timeline's acts as the store reads them now: retracted ones left out, corrections applied,
/// in log order with their positions; and the timeline's title and description.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineActs {
    pub title: String,
    pub description: Option<String>,
    pub acts: Vec<(Position, NewEvent)>,
}

/// Reads a timeline's acts (through the log's index: a timeline is a small part of a large log)
/// up to the current head. Fails when the log holds no such timeline.
pub async fn timeline_acts(
    log: &dyn EventLog,
    timeline: &chancery_domain::TimelineSlug,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<TimelineActs, ExchangeError> {
    let head = log.head().await?;
    let mut title = None;
    // The acts in log order, as corrected so far; `None` once retracted.
    let mut acts: Vec<Option<(Position, NewEvent)>> = Vec::new();
    let mut index: HashMap<EventId, usize> = HashMap::new();
    let mut next = 1;
    while next <= head.position {
        let request = ReadRequest::forward(next, TIMELINE_READ)
            .with_filter(chancery_store::EventFilter::timeline(timeline.clone()));
        let records = log.read(request).await?;
        let Some(last) = records.last() else {
            break;
        };
        next = last.position() + 1;
        for record in records.iter().take_while(|r| r.position() <= head.position) {
            let event = record
                .event()
                .map_err(|e| unreadable(record.position(), &e))?;
            match &event.payload {
                Payload::TimelineRegistered(registered) => {
                    title = Some((registered.title.clone(), registered.description.clone()));
                }
                Payload::Retraction(retraction) => {
                    if let Some(&at) = index.get(&retraction.retracts) {
                        acts[at] = None;
                    }
                }
                Payload::Correction(correction) => {
                    if let Some(Some((_, act))) =
                        index.get(&correction.corrects).map(|&at| &mut acts[at])
                    {
                        correction.changes.apply_to(act);
                    }
                }
                _ if chancery_domain::codes::code_key(event).is_some() => {
                    index.insert(event.id, acts.len());
                    acts.push(Some((record.position(), event.clone())));
                }
                _ => {}
            }
        }
        progress(Progress {
            phase: "reading the timeline",
            done: (next - 1).min(head.position),
            total: Some(head.position),
        });
    }
    let Some((title, description)) = title else {
        return Err(ExchangeError::UnknownTimeline(timeline.clone()));
    };
    Ok(TimelineActs {
        title,
        description,
        acts: acts.into_iter().flatten().collect(),
    })
}
