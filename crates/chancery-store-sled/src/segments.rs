//! The log's records on disk: append-only segment files of framed records, each with a file of
//! its records' offsets. The records are stored once, here; sled holds only indexes.
//!
//! - `records/<first position>.seg` holds frames `[length u32][crc32 u32][flags u8][record]`,
//!   little-endian, the CRC over the flags and the record. The last frame of each commit group
//!   carries the `COMMIT` flag, so a group that a crash cut short is recognised and dropped whole.
//! - `records/<first position>.idx` holds the offset of each record's frame (u32), in order.
//! - `records/<first position>.ids` (the open segment) and `.run` (a closed one) hold the id
//!   index (see `ids`).
//!
//! A commit group is one write of its frames and, for a durable log, one `fdatasync`: the
//! append's durability. Offsets are derived data: the open segment keeps them in memory and
//! writes them at checkpoints, and recovery rebuilds those past the last checkpoint from the
//! frames. A segment is closed once it passes its size; its offsets are written and synced
//! before the next segment exists, and the next is named by its first position, so segments
//! never overlap. Readers never look past the head the writer published.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use chancery_domain::{EventId, Hash, Position, RecordedEvent};
use chancery_store::StoreError;

use crate::ids::{self, OpenIds, Run, RunUnusable};
use crate::reader::{corrupt, io_error};

/// Length, CRC and flags before each record.
pub const FRAME_HEADER: usize = 9;
/// The flag of the last frame of a commit group.
const COMMIT: u8 = 1;
/// Bytes read at once when a record's length is not known yet: most records fit.
const FIRST_READ: usize = 2048;
/// Bytes read at a time by a sequential scan.
const SCAN_CHUNK: usize = 4 * 1024 * 1024;
/// Records read together (see [`Segments::read_many`]) lie within this many positions of the
/// first of them...
const NEAR_RECORDS: u64 = 4_096;
/// ...and their frames within this many bytes; farther apart, each is read alone.
const NEAR_BYTES: u64 = 1024 * 1024;

/// One segment: its frames and its offsets.
pub struct Segment {
    pub first: Position,
    data: File,
    offsets_file: File,
    data_path: PathBuf,
    /// The open segment's offsets, every one, in memory; `None` once the segment is closed, when
    /// its offsets file is complete.
    open: RwLock<Option<Vec<u32>>>,
    /// Where its ids are looked up; `None` only while the segments are being opened.
    ids: RwLock<Option<IdIndex>>,
}

/// A segment's part of the id index.
enum IdIndex {
    /// The open segment's ids in memory, and its ids file: the first `written` records' ids are
    /// in the file, `pending` are the ids of the records after them, written at checkpoints.
    Open {
        places: OpenIds,
        file: File,
        written: u64,
        pending: Vec<EventId>,
    },
    /// A closed segment's run.
    Closed(Run),
}

