//! Where the projections live on disk, and their checkpoint: the pages of entries and the blocks
//! of every list in value files (`values.rs`), and one sled tree holding where each of them is,
//! with the interned names, the directory of position keys, what each value file still holds, and
//! the position and hash they reach. A checkpoint appends what changed since the last one, and
//! that alone, to the value files, then writes their locations in one atomic batch, so the state
//! on disk is always whole and never apart from the position it says. Opening reads only those
//! few values: the rest is read when asked.
//!
//! The data is derived: a change of [`PROJECTION_VERSION`] (new rules, a new codes table, a new
//! encoding) makes the checkpoint stale, and the projections are rebuilt from position 1.
//!
//! A full disk is met as the log meets it: the directory keeps a reserve file of
//! [`RESERVE_BYTES`], deleted when a checkpoint fails for want of space, so that sled has room
//! for what it writes on its own while the projections answer and apply (and for a reopen after
//! a failed write); checkpoints then wait until there is room to make the reserve again.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chancery_domain::codes::CODES_VERSION;
use chancery_domain::{Hash, Position};
use chancery_store::open_released;

use crate::error::{ProjectionError, storage};
use crate::intern::Names;
use crate::lists::Decoder;
use crate::state::{CacheSizes, ProjectionState, present};
use crate::values::{Disk, Encode, Location, Pending, ValueFiles};

/// The version of the projection logic and encoding. Bump it when rules or facts change; the
/// codes table's version is part of it.
pub const PROJECTION_VERSION: u64 = 3_000 + CODES_VERSION as u64;

const VERSION_KEY: &[u8] = b"m:version";
const CHECKPOINT_KEY: &[u8] = b"m:checkpoint";
const NAMES_KEY: &[u8] = b"m:names";
const KEYS_KEY: &[u8] = b"m:keys";
const LIVE_KEY: &[u8] = b"m:live";
/// Where the checkpoint's values end: a file and its length.
const END_KEY: &[u8] = b"m:end";
const TREE: &str = "projections";
/// The value files' directory, in the checkpoint directory.
const VALUES_DIR: &str = "values";
/// Value files a checkpoint compacts at most (their bytes count; the first always goes).
const COMPACT_FILES: u64 = 2;
/// Compacted value files that wait for a flushed checkpoint, at most: past them a checkpoint
/// that is not flushed otherwise (within a catch-up) is, so that their room comes back.
const DOOMED_FILES: usize = 8;

/// Free space a checkpoint leaves untouched beyond twice its own bytes: sled writes a batch to
/// its log and again when it moves pages, and may open a new segment on the way. A checkpoint
/// that would cut into it waits for room, since sled's first failed write would fail the reads
/// after it (see [`CheckpointStore::save`]).
pub const SAVE_ROOM: u64 = 8 << 20;

/// Free space a reopen needs (sled may write up to a segment as it recovers).
const REOPEN_ROOM: u64 = 2 << 20;

/// The reserve's size: room for a reopen, and as much again for what sled writes on its own
/// while the projections answer and apply (the splits and merges of pages it finishes on the
/// way), which fails every read after it when it finds no room.
pub const RESERVE_BYTES: u64 = 2 * REOPEN_ROOM;

/// The reserve's file name in the checkpoint directory.
pub const RESERVE_FILE: &str = "reserve";

/// Whether a checkpoint waits until sled has it on disk before its changes count as clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// As the projections follow the log: a database reopened after a failed write then holds
    /// every block the state no longer keeps, and the state goes on with it.
    Yes,
    /// Within a catch-up, which a failed write ends.
    No,
}

