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
        })
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
    pub fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        self.file.write_all(lines)?;
        self.file.sync_data()?;
        self.syncs += 1;
        self.bytes += lines.len() as u64;
        Ok(())
    }

    /// After a checkpoint made everything so far durable in sled: starts a new segment and
    /// deletes the older ones.
    pub fn rotate(&mut self) -> io::Result<()> {
        let next = self.sequence + 1;
        self.file = Self::create(&self.dir, next)?;
        self.sequence = next;
        self.bytes = 0;
        for (n, path) in segments(&self.dir)? {
            if n < next {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

/// The records of a WAL directory with positions after `head`, in order, checked.
///
/// A torn last line (a crash in the middle of a write) is what an unacknowledged group leaves
/// behind, and is dropped. Anything else that does not read back is corruption.
pub fn read_tail(dir: &Path, head: Position) -> Result<Vec<Vec<u8>>, String> {
    let mut found: BTreeMap<Position, Vec<u8>> = BTreeMap::new();
    let all = segments(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for (index, (_, path)) in all.iter().enumerate() {
        let last_segment = index + 1 == all.len();
        let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut lines = BufReader::new(file).split(b'\n').peekable();
        while let Some(line) = lines.next() {
            let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let is_last_line = lines.peek().is_none();
            let checked = verify_record_hash(&line)
                .map_err(|e| e.to_string())
                .and_then(|_| decode_record(&line).map_err(|e| e.to_string()));
            let record = match checked {
                Ok(record) => record,
                // Only the very end of the log may be torn.
                Err(_) if is_last_line && last_segment => break,
                Err(e) => return Err(format!("{} holds a damaged record: {e}", path.display())),
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