impl Segment {
    /// The open segment's offsets so far; none for a closed segment.
    fn open_offsets(&self) -> Vec<u32> {
        self.open
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// Keeps the offsets in memory while the segment is open (`Some`); `None` closes it.
    fn set_open_offsets(&self, offsets: Option<Vec<u32>>) {
        *self.open.write().unwrap_or_else(|p| p.into_inner()) = offsets;
    }

    fn data_name(first: Position) -> String {
        format!("{first:020}.seg")
    }

    fn offsets_name(first: Position) -> String {
        format!("{first:020}.idx")
    }

    fn open_files(dir: &Path, first: Position, create: bool) -> io::Result<Segment> {
        let data_path = dir.join(Self::data_name(first));
        let options = |new: bool| {
            let mut o = OpenOptions::new();
            o.read(true).write(true);
            if new {
                o.create_new(true);
            }
            o
        };
        let data = options(create).open(&data_path)?;
        let offsets_file = options(create).open(dir.join(Self::offsets_name(first)))?;
        Ok(Segment {
            first,
            data,
            offsets_file,
            data_path,
            open: RwLock::new(None),
            ids: RwLock::new(None),
        })
    }

    fn ids_path(&self, dir: &Path) -> PathBuf {
        dir.join(ids::ids_name(self.first))
    }

    fn run_path(&self, dir: &Path) -> PathBuf {
        dir.join(ids::run_name(self.first))
    }

    /// The place in this segment of the record with `id`, if it holds one.
    fn find_id(&self, id: &EventId) -> Result<Option<u32>, StoreError> {
        match &*self.ids.read().unwrap_or_else(|p| p.into_inner()) {
            Some(IdIndex::Open { places, .. }) => Ok(places.get(id)),
            Some(IdIndex::Closed(run)) => run.find(id).map_err(|why| corrupt(None, &why)),
            None => Err(corrupt(
                None,
                &format!("{}: its ids are not loaded", self.name()),
            )),
        }
    }

    /// Takes in the ids of records appended at `from` and after (the open segment's).
    fn add_ids(&self, from: u64, records: &[RecordedEvent]) {
        if let Some(IdIndex::Open {
            places, pending, ..
        }) = &mut *self.ids.write().unwrap_or_else(|p| p.into_inner())
        {
            for (i, record) in records.iter().enumerate() {
                places.insert(
                    record.id(),
                    u32::try_from(from + i as u64).unwrap_or(u32::MAX),
                );
                pending.push(record.id());
            }
        }
    }

    /// Writes the open segment's pending ids to its ids file and syncs it; answers how many
    /// records' ids the file holds.
    fn write_pending_ids(&self) -> io::Result<u64> {
        match &mut *self.ids.write().unwrap_or_else(|p| p.into_inner()) {
            Some(IdIndex::Open {
                file,
                written,
                pending,
                ..
            }) => {
                if pending.is_empty() {
                    return Ok(*written);
                }
                ids::write_ids(file, *written, pending.iter().copied())?;
                file.sync_data()?;
                *written += pending.len() as u64;
                pending.clear();
                Ok(*written)
            }
            _ => Ok(0),
        }
    }

    /// Closes the segment's part of the id index: its run written and synced, its ids file gone.
    fn close_ids(&self, dir: &Path) -> io::Result<()> {
        let mut slot = self.ids.write().unwrap_or_else(|p| p.into_inner());
        if let Some(IdIndex::Open { places, .. }) = &*slot {
            let run = Run::write(&self.run_path(dir), places)?;
            *slot = Some(IdIndex::Closed(run));
            remove_if_present(&self.ids_path(dir))?;
        }
        Ok(())
    }

    /// Opens a closed segment's run of `count` ids, making it again from its records when it is
    /// missing or damaged.
    fn load_run(&self, dir: &Path, count: u64) -> Result<(), StoreError> {
        let path = self.run_path(dir);
        let run = match Run::open(&path, count) {
            Ok(run) => run,
            Err(unusable) => {
                match unusable {
                    RunUnusable::Missing => {}
                    RunUnusable::Damaged(why) => {
                        tracing::warn!(%why, "the id run of a segment is damaged: making it again")
                    }
                    RunUnusable::Io(e) => return Err(io_error(&e)),
                }
                let found = self.scan_ids(Some(count))?;
                if found.len() as u64 != count {
                    return Err(corrupt(
                        Some(self.first),
                        &format!(
                            "{}: {} records where its offsets say {count}",
                            self.name(),
                            found.len()
                        ),
                    ));
                }
                tracing::info!(segment = %self.name(), ids = count, "made the id run of a segment from its records");
                Run::write(&path, &OpenIds::of(&found)).map_err(|e| io_error(&e))?
            }
        };
        *self.ids.write().unwrap_or_else(|p| p.into_inner()) = Some(IdIndex::Closed(run));
        remove_if_present(&self.ids_path(dir)).map_err(|e| io_error(&e))
    }

    /// The ids of the segment's records (the first `limit` of them, if given), in order, read
    /// from its frames.
    fn scan_ids(&self, limit: Option<u64>) -> Result<Vec<EventId>, StoreError> {
        let mut found = Vec::new();
        let last = limit.map_or(Position::MAX, |l| (self.first + l).saturating_sub(1));
        self.read_records(
            0,
            self.first,
            last,
            SCAN_CHUNK,
            &mut Vec::new(),
            &mut |record| {
                found.push(record.id());
                true
            },
        )?;
        Ok(found)
    }

    /// Reads the segment's records in order, from the frame at `offset` (of position `next`)
    /// up to position `to`, its end, or where the next segment supersedes it, handing each to
    /// `each` until it answers false. Answers the position after the last record handed, and
    /// whether `each` stopped the reading.
    fn read_records(
        &self,
        offset: u64,
        mut next: Position,
        to: Position,
        chunk: usize,
        buf: &mut Vec<u8>,
        each: &mut dyn FnMut(RecordedEvent) -> bool,
    ) -> Result<(Position, bool), StoreError> {
        let mut reader = FrameReader::new(&self.data, buf, offset, chunk);
        while next <= to {
            let Some((at, frame)) = reader.next_frame().map_err(|e| io_error(&e))? else {
                break;
            };
            let record = unframe(frame).map_err(|why| self.damaged(next, at, why))?;
            let record = RecordedEvent::from_stored(record)
                .map_err(|e| self.damaged(next, at, &e.to_string()))?;
            if record.position() != next {
                // The rest of this segment was superseded by the next one.
                break;
            }
            next += 1;
            if !each(record) {
                return Ok((next, true));
            }
        }
        Ok((next, false))
    }

    /// Loads the open segment's ids: the first `from` from its ids file (or, if the file holds
    /// fewer, every id from the frames), then the ids of `tail`, the records after them.
    fn load_open_ids(
        &self,
        dir: &Path,
        from: u64,
        tail: &[(u32, RecordedEvent)],
    ) -> Result<(), StoreError> {
        let path = self.ids_path(dir);
        remove_if_present(&self.run_path(dir)).map_err(|e| io_error(&e))?;
        let file = ids::open_ids_file(&path).map_err(|e| io_error(&e))?;
        let mut held = ids::read_ids(&file, from).map_err(|e| io_error(&e))?;
        let written = if held.len() as u64 == from {
            held.extend(tail.iter().map(|(_, r)| r.id()));
            from
        } else {
            tracing::info!(segment = %self.name(), "the open segment's ids file is short: reading its ids from its records");
            held = self.scan_ids(None)?;
            0
        };
        let places = OpenIds::of(&held);
        let pending = held.split_off(usize::try_from(written).unwrap_or(0));
        file.set_len(written * 16).map_err(|e| io_error(&e))?;
        *self.ids.write().unwrap_or_else(|p| p.into_inner()) = Some(IdIndex::Open {
            places,
            file,
            written,
            pending,
        });
        Ok(())
    }

    /// The file name, for messages.
    pub fn name(&self) -> String {
        self.data_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The offset of the frame of the record `index` places into this segment.
    fn offset(&self, index: u64) -> Result<u32, StoreError> {
        self.offsets(index, 1)?
            .first()
            .copied()
            .ok_or_else(|| corrupt(Some(self.first + index), "no offset for the record"))
    }

    /// The offsets of the frames of the `count` records from the one `index` places into this
    /// segment: from memory while it is open, in one read of its offsets file once closed.
    fn offsets(&self, index: u64, count: usize) -> Result<Vec<u32>, StoreError> {
        let missing = || corrupt(Some(self.first + index), "no offset for the record");
        if let Some(offsets) = self
            .open
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
        {
            let from = usize::try_from(index).map_err(|_| missing())?;
            return from
                .checked_add(count)
                .and_then(|to| offsets.get(from..to))
                .map(<[u32]>::to_vec)
                .ok_or_else(missing);
        }
        let mut bytes = vec![0u8; count * 4];
        self.offsets_file
            .read_exact_at(&mut bytes, index * 4)
            .map_err(|e| {
                corrupt(
                    Some(self.first + index),
                    &format!("cannot read its offsets in {}: {e}", self.name()),
                )
            })?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// Reads the records at `positions` (this segment's, within [`NEAR_RECORDS`] of each other)
    /// in the order given, onto `out`: their offsets in one read and their frames in one more,
    /// when the frames lie within [`NEAR_BYTES`]. A frame that runs past the bytes read, or
    /// whose offset is out of order, is read alone, which checks it as a single read does.
    fn read_near(
        &self,
        positions: &[Position],
        out: &mut Vec<RecordedEvent>,
    ) -> Result<(), StoreError> {
        let (Some(&lo), Some(&hi)) = (positions.iter().min(), positions.iter().max()) else {
            return Ok(());
        };
        let count = usize::try_from(hi - lo + 1).map_err(|_| corrupt(Some(hi), "too far"))?;
        let offsets = self.offsets(lo - self.first, count)?;
        let (Some(&start), Some(&last)) = (offsets.first(), offsets.last()) else {
            return Ok(());
        };
        let (start, last) = (u64::from(start), u64::from(last));
        let span = last.saturating_sub(start) + FIRST_READ as u64;
        if last < start || span > NEAR_BYTES {
            for &position in positions {
                out.push(self.read(position)?);
            }
            return Ok(());
        }
        let mut buf = vec![0u8; usize::try_from(span).unwrap_or(FIRST_READ)];
        let got = read_up_to(&self.data, &mut buf, start).map_err(|e| io_error(&e))?;
        buf.truncate(got);
        for &position in positions {
            let offset = offsets
                .get(usize::try_from(position - lo).unwrap_or(usize::MAX))
                .map_or(0, |o| u64::from(*o));
            let frame = offset
                .checked_sub(start)
                .and_then(|at| buf.get(usize::try_from(at).ok()?..))
                .and_then(whole_frame);
            out.push(match frame {
                Some(frame) => self.record_of(frame, position, offset)?,
                None => self.read(position)?,
            });
        }
        Ok(())
    }

    /// Reads the record at `position`, checking its frame.
    fn read(&self, position: Position) -> Result<RecordedEvent, StoreError> {
        let offset = u64::from(self.offset(position - self.first)?);
        let mut buf = vec![0u8; FIRST_READ];
        let got = read_up_to(&self.data, &mut buf, offset).map_err(|e| io_error(&e))?;
        buf.truncate(got);
        let length =
            frame_length(&buf).ok_or_else(|| self.damaged(position, offset, "cut short"))?;
        let total = FRAME_HEADER + length;
        if buf.len() < total {
            buf.resize(total, 0);
            self.data
                .read_exact_at(&mut buf[got..], offset + got as u64)
                .map_err(|_| self.damaged(position, offset, "cut short"))?;
        }
        buf.truncate(total);
        self.record_of(&buf, position, offset)
    }

    /// The record in `frame` (a whole frame, read from `offset`), which must be the one at
    /// `position`: its checksum, its decoding and its position are checked.
    fn record_of(
        &self,
        frame: &[u8],
        position: Position,
        offset: u64,
    ) -> Result<RecordedEvent, StoreError> {
        let record = unframe(frame).map_err(|why| self.damaged(position, offset, why))?;
        let record = RecordedEvent::from_stored(record)
            .map_err(|e| self.damaged(position, offset, &e.to_string()))?;
        if record.position() != position {
            return Err(self.damaged(
                position,
                offset,
                &format!("it holds position {}", record.position()),
            ));
        }
        Ok(record)
    }

    fn damaged(&self, position: Position, offset: u64, why: &str) -> StoreError {
        corrupt(
            Some(position),
            &format!("{}, byte {offset}: a damaged record ({why})", self.name()),
        )
    }
}

/// Reads into `buf` from `offset` until it is full or the file ends.
fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn frame_length(bytes: &[u8]) -> Option<usize> {
    let length = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    usize::try_from(length).ok()
}

/// The whole frame at the start of `bytes`, if they hold all of it.
fn whole_frame(bytes: &[u8]) -> Option<&[u8]> {
    bytes.get(..FRAME_HEADER.checked_add(frame_length(bytes)?)?)
}

/// The record inside a whole frame, its CRC checked.
fn unframe(frame: &[u8]) -> Result<&[u8], &'static str> {
    let length = frame_length(frame).ok_or("cut short")?;
    if frame.len() != FRAME_HEADER + length {
        return Err("cut short");
    }
    let crc = u32::from_le_bytes(frame[4..8].try_into().map_err(|_| "cut short")?);
    if crc32fast::hash(&frame[8..]) != crc {
        return Err("its checksum does not match");
    }
    Ok(&frame[FRAME_HEADER..])
}

fn frame(record: &[u8], flags: u8, out: &mut Vec<u8>) {
    let length = u32::try_from(record.len()).unwrap_or(u32::MAX);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[flags]);
    hasher.update(record);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.push(flags);
    out.extend_from_slice(record);
}

/// The segments of a log, shared by the writer and the readers.
pub struct Segments {
    dir: PathBuf,
    list: RwLock<Vec<Arc<Segment>>>,
    /// Buffers of finished scans, kept for the next: a fresh buffer costs zeroing and page
    /// faults on every read of a catch-up or an export, more than the reading itself.
    scan_buffers: Mutex<Vec<Vec<u8>>>,
}

/// Scan buffers kept for reuse, at most: one per reader running at once, in the common case.
/// A buffer is at most [`SCAN_CHUNK`] and a frame's length, so they hold about 16 MiB at most.
const KEPT_SCAN_BUFFERS: usize = 4;

/// Where the durable part of the open segment ends: what a checkpoint records, and where
/// recovery starts reading frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The log's head at the mark.
    pub head: Position,
    /// The open segment at the mark (its first position), 0 when there was none.
    pub segment: Position,
    /// Records of that segment whose offsets are in its offsets file.
    pub records: u64,
    /// Bytes of that segment's frames up to the head.
    pub bytes: u64,
}

