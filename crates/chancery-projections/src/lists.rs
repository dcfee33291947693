//! Sorted lists kept on disk in blocks: every list the projections keep (a position's acts by
//! valid time, a pair's, the chronology) is stored a block of up to [`BLOCK`] items per key (the
//! block in a value file, its key and location in sled: `values.rs`), and is read a block at a
//! time through a bounded cache. Blocks changed since the last checkpoint stay in memory (the
//! overlay) until the checkpoint writes them all.
//!
//! A block's key is its list's prefix and the sort key of its lower bound: the first block of a
//! list has the empty bound, a block split off another has its first item's key. Keys never
//! change, so an item always belongs to the block with the greatest bound at or below its key,
//! whether that block is in the overlay or on disk.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::ops::{Bound, Deref};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::error::{ProjectionError, storage};
use crate::values::{Disk, Encode, Pending};

/// Items per block, at most twice this before a block splits.
pub const BLOCK: usize = 64;

/// Lists whose last block is kept, at most: past it they are all forgotten, and looked up again.
const MAX_TAILS: usize = 1 << 20;

/// Lists whose block keys are kept in memory (a generation of the directories' cache).
const DIRECTORY_GENERATION: usize = 2_048;

/// The keys of every block of one list, the overlay's and sled's, in order.
type Directory = RwLock<BTreeSet<BlockKey>>;

/// Bytes a block's key holds at most: a list's prefix (13 at most) and an item's sort key (27
/// at most), or the 40 bytes past every sort key that find a list's last block.
const KEY_BYTES: usize = 63;

/// A block's key (or a list's prefix), held inline: the overlay, the directories and the caches
/// are searched for every item applied, and keys on the heap cost a cache miss per comparison.
/// It compares, hashes and borrows as its bytes, so maps of it are searched with a `&[u8]`.
#[derive(Clone, Copy)]
pub struct BlockKey {
    len: u8,
    bytes: [u8; KEY_BYTES],
}

impl BlockKey {
    /// The key of these bytes; more than [`KEY_BYTES`] of them is an error.
    pub fn of(key: &[u8]) -> Result<BlockKey, ProjectionError> {
        let mut bytes = [0u8; KEY_BYTES];
        bytes
            .get_mut(..key.len())
            .ok_or_else(|| {
                ProjectionError::Corrupt(format!(
                    "a key of the projections has {} bytes, more than {KEY_BYTES}",
                    key.len()
                ))
            })?
            .copy_from_slice(key);
        Ok(BlockKey {
            len: u8::try_from(key.len()).unwrap_or(u8::MAX),
            bytes,
        })
    }

    /// The prefix of the list `list` in the keyspace `space`, as a key.
    fn in_space(space: u8, list: &[u8]) -> Result<BlockKey, ProjectionError> {
        let mut key = BlockKey::of(&[space])?;
        let end = 1 + list.len();
        key.bytes
            .get_mut(1..end)
            .ok_or_else(|| {
                ProjectionError::Corrupt(format!(
                    "a list's prefix has {end} bytes, more than {KEY_BYTES}"
                ))
            })?
            .copy_from_slice(list);
        key.len = u8::try_from(end).unwrap_or(u8::MAX);
        Ok(key)
    }
}

impl Deref for BlockKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Borrow<[u8]> for BlockKey {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for BlockKey {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for BlockKey {}

impl PartialOrd for BlockKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BlockKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl Hash for BlockKey {
    fn hash<S: Hasher>(&self, state: &mut S) {
        (**self).hash(state);
    }
}

impl std::fmt::Debug for BlockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockKey({:?})", &**self)
    }
}

/// Reads back what [`Item::encode`] and [`Header::encode`] write.
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Passes over `n` bytes.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes = self.bytes.get(n..)?;
        Some(())
    }

    pub fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    pub fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }

    pub fn f64(&mut self) -> Option<f64> {
        self.take().map(f64::from_le_bytes)
    }
}