pub struct CheckpointStore {
    /// `None` (as is `db`) only between a reopen that failed and the next one.
    tree: Option<sled::Tree>,
    db: Option<sled::Db>,
    /// The value files the tree's locations point into.
    values: Arc<ValueFiles>,
    /// How many bytes of each value file the last checkpoint locates (saved with it).
    live: BTreeMap<u32, u64>,
    /// Value files compacted by checkpoints that are not flushed yet: deleted once one is.
    doomed: Vec<u32>,
    /// The checkpoint directory; `None` for a temporary store.
    dir: Option<PathBuf>,
    cache_bytes: u64,
    /// Whether sled failed a write: its I/O errors are sticky, so the database is reopened
    /// before the next checkpoint (and before reads meet the error, when there is room).
    failed: bool,
    /// Whether the disk filled: the reserve was released, and checkpoints wait until there is
    /// room to make it again.
    full: bool,
    /// Bytes of checkpoints written since the database was opened.
    written_since_open: u64,
    /// Checkpoint bytes after which [`CheckpointStore::snapshot_if_due`] reopens the database.
    /// sled 0.34 writes its snapshot (where each page is in its files) only as it opens, and an
    /// open reads through every write made since the last snapshot: a store that a first start
    /// filled with gigabytes would be read through again by the next start.
    snapshot_after: u64,
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
    /// Value files are closed past `file_bytes`.
    pub fn open(
        dir: Option<&Path>,
        cache_bytes: u64,
        file_bytes: u64,
    ) -> Result<Self, ProjectionError> {
        let config = match dir {
            Some(dir) => sled::Config::new().path(dir),
            None => sled::Config::new().temporary(true),
        }
        .cache_capacity(cache_bytes);
        let db = open_released(|| config.open()).map_err(|e| {
            ProjectionError::Storage(match dir {
                Some(dir) => format!("cannot open {}: {e}", dir.display()),
                None => format!("cannot open a temporary store: {e}"),
            })
        })?;
        let tree = db.open_tree(TREE).map_err(storage)?;
        let values = match dir {
            Some(dir) => ValueFiles::open(&dir.join(VALUES_DIR), file_bytes, read_end(&tree)?),
            None => ValueFiles::temporary(file_bytes),
        }
        .map_err(|e| {
            ProjectionError::Storage(format!("cannot open the projections' value files: {e}"))
        })?;
        let live = read_live(&tree)?;
        if let Some(dir) = dir {
            let reserved = reserve::make(dir).map_err(|e| {
                ProjectionError::Storage(format!(
                    "cannot make the projections' reserve in {}: {e}",
                    dir.display()
                ))
            })?;
            if !reserved {
                tracing::warn!(
                    dir = %dir.display(),
                    "no room for the projections' reserve: a full disk may make their answers fail until there is room"
                );
            }
        }
        Ok(Self {
            tree: Some(tree),
            db: Some(db),
            values: Arc::new(values),
            live,
            doomed: Vec::new(),
            dir: dir.map(Path::to_path_buf),
            cache_bytes,
            failed: false,
            full: false,
            written_since_open: 0,
            snapshot_after: u64::MAX,
        })
    }

    /// Lets [`CheckpointStore::snapshot_if_due`] reopen the database once `bytes` of checkpoints
    /// went to it (a temporary store is never reopened).
    pub fn snapshot_after(mut self, bytes: u64) -> Self {
        self.snapshot_after = bytes;
        self
    }

    fn tree(&self) -> Result<&sled::Tree, ProjectionError> {
        present(&self.tree)
    }

    /// The projections on disk: the tree and the value files.
    pub fn disk(&self) -> Result<Disk, ProjectionError> {
        Ok(Disk::new(self.tree()?.clone(), Arc::clone(&self.values)))
    }

