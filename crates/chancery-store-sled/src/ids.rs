//! The id index: which position holds each event id, kept beside the segments rather than in
//! sled, so that what a server holds in memory for it does not grow with the log.
//!
//! - The open segment's ids are in memory (a map from id to the record's place in the segment,
//!   as large as a segment is long), and in `records/<first>.ids`, each record's id (16 bytes) in
//!   order, written with each group and synced at checkpoints like the offsets.
//! - A closed segment's ids are in `records/<first>.run`, written and synced when the segment
//!   closes: its (id, place) entries sorted by id in CRC-checked blocks, the first id of each
//!   block (the fences), a Bloom filter of its ids, and a footer. Only the fences and the filter
//!   are held in memory (about 1.3 bytes per event); a lookup that the filter lets through reads
//!   one block.
//!
//! Both are derived from the segments: a run or an ids file that is missing, short or whose
//! footer does not check is made again from the records at open. A block that fails its CRC
//! when read is a `Corrupt` error, never an answer.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use chancery_domain::EventId;
use chancery_domain::ids::IdMap;

/// Entries per block of a run: (id, place) pairs of 20 bytes, a block and its CRC under 4 KiB.
const BLOCK_ENTRIES: usize = 204;
const ENTRY: usize = 20;
const ID: usize = 16;
/// The footer: magic, entries, filter bytes, filter hashes, CRC of the fences, filter and footer.
const FOOTER: usize = 32;
const MAGIC: &[u8; 8] = b"CHIDRUN1";
/// Filter bits per id and hashes per lookup: about 0.8 % false positives.
const FILTER_BITS_PER_ID: usize = 10;
const FILTER_HASHES: u32 = 7;

/// The open segment's ids: every record's id and its place in the segment.
#[derive(Default)]
pub struct OpenIds {
    places: IdMap<u32>,
}

impl OpenIds {
    /// The ids of a segment's records, in order.
    pub fn of(ids: &[EventId]) -> OpenIds {
        let mut places = IdMap::with_capacity_and_hasher(ids.len(), Default::default());
        for (place, id) in ids.iter().enumerate() {
            places.insert(*id, u32::try_from(place).unwrap_or(u32::MAX));
        }
        OpenIds { places }
    }

    pub fn get(&self, id: &EventId) -> Option<u32> {
        self.places.get(id).copied()
    }

    pub fn insert(&mut self, id: EventId, place: u32) {
        self.places.insert(id, place);
    }

    /// The entries sorted by id, to write as a run.
    fn sorted(&self) -> Vec<(EventId, u32)> {
        let mut entries: Vec<(EventId, u32)> = self.places.iter().map(|(i, p)| (*i, *p)).collect();
        entries.sort_unstable_by_key(|(id, _)| *id.as_bytes());
        entries
    }
}

/// The name of a segment's ids file.
pub fn ids_name(first: u64) -> String {
    format!("{first:020}.ids")
}

/// The name of a segment's run.
pub fn run_name(first: u64) -> String {
    format!("{first:020}.run")
}

/// Opens (creating it) the ids file of the open segment.
pub fn open_ids_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Writes the ids of records from place `from` on into an ids file (not synced).
pub fn write_ids(file: &File, from: u64, ids: impl Iterator<Item = EventId>) -> io::Result<()> {
    let bytes: Vec<u8> = ids.flat_map(|id| *id.as_bytes()).collect();
    if bytes.is_empty() {
        return Ok(());
    }
    file.write_all_at(&bytes, from * ID as u64)
}

/// Reads the ids of the first `count` records from an ids file; fewer if it holds fewer.
pub fn read_ids(file: &File, count: u64) -> io::Result<Vec<EventId>> {
    let held = file.metadata()?.len() / ID as u64;
    let count = count.min(held);
    let mut bytes = vec![0u8; usize::try_from(count).unwrap_or(0) * ID];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes
        .chunks_exact(ID)
        .map(|c| {
            let mut id = [0u8; ID];
            id.copy_from_slice(c);
            EventId::from_bytes(id)
        })
        .collect())
}

/// A closed segment's run: its file, and the fences and filter held in memory.
pub struct Run {
    file: File,
    path: PathBuf,
    entries: u64,
    fences: Vec<[u8; ID]>,
    filter: Filter,
}

/// Why a run could not be used: it is made again from the segment's records.
#[derive(Debug)]
pub enum RunUnusable {
    Missing,
    /// Its footer or its length does not check, or it holds another number of ids.
    Damaged(String),
    Io(io::Error),
}