impl Mark {
    pub const EMPTY: Mark = Mark {
        head: 0,
        segment: 0,
        records: 0,
        bytes: 0,
    };

    pub fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..8].copy_from_slice(&self.head.to_be_bytes());
        out[8..16].copy_from_slice(&self.segment.to_be_bytes());
        out[16..24].copy_from_slice(&self.records.to_be_bytes());
        out[24..].copy_from_slice(&self.bytes.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Mark> {
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(
                bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        if bytes.len() != 32 {
            return None;
        }
        Some(Mark {
            head: word(0)?,
            segment: word(1)?,
            records: word(2)?,
            bytes: word(3)?,
        })
    }
}

/// What recovery found past the last checkpoint: the records of whole groups, in order.
pub struct Tail {
    pub records: Vec<RecordedEvent>,
}

impl Segments {
    /// Opens the segments of `dir` (creating it), checks them against the checkpoint mark, cuts
    /// off what a crash left unfinished, and answers with the records past the mark, which the
    /// index must take in again.
    pub fn open(dir: &Path, mark: Mark) -> Result<(Segments, Tail), StoreError> {
        fs::create_dir_all(dir)
            .map_err(|e| StoreError::Storage(format!("cannot create {}: {e}", dir.display())))?;
        let mut firsts = list_segments(dir).map_err(|e| io_error(&e))?;
        firsts.sort_unstable();
        let mut list = Vec::with_capacity(firsts.len());
        for first in &firsts {
            list.push(Arc::new(
                Segment::open_files(dir, *first, false).map_err(|e| io_error(&e))?,
            ));
        }
        let segments = Segments {
            dir: dir.to_owned(),
            list: RwLock::new(list),
            scan_buffers: Mutex::new(Vec::new()),
        };
        let tail = segments.recover(mark)?;
        let all = segments.all();
        if let Some((_, closed)) = all.split_last() {
            for segment in closed {
                let count = segment
                    .offsets_file
                    .metadata()
                    .map_err(|e| io_error(&e))?
                    .len()
                    / 4;
                segment.load_run(dir, count)?;
            }
        }
        Ok((segments, tail))
    }

    /// The position of the record with `id`, if the log holds one at most `bound`.
    pub fn find_id(&self, id: &EventId, bound: Position) -> Result<Option<Position>, StoreError> {
        let list = self
            .list
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for segment in list.iter().rev() {
            if segment.first > bound {
                continue;
            }
            if let Some(place) = segment.find_id(id)? {
                let position = segment.first + u64::from(place);
                return Ok((position <= bound).then_some(position));
            }
        }
        Ok(None)
    }

    fn all(&self) -> Vec<Arc<Segment>> {
        self.list
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads frames past the mark: from the mark's place in its segment, then every later
    /// segment. Only whole groups count; a torn end of the last segment is cut off; damage
    /// followed by good frames, or anywhere in a segment that a later one follows, is
    /// corruption, reported with its file and byte before anything is cut.
    fn recover(&self, mark: Mark) -> Result<Tail, StoreError> {
        let all = self.all();
        let mut records = Vec::new();
        let mut expected = mark.head + 1;
        let mut prev_hash: Option<Hash> = None;
        let start = all
            .iter()
            .position(|s| s.first == mark.segment)
            .or_else(|| (mark.segment == 0).then_some(0));
        let Some(start) = start else {
            return Err(corrupt(
                None,
                &format!(
                    "{}: the segment of the last checkpoint ({}) is missing",
                    self.dir.display(),
                    Segment::data_name(mark.segment)
                ),
            ));
        };
        for (n, segment) in all.iter().enumerate().skip(start) {
            if n > start && segment.first != expected {
                return Err(corrupt(
                    Some(expected),
                    &format!(
                        "{}: no segment holds position {expected} (the next starts at {})",
                        self.dir.display(),
                        segment.first
                    ),
                ));
            }
            let (from_index, from_byte) = if n == start && mark.segment == segment.first {
                (mark.records, mark.bytes)
            } else {
                (0, 0)
            };
            let limit = all.get(n + 1).map(|next| next.first);
            let found = scan_frames(segment, from_byte, expected, limit)?;
            // Offsets: those in the file before the mark, then the frames found.
            let mut offsets = read_offsets(segment, from_index)?;
            let mut kept = 0;
            for (offset, record) in &found.records {
                if let Some(prev) = prev_hash {
                    if record.prev_hash() != prev {
                        return Err(corrupt(
                            Some(record.position()),
                            &format!(
                                "{}, byte {offset}: the record does not chain to the one before it",
                                segment.name()
                            ),
                        ));
                    }
                }
                prev_hash = Some(record.hash());
                offsets.push(*offset);
                kept += 1;
            }
            expected += kept as u64;
            let is_last = n + 1 == all.len();
            if found.cut_at < found.length {
                segment
                    .data
                    .set_len(found.cut_at)
                    .map_err(|e| io_error(&e))?;
            }
            if is_last {
                segment.load_open_ids(&self.dir, from_index, &found.records)?;
                segment.set_open_offsets(Some(offsets));
            } else {
                // A closed segment's offsets file must hold every record.
                write_offsets(segment, &offsets).map_err(|e| io_error(&e))?;
            }
            records.extend(found.records.into_iter().map(|(_, r)| r));
        }
        Ok(Tail { records })
    }

    /// The segment holding `position`, and its place in it.
    fn locate(&self, position: Position) -> Option<Arc<Segment>> {
        let list = self
            .list
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let i = list.partition_point(|s| s.first <= position);
        list.get(i.checked_sub(1)?).cloned()
    }

    /// The record at `position`, which must be at most the published head.
    pub fn read(&self, position: Position) -> Result<Option<RecordedEvent>, StoreError> {
        if position == 0 {
            return Ok(None);
        }
        match self.locate(position) {
            None => Ok(None),
            Some(segment) => segment.read(position).map(Some),
        }
    }

    /// The records at `positions` (each at most the published head), in the order given (up or
    /// down). Positions close together in one segment (a page of a timeline, most often) are
    /// read with one read of their offsets and one of their frames, rather than two reads each.
    pub fn read_many(&self, positions: &[Position]) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::with_capacity(positions.len());
        let mut rest = positions;
        while let Some(&first) = rest.first() {
            let segment = self
                .locate(first)
                .filter(|_| first > 0)
                .ok_or_else(|| corrupt(Some(first), "no segment holds it"))?;
            let near = rest
                .iter()
                .take_while(|&&p| {
                    p.abs_diff(first) < NEAR_RECORDS
                        && self.locate(p).is_some_and(|s| Arc::ptr_eq(&s, &segment))
                })
                .count();
            let (group, after) = rest.split_at(near.max(1));
            segment.read_near(group, &mut out)?;
            rest = after;
        }
        Ok(out)
    }

    /// Reads records `from..=to` in order, one sequential pass per segment, handing each to
    /// `each` until it answers false.
    pub fn scan(
        &self,
        from: Position,
        to: Position,
        each: &mut dyn FnMut(RecordedEvent) -> bool,
    ) -> Result<(), StoreError> {
        if from > to || from == 0 {
            return Ok(());
        }
        let all = self.all();
        let mut buf = self
            .scan_buffers
            .lock()
            .ok()
            .and_then(|mut kept| kept.pop())
            .unwrap_or_default();
        let scanned = scan_segments(&all, from, to, &mut buf, each);
        if let Ok(mut kept) = self.scan_buffers.lock()
            && kept.len() < KEPT_SCAN_BUFFERS
        {
            kept.push(buf);
        }
        scanned
    }

    /// Bytes in the segment files (frames and offsets) and the id index's files.
    pub fn disk_bytes(&self) -> u64 {
        self.all()
            .iter()
            .map(|s| {
                s.data.metadata().map_or(0, |m| m.len())
                    + s.offsets_file.metadata().map_or(0, |m| m.len())
            })
            .sum::<u64>()
            + self.id_index_disk_bytes()
    }

    /// Bytes in the id index's files (the runs and the open segment's ids file).
    pub fn id_index_disk_bytes(&self) -> u64 {
        self.all()
            .iter()
            .map(|s| {
                [s.ids_path(&self.dir), s.run_path(&self.dir)]
                    .iter()
                    .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
                    .sum::<u64>()
            })
            .sum()
    }
}

/// Reads records `from..=to` of `all` (the segments in order) into `each`, through `buf`.
fn scan_segments(
    all: &[Arc<Segment>],
    from: Position,
    to: Position,
    buf: &mut Vec<u8>,
    each: &mut dyn FnMut(RecordedEvent) -> bool,
) -> Result<(), StoreError> {
    let mut next = from;
    let start = all.partition_point(|s| s.first <= from).saturating_sub(1);
    for segment in &all[start..] {
        if next > to {
            break;
        }
        if segment.first > next {
            return Err(corrupt(Some(next), "no segment holds it"));
        }
        let offset = segment.offset(next - segment.first)?;
        // The frames asked for end where the record after `to` starts, when this segment holds
        // it: reading exactly that much reads nothing twice. Otherwise about what the records
        // asked for take: a read of a few records should not read megabytes.
        let chunk = match segment.offset((to - segment.first).saturating_add(1)) {
            Ok(end) if end > offset => usize::try_from(end - offset).unwrap_or(SCAN_CHUNK),
            _ => usize::try_from(to - next)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
                .saturating_mul(640),
        }
        .clamp(FIRST_READ, SCAN_CHUNK);
        let (after, stopped) =
            segment.read_records(u64::from(offset), next, to, chunk, buf, each)?;
        next = after;
        if stopped {
            return Ok(());
        }
    }
    if next <= to {
        return Err(corrupt(Some(next), "no segment holds it"));
    }
    Ok(())
}

fn list_segments(dir: &Path) -> io::Result<Vec<Position>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(first) = name.strip_suffix(".seg").and_then(|n| n.parse().ok()) {
            found.push(first);
        }
    }
    Ok(found)
}