    /// The state as the last checkpoint left it: only its names, its directory of keys and its
    /// position are read now.
    pub fn load(&self, caches: CacheSizes) -> Result<Loaded, ProjectionError> {
        let Some(version) = self.tree()?.get(VERSION_KEY).map_err(storage)? else {
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
            .tree()?
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
        let names = match self.tree()?.get(NAMES_KEY).map_err(storage)? {
            Some(bytes) => Names::from_json(&bytes)
                .ok_or_else(|| ProjectionError::Corrupt("bad names".into()))?,
            None => Names::default(),
        };
        let keys = match self.tree()?.get(KEYS_KEY).map_err(storage)? {
            Some(bytes) => decode_keys(&bytes)
                .ok_or_else(|| ProjectionError::Corrupt("bad directory of keys".into()))?,
            None => BTreeMap::new(),
        };
        let state = ProjectionState::new(self.disk()?, head, names, keys, caches);
        Ok(Loaded::State {
            state: Box::new(state),
            hash: Hash(hash),
        })
    }

    /// Writes what changed since the last save, the names and keys if they changed, and the
    /// checkpoint, atomically; then what was written counts as clean.
    ///
    /// Nothing is lost when it fails: the changes stay in `state`, answers still read them, and
    /// the next save writes them. A checkpoint directory without room for the batch and
    /// [`SAVE_ROOM`] gets nothing ([`ProjectionError::NoRoom`]): sled's first failed write would
    /// fail every read after it until the database is reopened. The reserve is released then,
    /// and saves wait until there is room to make it again besides. If sled fails all the same
    /// (the disk filled while it wrote), the database is reopened, at once into the reserve's
    /// room if there is room or else before the next save, and comes back as its last whole
    /// checkpoint left it. With [`Flush::Yes`] the batch is flushed before its changes count as
    /// clean, so that a database reopened after a failed write holds every block the state no
    /// longer keeps.
    pub fn save(
        &mut self,
        state: &mut ProjectionState,
        hash: Hash,
        flush: Flush,
    ) -> Result<(), ProjectionError> {
        let (victims, moved) = self.compaction(&pending(state, &[]))?;
        let mut writes = Vec::new();
        if state.names.dirty {
            writes.push((NAMES_KEY.to_vec(), state.names.to_json()));
        }
        if state.keys_dirty {
            writes.push((KEYS_KEY.to_vec(), encode_keys(&state.standoff_parties)));
        }
        let mut checkpoint = state.head().to_be_bytes().to_vec();
        checkpoint.extend_from_slice(&hash.0);
        writes.push((CHECKPOINT_KEY.to_vec(), checkpoint));
        writes.push((
            VERSION_KEY.to_vec(),
            PROJECTION_VERSION.to_be_bytes().to_vec(),
        ));

        let bytes = encoded_bytes(&pending(state, &moved))
            + writes
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum::<u64>();
        let needed = 2 * bytes + SAVE_ROOM;
        if self.full {
            self.resume(state, needed)?;
        }
        if let Err(error) = self.ensure_room(needed) {
            if matches!(error, ProjectionError::NoRoom { .. }) {
                self.disk_filled(state);
            }
            return Err(error);
        }
        if self.failed {
            self.reopen(state)?;
        }
        // The values are on disk before anything locates them. They are encoded as they are
        // written, so that a checkpoint holds no copy of them.
        let appended = {
            let values = pending(state, &moved);
            self.values.append(&values).map(|locations| {
                values
                    .into_iter()
                    .map(|(key, _)| key)
                    .zip(locations)
                    .collect::<Vec<_>>()
            })
        };
        let located = match appended {
            Ok(located) => located,
            Err(error) => {
                if error.is_storage_full() {
                    self.disk_filled(state);
                }
                return Err(error);
            }
        };
        let tree = self.tree()?;
        let mut live = self.live.clone();
        let mut batch = sled::Batch::default();
        let mut index_bytes = 0u64;
        for (key, location) in &located {
            if let Some(old) = tree
                .get(key)
                .map_err(storage)?
                .as_deref()
                .and_then(Location::decode)
            {
                if let Some(held) = live.get_mut(&old.file) {
                    *held = held.saturating_sub(u64::from(old.bytes));
                }
            }
            *live.entry(location.file).or_default() += u64::from(location.bytes);
            index_bytes += (key.len() + crate::values::LOCATION_BYTES) as u64;
            batch.insert(key.as_slice(), &location.encode()[..]);
        }
        for victim in &victims {
            live.remove(victim);
        }
        writes.push((LIVE_KEY.to_vec(), encode_live(&live)));
        let (end_file, end_len) = self.values.end()?;
        let mut end = end_file.to_le_bytes().to_vec();
        end.extend_from_slice(&end_len.to_le_bytes());
        writes.push((END_KEY.to_vec(), end));
        for (k, v) in writes {
            index_bytes += (k.len() + v.len()) as u64;
            batch.insert(k, v);
        }
        #[allow(clippy::disallowed_methods)] // derived data: sled's flush is enough
        let written = tree.apply_batch(batch).and_then(|()| match flush {
            Flush::Yes => tree.flush().map(drop),
            Flush::No => Ok(()),
        });
        if let Err(e) = written {
            self.failed = true;
            let error = storage(e);
            if error.is_storage_full() {
                // Reads go on against a database reopened into the reserve's room.
                self.disk_filled(state);
            } else {
                // Reads go on against a database that has not failed, if there is room for one.
                let _ = self.reopen(state);
            }
            return Err(error);
        }
        state.pages.saved();
        state.positions.saved();
        state.relations.saved();
        state.chronology.saved();
        state.names.dirty = false;
        state.keys_dirty = false;
        self.written_since_open += index_bytes;
        self.live = live;
        self.doomed.extend(victims);
        if flush == Flush::Yes {
            self.remove_doomed();
        } else if self.doomed.len() >= DOOMED_FILES {
            if let Err(error) = self.flush() {
                tracing::warn!(%error, "the projections' database did not flush; compacted value files wait for the next flush");
            }
        }
        Ok(())
    }

    /// Deletes the compacted value files, once a flushed checkpoint no longer locates anything in
    /// them. One that cannot be deleted now is left for later (its room is all that is lost).
    fn remove_doomed(&mut self) {
        let doomed = std::mem::take(&mut self.doomed);
        if let Err(error) = self.values.remove(&doomed) {
            tracing::warn!(%error, "cannot delete compacted value files of the projections");
        }
    }

    /// The value files due for compaction (closed, and less than half live), [`COMPACT_FILES`]
    /// files' worth at most, and their live frames (keys and values) but for keys `written`
    /// writes anew: nothing locates those files once a checkpoint writes the frames again.
    #[allow(clippy::type_complexity)]
    fn compaction(
        &self,
        written: &[Pending<'_>],
    ) -> Result<(Vec<u32>, Vec<(Vec<u8>, Vec<u8>)>), ProjectionError> {
        let mut due: Vec<(u32, u64, u64)> = self
            .values
            .closed()?
            .into_iter()
            .filter(|(id, _)| !self.doomed.contains(id))
            .map(|(id, len)| (id, len, self.live.get(&id).copied().unwrap_or(0)))
            .filter(|(_, len, live)| live.saturating_mul(2) < *len || *len == 0)
            .collect();
        // The emptiest first: the most room for the least copying.
        due.sort_by_key(|(_, len, live)| (live * 1000).checked_div(*len).unwrap_or(0));
        let mut victims = Vec::new();
        let mut moved = Vec::new();
        let mut budget = COMPACT_FILES * self.values.file_bytes();
        let tree = self.tree()?;
        let written: std::collections::HashSet<&[u8]> =
            written.iter().map(|(k, _)| k.as_slice()).collect();
        for (id, len, _) in due {
            if len > budget && !victims.is_empty() {
                break;
            }
            budget = budget.saturating_sub(len);
            for frame in self.values.frames(id)? {
                if written.contains(frame.key.as_slice()) {
                    continue;
                }
                let located = tree
                    .get(&frame.key)
                    .map_err(storage)?
                    .as_deref()
                    .and_then(Location::decode);
                if located == Some(frame.location) {
                    moved.push((frame.key, frame.value));
                }
            }
            victims.push(id);
        }
        Ok((victims, moved))
    }

    /// Flushes and reopens the database once `snapshot_after` bytes of checkpoints went to it
    /// since it opened, so that sled writes its snapshot now rather than the next start reading
    /// through all of them.
    pub fn snapshot_if_due(&mut self, state: &mut ProjectionState) {
        if self.written_since_open >= self.snapshot_after {
            self.reopen_flushed(state, "with a fresh snapshot");
        }
    }

    /// Flushes and reopens the database (a temporary store is never reopened). The checkpoint
    /// last saved is whole either way; a reopen that fails leaves the store to be reopened
    /// before the next save, as after a failed write.
    fn reopen_flushed(&mut self, state: &mut ProjectionState, why: &'static str) {
        if self.dir.is_none() {
            return;
        }
        let started = std::time::Instant::now();
        let written = self.written_since_open;
        if let Err(error) = self.flush() {
            tracing::warn!(%error, "the projections' database did not flush before its reopen");
        }
        match self.reopen(state) {
            Ok(()) => tracing::debug!(
                written,
                cache_bytes = self.cache_bytes,
                seconds = started.elapsed().as_secs_f64(),
                "the projections' database is reopened {why}"
            ),
            Err(error) => {
                // Without a database (it went before the open failed) the next save reopens it.
                self.failed = self.db.is_none();
                tracing::warn!(%error, "the projections' database could not be reopened; it is tried again at the next checkpoint");
            }
        }
    }

    /// Whether the last write failed and the database still waits to be reopened.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Whether the last write failed and the database still waits to be reopened, or the disk
    /// filled and the reserve waits to be made again: the next save sees to both.
    pub fn troubled(&self) -> bool {
        self.failed || self.full
    }

    /// The error of a write that sled failed on its own (one it makes in the background, or on
    /// the way of a read), if it did: sled fails every read after such a write until the
    /// database is reopened ([`CheckpointStore::sled_failed`]).
    pub fn probe(&self) -> Option<ProjectionError> {
        #[allow(clippy::disallowed_methods)] // derived data: sled's flush is enough
        let flushed = self.tree.as_ref()?.flush();
        flushed.err().map(storage)
    }

    /// sled failed a write (`error`): the database is reopened at once, into the reserve's room
    /// if the disk is full.
    pub fn sled_failed(&mut self, state: &mut ProjectionState, error: &ProjectionError) {
        self.failed = true;
        if error.is_storage_full() {
            self.disk_filled(state);
        } else if let Err(e) = self.reopen(state) {
            tracing::warn!(%e, "cannot reopen the projections' database yet");
        }
    }

    /// The disk filled: releases the reserve, and if sled failed, reopens the database into its
    /// room at once, so that reads do not meet sled's sticky error. Saves wait in
    /// [`CheckpointStore::resume`].
    fn disk_filled(&mut self, state: &mut ProjectionState) {
        let Some(dir) = self.dir.clone() else {
            return;
        };
        if !self.full {
            self.full = true;
            match reserve::release(&dir) {
                Ok(true) => tracing::warn!(
                    dir = %dir.display(),
                    "the projections' disk is full: released their reserve so that they keep answering"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(%e, "cannot release the projections' reserve"),
            }
        }
        if self.failed {
            if let Err(e) = self.reopen(state) {
                tracing::warn!(%e, "cannot reopen the projections' database yet; their answers may fail until there is room");
            }
        }
    }

    /// Gets the store ready to save after the disk filled: the database reopened if sled
    /// failed, and the reserve made again, once there is room for it and for a checkpoint of
    /// `needed` bytes.
    fn resume(&mut self, state: &mut ProjectionState, needed: u64) -> Result<(), ProjectionError> {
        if self.failed {
            self.reopen(state)?;
        }
        let Some(dir) = self.dir.clone() else {
            self.full = false;
            return Ok(());
        };
        let free = free_space(&dir)?;
        let room = RESERVE_BYTES + needed;
        let cannot_make = |e: io::Error| {
            ProjectionError::Storage(format!(
                "cannot make the projections' reserve in {}: {e}",
                dir.display()
            ))
        };
        if free < room || !reserve::make(&dir).map_err(cannot_make)? {
            return Err(ProjectionError::NoRoom {
                dir: dir.display().to_string(),
                free,
                needed: room,
            });
        }
        self.full = false;
        tracing::info!(dir = %dir.display(), "the projections' disk has room again: their reserve is back");
        Ok(())
    }

    /// Refuses with [`ProjectionError::NoRoom`] when the checkpoint directory has less than
    /// `needed` bytes free. A temporary store is not checked: it goes with the process.
    fn ensure_room(&self, needed: u64) -> Result<(), ProjectionError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let free = free_space(dir)?;
        if free < needed {
            return Err(ProjectionError::NoRoom {
                dir: dir.display().to_string(),
                free,
                needed,
            });
        }
        Ok(())
    }

    /// Reopens the database, once there is room: after sled failed a write, or to have sled
    /// write its snapshot (see `snapshot_after`). It comes back as its last whole
    /// checkpoint left it, and `state`, whose changes since then are all still in it,
    /// reads from it from now on. Blocks that `state` caches as clean came from that checkpoint
    /// or an earlier one, so they are still what the database holds.
    fn reopen(&mut self, state: &mut ProjectionState) -> Result<(), ProjectionError> {
        let Some(dir) = self.dir.clone() else {
            return Err(ProjectionError::Storage(
                "the temporary projection store failed a write".into(),
            ));
        };
        self.ensure_room(REOPEN_ROOM)?;
        if self.failed {
            tracing::warn!(dir = %dir.display(), "reopening the projections' database after a failed write");
        }
        // Every handle must go before sled's lock is released.
        state.disk = None;
        self.tree = None;
        self.db = None;
        let config = sled::Config::new()
            .path(&dir)
            .cache_capacity(self.cache_bytes);
        let db = open_released(|| config.open()).map_err(|e| {
            ProjectionError::Storage(format!("cannot reopen {}: {e}", dir.display()))
        })?;
        let tree = db.open_tree(TREE).map_err(storage)?;
        // The checkpoint it comes back with may be older than the last one saved (one not
        // flushed when sled failed): its accounts are the ones that hold, and files compacted
        // since may still be located by it, so they stay until compacted again.
        self.live = read_live(&tree)?;
        self.doomed.clear();
        state.disk = Some(Disk::new(tree.clone(), Arc::clone(&self.values)));
        self.tree = Some(tree);
        self.db = Some(db);
        self.written_since_open = 0;
        if std::mem::take(&mut self.failed) {
            tracing::info!(dir = %dir.display(), "the projections' database is open again");
        }
        Ok(())
    }

    /// Forgets everything, to rebuild from position 1.
    pub fn clear(&mut self) -> Result<(), ProjectionError> {
        self.tree()?.clear().map_err(storage)?;
        self.flush()?;
        self.values.clear()?;
        self.live.clear();
        self.doomed.clear();
        Ok(())
    }

    /// Flushes to disk (at shutdown; the data is derived, so this is for a quick restart only),
    /// and deletes the value files that the flushed checkpoint no longer locates anything in.
    pub fn flush(&mut self) -> Result<(), ProjectionError> {
        #[allow(clippy::disallowed_methods)] // derived data: sled's flush is enough
        self.tree()?.flush().map_err(storage)?;
        self.remove_doomed();
        Ok(())
    }

    pub fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        Ok(self
            .tree()?
            .get(CHECKPOINT_KEY)
            .map_err(storage)?
            .and_then(|c| c.get(..8).and_then(|b| b.try_into().ok()))
            .map(u64::from_be_bytes))
    }
}

fn free_space(dir: &Path) -> Result<u64, ProjectionError> {
    fs2::available_space(dir).map_err(|e| {
        ProjectionError::Storage(format!(
            "cannot tell the free space of {}: {e}",
            dir.display()
        ))
    })
}

/// The reserve file, as the log keeps one (see `chancery-store-sled`'s `reserve.rs`).
mod reserve {
    use std::io;
    use std::path::Path;

