//! The write-ahead log of format 1, read once when a store of that format is upgraded: each
//! commit group's records, one canonical JSON line per record, in segment files named by a
//! sequence. The records past the last checkpoint of format 1's sled tree are here.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use chancery_domain::{Position, RecordedEvent, verify_record_hash};

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

/// The records of a WAL directory with positions after `head`, in order, checked.
///
/// A torn last line of a segment (a crash in the middle of a write, or a write that failed on a
/// full disk and could not be cut off) is what an unacknowledged group leaves behind, and is
/// dropped. A damaged line followed by others is corruption, reported with its file, line and
/// byte offset; a position missing between the records found is too.
pub fn read_tail(dir: &Path, head: Position) -> Result<Vec<RecordedEvent>, String> {
    let mut found: BTreeMap<Position, (Vec<u8>, RecordedEvent)> = BTreeMap::new();
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
                .and_then(|_| RecordedEvent::from_canonical_json(&line).map_err(|e| e.to_string()));
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
            let position = record.position();
            if position <= head {
                continue;
            }
            if let Some((earlier, _)) = found.get(&position) {
                if *earlier != line {
                    return Err(format!(
                        "{} holds two different records at position {}",
                        dir.display(),
                        position
                    ));
                }
                continue;
            }
            found.insert(position, (line, record));
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
    Ok(found.into_values().map(|(_, record)| record).collect())
}
