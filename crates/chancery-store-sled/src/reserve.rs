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

use std::io;
use std::path::Path;

use chancery_store::Reserve;

/// The reserve's size: room for sled to recover (up to a segment) and for the write-ahead log's
/// tail to be applied again, which a checkpoint every second keeps short.
pub const RESERVE_BYTES: u64 = 2 * crate::SLED_SEGMENT as u64;

const FILE_NAME: &str = "reserve";

fn reserve(dir: &Path) -> Reserve {
    Reserve::new(dir, FILE_NAME, RESERVE_BYTES)
}

/// Makes the reserve if it is missing or short, and answers whether it is in place. A disk
/// without room for it is no error: the log then runs without a reserve, as before one existed.
pub fn make(dir: &Path) -> io::Result<bool> {
    reserve(dir).make()
}

/// Deletes the reserve, answering whether there was one to delete.
pub fn release(dir: &Path) -> io::Result<bool> {
    reserve(dir).release()
}