/// An item of a list: how it sorts, and how it is stored.
pub trait Item: Clone + PartialEq + std::fmt::Debug {
    /// What items sort by.
    type Key: Ord + Copy + std::fmt::Debug;
    fn key(&self) -> Self::Key;
    /// Bytes that sort as the keys do.
    fn key_bytes(key: &Self::Key, out: &mut Vec<u8>);
    fn encode(&self, out: &mut Vec<u8>);
    /// The bytes [`Item::encode`] writes.
    fn encoded_len(&self) -> usize;
    fn decode(d: &mut Decoder<'_>) -> Option<Self>;
}

/// What a block carries besides its items (the state at its start, for position lists).
pub trait Header: Clone + PartialEq + Default + std::fmt::Debug {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(d: &mut Decoder<'_>) -> Option<Self>;
}

impl Header for () {
    fn encode(&self, _: &mut Vec<u8>) {}
    fn decode(_: &mut Decoder<'_>) -> Option<Self> {
        Some(())
    }
}

/// A header that is the fold of every item before its block (a position's run state): a block
/// then knows the fold of its own items too, which is where a question about the present ends.
pub trait Fold<I>: Header {
    /// The fold carried over `items`, in order.
    fn fold(self, items: &[I]) -> Self;
}

#[derive(Debug, Clone)]
pub struct Block<I, H> {
    pub header: H,
    pub items: Vec<I>,
    /// The header folded over every item, made on the first question (see [`Block::folded`])
    /// and kept while the block is held: every change goes through `Lists::block_mut`, which
    /// clears it.
    folded: OnceLock<H>,
}

impl<I: PartialEq, H: PartialEq> PartialEq for Block<I, H> {
    /// What is stored: the header and the items (a fold made or not is the same block).
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header && self.items == other.items
    }
}

impl<I, H> Block<I, H> {
    pub fn new(header: H, items: Vec<I>) -> Self {
        Block {
            header,
            items,
            folded: OnceLock::new(),
        }
    }
}

impl<I, H: Fold<I>> Block<I, H> {
    /// The header folded over every item of the block: the state after its last item. Made once
    /// per block held (a block read again from disk makes it again).
    pub fn folded(&self) -> &H {
        self.folded
            .get_or_init(|| self.header.clone().fold(&self.items))
    }
}

impl<I: Item, H: Header> Encode for Block<I, H> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.header.encode(out);
        out.extend_from_slice(
            &u32::try_from(self.items.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        for item in &self.items {
            item.encode(out);
        }
    }

    fn encoded_len(&self) -> usize {
        let mut header = Vec::new();
        self.header.encode(&mut header);
        header.len() + 4 + self.items.iter().map(Item::encoded_len).sum::<usize>()
    }
}

impl<I: Item, H: Header> Block<I, H> {
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut d = Decoder::new(bytes);
        let header = H::decode(&mut d)?;
        let n = d.u32()?;
        let mut items = Vec::with_capacity(usize::try_from(n).ok()?.min(4 * BLOCK));
        for _ in 0..n {
            items.push(I::decode(&mut d)?);
        }
        d.is_empty().then(|| Block::new(header, items))
    }
}

fn key_of<I: Item>(item: &I) -> Vec<u8> {
    let mut k = Vec::with_capacity(32);
    I::key_bytes(&item.key(), &mut k);
    k
}

fn join(prefix: &[u8], sort_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + sort_key.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(sort_key);
    k
}

/// A bounded cache of clean blocks: two generations, the older dropped whole when the newer
/// fills, so a block in use stays and memory stays under two generations.
pub(crate) struct Cache<V, K = Vec<u8>> {
    young: HashMap<K, Arc<V>, foldhash::fast::RandomState>,
    old: HashMap<K, Arc<V>, foldhash::fast::RandomState>,
    generation: usize,
}

impl<V, K: Hash + Eq + Borrow<[u8]>> Cache<V, K> {
    pub(crate) fn new(generation: usize) -> Self {
        Self {
            young: HashMap::default(),
            old: HashMap::default(),
            generation: generation.max(1),
        }
    }

    pub(crate) fn get(&mut self, key: &[u8]) -> Option<Arc<V>> {
        if let Some(v) = self.young.get(key) {
            return Some(Arc::clone(v));
        }
        let (k, v) = self.old.remove_entry(key)?;
        self.put(k, Arc::clone(&v));
        Some(v)
    }

    pub(crate) fn put(&mut self, key: K, value: Arc<V>) {
        if self.young.len() >= self.generation {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        self.young.remove(key);
        self.old.remove(key);
    }

    pub(crate) fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }

    /// Drops every entry whose key `drop` picks.
    pub(crate) fn remove_where(&mut self, drop: impl Fn(&[u8]) -> bool) {
        self.young.retain(|k, _| !drop(k.borrow()));
        self.old.retain(|k, _| !drop(k.borrow()));
    }
}

/// The blocks changed since the last checkpoint. Every item applied finds its block here, so
/// blocks are found by key with one hash lookup rather than a search of an ordered map; walks in
/// key order go through `keys`, which changes only when a block is first changed or made.
struct Overlay<I, H> {
    blocks: HashMap<BlockKey, Arc<Block<I, H>>, foldhash::fast::RandomState>,
    keys: BTreeSet<BlockKey>,
}

impl<I, H> Overlay<I, H> {
    fn new() -> Self {
        Self {
            blocks: HashMap::default(),
            keys: BTreeSet::new(),
        }
    }

    fn get(&self, key: &[u8]) -> Option<&Arc<Block<I, H>>> {
        self.blocks.get(key)
    }

    fn insert(&mut self, key: BlockKey, block: Arc<Block<I, H>>) {
        self.keys.insert(key);
        self.blocks.insert(key, block);
    }

    /// The blocks whose keys are within the bounds, in key order.
    fn range<'a>(
        &'a self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> impl DoubleEndedIterator<Item = (&'a BlockKey, &'a Arc<Block<I, H>>)> + use<'a, I, H> {
        self.keys
            .range::<[u8], _>((lower, upper))
            .filter_map(|key| self.blocks.get(key).map(|block| (key, block)))
    }

    fn len(&self) -> usize {
        self.blocks.len()
    }

    fn clear(&mut self) {
        self.blocks.clear();
        self.keys.clear();
    }
}

/// Every list of one kind: the blocks changed since the last checkpoint, and a cache of the rest.
pub struct Lists<I, H> {
    /// The first byte of every key of this kind of list.
    space: u8,
    overlay: Overlay<I, H>,
    /// Where [`Lists::insert`] writes an item's full key.
    key_buffer: Vec<u8>,
    cache: Mutex<Cache<Block<I, H>, BlockKey>>,
    /// Each list's last block, by the list's prefix: an item at or past its bound goes there with
    /// no lookup, and most items come after every other. Looked up for every item applied, so
    /// hashed fast (the keys are the projections' own, not a caller's).
    tails: HashMap<BlockKey, BlockKey, foldhash::fast::RandomState>,
    /// The block keys of recently read lists, by prefix, so that finding a list's blocks costs no
    /// sled range scan (a position read walks hundreds of lists). The chronology, one list as
    /// long as history, has none: it is found in sled.
    directories: Mutex<Cache<Directory, BlockKey>>,
}

impl<I: Item, H: Header> Lists<I, H> {
    pub fn new(space: u8, cached_blocks: usize) -> Self {
        Self {
            space,
            overlay: Overlay::new(),
            key_buffer: Vec::with_capacity(KEY_BYTES),
            cache: Mutex::new(Cache::new(cached_blocks / 2)),
            tails: HashMap::default(),
            directories: Mutex::new(Cache::new(DIRECTORY_GENERATION)),
        }
    }

