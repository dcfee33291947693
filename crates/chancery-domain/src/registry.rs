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
        Some(match &event.payload {
            Payload::PartyRegistered(p) => {
                RegistryEntry::Party(register(&mut self.parties, &p.code, p))
            }
            Payload::ActorRegistered(a) => {
                RegistryEntry::Actor(register(&mut self.actors, &a.slug, a))
            }
            Payload::IssueRegistered(i) => {
                RegistryEntry::Issue(register(&mut self.issues, &i.slug, i))
            }
            Payload::TimelineRegistered(t) => {
                RegistryEntry::Timeline(register(&mut self.timelines, &t.slug, t))
            }
            _ => return None,
        })
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

/// Adds one registration under its key; answers the key, to name the entry.
fn register<K: Ord + Clone, V: Clone>(entries: &mut BTreeMap<K, V>, key: &K, value: &V) -> K {
    entries.insert(key.clone(), value.clone());
    key.clone()
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