/// Removes a file; one that is not there is no error.
fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn read_offsets(segment: &Segment, count: u64) -> Result<Vec<u32>, StoreError> {
    let mut bytes = vec![0u8; usize::try_from(count * 4).unwrap_or(0)];
    segment
        .offsets_file
        .read_exact_at(&mut bytes, 0)
        .map_err(|e| {
            corrupt(
                None,
                &format!(
                    "{}: cannot read the offsets of its first {count} records: {e}",
                    segment.name()
                ),
            )
        })?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn write_offsets(segment: &Segment, offsets: &[u32]) -> io::Result<()> {
    let bytes: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
    segment.offsets_file.write_all_at(&bytes, 0)?;
    segment.offsets_file.set_len(bytes.len() as u64)?;
    segment.offsets_file.sync_data()
}

/// What a scan of one segment's frames found.
struct Found {
    /// Records of whole groups, with their frames' offsets.
    records: Vec<(u32, RecordedEvent)>,
    /// Where the whole groups end: what is past it is cut off.
    cut_at: u64,
    /// The file's length.
    length: u64,
}

/// Reads the frames of a segment from `from` on: positions from `expected`, below `limit` when
/// a later segment starts there.
fn scan_frames(
    segment: &Segment,
    from: u64,
    expected: Position,
    limit: Option<Position>,
) -> Result<Found, StoreError> {
    let length = segment.data.metadata().map_err(|e| io_error(&e))?.len();
    let mut buf = Vec::new();
    let mut reader = FrameReader::new(&segment.data, &mut buf, from, SCAN_CHUNK);
    let mut group: Vec<(u32, RecordedEvent)> = Vec::new();
    let mut records = Vec::new();
    let mut cut_at = from;
    let mut next = expected;
    loop {
        if limit.is_some_and(|l| next >= l) {
            break;
        }
        let Some((at, frame)) = reader.next_frame().map_err(|e| io_error(&e))? else {
            if let Some(limit) = limit {
                // A later segment exists, so this one was cut to its whole groups and synced
                // before it: its end holds every position before the next one's first.
                let at = reader.offset();
                let why = if at < length {
                    "cut short".to_owned()
                } else {
                    format!("the file ends before position {next}")
                };
                return Err(followed_damage(segment, next, at, &why, limit));
            }
            break;
        };
        let end = at + frame.len() as u64;
        let checked = unframe(frame).and_then(|record| {
            RecordedEvent::from_stored(record).map_err(|_| "it does not decode")
        });
        let record = match checked {
            Ok(record) if record.position() == next => record,
            Ok(_) | Err(_) => {
                let why = match checked {
                    Ok(r) => format!("it holds position {} where {next} was due", r.position()),
                    Err(why) => why.to_owned(),
                };
                // A torn write ends the last segment; damage followed by a good frame, or by a
                // later segment, is corruption.
                if let Some(limit) = limit {
                    return Err(followed_damage(segment, next, at, &why, limit));
                }
                if reader.has_good_frame_after(end) {
                    return Err(corrupt(
                        Some(next),
                        &format!(
                            "{}, byte {at}: a damaged record ({why}), with records after it, so \
                             not a torn write",
                            segment.name()
                        ),
                    ));
                }
                break;
            }
        };
        let commit = frame[8] & COMMIT != 0;
        let offset = u32::try_from(at).map_err(|_| corrupt(Some(next), "segment too large"))?;
        group.push((offset, record));
        next += 1;
        if commit {
            records.append(&mut group);
            cut_at = end;
        }
    }
    Ok(Found {
        records,
        cut_at,
        length,
    })
}

/// Damage at byte `at` of a segment that a later segment follows (from position `limit`): the
/// writer starts a segment only once the one before is cut to its whole groups and synced, so
/// this was written whole, and is corruption rather than a torn write.
fn followed_damage(
    segment: &Segment,
    position: Position,
    at: u64,
    why: &str,
    limit: Position,
) -> StoreError {
    corrupt(
        Some(position),
        &format!(
            "{}, byte {at}: a damaged record ({why}), with a later segment after it (from \
             position {limit}), so not a torn write",
            segment.name()
        ),
    )
}

/// Reads frames one after another from a file.
struct FrameReader<'f> {
    file: &'f File,
    /// Read bytes in `buf[pos..end]`; the buffer is zeroed once, when it grows, and reused (by
    /// later readers too: a scan's buffer comes from [`Segments`]' pool).
    buf: &'f mut Vec<u8>,
    /// The file offset of `buf[0]`.
    base: u64,
    /// The next frame's place in `buf`.
    pos: usize,
    /// The end of what was read into `buf`.
    end: usize,
    chunk: usize,
}

