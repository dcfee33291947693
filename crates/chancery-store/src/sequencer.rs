//! The rules of appending, as a function with no I/O: given the log as it is (its head, its
//! timelines' versions, its registry, and lookups of earlier events), it checks a group of
//! requests one after the other and seals what they write. Every backend calls it; backends
//! differ only in how they make a sealed group durable.
//!
//! - An append is checked against the log and the requests before it in the group: the timeline
//!   of each event, the expected version, every reference (validation against the registry and
//!   earlier events), and idempotency by id (a batch recorded before with the same content,
//!   whoever recorded it, answers with its positions; an id recorded with other content is a
//!   conflict).
//! - A restore's records must continue the log exactly: positions, the hash chain, versions,
//!   non-decreasing transaction time, new ids, valid references.
//! - A request that fails leaves no trace in its group; the others go on.
//! - Records are sealed with positions from the head on, versions from each timeline's, a
//!   transaction time that never decreases, and the hash chain.

use std::cell::RefCell;
use std::collections::HashMap;

use chancery_domain::ids::{IdMap, IdSet};
use chancery_domain::limits::MAX_BATCH_EVENTS;
use chancery_domain::{
    EventId, EventRef, Kind, NewEvent, Payload, Position, PreparedEvent, RecordedEvent, References,
    Registry, TimelineSlug, Timestamp, ValidationErrors, validate, validate_prepared,
    validate_references,
};

use crate::error::StoreError;
use crate::log::{AppendOutcome, AppendRequest, Appended, ExpectedVersion, Head};

/// What the log holds of an event, by id: what validation and idempotency need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdEntry {
    pub position: Position,
    pub kind: Kind,
    pub timeline: TimelineSlug,
    /// A retraction withdrew it.
    pub retracted: bool,
}

/// The log as it is before a group: what the sequencer reads of it.
pub trait LogState {
    fn head(&self) -> Head;
    fn registry(&self) -> &Registry;
    /// A timeline's version, `None` when it has no events.
    fn version(&self, timeline: &TimelineSlug) -> Result<Option<u64>, StoreError>;
    fn id_entry(&self, id: &EventId) -> Result<Option<IdEntry>, StoreError>;
    fn record(&self, position: Position) -> Result<Option<RecordedEvent>, StoreError>;
}

/// An append whose events passed [`precheck`], each with its encodings made.
#[derive(Debug, Clone)]
pub struct PreparedAppend {
    pub timeline: TimelineSlug,
    pub expected: ExpectedVersion,
    pub events: Vec<PreparedEvent>,
    /// As in [`AppendRequest::refers_within`].
    pub refers_within: Option<Vec<TimelineSlug>>,
}

/// One request of a group.
#[derive(Debug)]
pub enum Request {
    Append(PreparedAppend),
    /// Records exported from another log, checked by [`check_restore`].
    Restore(Vec<RecordedEvent>),
}

/// What one request of a group gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Append(Result<AppendOutcome, StoreError>),
    /// How many records were restored.
    Restore(Result<u64, StoreError>),
}

impl Answer {
    /// The same request, failed: what it gets when its group could not be made durable.
    pub fn failed(self, error: &StoreError) -> Answer {
        match self {
            Answer::Append(r) => Answer::Append(r.and(Err(error.clone()))),
            Answer::Restore(r) => Answer::Restore(r.and(Err(error.clone()))),
        }
    }
}

/// What a group writes once its requests are checked and sealed, and what each request gets.
#[derive(Debug)]
pub struct Sealed {
    /// The new records, in position order, from `base.position + 1`.
    pub records: Vec<RecordedEvent>,
    /// Id entries the group adds or changes (a retraction's target), in order; a later entry for
    /// the same id supersedes an earlier one.
    pub ids: Vec<(EventId, IdEntry)>,
    /// The new version of each timeline the group writes to.
    pub versions: HashMap<TimelineSlug, u64>,
    /// The head the group continues.
    pub base: Head,
    /// The head after the group.
    pub head: Head,
    /// The registry after the group, when the group registered something.
    pub registry: Option<Registry>,
    /// One answer per request, in order.
    pub answers: Vec<Answer>,
}