    use chancery_store::Reserve;

    use super::{RESERVE_BYTES, RESERVE_FILE};

    fn reserve(dir: &Path) -> Reserve {
        Reserve::new(dir, RESERVE_FILE, RESERVE_BYTES)
    }

    /// Makes the reserve if it is missing or short, and answers whether it is in place. A disk
    /// without room for it is no error: the projections then run without one.
    pub fn make(dir: &Path) -> io::Result<bool> {
        reserve(dir).make()
    }

    /// Deletes the reserve, answering whether there was one to delete.
    pub fn release(dir: &Path) -> io::Result<bool> {
        reserve(dir).release()
    }
}

/// What a checkpoint writes into the value files: the pages and blocks changed since the last
/// one, and the frames a compaction moves.
fn pending<'a>(state: &'a ProjectionState, moved: &'a [(Vec<u8>, Vec<u8>)]) -> Vec<Pending<'a>> {
    state
        .pages
        .pending_writes()
        .chain(state.positions.pending_writes())
        .chain(state.relations.pending_writes())
        .chain(state.chronology.pending_writes())
        .chain(
            moved
                .iter()
                .map(|(key, value)| (key.clone(), value as &dyn Encode)),
        )
        .collect()
}

/// The bytes of keys and values that `values` encode to.
fn encoded_bytes(values: &[Pending<'_>]) -> u64 {
    values
        .iter()
        .map(|(key, value)| (key.len() + value.encoded_len()) as u64)
        .sum()
}

/// Where the tree's checkpoint ends in the value files, if it has one.
fn read_end(tree: &sled::Tree) -> Result<Option<(u32, u64)>, ProjectionError> {
    let Some(bytes) = tree.get(END_KEY).map_err(storage)? else {
        return Ok(None);
    };
    let mut d = Decoder::new(&bytes);
    match (d.u32(), d.u64(), d.is_empty()) {
        (Some(file), Some(len), true) => Ok(Some((file, len))),
        _ => Err(ProjectionError::Corrupt(
            "bad end of the value files".into(),
        )),
    }
}

/// What each value file holds that the tree's checkpoint locates.
fn read_live(tree: &sled::Tree) -> Result<BTreeMap<u32, u64>, ProjectionError> {
    match tree.get(LIVE_KEY).map_err(storage)? {
        Some(bytes) => decode_live(&bytes)
            .ok_or_else(|| ProjectionError::Corrupt("bad accounts of the value files".into())),
        None => Ok(BTreeMap::new()),
    }
}

/// What each value file holds that the checkpoint locates: (file, bytes) pairs.
fn encode_live(live: &BTreeMap<u32, u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(live.len() * 12);
    for (file, bytes) in live {
        out.extend_from_slice(&file.to_le_bytes());
        out.extend_from_slice(&bytes.to_le_bytes());
    }
    out
}

fn decode_live(bytes: &[u8]) -> Option<BTreeMap<u32, u64>> {
    let mut d = Decoder::new(bytes);
    let mut live = BTreeMap::new();
    while !d.is_empty() {
        live.insert(d.u32()?, d.u64()?);
    }
    Some(live)
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
