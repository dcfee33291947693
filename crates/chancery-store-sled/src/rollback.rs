//! Taking sled back to its last checkpoint after a crash, before the write-ahead log is replayed.
//!
//! Between checkpoints the writer inserts a group's keys one by one rather than as one sled
//! batch: sled writes a batch's manifest out to its file at once, and that write, on every group,
//! competed with the write-ahead log's own sync for the disk (docs/benchmarks.md). The group is
//! then no longer atomic in sled, but it need not be: the write-ahead log holds every group since
//! the checkpoint, and sled recovers a prefix of its writes (its log is read in order up to the
//! first torn entry). The writer inserts an event's `E` key before its indexes, so whatever sled
//! kept past the checkpoint is found from the `E` keys past it. Each such event's keys are removed
//! (the `E` key last, so that an interrupted rollback finds it again), a retraction's mark on its
//! target is lifted, and the timelines' heads are set back; the records past the checkpoint are
//! then applied again from the write-ahead log through the checked restore path.

use std::collections::BTreeSet;

use chancery_domain::{Payload, Position};
use chancery_store::StoreError;

use crate::keys::{self, IdEntry};
use crate::reader::{corrupt, decode, storage_error};

/// Removes what sled holds past the position of its last checkpoint, and says how many records
/// that was. A store without a checkpoint mark (written before it existed, when every group was
/// one atomic batch) is left as it is.
pub fn to_checkpoint(tree: &sled::Tree) -> Result<u64, StoreError> {
    let Some(mark) = tree.get(keys::META_CHECKPOINT).map_err(storage_error)? else {
        return Ok(0);
    };
    let checkpoint =
        keys::u64_prefix(&mark).ok_or_else(|| corrupt(None, "the checkpoint mark is malformed"))?;
    let past: Vec<(sled::IVec, sled::IVec)> = tree
        .range(keys::event(checkpoint.saturating_add(1))..=keys::event(Position::MAX))
        .collect::<Result<_, _>>()
        .map_err(storage_error)?;
    let mut timelines = BTreeSet::new();
    for (key, bytes) in past.iter().rev() {
        let position =
            keys::event_position(key).ok_or_else(|| corrupt(None, "an event key is malformed"))?;
        let record = decode(position, bytes)?;
        let event = &record.event;
        for tag in keys::event_tags(event, position) {
            tree.remove(tag).map_err(storage_error)?;
        }
        tree.remove(keys::version(&event.timeline, record.version))
            .map_err(storage_error)?;
        let id = keys::id(&event.id);
        let own = tree
            .get(id)
            .map_err(storage_error)?
            .and_then(|v| IdEntry::decode(&v))
            .is_some_and(|entry| entry.position == position);
        if own {
            tree.remove(id).map_err(storage_error)?;
        }
        if let Payload::Retraction(r) = &event.payload {
            // An event is retracted at most once, so the mark is this retraction's.
            let target = keys::id(&r.retracts);
            if let Some(mut entry) = tree
                .get(target)
                .map_err(storage_error)?
                .and_then(|v| IdEntry::decode(&v))
            {
                if entry.retracted {
                    entry.retracted = false;
                    tree.insert(target, entry.encode()).map_err(storage_error)?;
                }
            }
        }
        tree.remove(key).map_err(storage_error)?;
        timelines.insert(event.timeline.clone());
    }
    for timeline in timelines {
        let last = tree
            .scan_prefix(keys::version_prefix(&timeline))
            .next_back()
            .transpose()
            .map_err(storage_error)?;
        let head = keys::timeline_head(&timeline);
        match last.and_then(|(k, _)| keys::u64_suffix(&k)) {
            Some(version) => tree.insert(head, &version.to_be_bytes()).map(drop),
            None => tree.remove(head).map(drop),
        }
        .map_err(storage_error)?;
    }
    Ok(past.len() as u64)
}

/// Records the head's position as the checkpoint's, before sled is flushed.
pub fn mark(tree: &sled::Tree, head: Position) -> Result<(), StoreError> {
    tree.insert(keys::META_CHECKPOINT, &head.to_be_bytes())
        .map(drop)
        .map_err(storage_error)
}
