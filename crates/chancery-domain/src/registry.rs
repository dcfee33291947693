//! The registry: parties, actors, issues and timelines, folded from their registration events.
//! Validation checks every reference an event makes against it.

use std::collections::BTreeMap;

use crate::event::NewEvent;
use crate::ids::{ActorSlug, EventId, IssueSlug, PartyCode, TimelineSlug};
use crate::payload::{
    ActorRegistered, IssueRegistered, Kind, PartyRegistered, Payload, TimelineRegistered,
};

/// Everything registered so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    pub parties: BTreeMap<PartyCode, PartyRegistered>,
    pub actors: BTreeMap<ActorSlug, ActorRegistered>,
    pub issues: BTreeMap<IssueSlug, IssueRegistered>,
    pub timelines: BTreeMap<TimelineSlug, TimelineRegistered>,
}

/// One entry a registration added, so that it can be taken back if its batch fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryEntry {
    Party(PartyCode),
    Actor(ActorSlug),
    Issue(IssueSlug),
    Timeline(TimelineSlug),
}

impl Registry {
    /// Adds what a registration event registers (other events change nothing). Validation has
    /// already refused a second registration of the same key.
    pub fn apply(&mut self, event: &NewEvent) -> Option<RegistryEntry> {
        match &event.payload {
            Payload::PartyRegistered(p) => {
                self.parties.insert(p.code.clone(), p.clone());
                Some(RegistryEntry::Party(p.code.clone()))
            }
            Payload::ActorRegistered(a) => {
                self.actors.insert(a.slug.clone(), a.clone());
                Some(RegistryEntry::Actor(a.slug.clone()))
            }
            Payload::IssueRegistered(i) => {
                self.issues.insert(i.slug.clone(), i.clone());
                Some(RegistryEntry::Issue(i.slug.clone()))
            }
            Payload::TimelineRegistered(t) => {
                self.timelines.insert(t.slug.clone(), t.clone());
                Some(RegistryEntry::Timeline(t.slug.clone()))
            }
            _ => None,
        }
    }

    /// Takes back an entry that [`Registry::apply`] added.
    pub fn remove(&mut self, entry: &RegistryEntry) {
        match entry {
            RegistryEntry::Party(k) => {
                self.parties.remove(k);
            }
            RegistryEntry::Actor(k) => {
                self.actors.remove(k);
            }
            RegistryEntry::Issue(k) => {
                self.issues.remove(k);
            }
            RegistryEntry::Timeline(k) => {
                self.timelines.remove(k);
            }
        }
    }
}

/// What validation needs to know of an earlier event that another event points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    pub kind: Kind,
    pub timeline: TimelineSlug,
    pub retracted: bool,
}

/// What an event's references are checked against: the registry and the events already in the
/// log (or earlier in the same batch).
pub trait References {
    fn registry(&self) -> &Registry;
    fn event(&self, id: &EventId) -> Option<EventRef>;
}
