//! Upgrading older stores to this format.
//!
//! - Format 1 (every record as canonical JSON in sled's `log` tree, with a write-ahead log beside
//!   it): each record is read back, checked (its hash, and that its bytes are the canonical
//!   encoding of what they say), written to the segments in its stored form, and indexed. Then
//!   the old tree and write-ahead log go. Safe to interrupt: until the old tree is dropped, the
//!   next open starts the upgrade again from nothing.
//! - Format 2 (the id index in sled, an entry per event): each entry's retraction, if any,
//!   becomes an `R` mark and the entry goes; the segments' id index is made from their records
//!   as they open. Safe to interrupt: the format changes last, and the next open goes on.

use std::path::Path;

use chancery_domain::{Hash, Position, RecordedEvent};
use chancery_store::StoreError;

use crate::keys;
use crate::postings::Postings;
use crate::reader::{corrupt, io_error, storage_error};
use crate::segments::{Appender, Mark, Segments};

/// The tree format 1 kept everything in.
const V1_TREE: &str = "log";
/// Format 1's keys: records by position, and the position of the last checkpoint.
const V1_EVENT: u8 = b'E';
const V1_CHECKPOINT: &[u8] = b"Mcheckpoint";
const V1_FORMAT: u64 = 1;

/// Records written per group while upgrading.
const BATCH: usize = 4_096;

/// The format that kept the id index in sled.
pub const FORMAT_2: u64 = 2;

/// Entries moved between two progress messages of the format-2 upgrade.
const PROGRESS_EVERY: u64 = 1_000_000;

/// Upgrades a store of format 2: its id entries in sled (`I`, id: position, kind tag, position
/// of its retraction or 0, timeline) leave their retractions as `R` marks and go.
pub fn from_format_2(db: &sled::Db, tree: &sled::Tree, dir: &Path) -> Result<(), StoreError> {
    tracing::info!(dir = %dir.display(), "upgrading the log from format 2: the id index moves out of sled");
    let mut moved = 0u64;
    for kv in tree.range([keys::ID].as_slice()..[keys::ID + 1].as_slice()) {
        let (key, value) = kv.map_err(storage_error)?;
        let retracted_at = value
            .get(9..17)
            .and_then(keys::u64_prefix)
            .filter(|p| *p != 0);
        if let Some(at) = retracted_at {
            let mut mark = key.to_vec();
            mark[0] = keys::RETRACTION;
            tree.insert(mark, &at.to_be_bytes())
                .map_err(storage_error)?;
        }
        tree.remove(key).map_err(storage_error)?;
        moved += 1;
        if moved % PROGRESS_EVERY == 0 {
            crate::writer::reclaim_epoch_garbage(PROGRESS_EVERY as usize / 64);
            tracing::info!(entries = moved, "upgrading the log from format 2");
        }
    }
    mark_current_format(db, tree, dir)?;
    tracing::info!(dir = %dir.display(), entries = moved, "upgraded the log to format 3");
    Ok(())
}

/// Writes this build's format into the index and makes sled durable: the last step of an
/// upgrade, so that one interrupted before it starts again at the next open.
fn mark_current_format(db: &sled::Db, index: &sled::Tree, dir: &Path) -> Result<(), StoreError> {
    index
        .insert(keys::META_FORMAT, &keys::FORMAT.to_be_bytes())
        .map_err(storage_error)?;
    #[allow(clippy::disallowed_methods)] // followed by an fdatasync of sled's file below
    db.flush().map_err(storage_error)?;
    crate::durability::DiskSync::open(dir)
        .and_then(|mut s| s.sync())
        .map_err(|e| io_error(&e))
}

/// Upgrades the store in `dir` if it is of format 1; answers how many records were carried over.
pub fn if_needed(db: &sled::Db, dir: &Path, segment_bytes: u64) -> Result<u64, StoreError> {
    let Some(old) = old_tree(db, dir)? else {
        return Ok(0);
    };
    tracing::info!(dir = %dir.display(), "upgrading the log from format 1: records are rewritten in their stored form");
    let records_dir = dir.join(crate::RECORDS_DIR);
    let index = start_afresh(db, &records_dir)?;
    let (segments, _) = Segments::open(&records_dir, Mark::EMPTY)?;
    let segments = std::sync::Arc::new(segments);
    let mut carried = Carry {
        appender: Appender::new(
            std::sync::Arc::clone(&segments),
            Mark::EMPTY,
            segment_bytes,
            false,
        )?,
        index: &index,
        postings: Postings::default(),
        expected: 1,
        prev: Hash::GENESIS,
        batch: Vec::with_capacity(BATCH),
    };
    let wal = dir.join("wal");
    carry_over(&old, &wal, &mut carried)?;
    let count = finish(db, dir, carried)?;
    remove_dir_if_present(&wal)?;
    tracing::info!(dir = %dir.display(), records = count, "upgraded the log from format 1");
    Ok(count)
}