impl<'f> FrameReader<'f> {
    /// A reader from byte `from`, reading about `chunk` bytes at a time into `buf`.
    fn new(file: &'f File, buf: &'f mut Vec<u8>, from: u64, chunk: usize) -> Self {
        Self {
            file,
            buf,
            base: from,
            pos: 0,
            end: 0,
            chunk,
        }
    }

    /// Makes `n` bytes available from `pos`, reading more; false at the end of the file.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.pos >= n {
            return Ok(true);
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.base += self.pos as u64;
        self.end -= self.pos;
        self.pos = 0;
        let want = n.max(self.chunk);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        // Up to `want`, not the buffer's end: a reused buffer may be larger than this reader's
        // chunk, and reading past what was asked for copies bytes nobody needs.
        let got = read_up_to(
            self.file,
            &mut self.buf[self.end..want],
            self.base + self.end as u64,
        )?;
        self.end += got;
        Ok(self.end >= n)
    }

    /// The next whole frame and its offset; `None` at the end, or at a frame cut short.
    fn next_frame(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        if !self.fill(FRAME_HEADER)? {
            return Ok(None);
        }
        let Some(length) = frame_length(&self.buf[self.pos..self.end]) else {
            return Ok(None);
        };
        let total = FRAME_HEADER.saturating_add(length);
        if !self.fill(total)? {
            return Ok(None);
        }
        let at = self.base + self.pos as u64;
        let frame = &self.buf[self.pos..self.pos + total];
        self.pos += total;
        Ok(Some((at, frame)))
    }

    /// The file offset of the next frame.
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Whether a good frame starts anywhere after `end` (damage in the middle, not a torn end).
    fn has_good_frame_after(&self, end: u64) -> bool {
        let mut buf = Vec::new();
        let mut probe = FrameReader::new(self.file, &mut buf, end, FIRST_READ);
        matches!(probe.next_frame(), Ok(Some((_, frame))) if unframe(frame).is_ok())
    }
}