impl Run {
    /// Writes the run of a segment's ids (synced, then renamed into place) and opens it.
    pub fn write(path: &Path, ids: &OpenIds) -> io::Result<Run> {
        let entries = ids.sorted();
        let filter = Filter::of(entries.iter().map(|(id, _)| id));
        let mut out = Vec::with_capacity(entries.len() * ENTRY + entries.len() / 8 + 4096);
        let mut fences = Vec::with_capacity(entries.len().div_ceil(BLOCK_ENTRIES));
        for block in entries.chunks(BLOCK_ENTRIES) {
            fences.push(*block[0].0.as_bytes());
            let start = out.len();
            for (id, place) in block {
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(&place.to_le_bytes());
            }
            let crc = crc32fast::hash(&out[start..]);
            out.extend_from_slice(&crc.to_le_bytes());
        }
        let checked_from = out.len();
        for fence in &fences {
            out.extend_from_slice(fence);
        }
        out.extend_from_slice(&filter.bits);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        out.extend_from_slice(&(filter.bits.len() as u64).to_le_bytes());
        out.extend_from_slice(&filter.hashes.to_le_bytes());
        let crc = crc32fast::hash(&out[checked_from..]);
        out.extend_from_slice(&crc.to_le_bytes());
        let staging = path.with_extension("run-new");
        {
            let file = File::create(&staging)?;
            file.write_all_at(&out, 0)?;
            file.sync_all()?;
        }
        fs::rename(&staging, path)?;
        let file = File::open(path)?;
        Ok(Run {
            file,
            path: path.to_owned(),
            entries: entries.len() as u64,
            fences,
            filter,
        })
    }

    /// Opens a segment's run, checking its footer, its length and that it holds `entries` ids.
    pub fn open(path: &Path, entries: u64) -> Result<Run, RunUnusable> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(RunUnusable::Missing),
            Err(e) => return Err(RunUnusable::Io(e)),
        };
        let damaged = |why: &str| RunUnusable::Damaged(format!("{}: {why}", path.display()));
        let length = file.metadata().map_err(RunUnusable::Io)?.len();
        let mut footer = [0u8; FOOTER];
        if length < FOOTER as u64 {
            return Err(damaged("shorter than its footer"));
        }
        file.read_exact_at(&mut footer, length - FOOTER as u64)
            .map_err(RunUnusable::Io)?;
        let word = |at: usize| u64::from_le_bytes(footer[at..at + 8].try_into().unwrap_or([0; 8]));
        if &footer[..8] != MAGIC {
            return Err(damaged("no run footer"));
        }
        let held = word(8);
        if held != entries {
            return Err(damaged(&format!(
                "it holds {held} ids where its segment has {entries} records"
            )));
        }
        let filter_bytes = word(16);
        let hashes = u32::from_le_bytes(footer[24..28].try_into().unwrap_or([0; 4]));
        let blocks = usize::try_from(entries)
            .map_err(|_| damaged("too many ids"))?
            .div_ceil(BLOCK_ENTRIES);
        let blocks_bytes = entries * ENTRY as u64 + blocks as u64 * 4;
        let checked_len = blocks as u64 * ID as u64 + filter_bytes + FOOTER as u64 - 4;
        if blocks_bytes + checked_len + 4 != length || filter_bytes % 8 != 0 {
            return Err(damaged("its length does not match its footer"));
        }
        let mut checked = vec![0u8; usize::try_from(checked_len).unwrap_or(0)];
        file.read_exact_at(&mut checked, blocks_bytes)
            .map_err(RunUnusable::Io)?;
        let crc = u32::from_le_bytes(footer[28..32].try_into().unwrap_or([0; 4]));
        if crc32fast::hash(&checked) != crc {
            return Err(damaged("its fences or filter fail their checksum"));
        }
        let fences = checked[..blocks * ID]
            .chunks_exact(ID)
            .map(|c| c.try_into().unwrap_or([0; ID]))
            .collect();
        let filter_end = blocks * ID + usize::try_from(filter_bytes).unwrap_or(0);
        let filter = Filter {
            bits: checked[blocks * ID..filter_end].to_vec(),
            hashes,
        };
        Ok(Run {
            file,
            path: path.to_owned(),
            entries,
            fences,
            filter,
        })
    }

    /// The place of `id` in the segment, if the segment holds it; a block that fails its CRC
    /// is an error naming the file.
    pub fn find(&self, id: &EventId) -> Result<Option<u32>, String> {
        if !self.filter.may_hold(id) {
            return Ok(None);
        }
        let key = id.as_bytes();
        let Some(block) = self.fences.partition_point(|f| f <= key).checked_sub(1) else {
            return Ok(None);
        };
        let count = (self.entries as usize - block * BLOCK_ENTRIES).min(BLOCK_ENTRIES);
        let mut bytes = vec![0u8; count * ENTRY + 4];
        let at = (block * (BLOCK_ENTRIES * ENTRY + 4)) as u64;
        self.file.read_exact_at(&mut bytes, at).map_err(|e| {
            format!(
                "{}, byte {at}: cannot read a block: {e}",
                self.path.display()
            )
        })?;
        let (body, crc) = bytes.split_at(count * ENTRY);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap_or([0; 4])) {
            return Err(format!(
                "{}, byte {at}: a block of the id index fails its checksum",
                self.path.display()
            ));
        }
        let entries: Vec<&[u8]> = body.chunks_exact(ENTRY).collect();
        Ok(entries
            .binary_search_by(|e| e[..ID].cmp(key.as_slice()))
            .ok()
            .map(|i| u32::from_le_bytes(entries[i][ID..].try_into().unwrap_or([0; 4]))))
    }
}

