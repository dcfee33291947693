//! Posting lists: for each filter term (a timeline, a party, an issue, a kind), the positions of
//! the records that carry it, in blocks of up to [`BLOCK`] positions. Positions only grow, so a
//! list only ever grows at its end: the writer keeps each list's open block in memory and writes
//! it whole once per commit group, which costs one sled write per term a group touches rather than
//! one per record and term.
//!
//! The block size is a trade: sled keeps a page-table entry (about 200 bytes) per tree node, and a
//! node holds at most 16 keys, so resident memory grows with the number of blocks; a larger block
//! means fewer of them, but a longer value written for every group that touches its list. At 256
//! positions a 10M-event store's index is about 27,000 nodes instead of 96,000 at 64
//! (docs/benchmarks.md). Readers take blocks of any length: stores written with smaller blocks
//! keep them, and their lists go on in blocks of the current size.
//!
//! A block's key is its list's prefix and its first position (u64 BE), so a read from a position
//! seeks to the block holding it. Its value is the list's ordinal of its first entry (u64 BE),
//! then its first position (u64 BE), then the gaps to each next position (LEB128). The ordinal
//! makes a timeline's versions free: version `v` is entry `v - 1` of the timeline's list.
//!
//! As everywhere in the index, entries past the head a reader reads at are not there for it.

use std::collections::HashMap;

use chancery_domain::Position;
use chancery_store::StoreError;

use crate::reader::{corrupt, storage_error};

/// Positions per block.
pub const BLOCK: usize = 256;

/// A key and the value to write under it.
pub type Write = (Vec<u8>, Vec<u8>);

/// One block, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The list's ordinal of the first entry.
    pub ordinal: u64,
    pub positions: Vec<Position>,
}

impl Block {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.positions.len() * 2);
        out.extend_from_slice(&self.ordinal.to_be_bytes());
        let mut prev = 0;
        for (i, p) in self.positions.iter().enumerate() {
            if i == 0 {
                out.extend_from_slice(&p.to_be_bytes());
            } else {
                let mut gap = p - prev;
                loop {
                    let byte = (gap & 0x7f) as u8;
                    gap >>= 7;
                    if gap == 0 {
                        out.push(byte);
                        break;
                    }
                    out.push(byte | 0x80);
                }
            }
            prev = *p;
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Block> {
        let ordinal = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let first = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        let mut positions = Vec::with_capacity(bytes.len().saturating_sub(16).min(BLOCK) + 1);
        positions.push(first);
        let mut prev = first;
        let mut rest = &bytes[16..];
        while !rest.is_empty() {
            let mut gap = 0u64;
            let mut shift = 0;
            loop {
                let (&byte, tail) = rest.split_first()?;
                rest = tail;
                gap |= u64::from(byte & 0x7f).checked_shl(shift)?;
                if byte & 0x80 == 0 {
                    break;
                }
                shift += 7;
                if shift > 63 {
                    return None;
                }
            }
            prev = prev.checked_add(gap)?;
            positions.push(prev);
        }
        Some(Block { ordinal, positions })
    }
}

/// The key of a block: its list's prefix and its first position.
pub fn block_key(prefix: &[u8], first: Position) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&first.to_be_bytes());
    key
}

fn decode_block(key: &[u8], value: &[u8]) -> Result<Block, StoreError> {
    let block =
        Block::decode(value).ok_or_else(|| corrupt(None, "a posting block is malformed"))?;
    let first = crate::keys::u64_suffix(key);
    if first != block.positions.first().copied() {
        return Err(corrupt(None, "a posting block's key and content disagree"));
    }
    Ok(block)
}

/// The last block of a list, if it has any.
fn last_block(tree: &sled::Tree, prefix: &[u8]) -> Result<Option<Block>, StoreError> {
    match tree
        .scan_prefix(prefix)
        .next_back()
        .transpose()
        .map_err(storage_error)?
    {
        None => Ok(None),
        Some((k, v)) => decode_block(&k, &v).map(Some),
    }
}

/// The writer's open blocks, by list. Bounded: past [`Postings::MAX_OPEN`] lists (at most 8 MiB
/// of positions) it forgets them all and reads each again from sled when next appended to.
pub struct Postings {
    open: HashMap<Vec<u8>, Block>,
    /// Positions per block: [`BLOCK`], smaller in tests so that lists span many blocks.
    block: usize,
}

impl Default for Postings {
    fn default() -> Self {
        Self {
            open: HashMap::new(),
            block: BLOCK,
        }
    }
}