    /// The directory of the list with `prefix`, read from sled and the overlay once and then
    /// kept up to date; `None` for the chronology.
    fn directory(
        &self,
        disk: &Disk,
        prefix: &[u8],
    ) -> Result<Option<Arc<Directory>>, ProjectionError> {
        if prefix.len() <= 1 {
            return Ok(None);
        }
        if let Some(found) = self.directories.lock().ok().and_then(|mut d| d.get(prefix)) {
            return Ok(Some(found));
        }
        let mut keys = BTreeSet::new();
        for key in disk.index().scan_prefix(prefix).keys() {
            keys.insert(BlockKey::of(&key.map_err(storage)?)?);
        }
        keys.extend(
            self.overlay
                .keys
                .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|k| k.starts_with(prefix)),
        );
        let directory = Arc::new(RwLock::new(keys));
        if let Ok(mut directories) = self.directories.lock() {
            directories.put(BlockKey::of(prefix)?, Arc::clone(&directory));
        }
        Ok(Some(directory))
    }

    /// A block was made under `key` in the list with `prefix`: the list's directory, if one is
    /// kept, learns of it.
    fn new_block(&self, prefix: &[u8], key: BlockKey) {
        if let Some(directory) = self.directories.lock().ok().and_then(|mut d| d.get(prefix))
            && let Ok(mut keys) = directory.write()
        {
            keys.insert(key);
        }
    }

    /// The prefix of one list's keys.
    pub fn prefix(&self, list: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(list.len() + 2);
        p.push(self.space);
        p.extend_from_slice(list);
        p
    }

    /// The key of the block an item with `sort_key` belongs to, if the list has any block.
    fn block_key_for(
        &self,
        disk: &Disk,
        prefix: &[u8],
        sort_key: &[u8],
    ) -> Result<Option<BlockKey>, ProjectionError> {
        let full = join(prefix, sort_key);
        let up_to_full = (Bound::Unbounded, Bound::Included(full.as_slice()));
        if let Some(directory) = self.directory(disk, prefix)? {
            let keys = directory
                .read()
                .map_err(|_| ProjectionError::Corrupt("a directory lock poisoned".into()))?;
            return Ok(keys.range::<[u8], _>(up_to_full).next_back().copied());
        }
        let in_overlay = self
            .overlay
            .keys
            .range::<[u8], _>((Bound::Included(prefix), Bound::Included(full.as_slice())))
            .next_back()
            .copied();
        let stored = match disk
            .index()
            .range(prefix.to_vec()..=full)
            .next_back()
            .transpose()
            .map_err(storage)?
        {
            Some((k, _)) => Some(BlockKey::of(&k)?),
            None => None,
        };
        Ok(match (in_overlay, stored) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        })
    }

    /// A block by its key: from the overlay, the cache, or the disk.
    fn block(&self, disk: &Disk, key: &[u8]) -> Result<Option<Arc<Block<I, H>>>, ProjectionError> {
        if let Some(block) = self.overlay.get(key) {
            return Ok(Some(Arc::clone(block)));
        }
        stored_block(&self.cache, disk, key)
    }

    /// A block to change: moved into the overlay (out of the cache) if it is not there yet.
    fn block_mut(
        &mut self,
        disk: &Disk,
        key: BlockKey,
    ) -> Result<&mut Block<I, H>, ProjectionError> {
        // One lookup in the overlay: most blocks changed are already there.
        let block = match self.overlay.blocks.entry(key) {
            Entry::Occupied(held) => held.into_mut(),
            Entry::Vacant(place) => {
                let block = match stored_block(&self.cache, disk, &key)? {
                    Some(b) => b,
                    None => {
                        forget_directories_of(&self.directories, &key);
                        Arc::new(Block::new(H::default(), Vec::new()))
                    }
                };
                if let Ok(mut cache) = self.cache.lock() {
                    cache.remove(&key);
                }
                self.overlay.keys.insert(key);
                place.insert(block)
            }
        };
        let block = Arc::make_mut(block);
        // The caller changes the block: a fold made of it no longer holds.
        block.folded = OnceLock::new();
        Ok(block)
    }

    /// A list's last block, looked up once and then kept.
    fn tail(&mut self, disk: &Disk, prefix: &[u8]) -> Result<BlockKey, ProjectionError> {
        if let Some(tail) = self.tails.get(prefix) {
            return Ok(*tail);
        }
        // Past any sort key: the last block of the list.
        let tail = match self.block_key_for(disk, prefix, &[0xff; 40])? {
            Some(tail) => tail,
            None => BlockKey::of(prefix)?,
        };
        if self.tails.len() >= MAX_TAILS {
            self.tails.clear();
        }
        self.tails.insert(BlockKey::of(prefix)?, tail);
        Ok(tail)
    }

    /// Whether `block` is its list's last block.
    pub fn is_tail(&mut self, disk: &Disk, list: &[u8], block: &[u8]) -> bool {
        BlockKey::in_space(self.space, list)
            .and_then(|prefix| self.tail(disk, &prefix))
            .is_ok_and(|t| *t == *block)
    }

    /// Inserts an item where it sorts (an equal item already there is kept as it is); answers
    /// the key of the block that holds it.
    pub fn insert(
        &mut self,
        disk: &Disk,
        list: &[u8],
        item: I,
    ) -> Result<BlockKey, ProjectionError> {
        // The item's full key, its list's prefix then its sort key, in one buffer kept from one
        // insert to the next, so that applying an item allocates nothing for its key.
        let mut full = std::mem::take(&mut self.key_buffer);
        full.clear();
        full.push(self.space);
        full.extend_from_slice(list);
        let prefix_len = full.len();
        I::key_bytes(&item.key(), &mut full);
        let placed = self.insert_at(disk, &full, prefix_len, item);
        self.key_buffer = full;
        placed
    }

    /// [`Lists::insert`] of an item whose full key is `full`, its list's prefix the first
    /// `prefix_len` bytes.
    fn insert_at(
        &mut self,
        disk: &Disk,
        full: &[u8],
        prefix_len: usize,
        item: I,
    ) -> Result<BlockKey, ProjectionError> {
        let key = item.key();
        let (prefix, sort_key) = full.split_at(prefix_len);
        let tail = self.tail(disk, prefix)?;
        let block_key = if full >= &*tail {
            tail
        } else {
            match self.block_key_for(disk, prefix, sort_key)? {
                Some(key) => key,
                None => BlockKey::of(prefix)?,
            }
        };
        let block = self.block_mut(disk, block_key)?;
        // Most items sort after every other (history is recorded roughly in valid-time order):
        // they go at the end with no search.
        let at = if block.items.last().is_none_or(|last| last.key() < key) {
            block.items.len()
        } else {
            block.items.partition_point(|i| i.key() < key)
        };
        if block.items.get(at).is_some_and(|i| i.key() == key) {
            return Ok(block_key);
        }
        block.items.insert(at, item);
        if block.items.len() > 2 * BLOCK {
            let right: Vec<I> = block.items.split_off(BLOCK);
            let right_first = right.first().map(key_of).unwrap_or_default();
            let right_key = BlockKey::of(&join(prefix, &right_first))?;
            let header = block.header.clone();
            self.overlay
                .insert(right_key, Arc::new(Block::new(header, right)));
            self.new_block(prefix, right_key);
            if tail == block_key {
                self.tails.insert(BlockKey::of(prefix)?, right_key);
            }
            if *sort_key >= *right_first {
                return Ok(right_key);
            }
        }
        Ok(block_key)
    }

    /// Changes the item with `key` (in place: its key must stay); answers the key of its block,
    /// or `None` if it is not there.
    pub fn update(
        &mut self,
        disk: &Disk,
        list: &[u8],
        key: &I::Key,
        change: impl FnOnce(&mut I),
    ) -> Result<Option<BlockKey>, ProjectionError> {
        let prefix = self.prefix(list);
        let mut sort_key = Vec::with_capacity(32);
        I::key_bytes(key, &mut sort_key);
        let Some(block_key) = self.block_key_for(disk, &prefix, &sort_key)? else {
            return Ok(None);
        };
        let present = self
            .block(disk, &block_key)?
            .is_some_and(|b| b.items.iter().any(|i| i.key() == *key));
        if !present {
            return Ok(None);
        }
        let block = self.block_mut(disk, block_key)?;
        if let Some(item) = block.items.iter_mut().find(|i| i.key() == *key) {
            change(item);
        }
        Ok(Some(block_key))
    }

    /// The blocks of a list from the one holding `sort_key` (or the first, or with `backward`
    /// the last) on, each with its key, read as the walk goes.
    pub fn blocks<'a>(
        &'a self,
        disk: &Disk,
        list: &[u8],
        from: Option<&[u8]>,
        backward: bool,
    ) -> Result<BlockIter<'a, I, H>, ProjectionError> {
        let prefix = self.prefix(list);
        let start = match from {
            Some(sort_key) => self.block_key_for(disk, &prefix, sort_key)?,
            None => None,
        };
        if let Some(directory) = self.directory(disk, &prefix)? {
            let cursor = match (start, backward) {
                (Some(start), _) => Bound::Included(start),
                (None, false) => Bound::Included(BlockKey::of(&prefix)?),
                (None, true) => Bound::Unbounded,
            };
            return Ok(BlockIter {
                lists: self,
                walk: Walk::Directory {
                    disk: disk.clone(),
                    directory,
                    cursor,
                    backward,
                },
            });
        }
        let (overlay, stored): (OverlayKeys<'a, I, H>, StoredBlocks) = match (&start, backward) {
            (Some(start), false) => (
                Box::new(
                    self.overlay
                        .range(Bound::Included(&**start), Bound::Unbounded),
                ),
                Box::new(disk.index().range(start.to_vec()..)),
            ),
            (Some(start), true) => (
                Box::new(
                    self.overlay
                        .range(Bound::Unbounded, Bound::Included(&**start))
                        .rev(),
                ),
                Box::new(disk.index().range(..=start.to_vec()).rev()),
            ),
            (None, false) => (
                Box::new(
                    self.overlay
                        .range(Bound::Included(prefix.as_slice()), Bound::Unbounded),
                ),
                Box::new(disk.index().range(prefix.clone()..)),
            ),
            (None, true) => {
                let mut end = prefix.clone();
                end.push(0xff);
                end.extend_from_slice(&[0xff; 40]);
                (
                    Box::new(
                        self.overlay
                            .range(Bound::Unbounded, Bound::Excluded(end.as_slice()))
                            .rev(),
                    ),
                    Box::new(disk.index().range(..end).rev()),
                )
            }
        };
        Ok(BlockIter {
            lists: self,
            walk: Walk::Merged {
                disk: disk.clone(),
                prefix,
                overlay: overlay.peekable(),
                stored: stored.peekable(),
                backward,
            },
        })
    }

    /// Sets a block's header (marking it changed).
    pub fn set_header(
        &mut self,
        disk: &Disk,
        key: BlockKey,
        header: H,
    ) -> Result<(), ProjectionError> {
        self.block_mut(disk, key)?.header = header;
        Ok(())
    }

    /// The changed blocks, for a checkpoint to write. They stay changed until
    /// [`Lists::saved`]: a checkpoint that fails leaves them here, to be written by the next one.
    pub fn pending_writes(&self) -> impl Iterator<Item = Pending<'_>> {
        self.overlay
            .range(Bound::Unbounded, Bound::Unbounded)
            .map(|(key, block)| (key.to_vec(), &**block as &dyn Encode))
    }

    /// The checkpoint holding [`Lists::pending_writes`] is on disk: the changed blocks count as
    /// clean, and stay cached, since a block just written (a list's last above all) is likely
    /// read again soon.
    pub fn saved(&mut self) {
        let blocks = std::mem::take(&mut self.overlay.blocks);
        self.overlay.keys.clear();
        if let Ok(mut cache) = self.cache.lock() {
            for (key, block) in blocks {
                cache.put(key, block);
            }
        }
    }

    /// Forgets every cached block (after the tree was cleared).
    pub fn forget(&mut self) {
        self.overlay.clear();
        self.tails.clear();
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
        if let Ok(mut directories) = self.directories.lock() {
            directories.clear();
        }
    }

    /// Whether blocks changed since the last checkpoint.
    pub fn dirty_blocks(&self) -> usize {
        self.overlay.len()
    }
}

