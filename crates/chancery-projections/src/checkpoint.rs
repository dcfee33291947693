//! The checkpoint: the projection state's entries, in pages, with the position and hash they
//! reach, written to sled in one atomic batch so that the state is never saved ahead of or apart
//! from its checkpoint. Indexes are rebuilt from the entries at load.
//!
//! The data is derived: a change of [`PROJECTION_VERSION`] (new rules, a new codes table, a new
//! encoding) makes the checkpoint stale, and the projections are rebuilt from position 1.

use std::path::Path;

use chancery_domain::codes::CODES_VERSION;
use chancery_domain::{Hash, Position};

use crate::error::{ProjectionError, storage};
use crate::facts::{self, Decoder};
use crate::intern::Names;
use crate::state::{PAGE, ProjectionState};

/// The version of the projection logic and encoding. Bump it when rules or facts change; the
/// codes table's version is part of it.
pub const PROJECTION_VERSION: u64 = 1_000 + CODES_VERSION as u64;

const VERSION_KEY: &[u8] = b"m:version";
const CHECKPOINT_KEY: &[u8] = b"m:checkpoint";
const NAMES_KEY: &[u8] = b"m:names";

fn page_key(page: u64) -> [u8; 9] {
    let mut k = [b'p'; 9];
    k[1..].copy_from_slice(&page.to_be_bytes());
    k
}

/// Opens a sled database, waiting up to two seconds for a lock that this process released: sled
/// closes its file from a background thread pool shortly after the last handle is dropped, so an
/// immediate reopen (a restart within one process, a test) can find the lock still held.
fn open_released(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match config.open() {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

pub struct CheckpointStore {
    tree: sled::Tree,
    _db: sled::Db,
}

pub enum Loaded {
    Empty,
    /// Written by another projection version: to be rebuilt.
    Stale {
        version: u64,
    },
    State {
        state: Box<ProjectionState>,
        hash: Hash,
    },
}

impl CheckpointStore {
    pub fn open(dir: &Path) -> Result<Self, ProjectionError> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(64 * 1024 * 1024);
        let db = open_released(&config)
            .map_err(|e| ProjectionError::Storage(format!("cannot open {}: {e}", dir.display())))?;
        let tree = db.open_tree("projections").map_err(storage)?;
        Ok(Self { tree, _db: db })
    }

    pub fn load(&self) -> Result<Loaded, ProjectionError> {
        let Some(version) = self.tree.get(VERSION_KEY).map_err(storage)? else {
            return Ok(Loaded::Empty);
        };
        let version = u64::from_be_bytes(
            version
                .as_ref()
                .try_into()
                .map_err(|_| ProjectionError::Corrupt("bad version".into()))?,
        );
        if version != PROJECTION_VERSION {
            return Ok(Loaded::Stale { version });
        }
        let checkpoint = self
            .tree
            .get(CHECKPOINT_KEY)
            .map_err(storage)?
            .ok_or_else(|| ProjectionError::Corrupt("no checkpoint".into()))?;
        if checkpoint.len() != 40 {
            return Err(ProjectionError::Corrupt("bad checkpoint".into()));
        }
        let head = u64::from_be_bytes(
            checkpoint[..8]
                .try_into()
                .map_err(|_| ProjectionError::Corrupt("bad checkpoint".into()))?,
        );
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&checkpoint[8..]);
        let names = match self.tree.get(NAMES_KEY).map_err(storage)? {
            Some(bytes) => Names::from_json(&bytes)
                .ok_or_else(|| ProjectionError::Corrupt("bad names".into()))?,
            None => Names::default(),
        };
        let mut state = ProjectionState {
            names,
            ..ProjectionState::default()
        };
        for kv in self.tree.scan_prefix(b"p") {
            let (_, bytes) = kv.map_err(storage)?;
            let mut decoder = Decoder::new(&bytes);
            while !decoder.is_empty() && state.head() < head {
                let entry = decoder.entry().ok_or_else(|| {
                    ProjectionError::Corrupt(format!("bad entry after position {}", state.head()))
                })?;
                state.entries.push(entry);
            }
        }
        if state.head() != head {
            return Err(ProjectionError::Corrupt(format!(
                "the checkpoint says {head} entries but holds {}",
                state.head()
            )));
        }
        state.index_all();
        Ok(Loaded::State {
            state: Box::new(state),
            hash: Hash(hash),
        })
    }

    /// Writes the pages changed since the last save, the names and the checkpoint, atomically.
    pub fn save(&self, state: &mut ProjectionState, hash: Hash) -> Result<(), ProjectionError> {
        let mut batch = sled::Batch::default();
        let head = state.head();
        for page in std::mem::take(&mut state.dirty_pages) {
            let first = page * PAGE + 1;
            let last = ((page + 1) * PAGE).min(head);
            let mut bytes = Vec::new();
            for p in first..=last {
                if let Some(entry) = state.entry(p) {
                    facts::encode(entry, &mut bytes);
                }
            }
            batch.insert(&page_key(page), bytes);
        }
        if state.names.dirty {
            batch.insert(NAMES_KEY, state.names.to_json());
            state.names.dirty = false;
        }
        let mut checkpoint = head.to_be_bytes().to_vec();
        checkpoint.extend_from_slice(&hash.0);
        batch.insert(CHECKPOINT_KEY, checkpoint);
        batch.insert(VERSION_KEY, &PROJECTION_VERSION.to_be_bytes());
        self.tree.apply_batch(batch).map_err(storage)
    }

    /// Forgets everything, to rebuild from position 1.
    pub fn clear(&self) -> Result<(), ProjectionError> {
        self.tree.clear().map_err(storage)
    }

    /// Flushes to disk (at shutdown; the data is derived, so this is for a quick restart only).
    pub fn flush(&self) -> Result<(), ProjectionError> {
        #[allow(clippy::disallowed_methods)] // derived data: sled's flush is enough
        self.tree.flush().map_err(storage)?;
        Ok(())
    }

    pub fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        Ok(self
            .tree
            .get(CHECKPOINT_KEY)
            .map_err(storage)?
            .and_then(|c| c.get(..8).and_then(|b| b.try_into().ok()))
            .map(u64::from_be_bytes))
    }
}
