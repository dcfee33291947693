//! The projections' pages and blocks on disk: written whole into append-only value files, and
//! found through sled, which holds each key's location (16 bytes) rather than its value.
//!
//! sled rewrites a tree node when a key in it changes, and a node of sixteen blocks of kilobytes
//! each is a hundred kilobytes: a checkpoint, which rewrites the last block of every list, made
//! sled copy and log far more than it changed, and its files ran five times what they held. Here
//! a checkpoint appends what changed, as one sequential write per file and one `fdatasync`, and
//! gives sled a location per key.
//!
//! - `values/<file>.val` holds frames `[length u32][crc32 u32][key length u16][key][value]`,
//!   little-endian, the length of all that follows it, the CRC over the key length, the key and
//!   the value. A file is closed once it passes its size; the next one is numbered after it.
//! - A location is `[file u32][offset u64][frame bytes u32]`.
//! - Frames are synced before the checkpoint that locates them is written, so a checkpoint never
//!   locates what a crash lost. Frames of a checkpoint that a crash cut off are dead bytes.
//! - How many bytes of each file the checkpoint still locates is part of the checkpoint
//!   (`checkpoint.rs`); a closed file less than half live is compacted: its live frames go out
//!   again with the next checkpoint, and the file is deleted once a flushed checkpoint no longer
//!   locates anything in it.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{ProjectionError, storage};
use chancery_store::StoreError;

/// The size past which a value file is closed and the next one begun.
pub const FILE_BYTES: u64 = 32 << 20;

/// Length and CRC before each frame's key length.
const FRAME_HEADER: usize = 8;
/// Bytes of a location.
pub const LOCATION_BYTES: usize = 16;
const SUFFIX: &str = "val";

/// Where a value is: its file, the offset of its frame, and the frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub file: u32,
    pub offset: u64,
    pub bytes: u32,
}

impl Location {
    pub fn encode(&self) -> [u8; LOCATION_BYTES] {
        let mut out = [0u8; LOCATION_BYTES];
        out[..4].copy_from_slice(&self.file.to_le_bytes());
        out[4..12].copy_from_slice(&self.offset.to_le_bytes());
        out[12..].copy_from_slice(&self.bytes.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Location> {
        if bytes.len() != LOCATION_BYTES {
            return None;
        }
        Some(Location {
            file: u32::from_le_bytes(bytes[..4].try_into().ok()?),
            offset: u64::from_le_bytes(bytes[4..12].try_into().ok()?),
            bytes: u32::from_le_bytes(bytes[12..].try_into().ok()?),
        })
    }
}

/// A value that writes itself into a frame (a page, a block, or bytes read back).
pub trait Encode {
    fn encode(&self, out: &mut Vec<u8>);

    /// The bytes [`Encode::encode`] writes (for a checkpoint's room check): by default found by
    /// encoding, where a value knows them cheaper.
    fn encoded_len(&self) -> usize {
        let mut out = Vec::new();
        self.encode(&mut out);
        out.len()
    }
}

impl Encode for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }

    fn encoded_len(&self) -> usize {
        self.len()
    }
}

/// A value for a checkpoint to write, with its key: encoded straight into the file's buffer, so
/// that a checkpoint holds no copy of what it writes.
pub type Pending<'a> = (Vec<u8>, &'a dyn Encode);

/// A frame read back from a file: its key, its value and where it is.
pub struct Frame {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub location: Location,
}

/// The value files of one projections directory (or of a temporary store, whose directory goes
/// with them).
pub struct ValueFiles {
    dir: PathBuf,
    temporary: bool,
    file_bytes: u64,
    files: RwLock<BTreeMap<u32, Arc<File>>>,
    /// The file appended to, and its length. Appends come from checkpoints, one at a time.
    current: Mutex<(u32, u64)>,
}

static TEMPORARY: AtomicU64 = AtomicU64::new(0);