/// A block that is not in the overlay: from the cache, or read from the disk and cached.
fn stored_block<I: Item, H: Header>(
    cache: &Mutex<Cache<Block<I, H>, BlockKey>>,
    disk: &Disk,
    key: &[u8],
) -> Result<Option<Arc<Block<I, H>>>, ProjectionError> {
    if let Some(block) = cache.lock().ok().and_then(|mut c| c.get(key)) {
        return Ok(Some(block));
    }
    let Some(bytes) = disk.get(key)? else {
        return Ok(None);
    };
    let block = Arc::new(Block::decode(&bytes).ok_or_else(|| {
        ProjectionError::Corrupt("a block of the projections is malformed".into())
    })?);
    if let Ok(mut cache) = cache.lock() {
        cache.put(BlockKey::of(key)?, Arc::clone(&block));
    }
    Ok(Some(block))
}

/// A block was made under `key`, of a list not known here: every directory it could belong to
/// goes.
fn forget_directories_of(directories: &Mutex<Cache<Directory, BlockKey>>, key: &[u8]) {
    if let Ok(mut directories) = directories.lock() {
        directories.remove_where(|prefix| key.starts_with(prefix));
    }
}

type OverlayKeys<'a, I, H> = Box<dyn Iterator<Item = (&'a BlockKey, &'a Arc<Block<I, H>>)> + 'a>;
type StoredBlocks = Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>>;
/// A block of a list walk, with its key.
type Walked<I, H> = Result<(BlockKey, Arc<Block<I, H>>), ProjectionError>;

