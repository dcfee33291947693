//! What this server appended that its replica has not applied yet: the groups the stream
//! acknowledged, kept until the follower applies them, so that the appender can answer an append
//! as soon as the stream holds it and seal the next group at once, against the replica with
//! these groups on top ([`Ahead`]). Reads on this server wait for the replica to apply what was
//! acknowledged, so that a caller still reads its own writes.

use std::collections::HashMap;

use chancery_domain::{EventId, Position, RecordedEvent, Registry, TimelineSlug};
use chancery_store::sequencer::{IdEntry, LogState, Sealed};
use chancery_store::{Head, StoreError};

/// One acknowledged group the replica may not hold yet: what the sequencer wrote for it.
pub struct Unapplied {
    base: Position,
    head: Head,
    records: Vec<RecordedEvent>,
    ids: HashMap<EventId, IdEntry>,
    versions: HashMap<TimelineSlug, u64>,
    registry: Option<Registry>,
}

impl Unapplied {
    /// The writes of a sealed group (its answers are taken out before).
    pub fn of(sealed: Sealed) -> Unapplied {
        Unapplied {
            base: sealed.base.position,
            head: sealed.head,
            records: sealed.records,
            // A later entry for an id supersedes an earlier one (a retraction's target).
            ids: sealed.ids.into_iter().collect(),
            versions: sealed.versions,
            registry: sealed.registry,
        }
    }

    pub fn head(&self) -> Position {
        self.head.position
    }
}

/// The replica as a snapshot shows it, with the acknowledged groups it has not applied on top:
/// the log as the stream holds it when no other server appended since. The groups are
/// consecutive and continue one another; those the snapshot holds whole are left out by the
/// caller, and positions the snapshot holds are read from it.
pub struct Ahead<'a, R> {
    pub replica: &'a R,
    pub unapplied: &'a [Unapplied],
}

impl<R: LogState> LogState for Ahead<'_, R> {
    fn head(&self) -> Head {
        match self.unapplied.last() {
            Some(group) if group.head.position > self.replica.head().position => group.head,
            _ => self.replica.head(),
        }
    }

    fn registry(&self) -> &Registry {
        self.unapplied
            .iter()
            .rev()
            .find_map(|g| g.registry.as_ref())
            .unwrap_or_else(|| self.replica.registry())
    }

    fn version(&self, timeline: &TimelineSlug) -> Result<Option<u64>, StoreError> {
        match self
            .unapplied
            .iter()
            .rev()
            .find_map(|g| g.versions.get(timeline))
        {
            Some(version) => Ok(Some(*version)),
            None => self.replica.version(timeline),
        }
    }

    fn id_entry(&self, id: &EventId) -> Result<Option<IdEntry>, StoreError> {
        match self.unapplied.iter().rev().find_map(|g| g.ids.get(id)) {
            Some(entry) => Ok(Some(entry.clone())),
            None => self.replica.id_entry(id),
        }
    }

    fn record(&self, position: Position) -> Result<Option<RecordedEvent>, StoreError> {
        if position > self.replica.head().position {
            let held = self
                .unapplied
                .iter()
                .find(|g| g.base < position && position <= g.head.position)
                .and_then(|g| {
                    let at = usize::try_from(position - g.base - 1).ok()?;
                    g.records.get(at).cloned()
                });
            if held.is_some() {
                return Ok(held);
            }
        }
        self.replica.record(position)
    }
}