/// The tree of a format-1 store with records in it, if `db` holds one; an empty one is dropped,
/// and one of another format is an error.
fn old_tree(db: &sled::Db, dir: &Path) -> Result<Option<sled::Tree>, StoreError> {
    let has_old = db
        .tree_names()
        .iter()
        .any(|name| name.as_ref() == V1_TREE.as_bytes());
    if !has_old {
        return Ok(None);
    }
    let old = db.open_tree(V1_TREE).map_err(storage_error)?;
    if old.is_empty() {
        db.drop_tree(V1_TREE).map_err(storage_error)?;
        return Ok(None);
    }
    match old.get(keys::META_FORMAT).map_err(storage_error)? {
        Some(v) if keys::u64_prefix(&v) == Some(V1_FORMAT) => Ok(Some(old)),
        other => Err(corrupt(
            None,
            &format!(
                "{}: the old tree has format {:?}, which this build cannot upgrade",
                dir.display(),
                other.as_deref().and_then(keys::u64_prefix)
            ),
        )),
    }
}

/// Removes what an upgrade interrupted before may have left (the segments and the index), and
/// answers the new, empty index tree.
fn start_afresh(db: &sled::Db, records_dir: &Path) -> Result<sled::Tree, StoreError> {
    remove_dir_if_present(records_dir)?;
    db.drop_tree(crate::INDEX_TREE).map_err(storage_error)?;
    db.open_tree(crate::INDEX_TREE).map_err(storage_error)
}

/// Carries every format-1 record over: those of the old tree up to its checkpoint, then those
/// its write-ahead log holds past it.
fn carry_over(old: &sled::Tree, wal: &Path, carried: &mut Carry<'_>) -> Result<(), StoreError> {
    // Format 1 took sled back to its checkpoint after a crash and replayed its write-ahead log.
    let checkpoint = old
        .get(V1_CHECKPOINT)
        .map_err(storage_error)?
        .and_then(|v| keys::u64_prefix(&v));
    for kv in old.range([V1_EVENT].as_slice()..[V1_EVENT + 1].as_slice()) {
        let (key, bytes) = kv.map_err(storage_error)?;
        let position = keys::u64_suffix(&key)
            .ok_or_else(|| corrupt(None, "a format-1 record key is malformed"))?;
        if checkpoint.is_some_and(|c| position > c) {
            break;
        }
        let record = RecordedEvent::from_canonical_json(&bytes)
            .map_err(|e| corrupt(Some(position), &format!("a format-1 record: {e}")))?;
        carried.push(record)?;
        if carried.expected % 100_000 == 0 {
            tracing::info!(records = carried.expected - 1, "upgrading the log");
        }
    }
    if checkpoint.is_some() {
        let head = carried.expected - 1;
        for record in crate::v1_wal::read_tail(wal, head).map_err(|e| corrupt(None, &e))? {
            carried.push(record)?;
        }
    }
    carried.flush()
}

/// Makes the new form complete and durable (a checkpoint of the segments, the format), then
/// drops the old tree; answers how many records were carried over.
fn finish(db: &sled::Db, dir: &Path, carried: Carry<'_>) -> Result<u64, StoreError> {
    let count = carried.expected - 1;
    let index = carried.index;
    let mut appender = carried.appender;
    let mark = appender.checkpoint(count).map_err(|e| io_error(&e))?;
    index
        .insert(keys::META_CHECKPOINT, &mark.encode())
        .map_err(storage_error)?;
    mark_current_format(db, index, dir)?;
    // The new form is complete and durable: the old one can go.
    db.drop_tree(V1_TREE).map_err(storage_error)?;
    #[allow(clippy::disallowed_methods)]
    db.flush().map_err(storage_error)?;
    Ok(count)
}

/// Removes a directory and what it holds; one that is not there is no error.
fn remove_dir_if_present(dir: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(&e)),
    }
}

/// Records being carried over, written a batch at a time.
struct Carry<'a> {
    appender: Appender,
    index: &'a sled::Tree,
    postings: Postings,
    expected: Position,
    prev: Hash,
    batch: Vec<RecordedEvent>,
}

impl Carry<'_> {
    fn push(&mut self, record: RecordedEvent) -> Result<(), StoreError> {
        if record.position() != self.expected || record.prev_hash() != self.prev {
            return Err(corrupt(
                Some(record.position()),
                "the format-1 log does not continue here; restore it from a backup",
            ));
        }
        self.expected += 1;
        self.prev = record.hash();
        self.batch.push(record);
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.appender
            .append(&self.batch)
            .map_err(|e| io_error(&e))?;
        crate::writer::index_records(self.index, &mut self.postings, &self.batch)?;
        self.batch.clear();
        Ok(())
    }
}
