//! Reserve files: space set aside beside an embedded database so that a full disk never leaves
//! it unreadable, shared by the embedded log and the projections (both keep indexes in sled).
//!
//! sled's I/O errors are sticky: after a write fails for want of space it fails reads too, until
//! the database is reopened, and a reopen needs room to replay sled's own log. An owner keeps a
//! reserve file beside its database, deletes it when the disk fills so that the reopen has room,
//! and makes it again once there is room for it and more.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

use fs2::FileExt;

/// A reserve file of a fixed size at a fixed path.
#[derive(Debug, Clone)]
pub struct Reserve {
    path: PathBuf,
    bytes: u64,
}

impl Reserve {
    /// The reserve `file` in `dir`, of `bytes`.
    pub fn new(dir: &Path, file: &str, bytes: u64) -> Reserve {
        Reserve {
            path: dir.join(file),
            bytes,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Makes the reserve if it is missing or short, and answers whether it is in place. A disk
    /// without room for it is no error: its owner then runs without one until there is room.
    pub fn make(&self) -> io::Result<bool> {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.bytes) {
            return Ok(true);
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&self.path)?;
        match file.allocate(self.bytes) {
            Ok(()) => {
                file.sync_all()?;
                Ok(true)
            }
            Err(e) if is_full(&e) => {
                drop(file);
                std::fs::remove_file(&self.path)?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the reserve, answering whether there was one to delete.
    pub fn release(&self) -> io::Result<bool> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Whether an I/O error is a full disk. sled hands on its sticky errors as new ones of the same
/// kind, without the OS's code.
pub fn is_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}
