//! What the projections keep of each position of the log (an act's facts and every version of
//! them, or when a bookkeeping event was recorded), in pages of [`PAGE`] positions on disk. Pages
//! changed since the last checkpoint stay in memory until it writes them; the rest are read
//! through a bounded cache.
//!
//! A page read from disk is cached as it is stored, with where each entry starts, and an entry
//! is decoded when it is asked for: a reader often wants one entry of a page (a side's event),
//! or only an act's head (whether a page of the log shows an event), which is read from the
//! stored bytes with no allocation. Decoding whole pages for those took a fifth of the server's
//! CPU reading the log in pages of 500 events (docs/benchmarks.md).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chancery_domain::{EventId, Position, Timestamp};

use crate::error::ProjectionError;
use crate::facts::{self, Act, ActHead, Entry};
use crate::lists::Cache;
use crate::lists::Decoder;
use crate::values::{Disk, Encode, Pending};

/// Positions per page.
pub const PAGE: u64 = 256;

/// The page of a position.
pub fn page_of(position: Position) -> u64 {
    (position - 1) / PAGE
}

/// Where a position's entry is in its page.
fn index_in_page(position: Position) -> usize {
    usize::try_from((position - 1) % PAGE).unwrap_or(usize::MAX)
}

fn damaged(page: u64) -> ProjectionError {
    ProjectionError::Corrupt(format!("page {page} of the projections is damaged"))
}

pub fn page_key(page: u64) -> [u8; 9] {
    let mut k = [b'p'; 9];
    k[1..].copy_from_slice(&page.to_be_bytes());
    k
}

/// A page as it was stored, and where each of its entries starts.
struct StoredPage {
    bytes: Vec<u8>,
    starts: Vec<u32>,
}

impl StoredPage {
    /// The page of `bytes`, each entry passed over once to find where the next starts; `None`
    /// if they are damaged.
    fn of(bytes: Vec<u8>) -> Option<StoredPage> {
        let mut starts = Vec::with_capacity(usize::try_from(PAGE).unwrap_or(256));
        let mut decoder = Decoder::new(&bytes);
        while !decoder.is_empty() {
            starts.push(u32::try_from(bytes.len() - decoder.remaining()).ok()?);
            decoder.skip_entry()?;
        }
        Some(StoredPage { bytes, starts })
    }

    /// A decoder at the start of entry `i`.
    fn at(&self, i: usize) -> Option<Decoder<'_>> {
        let start = usize::try_from(*self.starts.get(i)?).ok()?;
        Some(Decoder::new(self.bytes.get(start..)?))
    }

    fn entry(&self, i: usize) -> Option<Entry> {
        self.at(i)?.entry()
    }

    fn entries(&self) -> Option<Vec<Entry>> {
        (0..self.starts.len()).map(|i| self.entry(i)).collect()
    }
}

/// A clean page as the cache holds it: as stored (read from disk), or decoded (written by this
/// process's last checkpoint, its entries at hand).
enum Held {
    Stored(StoredPage),
    Decoded(Arc<Vec<Entry>>),
}

/// A page to read: changed (in the overlay) or clean.
enum PageRef {
    Decoded(Arc<Vec<Entry>>),
    Held(Arc<Held>),
}