/// The writer's side: appends groups to the open segment, closes full segments, and makes the
/// offsets durable at checkpoints.
pub struct Appender {
    segments: Arc<Segments>,
    /// The segment being appended to (none before the first record).
    open: Option<Arc<Segment>>,
    /// Bytes of whole groups in the open segment.
    bytes: u64,
    /// Offsets already in the open segment's offsets file.
    offsets_written: u64,
    /// A write failed and could not be cut off: the next group starts a new segment.
    torn: bool,
    max_bytes: u64,
    durable: bool,
    /// `fdatasync` calls made on segments.
    pub syncs: u64,
}

impl Appender {
    /// The appender of opened segments, after their recovery.
    pub fn new(
        segments: Arc<Segments>,
        mark: Mark,
        max_bytes: u64,
        durable: bool,
    ) -> Result<Appender, StoreError> {
        let open = segments.all().last().cloned();
        let (bytes, offsets_written) = match &open {
            None => (0, 0),
            Some(segment) => {
                let bytes = segment.data.metadata().map_err(|e| io_error(&e))?.len();
                let written = if segment.first == mark.segment {
                    mark.records
                } else {
                    0
                };
                (bytes, written)
            }
        };
        Ok(Appender {
            segments,
            open,
            bytes,
            offsets_written,
            torn: false,
            max_bytes,
            durable,
            syncs: 0,
        })
    }