impl Sealed {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Structural checks of an append that need nothing of the log, and the encodings of its events
/// (which need nothing of the log either): done by the caller's task, so that the sequencing,
/// one group at a time, does only what needs order.
pub fn precheck(request: AppendRequest) -> Result<PreparedAppend, StoreError> {
    if request.events.is_empty() {
        return Err(StoreError::Invalid(ValidationErrors::single(
            "events",
            "an append needs at least one event",
        )));
    }
    if request.events.len() > MAX_BATCH_EVENTS {
        return Err(StoreError::Limit(format!(
            "{} events in one append; the limit is {MAX_BATCH_EVENTS}: split the batch",
            request.events.len()
        )));
    }
    let AppendRequest {
        timeline,
        expected,
        events,
        refers_within,
    } = request;
    let mut ids = IdSet::with_capacity_and_hasher(events.len(), Default::default());
    let mut prepared = Vec::with_capacity(events.len());
    for (i, event) in events.into_iter().enumerate() {
        let id = event.id;
        let event = PreparedEvent::new(event);
        validate_prepared(&event)
            .map_err(|e| StoreError::Invalid(e.within(&format!("events[{i}]"))))?;
        if !ids.insert(id) {
            return Err(StoreError::Invalid(ValidationErrors::single(
                format!("events[{i}].id"),
                format!("{id} appears twice in this batch"),
            )));
        }
        prepared.push(event);
    }
    Ok(PreparedAppend {
        timeline,
        expected,
        events: prepared,
        refers_within,
    })
}

/// Checks records to restore, each on its own (its hash, its form, its validity), in the
/// caller's task: stored bytes in any form this build reads.
pub fn check_restore(
    records: Vec<Vec<u8>>,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if records.len() > limit {
        return Err(StoreError::Limit(format!(
            "{} records in one restore; the limit is {limit}",
            records.len()
        )));
    }
    let mut decoded = Vec::with_capacity(records.len());
    for (i, bytes) in records.into_iter().enumerate() {
        let refuse = |why: String| {
            StoreError::Restore(format!(
                "record {} of the batch {why}; nothing was restored",
                i + 1
            ))
        };
        let record = chancery_domain::decode_record(&bytes)
            .map_err(|e| refuse(format!("cannot be read: {e}")))?;
        record
            .verify()
            .map_err(|e| refuse(format!("fails its hash check: {e}")))?;
        let event = record
            .event()
            .map_err(|e| refuse(format!("cannot be read: {e}")))?;
        validate(event).map_err(|e| refuse(format!("is invalid: {e}")))?;
        decoded.push(record);
    }
    Ok(decoded)
}

/// Checks and seals a group of requests against the log as `state` holds it.
pub fn sequence(state: &dyn LogState, requests: Vec<Request>, now: Timestamp) -> Sealed {
    let mut group = Group {
        state,
        base: state.head(),
        head: state.head(),
        now,
        ids: IdMap::default(),
        changed_ids: Vec::new(),
        versions: HashMap::new(),
        registry: None,
        records: Vec::new(),
    };
    let answers = requests
        .into_iter()
        .map(|request| match request {
            Request::Append(request) => Answer::Append(group.append(request)),
            Request::Restore(records) => Answer::Restore(group.restore(records)),
        })
        .collect();
    Sealed {
        records: group.records,
        ids: group.changed_ids,
        versions: group.versions,
        base: group.base,
        head: group.head,
        registry: group.registry,
        answers,
    }
}

/// A group being sequenced: the log's state with the group's accepted requests on top.
struct Group<'s> {
    state: &'s dyn LogState,
    base: Head,
    head: Head,
    now: Timestamp,
    ids: IdMap<IdEntry>,
    changed_ids: Vec<(EventId, IdEntry)>,
    versions: HashMap<TimelineSlug, u64>,
    /// The group's own registry, copied from the log's at its first registration.
    registry: Option<Registry>,
    records: Vec<RecordedEvent>,
}

/// What one request stages; merged into its group only if the whole request succeeds.
#[derive(Default)]
struct Scope {
    ids: IdMap<IdEntry>,
    changed_ids: Vec<(EventId, IdEntry)>,
    versions: HashMap<TimelineSlug, u64>,
    registry: Option<Registry>,
    records: Vec<RecordedEvent>,
    head: Option<Head>,
}

/// The references an event is checked against: its request, its group, then the log.
struct Refs<'a, 's> {
    group: &'a Group<'s>,
    scope: &'a Scope,
    /// The timelines whose events the request may name; `None` for every one.
    within: Option<&'a [TimelineSlug]>,
    failure: RefCell<Option<StoreError>>,
}

impl References for Refs<'_, '_> {
    fn registry(&self) -> &Registry {
        self.group.registry_in(self.scope)
    }

    fn event(&self, id: &EventId) -> Option<EventRef> {
        match self.group.id_entry_in(self.scope, id) {
            Ok(entry) => entry
                .filter(|e| {
                    self.within
                        .is_none_or(|within| within.contains(&e.timeline))
                })
                .map(|e| EventRef {
                    kind: e.kind,
                    timeline: e.timeline,
                    retracted: e.retracted,
                }),
            Err(e) => {
                self.failure.borrow_mut().get_or_insert(e);
                None
            }
        }
    }
}