/// An entry of a page, as the page holds it.
enum At<'a> {
    Decoded(&'a Entry),
    Stored(Decoder<'a>),
}

impl PageRef {
    /// Entry `i` as the page holds it; `None` if the page has no such entry.
    fn at(&self, i: usize) -> Option<At<'_>> {
        let entries = match self {
            PageRef::Decoded(entries) => entries,
            PageRef::Held(held) => match &**held {
                Held::Decoded(entries) => entries,
                Held::Stored(page) => return page.at(i).map(At::Stored),
            },
        };
        entries.get(i).map(At::Decoded)
    }

    /// What `read` takes from entry `i`, decoding it if it is stored; `Err` if the page is
    /// damaged there.
    fn read<R>(&self, i: usize, read: impl FnOnce(&Entry) -> R) -> Result<Option<R>, ()> {
        match self.at(i) {
            None => Ok(None),
            Some(At::Decoded(entry)) => Ok(Some(read(entry))),
            Some(At::Stored(mut d)) => d.entry().map(|e| Some(read(&e))).ok_or(()),
        }
    }

    /// The id of the act at entry `i`, read no further when the page is stored; `Ok(None)` for
    /// no entry or a bookkeeping one.
    fn act_id(&self, i: usize) -> Result<Option<EventId>, ()> {
        match self.at(i) {
            None | Some(At::Decoded(Entry::Bookkeeping { .. })) => Ok(None),
            Some(At::Decoded(Entry::Act(act))) => Ok(Some(act.id)),
            Some(At::Stored(mut d)) => d.act_id().ok_or(()),
        }
    }

    /// The head of the act at entry `i` as known at `known_at`, its facts passed over when the
    /// page is stored; `Ok(None)` for no entry or a bookkeeping one.
    fn act_head(&self, i: usize, known_at: Position) -> Result<Option<ActHead>, ()> {
        match self.at(i) {
            None | Some(At::Decoded(Entry::Bookkeeping { .. })) => Ok(None),
            Some(At::Decoded(Entry::Act(act))) => Ok(Some(act.head(known_at))),
            Some(At::Stored(mut d)) => d.act_head(known_at).ok_or(()),
        }
    }
}

pub struct Pages {
    /// The last position held.
    head: Position,
    overlay: BTreeMap<u64, Arc<Vec<Entry>>>,
    cache: Mutex<Cache<Held>>,
}

impl Pages {
    pub fn new(head: Position, cached_pages: usize) -> Self {
        Self {
            head,
            overlay: BTreeMap::new(),
            cache: Mutex::new(Cache::new(cached_pages / 2)),
        }
    }

    pub fn head(&self) -> Position {
        self.head
    }