impl Postings {
    const MAX_OPEN: usize = 4_096;

    #[cfg(test)]
    fn with_block(block: usize) -> Self {
        Self {
            open: HashMap::new(),
            block,
        }
    }

    /// Appends positions (increasing) to lists, and answers the block writes that make it so.
    /// A position a list already holds (indexing a record again after a crash) is skipped.
    pub fn append(
        &mut self,
        tree: &sled::Tree,
        entries: &[(Vec<u8>, Position)],
    ) -> Result<Vec<Write>, StoreError> {
        if self.open.len() > Self::MAX_OPEN {
            self.open.clear();
        }
        let mut writes = Vec::new();
        let mut touched: Vec<Vec<u8>> = Vec::new();
        for (prefix, position) in entries {
            if !self.open.contains_key(prefix) {
                let block = last_block(tree, prefix)?.unwrap_or(Block {
                    ordinal: 0,
                    positions: Vec::new(),
                });
                self.open.insert(prefix.clone(), block);
            }
            let Some(block) = self.open.get_mut(prefix) else {
                continue;
            };
            if block.positions.last().is_some_and(|last| last >= position) {
                continue;
            }
            if block.positions.len() >= self.block {
                // A block filled by this group is written as it ends; the next starts after it.
                if let Some(i) = touched.iter().position(|t| t == prefix) {
                    touched.swap_remove(i);
                    writes.push((block_key(prefix, block.positions[0]), block.encode()));
                }
                *block = Block {
                    ordinal: block.ordinal + block.positions.len() as u64,
                    positions: Vec::with_capacity(self.block),
                };
            }
            block.positions.push(*position);
            if !touched.contains(prefix) {
                touched.push(prefix.clone());
            }
        }
        for prefix in touched {
            if let Some(block) = self.open.get(&prefix) {
                if let Some(first) = block.positions.first() {
                    writes.push((block_key(&prefix, *first), block.encode()));
                }
            }
        }
        Ok(writes)
    }

    /// Forgets every open block (after the tree is reopened).
    pub fn clear(&mut self) {
        self.open.clear();
    }
}

/// Positions of one list from `from` on (or back), none past `bound`, in order.
pub fn positions(
    tree: &sled::Tree,
    prefix: Vec<u8>,
    from: Position,
    backward: bool,
    bound: Position,
) -> impl Iterator<Item = Result<Position, StoreError>> + use<> {
    let start = block_key(&prefix, from.min(bound));
    // The block holding `from` starts at or before it.
    let holding = tree
        .range(block_key(&prefix, 0)..=start.clone())
        .next_back()
        .transpose()
        .map_err(storage_error);
    let first_key = match holding {
        Ok(Some((k, _))) => Ok(k.to_vec()),
        Ok(None) => Ok(block_key(&prefix, 0)),
        Err(e) => Err(e),
    };
    let blocks: Box<dyn Iterator<Item = Result<(sled::IVec, sled::IVec), sled::Error>>> =
        match &first_key {
            Err(_) => Box::new(std::iter::empty()),
            Ok(key) if backward => Box::new(tree.range(block_key(&prefix, 0)..=key.clone()).rev()),
            Ok(key) => Box::new(tree.range(key.clone()..=block_key(&prefix, bound))),
        };
    let failed = first_key.err();
    let decoded = blocks.map(|kv| {
        let (k, v) = kv.map_err(storage_error)?;
        decode_block(&k, &v)
    });
    failed.map(Err).into_iter().chain(
        decoded
            .flat_map(
                move |block| -> Box<dyn Iterator<Item = Result<Position, StoreError>>> {
                    match block {
                        Err(e) => Box::new(std::iter::once(Err(e))),
                        Ok(block) if backward => {
                            Box::new(block.positions.into_iter().rev().map(Ok))
                        }
                        Ok(block) => Box::new(block.positions.into_iter().map(Ok)),
                    }
                },
            )
            .filter(move |p| match p {
                Ok(p) => *p <= bound && if backward { *p <= from } else { *p >= from },
                Err(_) => true,
            }),
    )
}

/// How many entries of a list are at most `bound`: for a timeline's list, its version then.
pub fn count(tree: &sled::Tree, prefix: &[u8], bound: Position) -> Result<u64, StoreError> {
    let found = tree
        .range(block_key(prefix, 0)..=block_key(prefix, bound))
        .next_back()
        .transpose()
        .map_err(storage_error)?;
    match found {
        None => Ok(0),
        Some((k, v)) => {
            let block = decode_block(&k, &v)?;
            let within = block.positions.iter().filter(|p| **p <= bound).count() as u64;
            Ok(block.ordinal + within)
        }
    }
}