    /// Appends a commit group's records (consecutive, continuing the log) and, for a durable log,
    /// makes them durable. A write that fails is cut off again, so the next group does not follow
    /// a torn one; if it cannot be, the next group starts a new segment.
    pub fn append(&mut self, records: &[RecordedEvent]) -> io::Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let mut frames = Vec::with_capacity(
            records
                .iter()
                .map(|r| r.stored().len() + FRAME_HEADER)
                .sum(),
        );
        let mut offsets = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            offsets.push(frames.len());
            let flags = if i + 1 == records.len() { COMMIT } else { 0 };
            frame(record.stored(), flags, &mut frames);
        }
        let roll = self.torn
            || self.open.is_none()
            || (self.bytes > 0 && self.bytes + frames.len() as u64 > self.max_bytes);
        if roll {
            self.start_segment(first.position())?;
        }
        let segment = self
            .open
            .clone()
            .ok_or_else(|| io::Error::other("no open segment"))?;
        if let Err(e) = segment.data.write_all_at(&frames, self.bytes) {
            self.torn = segment.data.set_len(self.bytes).is_err();
            return Err(e);
        }
        if self.durable {
            if let Err(e) = segment.data.sync_data() {
                // What reached the disk is unknown: cut it off if possible, and go on in a new
                // segment either way (recovery reads a superseded end as such).
                let _ = segment.data.set_len(self.bytes);
                self.torn = true;
                return Err(e);
            }
            self.syncs += 1;
        }
        let base = self.bytes;
        self.bytes += frames.len() as u64;
        let mut open = segment.open.write().unwrap_or_else(|p| p.into_inner());
        let list = open.get_or_insert_with(Vec::new);
        let from = list.len() as u64;
        for offset in offsets {
            list.push(u32::try_from(base + offset as u64).unwrap_or(u32::MAX));
        }
        drop(open);
        segment.add_ids(from, records);
        Ok(())
    }

    /// Closes the open segment (its offsets written and synced) and starts one at `first`.
    fn start_segment(&mut self, first: Position) -> io::Result<()> {
        if let Some(old) = self.open.take() {
            let offsets = old.open_offsets();
            write_offsets(&old, &offsets)?;
            // The old segment may hold a torn write past its whole groups.
            old.data.set_len(self.bytes)?;
            old.data.sync_all()?;
            old.close_ids(&self.segments.dir)?;
            old.set_open_offsets(None);
        }
        let dir = self.segments.dir.clone();
        let segment = Arc::new(Segment::open_files(&dir, first, true)?);
        segment.set_open_offsets(Some(Vec::new()));
        *segment.ids.write().unwrap_or_else(|p| p.into_inner()) = Some(IdIndex::Open {
            places: OpenIds::default(),
            file: ids::open_ids_file(&segment.ids_path(&dir))?,
            written: 0,
            pending: Vec::new(),
        });
        // The new names must survive a crash.
        File::open(&dir)?.sync_all()?;
        self.segments
            .list
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&segment));
        self.open = Some(segment);
        self.bytes = 0;
        self.offsets_written = 0;
        self.torn = false;
        Ok(())
    }

    /// Writes the open segment's new offsets and syncs them (and, for a log that is not durable
    /// per group, its frames): everything up to `head` is then durable, and the mark says so.
    pub fn checkpoint(&mut self, head: Position) -> io::Result<Mark> {
        let Some(segment) = self.open.clone() else {
            return Ok(Mark {
                head,
                ..Mark::EMPTY
            });
        };
        let offsets = segment.open_offsets();
        let new = &offsets[usize::try_from(self.offsets_written)
            .unwrap_or(0)
            .min(offsets.len())..];
        if !new.is_empty() {
            let bytes: Vec<u8> = new.iter().flat_map(|o| o.to_le_bytes()).collect();
            segment
                .offsets_file
                .write_all_at(&bytes, self.offsets_written * 4)?;
        }
        segment.offsets_file.sync_data()?;
        let ids_written = segment.write_pending_ids()?;
        if ids_written != offsets.len() as u64 {
            return Err(io::Error::other(format!(
                "{}: the ids file holds {ids_written} ids where the segment has {} records",
                segment.name(),
                offsets.len()
            )));
        }
        if !self.durable {
            segment.data.sync_data()?;
        }
        self.offsets_written = offsets.len() as u64;
        Ok(Mark {
            head,
            segment: segment.first,
            records: self.offsets_written,
            bytes: self.bytes,
        })
    }
}
