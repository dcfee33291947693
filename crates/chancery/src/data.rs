//! The data directory: where each store lives inside it (`--data DIR`, default `./data`).

use std::path::{Path, PathBuf};

use chancery_store::StoreError;
use chancery_store_sled::{SledConfig, SledLog};

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "data";

/// The stores of one data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The embedded event log.
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    /// The local replica of a NATS-backed log: derived, rebuilt from the stream when needed.
    pub fn replica_dir(&self) -> PathBuf {
        self.root.join("replica")
    }

    /// Projections and their checkpoints: derived, so they may be deleted and rebuilt.
    pub fn projections_dir(&self) -> PathBuf {
        self.root.join("projections")
    }

    pub fn open_log(&self) -> Result<SledLog, StoreError> {
        SledLog::open(self.log_dir(), SledConfig::default())
    }
}