/// The entry of a list with ordinal `ordinal` (from 0), if it is at most `bound`: for a
/// timeline's list, the position of version `ordinal + 1`. Blocks are found by position, so this
/// searches positions for the block whose ordinals hold it.
pub fn nth(
    tree: &sled::Tree,
    prefix: &[u8],
    ordinal: u64,
    bound: Position,
) -> Result<Option<Position>, StoreError> {
    // The block starting at or before position `p`, if any.
    let block_at = |p: Position| -> Result<Option<Block>, StoreError> {
        match tree
            .range(block_key(prefix, 0)..=block_key(prefix, p))
            .next_back()
            .transpose()
            .map_err(storage_error)?
        {
            None => Ok(None),
            Some((k, v)) => decode_block(&k, &v).map(Some),
        }
    };
    // The smallest position whose block reaches past `ordinal`: binary search over positions.
    let (mut lo, mut hi) = (1, bound);
    let mut found: Option<Block> = None;
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        match block_at(mid)? {
            Some(block) if block.ordinal <= ordinal => {
                let end = block.ordinal + block.positions.len() as u64;
                if ordinal < end {
                    found = Some(block);
                    break;
                }
                lo = mid + 1;
            }
            // Before the list starts: later.
            None => lo = mid + 1,
            Some(_) => hi = mid - 1,
        }
    }
    Ok(found.and_then(|block| {
        let i = usize::try_from(ordinal - block.ordinal).ok()?;
        block.positions.get(i).copied().filter(|p| *p <= bound)
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tree() -> (tempfile::TempDir, sled::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, db.open_tree("t").unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Lists built a group at a time read back as the plain lists they are: forward and
        /// backward from any position, bounded by any head; counted; and entry by entry. Part
        /// way through, the writer starts again with another block size, as when a store written
        /// with smaller blocks is opened by a build with larger ones.
        #[test]
        fn lists_read_back_as_appended(
            gaps in prop::collection::vec((1u64..5, 0usize..3), 1..400),
            group in 1usize..80,
            from in 0u64..1200,
            bound in 0u64..1200,
            blocks in (1usize..40, 1usize..40),
            switch in 0usize..400,
        ) {
            let (_dir, tree) = tree();
            let prefixes = [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
            let mut model: [Vec<Position>; 3] = Default::default();
            let mut position = 0;
            let mut entries = Vec::new();
            for (gap, list) in gaps {
                position += gap;
                entries.push((prefixes[list].clone(), position));
                model[list].push(position);
            }
            let (before, after) = entries.split_at(switch.min(entries.len()));
            let mut postings = Postings::with_block(blocks.0);
            for chunk in before.chunks(group) {
                for (k, v) in postings.append(&tree, chunk).unwrap() {
                    tree.insert(k, v).unwrap();
                }
            }
            let mut postings = Postings::with_block(blocks.1);
            for chunk in after.chunks(group) {
                for (k, v) in postings.append(&tree, chunk).unwrap() {
                    tree.insert(k, v).unwrap();
                }
            }
            // Appending again what a list holds changes nothing (recovery does that).
            prop_assert!(postings.append(&tree, &entries).unwrap().is_empty());
            for (i, prefix) in prefixes.iter().enumerate() {
                let forward: Vec<Position> = positions(&tree, prefix.clone(), from, false, bound)
                    .collect::<Result<_, _>>()
                    .unwrap();
                let expected: Vec<Position> =
                    model[i].iter().copied().filter(|p| *p >= from && *p <= bound).collect();
                prop_assert_eq!(forward, expected);
                let backward: Vec<Position> = positions(&tree, prefix.clone(), from, true, bound)
                    .collect::<Result<_, _>>()
                    .unwrap();
                let expected: Vec<Position> = model[i]
                    .iter()
                    .rev()
                    .copied()
                    .filter(|p| *p <= from && *p <= bound)
                    .collect();
                prop_assert_eq!(backward, expected);
                let within: Vec<Position> =
                    model[i].iter().copied().filter(|p| *p <= bound).collect();
                prop_assert_eq!(count(&tree, prefix, bound).unwrap(), within.len() as u64);
                for (n, p) in within.iter().enumerate() {
                    prop_assert_eq!(nth(&tree, prefix, n as u64, bound).unwrap(), Some(*p));
                }
                prop_assert_eq!(nth(&tree, prefix, within.len() as u64, bound).unwrap(), None);
            }
        }
    }
}
