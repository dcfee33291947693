//! Making a commit group durable. sled's `flush` writes with `sync_file_range`, which does not
//! reach the disk's cache flush and so does not survive a power loss; after it we `fdatasync` the
//! data file. Pages larger than a quarter segment go to blob files, which sled never syncs: the
//! log uses segments large enough that its pages never get there, and any blob file that appears
//! anyway is synced here too, with its directory.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub struct DiskSync {
    data_file: File,
    blobs_dir: PathBuf,
    synced_blobs: HashSet<OsString>,
    /// How many `fdatasync` calls were made, for metrics and tests.
    pub syncs: u64,
}

impl DiskSync {
    pub fn open(dir: &Path) -> io::Result<Self> {
        let data_file = File::open(dir.join("db"))?;
        // The directory entry of a freshly created data file must be durable too.
        File::open(dir)?.sync_all()?;
        Ok(Self {
            data_file,
            blobs_dir: dir.join("blobs"),
            synced_blobs: HashSet::new(),
            syncs: 0,
        })
    }

    /// Makes everything sled has written so far durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.data_file.sync_data()?;
        self.syncs += 1;
        let entries = match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut new_blobs = false;
        for entry in entries {
            let entry = entry?;
            if !self.synced_blobs.contains(&entry.file_name()) {
                File::open(entry.path())?.sync_data()?;
                self.synced_blobs.insert(entry.file_name());
                new_blobs = true;
            }
        }
        if new_blobs {
            File::open(&self.blobs_dir)?.sync_all()?;
        }
        Ok(())
    }
}