impl ValueFiles {
    /// The value files in `dir` (made if missing), closing files past `file_bytes`, as the last
    /// checkpoint left them: it ended at `end` (a file and its length then), and whatever was
    /// written after it (by checkpoints that a crash or a failed write lost, perhaps torn) is
    /// cut off. Without a checkpoint nothing is located, and every file goes.
    pub fn open(dir: &Path, file_bytes: u64, end: Option<(u32, u64)>) -> io::Result<Self> {
        Self::open_in(dir.to_path_buf(), false, file_bytes, end)
    }

    /// Value files in a directory of their own under the system's temporary directory, removed
    /// when they are dropped.
    pub fn temporary(file_bytes: u64) -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "chancery-projections-{}-{}",
            std::process::id(),
            TEMPORARY.fetch_add(1, Ordering::Relaxed)
        ));
        Self::open_in(dir, true, file_bytes, None)
    }

    fn open_in(
        dir: PathBuf,
        temporary: bool,
        file_bytes: u64,
        end: Option<(u32, u64)>,
    ) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        let mut files = BTreeMap::new();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(id) = file_id(&path) else { continue };
            if end.is_none_or(|(last, _)| id > last) {
                fs::remove_file(&path)?;
                continue;
            }
            files.insert(id, Arc::new(open_file(&path, false)?));
        }
        let (mut id, mut len) = end.unwrap_or((0, 0));
        match files.get(&id) {
            Some(file) => {
                if file.metadata()?.len() > len {
                    file.set_len(len)?;
                    file.sync_all()?;
                }
            }
            None => {
                files.insert(id, Arc::new(open_file(&dir.join(file_name(id)), true)?));
                len = 0;
            }
        }
        if len >= file_bytes {
            id += 1;
            files.insert(id, Arc::new(open_file(&dir.join(file_name(id)), true)?));
            len = 0;
        }
        Ok(Self {
            dir,
            temporary,
            file_bytes: file_bytes.max(1),
            files: RwLock::new(files),
            current: Mutex::new((id, len)),
        })
    }

    /// The file appended to, and its length: where the last checkpoint's values end.
    pub fn end(&self) -> Result<(u32, u64), ProjectionError> {
        self.current
            .lock()
            .map(|current| *current)
            .map_err(|_| poisoned())
    }

    fn file(&self, id: u32) -> Result<Arc<File>, ProjectionError> {
        self.files
            .read()
            .map_err(|_| poisoned())?
            .get(&id)
            .cloned()
            .ok_or_else(|| {
                ProjectionError::Corrupt(format!(
                    "value file {} of the projections is missing",
                    file_name(id)
                ))
            })
    }

    /// The size past which a file is closed.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// The value at `location`, which must be `key`'s.
    pub fn read(&self, key: &[u8], location: Location) -> Result<Vec<u8>, ProjectionError> {
        let file = self.file(location.file)?;
        let mut frame = vec![0u8; location.bytes as usize];
        file.read_exact_at(&mut frame, location.offset)
            .map_err(|e| io_error(&self.dir, location.file, &e))?;
        let damaged = || {
            ProjectionError::Corrupt(format!(
                "the frame at byte {} of value file {} of the projections is damaged",
                location.offset,
                file_name(location.file)
            ))
        };
        let (found, start) = parse_frame(&frame).ok_or_else(damaged)?;
        if found != key {
            return Err(damaged());
        }
        frame.drain(..start);
        Ok(frame)
    }

    /// Appends `writes` (keys and values) and syncs what it wrote, answering each write's
    /// location in order. A file that would pass its size is closed first. On an error the files
    /// are cut back to what they held, as far as they can be, and nothing is located.
    pub fn append(&self, writes: &[Pending<'_>]) -> Result<Vec<Location>, ProjectionError> {
        let mut current = self.current.lock().map_err(|_| poisoned())?;
        let mut appender = Appender {
            files: self,
            touched: Vec::new(),
            id: current.0,
            len: current.1,
            buffer: Vec::with_capacity(WRITE_BYTES + 64 * 1024),
            buffered_at: current.1,
        };
        match appender.append_all(writes) {
            Ok(locations) => {
                *current = (appender.id, appender.len);
                Ok(locations)
            }
            Err(error) => {
                for (id, start) in &appender.touched {
                    if let Ok(file) = self.file(*id) {
                        let _ = file.set_len(*start);
                    }
                }
                Err(io_error(&self.dir, appender.id, &error))
            }
        }
    }

    /// The file `id`, made if it is new.
    fn file_or_new(&self, id: u32) -> io::Result<Arc<File>> {
        if let Ok(file) = self.file(id) {
            return Ok(file);
        }
        let file = Arc::new(open_file(&self.dir.join(file_name(id)), true)?);
        self.files
            .write()
            .map_err(|_| io::Error::other("the value files' lock poisoned"))?
            .insert(id, Arc::clone(&file));
        Ok(file)
    }

    /// The files and their lengths, but for the one appended to.
    pub fn closed(&self) -> Result<Vec<(u32, u64)>, ProjectionError> {
        let current = self.current.lock().map_err(|_| poisoned())?.0;
        let files = self.files.read().map_err(|_| poisoned())?;
        let mut closed = Vec::new();
        for (id, file) in files.iter().filter(|(id, _)| **id != current) {
            let len = file
                .metadata()
                .map_err(|e| io_error(&self.dir, *id, &e))?
                .len();
            closed.push((*id, len));
        }
        Ok(closed)
    }

    /// Every frame of a closed file, in order. A file holds whole frames only (what a crash
    /// left after the last checkpoint is cut off as the files open), so a frame that does not
    /// read back is damage, and an error: compacting past it would lose the frames after it.
    pub fn frames(&self, id: u32) -> Result<Vec<Frame>, ProjectionError> {
        let file = self.file(id)?;
        let len = file
            .metadata()
            .map_err(|e| io_error(&self.dir, id, &e))?
            .len();
        let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| io_error(&self.dir, id, &e))?;
        let mut frames = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() {
            let parsed = bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(|b| at + 4 + u32::from_le_bytes(b) as usize)
                .and_then(|end| Some((end, bytes.get(at..end)?)))
                .and_then(|(end, frame)| Some((end, frame, parse_frame(frame)?)));
            let Some((end, frame, (key, start))) = parsed else {
                return Err(ProjectionError::Corrupt(format!(
                    "the frame at byte {at} of value file {} of the projections is damaged",
                    file_name(id)
                )));
            };
            frames.push(Frame {
                key: key.to_vec(),
                value: frame[start..].to_vec(),
                location: Location {
                    file: id,
                    offset: at as u64,
                    bytes: u32::try_from(frame.len()).unwrap_or(u32::MAX),
                },
            });
            at = end;
        }
        Ok(frames)
    }

    /// Deletes files that nothing locates any more.
    pub fn remove(&self, ids: &[u32]) -> Result<(), ProjectionError> {
        let mut files = self.files.write().map_err(|_| poisoned())?;
        for id in ids {
            files.remove(id);
            match fs::remove_file(self.dir.join(file_name(*id))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&self.dir, *id, &e)),
            }
        }
        Ok(())
    }

    /// Deletes every file (the projections are rebuilt); the next is numbered after them.
    pub fn clear(&self) -> Result<(), ProjectionError> {
        let ids: Vec<u32> = self
            .files
            .read()
            .map_err(|_| poisoned())?
            .keys()
            .copied()
            .collect();
        self.remove(&ids)?;
        let mut current = self.current.lock().map_err(|_| poisoned())?;
        *current = (ids.last().map_or(0, |id| id + 1), 0);
        Ok(())
    }
}

