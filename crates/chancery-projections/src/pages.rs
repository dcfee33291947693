//! What the projections keep of each position of the log (an act's facts and every version of
//! them, or when a bookkeeping event was recorded), in pages of [`PAGE`] positions on disk. Pages
//! changed since the last checkpoint stay in memory until it writes them; the rest are read
//! through a bounded cache.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chancery_domain::{EventId, Position, Timestamp};

use crate::error::ProjectionError;
use crate::facts::{self, Act, Entry};
use crate::lists::Cache;
use crate::lists::Decoder;
use crate::values::{Disk, Encode, Pending};

/// Positions per page.
pub const PAGE: u64 = 256;

/// The page of a position.
pub fn page_of(position: Position) -> u64 {
    (position - 1) / PAGE
}

pub fn page_key(page: u64) -> [u8; 9] {
    let mut k = [b'p'; 9];
    k[1..].copy_from_slice(&page.to_be_bytes());
    k
}

pub struct Pages {
    /// The last position held.
    head: Position,
    overlay: BTreeMap<u64, Arc<Vec<Entry>>>,
    cache: Mutex<Cache<Vec<Entry>>>,
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

    fn page(&self, disk: &Disk, page: u64) -> Result<Arc<Vec<Entry>>, ProjectionError> {
        if let Some(entries) = self.overlay.get(&page) {
            return Ok(Arc::clone(entries));
        }
        let key = page_key(page);
        if let Some(entries) = self.cache.lock().ok().and_then(|mut c| c.get(&key)) {
            return Ok(entries);
        }
        let mut entries = Vec::with_capacity(usize::try_from(PAGE).unwrap_or(256));
        if let Some(bytes) = disk.get(&key)? {
            let mut decoder = Decoder::new(&bytes);
            while !decoder.is_empty() {
                entries.push(decoder.entry().ok_or_else(|| {
                    ProjectionError::Corrupt(format!("page {page} of the projections is damaged"))
                })?);
            }
        }
        let entries = Arc::new(entries);
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(key.to_vec(), Arc::clone(&entries));
        }
        Ok(entries)
    }

    fn page_mut(&mut self, disk: &Disk, page: u64) -> Result<&mut Vec<Entry>, ProjectionError> {
        if !self.overlay.contains_key(&page) {
            let entries = self.page(disk, page)?;
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
        if position == 0 || position > self.head {
            return Ok(None);
        }
        let page = self.page(disk, page_of(position))?;
        let i = usize::try_from((position - 1) % PAGE).unwrap_or(usize::MAX);
        Ok(page.get(i).map(read))
    }

    /// The id of the act at `position`; `None` for any other entry.
    pub fn act_id(
        &self,
        disk: &Disk,
        position: Position,
    ) -> Result<Option<EventId>, ProjectionError> {
        Ok(self
            .read_entry(disk, position, |entry| match entry {
                Entry::Act(act) => Some(act.id),
                Entry::Bookkeeping { .. } => None,
            })?
            .flatten())
    }

    pub fn act(&self, disk: &Disk, position: Position) -> Result<Option<Act>, ProjectionError> {
        Ok(match self.entry(disk, position)? {
            Some(Entry::Act(a)) => Some(a),
            _ => None,
        })
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
        let i = usize::try_from((position - 1) % PAGE).unwrap_or(usize::MAX);
        match self.page_mut(disk, page_of(position))?.get_mut(i) {
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
                cache.put(page_key(page).to_vec(), entries);
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