/// The blocks of a list, read one at a time.
pub struct BlockIter<'a, I, H> {
    lists: &'a Lists<I, H>,
    walk: Walk<'a, I, H>,
}

enum Walk<'a, I, H> {
    /// Through the list's directory, each block from the overlay, the cache or the disk; `cursor`
    /// bounds the next key (the start, then past the key last given).
    Directory {
        disk: Disk,
        directory: Arc<Directory>,
        cursor: Bound<BlockKey>,
        backward: bool,
    },
    /// The overlay's blocks and sled's merged in key order, the overlay's copy winning where both
    /// hold a block (the chronology, which keeps no directory).
    Merged {
        disk: Disk,
        prefix: Vec<u8>,
        overlay: std::iter::Peekable<OverlayKeys<'a, I, H>>,
        stored: std::iter::Peekable<StoredBlocks>,
        backward: bool,
    },
}

impl<I: Item, H: Header> Iterator for BlockIter<'_, I, H> {
    type Item = Walked<I, H>;

    fn next(&mut self) -> Option<Self::Item> {
        let lists = self.lists;
        match &mut self.walk {
            Walk::Directory {
                disk,
                directory,
                cursor,
                backward,
            } => {
                let key = {
                    let Ok(keys) = directory.read() else {
                        return Some(Err(ProjectionError::Corrupt(
                            "a directory lock poisoned".into(),
                        )));
                    };
                    let mut range = if *backward {
                        keys.range((Bound::Unbounded, *cursor))
                    } else {
                        keys.range((*cursor, Bound::Unbounded))
                    };
                    let found = if *backward {
                        range.next_back()
                    } else {
                        range.next()
                    };
                    *found?
                };
                *cursor = Bound::Excluded(key);
                Some(match lists.block(disk, &key) {
                    Ok(Some(block)) => Ok((key, block)),
                    Ok(None) => Err(ProjectionError::Corrupt(
                        "a block of the projections' directory is missing".into(),
                    )),
                    Err(e) => Err(e),
                })
            }
            Walk::Merged {
                disk,
                prefix,
                overlay,
                stored,
                backward,
            } => merged_next(lists, disk, prefix, overlay, stored, *backward),
        }
    }
}