/// Bytes gathered before a write to the file.
const WRITE_BYTES: usize = 1 << 20;

/// One checkpoint's appends: frames gathered and written a megabyte at a time, each file synced
/// once at the end.
struct Appender<'a> {
    files: &'a ValueFiles,
    /// The files written to, with their lengths before.
    touched: Vec<(u32, u64)>,
    id: u32,
    /// The file's length with what is gathered.
    len: u64,
    buffer: Vec<u8>,
    /// Where the gathered bytes go in the file.
    buffered_at: u64,
}

impl Appender<'_> {
    fn append_all(&mut self, writes: &[Pending<'_>]) -> io::Result<Vec<Location>> {
        let mut locations = Vec::with_capacity(writes.len());
        for (key, value) in writes {
            if self.len >= self.files.file_bytes {
                self.write_buffer()?;
                self.id += 1;
                self.len = 0;
                self.buffered_at = 0;
            }
            let start = self.buffer.len();
            encode_frame(key, *value, &mut self.buffer)?;
            let bytes = self.buffer.len() - start;
            locations.push(Location {
                file: self.id,
                offset: self.len,
                bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
            });
            self.len += bytes as u64;
            if self.buffer.len() >= WRITE_BYTES {
                self.write_buffer()?;
            }
        }
        self.write_buffer()?;
        for (id, _) in &self.touched {
            self.files.file_or_new(*id)?.sync_data()?;
        }
        Ok(locations)
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if self.touched.last().map(|(id, _)| *id) != Some(self.id) {
            self.touched.push((self.id, self.buffered_at));
        }
        self.files
            .file_or_new(self.id)?
            .write_all_at(&self.buffer, self.buffered_at)?;
        self.buffered_at += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }
}