    fn page(&self, disk: &Disk, page: u64) -> Result<PageRef, ProjectionError> {
        if let Some(entries) = self.overlay.get(&page) {
            return Ok(PageRef::Decoded(Arc::clone(entries)));
        }
        let key = page_key(page);
        if let Some(held) = self.cache.lock().ok().and_then(|mut c| c.get(&key)) {
            return Ok(PageRef::Held(held));
        }
        let stored = match disk.get(&key)? {
            Some(bytes) => StoredPage::of(bytes).ok_or_else(|| damaged(page))?,
            None => StoredPage {
                bytes: Vec::new(),
                starts: Vec::new(),
            },
        };
        let held = Arc::new(Held::Stored(stored));
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(key.to_vec(), Arc::clone(&held));
        }
        Ok(PageRef::Held(held))
    }

    fn page_mut(&mut self, disk: &Disk, page: u64) -> Result<&mut Vec<Entry>, ProjectionError> {
        if !self.overlay.contains_key(&page) {
            let entries = match self.page(disk, page)? {
                PageRef::Decoded(entries) => entries,
                PageRef::Held(held) => match &*held {
                    Held::Decoded(entries) => Arc::clone(entries),
                    Held::Stored(stored) => {
                        Arc::new(stored.entries().ok_or_else(|| damaged(page))?)
                    }
                },
            };
            if let Ok(mut cache) = self.cache.lock() {
                cache.remove(&page_key(page));
            }
            self.overlay.insert(page, entries);
        }
        self.overlay
            .get_mut(&page)
            .map(Arc::make_mut)
            .ok_or_else(|| ProjectionError::Corrupt("a page went missing".into()))
    }

    /// What is kept of a position.
    pub fn entry(&self, disk: &Disk, position: Position) -> Result<Option<Entry>, ProjectionError> {
        self.read_entry(disk, position, Entry::clone)
    }

    /// What `read` takes from what is kept of a position, the entry itself not copied (an act's
    /// versions are a vector).
    fn read_entry<R>(
        &self,
        disk: &Disk,
        position: Position,
        read: impl FnOnce(&Entry) -> R,
    ) -> Result<Option<R>, ProjectionError> {
        self.at_position(disk, position, |page, i| page.read(i, read))
    }

    /// What `take` finds at a position's place in its page; `None` past the head.
    fn at_position<R>(
        &self,
        disk: &Disk,
        position: Position,
        take: impl FnOnce(&PageRef, usize) -> Result<Option<R>, ()>,
    ) -> Result<Option<R>, ProjectionError> {
        if position == 0 || position > self.head {
            return Ok(None);
        }
        let page = page_of(position);
        take(&self.page(disk, page)?, index_in_page(position)).map_err(|()| damaged(page))
    }

    /// What `read` takes from the act at `position`, the act not copied; `None` for any other
    /// entry.
    pub fn read_act<R>(
        &self,
        disk: &Disk,
        position: Position,
        read: impl FnOnce(&Act) -> R,
    ) -> Result<Option<R>, ProjectionError> {
        Ok(self
            .read_entry(disk, position, |entry| match entry {
                Entry::Act(act) => Some(read(act)),
                Entry::Bookkeeping { .. } => None,
            })?
            .flatten())
    }

    /// The id of the act at `position`; `None` for any other entry.
    pub fn act_id(
        &self,
        disk: &Disk,
        position: Position,
    ) -> Result<Option<EventId>, ProjectionError> {
        self.at_position(disk, position, |page, i| page.act_id(i))
    }

    /// The head of the act at `position` as known at `known_at`; `None` for any other entry.
    pub fn act_head(
        &self,
        disk: &Disk,
        position: Position,
        known_at: Position,
    ) -> Result<Option<ActHead>, ProjectionError> {
        self.at_position(disk, position, |page, i| page.act_head(i, known_at))
    }

    /// When a position was recorded.
    pub fn recorded_at(
        &self,
        disk: &Disk,
        position: Position,
    ) -> Result<Option<Timestamp>, ProjectionError> {
        self.read_entry(disk, position, Entry::recorded_at)
    }

    /// Appends the entry of the next position.
    pub fn push(&mut self, disk: &Disk, entry: Entry) -> Result<(), ProjectionError> {
        let position = self.head + 1;
        self.page_mut(disk, page_of(position))?.push(entry);
        self.head = position;
        Ok(())
    }

    /// The act at a position, to change.
    pub fn act_mut(
        &mut self,
        disk: &Disk,
        position: Position,
    ) -> Result<&mut Act, ProjectionError> {
        if position == 0 || position > self.head {
            return Err(ProjectionError::Corrupt(format!(
                "position {position} is not an act"
            )));
        }
        match self
            .page_mut(disk, page_of(position))?
            .get_mut(index_in_page(position))
        {
            Some(Entry::Act(a)) => Ok(a),
            _ => Err(ProjectionError::Corrupt(format!(
                "position {position} is not an act"
            ))),
        }
    }

    /// The last position recorded at or before an instant (0 if none): transaction time never
    /// decreases along the log, so a binary search over positions finds it.
    pub fn position_at_instant(
        &self,
        disk: &Disk,
        instant: Timestamp,
    ) -> Result<Position, ProjectionError> {
        let (mut lo, mut hi) = (0, self.head);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            match self.recorded_at(disk, mid)? {
                Some(at) if at <= instant => lo = mid,
                _ => hi = mid - 1,
            }
        }
        Ok(lo)
    }

    /// The changed pages, for a checkpoint to write. They stay changed until [`Pages::saved`]:
    /// a checkpoint that fails leaves them here, to be written by the next one.
    pub fn pending_writes(&self) -> impl Iterator<Item = Pending<'_>> {
        self.overlay
            .iter()
            .map(|(page, entries)| (page_key(*page).to_vec(), &**entries as &dyn Encode))
    }

    /// The checkpoint holding [`Pages::pending_writes`] is on disk: the changed pages count as
    /// clean, and stay cached.
    pub fn saved(&mut self) {
        let overlay = std::mem::take(&mut self.overlay);
        if let Ok(mut cache) = self.cache.lock() {
            for (page, entries) in overlay {
                cache.put(page_key(page).to_vec(), Arc::new(Held::Decoded(entries)));
            }
        }
    }

    /// Pages changed since the last checkpoint.
    pub fn dirty_pages(&self) -> usize {
        self.overlay.len()
    }
}

