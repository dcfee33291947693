//! Where the projections live on disk, and their checkpoint: one sled tree holding the pages of
//! entries and the blocks of every list, with the interned names, the directory of position keys,
//! and the position and hash they reach. A checkpoint writes what changed since the last one, and
//! that alone, in one atomic batch, so the state on disk is always whole and never apart from the
//! position it says. Opening reads only those few values: the rest is read when asked.
//!
//! The data is derived: a change of [`PROJECTION_VERSION`] (new rules, a new codes table, a new
//! encoding) makes the checkpoint stale, and the projections are rebuilt from position 1.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chancery_domain::codes::CODES_VERSION;
use chancery_domain::{Hash, Position};

use crate::error::{ProjectionError, storage};
use crate::intern::Names;
use crate::lists::Decoder;
use crate::state::{CacheSizes, ProjectionState};

/// The version of the projection logic and encoding. Bump it when rules or facts change; the
/// codes table's version is part of it.
pub const PROJECTION_VERSION: u64 = 2_000 + CODES_VERSION as u64;

const VERSION_KEY: &[u8] = b"m:version";
const CHECKPOINT_KEY: &[u8] = b"m:checkpoint";
const NAMES_KEY: &[u8] = b"m:names";
const KEYS_KEY: &[u8] = b"m:keys";

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
    /// The store in `dir`, or with `None` a temporary one that goes when it is dropped.
    pub fn open(dir: Option<&Path>, cache_bytes: u64) -> Result<Self, ProjectionError> {
        let config = match dir {
            Some(dir) => sled::Config::new().path(dir),
            None => sled::Config::new().temporary(true),
        }
        .cache_capacity(cache_bytes);
        let db = open_released(&config).map_err(|e| {
            ProjectionError::Storage(match dir {
                Some(dir) => format!("cannot open {}: {e}", dir.display()),
                None => format!("cannot open a temporary store: {e}"),
            })
        })?;
        let tree = db.open_tree("projections").map_err(storage)?;
        Ok(Self { tree, _db: db })
    }

    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The state as the last checkpoint left it: only its names, its directory of keys and its
    /// position are read now.
    pub fn load(&self, caches: CacheSizes) -> Result<Loaded, ProjectionError> {
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
        let keys = match self.tree.get(KEYS_KEY).map_err(storage)? {
            Some(bytes) => decode_keys(&bytes)
                .ok_or_else(|| ProjectionError::Corrupt("bad directory of keys".into()))?,
            None => BTreeMap::new(),
        };
        let state = ProjectionState::new(self.tree.clone(), head, names, keys, caches);
        Ok(Loaded::State {
            state: Box::new(state),
            hash: Hash(hash),
        })
    }

    /// Writes what changed since the last save, the names and keys if they changed, and the
    /// checkpoint, atomically.
    pub fn save(&self, state: &mut ProjectionState, hash: Hash) -> Result<(), ProjectionError> {
        let mut batch = sled::Batch::default();
        for (k, v) in state.pages.drain_writes() {
            batch.insert(k, v);
        }
        for (k, v) in state.positions.drain_writes() {
            batch.insert(k, v);
        }
        for (k, v) in state.relations.drain_writes() {
            batch.insert(k, v);
        }
        for (k, v) in state.chronology.drain_writes() {
            batch.insert(k, v);
        }
        if state.names.dirty {
            batch.insert(NAMES_KEY, state.names.to_json());
            state.names.dirty = false;
        }
        if state.keys_dirty {
            batch.insert(KEYS_KEY, encode_keys(&state.standoff_parties));
            state.keys_dirty = false;
        }
        let mut checkpoint = state.head().to_be_bytes().to_vec();
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

/// The directory of position keys: for each (timeline, issue), its parties.
fn encode_keys(keys: &BTreeMap<(u32, u32), BTreeSet<u32>>) -> Vec<u8> {
    let mut out = Vec::new();
    for ((timeline, issue), parties) in keys {
        out.extend_from_slice(&timeline.to_le_bytes());
        out.extend_from_slice(&issue.to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(parties.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        for party in parties {
            out.extend_from_slice(&party.to_le_bytes());
        }
    }
    out
}

fn decode_keys(bytes: &[u8]) -> Option<BTreeMap<(u32, u32), BTreeSet<u32>>> {
    let mut d = Decoder::new(bytes);
    let mut keys = BTreeMap::new();
    while !d.is_empty() {
        let timeline = d.u32()?;
        let issue = d.u32()?;
        let n = d.u32()?;
        let mut parties = BTreeSet::new();
        for _ in 0..n {
            parties.insert(d.u32()?);
        }
        keys.insert((timeline, issue), parties);
    }
    Some(keys)
}
