//! Event filters: which events a read or a subscription wants, by timeline, party, issue and
//! kind. Within one dimension any value matches; across dimensions all must match.
//!
//! Retractions and corrections pass party and issue filters: their envelope need not repeat the
//! parties and issues of the event they withdraw or change, and a filtered feed must still learn
//! that an event it showed was withdrawn or changed.

use chancery_domain::{
    EventView, IssueSlug, Kind, NewEvent, PartyCode, RecordedEvent, TimelineSlug,
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub timelines: Vec<TimelineSlug>,
    pub parties: Vec<PartyCode>,
    pub issues: Vec<IssueSlug>,
    pub kinds: Vec<Kind>,
}

impl EventFilter {
    pub fn all() -> Self {
        Self::default()
    }

    pub fn timeline(timeline: TimelineSlug) -> Self {
        Self {
            timelines: vec![timeline],
            ..Self::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.timelines.is_empty()
            && self.parties.is_empty()
            && self.issues.is_empty()
            && self.kinds.is_empty()
    }

    pub fn matches(&self, event: &NewEvent) -> bool {
        let bookkeeping = matches!(event.kind(), Kind::Retraction | Kind::Correction);
        (self.timelines.is_empty() || self.timelines.contains(&event.timeline))
            && (self.kinds.is_empty() || self.kinds.contains(&event.kind()))
            && (self.parties.is_empty()
                || bookkeeping
                || event
                    .actors
                    .iter()
                    .chain(&event.targets)
                    .any(|p| self.parties.contains(&p.party)))
            && (self.issues.is_empty()
                || bookkeeping
                || event.issues.iter().any(|i| self.issues.contains(i)))
    }

    /// [`EventFilter::matches`] on a record's terms, without decoding the rest of it.
    pub fn matches_view(&self, view: &EventView<'_>) -> bool {
        let bookkeeping = matches!(view.kind, Kind::Retraction | Kind::Correction);
        (self.timelines.is_empty() || self.timelines.iter().any(|t| t.as_str() == view.timeline))
            && (self.kinds.is_empty() || self.kinds.contains(&view.kind))
            && (self.parties.is_empty()
                || bookkeeping
                || view
                    .actors()
                    .chain(view.targets())
                    .any(|(party, _)| self.parties.iter().any(|p| p.as_str() == party)))
            && (self.issues.is_empty()
                || bookkeeping
                || view
                    .issues()
                    .any(|issue| self.issues.iter().any(|i| i.as_str() == issue)))
    }

    /// Whether a record matches. A record whose terms cannot be read matches, so that its reader
    /// meets the damage rather than silently missing the record.
    pub fn matches_record(&self, record: &RecordedEvent) -> bool {
        if self.is_empty() {
            return true;
        }
        if self.timelines.is_empty() && self.parties.is_empty() && self.issues.is_empty() {
            return self.kinds.contains(&record.kind());
        }
        match record.view() {
            Ok(view) => self.matches_view(&view),
            Err(_) => true,
        }
    }
}