/// A page is stored as its entries, one after another.
impl Encode for Vec<Entry> {
    fn encode(&self, out: &mut Vec<u8>) {
        for entry in self {
            facts::encode(entry, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Fact, Stance, StanceRule};
    use chancery_domain::codes::QuadClass;
    use chancery_domain::{Kind, Modality, Precision};
    use proptest::prelude::*;

    fn fact() -> impl Strategy<Value = Fact> {
        let rule = prop_oneof![
            Just(StanceRule::None),
            (0..Stance::ALL.len()).prop_map(|i| StanceRule::Fixed(Stance::ALL[i])),
            any::<i64>().prop_map(|effective| StanceRule::Impose { effective }),
            any::<i64>().prop_map(|effective| StanceRule::Ease { effective }),
        ];
        let list = || prop::collection::vec(any::<u32>(), 0..4).prop_map(Vec::into_boxed_slice);
        (
            (
                0..100u64,
                any::<u32>(),
                0..Kind::ALL.len(),
                0..4usize,
                any::<i64>(),
                0..4usize,
            ),
            (
                rule,
                prop::option::of(0..QuadClass::ALL.len()),
                -10.0..10.0f64,
            ),
            (list(), list(), list()),
        )
            .prop_map(
                |(
                    (known_from, timeline, kind, modality, valid, precision),
                    (rule, quad, goldstein),
                    (actors, targets, issues),
                )| Fact {
                    known_from,
                    timeline,
                    kind: Kind::ALL[kind],
                    modality: [
                        Modality::Occurred,
                        Modality::Planned,
                        Modality::Hypothetical,
                        Modality::Denied,
                    ][modality],
                    valid,
                    precision: [
                        Precision::Year,
                        Precision::Month,
                        Precision::Day,
                        Precision::Instant,
                    ][precision],
                    rule,
                    quad: quad.map(|q| QuadClass::ALL[q]),
                    goldstein,
                    actors,
                    targets,
                    issues,
                },
            )
    }

    fn entry() -> impl Strategy<Value = Entry> {
        let recorded_at = (0..1_000_000_000i64).prop_map(Timestamp::from_unix_micros);
        prop_oneof![
            recorded_at
                .clone()
                .prop_map(|recorded_at| Entry::Bookkeeping { recorded_at }),
            (
                recorded_at,
                any::<[u8; 16]>(),
                prop::collection::vec(fact(), 1..4),
                prop::option::of(1..100u64)
            )
                .prop_map(|(recorded_at, id, mut versions, retracted_at)| {
                    // Each version is known from a later position than the one before.
                    let mut from = 0;
                    for f in &mut versions {
                        from += f.known_from + 1;
                        f.known_from = from;
                    }
                    Entry::Act(Act {
                        id: EventId::from_bytes(id),
                        recorded_at,
                        versions,
                        retracted_at,
                    })
                }),
        ]
    }

    proptest! {
        /// A page read as stored gives back every entry as written, and every act's head as the
        /// decoded act gives it, at any position known; cut short, it is refused as damaged.
        #[test]
        fn a_stored_page_reads_as_the_entries_written(
            entries in prop::collection::vec(entry(), 0..40),
            known_at in prop::collection::vec(0..400u64, 4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = Vec::new();
            entries.encode(&mut bytes);
            let stored = StoredPage::of(bytes.clone()).expect("a whole page");
            prop_assert_eq!(stored.entries().expect("entries"), entries.clone());
            let page = PageRef::Held(Arc::new(Held::Stored(stored)));
            for (i, e) in entries.iter().enumerate() {
                for k in known_at.iter().copied().chain([Position::MAX]) {
                    let expected = match e {
                        Entry::Act(act) => Some(act.head(k)),
                        Entry::Bookkeeping { .. } => None,
                    };
                    prop_assert_eq!(page.act_head(i, k), Ok(expected));
                }
                let id = match e {
                    Entry::Act(act) => Some(act.id),
                    Entry::Bookkeeping { .. } => None,
                };
                prop_assert_eq!(page.act_id(i), Ok(id));
                prop_assert_eq!(page.read(i, Entry::clone), Ok(Some(e.clone())));
            }
            prop_assert_eq!(page.read(entries.len(), Entry::clone), Ok(None));
            if !bytes.is_empty() {
                bytes.truncate(cut.index(bytes.len()));
                // A cut at an entry's end leaves a shorter page, which is whole.
                if let Some(short) = StoredPage::of(bytes) {
                    let read = short.entries().expect("entries of a whole page");
                    prop_assert!(read.len() < entries.len());
                    prop_assert_eq!(&read[..], &entries[..read.len()]);
                }
            }
        }
    }
}
