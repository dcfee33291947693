//! The write-ahead log: what makes an append durable with one `fdatasync`.
//!
//! Each commit group's records are appended to the current segment file, one record (its stored
//! bytes, which carry their own hash) per line, and the file is synced before the group is
//! acknowledged: one write and one sync, the disk's own pattern. sled applies the same group in
//! memory and reaches the disk at checkpoints (every second, or when the segment grows large, and
//! at shutdown): after a checkpoint the current segment is closed and older ones are deleted.
//! Recovery reads the segments, takes the records past sled's head, and applies them again
//! through the writer's checked restore path.
//!
//! Segments are named by a sequence number, never reused, so a recovery never truncates a segment
//! it has not yet replayed.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chancery_domain::{Position, decode_record, verify_record_hash};

/// Segments larger than this trigger a checkpoint.
pub const MAX_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

pub struct Wal {
    dir: PathBuf,
    file: File,
    sequence: u64,
    /// Bytes in the current segment.
    pub bytes: u64,
    /// `fdatasync` calls made on segments.
    pub syncs: u64,
    /// A failed write left a torn line that could not be cut off: start a new segment.
    torn: bool,
}

fn segment_name(sequence: u64) -> String {
    format!("seg-{sequence:010}.wal")
}

/// The segments of a directory, oldest first.
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(n) = name
                    .strip_prefix("seg-")
                    .and_then(|r| r.strip_suffix(".wal"))
                    .and_then(|n| n.parse().ok())
                {
                    found.push((n, entry.path()));
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

impl Wal {
    /// Starts a new segment after every existing one (which stay until the next checkpoint).
    pub fn open(dir: &Path) -> io::Result<Wal> {
        fs::create_dir_all(dir)?;
        let sequence = segments(dir)?.last().map_or(1, |(n, _)| n + 1);
        let file = Self::create(dir, sequence)?;
        Ok(Wal {
            dir: dir.to_owned(),
            file,
            sequence,
            bytes: 0,
            syncs: 0,
            torn: false,
        })
    }

    /// The directory of the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn create(dir: &Path, sequence: u64) -> io::Result<File> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(dir.join(segment_name(sequence)))?;
        // The new name must survive a crash too.
        File::open(dir)?.sync_all()?;
        Ok(file)
    }

    /// Appends records (each already ending with a newline) and makes them durable.
    ///
    /// A write that fails part way (a full disk) is cut off again, so that the next group's lines
    /// do not follow a torn one: a damaged line in the middle of a segment is corruption. If it
    /// cannot be cut off, the next append starts a new segment, and the torn line stays the last
    /// of its segment, which a replay drops like a crash's.
    pub fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        if self.torn {
            self.start_segment()?;
        }
        if let Err(e) = self.file.write_all(lines) {
            self.torn = self.file.set_len(self.bytes).is_err();
            return Err(e);
        }
        self.bytes += lines.len() as u64;
        self.file.sync_data()?;
        self.syncs += 1;
        Ok(())
    }

    fn start_segment(&mut self) -> io::Result<()> {
        let next = self.sequence + 1;
        self.file = Self::create(&self.dir, next)?;
        self.sequence = next;
        self.bytes = 0;
        self.torn = false;
        Ok(())
    }

    /// After a checkpoint made everything so far durable in sled: starts a new segment and
    /// deletes the older ones.
    pub fn rotate(&mut self) -> io::Result<()> {
        self.start_segment()?;
        for (n, path) in segments(&self.dir)? {
            if n < self.sequence {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

/// The records of a WAL directory with positions after `head`, in order, checked.
///
/// A torn last line of a segment (a crash in the middle of a write, or a write that failed on a
/// full disk and could not be cut off) is what an unacknowledged group leaves behind, and is
/// dropped. A damaged line followed by others is corruption, reported with its file, line and
/// byte offset; a position missing between the records found is too.
pub fn read_tail(dir: &Path, head: Position) -> Result<Vec<Vec<u8>>, String> {
    let mut found: BTreeMap<Position, Vec<u8>> = BTreeMap::new();
    let all = segments(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for (_, path) in &all {
        let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut lines = BufReader::new(file).split(b'\n').peekable();
        let mut offset = 0u64;
        let mut number = 0u64;
        while let Some(line) = lines.next() {
            let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let is_last_line = lines.peek().is_none();
            let line_offset = offset;
            offset += line.len() as u64 + 1;
            number += 1;
            let checked = verify_record_hash(&line)
                .map_err(|e| e.to_string())
                .and_then(|_| decode_record(&line).map_err(|e| e.to_string()));
            let record = match checked {
                Ok(record) => record,
                // Only the end of a segment may be torn.
                Err(_) if is_last_line => break,
                Err(e) => {
                    return Err(format!(
                        "{}, line {number} (byte {line_offset}): a damaged record ({e}), with \
                         records after it, so not a torn write",
                        path.display()
                    ));
                }
            };
            if record.position <= head {
                continue;
            }
            if let Some(earlier) = found.get(&record.position) {
                if *earlier != line {
                    return Err(format!(
                        "{} holds two different records at position {}",
                        dir.display(),
                        record.position
                    ));
                }
                continue;
            }
            found.insert(record.position, line);
        }
    }
    for (expected, position) in (head + 1..).zip(found.keys()) {
        if *position != expected {
            return Err(format!(
                "the write-ahead log in {} misses position {expected}",
                dir.display()
            ));
        }
    }
    Ok(found.into_values().collect())
}