/// A Bloom filter of ids, probed by double hashing.
struct Filter {
    bits: Vec<u8>,
    hashes: u32,
}

impl Filter {
    fn of<'a>(ids: impl ExactSizeIterator<Item = &'a EventId>) -> Filter {
        let bits = (ids.len() * FILTER_BITS_PER_ID)
            .max(64)
            .next_multiple_of(64);
        let mut filter = Filter {
            bits: vec![0u8; bits / 8],
            hashes: FILTER_HASHES,
        };
        for id in ids {
            for bit in filter.probes(id) {
                filter.bits[bit / 8] |= 1 << (bit % 8);
            }
        }
        filter
    }

    fn may_hold(&self, id: &EventId) -> bool {
        !self.bits.is_empty()
            && self
                .probes(id)
                .all(|bit| self.bits[bit / 8] & (1 << (bit % 8)) != 0)
    }

    fn probes(&self, id: &EventId) -> impl Iterator<Item = usize> + use<> {
        let bytes = id.as_bytes();
        let low = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        let high = u64::from_le_bytes(bytes[8..].try_into().unwrap_or([0; 8]));
        // UUID v7 ids share their leading bytes (the time): mixing both halves spreads them.
        let first = mix(low ^ mix(high));
        let step = mix(first ^ high) | 1;
        let bits = (self.bits.len() * 8) as u64;
        (0..u64::from(self.hashes))
            .map(move |i| (first.wrapping_add(i.wrapping_mul(step)) % bits.max(1)) as usize)
    }
}

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32) -> Vec<EventId> {
        (0..n)
            .map(|i| {
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&(i / 7).to_be_bytes());
                bytes[12..].copy_from_slice(&i.to_le_bytes());
                EventId::from_bytes(bytes)
            })
            .collect()
    }

    #[test]
    fn a_run_finds_every_id_it_holds_and_few_it_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut open = OpenIds::default();
        let all = ids(5_000);
        for (place, id) in all.iter().enumerate().take(2_500) {
            open.insert(*id, place as u32);
        }
        let path = dir.path().join(run_name(1));
        Run::write(&path, &open).unwrap();
        let run = Run::open(&path, 2_500).unwrap();
        for (place, id) in all.iter().enumerate().take(2_500) {
            assert_eq!(run.find(id).unwrap(), Some(place as u32));
        }
        let passed = all[2_500..]
            .iter()
            .filter(|id| run.filter.may_hold(id))
            .count();
        assert!(
            passed < 75,
            "{passed} of 2,500 absent ids passed the filter"
        );
        assert!(
            all[2_500..]
                .iter()
                .all(|id| run.find(id).unwrap().is_none())
        );
        assert!(matches!(
            Run::open(&path, 2_501),
            Err(RunUnusable::Damaged(_))
        ));
    }

    #[test]
    fn a_changed_byte_in_a_block_is_an_error_and_in_the_footer_makes_the_run_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let mut open = OpenIds::default();
        let all = ids(1_000);
        for (place, id) in all.iter().enumerate() {
            open.insert(*id, place as u32);
        }
        let path = dir.path().join(run_name(1));
        Run::write(&path, &open).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[5] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let run = Run::open(&path, 1_000).unwrap();
        let in_first_block = all.iter().find(|id| run.filter.may_hold(id)).unwrap();
        assert!(run.find(in_first_block).unwrap_err().contains("checksum"));
        let end = bytes.len() - 10;
        bytes[5] ^= 0x40;
        bytes[end] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            Run::open(&path, 1_000),
            Err(RunUnusable::Damaged(_))
        ));
    }
}