impl Drop for ValueFiles {
    fn drop(&mut self) {
        if self.temporary {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The projections' tree, with the value files its locations point into.
#[derive(Clone)]
pub struct Disk {
    index: sled::Tree,
    values: Arc<ValueFiles>,
}

impl Disk {
    pub fn new(index: sled::Tree, values: Arc<ValueFiles>) -> Self {
        Self { index, values }
    }

    /// The tree of keys: each page's and block's location, and the checkpoint's own values.
    pub fn index(&self) -> &sled::Tree {
        &self.index
    }

    /// The value of a page's or a block's key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ProjectionError> {
        match self.index.get(key).map_err(storage)? {
            Some(location) => self.read(key, &location).map(Some),
            None => Ok(None),
        }
    }

    /// The value of `key`, whose location the index holds as `location`.
    pub fn read(&self, key: &[u8], location: &[u8]) -> Result<Vec<u8>, ProjectionError> {
        let location = Location::decode(location).ok_or_else(|| {
            ProjectionError::Corrupt("a location in the projections' index is malformed".into())
        })?;
        self.values.read(key, location)
    }
}

fn file_name(id: u32) -> String {
    format!("{id:010}.{SUFFIX}")
}

fn file_id(path: &Path) -> Option<u32> {
    if path.extension()? != SUFFIX {
        return None;
    }
    path.file_stem()?.to_str()?.parse().ok()
}

fn open_file(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
}

fn encode_frame(key: &[u8], value: &dyn Encode, out: &mut Vec<u8>) -> io::Result<()> {
    let too_long = || io::Error::other("a projections value is too long to store");
    let key_len = u16::try_from(key.len()).map_err(|_| too_long())?;
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key);
    value.encode(out);
    let length = match u32::try_from(out.len() - start - 4) {
        Ok(length) => length,
        Err(_) => {
            out.truncate(start);
            return Err(too_long());
        }
    };
    let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
    out[start + 4..start + FRAME_HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A whole frame's key, and where its value starts; `None` if it is damaged.
fn parse_frame(frame: &[u8]) -> Option<(&[u8], usize)> {
    let length = u32::from_le_bytes(frame.get(..4)?.try_into().ok()?) as usize;
    if length + 4 != frame.len() {
        return None;
    }
    let crc = u32::from_le_bytes(frame.get(4..FRAME_HEADER)?.try_into().ok()?);
    let body = frame.get(FRAME_HEADER..)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let key_len = u16::from_le_bytes(body.get(..2)?.try_into().ok()?) as usize;
    let key = body.get(2..2 + key_len)?;
    Some((key, FRAME_HEADER + 2 + key_len))
}

fn poisoned() -> ProjectionError {
    ProjectionError::Corrupt("the value files' lock poisoned".into())
}

fn io_error(dir: &Path, id: u32, e: &io::Error) -> ProjectionError {
    let what = format!("{}: {e}", dir.join(file_name(id)).display());
    if chancery_store::reserve::is_full(e) {
        ProjectionError::Store(StoreError::StorageFull(what))
    } else {
        ProjectionError::Storage(what)
    }
}