impl Group<'_> {
    fn registry_in<'a>(&'a self, scope: &'a Scope) -> &'a Registry {
        scope
            .registry
            .as_ref()
            .or(self.registry.as_ref())
            .unwrap_or_else(|| self.state.registry())
    }

    fn id_entry_in(&self, scope: &Scope, id: &EventId) -> Result<Option<IdEntry>, StoreError> {
        if let Some(e) = scope.ids.get(id).or_else(|| self.ids.get(id)) {
            return Ok(Some(e.clone()));
        }
        self.state.id_entry(id)
    }

    fn version_in(
        &self,
        scope: &Scope,
        timeline: &TimelineSlug,
    ) -> Result<Option<u64>, StoreError> {
        if let Some(v) = scope
            .versions
            .get(timeline)
            .or_else(|| self.versions.get(timeline))
        {
            return Ok(Some(*v));
        }
        self.state.version(timeline)
    }

    fn head_in(&self, scope: &Scope) -> Head {
        scope.head.unwrap_or(self.head)
    }

    fn record_at(&self, position: Position) -> Result<Option<RecordedEvent>, StoreError> {
        if position > self.base.position {
            let i = usize::try_from(position - self.base.position - 1).unwrap_or(usize::MAX);
            return Ok(self.records.get(i).cloned());
        }
        self.state.record(position)
    }

    fn merge(&mut self, scope: Scope) {
        self.ids.extend(scope.ids);
        self.changed_ids.extend(scope.changed_ids);
        self.versions.extend(scope.versions);
        if scope.registry.is_some() {
            self.registry = scope.registry;
        }
        self.records.extend(scope.records);
        if let Some(head) = scope.head {
            self.head = head;
        }
    }

    fn append(&mut self, request: PreparedAppend) -> Result<AppendOutcome, StoreError> {
        if let Some(outcome) = self.deduplicate(&request)? {
            return Ok(outcome);
        }
        let mut scope = Scope::default();
        let current = self.version_in(&scope, &request.timeline)?;
        let matches = match request.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoTimeline | ExpectedVersion::Exact(0) => current.is_none(),
            ExpectedVersion::Exact(v) => current == Some(v),
        };
        if !matches {
            return Err(StoreError::WrongExpectedVersion {
                timeline: request.timeline,
                expected: request.expected,
                actual: current,
            });
        }
        let mut version = current.unwrap_or(0);
        let mut appended = Vec::with_capacity(request.events.len());
        let mut records = Vec::with_capacity(request.events.len());
        for (i, event) in request.events.into_iter().enumerate() {
            let within = request.refers_within.as_deref();
            self.check_references(&scope, event.event(), &request.timeline, within)
                .map_err(|e| match e {
                    StoreError::Invalid(errors) => {
                        StoreError::Invalid(errors.within(&format!("events[{i}]")))
                    }
                    other => other,
                })?;
            let head = self.head_in(&scope);
            let recorded_at = head.recorded_at.map_or(self.now, |last| last.max(self.now));
            let record = RecordedEvent::seal_prepared(
                head.position + 1,
                version + 1,
                recorded_at,
                head.hash,
                event,
            );
            version = record.version();
            appended.push(Appended {
                id: record.id(),
                position: record.position(),
                version,
            });
            records.push(record.clone());
            self.stage(&mut scope, record)?;
        }
        self.merge(scope);
        Ok(AppendOutcome {
            events: appended,
            deduplicated: false,
            records,
        })
    }

    fn check_references(
        &self,
        scope: &Scope,
        event: &NewEvent,
        timeline: &TimelineSlug,
        within: Option<&[TimelineSlug]>,
    ) -> Result<(), StoreError> {
        if &event.timeline != timeline {
            return Err(StoreError::Invalid(ValidationErrors::single(
                "timeline",
                format!(
                    "{} differs from the timeline {timeline} this append is for",
                    event.timeline
                ),
            )));
        }
        let refs = Refs {
            group: self,
            scope,
            within,
            failure: RefCell::new(None),
        };
        let checked = validate_references(event, &refs);
        if let Some(e) = refs.failure.into_inner() {
            return Err(e);
        }
        checked.map_err(StoreError::Invalid)
    }

    /// Answers a retried request with the original positions, or refuses a reused id.
    fn deduplicate(&self, request: &PreparedAppend) -> Result<Option<AppendOutcome>, StoreError> {
        let scope = Scope::default();
        let mut found = Vec::new();
        for event in request.events.iter().map(PreparedEvent::event) {
            if let Some(entry) = self.id_entry_in(&scope, &event.id)? {
                found.push((event, entry));
            }
        }
        if found.is_empty() {
            return Ok(None);
        }
        if found.len() < request.events.len() {
            let (event, entry) = &found[0];
            return Err(StoreError::IdConflict {
                id: event.id,
                position: entry.position,
                reason: "it was recorded by an append that did not hold this whole batch; retry the original batch unchanged, or use new ids".into(),
            });
        }
        let mut events = Vec::with_capacity(found.len());
        let mut records = Vec::with_capacity(found.len());
        for (event, entry) in found {
            let record = self
                .record_at(entry.position)?
                .ok_or_else(|| StoreError::Corrupt {
                    position: Some(entry.position),
                    detail: format!("event {} is indexed but its record is missing", event.id),
                })?;
            let recorded = record.event().map_err(|e| StoreError::Corrupt {
                position: Some(entry.position),
                detail: e.to_string(),
            })?;
            // Who sends the retry does not matter: a retry by another token (a client that
            // switched tokens, an import re-run by another operator) is the same event, and its
            // record keeps the name of the first writer.
            if !recorded.same_content(event) {
                return Err(StoreError::IdConflict {
                    id: event.id,
                    position: entry.position,
                    reason: "it was recorded with other content; use a new id for a new event"
                        .into(),
                });
            }
            events.push(Appended {
                id: event.id,
                position: record.position(),
                version: record.version(),
            });
            records.push(record);
        }
        Ok(Some(AppendOutcome {
            events,
            deduplicated: true,
            records,
        }))
    }

    /// Adds one sealed record to its request's writes: its id entry, its timeline's version, a
    /// retraction's mark on its target, a registration's entry.
    fn stage(&self, scope: &mut Scope, record: RecordedEvent) -> Result<(), StoreError> {
        let event = record.event().map_err(|e| StoreError::Corrupt {
            position: Some(record.position()),
            detail: e.to_string(),
        })?;
        let entry = IdEntry {
            position: record.position(),
            kind: record.kind(),
            retracted: false,
            timeline: event.timeline.clone(),
        };
        scope.ids.insert(record.id(), entry.clone());
        scope.changed_ids.push((record.id(), entry));
        if let Payload::Retraction(r) = &event.payload {
            if let Some(mut target) = self.id_entry_in(scope, &r.retracts)? {
                target.retracted = true;
                scope.ids.insert(r.retracts, target.clone());
                scope.changed_ids.push((r.retracts, target));
            }
        }
        if event.kind().is_registration() {
            let mut registry = self.registry_in(scope).clone();
            registry.apply(event);
            scope.registry = Some(registry);
        }
        scope
            .versions
            .insert(event.timeline.clone(), record.version());
        scope.head = Some(Head {
            position: record.position(),
            hash: record.hash(),
            recorded_at: Some(record.recorded_at()),
        });
        scope.records.push(record);
        Ok(())
    }

    fn restore(&mut self, records: Vec<RecordedEvent>) -> Result<u64, StoreError> {
        let mut scope = Scope::default();
        let count = records.len() as u64;
        for record in records {
            let at = record.position();
            let refuse = |why: String| {
                StoreError::Restore(format!(
                    "the record at position {at} {why}; nothing was restored"
                ))
            };
            let head = self.head_in(&scope);
            if at != head.position + 1 {
                return Err(refuse(format!(
                    "does not follow this log's head at position {}",
                    head.position
                )));
            }
            if record.prev_hash() != head.hash {
                return Err(refuse(
                    "does not chain to the hash of the record before it".into(),
                ));
            }
            if head
                .recorded_at
                .is_some_and(|last| record.recorded_at() < last)
            {
                return Err(refuse("was recorded before the record preceding it".into()));
            }
            let event = record
                .event()
                .map_err(|e| refuse(format!("cannot be read: {e}")))?;
            let timeline = event.timeline.clone();
            let current = self.version_in(&scope, &timeline)?;
            if record.version() != current.unwrap_or(0) + 1 {
                return Err(refuse(format!(
                    "has version {} of {timeline}, which is not next",
                    record.version()
                )));
            }
            if self.id_entry_in(&scope, &record.id())?.is_some() {
                return Err(refuse(format!("reuses the event id {}", record.id())));
            }
            if let Err(e) = self.check_references(&scope, event, &timeline, None) {
                return Err(refuse(format!("is invalid: {e}")));
            }
            self.stage(&mut scope, record)?;
        }
        self.merge(scope);
        Ok(count)
    }
}
