//! The reserve file: space set aside in the log's directory so that a full disk never leaves
//! the log unreadable.
//!
//! sled's I/O errors are sticky: after a write fails for want of space, it fails reads too
//! whenever a read would touch the disk's write path (a page split it finishes on the way,
//! say), until the database is reopened. A reopen replays the write-ahead log into sled and
//! needs room to do so. So the log keeps a file of [`RESERVE_BYTES`] beside its data: when the
//! disk fills, the writer deletes it and reopens at once into the room it leaves, reads go on
//! against a healthy database, and appends stay refused until there is room to make the reserve
//! again.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use fs2::FileExt;

/// The reserve's size: room for sled to recover (up to a segment) and for the write-ahead log's
/// tail to be applied again, which a checkpoint every second keeps short.
pub const RESERVE_BYTES: u64 = 2 * crate::SLED_SEGMENT as u64;

const FILE_NAME: &str = "reserve";

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Makes the reserve if it is missing or short, and answers whether it is in place. A disk
/// without room for it is no error: the log then runs without a reserve, as before one existed.
pub fn make(dir: &Path) -> io::Result<bool> {
    let path = path(dir);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() >= RESERVE_BYTES) {
        return Ok(true);
    }
    let file: File = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)?;
    match file.allocate(RESERVE_BYTES) {
        Ok(()) => {
            file.sync_all()?;
            Ok(true)
        }
        Err(e) if is_full(&e) => {
            drop(file);
            std::fs::remove_file(&path)?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Deletes the reserve, answering whether there was one to delete.
pub fn release(dir: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path(dir)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn is_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}