fn merged_next<I: Item, H: Header>(
    lists: &Lists<I, H>,
    disk: &Disk,
    prefix: &[u8],
    overlay: &mut std::iter::Peekable<OverlayKeys<'_, I, H>>,
    stored: &mut std::iter::Peekable<StoredBlocks>,
    backward: bool,
) -> Option<Walked<I, H>> {
    let overlay_key = overlay
        .peek()
        .map(|(k, _)| **k)
        .filter(|k| k.starts_with(prefix));
    let stored_key = match stored.peek() {
        Some(Ok((k, _))) if k.starts_with(prefix) => Some(k.to_vec()),
        Some(Ok(_)) | None => None,
        Some(Err(_)) => {
            return stored.next().and_then(|r| r.err()).map(|e| Err(storage(e)));
        }
    };
    let take_overlay = match (&overlay_key, &stored_key) {
        (None, None) => return None,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (Some(a), Some(b)) => {
            let (a, b) = (&**a, b.as_slice());
            if a == b {
                // The overlay's copy is the newer one.
                stored.next();
                true
            } else if backward {
                a > b
            } else {
                a < b
            }
        }
    };
    if take_overlay {
        let (key, block) = overlay.next()?;
        return Some(Ok((*key, Arc::clone(block))));
    }
    let (key, location) = match stored.next()? {
        Ok(kv) => kv,
        Err(e) => return Some(Err(storage(e))),
    };
    let key = match BlockKey::of(&key) {
        Ok(key) => key,
        Err(e) => return Some(Err(e)),
    };
    if let Some(block) = lists.cache.lock().ok().and_then(|mut c| c.get(&key)) {
        return Some(Ok((key, block)));
    }
    let bytes = match disk.read(&key, &location) {
        Ok(bytes) => bytes,
        Err(e) => return Some(Err(e)),
    };
    let Some(block) = Block::decode(&bytes) else {
        return Some(Err(ProjectionError::Corrupt(
            "a block of the projections is malformed".into(),
        )));
    };
    let block = Arc::new(block);
    if let Ok(mut cache) = lists.cache.lock() {
        cache.put(key, Arc::clone(&block));
    }
    Some(Ok((key, block)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// A map of block keys is searched with byte slices: the keys must order, compare and
        /// bound ranges exactly as their bytes do.
        #[test]
        fn block_keys_order_and_find_as_their_bytes(
            keys in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..KEY_BYTES), 1..40),
            probe in proptest::collection::vec(0u8..4, 0..KEY_BYTES),
        ) {
            let inline: BTreeSet<BlockKey> =
                keys.iter().map(|k| BlockKey::of(k).unwrap()).collect();
            let heap: BTreeSet<Vec<u8>> = keys.iter().cloned().collect();
            let inline_in_order: Vec<Vec<u8>> = inline.iter().map(|k| k.to_vec()).collect();
            prop_assert_eq!(&inline_in_order, &heap.iter().cloned().collect::<Vec<_>>());
            let at_or_below = inline
                .range::<[u8], _>((Bound::Unbounded, Bound::Included(probe.as_slice())))
                .next_back()
                .map(|k| k.to_vec());
            prop_assert_eq!(at_or_below, heap.range(..=probe.clone()).next_back().cloned());
            prop_assert_eq!(inline.contains(probe.as_slice()), heap.contains(&probe));
        }
    }

    proptest! {
        /// The overlay is found by hash and walked through its key set: a walk over any bounds,
        /// either way, gives the blocks an ordered map of them gives, each with its own block.
        #[test]
        fn the_overlay_walks_its_blocks_in_key_order(
            keys in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..8), 0..40),
            low in proptest::collection::vec(0u8..4, 0..8),
            high in proptest::collection::vec(0u8..4, 0..8),
        ) {
            let mut overlay: Overlay<u8, ()> = Overlay::new();
            let mut ordered: BTreeMap<Vec<u8>, u8> = BTreeMap::new();
            for (n, key) in keys.iter().enumerate() {
                let mark = u8::try_from(n).unwrap();
                overlay.insert(BlockKey::of(key).unwrap(), Arc::new(Block::new((), vec![mark])));
                ordered.insert(key.clone(), mark);
            }
            prop_assert_eq!(overlay.len(), ordered.len());
            let bounds = (Bound::Included(low.as_slice()), Bound::Excluded(high.as_slice()));
            if low <= high {
                let walked: Vec<(Vec<u8>, u8)> = overlay
                    .range(bounds.0, bounds.1)
                    .map(|(k, b)| (k.to_vec(), b.items[0]))
                    .collect();
                let expected: Vec<(Vec<u8>, u8)> = ordered
                    .range::<[u8], _>(bounds)
                    .map(|(k, m)| (k.clone(), *m))
                    .collect();
                prop_assert_eq!(walked, expected);
            }
            let backward: Vec<Vec<u8>> = overlay
                .range(Bound::Unbounded, Bound::Included(high.as_slice()))
                .rev()
                .map(|(k, _)| k.to_vec())
                .collect();
            let expected: Vec<Vec<u8>> = ordered
                .range::<[u8], _>((Bound::Unbounded, Bound::Included(high.as_slice())))
                .rev()
                .map(|(k, _)| k.clone())
                .collect();
            prop_assert_eq!(backward, expected);
            for key in &keys {
                prop_assert_eq!(
                    overlay.get(key).map(|b| b.items[0]),
                    ordered.get(key).copied()
                );
            }
        }
    }

    #[test]
    fn a_list_prefix_in_its_space_is_the_space_then_the_list() {
        let key = BlockKey::in_space(b'P', &[1, 2, 3]).unwrap();
        assert_eq!(&*key, &[b'P', 1, 2, 3]);
        assert!(BlockKey::in_space(b'P', &[0; KEY_BYTES]).is_err());
    }

    #[test]
    fn a_key_longer_than_a_block_key_holds_is_an_error() {
        assert!(BlockKey::of(&[7; KEY_BYTES]).is_ok());
        assert!(matches!(
            BlockKey::of(&[7; KEY_BYTES + 1]),
            Err(ProjectionError::Corrupt(_))
        ));
    }
}
