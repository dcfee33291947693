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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test
mod tests {
    use chancery_domain::sample::{self, payloads};
    use chancery_domain::{Hash, NewEvent, Timestamp};
    use chancery_store::sequencer::{self, Answer, Request};
    use chancery_store::{AppendOutcome, AppendRequest, ExpectedVersion};

    use super::*;

    const T: &str = "ahead";

    /// A replica that holds nothing yet (or, with `head`, one that claims a head past the groups).
    #[derive(Default)]
    struct Replica {
        head: Option<Head>,
        registry: Registry,
    }

    impl LogState for Replica {
        fn head(&self) -> Head {
            self.head.unwrap_or(Head::EMPTY)
        }

        fn registry(&self) -> &Registry {
            &self.registry
        }

        fn version(&self, _: &TimelineSlug) -> Result<Option<u64>, StoreError> {
            Ok(None)
        }

        fn id_entry(&self, _: &EventId) -> Result<Option<IdEntry>, StoreError> {
            Ok(None)
        }

        fn record(&self, _: Position) -> Result<Option<RecordedEvent>, StoreError> {
            Ok(None)
        }
    }

    fn append(expected: ExpectedVersion, events: Vec<NewEvent>) -> Request {
        let request = AppendRequest {
            timeline: sample::timeline(T),
            expected,
            events,
            refers_within: None,
        };
        Request::Append(sequencer::precheck(request).expect("valid on its own"))
    }

    /// Seals one request on the replica with `unapplied` on top: the group, and what it answered.
    fn seal(
        replica: &Replica,
        unapplied: &[Unapplied],
        request: Request,
    ) -> (Unapplied, AppendOutcome) {
        let view = Ahead { replica, unapplied };
        let mut sealed = sequencer::sequence(&view, vec![request], Timestamp::from_unix_micros(1));
        let answer = match sealed.answers.pop() {
            Some(Answer::Append(result)) => result.expect("the append is accepted"),
            other => panic!("one append answer, not {other:?}"),
        };
        (Unapplied::of(sealed), answer)
    }

    fn offer() -> NewEvent {
        sample::act(
            T,
            payloads::offer(vec![]),
            "USA",
            Some("CHN"),
            &["deficit"],
            "2018-05-01",
        )
    }

    #[test]
    fn a_group_sealed_ahead_of_the_replica_continues_the_groups_it_lacks() {
        let replica = Replica::default();
        let world = sample::world(T, &["USA", "CHN"], &["deficit"]);
        let registered = world.len() as Position;
        let (first, _) = seal(&replica, &[], append(ExpectedVersion::NoTimeline, world));
        assert_eq!(first.head(), registered);

        // The offer names parties and an issue only the first group registered, and expects the
        // timeline's version the first group left: both come from the group, not the replica.
        let offer = offer();
        let (second, written) = seal(
            &replica,
            std::slice::from_ref(&first),
            append(ExpectedVersion::Exact(registered), vec![offer.clone()]),
        );
        assert!(!written.deduplicated);
        assert_eq!(written.events[0].position, registered + 1);
        assert_eq!(written.events[0].version, registered + 1);
        assert_eq!(written.records[0].prev_hash(), first.head.hash);
        assert_ne!(written.records[0].prev_hash(), Hash::GENESIS);

        // A retry finds the event in the group the replica lacks, record and all.
        let groups = [first, second];
        let (again, retried) = seal(&replica, &groups, append(ExpectedVersion::Any, vec![offer]));
        assert!(retried.deduplicated);
        assert_eq!(retried.events, written.events);
        assert_eq!(retried.records[0].stored(), written.records[0].stored());
        assert!(again.records.is_empty());
    }

    #[test]
    fn a_replica_past_the_groups_gives_the_head() {
        let world = sample::world(T, &["USA", "CHN"], &["deficit"]);
        let (first, _) = seal(
            &Replica::default(),
            &[],
            append(ExpectedVersion::NoTimeline, world),
        );
        let further = Head {
            position: first.head() + 5,
            hash: Hash::GENESIS,
            recorded_at: None,
        };
        let replica = Replica {
            head: Some(further),
            registry: Registry::default(),
        };
        let view = Ahead {
            replica: &replica,
            unapplied: std::slice::from_ref(&first),
        };
        assert_eq!(view.head().position, further.position);
        // Positions the replica holds are read from it, not from the group.
        assert!(view.record(1).unwrap().is_none());
    }
}
